//! The monitoring panel's API (part E step 9) against real sandboxes on both
//! backends: table and index scans move with the learner's queries, the
//! cache hit ratio and connection counts are the server's, and a stopped
//! sandbox or a signed-out caller gets a clear refusal.

#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/labs.rs"]
mod labs;
#[path = "common/sandbox.rs"]
mod support;

use serde_json::Value;

fn table<'a>(stats: &'a Value, name: &str) -> &'a Value {
    stats["tables"]
        .as_array()
        .unwrap()
        .iter()
        .find(|t| t["table"] == name)
        .unwrap_or_else(|| panic!("no table {name} in {stats}"))
}

async fn monitor_follows_the_learners_queries(backend: &'static str) {
    let Some(lab) = labs::start(backend, &format!("mon{backend}"), &[]).await else {
        return;
    };
    lab.sql(
        "T1",
        "create table watched (id int primary key, v text);
         insert into watched select g, 'v' || g from generate_series(1, 5000) g;
         analyze watched;",
    )
    .await;
    let before = lab.ok("GET", "/api/labs/stats").await;
    let seq0 = table(&before, "watched")["seq_scan"].as_i64().unwrap();
    let idx0 = table(&before, "watched")["idx_scan"].as_i64().unwrap();
    assert_eq!(table(&before, "watched")["n_live_tup"], 5000, "{before}");
    assert!(
        table(&before, "watched")["last_analyze"].is_i64(),
        "{before}"
    );

    // Three sequential scans and two index lookups.
    for _ in 0..3 {
        lab.sql("T1", "select count(*) from watched where v like '%7%'")
            .await;
    }
    lab.sql("T1", "delete from watched where id <= 100").await;
    for id in [4000, 4001] {
        lab.sql("T1", &format!("select v from watched where id = {id}"))
            .await;
    }
    // The statistics collector (pgstat) flushes at transaction end, at most
    // once a second per backend: allow for it.
    let mut after: Value;
    let began = std::time::Instant::now();
    let moved = loop {
        after = lab.ok("GET", "/api/labs/stats").await;
        let t = table(&after, "watched");
        if t["seq_scan"].as_i64().unwrap() >= seq0 + 3
            && t["idx_scan"].as_i64().unwrap() >= idx0 + 2
            && t["n_dead_tup"].as_i64().unwrap() >= 100
        {
            break true;
        }
        if began.elapsed() > std::time::Duration::from_secs(15) {
            break false;
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    };
    assert!(moved, "scans did not show: before {before}, after {after}");
    let pkey = after["indexes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["index"] == "watched_pkey")
        .unwrap_or_else(|| panic!("no watched_pkey in {after}"));
    assert!(pkey["idx_scan"].as_i64().unwrap() >= 2, "{pkey}");
    let hit = after["cache_hit_pct"].as_f64().unwrap();
    assert!(hit > 0.0 && hit <= 100.0, "{after}");
    // The console's T1 is a connection of the server; the monitor's own is not counted.
    let conns = &after["connections"];
    assert!(conns["total"].as_i64().unwrap() >= 1, "{after}");
    assert_eq!(conns["max_connections"], 20, "{after}");

    // A stopped sandbox: a clear 409, nothing started behind the learner's back.
    lab.ok("POST", "/api/sandbox/stop").await;
    let (status, body) = lab.call("GET", "/api/labs/stats").await;
    assert_eq!(status, 409, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("not running"),
        "{body}"
    );
    let state = lab.ok("GET", "/api/sandbox").await;
    assert_eq!(state["state"], "stopped", "{state}");

    // A write without the CSRF header (a cross-site form) is refused.
    let no_csrf = common::client();
    let res = no_csrf
        .post(lab.url("/api/login"))
        .json(&serde_json::json!({"username": format!("mon{backend}"), "password": format!("mon{backend}-password")}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let res = no_csrf
        .post(lab.url("/api/labs/traffic/start"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    assert_eq!(lab.ok("GET", "/api/labs/traffic").await["running"], false);

    // Signed out: 401.
    let anonymous = reqwest::Client::new();
    let res = anonymous
        .get(lab.url("/api/labs/stats"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
}

#[tokio::test]
async fn monitor_on_the_local_backend() {
    monitor_follows_the_learners_queries("local").await;
}

#[tokio::test]
async fn monitor_on_the_docker_backend() {
    let _one = labs::DOCKER.lock().await;
    monitor_follows_the_learners_queries("docker").await;
}
