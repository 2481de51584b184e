//! The warm pool: containers started and initialised ahead of time, so that
//! a new learner's first query does not wait for initdb.
//!
//! Pooled containers are named `pglab-<instance>-pool-<key>` and carry the
//! label `pglab.pool=true` instead of a learner (labels cannot change). A
//! new learner takes one by rename to `pglab-<instance>-<learner>`; the
//! learner↔container mapping lives in the store, which is the truth. A
//! background task refills the pool one container at a time.

use std::sync::Arc;
use std::time::Duration;

use super::engine::Found;
use super::{BACKEND, DockerProvisioner};
use crate::sandbox::records::{PoolRecord, SandboxRecord};
use crate::sandbox::refill;
use crate::sandbox::{LearnerId, SandboxError, SandboxState, unix_now};

/// Keeps the pool full for as long as the provisioner lives.
pub async fn run(p: Arc<DockerProvisioner>) {
    if let Err(err) = p.remove_strays().await {
        tracing::warn!(%err, "warm pool: could not clean up");
    }
    refill::keep_full(p, "warm pool", Duration::from_secs(30)).await;
}

impl refill::Refill for DockerProvisioner {
    fn fill(&self) -> impl std::future::Future<Output = Result<(), SandboxError>> + Send {
        self.fill_pool()
    }
    fn wake(&self) -> Arc<tokio::sync::Notify> {
        self.pool_wake.clone()
    }
}

impl DockerProvisioner {
    /// Pool containers of this instance that neither the pool nor a learner
    /// owns (a server stopped while making one): removed with their volume.
    async fn remove_strays(&self) -> Result<(), SandboxError> {
        let pooled = self
            .engine
            .list(&[
                format!("pglab.instance={}", self.instance),
                "pglab.pool=true".into(),
            ])
            .await?;
        let in_pool = self.records.pool_all().await?;
        let owned = self.records.all(BACKEND).await?;
        for c in pooled {
            let Some(name) = c
                .names
                .as_ref()
                .and_then(|n| n.first())
                .map(|n| n.trim_start_matches('/').to_string())
            else {
                continue;
            };
            if in_pool.iter().any(|p| p.container == name)
                || owned.iter().any(|r| r.container == name)
            {
                continue;
            }
            let key = c
                .labels
                .as_ref()
                .and_then(|l| l.get("pglab.key"))
                .cloned()
                .unwrap_or_default();
            tracing::info!(container = %name, "warm pool: removing a stray container");
            let slot = super::Slot {
                container: name,
                volume: format!("{}-{key}", self.prefix()),
                key,
                password: String::new(),
            };
            self.remove_slot(&slot).await?;
        }
        Ok(())
    }

    /// Drops dead entries, then creates containers until the pool is full.
    async fn fill_pool(&self) -> Result<(), SandboxError> {
        if !self.image_ok.load(std::sync::atomic::Ordering::Relaxed) {
            return Ok(()); // the first learner's start pulls or reports it
        }
        for p in self.records.pool_all().await? {
            let alive = match self.engine.inspect(&p.container).await? {
                Found::Yes(info) => info.state.and_then(|s| s.running) == Some(true),
                Found::No => false,
            };
            if !alive && self.records.pool_take(&p.container).await? {
                self.remove_slot(&slot_of_pool(&p)).await?;
            }
        }
        while self.records.pool_all().await?.len() < self.pool_size {
            let key_slot = self.new_slot(String::new());
            let slot = super::Slot {
                container: format!("{}-pool-{}", self.prefix(), key_slot.key),
                ..key_slot
            };
            let rep = self.hub.reporter(-1);
            if let Err(err) = self.ensure_running(&slot, None, &rep).await {
                let _ = self.remove_slot(&slot).await;
                return Err(err);
            }
            self.records
                .pool_put(&PoolRecord {
                    container: slot.container.clone(),
                    volume: slot.volume.clone(),
                    password: slot.password.clone(),
                })
                .await?;
            tracing::debug!(container = %slot.container, "warm pool: one more ready");
        }
        Ok(())
    }

    /// Gives a pooled container to the learner, or `None` when the pool is
    /// empty (the caller then creates one).
    pub(super) async fn take_from_pool(
        &self,
        learner: LearnerId,
    ) -> Result<Option<SandboxRecord>, SandboxError> {
        if self.pool_size == 0 {
            return Ok(None);
        }
        let _guard = self.pool_lock.lock().await;
        let name = self.learner_container(learner);
        for p in self.records.pool_all().await? {
            if !self.records.pool_take(&p.container).await? {
                continue;
            }
            let mut renamed = self.engine.rename(&p.container, &name).await;
            if renamed.is_err() {
                // A container of that name without a record is a leftover:
                // its volume (if any) stays, the container goes.
                self.engine.remove(&name).await?;
                renamed = self.engine.rename(&p.container, &name).await;
            }
            if let Err(err) = renamed {
                tracing::warn!(%err, container = %p.container, "warm pool: rename failed");
                let _ = self.remove_slot(&slot_of_pool(&p)).await;
                continue;
            }
            // Same container, same run: it stays known as ready.
            self.rename_ready(&p.container, &name);
            let now = unix_now();
            let record = SandboxRecord {
                learner_id: learner,
                backend: BACKEND.into(),
                container: name,
                volume: p.volume,
                password: p.password,
                state: SandboxState::Running.as_str().into(),
                created_at: now,
                last_used: now,
            };
            self.records.put(&record).await?;
            self.pool_wake.notify_one();
            return Ok(Some(record));
        }
        self.pool_wake.notify_one();
        Ok(None)
    }
}

fn slot_of_pool(p: &PoolRecord) -> super::Slot {
    super::Slot {
        container: p.container.clone(),
        volume: p.volume.clone(),
        key: super::key_of(&p.volume).to_string(),
        password: p.password.clone(),
    }
}
