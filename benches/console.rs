//! Console benchmark (prints a table; `cargo bench --bench console`):
//! 1. `select 1` through `POST /api/sql` on a warm session of the real server
//!    (release build, local sandbox backend), interleaved with `GET /healthz`
//!    on the same keep-alive client (the HTTP floor of the same server in
//!    the same run), vs the same statement run directly with sqlx in-process
//!    on the same sandbox: medians, the SQL path minus `/healthz` (target
//!    ≤ 0.15 ms, issue #17), overhead over sqlx, ratio. The answer is only
//!    sent once the run's history and evidence are committed (`saved`);
//! 2. the editor's completion data, `GET /api/sandbox/schema?session=T1`, on
//!    a sandbox with 200 tables of 8 columns (target ≤ 20 ms; T1 is idle, so
//!    the read borrows its connection), the same for a session never opened
//!    (the endpoint's own short-lived connection), and the same catalog
//!    reads in-process (`console::schema::read_with`) on the same sandbox;
//! 3. load: 50 concurrent sessions (L1..L50, each its own connection) each
//!    running a 1,000-row query in a loop for 30 s (`PGLAB_BENCH_SECS`):
//!    requests, errors (must be 0), p50/p99 latency, server RSS, and the
//!    store writer's figures from `/metrics` during the load: writes, their
//!    p99 (queued → committed, histogram bucket bound; target ≤ 50 ms) and
//!    jobs per batch.
//!
//! For profiling part 1 alone: `PGLAB_BENCH_ONLY_SQL=1` stops after it
//! (one line of medians), `PGLAB_BENCH_N` sets its number of requests
//! (1,000).
//!
//! Until accounts exist every request is the development learner, so the 50
//! "learners" are 50 sessions of one learner on one sandbox: the server does
//! the same work per request (one dedicated connection each); the sandbox's
//! max_connections is raised for it with ALTER SYSTEM and a restart.

#![allow(clippy::unwrap_used, dead_code)]

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/common/sandbox.rs"]
mod support;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use common::{ServerOptions, TestServer};
use serde_json::{Value, json};
use sqlx::Connection;

const METRICS_SECRET: &str = "bench-metrics";

/// The `/metrics` text of the server.
async fn metrics(base: &str) -> String {
    reqwest::Client::new()
        .get(format!("{base}/metrics"))
        .bearer_auth(METRICS_SECRET)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap()
}

/// Cumulative buckets `(le, count)` of histogram `name`.
fn buckets(metrics: &str, name: &str) -> Vec<(f64, f64)> {
    metrics
        .lines()
        .filter_map(|l| l.strip_prefix(&format!("{name}_bucket{{le=\"")))
        .filter_map(|rest| {
            let (le, n) = rest.split_once("\"} ")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, n.trim().parse().ok()?))
        })
        .collect()
}

/// `(count, bound of quantile q)` of the observations between two scrapes.
fn quantile_between(before: &str, after: &str, name: &str, q: f64) -> (f64, f64) {
    let (b, a) = (buckets(before, name), buckets(after, name));
    let delta: Vec<(f64, f64)> = a
        .iter()
        .map(|(le, n)| {
            let was = b.iter().find(|(l, _)| l == le).map(|x| x.1).unwrap_or(0.0);
            (*le, n - was)
        })
        .collect();
    let count = delta.last().map(|d| d.1).unwrap_or(0.0);
    let bound = delta
        .iter()
        .find(|(_, n)| *n >= count * q)
        .map(|d| d.0)
        .unwrap_or(f64::NAN);
    (count, bound)
}

