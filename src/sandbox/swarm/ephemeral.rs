//! The swarm's throw-away server of the 14.D.4 "no volume" demonstration:
//! a second service per learner, `pglab-<instance>-<learner>-ephemeral`,
//! with the sandbox's image, settings, limits, isolation and reach
//! ([`super::service`]: the port published on its node, or its name on the
//! overlay) but **no named volume**: PGDATA is the image's anonymous volume,
//! which belongs to the task's container. The swarm never restarts a
//! container in place: a task that ends (killed, crashed, its node's engine
//! restarted) is replaced by a new task, a new container and a new, empty
//! volume, so the data dies with the task (more than with the Docker
//! backend's throw-away container, which a `docker restart` keeps).
//!
//! - Node: the learner's own sandbox's, when it has a service (the lesson
//!   compares the two side by side), else the one placement would pick for
//!   a new learner, else any ready, active node. It takes no place
//!   (`load` skips it; the labs cap throw-away servers at
//!   `labs::ephemeral::MAX_EPHEMERAL`).
//! - Labels: `pglab.managed`, `pglab.instance`, `pglab.key` (`e<key>`),
//!   `pglab.node` and [`LABEL`]`=<learner>`, never `pglab.learner`, so
//!   nothing takes it for the learner's sandbox.
//! - Its password lives in this process's memory only (the Docker
//!   backend's [`Throwaways`](crate::sandbox::docker::ephemeral::Throwaways)):
//!   a start after a pglab restart makes a new service, and the background
//!   work removes those an earlier process left. `destroy` removes it with
//!   the learner's sandbox.

use std::collections::HashMap;

use bollard::models::Service;
use sqlx::postgres::PgConnectOptions;

use super::cluster::NodeInfo;
use super::{Load, SwarmProvisioner, placement, service_label};
use crate::sandbox::docker::engine::Found;
use crate::sandbox::docker::ephemeral::LISTED;
use crate::sandbox::{LearnerId, SandboxError, SandboxStatus, new_password};

/// The label that marks a throw-away service, with its learner's id.
pub const LABEL: &str = "pglab.ephemeral";

/// Progress of throw-away starts goes nowhere: it is not the sandbox's.
const NO_LEARNER: LearnerId = -1;

impl SwarmProvisioner {
    fn ephemeral_service(&self, learner: LearnerId) -> String {
        format!("{}-{learner}-ephemeral", self.prefix())
    }

    /// Starts (creating it first when needed) the learner's throw-away
    /// service and waits until PostgreSQL answers.
    pub(super) async fn start_ephemeral(
        &self,
        learner: LearnerId,
    ) -> Result<PgConnectOptions, SandboxError> {
        let _guard = self.ephemeral_locks.lock(learner).await;
        let name = self.ephemeral_service(learner);
        let service = self.cluster.service(&name).await?;
        let (password, node) = match (self.ephemeral.get(learner), service) {
            (Some((_, password)), Found::Yes(s)) => {
                if let Some(ready) = self.still_ready(&name).await? {
                    return Ok(Self::options(&ready.host, ready.port, &password));
                }
                (
                    password,
                    service_label(&s, "pglab.node").unwrap_or_default(),
                )
            }
            _ => self.create_ephemeral(learner, &name).await?,
        };
        let rep = self.hub.reporter(NO_LEARNER);
        let ready = self
            .wait_ready(&name, &node, &password, false, &rep)
            .await?;
        let options = Self::options(&ready.host, ready.port, &password);
        self.ready
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(name, ready);
        Ok(options)
    }

    /// Removes any old service of that name and makes a new one; answers
    /// its password and node.
    async fn create_ephemeral(
        &self,
        learner: LearnerId,
        name: &str,
    ) -> Result<(String, String), SandboxError> {
        self.remove_ephemeral_locked(learner).await?;
        let node = self.ephemeral_node(learner).await?;
        let key = format!("e{:010x}", rand::random::<u64>() >> 24);
        let password = new_password();
        let labels = HashMap::from([
            ("pglab.managed".to_string(), "true".to_string()),
            ("pglab.instance".to_string(), self.instance.clone()),
            ("pglab.key".to_string(), key.clone()),
            ("pglab.node".to_string(), node.id.clone()),
            (LABEL.to_string(), learner.to_string()),
        ]);
        self.create(name, None, &password, labels, &node, None)
            .await?;
        self.ephemeral.insert(learner, key, password.clone());
        Ok((password, node.id))
    }

    /// Where a new throw-away service goes (see the module's comment).
    async fn ephemeral_node(&self, learner: LearnerId) -> Result<NodeInfo, SandboxError> {
        let own = match self.records.get(learner).await? {
            Some(record) => match self.cluster.service(&record.container).await? {
                Found::Yes(s) => service_label(&s, "pglab.node"),
                Found::No => None,
            },
            None => None,
        };
        let Load { nodes, loads, .. } = self.load().await?;
        let usable = |id: &String| loads.iter().any(|l| &l.id == id && l.usable);
        let id = own
            .filter(usable)
            .or_else(|| placement::choose(&loads).map(|l| l.id.clone()))
            .or_else(|| loads.iter().find(|l| l.usable).map(|l| l.id.clone()))
            .ok_or_else(|| {
                SandboxError::Unavailable(
                    "no node of the swarm is ready and active: the throw-away server cannot start"
                        .into(),
                )
            })?;
        nodes
            .into_iter()
            .find(|n| n.id == id)
            .ok_or_else(|| SandboxError::Failed(format!("the swarm node {id} vanished")))
    }

    /// Removes the learner's throw-away service; the swarm removes its
    /// task's container with the anonymous volume.
    pub(super) async fn remove_ephemeral(&self, learner: LearnerId) -> Result<(), SandboxError> {
        let _guard = self.ephemeral_locks.lock(learner).await;
        self.remove_ephemeral_locked(learner).await
    }

    async fn remove_ephemeral_locked(&self, learner: LearnerId) -> Result<(), SandboxError> {
        let name = self.ephemeral_service(learner);
        self.ephemeral.remove(learner);
        self.forget_ready(&name);
        self.cluster.remove_service(&name).await
    }

    /// Removes the throw-away services an earlier pglab process left: their
    /// passwords died with it, so nobody can use them any more.
    pub(super) async fn sweep_ephemerals(&self) {
        let left = self
            .cluster
            .services(&[format!("pglab.instance={}", self.instance), LABEL.into()])
            .await;
        let Ok(left) = left else { return };
        for s in left {
            if let Some(learner) = service_label(&s, LABEL).and_then(|l| l.parse().ok())
                && let Err(e) = self.remove_ephemeral(learner).await
            {
                tracing::warn!(learner, error = %e, "could not remove a throw-away service");
            }
        }
    }
}

/// A throw-away service as `list` shows it (`node`: its node's label);
/// `None` for other services.
pub(super) fn listed(service: &Service, node: Option<String>) -> Option<SandboxStatus> {
    let learner = service_label(service, LABEL)?.parse().ok()?;
    Some(super::listed(service, learner, LISTED, node))
}
