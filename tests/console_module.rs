//! The console module against a real PostgreSQL (TempPg): every result and
//! error field, transactions, limits, meta-commands, and two sessions
//! waiting on each other's locks.

#![allow(clippy::unwrap_used)]

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::fixed::Fixed;
use common::pg::TempPg;
use pglab::console::result::{RunResult, TxState};
use pglab::console::{ConsoleConfig, ConsoleError, Consoles};
use pglab::sandbox::LearnerId;
use sqlx::postgres::PgConnectOptions;

fn consoles(options: PgConnectOptions) -> Arc<Consoles> {
    Consoles::new(Arc::new(Fixed::new(options)), ConsoleConfig::default())
}

const ME: LearnerId = 1;

async fn run_with(
    c: &Arc<Consoles>,
    session: &str,
    sql: &str,
    timeout: Option<u64>,
) -> Arc<RunResult> {
    let run = c.submit(ME, session, sql, timeout).unwrap();
    run.wait(Duration::from_secs(120))
        .await
        .expect("run finished")
}

async fn run(c: &Arc<Consoles>, session: &str, sql: &str) -> Arc<RunResult> {
    run_with(c, session, sql, None).await
}

#[tokio::test]
async fn results_tags_notices_and_errors_like_psql() {
    let pg = TempPg::start();
    let c = consoles(pg.options());

    let r = run(
        &c,
        "T1",
        "create table t (id int primary key, v text);\n\
         insert into t values (1, 'a'), (2, ''), (3, null), (4, 'd'), (5, 'e');\n\
         update t set v = v || '!' where id > 3;\n\
         delete from t where id > 100;\n\
         select id, v from t order by id;\n\
         select id, v::varchar(10) as v, now() as at from t where false;\n\
         create unique index concurrently t_v on t (v);\n\
         create or replace function f() returns int language sql as $$ select 1 $$;\n\
         create table t2 as select * from t;",
    )
    .await;
    let tags: Vec<_> = r
        .statements
        .iter()
        .map(|s| s.command_tag.clone().unwrap())
        .collect();
    assert_eq!(
        tags,
        [
            "CREATE TABLE",
            "INSERT 0 5",
            "UPDATE 2",
            "DELETE 0",
            "SELECT 5",
            "SELECT 0",
            "CREATE INDEX",
            "CREATE FUNCTION",
            "SELECT 5"
        ]
    );
    let sel = &r.statements[4];
    assert_eq!(sel.columns[0].name, "id");
    assert_eq!(sel.columns[0].type_name, "integer");
    assert_eq!(sel.rows[1], vec![Some("2".into()), Some("".into())]);
    assert_eq!(
        sel.rows[2],
        vec![Some("3".into()), None],
        "NULL is distinct from ''"
    );
    assert_eq!(sel.rows[3][1].as_deref(), Some("d!"));
    let empty = &r.statements[5];
    assert!(empty.rows.is_empty());
    let cols: Vec<_> = empty
        .columns
        .iter()
        .map(|c| (c.name.as_str(), c.type_name.as_str()))
        .collect();
    assert_eq!(
        cols,
        [
            ("id", "integer"),
            ("v", "character varying"),
            ("at", "timestamp with time zone")
        ],
        "zero-row results keep their headers and types"
    );
    assert_eq!(r.statements[1].line, 2);
    assert!(
        r.statements
            .iter()
            .all(|s| s.elapsed_ms >= 0.0 && s.error.is_none())
    );
    assert_eq!(r.transaction, TxState::Idle);

    // Notices: RAISE NOTICE and WARNING, and DROP ... IF EXISTS of nothing.
    let r = run(
        &c,
        "T1",
        "do $$ begin raise notice 'hello %', 42; raise warning 'careful'; end $$;\n\
         drop table if exists missing;\nselect 1",
    )
    .await;
    let n = &r.statements[0].notices;
    assert_eq!(n.len(), 2, "{n:?}");
    assert_eq!(
        (n[0].severity.as_str(), n[0].message.as_str()),
        ("NOTICE", "hello 42")
    );
    assert_eq!(
        (n[1].severity.as_str(), n[1].message.as_str()),
        ("WARNING", "careful")
    );
    assert_eq!(r.statements[0].command_tag.as_deref(), Some("DO"));
    assert_eq!(
        r.statements[1].notices[0].message,
        "table \"missing\" does not exist, skipping"
    );
    assert_eq!(r.statements[1].command_tag.as_deref(), Some("DROP TABLE"));
    assert!(
        r.statements[2].notices.is_empty(),
        "notices stay with their statement"
    );

    // Errors: position in the statement and in the script, ON_ERROR_STOP.
    let script = "select 1;\nselect id, nme from t;\nselect 2;";
    let r = run(&c, "T1", script).await;
    assert_eq!(
        r.statements.len(),
        2,
        "the script stops at the failing statement"
    );
    assert_eq!(r.failed_statement, Some(1));
    assert_eq!(r.skipped, 1);
    let e = r.statements[1].error.as_ref().unwrap();
    assert_eq!(e.severity, "ERROR");
    assert_eq!(e.sqlstate, "42703");
    assert_eq!(e.message, "column \"nme\" does not exist");
    assert_eq!(e.position, Some(12));
    let caret = e.script_position.unwrap() - 1;
    assert_eq!(
        &script[caret..caret + 3],
        "nme",
        "the caret lands on the offending text"
    );
    assert!(r.statements[1].command_tag.is_none());

    let r = run(&c, "T1", "insert into t values (1, 'dup')").await;
    let e = r.statements[0].error.as_ref().unwrap();
    assert_eq!(e.sqlstate, "23505");
    assert_eq!(e.detail.as_deref(), Some("Key (id)=(1) already exists."));
    let r = run(&c, "T1", "select * from t where id = 'x'::int").await;
    assert_eq!(r.statements[0].error.as_ref().unwrap().sqlstate, "22P02");
    let r = run(&c, "T1", "selec 1").await;
    let e = r.statements[0].error.as_ref().unwrap();
    assert_eq!((e.sqlstate.as_str(), e.position), ("42601", Some(1)));
    let r = run(&c, "T1", "select lower(1)").await;
    assert!(r.statements[0].error.as_ref().unwrap().hint.is_some());

    // Binary data, long values, invalid input answered clearly.
    let r = run(
        &c,
        "T1",
        "select '\\x00ff'::bytea, repeat('x', 100000), 'a''b'",
    )
    .await;
    let row = &r.statements[0].rows[0];
    assert_eq!(row[0].as_deref(), Some("\\x00ff"));
    assert!(row[1].as_ref().unwrap().ends_with("… [90000 more bytes]"));
    assert!(r.statements[0].values_truncated);
    let r = run(&c, "T1", "copy t from stdin").await;
    assert!(
        r.statements[0]
            .error
            .as_ref()
            .unwrap()
            .message
            .contains("not available")
    );
    let huge = "select 1;".repeat(1_200_000);
    assert!(matches!(
        c.submit(ME, "T1", &huge, None),
        Err(ConsoleError::TooLarge(_))
    ));
    assert!(matches!(
        c.submit(ME, "bad name", "select 1", None),
        Err(ConsoleError::BadRequest(_))
    ));
}

