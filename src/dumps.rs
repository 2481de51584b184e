//! Backups of a learner's database (exercise 14.C.4): `pg_dump` of `labdb`
//! into a file kept per learner, downloaded by its owner, and restored into a
//! new database of the learner's choosing, with the row counts of the copy
//! next to the original's.
//!
//! Files: `<data-dir>/dumps/<learner>/<id>.dump` (custom format), `id` 16
//! random hex digits. The tools run through the sandbox backend
//! ([`Provisioner::run_tool`]): in the container (Docker) or from the local
//! bindir (local). Limits: `--dump-max-mib` per dump, `--dump-max-count`
//! dumps per learner, one dump or restore at a time per learner.

use std::path::{Path, PathBuf};
use std::sync::LazyLock;
use std::time::{Duration, Instant};

use serde::Serialize;
use sqlx::{ConnectOptions, Connection, Row};

use crate::sandbox::{LAB_DB, LearnerId, LearnerLocks, Provisioner, SandboxError, Tool, ToolRun};

/// Settings of learners' dumps (flags of `pglab serve`).
#[derive(Clone, Debug, clap::Args)]
pub struct DumpsConfig {
    /// Largest dump a learner may make, in MiB.
    #[arg(
        long = "dump-max-mib",
        env = "PGLAB_DUMP_MAX_MIB",
        default_value_t = 256
    )]
    pub max_mib: u64,
    /// Dumps kept per learner (delete one to make another).
    #[arg(
        long = "dump-max-count",
        env = "PGLAB_DUMP_MAX_COUNT",
        default_value_t = 5
    )]
    pub max_count: usize,
}

/// Tables whose row counts a restore answers with.
const MAX_TABLES: usize = 100;

static LOCKS: LazyLock<LearnerLocks> = LazyLock::new(LearnerLocks::default);

/// Why a dump operation was refused or failed.
#[derive(Debug, thiserror::Error)]
pub enum DumpError {
    #[error("{0}")]
    BadRequest(String),
    #[error("no such dump")]
    NotFound,
    #[error("{0}")]
    Conflict(String),
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error("{0}")]
    Io(String),
}

fn io(err: std::io::Error) -> DumpError {
    DumpError::Io(format!(
        "the dump files could not be read or written: {err}"
    ))
}

/// One kept dump.
#[derive(Clone, Debug, Serialize)]
pub struct DumpInfo {
    pub id: String,
    pub size_bytes: u64,
    /// Unix seconds.
    pub created_at: i64,
    /// How long pg_dump took (only on the answer that made it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub duration_ms: Option<u64>,
}

/// Row count of one table, in the restored copy and in `labdb`.
#[derive(Clone, Debug, Serialize)]
pub struct TableCount {
    pub table: String,
    pub rows: i64,
    /// The same table in labdb (`None` when labdb has no such table).
    pub labdb_rows: Option<i64>,
}

/// Checks a database name for a restore: a plain lowercase identifier, and
/// never one of the databases the sandbox needs.
pub fn check_database_name(name: &str) -> Result<(), DumpError> {
    let bad = |why: &str| {
        Err(DumpError::BadRequest(format!(
            "database name {name:?}: {why}"
        )))
    };
    let mut chars = name.chars();
    match chars.next() {
        None => return bad("empty"),
        Some(c) if !(c.is_ascii_lowercase() || c == '_') => {
            return bad("must start with a lowercase letter or _");
        }
        _ => {}
    }
    if name.len() > 63 {
        return bad("at most 63 characters");
    }
    if !chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_') {
        return bad("only lowercase letters, digits and _");
    }
    if name == LAB_DB || name == "postgres" || name.starts_with("template") {
        return bad("labdb, postgres and template databases cannot be restored into");
    }
    Ok(())
}

fn check_id(id: &str) -> Result<(), DumpError> {
    if id.len() == 16
        && id
            .bytes()
            .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    {
        Ok(())
    } else {
        Err(DumpError::NotFound)
    }
}

/// The dumps of one learner.
pub struct Dumps {
    dir: PathBuf,
    learner: LearnerId,
    config: DumpsConfig,
}

