//! EXPLAIN in the console end to end: psql's text output and the HTML plan
//! view come from one run (EXPLAIN ANALYZE of an INSERT inserts once), an
//! error's caret points into the learner's own text, and the plan is kept
//! for compare.

#![allow(clippy::unwrap_used)]

mod common;

use common::{TestServer, signed_in_learner};
use serde_json::{Value, json};

async fn sql(http: &reqwest::Client, server: &TestServer, sql: &str) -> Value {
    let mut res: Value = http
        .post(server.url("/api/sql"))
        .json(&json!({"session": "T1", "sql": sql}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    while res["status"] == "running" {
        let id = res["run_id"].as_str().unwrap().to_string();
        res = http
            .get(server.url(&format!("/api/runs/{id}?wait_ms=2000")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    }
    res
}

#[tokio::test]
async fn explain_runs_once_and_shows_text_and_plan_view() {
    let server = TestServer::start_with(common::ServerOptions {
        extra_args: vec!["--metrics-secret".into(), "plan-metrics".into()],
        ..Default::default()
    });
    let http = signed_in_learner(&server, "planner").await;
    let setup = sql(
        &http,
        &server,
        "create table t (id int primary key, v text); insert into t select g, 'x' || g from generate_series(1, 5000) g; analyze t;",
    )
    .await;
    assert!(
        setup["statements"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["error"].is_null()),
        "{setup}"
    );

    let res = sql(&http, &server, "explain select * from t where v = 'x42'").await;
    let st = &res["statements"][0];
    assert!(st["error"].is_null(), "{st}");
    assert_eq!(st["command_tag"], "EXPLAIN");
    assert_eq!(st["columns"][0]["name"], "QUERY PLAN");
    let first = st["rows"][0][0].as_str().unwrap();
    assert!(first.starts_with("Seq Scan on t  (cost="), "{first}");
    assert!(
        st["rows"][1][0]
            .as_str()
            .unwrap()
            .contains("Filter: (v = 'x42'::text)"),
        "{st}"
    );
    let html = st["plan_html"].as_str().expect("plan view");
    assert!(html.contains("Seq Scan") && html.contains("t"), "{html}");

    // ANALYZE executes the statement: exactly once.
    let res = sql(
        &http,
        &server,
        "explain analyze insert into t values (100001, 'once')",
    )
    .await;
    let st = &res["statements"][0];
    assert!(st["error"].is_null(), "{st}");
    assert!(
        st["rows"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r[0].as_str().unwrap().starts_with("Execution Time:")),
        "{st}"
    );
    assert!(st["plan_html"].is_string());
    let count = sql(&http, &server, "select count(*) from t where id = 100001").await;
    assert_eq!(count["statements"][0]["rows"][0][0], "1", "inserted once");

    // An error's position is in the learner's text.
    let res = sql(&http, &server, "explain select nope from t").await;
    let error = &res["statements"][0]["error"];
    assert_eq!(error["sqlstate"], "42703", "{res}");
    let pos = error["position"].as_u64().unwrap() as usize;
    assert_eq!(&"explain select nope from t"[pos - 1..pos + 3], "nope");

    // Plans are kept for compare (written off the answer's path).
    let mut plans = Value::Null;
    for _ in 0..50 {
        plans = http
            .get(server.url("/api/plans"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        if plans.as_array().map_or(0, Vec::len) >= 2 {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(plans.as_array().unwrap().len() >= 2, "{plans}");

    // The statements and the learner's error are counted in /metrics.
    let metric = |text: &str, name: &str| -> f64 {
        text.lines()
            .find_map(|l| l.strip_prefix(name)?.trim().parse().ok())
            .unwrap_or(0.0)
    };
    let scrape = reqwest::Client::new()
        .get(server.url("/metrics"))
        .bearer_auth("plan-metrics")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metric(&scrape, "pglab_sql_statements_total") >= 6.0,
        "{scrape}"
    );
    assert!(metric(&scrape, "pglab_sql_errors_total") >= 1.0, "{scrape}");
}
