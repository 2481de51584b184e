//! What `status` and `list` report about a Docker sandbox: state (from the
//! engine, the readiness seen by pglab and the health check), uptime, size
//! of the data volume, PostgreSQL version, and why it failed; and `states`,
//! every learner's state from one container list.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use bollard::models::{
    ContainerStateStatusEnum, ContainerSummary, ContainerSummaryStateEnum, HealthStatusEnum,
};

use super::engine::Found;
use super::{BACKEND, DockerProvisioner};
use crate::sandbox::records::SandboxRecord;
use crate::sandbox::{LearnerId, SandboxError, SandboxState, SandboxStatus, unix_now};

impl DockerProvisioner {
    /// Every learner's state from one list of this instance's containers
    /// (see `Provisioner::states`): what [`DockerProvisioner::describe`]
    /// would say of the state, read from the summary's state and health.
    /// A learner whose container is gone is stopped (a start re-creates it).
    pub(super) async fn states(&self) -> Result<Vec<(LearnerId, SandboxState)>, SandboxError> {
        let records = self.records.all(BACKEND).await?;
        let containers = self
            .engine
            .list(&[format!("pglab.instance={}", self.instance)])
            .await?;
        let by_name: HashMap<&str, &ContainerSummary> = containers
            .iter()
            .filter_map(|c| Some((c.names.as_ref()?.first()?.trim_start_matches('/'), c)))
            .collect();
        let mut out: Vec<(LearnerId, SandboxState)> = records
            .iter()
            .map(|r| {
                let state = match by_name.get(r.container.as_str()) {
                    Some(c) => summary_state(c, &r.state, self.seen_ready(&r.container)),
                    None if r.state == SandboxState::Absent.as_str() => SandboxState::Absent,
                    None => SandboxState::Stopped,
                };
                (r.learner_id, state)
            })
            .collect();
        // Containers made for a learner without a record (as `list` shows).
        for c in &containers {
            let labels = c.labels.as_ref();
            let learner = labels
                .filter(|l| !l.contains_key("pglab.ephemeral"))
                .and_then(|l| l.get("pglab.learner")?.parse::<LearnerId>().ok());
            if let Some(learner) = learner
                && !records.iter().any(|r| r.learner_id == learner)
            {
                out.push((learner, summary_state(c, "", false)));
            }
        }
        Ok(out)
    }

    pub(super) async fn describe(
        &self,
        learner: LearnerId,
        record: &SandboxRecord,
    ) -> SandboxStatus {
        let mut status = SandboxStatus::bare(learner, BACKEND, SandboxState::Stopped, None);
        status.name = Some(record.container.clone());
        status.last_used = Some(record.last_used);
        let mountpoint = self.engine.volume_mountpoint(&record.volume).await;
        if let Some(dir) = &mountpoint {
            let dir = PathBuf::from(dir);
            status.size_bytes = tokio::task::spawn_blocking(move || dir_size(&dir))
                .await
                .ok();
        }
        status.pg_version = self
            .versions
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&record.container)
            .cloned()
            .or_else(|| {
                let dir = mountpoint.as_ref()?;
                let v = std::fs::read_to_string(Path::new(dir).join("PG_VERSION")).ok()?;
                Some(v.trim().to_string())
            });
        let info = match self.engine.inspect(&record.container).await {
            Ok(Found::Yes(info)) => info,
            Ok(Found::No) if mountpoint.is_some() => {
                status.detail = Some(
                    "the container is gone; starting re-creates it on the kept data volume".into(),
                );
                return status;
            }
            Ok(Found::No) => {
                status.state = SandboxState::Absent;
                return status;
            }
            Err(err) => {
                status.state = SandboxState::Failed;
                status.detail = Some(err.to_string());
                return status;
            }
        };
        let state = info.state.unwrap_or_default();
        let health = state.health.as_ref().and_then(|h| h.status);
        if state.running == Some(true) {
            let started = state.started_at.clone().unwrap_or_default();
            status.uptime_s =
                parse_rfc3339(&started).map(|t| unix_now().saturating_sub(t).max(0) as u64);
            status.state = if self.is_ready(&record.container, &started)
                || health == Some(HealthStatusEnum::HEALTHY)
            {
                SandboxState::Running
            } else if health == Some(HealthStatusEnum::UNHEALTHY) {
                SandboxState::Failed
            } else {
                SandboxState::Starting
            };
            if status.state == SandboxState::Failed {
                status.detail = Some(format!(
                    "PostgreSQL does not answer its health check; restart the sandbox. Last log lines:\n{}",
                    self.engine.log_tail(&record.container, 5).await
                ));
            }
            return status;
        }
        if state.oom_killed == Some(true) {
            status.detail = Some(format!(
                "stopped: it ran out of memory (limit {} MiB); start it again",
                self.spec.memory_bytes / 1024 / 1024
            ));
        } else if record.state == SandboxState::Failed.as_str()
            || state.status == Some(ContainerStateStatusEnum::DEAD)
        {
            status.state = SandboxState::Failed;
            status.detail = Some(format!(
                "the sandbox failed; restart or reset it. Last log lines:\n{}",
                self.engine.log_tail(&record.container, 5).await
            ));
        }
        status
    }
}

