//! The store's one writer of learners' activity: evidence, history, progress
//! and plans go through [`Writer::write`], which a single task applies in
//! batches, one transaction per batch, on a connection of its own.
//!
//! Why one writer: SQLite lets one connection write at a time. With every
//! handler writing through the pool, 50 learners' evidence inserts queued on
//! the write lock inside SQLite's busy handler (which sleeps in steps of up
//! to 100 ms) and single inserts took 1–1.8 s. One task that takes the lock
//! once per batch never waits on itself, and a commit (the costly part of a
//! small write) is shared by everything that arrived meanwhile.
//!
//! The batching is group commit: the task takes the first job, then every
//! job already queued (up to [`MAX_BATCH`]), and commits. A lone learner's
//! write is committed at once (no lingering timer on the answer's path);
//! under load, jobs queue while a batch commits and the next batch is larger.
//!
//! Acknowledgement: [`Writer::write`] returns only after the batch holding
//! the job committed. With WAL and `synchronous=NORMAL` a commit is in the
//! WAL file (the OS page cache) before it returns, so a SIGKILL of pglab
//! loses nothing acknowledged (a power cut may lose the last commits).
//!
//! Reads never wait on the writer: WAL readers see the last commit without
//! taking the write lock, and the writer's connection is not one of the
//! pool's, so a batch in progress holds no pool slot.
//!
//! Jobs are closures over the connection, or scripts ([`Writer::run_script`]:
//! statements as text with their arguments). Every sqlx call is a hand-off
//! to SQLite's own thread and back, and on an idle machine each wakes a
//! halted CPU: a closure job of three statements took ~0.2 ms to commit,
//! most of it waiting. A script alone in its batch is one call, `BEGIN
//! IMMEDIATE` and `COMMIT` included (~0.1 ms).
//!
//! A failing job does not take the others down: when a batch fails, it is
//! rolled back and its jobs are applied again one transaction each (jobs are
//! `Fn` for that reason), so only the failing one reports the error.

use std::any::Any;
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use sqlx::sqlite::{SqliteArguments, SqliteConnectOptions, SqliteConnection, SqliteRow};
use sqlx::{ConnectOptions, Connection, Executor};
use tokio::sync::{mpsc, oneshot};

/// Most jobs committed in one transaction.
pub const MAX_BATCH: usize = 256;
/// Jobs waiting before [`Writer::write`] itself waits for room (backpressure).
const QUEUE: usize = 8192;
/// A batch slower than this is logged.
const SLOW_BATCH: Duration = Duration::from_millis(250);

type Output = Box<dyn Any + Send>;
type Apply = Box<
    dyn for<'c> Fn(&'c mut SqliteConnection) -> BoxFuture<'c, sqlx::Result<Output>> + Send + Sync,
>;

/// Statements given as text, with their arguments in order (positional
/// `?`, bound across the statements in turn), for [`Writer::run_script`].
#[derive(Clone, Debug)]
pub struct Script {
    pub sql: String,
    pub args: SqliteArguments<'static>,
}

/// What a job does: a closure over the connection, or a script.
enum Work {
    Apply(Apply),
    Script(Script),
}

struct Job {
    work: Work,
    reply: oneshot::Sender<Result<Output, WriteError>>,
    queued: Instant,
}

/// Why a write was not saved.
#[derive(Debug, Clone, thiserror::Error)]
pub enum WriteError {
    /// The job itself or its transaction failed (the message of the error).
    #[error("store write failed: {0}")]
    Failed(String),
    /// The writer task is gone (the server is stopping).
    #[error("the store's writer has stopped")]
    Stopped,
}

/// A handle on the writer task; cheap to clone.
#[derive(Clone, Debug)]
pub struct Writer {
    tx: mpsc::Sender<Job>,
}

