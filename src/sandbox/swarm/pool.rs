//! The swarm's warm pool: on every node with room, `--sandbox-pool` spare
//! services started and initialised ahead of time, so that a new learner's
//! first query does not wait for a service, a volume and initdb.
//!
//! - A spare is a service `pglab-<instance>-pool-<key>` pinned to its node,
//!   with its own named volume there, labelled `pglab.pool=true` and no
//!   learner; the store's `sandbox_pool` table lists the ready ones.
//! - Spares take no place: placement counts learners' sandboxes only, so a
//!   node runs at most its capacity of learners plus its spares. A node
//!   keeps spares only while it has room for a learner to take one, and the
//!   pool never fills while anyone waits in line (the places go to them).
//! - A new learner takes a spare on their turn in the admission queue, from
//!   the node with room and the most free places that has one: the spare's
//!   service is relabelled with the learner (its task keeps running; the
//!   name stays, the store maps learner to service). A learner who finds no
//!   spare gets a new service as before.
//! - One background task refills the pool one spare at a time, woken by
//!   every take; spares whose service or node is gone are dropped, and pool
//!   services of this instance nobody owns (a server stopped while making
//!   one) are removed at start.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use super::placement::NodeLoad;
use super::{Load, SwarmProvisioner, service_label};
use crate::sandbox::docker::engine::Found;
use crate::sandbox::records::{PoolRecord, SandboxRecord};
use crate::sandbox::refill;
use crate::sandbox::{LearnerId, SandboxError, SandboxState, new_password, unix_now};

/// The label that marks a spare.
pub const POOL_LABEL: &str = "pglab.pool";

/// Keeps the pool full for as long as the provisioner lives.
pub async fn run(p: Arc<SwarmProvisioner>) {
    if let Err(err) = p.remove_stray_spares().await {
        tracing::warn!(%err, "swarm warm pool: could not clean up");
    }
    refill::keep_full(p, "swarm warm pool", Duration::from_secs(10)).await;
}

impl refill::Refill for SwarmProvisioner {
    fn fill(&self) -> impl std::future::Future<Output = Result<(), SandboxError>> + Send {
        self.fill_pool()
    }
    fn wake(&self) -> Arc<tokio::sync::Notify> {
        self.pool_wake.clone()
    }
}

impl SwarmProvisioner {
    fn spare_labels(&self, key: &str, node: &str) -> HashMap<String, String> {
        HashMap::from([
            ("pglab.managed".to_string(), "true".to_string()),
            ("pglab.instance".to_string(), self.instance.clone()),
            ("pglab.key".to_string(), key.to_string()),
            ("pglab.node".to_string(), node.to_string()),
            (POOL_LABEL.to_string(), "true".to_string()),
        ])
    }

    /// Spare services of this instance the pool does not list and no
    /// learner owns: removed with their volumes.
    async fn remove_stray_spares(&self) -> Result<(), SandboxError> {
        let Load { spares, .. } = self.load().await?;
        let listed = self.records.pool_all().await?;
        let owned = self.records.all(super::BACKEND).await?;
        for s in spares {
            let Some(name) = s.spec.as_ref().and_then(|sp| sp.name.clone()) else {
                continue;
            };
            if listed.iter().any(|p| p.container == name)
                || owned.iter().any(|r| r.container == name)
            {
                continue;
            }
            tracing::info!(service = %name, "swarm warm pool: removing a stray spare");
            let key = service_label(&s, "pglab.key").unwrap_or_default();
            self.drop_spare(
                &name,
                &format!("{}-{key}", self.prefix()),
                service_label(&s, "pglab.node"),
            )
            .await?;
        }
        Ok(())
    }

    /// Removes a spare's service, then its volume on its node.
    async fn drop_spare(
        &self,
        name: &str,
        volume: &str,
        node_id: Option<String>,
    ) -> Result<(), SandboxError> {
        self.forget_ready(name);
        self.cluster.remove_service(name).await?;
        let node = match node_id {
            Some(id) => match self.cluster.node(&id).await? {
                Found::Yes(n) => Some(n),
                Found::No => None,
            },
            None => None,
        };
        self.remove_volumes(name, volume, None, node.as_ref()).await;
        Ok(())
    }