impl Dumps {
    pub fn new(data_dir: &Path, learner: LearnerId, config: DumpsConfig) -> Self {
        Self {
            dir: data_dir.join("dumps").join(learner.to_string()),
            learner,
            config,
        }
    }

    /// The file of dump `id`, when it exists.
    pub fn path(&self, id: &str) -> Result<PathBuf, DumpError> {
        check_id(id)?;
        let path = self.dir.join(format!("{id}.dump"));
        if path.is_file() {
            Ok(path)
        } else {
            Err(DumpError::NotFound)
        }
    }

    /// Kept dumps, newest first.
    pub async fn list(&self) -> Result<Vec<DumpInfo>, DumpError> {
        let mut out = Vec::new();
        let mut entries = match tokio::fs::read_dir(&self.dir).await {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(out),
            Err(e) => return Err(io(e)),
        };
        while let Some(entry) = entries.next_entry().await.map_err(io)? {
            let name = entry.file_name().to_string_lossy().into_owned();
            let Some(id) = name.strip_suffix(".dump") else {
                continue;
            };
            if check_id(id).is_err() {
                continue;
            }
            let meta = entry.metadata().await.map_err(io)?;
            let created_at = meta
                .modified()
                .ok()
                .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
                .map(|d| d.as_secs() as i64)
                .unwrap_or(0);
            out.push(DumpInfo {
                id: id.to_string(),
                size_bytes: meta.len(),
                created_at,
                duration_ms: None,
            });
        }
        out.sort_by(|a, b| b.created_at.cmp(&a.created_at).then(b.id.cmp(&a.id)));
        Ok(out)
    }

    /// `pg_dump --format=custom labdb` into a new dump.
    pub async fn make(&self, sandbox: &dyn Provisioner) -> Result<DumpInfo, DumpError> {
        let _guard = LOCKS.lock(self.learner).await;
        if self.list().await?.len() >= self.config.max_count {
            return Err(DumpError::Conflict(format!(
                "you already keep {} dumps: delete one first",
                self.config.max_count
            )));
        }
        tokio::fs::create_dir_all(&self.dir).await.map_err(io)?;
        let id = format!("{:016x}", rand::random::<u64>());
        let partial = self.dir.join(format!("{id}.partial"));
        let mut run = ToolRun::new(Tool::PgDump, &["--format=custom", LAB_DB]);
        run.stdout = Some(partial.clone());
        run.max_stdout = self.config.max_mib * 1024 * 1024;
        run.deadline = Duration::from_secs(600);
        let began = Instant::now();
        let result = sandbox
            .run_tool(self.learner, run)
            .await
            .and_then(|out| out.ok("pg_dump"));
        let out = match result {
            Ok(out) => out,
            Err(err) => {
                let _ = tokio::fs::remove_file(&partial).await;
                return Err(err.into());
            }
        };
        let path = self.dir.join(format!("{id}.dump"));
        tokio::fs::rename(&partial, &path).await.map_err(io)?;
        Ok(DumpInfo {
            id,
            size_bytes: out.stdout_bytes,
            created_at: crate::sandbox::unix_now(),
            duration_ms: Some(began.elapsed().as_millis() as u64),
        })
    }

    pub async fn delete(&self, id: &str) -> Result<(), DumpError> {
        let path = self.path(id)?;
        tokio::fs::remove_file(path).await.map_err(io)
    }

