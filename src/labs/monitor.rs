//! Part E step 9, monitoring: one snapshot of the learner's sandbox
//! statistics (tables, indexes, cache hit ratio, connections) for the panel,
//! which polls it every few seconds and draws sparklines of the last samples.
//!
//! Each snapshot uses its own short-lived `labuser` connection (a superuser
//! one, so it still gets in while the 14.D.3 leak fills the ordinary slots),
//! with a statement timeout, and reads at most [`MAX_TABLES`] tables and
//! [`MAX_INDEXES`] indexes.

use std::time::Duration;

use serde::Serialize;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, FromRow, PgConnection};

/// Tables listed, busiest first.
pub const MAX_TABLES: i64 = 30;
/// Indexes listed, most scanned first.
pub const MAX_INDEXES: i64 = 50;

/// One row of `pg_stat_user_tables`; times are unix seconds.
#[derive(Debug, Serialize, FromRow)]
pub struct TableStats {
    pub schema: String,
    pub table: String,
    pub seq_scan: i64,
    pub seq_tup_read: i64,
    pub idx_scan: i64,
    pub n_live_tup: i64,
    pub n_dead_tup: i64,
    pub n_tup_ins: i64,
    pub n_tup_upd: i64,
    pub n_tup_del: i64,
    pub last_vacuum: Option<i64>,
    pub last_autovacuum: Option<i64>,
    pub last_analyze: Option<i64>,
    pub last_autoanalyze: Option<i64>,
}

/// One row of `pg_stat_user_indexes`.
#[derive(Debug, Serialize, FromRow)]
pub struct IndexStats {
    pub schema: String,
    pub table: String,
    pub index: String,
    pub idx_scan: i64,
    pub size_bytes: i64,
}

/// Connections of the whole server, by state (pglab's monitor excluded).
#[derive(Debug, Serialize, FromRow)]
pub struct Connections {
    pub total: i64,
    pub active: i64,
    pub idle: i64,
    pub idle_in_transaction: i64,
    pub max_connections: i64,
}

/// One monitoring sample.
#[derive(Debug, Serialize)]
pub struct Stats {
    /// Unix time of the sample, in milliseconds.
    pub at_ms: i64,
    pub tables: Vec<TableStats>,
    pub indexes: Vec<IndexStats>,
    /// `blks_hit / (blks_hit + blks_read)` of labdb in %, `None` before any read.
    pub cache_hit_pct: Option<f64>,
    pub blks_hit: i64,
    pub blks_read: i64,
    pub xact_commit: i64,
    pub deadlocks: i64,
    pub connections: Connections,
}

const TABLES: &str = r#"
select schemaname::text as schema, relname::text as "table",
       coalesce(seq_scan, 0) as seq_scan, coalesce(seq_tup_read, 0) as seq_tup_read,
       coalesce(idx_scan, 0) as idx_scan, n_live_tup, n_dead_tup,
       n_tup_ins, n_tup_upd, n_tup_del,
       extract(epoch from last_vacuum)::bigint as last_vacuum,
       extract(epoch from last_autovacuum)::bigint as last_autovacuum,
       extract(epoch from last_analyze)::bigint as last_analyze,
       extract(epoch from last_autoanalyze)::bigint as last_autoanalyze
from pg_stat_user_tables
order by coalesce(seq_scan, 0) + coalesce(idx_scan, 0) desc, relname
limit $1"#;

const INDEXES: &str = r#"
select schemaname::text as schema, relname::text as "table", indexrelname::text as index,
       coalesce(idx_scan, 0) as idx_scan, pg_relation_size(indexrelid) as size_bytes
from pg_stat_user_indexes
order by idx_scan desc, indexrelname
limit $1"#;

const DATABASE: &str = r#"
select coalesce(blks_hit, 0), coalesce(blks_read, 0), coalesce(xact_commit, 0),
       coalesce(deadlocks, 0)
from pg_stat_database where datname = current_database()"#;

const CONNECTIONS: &str = r#"
select count(*) as total,
       count(*) filter (where state = 'active') as active,
       count(*) filter (where state = 'idle') as idle,
       count(*) filter (where state like 'idle in transaction%') as idle_in_transaction,
       current_setting('max_connections')::bigint as max_connections
from pg_stat_activity
where backend_type = 'client backend' and pid <> pg_backend_pid()"#;

/// Reads one sample from the sandbox `options` reaches.
pub async fn snapshot(options: &PgConnectOptions) -> Result<Stats, sqlx::Error> {
    let options = options
        .clone()
        .application_name("pglab-monitor")
        .options([("statement_timeout", "5s")]);
    let mut conn =
        tokio::time::timeout(Duration::from_secs(5), PgConnection::connect_with(&options))
            .await
            .map_err(|_| timed_out())??;
    let result = read(&mut conn).await;
    let _ = conn.close().await;
    result
}

async fn read(conn: &mut PgConnection) -> Result<Stats, sqlx::Error> {
    let tables = sqlx::query_as::<_, TableStats>(TABLES)
        .bind(MAX_TABLES)
        .fetch_all(&mut *conn)
        .await?;
    let indexes = sqlx::query_as::<_, IndexStats>(INDEXES)
        .bind(MAX_INDEXES)
        .fetch_all(&mut *conn)
        .await?;
    let (blks_hit, blks_read, xact_commit, deadlocks): (i64, i64, i64, i64) =
        sqlx::query_as(DATABASE).fetch_one(&mut *conn).await?;
    let connections = sqlx::query_as::<_, Connections>(CONNECTIONS)
        .fetch_one(&mut *conn)
        .await?;
    Ok(Stats {
        at_ms: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0),
        tables,
        indexes,
        cache_hit_pct: hit_ratio(blks_hit, blks_read),
        blks_hit,
        blks_read,
        xact_commit,
        deadlocks,
        connections,
    })
}

/// Cache hit ratio in percent, two decimals; `None` when nothing was read.
pub fn hit_ratio(hit: i64, read: i64) -> Option<f64> {
    let all = hit.checked_add(read)?;
    (all > 0).then(|| (10_000.0 * hit as f64 / all as f64).round() / 100.0)
}

/// The error of a connection attempt that did not finish in time.
fn timed_out() -> sqlx::Error {
    sqlx::Error::Io(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "connecting to the sandbox timed out",
    ))
}

#[cfg(test)]
mod tests {
    use super::hit_ratio;

    #[test]
    fn hit_ratio_is_a_percentage_with_two_decimals() {
        assert_eq!(hit_ratio(0, 0), None);
        assert_eq!(hit_ratio(99, 1), Some(99.0));
        assert_eq!(hit_ratio(2, 1), Some(66.67));
        assert_eq!(hit_ratio(5, 0), Some(100.0));
    }
}
