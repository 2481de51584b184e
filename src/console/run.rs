//! Runs one statement on a session's connection through the simple query
//! protocol, exactly as psql sends it, and turns what comes back into a
//! [`StatementResult`]: columns with type names (also for zero rows), text
//! values (NULL kept apart from ''), the command tag, notices, elapsed time,
//! or the server's error with its position.
//!
//! Memory stays bounded whatever the statement returns: rows past the row cap
//! and the byte budget are counted, not kept, and each value is cut at the
//! value cap. A result so cut is also kept whole (`StatementResult::full`,
//! for `console::kept`) while it fits in the keep budget: past it, only the
//! cut rows stay.
//!
//! The connection is a `PgListener` over a pool of one: sqlx's plain
//! `PgConnection` rejects a NotificationResponse (`LISTEN ch; NOTIFY ch;`
//! would kill the session), while a listener's connection buffers them. The
//! listener never reconnects behind our back: it only reconnects after its own
//! `try_recv` saw the socket die, and [`Conn::poll_notifications`] treats that
//! as a lost connection. Notifications are drained after each statement,
//! worded as psql prints them, at most [`NOTIFICATION_CAP`] kept per drain.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use futures::TryStreamExt;
use futures::future::BoxFuture;
use sqlx::postgres::{
    PgConnectOptions, PgDatabaseError, PgErrorPosition, PgListener, PgPool, PgPoolOptions, PgRow,
};
use sqlx::{Acquire, Column as _, Connection, Either, Executor, Row, Statement, ValueRef};

use super::notices::{Notice, NoticeQueue};
use super::relay::Relay;
use super::result::{Column, SqlError, StatementResult};
use super::tag::{self, Outcome};

/// Caps on what one statement sends to the browser.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Rows kept per statement (the rest are counted).
    pub row_cap: usize,
    /// Bytes kept per value (the rest is replaced by a marker).
    pub value_cap: usize,
    /// Bytes of values kept per statement, whatever the row count.
    pub byte_budget: usize,
    /// Bytes of a cut result that may be kept whole besides (0: none).
    pub keep_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            row_cap: 1000,
            value_cap: 10_000,
            byte_budget: 8 << 20,
            keep_bytes: 0,
        }
    }
}

/// Notifications kept per statement (or per idle poll); the rest are counted.
pub const NOTIFICATION_CAP: usize = 1000;

/// A session's live connection and what the runner remembers about it.
pub struct Conn {
    /// Executes like a `PgConnection` (`&mut conn.conn` is an `Executor`).
    pub conn: PgListener,
    /// The pool of one behind `conn`, closed with the session.
    pool: PgPool,
    /// The NOTICE/WARNING messages the relay read off this connection and
    /// no statement took yet.
    pub notices: Arc<NoticeQueue>,
    /// The relay `conn` goes through (dropped last: the pool's Terminate
    /// still passes through it on close).
    relay: Relay,
    /// The backend's process id, for `pg_cancel_backend` and lock reports.
    pub pid: i32,
    /// Type names by OID (`format_type`), looked up once per connection.
    types: HashMap<u32, String>,
    /// The `statement_timeout` (ms) this runner last set, if still in force.
    pub applied_timeout_ms: Option<u64>,
    /// The session's `standard_conforming_strings`, for the splitter.
    pub std_strings: bool,
    /// Whether a statement may have changed it since it was last read.
    pub std_strings_stale: bool,
    /// The database the session is connected to.
    pub database: String,
    /// The user the session is connected as.
    pub user: String,
}

