//! The psql meta-commands learners use in this course: `\dt`, `\di`, `\d`,
//! `\d+`, `\dn`, `\l`, `\du`, `\x`, `\timing`, `\conninfo`, `\?`.
//!
//! Listing commands run catalog queries close to psql's own (same output
//! columns) on the session's connection, so they see what the learner's
//! session sees (uncommitted tables, search_path), and fail with 25P02 in a
//! failed transaction, as psql's do.

use super::result::StatementResult;
use super::run::{Conn, Limits, run_statement};

/// Per-session psql settings that meta-commands change.
#[derive(Clone, Copy, Debug, Default)]
pub struct Settings {
    pub expanded: bool,
    pub timing: bool,
}

/// What `\?` prints.
pub const HELP: &str = "\
Meta-commands supported in the pglab console:
  \\d [NAME]      list tables, views and sequences, or describe table, view, index or sequence NAME
  \\d+ [NAME]     same, with more details (storage, description, size)
  \\di[+] [PAT]   list indexes
  \\dn[+]         list schemas
  \\dt[+] [PAT]   list tables
  \\du            list roles
  \\l             list databases
  \\x [on|off]    toggle expanded output
  \\timing [on|off]  toggle timing of commands
  \\conninfo      display information about the current connection
  \\?             this help
Patterns accept * and ? wildcards and an optional schema: \\dt public.task*";

/// Runs one meta-command line (backslash included).
pub fn run_meta<'a>(
    c: &'a mut Conn,
    line: &'a str,
    settings: &'a mut Settings,
    limits: &'a Limits,
) -> futures::future::BoxFuture<'a, StatementResult> {
    Box::pin(run_meta_inner(c, line, settings, limits))
}

async fn run_meta_inner(
    c: &mut Conn,
    line: &str,
    settings: &mut Settings,
    limits: &Limits,
) -> StatementResult {
    let mut parts = line.split_whitespace();
    let cmd = parts.next().unwrap_or("\\");
    let args: Vec<&str> = parts.collect();
    let arg = args.first().copied();
    let mut result = match cmd {
        "\\?" => text_result(HELP.to_string()),
        "\\x" => {
            settings.expanded = toggle(settings.expanded, arg);
            text_result(format!(
                "Expanded display is {}.",
                on_off(settings.expanded)
            ))
        }
        "\\timing" => {
            settings.timing = toggle(settings.timing, arg);
            text_result(format!("Timing is {}.", on_off(settings.timing)))
        }
        "\\conninfo" => conninfo(c, limits).await,
        "\\dt" | "\\dt+" => list_relations(c, &["r", "p"], arg, cmd.ends_with('+'), limits).await,
        "\\di" | "\\di+" => list_relations(c, &["i", "I"], arg, cmd.ends_with('+'), limits).await,
        "\\d" | "\\d+" => match arg {
            None => {
                list_relations(
                    c,
                    &["r", "p", "v", "m", "S", "f"],
                    None,
                    cmd.ends_with('+'),
                    limits,
                )
                .await
            }
            Some(name) => describe(c, name, cmd.ends_with('+'), limits).await,
        },
        "\\dn" | "\\dn+" => query(c, SCHEMAS, limits).await,
        "\\l" | "\\l+" | "\\list" => query(c, DATABASES, limits).await,
        "\\du" | "\\du+" | "\\dg" => query(c, ROLES, limits).await,
        other => StatementResult::client_error(
            line,
            format!("invalid command {other}\nTry \\? for help. The console supports: {SUPPORTED}"),
        ),
    };
    result.sql = line.to_string();
    result.kind = "meta";
    if result.error.is_none() {
        result.command_tag = None;
    }
    result
}

/// The meta-commands the console knows, for the answer to an unknown one.
pub const SUPPORTED: &str =
    "\\? \\x \\timing \\conninfo \\c \\connect \\d \\d+ \\dt \\di \\dn \\l \\du \\g";

/// Whether `line` is `\c` / `\connect`, which the session runs itself.
pub fn is_connect(line: &str) -> bool {
    matches!(line.split_whitespace().next(), Some("\\c" | "\\connect"))
}

