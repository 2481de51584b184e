//! HTTP routes, one file per area; handlers stay thin over the modules that
//! own the logic.

pub mod auth;
mod classrooms;
mod console;
mod dumps;
mod error;
pub mod headers;
mod health;
pub mod identity;
mod labs;
pub mod metrics;

mod lessons;
mod pages;
mod plans;
pub mod progress;
mod sandbox;
mod terminal;
mod vendor;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::middleware;
use tower_http::compression::CompressionLayer;
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::app::AppState;

pub use error::AppError;
pub use identity::{Instructor, Learner, MaybeUser};

/// The whole application's router.
pub fn router(state: AppState) -> Router {
    let security = headers::SecurityHeaders::new(
        &state.config.frame_ancestors,
        state.config.auth.public_https(),
    )
    .unwrap_or_else(|err| {
        // The setting was checked when parsed; this is a second line only.
        tracing::error!(%err, "--frame-ancestors refused; pglab's pages may not be framed");
        headers::SecurityHeaders::strict()
    });
    let max_script = state.console.config().max_script_bytes;
    let static_files = Router::new()
        .fallback_service(ServeDir::new(static_dir()))
        .layer(SetResponseHeaderLayer::overriding(
            header::CACHE_CONTROL,
            HeaderValue::from_static("public, max-age=3600"),
        ));
    Router::new()
        .merge(health::router())
        .merge(pages::router())
        .merge(metrics::router())
        .merge(auth::router())
        .merge(classrooms::router())
        .merge(progress::router())
        .merge(lessons::router())
        .merge(sandbox::router())
        .merge(labs::router())
        .merge(terminal::router())
        .merge(dumps::router())
        .merge(vendor::router())
        .merge(console::router(max_script))
        .merge(plans::router())
        .nest("/static", static_files)
        .fallback(pages::not_found)
        // Who is calling and CSRF, for every route above: merge routers
        // before this line (web::auth::layer).
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::session_layer,
        ))
        // Browsers' CSP reports carry no CSRF token: outside the session layer.
        .merge(headers::router())
        // Extractor rejections (bad path parameter, query, body) answer
        // `{"error": ...}` like every handler's refusal.
        .layer(middleware::map_response(error::plain_errors_as_json))
        .layer(middleware::from_fn_with_state(
            console::body_limit(max_script),
            error::refuse_declared_oversize,
        ))
        .layer(CompressionLayer::new())
        // Route layers see the MatchedPath: metrics and logs label by route
        // template. The trace layer never records headers or query strings.
        .layer(middleware::from_fn(metrics::track))
        .layer(crate::ops::logging::http_trace_layer())
        // Outermost: every response, errors and 404s included, gets them.
        .layer(middleware::from_fn_with_state(
            std::sync::Arc::new(security),
            headers::apply,
        ))
        .with_state(state)
}

/// `static/` next to the binary's sources in development, or `PGLAB_STATIC_DIR`.
fn static_dir() -> std::path::PathBuf {
    std::env::var_os("PGLAB_STATIC_DIR")
        .map(Into::into)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/static").into())
}
