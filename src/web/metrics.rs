//! `GET /metrics` (Prometheus text format) and the middleware that counts
//! every request by route template.
//!
//! Never public by default: a scraper sends `Authorization: Bearer
//! <PGLAB_METRICS_SECRET>`; instructors will be allowed through the hook
//! [`instructor_may_read`]. Without a configured secret the route answers 404
//! to everyone else (it does not exist for them), with one it answers 401.

use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use crate::app::AppState;

pub fn router() -> Router<AppState> {
    Router::new().route("/metrics", get(metrics))
}

async fn metrics(State(state): State<AppState>, headers: HeaderMap) -> Response {
    let bearer = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    let secret = state.config.metrics_secret();
    let by_secret = matches!((secret, bearer), (Some(s), Some(b)) if s.matches(b));
    if !(by_secret || instructor_may_read(&headers, &state).await) {
        return if secret.is_some() {
            (
                StatusCode::UNAUTHORIZED,
                [(header::WWW_AUTHENTICATE, "Bearer")],
                "metrics need Authorization: Bearer <PGLAB_METRICS_SECRET>\n",
            )
                .into_response()
        } else {
            (StatusCode::NOT_FOUND, "not found\n").into_response()
        };
    }
    // The gauge is read from the backend at each scrape (one engine call),
    // so it is true whatever stopped a sandbox: a stop, the idle reaper, a
    // killed container or an engine restart. An engine that refuses to
    // answer runs no usable sandbox (0); a slow one leaves the last value in
    // place rather than holding up the scrape.
    let count = tokio::time::timeout(Duration::from_secs(3), state.sandbox.running_count()).await;
    match count {
        Ok(Ok(n)) => crate::metrics::set_sandboxes_running(i64::try_from(n).unwrap_or(i64::MAX)),
        Ok(Err(err)) => {
            tracing::debug!(%err, "metrics: cannot count running sandboxes");
            crate::metrics::set_sandboxes_running(0);
        }
        Err(_) => tracing::debug!("metrics: counting running sandboxes timed out"),
    }
    crate::metrics::set_sandbox_queue(
        i64::try_from(state.sandbox.admission().len()).unwrap_or(i64::MAX),
    );
    (
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("text/plain; version=0.0.4; charset=utf-8"),
        )],
        crate::metrics::render(),
    )
        .into_response()
}

/// HOOK(accounts): return true when the request carries a signed-in
/// instructor's bearer token or session, so that instructors can read the
/// metrics without the scraper's secret. Until accounts land, nobody can.
async fn instructor_may_read(_headers: &HeaderMap, _state: &AppState) -> bool {
    false
}

/// Middleware: counts the request and its latency under its route template
/// (`MatchedPath`, e.g. `/sections/{slug}`), `/static` for static files, or
/// `unmatched` for the 404 fallback, so that label values stay bounded.
pub async fn track(req: Request, next: Next) -> Response {
    let started = Instant::now();
    let route = match req.extensions().get::<MatchedPath>() {
        Some(matched) => route_label(matched.as_str()),
        // The static files are a fallback service nested under /static: it
        // matches no route template of its own.
        None if req.uri().path().starts_with("/static/") => "/static",
        None => "unmatched",
    }
    .to_string();
    let method = method_label(req.method().as_str());
    let response = next.run(req).await;
    crate::metrics::observe_http(
        &route,
        method,
        response.status().as_u16(),
        started.elapsed(),
    );
    response
}

/// Nested services (`/static`) match a private catch-all parameter; one
/// readable label for all of them.
fn route_label(matched: &str) -> &str {
    match matched.find("/{*") {
        Some(i) if matched[i..].contains("__private__") => &matched[..i],
        _ => matched,
    }
}

/// Known methods by name, anything else as `other` (a client may send any
/// token as a method).
fn method_label(method: &str) -> &'static str {
    match method {
        "GET" => "GET",
        "HEAD" => "HEAD",
        "POST" => "POST",
        "PUT" => "PUT",
        "PATCH" => "PATCH",
        "DELETE" => "DELETE",
        "OPTIONS" => "OPTIONS",
        _ => "other",
    }
}
