//! The command line: `pglab [serve]` and, later, maintenance subcommands.
//!
//! Every failure ends as one line on stderr (`pglab: <what is wrong>`) and exit
//! code 2, so a self-hoster never has to read a panic or a backtrace.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod sandbox;

use crate::config::ServeConfig;
use crate::startup::Application;

#[derive(Debug, Parser)]
#[command(
    name = "pglab",
    version,
    about = "Interactive PostgreSQL course server",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    #[command(subcommand)]
    command: Option<Command>,

    /// Settings used when no subcommand is given (plain `pglab` serves).
    #[command(flatten)]
    serve: ServeConfig,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Run the web server (the default).
    Serve(ServeConfig),
    /// Inspect and manage learners' sandboxes.
    Sandbox(sandbox::SandboxArgs),
}

/// Parses the command line, runs the command and maps failures to exit code 2.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return clap_error(err),
    };
    let result = match cli.command {
        Some(Command::Serve(config)) => serve(config),
        Some(Command::Sandbox(args)) => {
            init_tracing();
            sandbox::run(args)
        }
        None => serve(cli.serve),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            eprintln!("pglab: {err:#}");
            ExitCode::from(2)
        }
    }
}

/// Help and version go to stdout with success; anything else is a one-line error.
fn clap_error(err: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    match err.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            let _ = err.print();
            ExitCode::SUCCESS
        }
        _ => {
            let rendered = err.render().to_string();
            let first = rendered
                .lines()
                .find(|line| !line.trim().is_empty())
                .unwrap_or("invalid command line")
                .trim_start_matches("error: ");
            eprintln!("pglab: {first} (see `pglab --help`)");
            ExitCode::from(2)
        }
    }
}

fn serve(config: ServeConfig) -> anyhow::Result<()> {
    init_tracing();
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let app = Application::build(config).await?;
        app.run_until_stopped().await
    })
}

fn init_tracing() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    use tracing_subscriber::{EnvFilter, Layer, fmt};
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("info,tower_http=info,sqlx=warn,bollard=warn"));
    // The log output has its own filter, so that the console's notice layer
    // receives sqlx's NOTICE events whatever RUST_LOG says.
    let _ = tracing_subscriber::registry()
        .with(
            fmt::layer()
                .with_writer(std::io::stderr)
                .with_filter(filter),
        )
        .with(crate::console::notices::layer())
        .try_init();
}
