//! `course::checks::run_exercise_checks` against a real PostgreSQL: each
//! exercise fails with the learner's message before its reference solution
//! and passes after it; checks leave no trace in the learner's database.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;

use common::pg::TempPg;
use pglab::course::checks::{ChecksFile, run_exercise_checks};
use sqlx::{Connection, PgConnection};

fn section_checks() -> ChecksFile {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("content/14-postgresql-production-labs.checks.toml");
    ChecksFile::load(&path).unwrap().unwrap()
}

async fn run_file(conn: &mut PgConnection, rel: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("content")
        .join(rel);
    let text = std::fs::read_to_string(path).unwrap();
    // These scripts have no CONCURRENTLY or transaction control, so one
    // multi-statement call is equivalent to psql here.
    sqlx::raw_sql(&text).execute(&mut *conn).await.unwrap();
}

#[tokio::test]
async fn checks_fail_with_a_message_then_pass_after_the_solution() {
    let pg = TempPg::start();
    let mut conn = PgConnection::connect_with(&pg.options()).await.unwrap();
    let checks = section_checks();

    let schema = checks.exercise("14.B.2").unwrap();
    let before = run_exercise_checks(&mut conn, schema).await;
    assert!(!before.passed);
    assert_eq!(before.details.len(), 8);
    assert!(before.details.iter().all(|d| !d.passed));
    assert!(
        before.message.contains("run schema.sql"),
        "{}",
        before.message
    );

    run_file(
        &mut conn,
        "practice/curriculum/14-postgresql-production-labs/scripts/schema.sql",
    )
    .await;
    let half = run_exercise_checks(&mut conn, schema).await;
    assert!(!half.passed);
    let failing: Vec<_> = half
        .details
        .iter()
        .filter(|d| !d.passed)
        .map(|d| d.name.as_str())
        .collect();
    assert_eq!(failing, ["the seed data is loaded"]);
    assert!(half.message.contains("run seed.sql"));

    run_file(
        &mut conn,
        "practice/curriculum/14-postgresql-production-labs/scripts/seed.sql",
    )
    .await;
    let after = run_exercise_checks(&mut conn, schema).await;
    assert!(after.passed, "{after:?}");
    assert_eq!(after.message, "All 8 checks pass.");

    // The audit trigger: its behavioural check updates a task inside the
    // rolled-back check transaction, so nothing stays behind.
    let audit = checks.exercise("14.C.3").unwrap();
    assert!(!run_exercise_checks(&mut conn, audit).await.passed);
    let solution = audit.solution[0].sql.as_deref().unwrap();
    sqlx::raw_sql(solution).execute(&mut conn).await.unwrap();
    let rows_before: i64 = sqlx::query_scalar("select count(*) from audit_logs")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    let outcome = run_exercise_checks(&mut conn, audit).await;
    assert!(outcome.passed, "{outcome:?}");
    let rows_after: i64 = sqlx::query_scalar("select count(*) from audit_logs")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(rows_before, rows_after, "checks must not leave rows behind");

    // A plan check: the seed is tiny, so the query scans tasks.
    let index = checks.exercise("14.C.1").unwrap();
    let outcome = run_exercise_checks(&mut conn, index).await;
    let plan = outcome
        .details
        .iter()
        .find(|d| d.name.contains("sequentially"))
        .unwrap();
    assert!(!plan.passed);
    assert!(plan.message.contains("Seq Scan"));
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
