//! Every learner's sandbox state on the swarm from one service list and one
//! node list (`Provisioner::states`, the instructor's matrix), where
//! `describe` asks for each learner's service, node and tasks in turn.

use std::collections::HashMap;

use bollard::models::{Service, TaskSpecRestartPolicyConditionEnum, TaskState};

use super::{BACKEND, SwarmProvisioner, ended_for_good, service_label, usable};
use crate::sandbox::{LearnerId, SandboxError, SandboxState};

impl SwarmProvisioner {
    pub(super) async fn states(&self) -> Result<Vec<(LearnerId, SandboxState)>, SandboxError> {
        let records = self.records.all(BACKEND).await?;
        let services = self
            .cluster
            .services(&[format!("pglab.instance={}", self.instance)])
            .await?;
        let ready: HashMap<String, bool> = self
            .cluster
            .nodes()
            .await?
            .into_iter()
            .map(|n| (n.id, n.ready))
            .collect();
        let by_name: HashMap<&str, &Service> = services
            .iter()
            .filter_map(|s| Some((s.spec.as_ref()?.name.as_deref()?, s)))
            .collect();
        let mut out = Vec::with_capacity(records.len());
        for r in &records {
            let state = match by_name.get(r.container.as_str()) {
                Some(s) => self.service_state(s, &ready).await,
                None if r.state == SandboxState::Absent.as_str() => SandboxState::Absent,
                None => SandboxState::Stopped,
            };
            out.push((r.learner_id, state));
        }
        for s in &services {
            let learner = service_label(s, "pglab.learner").and_then(|l| l.parse().ok());
            if let Some(learner) = learner
                && service_label(s, "pglab.ephemeral").is_none()
                && !records.iter().any(|r| r.learner_id == learner)
            {
                out.push((learner, self.service_state(s, &ready).await));
            }
        }
        Ok(out)
    }

    /// [`service_state`], except for a service with no running task that
    /// pglab saw answering in its current task (a task with a health check
    /// counts as running only once its first check passed, an interval
    /// after its start; `usable`), or whose restart policy may let its task
    /// end for good (a compose file's `restart: no` or `on-failure`, never
    /// pglab's own `any`): those cost one task list, to say `running`, or
    /// `stopped` as `describe` does.
    async fn service_state(
        &self,
        service: &Service,
        ready: &HashMap<String, bool>,
    ) -> SandboxState {
        let state = service_state(service, ready);
        if state != SandboxState::Starting {
            return state;
        }
        let Some(name) = service.spec.as_ref().and_then(|s| s.name.as_deref()) else {
            return state;
        };
        let seen = self.cached(name).map(|r| r.task);
        if seen.is_none() && !may_end(service) {
            return state;
        }
        let Ok(tasks) = self.cluster.tasks(name).await else {
            return state;
        };
        if ended_for_good(&tasks) {
            return SandboxState::Stopped;
        }
        let answering = tasks.iter().any(|t| {
            t.desired_state == Some(TaskState::RUNNING)
                && seen.is_some()
                && t.id == seen
                && usable(t, true)
        });
        if answering {
            SandboxState::Running
        } else {
            state
        }
    }
}

/// Whether the service's restart policy lets a task end and stay down.
fn may_end(service: &Service) -> bool {
    let condition = service
        .spec
        .as_ref()
        .and_then(|s| s.task_template.as_ref())
        .and_then(|t| t.restart_policy.as_ref())
        .and_then(|r| r.condition);
    !matches!(
        condition,
        None | Some(TaskSpecRestartPolicyConditionEnum::ANY)
    )
}

/// As `describe` judges it: the node gone or down is failed, no replica
/// wanted is stopped, a running task (the swarm counts a task with a health
/// check as running once healthy) is running, otherwise starting.
fn service_state(service: &Service, ready: &HashMap<String, bool>) -> SandboxState {
    let node = service_label(service, "pglab.node").unwrap_or_default();
    if !ready.get(&node).copied().unwrap_or(false) {
        return SandboxState::Failed;
    }
    if super::replicas(service) == 0 {
        return SandboxState::Stopped;
    }
    if super::running_tasks(service) > 0 {
        SandboxState::Running
    } else {
        SandboxState::Starting
    }
}
