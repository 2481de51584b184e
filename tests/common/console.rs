//! The console as a browser drives it: one helper for tests that run a
//! script and read the answer.

#![allow(dead_code, clippy::unwrap_used)]

use serde_json::{Value, json};

use super::TestServer;

/// Runs `script` in console session T1 and returns the finished answer
/// (polling a run that takes longer than the request waits). A run whose
/// session lost its connection (the sandbox was killed or restarted) is sent
/// once more, as a learner would press Run again.
pub async fn run_t1(http: &reqwest::Client, server: &TestServer, script: &str) -> Value {
    for _ in 0..2 {
        let res = http
            .post(server.url("/api/sql"))
            .json(&json!({"session": "T1", "sql": script, "timeout_s": 120}))
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
        assert_eq!(answer["status"], "done", "{answer}");
        if answer["connection_lost"] != true {
            return answer;
        }
    }
    panic!("{script}: the console did not reconnect");
}

/// The first statement error of a console answer, if any.
pub fn first_error(answer: &Value) -> Option<String> {
    answer["statements"]
        .as_array()
        .unwrap()
        .iter()
        .find_map(|s| s["error"]["message"].as_str().map(String::from))
}
