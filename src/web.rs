//! HTTP routes, one file per area; handlers stay thin over the modules that
//! own the logic.

pub mod auth;
mod classrooms;
mod compose;
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
mod prepared;
pub mod progress;
pub mod routes;
mod sandbox;
mod static_files;
mod terminal;
mod vendor;

use axum::Router;
use axum::middleware;
use tower_http::compression::CompressionLayer;

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
    behind_session_layer(max_script)
        // Who is calling and CSRF, for every route above: merge routers
        // before this line (web::auth::layer).
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::session_layer,
        ))
        // Browsers' CSP reports carry no CSRF token: outside the session layer.
        .merge(outside_session_layer())
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

/// Every route that goes through the session layer (identity and CSRF):
/// add new areas' routers here.
fn behind_session_layer(max_script: usize) -> Router<AppState> {
    Router::new()
        .merge(health::router())
        .merge(pages::router())
        .merge(metrics::router())
        .merge(auth::router())
        .merge(classrooms::router())
        .merge(progress::router())
        .merge(lessons::router())
        .merge(sandbox::router())
        .merge(compose::router())
        .merge(labs::router())
        .merge(terminal::router())
        .merge(dumps::router())
        .merge(vendor::router())
        .merge(console::router(max_script))
        .merge(plans::router())
        .nest_service("/static", static_files::router())
        .fallback(pages::not_found)
}

/// The few routes outside the session layer (no identity, no CSRF).
fn outside_session_layer() -> Router<AppState> {
    headers::router()
}

/// Every route [`router`] serves, read from the same routers it is built
/// from (see [`routes`]); the access matrix test walks it.
pub fn route_table() -> Vec<routes::Route> {
    let mut table = routes::table_of(&behind_session_layer(1024));
    table.extend(routes::table_of(&outside_session_layer()));
    table.sort();
    table
}

#[cfg(test)]
mod tests {
    #[test]
    fn route_table_lists_the_real_routes() {
        let table = super::route_table();
        let has = |m: &str, p: &str| table.iter().any(|r| r.method == m && r.path == p);
        // Fails loudly if a new axum prints routers differently.
        assert!(has("POST", "/api/sql"), "{table:?}");
        assert!(has("GET", "/api/instructor/classrooms/{id}"), "{table:?}");
        assert!(has("DELETE", "/api/sandbox/dumps/{id}"), "{table:?}");
        assert!(has("POST", super::headers::REPORT_PATH), "{table:?}");
        assert!(has("*", "/static/{*path}"), "{table:?}");
        assert!(table.len() > 70, "{} routes: {table:?}", table.len());
    }
}
