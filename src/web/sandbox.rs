//! The learner's own sandbox over HTTP: status, start, stop, restart, reset,
//! and live start progress as server-sent events. Every handler acts on the
//! signed-in [`Learner`]'s sandbox only.
//!
//! Failures answer JSON errors: 503 when the backend is unavailable (engine
//! down, image missing), 409 when this learner's sandbox failed (a restart or
//! reset is the way out); never a 500 page.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::Stream;
use serde_json::{Value, json};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::BroadcastStream;

use crate::app::AppState;
use crate::sandbox::{SandboxError, SandboxStatus};
use crate::web::{AppError, Learner};

pub fn router() -> axum::Router<AppState> {
    Router::new()
        .route("/api/sandbox", get(status))
        .route("/api/sandbox/start", post(start))
        .route("/api/sandbox/stop", post(stop))
        .route("/api/sandbox/restart", post(restart))
        .route("/api/sandbox/reset", post(reset))
        .route("/api/sandbox/events", get(events))
}

impl From<SandboxError> for AppError {
    fn from(err: SandboxError) -> Self {
        match err {
            SandboxError::Unavailable(_) => AppError::Unavailable(err.to_string()),
            SandboxError::Failed(_) => AppError::Conflict(err.to_string()),
        }
    }
}

/// The JSON shape of `GET /api/sandbox` (and of the other answers).
fn body(status: &SandboxStatus) -> Value {
    json!({
        "state": status.state,
        "backend": status.backend,
        "pg_version": status.pg_version,
        "uptime_s": status.uptime_s,
        "size_bytes": status.size_bytes,
        "detail": status.detail,
        "last_used": status.last_used,
    })
}

async fn status(State(state): State<AppState>, learner: Learner) -> Result<Json<Value>, AppError> {
    let status = state.sandbox.status(learner.id).await?;
    Ok(Json(body(&status)))
}

/// Runs a start-like operation and answers the new status with its duration.
async fn timed<F>(state: &AppState, learner: &Learner, op: F) -> Result<Json<Value>, AppError>
where
    F: Future<Output = Result<sqlx::postgres::PgConnectOptions, SandboxError>>,
{
    let began = Instant::now();
    op.await?;
    crate::metrics::observe_sandbox_start(began.elapsed());
    let elapsed_ms = began.elapsed().as_millis() as u64;
    let status = state.sandbox.status(learner.id).await?;
    let mut answer = body(&status);
    answer["elapsed_ms"] = json!(elapsed_ms);
    Ok(Json(answer))
}

async fn start(State(state): State<AppState>, learner: Learner) -> Result<Json<Value>, AppError> {
    timed(&state, &learner, state.sandbox.start(learner.id)).await
}

async fn restart(State(state): State<AppState>, learner: Learner) -> Result<Json<Value>, AppError> {
    // The labs' traffic and leaked connections end before the server does.
    state.labs.release_learner(learner.id).await;
    timed(&state, &learner, state.sandbox.restart(learner.id)).await
}

async fn reset(State(state): State<AppState>, learner: Learner) -> Result<Json<Value>, AppError> {
    state.labs.release_learner(learner.id).await;
    timed(&state, &learner, state.sandbox.reset(learner.id)).await
}

async fn stop(State(state): State<AppState>, learner: Learner) -> Result<Json<Value>, AppError> {
    state.labs.release_learner(learner.id).await;
    state.sandbox.stop(learner.id).await?;
    let status = state.sandbox.status(learner.id).await?;
    Ok(Json(body(&status)))
}

/// `status` first (so a late subscriber knows where things stand), then one
/// `progress` event per step of any start, restart or reset.
async fn events(
    State(state): State<AppState>,
    learner: Learner,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, AppError> {
    let rx = state.sandbox.progress().subscribe(learner.id);
    let status = state.sandbox.status(learner.id).await?;
    let first = Event::default()
        .event("status")
        .json_data(body(&status))
        .ok();
    let progress = BroadcastStream::new(rx).filter_map(|item| {
        // A lagging subscriber skips events rather than ending the stream.
        let event = item.ok()?;
        Event::default().event("progress").json_data(event).ok()
    });
    // An open event stream would hold up the server's graceful shutdown
    // forever: end it on SIGINT/SIGTERM (the browser reconnects by itself).
    let stream = futures::StreamExt::take_until(
        tokio_stream::iter(first).chain(progress).map(Ok),
        Box::pin(shutdown_signal()),
    );
    Ok(Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15))))
}

/// Resolves when the server is asked to stop.
pub(super) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut sig) => {
                sig.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    tokio::select! {
        _ = ctrl_c => {}
        _ = terminate => {}
    }
}