/// A container's state from its list entry: running and healthy (or with
/// no health check, or `seen_ready` by pglab's own probe, which answers
/// before the health check's first interval) is running, `(unhealthy)`
/// failed, otherwise starting; a dead container, or one whose record says
/// failed, failed; else stopped. (The list has no `StartedAt`, so a
/// container the engine restarted by itself counts as seen ready.)
fn summary_state(c: &ContainerSummary, record_state: &str, seen_ready: bool) -> SandboxState {
    let status = c.status.as_deref().unwrap_or_default();
    match c.state {
        Some(ContainerSummaryStateEnum::RUNNING) => {
            if status.contains("(unhealthy)") {
                SandboxState::Failed
            } else if status.contains("(health: starting)") && !seen_ready {
                SandboxState::Starting
            } else {
                SandboxState::Running
            }
        }
        Some(ContainerSummaryStateEnum::DEAD) => SandboxState::Failed,
        _ if record_state == SandboxState::Failed.as_str() => SandboxState::Failed,
        _ => SandboxState::Stopped,
    }
}

fn dir_size(dir: &Path) -> u64 {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return 0;
    };
    entries
        .flatten()
        .map(|e| match e.file_type() {
            Ok(t) if t.is_dir() => dir_size(&e.path()),
            Ok(t) if t.is_file() => e.metadata().map(|m| m.len()).unwrap_or(0),
            _ => 0,
        })
        .sum()
}

/// Unix seconds of an RFC 3339 UTC time as Docker writes it
/// (`2026-11-25T14:30:00.123456789Z`).
pub(crate) fn parse_rfc3339(s: &str) -> Option<i64> {
    let (date, time) = s.split_once('T')?;
    let mut d = date.split('-').map(|p| p.parse::<i64>());
    let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
    let time = time.trim_end_matches('Z');
    let mut t = time.split(':');
    let (hh, mm) = (
        t.next()?.parse::<i64>().ok()?,
        t.next()?.parse::<i64>().ok()?,
    );
    let ss = t.next()?.split('.').next()?.parse::<i64>().ok()?;
    // Days from civil (Howard Hinnant's algorithm).
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (m + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    if y < 1971 {
        return None; // "0001-01-01T00:00:00Z": never started
    }
    Some(days * 86_400 + hh * 3600 + mm * 60 + ss)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn summary(state: ContainerSummaryStateEnum, status: &str) -> ContainerSummary {
        ContainerSummary {
            state: Some(state),
            status: Some(status.to_string()),
            ..Default::default()
        }
    }

    /// The engine's own words (`docker ps` STATUS) map as `describe` maps
    /// the inspected state.
    #[test]
    fn list_entries_map_to_states() {
        use ContainerSummaryStateEnum as S;
        let st = |c: &ContainerSummary, r: &str| summary_state(c, r, false);
        assert_eq!(
            st(&summary(S::RUNNING, "Up 3 minutes (healthy)"), "running"),
            SandboxState::Running
        );
        assert_eq!(
            st(
                &summary(S::RUNNING, "Up 2 seconds (health: starting)"),
                "running"
            ),
            SandboxState::Starting
        );
        assert_eq!(
            st(&summary(S::RUNNING, "Up 9 minutes (unhealthy)"), "running"),
            SandboxState::Failed
        );
        assert_eq!(
            st(&summary(S::RUNNING, "Up 5 seconds"), "running"),
            SandboxState::Running
        );
        assert_eq!(
            st(&summary(S::EXITED, "Exited (0) 2 minutes ago"), "stopped"),
            SandboxState::Stopped
        );
        assert_eq!(
            st(&summary(S::EXITED, "Exited (1) 1 second ago"), "failed"),
            SandboxState::Failed
        );
        assert_eq!(
            st(&summary(S::DEAD, "Dead"), "running"),
            SandboxState::Failed
        );
        assert_eq!(
            st(&summary(S::CREATED, "Created"), "stopped"),
            SandboxState::Stopped
        );
    }

    #[test]
    fn docker_times_parse_to_unix_seconds() {
        assert_eq!(parse_rfc3339("1970-01-02T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("2024-03-01T00:00:01.5Z"), Some(1_709_251_201));
        assert_eq!(parse_rfc3339("0001-01-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("garbage"), None);
    }
}
