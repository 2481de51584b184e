//! `pglab user add` and `pglab user import`: accounts from the command line,
//! working directly on the store (the server may be running meanwhile).

use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;

use anyhow::Context;
use clap::{Args, Subcommand};

use crate::auth::users::Role;
use crate::auth::{import, users};
use crate::store::Store;

/// Account management.
#[derive(Debug, Subcommand)]
pub enum UserCommand {
    /// Create one user; the password is read from standard input unless --password is given.
    Add(AddArgs),
    /// Create learners in a classroom from a CSV file (username[,password] per
    /// line); generated passwords are printed.
    Import(ImportArgs),
}

/// Where the store is (the data dir of `pglab serve`).
#[derive(Debug, Args)]
pub struct StoreArgs {
    /// The server's data dir.
    #[arg(long, env = "PGLAB_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
}

#[derive(Debug, Args)]
pub struct AddArgs {
    /// The username (2-32 letters, digits, . _ -).
    pub name: String,
    /// Make an instructor.
    #[arg(long, conflicts_with = "learner")]
    pub instructor: bool,
    /// With --instructor: an administrator, who sees and manages every
    /// classroom (other instructors only their own).
    #[arg(long, requires = "instructor")]
    pub admin: bool,
    /// Make a learner (the default).
    #[arg(long)]
    pub learner: bool,
    /// The password (else read from standard input; avoid it on shared
    /// machines: command lines are visible to other users).
    #[arg(long)]
    pub password: Option<String>,
    /// Also add the user to this classroom.
    #[arg(long)]
    pub classroom: Option<i64>,
    #[command(flatten)]
    pub store: StoreArgs,
}

#[derive(Debug, Args)]
pub struct ImportArgs {
    /// The CSV file.
    pub file: PathBuf,
    /// The classroom the learners join (its id, shown on the instructor page).
    #[arg(long)]
    pub classroom: i64,
    #[command(flatten)]
    pub store: StoreArgs,
}

/// Runs a `user` subcommand.
pub fn run(cmd: UserCommand) -> anyhow::Result<()> {
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        match cmd {
            UserCommand::Add(args) => add(args).await,
            UserCommand::Import(args) => import_file(args).await,
        }
    })
}

async fn open_store(args: &StoreArgs) -> anyhow::Result<Store> {
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating the data dir {}", args.data_dir.display()))?;
    let path = args.data_dir.join("pglab.db");
    Store::open(&path)
        .await
        .with_context(|| format!("opening the store {}", path.display()))
}

fn read_password() -> anyhow::Result<String> {
    let stdin = std::io::stdin();
    if stdin.is_terminal() {
        eprint!("password (at least 8 characters): ");
        let _ = std::io::stderr().flush();
    }
    let mut line = String::new();
    stdin
        .lock()
        .read_line(&mut line)
        .context("reading the password from standard input")?;
    Ok(line.trim_end_matches(['\n', '\r']).to_string())
}

async fn add(args: AddArgs) -> anyhow::Result<()> {
    let role = if args.instructor {
        Role::Instructor
    } else {
        Role::Learner
    };
    users::parse_username(&args.name)?;
    let password = match args.password {
        Some(p) => p,
        None => read_password()?,
    };
    let store = open_store(&args.store).await?;
    let user = users::create(store.pool(), &args.name, &password, role, args.classroom).await?;
    if args.admin {
        crate::auth::classrooms::set_admin(store.pool(), user.id, true).await?;
    }
    println!(
        "created {}{} {} (id {})",
        if args.admin { "administrator " } else { "" },
        role.as_str(),
        user.username,
        user.id
    );
    Ok(())
}

async fn import_file(args: ImportArgs) -> anyhow::Result<()> {
    let csv = std::fs::read_to_string(&args.file)
        .with_context(|| format!("reading {}", args.file.display()))?;
    let store = open_store(&args.store).await?;
    let created = import::import(store.pool(), args.classroom, &csv).await?;
    println!("username,password");
    for u in &created {
        println!(
            "{},{}",
            u.username,
            u.password.as_deref().unwrap_or("(from the file)")
        );
    }
    eprintln!(
        "created {} learners in classroom {}",
        created.len(),
        args.classroom
    );
    Ok(())
}
