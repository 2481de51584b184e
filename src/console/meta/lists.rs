//! The listing meta-commands, each answering psql 15's columns, rows, order
//! and title: `\d` (no name), `\dt \di \dv \dm \ds` (and combinations such as
//! `\dti`), `\df`, `\dT`, `\dn`, `\dx`, `\dp`, `\du`, `\l`, with `+` and `S`.
//! The queries are ours; `psql -E` shows the ones psql sends, and
//! `tests/console_meta.rs` compares both outputs on a real server.

use super::patterns::{Target, conditions};
use super::{Cmd, MetaOut, fetch, meta_error};
use crate::console::run::Conn;

const TABLE_VISIBLE: &str = "pg_catalog.pg_table_is_visible(c.oid)";

fn relkind_name() -> &'static str {
    "CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' \
     WHEN 'i' THEN 'index' WHEN 'S' THEN 'sequence' WHEN 't' THEN 'TOAST table' WHEN 'f' THEN 'foreign table' \
     WHEN 'p' THEN 'partitioned table' WHEN 'I' THEN 'partitioned index' END"
}

/// `\d`, `\dt`, `\di`, `\dv`, `\dm`, `\ds` and their combinations: `kinds`
/// holds the letters after `\d` (`tivms`; empty for plain `\d`).
pub async fn relations(c: &mut Conn, cmd: &Cmd, kinds: &str) -> MetaOut {
    let all = kinds.is_empty();
    let tables = all || kinds.contains('t');
    let indexes = kinds.contains('i');
    let views = all || kinds.contains('v');
    let matviews = all || kinds.contains('m');
    let sequences = all || kinds.contains('s');
    let foreign = all || kinds.contains('E');
    let pattern = cmd.arg(0);
    let mut headers = vec!["Schema", "Name", "Type", "Owner"];
    let mut cols = vec![
        "n.nspname".to_string(),
        "c.relname".into(),
        relkind_name().into(),
        "pg_catalog.pg_get_userbyid(c.relowner)".into(),
    ];
    if indexes {
        headers.push("Table");
        cols.push("c2.relname".into());
    }
    if cmd.plus {
        headers.push("Persistence");
        cols.push("CASE c.relpersistence WHEN 'p' THEN 'permanent' WHEN 't' THEN 'temporary' WHEN 'u' THEN 'unlogged' END".into());
        if tables || matviews || indexes {
            headers.push("Access method");
            cols.push("am.amname".into());
        }
        headers.push("Size");
        cols.push("pg_catalog.pg_size_pretty(pg_catalog.pg_table_size(c.oid))".into());
        headers.push("Description");
        cols.push("pg_catalog.obj_description(c.oid, 'pg_class')".into());
    }
    let mut relkinds = Vec::new();
    if tables {
        relkinds.extend(["'r'", "'p'"]);
    }
    if views {
        relkinds.push("'v'");
    }
    if matviews {
        relkinds.push("'m'");
    }
    if indexes {
        relkinds.extend(["'i'", "'I'"]);
    }
    if sequences {
        relkinds.push("'S'");
    }
    if cmd.system || pattern.is_some() {
        relkinds.push("'s'");
    }
    if foreign {
        relkinds.push("'f'");
    }
    relkinds.push("''");
    let mut sql = format!(
        "SELECT {} FROM pg_catalog.pg_class c \
         LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         LEFT JOIN pg_catalog.pg_am am ON am.oid = c.relam",
        cols.join(", ")
    );
    if indexes {
        sql.push_str(
            " LEFT JOIN pg_catalog.pg_index i ON i.indexrelid = c.oid \
             LEFT JOIN pg_catalog.pg_class c2 ON i.indrelid = c2.oid",
        );
    }
    sql.push_str(&format!(" WHERE c.relkind IN ({})", relkinds.join(",")));
    if !cmd.system && pattern.is_none() {
        sql.push_str(
            " AND n.nspname <> 'pg_catalog' AND n.nspname !~ '^pg_toast' AND n.nspname <> 'information_schema'",
        );
    }
    let target = Target {
        schema: Some("n.nspname"),
        name: "c.relname",
        alt_name: None,
        visible: Some(TABLE_VISIBLE),
    };
    match conditions(pattern, &target, cmd.db.as_deref()) {
        Ok(cond) => sql.push_str(&cond),
        Err(m) => return meta_error(m),
    }
    sql.push_str(" ORDER BY 1,2");
    let rows = match fetch(c, &sql).await {
        Ok(r) => r,
        Err(e) => return e,
    };
    if rows.is_empty() {
        return MetaOut::text(match pattern {
            Some(p) => format!("Did not find any relation named \"{p}\"."),
            None => "Did not find any relations.".into(),
        });
    }
    MetaOut::listing("List of relations", &headers, rows)
}

