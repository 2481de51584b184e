//! `\d[S][+] NAME`: every relation matching NAME described as psql 15 does
//! (`describeOneTableDetails`): the title by kind (`Table "public.tasks"`,
//! `Index`, `Sequence`, `View`, `Materialized view`, `Partitioned table`,
//! `Composite type`...), its columns, and the footers in psql's order
//! (partition of/key, indexes, check and foreign-key constraints, referenced
//! by, policies, view definition, triggers, inherits, partitions, access
//! method, options).

use super::patterns::{Target, conditions};
use super::{Cmd, MetaOut, Rows, fetch, meta_error};
use crate::console::result::{Column, StatementResult};
use crate::console::run::Conn;

type Row = Vec<Option<String>>;

fn s(row: &Row, i: usize) -> &str {
    row.get(i).and_then(|v| v.as_deref()).unwrap_or("")
}

fn t(row: &Row, i: usize) -> bool {
    s(row, i) == "t"
}

/// `\d NAME`.
pub async fn describe(c: &mut Conn, cmd: &Cmd, pattern: &str) -> MetaOut {
    let target = Target {
        schema: Some("n.nspname"),
        name: "c.relname",
        alt_name: None,
        visible: Some("pg_catalog.pg_table_is_visible(c.oid)"),
    };
    let cond = match conditions(Some(pattern), &target, cmd.db.as_deref()) {
        Ok(cond) => cond,
        Err(m) => return meta_error(m),
    };
    let sql = format!(
        "SELECT c.oid, n.nspname, c.relname FROM pg_catalog.pg_class c \
         LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE true{cond} ORDER BY 2, 3"
    );
    let found = match fetch(c, &sql).await {
        Ok(r) => r,
        Err(e) => return e,
    };
    if found.is_empty() {
        return meta_error(format!("Did not find any relation named \"{pattern}\"."));
    }
    let mut results = Vec::new();
    for row in &found {
        match one(c, s(row, 0), s(row, 1), s(row, 2), cmd.plus).await {
            Ok(r) => results.push(r),
            Err(e) => return e,
        }
    }
    let mut first = results.remove(0);
    first.more = results;
    MetaOut { result: first }
}

fn table(
    title: String,
    headers: &[(&str, &str)],
    rows: Rows,
    footers: Vec<String>,
) -> StatementResult {
    StatementResult {
        kind: "meta",
        title: Some(title),
        columns: headers
            .iter()
            .map(|(name, ty)| Column {
                name: (*name).into(),
                type_name: (*ty).into(),
            })
            .collect(),
        total_rows: rows.len() as u64,
        rows,
        footers,
        ..StatementResult::default()
    }
}

