//! The instructor's classrooms: pages `/instructor` and
//! `/instructor/classrooms/{id}`, and the API under `/api/instructor/`
//! (create, list, rotate the join code, open/close, members, reset a
//! learner's password, bulk creation from CSV, assign an instructor, sign a
//! learner out everywhere) and the audit log (`/instructor/audit`, JSON and
//! CSV). Every route takes [`Instructor`] (or [`ManagedClassroom`] /
//! [`ManagedLearner`], which also refuse with 404 what the instructor does not
//! manage), so learners get 403 and nobody signed in 401 or a redirect.

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Extension, Json, Router};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::app::AppState;
use crate::auth::audit::{self, Action, Entry};
use crate::auth::classrooms::{self, Classroom, Member};
use crate::auth::{AuthError, import, password, sessions, users};
use crate::web::auth::{ApiError, CsrfToken, message_of, status_of};
use crate::web::identity::{Instructor, ManagedClassroom, ManagedLearner};

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
        .route(
            "/api/instructor/classrooms/{id}/instructors",
            post(assign_instructor),
        )
        .route("/api/instructor/users/{id}/password", post(reset_password))
        .route("/api/instructor/users/{id}/signout", post(sign_out_learner))
        .route("/instructor/audit", get(audit_page))
        .route("/api/instructor/audit", get(audit_json))
        .route("/api/instructor/audit.csv", get(audit_csv))
}

/// Most audit entries shown or exported at once.
const AUDIT_LIMIT: i64 = 5000;

