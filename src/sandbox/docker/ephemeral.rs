//! The Docker backend's throw-away server for the 14.D.4 "no volume"
//! demonstration: a second container per learner,
//! `pglab-<instance>-<learner>-ephemeral`, with the same limits and isolation
//! as the sandbox ([`super::spec`]) but **no named volume** at PGDATA. That is
//! what `docker run postgres:15` without `-v` does: the image declares
//! `VOLUME /var/lib/postgresql/data`, so the engine gives the container an
//! anonymous volume of its own; removing the container with its volumes and
//! running a new one (which is what re-creating means) starts empty. A plain
//! `docker restart` would keep the data, because the container and its
//! anonymous volume stay.
//!
//! Labels: `pglab.managed`, `pglab.instance`, `pglab.key` and
//! `pglab.ephemeral=<learner>` (never `pglab.learner`, so nothing takes it for
//! the learner's sandbox). Its password lives only in memory
//! ([`Throwaways`], which the swarm backend's throw-away services use too):
//! after a pglab restart the next start re-creates the container.

use std::collections::HashMap;

use bollard::query_parameters::RemoveContainerOptionsBuilder;
use sqlx::postgres::PgConnectOptions;

use super::engine::Found;
use super::spec::PGDATA;
use super::{DockerProvisioner, Slot, prepare_socket_dir, ready};
use crate::sandbox::{LearnerId, SandboxError, SandboxState, SandboxStatus, new_password};

/// What `list` says of a throw-away server (both backends).
pub const LISTED: &str = "ephemeral (14.D.4 demo, no volume)";

/// The key and password of each throw-away server this process made.
#[derive(Default)]
pub struct Throwaways {
    slots: std::sync::Mutex<HashMap<LearnerId, (String, String)>>,
}

impl Throwaways {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<LearnerId, (String, String)>> {
        self.slots.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// The learner's (key, password), when this process made their server.
    pub fn get(&self, learner: LearnerId) -> Option<(String, String)> {
        self.lock().get(&learner).cloned()
    }

    pub fn insert(&self, learner: LearnerId, key: String, password: String) {
        self.lock().insert(learner, (key, password));
    }

    /// Forgets the learner's server; answers its key.
    pub fn remove(&self, learner: LearnerId) -> Option<String> {
        self.lock().remove(&learner).map(|(key, _)| key)
    }
}

impl DockerProvisioner {
    fn ephemeral_container(&self, learner: LearnerId) -> String {
        format!("{}-{learner}-ephemeral", self.prefix())
    }

    /// Starts (creating it first when needed) the learner's throw-away
    /// container and waits until PostgreSQL answers.
    pub(super) async fn start_ephemeral(
        &self,
        learner: LearnerId,
    ) -> Result<PgConnectOptions, SandboxError> {
        let _guard = self.ephemeral_locks.lock(learner).await;
        let container = self.ephemeral_container(learner);
        let known = self.ephemeral.get(learner);
        let found = self.engine.inspect(&container).await?;
        let slot = match (known, found) {
            (Some((key, password)), Found::Yes(info)) => {
                let slot = Slot {
                    container: container.clone(),
                    volume: String::new(),
                    key,
                    password,
                };
                if info.state.and_then(|s| s.running) != Some(true) {
                    prepare_socket_dir(&self.socket_dir(&slot.key))?;
                    self.engine.start(&container).await?;
                }
                slot
            }
            _ => self.create_ephemeral(learner, &container).await?,
        };
        let options = self.options(&slot);
        ready::wait(&self.engine, &container, &options).await?;
        Ok(options)
    }

