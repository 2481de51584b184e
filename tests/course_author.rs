//! Section 14 as its author wrote it, against our lab files: on a fresh real
//! PostgreSQL, `psql -v ON_ERROR_STOP=1` runs schema.sql, seed.sql,
//! generate_bulk_data.sql (and the other lab scripts), then the author's
//! statements as printed: the 14.C.1 query is a Seq Scan on tasks before
//! `idx_tasks_status_priority` and uses the index after it, and returns 20
//! rows; the transfer moves 100; two opposite transfers deadlock; the
//! 14.C.3 trigger writes an audit row on UPDATE (and UPDATEs keep working);
//! the 14.B.3 queries, 14.D.1's long-running query and CREATE INDEX
//! CONCURRENTLY, 14.D.3's pg_terminate_backend of idle sessions and
//! `\c labdb_restore` after a restore all work. A second test plays every
//! sql block of our own section in order after the lab scripts, as the
//! sidecar's `[[block]]` entries declare them.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use common::pg::{TempPg, pg_bindir};
use sqlx::{Connection, PgConnection};

const SCRIPTS: &str = "practice/curriculum/14-postgresql-production-labs/scripts";

/// The author's 14.C.1 query, as printed.
const SLOW_QUERY: &str = "SELECT t.title, u.username, p.name FROM tasks t JOIN users u ON t.assigned_to = u.id JOIN projects p ON t.project_id = p.id WHERE t.status = 'open' AND t.priority >= 4 ORDER BY t.created_at DESC LIMIT 20;";

fn script(name: &str) -> PathBuf {
    common::repo_content_dir().join(SCRIPTS).join(name)
}

/// psql on `db` with ON_ERROR_STOP, reading `input` (a file's text): its
/// stdout, or a panic with stderr when psql failed.
fn psql_in(pg: &TempPg, db: &str, input: &str) -> String {
    let (ok, out, err) = psql_try(pg, db, input);
    assert!(
        ok,
        "psql failed on\n{input}\n--- stderr:\n{err}\n--- stdout:\n{out}"
    );
    out
}

fn psql(pg: &TempPg, input: &str) -> String {
    psql_in(pg, "labdb", input)
}