async fn one(
    c: &mut Conn,
    oid: &str,
    schema: &str,
    name: &str,
    verbose: bool,
) -> Result<StatementResult, MetaOut> {
    let info = fetch(
        c,
        &format!(
            "SELECT c.relchecks, c.relkind::text, c.relhasindex, c.relhasrules, c.relhastriggers, \
               c.relrowsecurity, c.relforcerowsecurity, c.relispartition, \
               pg_catalog.array_to_string(c.reloptions || array(SELECT 'toast.' || x FROM pg_catalog.unnest(tc.reloptions) x), ', '), \
               CASE WHEN c.reloftype = 0 THEN '' ELSE c.reloftype::pg_catalog.regtype::pg_catalog.text END, \
               c.relpersistence::text, c.relreplident::text, am.amname \
             FROM pg_catalog.pg_class c \
             LEFT JOIN pg_catalog.pg_class tc ON (c.reltoastrelid = tc.oid) \
             LEFT JOIN pg_catalog.pg_am am ON (c.relam = am.oid) WHERE c.oid = '{oid}'"
        ),
    )
    .await?;
    let Some(info) = info.into_iter().next() else {
        return Err(meta_error(format!(
            "Did not find any relation with OID {oid}."
        )));
    };
    let kind = s(&info, 1).to_string();
    let unlogged = s(&info, 10) == "u";
    let qualified = format!("\"{schema}.{name}\"");
    if kind == "S" {
        return sequence(c, oid, &qualified, unlogged).await;
    }
    let title_kind = match (kind.as_str(), unlogged) {
        ("r", false) => "Table",
        ("r", true) => "Unlogged table",
        ("v", _) => "View",
        ("m", false) => "Materialized view",
        ("m", true) => "Unlogged materialized view",
        ("i", false) => "Index",
        ("i", true) => "Unlogged index",
        ("I", false) => "Partitioned index",
        ("I", true) => "Unlogged partitioned index",
        ("t", _) => "TOAST table",
        ("c", _) => "Composite type",
        ("f", _) => "Foreign table",
        ("p", false) => "Partitioned table",
        ("p", true) => "Unlogged partitioned table",
        _ => "?",
    };
    let title = format!("{title_kind} {qualified}");
    let details = matches!(kind.as_str(), "r" | "v" | "m" | "f" | "c" | "p");
    let is_index = matches!(kind.as_str(), "i" | "I");
    let mut headers: Vec<(&str, &str)> = vec![("Column", "text"), ("Type", "text")];
    if details {
        headers.extend([
            ("Collation", "text"),
            ("Nullable", "text"),
            ("Default", "text"),
        ]);
    }
    if is_index {
        headers.extend([("Key?", "text"), ("Definition", "text")]);
    }
    let storage = verbose;
    let compression = verbose && matches!(kind.as_str(), "r" | "p" | "m");
    let stats = verbose && matches!(kind.as_str(), "r" | "i" | "I" | "m" | "f" | "p");
    let description = verbose && matches!(kind.as_str(), "r" | "v" | "m" | "f" | "c" | "p");
    if storage {
        headers.push(("Storage", "text"));
    }
    if compression {
        headers.push(("Compression", "text"));
    }
    if stats {
        headers.push(("Stats target", "text"));
    }
    if description {
        headers.push(("Description", "text"));
    }
    let cols = fetch(
        c,
        &format!(
            "SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod), \
               (SELECT pg_catalog.pg_get_expr(d.adbin, d.adrelid, true) FROM pg_catalog.pg_attrdef d \
                 WHERE d.adrelid = a.attrelid AND d.adnum = a.attnum AND a.atthasdef), \
               a.attnotnull, \
               (SELECT co.collname FROM pg_catalog.pg_collation co, pg_catalog.pg_type ty \
                 WHERE co.oid = a.attcollation AND ty.oid = a.atttypid AND a.attcollation <> ty.typcollation), \
               a.attidentity::text, a.attgenerated::text, a.attstorage::text, a.attcompression::text, \
               CASE WHEN a.attstattarget = -1 THEN NULL ELSE a.attstattarget END, \
               pg_catalog.col_description(a.attrelid, a.attnum), \
               {} \
             FROM pg_catalog.pg_attribute a \
             WHERE a.attrelid = '{oid}' AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum",
            if is_index {
                format!(
                    "CASE WHEN a.attnum <= (SELECT i.indnkeyatts FROM pg_catalog.pg_index i WHERE i.indexrelid = '{oid}') \
                       THEN 'yes' ELSE 'no' END, pg_catalog.pg_get_indexdef(a.attrelid, a.attnum, true)"
                )
            } else {
                "NULL, NULL".into()
            }
        ),
    )
    .await?;
    let rows: Rows = cols
        .iter()
        .map(|a| {
            let mut cells = vec![a[0].clone(), a[1].clone()];
            if details {
                cells.push(Some(s(a, 4).to_string()));
                cells.push(Some(if t(a, 3) { "not null" } else { "" }.into()));
                let default = match (s(a, 5), s(a, 6)) {
                    ("a", _) => "generated always as identity".to_string(),
                    ("d", _) => "generated by default as identity".to_string(),
                    (_, "s") => format!("generated always as ({}) stored", s(a, 2)),
                    _ => s(a, 2).to_string(),
                };
                cells.push(Some(default));
            }
            if is_index {
                cells.push(a[11].clone());
                cells.push(a[12].clone());
            }
            if storage {
                cells.push(Some(
                    match s(a, 7) {
                        "p" => "plain",
                        "m" => "main",
                        "x" => "extended",
                        "e" => "external",
                        _ => "???",
                    }
                    .into(),
                ));
            }
            if compression {
                cells.push(Some(
                    match s(a, 8) {
                        "p" => "pglz",
                        "l" => "lz4",
                        _ => "",
                    }
                    .into(),
                ));
            }
            if stats {
                cells.push(Some(s(a, 9).to_string()));
            }
            if description {
                cells.push(Some(s(a, 10).to_string()));
            }
            cells
        })
        .collect();
    let mut footers = Vec::new();
    if is_index {
        index_footer(c, oid, schema, &mut footers).await?;
    } else if matches!(kind.as_str(), "r" | "m" | "f" | "p" | "t") {
        table_footers(c, oid, &kind, &info, verbose, &mut footers).await?;
    }
    if verbose && matches!(kind.as_str(), "v" | "m") {
        let def = fetch(
            c,
            &format!("SELECT pg_catalog.pg_get_viewdef('{oid}'::pg_catalog.oid, true)"),
        )
        .await?;
        if let Some(d) = def.first() {
            footers.push("View definition:".into());
            footers.push(s(d, 0).to_string());
        }
    }
    if matches!(kind.as_str(), "r" | "m" | "f" | "p" | "v") && t(&info, 4) {
        triggers(c, oid, &mut footers).await?;
    }
    if matches!(kind.as_str(), "r" | "m" | "f" | "p" | "I" | "t") {
        finish_table_footers(c, oid, &kind, &info, verbose, &mut footers).await?;
    }
    if verbose && !s(&info, 8).is_empty() {
        footers.push(format!("Options: {}", s(&info, 8)));
    }
    let mut result = table(title, &headers, rows, footers);
    // psql prints a relation's description unexpanded whatever \x says
    // (only a sequence's follows \x).
    result.unexpanded = true;
    Ok(result)
}

