//! Per-learner PostgreSQL servers ("sandboxes").
//!
//! The web layer holds one `Arc<dyn Provisioner>` and never knows which
//! backend runs behind it: Docker containers (the classroom default,
//! [`docker`]), services spread over a Docker Swarm ([`swarm`]) or local
//! child processes (the embedded default when no engine answers, [`local`]). This module owns the contract, the sandbox records in
//! the store ([`records`]), live progress of starts ([`progress`]), the
//! admission queue of a full classroom ([`admission`]) and starts that answer
//! "number N in line" at once ([`line`]), the background idle
//! reaper ([`reaper`]), the sandbox settings ([`settings`]) and the choice
//! of backend ([`select`]).

pub mod admission;
pub mod compose;
pub mod docker;
pub mod jq;
pub mod labfiles;
pub mod line;
pub mod line_keep;
pub mod local;
pub mod log;
pub mod progress;
pub mod reaper;
pub mod records;
pub mod refill;
pub mod settings;
pub mod swarm;
pub mod terminal;

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;
use sqlx::postgres::PgConnectOptions;

use crate::store::Store;

pub use admission::Admission;
pub use progress::{ProgressEvent, ProgressHub};
pub use settings::{SandboxConfig, SandboxDirs, SandboxKind, SandboxSettings};
pub use terminal::{Terminal, TerminalSize, Tool, ToolOutput, ToolRun};

/// A learner's id in the store (`users.id`); names a sandbox.
pub type LearnerId = i64;

/// The database user every sandbox has (a superuser of its own server).
pub const LAB_USER: &str = "labuser";
/// The database every sandbox has.
pub const LAB_DB: &str = "labdb";

/// Where a sandbox stands, as the learner sees it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum SandboxState {
    Absent,
    Starting,
    Running,
    Stopped,
    Failed,
}

impl SandboxState {
    /// The lowercase name stored in `sandboxes.state` and shown in the API.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Absent => "absent",
            Self::Starting => "starting",
            Self::Running => "running",
            Self::Stopped => "stopped",
            Self::Failed => "failed",
        }
    }
}

/// What `status` and `list` report about one sandbox.
#[derive(Clone, Debug, Serialize)]
pub struct SandboxStatus {
    pub learner: LearnerId,
    pub state: SandboxState,
    /// Why it failed, or what it is doing now.
    pub detail: Option<String>,
    /// "docker" or "local".
    pub backend: &'static str,
    /// Container name (Docker) or cluster folder (local); `None` when absent.
    pub name: Option<String>,
    /// PostgreSQL server version, e.g. "15.13".
    pub pg_version: Option<String>,
    /// Seconds since the server started, when running.
    pub uptime_s: Option<u64>,
    /// Size of the data directory (volume) on disk.
    pub size_bytes: Option<u64>,
    /// Unix time of the last `start` (any use by the console counts).
    pub last_used: Option<i64>,
    /// The swarm node that holds the sandbox ("HOSTNAME ADDRESS"); swarm
    /// backend only.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub node: Option<String>,
}

/// One machine of a backend that spans several (the swarm's nodes), as
/// `pglab sandbox nodes` shows it.
#[derive(Clone, Debug, Serialize)]
pub struct NodeReport {
    /// "HOSTNAME ADDRESS".
    pub node: String,
    pub ready: bool,
    /// Not drained or paused.
    pub active: bool,
    /// Running sandboxes it holds at most.
    pub capacity: usize,
    /// This server's learners' sandboxes placed on it, and asked to run.
    pub placed: usize,
    pub running: usize,
    /// The address pglab reaches its engine at (`pglab.engine`, or pglab's
    /// own connection for the manager's node), if any.
    pub engine: Option<String>,
    /// "Docker 20.10.24 (API 1.41)" when pglab reached that engine, else why
    /// not.
    pub engine_check: Result<String, String>,
}

impl SandboxStatus {
    /// A status with only the state and detail known.
    pub fn bare(
        learner: LearnerId,
        backend: &'static str,
        state: SandboxState,
        detail: Option<String>,
    ) -> Self {
        Self {
            learner,
            state,
            detail,
            backend,
            name: None,
            pg_version: None,
            uptime_s: None,
            size_bytes: None,
            last_used: None,
            node: None,
        }
    }
}

/// Whether the backend can run sandboxes at all, and why.
#[derive(Clone, Debug, Serialize)]
pub struct BackendHealth {
    pub backend: &'static str,
    pub usable: bool,
    pub reason: String,
}

/// A sandbox operation that failed, worded for the learner.
#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    /// The backend cannot run sandboxes now (engine down, binaries missing,
    /// image missing): nothing the learner did; an operator must act.
    #[error("the sandbox backend is unavailable: {0}")]
    Unavailable(String),
    /// This learner's sandbox failed (never healthy, initdb failed, ...): a
    /// restart or reset may help.
    #[error("{0}")]
    Failed(String),
    /// The learner left the admission queue (cancel, sign-out) before a
    /// place freed: nothing failed, nothing started.
    #[error("{0}")]
    Left(String),
}

