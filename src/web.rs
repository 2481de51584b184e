//! HTTP routes, one file per area; handlers stay thin over the modules that
//! own the logic.

mod error;
mod health;
pub mod identity;
pub mod metrics;
mod pages;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::middleware;
use tower_http::compression::CompressionLayer;
use tower_http::services::ServeDir;
use tower_http::set_header::SetResponseHeaderLayer;

use crate::app::AppState;

pub use error::AppError;
pub use identity::Learner;

/// The whole application's router.
pub fn router(state: AppState) -> Router {
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
        .nest("/static", static_files)
        .fallback(pages::not_found)
        .layer(CompressionLayer::new())
        // Route layers see the MatchedPath: metrics and logs label by route
        // template. The trace layer never records headers or query strings.
        .layer(middleware::from_fn(metrics::track))
        .layer(crate::ops::logging::http_trace_layer())
        .with_state(state)
}

/// `static/` next to the binary's sources in development, or `PGLAB_STATIC_DIR`.
fn static_dir() -> std::path::PathBuf {
    std::env::var_os("PGLAB_STATIC_DIR")
        .map(Into::into)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/static").into())
}