    /// Removes any old container of that name and makes a new one.
    async fn create_ephemeral(
        &self,
        learner: LearnerId,
        container: &str,
    ) -> Result<Slot, SandboxError> {
        self.remove_ephemeral_locked(learner).await?;
        let mut slot = self.new_slot(container.to_string());
        slot.key = format!("e{}", slot.key);
        slot.password = new_password();
        let socket_dir = self.socket_dir(&slot.key);
        prepare_socket_dir(&socket_dir)?;
        let mut labels = self.labels(&slot.key, None);
        labels.remove("pglab.pool");
        labels.insert("pglab.ephemeral".into(), learner.to_string());
        let mut body = self.spec.body(labels, "", &socket_dir, &slot.password);
        if let Some(host) = body.host_config.as_mut()
            && let Some(mounts) = host.mounts.as_mut()
        {
            mounts.retain(|m| m.target.as_deref() != Some(PGDATA));
        }
        self.engine.create(container, body).await?;
        self.ephemeral
            .insert(learner, slot.key.clone(), slot.password.clone());
        self.engine.start(container).await?;
        Ok(slot)
    }

    /// Removes the learner's throw-away container with its anonymous volume.
    pub(super) async fn remove_ephemeral(&self, learner: LearnerId) -> Result<(), SandboxError> {
        let _guard = self.ephemeral_locks.lock(learner).await;
        self.remove_ephemeral_locked(learner).await
    }

    async fn remove_ephemeral_locked(&self, learner: LearnerId) -> Result<(), SandboxError> {
        let container = self.ephemeral_container(learner);
        let known = self.ephemeral.remove(learner);
        // A container made by an earlier pglab process: its key is a label.
        let key = match known {
            Some(key) => Some(key),
            None => match self.engine.inspect(&container).await? {
                Found::Yes(info) => info
                    .config
                    .and_then(|c| c.labels)
                    .and_then(|l| l.get("pglab.key").cloned()),
                Found::No => None,
            },
        };
        if let Some(key) = key.filter(|k| k.starts_with('e') && !k.contains(['/', '.'])) {
            let _ = tokio::fs::remove_dir_all(self.socket_dir(&key)).await;
        }
        // v: the anonymous PGDATA volume goes with the container.
        let options = RemoveContainerOptionsBuilder::default()
            .force(true)
            .v(true)
            .build();
        let removed = tokio::time::timeout(
            std::time::Duration::from_secs(25),
            self.engine
                .docker
                .remove_container(&container, Some(options)),
        )
        .await;
        match removed {
            Err(_) => Err(SandboxError::Unavailable(
                "the Docker engine did not remove the throw-away container in time".into(),
            )),
            Ok(Ok(())) => Ok(()),
            Ok(Err(bollard::errors::Error::DockerResponseServerError {
                status_code: 404, ..
            })) => Ok(()),
            Ok(Err(e)) => Err(SandboxError::Failed(format!(
                "the Docker engine could not remove the throw-away container: {e}"
            ))),
        }
    }

    /// Removes the throw-away containers an earlier pglab process left: their
    /// passwords died with it, so nobody can use them any more.
    pub(super) async fn sweep_ephemerals(&self) {
        let left = self
            .engine
            .list(&[
                format!("pglab.instance={}", self.instance),
                "pglab.ephemeral".into(),
            ])
            .await;
        let Ok(left) = left else { return };
        for c in left {
            let learner = c
                .labels
                .as_ref()
                .and_then(|l| l.get("pglab.ephemeral"))
                .and_then(|l| l.parse::<LearnerId>().ok());
            if let Some(learner) = learner
                && let Err(e) = self.remove_ephemeral(learner).await
            {
                tracing::warn!(learner, error = %e, "could not remove a throw-away container");
            }
        }
    }
}

/// A 14.D.4 throw-away container as `list` shows it.
pub(super) fn listed(learner: LearnerId, c: &bollard::models::ContainerSummary) -> SandboxStatus {
    let running = c.state == Some(bollard::models::ContainerSummaryStateEnum::RUNNING);
    let mut status = SandboxStatus::bare(
        learner,
        super::BACKEND,
        if running {
            SandboxState::Running
        } else {
            SandboxState::Stopped
        },
        Some(LISTED.into()),
    );
    status.name = c
        .names
        .as_ref()
        .and_then(|n| n.first().map(|s| s.trim_start_matches('/').to_string()));
    status
}
