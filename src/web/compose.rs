//! The learner's compose file over HTTP: the editor page, read and save
//! (validated by `sandbox::compose`), `up` streaming its progress as text
//! lines the way `docker compose up -d` prints them, `down`, and "reset to
//! pglab's settings". Every handler acts on the signed-in [`Learner`] only.

use std::convert::Infallible;
use std::time::Instant;

use askama::Template;
use askama_web::WebTemplate;
use axum::body::{Body, Bytes};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::app::AppState;
use crate::sandbox::compose::{self, Caps, ComposeError, ComposeFiles};
use crate::web::{AppError, Learner};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/sandbox/compose", get(page))
        .route(
            "/api/sandbox/compose",
            get(read)
                .put(save)
                // A little above the file cap, so that a larger file gets the
                // validator's message rather than a bare 413.
                .layer(DefaultBodyLimit::max(compose::MAX_BYTES * 2 + 1024)),
        )
        .route("/api/sandbox/compose/up", post(up))
        .route("/api/sandbox/compose/down", post(down))
        .route("/api/sandbox/compose/reset", post(reset))
}

#[derive(Template, WebTemplate)]
#[template(path = "compose.html")]
struct ComposePage;

async fn page(_learner: Learner) -> ComposePage {
    ComposePage
}

fn caps(state: &AppState) -> Caps {
    Caps::from_config(&state.config.sandbox)
}

fn refused(e: &ComposeError) -> Response {
    (
        StatusCode::BAD_REQUEST,
        Json(json!({"error": e.to_string(), "line": e.line, "reason": e.message})),
    )
        .into_response()
}

/// `GET /api/sandbox/compose`: the saved file (or pglab's settings written
/// as one), whether a learner's file is in force, and the caps.
async fn read(State(state): State<AppState>, learner: Learner) -> Result<Json<Value>, AppError> {
    let caps = caps(&state);
    let saved = ComposeFiles::new(&state.store).get(learner.id).await?;
    let images: Vec<&str> = caps.images.iter().map(|(n, _)| n.as_str()).collect();
    let (yaml, applied, updated_at) = match &saved {
        Some(s) => (s.yaml.clone(), s.applied.clone(), Some(s.updated_at)),
        None => (compose::default_file(&caps), None, None),
    };
    Ok(Json(json!({
        "yaml": yaml,
        "saved": saved.is_some(),
        "updated_at": updated_at,
        "in_force": if applied.is_some() { "compose" } else { "pglab" },
        "applied": applied,
        "backend": state.sandbox.backend_name(),
        "caps": {
            "memory_mib": caps.memory_bytes / (1024 * 1024),
            "cpus": caps.nano_cpus as f64 / 1e9,
            "pids": caps.pids,
            "images": images,
        },
    })))
}

#[derive(serde::Deserialize)]
struct SaveBody {
    yaml: String,
}

/// `PUT /api/sandbox/compose {"yaml"}`: validates and saves; a refused
/// file changes nothing and answers 400 with the line and the reason.
async fn save(
    State(state): State<AppState>,
    learner: Learner,
    Json(body): Json<SaveBody>,
) -> Result<Response, AppError> {
    let validated = match compose::validate(&body.yaml, &caps(&state)) {
        Ok(v) => v,
        Err(e) => return Ok(refused(&e)),
    };
    ComposeFiles::new(&state.store)
        .save(learner.id, &body.yaml)
        .await?;
    Ok(
        Json(json!({"saved": true, "plan": validated.plan, "notes": validated.notes}))
            .into_response(),
    )
}

