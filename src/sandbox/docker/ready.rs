//! Waiting until a started container's PostgreSQL accepts connections.
//!
//! Faster than the engine's health check: the socket is polled every 25 ms,
//! and a connection counts only once PostgreSQL is the container's main
//! process (PID 1, or the child of its init: the entrypoint has exec'ed it),
//! so that a temporary server the official
//! image runs during its first start is never mistaken for the real one.

use std::time::{Duration, Instant};

use bollard::models::HealthStatusEnum;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection};

use super::engine::{Engine, Found};
use crate::sandbox::SandboxError;

/// How long a start may take before it is reported as failed.
const DEADLINE: Duration = Duration::from_secs(90);

/// A container seen ready.
pub struct Ready {
    /// The container's `State.StartedAt` of this run.
    pub started_at: String,
    /// `server_version`, e.g. "15.13 (Debian 15.13-0+deb12u1)" cut to "15.13".
    pub version: String,
}

/// Polls until `select 1`-like readiness, the container stops, or the deadline.
pub async fn wait(
    engine: &Engine,
    container: &str,
    options: &PgConnectOptions,
) -> Result<Ready, SandboxError> {
    let began = Instant::now();
    let socket = options
        .get_socket()
        .map(|d| d.join(".s.PGSQL.5432"))
        .unwrap_or_default();
    let mut host_pid: Option<i64> = None;
    let mut started_at = String::new();
    let mut next_inspect = Instant::now();
    loop {
        if Instant::now() >= next_inspect {
            next_inspect = Instant::now() + Duration::from_millis(300);
            let Found::Yes(info) = engine.inspect(container).await? else {
                return Err(SandboxError::Failed(
                    "the sandbox container disappeared while starting".into(),
                ));
            };
            let state = info.state.unwrap_or_default();
            if state.running != Some(true) {
                let why = if state.oom_killed == Some(true) {
                    "ran out of memory".to_string()
                } else {
                    format!("exited with code {}", state.exit_code.unwrap_or(-1))
                };
                return Err(SandboxError::Failed(format!(
                    "the sandbox container {why} while starting. Last log lines:\n{}",
                    engine.log_tail(container, 15).await
                )));
            }
            if state.health.and_then(|h| h.status) == Some(HealthStatusEnum::UNHEALTHY) {
                return Err(SandboxError::Failed(format!(
                    "the sandbox never became healthy. Last log lines:\n{}",
                    engine.log_tail(container, 15).await
                )));
            }
            host_pid = state.pid;
            started_at = state.started_at.unwrap_or_default();
        }
        if socket.exists()
            && pid1_is_postgres(host_pid)
            && let Some(version) = try_query(options).await
        {
            return Ok(Ready {
                started_at,
                version,
            });
        }
        if began.elapsed() > DEADLINE {
            return Err(SandboxError::Failed(format!(
                "PostgreSQL did not accept connections within {} s. Last log lines:\n{}",
                DEADLINE.as_secs(),
                engine.log_tail(container, 15).await
            )));
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// Whether the container's main process (seen from the host) is postgres:
/// PID 1 itself, or the first child of the container's init process.
/// When /proc cannot tell (an engine on another machine), trust the socket.
fn pid1_is_postgres(host_pid: Option<i64>) -> bool {
    let Some(pid) = host_pid.filter(|p| *p > 0) else {
        return false;
    };
    let comm = |pid: &str| std::fs::read_to_string(format!("/proc/{pid}/comm"));
    let pid = pid.to_string();
    match comm(&pid) {
        Ok(c) if c.trim() == "postgres" => true,
        Ok(_) => std::fs::read_to_string(format!("/proc/{pid}/task/{pid}/children"))
            .ok()
            .and_then(|children| {
                let first = children.split_whitespace().next()?.to_string();
                comm(&first).ok()
            })
            .is_some_and(|c| c.trim() == "postgres"),
        Err(_) => true,
    }
}

/// Connects and asks the version; `None` while it is not ready.
pub(crate) async fn try_query(options: &PgConnectOptions) -> Option<String> {
    let options = options
        .clone()
        .log_statements(tracing::log::LevelFilter::Trace);
    let attempt = async {
        let mut conn = options.connect().await.ok()?;
        let v: String = sqlx::query_scalar("show server_version")
            .fetch_one(&mut conn)
            .await
            .ok()?;
        let _ = conn.close().await;
        Some(v.split_whitespace().next().unwrap_or_default().to_string())
    };
    tokio::time::timeout(Duration::from_secs(3), attempt)
        .await
        .ok()
        .flatten()
}
