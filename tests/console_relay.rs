//! The console's relay (`console::relay`) between sqlx and a real
//! PostgreSQL 15 (TempPg): every field of a NOTICE/WARNING reaches the
//! statement that raised it, in order and all of them; rows, notifications
//! and COPY still pass; a terminated backend and a stopped server end the
//! link and the statement says the connection is lost; closing the
//! connection removes the relay's socket and leaves no task behind; an
//! unreachable server is a clear connect error.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::pg::TempPg;
use pglab::console::run::{Conn, Limits, run_statement};
use sqlx::Connection;

async fn run(c: &mut Conn, sql: &str) -> pglab::console::run::Ran {
    run_statement(c, sql, &Limits::default(), false).await
}

#[tokio::test]
async fn notices_keep_every_field_and_stay_with_their_statement() {
    let pg = TempPg::start();
    let mut c = Conn::connect(&pg.options()).await.unwrap();

    let r = run(
        &mut c,
        "do $$ begin raise warning 'all fields' using detail = 'the detail', hint = 'the hint', \
         errcode = 'P0042', schema = 'a_schema', table = 'a_table', column = 'a_column', \
         datatype = 'a_type', constraint = 'a_constraint'; end $$;",
    )
    .await;
    assert!(r.result.error.is_none(), "{:?}", r.result.error);
    let n = &r.result.notices;
    assert_eq!(n.len(), 1, "{n:?}");
    let n = &n[0];
    assert_eq!(
        (n.severity.as_str(), n.sqlstate.as_str(), n.message.as_str()),
        ("WARNING", "P0042", "all fields")
    );
    assert_eq!(n.detail.as_deref(), Some("the detail"));
    assert_eq!(n.hint.as_deref(), Some("the hint"));
    assert_eq!(n.schema.as_deref(), Some("a_schema"));
    assert_eq!(n.table.as_deref(), Some("a_table"));
    assert_eq!(n.column.as_deref(), Some("a_column"));
    assert_eq!(n.data_type.as_deref(), Some("a_type"));
    assert_eq!(n.constraint.as_deref(), Some("a_constraint"));
    assert!(
        n.context
            .as_deref()
            .is_some_and(|x| x.contains("inline_code_block")),
        "{:?}",
        n.context
    );
    assert!(
        n.location
            .as_deref()
            .is_some_and(|l| l.contains("pl_exec.c")),
        "{:?}",
        n.location
    );

    // A position, for the caret.
    run(&mut c, "set standard_conforming_strings = off").await;
    let r = run(&mut c, "select 1, 'a\\\\b'").await;
    let n = &r.result.notices;
    assert_eq!(n.len(), 1, "{n:?}");
    assert_eq!(n[0].position, Some(11));
    assert!(n[0].hint.is_some());
    let text = pglab::console::meta::text::psql_notice_text(&n[0], &r.result.sql);
    assert_eq!(
        text,
        "WARNING:  nonstandard use of \\\\ in a string literal\nLINE 1: select 1, 'a\\\\b'\n                  ^\nHINT:  Use the escape string syntax for backslashes, e.g., E'\\\\'.\n"
    );
    run(&mut c, "reset standard_conforming_strings").await;
    assert!(run(&mut c, "select 2").await.result.notices.is_empty());

    // Many from one statement: all, in order, before its ReadyForQuery.
    let r = run(
        &mut c,
        "do $$ begin for i in 1..5000 loop raise notice 'n%', i; end loop; end $$",
    )
    .await;
    let got: Vec<&str> = r
        .result
        .notices
        .iter()
        .map(|n| n.message.as_str())
        .collect();
    let want: Vec<String> = (1..=5000).map(|i| format!("n{i}")).collect();
    assert_eq!(got, want);

    // A notice then an error in the same statement: both.
    let r = run(
        &mut c,
        "do $$ begin raise notice 'before'; perform 1 / 0; end $$",
    )
    .await;
    assert_eq!(r.result.notices.len(), 1);
    assert_eq!(r.result.notices[0].message, "before");
    assert_eq!(r.result.error.as_ref().unwrap().sqlstate, "22012");
    assert!(!r.lost);

    // Rows, notifications and COPY pass through unchanged.
    let r = run(&mut c, "select repeat('x', 200000) as big").await;
    let big = r.result.rows[0][0].as_deref().unwrap();
    assert!(big.starts_with("xxxx") && big.ends_with("[190000 more bytes]"));
    run(&mut c, "listen ch").await;
    let r = run(&mut c, "notify ch, 'payload'").await;
    assert_eq!(r.result.notifications.len(), 1, "{:?}", r.result);
    assert!(r.result.notifications[0].contains("\"payload\""));
    let r = run(&mut c, "copy (select generate_series(1, 3)) to stdout").await;
    assert!(r.result.error.is_none(), "{:?}", r.result.error);
    assert_eq!(r.result.command_tag.as_deref(), Some("COPY 3"));
    c.close().await;
}

#[tokio::test]
async fn a_killed_server_ends_the_link_and_closing_leaves_nothing_behind() {
    let pg = TempPg::start();
    let tasks_before = tokio::runtime::Handle::current()
        .metrics()
        .num_alive_tasks();

    // A terminated backend, as when the sandbox kills it.
    let mut c = Conn::connect(&pg.options()).await.unwrap();
    let dir = c.relay_dir().to_path_buf();
    let sockets: Vec<String> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        sockets.len() == 1 && sockets[0].starts_with(".s.PGSQL."),
        "{sockets:?}"
    );
    let mut side = sqlx::PgConnection::connect_with(&pg.options())
        .await
        .unwrap();
    let pid = c.pid;
    sqlx::query("select pg_terminate_backend($1)")
        .bind(pid)
        .execute(&mut side)
        .await
        .unwrap();
    let r = tokio::time::timeout(Duration::from_secs(10), run(&mut c, "select 1"))
        .await
        .expect("a statement on a killed backend answers");
    assert!(r.lost, "{:?}", r.result);
    c.close().await;
    assert!(!dir.exists(), "the relay's socket directory is removed");

    // The whole server stopped under an open connection.
    let mut c = Conn::connect(&pg.options()).await.unwrap();
    let dir = c.relay_dir().to_path_buf();
    side.close().await.unwrap();
    drop(pg);
    let r = tokio::time::timeout(Duration::from_secs(10), run(&mut c, "select 1"))
        .await
        .expect("a statement on a stopped server answers");
    assert!(r.lost, "{:?}", r.result);
    c.close().await;
    assert!(!dir.exists());

    let mut left = usize::MAX;
    for _ in 0..50 {
        left = tokio::runtime::Handle::current()
            .metrics()
            .num_alive_tasks();
        if left <= tasks_before {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(
        left <= tasks_before,
        "{left} tasks alive after closing, {tasks_before} before"
    );
}

#[tokio::test]
async fn an_unreachable_server_is_a_clear_connect_error() {
    let gone = tempfile::tempdir().unwrap();
    let options = sqlx::postgres::PgConnectOptions::new()
        .socket(gone.path())
        .port(5432)
        .username("labuser");
    let err = tokio::time::timeout(Duration::from_secs(10), Conn::connect(&options))
        .await
        .expect("fails at once")
        .err()
        .expect("no server there");
    assert!(
        err.to_string().contains("could not connect to the server"),
        "{err}"
    );
}
