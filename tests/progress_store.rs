#![allow(clippy::unwrap_used)]

//! Progress against the real SQLite store: statements mark exercises in
//! progress, checks pass them for good, the matrix counts them, the hub
//! announces changes, and evidence stays bounded.

use pglab::progress::evidence;
use pglab::progress::matrix::{self, ExerciseColumn, Member};
use pglab::progress::record::{self, StatementRun};
use pglab::progress::{ProgressHub, Status};
use pglab::store::Store;

async fn store_with_users(names: &[&str]) -> (tempfile::TempDir, Store, Vec<Member>) {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(&dir.path().join("pglab.db")).await.unwrap();
    let mut members = Vec::new();
    for name in names {
        let id: i64 = sqlx::query_scalar("insert into users (username) values (?) returning id")
            .bind(name)
            .fetch_one(store.pool())
            .await
            .unwrap();
        members.push(Member {
            user_id: id,
            username: name.to_string(),
        });
    }
    (dir, store, members)
}

fn columns(ids: &[&str]) -> Vec<ExerciseColumn> {
    ids.iter()
        .map(|id| ExerciseColumn {
            id: id.to_string(),
            title: format!("Exercise {id}"),
        })
        .collect()
}

#[tokio::test]
async fn statements_then_checks_move_an_exercise_through_its_states() {
    let (_dir, store, members) = store_with_users(&["ann", "bob"]).await;
    let hub = ProgressHub::default();
    let mut events = hub.subscribe();
    let ann = members[0].user_id;
    let pool = store.pool();

    record::record_statement(
        &store,
        &hub,
        StatementRun {
            user_id: ann,
            exercise: Some("14.B.2"),
            sql: "create table users (id int)",
            error: None,
            at: 100,
        },
    )
    .await
    .unwrap();
    let event = events.try_recv().unwrap();
    assert_eq!((event.user_id, event.status), (ann, Status::InProgress));

    // A second statement on the same exercise announces nothing new.
    record::record_statement(
        &store,
        &hub,
        StatementRun {
            user_id: ann,
            exercise: Some("14.B.2"),
            sql: "select * from nope",
            error: Some(("42P01", "relation \"nope\" does not exist")),
            at: 110,
        },
    )
    .await
    .unwrap();
    assert!(events.try_recv().is_err());

    let status = record::record_check(
        &store,
        &hub,
        ann,
        "14.B.2",
        false,
        "table projects is missing",
        120,
    )
    .await
    .unwrap();
    assert_eq!(status, Status::InProgress);
    let status = record::record_check(&store, &hub, ann, "14.B.2", true, "all checks passed", 130)
        .await
        .unwrap();
    assert_eq!(status, Status::Passed);
    // A later failure keeps the pass but counts the attempt.
    let status = record::record_check(&store, &hub, ann, "14.B.2", false, "table dropped", 140)
        .await
        .unwrap();
    assert_eq!(status, Status::Passed);

    let progress = record::learner_progress(pool, ann).await.unwrap();
    assert_eq!(progress.len(), 1);
    let p = &progress[0];
    assert_eq!(p.status.0, Status::Passed);
    assert_eq!((p.statements, p.attempts), (2, 3));
    assert_eq!(p.first_passed_at, Some(130));
    assert_eq!(p.last_check_message.as_deref(), Some("table dropped"));

    let evidence = evidence::recent_evidence(pool, ann, 10).await.unwrap();
    assert_eq!(evidence.len(), 5);
    assert_eq!(evidence[0].kind, "check");
    assert_eq!(evidence[3].sqlstate.as_deref(), Some("42P01"));

    // Bob's progress is his own.
    assert!(
        record::learner_progress(pool, members[1].user_id)
            .await
            .unwrap()
            .is_empty()
    );
}

