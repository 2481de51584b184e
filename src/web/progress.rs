//! Exercise checks and progress over HTTP: a learner's "Check my work" and
//! overview, and the instructor's classroom matrix (HTML, JSON, CSV and live
//! SSE) and learner detail page, scoped to the classrooms and learners the
//! instructor manages. Handlers are thin over `crate::progress`.

use std::collections::HashSet;
use std::convert::Infallible;
use std::time::Duration;

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, State};
use axum::http::header;
use axum::response::IntoResponse;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::routing::{get, post};
use axum::{Json, Router};
use futures::Stream;
use serde::Serialize;
use sqlx::Connection;

use crate::app::AppState;
use crate::auth::audit::{self, Action, Entry};
use crate::course::checks::{CheckContext, CheckResult, run_checks};
use crate::course::sandbox_check::SandboxFacts;
use crate::progress::catalog::{self, CatalogError};
use crate::progress::evidence::{self, Evidence};
use crate::progress::matrix::{self, ExerciseColumn, Matrix, Member};
use crate::progress::record::{self, ExerciseProgress};
use crate::progress::{Status, now};
use crate::sandbox::{LearnerId, SandboxState, SandboxStatus};
use crate::web::AppError;
use crate::web::identity::{Learner, ManagedClassroom, ManagedLearner};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/api/exercises/{id}/check", post(check_exercise))
        .route("/api/progress", get(my_progress))
        .route("/progress", get(my_progress_page))
        .route("/api/instructor/classrooms/{id}/progress", get(matrix_json))
        .route(
            "/api/instructor/classrooms/{id}/progress.csv",
            get(matrix_csv),
        )
        .route("/api/instructor/classrooms/{id}/events", get(matrix_events))
        .route("/instructor/classrooms/{id}/progress", get(matrix_page))
        .route("/api/instructor/learners/{id}", get(learner_json))
        .route(
            "/api/instructor/learners/{id}/sandbox/{action}",
            post(learner_sandbox),
        )
        .route("/instructor/learners/{id}", get(learner_page))
}

/// The answer to "Check my work".
#[derive(Serialize)]
struct CheckAnswer {
    exercise: String,
    passed: bool,
    message: String,
    details: Vec<CheckResult>,
    /// The exercise's standing after this check (a pass is kept for good).
    status: Status,
}

async fn check_exercise(
    State(state): State<AppState>,
    learner: Learner,
    Path(id): Path<String>,
) -> Result<Json<CheckAnswer>, AppError> {
    let checks = catalog::exercise_checks(&state.course, &id).map_err(|e| match e {
        CatalogError::UnknownExercise(_) => AppError::NotFound(e.to_string()),
        CatalogError::NoChecks(_) => AppError::BadRequest(e.to_string()),
        CatalogError::BadSidecar(_) => AppError::Internal(anyhow::anyhow!(e.to_string())),
    })?;
    let options = state
        .sandbox
        .start(learner.id)
        .await
        .map_err(|e| AppError::Unavailable(format!("your sandbox is not available: {e}")))?;
    let mut conn = sqlx::PgConnection::connect_with(&options)
        .await
        .map_err(|e| AppError::Unavailable(format!("cannot connect to your sandbox: {e}")))?;
    // Checks that judge the learner's own queries replay their evidence.
    let recent = if checks.uses_learner_queries() {
        evidence::recent_statements(state.store.pool(), learner.id, &id, 200).await?
    } else {
        Vec::new()
    };
    // Checks of the running container judge what the backend inspects.
    let sandbox = if checks.uses_sandbox() {
        Some(SandboxFacts {
            backend: state.sandbox.backend_name().to_string(),
            inspect: state
                .sandbox
                .inspect(learner.id)
                .await
                .map_err(|e| e.to_string()),
        })
    } else {
        None
    };
    let ctx = CheckContext {
        options: Some(&options),
        recent_statements: &recent,
        sandbox: sandbox.as_ref(),
    };
    let outcome = run_checks(&mut conn, &checks, &ctx).await;
    let _ = conn.close().await;
    if outcome.passed {
        crate::metrics::check_passed();
    }
    let status = record::record_check(
        &state.store,
        &state.progress,
        learner.id,
        &id,
        outcome.passed,
        &outcome.message,
        now(),
    )
    .await
    .map_err(|e| AppError::Internal(e.into()))?;
    Ok(Json(CheckAnswer {
        exercise: id,
        passed: outcome.passed,
        message: outcome.message,
        details: outcome.details,
        status,
    }))
}