    /// Drops spares that are gone or whose node is down, then adds spares,
    /// one at a time, to usable nodes with room that have fewer than the
    /// pool size, while nobody waits in line.
    async fn fill_pool(&self) -> Result<(), SandboxError> {
        let Load {
            nodes,
            loads,
            total,
            spares,
        } = self.load().await?;
        let listed = self.records.pool_all().await?;
        let mut ready_on: HashMap<String, usize> = HashMap::new();
        for p in &listed {
            let service = spares
                .iter()
                .find(|s| s.spec.as_ref().and_then(|sp| sp.name.as_deref()) == Some(&p.container));
            let node = service.and_then(|s| service_label(s, "pglab.node"));
            let node_ready = node
                .as_ref()
                .and_then(|id| nodes.iter().find(|n| &n.id == id))
                .is_some_and(|n| n.ready);
            match node {
                Some(node) if node_ready => *ready_on.entry(node).or_default() += 1,
                // Gone, or on a node that is down: not worth keeping.
                node => {
                    if self.records.pool_take(&p.container).await? {
                        self.drop_spare(&p.container, &p.volume, node).await?;
                    }
                }
            }
        }
        if self.pool_size == 0 || total >= self.max_running || !self.admission.waiting().is_empty()
        {
            return Ok(());
        }
        let Some(load) = loads
            .iter()
            .filter(|l| l.has_room() && ready_on.get(&l.id).copied().unwrap_or(0) < self.pool_size)
            .min_by_key(|l| ready_on.get(&l.id).copied().unwrap_or(0))
        else {
            return Ok(());
        };
        let Some(node) = nodes.iter().find(|n| n.id == load.id) else {
            return Ok(());
        };
        let key = format!("{:010x}", rand::random::<u64>() >> 24);
        let spare = PoolRecord {
            container: format!("{}-pool-{key}", self.prefix()),
            volume: format!("{}-{key}", self.prefix()),
            password: new_password(),
        };
        let rep = self.hub.reporter(-1);
        let made = async {
            self.create(
                &spare.container,
                Some(&spare.volume),
                &spare.password,
                self.spare_labels(&key, &node.id),
                node,
                None,
            )
            .await?;
            self.wait_ready(&spare.container, &node.id, &spare.password, false, &rep)
                .await
        }
        .await;
        match made {
            Ok(ready) => {
                self.ready
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .insert(spare.container.clone(), ready);
                self.records.pool_put(&spare).await?;
                tracing::debug!(service = %spare.container, node = %node.label(), "swarm warm pool: one more spare");
                // More to make: go on at once.
                self.pool_wake.notify_one();
                Ok(())
            }
            Err(err) => {
                let _ = self
                    .drop_spare(&spare.container, &spare.volume, Some(node.id.clone()))
                    .await;
                Err(err)
            }
        }
    }

    /// Gives the learner a spare on a node with room (the one with the most
    /// free places), with that node, or `None`. Takes `place_lock`.
    pub(super) async fn take_spare(
        &self,
        learner: LearnerId,
    ) -> Result<Option<(SandboxRecord, String)>, SandboxError> {
        if self.pool_size == 0 {
            return Ok(None);
        }
        let _placing = self.place_lock.lock().await;
        let Load {
            loads,
            total,
            spares,
            ..
        } = self.load().await?;
        self.pool_wake.notify_one();
        if total >= self.max_running {
            return Ok(None);
        }
        let listed = self.records.pool_all().await?;
        let mut candidates: Vec<(&PoolRecord, &NodeLoad)> = listed
            .iter()
            .filter_map(|p| {
                let s = spares.iter().find(|s| {
                    s.spec.as_ref().and_then(|sp| sp.name.as_deref()) == Some(&p.container)
                })?;
                let node = service_label(s, "pglab.node")?;
                let load = loads.iter().find(|l| l.id == node && l.has_room())?;
                Some((p, load))
            })
            .collect();
        candidates.sort_by_key(|(_, l)| std::cmp::Reverse(l.free()));
        for (spare, load) in candidates {
            if !self.records.pool_take(&spare.container).await? {
                continue;
            }
            let relabelled = self
                .cluster
                .set_labels(
                    &spare.container,
                    &[("pglab.learner", learner.to_string())],
                    &[POOL_LABEL],
                )
                .await;
            if let Err(err) = relabelled {
                tracing::warn!(%err, service = %spare.container, "swarm warm pool: relabel failed");
                let _ = self
                    .drop_spare(&spare.container, &spare.volume, Some(load.id.clone()))
                    .await;
                continue;
            }
            let now = unix_now();
            let record = SandboxRecord {
                learner_id: learner,
                backend: super::BACKEND.into(),
                container: spare.container.clone(),
                volume: spare.volume.clone(),
                password: spare.password.clone(),
                state: SandboxState::Running.as_str().into(),
                created_at: now,
                last_used: now,
            };
            self.records.put(&record).await?;
            return Ok(Some((record, load.id.clone())));
        }
        Ok(None)
    }
}
