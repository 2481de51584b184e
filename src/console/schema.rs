//! The learner's own schema for the editor's completion: schemas, tables,
//! views, their columns with types, and functions, read from the sandbox's
//! catalogs in two queries and shaped as `@codemirror/lang-sql`'s `schema`
//! option wants (`{schema: {table: [column completions]}}`).

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Serialize;
use sqlx::postgres::{PgConnectOptions, PgConnection};
use sqlx::{Connection, Row};

/// Relations of the user's schemas (system schemas left out), one row per
/// column in column order; relations without columns still give one row.
const RELATIONS: &str = "\
select n.nspname::text, c.relname::text, c.relkind::text, a.attname::text,
       pg_catalog.format_type(a.atttypid, a.atttypmod)
from pg_catalog.pg_class c
join pg_catalog.pg_namespace n on n.oid = c.relnamespace
left join pg_catalog.pg_attribute a
  on a.attrelid = c.oid and a.attnum > 0 and not a.attisdropped
where c.relkind in ('r', 'p', 'v', 'm', 'f')
  and n.nspname not in ('pg_catalog', 'information_schema')
  and n.nspname !~ '^pg_(toast|temp_)'
order by 1, 2, a.attnum
limit 20000";

/// Functions and procedures of the user's schemas (extension members too).
const FUNCTIONS: &str = "\
select n.nspname::text, p.proname::text,
       pg_catalog.pg_get_function_identity_arguments(p.oid),
       pg_catalog.format_type(p.prorettype, null)
from pg_catalog.pg_proc p
join pg_catalog.pg_namespace n on n.oid = p.pronamespace
where n.nspname not in ('pg_catalog', 'information_schema')
  and n.nspname !~ '^pg_(toast|temp_)'
order by 1, 2
limit 2000";

/// Schemas, even empty ones.
const SCHEMAS: &str = "\
select nspname::text from pg_catalog.pg_namespace
where nspname not in ('pg_catalog', 'information_schema') and nspname !~ '^pg_(toast|temp_)'
order by 1";

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

/// Reads the schema with a short-lived connection (5 s to connect).
pub async fn read(options: &PgConnectOptions) -> Result<SchemaInfo, sqlx::Error> {
    let mut conn =
        tokio::time::timeout(Duration::from_secs(5), PgConnection::connect_with(options))
            .await
            .map_err(|_| sqlx::Error::PoolTimedOut)??;
    let info = read_with(&mut conn).await;
    let _ = conn.close().await;
    info
}

/// Reads the schema on an open connection.
pub async fn read_with(conn: &mut PgConnection) -> Result<SchemaInfo, sqlx::Error> {
    let mut info = SchemaInfo {
        running: true,
        default_schema: "public".into(),
        ..SchemaInfo::default()
    };
    for row in sqlx::query(SCHEMAS).fetch_all(&mut *conn).await? {
        info.schema.entry(row.try_get(0)?).or_default();
    }
    for row in sqlx::query(RELATIONS).fetch_all(&mut *conn).await? {
        let schema: String = row.try_get(0)?;
        let table: String = row.try_get(1)?;
        let kind: String = row.try_get(2)?;
        let column: Option<String> = row.try_get(3)?;
        let ty: Option<String> = row.try_get(4)?;
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
    for row in sqlx::query(FUNCTIONS).fetch_all(&mut *conn).await? {
        let schema: String = row.try_get(0)?;
        let name: String = row.try_get(1)?;
        let args: Option<String> = row.try_get(2)?;
        let returns: Option<String> = row.try_get(3)?;
        let qualified = if schema == info.default_schema {
            name
        } else {
            format!("{schema}.{name}")
        };
        info.functions.push(Completion {
            label: qualified,
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
