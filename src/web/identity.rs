//! Who is making the request.
//!
//! Handlers take a [`Learner`] argument to act on the signed-in person's own
//! sandbox, sessions and progress, never on an id from the request;
//! [`Instructor`] for instructor-only routes; [`MaybeUser`] for pages anyone
//! may see. The session itself is resolved once per request by
//! `web::auth::session_layer` (session cookie or `Authorization: Bearer`),
//! which also enforces CSRF; the extractors only read its answer.
//!
//! Nobody signed in: `/api/*` answers 401 `{"error": "sign in first"}`, pages
//! redirect to `/login?next=<where they were going>`. A learner on an
//! instructor route: 403 (JSON for the API, a page otherwise).
//!
//! Instructor routes about one classroom or one learner take
//! [`ManagedClassroom`] or [`ManagedLearner`] instead of reading the path's
//! `{id}` themselves: they refuse, with the same 404 as an id that does not
//! exist, a classroom or learner the instructor does not manage
//! (`auth::classrooms::manages`, `manages_learner`).

use std::sync::Arc;

use askama::Template;
use askama_web::WebTemplate;
use axum::Json;
use axum::extract::{FromRequestParts, OptionalFromRequestParts, OriginalUri};
use axum::http::request::Parts;
use axum::http::{Method, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::json;

use crate::app::AppState;
use crate::auth::Role;
use crate::auth::sessions::{Kind, Session};
use crate::sandbox::LearnerId;
use crate::web::AppError;

/// The signed-in person making the request (a learner or an instructor).
#[derive(Clone, Debug)]
pub struct Learner {
    pub id: LearnerId,
    pub username: String,
    pub role: Role,
}

/// A signed-in instructor; anyone else is refused.
#[derive(Clone, Debug)]
pub struct Instructor {
    pub id: LearnerId,
    pub username: String,
}

/// The signed-in person if any, for pages that render for everyone.
#[derive(Clone, Debug)]
pub struct MaybeUser(pub Option<Learner>);

/// The session the request came with, as found by the session layer.
#[derive(Clone, Debug)]
pub struct CurrentSession(pub Option<Arc<Session>>);

/// Why an identity extractor refused the request; knows whether to answer
/// with JSON (API) or with a redirect or page (browser pages).
#[derive(Debug)]
pub enum AuthRejection {
    /// Nobody is signed in.
    SignIn { api: bool, next: String },
    /// Signed in, but not an instructor.
    NotInstructor { api: bool },
    /// The store failed while resolving the session, or the resource in the
    /// path is not the caller's to see (answered like a missing one).
    Internal(AppError),
}

#[derive(Template, WebTemplate)]
#[template(path = "auth/forbidden.html")]
struct ForbiddenPage;

impl IntoResponse for AuthRejection {
    fn into_response(self) -> Response {
        match self {
            Self::SignIn { api: true, .. } => AppError::Unauthorized.into_response(),
            Self::SignIn { api: false, next } => {
                Redirect::to(&format!("/login?next={}", encode_component(&next))).into_response()
            }
            Self::NotInstructor { api: true } => (
                StatusCode::FORBIDDEN,
                Json(json!({"error": "this needs an instructor account"})),
            )
                .into_response(),
            Self::NotInstructor { api: false } => {
                (StatusCode::FORBIDDEN, ForbiddenPage).into_response()
            }
            Self::Internal(err) => err.into_response(),
        }
    }
}

/// The path and query the client asked for (before any nesting stripped it).
fn requested(parts: &Parts) -> String {
    let uri = parts
        .extensions
        .get::<OriginalUri>()
        .map(|o| &o.0)
        .unwrap_or(&parts.uri);
    uri.path_and_query()
        .map(|pq| pq.as_str().to_string())
        .unwrap_or_else(|| "/".into())
}

fn is_api(path: &str) -> bool {
    path == "/api" || path.starts_with("/api/")
}

/// The session of this request: from the layer, or resolved here when a
/// route was merged outside the layer (reads work; cookie writes are refused).
async fn session(parts: &mut Parts, state: &AppState) -> Result<Option<Arc<Session>>, AppError> {
    if let Some(CurrentSession(s)) = parts.extensions.get::<CurrentSession>() {
        return Ok(s.clone());
    }
    let found = crate::web::auth::resolve_session(&parts.headers, state).await?;
    // Without the layer nobody checked CSRF: refuse cookie-authenticated
    // writes rather than fail open (a route merged below the layer in web.rs).
    let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
    if !safe && found.as_ref().is_some_and(|s| s.kind == Kind::Cookie) {
        tracing::error!(path = %parts.uri.path(), "route outside the session layer: refusing a cookie write");
        return Err(AppError::Forbidden(
            "missing or wrong CSRF token; reload the page and try again".into(),
        ));
    }
    let found = found.map(Arc::new);
    parts.extensions.insert(CurrentSession(found.clone()));
    Ok(found)
}

impl FromRequestParts<AppState> for Learner {
    type Rejection = AuthRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        match session(parts, state)
            .await
            .map_err(AuthRejection::Internal)?
        {
            Some(s) => Ok(Self {
                id: s.user.id,
                username: s.user.username.clone(),
                role: s.user.role,
            }),
            None => {
                let next = requested(parts);
                Err(AuthRejection::SignIn {
                    api: is_api(parts.uri.path()) || is_api(&next),
                    next,
                })
            }
        }
    }
}

