//! The command line: `pglab [serve]` and, later, maintenance subcommands.
//!
//! Every failure ends as one line on stderr (`pglab: <what is wrong>`) and exit
//! code 2, so a self-hoster never has to read a panic or a backtrace.

use std::process::ExitCode;

use clap::{Parser, Subcommand};

mod sandbox;
mod user;

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
    /// Manage accounts: `user add NAME --instructor`, `user import FILE --classroom ID`.
    #[command(subcommand)]
    User(user::UserCommand),

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
