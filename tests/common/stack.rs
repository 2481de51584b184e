//! A learner's path through a deployed pglab (the compose stack, the swarm
//! stack), as a script would take it: bearer tokens, no cookies (a cookie
//! session would need the CSRF token on every write).

use serde_json::{Value, json};

/// `POST /api/login`: the bearer token.
pub async fn login(http: &reqwest::Client, base: &str, name: &str, password: &str) -> String {
    let v: Value = http
        .post(format!("{base}/api/login"))
        .json(&json!({"username": name, "password": password}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["token"]
        .as_str()
        .unwrap_or_else(|| panic!("no token for {name}: {v}"))
        .to_string()
}

/// Runs `sql` in console session T1 and waits for its end (a first
/// statement starts the learner's sandbox, which may take a while).
pub async fn run_sql(http: &reqwest::Client, base: &str, token: &str, sql: &str) -> Value {
    let mut v: Value = http
        .post(format!("{base}/api/sql"))
        .bearer_auth(token)
        .json(&json!({"session": "T1", "sql": sql}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    for _ in 0..120 {
        if v["status"] != "running" {
            return v;
        }
        let id = v["run_id"].as_str().unwrap().to_string();
        v = http
            .get(format!("{base}/api/runs/{id}?wait_ms=2000"))
            .bearer_auth(token)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    }
    panic!("the run never finished: {v}");
}

/// The instructor `teacher` (already made with `pglab user add`) opens a
/// classroom, `learner` signs up with its join code; the learner's token.
pub async fn enrol(
    http: &reqwest::Client,
    base: &str,
    teacher: (&str, &str),
    learner: (&str, &str),
) -> String {
    let teacher = login(http, base, teacher.0, teacher.1).await;
    let room: Value = http
        .post(format!("{base}/api/instructor/classrooms"))
        .bearer_auth(&teacher)
        .json(&json!({"name": "Stack class"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let code = room["join_code"].as_str().expect("join code");
    let signup = http
        .post(format!("{base}/api/signup"))
        .json(&json!({"username": learner.0, "password": learner.1, "join_code": code}))
        .send()
        .await
        .unwrap();
    assert_eq!(signup.status(), 201, "{:?}", signup.text().await);
    login(http, base, learner.0, learner.1).await
}
