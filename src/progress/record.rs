//! Writing progress: statements and check results become evidence
//! ([`super::evidence`]), exercise progress rows and the stuck rules'
//! activity row ([`super::stuck`]), all through the store's writer
//! (`store::writer`), announced on the hub once committed. Also reads
//! progress rows.

use std::sync::OnceLock;

use serde::Serialize;
use sqlx::{SqliteConnection, SqlitePool};

use super::evidence::{EVIDENCE_KEPT, Evidence};
use super::stuck::{Activity, STRETCH_GAP, same_error_three_times};
use super::{ProgressEvent, ProgressHub, Status};
use crate::store::Store;
use crate::store::writer::{Script, WriteError};

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

/// A statement the learner ran; `exercise` is the exercise whose page it ran on.
pub struct StatementRun<'a> {
    pub user_id: i64,
    pub exercise: Option<&'a str>,
    pub sql: &'a str,
    /// `(sqlstate, message)` when it failed.
    pub error: Option<(&'a str, &'a str)>,
    pub at: i64,
}

/// [`apply_statement`]'s writes, put together once.
static STATEMENT_WITH_EXERCISE: OnceLock<String> = OnceLock::new();
static STATEMENT_ALONE: OnceLock<String> = OnceLock::new();

/// [`StatementRun`] with its text owned and cut, as a store job keeps it.
#[derive(Clone, Debug)]
pub struct Statement {
    pub user_id: i64,
    pub exercise: Option<String>,
    pub sql: String,
    /// `(sqlstate, message)` when it failed.
    pub error: Option<(String, String)>,
    pub at: i64,
}

impl From<StatementRun<'_>> for Statement {
    fn from(run: StatementRun<'_>) -> Self {
        Self {
            user_id: run.user_id,
            exercise: run.exercise.map(String::from),
            sql: run.sql.chars().take(EVIDENCE_SQL_CHARS).collect(),
            error: run.error.map(|(s, m)| (s.to_string(), m.to_string())),
            at: run.at,
        }
    }
}

/// Records a statement through the store's writer (see [`apply_statement`])
/// and announces an exercise it started once that is committed.
pub async fn record_statement(
    store: &Store,
    hub: &ProgressHub,
    run: StatementRun<'_>,
) -> Result<(), WriteError> {
    let statement = Statement::from(run);
    let event = store
        .writer()
        .write(move |conn| {
            let statement = statement.clone();
            Box::pin(async move { apply_statement(conn, &statement).await })
        })
        .await?;
    if let Some(event) = event {
        hub.publish(event);
    }
    Ok(())
}