#[tokio::test]
async fn transactions_failed_state_timeout_cancel_and_row_cap() {
    let pg = TempPg::start();
    let c = consoles(pg.options());

    let r = run(
        &c,
        "T1",
        "create table a (id int); begin; insert into a values (1)",
    )
    .await;
    assert_eq!(
        r.transaction,
        TxState::InTransaction,
        "a plain BEGIN is seen"
    );
    let r = run(&c, "T1", "select 1/0").await;
    assert_eq!(r.statements[0].error.as_ref().unwrap().sqlstate, "22012");
    assert_eq!(r.transaction, TxState::Failed);
    let r = run(&c, "T1", "select 1").await;
    let e = r.statements[0].error.as_ref().unwrap();
    assert_eq!(
        e.sqlstate, "25P02",
        "later statements are ignored until ROLLBACK"
    );
    assert_eq!(r.transaction, TxState::Failed);
    let r = run(&c, "T1", "commit").await;
    assert_eq!(r.statements[0].command_tag.as_deref(), Some("ROLLBACK"));
    assert_eq!(r.transaction, TxState::Idle);
    let r = run(&c, "T1", "select count(*) from a").await;
    assert_eq!(
        r.statements[0].rows[0][0].as_deref(),
        Some("0"),
        "the insert was rolled back"
    );
    let r = run(
        &c,
        "T1",
        "begin; insert into a values (1); savepoint s; select 1/0",
    )
    .await;
    assert_eq!(r.transaction, TxState::Failed);
    let r = run(
        &c,
        "T1",
        "rollback to savepoint s; commit; select count(*) from a",
    )
    .await;
    assert_eq!(r.statements[2].rows[0][0].as_deref(), Some("1"));
    assert_eq!(r.transaction, TxState::Idle);
    let r = run(
        &c,
        "T1",
        "begin isolation level repeatable read; show transaction_isolation",
    )
    .await;
    assert_eq!(
        r.statements[1].rows[0][0].as_deref(),
        Some("repeatable read")
    );
    assert_eq!(r.statements[1].command_tag.as_deref(), Some("SHOW"));
    let r = run(&c, "T1", "end").await;
    assert_eq!(
        (r.statements[0].command_tag.as_deref(), r.transaction),
        (Some("COMMIT"), TxState::Idle)
    );

    // Timeout: 57014 with the learner's own limit, and the session goes on.
    let r = run_with(&c, "T1", "select pg_sleep(5)", Some(1)).await;
    let e = r.statements[0].error.as_ref().unwrap();
    assert_eq!(e.sqlstate, "57014");
    assert!(e.message.contains("statement timeout"), "{}", e.message);
    assert!(
        c.submit(ME, "T1", "select 1", Some(100_000)).is_err(),
        "the cap holds"
    );

    // Cancel: the running statement stops with 57014, the session is usable.
    let run1 = c
        .submit(ME, "T1", "select pg_sleep(30); select 2", None)
        .unwrap();
    assert!(run1.wait(Duration::from_millis(400)).await.is_none());
    assert!(matches!(
        c.submit(ME, "T1", "select 1", None),
        Err(ConsoleError::Busy(_))
    ));
    assert!(c.cancel(ME, "T1").await.unwrap());
    let r = run1
        .wait(Duration::from_secs(10))
        .await
        .expect("cancelled in time");
    let e = r.statements[0].error.as_ref().unwrap();
    assert_eq!(e.sqlstate, "57014");
    assert!(e.message.contains("user request"), "{}", e.message);
    assert_eq!(r.statements.len(), 1);
    let r = run(&c, "T1", "select 3").await;
    assert_eq!(r.statements[0].rows[0][0].as_deref(), Some("3"));

    // Row cap: 1,000 rows sent, all counted, even for 10 million.
    let r = run(
        &c,
        "T1",
        "select g, 'row ' || g from generate_series(1, 5000) g",
    )
    .await;
    let s = &r.statements[0];
    assert_eq!(
        (s.rows.len(), s.total_rows, s.truncated),
        (1000, 5000, true)
    );
    assert_eq!(s.command_tag.as_deref(), Some("SELECT 5000"));
    let started = std::time::Instant::now();
    let r = run_with(&c, "T1", "select generate_series(1, 10000000)", Some(300)).await;
    eprintln!("10M rows counted in {:?}", started.elapsed());
    let s = &r.statements[0];
    assert_eq!((s.rows.len(), s.total_rows), (1000, 10_000_000));
    let r = run(&c, "T1", "select 4").await;
    assert_eq!(r.statements[0].rows[0][0].as_deref(), Some("4"));
}

