//! `pglab backup FILE` and `pglab restore FILE`: the app's own store.
//!
//! Backup runs while the server runs: `VACUUM INTO` reads the store inside
//! one read transaction, so the copy is consistent (WAL mode lets the server
//! keep writing meanwhile) and compact. It never migrates the store it reads.
//!
//! Restore checks that the file is a pglab store this binary can run
//! (SQLite header, `integrity_check`, the migrations table, no migration
//! newer than ours), then, holding the data dir lock (so no server runs on
//! it and none can start meanwhile), keeps the current store beside it as
//! `pglab.db.before-restore-<unix time>` and swaps the file in with a rename.
//! The next server start migrates it forward if it is older.
//!
//! Learners' sandboxes (their PostgreSQL data in Docker volumes or local
//! clusters) are not in the store: see docs/operations.md.

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use anyhow::{Context, bail};
use clap::Args;
use sqlx::sqlite::{SqliteConnectOptions, SqliteConnection};
use sqlx::{ConnectOptions, Connection};

use crate::ops::lock::{DataDirLock, LockError};

/// Arguments of `pglab backup`.
#[derive(Clone, Debug, Args)]
pub struct BackupArgs {
    /// The backup file to write.
    pub file: PathBuf,
    /// The data dir of the store to copy.
    #[arg(long, env = "PGLAB_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Overwrite FILE when it exists.
    #[arg(long)]
    pub force: bool,
}

/// Arguments of `pglab restore`.
#[derive(Clone, Debug, Args)]
pub struct RestoreArgs {
    /// A file made by `pglab backup`.
    pub file: PathBuf,
    /// The data dir whose store is replaced (no server may run on it).
    #[arg(long, env = "PGLAB_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
}

/// What a checked store holds, for the report.
#[derive(Debug)]
pub struct StoreSummary {
    /// The newest migration applied.
    pub schema_version: i64,
    /// Rows of `users`.
    pub users: i64,
}

const STORE_FILE: &str = "pglab.db";

