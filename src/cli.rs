//! Command line: `codex-convert-proxy --config config.json [--listen ADDR] [--check]`, and
//! `codex-convert-proxy codex-setup --config config.json [--out-dir DIR] [--write]
//! [--codex-home DIR]`.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::Config;

#[derive(Debug, Parser)]
#[command(
    name = "codex-convert-proxy",
    version,
    about = "Lets the Codex CLI (OpenAI Responses API) talk to Chat Completions providers",
    args_conflicts_with_subcommands = true
)]
pub struct Args {
    /// Without a command: run the proxy.
    #[command(subcommand)]
    pub command: Option<Command>,
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

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Set up Codex for this proxy: write a model catalog (codex-models.json) for every
    /// configured model, and print (or, with --write, merge into the Codex home) one model
    /// provider per backend and one profile per backend (`codex --profile <backend>`).
    CodexSetup(CodexSetupArgs),
}

#[derive(Debug, clap::Args)]
pub struct CodexSetupArgs {
    /// Path of the proxy's JSON configuration.
    #[arg(short, long, default_value = "config.json")]
    pub config: PathBuf,
    /// Directory of the generated codex-models.json (default: the Codex home).
    #[arg(long, value_name = "DIR")]
    pub out_dir: Option<PathBuf>,
    /// Merge the providers into CODEX_HOME/config.toml and write the profiles
    /// CODEX_HOME/<backend>.config.toml; everything else in them is kept.
    #[arg(long)]
    pub write: bool,
    /// The Codex home (default: $CODEX_HOME, else ~/.codex).
    #[arg(long, value_name = "DIR")]
    pub codex_home: Option<PathBuf>,
}

fn codex_setup(args: CodexSetupArgs) -> ExitCode {
    let (config, blanked) = match crate::codex_setup::load_config(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "codex-convert-proxy: invalid configuration {}: {e}",
                args.config.display()
            );
            return ExitCode::from(1);
        }
    };
    for w in config.warnings() {
        eprintln!("codex-convert-proxy: warning: {w}");
    }
    for var in blanked {
        eprintln!(
            "codex-convert-proxy: note: {var} is not set (not needed here; the proxy needs it)"
        );
    }
    let opts = crate::codex_setup::Options {
        out_dir: args.out_dir,
        write: args.write,
        codex_home: args.codex_home,
    };
    let stdout = std::io::stdout();
    match crate::codex_setup::run(&config, &opts, &mut stdout.lock()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("codex-convert-proxy codex-setup: {e}");
            ExitCode::from(1)
        }
    }
}

/// The program: parse arguments, load the config, run the server.
pub fn main() -> ExitCode {
    let args = Args::parse();
    if let Some(Command::CodexSetup(setup)) = args.command {
        return codex_setup(setup);
    }
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
    let warnings = config.warnings();
    if args.check {
        for w in &warnings {
            eprintln!("codex-convert-proxy: warning: {w}");
        }
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
    let _guards = match crate::logger::init(&config.log_dir, &config.log_level, config.log_format) {
        Ok(g) => g,
        Err(e) => {
            eprintln!("codex-convert-proxy: {e}");
            return ExitCode::from(1);
        }
    };
    for w in &warnings {
        tracing::warn!("{w}");
    }
    match crate::server::run(config) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("codex-convert-proxy: {e}");
            ExitCode::from(1)
        }
    }
}
