//! Sign-in benchmark: `POST /api/login` against the real server binary over
//! loopback HTTP (rate-limit check, argon2id verification off the runtime,
//! session and bearer token written to the store), plus argon2 verification
//! alone for comparison. Target: median ≤ 300 ms on the project's machines.
//!
//! Run with `cargo bench --bench auth` (or `scripts/bench.sh`).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const ROUNDS: usize = 40;

fn stats(label: &str, mut ms: Vec<f64>) -> f64 {
    ms.sort_by(|a, b| a.total_cmp(b));
    let median = ms[ms.len() / 2];
    let p99 = ms[((ms.len() as f64 * 0.99).ceil() as usize).min(ms.len()) - 1];
    let mean = ms.iter().sum::<f64>() / ms.len() as f64;
    println!(
        "{label:<34} n={:>3}  median {median:>7.1} ms  mean {mean:>7.1} ms  p99 {p99:>7.1} ms  min {:>6.1} ms",
        ms.len(),
        ms[0]
    );
    median
}

fn main() {
    let temp = tempfile::tempdir().expect("temp dir");
    let data = temp.path().join("data");
    let exe = env!("CARGO_BIN_EXE_pglab");
    let add = Command::new(exe)
        .args([
            "user",
            "add",
            "bench",
            "--learner",
            "--password",
            "bench-password",
            "--data-dir",
        ])
        .arg(&data)
        .output()
        .expect("pglab user add");
    assert!(
        add.status.success(),
        "{}",
        String::from_utf8_lossy(&add.stderr)
    );

    let mut child = Command::new(exe)
        .args([
            "serve",
            "--bind",
            "127.0.0.1:0",
            "--sandbox",
            "local",
            "--data-dir",
        ])
        .arg(&data)
        .arg("--content-dir")
        .arg(concat!(env!("CARGO_MANIFEST_DIR"), "/content"))
        .env("RUST_LOG", "warn")
        .stdout(Stdio::piped())
        .spawn()
        .expect("start pglab");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let base = loop {
        let line = lines.next().expect("server output").expect("line");
        if let Some(url) = line.strip_prefix("pglab listening on ") {
            break url.trim().to_string();
        }
    };
    std::thread::spawn(move || for _ in lines {});

    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(async {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let login = || async {
            let started = Instant::now();
            let res = http
                .post(format!("{base}/api/login"))
                .json(&serde_json::json!({"username": "bench", "password": "bench-password"}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 200);
            res.bytes().await.unwrap();
            started.elapsed().as_secs_f64() * 1000.0
        };
        login().await; // warm-up: connection, dummy hash, page cache
        let mut signin = Vec::with_capacity(ROUNDS);
        for _ in 0..ROUNDS {
            signin.push(login().await);
        }

        let phc = pglab::auth::password::hash("bench-password".into())
            .await
            .unwrap();
        let mut verify = Vec::with_capacity(ROUNDS);
        for _ in 0..ROUNDS {
            let started = Instant::now();
            assert!(
                pglab::auth::password::verify("bench-password".into(), Some(phc.clone()))
                    .await
                    .unwrap()
            );
            verify.push(started.elapsed().as_secs_f64() * 1000.0);
        }

        // The same verify as the argon2 crate does it by itself: 19 MiB of
        // fresh memory per hash (what pglab did before it kept the memory).
        let mut fresh = Vec::with_capacity(ROUNDS);
        for _ in 0..ROUNDS {
            let phc = phc.clone();
            let started = Instant::now();
            let ok = tokio::task::spawn_blocking(move || {
                use argon2::{Argon2, PasswordHash, PasswordVerifier};
                let parsed = PasswordHash::new(&phc).unwrap();
                Argon2::default()
                    .verify_password(b"bench-password", &parsed)
                    .is_ok()
            })
            .await
            .unwrap();
            assert!(ok);
            fresh.push(started.elapsed().as_secs_f64() * 1000.0);
        }

        println!(
            "auth benchmark ({} cores)",
            std::thread::available_parallelism().map_or(1, |n| n.get())
        );
        let median = stats("sign-in POST /api/login (HTTP)", signin);
        let kept = stats("argon2id verify alone (kept memory)", verify);
        let fresh = stats("argon2 crate's verify (fresh memory)", fresh);
        println!("kept memory vs fresh: {:.2}x the speed", fresh / kept);
        let verdict = if median <= 300.0 { "OK" } else { "OVER TARGET" };
        println!("sign-in median {median:.1} ms, target <= 300 ms: {verdict}");
    });
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}
