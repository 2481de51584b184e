//! Course benchmarks (prints figures; `harness = false`):
//! 1. rendering section 14 from markdown (model + HTML): median and p99,
//!    budget 5 ms;
//! 2. serving the cached lesson page: the release server under `wrk` with 64
//!    connections for 10 s, budget ≥ 10,000 requests/s and p99 ≤ 10 ms.
//!
//! Run with `scripts/bench.sh course` (or `cargo bench --bench course`).

#![allow(clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pglab::course::{model, render};

fn main() {
    let content = Path::new(env!("CARGO_MANIFEST_DIR")).join("content");
    bench_render(&content);
    bench_serve(&content);
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    let i = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[i]
}

fn bench_render(content: &Path) {
    let text = std::fs::read_to_string(content.join("14-postgresql-production-labs.md")).unwrap();
    for _ in 0..20 {
        std::hint::black_box(render::render(&text, ""));
    }
    let mut times = Vec::with_capacity(300);
    for _ in 0..300 {
        let start = Instant::now();
        let section = model::parse(&text);
        let out = render::render(&text, "");
        std::hint::black_box((section, out));
        times.push(start.elapsed());
    }
    times.sort();
    let median = percentile(&times, 0.5);
    let p99 = percentile(&times, 0.99);
    println!(
        "course/render section 14 ({} KiB markdown): median {:.3} ms, p99 {:.3} ms  (budget 5 ms: {})",
        text.len() / 1024,
        median.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        if median <= Duration::from_millis(5) {
            "ok"
        } else {
            "OVER"
        }
    );
}

fn bench_serve(content: &Path) {
    if Command::new("wrk").arg("--version").output().is_err() {
        println!("course/serve: SKIPPED, wrk is not installed (apt-get install wrk)");
        return;
    }
    let data = tempfile::tempdir().unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_pglab"))
        .args(["serve", "--bind", "127.0.0.1:0", "--sandbox", "local"])
        .arg("--content-dir")
        .arg(content)
        .arg("--data-dir")
        .arg(data.path())
        .env("RUST_LOG", "error")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let mut lines = BufReader::new(stdout).lines();
    let base = loop {
        let line = lines.next().expect("server output").unwrap();
        if let Some(url) = line.strip_prefix("pglab listening on ") {
            break url.trim().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});
    let url = format!("{base}/sections/14-postgresql-production-labs");
    // Warm the page cache.
    let warm = Command::new("wrk")
        .args(["-t1", "-c1", "-d1s", &url])
        .output()
        .unwrap();
    assert!(warm.status.success());
    let out = Command::new("wrk")
        .args(["-t2", "-c64", "-d10s", "--latency", &url])
        .output()
        .unwrap();
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
    let report = String::from_utf8_lossy(&out.stdout);
    let rps = report
        .lines()
        .find_map(|l| l.strip_prefix("Requests/sec:"))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| "?".into());
    let p99 = report
        .lines()
        .find_map(|l| l.trim().strip_prefix("99%"))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| "?".into());
    let p50 = report
        .lines()
        .find_map(|l| l.trim().strip_prefix("50%"))
        .map(|v| v.trim().to_string())
        .unwrap_or_else(|| "?".into());
    let non2xx = report
        .lines()
        .find(|l| l.contains("Non-2xx"))
        .unwrap_or("")
        .trim()
        .to_string();
    println!(
        "course/serve cached lesson page, wrk 2 threads 64 connections 10 s: {rps} requests/s, p50 {p50}, p99 {p99}  (budget ≥ 10,000 req/s, p99 ≤ 10 ms) {non2xx}"
    );
}
