//! Third-party browser files installed by npm (`package.json`,
//! `package-lock.json`), served from `node_modules` without copying them into
//! the repository: only the files named here, under `/static/vendor/`.
//!
//! The folder is `PGLAB_VENDOR_DIR` (set in the server image), else the
//! source tree's `node_modules` (build.rs runs `npm ci` when it is missing).
//! Without it the server still runs: these answer 404 with what to run, and
//! the terminal pane says so.

use axum::Router;
use axum::extract::{Path, Request};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tower::ServiceExt;

use crate::app::AppState;

/// Public name → path inside node_modules.
const FILES: &[(&str, &str)] = &[
    ("xterm.js", "@xterm/xterm/lib/xterm.js"),
    ("xterm.css", "@xterm/xterm/css/xterm.css"),
    ("addon-fit.js", "@xterm/addon-fit/lib/addon-fit.js"),
];

pub fn router() -> Router<AppState> {
    Router::new().route("/static/vendor/{file}", get(serve))
}

/// The node_modules folder the files come from.
pub fn vendor_dir() -> std::path::PathBuf {
    std::env::var_os("PGLAB_VENDOR_DIR")
        .map(Into::into)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/node_modules").into())
}

async fn serve(Path(file): Path<String>, request: Request) -> Response {
    let Some((_, inner)) = FILES.iter().find(|(name, _)| *name == file) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    let path = vendor_dir().join(inner);
    if !path.is_file() {
        return (
            StatusCode::NOT_FOUND,
            format!(
                "{} is missing: run `npm ci` in pglab's source folder (or set PGLAB_VENDOR_DIR)",
                path.display()
            ),
        )
            .into_response();
    }
    match tower_http::services::ServeFile::new(path)
        .oneshot(request)
        .await
    {
        Ok(res) => {
            let mut res = res.map(axum::body::Body::new).into_response();
            res.headers_mut().insert(
                header::CACHE_CONTROL,
                HeaderValue::from_static("public, max-age=3600"),
            );
            res
        }
        Err(e) => (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    }
}
