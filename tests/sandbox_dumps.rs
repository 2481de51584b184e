//! Backups over HTTP against a real container: make a dump of labdb,
//! download it, restore it into a new database with equal row counts (and
//! the 14.C.4 check passes); bad names, foreign dumps and the caps are
//! refused with clear errors.

#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/term.rs"]
mod term;

use serde_json::{Value, json};

fn data_dir() -> (tempfile::TempDir, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let temp = tempfile::Builder::new()
        .prefix("pglab-dump-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(temp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = temp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    (temp, data)
}

/// Runs SQL in the learner's console session T1 and waits for it.
async fn sql(http: &reqwest::Client, s: &common::TestServer, sql: &str) -> Value {
    let mut v: Value = http
        .post(s.url("/api/sql"))
        .json(&json!({"session": "T1", "sql": sql}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for _ in 0..100 {
        if v["status"] == "done" {
            return v;
        }
        let id = v["run_id"].as_str().unwrap().to_string();
        v = http
            .get(s.url(&format!("/api/runs/{id}?wait_ms=2000")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    }
    panic!("run never finished: {v}");
}

async fn restore(
    http: &reqwest::Client,
    s: &common::TestServer,
    id: &str,
    body: Value,
) -> (u16, Value) {
    let res = http
        .post(s.url(&format!("/api/sandbox/dumps/{id}/restore")))
        .json(&body)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.json().await.unwrap())
}

#[tokio::test]
async fn dump_download_restore_with_equal_counts() {
    if !common::require_docker() {
        return;
    }
    let (_temp, data) = data_dir();
    let (_cleanup, server) = term::docker_server(data.clone(), &["--dump-max-count", "2"]).await;
    let ada = common::signed_in_learner(&server, "ada").await;
    let bob = common::signed_in_learner(&server, "bob").await;
    let setup = sql(
        &ada,
        &server,
        "create table tasks (id int primary key, title text);
         insert into tasks select g, 'task ' || g from generate_series(1, 1234) g;
         create table notes as select g as id from generate_series(1, 77) g;",
    )
    .await;
    assert!(setup["error"].is_null(), "{setup}");

    // Make one: 201 with its id, size and duration.
    let res = ada
        .post(server.url("/api/sandbox/dumps"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let made: Value = res.json().await.unwrap();
    let id = made["id"].as_str().unwrap().to_string();
    let size = made["size_bytes"].as_u64().unwrap();
    assert!(size > 1000, "{made}");
    eprintln!(
        "pg_dump of 1,311 rows: {size} bytes in {} ms",
        made["duration_ms"]
    );
    let list: Value = ada
        .get(server.url("/api/sandbox/dumps"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(list["dumps"][0]["id"], id.as_str(), "{list}");

    // Download: the custom format's magic, the whole file, as an attachment.
    let res = ada
        .get(server.url(&format!("/api/sandbox/dumps/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let disposition = res.headers()["content-disposition"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(disposition.starts_with("attachment"), "{disposition}");
    let body = res.bytes().await.unwrap();
    assert_eq!(body.len() as u64, size);
    assert_eq!(&body[..5], b"PGDMP");

    // Only the owner: bob gets no such dump, for download and restore.
    let res = bob
        .get(server.url(&format!("/api/sandbox/dumps/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let (status, _) = restore(&bob, &server, &id, json!({"database": "stolen"})).await;
    assert_eq!(status, 404);

    // Bad names are refused before anything runs.
    for bad in [
        "labdb",
        "postgres",
        "template1",
        "Bad-Name",
        "x; drop database labdb",
        "",
    ] {
        let (status, answer) = restore(&ada, &server, &id, json!({"database": bad})).await;
        assert_eq!(status, 400, "{bad}: {answer}");
        assert!(
            answer["error"].as_str().unwrap().contains("database name"),
            "{answer}"
        );
    }

    // Restore: every table with labdb's count.
    let (status, answer) = restore(&ada, &server, &id, json!({"database": "labdb_restore"})).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["counts_match_labdb"], true, "{answer}");
    let tasks = answer["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == "public.tasks")
        .unwrap();
    assert_eq!(
        (tasks["rows"].as_i64(), tasks["labdb_rows"].as_i64()),
        (Some(1234), Some(1234))
    );

    // The 14.C.4 check compares the two databases' task counts.
    let check: Value = ada
        .post(server.url("/api/exercises/14.C.4/check"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(check["passed"], true, "{check}");

    // An existing database is kept unless replacing is asked for.
    let (status, answer) = restore(&ada, &server, &id, json!({"database": "labdb_restore"})).await;
    assert_eq!(status, 409, "{answer}");
    sql(&ada, &server, "delete from tasks where id > 1000").await;
    let check: Value = ada
        .post(server.url("/api/exercises/14.C.4/check"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(check["passed"], false, "counts now differ: {check}");
    let (status, answer) = restore(
        &ada,
        &server,
        &id,
        json!({"database": "labdb_restore", "replace": true}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["counts_match_labdb"], false, "{answer}");

    // The count cap (2 here), and delete.
    let res = ada
        .post(server.url("/api/sandbox/dumps"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let res = ada
        .post(server.url("/api/sandbox/dumps"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 409);
    let res = ada
        .delete(server.url(&format!("/api/sandbox/dumps/{id}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 204);
    let res = ada
        .post(server.url("/api/sandbox/dumps"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    // A path in place of an id finds nothing.
    let res = ada
        .get(server.url("/api/sandbox/dumps/..%2F..%2Fpglab.db"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}