async fn sequence(
    c: &mut Conn,
    oid: &str,
    qualified: &str,
    unlogged: bool,
) -> Result<StatementResult, MetaOut> {
    let rows = fetch(
        c,
        &format!(
            "SELECT pg_catalog.format_type(s.seqtypid, NULL), s.seqstart, s.seqmin, s.seqmax, s.seqincrement, \
               CASE WHEN s.seqcycle THEN 'yes' ELSE 'no' END, s.seqcache \
             FROM pg_catalog.pg_sequence s WHERE s.seqrelid = '{oid}'"
        ),
    )
    .await?;
    let owner = fetch(
        c,
        &format!(
            "SELECT pg_catalog.quote_ident(n.nspname) || '.' || pg_catalog.quote_ident(c.relname) || '.' || \
               pg_catalog.quote_ident(a.attname), d.deptype::text \
             FROM pg_catalog.pg_class c \
             JOIN pg_catalog.pg_depend d ON c.oid = d.refobjid \
             JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace \
             JOIN pg_catalog.pg_attribute a ON (a.attrelid = c.oid AND a.attnum = d.refobjsubid) \
             WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass \
               AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass \
               AND d.objid = '{oid}' AND d.deptype IN ('a', 'i')"
        ),
    )
    .await?;
    let mut footers = Vec::new();
    if let Some(o) = owner.first() {
        if s(o, 1) == "i" {
            footers.push(format!("Sequence for identity column: {}", s(o, 0)));
        } else {
            footers.push(format!("Owned by: {}", s(o, 0)));
        }
    }
    let title = format!(
        "{} {qualified}",
        if unlogged {
            "Unlogged sequence"
        } else {
            "Sequence"
        }
    );
    Ok(table(
        title,
        &[
            ("Type", "text"),
            ("Start", "bigint"),
            ("Minimum", "bigint"),
            ("Maximum", "bigint"),
            ("Increment", "bigint"),
            ("Cycles?", "text"),
            ("Cache", "bigint"),
        ],
        rows,
        footers,
    ))
}

