//! Compose and server log benchmark (issue #14; prints a table; `cargo bench
//! --bench compose`), on the real server (release build) with the Docker
//! backend and the offline sandbox image:
//! 1. compose up of an edited file → first query: `PUT /api/sandbox/compose`
//!    with a changed `command: postgres -c work_mem=...`, `POST
//!    /api/sandbox/compose/up` streamed to its end, then `select 1` through
//!    `POST /api/sql` until it answers (target ≤ 2 s median), with a named
//!    volume at the data directory (data kept: no initdb after the first)
//!    and without one (initdb every time);
//! 2. a new server log line → the SSE stream (`GET /api/sandbox/log/events`,
//!    what the page's EventSource reads): a function raises a LOG line with a
//!    marker and returns `clock_timestamp()` taken just before; latency is
//!    the arrival of the marker's event minus that time (same clock: the
//!    container shares the host's; target ≤ 500 ms).

#![allow(clippy::unwrap_used, dead_code)]

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/common/labs.rs"]
mod labs;
#[path = "../tests/common/sandbox.rs"]
mod support;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const UPS: usize = 7;
const MARKS: usize = 30;

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
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn file(work_mem_mb: usize, volume: bool) -> String {
    let mut yaml = format!(
        "services:
  postgres:
    image: postgres:15
    environment:
      POSTGRES_USER: labuser
      POSTGRES_PASSWORD: example
      POSTGRES_DB: labdb
    healthcheck:
      test: [\"CMD-SHELL\", \"pg_isready -U labuser -d labdb\"]
      interval: 30s
      timeout: 5s
      retries: 5
    mem_limit: 200m
    cpus: 0.5
    command: postgres -c work_mem={work_mem_mb}MB
"
    );
    if volume {
        yaml.push_str(
            "    volumes:\n      - pgdata:/var/lib/postgresql/data\nvolumes:\n  pgdata:\n",
        );
    }
    yaml
}

/// Edited file → up → first `select 1`, `n` times; ms, sorted.
async fn ups(lab: &labs::Lab, volume: bool, n: usize) -> Vec<f64> {
    let mut took = Vec::new();
    for i in 0..n + 1 {
        let began = Instant::now();
        lab.compose_up(&file(4 + i, volume)).await;
        // The console's session ended with the old container; the first run
        // connects anew.
        let st = lab.sql("T1", "show work_mem").await;
        let elapsed = began.elapsed().as_secs_f64() * 1000.0;
        assert_eq!(st["rows"][0][0], format!("{}MB", 4 + i), "{st}");
        // The first up of a kind creates its volume (or differs from the
        // last kind): not counted.
        if i > 0 {
            took.push(elapsed);
        }
    }
    took.sort_by(f64::total_cmp);
    took
}

async fn run() {
    let _one = labs::DOCKER.lock().await;
    let Some(lab) = labs::start("docker", "bench-compose", &[]).await else {
        eprintln!("SKIPPED: no Docker engine");
        return;
    };
    let with_volume = ups(&lab, true, UPS).await;
    let without = ups(&lab, false, UPS).await;

    // 2. Log line → SSE.
    lab.sql(
        "T1",
        "create or replace function bench_mark(m text) returns float8 language plpgsql as $$
         declare t float8 := extract(epoch from clock_timestamp());
         begin raise log 'bench-mark-%', m; return t; end $$;",
    )
    .await;
    let arrivals: Arc<Mutex<HashMap<String, f64>>> = Arc::default();
    let mut res = lab
        .http
        .get(lab.url("/api/sandbox/log/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let seen = arrivals.clone();
    let reader = tokio::spawn(async move {
        let mut buf = String::new();
        while let Ok(Some(chunk)) = res.chunk().await {
            let now = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .unwrap()
                .as_secs_f64();
            buf.push_str(&String::from_utf8_lossy(&chunk));
            while let Some(at) = buf.find("bench-mark-") {
                let rest = &buf[at + "bench-mark-".len()..];
                let mark: String = rest.chars().take_while(char::is_ascii_digit).collect();
                seen.lock().unwrap().entry(mark).or_insert(now);
                buf = rest.to_string();
            }
        }
    });
    // The stream is open once the server has answered; let it subscribe.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let mut latency = Vec::new();
    for i in 0..MARKS {
        let mark = format!("{i:04}");
        let st = lab
            .sql("T1", &format!("select bench_mark('{mark}')::text"))
            .await;
        let written: f64 = st["rows"][0][0].as_str().unwrap().parse().unwrap();
        let end = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(at) = arrivals.lock().unwrap().get(&mark) {
                latency.push((at - written) * 1000.0);
                break;
            }
            assert!(Instant::now() < end, "mark {mark} never reached the stream");
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    reader.abort();
    latency.sort_by(f64::total_cmp);

    println!("\n| measure | median | p99 / max | target |");
    println!("| --- | --- | --- | --- |");
    println!(
        "| compose up of an edited file → first query, named volume, {UPS} ups | {:.0} ms | {:.0} ms | ≤ 2000 ms (median) |",
        percentile(&with_volume, 0.5),
        percentile(&with_volume, 1.0)
    );
    println!(
        "| the same without a volume (initdb each time), {UPS} ups | {:.0} ms | {:.0} ms | — |",
        percentile(&without, 0.5),
        percentile(&without, 1.0)
    );
    println!(
        "| PostgreSQL writes a log line → its SSE event arrives, {MARKS} lines | {:.1} ms | {:.1} ms | ≤ 500 ms |",
        percentile(&latency, 0.5),
        percentile(&latency, 1.0)
    );
}
