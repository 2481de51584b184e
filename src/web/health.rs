//! Liveness and readiness probes.

use axum::extract::State;
use axum::routing::get;
use axum::{Json, Router};
use serde_json::{Value, json};

use crate::app::AppState;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/healthz", get(healthz))
        .route("/readyz", get(readyz))
}

/// 200 `ok` as soon as the server answers at all.
async fn healthz() -> &'static str {
    "ok"
}

/// Whether the server can do its job: the store answers and the sandbox
/// backend can run sandboxes (and which backend it is, and why).
async fn readyz(State(state): State<AppState>) -> Json<Value> {
    let store_ok = sqlx::query("select 1")
        .execute(state.store.pool())
        .await
        .is_ok();
    let sandbox = state.sandbox.health().await;
    Json(json!({
        "ready": store_ok && sandbox.usable,
        "store": store_ok,
        "sandbox": sandbox,
    }))
}