#[tokio::test]
async fn meta_commands() {
    let pg = TempPg::start();
    let c = consoles(pg.options());
    run(&c, "T1", "create table tasks (id int primary key, title text not null default 'x', owner_id int);\n\
        create table owners (id int primary key); alter table tasks add foreign key (owner_id) references owners(id);\n\
        create index idx_tasks_title on tasks (title); create schema lab; comment on table tasks is 'to do'").await;
    let r = run(
        &c,
        "T1",
        "\\dt\n\\di\n\\d tasks\n\\d+ tasks\n\\dn\n\\l\n\\du\n\\dt+ task*\n\\d",
    )
    .await;
    assert!(
        r.failed_statement.is_none(),
        "{:?}",
        r.statements.last().unwrap().error
    );
    // `\g` to a file or a pipe: refused clearly, nothing sent, the run
    // stops there as at an error.
    let g = run(&c, "T1", "select 1 \\g /tmp/out.txt\nselect 2;").await;
    let e = g.statements[0].error.as_ref().expect("refused");
    assert!(e.message.contains("is not supported"), "{}", e.message);
    assert_eq!((g.failed_statement, g.skipped), (Some(0), 1));
    let heads = |i: usize| {
        r.statements[i]
            .columns
            .iter()
            .map(|c| c.name.clone())
            .collect::<Vec<_>>()
    };
    let col = |i: usize, c: usize| {
        r.statements[i]
            .rows
            .iter()
            .map(|row| row[c].clone().unwrap_or_default())
            .collect::<Vec<_>>()
    };
    assert_eq!(heads(0), ["Schema", "Name", "Type", "Owner"]);
    assert_eq!(col(0, 1), ["owners", "tasks"]);
    assert_eq!(r.statements[0].kind, "meta");
    assert_eq!(heads(1), ["Schema", "Name", "Type", "Owner", "Table"]);
    assert!(col(1, 1).contains(&"idx_tasks_title".to_string()));
    assert_eq!(
        heads(2),
        ["Column", "Type", "Collation", "Nullable", "Default"]
    );
    assert_eq!(col(2, 0), ["id", "title", "owner_id"]);
    assert_eq!(r.statements[2].rows[1][3].as_deref(), Some("not null"));
    assert_eq!(r.statements[2].rows[1][4].as_deref(), Some("'x'::text"));
    assert_eq!(
        r.statements[2].title.as_deref(),
        Some("Table \"public.tasks\"")
    );
    let footer = r.statements[2].footers.join("\n");
    assert!(
        footer.contains("\"tasks_pkey\" PRIMARY KEY, btree (id)"),
        "{footer}"
    );
    assert!(footer.contains("Foreign-key constraints:"), "{footer}");
    assert!(heads(3).contains(&"Storage".to_string()));
    assert!(col(4, 0).contains(&"lab".to_string()));
    assert!(col(5, 0).contains(&"labdb".to_string()));
    assert_eq!(heads(6), ["Role name", "Attributes", "Member of"]);
    assert!(col(6, 1)[0].contains("Superuser"));
    assert!(heads(7).contains(&"Size".to_string()));
    assert_eq!(col(7, 1), ["tasks"]);
    assert_eq!(col(8, 1), ["owners", "tasks"]);

    let r = run(&c, "T1", "\\x\n\\timing on\n\\conninfo\n\\?").await;
    assert_eq!(
        r.statements[0].text.as_deref(),
        Some("Expanded display is on.")
    );
    assert!(r.expanded && r.timing);
    assert!(
        r.statements[2]
            .text
            .as_deref()
            .unwrap()
            .contains("database \"labdb\" as user \"labuser\"")
    );
    assert!(r.statements[3].text.as_deref().unwrap().contains("\\dt"));
    let r = run(&c, "T1", "\\x off\n\\nope\nselect 1").await;
    assert!(!r.expanded, "\\x is per session and kept");
    assert_eq!(r.failed_statement, Some(1));
    assert!(
        r.statements[1]
            .error
            .as_ref()
            .unwrap()
            .message
            .starts_with("invalid command \\nope")
    );
    let r = run(&c, "T1", "\\dt nothing_here").await;
    assert!(
        r.statements[0]
            .text
            .as_deref()
            .unwrap()
            .contains("Did not find")
    );
}

