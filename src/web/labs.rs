//! The section 14 labs over HTTP (the "Labs" area of the sandbox panel,
//! `static/js/labs.js`): production traffic (14.D.1), the connection leak
//! (14.D.3), the volume demo (14.D.4) and the monitor (part E step 9). Every
//! handler acts on the signed-in [`Learner`]'s own sandbox; POSTs pass the
//! CSRF check of the session layer like every other write.

use axum::extract::{Query, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use sqlx::postgres::PgConnectOptions;

use crate::app::AppState;
use crate::labs::{ephemeral, monitor};
use crate::sandbox::SandboxState;
use crate::web::{AppError, Learner};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/labs/stats", get(stats))
        .route("/api/labs/traffic", get(traffic))
        .route("/api/labs/traffic/start", post(traffic_start))
        .route("/api/labs/traffic/stop", post(traffic_stop))
        .route("/api/labs/connections", get(leak_status))
        .route("/api/labs/connections/leak", post(leak))
        .route("/api/labs/connections/release", post(release))
        .route("/api/labs/volume-demo", get(volume_demo))
        .route("/api/labs/volume-demo/write", post(volume_write))
        .route("/api/labs/volume-demo/recreate", post(volume_recreate))
        .route("/api/labs/volume-demo/remove", post(volume_remove))
}

/// How to reach the learner's sandbox, only when it runs already: the labs
/// never start a stopped sandbox behind the learner's back.
async fn running_sandbox(
    state: &AppState,
    learner: &Learner,
) -> Result<PgConnectOptions, AppError> {
    let status = state.sandbox.status(learner.id).await?;
    if status.state != SandboxState::Running {
        return Err(AppError::Conflict(
            "your sandbox is not running: press Start in the sandbox panel first".into(),
        ));
    }
    Ok(state.sandbox.start(learner.id).await?)
}

/// A sandbox query that failed, as a 409 the panel shows.
fn pg_failed(what: &str, err: sqlx::Error) -> AppError {
    AppError::Conflict(format!("{what}: {err}"))
}

async fn stats(State(state): State<AppState>, learner: Learner) -> Result<Json<Value>, AppError> {
    let options = running_sandbox(&state, &learner).await?;
    let stats = monitor::snapshot(&options)
        .await
        .map_err(|e| pg_failed("reading the statistics failed", e))?;
    Ok(Json(json!(stats)))
}

#[derive(Deserialize)]
struct Since {
    #[serde(default)]
    since: u64,
}

async fn traffic(
    State(state): State<AppState>,
    learner: Learner,
    Query(q): Query<Since>,
) -> Json<Value> {
    match state.labs.traffic.snapshot(learner.id, q.since) {
        Some(s) => Json(json!(s)),
        None => Json(json!({
            "running": false, "queries": 0, "errors": 0, "points": [],
            "query": crate::labs::traffic::DASHBOARD_QUERY,
        })),
    }
}

async fn traffic_start(
    State(state): State<AppState>,
    learner: Learner,
) -> Result<Json<Value>, AppError> {
    let options = running_sandbox(&state, &learner).await?;
    let snapshot = state
        .labs
        .traffic
        .start(learner.id, options)
        .map_err(AppError::Conflict)?;
    Ok(Json(json!(snapshot)))
}

async fn traffic_stop(State(state): State<AppState>, learner: Learner) -> Json<Value> {
    state
        .labs
        .traffic
        .stop(learner.id, "stopped with the switch");
    Json(json!(state.labs.traffic.snapshot(learner.id, u64::MAX)))
}

async fn leak_status(State(state): State<AppState>, learner: Learner) -> Json<Value> {
    Json(json!(state.labs.leaks.status(learner.id).await))
}

async fn leak(State(state): State<AppState>, learner: Learner) -> Result<Json<Value>, AppError> {
    let options = running_sandbox(&state, &learner).await?;
    let outcome = state
        .labs
        .leaks
        .leak(learner.id, options)
        .await
        .map_err(|e| pg_failed("preparing the leak failed", e))?;
    Ok(Json(json!(outcome)))
}

async fn release(State(state): State<AppState>, learner: Learner) -> Json<Value> {
    let released = state.labs.leaks.release(learner.id).await;
    Json(json!({ "released": released }))
}

/// Both servers' `restart_proof` row counts; the throw-away one only when
/// this learner has one.
async fn sides(state: &AppState, learner: &Learner) -> Value {
    let sandbox = match running_sandbox(state, learner).await {
        Ok(o) => json!(ephemeral::read_side(&o).await),
        Err(e) => json!({ "rows": null, "error": e.to_string() }),
    };
    let throwaway = if state.labs.ephemeral.known(learner.id) {
        match state.sandbox.ephemeral_start(learner.id).await {
            Ok(o) => json!(ephemeral::read_side(&o).await),
            Err(e) => json!({ "rows": null, "error": e.to_string() }),
        }
    } else {
        Value::Null
    };
    json!({ "sandbox": sandbox, "ephemeral": throwaway })
}

/// Counts the learner's throw-away server against the server-wide cap.
fn admit_ephemeral(state: &AppState, learner: &Learner) -> Result<(), AppError> {
    if state.labs.ephemeral.admit(learner.id) {
        Ok(())
    } else {
        Err(AppError::Conflict(format!(
            "{} throw-away servers run already: try again in a few minutes",
            ephemeral::MAX_EPHEMERAL
        )))
    }
}

async fn volume_demo(State(state): State<AppState>, learner: Learner) -> Json<Value> {
    Json(sides(&state, &learner).await)
}

async fn volume_write(
    State(state): State<AppState>,
    learner: Learner,
) -> Result<Json<Value>, AppError> {
    let sandbox = running_sandbox(&state, &learner).await?;
    admit_ephemeral(&state, &learner)?;
    let throwaway = state.sandbox.ephemeral_start(learner.id).await?;
    for (name, options) in [
        ("your sandbox", &sandbox),
        ("the throw-away server", &throwaway),
    ] {
        ephemeral::write_row(options)
            .await
            .map_err(|e| AppError::Conflict(format!("writing into {name} failed: {e}")))?;
    }
    Ok(Json(sides(&state, &learner).await))
}

async fn volume_recreate(
    State(state): State<AppState>,
    learner: Learner,
) -> Result<Json<Value>, AppError> {
    let began = std::time::Instant::now();
    admit_ephemeral(&state, &learner)?;
    state.labs.release_learner(learner.id).await;
    state.sandbox.ephemeral_remove(learner.id).await?;
    state.sandbox.ephemeral_start(learner.id).await?;
    state.sandbox.restart(learner.id).await?;
    let mut answer = sides(&state, &learner).await;
    answer["elapsed_ms"] = json!(began.elapsed().as_millis() as u64);
    Ok(Json(answer))
}

async fn volume_remove(
    State(state): State<AppState>,
    learner: Learner,
) -> Result<Json<Value>, AppError> {
    state.sandbox.ephemeral_remove(learner.id).await?;
    state.labs.ephemeral.forget(learner.id);
    Ok(Json(json!({ "removed": true })))
}
