//! The local backend: one PostgreSQL cluster per learner, run from the
//! PostgreSQL binaries on this machine as a child process of pglab.
//!
//! Each cluster lives in `<data-dir>/local/<learner>/` and listens only on a
//! unix socket in that folder (`listen_addresses = ''`). As root, clusters
//! run as the `postgres` OS user. Servers outlive pglab (pg_ctl detaches
//! them) and are re-attached through `postmaster.pid`.
//!
//! Learners are PostgreSQL superusers of their cluster, and a superuser can
//! run programs as the cluster's OS user (`COPY ... FROM PROGRAM`): this
//! backend is meant for one trusted user or a trusted group. A classroom
//! should use Docker.

mod binaries;
mod cluster;
mod ephemeral;
mod inspect;
mod logs;
mod terminal;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

pub use binaries::PgBinaries;
use binaries::RunAs;
use cluster::Cluster;

use super::progress::{Reporter, finish_start};
use super::records::{Records, SandboxRecord};
use super::{
    BackendHealth, LAB_DB, LAB_USER, LearnerId, LearnerLocks, ProgressHub, Provisioner,
    SandboxConfig, SandboxDirs, SandboxError, SandboxState, SandboxStatus, new_password, unix_now,
};
use crate::store::Store;

const BACKEND: &str = "local";

/// Runs learners' PostgreSQL servers as local processes.
pub struct LocalProvisioner {
    root: PathBuf,
    /// The course's folder: its lab files are mirrored in each terminal's home.
    content_dir: PathBuf,
    bins: PgBinaries,
    run_as: Option<RunAs>,
    records: Records,
    locks: LearnerLocks,
    hub: ProgressHub,
    /// Why `--sandbox auto` chose this backend (no Docker engine, ...).
    choice_reason: Option<String>,
    /// Passwords of the 14.D.4 throw-away clusters, and their locks.
    ephemeral: ephemeral::Throwaways,
    ephemeral_locks: LearnerLocks,
}

impl LocalProvisioner {
    /// Finds the binaries and prepares `<data-dir>/local`.
    pub fn new(config: &SandboxConfig, dirs: &SandboxDirs, store: &Store) -> anyhow::Result<Self> {
        let bins = PgBinaries::find(config.pg_bindir.as_deref()).map_err(anyhow::Error::msg)?;
        let run_as = binaries::server_user().map_err(anyhow::Error::msg)?;
        let root = std::path::absolute(dirs.data_dir.join("local"))?;
        std::fs::create_dir_all(&root)?;
        if let Some(u) = run_as {
            make_traversable(&root, u)?;
        }
        tracing::warn!(
            "local sandbox backend: learners are PostgreSQL superusers of clusters run by {} \
             and can run programs as that OS user; use it for one trusted user or a trusted \
             group, and Docker for a classroom",
            if run_as.is_some() {
                "the postgres OS user"
            } else {
                "pglab's OS user"
            }
        );
        Ok(Self {
            root,
            content_dir: dirs.content_dir.clone(),
            bins,
            run_as,
            records: Records::new(store),
            locks: LearnerLocks::default(),
            hub: ProgressHub::default(),
            choice_reason: None,
            ephemeral: Default::default(),
            ephemeral_locks: LearnerLocks::default(),
        })
    }

    /// Records why `auto` fell back to this backend, for `health()`.
    pub fn set_choice_reason(&mut self, why: String) {
        self.choice_reason = Some(why);
    }

    fn cluster(&self, learner: LearnerId) -> Cluster {
        Cluster::new(self.root.join(learner.to_string()))
    }

    fn options(&self, cluster: &Cluster, password: &str) -> PgConnectOptions {
        PgConnectOptions::new()
            .socket(&cluster.dir)
            .username(LAB_USER)
            .password(password)
            .database(LAB_DB)
    }

    /// The learner's record, made (with a fresh password) on first use.
    async fn record(&self, learner: LearnerId) -> Result<SandboxRecord, SandboxError> {
        if let Some(r) = self.records.get(learner).await? {
            return Ok(r);
        }
        let now = unix_now();
        let r = SandboxRecord {
            learner_id: learner,
            backend: BACKEND.into(),
            container: self.cluster(learner).dir.display().to_string(),
            volume: String::new(),
            password: new_password(),
            state: SandboxState::Absent.as_str().into(),
            created_at: now,
            last_used: now,
        };
        self.records.put(&r).await?;
        Ok(r)
    }

