//! The learner's own schema for the editor's completion: schemas, tables,
//! views, their columns with types, and functions, read from the sandbox's
//! catalogs in one round trip and shaped as `@codemirror/lang-sql`'s
//! `schema` option wants (`{schema: {table: [column completions]}}`).
//!
//! [`for_session`] reads it as one console session sees it: on that
//! session's own connection while it is idle (no new connection, so nothing
//! that the 14.D.3 lab's `pg_stat_activity` counts changes; the session's
//! `query` column then shows [`CATALOG`], which starts with a comment saying
//! it is pglab's), so it follows `\c`; otherwise on a short-lived connection
//! to the session's database.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use sqlx::postgres::{PgConnectOptions, PgConnection, PgRow};
use sqlx::{Connection, Row};

use super::Consoles;
use crate::sandbox::{LearnerId, Provisioner, SandboxError, SandboxState};

/// Every catalog read, as one simple-protocol string (one round trip,
/// nothing prepared). Each row starts with a tag saying which read it is:
/// `d` the database and the schema unqualified names complete in; `s`
/// schemas, even empty ones; `r` relations of the user's schemas (system
/// schemas left out), one row per column in column order, relations without
/// columns still one row; `f` functions and procedures of the user's schemas
/// (extension members too).
pub const CATALOG: &str = "\
/* pglab: the editor's completion reads the schema (GET /api/sandbox/schema) */
select 'd'::text, current_database()::text, coalesce(current_schema()::text, 'public');
select 's'::text, nspname::text from pg_catalog.pg_namespace
where nspname not in ('pg_catalog', 'information_schema') and nspname !~ '^pg_(toast|temp_)'
order by 2;
select 'r'::text, n.nspname::text, c.relname::text, c.relkind::text, a.attname::text,
       pg_catalog.format_type(a.atttypid, a.atttypmod)
from pg_catalog.pg_class c
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
left join pg_catalog.pg_attribute a
  on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
where c.relkind in ('r', 'p', 'v', 'm', 'f')
  and n.nspname not in ('pg_catalog', 'information_schema')
  and n.nspname !~ '^pg_(toast|temp_)'
order by 2, 3, a.attnum
limit 20000;
select 'f'::text, n.nspname::text, p.proname::text,
       pg_catalog.pg_get_function_identity_arguments(p.oid),
       pg_catalog.format_type(p.prorettype, null)
from pg_catalog.pg_proc p
join pg_catalog.pg_namespace n on n.oid = p.pronamespace
where n.nspname not in ('pg_catalog', 'information_schema')
  and n.nspname !~ '^pg_(toast|temp_)'
order by 2, 3
limit 2000";

/// How long a read on a console session's connection may take before it is
/// cancelled (the session's next run would wait behind it).
const LENT_DEADLINE: Duration = Duration::from_secs(5);
/// Deadline of the short-lived connection's connect.
const CONNECT_DEADLINE: Duration = Duration::from_secs(5);

/// Why the schema could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SchemaError {
    #[error(transparent)]
    Sandbox(#[from] SandboxError),
    #[error("reading your schema failed: {0}")]
    Read(#[from] sqlx::Error),
}

/// One completion option (`@codemirror/autocomplete`'s `Completion`).
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Completion {
    pub label: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub detail: String,
}

/// A relation's columns.
pub type Columns = Vec<Completion>;

/// The answer of `GET /api/sandbox/schema`.
#[derive(Debug, Default, Serialize)]
pub struct SchemaInfo {
    /// False while the sandbox is not running (everything else is empty).
    pub running: bool,
    /// The database read (the console session's current one after `\c`),
    /// empty while the sandbox is not running.
    pub database: String,
    /// schema → relation → columns: `@codemirror/lang-sql`'s `schema` option.
    pub schema: BTreeMap<String, BTreeMap<String, Columns>>,
    /// Relation kinds: `"schema.relation"` → `table`, `view`, ...
    pub relations: BTreeMap<String, &'static str>,
    /// The schema whose tables complete unqualified.
    pub default_schema: String,
    /// Functions of the user's schemas (`label` is the name, `detail` its
    /// arguments and result type).
    pub functions: Vec<Completion>,
    /// The course's lab files (`.sql`, relative to the curriculum), offered
    /// after `\i`.
    pub lab_files: Vec<String>,
}

/// The `.sql` lab files the course's sections reference, sorted, once each.
pub fn lab_files(course: &crate::course::Course) -> Vec<String> {
    let mut files: Vec<String> = course
        .sections
        .iter()
        .filter_map(|s| course.section_page(&s.slug).ok())
        .flat_map(|page| {
            page.section
                .files
                .iter()
                .map(|f| f.path.clone())
                .filter(|p| p.ends_with(".sql"))
                .collect::<Vec<_>>()
        })
        .collect();
    files.sort();
    files.dedup();
    files
}

fn relkind(kind: &str) -> &'static str {
    match kind {
        "v" => "view",
        "m" => "materialized view",
        "f" => "foreign table",
        "p" => "partitioned table",
        _ => "table",
    }
}

