//! The instructor's classrooms: pages `/instructor` and
//! `/instructor/classrooms/{id}`, and the API under `/api/instructor/`
//! (create, list, rotate the join code, open/close, members, reset a
//! learner's password, bulk creation from CSV). Every route takes
//! [`Instructor`], so learners get 403 and nobody signed in 401 or a redirect.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::AppState;
use crate::auth::classrooms::{self, Classroom, Member};
use crate::auth::{AuthError, import, password, users};
use crate::web::auth::{ApiError, CsrfToken, message_of, status_of};
use crate::web::identity::Instructor;

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/instructor", get(index_page))
        .route("/instructor/classrooms/{id}", get(classroom_page))
        .route("/api/instructor/classrooms", get(list).post(create))
        .route("/api/instructor/classrooms/{id}", get(detail))
        .route("/api/instructor/classrooms/{id}/rotate", post(rotate))
        .route("/api/instructor/classrooms/{id}/open", post(open))
        .route("/api/instructor/classrooms/{id}/close", post(close))
        .route("/api/instructor/classrooms/{id}/members", get(members))
        .route("/api/instructor/classrooms/{id}/import", post(import_csv))
        .route("/api/instructor/users/{id}/password", post(reset_password))
}

#[derive(Template, WebTemplate)]
#[template(path = "classrooms.html")]
struct IndexPage {
    csrf: String,
    username: String,
    classrooms: Vec<Classroom>,
}

#[derive(Template, WebTemplate)]
#[template(path = "classroom.html")]
struct ClassroomPage {
    csrf: String,
    classroom: Classroom,
    members: Vec<Member>,
}

fn page_error(err: AuthError) -> Response {
    (status_of(&err), message_of(&err)).into_response()
}

async fn index_page(
    State(state): State<AppState>,
    Extension(CsrfToken(csrf)): Extension<CsrfToken>,
    me: Instructor,
) -> Response {
    match classrooms::list(state.store.pool()).await {
        Ok(classrooms) => IndexPage {
            csrf,
            username: me.username,
            classrooms,
        }
        .into_response(),
        Err(err) => page_error(err),
    }
}

async fn classroom_page(
    State(state): State<AppState>,
    Extension(CsrfToken(csrf)): Extension<CsrfToken>,
    _me: Instructor,
    Path(id): Path<i64>,
) -> Response {
    let pool = state.store.pool();
    let loaded = async {
        Ok::<_, AuthError>((
            classrooms::get(pool, id).await?,
            classrooms::members(pool, id).await?,
        ))
    };
    match loaded.await {
        Ok((classroom, members)) => ClassroomPage {
            csrf,
            classroom,
            members,
        }
        .into_response(),
        Err(err) => page_error(err),
    }
}

#[derive(Deserialize)]
struct CreateBody {
    name: String,
}

/// `POST /api/instructor/classrooms {"name"}` → 201 `{"id", "join_code", ...}`.
async fn create(
    State(state): State<AppState>,
    me: Instructor,
    Json(body): Json<CreateBody>,
) -> Result<(StatusCode, Json<Classroom>), ApiError> {
    let c = classrooms::create(state.store.pool(), &body.name, me.id).await?;
    tracing::info!(classroom = c.id, by = %me.username, "classroom created");
    Ok((StatusCode::CREATED, Json(c)))
}

/// `GET /api/instructor/classrooms` → `[{"id", "name", "join_code", "open", "members", "created_at"}]`.
async fn list(
    State(state): State<AppState>,
    _me: Instructor,
) -> Result<Json<Vec<Classroom>>, ApiError> {
    Ok(Json(classrooms::list(state.store.pool()).await?))
}

/// One classroom with its members.
async fn detail(
    State(state): State<AppState>,
    _me: Instructor,
    Path(id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let pool = state.store.pool();
    let c = classrooms::get(pool, id).await?;
    let m = classrooms::members(pool, id).await?;
    Ok(Json(json!({"classroom": c, "members": m})))
}

async fn rotate(
    State(state): State<AppState>,
    _me: Instructor,
    Path(id): Path<i64>,
) -> Result<Json<Classroom>, ApiError> {
    Ok(Json(classrooms::rotate_code(state.store.pool(), id).await?))
}

async fn open(
    State(state): State<AppState>,
    _me: Instructor,
    Path(id): Path<i64>,
) -> Result<Json<Classroom>, ApiError> {
    Ok(Json(
        classrooms::set_open(state.store.pool(), id, true).await?,
    ))
}

async fn close(
    State(state): State<AppState>,
    _me: Instructor,
    Path(id): Path<i64>,
) -> Result<Json<Classroom>, ApiError> {
    Ok(Json(
        classrooms::set_open(state.store.pool(), id, false).await?,
    ))
}

async fn members(
    State(state): State<AppState>,
    _me: Instructor,
    Path(id): Path<i64>,
) -> Result<Json<Vec<Member>>, ApiError> {
    Ok(Json(classrooms::members(state.store.pool(), id).await?))
}

#[derive(Deserialize)]
struct ImportBody {
    csv: String,
}

/// `POST .../import {"csv"}` → 201 `{"created": [{"id", "username", "password"}]}`
/// (`password` only where it was generated).
async fn import_csv(
    State(state): State<AppState>,
    me: Instructor,
    Path(id): Path<i64>,
    Json(body): Json<ImportBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let created = import::import(state.store.pool(), id, &body.csv).await?;
    tracing::info!(classroom = id, count = created.len(), by = %me.username, "learners created from CSV");
    Ok((StatusCode::CREATED, Json(json!({"created": created}))))
}

/// Gives a learner a new generated password (returned once) and ends their sessions.
async fn reset_password(
    State(state): State<AppState>,
    me: Instructor,
    Path(user_id): Path<i64>,
) -> Result<Json<Value>, ApiError> {
    let pool = state.store.pool();
    let user = users::by_id(pool, user_id)
        .await?
        .ok_or_else(|| AuthError::NotFound(format!("no user {user_id}")))?;
    if user.role != users::Role::Learner {
        return Err(AuthError::Refused("only learners' passwords can be reset here".into()).into());
    }
    let new = password::generate();
    users::set_password(pool, user.id, &new).await?;
    tracing::info!(user = %user.username, by = %me.username, "learner password reset");
    Ok(Json(
        json!({"id": user.id, "username": user.username, "password": new}),
    ))
}
