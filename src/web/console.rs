//! The console's routes: the full-page console, running SQL, polling runs,
//! cancelling and closing sessions, history. Thin over `crate::console`.

use std::time::Duration;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::{Deserialize, Serialize};
use serde_json::json;

use crate::app::AppState;
use crate::console::records::RunInfo;
use crate::console::result::RunResult;
use crate::console::session::{Progress, Run};
use crate::console::{ConsoleError, cursor, history, schema};
use crate::web::{AppError, Learner};

/// The body limit of `POST /api/sql`, the largest of any route. Bodies are
/// read whole up to a generous limit, so that a script over the script
/// limit gets a JSON 413 rather than a connection closed while the browser
/// is still sending (JSON escaping can double a script's size).
pub fn body_limit(max_script_bytes: usize) -> usize {
    max_script_bytes.saturating_mul(2).max(32 << 20)
}

pub fn router(max_script_bytes: usize) -> Router<AppState> {
    let body_limit = body_limit(max_script_bytes);
    Router::new()
        .route("/console", get(page))
        .route(
            "/api/sql",
            post(run_sql).layer(DefaultBodyLimit::max(body_limit)),
        )
        .route(
            "/api/sql/statement",
            post(statement_at).layer(DefaultBodyLimit::max(body_limit)),
        )
        .route("/api/runs/{run_id}", get(poll_run))
        .route(
            "/api/runs/{run_id}/statements/{index}/rows",
            get(whole_rows),
        )
        .route("/api/sessions", get(list_sessions))
        .route("/api/sessions/{name}/cancel", post(cancel))
        .route("/api/sessions/{name}/notifications", get(notifications))
        .route("/api/sessions/{name}/close", post(close))
        .route("/api/history", get(search_history))
        .route("/api/sandbox/schema", get(schema))
}

/// The query of `GET /api/sandbox/schema`.
#[derive(Debug, Deserialize)]
struct SchemaQuery {
    /// The console session whose database completion follows (`\c`).
    #[serde(default = "default_session")]
    session: String,
}

/// `GET /api/sandbox/schema?session=T1`: the learner's own schema for
/// completion as that console session sees it, or an empty one (`running:
/// false`) while their sandbox is not running: reading it never starts a
/// sandbox.
async fn schema(
    State(state): State<AppState>,
    learner: Learner,
    Query(query): Query<SchemaQuery>,
) -> Result<Response, AppError> {
    let mut info = schema::for_session(
        &state.console,
        state.sandbox.as_ref(),
        learner.id,
        &query.session,
    )
    .await
    .map_err(|e| match e {
        schema::SchemaError::Sandbox(e) => AppError::from(e),
        e @ schema::SchemaError::Read(_) => AppError::Conflict(e.to_string()),
    })?;
    info.lab_files = schema::lab_files(&state.course);
    Ok(Json(info).into_response())
}

/// The body of `POST /api/sql/statement`.
#[derive(Debug, Deserialize)]
struct StatementRequest {
    sql: String,
    /// The cursor, in UTF-16 code units of `sql`.
    cursor: usize,
}

/// `POST /api/sql/statement`: the statement under the cursor as the server's
/// splitter cuts it (Shift+Enter), or `null` when the text has none. Runs
/// nothing.
async fn statement_at(
    State(state): State<AppState>,
    _learner: Learner,
    body: Result<Json<StatementRequest>, JsonRejection>,
) -> Result<Response, AppError> {
    let limit = state.console.config().max_script_bytes;
    let Json(req) = match body {
        Ok(body) => body,
        Err(rejection) => return Ok(body_error(rejection, limit)),
    };
    if req.sql.len() > limit {
        let message = format!("the script is over the console's limit of {limit} bytes");
        return Ok((
            StatusCode::PAYLOAD_TOO_LARGE,
            Json(json!({ "error": message })),
        )
            .into_response());
    }
    Ok(Json(json!({ "statement": cursor::statement_at(&req.sql, req.cursor) })).into_response())
}

#[derive(Template, WebTemplate)]
#[template(path = "console.html")]
struct ConsolePage;

async fn page() -> ConsolePage {
    ConsolePage
}

