//! Writing and reading progress rows and the evidence trail (which also
//! feeds the checks that judge a learner's own queries).

use serde::Serialize;
use sqlx::SqlitePool;

use super::stuck::{Activity, same_error_three_times};
use super::{ProgressEvent, ProgressHub, Status};

/// How many evidence rows a learner keeps; older ones are dropped.
const EVIDENCE_KEPT: i64 = 200;
/// Statements longer than this are cut in the evidence trail.
const EVIDENCE_SQL_CHARS: usize = 2000;

/// One learner's standing on one exercise.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct ExerciseProgress {
    pub exercise_id: String,
    #[sqlx(try_from = "String")]
    pub status: StoredStatus,
    pub statements: i64,
    pub attempts: i64,
    pub first_passed_at: Option<i64>,
    pub last_check_message: Option<String>,
    pub last_activity_at: i64,
}

/// `Status` as read from the store.
#[derive(Clone, Copy, Debug, Serialize)]
#[serde(transparent)]
pub struct StoredStatus(pub Status);

impl From<String> for StoredStatus {
    fn from(s: String) -> Self {
        Self(Status::parse(&s))
    }
}

/// A statement or a check, as the instructor sees it.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct Evidence {
    pub id: i64,
    pub user_id: i64,
    pub exercise_id: Option<String>,
    pub kind: String,
    pub sql: Option<String>,
    pub error: Option<String>,
    pub sqlstate: Option<String>,
    pub passed: Option<bool>,
    pub created_at: i64,
}

/// A statement the learner ran; `exercise` is the exercise whose page it ran on.
pub struct StatementRun<'a> {
    pub user_id: i64,
    pub exercise: Option<&'a str>,
    pub sql: &'a str,
    /// `(sqlstate, message)` when it failed.
    pub error: Option<(&'a str, &'a str)>,
    pub at: i64,
}

/// Records a statement: evidence always, and "in progress" on its exercise.
pub async fn record_statement(
    pool: &SqlitePool,
    hub: &ProgressHub,
    run: StatementRun<'_>,
) -> sqlx::Result<()> {
    let mut tx = pool.begin().await?;
    let sql: String = run.sql.chars().take(EVIDENCE_SQL_CHARS).collect();
    sqlx::query(
        "insert into learner_evidence (user_id, exercise_id, kind, sql, error, sqlstate, created_at)
         values (?, ?, 'statement', ?, ?, ?, ?)",
    )
    .bind(run.user_id)
    .bind(run.exercise)
    .bind(&sql)
    .bind(run.error.map(|e| e.1))
    .bind(run.error.map(|e| e.0))
    .bind(run.at)
    .execute(&mut *tx)
    .await?;
    let mut started = false;
    if let Some(exercise) = run.exercise {
        let before: Option<String> = sqlx::query_scalar(
            "select status from exercise_progress where user_id = ? and exercise_id = ?",
        )
        .bind(run.user_id)
        .bind(exercise)
        .fetch_optional(&mut *tx)
        .await?;
        sqlx::query(
            "insert into exercise_progress (user_id, exercise_id, status, statements, last_activity_at)
             values (?, ?, 'in_progress', 1, ?)
             on conflict (user_id, exercise_id) do update
             set statements = statements + 1, last_activity_at = excluded.last_activity_at",
        )
        .bind(run.user_id)
        .bind(exercise)
        .bind(run.at)
        .execute(&mut *tx)
        .await?;
        started = before.is_none();
    }
    refresh_activity(&mut tx, run.user_id, run.at, false).await?;
    prune(&mut tx, run.user_id).await?;
    tx.commit().await?;
    if let (true, Some(exercise)) = (started, run.exercise) {
        hub.publish(ProgressEvent {
            user_id: run.user_id,
            exercise_id: exercise.to_string(),
            status: Status::InProgress,
        });
    }
    Ok(())
}

