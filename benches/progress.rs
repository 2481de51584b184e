//! The instructor's matrix at classroom scale: 200 learners × 30 exercises
//! with progress and evidence, served by the real binary over loopback HTTP
//! (JSON API, HTML page and CSV). Target: ≤ 50 ms per request.
//!
//! Run with `cargo bench --bench progress` (or `scripts/bench.sh progress`);
//! `PGLAB_BENCH_ROUNDS` (default 50) requests per measure, e.g. more under
//! a profiler.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::fmt::Write as _;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const LEARNERS: usize = 200;
const EXERCISES: usize = 30;
const ROUNDS: usize = 50;

fn rounds() -> usize {
    std::env::var("PGLAB_BENCH_ROUNDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .filter(|&n| n > 0)
        .unwrap_or(ROUNDS)
}

fn stats(label: &str, mut ms: Vec<f64>) -> f64 {
    ms.sort_by(|a, b| a.total_cmp(b));
    let median = ms[ms.len() / 2];
    let p99 = ms[((ms.len() as f64 * 0.99).ceil() as usize).min(ms.len()) - 1];
    println!(
        "{label:<44} n={:>3}  median {median:>7.2} ms  p99 {p99:>7.2} ms",
        ms.len()
    );
    median
}

/// A section in the curriculum format with `EXERCISES` exercises.
fn write_course(dir: &std::path::Path) {
    let mut md = String::from("# SECTION 30 — Matrix Bench\n\n## PART B — BEGINNER PRACTICE\n\n");
    for i in 1..=EXERCISES {
        let _ = write!(md, "### Exercise 30.B.{i} — Step {i}\n\nDo step {i}.\n\n");
    }
    std::fs::write(dir.join("30-matrix-bench.md"), md).unwrap();
}

async fn populate(data: &std::path::Path) -> i64 {
    std::fs::create_dir_all(data).unwrap();
    let store = pglab::store::Store::open(&data.join("pglab.db"))
        .await
        .unwrap();
    let pool = store.pool();
    let room: i64 = sqlx::query_scalar(
        "insert into classrooms (name, join_code) values ('Bench class', 'BENCH-CODE') returning id",
    )
    .fetch_one(pool)
    .await
    .unwrap();
    let now = pglab::progress::now();
    let mut tx = pool.begin().await.unwrap();
    for l in 0..LEARNERS {
        let id: i64 = sqlx::query_scalar("insert into users (username) values (?) returning id")
            .bind(format!("learner{l:03}"))
            .fetch_one(&mut *tx)
            .await
            .unwrap();
        sqlx::query("insert into classroom_members (classroom_id, user_id) values (?, ?)")
            .bind(room)
            .bind(id)
            .execute(&mut *tx)
            .await
            .unwrap();
        // A spread: learner l has passed (l % 31) exercises and works on the next.
        for e in 1..=EXERCISES {
            let status = if e <= l % 31 {
                "passed"
            } else if e == l % 31 + 1 {
                "in_progress"
            } else {
                continue;
            };
            sqlx::query(
                "insert into exercise_progress (user_id, exercise_id, status, statements, attempts, first_passed_at, last_activity_at)
                 values (?, ?, ?, 3, 1, ?, ?)",
            )
            .bind(id)
            .bind(format!("30.B.{e}"))
            .bind(status)
            .bind((status == "passed").then_some(now - 600))
            .bind(now - 60)
            .execute(&mut *tx)
            .await
            .unwrap();
        }
        // What recording that evidence leaves for the stuck rules: every
        // learner active now; a third repeating an error.
        sqlx::query(
            "insert into learner_activity (user_id, last_activity_at, working_since, repeated_error)
             values (?, ?, ?, ?)",
        )
        .bind(id)
        .bind(now - 60)
        .bind(now - 3000)
        .bind((l % 3 == 0).then_some("relation \"taks\" does not exist"))
        .execute(&mut *tx)
        .await
        .unwrap();
        for k in 0..40 {
            sqlx::query(
                "insert into learner_evidence (user_id, exercise_id, kind, sql, error, sqlstate, created_at)
                 values (?, '30.B.1', 'statement', 'select * from tasks', ?, ?, ?)",
            )
            .bind(id)
            .bind((k % 3 == 0).then_some("relation \"taks\" does not exist"))
            .bind((k % 3 == 0).then_some("42P01"))
            .bind(now - 3000 + k * 60)
            .execute(&mut *tx)
            .await
            .unwrap();
        }
    }
    tx.commit().await.unwrap();
    pool.close().await;
    room
}

fn main() {
    let temp = tempfile::tempdir().expect("temp dir");
    let data = temp.path().join("data");
    let content = temp.path().join("content");
    std::fs::create_dir_all(&content).unwrap();
    write_course(&content);
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let room = runtime.block_on(populate(&data));

    let exe = env!("CARGO_BIN_EXE_pglab");
    let add = Command::new(exe)
        .args([
            "user",
            "add",
            "teach",
            "--instructor",
            "--password",
            "teach-password",
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
    // The instructor teaches the class (only its instructors see its matrix).
    runtime.block_on(async {
        let store = pglab::store::Store::open(&data.join("pglab.db"))
            .await
            .unwrap();
        sqlx::query(
            "insert into classroom_instructors (classroom_id, user_id)
             select ?, id from users where username = 'teach'",
        )
        .bind(room)
        .execute(store.pool())
        .await
        .unwrap();
        store.pool().close().await;
    });
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
        .arg(&content)
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

    runtime.block_on(async {
        let http = reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .unwrap();
        let login: serde_json::Value = http
            .post(format!("{base}/api/login"))
            .json(&serde_json::json!({"username": "teach", "password": "teach-password"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let token = login["token"].as_str().unwrap().to_string();
        let time = |path: String| {
            let (http, token, base) = (http.clone(), token.clone(), base.clone());
            async move {
                let rounds = rounds();
                let mut ms = Vec::with_capacity(rounds);
                let mut bytes = 0;
                for i in 0..=rounds {
                    let started = Instant::now();
                    let res = http
                        .get(format!("{base}{path}"))
                        .bearer_auth(&token)
                        .send()
                        .await
                        .unwrap();
                    assert_eq!(res.status(), 200, "{path}");
                    bytes = res.bytes().await.unwrap().len();
                    if i > 0 {
                        ms.push(started.elapsed().as_secs_f64() * 1000.0);
                    }
                }
                (ms, bytes)
            }
        };
        println!(
            "progress benchmark: {LEARNERS} learners × {EXERCISES} exercises ({} cores)",
            std::thread::available_parallelism().map_or(1, |n| n.get())
        );
        let (json, json_bytes) = time(format!("/api/instructor/classrooms/{room}/progress")).await;
        let (html, html_bytes) = time(format!("/instructor/classrooms/{room}/progress")).await;
        let (csv, _) = time(format!("/api/instructor/classrooms/{room}/progress.csv")).await;
        let a = stats(&format!("matrix JSON ({} KiB)", json_bytes / 1024), json);
        let b = stats(
            &format!("matrix HTML page ({} KiB)", html_bytes / 1024),
            html,
        );
        stats("matrix CSV", csv);
        let worst = a.max(b);
        let verdict = if worst <= 50.0 { "OK" } else { "OVER TARGET" };
        println!("matrix served in median {worst:.2} ms, target <= 50 ms: {verdict}");
    });
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}