#[tokio::test]
async fn the_matrix_counts_passes_and_flags_the_stuck() {
    let (_dir, store, members) = store_with_users(&["ann", "bob", "cy"]).await;
    let hub = ProgressHub::default();
    let pool = store.pool();
    let (ann, bob) = (members[0].user_id, members[1].user_id);
    let now = 10_000;
    for ex in ["14.B.1", "14.B.2"] {
        record::record_check(&store, &hub, ann, ex, true, "ok", now - 50)
            .await
            .unwrap();
    }
    for i in 0..3 {
        record::record_statement(
            &store,
            &hub,
            StatementRun {
                user_id: bob,
                exercise: Some("14.B.1"),
                sql: "selct 1",
                error: Some(("42601", "syntax error at or near \"selct\"")),
                at: now - 30 + i,
            },
        )
        .await
        .unwrap();
    }
    // Progress on an exercise that is not a column is ignored, not an error.
    record::record_check(&store, &hub, members[2].user_id, "99.Z.9", true, "ok", now)
        .await
        .unwrap();

    let cols = columns(&["14.B.1", "14.B.2", "14.B.3"]);
    let m = matrix::build(pool, &members, &cols, now).await.unwrap();
    assert_eq!(m.learners.len(), 3);
    assert_eq!(m.learners[0].username, "ann");
    assert_eq!(
        m.learners[0].cells,
        vec![Status::Passed, Status::Passed, Status::NotStarted]
    );
    assert_eq!(m.learners[0].passed, 2);
    assert_eq!(m.learners[1].cells[0], Status::InProgress);
    assert!(
        m.learners[1]
            .stuck
            .as_deref()
            .unwrap()
            .contains("syntax error")
    );
    assert_eq!(m.learners[0].stuck, None);
    assert_eq!(m.learners[2].passed, 0);
    assert_eq!(m.passed_per_exercise, vec![1, 1, 0]);

    let csv = matrix::to_csv(&m);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(
        lines[0],
        "username,passed,last_activity_at,stuck,14.B.1,14.B.2,14.B.3"
    );
    assert!(lines[1].starts_with("ann,2,"), "{csv}");
    assert!(lines[1].ends_with("passed,passed,not started"), "{csv}");
    assert!(lines[2].contains("in progress"), "{csv}");
}