async fn index_footer(
    c: &mut Conn,
    oid: &str,
    schema: &str,
    footers: &mut Vec<String>,
) -> Result<(), MetaOut> {
    let rows = fetch(
        c,
        &format!(
            "SELECT i.indisunique, i.indisprimary, i.indisclustered, i.indisvalid, \
               (NOT i.indimmediate) AND EXISTS (SELECT 1 FROM pg_catalog.pg_constraint \
                 WHERE conrelid = i.indrelid AND conindid = i.indexrelid AND contype IN ('p','u','x') AND condeferrable), \
               (NOT i.indimmediate) AND EXISTS (SELECT 1 FROM pg_catalog.pg_constraint \
                 WHERE conrelid = i.indrelid AND conindid = i.indexrelid AND contype IN ('p','u','x') AND condeferred), \
               i.indisreplident, i.indnullsnotdistinct, a.amname, c2.relname, \
               pg_catalog.pg_get_expr(i.indpred, i.indrelid, true) \
             FROM pg_catalog.pg_index i, pg_catalog.pg_class c, pg_catalog.pg_class c2, pg_catalog.pg_am a \
             WHERE i.indexrelid = c.oid AND c.oid = '{oid}' AND c.relam = a.oid AND i.indrelid = c2.oid"
        ),
    )
    .await?;
    let Some(r) = rows.first() else {
        return Ok(());
    };
    let mut line = String::new();
    if t(r, 1) {
        line.push_str("primary key, ");
    } else if t(r, 0) {
        line.push_str("unique");
        if t(r, 7) {
            line.push_str(" nulls not distinct");
        }
        line.push_str(", ");
    }
    line.push_str(&format!("{}, for table \"{schema}.{}\"", s(r, 8), s(r, 9)));
    if !s(r, 10).is_empty() {
        line.push_str(&format!(", predicate ({})", s(r, 10)));
    }
    for (i, what) in [
        (2, ", clustered"),
        (4, ", deferrable"),
        (5, ", initially deferred"),
        (6, ", replica identity"),
    ] {
        if i == 4 && !t(r, 3) {
            line.push_str(", invalid");
        }
        if t(r, i) {
            line.push_str(what);
        }
    }
    footers.push(line);
    Ok(())
}

