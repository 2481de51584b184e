//! EXPLAIN in the console end to end: psql's text output and the HTML plan
//! view come from one run (EXPLAIN ANALYZE of an INSERT inserts once), an
//! error's caret points into the learner's own text, and the plan is kept
//! for compare. Plans far over the 10,000-byte value cap get their view and
//! every text row; bad plans (over the limits, failing half-way, cancelled
//! by the timeout) answer clearly and leave the session usable.

#![allow(clippy::unwrap_used)]

mod common;

use common::{TestServer, signed_in_learner};
use serde_json::{Value, json};

async fn sql(http: &reqwest::Client, server: &TestServer, sql: &str) -> Value {
    sql_with(http, server, json!({"session": "T1", "sql": sql})).await
}

async fn sql_with(http: &reqwest::Client, server: &TestServer, body: Value) -> Value {
    let mut res: Value = http
        .post(server.url("/api/sql"))
        .json(&body)
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

fn notices(st: &Value) -> String {
    st["notices"]
        .as_array()
        .map(|n| {
            n.iter()
                .map(|n| n["message"].as_str().unwrap_or("").to_string())
                .collect::<Vec<_>>()
                .join("\n")
        })
        .unwrap_or_default()
}

async fn session_still_answers(http: &reqwest::Client, server: &TestServer) {
    let res = sql(http, server, "select 41 + 1").await;
    assert_eq!(res["statements"][0]["rows"][0][0], "42", "{res}");
}

#[tokio::test]
async fn large_plans_get_their_view_and_bad_plans_answer_clearly() {
    let server = TestServer::start();
    let http = signed_in_learner(&server, "bigplans").await;
    // The course's tasks schema: 100,000 tasks, 1,000 users, 200 projects.
    let setup = sql(&http, &server, include_str!("fixtures/plans/schema.sql")).await;
    assert!(
        setup["statements"]
            .as_array()
            .unwrap()
            .iter()
            .all(|s| s["error"].is_null()),
        "{setup}"
    );
    let join = "select t.title, u.name, p.name, o.name from tasks t \
                join users u on u.id = t.assignee_id join projects p on p.id = t.project_id \
                join users o on o.id = p.owner_id \
                where t.status = 'todo' and t.priority = 'high' order by t.created_at desc limit 20";

    // FORMAT JSON shows the document itself: cut for the browser at the
    // value cap, which proves it is over 10,000 bytes.
    let res = sql(
        &http,
        &server,
        &format!("explain (analyze, buffers, format json) {join}"),
    )
    .await;
    let st = &res["statements"][0];
    assert!(st["error"].is_null(), "{st}");
    let shown = st["rows"][0][0].as_str().unwrap();
    assert!(
        shown.ends_with(" more bytes]"),
        "over 10,000 bytes: {}",
        shown.len()
    );
    assert_eq!(st["values_truncated"], true);
    assert!(
        st["plan_html"].as_str().unwrap().contains("Hash Join"),
        "{st}"
    );
    assert!(!notices(st).contains("could not draw"), "{st}");

    // The same plan as text: every QUERY PLAN row, and the plan view.
    let res = sql(
        &http,
        &server,
        &format!("EXPLAIN (ANALYZE, BUFFERS) {join}"),
    )
    .await;
    let st = &res["statements"][0];
    assert!(st["error"].is_null(), "{st}");
    assert_eq!(st["command_tag"], "EXPLAIN");
    let rows: Vec<&str> = st["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r[0].as_str().unwrap())
        .collect();
    assert!(rows[0].starts_with("Limit  (cost="), "{rows:?}");
    assert!(
        rows.iter()
            .any(|r| r.contains("Hash Cond: (t.project_id = p.id)")),
        "{rows:?}"
    );
    assert!(
        rows.iter()
            .any(|r| r.trim_start().starts_with("Buffers: shared hit=")),
        "{rows:?}"
    );
    assert!(
        rows.last().unwrap().starts_with("Execution Time: "),
        "{rows:?}"
    );
    assert_eq!(st["total_rows"].as_u64().unwrap() as usize, rows.len());
    assert_eq!(st["truncated"], false);
    let html = st["plan_html"].as_str().expect("a plan view");
    assert!(
        html.contains("Seq Scan on tasks") || html.contains("Index Scan"),
        "{html}"
    );
    assert!(!html.contains("style="), "no inline style in the plan view");
    assert!(!notices(st).contains("could not draw"), "{st}");

    // Over the plan-view limit (a 9 MB constant in VERBOSE's Output): psql's
    // text rows, each cut at the value cap, and a clear reason.
    let res = sql(
        &http,
        &server,
        "explain (verbose, costs off) select repeat('x', 9000000)",
    )
    .await;
    let st = &res["statements"][0];
    assert!(st["error"].is_null(), "{st}");
    assert_eq!(st["rows"][0][0], "Result");
    let output = st["rows"][1][0].as_str().unwrap();
    assert!(
        output.starts_with("  Output: 'xxxx") && output.ends_with(" more bytes]"),
        "{}",
        &output[..40]
    );
    assert!(st["plan_html"].is_null());
    let why = notices(st);
    assert!(
        why.contains("no plan view") && why.contains("8.0 MiB pglab draws"),
        "{why}"
    );
    session_still_answers(&http, &server).await;

    // Over what pglab reads at all: a notice, no output, no second run.
    let res = sql(
        &http,
        &server,
        "explain (verbose, costs off) select repeat('x', 70000000)",
    )
    .await;
    let st = &res["statements"][0];
    assert!(st["error"].is_null(), "{st}");
    assert_eq!(st["rows"].as_array().unwrap().len(), 0);
    assert!(notices(st).contains("more than pglab reads"), "{st}");
    session_still_answers(&http, &server).await;

    // A statement failing half-way under ANALYZE: the server's error.
    let res = sql(
        &http,
        &server,
        "explain analyze select 1 / (g - 5000) from generate_series(1, 10000) g",
    )
    .await;
    let error = &res["statements"][0]["error"];
    assert_eq!(error["sqlstate"], "22012", "{res}");
    assert_eq!(error["message"], "division by zero");
    session_still_answers(&http, &server).await;

    // EXPLAIN ANALYZE cancelled by the run's statement timeout.
    let res = sql_with(
        &http,
        &server,
        json!({"session": "T1", "sql": "explain analyze select pg_sleep(5)", "timeout_s": 1}),
    )
    .await;
    let error = &res["statements"][0]["error"];
    assert_eq!(error["sqlstate"], "57014", "{res}");
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("statement timeout"),
        "{res}"
    );
    session_still_answers(&http, &server).await;
}