/// `\df[S][+] [PATTERN]`.
pub async fn functions(c: &mut Conn, cmd: &Cmd) -> MetaOut {
    let mut headers = vec![
        "Schema",
        "Name",
        "Result data type",
        "Argument data types",
        "Type",
    ];
    let mut cols = vec![
        "n.nspname",
        "p.proname",
        "pg_catalog.pg_get_function_result(p.oid)",
        "pg_catalog.pg_get_function_arguments(p.oid)",
        "CASE p.prokind WHEN 'a' THEN 'agg' WHEN 'w' THEN 'window' WHEN 'p' THEN 'proc' ELSE 'func' END",
    ];
    if cmd.plus {
        headers.extend([
            "Volatility",
            "Parallel",
            "Owner",
            "Security",
            "Access privileges",
            "Language",
            "Source code",
            "Description",
        ]);
        cols.extend([
            "CASE p.provolatile WHEN 'i' THEN 'immutable' WHEN 's' THEN 'stable' WHEN 'v' THEN 'volatile' END",
            "CASE p.proparallel WHEN 'r' THEN 'restricted' WHEN 's' THEN 'safe' WHEN 'u' THEN 'unsafe' END",
            "pg_catalog.pg_get_userbyid(p.proowner)",
            "CASE WHEN p.prosecdef THEN 'definer' ELSE 'invoker' END",
            "pg_catalog.array_to_string(p.proacl, E'\\n')",
            "l.lanname",
            "COALESCE(pg_catalog.pg_get_function_sqlbody(p.oid), p.prosrc)",
            "pg_catalog.obj_description(p.oid, 'pg_proc')",
        ]);
    }
    let mut sql = format!(
        "SELECT {} FROM pg_catalog.pg_proc p \
         LEFT JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace \
         LEFT JOIN pg_catalog.pg_language l ON l.oid = p.prolang WHERE true",
        cols.join(", ")
    );
    let target = Target {
        schema: Some("n.nspname"),
        name: "p.proname",
        alt_name: None,
        visible: Some("pg_catalog.pg_function_is_visible(p.oid)"),
    };
    match conditions(cmd.arg(0), &target, cmd.db.as_deref()) {
        Ok(cond) => sql.push_str(&cond),
        Err(m) => return meta_error(m),
    }
    if !cmd.system && cmd.arg(0).is_none() {
        sql.push_str(" AND n.nspname <> 'pg_catalog' AND n.nspname <> 'information_schema'");
    }
    sql.push_str(" ORDER BY 1, 2, 4");
    run_listing(c, "List of functions", &headers, &sql).await
}