/// `POST /api/sandbox/compose/up`: validates the saved file again (the caps
/// may have changed), puts it in force and re-creates the container.
async fn up(State(state): State<AppState>, learner: Learner) -> Result<Response, AppError> {
    let files = ComposeFiles::new(&state.store);
    let mut notes = Vec::new();
    if let Some(saved) = files.get(learner.id).await? {
        let validated = match compose::validate(&saved.yaml, &caps(&state)) {
            Ok(v) => v,
            Err(e) => return Ok(refused(&e)),
        };
        if !state.sandbox.runs_compose() {
            return Err(state
                .sandbox
                .compose_up(learner.id)
                .await
                .err()
                .map_or_else(
                    || AppError::Conflict("not a container backend".into()),
                    Into::into,
                ));
        }
        files.set_applied(learner.id, &validated.plan).await?;
        notes = validated.notes;
    }
    Ok(stream_up(state, learner.id, notes))
}

/// `POST /api/sandbox/compose/reset`: forgets the file and re-creates the
/// container with pglab's own settings (its own volume, data kept there).
async fn reset(State(state): State<AppState>, learner: Learner) -> Result<Response, AppError> {
    ComposeFiles::new(&state.store).clear(learner.id).await?;
    if !state.sandbox.runs_compose() {
        return Ok(Json(json!({"in_force": "pglab"})).into_response());
    }
    Ok(stream_up(
        state,
        learner.id,
        vec!["pglab's own settings".into()],
    ))
}

/// Runs the up in its own task (a closed browser does not cut it short)
/// and streams its progress as lines of text.
fn stream_up(state: AppState, learner: i64, notes: Vec<String>) -> Response {
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Bytes, Infallible>>(32);
    tokio::spawn(async move {
        let began = Instant::now();
        let send = |line: String| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(Ok(Bytes::from(line + "\n"))).await;
            }
        };
        for note in notes {
            send(format!(" ! {note}")).await;
        }
        // Sessions on the old container end cleanly now; the console and
        // terminal open new ones on the next use.
        state.labs.release_learner(learner).await;
        state.console.close_all(learner).await;
        let mut events = state.sandbox.progress().subscribe(learner);
        let sandbox = state.sandbox.clone();
        let mut op = tokio::spawn(async move { sandbox.compose_up(learner).await });
        send("[+] Running".to_string()).await;
        let result = loop {
            tokio::select! {
                ev = events.recv() => {
                    if let Ok(ev) = ev && !ev.done {
                        send(format!(" ⠿ {}  ({} ms)", ev.message, ev.elapsed_ms)).await;
                    }
                }
                res = &mut op => break res,
            }
        };
        match result {
            Ok(Ok(_)) => {
                let status = state.sandbox.status(learner).await.ok();
                let name = status.and_then(|s| s.name).unwrap_or_default();
                send(format!(
                    " ✔ Container {name}  Started: PostgreSQL answers ({} ms)",
                    began.elapsed().as_millis()
                ))
                .await;
            }
            Ok(Err(e)) => send(format!(" ✘ failed: {e}")).await,
            Err(e) => send(format!(" ✘ failed: {e}")).await,
        }
    });
    Response::builder()
        .header(header::CONTENT_TYPE, "text/plain; charset=utf-8")
        .header(header::CACHE_CONTROL, "no-store")
        .body(Body::from_stream(
            tokio_stream::wrappers::ReceiverStream::new(rx),
        ))
        .unwrap_or_else(|_| StatusCode::INTERNAL_SERVER_ERROR.into_response())
}

#[derive(serde::Deserialize, Default)]
struct DownBody {
    #[serde(default)]
    volumes: bool,
}

/// `POST /api/sandbox/compose/down {"volumes": bool}`.
async fn down(
    State(state): State<AppState>,
    learner: Learner,
    body: Option<Json<DownBody>>,
) -> Result<Json<Value>, AppError> {
    let volumes = body.map(|Json(b)| b.volumes).unwrap_or_default();
    state.labs.release_learner(learner.id).await;
    state.console.close_all(learner.id).await;
    state.sandbox.compose_down(learner.id, volumes).await?;
    Ok(Json(json!({"down": true, "volumes_removed": volumes})))
}
