//! Progress over real HTTP with a real sandbox (local backend): "Check my
//! work" fails with a useful message before the work and is recorded; the
//! instructor's matrix, CSV and live events reflect it; learners are refused
//! every instructor route.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::{TestServer, signed_in_instructor};
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