impl Writer {
    /// Opens the writer's own connection and starts its task.
    pub async fn start(options: &SqliteConnectOptions) -> sqlx::Result<Self> {
        let conn = options.connect().await?;
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(conn, rx));
        Ok(Self { tx })
    }

    /// Applies `job` in the next batch and returns its output once that
    /// batch committed. `job` may run twice (see the module doc): it must
    /// only read and write through the connection it is given.
    pub async fn write<T, F>(&self, job: F) -> Result<T, WriteError>
    where
        T: Send + 'static,
        F: for<'c> Fn(&'c mut SqliteConnection) -> BoxFuture<'c, sqlx::Result<T>>
            + Send
            + Sync
            + 'static,
    {
        let apply: Apply = Box::new(move |conn| {
            let fut = job(conn);
            Box::pin(async move { fut.await.map(|t| Box::new(t) as Output) })
        });
        self.send(Work::Apply(apply)).await
    }

    /// Runs `script` in the next batch, like [`Writer::write`], and returns
    /// the rows its statements returned once that batch committed. A batch
    /// of this job alone is one call to SQLite's thread, `BEGIN IMMEDIATE`
    /// and `COMMIT` included, where a closure job costs one per statement
    /// plus two for the transaction (each call is a wake-up of that thread
    /// and of the waiting task: most of a small write's time).
    pub async fn run_script(&self, script: Script) -> Result<Vec<SqliteRow>, WriteError> {
        self.send(Work::Script(script)).await
    }

    async fn send<T: 'static>(&self, work: Work) -> Result<T, WriteError> {
        let (reply, done) = oneshot::channel();
        let job = Job {
            work,
            reply,
            queued: Instant::now(),
        };
        self.tx.send(job).await.map_err(|_| WriteError::Stopped)?;
        let out = done.await.map_err(|_| WriteError::Stopped)??;
        out.downcast::<T>()
            .map(|t| *t)
            .map_err(|_| WriteError::Failed("wrong output type".into()))
    }
}

async fn run(mut conn: SqliteConnection, mut rx: mpsc::Receiver<Job>) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let started = Instant::now();
        let n = batch.len();
        commit_batch(&mut conn, std::mem::take(&mut batch)).await;
        crate::metrics::observe_store_batch(n);
        if started.elapsed() > SLOW_BATCH {
            tracing::warn!(
                jobs = n,
                took_ms = started.elapsed().as_millis() as u64,
                "slow store batch"
            );
        }
    }
    let _ = conn.close().await;
}

/// Commits `batch` in one transaction; when that fails, each job in its own.
async fn commit_batch(conn: &mut SqliteConnection, mut batch: Vec<Job>) {
    if batch.len() == 1
        && let Some(Job {
            work: Work::Script(script),
            ..
        }) = batch.first()
    {
        let result = script_alone(conn, script).await;
        if let Some(job) = batch.pop() {
            deliver(job, result);
        }
        return;
    }
    let outputs = if batch.len() == 1 {
        None
    } else {
        apply_all(conn, &batch).await.ok()
    };
    match outputs {
        Some(outputs) => {
            for (job, out) in batch.into_iter().zip(outputs) {
                deliver(job, Ok(out));
            }
        }
        None => {
            for job in batch {
                let result = match &job.work {
                    Work::Script(script) => script_alone(conn, script).await,
                    Work::Apply(_) => apply_all(conn, std::slice::from_ref(&job))
                        .await
                        .map(|mut outs| outs.pop().expect("one output per job")),
                };
                deliver(job, result);
            }
        }
    }
}

fn deliver(job: Job, result: Result<Output, WriteError>) {
    crate::metrics::observe_store_write(job.queued.elapsed());
    let _ = job.reply.send(result);
}