/// The database `\c [dbname [user [host [port]]]]` asks for (`None`: stay),
/// or why it is refused: the console reaches only the learner's own server,
/// as the learner's own user. `-` keeps a part as it is.
pub fn connect_target(line: &str, user: &str) -> Result<Option<String>, String> {
    let args: Vec<&str> = line.split_whitespace().skip(1).collect();
    if args.iter().any(|a| a.contains('=') || a.contains("://")) {
        return Err("\\c with a connection string is not available in the console: use \\c DBNAME (your own server only)".into());
    }
    if let Some(u) = args.get(1)
        && *u != "-"
        && *u != user
    {
        return Err(format!(
            "\\c cannot change the user in the console: you are connected as \"{user}\"; use \\c DBNAME"
        ));
    }
    if args.get(2).is_some_and(|h| *h != "-") || args.get(3).is_some_and(|p| *p != "-") {
        return Err("\\c cannot change the host or port in the console: it reaches only your own sandbox; use \\c DBNAME".into());
    }
    if args.len() > 4 {
        return Err("\\c: too many arguments (use \\c DBNAME)".into());
    }
    Ok(args
        .first()
        .filter(|d| **d != "-")
        .map(|d| d.trim_matches('"').to_string()))
}

fn text_result(text: String) -> StatementResult {
    StatementResult {
        text: Some(text),
        ..StatementResult::default()
    }
}

fn on_off(b: bool) -> &'static str {
    if b { "on" } else { "off" }
}

fn toggle(current: bool, arg: Option<&str>) -> bool {
    match arg.map(str::to_ascii_lowercase).as_deref() {
        Some("on" | "true" | "1" | "yes") => true,
        Some("off" | "false" | "0" | "no") => false,
        _ => !current,
    }
}

async fn query(c: &mut Conn, sql: &str, limits: &Limits) -> StatementResult {
    run_statement(c, sql, limits, false).await.result
}

/// A psql pattern (`public.task*`) as a schema regex and a name regex.
fn pattern(p: &str) -> (Option<String>, String) {
    let to_regex = |s: &str| {
        let mut out = String::from("^(");
        let unquoted = s.trim_matches('"');
        let fold = s.starts_with('"');
        for ch in unquoted.chars() {
            match ch {
                '*' => out.push_str(".*"),
                '?' => out.push('.'),
                c if c.is_alphanumeric() || c == '_' => {
                    if fold {
                        out.push(c);
                    } else {
                        out.extend(c.to_lowercase());
                    }
                }
                c => {
                    out.push('\\');
                    out.push(c);
                }
            }
        }
        out.push_str(")$");
        out
    };
    match p.split_once('.') {
        Some((schema, name)) => (Some(to_regex(schema)), to_regex(name)),
        None => (None, to_regex(p)),
    }
}

fn literal(s: &str) -> String {
    format!("'{}'", s.replace('\'', "''"))
}

/// The condition psql adds for a pattern: by name, and by schema or by
/// visibility in the search_path.
fn pattern_condition(arg: Option<&str>) -> String {
    match arg.map(pattern) {
        None => "and n.nspname <> 'pg_catalog' and n.nspname !~ '^pg_toast' and n.nspname <> 'information_schema' and pg_catalog.pg_table_is_visible(c.oid)".into(),
        Some((None, name)) => format!(
            "and c.relname operator(pg_catalog.~) {} and pg_catalog.pg_table_is_visible(c.oid)",
            literal(&name)
        ),
        Some((Some(schema), name)) => format!(
            "and c.relname operator(pg_catalog.~) {} and n.nspname operator(pg_catalog.~) {}",
            literal(&name),
            literal(&schema)
        ),
    }
}

async fn list_relations(
    c: &mut Conn,
    kinds: &[&str],
    arg: Option<&str>,
    plus: bool,
    limits: &Limits,
) -> StatementResult {
    let kinds_sql = kinds
        .iter()
        .map(|k| format!("'{k}'"))
        .collect::<Vec<_>>()
        .join(",");
    let is_index = kinds.contains(&"i");
    let table_col = if is_index {
        ", c2.relname as \"Table\""
    } else {
        ""
    };
    let index_join = if is_index {
        " left join pg_catalog.pg_index i on i.indexrelid = c.oid left join pg_catalog.pg_class c2 on i.indrelid = c2.oid"
    } else {
        ""
    };
    let plus_cols = if plus {
        ", case c.relpersistence when 'p' then 'permanent' when 't' then 'temporary' when 'u' then 'unlogged' end as \"Persistence\", \
         pg_catalog.pg_size_pretty(pg_catalog.pg_table_size(c.oid)) as \"Size\", \
         pg_catalog.obj_description(c.oid, 'pg_class') as \"Description\""
    } else {
        ""
    };
    let sql = format!(
        "select n.nspname as \"Schema\", c.relname as \"Name\", \
         case c.relkind when 'r' then 'table' when 'v' then 'view' when 'm' then 'materialized view' when 'i' then 'index' \
         when 'S' then 'sequence' when 't' then 'TOAST table' when 'f' then 'foreign table' when 'p' then 'partitioned table' \
         when 'I' then 'partitioned index' end as \"Type\", \
         pg_catalog.pg_get_userbyid(c.relowner) as \"Owner\"{table_col}{plus_cols} \
         from pg_catalog.pg_class c left join pg_catalog.pg_namespace n on n.oid = c.relnamespace{index_join} \
         where c.relkind in ({kinds_sql}) {} order by 1, 2",
        pattern_condition(arg)
    );
    let mut r = query(c, &sql, limits).await;
    if r.error.is_none() && r.total_rows == 0 {
        r.text = Some(match arg {
            Some(p) => format!("Did not find any relation named \"{p}\"."),
            None => "Did not find any relations.".into(),
        });
    }
    r
}

