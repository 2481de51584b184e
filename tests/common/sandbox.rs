//! Helpers of the sandbox tests (included with `#[path]` by
//! tests/sandbox_*.rs, beside `mod common`): a provisioner built in-process on a
//! temporary data dir, and a guard that leaves no server behind.

#![allow(dead_code, clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use clap::Parser;
use pglab::config::ServeConfig;
use pglab::store::Store;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};

#[derive(Parser)]
struct Wrapper {
    #[command(flatten)]
    config: ServeConfig,
}

/// A `ServeConfig` as `pglab serve ARGS` would parse it.
pub fn config(args: &[&str]) -> ServeConfig {
    let mut argv = vec!["pglab"];
    argv.extend_from_slice(args);
    Wrapper::parse_from(argv).config
}

/// A temporary data dir the `postgres` OS user can reach (tests run as root).
pub fn data_dir() -> (tempfile::TempDir, PathBuf) {
    let temp = tempfile::Builder::new()
        .prefix("pglab-sbx-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(temp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = temp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    (temp, data)
}

/// Opens the store of a data dir.
pub async fn store(data: &Path) -> Store {
    Store::open(&data.join("pglab.db")).await.unwrap()
}

/// Adds a user (a learner) and returns its id.
pub async fn add_learner(store: &Store, name: &str) -> i64 {
    sqlx::query("insert into users (username) values (?)")
        .bind(name)
        .execute(store.pool())
        .await
        .unwrap()
        .last_insert_rowid()
}

pub async fn connect(opts: &PgConnectOptions) -> PgConnection {
    PgConnection::connect_with(opts).await.unwrap()
}

/// Runs one statement and returns the first column of the first row as text.
pub async fn scalar(opts: &PgConnectOptions, sql: &str) -> String {
    let mut conn = connect(opts).await;
    let v: String = sqlx::query_scalar(sql).fetch_one(&mut conn).await.unwrap();
    let _ = conn.close().await;
    v
}

/// Stops every local cluster under `<data>/local` on drop (also when a test
/// fails), so that no PostgreSQL outlives its test.
pub struct LocalClusters(pub PathBuf);

impl Drop for LocalClusters {
    fn drop(&mut self) {
        let Ok(entries) = std::fs::read_dir(self.0.join("local")) else {
            return;
        };
        let bindir = crate::common::pg::pg_bindir();
        for e in entries.flatten() {
            let data = e.path().join("data");
            if !data.join("postmaster.pid").exists() {
                continue;
            }
            let mut cmd = Command::new(bindir.join("pg_ctl"));
            if is_root() {
                use std::os::unix::process::CommandExt;
                if let Some((u, g)) = postgres_ids() {
                    cmd.uid(u).gid(g);
                }
            }
            let _ = cmd
                .current_dir("/")
                .arg("-D")
                .arg(&data)
                .args(["-m", "immediate", "-w", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

fn postgres_ids() -> Option<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd").ok()?;
    passwd.lines().find_map(|line| {
        let f: Vec<&str> = line.split(':').collect();
        (f.len() > 3 && f[0] == "postgres")
            .then(|| Some((f[2].parse().ok()?, f[3].parse().ok()?)))?
    })
}
