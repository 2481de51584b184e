//! The 14.D.1 production traffic against a real Docker sandbox: the
//! dashboard query runs in a loop and shows in pg_stat_activity, its latency
//! drops once the learner builds the partial index CONCURRENTLY while it
//! runs, it stops by itself at the lab's limit (a flag, seconds here), on
//! the switch, and after repeated failures (no tasks table) saying why.

#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/labs.rs"]
mod labs;
#[path = "common/sandbox.rs"]
mod support;

use std::time::Duration;

use serde_json::Value;

/// A TaskFlow-like `tasks` table: 100k rows, few of them open and due this week.
const TASKS: &str = "
create table tasks (
  id bigint generated always as identity primary key,
  title text not null,
  status text not null,
  priority int not null,
  due_date date not null
);
insert into tasks (title, status, priority, due_date)
select 'task ' || g,
       case when g % 10 = 0 then 'open' else 'done' end,
       g % 5,
       current_date - 400 + (g % 800)
from generate_series(1, 100000) g;
analyze tasks;";

/// The median of the latencies of a batch of points.
fn median(points: &[Value]) -> f64 {
    let mut ms: Vec<f64> = points.iter().map(|p| p["ms"].as_f64().unwrap()).collect();
    ms.sort_by(|a, b| a.total_cmp(b));
    ms[ms.len() / 2]
}

/// Collects points for `secs` seconds, polling as the page does.
async fn collect(lab: &labs::Lab, secs: u64) -> Vec<Value> {
    let mut since = 0;
    let (_, first) = lab.call("GET", "/api/labs/traffic?since=0").await;
    if let Some(last) = first["points"].as_array().and_then(|p| p.last()) {
        since = last["seq"].as_u64().unwrap();
    }
    let mut out = Vec::new();
    let began = std::time::Instant::now();
    while began.elapsed() < Duration::from_secs(secs) {
        tokio::time::sleep(Duration::from_millis(700)).await;
        let s = lab
            .ok("GET", &format!("/api/labs/traffic?since={since}"))
            .await;
        for p in s["points"].as_array().unwrap() {
            since = p["seq"].as_u64().unwrap();
            out.push(p.clone());
        }
    }
    out
}

#[tokio::test]
async fn traffic_shows_the_index_and_stops_by_itself() {
    let _one = labs::DOCKER.lock().await;
    let Some(lab) = labs::start("docker", "traffic", &["--lab-traffic-secs", "25"]).await else {
        return;
    };
    lab.sql("T1", TASKS).await;
    let started = lab.ok("POST", "/api/labs/traffic/start").await;
    assert_eq!(started["running"], true, "{started}");
    // A second start is the same run, not a second one.
    let again = lab.ok("POST", "/api/labs/traffic/start").await;
    assert_eq!(again["running"], true);

    let before = collect(&lab, 4).await;
    assert!(before.len() >= 5, "too few points: {before:?}");
    let seen = lab
        .scalar("select count(*)::text from pg_stat_activity where application_name = 'taskflow-dashboard' and query like '%FROM tasks%'")
        .await;
    assert_eq!(
        seen, "1",
        "the traffic's one connection shows in pg_stat_activity"
    );

    lab.sql(
        "T1",
        "CREATE INDEX CONCURRENTLY tasks_due_open_idx ON tasks (due_date) WHERE status <> 'done'",
    )
    .await;
    let after = collect(&lab, 4).await;
    assert!(after.len() >= 5, "too few points: {after:?}");
    let (slow, fast) = (median(&before), median(&after));
    eprintln!(
        "traffic: {} points before the index (median {slow:.2} ms), {} after (median {fast:.2} ms)",
        before.len(),
        after.len()
    );
    assert!(
        fast * 2.0 < slow,
        "the index did not lower the latency: median {slow:.2} ms before, {fast:.2} ms after"
    );

    // It stops by itself at the limit (25 s from its start).
    let stopped = labs::eventually(Duration::from_secs(40), || async {
        lab.ok("GET", "/api/labs/traffic").await["running"] == false
    })
    .await;
    assert!(stopped, "the traffic did not stop by itself");
    let last = lab.ok("GET", "/api/labs/traffic").await;
    assert!(
        last["stopped_reason"]
            .as_str()
            .unwrap()
            .contains("by itself"),
        "{last}"
    );
    let queries = last["queries"].as_u64().unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(lab.ok("GET", "/api/labs/traffic").await["queries"], queries);
    let gone = labs::eventually(Duration::from_secs(5), || async {
        lab.scalar("select count(*)::text from pg_stat_activity where application_name = 'taskflow-dashboard'")
            .await
            == "0"
    })
    .await;
    assert!(gone, "the traffic's connection outlived it");

    // The switch stops it too.
    lab.ok("POST", "/api/labs/traffic/start").await;
    let off = lab.ok("POST", "/api/labs/traffic/stop").await;
    assert_eq!(off["running"], false, "{off}");
    assert!(
        off["stopped_reason"].as_str().unwrap().contains("switch"),
        "{off}"
    );

    // Without a tasks table it gives up after a few failures, saying why.
    lab.sql("T1", "drop table tasks").await;
    lab.ok("POST", "/api/labs/traffic/start").await;
    let gave_up = labs::eventually(Duration::from_secs(15), || async {
        lab.ok("GET", "/api/labs/traffic").await["running"] == false
    })
    .await;
    assert!(gave_up);
    let last = lab.ok("GET", "/api/labs/traffic").await;
    let why = last["stopped_reason"].as_str().unwrap();
    assert!(
        why.contains("does not exist") && why.contains("5 failures"),
        "{last}"
    );
}