impl OptionalFromRequestParts<AppState> for Learner {
    type Rejection = AuthRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Option<Self>, Self::Rejection> {
        Ok(MaybeUser::from_request_parts(parts, state).await?.0)
    }
}

impl FromRequestParts<AppState> for Instructor {
    type Rejection = AuthRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let learner =
            <Learner as FromRequestParts<AppState>>::from_request_parts(parts, state).await?;
        if learner.role != Role::Instructor {
            return Err(AuthRejection::NotInstructor {
                api: is_api(&requested(parts)),
            });
        }
        Ok(Self {
            id: learner.id,
            username: learner.username,
        })
    }
}

impl FromRequestParts<AppState> for MaybeUser {
    type Rejection = AuthRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let s = session(parts, state)
            .await
            .map_err(AuthRejection::Internal)?;
        Ok(Self(s.map(|s| Learner {
            id: s.user.id,
            username: s.user.username.clone(),
            role: s.user.role,
        })))
    }
}

/// A classroom the signed-in instructor manages, from the path's `{id}`.
#[derive(Clone, Debug)]
pub struct ManagedClassroom {
    pub id: i64,
    pub by: Instructor,
}

/// A learner the signed-in instructor manages (a member of one of their
/// classrooms), from the path's `{id}`.
#[derive(Clone, Debug)]
pub struct ManagedLearner {
    pub id: i64,
    pub by: Instructor,
}

/// The path's `{id}` as a number.
async fn path_id(parts: &mut Parts, state: &AppState) -> Result<i64, AuthRejection> {
    let params = axum::extract::RawPathParams::from_request_parts(parts, state)
        .await
        .map_err(|_| AuthRejection::Internal(AppError::BadRequest("no id in the path".into())))?;
    params
        .iter()
        .find(|(k, _)| *k == "id")
        .and_then(|(_, v)| v.parse::<i64>().ok())
        .ok_or_else(|| {
            AuthRejection::Internal(AppError::BadRequest(
                "the id in the path must be a number".into(),
            ))
        })
}

impl FromRequestParts<AppState> for ManagedClassroom {
    type Rejection = AuthRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let by = Instructor::from_request_parts(parts, state).await?;
        let id = path_id(parts, state).await?;
        let ok = crate::auth::classrooms::manages(state.store.pool(), by.id, id)
            .await
            .map_err(|e| AuthRejection::Internal(AppError::Internal(anyhow::anyhow!(e))))?;
        if !ok {
            return Err(AuthRejection::Internal(AppError::NotFound(format!(
                "no classroom {id}"
            ))));
        }
        Ok(Self { id, by })
    }
}

impl FromRequestParts<AppState> for ManagedLearner {
    type Rejection = AuthRejection;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        let by = Instructor::from_request_parts(parts, state).await?;
        let id = path_id(parts, state).await?;
        let ok = crate::auth::classrooms::manages_learner(state.store.pool(), by.id, id)
            .await
            .map_err(|e| AuthRejection::Internal(AppError::Internal(anyhow::anyhow!(e))))?;
        if !ok {
            return Err(AuthRejection::Internal(AppError::NotFound(
                "no such learner".into(),
            )));
        }
        Ok(Self { id, by })
    }
}

/// Percent-encodes a URL component (everything but unreserved characters).
pub fn encode_component(s: &str) -> String {
    use std::fmt::Write;
    s.bytes()
        .fold(String::with_capacity(s.len()), |mut out, b| {
            if b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b'~') {
                out.push(b as char);
            } else {
                let _ = write!(out, "%{b:02X}");
            }
            out
        })
}