    /// Restores dump `id` into a new database `database` (dropped first
    /// only when `replace`), then counts rows in the copy and in labdb.
    pub async fn restore(
        &self,
        sandbox: &dyn Provisioner,
        id: &str,
        database: &str,
        replace: bool,
    ) -> Result<Vec<TableCount>, DumpError> {
        check_database_name(database)?;
        let path = self.path(id)?;
        let _guard = LOCKS.lock(self.learner).await;
        let options = sandbox.start(self.learner).await?;
        if database_exists(&options, database).await? {
            if !replace {
                return Err(DumpError::Conflict(format!(
                    "the database {database} exists: choose another name, or replace it"
                )));
            }
            let drop = ToolRun::new(Tool::Dropdb, &["--force", "--if-exists", database]);
            sandbox.run_tool(self.learner, drop).await?.ok("dropdb")?;
        }
        let create = ToolRun::new(Tool::Createdb, &[database]);
        sandbox
            .run_tool(self.learner, create)
            .await?
            .ok("createdb")?;
        let dbname = format!("--dbname={database}");
        let mut restore = ToolRun::new(Tool::PgRestore, &["--no-owner", &dbname]);
        restore.stdin = Some(path);
        restore.deadline = Duration::from_secs(600);
        sandbox
            .run_tool(self.learner, restore)
            .await?
            .ok("pg_restore")?;
        let copy = counts(&options.clone().database(database)).await?;
        let original = counts(&options).await?;
        Ok(copy
            .into_iter()
            .map(|(table, rows)| {
                let labdb_rows = original.iter().find(|(t, _)| *t == table).map(|(_, n)| *n);
                TableCount {
                    table,
                    rows,
                    labdb_rows,
                }
            })
            .collect())
    }
}

fn pg_failed(err: sqlx::Error) -> DumpError {
    DumpError::Sandbox(SandboxError::Failed(format!(
        "the sandbox's PostgreSQL failed: {err}"
    )))
}

async fn connect(
    options: &sqlx::postgres::PgConnectOptions,
) -> Result<sqlx::PgConnection, DumpError> {
    // Counting a huge table must not hold the request forever.
    let options = options
        .clone()
        .options([("statement_timeout", "30s")])
        .log_statements(tracing::log::LevelFilter::Debug);
    tokio::time::timeout(Duration::from_secs(20), options.connect())
        .await
        .map_err(|_| DumpError::Sandbox(SandboxError::Failed("connecting timed out".into())))?
        .map_err(pg_failed)
}

async fn database_exists(
    options: &sqlx::postgres::PgConnectOptions,
    name: &str,
) -> Result<bool, DumpError> {
    let mut conn = connect(options).await?;
    let exists: bool =
        sqlx::query_scalar("select exists (select from pg_database where datname = $1)")
            .bind(name)
            .fetch_one(&mut conn)
            .await
            .map_err(pg_failed)?;
    let _ = conn.close().await;
    Ok(exists)
}

/// Exact row counts of the ordinary tables outside the system schemas.
async fn counts(
    options: &sqlx::postgres::PgConnectOptions,
) -> Result<Vec<(String, i64)>, DumpError> {
    let mut conn = connect(options).await?;
    let tables = sqlx::query(
        "select format('%I.%I', n.nspname, c.relname) as name
         from pg_class c join pg_namespace n on n.oid = c.relnamespace
         where c.relkind in ('r', 'p') and not c.relispartition
           and n.nspname not in ('pg_catalog', 'information_schema')
           and n.nspname not like 'pg\\_%'
         order by 1 limit $1",
    )
    .bind(MAX_TABLES as i64)
    .fetch_all(&mut conn)
    .await
    .map_err(pg_failed)?;
    let mut out = Vec::with_capacity(tables.len());
    for row in tables {
        let name: String = row.try_get("name").map_err(pg_failed)?;
        // The name comes from format('%I.%I'): quoted, safe to splice.
        let sql = format!("select count(*) from {name}");
        let n: i64 = sqlx::query_scalar(&sql)
            .fetch_one(&mut conn)
            .await
            .map_err(pg_failed)?;
        out.push((name, n));
    }
    let _ = conn.close().await;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restore_names_are_checked() {
        for good in ["labdb_restore", "copy1", "_x"] {
            assert!(check_database_name(good).is_ok(), "{good}");
        }
        for bad in [
            "",
            "labdb",
            "postgres",
            "template1",
            "template_x",
            "Copy",
            "1copy",
            "a-b",
            "a b",
            "x;drop",
            &"a".repeat(64),
        ] {
            assert!(check_database_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn ids_are_sixteen_lowercase_hex_digits() {
        assert!(check_id("0123456789abcdef").is_ok());
        assert!(check_id("../../etc/passwd").is_err());
        assert!(check_id("0123456789ABCDEF").is_err());
    }
}
