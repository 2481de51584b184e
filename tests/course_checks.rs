//! `course::checks` against a real PostgreSQL, on the fixture curriculum
//! (`tests/fixtures/checks_course`, section 90): checks fail with the
//! learner's message before the work and pass after it, and leave no trace;
//! `learner_result` checks judge the learner's own recent queries (order
//! counts only when asked, the hint names the closest query); a `before`
//! that breaks (a trigger that makes UPDATE fail) fails its check with the
//! server's error; a missing object is named, never a crash.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::pg::TempPg;
use pglab::course::checks::{
    CheckContext, CheckOutcome, ChecksFile, ExerciseChecks, run_checks, run_exercise_checks,
};
use sqlx::{Connection, PgConnection};

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/checks_course")
}

fn fixture_checks() -> ChecksFile {
    ChecksFile::load(&fixture().join("90-fixture-lab.checks.toml"))
        .unwrap()
        .unwrap()
}

/// The fixture's lab scripts (no transaction control, no CONCURRENTLY: one
/// multi-statement call is what psql would do here).
async fn load_lab(conn: &mut PgConnection) {
    for name in ["schema.sql", "seed.sql"] {
        let path = fixture()
            .join("practice/curriculum/90-fixture-lab/scripts")
            .join(name);
        let text = std::fs::read_to_string(path).unwrap();
        sqlx::raw_sql(&text).execute(&mut *conn).await.unwrap();
    }
}

async fn with_evidence(
    conn: &mut PgConnection,
    exercise: &ExerciseChecks,
    recent: &[&str],
) -> CheckOutcome {
    let recent: Vec<String> = recent.iter().map(|s| s.to_string()).collect();
    let ctx = CheckContext {
        sandbox: None,
        options: None,
        recent_statements: &recent,
    };
    run_checks(conn, exercise, &ctx).await
}

#[tokio::test]
async fn learner_result_passes_on_the_learners_own_query_and_names_the_closest_one() {
    let pg = TempPg::start();
    let mut conn = PgConnection::connect_with(&pg.options()).await.unwrap();
    load_lab(&mut conn).await;
    let checks = fixture_checks();
    let b1 = checks.exercise("90.B.1").unwrap();

    // Nothing run yet.
    let none = with_evidence(&mut conn, b1, &[]).await;
    assert!(!none.passed);
    assert_eq!(
        none.message,
        "None of your recent queries returns the open tasks with their project's name: you have not run a query for this yet"
    );
    // Only writes and EXPLAINs: nothing to compare either.
    let writes = with_evidence(
        &mut conn,
        b1,
        &[
            "update tasks set note = note where id = 1",
            "explain select title from tasks",
        ],
    )
    .await;
    assert!(
        writes
            .message
            .ends_with("you have not run a query for this yet")
    );

    // Wrong queries: one misses the project's name, one takes every status.
    let wrong = with_evidence(
        &mut conn,
        b1,
        &[
            "select title from tasks where status = 'open'",
            "select t.title, p.name from tasks t join projects p on p.id = t.project_id where t.status <> 'closed'",
            "select * from no_such_table",
        ],
    )
    .await;
    assert!(!wrong.passed);
    // The closest: right columns, all 4 expected rows among its 5 (cut at 80
    // characters for the learner).
    assert!(
        wrong.message.starts_with(
            "None of your recent queries returns the open tasks with their project's name: your closest query `select t.title, p.name from tasks t join projects p on p.id = t.project_id where…`"
        ) && wrong.message.ends_with("returns 5 rows, 4 of the 4 expected"),
        "{}",
        wrong.message
    );

    // The learner's own way: other aliases and column names, another join
    // order, an ORDER BY the item did not ask for; newer wrong queries and an
    // erroring one do not hide it.
    let right = with_evidence(
        &mut conn,
        b1,
        &[
            "select title from tasks",
            "select * from no_such_table",
            "SELECT tasks.title AS what, projects.name AS project_name FROM projects JOIN tasks ON tasks.project_id = projects.id WHERE tasks.status = 'open' ORDER BY 1 DESC",
            "select 1",
        ],
    )
    .await;
    assert!(right.passed, "{right:?}");
    assert_eq!(right.message, "All 1 checks pass.");

    // The replayed queries ran in the rolled-back check transaction.
    let tasks: i64 = sqlx::query_scalar("select count(*) from tasks where status = 'open'")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(tasks, 4);
}

