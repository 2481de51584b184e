//! The local cluster's facts in `docker inspect`'s shape (`[ {...} ]`), so
//! that the same jq filters work on both backends: `Name` (the cluster
//! folder), `State` (running, pid, started), `Mounts` (the data directory,
//! as a bind of itself), `HostConfig` (no limits: zeros, as the engine
//! reports an unlimited container), `Config.Image` (the PostgreSQL
//! binaries) and `Settings` (what postgresql.conf and postgresql.auto.conf
//! set).

use serde_json::{Map, Value, json};

use super::LocalProvisioner;
use crate::sandbox::{LearnerId, SandboxError};

impl LocalProvisioner {
    pub(super) async fn inspect_cluster(&self, learner: LearnerId) -> Result<Value, SandboxError> {
        let cluster = self.cluster(learner);
        if !cluster.initialised() {
            return Err(SandboxError::Failed(
                "your sandbox has no cluster yet: start it first".into(),
            ));
        }
        let record = self.records.get(learner).await?;
        let running = cluster.running();
        let data = cluster.data().display().to_string();
        let mut settings = Map::new();
        for file in ["postgresql.conf", "postgresql.auto.conf"] {
            let text = std::fs::read_to_string(cluster.data().join(file)).unwrap_or_default();
            for (k, v) in conf_settings(&text) {
                settings.insert(k, Value::String(v));
            }
        }
        let image = format!(
            "PostgreSQL {} from {}",
            self.bins.version,
            self.bins.bindir.display()
        );
        Ok(json!([{
            "Name": cluster.dir.display().to_string(),
            "Created": record.as_ref().map(|r| rfc3339(r.created_at)),
            "Image": image,
            "State": {
                "Status": if running.is_some() { "running" } else { "exited" },
                "Running": running.is_some(),
                "Pid": running.map_or(0, |r| r.pid),
                "StartedAt": running.map(|r| rfc3339(r.started_at)),
                "Health": running.map(|r| json!({
                    "Status": if r.ready { "healthy" } else { "starting" },
                    "Log": [],
                })),
            },
            "RestartCount": 0,
            "Mounts": [{
                "Type": "bind",
                "Source": data,
                "Destination": data,
                "RW": true,
            }],
            "HostConfig": {
                "Memory": 0,
                "NanoCpus": 0,
                "PidsLimit": null,
                "ShmSize": 0,
                "NetworkMode": "none",
            },
            "Config": {
                "Image": image,
                "Env": [format!("PGDATA={data}")],
            },
            "Settings": settings,
        }]))
    }
}

/// `name = value` lines of a PostgreSQL config file (comments, quotes and
/// blank lines dropped; a later line wins).
fn conf_settings(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter_map(|line| {
            let line = line.split('#').next()?.trim();
            let (k, v) = line.split_once('=')?;
            let v = v.trim().trim_matches('\'');
            Some((k.trim().to_string(), v.to_string()))
        })
        .collect()
}

/// Unix seconds as RFC 3339 UTC ("2026-12-03T06:00:00Z").
fn rfc3339(unix: i64) -> String {
    let days = unix.div_euclid(86_400);
    let secs = unix.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_and_settings() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(1_796_277_600), "2026-12-03T06:00:00Z");
        let s = conf_settings("# c\nshared_buffers = 16MB # x\nlog_line_prefix = '%m [%p] '\n");
        assert_eq!(s[0], ("shared_buffers".into(), "16MB".into()));
        assert_eq!(s[1], ("log_line_prefix".into(), "%m [%p] ".into()));
    }
}