/// `pglab backup`: copies the store of `data_dir` into `file`.
pub async fn backup(args: &BackupArgs) -> anyhow::Result<StoreSummary> {
    let store = args.data_dir.join(STORE_FILE);
    if !store.is_file() {
        bail!(
            "no store at {}: pass --data-dir (or PGLAB_DATA_DIR) of the server to back up",
            store.display()
        );
    }
    if args.file.exists() && !args.force {
        bail!(
            "{} exists: pass --force to overwrite it",
            args.file.display()
        );
    }
    let tmp = sibling(&args.file, "pglab-backup-tmp")?;
    let _ = std::fs::remove_file(&tmp);
    let result = async {
        let mut conn = open(&store, false).await?;
        sqlx::query("vacuum into ?")
            .bind(tmp.to_string_lossy().as_ref())
            .execute(&mut conn)
            .await
            .with_context(|| format!("copying {} to {}", store.display(), tmp.display()))?;
        conn.close().await?;
        let summary = check_store_file(&tmp).await?;
        std::fs::File::open(&tmp)?.sync_all()?;
        std::fs::rename(&tmp, &args.file)
            .with_context(|| format!("writing {}", args.file.display()))?;
        anyhow::Ok(summary)
    }
    .await;
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// What restore did, for the report.
#[derive(Debug)]
pub struct RestoreReport {
    /// The restored file's contents.
    pub summary: StoreSummary,
    /// Where the store that was replaced is kept, if there was one.
    pub previous: Option<PathBuf>,
}

/// `pglab restore`: replaces the store of `data_dir` with `file`.
pub async fn restore(args: &RestoreArgs) -> anyhow::Result<RestoreReport> {
    let summary = check_store_file(&args.file).await?;
    std::fs::create_dir_all(&args.data_dir)
        .with_context(|| format!("creating the data dir {}", args.data_dir.display()))?;
    let _lock = DataDirLock::acquire(&args.data_dir).map_err(|err| match err {
        LockError::InUse { pid, .. } => anyhow::anyhow!(
            "a pglab server is running on {}{}: stop it, then restore",
            args.data_dir.display(),
            pid.map(|p| format!(" (pid {p})")).unwrap_or_default()
        ),
        other => other.into(),
    })?;
    let store = args.data_dir.join(STORE_FILE);
    let incoming = args.data_dir.join("pglab.db.restore-tmp");
    std::fs::copy(&args.file, &incoming)
        .with_context(|| format!("copying {} into the data dir", args.file.display()))?;
    std::fs::File::open(&incoming)?.sync_all()?;

    let mut previous = None;
    if let Ok(meta) = std::fs::metadata(&store) {
        // Root restoring for a server that runs as another user (the
        // container's `pglab`) must leave the store writable by that user.
        #[cfg(unix)]
        {
            use std::os::unix::fs::MetadataExt;
            let _ = std::os::unix::fs::chown(&incoming, Some(meta.uid()), Some(meta.gid()));
        }
        #[cfg(not(unix))]
        let _ = meta;
        // A compact copy through SQLite, which also folds in a WAL left by a
        // server that died: copying the file alone could miss those writes.
        let stamp = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let keep = args
            .data_dir
            .join(format!("pglab.db.before-restore-{stamp}"));
        let mut conn = open(&store, false).await?;
        sqlx::query("vacuum into ?")
            .bind(keep.to_string_lossy().as_ref())
            .execute(&mut conn)
            .await
            .with_context(|| format!("keeping the current store as {}", keep.display()))?;
        conn.close().await?;
        previous = Some(keep);
    }
    // A WAL or shared-memory file of the old store must not be applied to
    // the new one.
    for suffix in ["-wal", "-shm", "-journal"] {
        let side = args.data_dir.join(format!("{STORE_FILE}{suffix}"));
        if side.exists() {
            std::fs::remove_file(&side).with_context(|| format!("removing {}", side.display()))?;
        }
    }
    std::fs::rename(&incoming, &store).with_context(|| format!("replacing {}", store.display()))?;
    Ok(RestoreReport { summary, previous })
}

/// Checks that `file` is a sound pglab store this binary can run.
pub async fn check_store_file(file: &Path) -> anyhow::Result<StoreSummary> {
    let not_a_store =
        |why: String| anyhow::anyhow!("{} is not a pglab store: {why}", file.display());
    let mut header = [0u8; 16];
    {
        use std::io::Read;
        let mut f =
            std::fs::File::open(file).with_context(|| format!("cannot read {}", file.display()))?;
        if f.read_exact(&mut header).is_err() || &header != b"SQLite format 3\0" {
            return Err(not_a_store("not an SQLite database".into()));
        }
    }
    let mut conn = open(file, true)
        .await
        .map_err(|e| not_a_store(format!("{e:#}")))?;
    let integrity: Vec<String> = sqlx::query_scalar("pragma integrity_check")
        .fetch_all(&mut conn)
        .await
        .map_err(|e| not_a_store(format!("integrity check failed: {e}")))?;
    if integrity != ["ok"] {
        return Err(not_a_store(format!(
            "integrity check failed: {}",
            integrity.join("; ")
        )));
    }
    let tables: Vec<String> =
        sqlx::query_scalar("select name from sqlite_master where type = 'table'")
            .fetch_all(&mut conn)
            .await?;
    for needed in ["_sqlx_migrations", "settings", "users"] {
        if !tables.iter().any(|t| t == needed) {
            return Err(not_a_store(format!("no {needed} table")));
        }
    }
    let (schema_version, failed): (Option<i64>, i64) =
        sqlx::query_as("select max(version), coalesce(sum(not success), 0) from _sqlx_migrations")
            .fetch_one(&mut conn)
            .await?;
    let schema_version =
        schema_version.ok_or_else(|| not_a_store("no migration applied".into()))?;
    if failed > 0 {
        return Err(not_a_store("a migration had failed in it".into()));
    }
    let ours = sqlx::migrate!("./migrations")
        .iter()
        .map(|m| m.version)
        .max()
        .unwrap_or(0);
    if schema_version > ours {
        bail!(
            "{} comes from a newer pglab (schema {schema_version}, this one knows up to {ours}): upgrade pglab first",
            file.display()
        );
    }
    let users: i64 = sqlx::query_scalar("select count(*) from users")
        .fetch_one(&mut conn)
        .await?;
    conn.close().await?;
    Ok(StoreSummary {
        schema_version,
        users,
    })
}

/// One connection to an SQLite file. Read-only checks open it `immutable`,
/// so that no -wal/-shm file appears beside a backup.
async fn open(file: &Path, read_only: bool) -> anyhow::Result<SqliteConnection> {
    let url = format!("sqlite://{}", file.display());
    let mut options = SqliteConnectOptions::from_str(&url)?
        .create_if_missing(false)
        .busy_timeout(Duration::from_secs(30));
    if read_only {
        options = options.read_only(true).immutable(true);
    }
    Ok(options.connect().await?)
}

/// A temporary name next to `file` (same filesystem, so rename is atomic).
fn sibling(file: &Path, what: &str) -> anyhow::Result<PathBuf> {
    let name = file
        .file_name()
        .with_context(|| format!("{} is not a file name", file.display()))?;
    Ok(file.with_file_name(format!(
        ".{}.{what}-{}",
        name.to_string_lossy(),
        std::process::id()
    )))
}
