//! A real, throw-away PostgreSQL 15 server for tests of the SQL-facing modules:
//! `initdb` into a temp dir, listening on a unix socket there only, user
//! `labuser` (superuser) and database `labdb`, like a learner's sandbox.
//! PostgreSQL refuses to run as root, so as root it runs as `postgres`.

#![allow(dead_code, clippy::unwrap_used)]

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use sqlx::postgres::PgConnectOptions;

/// A running server; stopped (immediate mode) and removed on drop.
pub struct TempPg {
    dir: tempfile::TempDir,
    bin: PathBuf,
}

/// The PostgreSQL binaries: `PGLAB_PG_BINDIR`, `pg_config --bindir`, or
/// `/usr/lib/postgresql/<newest>/bin`.
pub fn pg_bindir() -> PathBuf {
    if let Some(dir) = std::env::var_os("PGLAB_PG_BINDIR") {
        return dir.into();
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    versions.retain(|p| p.join("initdb").exists());
    versions.sort();
    if let Some(newest) = versions.pop() {
        return newest;
    }
    let out = Command::new("pg_config").arg("--bindir").output();
    match out {
        Ok(out) if out.status.success() => String::from_utf8_lossy(&out.stdout).trim().into(),
        _ => panic!("no PostgreSQL binaries found; install postgresql-15"),
    }
}

fn as_server_user(mut cmd: Command) -> Command {
    use std::os::unix::process::CommandExt;
    if is_root() {
        let (uid, gid) = postgres_ids();
        cmd.uid(uid).gid(gid);
    }
    cmd
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

fn postgres_ids() -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").expect("/etc/passwd");
    for line in passwd.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.first() == Some(&"postgres") && f.len() > 3 {
            return (f[2].parse().unwrap(), f[3].parse().unwrap());
        }
    }
    panic!("running as root needs a `postgres` OS user to run PostgreSQL");
}

impl TempPg {
    /// initdb + start; ready for connections when this returns.
    pub fn start() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("pglab-pg-")
            .tempdir()
            .unwrap();
        let bin = pg_bindir();
        let data = dir.path().join("data");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
        if is_root() {
            let (uid, gid) = postgres_ids();
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid)).unwrap();
        }
        let pwfile = dir.path().join("pw");
        std::fs::write(&pwfile, "labpass\n").unwrap();
        std::fs::set_permissions(&pwfile, std::fs::Permissions::from_mode(0o644)).unwrap();
        let status = as_server_user(Command::new(bin.join("initdb")))
            .arg("-D")
            .arg(&data)
            .args([
                "-U",
                "labuser",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                "--no-sync",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .status()
            .unwrap();
        assert!(status.success(), "initdb failed");
        let socket_dir = dir.path();
        let opts = format!(
            "-c listen_addresses='' -c unix_socket_directories='{}' -c fsync=off -c max_connections=40 -c shared_buffers=32MB",
            socket_dir.display()
        );
        let status = as_server_user(Command::new(bin.join("pg_ctl")))
            .arg("-D")
            .arg(&data)
            .args(["-o", &opts, "-l"])
            .arg(dir.path().join("log"))
            .args(["-w", "-t", "60", "start"])
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(
            status.success(),
            "pg_ctl start failed: {}",
            std::fs::read_to_string(dir.path().join("log")).unwrap_or_default()
        );
        let pg = Self { dir, bin };
        let status = as_server_user(Command::new(pg.bin.join("createdb")))
            .arg("-h")
            .arg(pg.socket_dir())
            .args(["-U", "labuser", "labdb"])
            .status()
            .unwrap();
        assert!(status.success(), "createdb failed");
        pg
    }

    /// The folder holding the server's unix socket.
    pub fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    /// How to connect as `labuser` to `labdb`.
    pub fn options(&self) -> PgConnectOptions {
        PgConnectOptions::new()
            .socket(self.socket_dir())
            .username("labuser")
            .database("labdb")
    }

    /// `postgres://` URL form (socket in the host parameter).
    pub fn url(&self) -> String {
        format!(
            "postgres://labuser@localhost/labdb?host={}",
            self.socket_dir().display()
        )
    }
}

impl Drop for TempPg {
    fn drop(&mut self) {
        let _ = as_server_user(Command::new(self.bin.join("pg_ctl")))
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-m", "immediate", "-w", "-t", "20", "stop"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
        std::thread::sleep(Duration::from_millis(10));
    }
}