/// Footers of a table before its triggers: partition of, partition key,
/// indexes, constraints, referenced by, policies.
async fn table_footers(
    c: &mut Conn,
    oid: &str,
    kind: &str,
    info: &Row,
    verbose: bool,
    footers: &mut Vec<String>,
) -> Result<(), MetaOut> {
    if t(info, 7) {
        let rows = fetch(
            c,
            &format!(
                "SELECT i.inhparent::pg_catalog.regclass, pg_catalog.pg_get_expr(c.relpartbound, c.oid), \
                   i.inhdetachpending, pg_catalog.pg_get_partition_constraintdef(c.oid) \
                 FROM pg_catalog.pg_class c JOIN pg_catalog.pg_inherits i ON c.oid = i.inhrelid \
                 WHERE c.oid = '{oid}'"
            ),
        )
        .await?;
        if let Some(r) = rows.first() {
            footers.push(format!(
                "Partition of: {} {}{}",
                s(r, 0),
                s(r, 1),
                if t(r, 2) { " DETACH PENDING" } else { "" }
            ));
            if verbose {
                footers.push(if s(r, 3).is_empty() {
                    "No partition constraint".into()
                } else {
                    format!("Partition constraint: {}", s(r, 3))
                });
            }
        }
    }
    if kind == "p" {
        let rows = fetch(
            c,
            &format!("SELECT pg_catalog.pg_get_partkeydef('{oid}'::pg_catalog.oid)"),
        )
        .await?;
        if let Some(r) = rows.first() {
            footers.push(format!("Partition key: {}", s(r, 0)));
        }
    }
    if t(info, 2) {
        let rows = fetch(
            c,
            &format!(
                "SELECT c2.relname, i.indisprimary, i.indisunique, i.indisclustered, i.indisvalid, \
                   pg_catalog.pg_get_indexdef(i.indexrelid, 0, true), \
                   pg_catalog.pg_get_constraintdef(con.oid, true), con.contype::text, con.condeferrable, \
                   con.condeferred, i.indisreplident \
                 FROM pg_catalog.pg_class c2, pg_catalog.pg_index i \
                 LEFT JOIN pg_catalog.pg_constraint con ON (con.conrelid = i.indrelid AND con.conindid = i.indexrelid \
                   AND con.contype IN ('p','u','x')) \
                 WHERE i.indrelid = '{oid}' AND i.indexrelid = c2.oid \
                 ORDER BY i.indisprimary DESC, c2.relname"
            ),
        )
        .await?;
        if !rows.is_empty() {
            footers.push("Indexes:".into());
        }
        for r in &rows {
            let mut line = format!("    \"{}\"", s(r, 0));
            if s(r, 7) == "x" {
                line.push_str(&format!(" {}", s(r, 6)));
            } else {
                if t(r, 1) {
                    line.push_str(" PRIMARY KEY,");
                } else if t(r, 2) {
                    line.push_str(if s(r, 7) == "u" {
                        " UNIQUE CONSTRAINT,"
                    } else {
                        " UNIQUE,"
                    });
                }
                let def = s(r, 5);
                if let Some(at) = def.find(" USING ") {
                    line.push(' ');
                    line.push_str(&def[at + 7..]);
                }
                if t(r, 8) {
                    line.push_str(" DEFERRABLE");
                }
                if t(r, 9) {
                    line.push_str(" INITIALLY DEFERRED");
                }
            }
            if t(r, 3) {
                line.push_str(" CLUSTER");
            }
            if !t(r, 4) {
                line.push_str(" INVALID");
            }
            if t(r, 10) {
                line.push_str(" REPLICA IDENTITY");
            }
            footers.push(line);
        }
    }
    if s(info, 0) != "0" && !s(info, 0).is_empty() {
        let rows = fetch(
            c,
            &format!(
                "SELECT r.conname, pg_catalog.pg_get_constraintdef(r.oid, true) FROM pg_catalog.pg_constraint r \
                 WHERE r.conrelid = '{oid}' AND r.contype = 'c' ORDER BY 1"
            ),
        )
        .await?;
        if !rows.is_empty() {
            footers.push("Check constraints:".into());
        }
        for r in &rows {
            footers.push(format!("    \"{}\" {}", s(r, 0), s(r, 1)));
        }
    }
    if matches!(kind, "r" | "p" | "f") {
        let rows = fetch(
            c,
            &format!(
                "SELECT r.conrelid = '{oid}'::pg_catalog.regclass, r.conname, \
                   pg_catalog.pg_get_constraintdef(r.oid, true), r.conrelid::pg_catalog.regclass \
                 FROM pg_catalog.pg_constraint r \
                 WHERE r.conrelid IN (SELECT pg_catalog.pg_partition_ancestors('{oid}') \
                                      UNION VALUES ('{oid}'::pg_catalog.regclass)) \
                   AND r.contype = 'f' AND r.conparentid = 0 \
                 ORDER BY 1 DESC, 2"
            ),
        )
        .await?;
        if !rows.is_empty() {
            footers.push("Foreign-key constraints:".into());
        }
        for r in &rows {
            if t(r, 0) {
                footers.push(format!("    \"{}\" {}", s(r, 1), s(r, 2)));
            } else {
                footers.push(format!(
                    "    TABLE \"{}\" CONSTRAINT \"{}\" {}",
                    s(r, 3),
                    s(r, 1),
                    s(r, 2)
                ));
            }
        }
        let rows = fetch(
            c,
            &format!(
                "SELECT r.conname, r.conrelid::pg_catalog.regclass, pg_catalog.pg_get_constraintdef(r.oid, true) \
                 FROM pg_catalog.pg_constraint r \
                 WHERE r.confrelid IN (SELECT pg_catalog.pg_partition_ancestors('{oid}') \
                                       UNION ALL VALUES ('{oid}'::pg_catalog.regclass)) \
                   AND r.contype = 'f' AND r.conparentid = 0 ORDER BY 1"
            ),
        )
        .await?;
        if !rows.is_empty() {
            footers.push("Referenced by:".into());
        }
        for r in &rows {
            footers.push(format!(
                "    TABLE \"{}\" CONSTRAINT \"{}\" {}",
                s(r, 1),
                s(r, 0),
                s(r, 2)
            ));
        }
    }
    if matches!(kind, "r" | "p" | "f") {
        policies(c, oid, info, footers).await?;
    }
    Ok(())
}

