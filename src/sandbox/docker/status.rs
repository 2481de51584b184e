//! What `status` and `list` report about a Docker sandbox: state (from the
//! engine, the readiness seen by pglab and the health check), uptime, size
//! of the data volume, PostgreSQL version, and why it failed.

use std::path::{Path, PathBuf};

use bollard::models::{ContainerStateStatusEnum, HealthStatusEnum};

use super::engine::Found;
use super::{BACKEND, DockerProvisioner};
use crate::sandbox::records::SandboxRecord;
use crate::sandbox::{LearnerId, SandboxState, SandboxStatus, unix_now};

impl DockerProvisioner {
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
    use super::parse_rfc3339;

    #[test]
    fn docker_times_parse_to_unix_seconds() {
        assert_eq!(parse_rfc3339("1970-01-02T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("2024-03-01T00:00:01.5Z"), Some(1_709_251_201));
        assert_eq!(parse_rfc3339("0001-01-01T00:00:00Z"), None);
        assert_eq!(parse_rfc3339("garbage"), None);
    }
}