#[tokio::test]
async fn lock_wait_deadlock_and_terminated_connection() {
    let pg = TempPg::start();
    let c = consoles(pg.options());
    run(
        &c,
        "T1",
        "create table acc (id int primary key, n int); insert into acc values (1, 0), (2, 0)",
    )
    .await;

    // Lock wait: T2 waits for T1, its progress names T1, then completes.
    let r = run(&c, "T1", "begin; update acc set n = n + 1 where id = 1").await;
    assert_eq!(r.transaction, TxState::InTransaction);
    let t1_pid = c
        .sessions(ME)
        .iter()
        .find(|s| s.name == "T1")
        .unwrap()
        .pid
        .unwrap();
    let t2 = c
        .submit(ME, "T2", "update acc set n = n + 10 where id = 1", None)
        .unwrap();
    assert!(
        t2.wait(Duration::from_millis(800)).await.is_none(),
        "T2 waits"
    );
    let p = c.progress(&t2).await;
    let w = p.waiting.expect("waiting info");
    assert_eq!(
        w.message,
        format!("waiting for lock held by T1 (pid {t1_pid})")
    );
    assert_eq!(w.blocking[0].session.as_deref(), Some("T1"));
    assert_eq!(w.wait_event_type.as_deref(), Some("Lock"));
    // T1 is not blocked by T2's wait.
    let r = run(&c, "T1", "select n from acc where id = 1").await;
    assert_eq!(r.statements[0].rows[0][0].as_deref(), Some("1"));
    run(&c, "T1", "commit").await;
    let r = t2
        .wait(Duration::from_secs(10))
        .await
        .expect("T2 completes after T1 commits");
    assert_eq!(r.statements[0].command_tag.as_deref(), Some("UPDATE 1"));
    let r = run(&c, "T1", "select n from acc where id = 1").await;
    assert_eq!(r.statements[0].rows[0][0].as_deref(), Some("11"));

    // Deadlock: one session gets 40P01 with its DETAIL.
    run(&c, "T1", "begin; update acc set n = 1 where id = 1").await;
    run(&c, "T2", "begin; update acc set n = 2 where id = 2").await;
    let a = c
        .submit(ME, "T1", "update acc set n = 1 where id = 2", None)
        .unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let b = c
        .submit(ME, "T2", "update acc set n = 2 where id = 1", None)
        .unwrap();
    let ra = a.wait(Duration::from_secs(15)).await.unwrap();
    let rb = b.wait(Duration::from_secs(15)).await.unwrap();
    let errors: Vec<_> = [&ra, &rb]
        .iter()
        .filter_map(|r| r.statements[0].error.clone())
        .collect();
    assert_eq!(
        errors.len(),
        1,
        "exactly one session is chosen as the victim"
    );
    assert_eq!(errors[0].sqlstate, "40P01");
    assert_eq!(errors[0].message, "deadlock detected");
    assert!(
        errors[0]
            .detail
            .as_deref()
            .unwrap()
            .contains("blocked by process")
    );
    run(&c, "T1", "rollback").await;
    run(&c, "T2", "rollback").await;

    // A terminated connection is reported, then the session reconnects.
    let t1_pid = c
        .sessions(ME)
        .iter()
        .find(|s| s.name == "T1")
        .unwrap()
        .pid
        .unwrap();
    let r = run(&c, "T2", &format!("select pg_terminate_backend({t1_pid})")).await;
    assert_eq!(r.statements[0].rows[0][0].as_deref(), Some("t"));
    let r = run(&c, "T1", "select 1").await;
    assert!(r.connection_lost);
    let e = r.statements[0].error.as_ref().unwrap();
    assert!(e.message.contains("reconnects"), "{e:?}");
    let r = run(&c, "T1", "select 5").await;
    assert_eq!(r.statements[0].rows[0][0].as_deref(), Some("5"));
    let new_pid = c
        .sessions(ME)
        .iter()
        .find(|s| s.name == "T1")
        .unwrap()
        .pid
        .unwrap();
    assert_ne!(new_pid, t1_pid);

    // Closing a session rolls back what it left open.
    run(&c, "T1", "begin; insert into acc values (3, 3)").await;
    c.close(ME, "T1").await.unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = run(&c, "T2", "select count(*) from acc").await;
    assert_eq!(r.statements[0].rows[0][0].as_deref(), Some("2"));
    // Another learner cannot see these runs or sessions.
    assert!(c.run(ME + 1, &b.id).is_none());
    assert!(c.run(ME, &b.id).is_some());
    assert!(c.sessions(ME + 1).is_empty());
}