impl SandboxError {
    fn store(err: impl std::fmt::Display) -> Self {
        Self::Failed(format!(
            "the sandbox records could not be read or written: {err}"
        ))
    }
}

/// The contract every backend fulfils. `start` is idempotent and re-attaches
/// to whatever already exists for the learner; every operation acts on one
/// learner's sandbox only and is serialised per learner by the backend.
#[async_trait]
pub trait Provisioner: Send + Sync + 'static {
    /// "docker" or "local".
    fn backend_name(&self) -> &'static str;
    /// Whether the backend can run sandboxes now.
    async fn health(&self) -> BackendHealth;
    /// Starts (or re-attaches to) the learner's sandbox and says how to reach
    /// it as `labuser` on `labdb`. Records the use (last used).
    async fn start(&self, learner: LearnerId) -> Result<PgConnectOptions, SandboxError>;
    /// The learner's sandbox state.
    async fn status(&self, learner: LearnerId) -> Result<SandboxStatus, SandboxError>;
    // The operations below have defaults so that a stand-in provisioner
    // (tests of other areas) only needs the four above; both real backends
    // implement every one.

    /// Stops the server, keeping its data. Stopping an absent or stopped
    /// sandbox succeeds.
    async fn stop(&self, _learner: LearnerId) -> Result<(), SandboxError> {
        Err(self.unsupported("stop"))
    }
    /// Stops then starts the server, keeping its data.
    async fn restart(&self, _learner: LearnerId) -> Result<PgConnectOptions, SandboxError> {
        Err(self.unsupported("restart"))
    }
    /// Throws the learner's data away and starts a fresh server.
    async fn reset(&self, _learner: LearnerId) -> Result<PgConnectOptions, SandboxError> {
        Err(self.unsupported("reset"))
    }
    /// Removes the server and its data (container and volume, or cluster dir).
    async fn destroy(&self, _learner: LearnerId) -> Result<(), SandboxError> {
        Err(self.unsupported("destroy"))
    }
    /// Whether [`Provisioner::compose_up`] runs learners' compose files
    /// (container backends: Docker and the swarm).
    fn runs_compose(&self) -> bool {
        false
    }
    /// `docker compose up -d`: re-creates the learner's server with the
    /// settings in force (the compose plan a caller put in the store with
    /// [`compose::ComposeFiles::set_applied`], or pglab's own), on its named
    /// volume or none; progress goes to [`Provisioner::progress`].
    async fn compose_up(&self, _learner: LearnerId) -> Result<PgConnectOptions, SandboxError> {
        Err(self.unsupported(
            "run a compose file (it runs clusters, not containers: start pglab with --sandbox docker or --sandbox swarm)",
        ))
    }
    /// `docker compose down [--volumes]`: removes the learner's container
    /// (swarm: service), and with `volumes` the named volume of the
    /// settings in force. The record stays, stopped; the next start creates
    /// it again.
    async fn compose_down(&self, _learner: LearnerId, _volumes: bool) -> Result<(), SandboxError> {
        Err(self.unsupported(
            "run a compose file (it runs clusters, not containers: start pglab with --sandbox docker or --sandbox swarm)",
        ))
    }
    /// Starts (or re-attaches to) the learner's throw-away server of the
    /// 14.D.4 "no volume" demonstration: the same limits and isolation as
    /// the sandbox, but no volume, so its data dies with it. Independent of
    /// the sandbox's own state; [`Provisioner::destroy`] removes it too.
    async fn ephemeral_start(&self, _learner: LearnerId) -> Result<PgConnectOptions, SandboxError> {
        Err(self.unsupported("run a throw-away server"))
    }
    /// Removes the learner's throw-away server and its data (absent is fine).
    async fn ephemeral_remove(&self, _learner: LearnerId) -> Result<(), SandboxError> {
        Ok(())
    }
    /// Every sandbox this server owns.
    async fn list(&self) -> Result<Vec<SandboxStatus>, SandboxError> {
        Ok(Vec::new())
    }
    /// Every learner's sandbox state in one look at the backend, for the
    /// instructor's matrix: what [`Provisioner::list`] says of each, without
    /// its sizes, versions and log lines (those cost calls per learner: 200
    /// of them made the matrix take 0.9 s under a class's load).
    async fn states(&self) -> Result<Vec<(LearnerId, SandboxState)>, SandboxError> {
        Ok(self
            .list()
            .await?
            .into_iter()
            .map(|s| (s.learner, s.state))
            .collect())
    }
    /// How many learners' sandboxes run right now, as the backend sees them
    /// (the engine's container list, the clusters' pid files): one cheap
    /// call, read at every scrape of `GET /metrics`. Pooled spares do not
    /// count.
    async fn running_count(&self) -> Result<usize, SandboxError> {
        Ok(0)
    }
    /// Live progress of starts, per learner (for SSE).
    fn progress(&self) -> &ProgressHub {
        static NONE: std::sync::LazyLock<ProgressHub> =
            std::sync::LazyLock::new(ProgressHub::default);
        &NONE
    }
    /// The admission queue of starts waiting for a place (a backend without
    /// one answers an empty, disabled line).
    fn admission(&self) -> &Admission {
        static NONE: std::sync::LazyLock<Admission> = std::sync::LazyLock::new(Admission::disabled);
        &NONE
    }
    /// Opens a terminal in the learner's sandbox (starting it if needed):
    /// a shell in the container (Docker), a shell beside the cluster (local),
    /// with the lab files and pglab's `docker` command.
    async fn open_terminal(
        &self,
        _learner: LearnerId,
        _size: TerminalSize,
    ) -> Result<Terminal, SandboxError> {
        Err(self.unsupported("open a terminal"))
    }
    /// Runs one of the allowed PostgreSQL tools against the learner's
    /// sandbox (starting it if needed), as `labuser` on its socket.
    async fn run_tool(
        &self,
        _learner: LearnerId,
        _run: ToolRun,
    ) -> Result<ToolOutput, SandboxError> {
        Err(self.unsupported("run PostgreSQL tools"))
    }
    /// The learner's PostgreSQL server log, following new lines: from just
    /// after `after` (a cursor of an earlier [`log::RawLogLine`]) when given
    /// and still there, else its last `tail` lines. Docker: the container's
    /// output (PostgreSQL logs to stderr), ending when the container stops;
    /// local: the cluster's `server.log`, polled.
    async fn log_follow(
        &self,
        _learner: LearnerId,
        _after: Option<String>,
        _tail: usize,
    ) -> Result<log::LogStream, SandboxError> {
        Err(self.unsupported("show the server log"))
    }
    /// What `docker inspect` says of the learner's container, as the
    /// engine's JSON (an array of one object), secrets redacted; the local
    /// backend answers the equivalent facts of its cluster in that shape.
    async fn inspect(&self, _learner: LearnerId) -> Result<serde_json::Value, SandboxError> {
        Err(self.unsupported("inspect the sandbox"))
    }
    /// The machines the backend spreads sandboxes over, each with its
    /// engine checked (the swarm backend).
    async fn nodes(&self) -> Result<Vec<NodeReport>, SandboxError> {
        Err(self.unsupported("list nodes: it runs on one machine"))
    }
    /// The error of an operation a backend does not offer.
    fn unsupported(&self, what: &str) -> SandboxError {
        SandboxError::Unavailable(format!("the {} backend cannot {what}", self.backend_name()))
    }
    /// Starts the backend's own background work (the Docker warm pool);
    /// `select` calls it once. CLI commands do not.
    fn start_background(self: Arc<Self>) {}
}