/// `\dT[S][+] [PATTERN]`.
pub async fn types(c: &mut Conn, cmd: &Cmd) -> MetaOut {
    let (headers, cols): (Vec<&str>, Vec<&str>) = if cmd.plus {
        (
            vec![
                "Schema",
                "Name",
                "Internal name",
                "Size",
                "Elements",
                "Owner",
                "Access privileges",
                "Description",
            ],
            vec![
                "n.nspname",
                "pg_catalog.format_type(t.oid, NULL)",
                "t.typname",
                "CASE WHEN t.typrelid <> 0 THEN 'tuple' WHEN t.typlen < 0 THEN 'var' ELSE t.typlen::pg_catalog.text END",
                "pg_catalog.array_to_string(ARRAY(SELECT e.enumlabel FROM pg_catalog.pg_enum e WHERE e.enumtypid = t.oid ORDER BY e.enumsortorder), E'\\n')",
                "pg_catalog.pg_get_userbyid(t.typowner)",
                "pg_catalog.array_to_string(t.typacl, E'\\n')",
                "pg_catalog.obj_description(t.oid, 'pg_type')",
            ],
        )
    } else {
        (
            vec!["Schema", "Name", "Description"],
            vec![
                "n.nspname",
                "pg_catalog.format_type(t.oid, NULL)",
                "pg_catalog.obj_description(t.oid, 'pg_type')",
            ],
        )
    };
    let mut sql = format!(
        "SELECT {} FROM pg_catalog.pg_type t \
         LEFT JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace \
         WHERE (t.typrelid = 0 OR (SELECT c.relkind = 'c' FROM pg_catalog.pg_class c WHERE c.oid = t.typrelid)) \
         AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_type el WHERE el.oid = t.typelem AND el.typarray = t.oid)",
        cols.join(", ")
    );
    if !cmd.system && cmd.arg(0).is_none() {
        sql.push_str(" AND n.nspname <> 'pg_catalog' AND n.nspname <> 'information_schema'");
    }
    let target = Target {
        schema: Some("n.nspname"),
        name: "t.typname",
        alt_name: Some("pg_catalog.format_type(t.oid, NULL)"),
        visible: Some("pg_catalog.pg_type_is_visible(t.oid)"),
    };
    match conditions(cmd.arg(0), &target, cmd.db.as_deref()) {
        Ok(cond) => sql.push_str(&cond),
        Err(m) => return meta_error(m),
    }
    sql.push_str(" ORDER BY 1, 2");
    run_listing(c, "List of data types", &headers, &sql).await
}

/// `\dn[S][+] [PATTERN]`.
pub async fn schemas(c: &mut Conn, cmd: &Cmd) -> MetaOut {
    let mut headers = vec!["Name", "Owner"];
    let mut cols = vec!["n.nspname", "pg_catalog.pg_get_userbyid(n.nspowner)"];
    if cmd.plus {
        headers.extend(["Access privileges", "Description"]);
        cols.extend([
            "pg_catalog.array_to_string(n.nspacl, E'\\n')",
            "pg_catalog.obj_description(n.oid, 'pg_namespace')",
        ]);
    }
    let mut sql = format!(
        "SELECT {} FROM pg_catalog.pg_namespace n WHERE true",
        cols.join(", ")
    );
    if !cmd.system && cmd.arg(0).is_none() {
        sql.push_str(" AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'");
    }
    let target = Target {
        schema: None,
        name: "n.nspname",
        alt_name: None,
        visible: None,
    };
    match conditions(cmd.arg(0), &target, cmd.db.as_deref()) {
        Ok(cond) => sql.push_str(&cond),
        Err(m) => return meta_error(m),
    }
    sql.push_str(" ORDER BY 1");
    run_listing(c, "List of schemas", &headers, &sql).await
}

/// `\dx [PATTERN]`.
pub async fn extensions(c: &mut Conn, cmd: &Cmd) -> MetaOut {
    let mut sql = "SELECT e.extname, e.extversion, n.nspname, d.description \
         FROM pg_catalog.pg_extension e \
         LEFT JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace \
         LEFT JOIN pg_catalog.pg_description d ON d.objoid = e.oid \
           AND d.classoid = 'pg_catalog.pg_extension'::pg_catalog.regclass WHERE true"
        .to_string();
    let target = Target {
        schema: None,
        name: "e.extname",
        alt_name: None,
        visible: None,
    };
    match conditions(cmd.arg(0), &target, cmd.db.as_deref()) {
        Ok(cond) => sql.push_str(&cond),
        Err(m) => return meta_error(m),
    }
    sql.push_str(" ORDER BY 1");
    run_listing(
        c,
        "List of installed extensions",
        &["Name", "Version", "Schema", "Description"],
        &sql,
    )
    .await
}

