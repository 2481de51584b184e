//! The learner's own sandbox over HTTP: status, start, stop, restart, reset,
//! live start progress as server-sent events, the server log (kept lines
//! and a live SSE feed) and `docker inspect` with a jq filter. Every handler acts on the
//! signed-in [`Learner`]'s sandbox only.
//!
//! Failures answer JSON errors: 503 when the backend is unavailable (engine
//! down, image missing), 409 when this learner's sandbox failed (a restart or
//! reset is the way out); never a 500 page.

use std::convert::Infallible;
use std::time::{Duration, Instant};

use axum::extract::{Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::Stream;
use serde_json::{Value, json};
use tokio_stream::StreamExt;
use tokio_stream::wrappers::BroadcastStream;

use crate::app::AppState;
use crate::sandbox::line::{self, Begun, Op};
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
        .route("/api/sandbox/log", get(log_lines))
        .route("/api/sandbox/log/events", get(log_events))
        .route("/api/sandbox/inspect", get(inspect))
        .route("/api/sandbox/inspect/jq", post(inspect_jq))
}

impl From<SandboxError> for AppError {
    fn from(err: SandboxError) -> Self {
        match err {
            SandboxError::Unavailable(_) => AppError::Unavailable(err.to_string()),
            SandboxError::Failed(_) | SandboxError::Left(_) => AppError::Conflict(err.to_string()),
        }
    }
}

/// The JSON shape of `GET /api/sandbox` (and of the other answers). A
/// learner waiting for a place is `"state": "queued"` with their
/// `queue_position` and the sentence they are told as `detail`.
fn body(state: &AppState, status: &SandboxStatus) -> Value {
    if let Some(position) = state.sandbox.admission().position(status.learner) {
        return json!({
            "state": "queued",
            "queue_position": position,
            "backend": status.backend,
            "pg_version": status.pg_version,
            "uptime_s": status.uptime_s,
            "size_bytes": status.size_bytes,
            "detail": crate::sandbox::admission::full_message(position),
            "last_used": status.last_used,
        });
    }
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
    // Asking shows the learner still waits, should a start of theirs be in line.
    state.sandbox.admission().seen(learner.id);
    let status = state.sandbox.status(learner.id).await?;
    Ok(Json(body(&state, &status)))
}

/// Runs a start-like operation and answers the new status with its
/// duration; `202 Accepted` with the `queued` status at once when the
/// learner has to wait in line (the start goes on by itself).
async fn timed(state: &AppState, learner: &Learner, op: Op) -> Result<Response, AppError> {
    let began = Instant::now();
    let begun = line::run(&state.sandbox, learner.id, op).await?;
    let accepted = match begun {
        Begun::Ready(_) => {
            crate::metrics::observe_sandbox_start(began.elapsed());
            false
        }
        Begun::InLine(_) => true,
    };
    let elapsed_ms = began.elapsed().as_millis() as u64;
    let status = state.sandbox.status(learner.id).await?;
    let mut answer = body(state, &status);
    answer["elapsed_ms"] = json!(elapsed_ms);
    if accepted {
        return Ok((StatusCode::ACCEPTED, Json(answer)).into_response());
    }
    Ok(Json(answer).into_response())
}

async fn start(State(state): State<AppState>, learner: Learner) -> Result<Response, AppError> {
    timed(&state, &learner, Op::Start).await
}

async fn restart(State(state): State<AppState>, learner: Learner) -> Result<Response, AppError> {
    // The labs' traffic and leaked connections end before the server does.
    state.labs.release_learner(learner.id).await;
    timed(&state, &learner, Op::Restart).await
}

async fn reset(State(state): State<AppState>, learner: Learner) -> Result<Response, AppError> {
    state.labs.release_learner(learner.id).await;
    timed(&state, &learner, Op::Reset).await
}