/// Records what `by` did (after it was done).
async fn log(
    state: &AppState,
    by: &Instructor,
    action: Action,
    classroom: Option<i64>,
    target: Option<(i64, &str)>,
    detail: &str,
) -> Result<(), AuthError> {
    audit::record(
        state.store.pool(),
        Entry {
            actor_id: by.id,
            actor: &by.username,
            action,
            classroom,
            target,
            detail,
        },
    )
    .await
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
    match classrooms::list_for(state.store.pool(), me.id).await {
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
    room: ManagedClassroom,
) -> Response {
    let id = room.id;
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
    me: Instructor,
) -> Result<Json<Vec<Classroom>>, ApiError> {
    Ok(Json(classrooms::list_for(state.store.pool(), me.id).await?))
}

/// One classroom with its members and instructors.
async fn detail(
    State(state): State<AppState>,
    room: ManagedClassroom,
) -> Result<Json<Value>, ApiError> {
    let pool = state.store.pool();
    let c = classrooms::get(pool, room.id).await?;
    let m = classrooms::members(pool, room.id).await?;
    let i = classrooms::instructors(pool, room.id).await?;
    Ok(Json(
        json!({"classroom": c, "members": m, "instructors": i}),
    ))
}

async fn rotate(
    State(state): State<AppState>,
    room: ManagedClassroom,
) -> Result<Json<Classroom>, ApiError> {
    let c = classrooms::rotate_code(state.store.pool(), room.id).await?;
    log(
        &state,
        &room.by,
        Action::JoinCodeRotated,
        Some(room.id),
        None,
        &c.name,
    )
    .await?;
    Ok(Json(c))
}

async fn set_open(
    state: &AppState,
    room: &ManagedClassroom,
    open: bool,
) -> Result<Classroom, AuthError> {
    let c = classrooms::set_open(state.store.pool(), room.id, open).await?;
    let action = if open {
        Action::ClassroomOpened
    } else {
        Action::ClassroomClosed
    };
    log(state, &room.by, action, Some(room.id), None, &c.name).await?;
    Ok(c)
}

async fn open(
    State(state): State<AppState>,
    room: ManagedClassroom,
) -> Result<Json<Classroom>, ApiError> {
    Ok(Json(set_open(&state, &room, true).await?))
}

async fn close(
    State(state): State<AppState>,
    room: ManagedClassroom,
) -> Result<Json<Classroom>, ApiError> {
    Ok(Json(set_open(&state, &room, false).await?))
}

async fn members(
    State(state): State<AppState>,
    room: ManagedClassroom,
) -> Result<Json<Vec<Member>>, ApiError> {
    Ok(Json(
        classrooms::members(state.store.pool(), room.id).await?,
    ))
}

#[derive(Deserialize)]
struct AssignBody {
    username: String,
}

/// `POST .../instructors {"username"}`: another instructor manages this
/// classroom too → `{"instructors": [...]}`.
async fn assign_instructor(
    State(state): State<AppState>,
    room: ManagedClassroom,
    Json(body): Json<AssignBody>,
) -> Result<Json<Value>, ApiError> {
    let pool = state.store.pool();
    let user = classrooms::assign(pool, room.id, &body.username).await?;
    let name = body.username.trim();
    log(
        &state,
        &room.by,
        Action::InstructorAssigned,
        Some(room.id),
        Some((user, name)),
        "",
    )
    .await?;
    Ok(Json(
        json!({"instructors": classrooms::instructors(pool, room.id).await?}),
    ))
}

#[derive(Deserialize)]
struct ImportBody {
    csv: String,
}

/// `POST .../import {"csv"}` → 201 `{"created": [{"id", "username", "password"}]}`
/// (`password` only where it was generated).
async fn import_csv(
    State(state): State<AppState>,
    room: ManagedClassroom,
    Json(body): Json<ImportBody>,
) -> Result<(StatusCode, Json<Value>), ApiError> {
    let id = room.id;
    let created = import::import(state.store.pool(), id, &body.csv).await?;
    let detail = format!("{} learners", created.len());
    log(
        &state,
        &room.by,
        Action::LearnersImported,
        Some(id),
        None,
        &detail,
    )
    .await?;
    Ok((StatusCode::CREATED, Json(json!({"created": created}))))
}

/// Gives a learner a new generated password (returned once) and ends their sessions.
/// Only learners the instructor manages: anyone else is "no such learner".
async fn reset_password(
    State(state): State<AppState>,
    learner: ManagedLearner,
) -> Result<Json<Value>, ApiError> {
    let pool = state.store.pool();
    let user = users::by_id(pool, learner.id)
        .await?
        .ok_or_else(|| AuthError::NotFound("no such learner".into()))?;
    let new = password::generate();
    users::set_password(pool, user.id, &new).await?;
    log(
        &state,
        &learner.by,
        Action::PasswordReset,
        None,
        Some((user.id, &user.username)),
        "",
    )
    .await?;
    Ok(Json(
        json!({"id": user.id, "username": user.username, "password": new}),
    ))
}

/// Ends every session and bearer token of a learner the instructor manages.
async fn sign_out_learner(
    State(state): State<AppState>,
    learner: ManagedLearner,
) -> Result<Json<Value>, ApiError> {
    let pool = state.store.pool();
    let user = users::by_id(pool, learner.id)
        .await?
        .ok_or_else(|| AuthError::NotFound("no such learner".into()))?;
    let ended = sessions::delete_all_of(pool, user.id).await?;
    let detail = format!("{ended} sessions");
    log(
        &state,
        &learner.by,
        Action::SignedOutEverywhere,
        None,
        Some((user.id, &user.username)),
        &detail,
    )
    .await?;
    Ok(Json(json!({"id": user.id, "sessions_ended": ended})))
}

#[derive(Template, WebTemplate)]
#[template(path = "audit.html")]
struct AuditPage {
    entries: Vec<audit::Recorded>,
}

impl AuditPage {
    fn time(&self, at: &i64) -> String {
        crate::web::progress::format_time(at)
    }
}

async fn audit_page(State(state): State<AppState>, me: Instructor) -> Response {
    match audit::list_for(state.store.pool(), me.id, AUDIT_LIMIT).await {
        Ok(entries) => AuditPage { entries }.into_response(),
        Err(err) => page_error(err),
    }
}

/// `GET /api/instructor/audit` → `[{"id", "at", "actor", "action", "classroom_id", "target_id", "target", "detail"}]`, newest first.
async fn audit_json(
    State(state): State<AppState>,
    me: Instructor,
) -> Result<Json<Vec<audit::Recorded>>, ApiError> {
    Ok(Json(
        audit::list_for(state.store.pool(), me.id, AUDIT_LIMIT).await?,
    ))
}

async fn audit_csv(State(state): State<AppState>, me: Instructor) -> Result<Response, ApiError> {
    let entries = audit::list_for(state.store.pool(), me.id, AUDIT_LIMIT).await?;
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                axum::http::header::CONTENT_DISPOSITION,
                "attachment; filename=\"pglab-audit.csv\"",
            ),
        ],
        audit::to_csv(&entries),
    )
        .into_response())
}
