//! The local backend's throw-away server for the 14.D.4 "no volume"
//! demonstration: a cluster in `<data-dir>/local/ephemeral-<learner>/`,
//! deleted (folder and all) when it is re-created or removed. Its password
//! lives only in memory: after a pglab restart the next start throws the old
//! folder away and makes a new cluster, which is what "ephemeral" means.

use std::collections::HashMap;

use sqlx::postgres::PgConnectOptions;

use super::LocalProvisioner;
use super::cluster::Cluster;
use crate::sandbox::{LearnerId, SandboxError, new_password};

/// Passwords of the throw-away clusters this process made.
#[derive(Default)]
pub struct Throwaways {
    passwords: std::sync::Mutex<HashMap<LearnerId, String>>,
}

impl Throwaways {
    fn get(&self, learner: LearnerId) -> Option<String> {
        self.lock().get(&learner).cloned()
    }

    fn set(&self, learner: LearnerId, password: Option<String>) {
        match password {
            Some(p) => self.lock().insert(learner, p),
            None => self.lock().remove(&learner),
        };
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<LearnerId, String>> {
        self.passwords.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl LocalProvisioner {
    fn ephemeral_cluster(&self, learner: LearnerId) -> Cluster {
        Cluster::new(self.root.join(format!("ephemeral-{learner}")))
    }

    /// Starts (making it first when needed) the learner's throw-away cluster.
    pub(super) async fn start_ephemeral(
        &self,
        learner: LearnerId,
    ) -> Result<PgConnectOptions, SandboxError> {
        let _guard = self.ephemeral_locks.lock(learner).await;
        let cluster = self.ephemeral_cluster(learner);
        let password = match self.ephemeral.get(learner) {
            Some(p) if cluster.initialised() && cluster.has_labdb() => p,
            _ => {
                // Unknown password (made by an earlier pglab) or half made.
                self.remove_ephemeral_locked(learner).await?;
                let password = new_password();
                cluster.initdb(&self.bins, self.run_as, &password).await?;
                cluster
                    .create_labdb_offline(&self.bins, self.run_as)
                    .await?;
                cluster.mark_labdb().map_err(|e| {
                    SandboxError::Failed(format!("cannot write the ready marker: {e}"))
                })?;
                self.ephemeral.set(learner, Some(password.clone()));
                password
            }
        };
        if !cluster.running().is_some_and(|r| r.ready) {
            cluster.start(&self.bins, self.run_as).await?;
        }
        Ok(self.options(&cluster, &password))
    }

    /// Stops the learner's throw-away cluster at once and deletes its folder.
    pub(super) async fn remove_ephemeral(&self, learner: LearnerId) -> Result<(), SandboxError> {
        let _guard = self.ephemeral_locks.lock(learner).await;
        self.remove_ephemeral_locked(learner).await
    }

    async fn remove_ephemeral_locked(&self, learner: LearnerId) -> Result<(), SandboxError> {
        let cluster = self.ephemeral_cluster(learner);
        self.ephemeral.set(learner, None);
        cluster.stop(&self.bins, self.run_as, true).await?;
        match tokio::fs::remove_dir_all(&cluster.dir).await {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(SandboxError::Failed(format!(
                "cannot remove {}: {e}",
                cluster.dir.display()
            ))),
        }
    }

    /// The learners with a throw-away cluster folder (for `list`).
    pub(super) fn ephemeral_learners(&self) -> Vec<(LearnerId, String)> {
        let Ok(entries) = std::fs::read_dir(&self.root) else {
            return Vec::new();
        };
        entries
            .flatten()
            .filter_map(|e| {
                let name = e.file_name().to_string_lossy().into_owned();
                let id = name.strip_prefix("ephemeral-")?.parse().ok()?;
                Some((id, e.path().display().to_string()))
            })
            .collect()
    }

    /// Removes the throw-away clusters an earlier pglab process left (their
    /// passwords died with it).
    pub(super) async fn sweep_ephemerals(&self) {
        for (learner, _) in self.ephemeral_learners() {
            if let Err(e) = self.remove_ephemeral(learner).await {
                tracing::warn!(learner, error = %e, "could not remove a throw-away cluster");
            }
        }
    }
}