async fn stop(State(state): State<AppState>, learner: Learner) -> Result<Json<Value>, AppError> {
    state.labs.release_learner(learner.id).await;
    state.sandbox.stop(learner.id).await?;
    let status = state.sandbox.status(learner.id).await?;
    Ok(Json(body(&state, &status)))
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
        .json_data(body(&state, &status))
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

#[derive(serde::Deserialize)]
struct Since {
    since: Option<u64>,
}

/// `GET /api/sandbox/log?since=SEQ`: the kept lines after SEQ, as JSON
/// lines (`application/x-ndjson`), oldest first.
async fn log_lines(
    State(state): State<AppState>,
    learner: Learner,
    Query(q): Query<Since>,
) -> impl IntoResponse {
    let log = state.sandbox_logs.open(&state.sandbox, learner.id);
    log.wait_filled(Duration::from_millis(800)).await;
    let mut body = String::new();
    for line in log.since(q.since.unwrap_or(0)) {
        if let Ok(text) = serde_json::to_string(&line) {
            body.push_str(&text);
            body.push('\n');
        }
    }
    ([(header::CONTENT_TYPE, "application/x-ndjson")], body)
}

/// `GET /api/sandbox/log/events`: the kept lines after `?since=` (or the
/// `Last-Event-ID` a reconnecting browser sends), then each new line as it
/// is written: `event: line`, `id: SEQ`, data `{seq, time, level, text}`.
async fn log_events(
    State(state): State<AppState>,
    learner: Learner,
    Query(q): Query<Since>,
    headers: HeaderMap,
) -> Sse<impl Stream<Item = Result<Event, Infallible>>> {
    let last_id = headers
        .get("last-event-id")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok());
    let since = last_id.or(q.since).unwrap_or(0);
    let log = state.sandbox_logs.open(&state.sandbox, learner.id);
    // Subscribe first, then read what is kept: no line falls in between.
    let rx = log.subscribe();
    let kept = log.since(since);
    let mut last = kept.last().map_or(since, |l| l.seq);
    let event = |line: &crate::sandbox::log::LogLine| {
        Event::default()
            .event("line")
            .id(line.seq.to_string())
            .json_data(line)
            .ok()
    };
    let first: Vec<Event> = kept.iter().filter_map(event).collect();
    let live = BroadcastStream::new(rx).filter_map(move |item| {
        let line = item.ok()?;
        if line.seq <= last {
            return None;
        }
        last = line.seq;
        event(&line)
    });
    let stream = futures::StreamExt::take_until(
        tokio_stream::iter(first).chain(live).map(Ok),
        Box::pin(shutdown_signal()),
    );
    Sse::new(stream).keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
}

#[derive(serde::Deserialize)]
struct JqQuery {
    jq: Option<String>,
}

#[derive(serde::Deserialize)]
struct JqBody {
    filter: String,
}

/// `GET /api/sandbox/inspect[?jq=FILTER]`: `docker inspect` of the
/// learner's container (secrets redacted), or what the filter makes of it.
async fn inspect(
    State(state): State<AppState>,
    learner: Learner,
    Query(q): Query<JqQuery>,
) -> Result<Json<Value>, AppError> {
    let facts = state.sandbox.inspect(learner.id).await?;
    match q.jq {
        None => Ok(Json(facts)),
        Some(filter) => jq_answer(&filter, &facts).await,
    }
}

/// `POST /api/sandbox/inspect/jq {"filter": "..."}`: the same with the
/// filter in the body.
async fn inspect_jq(
    State(state): State<AppState>,
    learner: Learner,
    Json(body): Json<JqBody>,
) -> Result<Json<Value>, AppError> {
    let facts = state.sandbox.inspect(learner.id).await?;
    jq_answer(&body.filter, &facts).await
}

async fn jq_answer(filter: &str, facts: &Value) -> Result<Json<Value>, AppError> {
    let outputs = crate::sandbox::jq::run_bounded(filter, facts)
        .await
        .map_err(|e| AppError::BadRequest(format!("jq: {e}")))?;
    Ok(Json(json!({"filter": filter, "outputs": outputs})))
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
