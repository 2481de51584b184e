//! Progress over real HTTP with a real sandbox (local backend): "Check my
//! work" fails with a useful message before the work and is recorded; the
//! instructor's matrix, CSV and live events reflect it; learners are refused
//! every instructor route; a `learner_result` check passes once the learner
//! ran the right query through `POST /api/sql`.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{ServerOptions, TestServer, signed_in_instructor, signed_in_learner};
use serde_json::{Value, json};

/// An instructor, a classroom, and a learner who joined it (signed in).
async fn classroom(server: &TestServer) -> (reqwest::Client, i64, reqwest::Client) {
    let teacher = signed_in_instructor(server, "teach").await;
    let room: Value = teacher
        .post(server.url("/api/instructor/classrooms"))
        .json(&json!({"name": "Tuesday"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = room["id"].as_i64().unwrap();
    let code = room["join_code"].as_str().unwrap();
    // A script without a cookie store, like curl: no CSRF token needed.
    let script = reqwest::Client::new();
    let res = script
        .post(server.url("/api/signup"))
        .json(&json!({"username": "lena", "password": "lena-password", "join_code": code}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201);
    let res = script
        .post(server.url("/api/login"))
        .json(&json!({"username": "lena", "password": "lena-password"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let token = res.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    // Scripts use the bearer token (no CSRF token needed).
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("authorization", format!("Bearer {token}").parse().unwrap());
    let learner = reqwest::Client::builder()
        .default_headers(headers)
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();
    (teacher, id, learner)
}

#[tokio::test]
async fn a_failed_check_is_recorded_and_seen_live_by_the_instructor() {
    let server = TestServer::start();
    let (teacher, room, learner) = classroom(&server).await;

    // The instructor's live stream is open before the learner acts.
    let mut events = teacher
        .get(server.url(&format!("/api/instructor/classrooms/{room}/events")))
        .send()
        .await
        .unwrap();
    assert_eq!(events.status(), 200);

    let res = learner
        .post(server.url("/api/exercises/14.B.2/check"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let answer: Value = res.json().await.unwrap();
    assert_eq!(answer["passed"], false, "{answer}");
    let message = answer["message"].as_str().unwrap();
    assert!(!message.is_empty() && message.len() < 400, "{message}");
    assert_eq!(answer["status"], "in_progress");

    // The event reaches the instructor within a second.
    let chunk = tokio::time::timeout(Duration::from_secs(1), async {
        loop {
            let bytes = events.chunk().await.unwrap().unwrap();
            let text = String::from_utf8_lossy(&bytes).to_string();
            if text.contains("event: progress") {
                return text;
            }
        }
    })
    .await
    .expect("progress event within a second");
    assert!(
        chunk.contains("14.B.2") && chunk.contains("in_progress"),
        "{chunk}"
    );

    let progress: Value = learner
        .get(server.url("/api/progress"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let b2 = progress["exercises"]
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["id"] == "14.B.2")
        .unwrap();
    assert_eq!(b2["status"], "in_progress");
    assert_eq!(b2["attempts"], 1);
    assert!(progress["total"].as_u64().unwrap() >= 11, "{progress}");

    let matrix: Value = teacher
        .get(server.url(&format!("/api/instructor/classrooms/{room}/progress")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let learners = matrix["learners"].as_array().unwrap();
    assert_eq!(learners.len(), 1);
    assert_eq!(learners[0]["username"], "lena");
    let col = matrix["exercises"]
        .as_array()
        .unwrap()
        .iter()
        .position(|e| e["id"] == "14.B.2")
        .unwrap();
    assert_eq!(learners[0]["cells"][col], "in_progress");

    let csv = teacher
        .get(server.url(&format!("/api/instructor/classrooms/{room}/progress.csv")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(csv.starts_with("username,passed"), "{csv}");
    assert!(csv.lines().nth(1).unwrap().starts_with("lena,0,"), "{csv}");

    let page = teacher
        .get(server.url(&format!("/instructor/classrooms/{room}/progress")))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    assert!(html.contains("data-matrix") && html.contains("lena"));

    // Unknown exercises are a clear 404.
    let res = learner
        .post(server.url("/api/exercises/99.Z.1/check"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn learners_are_refused_instructor_progress_routes() {
    let server = TestServer::start();
    let (_teacher, room, learner) = classroom(&server).await;
    let me: Value = learner
        .get(server.url("/api/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let my_id = me["id"]
        .as_i64()
        .or_else(|| me["user"]["id"].as_i64())
        .unwrap();
    for path in [
        format!("/api/instructor/classrooms/{room}/progress"),
        format!("/api/instructor/classrooms/{room}/progress.csv"),
        format!("/api/instructor/classrooms/{room}/events"),
        format!("/api/instructor/learners/{my_id}"),
        format!("/instructor/classrooms/{room}/progress"),
        format!("/instructor/learners/{my_id}"),
    ] {
        let res = learner.get(server.url(&path)).send().await.unwrap();
        assert_eq!(res.status(), 403, "{path}");
        let body = res.text().await.unwrap();
        assert!(
            !body.contains("lena-password") && !body.contains("\"cells\""),
            "{path}: {body}"
        );
    }
    let res = learner
        .post(server.url(&format!("/api/instructor/learners/{my_id}/sandbox/reset")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    // Nobody signed in: 401 for the API.
    let res = common::client()
        .get(server.url("/api/progress"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

/// Runs `script` in session T1 on `exercise`'s page, as the lesson's console
/// does, and waits for the answer.
async fn run_on(
    http: &reqwest::Client,
    server: &TestServer,
    exercise: &str,
    script: &str,
) -> Value {
    let res = http
        .post(server.url("/api/sql"))
        .json(&json!({"session": "T1", "sql": script, "exercise": exercise, "timeout_s": 120}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{script}");
    let mut answer: Value = res.json().await.unwrap();
    while answer["status"] == "running" {
        let id = answer["run_id"].as_str().unwrap().to_string();
        answer = http
            .get(server.url(&format!("/api/runs/{id}?wait_ms=5000")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    }
    assert!(common::console::first_error(&answer).is_none(), "{answer}");
    answer
}

async fn check(http: &reqwest::Client, server: &TestServer, exercise: &str) -> Value {
    let res = http
        .post(server.url(&format!("/api/exercises/{exercise}/check")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// "Check my work" until `done` holds (at most 2 s): the console records a
/// run's evidence just after it answers; a learner's click comes later than
/// that, a test's request may not.
async fn check_until(
    http: &reqwest::Client,
    server: &TestServer,
    exercise: &str,
    done: impl Fn(&Value) -> bool,
) -> Value {
    let mut answer = Value::Null;
    for _ in 0..20 {
        answer = check(http, server, exercise).await;
        if done(&answer) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    answer
}

#[tokio::test]
async fn check_my_work_passes_once_the_learner_ran_the_right_query() {
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/checks_course");
    let server = TestServer::start_with(ServerOptions {
        content_dir: fixture.clone(),
        ..ServerOptions::default()
    });
    let learner = signed_in_learner(&server, "maya").await;
    let scripts = fixture.join("practice/curriculum/90-fixture-lab/scripts");
    for name in ["schema.sql", "seed.sql"] {
        let text = std::fs::read_to_string(scripts.join(name)).unwrap();
        run_on(&learner, &server, "90.B.1", &text).await;
    }

    let answer = check(&learner, &server, "90.B.1").await;
    assert_eq!(answer["passed"], false, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .ends_with("you have not run a query for this yet"),
        "{answer}"
    );

    run_on(
        &learner,
        &server,
        "90.B.1",
        "SELECT t.title FROM tasks t WHERE t.status = 'open';",
    )
    .await;
    let answer = check_until(&learner, &server, "90.B.1", |a| {
        !a["message"]
            .as_str()
            .unwrap()
            .ends_with("not run a query for this yet")
    })
    .await;
    assert_eq!(answer["passed"], false, "{answer}");
    assert!(
        answer["message"]
            .as_str()
            .unwrap()
            .contains("your closest query `SELECT t.title FROM tasks t WHERE t.status = 'open'` returns 4 rows of 1 columns (expected 2), 0 of the 4 expected"),
        "{answer}"
    );

    // The learner's own way of writing it, then an unrelated write after it.
    run_on(
        &learner,
        &server,
        "90.B.1",
        "SELECT t.title, p.name AS project FROM tasks t JOIN projects p ON t.project_id = p.id WHERE t.status = 'open' ORDER BY t.title;\nUPDATE tasks SET note = note WHERE id = 1;",
    )
    .await;
    let answer = check_until(&learner, &server, "90.B.1", |a| a["passed"] == true).await;
    assert_eq!(answer["passed"], true, "{answer}");
    assert_eq!(answer["status"], "passed");
    assert_eq!(answer["message"], "All 1 checks pass.");
}
