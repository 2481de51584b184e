//! One learner's local PostgreSQL cluster on disk: its folder layout and the
//! `initdb` / `pg_ctl` calls that create, start and stop it.
//!
//! Layout of `<data-dir>/local/<learner>/` (mode 0700, owned by the server's
//! OS user): `data/` (PGDATA), `server.log`, the unix socket
//! `.s.PGSQL.5432` (the server listens nowhere else), and `.pglab-ready`
//! once `labdb` exists.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use tokio::process::Command;

use super::binaries::{PgBinaries, RunAs};
use crate::sandbox::SandboxError;

/// The fewest connections a sandbox starts with. A learner may lower
/// max_connections with ALTER SYSTEM (the connections lab); below this,
/// nothing would be left for pglab's own sessions beside the 3 slots reserved
/// for superusers (and below 4 the server would not start at all). The
/// Docker image's entrypoint applies the same floor.
const MIN_CONNECTIONS: u32 = 10;

/// The last `max_connections` that ALTER SYSTEM wrote to
/// postgresql.auto.conf (`max_connections = '5'`), if any.
fn altered_max_connections(auto_conf: &str) -> Option<u32> {
    auto_conf
        .lines()
        .filter_map(|line| {
            let (key, value) = line.split_once('=')?;
            (key.trim() == "max_connections")
                .then(|| value.trim().trim_matches('\'').parse().ok())?
        })
        .next_back()
}

/// Settings appended to every cluster's postgresql.conf: listen on the
/// socket only, and small memory so that dozens fit on one machine.
const SETTINGS: &str = "
# pglab sandbox settings
listen_addresses = ''
max_connections = 20
shared_buffers = 16MB
work_mem = 4MB
maintenance_work_mem = 16MB
effective_cache_size = 128MB
max_wal_size = 256MB
min_wal_size = 32MB
max_worker_processes = 4
max_parallel_workers = 2
max_parallel_workers_per_gather = 1
jit = off
# The server log (GET /api/sandbox/log) shows lock waits past
# deadlock_timeout (1 s) and deadlocks with both statements, by pid.
log_lock_waits = on
log_line_prefix = '%m [%p] '
";

/// Paths of one learner's cluster.
#[derive(Clone, Debug)]
pub struct Cluster {
    pub dir: PathBuf,
}

/// What `postmaster.pid` says about a live server.
#[derive(Clone, Copy, Debug)]
pub struct Running {
    /// The postmaster's process id.
    pub pid: u32,
    /// Unix time the postmaster started.
    pub started_at: i64,
    /// Whether it accepts connections (`ready` in postmaster.pid).
    pub ready: bool,
}

impl Cluster {
    pub fn new(dir: PathBuf) -> Self {
        Self { dir }
    }

    pub fn data(&self) -> PathBuf {
        self.dir.join("data")
    }

    pub fn log(&self) -> PathBuf {
        self.dir.join("server.log")
    }

    fn ready_marker(&self) -> PathBuf {
        self.dir.join(".pglab-ready")
    }

    /// Present from before `initdb` until the cluster is complete (settings
    /// written): found at a start, the first start was cut short.
    fn init_marker(&self) -> PathBuf {
        self.dir.join(".pglab-init-incomplete")
    }

    /// Whether `initdb` ran to the end (initdb writes PG_VERSION early on).
    pub fn initialised(&self) -> bool {
        self.data().join("PG_VERSION").is_file() && !self.init_marker().exists()
    }

    /// Whether `labdb` was created (the last step of a first start).
    pub fn has_labdb(&self) -> bool {
        self.ready_marker().is_file()
    }

    pub fn mark_labdb(&self) -> std::io::Result<()> {
        std::fs::write(self.ready_marker(), b"labdb created\n")
    }

