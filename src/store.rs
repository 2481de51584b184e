//! The app's own store: one SQLite file under the data dir, created and
//! migrated at start-up (`migrations/`). Nothing to install to run pglab.

use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use anyhow::Context;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

/// A handle on the store; cheap to clone.
#[derive(Clone, Debug)]
pub struct Store {
    pool: SqlitePool,
}

impl Store {
    /// Opens (creating if needed) and migrates the store at `path`.
    pub async fn open(path: &Path) -> anyhow::Result<Self> {
        let url = format!("sqlite://{}", path.display());
        let options = SqliteConnectOptions::from_str(&url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // In WAL mode NORMAL loses nothing when pglab is killed (commits
            // are in the WAL, written before they are acknowledged); only a
            // power cut may lose the last commits. FULL fsyncs every commit,
            // which stalled learners' writes under load.
            .synchronous(SqliteSynchronous::Normal)
            .foreign_keys(true)
            .busy_timeout(Duration::from_secs(5));
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options)
            .await
            .context("opening SQLite")?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .context("migrating the store (is it from a newer pglab?)")?;
        let store = Self { pool };
        store.instance_id().await?;
        Ok(store)
    }

    /// The pool, for modules that keep their own tables.
    pub fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// This server's instance id, made on first start and kept forever. Docker
    /// labels carry it so that two servers on one engine never touch each
    /// other's containers.
    pub async fn instance_id(&self) -> anyhow::Result<String> {
        let fresh = format!("{:016x}", rand::random::<u64>());
        sqlx::query("insert or ignore into settings (key, value) values ('instance_id', ?)")
            .bind(&fresh)
            .execute(&self.pool)
            .await?;
        let id: String = sqlx::query_scalar("select value from settings where key = 'instance_id'")
            .fetch_one(&self.pool)
            .await?;
        Ok(id)
    }

    /// The stand-in learner used until accounts exist: `(id, username)`.
    pub async fn development_learner(&self) -> anyhow::Result<(i64, String)> {
        sqlx::query("insert or ignore into users (username, role) values ('learner', 'learner')")
            .execute(&self.pool)
            .await?;
        let id: i64 = sqlx::query_scalar("select id from users where username = 'learner'")
            .fetch_one(&self.pool)
            .await?;
        Ok((id, "learner".to_string()))
    }
}