/// psql as above; (success, stdout, stderr), errors with their SQLSTATE.
fn psql_try(pg: &TempPg, db: &str, input: &str) -> (bool, String, String) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("input.sql");
    std::fs::write(&file, format!("\\set VERBOSITY verbose\n{input}")).unwrap();
    let out = Command::new(pg_bindir().join("psql"))
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h"])
        .arg(pg.socket_dir())
        .args(["-U", "labuser", "-d", db, "-f"])
        .arg(&file)
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// One value as psql -At prints it.
fn value(pg: &TempPg, sql: &str) -> String {
    let out = Command::new(pg_bindir().join("psql"))
        .args(["-X", "-At", "-v", "ON_ERROR_STOP=1", "-h"])
        .arg(pg.socket_dir())
        .args(["-U", "labuser", "-d", "labdb", "-c", sql])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{sql}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// Runs a lab script with psql -f, as a learner outside pglab would.
fn run_script(pg: &TempPg, name: &str) {
    let text = std::fs::read_to_string(script(name)).unwrap();
    psql(pg, &text);
}

fn lab_scripts(pg: &TempPg) {
    for name in [
        "ex14_1_setup.sql",
        "schema.sql",
        "seed.sql",
        "generate_bulk_data.sql",
        "queries.sql",
    ] {
        run_script(pg, name);
    }
}

#[tokio::test]
async fn the_authors_statements_run_as_printed_on_our_lab_files() {
    let pg = TempPg::start();
    let began = std::time::Instant::now();
    lab_scripts(&pg);
    eprintln!("lab scripts: {:?}", began.elapsed());
    // Re-runnable: schema.sql drops and recreates, seed resets, bulk replaces.
    for name in ["schema.sql", "seed.sql", "generate_bulk_data.sql"] {
        run_script(&pg, name);
    }
    assert_eq!(value(&pg, "select count(*) from tasks"), "120014");
    assert_eq!(
        value(
            &pg,
            "select string_agg(id || '=' || balance, ' ' order by id) from accounts"
        ),
        "1=1000.00 2=500.00"
    );

    // 14.C.1: a Seq Scan on tasks before the index, the index after it.
    let explain = format!("EXPLAIN (ANALYZE, BUFFERS, FORMAT TEXT) {SLOW_QUERY}");
    let before = psql(&pg, &explain);
    assert!(before.contains("Seq Scan on tasks t"), "{before}");
    assert!(!before.contains("idx_tasks_status_priority"), "{before}");
    let rows = psql(
        &pg,
        &format!("\\pset tuples_only on\n\\pset format unaligned\n{SLOW_QUERY}"),
    );
    assert_eq!(rows.lines().filter(|l| !l.is_empty()).count(), 20, "{rows}");
    psql(
        &pg,
        "CREATE INDEX idx_tasks_status_priority ON tasks(status, priority);",
    );
    let after = psql(&pg, &explain);
    assert!(
        after.contains("Index Scan on idx_tasks_status_priority")
            || after.contains("Index Scan using idx_tasks_status_priority"),
        "{after}"
    );
    assert!(!after.contains("Seq Scan on tasks"), "{after}");
    let plan_rows = |plan: &str| {
        plan.lines()
            .find(|l| l.trim_start().starts_with("Limit"))
            .is_some_and(|l| l.contains("rows=20 loops=1"))
    };
    assert!(plan_rows(&before) && plan_rows(&after), "{before}\n{after}");

    // The transfer moves 100.
    psql(
        &pg,
        "BEGIN; UPDATE accounts SET balance = balance - 100 WHERE id = 1; UPDATE accounts SET balance = balance + 100 WHERE id = 2; COMMIT;",
    );
    assert_eq!(
        value(
            &pg,
            "select string_agg(id || '=' || balance, ' ' order by id) from accounts"
        ),
        "1=900.00 2=600.00"
    );

    // The deadlock: two transactions updating accounts 1 and 2 in opposite order.
    let mut t1 = PgConnection::connect_with(&pg.options()).await.unwrap();
    let mut t2 = PgConnection::connect_with(&pg.options()).await.unwrap();
    sqlx::raw_sql("BEGIN; UPDATE accounts SET balance = balance - 100 WHERE id = 1;")
        .execute(&mut t1)
        .await
        .unwrap();
    sqlx::raw_sql("BEGIN; UPDATE accounts SET balance = balance - 100 WHERE id = 2;")
        .execute(&mut t2)
        .await
        .unwrap();
    let (first, second) = tokio::join!(
        async {
            sqlx::query("UPDATE accounts SET balance = balance + 100 WHERE id = 2;")
                .execute(&mut t1)
                .await
                .map(|_| ())
                .map_err(|e| sqlstate(&e))
        },
        async {
            tokio::time::sleep(Duration::from_millis(300)).await;
            sqlx::query("UPDATE accounts SET balance = balance + 100 WHERE id = 1;")
                .execute(&mut t2)
                .await
                .map(|_| ())
                .map_err(|e| sqlstate(&e))
        }
    );
    let failed: Vec<_> = [&first, &second]
        .into_iter()
        .filter_map(|r| r.clone().err())
        .collect();
    assert_eq!(failed, vec!["40P01".to_string()], "{first:?} {second:?}");
    sqlx::raw_sql("ROLLBACK").execute(&mut t1).await.unwrap();
    sqlx::raw_sql("ROLLBACK").execute(&mut t2).await.unwrap();
    assert_eq!(value(&pg, "select sum(balance) from accounts"), "1500.00");

    // 14.C.3: the author's trigger, as printed; UPDATEs keep working and audit.
    psql(
        &pg,
        "CREATE OR REPLACE FUNCTION log_task_changes() RETURNS TRIGGER AS $$ BEGIN INSERT INTO audit_logs (entity_type, entity_id, action, changes) VALUES ('task', NEW.id, TG_OP, jsonb_build_object('old', row_to_json(OLD), 'new', row_to_json(NEW))); RETURN NEW; END; $$ LANGUAGE plpgsql;",
    );
    psql(
        &pg,
        "CREATE TRIGGER task_audit AFTER UPDATE ON tasks FOR EACH ROW EXECUTE FUNCTION log_task_changes();",
    );
    let audits = "select count(*) from audit_logs where entity_type = 'task' and entity_id = 5 and action = 'UPDATE'";
    let n_before: i64 = value(&pg, audits).parse().unwrap();
    psql(&pg, "UPDATE tasks SET status = 'closed' WHERE id = 5;");
    let n_after: i64 = value(&pg, audits).parse().unwrap();
    assert_eq!(n_after, n_before + 1);
    assert_eq!(
        value(
            &pg,
            "select changes->'new'->>'status' || ' ' || (changes->'old' ? 'title') || ' ' || (user_id is null) || ' ' || (created_at = (select max(created_at) from audit_logs)) from audit_logs where entity_id = 5 order by id desc limit 1"
        ),
        "closed true true true"
    );

    // 14.B.3: the five queries the author asks for.
    for q in [
        "SELECT t.title, p.name FROM tasks t JOIN projects p ON t.project_id = p.id WHERE t.assigned_to = 1;",
        "SELECT status, COUNT(*) FROM tasks GROUP BY status;",
        "SELECT u.username, COUNT(t.id) FROM users u JOIN tasks t ON t.assigned_to = u.id GROUP BY u.username HAVING COUNT(t.id) > 2;",
        "SELECT * FROM tasks ORDER BY priority DESC, created_at LIMIT 10;",
        "SELECT a.*, u.username, u.email FROM audit_logs a LEFT JOIN users u ON a.user_id = u.id ORDER BY a.created_at DESC LIMIT 10;",
    ] {
        psql(&pg, q);
    }
    assert_eq!(
        value(
            &pg,
            "select string_agg(status, ',' order by status) from (select distinct status from tasks) s"
        ),
        "closed,in_progress,open"
    );

    // 14.D.1: the long-running query finder and CREATE INDEX CONCURRENTLY.
    psql(
        &pg,
        "SELECT pid, now() - query_start AS duration, query FROM pg_stat_activity WHERE state = 'active' AND now() - query_start > interval '5 seconds';",
    );
    psql(&pg, "DROP INDEX idx_tasks_status_priority;");
    psql(
        &pg,
        "CREATE INDEX CONCURRENTLY idx_tasks_status_priority ON tasks(status, priority);",
    );
    assert_eq!(
        value(
            &pg,
            "select indisvalid from pg_index where indexrelid = 'idx_tasks_status_priority'::regclass"
        ),
        "t"
    );

    // 14.D.3: an idle session older than the interval is ended, as printed.
    let mut idle = PgConnection::connect_with(&pg.options()).await.unwrap();
    sqlx::query("select 1").execute(&mut idle).await.unwrap();
    let pid = value(
        &pg,
        "select pid from pg_stat_activity where state = 'idle' and backend_type = 'client backend' order by backend_start desc limit 1",
    );
    tokio::time::sleep(Duration::from_millis(2200)).await;
    let ended = psql(
        &pg,
        "\\pset tuples_only on\nSELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE state = 'idle' AND state_change < now() - interval '2 seconds';",
    );
    assert!(ended.contains('t'), "{ended}");
    assert_eq!(
        value(
            &pg,
            &format!("select count(*) from pg_stat_activity where pid = {pid}")
        ),
        "0"
    );
    assert!(sqlx::query("select 1").execute(&mut idle).await.is_err());
    psql(
        &pg,
        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE state = 'idle' AND state_change < now() - interval '1 minute';",
    );

    // 14.C.4: dump, restore into labdb_restore, then `\c labdb_restore`.
    let dump = tempfile::tempdir().unwrap();
    let file = dump.path().join("taskflow.dump");
    let tool = |name: &str, args: &[&str]| {
        let out = Command::new(pg_bindir().join(name))
            .arg("-h")
            .arg(pg.socket_dir())
            .args(["-U", "labuser"])
            .args(args)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{name}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    tool(
        "pg_dump",
        &["--format=custom", "--file", file.to_str().unwrap(), "labdb"],
    );
    tool("createdb", &["labdb_restore"]);
    tool(
        "pg_restore",
        &[
            "--no-owner",
            "--dbname=labdb_restore",
            file.to_str().unwrap(),
        ],
    );
    let restored = psql(
        &pg,
        "\\c labdb_restore\n\\pset tuples_only on\n\\pset format unaligned\nSELECT current_database(), count(*) FROM tasks;",
    );
    assert!(restored.contains("labdb_restore|120014"), "{restored}");
}

fn sqlstate(e: &sqlx::Error) -> String {
    e.as_database_error()
        .and_then(|d| d.code())
        .map(|c| c.into_owned())
        .unwrap_or_else(|| e.to_string())
}

/// The sidecar's declaration of one sql block.
#[derive(serde::Deserialize)]
struct Block {
    contains: String,
    expect_sqlstate: Option<String>,
    skip: Option<String>,
}

#[derive(serde::Deserialize)]
struct Sidecar {
    #[serde(default)]
    block: Vec<Block>,
}

/// The ```sql blocks of a markdown text, in order.
fn sql_blocks(md: &str) -> Vec<String> {
    use pulldown_cmark::{CodeBlockKind, Event, Parser, Tag, TagEnd};
    let mut out = Vec::new();
    let mut current: Option<String> = None;
    for event in Parser::new(md) {
        match event {
            Event::Start(Tag::CodeBlock(CodeBlockKind::Fenced(lang))) if &*lang == "sql" => {
                current = Some(String::new())
            }
            Event::Text(t) => {
                if let Some(c) = current.as_mut() {
                    c.push_str(&t)
                }
            }
            Event::End(TagEnd::CodeBlock) => {
                if let Some(c) = current.take() {
                    out.push(c)
                }
            }
            _ => {}
        }
    }
    out
}

#[test]
fn our_section_blocks_play_in_order_after_the_lab_scripts() {
    let dir = common::repo_content_dir();
    let md = std::fs::read_to_string(dir.join("14-postgresql-production-labs.md")).unwrap();
    let sidecar: Sidecar = toml::from_str(
        &std::fs::read_to_string(dir.join("14-postgresql-production-labs.checks.toml")).unwrap(),
    )
    .unwrap();
    let blocks = sql_blocks(&md);
    assert!(blocks.len() > 40, "{} sql blocks", blocks.len());
    // Each declaration names the first block containing its text, and no two
    // name the same block.
    let mut declared = std::collections::HashMap::new();
    for b in &sidecar.block {
        let i = blocks
            .iter()
            .position(|text| text.contains(&b.contains))
            .unwrap_or_else(|| panic!("no sql block contains {:?}", b.contains));
        assert!(
            b.expect_sqlstate.is_some() != b.skip.is_some(),
            "{:?}: expect_sqlstate or skip",
            b.contains
        );
        assert!(
            declared.insert(i, b).is_none(),
            "two declarations for block {i}"
        );
    }

    let pg = TempPg::start();
    lab_scripts(&pg);
    let (mut played, mut failed_as_declared) = (0, 0);
    for (i, text) in blocks.iter().enumerate() {
        match declared.get(&i) {
            Some(Block { skip: Some(_), .. }) => continue,
            Some(Block {
                expect_sqlstate: Some(code),
                ..
            }) => {
                let (ok, _, err) = psql_try(&pg, "labdb", text);
                assert!(!ok, "block {i} was expected to fail with {code}:\n{text}");
                assert!(
                    err.contains(&format!("ERROR:  {code}:")),
                    "block {i} failed otherwise than with {code}:\n{text}\n{err}"
                );
                failed_as_declared += 1;
            }
            _ => {
                let (ok, _, err) = psql_try(&pg, "labdb", text);
                assert!(ok, "block {i} failed:\n{text}\n{err}");
                played += 1;
            }
        }
    }
    eprintln!("{played} blocks played, {failed_as_declared} failed as declared");
    assert_eq!(failed_as_declared, 6);
}