async fn policies(
    c: &mut Conn,
    oid: &str,
    info: &Row,
    footers: &mut Vec<String>,
) -> Result<(), MetaOut> {
    let rows = fetch(
        c,
        &format!(
            "SELECT pol.polname, pol.polpermissive, \
               CASE WHEN pol.polroles = '{{0}}' THEN NULL ELSE pg_catalog.array_to_string(array( \
                 SELECT rolname FROM pg_catalog.pg_roles WHERE oid = ANY (pol.polroles) ORDER BY 1), ',') END, \
               pg_catalog.pg_get_expr(pol.polqual, pol.polrelid), \
               pg_catalog.pg_get_expr(pol.polwithcheck, pol.polrelid), \
               CASE pol.polcmd WHEN 'r' THEN 'SELECT' WHEN 'a' THEN 'INSERT' WHEN 'w' THEN 'UPDATE' WHEN 'd' THEN 'DELETE' END \
             FROM pg_catalog.pg_policy pol WHERE pol.polrelid = '{oid}' ORDER BY 1"
        ),
    )
    .await?;
    let (rls, forced) = (t(info, 5), t(info, 6));
    let head = match (rls, forced, rows.is_empty()) {
        (true, false, false) => Some("Policies:"),
        (true, true, false) => Some("Policies (forced row security enabled):"),
        (true, false, true) => Some("Policies (row security enabled): (none)"),
        (true, true, true) => Some("Policies (forced row security enabled): (none)"),
        (false, _, false) => Some("Policies (row security disabled):"),
        (false, _, true) => None,
    };
    if let Some(h) = head {
        footers.push(h.into());
    }
    for r in &rows {
        let mut line = format!("    POLICY \"{}\"", s(r, 0));
        if !t(r, 1) {
            line.push_str(" AS RESTRICTIVE");
        }
        if !s(r, 5).is_empty() {
            line.push_str(&format!(" FOR {}", s(r, 5)));
        }
        if !s(r, 2).is_empty() {
            line.push_str(&format!("\n      TO {}", s(r, 2)));
        }
        if !s(r, 3).is_empty() {
            line.push_str(&format!("\n      USING ({})", s(r, 3)));
        }
        if !s(r, 4).is_empty() {
            line.push_str(&format!("\n      WITH CHECK ({})", s(r, 4)));
        }
        footers.push(line);
    }
    Ok(())
}

async fn triggers(c: &mut Conn, oid: &str, footers: &mut Vec<String>) -> Result<(), MetaOut> {
    let rows = fetch(
        c,
        &format!(
            "SELECT t.tgname, pg_catalog.pg_get_triggerdef(t.oid, true), t.tgenabled::text, t.tgisinternal, \
               CASE WHEN t.tgparentid <> 0 THEN \
                 (SELECT u.tgrelid::pg_catalog.regclass FROM pg_catalog.pg_trigger AS u, \
                    pg_catalog.pg_partition_ancestors(t.tgrelid) WITH ORDINALITY AS a(relid, depth) \
                  WHERE u.tgname = t.tgname AND u.tgrelid = a.relid AND u.tgparentid = 0 \
                  ORDER BY a.depth LIMIT 1) END \
             FROM pg_catalog.pg_trigger t \
             WHERE t.tgrelid = '{oid}' AND (NOT t.tgisinternal OR (t.tgisinternal AND t.tgenabled = 'D')) \
             ORDER BY 1"
        ),
    )
    .await?;
    // psql's five groups, in its order.
    type Belongs = fn(&str, bool) -> bool;
    let groups: [(&str, Belongs); 5] = [
        ("Triggers:", |e, internal| !internal && e == "O"),
        ("Disabled user triggers:", |e, internal| {
            !internal && e == "D"
        }),
        ("Disabled internal triggers:", |e, internal| {
            internal && e == "D"
        }),
        ("Triggers firing always:", |e, _| e == "A"),
        ("Triggers firing on replica only:", |e, _| e == "R"),
    ];
    for (head, belongs) in groups {
        let mut any = false;
        for r in rows.iter().filter(|r| belongs(s(r, 2), t(r, 3))) {
            if !any {
                footers.push(head.into());
                any = true;
            }
            let def = s(r, 1);
            let def = def
                .find(" TRIGGER ")
                .map(|at| &def[at + 9..])
                .unwrap_or(def);
            let mut line = format!("    {def}");
            if !s(r, 4).is_empty() {
                line.push_str(&format!(", ON TABLE {}", s(r, 4)));
            }
            footers.push(line);
        }
    }
    Ok(())
}