#[tokio::test]
async fn ordered_checks_want_the_order_the_item_asks_for() {
    let pg = TempPg::start();
    let mut conn = PgConnection::connect_with(&pg.options()).await.unwrap();
    load_lab(&mut conn).await;
    let checks = fixture_checks();
    let b2 = checks.exercise("90.B.2").unwrap();

    let unordered = "select title, priority from tasks where status = 'open' and priority >= 4";
    let wrong_order =
        "select title, priority from tasks where status = 'open' and priority >= 4 order by title";
    let outcome = with_evidence(&mut conn, b2, &[wrong_order, unordered]).await;
    assert!(!outcome.passed);
    assert!(
        outcome
            .message
            .contains("returns the right rows, but not in the order asked for"),
        "{}",
        outcome.message
    );
    let right = "SELECT title, priority FROM tasks WHERE priority >= 4 AND status = 'open' ORDER BY priority DESC, title ASC";
    assert!(
        with_evidence(&mut conn, b2, &[wrong_order, right])
            .await
            .passed
    );

    // Without `ordered`, the same rows in any order pass (90.B.1 above); a
    // NULL is not an empty string: tasks 3 and 1 differ only there.
    let file = ChecksFile::parse(
        r#"
[[exercise]]
id = "1.A.1"
[[exercise.check]]
name = "notes"
kind = "learner_result"
sql = "select id, note from tasks where id in (1, 2, 3)"
message = "m"
"#,
    )
    .unwrap();
    let ex = &file.exercises[0];
    let coalesced = "select id, coalesce(note, '') from tasks where id in (1, 2, 3)";
    assert!(!with_evidence(&mut conn, ex, &[coalesced]).await.passed);
    let reversed = "select id, note from tasks where id <= 3 order by id desc";
    assert!(with_evidence(&mut conn, ex, &[reversed]).await.passed);
}

#[tokio::test]
async fn a_learner_query_that_runs_too_long_is_no_match_and_does_not_hold_the_check() {
    let pg = TempPg::start();
    let mut conn = PgConnection::connect_with(&pg.options()).await.unwrap();
    load_lab(&mut conn).await;
    let checks = fixture_checks();
    let b1 = checks.exercise("90.B.1").unwrap();
    let started = Instant::now();
    let outcome = with_evidence(
        &mut conn,
        b1,
        &[
            "select t.title, p.name from tasks t join projects p on p.id = t.project_id where t.status = 'open' and pg_sleep(30) is not null",
        ],
    )
    .await;
    assert!(!outcome.passed);
    assert!(
        outcome
            .message
            .ends_with("none of your 1 recent query runs without an error now"),
        "{}",
        outcome.message
    );
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );
    // The connection is usable afterwards, outside any transaction.
    let one: i32 = sqlx::query_scalar("select 1")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(one, 1);
}

#[tokio::test]
async fn checks_fail_before_the_work_then_pass_and_leave_no_trace() {
    let pg = TempPg::start();
    let mut conn = PgConnection::connect_with(&pg.options()).await.unwrap();
    let checks = fixture_checks();
    let audit = checks.exercise("90.B.3").unwrap();

    // No tasks table yet: the missing object is named.
    let before = run_exercise_checks(&mut conn, audit).await;
    assert!(!before.passed);
    assert_eq!(
        before.message,
        "An UPDATE on tasks must write an audit row: relation \"tasks\" does not exist"
    );

    load_lab(&mut conn).await;
    let no_trigger = run_exercise_checks(&mut conn, audit).await;
    assert!(!no_trigger.passed);
    assert_eq!(
        no_trigger.message,
        "An UPDATE on tasks must write an audit row"
    );

    sqlx::raw_sql(audit.solution[0].sql.as_deref().unwrap())
        .execute(&mut conn)
        .await
        .unwrap();
    let outcome = run_exercise_checks(&mut conn, audit).await;
    assert!(outcome.passed, "{outcome:?}");
    let rows: i64 = sqlx::query_scalar("select count(*) from audit_logs")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        rows, 0,
        "the check's UPDATE and its audit row were rolled back"
    );
}