impl Conn {
    /// Connects with `options` and reads the backend pid and settings.
    pub async fn connect(options: &PgConnectOptions) -> Result<Self, sqlx::Error> {
        let notices = Arc::new(NoticeQueue::default());
        let (options, relay) = Relay::start(options, notices.clone())?;
        let pool = PgPoolOptions::new()
            .max_connections(1)
            .min_connections(0)
            .max_lifetime(None)
            .idle_timeout(None)
            .test_before_acquire(false)
            .connect_with(options)
            .await?;
        let mut conn = PgListener::connect_with(&pool).await?;
        conn.eager_reconnect(false);
        conn.ignore_pool_close_event(true);
        let (pid, std_strings, database, user): (i32, String, String, String) = sqlx::query_as(
            "select pg_backend_pid(), current_setting('standard_conforming_strings'), current_database()::text, current_user::text",
        )
        .fetch_one(&mut conn)
        .await?;
        notices.clear();
        Ok(Self {
            conn,
            pool,
            notices,
            relay,
            pid,
            types: builtin_type_names(),
            applied_timeout_ms: None,
            std_strings: std_strings == "on",
            std_strings_stale: false,
            database,
            user,
        })
    }

    /// The directory of the relay's socket this connection goes through.
    pub fn relay_dir(&self) -> &std::path::Path {
        self.relay.socket_dir()
    }

    /// Closes the connection (the server rolls back what it left open).
    pub async fn close(self) {
        let Self {
            conn, pool, relay, ..
        } = self;
        drop(conn);
        let _ = tokio::time::timeout(std::time::Duration::from_secs(10), pool.close()).await;
        drop(relay);
    }

    /// The connection itself, for `Connection` methods.
    pub async fn raw(&mut self) -> Result<&mut sqlx::PgConnection, sqlx::Error> {
        (&mut self.conn).acquire().await
    }

    /// Re-reads `standard_conforming_strings` when a statement may have
    /// changed it (not possible in a failed transaction: kept stale then).
    pub async fn refresh_std_strings(&mut self) {
        if !self.std_strings_stale {
            return;
        }
        let got: Result<String, _> =
            sqlx::query_scalar("select current_setting('standard_conforming_strings')")
                .fetch_one(&mut self.conn)
                .await;
        if let Ok(v) = got {
            self.std_strings = v == "on";
            self.std_strings_stale = false;
        }
    }

    /// Notifications the connection buffered, worded as psql prints them:
    /// at most [`NOTIFICATION_CAP`], and how many more were dropped.
    pub fn drain_notifications(&mut self) -> (Vec<String>, u64) {
        let mut kept = Vec::new();
        let mut dropped = 0u64;
        while let Some(n) = self.conn.next_buffered() {
            if kept.len() < NOTIFICATION_CAP {
                kept.push(notification_text(n.channel(), n.payload(), n.process_id()));
            } else {
                dropped += 1;
            }
        }
        (kept, dropped)
    }

    /// Waits up to `wait` for notifications on an idle connection and
    /// answers as soon as some arrived (with those that follow within a
    /// moment, so a burst comes in one answer), or when `stop` is notified
    /// (a run wants the connection). What was received is always returned,
    /// never lost to the stop: `try_recv` is cancel-safe (sqlx consumes a
    /// message only once it is whole). `Err` when the connection turned out
    /// to be lost.
    pub async fn poll_notifications(
        &mut self,
        wait: std::time::Duration,
        stop: &tokio::sync::Notify,
    ) -> Result<(Vec<String>, u64), ()> {
        let (mut kept, mut dropped) = self.drain_notifications();
        if !kept.is_empty() || dropped > 0 {
            return Ok((kept, dropped));
        }
        let mut deadline = tokio::time::Instant::now() + wait;
        let mut got_some = false;
        loop {
            let next = tokio::select! {
                biased;
                _ = stop.notified() => break,
                r = tokio::time::timeout_at(deadline, self.conn.try_recv()) => r,
            };
            match next {
                Err(_) => break,
                Ok(Ok(Some(n))) => {
                    if kept.len() < NOTIFICATION_CAP {
                        kept.push(notification_text(n.channel(), n.payload(), n.process_id()));
                    } else {
                        dropped += 1;
                    }
                    if !got_some {
                        got_some = true;
                        deadline = deadline.min(tokio::time::Instant::now() + BURST_GAP);
                    }
                }
                // None: the socket died (the listener dropped it); or an error.
                Ok(Ok(None)) | Ok(Err(_)) => return Err(()),
            }
        }
        Ok((kept, dropped))
    }
}