#[tokio::test]
async fn evidence_stays_bounded_per_learner() {
    let (_dir, store, members) = store_with_users(&["ann"]).await;
    let hub = ProgressHub::default();
    for i in 0..260 {
        record::record_statement(
            &store,
            &hub,
            StatementRun {
                user_id: members[0].user_id,
                exercise: None,
                sql: &format!("select {i}"),
                error: None,
                at: i,
            },
        )
        .await
        .unwrap();
    }
    let kept: i64 = sqlx::query_scalar("select count(*) from learner_evidence")
        .fetch_one(store.pool())
        .await
        .unwrap();
    assert_eq!(kept, 200);
    let newest = evidence::recent_evidence(store.pool(), members[0].user_id, 1)
        .await
        .unwrap();
    assert_eq!(newest[0].sql.as_deref(), Some("select 259"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_error_three_times_flags_the_learner_and_a_success_clears_it() {
    let (_dir, store, members) = store_with_users(&["ann"]).await;
    let hub = ProgressHub::default();
    let ann = members[0].user_id;
    let run = |at: i64, error: Option<(&'static str, &'static str)>| StatementRun {
        user_id: ann,
        exercise: Some("14.B.2"),
        sql: "select * from taks",
        error,
        at,
    };
    let missing = Some(("42P01", "relation \"taks\" does not exist"));
    for at in [100, 110] {
        record::record_statement(&store, &hub, run(at, missing))
            .await
            .unwrap();
    }
    let activity = record::activity(store.pool(), ann).await.unwrap().unwrap();
    assert_eq!(activity.repeated_error, None, "two errors are not three");
    record::record_statement(&store, &hub, run(120, missing))
        .await
        .unwrap();
    let activity = record::activity(store.pool(), ann).await.unwrap().unwrap();
    assert_eq!(
        activity.repeated_error.as_deref(),
        Some("relation \"taks\" does not exist")
    );
    assert_eq!(
        (activity.working_since, activity.last_activity_at),
        (100, 120)
    );
    record::record_statement(&store, &hub, run(130, None))
        .await
        .unwrap();
    let activity = record::activity(store.pool(), ann).await.unwrap().unwrap();
    assert_eq!(activity.repeated_error, None);
    let progress = record::learner_progress(store.pool(), ann).await.unwrap();
    assert_eq!(progress[0].statements, 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_learners_statements_are_all_recorded() {
    let names: Vec<String> = (0..20).map(|i| format!("l{i}")).collect();
    let refs: Vec<&str> = names.iter().map(String::as_str).collect();
    let (_dir, store, members) = store_with_users(&refs).await;
    let hub = ProgressHub::default();
    let mut events = hub.subscribe();
    let mut tasks = Vec::new();
    for m in &members {
        for i in 0..10 {
            let (store, hub, user_id) = (store.clone(), hub.clone(), m.user_id);
            tasks.push(tokio::spawn(async move {
                record::record_statement(
                    &store,
                    &hub,
                    StatementRun {
                        user_id,
                        exercise: Some("14.B.1"),
                        sql: &format!("select {i}"),
                        error: None,
                        at: 1000 + i,
                    },
                )
                .await
                .unwrap();
            }));
        }
    }
    for t in tasks {
        t.await.unwrap();
    }
    for m in &members {
        let progress = record::learner_progress(store.pool(), m.user_id)
            .await
            .unwrap();
        assert_eq!(progress[0].statements, 10, "{}", m.username);
        assert_eq!(
            evidence::recent_evidence(store.pool(), m.user_id, 50)
                .await
                .unwrap()
                .len(),
            10
        );
    }
    // Each learner's exercise started once, however the writes were batched.
    let mut started = 0;
    while events.try_recv().is_ok() {
        started += 1;
    }
    assert_eq!(started, members.len());
}

/// An evidence row without its id and user: exercise, kind, sql, error, time.
type EvidenceRow = (Option<String>, String, Option<String>, Option<String>, i64);

/// What one learner's rows say, ids and user left out, for comparing two
/// learners who did the same.
async fn rows_of(store: &Store, user: i64) -> Vec<String> {
    let evidence: Vec<EvidenceRow> = sqlx::query_as(
        "select exercise_id, kind, sql, error, created_at from learner_evidence
             where user_id = ? order by id",
    )
    .bind(user)
    .fetch_all(store.pool())
    .await
    .unwrap();
    let progress: Vec<(String, String, i64, i64)> = sqlx::query_as(
        "select exercise_id, status, statements, last_activity_at from exercise_progress
         where user_id = ? order by exercise_id",
    )
    .bind(user)
    .fetch_all(store.pool())
    .await
    .unwrap();
    let activity: Vec<(i64, i64, Option<String>)> = sqlx::query_as(
        "select last_activity_at, working_since, repeated_error from learner_activity
         where user_id = ?",
    )
    .bind(user)
    .fetch_all(store.pool())
    .await
    .unwrap();
    vec![
        format!("{evidence:?}"),
        format!("{progress:?}"),
        format!("{activity:?}"),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_written_as_one_script_leaves_what_statement_by_statement_writes_leave() {
    let (_dir, store, members) = store_with_users(&["ann", "bob"]).await;
    let hub = ProgressHub::default();
    let (ann, bob) = (members[0].user_id, members[1].user_id);
    // Runs of 1 to 4 statements, on an exercise or not, with pauses shorter
    // and longer than a stretch of work, after a repeated error.
    let missing = Some(("42P01", "relation \"taks\" does not exist"));
    for at in [10, 20, 30] {
        for user in [ann, bob] {
            let run = StatementRun {
                user_id: user,
                exercise: Some("14.B.2"),
                sql: "select * from taks",
                error: missing,
                at,
            };
            record::record_statement(&store, &hub, run).await.unwrap();
        }
    }
    let runs: [(i64, Option<&str>, &[&str]); 5] = [
        (40, Some("14.B.2"), &["select 1"]),
        (
            50,
            Some("14.C.1"),
            &["create table t (id int)", "insert into t values (1)"],
        ),
        (5000, None, &["select 2", "select 3", "select 4"]),
        (5100, Some("14.B.2"), &["a", "b", "c", "d"]),
        (9000, Some("14.D.1"), &["select 5"]),
    ];
    for (at, exercise, sqls) in runs {
        let statements: Vec<record::Statement> = sqls
            .iter()
            .map(|sql| {
                record::Statement::from(StatementRun {
                    user_id: bob,
                    exercise,
                    sql,
                    error: None,
                    at,
                })
            })
            .collect();
        assert!(record::fits_script(&statements));
        let mut script = pglab::store::writer::Script::default();
        record::add_statements(&mut script, &statements);
        let rows = store.writer().run_script(script).await.unwrap();
        for sql in sqls {
            let run = StatementRun {
                user_id: ann,
                exercise,
                sql,
                error: None,
                at,
            };
            record::record_statement(&store, &hub, run).await.unwrap();
        }
        // With an exercise, the first row says whether it was new.
        if exercise.is_some() {
            let new = rows[0][0] == pglab::store::writer::Value::Integer(1);
            assert_eq!(new, exercise != Some("14.B.2"), "{at}");
        }
    }
    assert_eq!(rows_of(&store, ann).await, rows_of(&store, bob).await);
    let activity = record::activity(store.pool(), bob).await.unwrap().unwrap();
    assert_eq!(
        (activity.working_since, activity.last_activity_at),
        (9000, 9000)
    );
}