/// Records a "Check my work" result. A pass is kept for good: a later failing
/// check (say, after the learner dropped a table) does not undo it, but counts
/// as an attempt and its message is kept.
pub async fn record_check(
    pool: &SqlitePool,
    hub: &ProgressHub,
    user_id: i64,
    exercise: &str,
    passed: bool,
    message: &str,
    at: i64,
) -> sqlx::Result<Status> {
    let mut tx = pool.begin().await?;
    sqlx::query(
        "insert into exercise_progress
             (user_id, exercise_id, status, attempts, first_passed_at, last_check_message, last_activity_at)
         values (?, ?, case when ? then 'passed' else 'in_progress' end, 1,
                 case when ? then ? end, ?, ?)
         on conflict (user_id, exercise_id) do update set
             attempts = attempts + 1,
             status = case when ? then 'passed' else status end,
             first_passed_at = coalesce(first_passed_at, case when ? then ? end),
             last_check_message = excluded.last_check_message,
             last_activity_at = excluded.last_activity_at",
    )
    .bind(user_id)
    .bind(exercise)
    .bind(passed)
    .bind(passed)
    .bind(at)
    .bind(message)
    .bind(at)
    .bind(passed)
    .bind(passed)
    .bind(at)
    .execute(&mut *tx)
    .await?;
    sqlx::query(
        "insert into learner_evidence (user_id, exercise_id, kind, error, passed, created_at)
         values (?, ?, 'check', ?, ?, ?)",
    )
    .bind(user_id)
    .bind(exercise)
    .bind((!passed).then_some(message))
    .bind(passed)
    .bind(at)
    .execute(&mut *tx)
    .await?;
    let status: String = sqlx::query_scalar(
        "select status from exercise_progress where user_id = ? and exercise_id = ?",
    )
    .bind(user_id)
    .bind(exercise)
    .fetch_one(&mut *tx)
    .await?;
    refresh_activity(&mut tx, user_id, at, passed).await?;
    prune(&mut tx, user_id).await?;
    tx.commit().await?;
    let status = Status::parse(&status);
    hub.publish(ProgressEvent {
        user_id,
        exercise_id: exercise.to_string(),
        status,
    });
    Ok(status)
}

/// Updates what the stuck rules read (`learner_activity`) after new evidence.
async fn refresh_activity(
    tx: &mut sqlx::SqliteConnection,
    user_id: i64,
    at: i64,
    passed: bool,
) -> sqlx::Result<()> {
    let prev = activity(&mut *tx, user_id).await?;
    let last_statements: Vec<Evidence> = sqlx::query_as(
        "select id, user_id, exercise_id, kind, sql, error, sqlstate, passed, created_at
         from learner_evidence where user_id = ? and kind = 'statement' order by id desc limit 3",
    )
    .bind(user_id)
    .fetch_all(&mut *tx)
    .await?;
    let next = Activity::after(
        prev.as_ref(),
        at,
        passed,
        same_error_three_times(&last_statements),
    );
    sqlx::query(
        "insert into learner_activity (user_id, last_activity_at, working_since, repeated_error)
         values (?, ?, ?, ?)
         on conflict (user_id) do update set last_activity_at = excluded.last_activity_at,
             working_since = excluded.working_since, repeated_error = excluded.repeated_error",
    )
    .bind(user_id)
    .bind(next.last_activity_at)
    .bind(next.working_since)
    .bind(&next.repeated_error)
    .execute(&mut *tx)
    .await?;
    Ok(())
}

/// What the stuck rules know about a learner, if they did anything yet.
pub async fn activity<'e, E>(executor: E, user_id: i64) -> sqlx::Result<Option<Activity>>
where
    E: sqlx::Executor<'e, Database = sqlx::Sqlite>,
{
    sqlx::query_as(
        "select last_activity_at, working_since, repeated_error from learner_activity where user_id = ?",
    )
    .bind(user_id)
    .fetch_optional(executor)
    .await
}

async fn prune(tx: &mut sqlx::SqliteConnection, user_id: i64) -> sqlx::Result<()> {
    sqlx::query(
        "delete from learner_evidence where user_id = ?1 and id <= coalesce(
             (select id from learner_evidence where user_id = ?1 order by id desc limit 1 offset ?2), 0)",
    )
    .bind(user_id)
    .bind(EVIDENCE_KEPT)
    .execute(tx)
    .await?;
    Ok(())
}

/// Every exercise the learner touched.
pub async fn learner_progress(
    pool: &SqlitePool,
    user_id: i64,
) -> sqlx::Result<Vec<ExerciseProgress>> {
    sqlx::query_as(
        "select exercise_id, status, statements, attempts, first_passed_at, last_check_message, last_activity_at
         from exercise_progress where user_id = ? order by exercise_id",
    )
    .bind(user_id)
    .fetch_all(pool)
    .await
}

/// The statements the learner ran without an error, newest first, those run
/// on `exercise`'s page before any other (what `learner_result` checks
/// replay); at most `limit`.
pub async fn recent_statements(
    pool: &SqlitePool,
    user_id: i64,
    exercise: &str,
    limit: i64,
) -> sqlx::Result<Vec<String>> {
    sqlx::query_scalar(
        "select sql from learner_evidence
         where user_id = ? and kind = 'statement' and error is null and sql is not null
         order by coalesce(exercise_id = ?, 0) desc, id desc limit ?",
    )
    .bind(user_id)
    .bind(exercise)
    .bind(limit)
    .fetch_all(pool)
    .await
}

/// The learner's newest evidence first.
pub async fn recent_evidence(
    pool: &SqlitePool,
    user_id: i64,
    limit: i64,
) -> sqlx::Result<Vec<Evidence>> {
    sqlx::query_as(
        "select id, user_id, exercise_id, kind, sql, error, sqlstate, passed, created_at
         from learner_evidence where user_id = ? order by id desc limit ?",
    )
    .bind(user_id)
    .bind(limit)
    .fetch_all(pool)
    .await
}