#[tokio::test]
async fn a_trigger_that_breaks_updates_fails_its_check_with_the_servers_error() {
    let pg = TempPg::start();
    let mut conn = PgConnection::connect_with(&pg.options()).await.unwrap();
    load_lab(&mut conn).await;
    // A trigger that installs fine but names a column audit_logs lacks.
    sqlx::raw_sql(
        "create function log_task_changes() returns trigger language plpgsql as $$
         begin
           insert into audit_logs (entity_kind, entity_id, action) values ('task', new.id, tg_op);
           return new;
         end $$;
         create trigger tasks_audit after update on tasks for each row execute function log_task_changes();",
    )
    .execute(&mut conn)
    .await
    .unwrap();
    let checks = fixture_checks();
    let outcome = run_exercise_checks(&mut conn, checks.exercise("90.B.3").unwrap()).await;
    assert!(!outcome.passed);
    assert_eq!(
        outcome.message,
        "An UPDATE on tasks must write an audit row: column \"entity_kind\" of relation \"audit_logs\" does not exist"
    );
    let error = outcome.details[0].error.as_deref().unwrap();
    assert!(
        error.starts_with("before: `update tasks set title = title where id = 1` failed: column"),
        "{error}"
    );

    // A check whose own query would pass does not pass when its `before`
    // fails: the behaviour is what it verifies.
    let file = ChecksFile::parse(
        r#"
[[exercise]]
id = "1.A.1"
[[exercise.check]]
name = "a trigger audits tasks"
before = "select 1; update tasks set title = title where id = 1; select 2"
sql = "select exists (select 1 from pg_trigger where tgrelid = 'tasks'::regclass and not tgisinternal)"
message = "your trigger makes UPDATE on tasks fail"
"#,
    )
    .unwrap();
    let outcome = run_exercise_checks(&mut conn, &file.exercises[0]).await;
    assert!(!outcome.passed);
    assert_eq!(
        outcome.message,
        "your trigger makes UPDATE on tasks fail: column \"entity_kind\" of relation \"audit_logs\" does not exist"
    );
}

#[tokio::test]
async fn a_check_naming_a_missing_object_says_what_is_missing() {
    let pg = TempPg::start();
    let mut conn = PgConnection::connect_with(&pg.options()).await.unwrap();
    load_lab(&mut conn).await;
    let file = ChecksFile::parse(
        r#"
[[exercise]]
id = "1.A.1"
[[exercise.check]]
name = "view"
sql = "select count(*) > 0 from busy_users"
message = "Create the busy_users view."
[[exercise.check]]
name = "plan"
sql = "select * from nowhere where id = 1"
plan_has_no_seq_scan_on = "nowhere"
message = "Index nowhere."
[[exercise.check]]
name = "function"
sql = "select reassign_tasks(1, 2) is not null"
message = "Write reassign_tasks."
[[exercise.check]]
name = "reference"
kind = "learner_result"
sql = "select * from missing_reference"
message = "Run the query."
[[exercise.check]]
name = "column"
sql = "select bool_and(estimate_hours > 0) from tasks"
message = "Add estimate_hours."
"#,
    )
    .unwrap();
    let outcome = with_evidence(&mut conn, &file.exercises[0], &["select 1"]).await;
    assert!(!outcome.passed);
    let messages: Vec<&str> = outcome.details.iter().map(|d| d.message.as_str()).collect();
    assert_eq!(
        messages,
        [
            "Create the busy_users view: relation \"busy_users\" does not exist",
            "Index nowhere: relation \"nowhere\" does not exist",
            "Write reassign_tasks: function reassign_tasks(integer, integer) does not exist",
            "Run the query: relation \"missing_reference\" does not exist",
            "Add estimate_hours: column \"estimate_hours\" does not exist",
        ]
    );
    assert!(
        outcome.details[3]
            .error
            .as_deref()
            .unwrap()
            .starts_with("the reference query fails:")
    );
    assert_eq!(outcome.message, messages[0]);
}

#[tokio::test]
async fn a_broken_check_is_a_failure_not_a_crash() {
    let pg = TempPg::start();
    let mut conn = PgConnection::connect_with(&pg.options()).await.unwrap();
    let file = ChecksFile::parse(
        r#"
[[exercise]]
id = "1.A.1"
[[exercise.check]]
name = "syntax error"
sql = "selec 1"
message = "m1"
[[exercise.check]]
name = "two rows"
sql = "select true union all select true"
message = "m2"
[[exercise.check]]
name = "rows"
sql = "select 1 from generate_series(1, 3)"
expect_rows = 3
message = "m3"
[[exercise.check]]
name = "other db without options"
database = "postgres"
sql = "select true"
message = "m4"
"#,
    )
    .unwrap();
    let outcome = run_exercise_checks(&mut conn, &file.exercises[0]).await;
    let passed: Vec<bool> = outcome.details.iter().map(|d| d.passed).collect();
    assert_eq!(passed, [false, false, true, false]);
    assert!(
        outcome.details[0]
            .error
            .as_deref()
            .unwrap()
            .contains("syntax error")
    );
    assert_eq!(outcome.message, "m1");
    // The connection is still usable.
    let one: i32 = sqlx::query_scalar("select 1")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(one, 1);
}