/// The body of `POST /api/sql`.
#[derive(Debug, Deserialize)]
struct SqlRequest {
    #[serde(default = "default_session")]
    session: String,
    sql: String,
    #[serde(default)]
    exercise: Option<String>,
    #[serde(default)]
    timeout_s: Option<u64>,
}

fn default_session() -> String {
    "T1".into()
}

/// A run's answer: finished (the result's fields inline) or still running.
#[derive(Serialize)]
struct RunAnswer<'a> {
    status: &'static str,
    run_id: &'a str,
    session: &'a str,
    #[serde(flatten)]
    result: Option<&'a RunResult>,
    progress: Option<Progress>,
    /// The run is in the learner's history (and, once done, its statements
    /// in their evidence and progress): committed to the store before this
    /// answer was sent.
    saved: bool,
}

impl From<ConsoleError> for AppError {
    fn from(err: ConsoleError) -> Self {
        match err {
            ConsoleError::BadRequest(m) | ConsoleError::TooLarge(m) => AppError::BadRequest(m),
            ConsoleError::Busy(m) => AppError::Conflict(m),
            ConsoleError::NotFound(m) => AppError::NotFound(m),
        }
    }
}

/// Rejections of the JSON body as JSON errors (413 for an oversized body).
fn body_error(rejection: JsonRejection, limit: usize) -> Response {
    let status = rejection.status();
    let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
        format!(
            "the request is too large: the console runs scripts up to {} bytes",
            limit
        )
    } else {
        format!(
            "invalid request body: {} (expected {{\"session\": \"T1\", \"sql\": \"...\"}})",
            rejection.body_text()
        )
    };
    (status, Json(json!({ "error": message }))).into_response()
}

async fn answer(state: &AppState, run: &Run, wait: Duration) -> Response {
    let result = run.wait(wait).await;
    let progress = match result {
        Some(_) => None,
        None => Some(state.console.progress(run).await),
    };
    // Only what has committed is claimed saved: a finished run waits for
    // its evidence, a running one for its history entry.
    let saved = match (&result, state.records.receipt(&run.id)) {
        (Some(_), Some(receipt)) => receipt.all().await,
        (None, Some(receipt)) => receipt.history().await,
        (_, None) => false,
    };
    if result.is_some() {
        // Delivered: the result need not stay in memory.
        state.console.forget(&run.id);
        state.records.delivered(&run.id);
    }
    let body = RunAnswer {
        status: if result.is_some() { "done" } else { "running" },
        run_id: &run.id,
        session: &run.session,
        result: result.as_deref(),
        progress,
        saved,
    };
    // The backend itself is down (e.g. the Docker engine stopped): nothing
    // the learner's SQL did, so an HTTP 503 with the reason as `error`, and
    // the usual fields beside it so the pane can still render the run.
    if let Some(why) = result
        .as_deref()
        .and_then(|r| r.sandbox_unavailable.as_ref())
    {
        let mut json = serde_json::to_value(&body).unwrap_or_else(|_| json!({}));
        json["error"] = json!(why);
        return (StatusCode::SERVICE_UNAVAILABLE, Json(json)).into_response();
    }
    Json(body).into_response()
}

async fn run_sql(
    State(state): State<AppState>,
    learner: Learner,
    body: Result<Json<SqlRequest>, JsonRejection>,
) -> Result<Response, AppError> {
    let limit = state.console.config().max_script_bytes;
    let Json(req) = match body {
        Ok(body) => body,
        Err(rejection) => return Ok(body_error(rejection, limit)),
    };
    if let Some(ex) = &req.exercise
        && (ex.len() > 32 || !ex.chars().all(|c| c.is_ascii_alphanumeric() || c == '.'))
    {
        return Err(AppError::BadRequest(format!("invalid exercise id {ex:?}")));
    }
    // History, evidence and progress are written by the run's recorder
    // (it outlives this request); the answer waits for their commit.
    let info = RunInfo {
        learner: learner.id,
        session: &req.session,
        script: &req.sql,
        exercise: req.exercise.as_deref(),
    };
    let submitted =
        state
            .console
            .submit_with(learner.id, &req.session, &req.sql, req.timeout_s, |run| {
                state.records.start(run, info)
            });
    let run = match submitted {
        Ok(run) => run,
        Err(ConsoleError::TooLarge(m)) => {
            return Ok((StatusCode::PAYLOAD_TOO_LARGE, Json(json!({ "error": m }))).into_response());
        }
        Err(err) => return Err(err.into()),
    };
    let wait = Duration::from_millis(state.console.config().wait_ms);
    Ok(answer(&state, &run, wait).await)
}