    /// Start with the learner's lock held.
    async fn start_locked(
        &self,
        learner: LearnerId,
        rep: &Reporter<'_>,
    ) -> Result<PgConnectOptions, SandboxError> {
        let record = self.record(learner).await?;
        let cluster = self.cluster(learner);
        let options = self.options(&cluster, &record.password);
        if cluster.running().is_some_and(|r| r.ready) && cluster.has_labdb() {
            self.records.touch(learner).await?;
            return Ok(options);
        }
        if !cluster.initialised() {
            rep.step("initdb", "creating a new PostgreSQL cluster (initdb)");
            self.records
                .set_state(learner, SandboxState::Starting)
                .await?;
            cluster
                .initdb(&self.bins, self.run_as, &record.password)
                .await?;
        }
        if !cluster.has_labdb() && cluster.running().is_none() {
            rep.step("creating database", "creating database labdb");
            cluster
                .create_labdb_offline(&self.bins, self.run_as)
                .await?;
            cluster
                .mark_labdb()
                .map_err(|e| SandboxError::Failed(format!("cannot write the ready marker: {e}")))?;
        }
        if cluster.running().is_none() {
            rep.step("starting", "starting PostgreSQL");
            self.records
                .set_state(learner, SandboxState::Starting)
                .await?;
            cluster.start(&self.bins, self.run_as).await?;
        }
        if !cluster.has_labdb() {
            // A server already running without labdb (pglab stopped during
            // a first start): create it through a connection.
            rep.step("creating database", "creating database labdb");
            create_labdb(options.clone().database("postgres")).await?;
            cluster
                .mark_labdb()
                .map_err(|e| SandboxError::Failed(format!("cannot write the ready marker: {e}")))?;
        }
        self.records.touch(learner).await?;
        Ok(options)
    }

    async fn stop_cluster(&self, learner: LearnerId, immediate: bool) -> Result<(), SandboxError> {
        self.cluster(learner)
            .stop(&self.bins, self.run_as, immediate)
            .await?;
        if self.records.get(learner).await?.is_some() {
            self.records
                .set_state(learner, SandboxState::Stopped)
                .await?;
        }
        Ok(())
    }

    async fn remove_cluster(&self, learner: LearnerId) -> Result<(), SandboxError> {
        self.stop_cluster(learner, true).await?;
        let dir = self.cluster(learner).dir;
        match tokio::fs::remove_dir_all(&dir).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(SandboxError::Failed(format!(
                "cannot remove {}: {e}",
                dir.display()
            ))),
        }
    }

    fn describe(&self, learner: LearnerId, record: Option<&SandboxRecord>) -> SandboxStatus {
        let cluster = self.cluster(learner);
        let mut status = SandboxStatus::bare(learner, BACKEND, SandboxState::Absent, None);
        if record.is_none() && !cluster.initialised() {
            return status;
        }
        status.name = Some(cluster.dir.display().to_string());
        status.pg_version = Some(self.bins.version.clone());
        status.last_used = record.map(|r| r.last_used);
        status.size_bytes = Some(cluster.size_bytes());
        match (cluster.running(), record.map(|r| r.state.as_str())) {
            (Some(run), _) if run.ready => {
                status.state = SandboxState::Running;
                status.uptime_s = Some(unix_now().saturating_sub(run.started_at).max(0) as u64);
            }
            (Some(_), _) | (None, Some("starting")) => status.state = SandboxState::Starting,
            (None, Some("failed")) => {
                status.state = SandboxState::Failed;
                status.detail = Some(format!(
                    "the server failed; restart or reset it. Last log lines:\n{}",
                    cluster.log_tail(5)
                ));
            }
            (None, _) if cluster.initialised() => status.state = SandboxState::Stopped,
            (None, _) => status.state = SandboxState::Absent,
        }
        status
    }
}

