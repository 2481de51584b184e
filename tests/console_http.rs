//! The console over HTTP on the real server with the local sandbox backend:
//! the documented JSON shape, the lock-wait flow across two sessions, cancel,
//! huge and malformed inputs, history and the page.

#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/sandbox.rs"]
mod support;

use std::time::{Duration, Instant};

use common::{ServerOptions, TestServer};
use serde_json::{Value, json};
use support::LocalClusters;

struct Setup {
    server: TestServer,
    _clusters: LocalClusters,
    _temp: tempfile::TempDir,
}

fn start() -> Setup {
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("data");
    let clusters = LocalClusters(data.clone());
    let server = TestServer::start_with(ServerOptions {
        data_dir: Some(data),
        ..ServerOptions::default()
    });
    Setup {
        server,
        _clusters: clusters,
        _temp: temp,
    }
}

async fn sql(http: &reqwest::Client, s: &TestServer, session: &str, sql: &str) -> Value {
    let res = http
        .post(s.url("/api/sql"))
        .json(&json!({"session": session, "sql": sql}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    res.json().await.unwrap()
}

/// Polls a run until it is done.
async fn finish(http: &reqwest::Client, s: &TestServer, mut v: Value) -> Value {
    for _ in 0..150 {
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

#[tokio::test]
async fn sql_api_shape_lock_wait_cancel_and_limits() {
    let setup = start();
    let s = &setup.server;
    let http = common::signed_in_learner(s, "ann").await;

    // The first run starts the sandbox: allow for it.
    let first = sql(&http, s, "T1", "select 1 as one, null::text as n, '' as e").await;
    let v = finish(&http, s, first).await;
    assert_eq!(v["transaction"], "idle", "{v}");
    let st = &v["statements"][0];
    for key in [
        "sql",
        "columns",
        "rows",
        "command_tag",
        "notices",
        "error",
        "elapsed_ms",
        "truncated",
        "total_rows",
        "plan_html",
    ] {
        assert!(st.get(key).is_some(), "missing {key} in {st}");
    }
    assert_eq!(
        st["columns"],
        json!([{"name": "one", "type": "integer"}, {"name": "n", "type": "text"}, {"name": "e", "type": "text"}])
    );
    assert_eq!(st["rows"], json!([["1", null, ""]]));
    assert_eq!(st["command_tag"], "SELECT 1");
    assert_eq!(st["error"], Value::Null);
    assert_eq!(st["plan_html"], Value::Null);

    // Errors come back as data with a 200, position included.
    let v = sql(&http, s, "T1", "select 1;\nselect nope;").await;
    assert_eq!(v["failed_statement"], 1);
    let e = &v["statements"][1]["error"];
    assert_eq!(e["sqlstate"], "42703");
    assert_eq!(e["position"], 8);
    assert_eq!(e["script_position"], 18);

    // EXPLAIN keeps psql's text output in a "QUERY PLAN" column.
    let v = sql(&http, s, "T1", "explain select 1").await;
    assert_eq!(v["statements"][0]["columns"][0]["name"], "QUERY PLAN");
    assert_eq!(v["statements"][0]["command_tag"], "EXPLAIN");

    // Lock wait: T2 reports "running", waiting for T1, then completes.
    let v = sql(&http, s, "T1", "create table acc (id int primary key, n int); insert into acc values (1, 0); begin; update acc set n = 1 where id = 1").await;
    assert_eq!(v["transaction"], "in_transaction", "{v}");
    let v = sql(&http, s, "T2", "update acc set n = 2 where id = 1").await;
    assert_eq!(v["status"], "running", "{v}");
    let message = v["progress"]["waiting"]["message"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        message.starts_with("waiting for lock held by T1 (pid "),
        "{v}"
    );
    let t2_run = v["run_id"].as_str().unwrap().to_string();
    let poll: Value = http
        .get(s.url(&format!("/api/runs/{t2_run}?wait_ms=100")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(poll["status"], "running");
    let v = sql(&http, s, "T1", "commit").await;
    assert_eq!(v["statements"][0]["command_tag"], "COMMIT");
    let done = finish(&http, s, poll).await;
    assert_eq!(done["statements"][0]["command_tag"], "UPDATE 1", "{done}");
    let sessions: Value = http
        .get(s.url("/api/sessions"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(sessions["sessions"].as_array().unwrap().len(), 2);

    // Cancel.
    let v = sql(&http, s, "T1", "select pg_sleep(60)").await;
    assert_eq!(v["status"], "running");
    let busy = http
        .post(s.url("/api/sql"))
        .json(&json!({"session": "T1", "sql": "select 1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(busy.status(), 409);
    let c: Value = http
        .post(s.url("/api/sessions/T1/cancel"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(c["cancelled"], true);
    let done = finish(&http, s, v).await;
    assert_eq!(done["statements"][0]["error"]["sqlstate"], "57014");
    let v = sql(&http, s, "T1", "select 2").await;
    assert_eq!(v["statements"][0]["rows"][0][0], "2");

    // Timeout asked for by the learner, and a cap on it.
    let v = http
        .post(s.url("/api/sql"))
        .json(&json!({"session": "T1", "sql": "select pg_sleep(3)", "timeout_s": 1}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    let done = finish(&http, s, v).await;
    assert_eq!(done["statements"][0]["error"]["sqlstate"], "57014");
    let res = http
        .post(s.url("/api/sql"))
        .json(&json!({"session": "T1", "sql": "select 1", "timeout_s": 100000}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);

    // 10 million rows: the cap answers, and the server stays responsive.
    let started = Instant::now();
    let v = http.post(s.url("/api/sql")).json(&json!({"session": "T2", "sql": "select generate_series(1, 10000000)", "timeout_s": 300})).send().await.unwrap().json::<Value>().await.unwrap();
    let health = http.get(s.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let quick = sql(&http, s, "T1", "select 3").await;
    assert_eq!(
        quick["statements"][0]["rows"][0][0], "3",
        "T1 is not blocked by T2's big query"
    );
    let done = finish(&http, s, v).await;
    let st = &done["statements"][0];
    assert_eq!(st["rows"].as_array().unwrap().len(), 1000);
    assert_eq!(st["total_rows"], 10_000_000);
    assert_eq!(st["truncated"], true);
    eprintln!("10M rows answered in {:?}", started.elapsed());

    // Huge and malformed bodies answer with JSON errors.
    let huge = "select 1;\n".repeat(1_000_000); // 10 MB
    let res = http
        .post(s.url("/api/sql"))
        .json(&json!({"session": "T1", "sql": huge}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 413);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("too large"),
        "{body}"
    );
    let res = http
        .post(s.url("/api/sql"))
        .header("content-type", "application/json")
        .body("{\"sql\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.json::<Value>().await.unwrap()["error"].is_string());
    let res = http
        .post(s.url("/api/sql"))
        .json(&json!({"session": "../x", "sql": "select 1"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let res = http
        .get(s.url("/api/runs/0123456789abcdef0123456789abcdef"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 404);
    let v = sql(&http, s, "T1", "select '\\x0001ff'::bytea").await;
    assert_eq!(v["statements"][0]["rows"][0][0], "\\x0001ff");

    // History, searchable.
    let h: Value = http
        .get(s.url("/api/history?q=pg_sleep"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let entries = h["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{h}");
    assert!(
        entries
            .iter()
            .all(|e| e["sql"].as_str().unwrap().contains("pg_sleep"))
    );
    assert_eq!(entries[0]["sql"], "select pg_sleep(3)", "newest first");

    // Closing a session rolls back and forgets it.
    sql(&http, s, "T2", "begin; insert into acc values (2, 2)").await;
    let c: Value = http
        .post(s.url("/api/sessions/T2/close"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(c["closed"], true);
    tokio::time::sleep(Duration::from_millis(300)).await;
    let v = sql(&http, s, "T1", "select count(*) from acc").await;
    assert_eq!(v["statements"][0]["rows"][0][0], "1");

    // The page.
    let page = http.get(s.url("/console")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let body = page.text().await.unwrap();
    assert!(body.contains("data-console") && body.contains("/static/js/console.js"));
    assert!(body.contains("href=\"/console\""));
}

#[tokio::test]
async fn notices_meta_deadlock_and_terminated_connection_over_http() {
    let setup = start();
    let s = &setup.server;
    let http = common::signed_in_learner(s, "ann").await;

    // Notices reach the statement through the console's relay, with the
    // fields the server sent (SQLSTATE, source location, CONTEXT).
    let v = finish(
        &http,
        s,
        sql(
            &http,
            s,
            "T1",
            "drop table if exists missing; do $$ begin raise notice 'hi %', 1; end $$",
        )
        .await,
    )
    .await;
    let n = &v["statements"][0]["notices"];
    assert_eq!(n.as_array().map(Vec::len), Some(1), "{v}");
    assert_eq!(n[0]["severity"], "NOTICE");
    assert_eq!(n[0]["sqlstate"], "00000");
    assert_eq!(
        n[0]["message"],
        "table \"missing\" does not exist, skipping"
    );
    assert!(
        n[0]["location"]
            .as_str()
            .is_some_and(|l| l.contains("tablecmds.c")),
        "{v}"
    );
    let n = &v["statements"][1]["notices"][0];
    assert_eq!(n["message"], "hi 1");
    assert_eq!(
        n["context"],
        "PL/pgSQL function inline_code_block line 1 at RAISE"
    );

    // Meta-commands and \x over HTTP.
    let v = sql(&http, s, "T1", "create table acc (id int primary key, n int); insert into acc values (1, 0), (2, 0);\n\\dt\n\\x\n\\d acc").await;
    assert!(v["failed_statement"].is_null(), "{v}");
    assert_eq!(v["statements"][2]["kind"], "meta");
    assert_eq!(v["statements"][2]["rows"][0][1], "acc");
    assert_eq!(v["expanded"], true);
    // `\d NAME` answers a table with psql's title and footers.
    assert_eq!(v["statements"][4]["title"], "Table \"public.acc\"", "{v}");
    assert!(
        v["statements"][4]["footers"].as_array().is_some_and(|f| f
            .iter()
            .any(|l| l.as_str().is_some_and(|l| l.starts_with("Indexes:")))),
        "{v}"
    );

    // Deadlock between T1 and T2: one gets 40P01 with DETAIL.
    sql(&http, s, "T1", "begin; update acc set n = 1 where id = 1").await;
    sql(&http, s, "T2", "begin; update acc set n = 2 where id = 2").await;
    let a = http
        .post(s.url("/api/sql"))
        .json(&json!({"session": "T1", "sql": "update acc set n = 1 where id = 2"}))
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(a["status"], "running", "{a}");
    let b = sql(&http, s, "T2", "update acc set n = 2 where id = 1").await;
    let a = finish(&http, s, a).await;
    let b = finish(&http, s, b).await;
    let errors: Vec<&Value> = [&a, &b]
        .into_iter()
        .map(|r| &r["statements"][0]["error"])
        .filter(|e| !e.is_null())
        .collect();
    assert_eq!(errors.len(), 1, "{a} {b}");
    assert_eq!(errors[0]["sqlstate"], "40P01");
    assert!(
        errors[0]["detail"]
            .as_str()
            .unwrap()
            .contains("blocked by process")
    );
    let failed = if a["statements"][0]["error"].is_null() {
        &b
    } else {
        &a
    };
    assert_eq!(failed["transaction"], "failed");
    sql(&http, s, "T1", "rollback").await;
    sql(&http, s, "T2", "rollback").await;

    // A terminated connection is reported, then the session reconnects.
    let sessions: Value = http
        .get(s.url("/api/sessions"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let t1_pid = sessions["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|x| x["name"] == "T1")
        .unwrap()["pid"]
        .as_i64()
        .unwrap();
    sql(
        &http,
        s,
        "T2",
        &format!("select pg_terminate_backend({t1_pid})"),
    )
    .await;
    let v = sql(&http, s, "T1", "select 1").await;
    assert_eq!(v["connection_lost"], true, "{v}");
    assert!(
        v["statements"][0]["error"]["message"]
            .as_str()
            .unwrap()
            .contains("reconnects")
    );
    let v = sql(&http, s, "T1", "select 42").await;
    assert_eq!(v["statements"][0]["rows"][0][0], "42");
}

/// "Show all": a result cut at the row cap and the value cap is kept whole
/// and paged through with every row and every value uncut; only its learner
/// reaches it; results that were not cut, or too large to keep, are not.
#[tokio::test]
async fn show_all_pages_through_the_whole_of_a_cut_result() {
    let setup = start();
    let s = &setup.server;
    let ann = common::signed_in_learner(s, "ann").await;
    let script = "select 1;\n\
        select g, case when g = 7 then repeat('é', 15000) else 'v' || g end as v \
        from generate_series(1, 2500) g;";
    let v = finish(&ann, s, sql(&ann, s, "T1", script).await).await;
    let run = v["run_id"].as_str().unwrap().to_string();
    assert_eq!(
        v["statements"][0]["full_kept"], false,
        "{}",
        v["statements"][0]
    );
    let st = &v["statements"][1];
    assert_eq!(st["truncated"], true);
    assert_eq!(st["values_truncated"], true);
    assert_eq!(st["full_kept"], true);
    assert_eq!(st["rows"].as_array().unwrap().len(), 1000);
    let shown = st["rows"][6][1].as_str().unwrap();
    assert!(
        shown.ends_with("more bytes]"),
        "{}",
        &shown[shown.len() - 40..]
    );

    let url = |index: usize, q: &str| s.url(&format!("/api/runs/{run}/statements/{index}/rows{q}"));
    let mut rows: Vec<Value> = Vec::new();
    let mut offset = 0u64;
    let mut pages = 0;
    loop {
        let page: Value = ann
            .get(url(1, &format!("?limit=1000&offset={offset}")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(page["total_rows"], 2500, "{page}");
        assert_eq!(page["offset"], offset);
        rows.extend(page["rows"].as_array().unwrap().iter().cloned());
        pages += 1;
        match page["next_offset"].as_u64() {
            Some(next) => offset = next,
            None => break,
        }
    }
    assert_eq!(pages, 3);
    assert_eq!(rows.len(), 2500);
    assert_eq!(rows[6][1].as_str().unwrap(), "é".repeat(15000));
    assert_eq!(rows[2499], json!(["2500", "v2500"]));
    assert_eq!(rows[1000], json!(["1001", "v1001"]));

    // Not cut, so not kept; another learner, or no sign-in, finds nothing.
    let res = ann.get(url(0, "")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert!(
        res.json::<Value>().await.unwrap()["error"]
            .as_str()
            .unwrap()
            .contains("run the statement again")
    );
    let bob = common::signed_in_learner(s, "bob").await;
    assert_eq!(bob.get(url(1, "")).send().await.unwrap().status(), 404);
    let anon = reqwest::Client::new();
    assert_eq!(anon.get(url(1, "")).send().await.unwrap().status(), 401);
    // Garbage in the query is a clear 400, an absurd limit is clamped.
    assert_eq!(
        ann.get(url(1, "?limit=lots"))
            .send()
            .await
            .unwrap()
            .status(),
        400
    );
    let page: Value = ann
        .get(url(1, "?limit=0&offset=2499"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page["rows"], json!([["2500", "v2500"]]));

    // Over the learner's keep budget (64 MiB): cut, and not kept.
    let v = finish(
        &ann,
        s,
        sql(&ann, s, "T1", "select generate_series(1, 3000000) as g").await,
    )
    .await;
    let st = &v["statements"][0];
    assert_eq!(
        (st["truncated"].clone(), st["full_kept"].clone()),
        (json!(true), json!(false)),
        "{st}"
    );
    // The first result is still there.
    assert_eq!(
        ann.get(url(1, "?offset=2499"))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );
}

/// `\watch` shows live: while it runs, the run's progress carries the
/// latest result and the number of runs; cancelling ends it with psql's
/// results.
#[tokio::test]
async fn watch_progress_is_live_until_cancelled() {
    let setup = start();
    let s = &setup.server;
    let http = common::signed_in_learner(s, "ann").await;
    let v = finish(&http, s, sql(&http, s, "T1", "select 1").await).await;
    assert_eq!(v["status"], "done");
    let v = sql(&http, s, "T1", "select 40 + 2 as answer \\watch 0.2").await;
    assert_eq!(v["status"], "running", "{v}");
    let id = v["run_id"].as_str().unwrap().to_string();
    let mut seen = 0;
    for _ in 0..3 {
        let p: Value = http
            .get(s.url(&format!("/api/runs/{id}?wait_ms=500")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert_eq!(p["status"], "running", "{p}");
        let w = &p["progress"]["watch"];
        assert_eq!(w["latest"]["rows"], json!([["42"]]), "{p}");
        assert!(
            w["latest"]["title"]
                .as_str()
                .unwrap()
                .contains("(every 0.2s)"),
            "{w}"
        );
        let runs = w["runs"].as_u64().unwrap();
        assert!(runs > seen, "runs go up: {runs} after {seen}");
        seen = runs;
    }
    let res = http
        .post(s.url("/api/sessions/T1/cancel"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let done: Value = http
        .get(s.url(&format!("/api/runs/{id}?wait_ms=5000")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(done["status"], "done", "{done}");
    assert!(done["statements"].as_array().unwrap().len() as u64 >= seen.min(20));
    assert_eq!(done["progress"], Value::Null);
}
