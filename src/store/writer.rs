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
//! Jobs are closures over a sqlx connection, or scripts
//! ([`Writer::run_script`]: statements with their arguments), which the
//! usual console run is. Every sqlx call is a hand-off to SQLite's own
//! thread and back, and on an idle machine each wakes a halted CPU: a
//! closure job of three statements took ~0.2 ms to commit, most of it
//! waiting. Scripts run on a connection of their own through rusqlite,
//! called from the writer task itself: `BEGIN IMMEDIATE`, the statements
//! (prepared once and cached) and `COMMIT` with no thread hand-off. That
//! call does not wait for a lock: when another connection holds the write
//! lock (the pool's rare writes: accounts, sessions, sandbox records), or
//! a batch holds many scripts, it runs on a blocking thread instead and
//! waits there. A batch holding both kinds commits scripts and closures in
//! a transaction each (the jobs are independent).
//!
//! A failing job does not take the others down: when a batch fails, it is
//! rolled back and its jobs are applied again one transaction each (jobs are
//! `Fn` for that reason), so only the failing one reports the error.

use std::any::Any;
use std::borrow::Cow;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use futures::future::BoxFuture;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{ConnectOptions, Connection};
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

/// A value bound to a script statement's `?`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    Null,
    Integer(i64),
    Text(String),
}

impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Self::Integer(v)
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Self::Integer(i64::from(v))
    }
}

impl From<String> for Value {
    fn from(v: String) -> Self {
        Self::Text(v)
    }
}

impl From<&str> for Value {
    fn from(v: &str) -> Self {
        Self::Text(v.to_string())
    }
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Self::Null, Into::into)
    }
}

impl Value {
    /// The integer, or `None` for a NULL or text.
    pub fn as_i64(&self) -> Option<i64> {
        match self {
            Self::Integer(v) => Some(*v),
            _ => None,
        }
    }
}

impl rusqlite::ToSql for Value {
    fn to_sql(&self) -> rusqlite::Result<rusqlite::types::ToSqlOutput<'_>> {
        use rusqlite::types::{ToSqlOutput, ValueRef};
        Ok(match self {
            Self::Null => ToSqlOutput::Borrowed(ValueRef::Null),
            Self::Integer(v) => ToSqlOutput::Borrowed(ValueRef::Integer(*v)),
            Self::Text(s) => ToSqlOutput::Borrowed(ValueRef::Text(s.as_bytes())),
        })
    }
}

/// Statements with their arguments (positional `?`), for
/// [`Writer::run_script`]; run in order in one transaction.
#[derive(Clone, Debug, Default)]
pub struct Script {
    statements: Vec<(Cow<'static, str>, Vec<Value>)>,
}

impl Script {
    /// Adds one statement and its arguments. A single one: text with a `;`
    /// before its end fails the script (SQLite would run only the first).
    pub fn push(&mut self, sql: impl Into<Cow<'static, str>>, args: Vec<Value>) {
        self.statements.push((sql.into(), args));
    }

