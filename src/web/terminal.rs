//! `GET /api/sandbox/terminal?cols=&rows=`: the signed-in learner's sandbox
//! terminal over a WebSocket (protocol and limits in [`crate::terminal`]);
//! `GET /terminal`: the same pane on a page of its own. Instructors watch a
//! learner's terminal read-only at `/instructor/learners/{id}/terminal`.
//!
//! Refused before the upgrade: nobody signed in (401), a browser page of
//! another origin (403: cross-site WebSocket hijacking, since browsers send
//! cookies with cross-site WebSocket handshakes), too many terminals open
//! (429). The terminal always belongs to the signed-in learner: nothing in
//! the request names a sandbox.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::ws::WebSocketUpgrade;
use axum::extract::{Extension, Query, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;

use crate::app::AppState;
use crate::config::ServeConfig;
use crate::sandbox::TerminalSize;
use crate::terminal::{MAX_INPUT_FRAME, Slot, Watch};
use crate::web::identity::CurrentSession;
use crate::web::identity::ManagedLearner;
use crate::web::{AppError, Learner};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/terminal", get(page))
        .route("/api/sandbox/terminal", get(open))
        .route("/instructor/learners/{id}/terminal", get(watch_page))
        .route("/api/instructor/learners/{id}/terminal", get(watch))
}

#[derive(Template, WebTemplate)]
#[template(path = "terminal_watch.html")]
struct WatchPage {
    learner: i64,
    username: String,
}

/// The learner's username, or 404.
async fn username(state: &AppState, learner: i64) -> Result<String, AppError> {
    sqlx::query_scalar("select username from users where id = ?")
        .bind(learner)
        .fetch_optional(state.store.pool())
        .await?
        .ok_or_else(|| AppError::NotFound("no such learner".into()))
}

/// An instructor's read-only view of a learner's terminal.
async fn watch_page(
    State(state): State<AppState>,
    ManagedLearner { id: learner, .. }: ManagedLearner,
) -> Result<WatchPage, AppError> {
    let username = username(&state, learner).await?;
    Ok(WatchPage { learner, username })
}