/// `n` timed `GET /api/sandbox/schema?session=..` (after 5 unmeasured),
/// each checked for the 200th table's 8 columns; ms, sorted.
async fn schema_requests(http: &reqwest::Client, base: &str, session: &str, n: usize) -> Vec<f64> {
    let mut took_all = Vec::with_capacity(n);
    for i in 0..n + 5 {
        let t = Instant::now();
        let res = http
            .get(format!("{base}/api/sandbox/schema?session={session}"))
            .send()
            .await
            .unwrap();
        let body: Value = res.json().await.unwrap();
        let took = t.elapsed().as_secs_f64() * 1000.0;
        assert_eq!(
            body["schema"]["public"]["schema_bench_200"]
                .as_array()
                .map(Vec::len),
            Some(8),
            "{body}"
        );
        if i >= 5 {
            took_all.push(took);
        }
    }
    took_all.sort_by(f64::total_cmp);
    took_all
}

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return f64::NAN;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx]
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// Runs `sql` in `session` and waits for the answer (polling long runs).
async fn sql(
    http: &reqwest::Client,
    base: &str,
    session: &str,
    sql: &str,
) -> Result<Value, String> {
    let res = http
        .post(format!("{base}/api/sql"))
        .json(&json!({"session": session, "sql": sql}))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    if !res.status().is_success() {
        return Err(format!("HTTP {}", res.status()));
    }
    let mut v: Value = res.json().await.map_err(|e| e.to_string())?;
    while v["status"] == "running" {
        let id = v["run_id"].as_str().unwrap_or_default().to_string();
        v = http
            .get(format!("{base}/api/runs/{id}?wait_ms=5000"))
            .send()
            .await
            .map_err(|e| e.to_string())?
            .json()
            .await
            .map_err(|e| e.to_string())?;
    }
    Ok(v)
}

