//! The 14.D.1 production traffic against a real Docker sandbox, on the
//! lesson's own data (schema.sql, seed.sql, generate_bulk_data.sql run
//! through the console): the dashboard's chart query runs in a loop, takes
//! seconds without `idx_tasks_status_priority`, so the author's
//! long-running query (`state = 'active'` for more than 5 seconds) finds it
//! in pg_stat_activity; `CREATE INDEX CONCURRENTLY` while it runs makes it
//! fast (and the finder comes back empty); it stops by itself at the lab's
//! limit (a flag, seconds here), on the switch (ending a query half-way on
//! the server too), and after repeated failures (no tasks table) saying why.

#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/labs.rs"]
mod labs;
#[path = "common/sandbox.rs"]
mod support;

use std::time::Duration;

use serde_json::Value;

/// The lab scripts that make the lesson's data, in order.
fn lab_data() -> Vec<String> {
    let dir = common::repo_content_dir()
        .join("practice/curriculum/14-postgresql-production-labs/scripts");
    ["schema.sql", "seed.sql", "generate_bulk_data.sql"]
        .iter()
        .map(|f| std::fs::read_to_string(dir.join(f)).unwrap())
        .collect()
}

/// The author's 14.D.1 query for queries running longer than 5 seconds.
const LONG_RUNNING: &str = "SELECT pid, now() - query_start AS duration, query FROM pg_stat_activity WHERE state = 'active' AND now() - query_start > interval '5 seconds'";

/// The median of the latencies of a batch of points.
fn median(points: &[Value]) -> f64 {
    let mut ms: Vec<f64> = points.iter().map(|p| p["ms"].as_f64().unwrap()).collect();
    ms.sort_by(|a, b| a.total_cmp(b));
    ms[ms.len() / 2]
}

/// Collects points for `secs` seconds, polling as the page does.
async fn collect(lab: &labs::Lab, secs: u64) -> Vec<Value> {
    collect_at_least(lab, secs, 0, secs).await
}

/// Points for `secs` seconds, or longer (up to `max_secs`) until there are
/// `min` of them: the slow query takes seconds, more on a loaded machine.
async fn collect_at_least(lab: &labs::Lab, secs: u64, min: usize, max_secs: u64) -> Vec<Value> {
    let mut since = 0;
    let (_, first) = lab.call("GET", "/api/labs/traffic?since=0").await;
    if let Some(last) = first["points"].as_array().and_then(|p| p.last()) {
        since = last["seq"].as_u64().unwrap();
    }
    let mut out = Vec::new();
    let began = std::time::Instant::now();
    while began.elapsed() < Duration::from_secs(secs)
        || (out.len() < min && began.elapsed() < Duration::from_secs(max_secs))
    {
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
    let Some(lab) = labs::start("docker", "traffic", &["--lab-traffic-secs", "100"]).await else {
        return;
    };
    for script in lab_data() {
        lab.sql("T1", &script).await;
    }
    let started = lab.ok("POST", "/api/labs/traffic/start").await;
    assert_eq!(started["running"], true, "{started}");
    // A second start is the same run, not a second one.
    let again = lab.ok("POST", "/api/labs/traffic/start").await;
    assert_eq!(again["running"], true);

    // The author's query finds the dashboard's query once it has run 5 s.
    let began = std::time::Instant::now();
    let found = labs::eventually(Duration::from_secs(30), || async {
        let st = lab.sql("T1", LONG_RUNNING).await;
        st["rows"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r[2].as_str().unwrap_or("").contains("open_important"))
    })
    .await;
    assert!(found, "no dashboard query ran longer than 5 s");
    eprintln!(
        "the long-running finder saw the dashboard after {:?}",
        began.elapsed()
    );
    let seen = lab
        .scalar("select count(*)::text from pg_stat_activity where application_name = 'taskflow-dashboard' and query like '%FROM tasks t%'")
        .await;
    assert_eq!(
        seen, "1",
        "the traffic's one connection shows in pg_stat_activity"
    );

    let before = collect_at_least(&lab, 12, 1, 45).await;
    assert!(!before.is_empty(), "no run finished in 45 s");
    lab.sql(
        "T1",
        "CREATE INDEX CONCURRENTLY idx_tasks_status_priority ON tasks(status, priority)",
    )
    .await;
    // The run that was going when the index became valid still had the old plan.
    collect(&lab, 1).await;
    let after = collect(&lab, 5).await;
    assert!(after.len() >= 3, "too few points: {after:?}");
    let (slow, fast) = (median(&before), median(&after));
    eprintln!(
        "traffic: {} points before the index (median {slow:.0} ms), {} after (median {fast:.0} ms)",
        before.len(),
        after.len()
    );
    assert!(
        slow > 5000.0,
        "without the index a run took {slow:.0} ms, not seconds"
    );
    assert!(
        fast * 5.0 < slow,
        "the index did not lower the latency: median {slow:.0} ms before, {fast:.0} ms after"
    );
    let st = lab.sql("T1", LONG_RUNNING).await;
    assert!(
        !st["rows"]
            .as_array()
            .unwrap()
            .iter()
            .any(|r| r[2].as_str().unwrap_or("").contains("open_important")),
        "{st}"
    );

    // It stops by itself at the limit (100 s from its start).
    let stopped = labs::eventually(Duration::from_secs(100), || async {
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

    // The switch stops it too, and ends a slow query half-way on the server
    // (without the index, again).
    lab.sql("T1", "DROP INDEX idx_tasks_status_priority").await;
    lab.ok("POST", "/api/labs/traffic/start").await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let off = lab.ok("POST", "/api/labs/traffic/stop").await;
    assert_eq!(off["running"], false, "{off}");
    assert!(
        off["stopped_reason"].as_str().unwrap().contains("switch"),
        "{off}"
    );
    let gone = labs::eventually(Duration::from_secs(4), || async {
        lab.scalar("select count(*)::text from pg_stat_activity where application_name = 'taskflow-dashboard'")
            .await
            == "0"
    })
    .await;
    assert!(
        gone,
        "the stopped traffic's slow query kept running on the server"
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
