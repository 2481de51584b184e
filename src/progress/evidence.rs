//! The evidence trail: the row type of `learner_evidence` (a statement or a
//! check, as the instructor sees it) and the queries that read it. Writing
//! it is [`record`](super::record)'s; judging it is
//! [`stuck`](super::stuck)'s. Both depend on this module and not on each
//! other.

use serde::Serialize;
use sqlx::SqlitePool;

/// How many evidence rows a learner keeps; older ones are dropped.
pub const EVIDENCE_KEPT: i64 = 200;

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