/// A learner's own progress over the whole course.
#[derive(Serialize)]
struct Overview {
    exercises: Vec<OverviewRow>,
    passed: usize,
    total: usize,
    /// Share of the course done, 0 to 100.
    percent: u32,
}

#[derive(Serialize)]
struct OverviewRow {
    id: String,
    title: String,
    status: Status,
    attempts: i64,
    first_passed_at: Option<i64>,
    last_check_message: Option<String>,
}

async fn overview(state: &AppState, user_id: i64) -> Result<Overview, AppError> {
    let columns = catalog::exercise_columns(&state.course);
    let rows = record::learner_progress(state.store.pool(), user_id).await?;
    Ok(build_overview(&columns, &rows))
}

fn build_overview(columns: &[ExerciseColumn], rows: &[ExerciseProgress]) -> Overview {
    let exercises: Vec<OverviewRow> = columns
        .iter()
        .map(|c| {
            let row = rows.iter().find(|r| r.exercise_id == c.id);
            OverviewRow {
                id: c.id.clone(),
                title: c.title.clone(),
                status: row.map_or(Status::NotStarted, |r| r.status.0),
                attempts: row.map_or(0, |r| r.attempts),
                first_passed_at: row.and_then(|r| r.first_passed_at),
                last_check_message: row.and_then(|r| r.last_check_message.clone()),
            }
        })
        .collect();
    let passed = exercises
        .iter()
        .filter(|e| e.status == Status::Passed)
        .count();
    let total = exercises.len();
    let percent = (passed * 100).checked_div(total).unwrap_or(0) as u32;
    Overview {
        exercises,
        passed,
        total,
        percent,
    }
}

async fn my_progress(
    State(state): State<AppState>,
    learner: Learner,
) -> Result<Json<Overview>, AppError> {
    Ok(Json(overview(&state, learner.id).await?))
}

#[derive(Template, WebTemplate)]
#[template(path = "progress/overview.html")]
struct OverviewPage {
    username: String,
    overview: Overview,
}

async fn my_progress_page(
    State(state): State<AppState>,
    learner: Learner,
) -> Result<OverviewPage, AppError> {
    Ok(OverviewPage {
        overview: overview(&state, learner.id).await?,
        username: learner.username,
    })
}

// ----- The instructor's matrix -----

async fn classroom_members(
    state: &AppState,
    classroom: i64,
) -> Result<(String, Vec<Member>), AppError> {
    let name: Option<String> = sqlx::query_scalar("select name from classrooms where id = ?")
        .bind(classroom)
        .fetch_optional(state.store.pool())
        .await?;
    let name = name.ok_or_else(|| AppError::NotFound("no such classroom".into()))?;
    let rows: Vec<(i64, String)> = sqlx::query_as(
        "select u.id, u.username from classroom_members m join users u on u.id = m.user_id
         where m.classroom_id = ? and u.role = 'learner' order by u.username collate nocase",
    )
    .bind(classroom)
    .fetch_all(state.store.pool())
    .await?;
    let members = rows
        .into_iter()
        .map(|(user_id, username)| Member { user_id, username })
        .collect();
    Ok((name, members))
}

/// Sandbox states of every learner, in one look at the backend (no call per
/// learner), bounded in time so a slow engine never slows the instructor's
/// page down.
async fn sandbox_states(state: &AppState) -> Vec<(LearnerId, SandboxState)> {
    match tokio::time::timeout(Duration::from_secs(2), state.sandbox.states()).await {
        Ok(Ok(list)) => list,
        _ => Vec::new(),
    }
}

