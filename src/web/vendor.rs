//! Third-party browser files installed by npm (`package.json`,
//! `package-lock.json`), served from `node_modules` without copying them into
//! the repository: only the files named here, under `/static/vendor/`.
//!
//! The folder is `PGLAB_VENDOR_DIR` (set in the server image), else the
//! source tree's `node_modules` (build.rs runs `npm ci` when it is missing).
//! Without it the server still runs: these answer 404 with what to run, and
//! the terminal pane says so. Served like the static folder's files
//! (`web::static_files`): prepared once per version, ETag, gzip.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::static_files::PreparedFiles;
use crate::app::AppState;

/// Public name → path inside node_modules.
const FILES: &[(&str, &str)] = &[
    ("xterm.js", "@xterm/xterm/lib/xterm.js"),
    ("xterm.css", "@xterm/xterm/css/xterm.css"),
    ("addon-fit.js", "@xterm/addon-fit/lib/addon-fit.js"),
];

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/static/vendor/{file}", get(serve))
        .with_state(Arc::new(PreparedFiles::new(vendor_dir())))
}

/// The node_modules folder the files come from.
pub fn vendor_dir() -> std::path::PathBuf {
    std::env::var_os("PGLAB_VENDOR_DIR")
        .map(Into::into)
        .unwrap_or_else(|| concat!(env!("CARGO_MANIFEST_DIR"), "/node_modules").into())
}

async fn serve(
    State(files): State<Arc<PreparedFiles>>,
    Path(file): Path<String>,
    headers: HeaderMap,
) -> Response {
    let Some((_, inner)) = FILES.iter().find(|(name, _)| *name == file) else {
        return StatusCode::NOT_FOUND.into_response();
    };
    match files.get(inner).await {
        Some(file) => file.respond(&headers),
        None => (
            StatusCode::NOT_FOUND,
            format!(
                "{} is missing: run `npm ci` in pglab's source folder (or set PGLAB_VENDOR_DIR)",
                vendor_dir().join(inner).display()
            ),
        )
            .into_response(),
    }
}