/// Picks the backend the settings ask for and starts its background work
/// (idle reaper, warm pool). `auto` takes Docker when an engine answers and
/// has (or can get) the image, else local processes, and the backend's
/// `health().reason` says why.
pub async fn select(
    config: &SandboxConfig,
    dirs: &SandboxDirs,
    store: &Store,
) -> anyhow::Result<Arc<dyn Provisioner>> {
    let provisioner = open(config, dirs, store).await?;
    provisioner.clone().start_background();
    reaper::spawn(
        provisioner.clone(),
        store.clone(),
        SandboxSettings::from_config(config),
    );
    Ok(provisioner)
}

/// Like [`select`] without background tasks: for CLI commands.
pub async fn open(
    config: &SandboxConfig,
    dirs: &SandboxDirs,
    store: &Store,
) -> anyhow::Result<Arc<dyn Provisioner>> {
    let instance = store.instance_id().await?;
    match config.kind {
        SandboxKind::Docker => docker::connect(config, dirs, store, instance)
            .await
            .map_err(|e| anyhow::anyhow!("--sandbox docker: {e}")),
        SandboxKind::Local => Ok(Arc::new(local::LocalProvisioner::new(config, dirs, store)?)),
        SandboxKind::Swarm => swarm::connect(config, dirs, store, instance)
            .await
            .map_err(|e| anyhow::anyhow!("--sandbox swarm: {e}")),
        SandboxKind::Auto => match docker::connect(config, dirs, store, instance).await {
            Ok(docker) => Ok(docker),
            Err(why) => {
                let mut local = local::LocalProvisioner::new(config, dirs, store)?;
                local.set_choice_reason(why.to_string());
                Ok(Arc::new(local))
            }
        },
    }
}

/// One async mutex per learner, so that start, stop and reset of one
/// learner never interleave while other learners proceed in parallel.
#[derive(Default)]
pub struct LearnerLocks {
    map: std::sync::Mutex<HashMap<LearnerId, Arc<tokio::sync::Mutex<()>>>>,
}

impl LearnerLocks {
    /// Waits for the learner's lock.
    pub async fn lock(&self, learner: LearnerId) -> tokio::sync::OwnedMutexGuard<()> {
        let mutex = {
            let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
            map.entry(learner).or_default().clone()
        };
        mutex.lock_owned().await
    }
}

/// A random password for `labuser` of a new sandbox (128 bits, hex).
pub fn new_password() -> String {
    format!("{:032x}", rand::random::<u128>())
}

/// Now, in unix seconds.
pub fn unix_now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