/// Writes a statement inside the caller's transaction: evidence always,
/// "in progress" on its exercise, the stuck rules' activity row, and the
/// trail pruned. Returns the event to announce once committed, when the
/// statement started its exercise.
///
/// Two store round trips for a statement that ran (three for one that
/// failed: the two statements before it decide "same error 3 times"): this
/// runs for every statement a learner sends, so the reads are one query and
/// the writes one multi-statement batch.
pub async fn apply_statement(
    conn: &mut SqliteConnection,
    run: &Statement,
) -> sqlx::Result<Option<ProgressEvent>> {
    let (before, prev): (Option<String>, Option<Activity>) = {
        let row: (Option<String>, Option<i64>, Option<i64>, Option<String>) = sqlx::query_as(
            "select (select status from exercise_progress where user_id = ?1 and exercise_id = ?2),
                    a.last_activity_at, a.working_since, a.repeated_error
             from (select 1) left join learner_activity a on a.user_id = ?1",
        )
        .bind(run.user_id)
        .bind(run.exercise.as_deref())
        .fetch_one(&mut *conn)
        .await?;
        let prev = match (row.1, row.2) {
            (Some(last_activity_at), Some(working_since)) => Some(Activity {
                last_activity_at,
                working_since,
                repeated_error: row.3,
            }),
            _ => None,
        };
        (row.0, prev)
    };
    let repeated_error = match &run.error {
        None => None,
        Some((sqlstate, message)) => {
            let mut last: Vec<Evidence> = vec![Evidence {
                id: 0,
                user_id: run.user_id,
                exercise_id: run.exercise.clone(),
                kind: "statement".into(),
                sql: None,
                error: Some(message.clone()),
                sqlstate: Some(sqlstate.clone()),
                passed: None,
                created_at: run.at,
            }];
            last.extend(
                sqlx::query_as::<_, Evidence>(
                    "select id, user_id, exercise_id, kind, sql, error, sqlstate, passed, created_at
                     from learner_evidence where user_id = ? and kind = 'statement'
                     order by id desc limit 2",
                )
                .bind(run.user_id)
                .fetch_all(&mut *conn)
                .await?,
            );
            same_error_three_times(&last)
        }
    };
    let next = Activity::after(prev.as_ref(), run.at, false, repeated_error);
    // One multi-statement query. Its parameters are positional: sqlx binds
    // them in order across the statements (numbered ones that a statement
    // skips would shift the rest).
    let evidence = "insert into learner_evidence
            (user_id, exercise_id, kind, sql, error, sqlstate, created_at)
         values (?, ?, 'statement', ?, ?, ?, ?);";
    let progress = "insert into exercise_progress
            (user_id, exercise_id, status, statements, last_activity_at)
         values (?, ?, 'in_progress', 1, ?)
         on conflict (user_id, exercise_id) do update
         set statements = statements + 1, last_activity_at = excluded.last_activity_at;";
    let activity = "insert into learner_activity
            (user_id, last_activity_at, working_since, repeated_error)
         values (?, ?, ?, ?)
         on conflict (user_id) do update set last_activity_at = excluded.last_activity_at,
             working_since = excluded.working_since, repeated_error = excluded.repeated_error;
         delete from learner_evidence where user_id = ? and id <= coalesce(
             (select id from learner_evidence where user_id = ? order by id desc limit 1 offset ?), 0);";
    let writes = match &run.exercise {
        Some(_) => {
            STATEMENT_WITH_EXERCISE.get_or_init(|| format!("{evidence}{progress}{activity}"))
        }
        None => STATEMENT_ALONE.get_or_init(|| format!("{evidence}{activity}")),
    };
    let mut query = sqlx::query(writes.as_str())
        .bind(run.user_id)
        .bind(run.exercise.as_deref())
        .bind(&run.sql)
        .bind(run.error.as_ref().map(|e| e.1.as_str()))
        .bind(run.error.as_ref().map(|e| e.0.as_str()))
        .bind(run.at);
    if let Some(exercise) = &run.exercise {
        query = query.bind(run.user_id).bind(exercise).bind(run.at);
    }
    query
        .bind(run.user_id)
        .bind(run.at)
        .bind(next.working_since)
        .bind(&next.repeated_error)
        .bind(run.user_id)
        .bind(run.user_id)
        .bind(EVIDENCE_KEPT)
        .execute(&mut *conn)
        .await?;
    Ok(match (&run.exercise, before) {
        (Some(exercise), None) => Some(ProgressEvent {
            user_id: run.user_id,
            exercise_id: exercise.clone(),
            status: Status::InProgress,
        }),
        _ => None,
    })
}

/// Most statements of one run that [`add_statements`] writes as a script
/// (each count is a statement text of its own in SQLite's cache).
pub const SCRIPT_STATEMENTS: usize = 4;

/// Whether [`add_statements`] can write `statements` (one run's): they all
/// succeeded (a failed one needs the trail's last two errors, read first:
/// [`apply_statement`]), at most [`SCRIPT_STATEMENTS`] of them.
pub fn fits_script(statements: &[Statement]) -> bool {
    statements.len() <= SCRIPT_STATEMENTS && statements.iter().all(|s| s.error.is_none())
}