/// Footers after the triggers: inherits, partitions or child tables, typed
/// table, replica identity, access method, options.
async fn finish_table_footers(
    c: &mut Conn,
    oid: &str,
    kind: &str,
    info: &Row,
    verbose: bool,
    footers: &mut Vec<String>,
) -> Result<(), MetaOut> {
    let parents = fetch(
        c,
        &format!(
            "SELECT c.oid::pg_catalog.regclass FROM pg_catalog.pg_class c, pg_catalog.pg_inherits i \
             WHERE c.oid = i.inhparent AND i.inhrelid = '{oid}' AND c.relkind <> 'p' AND c.relkind <> 'I' \
             ORDER BY i.inhseqno"
        ),
    )
    .await?;
    list_footer(
        footers,
        "Inherits",
        parents.iter().map(|r| s(r, 0).to_string()),
    );
    let children = fetch(
        c,
        &format!(
            "SELECT c.oid::pg_catalog.regclass, c.relkind::text, i.inhdetachpending, \
               pg_catalog.pg_get_expr(c.relpartbound, c.oid) \
             FROM pg_catalog.pg_class c, pg_catalog.pg_inherits i \
             WHERE c.oid = i.inhrelid AND i.inhparent = '{oid}' \
             ORDER BY pg_catalog.pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT', c.oid::pg_catalog.regclass::pg_catalog.text"
        ),
    )
    .await?;
    let partitioned = matches!(kind, "p" | "I");
    if partitioned && children.is_empty() {
        footers.push("Number of partitions: 0".into());
    } else if !verbose {
        if partitioned {
            footers.push({
                format!(
                    "Number of partitions: {} (Use \\d+ to list them.)",
                    children.len()
                )
            });
        } else if !children.is_empty() {
            footers.push(format!(
                "Number of child tables: {} (Use \\d+ to list them.)",
                children.len()
            ));
        }
    } else {
        let items = children.iter().map(|r| {
            let mut x = s(r, 0).to_string();
            if !s(r, 3).is_empty() {
                x.push(' ');
                x.push_str(s(r, 3));
            }
            match s(r, 1) {
                "p" | "I" => x.push_str(", PARTITIONED"),
                "f" => x.push_str(", FOREIGN"),
                _ => {}
            }
            if t(r, 2) {
                x.push_str(" (DETACH PENDING)");
            }
            x
        });
        list_footer(
            footers,
            if partitioned {
                "Partitions"
            } else {
                "Child tables"
            },
            items,
        );
    }
    if !s(info, 9).is_empty() {
        footers.push(format!("Typed table of type: {}", s(info, 9)));
    }
    if verbose && matches!(kind, "r" | "m") && matches!(s(info, 11), "f" | "n") {
        footers.push(format!(
            "Replica Identity: {}",
            if s(info, 11) == "f" {
                "FULL"
            } else {
                "NOTHING"
            }
        ));
    }
    if verbose && !s(info, 12).is_empty() {
        footers.push(format!("Access method: {}", s(info, 12)));
    }
    Ok(())
}

/// `Label: a,` then the next items aligned under the first.
fn list_footer(footers: &mut Vec<String>, label: &str, items: impl Iterator<Item = String>) {
    let items: Vec<String> = items.collect();
    let n = items.len();
    for (i, item) in items.into_iter().enumerate() {
        let mut line = if i == 0 {
            format!("{label}: {item}")
        } else {
            format!("{}  {item}", " ".repeat(label.chars().count()))
        };
        if i + 1 < n {
            line.push(',');
        }
        footers.push(line);
    }
}