/// `\dp [PATTERN]` (also `\z`).
pub async fn privileges(c: &mut Conn, cmd: &Cmd) -> MetaOut {
    let mut sql = String::from(
        "SELECT n.nspname, c.relname, \
           CASE c.relkind WHEN 'r' THEN 'table' WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' \
             WHEN 'S' THEN 'sequence' WHEN 'f' THEN 'foreign table' WHEN 'p' THEN 'partitioned table' END, \
           pg_catalog.array_to_string(c.relacl, E'\\n'), \
           pg_catalog.array_to_string(ARRAY( \
             SELECT a.attname || E':\\n  ' || pg_catalog.array_to_string(a.attacl, E'\\n  ') \
             FROM pg_catalog.pg_attribute a \
             WHERE a.attrelid = c.oid AND NOT a.attisdropped AND a.attacl IS NOT NULL), E'\\n'), \
           pg_catalog.array_to_string(ARRAY( \
             SELECT pol.polname \
               || CASE WHEN NOT pol.polpermissive THEN E' (RESTRICTIVE)' ELSE '' END \
               || CASE WHEN pol.polcmd <> '*' THEN E' (' || pol.polcmd::pg_catalog.text || E'):' ELSE E':' END \
               || CASE WHEN pol.polqual IS NOT NULL THEN E'\\n  (u): ' || pg_catalog.pg_get_expr(pol.polqual, pol.polrelid) ELSE E'' END \
               || CASE WHEN pol.polwithcheck IS NOT NULL THEN E'\\n  (c): ' || pg_catalog.pg_get_expr(pol.polwithcheck, pol.polrelid) ELSE E'' END \
               || CASE WHEN pol.polroles <> '{0}' THEN E'\\n  to: ' || pg_catalog.array_to_string(ARRAY( \
                    SELECT r.rolname FROM pg_catalog.pg_roles r WHERE r.oid = ANY (pol.polroles) ORDER BY 1), E', ') ELSE E'' END \
             FROM pg_catalog.pg_policy pol WHERE pol.polrelid = c.oid), E'\\n') \
         FROM pg_catalog.pg_class c LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
         WHERE c.relkind IN ('r','v','m','S','f','p')",
    );
    if cmd.arg(0).is_none() {
        sql.push_str(" AND n.nspname !~ '^pg_'");
    }
    let target = Target {
        schema: Some("n.nspname"),
        name: "c.relname",
        alt_name: None,
        visible: Some(TABLE_VISIBLE),
    };
    match conditions(cmd.arg(0), &target, cmd.db.as_deref()) {
        Ok(cond) => sql.push_str(&cond),
        Err(m) => return meta_error(m),
    }
    sql.push_str(" ORDER BY 1, 2");
    run_listing(
        c,
        "Access privileges",
        &[
            "Schema",
            "Name",
            "Type",
            "Access privileges",
            "Column privileges",
            "Policies",
        ],
        &sql,
    )
    .await
}

