//! `docker compose up` / `down` of a learner's compose file on the swarm
//! (the plan itself: `crate::sandbox::compose`; as a service spec:
//! [`super::service`]).
//!
//! - Up: the learner's service is scaled to 0 and its task awaited (two
//!   PostgreSQL servers must never share a volume), removed, and made again
//!   by the ordinary start **on the same node** (the learner's data lives
//!   there) with the settings in force: the plan's image, health check (or
//!   none), limits, `-c` settings and restart policy, on the plan's named
//!   volume `<pglab's volume>-c-<name>` (a new name is a new volume on that
//!   node) or none. Every later creation of the service (a start after
//!   down, a reset) uses the plan too; the plan's health check is the one
//!   the service keeps across scale and relabel updates (its
//!   `pglab.health` label, `cluster.rs`).
//! - Down: removes the service (its place goes to the line) and, with
//!   `volumes`, the named volume of the settings in force on the learner's
//!   node through that node's engine. The record stays, stopped: the next
//!   start creates the service again with the same settings.
//!
//! Without a named volume the data lives in the task's container only: on
//! the swarm every new task (a stop and start, a crash, a node restart)
//! starts empty, where Docker's container keeps its anonymous volume until
//! it is re-created.

use std::time::Duration;

use sqlx::postgres::PgConnectOptions;

use super::cluster::NodeInfo;
use super::{SwarmProvisioner, replicas, service_label};
use crate::sandbox::compose::data_volume;
use crate::sandbox::docker::engine::Found;
use crate::sandbox::progress::Reporter;
use crate::sandbox::records::SandboxRecord;
use crate::sandbox::{LearnerId, SandboxError, SandboxState};

impl SwarmProvisioner {
    /// Re-creates the learner's service with the settings in force, on the
    /// node of the service it replaces; lock held.
    pub(super) async fn compose_up_locked(
        &self,
        learner: LearnerId,
        rep: &Reporter<'_>,
    ) -> Result<PgConnectOptions, SandboxError> {
        let home = match self.records.get(learner).await? {
            Some(record) => self.take_down(&record, rep).await?,
            None => None,
        };
        self.start_on(learner, home, rep).await
    }

    /// Stops the learner's service, waits for its task to end and removes
    /// it; answers the node it was pinned to (`None`: there was none).
    async fn take_down(
        &self,
        record: &SandboxRecord,
        rep: &Reporter<'_>,
    ) -> Result<Option<NodeInfo>, SandboxError> {
        let name = &record.container;
        let Found::Yes(service) = self.cluster.service(name).await? else {
            return Ok(None);
        };
        rep.step("removing", format!("Service {name} recreate"));
        self.forget_ready(name);
        if replicas(&service) > 0 {
            self.cluster.scale(name, 0).await?;
            self.wait_stopped(name, Duration::from_secs(30)).await?;
        }
        self.cluster.remove_service(name).await?;
        self.node_of(service_label(&service, "pglab.node"), &[])
            .await
    }

    /// `docker compose down [--volumes]`, lock held.
    pub(super) async fn compose_down_locked(
        &self,
        learner: LearnerId,
        volumes: bool,
    ) -> Result<(), SandboxError> {
        let Some(record) = self.records.get(learner).await? else {
            return Ok(());
        };
        let plan = self.compose.applied(learner).await?;
        let name = &record.container;
        let service = self.cluster.service(name).await?;
        self.forget_ready(name);
        let pinned = match &service {
            Found::Yes(s) => {
                self.cluster.remove_service(name).await?;
                self.admission.slot_freed();
                self.pool_wake.notify_one();
                service_label(s, "pglab.node")
            }
            Found::No => None,
        };
        if volumes && let Some(volume) = data_volume(plan.as_ref(), &record.volume) {
            let home = Self::home_volumes(&record, plan.as_ref());
            // No node: the volume is on none pglab can see (never made).
            if let Some(node) = self.node_of(pinned, &home).await?
                && !self.remove_volumes(name, &volume, None, Some(&node)).await
            {
                return Err(SandboxError::Unavailable(format!(
                    "the volume {volume} could not be removed from node {}: \
                     pglab cannot reach the node's engine, or the volume stays in use",
                    node.label()
                )));
            }
        }
        self.records.set_state(learner, SandboxState::Stopped).await
    }
}
