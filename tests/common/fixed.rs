//! A provisioner whose every learner gets the same test server: for tests
//! and benchmarks that drive `console::Consoles` in-process against a
//! `TempPg`.

use async_trait::async_trait;
use pglab::sandbox::{
    BackendHealth, LearnerId, ProgressHub, Provisioner, SandboxError, SandboxState, SandboxStatus,
};
use sqlx::postgres::PgConnectOptions;

/// Every `start` answers the same connection options.
pub struct Fixed(pub PgConnectOptions, pub ProgressHub);

impl Fixed {
    pub fn new(options: PgConnectOptions) -> Self {
        Self(options, ProgressHub::default())
    }
}

#[async_trait]
impl Provisioner for Fixed {
    fn backend_name(&self) -> &'static str {
        "test"
    }
    async fn health(&self) -> BackendHealth {
        BackendHealth {
            backend: "test",
            usable: true,
            reason: String::new(),
        }
    }
    async fn start(&self, _learner: LearnerId) -> Result<PgConnectOptions, SandboxError> {
        Ok(self.0.clone())
    }
    async fn status(&self, learner: LearnerId) -> Result<SandboxStatus, SandboxError> {
        Ok(SandboxStatus::bare(
            learner,
            "test",
            SandboxState::Running,
            None,
        ))
    }
    async fn stop(&self, _learner: LearnerId) -> Result<(), SandboxError> {
        Ok(())
    }
    async fn restart(&self, learner: LearnerId) -> Result<PgConnectOptions, SandboxError> {
        self.start(learner).await
    }
    async fn reset(&self, learner: LearnerId) -> Result<PgConnectOptions, SandboxError> {
        self.start(learner).await
    }
    async fn destroy(&self, _learner: LearnerId) -> Result<(), SandboxError> {
        Ok(())
    }
    async fn list(&self) -> Result<Vec<SandboxStatus>, SandboxError> {
        Ok(Vec::new())
    }
    fn progress(&self) -> &ProgressHub {
        &self.1
    }
}