/// `\d NAME`: the columns of a relation, then psql's footers (indexes,
/// constraints, references) as text.
async fn describe(c: &mut Conn, name: &str, plus: bool, limits: &Limits) -> StatementResult {
    let find = format!(
        "select c.oid::int8, n.nspname, c.relname, c.relkind::text from pg_catalog.pg_class c \
         left join pg_catalog.pg_namespace n on n.oid = c.relnamespace where true {} order by 2, 3 limit 1",
        pattern_condition(Some(name))
    );
    let found = query(c, &find, limits).await;
    if found.error.is_some() {
        return found;
    }
    let Some(row) = found.rows.first() else {
        return StatementResult::client_error(
            name,
            format!("Did not find any relation named \"{name}\"."),
        );
    };
    let get = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
    let (oid, schema, relname, kind) = (get(0), get(1), get(2), get(3));
    let kind_name = match kind.as_str() {
        "r" => "Table",
        "p" => "Partitioned table",
        "v" => "View",
        "m" => "Materialized view",
        "i" => "Index",
        "I" => "Partitioned index",
        "S" => "Sequence",
        "f" => "Foreign table",
        _ => "Relation",
    };
    let plus_cols = if plus {
        ", case a.attstorage when 'p' then 'plain' when 'e' then 'external' when 'm' then 'main' when 'x' then 'extended' end as \"Storage\", \
         pg_catalog.col_description(a.attrelid, a.attnum) as \"Description\""
    } else {
        ""
    };
    let columns_sql = format!(
        "select a.attname as \"Column\", pg_catalog.format_type(a.atttypid, a.atttypmod) as \"Type\", \
         (select co.collname from pg_catalog.pg_collation co, pg_catalog.pg_type t where co.oid = a.attcollation and t.oid = a.atttypid and a.attcollation <> t.typcollation) as \"Collation\", \
         case when a.attnotnull then 'not null' else '' end as \"Nullable\", \
         coalesce((select pg_catalog.pg_get_expr(d.adbin, d.adrelid) from pg_catalog.pg_attrdef d where d.adrelid = a.attrelid and d.adnum = a.attnum and a.atthasdef), \
           case a.attidentity when 'a' then 'generated always as identity' when 'd' then 'generated by default as identity' else '' end) as \"Default\"{plus_cols} \
         from pg_catalog.pg_attribute a where a.attrelid = {oid} and a.attnum > 0 and not a.attisdropped order by a.attnum"
    );
    let mut result = query(c, &columns_sql, limits).await;
    if result.error.is_some() {
        return result;
    }
    let footer_sql = format!(
        "select 'Indexes:' as section, '    \"' || c2.relname || '\" ' || \
           case when i.indisprimary then 'PRIMARY KEY, ' when i.indisunique then 'UNIQUE, ' else '' end || \
           regexp_replace(pg_catalog.pg_get_indexdef(i.indexrelid, 0, true), '^.* USING ', '') as line, 1 as ord, c2.relname::text as k \
         from pg_catalog.pg_index i join pg_catalog.pg_class c2 on c2.oid = i.indexrelid where i.indrelid = {oid} \
         union all select 'Check constraints:', '    \"' || conname || '\" ' || pg_catalog.pg_get_constraintdef(oid, true), 2, conname::text \
           from pg_catalog.pg_constraint where conrelid = {oid} and contype = 'c' \
         union all select 'Foreign-key constraints:', '    \"' || conname || '\" ' || pg_catalog.pg_get_constraintdef(oid, true), 3, conname::text \
           from pg_catalog.pg_constraint where conrelid = {oid} and contype = 'f' \
         union all select 'Referenced by:', '    TABLE \"' || conrelid::regclass::text || '\" CONSTRAINT \"' || conname || '\" ' || pg_catalog.pg_get_constraintdef(oid, true), 4, conname::text \
           from pg_catalog.pg_constraint where confrelid = {oid} and contype = 'f' \
         union all select 'Triggers:', '    ' || tgname || ' ' || substring(pg_catalog.pg_get_triggerdef(oid, true) from '(BEFORE|AFTER|INSTEAD OF) .*$'), 5, tgname::text \
           from pg_catalog.pg_trigger where tgrelid = {oid} and not tgisinternal \
         order by 3, 4"
    );
    let footer = query(c, &footer_sql, limits).await;
    let mut text = String::new();
    let mut last = String::new();
    for row in &footer.rows {
        let section = row.first().cloned().flatten().unwrap_or_default();
        if section != last {
            text.push_str(&section);
            text.push('\n');
            last = section;
        }
        text.push_str(&row.get(1).cloned().flatten().unwrap_or_default());
        text.push('\n');
    }
    if plus && matches!(kind.as_str(), "r" | "p" | "m") {
        text.push_str("Access method: heap\n");
    }
    result.text = Some(
        format!("{kind_name} \"{schema}.{relname}\"\n{text}")
            .trim_end()
            .to_string(),
    );
    result
}

