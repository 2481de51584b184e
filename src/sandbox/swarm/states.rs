//! Every learner's sandbox state on the swarm from one service list and one
//! node list (`Provisioner::states`, the instructor's matrix), where
//! `describe` asks for each learner's service, node and tasks in turn.

use std::collections::HashMap;

use bollard::models::Service;

use super::{BACKEND, SwarmProvisioner, service_label};
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
        let mut out: Vec<(LearnerId, SandboxState)> = records
            .iter()
            .map(|r| {
                let state = match by_name.get(r.container.as_str()) {
                    Some(s) => service_state(s, &ready),
                    None if r.state == SandboxState::Absent.as_str() => SandboxState::Absent,
                    None => SandboxState::Stopped,
                };
                (r.learner_id, state)
            })
            .collect();
        for s in &services {
            let learner = service_label(s, "pglab.learner").and_then(|l| l.parse().ok());
            if let Some(learner) = learner
                && service_label(s, "pglab.ephemeral").is_none()
                && !records.iter().any(|r| r.learner_id == learner)
            {
                out.push((learner, service_state(s, &ready)));
            }
        }
        Ok(out)
    }
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
    let running = service
        .service_status
        .as_ref()
        .and_then(|st| st.running_tasks)
        .unwrap_or(0);
    if running > 0 {
        SandboxState::Running
    } else {
        SandboxState::Starting
    }
}
