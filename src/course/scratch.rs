//! A throw-away PostgreSQL server for `pglab content check --run`.
//!
//! [`start`] is the one function the sandbox backend can replace later: the
//! runner only needs connect options, an environment for `psql`/`pg_dump`,
//! and a restart. Today it runs `initdb` into a temporary folder and starts
//! the server on a unix socket there only (no TCP), as the `postgres` OS user
//! when we are root (PostgreSQL refuses to run as root), with `labuser`
//! (superuser) and database `labdb` like a learner's sandbox. [`psql`] runs
//! the real psql against such a server, as a learner's scripts run.

use std::io::Write as _;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use anyhow::{Context, bail};
use sqlx::postgres::PgConnectOptions;

/// A running throw-away server.
pub trait ThrowAwayServer: Send + Sync {
    /// How to connect as `labuser` to `labdb`.
    fn options(&self) -> PgConnectOptions;
    /// Environment for client programs (`PGHOST`, `PGUSER`, `PGDATABASE`, `PATH`).
    fn client_env(&self) -> Vec<(String, String)>;
    /// The folder of client binaries (`psql`, `pg_dump`).
    fn bindir(&self) -> PathBuf;
    /// Restarts the server; data survives.
    fn restart(&self) -> anyhow::Result<()>;
}

/// Starts a fresh server for one run.
pub fn start() -> anyhow::Result<Box<dyn ThrowAwayServer>> {
    Ok(Box::new(LocalCluster::start()?))
}

/// The PostgreSQL binaries: `PGLAB_PG_BINDIR`, else the newest
/// `/usr/lib/postgresql/<v>/bin`, else `pg_config --bindir`.
pub fn pg_bindir() -> anyhow::Result<PathBuf> {
    if let Some(dir) = std::env::var_os("PGLAB_PG_BINDIR") {
        return Ok(dir.into());
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|d| d.flatten().map(|e| e.path().join("bin")).collect())
        .unwrap_or_default();
    versions.retain(|p| p.join("initdb").exists());
    versions.sort();
    if let Some(newest) = versions.pop() {
        return Ok(newest);
    }
    let out = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .context("no PostgreSQL binaries found (install postgresql-15 or set PGLAB_PG_BINDIR)")?;
    Ok(String::from_utf8_lossy(&out.stdout).trim().into())
}

/// Runs the SQL file at `path` through the real psql (see [`psql`]).
pub fn psql_file(server: &dyn ThrowAwayServer, path: &Path) -> Result<(), String> {
    psql(server, &["-f", &path.display().to_string()], None)
}

/// Runs the real psql with ON_ERROR_STOP, like a learner would: statements
/// one at a time, autocommit; the error is psql's stderr.
pub fn psql(
    server: &dyn ThrowAwayServer,
    args: &[&str],
    stdin: Option<&str>,
) -> Result<(), String> {
    let mut child = Command::new(server.bindir().join("psql"))
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1"])
        .args(args)
        .envs(server.client_env())
        .stdin(if stdin.is_some() {
            Stdio::piped()
        } else {
            Stdio::null()
        })
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run psql: {e}"))?;
    if let (Some(text), Some(mut pipe)) = (stdin, child.stdin.take()) {
        pipe.write_all(text.as_bytes()).map_err(|e| e.to_string())?;
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).trim().to_string())
    }
}

struct LocalCluster {
    dir: tempfile::TempDir,
    bin: PathBuf,
}

fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

fn postgres_ids() -> anyhow::Result<(u32, u32)> {
    let passwd = std::fs::read_to_string("/etc/passwd")?;
    for line in passwd.lines() {
        let f: Vec<&str> = line.split(':').collect();
        if f.first() == Some(&"postgres") && f.len() > 3 {
            return Ok((f[2].parse()?, f[3].parse()?));
        }
    }
    bail!("running as root needs a `postgres` OS user to run PostgreSQL")
}

fn as_server_user(mut cmd: Command) -> anyhow::Result<Command> {
    use std::os::unix::process::CommandExt;
    if is_root() {
        let (uid, gid) = postgres_ids()?;
        cmd.uid(uid).gid(gid);
    }
    Ok(cmd)
}

impl LocalCluster {
    fn start() -> anyhow::Result<Self> {
        let dir = tempfile::Builder::new().prefix("pglab-check-").tempdir()?;
        let bin = pg_bindir()?;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o777))?;
        if is_root() {
            let (uid, gid) = postgres_ids()?;
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))?;
        }
        let out = as_server_user(Command::new(bin.join("initdb")))?
            .arg("-D")
            .arg(dir.path().join("data"))
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
            .output()
            .context("cannot run initdb")?;
        if !out.status.success() {
            bail!("initdb failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        let cluster = Self { dir, bin };
        cluster.pg_ctl("start")?;
        let out = Command::new(cluster.bin.join("createdb"))
            .envs(cluster.client_env())
            .arg("labdb")
            .output()
            .context("cannot run createdb")?;
        if !out.status.success() {
            bail!("createdb failed: {}", String::from_utf8_lossy(&out.stderr));
        }
        Ok(cluster)
    }

    fn socket_dir(&self) -> &Path {
        self.dir.path()
    }

    fn pg_ctl(&self, action: &str) -> anyhow::Result<()> {
        let opts = format!(
            "-c listen_addresses='' -c unix_socket_directories='{}' -c fsync=off -c max_connections=50 -c shared_buffers=64MB -c deadlock_timeout=500ms",
            self.socket_dir().display()
        );
        let status = as_server_user(Command::new(self.bin.join("pg_ctl")))?
            .arg("-D")
            .arg(self.dir.path().join("data"))
            .args(["-o", &opts, "-l"])
            .arg(self.dir.path().join("log"))
            .args(["-w", "-t", "60", "-m", "fast", action])
            .stdout(Stdio::null())
            .status()?;
        if !status.success() {
            bail!(
                "pg_ctl {action} failed: {}",
                std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
            );
        }
        Ok(())
    }
}

impl ThrowAwayServer for LocalCluster {
    fn options(&self) -> PgConnectOptions {
        PgConnectOptions::new()
            .socket(self.socket_dir())
            .username("labuser")
            .database("labdb")
    }

    fn client_env(&self) -> Vec<(String, String)> {
        let path = std::env::var("PATH").unwrap_or_default();
        vec![
            ("PGHOST".into(), self.socket_dir().display().to_string()),
            ("PGUSER".into(), "labuser".into()),
            ("PGDATABASE".into(), "labdb".into()),
            ("PATH".into(), format!("{}:{path}", self.bin.display())),
        ]
    }

    fn bindir(&self) -> PathBuf {
        self.bin.clone()
    }

    fn restart(&self) -> anyhow::Result<()> {
        self.pg_ctl("restart")
    }
}

impl Drop for LocalCluster {
    fn drop(&mut self) {
        if let Ok(mut cmd) = as_server_user(Command::new(self.bin.join("pg_ctl"))) {
            let _ = cmd
                .arg("-D")
                .arg(self.dir.path().join("data"))
                .args(["-m", "immediate", "-w", "-t", "20", "stop"])
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
    }
}
