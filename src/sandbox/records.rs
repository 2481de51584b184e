//! Sandbox records in the store (`migrations/0002_sandboxes.sql`): which
//! container (or cluster folder) and volume belong to which learner, the
//! per-sandbox password, the last known state and the last use.
//!
//! The engine (or the file system) is the truth about what runs; these rows
//! are the truth about ownership, so that pglab re-attaches after a restart
//! and a pooled container can be handed to a learner.

use sqlx::{FromRow, SqlitePool};

use super::{LearnerId, SandboxError, SandboxState, unix_now};
use crate::store::Store;

/// One row of `sandboxes`.
#[derive(Clone, Debug, FromRow)]
pub struct SandboxRecord {
    pub learner_id: LearnerId,
    pub backend: String,
    pub container: String,
    pub volume: String,
    pub password: String,
    pub state: String,
    pub created_at: i64,
    pub last_used: i64,
}

/// One row of `sandbox_pool`.
#[derive(Clone, Debug, FromRow)]
pub struct PoolRecord {
    pub container: String,
    pub volume: String,
    pub password: String,
}

/// Typed access to the sandbox tables.
#[derive(Clone, Debug)]
pub struct Records {
    pool: SqlitePool,
}

type Result<T> = std::result::Result<T, SandboxError>;

impl Records {
    pub fn new(store: &Store) -> Self {
        Self {
            pool: store.pool().clone(),
        }
    }

    /// The learner's record, if any.
    pub async fn get(&self, learner: LearnerId) -> Result<Option<SandboxRecord>> {
        sqlx::query_as("select * from sandboxes where learner_id = ?")
            .bind(learner)
            .fetch_optional(&self.pool)
            .await
            .map_err(SandboxError::store)
    }

    /// Inserts the record (or replaces one of the same learner).
    pub async fn put(&self, r: &SandboxRecord) -> Result<()> {
        sqlx::query(
            "insert or replace into sandboxes
               (learner_id, backend, container, volume, password, state, created_at, last_used)
             values (?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(r.learner_id)
        .bind(&r.backend)
        .bind(&r.container)
        .bind(&r.volume)
        .bind(&r.password)
        .bind(&r.state)
        .bind(r.created_at)
        .bind(r.last_used)
        .execute(&self.pool)
        .await
        .map_err(SandboxError::store)?;
        Ok(())
    }

    /// Records the state the backend last saw.
    pub async fn set_state(&self, learner: LearnerId, state: SandboxState) -> Result<()> {
        sqlx::query("update sandboxes set state = ? where learner_id = ?")
            .bind(state.as_str())
            .bind(learner)
            .execute(&self.pool)
            .await
            .map_err(SandboxError::store)?;
        Ok(())
    }

    /// Records a use now: the idle reaper stops the least recently used.
    pub async fn touch(&self, learner: LearnerId) -> Result<()> {
        sqlx::query("update sandboxes set last_used = ?, state = 'running' where learner_id = ?")
            .bind(unix_now())
            .bind(learner)
            .execute(&self.pool)
            .await
            .map_err(SandboxError::store)?;
        Ok(())
    }

    pub async fn delete(&self, learner: LearnerId) -> Result<()> {
        sqlx::query("delete from sandboxes where learner_id = ?")
            .bind(learner)
            .execute(&self.pool)
            .await
            .map_err(SandboxError::store)?;
        Ok(())
    }

    /// Every record of one backend, least recently used first.
    pub async fn all(&self, backend: &str) -> Result<Vec<SandboxRecord>> {
        sqlx::query_as("select * from sandboxes where backend = ? order by last_used, learner_id")
            .bind(backend)
            .fetch_all(&self.pool)
            .await
            .map_err(SandboxError::store)
    }

    /// Running sandboxes, least recently used first.
    pub async fn running(&self) -> Result<Vec<SandboxRecord>> {
        sqlx::query_as(
            "select * from sandboxes where state = 'running' order by last_used, learner_id",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(SandboxError::store)
    }

    /// Whether a user with this id exists (orphan detection).
    pub async fn learner_exists(&self, learner: LearnerId) -> Result<bool> {
        let n: i64 = sqlx::query_scalar("select count(*) from users where id = ?")
            .bind(learner)
            .fetch_one(&self.pool)
            .await
            .map_err(SandboxError::store)?;
        Ok(n > 0)
    }

    /// Adds a ready pooled sandbox.
    pub async fn pool_put(&self, p: &PoolRecord) -> Result<()> {
        sqlx::query(
            "insert or replace into sandbox_pool (container, volume, password) values (?, ?, ?)",
        )
        .bind(&p.container)
        .bind(&p.volume)
        .bind(&p.password)
        .execute(&self.pool)
        .await
        .map_err(SandboxError::store)?;
        Ok(())
    }

    /// Every pooled sandbox, oldest first.
    pub async fn pool_all(&self) -> Result<Vec<PoolRecord>> {
        sqlx::query_as(
            "select container, volume, password from sandbox_pool order by created_at, container",
        )
        .fetch_all(&self.pool)
        .await
        .map_err(SandboxError::store)
    }

    /// Takes a pooled sandbox out of the pool (returns false when another
    /// request took it first).
    pub async fn pool_take(&self, container: &str) -> Result<bool> {
        let done = sqlx::query("delete from sandbox_pool where container = ?")
            .bind(container)
            .execute(&self.pool)
            .await
            .map_err(SandboxError::store)?;
        Ok(done.rows_affected() == 1)
    }
}