async fn run() {
    let (_temp, data) = support::data_dir();
    let _clusters = support::LocalClusters(data.clone());
    let server = TestServer::start_with(ServerOptions {
        data_dir: Some(data.clone()),
        extra_args: vec![
            "--console-max-sessions".into(),
            "60".into(),
            "--metrics-secret".into(),
            METRICS_SECRET.into(),
        ],
        ..ServerOptions::default()
    });
    let base = server.base.clone();
    // A real learner account, used by script through a bearer token; the
    // in-process comparison below opens the same learner's sandbox.
    let add = std::process::Command::new(env!("CARGO_BIN_EXE_pglab"))
        .args([
            "user",
            "add",
            "learner",
            "--learner",
            "--password",
            "learner-password-1",
            "--data-dir",
        ])
        .arg(&data)
        .output()
        .unwrap();
    assert!(
        add.status.success(),
        "{}",
        String::from_utf8_lossy(&add.stderr)
    );
    let login: Value = reqwest::Client::new()
        .post(format!("{base}/api/login"))
        .json(&json!({"username": "learner", "password": "learner-password-1"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        "authorization",
        format!("Bearer {}", login["token"].as_str().expect("token"))
            .parse()
            .unwrap(),
    );
    let http = reqwest::Client::builder()
        .default_headers(headers)
        .pool_max_idle_per_host(64)
        .timeout(Duration::from_secs(120))
        .build()
        .unwrap();

    // 1. Overhead of the HTTP path on a warm session.
    let first = sql(&http, &base, "T1", "select 1").await.unwrap();
    assert_eq!(first["statements"][0]["rows"][0][0], "1", "{first}");
    let n: usize = std::env::var("PGLAB_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    for _ in 0..100 {
        sql(&http, &base, "T1", "select 1").await.unwrap();
    }
    let mut via_http = Vec::with_capacity(n);
    let mut healthz = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        let res = http.get(format!("{base}/healthz")).send().await.unwrap();
        assert!(res.status().is_success());
        let _ = res.bytes().await.unwrap();
        healthz.push(t.elapsed().as_secs_f64() * 1000.0);
        let t = Instant::now();
        let v = sql(&http, &base, "T1", "select 1").await.unwrap();
        via_http.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(v["statements"][0]["error"].is_null());
        assert_eq!(v["saved"], true, "{v}");
    }
    via_http.sort_by(f64::total_cmp);
    healthz.sort_by(f64::total_cmp);
    if std::env::var("PGLAB_BENCH_ONLY_SQL").is_ok() {
        println!(
            "ONLY_SQL sql median {:.3} healthz median {:.3} delta {:.3}",
            percentile(&via_http, 0.5),
            percentile(&healthz, 0.5),
            percentile(&via_http, 0.5) - percentile(&healthz, 0.5)
        );
        return;
    }

    let config = support::config(&["--sandbox", "local", "--data-dir", data.to_str().unwrap()]);
    let store = support::store(&data).await;
    // The account made above (`development_learner` finds it by name).
    let (learner, _) = store.development_learner().await.unwrap();
    let provisioner = pglab::sandbox::local::LocalProvisioner::new(
        &config.sandbox,
        &config.sandbox_dirs(),
        &store,
    )
    .unwrap();
    let options = pglab::sandbox::Provisioner::start(&provisioner, learner)
        .await
        .unwrap();
    let mut direct_conn = sqlx::PgConnection::connect_with(&options).await.unwrap();
    for _ in 0..100 {
        sqlx::raw_sql("select 1")
            .fetch_all(&mut direct_conn)
            .await
            .unwrap();
    }
    let mut direct = Vec::with_capacity(n);
    for _ in 0..n {
        let t = Instant::now();
        sqlx::raw_sql("select 1")
            .fetch_all(&mut direct_conn)
            .await
            .unwrap();
        direct.push(t.elapsed().as_secs_f64() * 1000.0);
    }
    direct.sort_by(f64::total_cmp);

    // 2. The schema endpoint with 200 tables.
    let made = sql(
        &http,
        &base,
        "T1",
        "do $$ begin for i in 1..200 loop
           execute format('create table if not exists schema_bench_%s (id int primary key, a text, b int, c date, d numeric, e jsonb, f bool, g bytea)', i);
         end loop; end $$;",
    )
    .await
    .unwrap();
    assert!(made["failed_statement"].is_null(), "{made}");
    let schema_n = 50;
    // As the console page asks: for its session T1, idle after its run (the
    // read borrows T1's connection); and for a session that was never
    // opened (a connection of the endpoint's own, as in a transaction).
    let schema_http = schema_requests(&http, &base, "T1", schema_n).await;
    let schema_own = schema_requests(&http, &base, "NOSESSION", schema_n).await;
    let mut schema_direct = Vec::with_capacity(schema_n);
    for _ in 0..schema_n {
        let t = Instant::now();
        let info = pglab::console::schema::read_with(&mut direct_conn)
            .await
            .unwrap();
        schema_direct.push(t.elapsed().as_secs_f64() * 1000.0);
        assert!(info.relations.len() >= 200);
    }
    schema_direct.sort_by(f64::total_cmp);
    let _ = direct_conn.close().await;

    // 3. Load: 50 sessions, a 1,000-row query each, in a loop.
    let setup = sql(
        &http,
        &base,
        "T1",
        "alter system set max_connections = 120;\n\
         create table if not exists bench_rows as select g as id, md5(g::text) as v, now() as at from generate_series(1, 1000) g",
    )
    .await
    .unwrap();
    assert!(setup["failed_statement"].is_null(), "{setup}");
    let restart = http
        .post(format!("{base}/api/sandbox/restart"))
        .send()
        .await
        .unwrap();
    assert!(
        restart.status().is_success(),
        "restart: {}",
        restart.status()
    );
    let secs: u64 = std::env::var("PGLAB_BENCH_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(30);
    let learners = 50;
    // Open the sessions first (their first run connects).
    for i in 1..=learners {
        let _ = sql(&http, &base, &format!("L{i}"), "select 1").await;
    }
    let metrics_before = metrics(&base).await;
    let errors = Arc::new(AtomicU64::new(0));
    let first_error = Arc::new(std::sync::Mutex::new(None::<String>));
    let deadline = Instant::now() + Duration::from_secs(secs);
    let rss_pid = server.pid();
    let sampler = tokio::spawn(async move {
        let mut peak = 0;
        while Instant::now() < deadline {
            peak = peak.max(rss_kib(rss_pid));
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        peak
    });
    let mut tasks = Vec::new();
    for i in 1..=learners {
        let http = http.clone();
        let base = base.clone();
        let errors = errors.clone();
        let first_error = first_error.clone();
        tasks.push(tokio::spawn(async move {
            let session = format!("L{i}");
            let mut lat = Vec::new();
            while Instant::now() < deadline {
                let t = Instant::now();
                match sql(&http, &base, &session, "select * from bench_rows").await {
                    Ok(v)
                        if v["statements"][0]["total_rows"] == 1000
                            && v["statements"][0]["error"].is_null() =>
                    {
                        lat.push(t.elapsed().as_secs_f64() * 1000.0)
                    }
                    other => {
                        errors.fetch_add(1, Ordering::Relaxed);
                        let mut f = first_error.lock().unwrap();
                        if f.is_none() {
                            *f = Some(format!("{other:?}").chars().take(300).collect());
                        }
                    }
                }
            }
            lat
        }));
    }
    let mut load = Vec::new();
    for t in tasks {
        load.extend(t.await.unwrap());
    }
    load.sort_by(f64::total_cmp);
    let peak_rss = sampler.await.unwrap();
    let metrics_after = metrics(&base).await;
    let (writes, write_p99) = quantile_between(
        &metrics_before,
        &metrics_after,
        "pglab_store_write_seconds",
        0.99,
    );
    let (batches, batch_p50) = quantile_between(
        &metrics_before,
        &metrics_after,
        "pglab_store_batch_jobs",
        0.5,
    );
    let (_, batch_p99) = quantile_between(
        &metrics_before,
        &metrics_after,
        "pglab_store_batch_jobs",
        0.99,
    );
    let rss_after = rss_kib(server.pid());

    let (mh, md) = (percentile(&via_http, 0.5), percentile(&direct, 0.5));
    let mz = percentile(&healthz, 0.5);
    println!();
    println!(
        "console benchmark (release, local sandbox backend, loopback; load average {})",
        std::fs::read_to_string("/proc/loadavg")
            .unwrap_or_default()
            .split_whitespace()
            .next()
            .unwrap_or("?")
    );
    println!("{:<52} {:>12}", "measure", "value");
    println!("{:-<65}", "");
    println!(
        "{:<52} {:>9.3} ms",
        "select 1 via POST /api/sql, warm session: median", mh
    );
    println!(
        "{:<52} {:>9.3} ms",
        "select 1 via POST /api/sql: p99",
        percentile(&via_http, 0.99)
    );
    println!(
        "{:<52} {:>9.3} ms",
        "GET /healthz, same client, same run: median", mz
    );
    println!(
        "{:<52} {:>9.3} ms {}",
        "POST /api/sql median minus /healthz (target <= 0.15)",
        mh - mz,
        if mh - mz <= 0.15 { "OK" } else { "OVER" }
    );
    println!(
        "{:<52} {:>9.3} ms",
        "select 1 direct sqlx in-process: median", md
    );
    println!(
        "{:<52} {:>9.3} ms",
        "select 1 direct sqlx: p99",
        percentile(&direct, 0.99)
    );
    println!(
        "{:<52} {:>9.3} ms {}",
        "median overhead (target <= 1 ms)",
        mh - md,
        if mh - md <= 1.0 { "OK" } else { "OVER" }
    );
    println!("{:<52} {:>9.2} x", "ratio http / direct", mh / md);
    let sh = percentile(&schema_http, 0.5);
    println!(
        "{:<52} {:>9.3} ms {}",
        "GET /api/sandbox/schema?session=T1, 200 tables: median (<= 20)",
        sh,
        if sh <= 20.0 { "OK" } else { "OVER" }
    );
    println!(
        "{:<52} {:>9.3} ms",
        "GET /api/sandbox/schema, 200 tables: p99",
        percentile(&schema_http, 0.99)
    );
    println!(
        "{:<52} {:>9.3} ms",
        "same, no session open (own connection): median",
        percentile(&schema_own, 0.5)
    );
    println!(
        "{:<52} {:>9.3} ms",
        "schema catalog reads in-process: median",
        percentile(&schema_direct, 0.5)
    );
    println!(
        "{:<52} {:>12}",
        format!("load: {learners} sessions x 1,000-row query, {secs} s"),
        ""
    );
    println!("{:<52} {:>12}", "  requests completed", load.len());
    println!(
        "{:<52} {:>9.1} /s",
        "  throughput",
        load.len() as f64 / secs as f64
    );
    println!(
        "{:<52} {:>12} {}",
        "  errors (must be 0)",
        errors.load(Ordering::Relaxed),
        first_error.lock().unwrap().clone().unwrap_or_default()
    );
    println!("{:<52} {:>9.1} ms", "  latency p50", percentile(&load, 0.5));
    println!(
        "{:<52} {:>9.1} ms",
        "  latency p99",
        percentile(&load, 0.99)
    );
    println!(
        "{:<52} {:>12}",
        "  store writes (history, evidence)", writes
    );
    println!(
        "{:<52} {:>9.1} ms {}",
        "  store write p99, queued -> committed (bucket bound)",
        write_p99 * 1000.0,
        if write_p99 <= 0.05 { "OK" } else { "OVER" }
    );
    println!(
        "{:<52} {:>12}",
        "  store batches; jobs per batch p50 / p99 (bound)",
        format!("{batches}; {batch_p50} / {batch_p99}")
    );
    println!(
        "{:<52} {:>9.1} MiB",
        "  server RSS peak",
        peak_rss as f64 / 1024.0
    );
    println!(
        "{:<52} {:>9.1} MiB",
        "  server RSS after",
        rss_after as f64 / 1024.0
    );
    drop(server);
}
