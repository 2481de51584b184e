//! The command line: `pglab [serve]` and the maintenance subcommands
//! `backup`, `restore` and `healthcheck`.
//!
//! Every failure ends as one line on stderr (`pglab: <what is wrong>`) and exit
//! code 2, so a self-hoster never has to read a panic or a backtrace.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::config::ServeConfig;
use crate::ops::backup::{BackupArgs, RestoreArgs};
use crate::ops::healthcheck::HealthcheckArgs;
use crate::ops::logging::{self, BoxedLayer};
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
    /// Copy the store to FILE while the server may run (consistent, online).
    Backup(BackupArgs),
    /// Replace the store with FILE made by `pglab backup` (server stopped).
    Restore(RestoreArgs),
    /// Exit 0 when the server on PGLAB_BIND answers /healthz (for Docker).
    Healthcheck(HealthcheckArgs),
}

/// Parses the command line, runs the command and maps failures to exit code 2.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return clap_error(err),
    };
    let result = match cli.command {
        Some(Command::Serve(config)) => serve(config),
        Some(Command::Backup(args)) => backup(args),
        Some(Command::Restore(args)) => restore(args),
        Some(Command::Healthcheck(args)) => crate::ops::healthcheck::run(&args),
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
    logging::init_tracing(config.log_format, extra_tracing_layers());
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let app = Application::build(config).await?;
        app.run_until_stopped().await
    })
}

/// Tracing layers of other areas (each with its own filter), installed
/// beside the log output: add yours here.
fn extra_tracing_layers() -> Vec<BoxedLayer> {
    Vec::new()
}

fn backup(args: BackupArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    let summary = runtime.block_on(crate::ops::backup::backup(&args))?;
    println!(
        "backed up {} to {} (schema {}, {} users)",
        args.data_dir.join("pglab.db").display(),
        args.file.display(),
        summary.schema_version,
        summary.users
    );
    Ok(())
}

fn restore(args: RestoreArgs) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    let report = runtime.block_on(crate::ops::backup::restore(&args))?;
    println!(
        "restored {} into {} (schema {}, {} users); start the server to migrate it forward",
        args.file.display(),
        args.data_dir.join("pglab.db").display(),
        report.summary.schema_version,
        report.summary.users
    );
    if let Some(previous) = report.previous {
        println!("the replaced store is kept as {}", previous.display());
    }
    Ok(())
}