#[async_trait]
impl Provisioner for LocalProvisioner {
    fn backend_name(&self) -> &'static str {
        BACKEND
    }

    async fn health(&self) -> BackendHealth {
        let what = format!(
            "local PostgreSQL {} processes from {} (for one trusted user or group)",
            self.bins.version,
            self.bins.bindir.display()
        );
        BackendHealth {
            backend: BACKEND,
            usable: true,
            reason: match &self.choice_reason {
                Some(why) => format!("{why}; using {what}"),
                None => what,
            },
        }
    }

    async fn start(&self, learner: LearnerId) -> Result<PgConnectOptions, SandboxError> {
        let _guard = self.locks.lock(learner).await;
        let rep = self.hub.reporter(learner);
        let result = self.start_locked(learner, &rep).await;
        finish_start(&self.hub, &self.records, learner, &rep, result).await
    }

    async fn status(&self, learner: LearnerId) -> Result<SandboxStatus, SandboxError> {
        let record = self.records.get(learner).await?;
        Ok(self.describe(learner, record.as_ref()))
    }

    async fn stop(&self, learner: LearnerId) -> Result<(), SandboxError> {
        let _guard = self.locks.lock(learner).await;
        self.stop_cluster(learner, false).await
    }

    async fn restart(&self, learner: LearnerId) -> Result<PgConnectOptions, SandboxError> {
        let _guard = self.locks.lock(learner).await;
        let rep = self.hub.reporter(learner);
        rep.step("stopping", "stopping PostgreSQL");
        let result = match self.stop_cluster(learner, false).await {
            Ok(()) => self.start_locked(learner, &rep).await,
            Err(e) => Err(e),
        };
        finish_start(&self.hub, &self.records, learner, &rep, result).await
    }

    async fn reset(&self, learner: LearnerId) -> Result<PgConnectOptions, SandboxError> {
        let _guard = self.locks.lock(learner).await;
        let rep = self.hub.reporter(learner);
        rep.step("removing", "throwing the old cluster away");
        let result = match self.remove_cluster(learner).await {
            Ok(()) => self.start_locked(learner, &rep).await,
            Err(e) => Err(e),
        };
        finish_start(&self.hub, &self.records, learner, &rep, result).await
    }

    async fn destroy(&self, learner: LearnerId) -> Result<(), SandboxError> {
        let _guard = self.locks.lock(learner).await;
        self.remove_ephemeral(learner).await?;
        self.remove_cluster(learner).await?;
        self.records.delete(learner).await
    }

    async fn ephemeral_start(&self, learner: LearnerId) -> Result<PgConnectOptions, SandboxError> {
        self.start_ephemeral(learner).await
    }

    async fn ephemeral_remove(&self, learner: LearnerId) -> Result<(), SandboxError> {
        self.remove_ephemeral(learner).await
    }

    async fn list(&self) -> Result<Vec<SandboxStatus>, SandboxError> {
        let records = self.records.all(BACKEND).await?;
        let mut out: Vec<SandboxStatus> = records
            .iter()
            .map(|r| self.describe(r.learner_id, Some(r)))
            .collect();
        // 14.D.4 throw-away clusters, listed beside the learners' sandboxes.
        for (learner, dir) in self.ephemeral_learners() {
            let cluster = Cluster::new(dir.clone().into());
            let state = match cluster.running() {
                Some(_) => SandboxState::Running,
                None => SandboxState::Stopped,
            };
            let mut s = SandboxStatus::bare(
                learner,
                BACKEND,
                state,
                Some("ephemeral (14.D.4 demo)".into()),
            );
            s.name = Some(dir);
            out.push(s);
        }
        Ok(out)
    }

    async fn running_count(&self) -> Result<usize, SandboxError> {
        let records = self.records.all(BACKEND).await?;
        Ok(records
            .iter()
            .filter(|r| self.cluster(r.learner_id).running().is_some())
            .count())
    }

    fn progress(&self) -> &ProgressHub {
        &self.hub
    }

    fn start_background(self: Arc<Self>) {
        tokio::spawn(async move { self.sweep_ephemerals().await });
    }

    async fn open_terminal(
        &self,
        learner: LearnerId,
        size: super::TerminalSize,
    ) -> Result<super::Terminal, SandboxError> {
        self.shell_terminal(learner, size).await
    }

    async fn run_tool(
        &self,
        learner: LearnerId,
        run: super::ToolRun,
    ) -> Result<super::ToolOutput, SandboxError> {
        self.local_tool(learner, run).await
    }

    async fn log_follow(
        &self,
        learner: LearnerId,
        after: Option<String>,
        tail: usize,
    ) -> Result<super::log::LogStream, SandboxError> {
        self.follow_log(learner, after, tail).await
    }

    async fn inspect(&self, learner: LearnerId) -> Result<serde_json::Value, SandboxError> {
        self.inspect_cluster(learner).await
    }
}

/// Creates `labdb` on a fresh cluster (connected to `postgres`).
async fn create_labdb(options: PgConnectOptions) -> Result<(), SandboxError> {
    let fail = |e: sqlx::Error| SandboxError::Failed(format!("creating database labdb: {e}"));
    let options = options.log_statements(tracing::log::LevelFilter::Debug);
    let mut conn = tokio::time::timeout(Duration::from_secs(20), options.connect())
        .await
        .map_err(|_| SandboxError::Failed("connecting to the new cluster timed out".into()))?
        .map_err(fail)?;
    let exists: bool =
        sqlx::query_scalar("select exists (select from pg_database where datname = 'labdb')")
            .fetch_one(&mut conn)
            .await
            .map_err(fail)?;
    if !exists {
        sqlx::query("create database labdb")
            .execute(&mut conn)
            .await
            .map_err(fail)?;
    }
    let _ = conn.close().await;
    Ok(())
}

/// As root, clusters run as `postgres`, which must be able to reach
/// `<data-dir>/local`. Temporary and home folders are often 0700: give
/// "others" the search (x) bit only, which lets a process pass through a
/// folder without listing it, and say so in the log.
fn make_traversable(root: &Path, run_as: RunAs) -> anyhow::Result<()> {
    use std::os::unix::fs::{MetadataExt, PermissionsExt};
    let mut ancestors: Vec<&Path> = root.ancestors().collect();
    ancestors.reverse();
    for dir in ancestors {
        let meta = std::fs::metadata(dir)?;
        let mode = meta.mode();
        let reachable = mode & 0o001 != 0
            || (meta.uid() == run_as.uid && mode & 0o100 != 0)
            || (meta.gid() == run_as.gid && mode & 0o010 != 0);
        if !reachable {
            tracing::info!(dir = %dir.display(), "adding o+x so that the postgres OS user can reach the local sandboxes");
            std::fs::set_permissions(
                dir,
                std::fs::Permissions::from_mode((mode | 0o001) & 0o7777),
            )?;
        }
    }
    Ok(())
}
