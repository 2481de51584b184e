//! Each learner's console history, kept in the store (`console_history`):
//! what they ran, in which session, for which exercise; searchable. Written
//! through the store's writer (`store::writer`), read through the pool.

use serde::Serialize;
use sqlx::SqliteConnection;

use crate::sandbox::LearnerId;
use crate::store::Store;
use crate::store::writer::{Script, WriteError};

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

/// A script to keep, as a store job holds it.
#[derive(Clone, Debug)]
pub struct NewEntry {
    pub learner: LearnerId,
    pub session: String,
    pub sql: String,
    pub exercise: Option<String>,
}

impl NewEntry {
    /// The entry for `sql`, or `None` when it is not kept (empty, or larger
    /// than [`MAX_KEPT`]).
    pub fn new(
        learner: LearnerId,
        session: &str,
        sql: &str,
        exercise: Option<&str>,
    ) -> Option<Self> {
        let sql = sql.trim();
        (!sql.is_empty() && sql.len() <= MAX_KEPT).then(|| Self {
            learner,
            session: session.to_string(),
            sql: sql.to_string(),
            exercise: exercise.map(String::from),
        })
    }
}

/// Records a script through the store's writer, unless it repeats the
/// learner's last one; returns once committed.
pub async fn record(
    store: &Store,
    learner: LearnerId,
    session: &str,
    sql: &str,
    exercise: Option<&str>,
) -> Result<(), WriteError> {
    let Some(entry) = NewEntry::new(learner, session, sql, exercise) else {
        return Ok(());
    };
    store
        .writer()
        .write(move |conn| {
            let entry = entry.clone();
            Box::pin(async move { apply(conn, &entry).await })
        })
        .await
}

/// What [`apply`] runs: the entry unless it repeats the learner's last
/// script, then the prune past the last [`KEEP`]. Positional parameters:
/// sqlx binds them in order across the two statements.
/// The entry, unless it repeats the learner's last script.
const INSERT_SQL: &str = "insert into console_history (user_id, session, sql, exercise)
         select ?, ?, ?, ? where not exists (
             select 1 from (select sql from console_history where user_id = ?
                            order by id desc limit 1) where sql = ?)";
/// Entries past the learner's last [`KEEP`].
const PRUNE_SQL: &str = "delete from console_history where user_id = ? and id <=
             (select id from console_history where user_id = ? order by id desc limit 1 offset ?)";

/// Adds [`apply`]'s statements for `entry` to `script` (a store job that
/// writes it with others in one call).
pub fn add_to(script: &mut Script, entry: &NewEntry) {
    script.push(
        INSERT_SQL,
        vec![
            entry.learner.into(),
            entry.session.clone().into(),
            entry.sql.clone().into(),
            entry.exercise.clone().into(),
            entry.learner.into(),
            entry.sql.clone().into(),
        ],
    );
    script.push(
        PRUNE_SQL,
        vec![entry.learner.into(), entry.learner.into(), KEEP.into()],
    );
}

/// Writes `entry` inside the caller's transaction, unless it repeats the
/// learner's last script, and drops entries past the last [`KEEP`].
pub async fn apply(conn: &mut SqliteConnection, entry: &NewEntry) -> sqlx::Result<()> {
    sqlx::query(INSERT_SQL)
        .bind(entry.learner)
        .bind(&entry.session)
        .bind(&entry.sql)
        .bind(entry.exercise.as_deref())
        .bind(entry.learner)
        .bind(&entry.sql)
        .execute(&mut *conn)
        .await?;
    sqlx::query(PRUNE_SQL)
        .bind(entry.learner)
        .bind(entry.learner)
        .bind(KEEP)
        .execute(conn)
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