    /// Reads `postmaster.pid`; `None` when no server process is alive.
    pub fn running(&self) -> Option<Running> {
        let text = std::fs::read_to_string(self.data().join("postmaster.pid")).ok()?;
        let lines: Vec<&str> = text.lines().collect();
        let pid: u32 = lines.first()?.trim().parse().ok()?;
        // A stale file after a crash may name a recycled pid: check that the
        // process is a postgres.
        // A killed server whose parent does not reap it stays a zombie.
        let proc = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
        let field = |name: &str| {
            proc.lines()
                .find_map(|l| l.strip_prefix(name))
                .map(|v| v.trim().to_string())
        };
        if !field("Name:")?.starts_with("postgres") || field("State:")?.starts_with('Z') {
            return None;
        }
        let started_at = lines
            .get(2)
            .and_then(|l| l.trim().parse().ok())
            .unwrap_or(0);
        let ready = lines.get(7).is_some_and(|l| l.trim() == "ready");
        Some(Running {
            pid,
            started_at,
            ready,
        })
    }

    /// After a server was killed, its `postmaster.pid` (and socket lock) remain; PostgreSQL
    /// then refuses to start while that pid exists, which a killed server
    /// whose parent has not reaped it (a zombie) still does. Remove the file
    /// once its server is surely dead, after giving its backends (which exit
    /// when they see the postmaster die) a moment to go.
    async fn remove_stale_pid_file(&self) {
        let pidfile = self.data().join("postmaster.pid");
        if self.running().is_some() || !pidfile.exists() {
            return;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
        if self.running().is_none() {
            tracing::info!(file = %pidfile.display(), "removing the lock files of a dead server");
            let _ = std::fs::remove_file(&pidfile);
            let _ = std::fs::remove_file(self.dir.join(".s.PGSQL.5432.lock"));
        }
    }

    /// The last lines of the server log, to explain a failure.
    pub fn log_tail(&self, lines: usize) -> String {
        let text = std::fs::read_to_string(self.log()).unwrap_or_default();
        let all: Vec<&str> = text.lines().collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }

    /// Creates the learner folder (0700, owned by the server user).
    pub fn create_dir(&self, run_as: Option<RunAs>) -> Result<(), SandboxError> {
        use std::os::unix::fs::PermissionsExt;
        let fail = |e: std::io::Error| {
            SandboxError::Failed(format!("cannot create {}: {e}", self.dir.display()))
        };
        std::fs::create_dir_all(&self.dir).map_err(fail)?;
        std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))
            .map_err(fail)?;
        if let Some(u) = run_as {
            std::os::unix::fs::chown(&self.dir, Some(u.uid), Some(u.gid)).map_err(fail)?;
        }
        Ok(())
    }

    /// `initdb` with `labuser` as superuser, its password, and scram
    /// authentication even on the socket (so that one learner's password
    /// never opens another's cluster).
    pub async fn initdb(
        &self,
        bins: &PgBinaries,
        run_as: Option<RunAs>,
        password: &str,
    ) -> Result<(), SandboxError> {
        use std::os::unix::fs::PermissionsExt;
        self.create_dir(run_as)?;
        let marker = self.init_marker();
        if marker.exists() && self.data().exists() {
            // A first start cut short (pglab killed during initdb): the
            // half-made cluster was never used; make it again.
            tracing::warn!(dir = %self.dir.display(), "a first start was cut short: initialising again");
            std::fs::remove_dir_all(self.data()).map_err(|e| {
                SandboxError::Failed(format!("cannot clear a half-made cluster: {e}"))
            })?;
        }
        std::fs::write(&marker, b"initdb in progress\n")
            .map_err(|e| SandboxError::Failed(format!("cannot write {}: {e}", marker.display())))?;
        let pwfile = self.dir.join(".pwfile");
        let write_pw = || -> std::io::Result<()> {
            std::fs::write(&pwfile, format!("{password}\n"))?;
            std::fs::set_permissions(&pwfile, std::fs::Permissions::from_mode(0o600))?;
            if let Some(u) = run_as {
                std::os::unix::fs::chown(&pwfile, Some(u.uid), Some(u.gid))?;
            }
            Ok(())
        };
        write_pw()
            .map_err(|e| SandboxError::Failed(format!("cannot write the password file: {e}")))?;
        let mut cmd = command(bins.tool("initdb"), run_as);
        cmd.arg("-D")
            .arg(self.data())
            .arg(format!("--pwfile={}", pwfile.display()))
            .args([
                "-U",
                crate::sandbox::LAB_USER,
                "--auth=scram-sha-256",
                "-E",
                "UTF8",
                "--locale=C.UTF-8",
                // The sync only protects against an OS crash during initdb,
                // and the next start would redo it anyway; it costs ~1 s.
                "--no-sync",
                "--no-instructions",
            ]);
        let result = run(cmd, "initdb", Duration::from_secs(120)).await;
        let _ = std::fs::remove_file(&pwfile);
        result?;
        let mut settings = SETTINGS.to_string();
        if bins.bindir.join("../lib/pg_stat_statements.so").is_file() {
            // The performance labs use it; it costs little memory.
            settings.push_str("shared_preload_libraries = 'pg_stat_statements'\n");
        }
        let conf = self.data().join("postgresql.conf");
        let mut text = std::fs::read_to_string(&conf)
            .map_err(|e| SandboxError::Failed(format!("cannot read {}: {e}", conf.display())))?;
        text.push_str(&settings);
        std::fs::write(&conf, text)
            .map_err(|e| SandboxError::Failed(format!("cannot write {}: {e}", conf.display())))?;
        std::fs::remove_file(&marker).map_err(|e| {
            SandboxError::Failed(format!("cannot remove {}: {e}", marker.display()))
        })?;
        Ok(())
    }

    /// Creates `labdb` in single-user mode before the first start: no
    /// server, no connection, and fsync off for this one command (like
    /// initdb's --no-sync, it only guards against an OS crash during the
    /// first start). About a second faster than CREATE DATABASE on a
    /// running server.
    pub async fn create_labdb_offline(
        &self,
        bins: &PgBinaries,
        run_as: Option<RunAs>,
    ) -> Result<(), SandboxError> {
        use tokio::io::AsyncWriteExt;
        let mut cmd = command(bins.tool("postgres"), run_as);
        cmd.arg("--single")
            .arg("-D")
            .arg(self.data())
            .args(["-c", "fsync=off", "-c", "jit=off", "postgres"])
            .stdin(Stdio::piped());
        let mut child = cmd
            .spawn()
            .map_err(|e| SandboxError::Unavailable(format!("cannot run postgres --single: {e}")))?;
        if let Some(mut stdin) = child.stdin.take() {
            let sql = format!(
                "CREATE DATABASE {} STRATEGY FILE_COPY;\n",
                crate::sandbox::LAB_DB
            );
            stdin
                .write_all(sql.as_bytes())
                .await
                .map_err(|e| SandboxError::Failed(format!("postgres --single: {e}")))?;
        }
        let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
            .await
            .map_err(|_| SandboxError::Failed("creating labdb did not finish within 60 s".into()))?
            .map_err(|e| SandboxError::Failed(format!("postgres --single: {e}")))?;
        if !out.status.success() {
            return Err(SandboxError::Failed(format!(
                "creating labdb failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            )));
        }
        Ok(())
    }

    /// `pg_ctl start -w`: returns once the server accepts connections.
    pub async fn start(
        &self,
        bins: &PgBinaries,
        run_as: Option<RunAs>,
    ) -> Result<(), SandboxError> {
        let dir = self.dir.to_string_lossy();
        if dir.contains(['\'', '"', '\\', '$', '`']) {
            return Err(SandboxError::Unavailable(format!(
                "the data dir path {dir} has quote characters, which pg_ctl cannot pass on"
            )));
        }
        self.remove_stale_pid_file().await;
        // pg_ctl passes -o through /bin/sh, hence the single quotes.
        let mut opts = format!("-c unix_socket_directories='{dir}'");
        let auto = std::fs::read_to_string(self.data().join("postgresql.auto.conf"));
        if let Some(n) = auto.ok().and_then(|text| altered_max_connections(&text))
            && n < MIN_CONNECTIONS
        {
            tracing::warn!(
                cluster = %dir,
                "max_connections = {n} (from ALTER SYSTEM) is below pglab's minimum; starting with {MIN_CONNECTIONS}"
            );
            opts.push_str(&format!(" -c max_connections={MIN_CONNECTIONS}"));
        }
        let mut cmd = command(bins.tool("pg_ctl"), run_as);
        cmd.arg("-D")
            .arg(self.data())
            .arg("-l")
            .arg(self.log())
            .args(["-o", &opts, "-w", "-t", "60", "start"]);
        run(cmd, "pg_ctl start", Duration::from_secs(75))
            .await
            .map_err(|e| SandboxError::Failed(format!("{e}\n{}", self.log_tail(8))))
    }

    /// `pg_ctl stop`: fast mode (rolls back sessions, checkpoints), then
    /// immediate if that does not finish in time. Stopped already is fine.
    pub async fn stop(
        &self,
        bins: &PgBinaries,
        run_as: Option<RunAs>,
        immediate: bool,
    ) -> Result<(), SandboxError> {
        if self.running().is_none() {
            return Ok(());
        }
        let modes: &[&str] = if immediate {
            &["immediate"]
        } else {
            &["fast", "immediate"]
        };
        let mut last = None;
        for mode in modes {
            let mut cmd = command(bins.tool("pg_ctl"), run_as);
            cmd.arg("-D")
                .arg(self.data())
                .args(["-m", mode, "-w", "-t", "30", "stop"]);
            match run(cmd, "pg_ctl stop", Duration::from_secs(40)).await {
                Ok(()) => return Ok(()),
                Err(e) if self.running().is_none() => {
                    tracing::debug!(%e, "pg_ctl stop failed but the server is gone");
                    return Ok(());
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| SandboxError::Failed("pg_ctl stop failed".into())))
    }

    /// Bytes on disk under the learner folder.
    pub fn size_bytes(&self) -> u64 {
        dir_size(&self.dir)
    }
}

fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}

/// A command that runs as the server user when pglab is root.
fn command(program: PathBuf, run_as: Option<RunAs>) -> Command {
    let mut cmd = Command::new(program);
    if let Some(u) = run_as {
        cmd.uid(u.uid).gid(u.gid);
    }
    // The server user may not be able to read pglab's working directory.
    cmd.current_dir("/")
        .env("LC_ALL", "C.UTF-8")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

/// Runs a PostgreSQL tool with a deadline; its stderr becomes the error.
async fn run(mut cmd: Command, what: &str, deadline: Duration) -> Result<(), SandboxError> {
    let child = cmd
        .spawn()
        .map_err(|e| SandboxError::Unavailable(format!("cannot run {what}: {e}")))?;
    let out = tokio::time::timeout(deadline, child.wait_with_output())
        .await
        .map_err(|_| SandboxError::Failed(format!("{what} did not finish within {deadline:?}")))?
        .map_err(|e| SandboxError::Failed(format!("{what}: {e}")))?;
    if out.status.success() {
        Ok(())
    } else {
        let stderr = String::from_utf8_lossy(&out.stderr);
        Err(SandboxError::Failed(format!(
            "{what} failed ({}): {}",
            out.status,
            stderr.trim()
        )))
    }
}

#[cfg(test)]
mod tests {
    use super::altered_max_connections;

    #[test]
    fn reads_the_last_max_connections_alter_system_wrote() {
        let auto = "# Do not edit this file manually!\nmax_connections = '5'\nwork_mem = '8MB'\nmax_connections = '12'\n";
        assert_eq!(altered_max_connections(auto), Some(12));
        assert_eq!(altered_max_connections("work_mem = '8MB'\n"), None);
        assert_eq!(altered_max_connections("max_connections = 'many'\n"), None);
    }
}
