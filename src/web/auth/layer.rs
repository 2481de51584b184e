//! The session layer: runs around every route, resolves who is calling (once
//! per request) and enforces CSRF on state-changing requests.
//!
//! CSRF policy (double-submit cookie):
//! - requests with `Authorization: Bearer` need no token (browsers never add
//!   that header on their own, so another site cannot forge it);
//! - any other POST/PUT/PATCH/DELETE that carries a session cookie, or whose
//!   body is typed but not JSON (HTML forms, which other sites can submit,
//!   including the sign-in form), must send the token in `X-CSRF-Token` or in
//!   a `csrf_token` form field; it must equal the session's CSRF value, or
//!   without a session the `pglab_csrf` cookie; otherwise 403 JSON.
//! - a request with no session cookie and a JSON or no body (a script calling
//!   `POST /api/login`) passes: it carries no authority to abuse, and a
//!   cross-site page cannot send JSON without a CORS preflight. Such a request
//!   to a protected route then gets 401, not 403.
//!
//! Every page response without a `pglab_csrf` cookie gets one, so forms
//! rendered before sign-in already carry a token.
//!
//! No session fixation: every sign-in makes a new session with a new random
//! token, and when a response sets a new session cookie (any sign-in path)
//! the session the request came with is ended here, so a token planted or
//! seen before the sign-in never carries the new identity.

use std::sync::Arc;

use axum::Json;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::cookies;
use crate::app::AppState;
use crate::auth::sessions::{self, Kind, Session};
use crate::auth::token;
use crate::web::AppError;
use crate::web::identity::CurrentSession;

/// The CSRF value of this request, for forms to embed in a hidden field.
#[derive(Clone, Debug)]
pub struct CsrfToken(pub String);

/// Biggest form body read to find its `csrf_token` field.
const FORM_LIMIT: usize = 1024 * 1024;

/// The bearer token of `Authorization: Bearer <token>`, if the header is there.
fn bearer(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(header::AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim().to_string())
}

/// The session behind the request's bearer token or, without one, its cookie.
pub async fn resolve_session(
    headers: &HeaderMap,
    state: &AppState,
) -> Result<Option<Session>, AppError> {
    let pool = state.store.pool();
    let ttl = state.config.auth.lifetimes();
    let found = if let Some(token) = bearer(headers) {
        sessions::resolve(pool, &token, Kind::Bearer, ttl).await
    } else if let Some(token) = cookies::get(headers, cookies::SESSION) {
        sessions::resolve(pool, &token, Kind::Cookie, ttl).await
    } else {
        Ok(None)
    };
    found.map_err(|e| AppError::Internal(anyhow::anyhow!(e)))
}

fn forbidden_csrf() -> Response {
    (
        StatusCode::FORBIDDEN,
        Json(json!({"error": "missing or wrong CSRF token; reload the page and try again"})),
    )
        .into_response()
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            let v = v.trim().to_ascii_lowercase();
            v.starts_with("application/json")
                || (v.starts_with("application/") && v.contains("+json"))
        })
}

fn is_form(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| {
            v.trim()
                .to_ascii_lowercase()
                .starts_with("application/x-www-form-urlencoded")
        })
}

/// The middleware; installed around the whole router in `web::router`.
pub async fn session_layer(
    State(state): State<AppState>,
    request: Request,
    next: Next,
) -> Response {
    // Static files need no identity: spare them the store lookup.
    if request.uri().path().starts_with("/static/") && request.method() == Method::GET {
        return next.run(request).await;
    }
    let (mut parts, mut body) = request.into_parts();
    let session = match resolve_session(&parts.headers, &state).await {
        Ok(s) => s.map(Arc::new),
        Err(err) => return err.into_response(),
    };
    let has_bearer = bearer(&parts.headers).is_some();
    let session_cookie = cookies::get(&parts.headers, cookies::SESSION);
    let csrf_cookie = cookies::get(&parts.headers, cookies::CSRF).filter(|c| !c.is_empty());
    let cookie_session = session.as_deref().filter(|s| s.kind == Kind::Cookie);
    // The value this request's forms must carry and its CSRF cookie must hold.
    let csrf_value = match cookie_session {
        Some(s) => s.csrf.clone(),
        None => csrf_cookie.clone().unwrap_or_else(token::generate),
    };

    let safe = matches!(
        parts.method,
        Method::GET | Method::HEAD | Method::OPTIONS | Method::TRACE
    );
    let has_body_type = parts.headers.contains_key(header::CONTENT_TYPE);
    if !safe
        && !has_bearer
        && (session_cookie.is_some() || (has_body_type && !is_json(&parts.headers)))
    {
        let expected = match cookie_session {
            Some(s) => Some(s.csrf.clone()),
            None => csrf_cookie.clone(),
        };
        let mut given = parts
            .headers
            .get("x-csrf-token")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        if given.is_none() && is_form(&parts.headers) {
            let Ok(bytes) = axum::body::to_bytes(body, FORM_LIMIT).await else {
                return (
                    StatusCode::PAYLOAD_TOO_LARGE,
                    Json(json!({"error": "the form is too large"})),
                )
                    .into_response();
            };
            given = serde_urlencoded::from_bytes::<Vec<(String, String)>>(&bytes)
                .ok()
                .and_then(|fields| fields.into_iter().find(|(k, _)| k == "csrf_token"))
                .map(|(_, v)| v);
            body = Body::from(bytes);
        }
        let ok = match (expected, given) {
            (Some(e), Some(g)) if !e.is_empty() => {
                token::constant_time_eq(e.as_bytes(), g.as_bytes())
            }
            _ => false,
        };
        if !ok {
            tracing::info!(method = %parts.method, path = %parts.uri.path(), "refused: CSRF token missing or wrong");
            return forbidden_csrf();
        }
    }

    let secure = cookies::is_https(&parts.headers, &state.config.auth);
    let stale_cookie = session_cookie.is_some() && cookie_session.is_none() && !has_bearer;
    parts.extensions.insert(CurrentSession(session.clone()));
    parts.extensions.insert(CsrfToken(csrf_value.clone()));
    let mut response = next.run(Request::from_parts(parts, body)).await;

    if !has_bearer {
        let sets = |name: &str, response: &Response| {
            response
                .headers()
                .get_all(header::SET_COOKIE)
                .iter()
                .any(|v| v.as_bytes().starts_with(format!("{name}=").as_bytes()))
        };
        if csrf_cookie.as_deref() != Some(csrf_value.as_str()) && !sets(cookies::CSRF, &response) {
            let value = cookies::csrf(&csrf_value, secure);
            response.headers_mut().append(header::SET_COOKIE, value);
        }
        if let Some(old) = cookie_session.filter(|_| sets(cookies::SESSION, &response))
            && let Err(err) = sessions::delete(state.store.pool(), old.id).await
        {
            tracing::error!(%err, "could not end the session replaced by a sign-in");
        }
        if stale_cookie && !sets(cookies::SESSION, &response) {
            let value = cookies::clear_session(secure);
            response.headers_mut().append(header::SET_COOKIE, value);
        }
    }
    response
}