/// One transaction over `jobs`: all their outputs, or the first error (and
/// nothing written).
async fn apply_all(conn: &mut SqliteConnection, jobs: &[Job]) -> Result<Vec<Output>, WriteError> {
    let failed = |e: sqlx::Error| WriteError::Failed(e.to_string());
    // IMMEDIATE takes the write lock now: a deferred transaction that read
    // first could not upgrade while another connection writes, and would
    // fail rather than wait.
    let mut tx = conn.begin_with("begin immediate").await.map_err(failed)?;
    let mut outputs = Vec::with_capacity(jobs.len());
    for job in jobs {
        // An error drops `tx`, which rolls the batch back.
        let out = match &job.work {
            Work::Apply(apply) => apply(&mut tx).await,
            Work::Script(script) => sqlx::query_with(&script.sql, script.args.clone())
                .fetch_all(&mut *tx)
                .await
                .map(|rows| Box::new(rows) as Output),
        };
        outputs.push(out.map_err(failed)?);
    }
    tx.commit().await.map_err(failed)?;
    Ok(outputs)
}

/// A script alone in its batch: its transaction and its statements in one
/// call. On an error nothing of it stays: the failing statement ended the
/// call, and the transaction it left open (if `BEGIN` itself succeeded) is
/// rolled back.
async fn script_alone(conn: &mut SqliteConnection, script: &Script) -> Result<Output, WriteError> {
    let sql = format!("begin immediate;\n{}\ncommit;", script.sql.trim_end());
    match sqlx::query_with(&sql, script.args.clone())
        .fetch_all(&mut *conn)
        .await
    {
        Ok(rows) => Ok(Box::new(rows)),
        Err(err) => {
            // "No transaction is active" when BEGIN or COMMIT itself failed
            // and nothing is open: nothing to undo then.
            let _ = conn.execute("rollback").await;
            Err(WriteError::Failed(err.to_string()))
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use std::sync::Arc;

    use super::*;
    use crate::store::Store;

    async fn store() -> (tempfile::TempDir, Store) {
        let dir = tempfile::tempdir().unwrap();
        let store = Store::open(&dir.path().join("pglab.db")).await.unwrap();
        sqlx::query("create table t (v integer not null unique)")
            .execute(store.pool())
            .await
            .unwrap();
        (dir, store)
    }

    fn insert(
        v: i64,
    ) -> impl for<'c> Fn(&'c mut SqliteConnection) -> BoxFuture<'c, sqlx::Result<i64>>
    + Send
    + Sync
    + 'static {
        move |conn| {
            Box::pin(async move {
                sqlx::query("insert into t (v) values (?)")
                    .bind(v)
                    .execute(conn)
                    .await
                    .map(|r| r.last_insert_rowid())
            })
        }
    }

    async fn count(store: &Store) -> i64 {
        sqlx::query_scalar("select count(*) from t")
            .fetch_one(store.pool())
            .await
            .unwrap()
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_all_commit_and_are_visible_when_acknowledged() {
        let (_dir, store) = store().await;
        let tasks: Vec<_> = (0..200)
            .map(|v| {
                let store = store.clone();
                tokio::spawn(async move {
                    store.writer().write(insert(v)).await.unwrap();
                    // Acknowledged means committed: a pool read sees it.
                    let seen: i64 = sqlx::query_scalar("select count(*) from t where v = ?")
                        .bind(v)
                        .fetch_one(store.pool())
                        .await
                        .unwrap();
                    assert_eq!(seen, 1);
                })
            })
            .collect();
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(count(&store).await, 200);
    }

    fn script(sql: &str, values: &[i64]) -> Script {
        let mut args = SqliteArguments::default();
        for v in values {
            sqlx::Arguments::add(&mut args, *v).unwrap();
        }
        Script {
            sql: sql.to_string(),
            args,
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_script_commits_whole_or_not_at_all() {
        let (_dir, store) = store().await;
        let rows = store
            .writer()
            .run_script(script(
                "insert into t (v) values (?); insert into t (v) values (?);
                 select count(*) from t;",
                &[1, 2],
            ))
            .await
            .unwrap();
        assert_eq!(sqlx::Row::get::<i64, _>(&rows[0], 0), 2);
        assert_eq!(count(&store).await, 2);
        // The second insert fails: the first is rolled back with it.
        let failed = store
            .writer()
            .run_script(script(
                "insert into t (v) values (?); insert into t (v) values (?);",
                &[3, 1],
            ))
            .await
            .map(|rows| rows.len());
        assert!(
            matches!(&failed, Err(WriteError::Failed(m)) if m.contains("UNIQUE")),
            "{failed:?}"
        );
        assert_eq!(count(&store).await, 2);
        // No transaction was left open: the next writes commit.
        store.writer().write(insert(3)).await.unwrap();
        store
            .writer()
            .run_script(script("insert into t (v) values (?);", &[4]))
            .await
            .unwrap();
        assert_eq!(count(&store).await, 4);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn scripts_batched_with_other_jobs_fail_alone() {
        let (_dir, store) = store().await;
        store.writer().write(insert(1)).await.unwrap();
        let slow = {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .writer()
                    .write(|_conn| {
                        Box::pin(async {
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            Ok(())
                        })
                    })
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        // Queued together behind the slow job: a script that fails among
        // good scripts and closures.
        let scripts: Vec<_> = [(2, 5), (1, 6), (3, 7)]
            .into_iter()
            .map(|(a, b)| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .writer()
                        .run_script(script(
                            "insert into t (v) values (?); insert into t (v) values (?);",
                            &[b, a],
                        ))
                        .await
                })
            })
            .collect();
        let closure = {
            let store = store.clone();
            tokio::spawn(async move { store.writer().write(insert(8)).await })
        };
        let mut results = Vec::new();
        for s in scripts {
            results.push(s.await.unwrap().map(|_| ()));
        }
        assert!(results[0].is_ok() && results[2].is_ok(), "{results:?}");
        assert!(results[1].is_err(), "{results:?}");
        closure.await.unwrap().unwrap();
        slow.await.unwrap().unwrap();
        // 1, then 5 2, 7 3 and 8; nothing of the failed script (6).
        assert_eq!(count(&store).await, 6);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_failing_job_fails_alone() {
        let (_dir, store) = store().await;
        store.writer().write(insert(1)).await.unwrap();
        // A slow job first, so that the next ones queue into one batch.
        let slow = {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .writer()
                    .write(|_conn| {
                        Box::pin(async {
                            tokio::time::sleep(Duration::from_millis(200)).await;
                            Ok(())
                        })
                    })
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(50)).await;
        // Queued together: a duplicate among good ones.
        let jobs: Vec<_> = [2, 1, 3, 4]
            .into_iter()
            .map(|v| {
                let store = store.clone();
                tokio::spawn(async move { store.writer().write(insert(v)).await })
            })
            .collect();
        let mut results = Vec::new();
        for j in jobs {
            results.push(j.await.unwrap());
        }
        assert!(results[0].is_ok() && results[2].is_ok() && results[3].is_ok());
        assert!(
            matches!(&results[1], Err(WriteError::Failed(m)) if m.contains("UNIQUE")),
            "{:?}",
            results[1]
        );
        assert_eq!(count(&store).await, 4);
        slow.await.unwrap().unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn reads_do_not_wait_for_a_batch_in_progress() {
        let (_dir, store) = store().await;
        store.writer().write(insert(1)).await.unwrap();
        let (holding, held) = oneshot::channel::<()>();
        let holding = Arc::new(std::sync::Mutex::new(Some(holding)));
        let slow = {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .writer()
                    .write(move |conn| {
                        let holding = holding.clone();
                        Box::pin(async move {
                            sqlx::query("insert into t (v) values (2)")
                                .execute(&mut *conn)
                                .await?;
                            if let Some(tx) = holding.lock().unwrap().take() {
                                let _ = tx.send(());
                            }
                            // The write lock is held for a while.
                            tokio::time::sleep(Duration::from_millis(500)).await;
                            Ok(())
                        })
                    })
                    .await
            })
        };
        held.await.unwrap();
        let t = Instant::now();
        // The last commit, not the batch in progress, and at once.
        assert_eq!(count(&store).await, 1);
        assert!(
            t.elapsed() < Duration::from_millis(250),
            "{:?}",
            t.elapsed()
        );
        slow.await.unwrap().unwrap();
        assert_eq!(count(&store).await, 2);
    }
}