/// After a first notification, how long an idle poll goes on collecting the
/// ones that follow before it answers.
const BURST_GAP: std::time::Duration = std::time::Duration::from_millis(100);

/// psql's wording of an asynchronous notification.
pub fn notification_text(channel: &str, payload: &str, pid: u32) -> String {
    if payload.is_empty() {
        format!(
            "Asynchronous notification \"{channel}\" received from server process with PID {pid}."
        )
    } else {
        format!(
            "Asynchronous notification \"{channel}\" with payload \"{payload}\" received from server process with PID {pid}."
        )
    }
}

/// What one statement did, beyond its result.
pub struct Ran {
    pub result: StatementResult,
    /// The connection is gone (FATAL error, socket closed): drop it.
    pub lost: bool,
}

/// Runs `sql` (one statement). `ended_failed` tells the tag that a COMMIT
/// would end a failed transaction (the server then says ROLLBACK).
///
/// Boxed so that the future is `Send` with concrete lifetimes when spawned
/// (sqlx's generic executor bounds defeat the compiler's inference otherwise).
pub fn run_statement<'a>(
    c: &'a mut Conn,
    sql: &'a str,
    limits: &'a Limits,
    in_failed_tx: bool,
) -> BoxFuture<'a, Ran> {
    Box::pin(run_statement_inner(c, sql, limits, in_failed_tx))
}