#[derive(Serialize)]
struct ClassroomProgress {
    classroom: i64,
    name: String,
    generated_at: i64,
    #[serde(flatten)]
    matrix: Matrix,
    /// Sandbox state per learner id ("running", "stopped", ... "queued" or
    /// "absent").
    sandboxes: Vec<(i64, String)>,
    /// The admission queue of a full classroom.
    queue: QueueView,
}

/// The line of starts waiting for a place, as an instructor sees it.
#[derive(Serialize)]
struct QueueView {
    /// Everyone in line, in every classroom (the places are shared).
    in_line: usize,
    /// This classroom's learners in line, first first.
    learners: Vec<QueuedLearner>,
}

#[derive(Serialize)]
struct QueuedLearner {
    learner: i64,
    username: String,
    /// 1-based place in the whole line.
    position: usize,
    /// "waiting for a place, number N".
    message: String,
    /// Their page went away; they keep the place for a minute.
    away: bool,
    /// Unix time they joined the line.
    since: i64,
}

fn queue_view(state: &AppState, members: &[Member]) -> QueueView {
    let waiting = state.sandbox.admission().waiting();
    QueueView {
        in_line: waiting.len(),
        learners: waiting
            .into_iter()
            .filter_map(|w| {
                let m = members.iter().find(|m| m.user_id == w.learner)?;
                Some(QueuedLearner {
                    learner: w.learner,
                    username: m.username.clone(),
                    position: w.position,
                    message: crate::sandbox::admission::instructor_message(w.position),
                    away: w.away,
                    since: w.since,
                })
            })
            .collect(),
    }
}

async fn classroom_progress(
    state: &AppState,
    classroom: i64,
) -> Result<ClassroomProgress, AppError> {
    let (name, members) = classroom_members(state, classroom).await?;
    let columns = catalog::exercise_columns(&state.course);
    let at = now();
    let matrix = matrix::build(state.store.pool(), &members, &columns, at).await?;
    let sandboxes = sandbox_states(state).await;
    let queue = queue_view(state, &members);
    let sandboxes = members
        .iter()
        .map(|m| {
            let s = if queue.learners.iter().any(|q| q.learner == m.user_id) {
                "queued".to_string()
            } else {
                sandboxes
                    .iter()
                    .find(|(learner, _)| *learner == m.user_id)
                    .map_or_else(|| "absent".to_string(), |(_, s)| s.as_str().to_string())
            };
            (m.user_id, s)
        })
        .collect();
    Ok(ClassroomProgress {
        classroom,
        name,
        generated_at: at,
        matrix,
        sandboxes,
        queue,
    })
}

async fn matrix_json(
    State(state): State<AppState>,
    ManagedClassroom { id, .. }: ManagedClassroom,
) -> Result<Json<ClassroomProgress>, AppError> {
    Ok(Json(classroom_progress(&state, id).await?))
}

async fn matrix_csv(
    State(state): State<AppState>,
    ManagedClassroom { id, .. }: ManagedClassroom,
) -> Result<impl IntoResponse, AppError> {
    let (_, members) = classroom_members(&state, id).await?;
    let columns = catalog::exercise_columns(&state.course);
    let m = matrix::build(state.store.pool(), &members, &columns, now()).await?;
    Ok((
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"classroom-{id}-progress.csv\""),
            ),
        ],
        matrix::to_csv(&m),
    ))
}