#[tokio::test]
async fn invalid_utf8_in_a_text_value_is_shown_with_a_warning() {
    let pg = TempPg::start();
    let c = consoles(pg.options());
    // With client_encoding LATIN1 the server sends 'é' as the byte 0xE9,
    // which is not UTF-8: the console shows it replaced, with a warning.
    let r = run(
        &c,
        "T1",
        "set client_encoding = 'LATIN1'; select 'caf' || chr(233), 'fine'",
    )
    .await;
    let s = &r.statements[1];
    assert!(s.error.is_none(), "{:?}", s.error);
    assert_eq!(s.rows[0][0].as_deref(), Some("caf\u{fffd}"));
    assert_eq!(s.rows[0][1].as_deref(), Some("fine"));
    assert!(
        s.notices
            .iter()
            .any(|n| n.message.contains("not valid UTF-8"))
    );
    let r = run(&c, "T1", "reset client_encoding; select 'caf' || chr(233)").await;
    assert_eq!(r.statements[1].rows[0][0].as_deref(), Some("café"));
    assert!(r.statements[1].notices.is_empty());
}

#[tokio::test]
async fn idle_sessions_are_closed_and_rolled_back() {
    let pg = TempPg::start();
    let config = ConsoleConfig {
        session_idle_s: 1,
        ..ConsoleConfig::default()
    };
    let c = Consoles::new(Arc::new(Fixed::new(pg.options())), config);
    run(&c, "T1", "create table k (id int)").await;
    let r = run(&c, "T1", "begin; insert into k values (1)").await;
    assert_eq!(r.transaction, TxState::InTransaction);
    run(&c, "T2", "select 1").await;
    c.sweep().await;
    assert_eq!(c.sessions(ME).len(), 2, "not idle yet");
    tokio::time::sleep(Duration::from_millis(1300)).await;
    assert_eq!(c.sessions(ME).len(), 2); // the page's listing keeps them alive
    c.sweep().await;
    assert_eq!(c.sessions(ME).len(), 2, "kept alive by the listing");
    tokio::time::sleep(Duration::from_millis(1300)).await;
    c.sweep().await;
    assert!(c.sessions(ME).is_empty(), "both idle past the limit");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = run(&c, "T3", "select count(*) from k").await;
    assert_eq!(
        r.statements[0].rows[0][0].as_deref(),
        Some("0"),
        "closing rolled back T1's open transaction"
    );
}

