//! 14.C.4 as a learner does it, over HTTP against a real local sandbox: the
//! section's own lab scripts (schema.sql, seed.sql) run in the console, a
//! real dump of labdb (`POST /api/sandbox/dumps`, pg_dump) restored into
//! `labdb_restore` (`POST /api/sandbox/dumps/{id}/restore`, pg_restore), then
//! `\c labdb_restore` in the console finds the same rows, and every answer's
//! `database` (and `GET /api/sessions`) follows the switch and back.

#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/sandbox.rs"]
mod support;

use common::console::{first_error, run_t1};
use common::{ServerOptions, TestServer};
use serde_json::{Value, json};

fn lab_script(name: &str) -> String {
    let path = common::repo_content_dir()
        .join("practice/curriculum/14-postgresql-production-labs/scripts")
        .join(name);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn scalar(answer: &Value, statement: usize) -> String {
    answer["statements"][statement]["rows"][0][0]
        .as_str()
        .unwrap_or_else(|| panic!("no value in statement {statement}: {answer}"))
        .to_string()
}

#[tokio::test]
async fn connect_to_the_restored_database_after_a_real_restore() {
    let (_temp, data) = support::data_dir();
    let _clusters = support::LocalClusters(data.clone());
    let server = TestServer::start_with(ServerOptions {
        data_dir: Some(data),
        ..ServerOptions::default()
    });
    let http = common::signed_in_learner(&server, "restorer").await;

    // The section's lab scripts, as the lesson has the learner run them.
    for script in ["schema.sql", "seed.sql"] {
        let answer = run_t1(&http, &server, &lab_script(script)).await;
        assert_eq!(first_error(&answer), None, "{script}: {answer}");
        assert_eq!(answer["database"], "labdb", "{answer}");
    }
    let counts = "select count(*) from tasks;\nselect count(*) from audit_logs;\nselect count(*) from users;";
    let before = run_t1(&http, &server, counts).await;
    let expected: Vec<String> = (0..3).map(|i| scalar(&before, i)).collect();
    assert_ne!(expected[0], "0", "seed.sql makes tasks: {before}");

    // The Backup… button: a real pg_dump, then pg_restore into labdb_restore.
    let res = http
        .post(server.url("/api/sandbox/dumps"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let made: Value = res.json().await.unwrap();
    let id = made["id"].as_str().unwrap().to_string();
    let res = http
        .post(server.url(&format!("/api/sandbox/dumps/{id}/restore")))
        .json(&json!({"database": "labdb_restore"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let restored: Value = res.json().await.unwrap();
    assert_eq!(restored["counts_match_labdb"], true, "{restored}");

    // The lesson's block: \c labdb_restore, then the counts.
    let answer = run_t1(
        &http,
        &server,
        &format!("\\c labdb_restore\n{counts}\nselect current_database();"),
    )
    .await;
    assert_eq!(first_error(&answer), None, "{answer}");
    assert_eq!(
        answer["statements"][0]["text"],
        "You are now connected to database \"labdb_restore\" as user \"labuser\".",
        "{answer}"
    );
    let got: Vec<String> = (1..4).map(|i| scalar(&answer, i)).collect();
    assert_eq!(got, expected, "the copy has labdb's rows");
    assert_eq!(scalar(&answer, 4), "labdb_restore");
    assert_eq!(answer["database"], "labdb_restore");
    let sessions: Value = http
        .get(server.url("/api/sessions"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        sessions["sessions"][0]["database"], "labdb_restore",
        "{sessions}"
    );

    // The next run stays there; `\c labdb` goes back for the rest of the section.
    let answer = run_t1(&http, &server, "select current_database();").await;
    assert_eq!(scalar(&answer, 0), "labdb_restore");
    let answer = run_t1(&http, &server, "\\c labdb\nselect count(*) from tasks;").await;
    assert_eq!(first_error(&answer), None, "{answer}");
    assert_eq!(answer["database"], "labdb");
    assert_eq!(scalar(&answer, 1), expected[0]);
}
