//! Command line: `codex-convert-proxy --config config.json [--listen ADDR] [--check]`, and
//! `codex-convert-proxy codex-setup --config config.json [--out-dir DIR] [--write]
//! [--codex-home DIR]`, and `codex-convert-proxy reload --config config.json [--pid PID]`.

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
    /// Replace a running proxy with the same configuration without closing its listening
    /// socket (Pingora's graceful upgrade): start this one with --upgrade, then send the
    /// running one SIGQUIT; it hands the socket over and finishes what it has open.
    #[arg(long)]
    pub upgrade: bool,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Set up Codex for this proxy: write a model catalog (codex-models.json) for every
    /// configured model, and print (or, with --write, merge into the Codex home) one model
    /// provider per backend and one profile per backend (`codex --profile <backend>`).
    CodexSetup(CodexSetupArgs),
    /// Reload a running proxy's configuration: validate the file, then signal the proxy
    /// (SIGHUP) found through the pid file in the config's `log_dir`. New requests use the
    /// new configuration; those already open finish on theirs.
    Reload(ReloadArgs),
}

#[derive(Debug, clap::Args)]
pub struct ReloadArgs {
    /// The configuration the proxy runs with (it re-reads its own `--config` file).
    #[arg(short, long, default_value = "config.json")]
    pub config: PathBuf,
    /// The proxy's process id (default: read from LOG_DIR/codex-convert-proxy.pid).
    #[arg(long)]
    pub pid: Option<i32>,
}

/// `codex-convert-proxy reload`: an invalid file is reported here and nothing is signalled.
fn reload(args: ReloadArgs) -> ExitCode {
    let config = match Config::load(&args.config) {
        Ok(c) => c,
        Err(e) => {
            eprintln!(
                "codex-convert-proxy: invalid configuration {}: {e} (the running proxy was not signalled)",
                args.config.display()
            );
            return ExitCode::from(1);
        }
    };
    let pid_path = crate::server::pid_file(&config.log_dir);
    let pid = match args.pid {
        Some(p) => p,
        None => match std::fs::read_to_string(&pid_path)
            .ok()
            .and_then(|s| s.trim().parse::<i32>().ok())
        {
            Some(p) => p,
            None => {
                eprintln!(
                    "codex-convert-proxy: no running proxy found: {} is missing or unreadable (give --pid)",
                    pid_path.display()
                );
                return ExitCode::from(1);
            }
        },
    };
    let target = nix::unistd::Pid::from_raw(pid);
    match nix::sys::signal::kill(target, nix::sys::signal::Signal::SIGHUP) {
        Ok(()) => {
            println!(
                "signalled codex-convert-proxy (pid {pid}) to reload {}; its log says what took effect",
                args.config.display()
            );
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("codex-convert-proxy: cannot signal pid {pid}: {e}");
            ExitCode::from(1)
        }
    }
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
    match args.command {
        Some(Command::CodexSetup(setup)) => return codex_setup(setup),
        Some(Command::Reload(r)) => return reload(r),
        None => {}
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
    match crate::server::run(config, &args.config, args.listen, args.upgrade) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            tracing::error!("{e}");
            eprintln!("codex-convert-proxy: {e}");
            ExitCode::from(1)
        }
    }
}
