//! The app's own store: one SQLite file under the data dir, created and
//! migrated at start-up (`migrations/`). Nothing to install to run pglab.
//!
//! Reads go through the pool; learners' activity (evidence, history,
//! progress, plans) is written by the one [`writer`] task in batches; the
//! rest (accounts, sessions, sandboxes' records) writes through the pool, as
//! rarely as those change. The WAL is checkpointed by a background task
//! rather than by whichever commit crosses the threshold, so no learner's
//! write waits for a checkpoint's copy and fsync. Under steady writes a
//! passive checkpoint never lets the WAL start over, so past
//! [`WAL_TRUNCATE_BYTES`] the checkpointer truncates it once (a short wait
//! for readers and the writer), and the WAL stays bounded through a class.

pub mod writer;

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
    writer: writer::Writer,
}

/// How often the checkpointer looks at the WAL.
const CHECKPOINT_EVERY: Duration = Duration::from_secs(2);
/// The WAL size past which the checkpointer truncates it.
pub const WAL_TRUNCATE_BYTES: u64 = 16 << 20;

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
            .busy_timeout(Duration::from_secs(5))
            // Checkpoints are the checkpointer's (below), never a commit's.
            .pragma("wal_autocheckpoint", "0");
        let pool = SqlitePoolOptions::new()
            .max_connections(8)
            .connect_with(options.clone())
            .await
            .context("opening SQLite")?;
        sqlx::migrate!("./migrations")
            .run(&pool)
            .await
            .context("migrating the store (is it from a newer pglab?)")?;
        let writer = writer::Writer::start(&options)
            .await
            .context("opening the store's writer")?;
        let wal = path.with_file_name(format!(
            "{}-wal",
            path.file_name().unwrap_or_default().to_string_lossy()
        ));
        spawn_checkpointer(pool.clone(), wal);
        let store = Self { pool, writer };
        store.instance_id().await?;
        Ok(store)
    }

    /// The writer of learners' activity (batched, acknowledged on commit).
    pub fn writer(&self) -> &writer::Writer {
        &self.writer
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

/// Copies the WAL back into the database every [`CHECKPOINT_EVERY`]
/// (`PASSIVE`: it waits for nobody and nobody waits for it), so the WAL
/// stays small without a commit ever paying for the copy; a WAL past
/// [`WAL_TRUNCATE_BYTES`] is truncated ([`checkpoint`]). Ends with the pool.
fn spawn_checkpointer(pool: SqlitePool, wal: std::path::PathBuf) {
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(CHECKPOINT_EVERY);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if pool.is_closed() {
                break;
            }
            if let Err(err) = checkpoint(&pool, &wal, WAL_TRUNCATE_BYTES).await {
                tracing::debug!(error = %err, "WAL checkpoint skipped");
            }
        }
    });
}

/// One checkpoint: `PASSIVE`, or `TRUNCATE` when the WAL file `wal` is
/// over `limit` bytes. A passive checkpoint copies the WAL back but lets
/// the next writer start it over only when nothing was written since, which
/// never happens under steady writes: the file would grow through a whole
/// class. Truncating waits (within the busy timeout) for readers and the
/// writer's current commit, then empties the file.
pub async fn checkpoint(pool: &SqlitePool, wal: &Path, limit: u64) -> Result<(), sqlx::Error> {
    let size = std::fs::metadata(wal).map(|m| m.len()).unwrap_or(0);
    if size > limit {
        tracing::info!(wal_bytes = size, "truncating the store's WAL");
        sqlx::raw_sql("pragma wal_checkpoint(truncate)")
            .execute(pool)
            .await?;
    } else {
        sqlx::raw_sql("pragma wal_checkpoint(passive)")
            .execute(pool)
            .await?;
    }
    Ok(())
}
