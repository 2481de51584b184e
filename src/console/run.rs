//! Runs one statement on a session's connection through the simple query
//! protocol, exactly as psql sends it, and turns what comes back into a
//! [`StatementResult`]: columns with type names (also for zero rows), text
//! values (NULL kept apart from ''), the command tag, notices, elapsed time,
//! or the server's error with its position.
//!
//! Memory stays bounded whatever the statement returns: rows past the row cap
//! and the byte budget are counted, not kept, and each value is cut at the
//! value cap.

use std::collections::HashMap;
use std::time::Instant;

use futures::TryStreamExt;
use futures::future::BoxFuture;
use sqlx::postgres::{PgConnection, PgDatabaseError, PgErrorPosition, PgRow};
use sqlx::{Column as _, Connection, Either, Executor, Row, Statement, ValueRef};
use tracing::Instrument;

use super::notices::NoticeSink;
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
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            row_cap: 1000,
            value_cap: 10_000,
            byte_budget: 8 << 20,
        }
    }
}

/// A session's live connection and what the runner remembers about it.
pub struct Conn {
    pub conn: PgConnection,
    /// The backend's process id, for `pg_cancel_backend` and lock reports.
    pub pid: i32,
    /// Type names by OID (`format_type`), looked up once per connection.
    types: HashMap<u32, String>,
    /// The `statement_timeout` (ms) this runner last set, if still in force.
    pub applied_timeout_ms: Option<u64>,
}

impl Conn {
    /// Wraps a fresh connection and reads its backend pid.
    pub async fn new(mut conn: PgConnection) -> Result<Self, sqlx::Error> {
        let pid: i32 = sqlx::query_scalar("select pg_backend_pid()")
            .fetch_one(&mut conn)
            .await?;
        Ok(Self {
            conn,
            pid,
            types: builtin_type_names(),
            applied_timeout_ms: None,
        })
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
    if let Some(message) = refused(sql) {
        return Ran {
            result: StatementResult::client_error(sql, message),
            lost: false,
        };
    }
    let sink = NoticeSink::new();
    let mut columns: Vec<(String, u32)> = Vec::new();
    let mut rows: Vec<Vec<Option<String>>> = Vec::new();
    let mut total_rows = 0u64;
    let mut affected = 0u64;
    let mut bytes = 0usize;
    let mut values_truncated = false;
    let mut invalid_utf8 = false;
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
                    if rows.len() < limits.row_cap && bytes < limits.byte_budget {
                        // Past the budget rows are still counted, not kept.
                        let values =
                            row_values(&row, limits, &mut values_truncated, &mut invalid_utf8);
                        bytes += values.iter().flatten().map(String::len).sum::<usize>() + 8;
                        rows.push(values);
                    }
                }
            }
        }
        Ok(())
    }
    .instrument(sink.span())
    .await;
    let elapsed_ms = started.elapsed().as_secs_f64() * 1000.0;
    let mut result = StatementResult {
        sql: sql.to_string(),
        kind: "statement",
        elapsed_ms,
        notices: sink.take(),
        ..StatementResult::default()
    };
    match outcome {
        Ok(()) => {
            if columns.is_empty() && returns_rows(sql) {
                columns = describe(&mut c.conn, sql).await;
            }
            result.columns = name_types(c, columns).await;
            result.truncated = (rows.len() as u64) < total_rows;
            result.rows = rows;
            result.total_rows = total_rows;
            result.values_truncated = values_truncated;
            let n = if total_rows > 0 { total_rows } else { affected };
            result.command_tag = Some(tag::command_tag(
                sql,
                Outcome {
                    rows: n,
                    ended_failed_transaction: in_failed_tx,
                },
            ));
            if invalid_utf8 {
                result.notices.push(super::notices::Notice {
                    severity: "WARNING".into(),
                    message: "some values are not valid UTF-8; they are shown with \u{fffd} in place of the invalid bytes".into(),
                });
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

/// Statements the browser console cannot carry, with the reason.
fn refused(sql: &str) -> Option<String> {
    let w = tag::words(sql);
    if w.first().map(String::as_str) == Some("COPY")
        && w.iter().any(|x| x == "STDIN" || x == "STDOUT")
    {
        return Some("COPY ... FROM STDIN / TO STDOUT needs a psql client and is not available in the browser console: use INSERT ... VALUES, or COPY from a file on the sandbox".into());
    }
    None
}

/// Keeps sqlx's caches true after the learner changed the session under it.
async fn after_success(c: &mut Conn, sql: &str) {
    let w = tag::words(sql);
    let first = w.first().map(String::as_str).unwrap_or("");
    if matches!(first, "DEALLOCATE" | "DISCARD") {
        // The server dropped sqlx's prepared statements.
        let _ = c.conn.clear_cached_statements().await;
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

fn row_values(
    row: &PgRow,
    limits: &Limits,
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
            Some(cap_value(&text, limits.value_cap, cut))
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
async fn describe(conn: &mut PgConnection, sql: &str) -> Vec<(String, u32)> {
    match conn.prepare(sql).await {
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
        let position = match pg.position() {
            Some(PgErrorPosition::Original(p)) => Some(p),
            _ => None,
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
        assert!(refused("copy t from stdin").is_some());
        assert!(refused("COPY (select 1) TO STDOUT").is_some());
        assert!(refused("copy t from '/tmp/x.csv'").is_none());
    }
}