/// The runner keeps a cut result whole (rows past the row cap, values past
/// the value cap) while it fits in the keep budget, and only the cut rows
/// past it; results that were not cut are not kept twice.
#[tokio::test]
async fn cut_results_are_kept_whole_within_the_keep_budget() {
    use pglab::console::run::{Conn, Limits, run_statement};
    let pg = TempPg::start();
    let mut c = Conn::connect(&pg.options()).await.unwrap();
    let limits = Limits {
        row_cap: 3,
        value_cap: 5,
        byte_budget: 1 << 20,
        keep_bytes: 1 << 20,
    };
    let sql = "select g, repeat('ab', g) from generate_series(1, 10) g;";
    let r = run_statement(&mut c, sql, &limits, false).await.result;
    assert_eq!((r.rows.len(), r.total_rows, r.truncated), (3, 10, true));
    assert_eq!(r.rows[2][1].as_deref(), Some("ababa… [1 more bytes]"));
    assert!(r.values_truncated);
    let full = r.full.expect("kept whole");
    assert_eq!(full.rows.len(), 10);
    assert_eq!(full.rows[9][1].as_deref(), Some("ab".repeat(10).as_str()));
    assert_eq!(full.rows[2][1].as_deref(), Some("ababab"));

    // Not cut: nothing kept besides.
    let r = run_statement(&mut c, "select 1, 'abc';", &limits, false)
        .await
        .result;
    assert!(r.full.is_none() && !r.truncated && !r.values_truncated);

    // Past the keep budget: the shown rows are still cut, nothing kept.
    let small = Limits {
        keep_bytes: 200,
        ..limits
    };
    let r = run_statement(&mut c, sql, &small, false).await.result;
    assert!(r.full.is_none());
    assert_eq!(r.rows[2][1].as_deref(), Some("ababa… [1 more bytes]"));
    assert_eq!((r.rows.len(), r.total_rows), (3, 10));
    c.close().await;
}