#[derive(Deserialize)]
struct PollQuery {
    wait_ms: Option<u64>,
}

async fn poll_run(
    State(state): State<AppState>,
    learner: Learner,
    Path(run_id): Path<String>,
    Query(q): Query<PollQuery>,
) -> Result<Response, AppError> {
    let run = state.console.run(learner.id, &run_id).ok_or_else(|| {
        AppError::NotFound(
            "no such run (a finished run is forgotten once its result is delivered)".into(),
        )
    })?;
    let wait = Duration::from_millis(q.wait_ms.unwrap_or(2000).min(25_000));
    Ok(answer(&state, &run, wait).await)
}

#[derive(Deserialize)]
struct RowsQuery {
    #[serde(default)]
    offset: usize,
    limit: Option<usize>,
}

/// Largest page of `GET /api/runs/{run}/statements/{i}/rows`, in rows and
/// (about) bytes of values.
const PAGE_ROWS: usize = 10_000;
const PAGE_BYTES: usize = 8 << 20;

/// `GET /api/runs/{run}/statements/{i}/rows?offset=&limit=`: a page of the
/// whole of a result the console cut ("show all"), values uncut.
async fn whole_rows(
    State(state): State<AppState>,
    learner: Learner,
    Path((run_id, index)): Path<(String, usize)>,
    Query(q): Query<RowsQuery>,
) -> Result<impl IntoResponse, AppError> {
    let limit = q.limit.unwrap_or(1000).clamp(1, PAGE_ROWS);
    let page = state
        .console
        .whole_rows(learner.id, &run_id, index, q.offset, limit, PAGE_BYTES)
        .ok_or_else(|| {
            AppError::NotFound(
                "this result is no longer kept whole (cut results are kept for 30 minutes, the oldest go first when a learner keeps many): run the statement again".into(),
            )
        })?;
    Ok(Json(page))
}

async fn list_sessions(State(state): State<AppState>, learner: Learner) -> impl IntoResponse {
    Json(json!({ "sessions": state.console.sessions(learner.id) }))
}

async fn notifications(
    State(state): State<AppState>,
    learner: Learner,
    Path(name): Path<String>,
    Query(q): Query<PollQuery>,
) -> Result<impl IntoResponse, AppError> {
    let wait = Duration::from_millis(q.wait_ms.unwrap_or(0).min(10_000));
    Ok(Json(
        state.console.notifications(learner.id, &name, wait).await?,
    ))
}

async fn cancel(
    State(state): State<AppState>,
    learner: Learner,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    let cancelled = state.console.cancel(learner.id, &name).await?;
    Ok(Json(json!({ "cancelled": cancelled })))
}

async fn close(
    State(state): State<AppState>,
    learner: Learner,
    Path(name): Path<String>,
) -> Result<impl IntoResponse, AppError> {
    if !crate::console::session::valid_session_name(&name) {
        return Err(AppError::BadRequest(
            "not a session name (a letter, then letters, digits or _; at most 16)".into(),
        ));
    }
    let closed = state.console.close(learner.id, &name).await.is_ok();
    Ok(Json(json!({ "closed": closed })))
}

#[derive(Deserialize)]
struct HistoryQuery {
    q: Option<String>,
    limit: Option<i64>,
}

async fn search_history(
    State(state): State<AppState>,
    learner: Learner,
    Query(q): Query<HistoryQuery>,
) -> Result<impl IntoResponse, AppError> {
    let entries = history::search(
        &state.store,
        learner.id,
        q.q.as_deref(),
        q.limit.unwrap_or(100),
    )
    .await?;
    Ok(Json(json!({ "entries": entries })))
}
