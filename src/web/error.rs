//! The one error type of HTTP handlers.
//!
//! Policy: a learner's own mistake (bad SQL, a failed check) is data in a 200
//! answer, never an `AppError`. `AppError` is for requests we refuse (4xx, with
//! a message meant for the user) and for our own failures (5xx, logged in
//! full, answered with a generic message that leaks nothing).
//!
//! Refusals made before a handler runs (axum's extractor rejections: a path
//! parameter that is not valid UTF-8 or not a number, an unreadable query
//! string or JSON body, a body over the limit; and empty ones such as 405)
//! are plain text; [`plain_errors_as_json`] gives them the same
//! `{"error": message}` shape. [`refuse_declared_oversize`] refuses a body
//! declared larger than any route reads before waiting for it.

use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error("{0}")]
    BadRequest(String),
    #[error("sign in first")]
    Unauthorized,
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Unavailable(String),
    #[error(transparent)]
    Internal(#[from] anyhow::Error),
}

impl AppError {
    fn status(&self) -> StatusCode {
        match self {
            Self::BadRequest(_) => StatusCode::BAD_REQUEST,
            Self::Unauthorized => StatusCode::UNAUTHORIZED,
            Self::Forbidden(_) => StatusCode::FORBIDDEN,
            Self::NotFound(_) => StatusCode::NOT_FOUND,
            Self::Conflict(_) => StatusCode::CONFLICT,
            Self::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            Self::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }
}

impl From<sqlx::Error> for AppError {
    fn from(err: sqlx::Error) -> Self {
        Self::Internal(err.into())
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        let message = match &self {
            Self::Internal(err) => {
                tracing::error!(error = ?err, "internal error");
                "something went wrong on the server; it has been logged".to_string()
            }
            other => other.to_string(),
        };
        (status, Json(json!({ "error": message }))).into_response()
    }
}

/// Largest plain-text error body read back to wrap it (rejection messages
/// are one line).
const MAX_PLAIN_ERROR_BYTES: usize = 64 * 1024;

/// Response layer: a 4xx or 5xx answer in plain text, or with no content
/// type at all, becomes `{"error": <its text, or the status' reason>}`;
/// every other answer passes untouched. Status and headers are kept.
pub async fn plain_errors_as_json(res: Response) -> Response {
    let status = res.status();
    if !(status.is_client_error() || status.is_server_error()) {
        return res;
    }
    let plain = res
        .headers()
        .get(header::CONTENT_TYPE)
        .is_none_or(|v| v.as_bytes().starts_with(b"text/plain"));
    if !plain {
        return res;
    }
    let (mut parts, body) = res.into_parts();
    let bytes = axum::body::to_bytes(body, MAX_PLAIN_ERROR_BYTES)
        .await
        .unwrap_or_default();
    let text = String::from_utf8_lossy(&bytes).trim().to_string();
    let message = if text.is_empty() {
        status
            .canonical_reason()
            .unwrap_or("request refused")
            .to_lowercase()
    } else {
        text
    };
    let body = json!({ "error": message }).to_string();
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    Response::from_parts(parts, Body::from(body))
}

/// Request layer: a request whose `Content-Length` is over `max` (the
/// largest body any route reads) is refused at once with a JSON 413, rather
/// than waited for while its body (maybe never) arrives.
pub async fn refuse_declared_oversize(
    State(max): State<usize>,
    req: Request,
    next: Next,
) -> Response {
    let declared = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok());
    match declared {
        Some(len) if len > max as u64 => (
            StatusCode::PAYLOAD_TOO_LARGE,
            Json(json!({
                "error": format!("the request body ({len} bytes) is larger than pglab reads ({max} bytes)")
            })),
        )
            .into_response(),
        _ => next.run(req).await,
    }
}
