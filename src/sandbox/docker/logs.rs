//! The container's output as the learner's server log: `docker logs
//! --follow --timestamps` through the engine (PostgreSQL logs to stderr,
//! and the image's entrypoint writes there too). The cursor of a line is
//! its engine timestamp, so a follower that starts again skips what it
//! already has. [`follow_container`] serves the swarm backend too, on
//! the engine of the node that runs the learner's task.

use bollard::Docker;
use bollard::query_parameters::LogsOptionsBuilder;
use futures::StreamExt;
use tokio_stream::wrappers::ReceiverStream;

use super::DockerProvisioner;
use crate::sandbox::log::{LogStream, RawLogLine, take_lines};
use crate::sandbox::{LearnerId, SandboxError};

impl DockerProvisioner {
    pub(super) async fn follow_log(
        &self,
        learner: LearnerId,
        after: Option<String>,
        tail: usize,
    ) -> Result<LogStream, SandboxError> {
        let Some(record) = self.records.get(learner).await? else {
            return Err(SandboxError::Failed(
                "your sandbox has no server yet".into(),
            ));
        };
        Ok(follow_container(
            self.engine.docker.clone(),
            record.container,
            after,
            tail,
        ))
    }
}

/// Follows one container's output on the engine that runs it (the Docker
/// backend's own, or a swarm node's): its last `tail` lines, or those after
/// the cursor `after`, then new ones until the container stops.
pub(in crate::sandbox) fn follow_container(
    docker: Docker,
    container: String,
    after: Option<String>,
    tail: usize,
) -> LogStream {
    let options = LogsOptionsBuilder::default()
        .follow(true)
        .stdout(true)
        .stderr(true)
        .timestamps(true)
        .tail(&tail.to_string())
        .build();
    let (tx, rx) = tokio::sync::mpsc::channel(256);
    let after = after.map(|a| ts_key(&a));
    tokio::spawn(async move {
        let mut logs = docker.logs(&container, Some(options));
        let mut buf = Vec::new();
        while let Some(Ok(chunk)) = logs.next().await {
            buf.extend_from_slice(&chunk.into_bytes());
            for line in take_lines(&mut buf) {
                let (ts, text) = line.split_once(' ').unwrap_or((line.as_str(), ""));
                let key = ts_key(ts);
                if after.as_ref().is_some_and(|a| key <= *a) {
                    continue;
                }
                let raw = RawLogLine {
                    cursor: key,
                    text: text.to_string(),
                };
                if tx.send(raw).await.is_err() {
                    return;
                }
            }
        }
    });
    Box::pin(ReceiverStream::new(rx))
}

/// An RFC 3339 timestamp with its fraction padded to nanoseconds, so that
/// two of them compare as strings ("…:05.5Z" and "…:05.123456789Z").
fn ts_key(ts: &str) -> String {
    let ts = ts.trim_end_matches('Z');
    let (whole, frac) = ts.split_once('.').unwrap_or((ts, ""));
    format!("{whole}.{frac:0<9}Z")
}

#[cfg(test)]
mod tests {
    use super::ts_key;

    #[test]
    fn timestamps_compare_after_padding() {
        assert!(ts_key("2026-12-03T06:00:05.5Z") > ts_key("2026-12-03T06:00:05.123456789Z"));
        assert!(ts_key("2026-12-03T06:00:06Z") > ts_key("2026-12-03T06:00:05.9Z"));
        assert_eq!(
            ts_key("2026-12-03T06:00:05.1Z"),
            "2026-12-03T06:00:05.100000000Z"
        );
    }
}