/// Live progress of one classroom's learners, as SSE `progress` events.
async fn matrix_events(
    State(state): State<AppState>,
    ManagedClassroom { id, .. }: ManagedClassroom,
) -> Result<Sse<impl Stream<Item = Result<Event, Infallible>>>, AppError> {
    let (_, members) = classroom_members(&state, id).await?;
    let mut ids: HashSet<i64> = members.iter().map(|m| m.user_id).collect();
    let mut rx = state.progress.subscribe();
    let stream = async_stream_events(move |tx| async move {
        loop {
            match rx.recv().await {
                Ok(event) => {
                    if !ids.contains(&event.user_id) {
                        // A learner who joined after the page opened.
                        match classroom_members(&state, id).await {
                            Ok((_, m)) => ids = m.iter().map(|m| m.user_id).collect(),
                            Err(_) => break,
                        }
                        if !ids.contains(&event.user_id) {
                            continue;
                        }
                    }
                    let data = serde_json::to_string(&event).unwrap_or_default();
                    if tx
                        .send(Event::default().event("progress").data(data))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
                Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                    // Too far behind: tell the page to reload the whole matrix.
                    if tx
                        .send(Event::default().event("reload").data("{}"))
                        .await
                        .is_err()
                    {
                        break;
                    }
                }
                Err(_) => break,
            }
        }
    });
    Ok(Sse::new(stream).keep_alive(KeepAlive::default()))
}

/// A stream fed by a task through a small channel; the task ends when the
/// client goes away (the receiver is dropped).
fn async_stream_events<F, Fut>(f: F) -> impl Stream<Item = Result<Event, Infallible>>
where
    F: FnOnce(tokio::sync::mpsc::Sender<Event>) -> Fut,
    Fut: std::future::Future<Output = ()> + Send + 'static,
{
    let (tx, rx) = tokio::sync::mpsc::channel(64);
    tokio::spawn(f(tx));
    futures::StreamExt::map(tokio_stream::wrappers::ReceiverStream::new(rx), Ok)
}

#[derive(Template, WebTemplate)]
#[template(path = "progress/matrix.html")]
struct MatrixPage {
    data: ClassroomProgress,
    /// The exercise ids for matrix.js, as JSON safe inside a script element.
    exercises_json: String,
}

impl MatrixPage {
    fn sandbox_of(&self, user: &i64) -> &str {
        self.data
            .sandboxes
            .iter()
            .find(|(id, _)| id == user)
            .map_or("absent", |(_, s)| s.as_str())
    }

    /// The sandbox cell's words: the state, or "waiting for a place,
    /// number N" for a learner in line.
    fn sandbox_words(&self, user: &i64) -> String {
        self.data
            .queue
            .learners
            .iter()
            .find(|q| q.learner == *user)
            .map_or_else(|| self.sandbox_of(user).to_string(), |q| q.message.clone())
    }
}

async fn matrix_page(
    State(state): State<AppState>,
    ManagedClassroom { id, .. }: ManagedClassroom,
) -> Result<MatrixPage, AppError> {
    let data = classroom_progress(&state, id).await?;
    let ids: Vec<&str> = data
        .matrix
        .exercises
        .iter()
        .map(|e| e.id.as_str())
        .collect();
    let exercises_json = serde_json::to_string(&ids)
        .unwrap_or_else(|_| "[]".into())
        .replace('<', "\\u003c");
    Ok(MatrixPage {
        data,
        exercises_json,
    })
}

// ----- One learner, for the instructor -----

#[derive(Serialize)]
struct LearnerDetail {
    id: i64,
    username: String,
    overview: Overview,
    evidence: Vec<Evidence>,
    sandbox: Option<SandboxStatus>,
    /// Their place in the admission queue, when waiting for a place.
    queue_position: Option<usize>,
    stuck: Option<String>,
}

