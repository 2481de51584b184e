//! Each learner's console history, kept in the store (`console_history`):
//! what they ran, in which session, for which exercise; searchable.

use serde::Serialize;

use crate::sandbox::LearnerId;
use crate::store::Store;

/// Scripts larger than this are run but not kept in history.
const MAX_KEPT: usize = 64 * 1024;
/// Entries kept per learner; older ones are dropped.
const KEEP: i64 = 1000;

/// One history entry.
#[derive(Clone, Debug, Serialize, sqlx::FromRow)]
pub struct Entry {
    pub id: i64,
    pub session: String,
    pub sql: String,
    pub exercise: Option<String>,
    pub created_at: i64,
}

/// Records a script, unless it repeats the learner's last one.
pub async fn record(
    store: &Store,
    learner: LearnerId,
    session: &str,
    sql: &str,
    exercise: Option<&str>,
) -> anyhow::Result<()> {
    let sql = sql.trim();
    if sql.is_empty() || sql.len() > MAX_KEPT {
        return Ok(());
    }
    let last: Option<String> = sqlx::query_scalar(
        "select sql from console_history where user_id = ? order by id desc limit 1",
    )
    .bind(learner)
    .fetch_optional(store.pool())
    .await?;
    if last.as_deref() == Some(sql) {
        return Ok(());
    }
    sqlx::query(
        "insert into console_history (user_id, session, sql, exercise) values (?, ?, ?, ?)",
    )
    .bind(learner)
    .bind(session)
    .bind(sql)
    .bind(exercise)
    .execute(store.pool())
    .await?;
    sqlx::query(
        "delete from console_history where user_id = ? and id <= \
         (select id from console_history where user_id = ? order by id desc limit 1 offset ?)",
    )
    .bind(learner)
    .bind(learner)
    .bind(KEEP)
    .execute(store.pool())
    .await?;
    Ok(())
}

/// The learner's latest entries (newest first), those containing `q` if given.
pub async fn search(
    store: &Store,
    learner: LearnerId,
    q: Option<&str>,
    limit: i64,
) -> anyhow::Result<Vec<Entry>> {
    let pattern = q.filter(|q| !q.is_empty()).map(|q| {
        format!(
            "%{}%",
            q.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        )
    });
    let rows = sqlx::query_as::<_, Entry>(
        "select id, session, sql, exercise, created_at from console_history \
         where user_id = ? and (? is null or sql like ? escape '\\') order by id desc limit ?",
    )
    .bind(learner)
    .bind(&pattern)
    .bind(&pattern)
    .bind(limit.clamp(1, 500))
    .fetch_all(store.pool())
    .await?;
    Ok(rows)
}