/// The learner's schema as console session `session` sees it: on that
/// session's idle connection, else on a short-lived connection to the
/// session's database (the sandbox's default one for a session not opened
/// yet). Reading it never starts a sandbox: `running: false` while it is
/// not running.
pub async fn for_session(
    consoles: &Consoles,
    sandbox: &dyn Provisioner,
    learner: LearnerId,
    session: &str,
) -> Result<SchemaInfo, SchemaError> {
    if let Some(Ok(rows)) = consoles
        .read_on_idle(learner, session, CATALOG, LENT_DEADLINE)
        .await
    {
        return Ok(from_rows(&rows)?);
    }
    // Busy, in a transaction (a failed read would abort it), not opened, or
    // its connection is gone (a stopped sandbox): a connection of our own.
    if sandbox.status(learner).await?.state != SandboxState::Running {
        return Ok(SchemaInfo {
            default_schema: "public".into(),
            ..SchemaInfo::default()
        });
    }
    let mut options = sandbox
        .start(learner)
        .await?
        .application_name("pglab editor completion");
    if let Some(db) = consoles.session_database(learner, session) {
        options = options.database(&db);
    }
    Ok(read(&options).await?)
}

/// Reads the schema with a short-lived connection (5 s to connect).
pub async fn read(options: &PgConnectOptions) -> Result<SchemaInfo, sqlx::Error> {
    let mut conn = tokio::time::timeout(CONNECT_DEADLINE, PgConnection::connect_with(options))
        .await
        .map_err(|_| sqlx::Error::PoolTimedOut)??;
    let info = read_with(&mut conn).await;
    let _ = conn.close().await;
    info
}

/// Reads the schema on an open connection.
pub async fn read_with(conn: &mut PgConnection) -> Result<SchemaInfo, sqlx::Error> {
    use futures::TryStreamExt;
    let mut rows = Vec::new();
    let mut stream = sqlx::raw_sql(CATALOG).fetch(&mut *conn);
    while let Some(row) = stream.try_next().await? {
        rows.push(row);
    }
    drop(stream);
    from_rows(&rows)
}

/// Shapes [`CATALOG`]'s rows.
fn from_rows(rows: &[PgRow]) -> Result<SchemaInfo, sqlx::Error> {
    let mut info = SchemaInfo {
        running: true,
        default_schema: "public".into(),
        ..SchemaInfo::default()
    };
    let mut functions = Vec::new();
    for row in rows {
        let tag: String = row.try_get(0)?;
        match tag.as_str() {
            "d" => {
                info.database = row.try_get(1)?;
                info.default_schema = row.try_get(2)?;
            }
            "s" => {
                info.schema.entry(row.try_get(1)?).or_default();
            }
            "r" => {
                let schema: String = row.try_get(1)?;
                let table: String = row.try_get(2)?;
                let kind: String = row.try_get(3)?;
                let column: Option<String> = row.try_get(4)?;
                let ty: Option<String> = row.try_get(5)?;
                info.relations
                    .insert(format!("{schema}.{table}"), relkind(&kind));
                let columns = info
                    .schema
                    .entry(schema)
                    .or_default()
                    .entry(table)
                    .or_default();
                if let Some(label) = column {
                    columns.push(Completion {
                        label,
                        kind: "property",
                        detail: ty.unwrap_or_default(),
                    });
                }
            }
            "f" => {
                let schema: String = row.try_get(1)?;
                let name: String = row.try_get(2)?;
                let args: Option<String> = row.try_get(3)?;
                let returns: Option<String> = row.try_get(4)?;
                functions.push((schema, name, args, returns));
            }
            _ => {}
        }
    }
    // Qualified unless in the default schema, known only once `d` is read.
    for (schema, name, args, returns) in functions {
        let label = if schema == info.default_schema {
            name
        } else {
            format!("{schema}.{name}")
        };
        info.functions.push(Completion {
            label,
            kind: "function",
            detail: format!(
                "({}) → {}",
                args.unwrap_or_default(),
                returns.unwrap_or_default()
            ),
        });
    }
    Ok(info)
}