/// Adds the writes of one run's successful statements (see [`fits_script`];
/// one exercise for all, as a run has) to `script`: what [`apply_statement`]
/// writes for each, with no read first. The stuck rules' activity row is
/// computed by the upsert itself, as [`Activity::after`] does for a
/// statement that ran (no pass, no repeated error); the trail is pruned
/// once at the end. With an exercise, the script's first row says (1)
/// whether it was new to the learner, to announce once committed.
pub fn add_statements(script: &mut Script, statements: &[Statement]) {
    let Some(first) = statements.first() else {
        return;
    };
    let (user_id, exercise) = (first.user_id, first.exercise.clone());
    if let Some(exercise) = &exercise {
        script.push(
            "select not exists (select 1 from exercise_progress
                                where user_id = ? and exercise_id = ?)",
            vec![user_id.into(), exercise.clone().into()],
        );
    }
    for run in statements {
        script.push(
            "insert into learner_evidence
                 (user_id, exercise_id, kind, sql, error, sqlstate, created_at)
             values (?, ?, 'statement', ?, null, null, ?)",
            vec![
                user_id.into(),
                exercise.clone().into(),
                run.sql.clone().into(),
                run.at.into(),
            ],
        );
        if let Some(exercise) = &exercise {
            script.push(
                "insert into exercise_progress
                     (user_id, exercise_id, status, statements, last_activity_at)
                 values (?, ?, 'in_progress', 1, ?)
                 on conflict (user_id, exercise_id) do update
                 set statements = statements + 1, last_activity_at = excluded.last_activity_at",
                vec![user_id.into(), exercise.clone().into(), run.at.into()],
            );
        }
        // `Activity::after(prev, at, false, None)`: the stretch goes on
        // when the last activity is at most STRETCH_GAP before.
        script.push(
            "insert into learner_activity
                 (user_id, last_activity_at, working_since, repeated_error)
             values (?, ?, ?, null)
             on conflict (user_id) do update set
                 working_since = case
                     when excluded.last_activity_at - learner_activity.last_activity_at <= ?
                     then learner_activity.working_since
                     else excluded.working_since end,
                 last_activity_at = excluded.last_activity_at,
                 repeated_error = null",
            vec![
                user_id.into(),
                run.at.into(),
                run.at.into(),
                STRETCH_GAP.into(),
            ],
        );
    }
    script.push(
        "delete from learner_evidence where user_id = ? and id <= coalesce(
             (select id from learner_evidence where user_id = ? order by id desc limit 1 offset ?), 0)",
        vec![user_id.into(), user_id.into(), EVIDENCE_KEPT.into()],
    );
}

/// Records a "Check my work" result through the store's writer (see
/// [`apply_check`]) and announces the exercise's status once committed.
pub async fn record_check(
    store: &Store,
    hub: &ProgressHub,
    user_id: i64,
    exercise: &str,
    passed: bool,
    message: &str,
    at: i64,
) -> Result<Status, WriteError> {
    let (exercise, message) = (exercise.to_string(), message.to_string());
    let event = store
        .writer()
        .write(move |conn| {
            let (exercise, message) = (exercise.clone(), message.clone());
            Box::pin(
                async move { apply_check(conn, user_id, &exercise, passed, &message, at).await },
            )
        })
        .await?;
    let status = event.status;
    hub.publish(event);
    Ok(status)
}

/// Writes a check result inside the caller's transaction. A pass is kept
/// for good: a later failing check (say, after the learner dropped a table)
/// does not undo it, but counts as an attempt and its message is kept.
pub async fn apply_check(
    conn: &mut SqliteConnection,
    user_id: i64,
    exercise: &str,
    passed: bool,
    message: &str,
    at: i64,
) -> sqlx::Result<ProgressEvent> {
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
    .execute(&mut *conn)
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
    .execute(&mut *conn)
    .await?;
    let status: String = sqlx::query_scalar(
        "select status from exercise_progress where user_id = ? and exercise_id = ?",
    )
    .bind(user_id)
    .bind(exercise)
    .fetch_one(&mut *conn)
    .await?;
    refresh_activity(conn, user_id, at, passed).await?;
    prune(conn, user_id).await?;
    Ok(ProgressEvent {
        user_id,
        exercise_id: exercise.to_string(),
        status: Status::parse(&status),
    })
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