async fn run_statement_inner(c: &mut Conn, sql: &str, limits: &Limits, in_failed_tx: bool) -> Ran {
    let copy_kind = super::copy::classify(sql);
    if let super::copy::CopyKind::Refused(message) = &copy_kind {
        return Ran {
            result: StatementResult::client_error(sql, message.clone()),
            lost: false,
        };
    }
    if copy_kind != super::copy::CopyKind::Other {
        c.notices.clear();
        let started = Instant::now();
        let copied = super::copy::copy_out(c, sql, &copy_kind, limits, in_failed_tx).await;
        let mut result = StatementResult {
            sql: sql.to_string(),
            kind: "statement",
            notices: c.notices.take(),
            ..StatementResult::default()
        };
        match copied {
            Ok(super::copy::CopyOut::Copied {
                data,
                rows,
                truncated,
            }) => {
                result.elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
                let (notifications, dropped) = c.drain_notifications();
                result.notifications = notifications;
                result.notifications_dropped = dropped;
                super::copy::fill(&mut result, data, rows, truncated);
                return Ran {
                    result,
                    lost: false,
                };
            }
            Ok(super::copy::CopyOut::SendPlain) => {}
            Err(err) => {
                let (error, lost) = map_error(err);
                result.error = Some(error);
                return Ran { result, lost };
            }
        }
    }
    c.notices.clear();
    let mut columns: Vec<(String, u32)> = Vec::new();
    let mut rows: Vec<Vec<Option<String>>> = Vec::new();
    let mut total_rows = 0u64;
    let mut affected = 0u64;
    let mut bytes = 0usize;
    let mut values_truncated = false;
    let mut invalid_utf8 = false;
    let mut whole = Whole::new(limits.keep_bytes);
    let started = Instant::now();
    let outcome: Result<(), sqlx::Error> = async {
        let mut stream = sqlx::raw_sql(sql).fetch_many(&mut c.conn);
        while let Some(item) = stream.try_next().await? {
            match item {
                Either::Left(done) => affected += done.rows_affected(),
                Either::Right(row) => {
                    if columns.is_empty() {
                        columns = row_columns(&row);
                    }
                    total_rows += 1;
                    let shown = rows.len() < limits.row_cap && bytes < limits.byte_budget;
                    if !shown && !whole.keeping() {
                        // Past the budget rows are still counted, not kept.
                        continue;
                    }
                    // Values whole while the result may still be kept
                    // whole, cut at once otherwise.
                    let cap = if whole.keeping() {
                        usize::MAX
                    } else {
                        limits.value_cap
                    };
                    let mut values =
                        row_values(&row, cap, &mut values_truncated, &mut invalid_utf8);
                    if whole.count(&values, limits.keep_bytes) {
                        // Past the keep budget: what is shown is cut now.
                        for v in rows.iter_mut().chain([&mut values]).flatten().flatten() {
                            if v.len() > limits.value_cap {
                                *v = cap_value(v, limits.value_cap, &mut values_truncated);
                            }
                        }
                    }
                    if shown {
                        bytes += values
                            .iter()
                            .flatten()
                            .map(|v| v.len().min(limits.value_cap))
                            .sum::<usize>()
                            + 8;
                        rows.push(values);
                    } else {
                        whole.push(values);
                    }
                }
            }
        }
        Ok(())
    }
    .await;
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    let (notifications, notifications_dropped) = c.drain_notifications();
    let mut result = StatementResult {
        sql: sql.to_string(),
        kind: "statement",
        elapsed_ms,
        notices: c.notices.take(),
        notifications,
        notifications_dropped,
        ..StatementResult::default()
    };
    if may_change_std_strings(sql) {
        c.std_strings_stale = true;
    }
    match outcome {
        Ok(()) if is_empty_query(sql) => {
            // EmptyQueryResponse: psql prints nothing, no tag.
            result.empty_query = true;
            Ran {
                result,
                lost: false,
            }
        }
        Ok(()) => {
            let prepared = match tag::executed_name(sql) {
                Some(name) => prepared_statement(c, &name).await,
                None => None,
            };
            // A statement that returns rows returns a table even with none
            // (psql prints its header); EXECUTE as the statement it runs.
            let w = tag::words(sql);
            let fetch = w.first().is_some_and(|x| x == "FETCH");
            let table = fetch || returns_rows(prepared.as_deref().unwrap_or(sql));
            if columns.is_empty() && table {
                columns = describe(c, sql).await;
            }
            result.tuples = table || total_rows > 0 || !columns.is_empty();
            result.columns = name_types(c, columns).await;
            result.truncated = (rows.len() as u64) < total_rows;
            let (shown, full) = whole.finish(rows, limits.value_cap, result.truncated);
            values_truncated |= shown.cut;
            result.rows = shown.rows;
            result.full = full;
            result.total_rows = total_rows;
            result.values_truncated = values_truncated;
            let n = if total_rows > 0 { total_rows } else { affected };
            let outcome = Outcome {
                rows: n,
                ended_failed_transaction: in_failed_tx,
                skipped_existing: result
                    .notices
                    .iter()
                    .any(|x| x.message.ends_with("already exists, skipping")),
            };
            result.command_tag = Some(match prepared {
                Some(body) => tag::command_tag(&body, outcome),
                None => tag::command_tag(sql, outcome),
            });
            if invalid_utf8 {
                result.notices.push(Notice::note(
                    "WARNING",
                    "some values are not valid UTF-8; they are shown with \u{fffd} in place of the invalid bytes",
                ));
            }
            after_success(c, sql).await;
            Ran {
                result,
                lost: false,
            }
        }
        Err(err) => {
            let (error, lost) = map_error(err);
            result.error = Some(error);
            Ran { result, lost }
        }
    }
}

/// psql's unseen `BEGIN` before a statement when AUTOCOMMIT is off;
/// `Ok(true)` once the transaction is open. Boxed as [`run_statement`].
pub fn implicit_begin(c: &mut Conn) -> BoxFuture<'_, Result<bool, sqlx::Error>> {
    Box::pin(implicit_begin_inner(c))
}

async fn implicit_begin_inner(c: &mut Conn) -> Result<bool, sqlx::Error> {
    let mut stream = sqlx::raw_sql("BEGIN").fetch_many(&mut c.conn);
    while stream.try_next().await?.is_some() {}
    Ok(true)
}

/// Whether `sql` is only comments and `;`: the server answers it with
/// EmptyQueryResponse.
fn is_empty_query(sql: &str) -> bool {
    super::split::split(sql).iter().all(|i| i.empty)
}

