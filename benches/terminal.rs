//! Sandbox terminal benchmark (prints a table; `cargo bench --bench terminal`),
//! on the real server (release build) with the Docker backend and the
//! offline sandbox image:
//! 1. opening a terminal on a running sandbox: WebSocket handshake → the
//!    shell's prompt (median of 10);
//! 2. a command's round trip at the prompt: `printf` typed → its output back
//!    (median and p99 of 100), what a learner feels while typing;
//! 3. a flood (`cat /dev/urandom | base64`) for 3 s: bytes per second
//!    received against `--terminal-output-rate` (ratio; it should stay near
//!    1), and the slowest `/healthz` meanwhile.

#![allow(clippy::unwrap_used, dead_code)]

#[path = "../tests/common/mod.rs"]
mod common;
#[path = "../tests/common/sandbox.rs"]
mod support;
#[path = "../tests/common/term.rs"]
mod term;

use std::time::{Duration, Instant};

const RATE: u64 = 256 * 1024;

fn main() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 - 1.0) * p).round() as usize]
}

fn sorted(mut v: Vec<f64>) -> Vec<f64> {
    v.sort_by(|a, b| a.total_cmp(b));
    v
}

async fn run() {
    if !common::require_docker() {
        return;
    }
    let (_temp, data) = support::data_dir();
    let (_cleanup, server) =
        term::docker_server(data, &["--terminal-output-rate", &RATE.to_string()]).await;
    let http = common::signed_in_learner(&server, "bench-tess").await;
    let started = http
        .post(server.url("/api/sandbox/start"))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 200);
    let (cookie, _) = term::cookies(&server, "bench-tess").await;

    // 1. Open → prompt.
    let mut opens = Vec::new();
    for _ in 0..10 {
        let began = Instant::now();
        let mut t = term::open(&server, Some(&cookie), None, 120, 40)
            .await
            .unwrap();
        t.expect(0, ":~$", 30).await;
        opens.push(ms(began.elapsed()));
        t.close().await;
    }
    let opens = sorted(opens);

    // 2. Round trips at the prompt.
    let mut t = term::open(&server, Some(&cookie), None, 120, 40)
        .await
        .unwrap();
    t.expect(0, ":~$", 30).await;
    let mut trips = Vec::new();
    for n in 0..100 {
        let from = t.screen.len();
        let began = Instant::now();
        // The typed line's echo has `out%s`; only the output has `out<N>`.
        t.line(&format!("printf 'out%s\\n' {n}")).await;
        t.expect(from, &format!("out{n}\r"), 10).await;
        trips.push(ms(began.elapsed()));
    }
    let trips = sorted(trips);

    // 3. A flood for 3 s, with /healthz probed meanwhile.
    t.line("cat /dev/urandom | base64").await;
    let probe = {
        let url = server.url("/healthz");
        tokio::spawn(async move {
            let client = reqwest::Client::new();
            let mut worst = 0.0f64;
            let end = Instant::now() + Duration::from_secs(3);
            while Instant::now() < end {
                let began = Instant::now();
                client.get(&url).send().await.unwrap();
                worst = worst.max(ms(began.elapsed()));
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            worst
        })
    };
    let began = Instant::now();
    let mut bytes = 0u64;
    while began.elapsed() < Duration::from_secs(3) {
        bytes += t.read_once(Duration::from_millis(200)).await.unwrap_or(0) as u64;
    }
    let per_s = bytes as f64 / began.elapsed().as_secs_f64();
    let worst_health = probe.await.unwrap();
    t.send_bytes(b"\x03").await;
    t.close().await;

    println!("\nsandbox terminal (Docker backend, release build)");
    println!("| measure | median | p99 / max |");
    println!("| --- | --- | --- |");
    println!(
        "| open a terminal on a running sandbox → prompt (10) | {:.1} ms | max {:.1} ms |",
        percentile(&opens, 0.5),
        opens[opens.len() - 1]
    );
    println!(
        "| `printf` typed → output back (100) | {:.2} ms | {:.2} ms |",
        percentile(&trips, 0.5),
        percentile(&trips, 0.99)
    );
    println!(
        "| flood for 3 s: {:.0} KiB/s received, limit {} KiB/s (ratio {:.2}) | | slowest /healthz {:.1} ms |",
        per_s / 1024.0,
        RATE / 1024,
        per_s / RATE as f64,
        worst_health
    );
}
