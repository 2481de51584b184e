//! The learner's dumps over HTTP (see [`crate::dumps`]): make, list,
//! download, delete, restore into a new database. Every handler acts on the
//! signed-in [`Learner`]'s own dumps only; a dump id of someone else is
//! simply not found.

use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};
use tower::ServiceExt;

use crate::app::AppState;
use crate::dumps::{DumpError, Dumps};
use crate::web::{AppError, Learner};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/sandbox/dumps", get(list).post(make))
        .route("/api/sandbox/dumps/{id}", get(download).delete(remove))
        .route("/api/sandbox/dumps/{id}/restore", post(restore))
}

impl From<DumpError> for AppError {
    fn from(err: DumpError) -> Self {
        match err {
            DumpError::BadRequest(m) => AppError::BadRequest(m),
            DumpError::NotFound => AppError::NotFound("no such dump".into()),
            DumpError::Conflict(m) => AppError::Conflict(m),
            DumpError::Sandbox(e) => e.into(),
            DumpError::Io(m) => AppError::Internal(anyhow::anyhow!(m)),
        }
    }
}

fn dumps(state: &AppState, learner: &Learner) -> Dumps {
    Dumps::new(
        &state.config.data_dir,
        learner.id,
        state.config.dumps.clone(),
    )
}

async fn list(State(state): State<AppState>, learner: Learner) -> Result<Json<Value>, AppError> {
    let list = dumps(&state, &learner).list().await?;
    Ok(Json(json!({ "dumps": list })))
}

async fn make(
    State(state): State<AppState>,
    learner: Learner,
) -> Result<(StatusCode, Json<Value>), AppError> {
    let info = dumps(&state, &learner).make(state.sandbox.as_ref()).await?;
    Ok((StatusCode::CREATED, Json(json!(info))))
}

async fn download(
    State(state): State<AppState>,
    learner: Learner,
    Path(id): Path<String>,
    request: Request,
) -> Result<Response, AppError> {
    let path = dumps(&state, &learner).path(&id)?;
    let served = tower_http::services::ServeFile::new(path)
        .oneshot(request)
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!(e)))?;
    let mut response = served.map(Body::new).into_response();
    let disposition = format!("attachment; filename=\"labdb-{id}.dump\"");
    if let Ok(value) = HeaderValue::from_str(&disposition) {
        response
            .headers_mut()
            .insert(header::CONTENT_DISPOSITION, value);
    }
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    response
        .headers_mut()
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    Ok(response)
}

async fn remove(
    State(state): State<AppState>,
    learner: Learner,
    Path(id): Path<String>,
) -> Result<StatusCode, AppError> {
    dumps(&state, &learner).delete(&id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Deserialize)]
struct RestoreBody {
    database: String,
    /// Drop and re-create the database when it exists.
    #[serde(default)]
    replace: bool,
}

async fn restore(
    State(state): State<AppState>,
    learner: Learner,
    Path(id): Path<String>,
    Json(body): Json<RestoreBody>,
) -> Result<Json<Value>, AppError> {
    let began = std::time::Instant::now();
    let tables = dumps(&state, &learner)
        .restore(state.sandbox.as_ref(), &id, &body.database, body.replace)
        .await?;
    let same = tables.iter().all(|t| t.labdb_rows == Some(t.rows));
    Ok(Json(json!({
        "database": body.database,
        "tables": tables,
        "counts_match_labdb": same,
        "duration_ms": began.elapsed().as_millis() as u64,
    })))
}