/// Whether a statement may have changed `standard_conforming_strings`
/// (directly, by a function, or by ending the transaction that set it).
fn may_change_std_strings(sql: &str) -> bool {
    let w = tag::words(sql);
    let first = w.first().map(String::as_str).unwrap_or("");
    matches!(
        first,
        "SET" | "RESET" | "DISCARD" | "ROLLBACK" | "ABORT" | "COMMIT" | "END" | "CALL" | "DO"
    ) || {
        let lower = sql.to_ascii_lowercase();
        lower.contains("set_config") || lower.contains("standard_conforming")
    }
}

/// The statement a prepared statement `name` runs (its text after `AS`), so
/// that `EXECUTE name` is tagged as the server tags it.
async fn prepared_statement(c: &mut Conn, name: &str) -> Option<String> {
    let text: Option<String> = sqlx::query_scalar(
        "select statement from pg_catalog.pg_prepared_statements where name = $1",
    )
    .bind(name)
    .fetch_optional(&mut c.conn)
    .await
    .ok()
    .flatten();
    text.map(|t| tag::prepared_body(&t).to_string())
}

/// Keeps sqlx's caches true after the learner changed the session under it.
async fn after_success(c: &mut Conn, sql: &str) {
    let w = tag::words(sql);
    let first = w.first().map(String::as_str).unwrap_or("");
    if matches!(first, "DEALLOCATE" | "DISCARD")
        && let Ok(raw) = c.raw().await
    {
        // The server dropped sqlx's prepared statements.
        let _ = raw.clear_cached_statements().await;
    }
    if matches!(first, "RESET" | "DISCARD") || w.iter().any(|x| x == "STATEMENT_TIMEOUT") {
        c.applied_timeout_ms = None;
    }
    if matches!(first, "CREATE" | "DROP" | "ALTER")
        && w.iter().any(|x| x == "TYPE" || x == "DOMAIN")
    {
        // A type OID may now name something else.
        c.types = builtin_type_names();
    }
}

fn row_columns(row: &PgRow) -> Vec<(String, u32)> {
    row.columns()
        .iter()
        .map(|col| {
            let oid = col.type_info().oid().map(|o| o.0).unwrap_or(0);
            (col.name().to_string(), oid)
        })
        .collect()
}

/// A result's rows as they stream, kept whole for "show all" as long as
/// they fit in the keep budget.
struct Whole {
    /// Still keeping: every row so far fits in the budget.
    keeping: bool,
    bytes: usize,
    /// Rows past the shown ones.
    rest: Vec<Vec<Option<String>>>,
}

/// The rows to show, cut.
struct Shown {
    rows: Vec<Vec<Option<String>>>,
    cut: bool,
}

impl Whole {
    fn new(budget: usize) -> Self {
        Self {
            keeping: budget > 0,
            bytes: 0,
            rest: Vec::new(),
        }
    }

    fn keeping(&self) -> bool {
        self.keeping
    }

    /// Counts a row; past the budget nothing more is kept whole, and the
    /// answer is true the once it went past.
    fn count(&mut self, values: &[Option<String>], budget: usize) -> bool {
        if !self.keeping {
            return false;
        }
        self.bytes += super::kept::row_bytes(values);
        if self.bytes > budget {
            self.keeping = false;
            self.rest = Vec::new();
            return true;
        }
        false
    }

    fn push(&mut self, values: Vec<Option<String>>) {
        if self.keeping {
            self.rest.push(values);
        }
    }