    pub fn is_empty(&self) -> bool {
        self.statements.is_empty()
    }
}

/// Rows the statements of a script returned, in order, each as its values
/// (REAL and BLOB columns read as NULL: the store's scripts return none).
pub type Rows = Vec<Vec<Value>>;

/// What a job does: a closure over the connection, or a script.
enum Work {
    Apply(Apply),
    Script(Script),
}

struct Job {
    work: Work,
    reply: Reply,
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
    /// Opens the writer's own connections (sqlx for closures, rusqlite for
    /// scripts) and starts its task.
    pub async fn start(options: &SqliteConnectOptions) -> anyhow::Result<Self> {
        let conn = options.connect().await?;
        let path = options.get_filename().to_path_buf();
        let scripts = ScriptConn {
            conn: Some(ScriptConn::open(&path)?),
            path,
        };
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(run(conn, scripts, rx));
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
    /// the rows its statements returned once that batch committed: whole
    /// or not at all. On the writer task itself, with no hand-off to
    /// another thread (see the module doc).
    pub async fn run_script(&self, script: Script) -> Result<Rows, WriteError> {
        self.send(Work::Script(script)).await
    }

    async fn send<T: 'static>(&self, work: Work) -> Result<T, WriteError> {
        let (tx, done) = oneshot::channel();
        let job = Job {
            work,
            reply: Reply {
                tx,
                queued: Instant::now(),
            },
        };
        self.tx.send(job).await.map_err(|_| WriteError::Stopped)?;
        let out = done.await.map_err(|_| WriteError::Stopped)??;
        out.downcast::<T>()
            .map(|t| *t)
            .map_err(|_| WriteError::Failed("wrong output type".into()))
    }
}

async fn run(mut conn: SqliteConnection, mut scripts: ScriptConn, mut rx: mpsc::Receiver<Job>) {
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
        commit_batch(&mut conn, &mut scripts, std::mem::take(&mut batch)).await;
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

/// Commits `batch`: its scripts in one transaction, its closures in
/// another; when one of those fails, each of its jobs in its own.
async fn commit_batch(conn: &mut SqliteConnection, scripts: &mut ScriptConn, batch: Vec<Job>) {
    let (mut texts, mut text_replies) = (Vec::new(), Vec::new());
    let (mut closures, mut closure_replies) = (Vec::new(), Vec::new());
    for job in batch {
        match job.work {
            Work::Script(script) => {
                texts.push(script);
                text_replies.push(job.reply);
            }
            Work::Apply(apply) => {
                closures.push(apply);
                closure_replies.push(job.reply);
            }
        }
    }
    if !texts.is_empty() {
        scripts.commit(texts, text_replies).await;
    }
    if closures.is_empty() {
        return;
    }
    let outputs = if closures.len() == 1 {
        None
    } else {
        apply_all(conn, &closures).await.ok()
    };
    match outputs {
        Some(outputs) => {
            for (reply, out) in closure_replies.into_iter().zip(outputs) {
                reply.deliver(Ok(out));
            }
        }
        None => {
            for (apply, reply) in closures.iter().zip(closure_replies) {
                let result = apply_all(conn, std::slice::from_ref(apply))
                    .await
                    .map(|mut outs| outs.pop().expect("one output per job"));
                reply.deliver(result);
            }
        }
    }
}

/// One transaction over `jobs`: all their outputs, or the first error (and
/// nothing written).
async fn apply_all(conn: &mut SqliteConnection, jobs: &[Apply]) -> Result<Vec<Output>, WriteError> {
    let failed = |e: sqlx::Error| WriteError::Failed(e.to_string());
    // IMMEDIATE takes the write lock now: a deferred transaction that read
    // first could not upgrade while another connection writes, and would
    // fail rather than wait.
    let mut tx = conn.begin_with("begin immediate").await.map_err(failed)?;
    let mut outputs = Vec::with_capacity(jobs.len());
    for apply in jobs {
        // An error drops `tx`, which rolls the batch back.
        outputs.push(apply(&mut tx).await.map_err(failed)?);
    }
    tx.commit().await.map_err(failed)?;
    Ok(outputs)
}

/// Scripts in a batch up to this many are run on the writer task itself (a
/// few tens of µs); more go to a blocking thread, as does any batch that
/// found the store locked by another connection.
const INLINE_SCRIPTS: usize = 8;
/// How long a script waits for another connection's write lock (on a
/// blocking thread; on the task it does not wait at all).
const BUSY_WAIT: Duration = Duration::from_secs(5);

/// Where a job's answer goes.
struct Reply {
    tx: oneshot::Sender<Result<Output, WriteError>>,
    queued: Instant,
}

impl Reply {
    fn deliver(self, result: Result<Output, WriteError>) {
        crate::metrics::observe_store_write(self.queued.elapsed());
        let _ = self.tx.send(result);
    }
}

/// The writer's connection for scripts: SQLite's own API through rusqlite,
/// called from the writer task itself, so a script is no hand-off to
/// another thread and back (sqlx's SQLite driver runs every call on a
/// thread of its own, and a lone commit spent most of its ~0.1 ms on those
/// wake-ups). `None` while it is lent to a blocking thread or was lost.
struct ScriptConn {
    path: PathBuf,
    conn: Option<rusqlite::Connection>,
}

impl ScriptConn {
    fn open(path: &Path) -> rusqlite::Result<rusqlite::Connection> {
        let conn = rusqlite::Connection::open(path)?;
        conn.pragma_update(None, "journal_mode", "wal")?;
        conn.pragma_update(None, "synchronous", "normal")?;
        conn.pragma_update(None, "foreign_keys", "on")?;
        // Checkpoints are the checkpointer's, never a commit's (`store`).
        conn.pragma_update(None, "wal_autocheckpoint", 0)?;
        conn.busy_timeout(Duration::ZERO)?;
        conn.set_prepared_statement_cache_capacity(64);
        Ok(conn)
    }

    /// Commits the scripts, all in one transaction when they all succeed;
    /// answers each job.
    async fn commit(&mut self, scripts: Vec<Script>, replies: Vec<Reply>) {
        let conn = match self.conn.take() {
            Some(conn) => Some(conn),
            None => match Self::open(&self.path) {
                Ok(conn) => Some(conn),
                Err(err) => {
                    tracing::warn!(error = %err, "could not open the store's script connection");
                    None
                }
            },
        };
        let Some(mut conn) = conn else {
            for reply in replies {
                reply.deliver(Err(WriteError::Failed("the store cannot be opened".into())));
            }
            return;
        };
        if scripts.len() <= INLINE_SCRIPTS {
            match in_one_transaction(&mut conn, &scripts) {
                Ok(rows) => {
                    self.conn = Some(conn);
                    for (reply, rows) in replies.into_iter().zip(rows) {
                        reply.deliver(Ok(Box::new(rows)));
                    }
                    return;
                }
                // A lone script that failed for itself: its error, without
                // running it again on a blocking thread.
                Err(err) if scripts.len() == 1 && !is_busy(&err) => {
                    self.conn = Some(conn);
                    for reply in replies {
                        reply.deliver(Err(WriteError::Failed(err.to_string())));
                    }
                    return;
                }
                Err(_) => {}
            }
        }
        // Many scripts, the store locked by another connection, or scripts
        // that failed together (the attempt above was rolled back): on a
        // blocking thread, waiting for the lock, each alone.
        let done = tokio::task::spawn_blocking(move || {
            let _ = conn.busy_timeout(BUSY_WAIT);
            let results = commit_blocking(&mut conn, &scripts);
            let _ = conn.busy_timeout(Duration::ZERO);
            (conn, results)
        })
        .await;
        match done {
            Ok((conn, results)) => {
                self.conn = Some(conn);
                for (reply, result) in replies.into_iter().zip(results) {
                    reply.deliver(result.map(|rows| Box::new(rows) as Output));
                }
            }
            Err(err) => {
                // The connection went with the thread; the next batch opens
                // a new one.
                for reply in replies {
                    reply.deliver(Err(WriteError::Failed(format!("store write: {err}"))));
                }
            }
        }
    }
}

/// Whether SQLite refused for a lock another connection holds.
fn is_busy(err: &rusqlite::Error) -> bool {
    matches!(
        err.sqlite_error_code(),
        Some(rusqlite::ErrorCode::DatabaseBusy | rusqlite::ErrorCode::DatabaseLocked)
    )
}

/// The scripts in one transaction, or each in its own when that fails, so
/// only a failing one reports its error. Blocking.
fn commit_blocking(
    conn: &mut rusqlite::Connection,
    scripts: &[Script],
) -> Vec<Result<Rows, WriteError>> {
    if scripts.len() > 1
        && let Ok(rows) = in_one_transaction(conn, scripts)
    {
        return rows.into_iter().map(Ok).collect();
    }
    scripts
        .iter()
        .map(|script| {
            in_one_transaction(conn, std::slice::from_ref(script))
                .map(|mut rows| rows.pop().unwrap_or_default())
                .map_err(|e| WriteError::Failed(e.to_string()))
        })
        .collect()
}

/// `BEGIN IMMEDIATE`, every statement of every script, `COMMIT`: each
/// script's rows, or the first error and nothing written (the transaction
/// is rolled back when dropped).
fn in_one_transaction(
    conn: &mut rusqlite::Connection,
    scripts: &[Script],
) -> rusqlite::Result<Vec<Rows>> {
    let tx = conn.transaction_with_behavior(rusqlite::TransactionBehavior::Immediate)?;
    let mut out = Vec::with_capacity(scripts.len());
    for script in scripts {
        let mut rows = Vec::new();
        for (sql, args) in &script.statements {
            // SQLite would run the first of two statements and ignore the
            // rest; the store's statements have no `;` inside.
            if sql.trim_end().trim_end_matches(';').contains(';') {
                return Err(rusqlite::Error::MultipleStatement);
            }
            let mut statement = tx.prepare_cached(sql)?;
            let columns = statement.column_count();
            let mut answer = statement.query(rusqlite::params_from_iter(args))?;
            while let Some(row) = answer.next()? {
                let mut values = Vec::with_capacity(columns);
                for i in 0..columns {
                    values.push(match row.get_ref(i)? {
                        rusqlite::types::ValueRef::Integer(v) => Value::Integer(v),
                        rusqlite::types::ValueRef::Text(t) => {
                            Value::Text(String::from_utf8_lossy(t).into_owned())
                        }
                        _ => Value::Null,
                    });
                }
                rows.push(values);
            }
        }
        out.push(rows);
    }
    tx.commit()?;
    Ok(out)
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

    /// A script of `sql`'s statements (split at `;`), each taking the next
    /// of `values` for each of its `?`.
    fn script(sql: &str, values: &[i64]) -> Script {
        let mut values = values.iter();
        let mut script = Script::default();
        for statement in sql.split(';').map(str::trim).filter(|s| !s.is_empty()) {
            let args = statement
                .matches('?')
                .map(|_| Value::from(*values.next().unwrap()))
                .collect();
            script.push(statement.to_string(), args);
        }
        script
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
        assert_eq!(rows, vec![vec![Value::Integer(2)]]);
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

    /// Another connection holds the write lock: the script does not fail
    /// (nor block the writer task), it waits on a blocking thread and
    /// commits once the lock is free. On a runtime of one thread too.
    #[tokio::test]
    async fn a_script_waits_for_another_connections_lock() {
        let (_dir, store) = store().await;
        let mut other = store.pool().acquire().await.unwrap();
        sqlx::query("begin immediate")
            .execute(&mut *other)
            .await
            .unwrap();
        sqlx::query("insert into t (v) values (100)")
            .execute(&mut *other)
            .await
            .unwrap();
        let writing = {
            let store = store.clone();
            tokio::spawn(async move {
                store
                    .writer()
                    .run_script(script(
                        "insert into t (v) values (?); select count(*) from t",
                        &[1],
                    ))
                    .await
            })
        };
        tokio::time::sleep(Duration::from_millis(300)).await;
        assert!(!writing.is_finished(), "waits for the lock");
        sqlx::query("commit").execute(&mut *other).await.unwrap();
        drop(other);
        let rows = writing.await.unwrap().unwrap();
        assert_eq!(rows, vec![vec![Value::Integer(2)]]);
        // The script connection is back on the task: the next one is quick.
        store
            .writer()
            .run_script(script("insert into t (v) values (?)", &[2]))
            .await
            .unwrap();
        assert_eq!(count(&store).await, 3);
    }

    /// Values come back as the store holds them; NULL and text too.
    #[tokio::test]
    async fn script_rows_carry_their_values() {
        let (_dir, store) = store().await;
        let mut s = Script::default();
        s.push(
            "select ?, ?, ?, ? is null",
            vec![
                Value::from(Some("ab")),
                Value::from(None::<String>),
                Value::from(true),
                Value::Null,
            ],
        );
        let rows = store.writer().run_script(s).await.unwrap();
        assert_eq!(
            rows,
            vec![vec![
                Value::Text("ab".into()),
                Value::Null,
                Value::Integer(1),
                Value::Integer(1)
            ]]
        );
        // Two statements in one push are refused, and nothing is written.
        let mut two = Script::default();
        two.push(
            "insert into t (v) values (1); insert into t (v) values (2)",
            vec![],
        );
        assert!(store.writer().run_script(two).await.is_err());
        assert_eq!(count(&store).await, 0);
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