async fn learner_detail(state: &AppState, user: i64) -> Result<LearnerDetail, AppError> {
    let username: Option<String> =
        sqlx::query_scalar("select username from users where id = ? and role = 'learner'")
            .bind(user)
            .fetch_optional(state.store.pool())
            .await?;
    let username = username.ok_or_else(|| AppError::NotFound("no such learner".into()))?;
    let evidence = evidence::recent_evidence(state.store.pool(), user, 50).await?;
    let sandbox = tokio::time::timeout(Duration::from_secs(3), state.sandbox.status(user))
        .await
        .ok()
        .and_then(Result::ok);
    Ok(LearnerDetail {
        id: user,
        username,
        overview: overview(state, user).await?,
        stuck: record::activity(state.store.pool(), user)
            .await?
            .and_then(|a| crate::progress::stuck::stuck_reason(&a, now())),
        evidence,
        sandbox,
        queue_position: state.sandbox.admission().position(user),
    })
}

async fn learner_json(
    State(state): State<AppState>,
    ManagedLearner { id, .. }: ManagedLearner,
) -> Result<Json<LearnerDetail>, AppError> {
    Ok(Json(learner_detail(&state, id).await?))
}

#[derive(Template, WebTemplate)]
#[template(path = "progress/learner.html")]
struct LearnerPage {
    d: LearnerDetail,
}

async fn learner_page(
    State(state): State<AppState>,
    ManagedLearner { id, .. }: ManagedLearner,
) -> Result<LearnerPage, AppError> {
    Ok(LearnerPage {
        d: learner_detail(&state, id).await?,
    })
}

/// An instructor stops or resets a learner's sandbox.
/// Recorded in the audit log.
async fn learner_sandbox(
    State(state): State<AppState>,
    learner: ManagedLearner,
    Path((_, action)): Path<(i64, String)>,
) -> Result<Json<serde_json::Value>, AppError> {
    let id = learner.id;
    let audited = match action.as_str() {
        "stop" => Action::SandboxStop,
        "reset" => Action::SandboxReset,
        _ => return Err(AppError::NotFound("unknown sandbox action".into())),
    };
    let username = learner_detail(&state, id).await?.username;
    state.labs.release_learner(id).await;
    let result = match audited {
        Action::SandboxStop => state.sandbox.stop(id).await.map(|_| ()),
        _ => state.sandbox.reset(id).await.map(|_| ()),
    };
    result.map_err(|e| AppError::Unavailable(e.to_string()))?;
    let entry = Entry {
        actor_id: learner.by.id,
        actor: &learner.by.username,
        action: audited,
        classroom: None,
        target: Some((id, &username)),
        detail: "",
    };
    audit::record(state.store.pool(), entry)
        .await
        .map_err(|e| AppError::Internal(anyhow::anyhow!(e)))?;
    Ok(Json(serde_json::json!({ "ok": true, "action": action })))
}

/// Formats unix seconds for pages as `YYYY-MM-DD HH:MM` UTC.
pub fn format_time(secs: &i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (h, m) = (rem / 3600, rem % 3600 / 60);
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let mo = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(mo <= 2);
    format!("{y:04}-{mo:02}-{d:02} {h:02}:{m:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_unix_seconds_as_utc() {
        assert_eq!(format_time(&0), "1970-01-01 00:00");
        assert_eq!(format_time(&1_795_000_000), "2026-11-18 11:06");
        assert_eq!(format_time(&951_782_400), "2000-02-29 00:00");
    }

    #[test]
    fn overview_counts_share_done() {
        let cols: Vec<ExerciseColumn> = ["a", "b", "c", "d"]
            .iter()
            .map(|id| ExerciseColumn {
                id: id.to_string(),
                title: id.to_string(),
            })
            .collect();
        let rows = vec![ExerciseProgress {
            exercise_id: "b".into(),
            status: record::StoredStatus(Status::Passed),
            statements: 3,
            attempts: 2,
            first_passed_at: Some(5),
            last_check_message: None,
            last_activity_at: 5,
        }];
        let o = build_overview(&cols, &rows);
        assert_eq!((o.passed, o.total, o.percent), (1, 4, 25));
        assert_eq!(o.exercises[1].status, Status::Passed);
        assert_eq!(o.exercises[0].status, Status::NotStarted);
        let empty = build_overview(&[], &[]);
        assert_eq!(empty.percent, 0);
    }
}