/// `\du[S][+] [PATTERN]` (also `\dg`): attributes spelled out as psql does.
pub async fn roles(c: &mut Conn, cmd: &Cmd) -> MetaOut {
    let mut sql = "SELECT r.rolname, \
         pg_catalog.concat_ws(E'\\n', \
           NULLIF(pg_catalog.concat_ws(', ', \
             CASE WHEN r.rolsuper THEN 'Superuser' END, \
             CASE WHEN NOT r.rolinherit THEN 'No inheritance' END, \
             CASE WHEN r.rolcreaterole THEN 'Create role' END, \
             CASE WHEN r.rolcreatedb THEN 'Create DB' END, \
             CASE WHEN NOT r.rolcanlogin THEN 'Cannot login' END, \
             CASE WHEN r.rolreplication THEN 'Replication' END, \
             CASE WHEN r.rolbypassrls THEN 'Bypass RLS' END), ''), \
           CASE WHEN r.rolconnlimit = 0 THEN 'No connections' \
                WHEN r.rolconnlimit = 1 THEN '1 connection' \
                WHEN r.rolconnlimit > 1 THEN r.rolconnlimit || ' connections' END, \
           'Password valid until ' || r.rolvaliduntil), \
         ARRAY(SELECT b.rolname FROM pg_catalog.pg_auth_members m \
               JOIN pg_catalog.pg_roles b ON (m.roleid = b.oid) WHERE m.member = r.oid)::pg_catalog.text, \
         pg_catalog.shobj_description(r.oid, 'pg_authid') \
         FROM pg_catalog.pg_roles r WHERE true"
        .to_string();
    if !cmd.system && cmd.arg(0).is_none() {
        sql.push_str(" AND r.rolname !~ '^pg_'");
    }
    let target = Target {
        schema: None,
        name: "r.rolname",
        alt_name: None,
        visible: None,
    };
    match conditions(cmd.arg(0), &target, cmd.db.as_deref()) {
        Ok(cond) => sql.push_str(&cond),
        Err(m) => return meta_error(m),
    }
    sql.push_str(" ORDER BY 1");
    let mut rows = match fetch(c, &sql).await {
        Ok(r) => r,
        Err(e) => return e,
    };
    let mut headers = vec!["Role name", "Attributes", "Member of"];
    if cmd.plus {
        headers.push("Description");
    } else {
        for r in &mut rows {
            r.truncate(3);
        }
    }
    let mut out = MetaOut::listing("List of roles", &headers, rows);
    out.result.count_footer = false;
    out
}

/// `\l[+] [PATTERN]` (also `\list`).
pub async fn databases(c: &mut Conn, cmd: &Cmd) -> MetaOut {
    let mut headers = vec![
        "Name",
        "Owner",
        "Encoding",
        "Collate",
        "Ctype",
        "ICU Locale",
        "Locale Provider",
        "Access privileges",
    ];
    let mut cols = vec![
        "d.datname",
        "pg_catalog.pg_get_userbyid(d.datdba)",
        "pg_catalog.pg_encoding_to_char(d.encoding)",
        "d.datcollate",
        "d.datctype",
        "d.daticulocale",
        "CASE d.datlocprovider WHEN 'c' THEN 'libc' WHEN 'i' THEN 'icu' END",
        "pg_catalog.array_to_string(d.datacl, E'\\n')",
    ];
    if cmd.plus {
        headers.extend(["Size", "Tablespace", "Description"]);
        cols.extend([
            "CASE WHEN pg_catalog.has_database_privilege(d.datname, 'CONNECT') \
               THEN pg_catalog.pg_size_pretty(pg_catalog.pg_database_size(d.datname)) ELSE 'No Access' END",
            "t.spcname",
            "pg_catalog.shobj_description(d.oid, 'pg_database')",
        ]);
    }
    let mut sql = format!(
        "SELECT {} FROM pg_catalog.pg_database d \
         JOIN pg_catalog.pg_tablespace t ON d.dattablespace = t.oid WHERE true",
        cols.join(", ")
    );
    let target = Target {
        schema: None,
        name: "d.datname",
        alt_name: None,
        visible: None,
    };
    match conditions(cmd.arg(0), &target, cmd.db.as_deref()) {
        Ok(cond) => sql.push_str(&cond),
        Err(m) => return meta_error(m),
    }
    sql.push_str(" ORDER BY 1");
    run_listing(c, "List of databases", &headers, &sql).await
}

async fn run_listing(c: &mut Conn, title: &str, headers: &[&str], sql: &str) -> MetaOut {
    match fetch(c, sql).await {
        Ok(rows) => MetaOut::listing(title, headers, rows),
        Err(e) => e,
    }
}

