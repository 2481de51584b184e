//! The accounts JSON API: `POST /api/signup`, `POST /api/login`,
//! `POST /api/logout`, `POST /api/logout/everywhere`, `GET /api/me`.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::json;

use super::{ApiError, ClientAddr, cookies, passwords_off, set_session_cookies};
use crate::app::AppState;
use crate::auth::sessions::{self, Kind};
use crate::auth::users::{self, Role};
use crate::auth::{classrooms, signin};
use crate::web::identity::{CurrentSession, Learner};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/signup", post(signup))
        .route("/api/login", post(login))
        .route("/api/logout", post(logout))
        .route("/api/logout/everywhere", post(logout_everywhere))
        .route("/api/me", get(me))
}

#[derive(Deserialize)]
struct SignupBody {
    username: String,
    password: String,
    join_code: String,
}

/// Creates a learner in the classroom of `join_code` and signs them in
/// (session cookie), answering 201 `{"id", "username"}`.
async fn signup(
    State(state): State<AppState>,
    headers: HeaderMap,
    Json(body): Json<SignupBody>,
) -> Result<Response, ApiError> {
    if let Some(refusal) = passwords_off(&state) {
        return Err(refusal.into());
    }
    let pool = state.store.pool();
    let classroom = classrooms::by_open_code(pool, &body.join_code).await?;
    let user = users::create(
        pool,
        &body.username,
        &body.password,
        Role::Learner,
        Some(classroom.id),
    )
    .await?;
    tracing::info!(user = %user.username, classroom = classroom.id, "learner signed up");
    let session =
        sessions::create(pool, user.id, Kind::Cookie, state.config.auth.lifetimes()).await?;
    let mut response = (
        StatusCode::CREATED,
        Json(json!({"id": user.id, "username": user.username})),
    )
        .into_response();
    let secure = cookies::is_https(&headers, &state.config.auth);
    set_session_cookies(response.headers_mut(), &session, secure);
    Ok(response)
}

#[derive(Deserialize)]
struct LoginBody {
    username: String,
    password: String,
}

/// Signs in: a session cookie for the browser plus a bearer token for
/// scripts, `{"token", "user": {...}, "csrf_token"}`.
async fn login(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    Json(body): Json<LoginBody>,
) -> Result<Response, ApiError> {
    if let Some(refusal) = passwords_off(&state) {
        return Err(refusal.into());
    }
    let pool = state.store.pool();
    let config = &state.config.auth;
    let (user, session) = signin::sign_in(
        pool,
        config,
        &body.username,
        &body.password,
        &addr,
        Kind::Cookie,
    )
    .await?;
    let bearer = sessions::create(pool, user.id, Kind::Bearer, config.lifetimes()).await?;
    let mut response = Json(json!({
        "token": bearer.token,
        "user": user,
        "csrf_token": session.csrf,
    }))
    .into_response();
    set_session_cookies(
        response.headers_mut(),
        &session,
        cookies::is_https(&headers, config),
    );
    response.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    Ok(response)
}

/// Ends the session (or bearer token) the request came with and clears the cookie.
async fn logout(
    State(state): State<AppState>,
    headers: HeaderMap,
    Extension(CurrentSession(session)): Extension<CurrentSession>,
) -> Result<Response, ApiError> {
    if let Some(s) = session {
        sessions::delete(state.store.pool(), s.id).await?;
        // Signed out, a learner leaves the line of a full classroom.
        state.sandbox.admission().cancel(s.user.id);
        tracing::info!(user = %s.user.username, "signed out");
    }
    let mut response = Json(json!({"signed_out": true})).into_response();
    let secure = cookies::is_https(&headers, &state.config.auth);
    response
        .headers_mut()
        .append(header::SET_COOKIE, cookies::clear_session(secure));
    Ok(response)
}

/// Ends every session and bearer token of the signed-in user, on every
/// device: `{"signed_out": true, "sessions_ended": N}`.
async fn logout_everywhere(
    State(state): State<AppState>,
    headers: HeaderMap,
    learner: Learner,
) -> Result<Response, ApiError> {
    let ended = sessions::delete_all_of(state.store.pool(), learner.id).await?;
    state.sandbox.admission().cancel(learner.id);
    tracing::info!(user = %learner.username, ended, "signed out everywhere");
    let mut response = Json(json!({"signed_out": true, "sessions_ended": ended})).into_response();
    let secure = cookies::is_https(&headers, &state.config.auth);
    response
        .headers_mut()
        .append(header::SET_COOKIE, cookies::clear_session(secure));
    Ok(response)
}

/// The signed-in user: `{"id", "username", "role"}`.
async fn me(learner: Learner) -> Json<serde_json::Value> {
    Json(json!({"id": learner.id, "username": learner.username, "role": learner.role}))
}
