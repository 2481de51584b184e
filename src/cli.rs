//! The command line: `pglab [serve]` and the maintenance subcommands
//! `backup`, `restore` and `healthcheck`.
//!
//! Every failure ends as one line on stderr (`pglab: <what is wrong>`) and exit
//! code 2, so a self-hoster never has to read a panic or a backtrace.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod sandbox;
mod user;

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
    /// Inspect and manage learners' sandboxes.
    Sandbox(sandbox::SandboxArgs),
    /// Manage accounts: `user add NAME --instructor`, `user import FILE --classroom ID`.
    #[command(subcommand)]
    User(user::UserCommand),

    /// Run a jq filter on JSON from stdin (the bounded child process of
    /// `GET /api/sandbox/inspect?jq=`).
    #[command(hide = true)]
    Jq { filter: String },

    /// Work on course content.
    #[command(subcommand)]
    Content(ContentCommand),
}

#[derive(Debug, Subcommand)]
enum ContentCommand {
    /// Check a curriculum folder: sections, exercises, lab files, checks.
    /// Exits 1 when a lab file is missing, a checks file is unparsable or
    /// (with --run) a check fails after its reference solution.
    Check(ContentCheckArgs),
}

#[derive(Debug, clap::Args)]
struct ContentCheckArgs {
    /// The curriculum root (section markdown files and practice/).
    dir: std::path::PathBuf,
    /// Print the report as JSON.
    #[arg(long)]
    json: bool,
    /// Also run every lab script and reference solution in a fresh
    /// throw-away PostgreSQL and report which checks pass.
    #[arg(long)]
    run: bool,
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
        Some(Command::User(cmd)) => user::run(cmd),
        Some(Command::Content(ContentCommand::Check(args))) => return content_check(args),
        Some(Command::Backup(args)) => backup(args),
        Some(Command::Restore(args)) => restore(args),
        Some(Command::Healthcheck(args)) => crate::ops::healthcheck::run(&args),
        Some(Command::Jq { filter }) => crate::sandbox::jq::main(&filter),
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

/// `pglab content check`: exit 0 when clean, 1 when the content has
/// problems, 2 when the check itself cannot run.
fn content_check(args: ContentCheckArgs) -> ExitCode {
    use crate::course::content_check;
    if !args.dir.is_dir() {
        eprintln!("pglab: {} is not a folder", args.dir.display());
        return ExitCode::from(2);
    }
    let mut report = content_check::inspect(&args.dir);
    if args.run {
        let runtime = match tokio::runtime::Runtime::new() {
            Ok(r) => r,
            Err(e) => {
                eprintln!("pglab: {e}");
                return ExitCode::from(2);
            }
        };
        if let Err(e) = runtime.block_on(content_check::run(&args.dir, &mut report)) {
            eprintln!("pglab: cannot run the checks: {e:#}");
            return ExitCode::from(2);
        }
    }
    if args.json {
        match serde_json::to_string_pretty(&report) {
            Ok(json) => println!("{json}"),
            Err(e) => {
                eprintln!("pglab: {e}");
                return ExitCode::from(2);
            }
        }
    } else {
        print!("{}", content_check::to_text(&report));
    }
    if report.problems.is_empty() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    }
}

/// Logging for subcommands that talk to the engine (text on stderr).
fn init_tracing() {
    logging::init_tracing(logging::LogFormat::Text, extra_tracing_layers());
}

/// Tracing layers of other areas (each with its own filter), installed
/// beside the log output; none today (the console reads notices off the
/// wire, `console::relay`, not from sqlx's log events).
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