/// `\dD[S][+] [PATTERN]`: domains, as psql 15's `listDomains`.
pub async fn domains(c: &mut Conn, cmd: &Cmd) -> MetaOut {
    let mut headers = vec![
        "Schema",
        "Name",
        "Type",
        "Collation",
        "Nullable",
        "Default",
        "Check",
    ];
    let mut cols = vec![
        "n.nspname",
        "t.typname",
        "pg_catalog.format_type(t.typbasetype, t.typtypmod)",
        "(SELECT c.collname FROM pg_catalog.pg_collation c, pg_catalog.pg_type bt \
         WHERE c.oid = t.typcollation AND bt.oid = t.typbasetype AND t.typcollation <> bt.typcollation)",
        "CASE WHEN t.typnotnull THEN 'not null' END",
        "t.typdefault",
        "pg_catalog.array_to_string(ARRAY(SELECT pg_catalog.pg_get_constraintdef(r.oid, true) \
         FROM pg_catalog.pg_constraint r WHERE t.oid = r.contypid), ' ')",
    ];
    if cmd.plus {
        headers.extend(["Access privileges", "Description"]);
        cols.extend([
            "pg_catalog.array_to_string(t.typacl, E'\\n')",
            "d.description",
        ]);
    }
    let mut sql = format!(
        "SELECT {} FROM pg_catalog.pg_type t \
         LEFT JOIN pg_catalog.pg_namespace n ON n.oid = t.typnamespace",
        cols.join(", ")
    );
    if cmd.plus {
        sql.push_str(
            " LEFT JOIN pg_catalog.pg_description d ON d.classoid = t.tableoid \
             AND d.objoid = t.oid AND d.objsubid = 0",
        );
    }
    sql.push_str(" WHERE t.typtype = 'd'");
    if !cmd.system && cmd.arg(0).is_none() {
        sql.push_str(" AND n.nspname <> 'pg_catalog' AND n.nspname <> 'information_schema'");
    }
    let target = Target {
        schema: Some("n.nspname"),
        name: "t.typname",
        alt_name: None,
        visible: Some("pg_catalog.pg_type_is_visible(t.oid)"),
    };
    match conditions(cmd.arg(0), &target, cmd.db.as_deref()) {
        Ok(cond) => sql.push_str(&cond),
        Err(m) => return meta_error(m),
    }
    sql.push_str(" ORDER BY 1, 2");
    run_listing(c, "List of domains", &headers, &sql).await
}

/// `\dconfig[+] [PATTERN]`: server settings, as psql 15's
/// `describeConfigurationParameters` (without a pattern: those not at
/// their default).
pub async fn settings(c: &mut Conn, cmd: &Cmd) -> MetaOut {
    let mut headers = vec!["Parameter", "Value"];
    let mut cols = vec!["s.name", "pg_catalog.current_setting(s.name)"];
    if cmd.plus {
        headers.extend(["Type", "Context", "Access privileges"]);
        cols.extend([
            "s.vartype",
            "s.context",
            "pg_catalog.array_to_string(p.paracl, E'\\n')",
        ]);
    }
    let mut sql = format!("SELECT {} FROM pg_catalog.pg_settings s", cols.join(", "));
    if cmd.plus {
        sql.push_str(
            " LEFT JOIN pg_catalog.pg_parameter_acl p ON pg_catalog.lower(s.name) = p.parname",
        );
    }
    let title = match cmd.arg(0) {
        Some(_) => {
            let target = Target {
                schema: None,
                name: "pg_catalog.lower(s.name)",
                alt_name: None,
                visible: None,
            };
            match conditions(cmd.arg(0), &target, cmd.db.as_deref()) {
                Ok(cond) => sql.push_str(&format!(" WHERE true{cond}")),
                Err(m) => return meta_error(m),
            }
            "List of configuration parameters"
        }
        None => {
            sql.push_str(" WHERE s.source <> 'default' AND s.setting IS DISTINCT FROM s.boot_val");
            "List of non-default configuration parameters"
        }
    };
    sql.push_str(" ORDER BY 1");
    run_listing(c, title, &headers, &sql).await
}