/// `GET /api/instructor/learners/{id}/terminal`: the learner's terminal
/// output from now on, read-only (see [`crate::terminal::watch`]).
async fn watch(
    State(state): State<AppState>,
    ManagedLearner {
        id: learner,
        by: instructor,
    }: ManagedLearner,
    Extension(CurrentSession(session)): Extension<CurrentSession>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Result<Response, AppError> {
    if !origin_allowed(&headers, &state.config) {
        return Err(AppError::Forbidden(
            "this terminal can only be watched from pglab's own pages".into(),
        ));
    }
    let session = session.ok_or(AppError::Unauthorized)?;
    let who = username(&state, learner).await?;
    let pool = state.store.pool().clone();
    tracing::info!(instructor = instructor.id, learner, "watching a terminal");
    Ok(ws
        .max_message_size(MAX_INPUT_FRAME)
        .on_upgrade(move |socket| async move {
            let shutdown = Box::pin(super::sandbox::shutdown_signal());
            let viewer = crate::terminal::watch::Viewer {
                learner,
                learner_name: who,
                instructor_name: instructor.username,
            };
            crate::terminal::watch::run(socket, viewer, pool, session.id, shutdown).await;
        }))
}

#[derive(Template, WebTemplate)]
#[template(path = "terminal.html")]
struct TerminalPage;

/// The full-page terminal (signed-in only: the extractor redirects).
async fn page(_learner: Learner) -> TerminalPage {
    TerminalPage
}

#[derive(Deserialize)]
struct SizeQuery {
    cols: Option<u32>,
    rows: Option<u32>,
}

/// `scheme://host[:port]` this server is reached at: the public URL's, or
/// the request's `Host` with the scheme the proxy settings say.
fn own_origin(headers: &HeaderMap, config: &ServeConfig) -> Option<String> {
    if let Some(url) = config.public_url() {
        let (scheme, rest) = url.split_once("://")?;
        let host = rest.split('/').next()?;
        return Some(format!("{scheme}://{host}").to_ascii_lowercase());
    }
    let host = headers.get(header::HOST)?.to_str().ok()?;
    let scheme = if crate::ops::proxy::headers_say_https(headers, config) {
        "https"
    } else {
        "http"
    };
    Some(format!("{scheme}://{host}").to_ascii_lowercase())
}

/// No `Origin` (a script, not a browser page) passes: the cookie or bearer
/// token is then the caller's own.
fn origin_allowed(headers: &HeaderMap, config: &ServeConfig) -> bool {
    match headers.get(header::ORIGIN) {
        None => true,
        Some(origin) => {
            let origin = origin.to_str().unwrap_or("").to_ascii_lowercase();
            own_origin(headers, config).is_some_and(|own| own == origin)
        }
    }
}

async fn open(
    State(state): State<AppState>,
    learner: Learner,
    Extension(CurrentSession(session)): Extension<CurrentSession>,
    Query(size): Query<SizeQuery>,
    headers: HeaderMap,
    ws: WebSocketUpgrade,
) -> Result<Response, AppError> {
    if !origin_allowed(&headers, &state.config) {
        tracing::info!(learner = learner.id, "terminal refused: foreign Origin");
        return Err(AppError::Forbidden(
            "this terminal can only be opened from pglab's own pages".into(),
        ));
    }
    let session = session.ok_or(AppError::Unauthorized)?;
    let config = state.config.terminal.clone();
    let Some(slot) = Slot::take(learner.id, config.max_per_learner) else {
        let msg = format!(
            "you already have {} terminals open: close one first",
            config.max_per_learner
        );
        return Ok((StatusCode::TOO_MANY_REQUESTS, Json(json!({"error": msg}))).into_response());
    };
    let size = TerminalSize::clamped(size.cols.unwrap_or(80), size.rows.unwrap_or(24));
    let pool = state.store.pool().clone();
    let sandbox = state.sandbox.clone();
    Ok(ws
        .max_message_size(MAX_INPUT_FRAME)
        .on_upgrade(move |mut socket| async move {
            let _slot = slot;
            let term = match sandbox.open_terminal(learner.id, size).await {
                Ok(t) => t,
                Err(err) => {
                    use axum::extract::ws::Message;
                    let msg = json!({"type": "closed", "reason": "error",
                        "message": format!("terminal closed: {err}")});
                    let _ = socket.send(Message::Text(msg.to_string().into())).await;
                    let _ = socket.send(Message::Close(None)).await;
                    return;
                }
            };
            let watch = Watch {
                learner: learner.id,
                sandbox: sandbox.clone(),
                config,
                pool,
                session: session.id,
                shutdown: Box::pin(super::sandbox::shutdown_signal()),
            };
            let ended = crate::terminal::run(socket, term, watch).await;
            tracing::info!(learner = learner.id, ?ended, "terminal closed");
        }))
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        config: ServeConfig,
    }

    fn headers(host: &str, origin: Option<&str>) -> HeaderMap {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, host.parse().unwrap());
        if let Some(o) = origin {
            h.insert(header::ORIGIN, o.parse().unwrap());
        }
        h
    }

    #[test]
    fn only_our_own_origin_may_open_a_terminal() {
        let config = Cli::parse_from(["pglab"]).config;
        let ok = headers("127.0.0.1:8080", Some("http://127.0.0.1:8080"));
        assert!(origin_allowed(&ok, &config));
        assert!(origin_allowed(&headers("127.0.0.1:8080", None), &config));
        let evil = headers("127.0.0.1:8080", Some("http://evil.example"));
        assert!(!origin_allowed(&evil, &config));
        let public =
            Cli::parse_from(["pglab", "--public-url", "https://lab.example.org/pg"]).config;
        let via_proxy = headers("10.0.0.5:8080", Some("https://lab.example.org"));
        assert!(origin_allowed(&via_proxy, &public));
        let plain = headers("10.0.0.5:8080", Some("http://lab.example.org"));
        assert!(!origin_allowed(&plain, &public));
    }
}
