//! Command line: `codex-convert-proxy --config config.json [--listen ADDR] [--check]`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;

use crate::config::Config;

#[derive(Debug, Parser)]
#[command(
    name = "codex-convert-proxy",
    version,
    about = "Lets the Codex CLI (OpenAI Responses API) talk to Chat Completions providers"
)]
pub struct Args {
    /// Path of the JSON configuration.
    #[arg(short, long, default_value = "config.json")]
    pub config: PathBuf,
    /// Listen address, overriding `listen` in the config (e.g. 127.0.0.1:8280).
    #[arg(short, long)]
    pub listen: Option<std::net::SocketAddr>,
    /// Validate the configuration and exit: 0 when valid, 1 otherwise.
    #[arg(long)]
    pub check: bool,
}

/// The program: parse arguments, load the config, run the server.
pub fn main() -> ExitCode {
    let args = Args::parse();
    let mut config = match Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "codex-convert-proxy: invalid configuration {}: {e}",
                args.config.display()
            );
            return ExitCode::from(1);
        }
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if args.check {
        println!(
            "{}: OK — listen {}, {} backend(s): {}",
            args.config.display(),
            config.listen,
            config.backends.len(),
            config
                .backends
                .iter()
                .map(|b| b.name.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        );
        return ExitCode::SUCCESS;
    }
    let _guards = match crate::logger::init(&config.log_dir, &config.log_level) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("codex-convert-proxy: {e}");
            return ExitCode::from(1);
        }
    };
    match crate::server::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("codex-convert-proxy: {e}");
            ExitCode::from(1)
        }
    }
}