    /// The shown rows cut at `cap`, and the whole result when something was
    /// cut (rows or values) and all of it was kept. (Once past the budget
    /// the shown rows were cut as they came.)
    fn finish(
        self,
        rows: Vec<Vec<Option<String>>>,
        cap: usize,
        rows_cut: bool,
    ) -> (Shown, Option<super::kept::FullRows>) {
        let long = self.keeping && rows.iter().flatten().flatten().any(|v| v.len() > cap);
        if !self.keeping || (!long && !rows_cut) {
            return (Shown { rows, cut: false }, None);
        }
        let mut cut = false;
        let shown: Vec<Vec<Option<String>>> = rows
            .iter()
            .map(|r| {
                r.iter()
                    .map(|v| v.as_ref().map(|v| cap_value(v, cap, &mut cut)))
                    .collect()
            })
            .collect();
        let full = self.keeping.then(|| {
            let mut all = rows;
            all.extend(self.rest);
            super::kept::FullRows { rows: all }
        });
        (Shown { rows: shown, cut }, full)
    }
}

fn row_values(
    row: &PgRow,
    value_cap: usize,
    cut: &mut bool,
    invalid: &mut bool,
) -> Vec<Option<String>> {
    (0..row.len())
        .map(|i| {
            let raw = row.try_get_raw(i).ok()?;
            if raw.is_null() {
                return None;
            }
            let bytes = raw.as_bytes().unwrap_or_default();
            let text = match std::str::from_utf8(bytes) {
                Ok(s) => std::borrow::Cow::Borrowed(s),
                Err(_) => {
                    *invalid = true;
                    String::from_utf8_lossy(bytes)
                }
            };
            Some(cap_value(&text, value_cap, cut))
        })
        .collect()
}

/// Cuts a value at `cap` bytes (on a character boundary) with a marker
/// saying how much was left out.
pub(super) fn cap_value(text: &str, cap: usize, cut: &mut bool) -> String {
    if text.len() <= cap {
        return text.to_string();
    }
    *cut = true;
    let mut end = cap;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}… [{} more bytes]", &text[..end], text.len() - end)
}

/// Whether a statement that returned no row still has result columns.
fn returns_rows(sql: &str) -> bool {
    let w = tag::words(sql);
    let first = w.first().map(String::as_str).unwrap_or("");
    let main = if first == "WITH" {
        w.iter()
            .skip(1)
            .find(|x| {
                matches!(
                    x.as_str(),
                    "SELECT" | "INSERT" | "UPDATE" | "DELETE" | "MERGE" | "VALUES" | "TABLE"
                )
            })
            .map(String::as_str)
            .unwrap_or("")
    } else {
        first
    };
    match main {
        "SELECT" => !w.iter().any(|x| x == "INTO"),
        "VALUES" | "TABLE" => true,
        "INSERT" | "UPDATE" | "DELETE" | "MERGE" => w.iter().any(|x| x == "RETURNING"),
        _ => false,
    }
}

/// Column names and type OIDs of a statement that returned no row, from a
/// Parse/Describe on the same connection (so temp tables and the learner's
/// search_path are seen). Only called for statements that just succeeded.
async fn describe(c: &mut Conn, sql: &str) -> Vec<(String, u32)> {
    match (&mut c.conn).prepare(sql).await {
        Ok(stmt) => stmt
            .columns()
            .iter()
            .map(|col| {
                (
                    col.name().to_string(),
                    col.type_info().oid().map(|o| o.0).unwrap_or(0),
                )
            })
            .collect(),
        Err(_) => Vec::new(),
    }
}

/// Names each column's type as psql does (`integer`, `character varying`),
/// looking unknown OIDs up in `pg_type` once per connection.
async fn name_types(c: &mut Conn, columns: Vec<(String, u32)>) -> Vec<Column> {
    let missing: Vec<i64> = columns
        .iter()
        .map(|(_, oid)| *oid)
        .filter(|oid| !c.types.contains_key(oid))
        .map(i64::from)
        .collect();
    if !missing.is_empty() {
        let found: Vec<(i64, String)> = sqlx::query_as(
            "select oid::int8, pg_catalog.format_type(oid, null) from pg_catalog.pg_type where oid::int8 = any($1)",
        )
        .bind(&missing)
        .fetch_all(&mut c.conn)
        .await
        .unwrap_or_default();
        for (oid, name) in found {
            c.types.insert(oid as u32, name);
        }
    }
    columns
        .into_iter()
        .map(|(name, oid)| Column {
            name,
            type_name: c
                .types
                .get(&oid)
                .cloned()
                .unwrap_or_else(|| format!("oid {oid}")),
        })
        .collect()
}

