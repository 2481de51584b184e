//! Per-learner PostgreSQL servers ("sandboxes").
//!
//! The web layer holds one `Arc<dyn Provisioner>` and never knows which
//! backend runs behind it: Docker containers (the classroom default) or local
//! child processes (the embedded default when no engine answers).

use std::sync::Arc;

use async_trait::async_trait;
use serde::Serialize;
use sqlx::postgres::PgConnectOptions;

use crate::config::ServeConfig;
use crate::store::Store;

/// A learner's id in the store (`users.id`); names a sandbox.
pub type LearnerId = i64;

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

/// What `status` and `list` report about one sandbox.
#[derive(Clone, Debug, Serialize)]
pub struct SandboxStatus {
    pub learner: LearnerId,
    pub state: SandboxState,
    /// Why it failed, or what it is doing now.
    pub detail: Option<String>,
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
    #[error("the sandbox backend is unavailable: {0}")]
    Unavailable(String),
    #[error("{0}")]
    Failed(String),
}

/// The contract every backend fulfils. `start` is idempotent and re-attaches
/// to whatever already exists for the learner.
#[async_trait]
pub trait Provisioner: Send + Sync + 'static {
    /// "docker" or "local".
    fn backend_name(&self) -> &'static str;
    /// Whether the backend can run sandboxes now.
    async fn health(&self) -> BackendHealth;
    /// Starts (or re-attaches to) the learner's sandbox and says how to reach it.
    async fn start(&self, learner: LearnerId) -> Result<PgConnectOptions, SandboxError>;
    /// The learner's sandbox state.
    async fn status(&self, learner: LearnerId) -> Result<SandboxStatus, SandboxError>;
}

/// Picks the backend the settings ask for.
pub async fn select(config: &ServeConfig, _store: &Store) -> anyhow::Result<Arc<dyn Provisioner>> {
    Ok(Arc::new(NotYetAvailable {
        reason: format!(
            "sandbox backend {:?} is not built into this version yet",
            config.sandbox
        ),
    }))
}

/// Stands in until the Docker and local backends land.
struct NotYetAvailable {
    reason: String,
}

#[async_trait]
impl Provisioner for NotYetAvailable {
    fn backend_name(&self) -> &'static str {
        "none"
    }
    async fn health(&self) -> BackendHealth {
        BackendHealth {
            backend: "none",
            usable: false,
            reason: self.reason.clone(),
        }
    }
    async fn start(&self, _learner: LearnerId) -> Result<PgConnectOptions, SandboxError> {
        Err(SandboxError::Unavailable(self.reason.clone()))
    }
    async fn status(&self, learner: LearnerId) -> Result<SandboxStatus, SandboxError> {
        Ok(SandboxStatus {
            learner,
            state: SandboxState::Absent,
            detail: Some(self.reason.clone()),
        })
    }
}