const SCHEMAS: &str = "select n.nspname as \"Name\", pg_catalog.pg_get_userbyid(n.nspowner) as \"Owner\" \
    from pg_catalog.pg_namespace n where n.nspname !~ '^pg_' and n.nspname <> 'information_schema' order by 1";

const DATABASES: &str = "select d.datname as \"Name\", pg_catalog.pg_get_userbyid(d.datdba) as \"Owner\", \
    pg_catalog.pg_encoding_to_char(d.encoding) as \"Encoding\", d.datcollate as \"Collate\", d.datctype as \"Ctype\", \
    pg_catalog.array_to_string(d.datacl, E'\\n') as \"Access privileges\" from pg_catalog.pg_database d order by 1";

const ROLES: &str = "select r.rolname as \"Role name\", concat_ws(', ', \
    case when r.rolsuper then 'Superuser' end, case when not r.rolinherit then 'No inheritance' end, \
    case when r.rolcreaterole then 'Create role' end, case when r.rolcreatedb then 'Create DB' end, \
    case when not r.rolcanlogin then 'Cannot login' end, case when r.rolreplication then 'Replication' end, \
    case when r.rolbypassrls then 'Bypass RLS' end) as \"Attributes\", \
    array(select b.rolname from pg_catalog.pg_auth_members m join pg_catalog.pg_roles b on m.roleid = b.oid where m.member = r.oid order by 1)::text as \"Member of\" \
    from pg_catalog.pg_roles r where r.rolname !~ '^pg_' order by 1";

async fn conninfo(c: &mut Conn, limits: &Limits) -> StatementResult {
    let r = query(
        c,
        "select current_database(), current_user, coalesce('on host \"' || host(inet_server_addr()) || '\"', 'via socket'), \
         coalesce(inet_server_port(), current_setting('port')::int)::text, current_setting('server_version')",
        limits,
    )
    .await;
    if r.error.is_some() {
        return r;
    }
    let row = r.rows.first().cloned().unwrap_or_default();
    let get = |i: usize| row.get(i).cloned().flatten().unwrap_or_default();
    text_result(format!(
        "You are connected to database \"{}\" as user \"{}\" {} at port \"{}\" (PostgreSQL {}), backend pid {}.",
        get(0),
        get(1),
        get(2),
        get(3),
        get(4),
        c.pid
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns_become_anchored_regexes() {
        assert_eq!(pattern("tasks"), (None, "^(tasks)$".into()));
        assert_eq!(pattern("Task*"), (None, "^(task.*)$".into()));
        assert_eq!(
            pattern("public.t?"),
            (Some("^(public)$".into()), "^(t.)$".into())
        );
        assert_eq!(pattern("\"Mixed\""), (None, "^(Mixed)$".into()));
        assert_eq!(literal("a'b"), "'a''b'");
    }

    #[test]
    fn toggles_like_psql() {
        assert!(toggle(false, None));
        assert!(!toggle(true, None));
        assert!(toggle(true, Some("on")));
        assert!(!toggle(true, Some("OFF")));
    }
}