/// Names of the built-in types learners meet most, to spare a round trip.
fn builtin_type_names() -> HashMap<u32, String> {
    [
        (16, "boolean"),
        (17, "bytea"),
        (18, "\"char\""),
        (19, "name"),
        (20, "bigint"),
        (21, "smallint"),
        (23, "integer"),
        (25, "text"),
        (26, "oid"),
        (114, "json"),
        (700, "real"),
        (701, "double precision"),
        (705, "unknown"),
        (1007, "integer[]"),
        (1009, "text[]"),
        (1016, "bigint[]"),
        (1042, "character"),
        (1043, "character varying"),
        (1082, "date"),
        (1083, "time without time zone"),
        (1114, "timestamp without time zone"),
        (1184, "timestamp with time zone"),
        (1186, "interval"),
        (1700, "numeric"),
        (2205, "regclass"),
        (2278, "void"),
        (2950, "uuid"),
        (3802, "jsonb"),
    ]
    .into_iter()
    .map(|(oid, name)| (oid, name.to_string()))
    .collect()
}

/// The error as psql shows it, and whether the connection is lost.
pub fn map_error(err: sqlx::Error) -> (SqlError, bool) {
    if let sqlx::Error::Database(db) = &err
        && let Some(pg) = db.try_downcast_ref::<PgDatabaseError>()
    {
        let severity = format!("{:?}", pg.severity()).to_uppercase();
        let lost = matches!(severity.as_str(), "FATAL" | "PANIC");
        let (position, internal) = match pg.position() {
            Some(PgErrorPosition::Original(p)) => (Some(p), None),
            Some(PgErrorPosition::Internal { position, query }) => {
                (None, Some((position, query.to_string())))
            }
            None => (None, None),
        };
        return (
            SqlError {
                severity,
                sqlstate: pg.code().to_string(),
                message: pg.message().to_string(),
                detail: pg.detail().map(str::to_string),
                hint: pg.hint().map(str::to_string),
                verbose: Some(super::result::VerboseFields::from_pg(pg)),
                position,
                script_position: None,
                context: pg.r#where().map(str::to_string),
                internal_position: internal.as_ref().map(|(p, _)| *p),
                internal_query: internal.map(|(_, q)| q),
            },
            lost,
        );
    }
    (
        SqlError {
            severity: "FATAL".into(),
            message: format!(
                "the connection to your sandbox was lost ({err}); the session reconnects on the next run"
            ),
            ..SqlError::default()
        },
        true,
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn caps_values_on_char_boundaries_with_a_marker() {
        let mut cut = false;
        assert_eq!(cap_value("abc", 5, &mut cut), "abc");
        assert!(!cut);
        let v = cap_value("ééé", 3, &mut cut);
        assert!(cut);
        assert_eq!(v, "é… [4 more bytes]");
    }

    #[test]
    fn knows_which_statements_have_result_columns() {
        assert!(returns_rows("select * from t where false"));
        assert!(returns_rows("with x as (select 1) select * from x"));
        assert!(returns_rows("delete from t returning id"));
        assert!(!returns_rows("select 1 into t2"));
        assert!(!returns_rows(
            "with x as (select 1) insert into t select * from x"
        ));
        assert!(!returns_rows("update t set a = 1"));
        assert!(!returns_rows("create table t (a int)"));
    }

    #[test]
    fn copy_from_stdin_is_refused_clearly() {
        use crate::console::copy::{CopyKind, classify};
        assert!(matches!(
            classify("copy t from stdin"),
            CopyKind::Refused(_)
        ));
        assert!(matches!(
            classify("COPY (select 1) TO STDOUT"),
            CopyKind::Query(_)
        ));
        assert_eq!(classify("copy t from '/tmp/x.csv'"), CopyKind::Other);
    }
}
