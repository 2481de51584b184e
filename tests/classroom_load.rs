//! A classroom under load, with faults (issue #8): N simulated learners on
//! loopback against the real pglab binary with the Docker backend, on a
//! private Docker engine of the test's own (tests/common/engine.rs) so that
//! the engine can be stopped and started freely.
//!
//! Each learner signs up and in, then works through rounds of section 14's
//! first labs (tests/load/learner.rs) while the instructor polls the
//! classroom matrix every 2 s. A round is done at a seat: at most
//! PGLAB_LOAD_ACTIVE learners (default: the running cap) work at the same
//! moment, the others are away and queue for a seat again, so the whole
//! class passes through the running cap, which stops the least recently
//! used sandboxes (a learner back for round two finds theirs stopped). During the run: a random sandbox container is killed, the
//! engine is stopped and started, pglab is restarted (SIGTERM, then started
//! again on the same data dir). Afterwards every committed marker row and
//! every acknowledged check pass must still be there, and every answer a
//! learner got must be explained: success, a reported lost connection, or a
//! clear 503 / pglab not answering during a fault; a 500, a hang or an
//! unexpected error fails the test.
//!
//! `cargo test --test classroom_load` runs the reduced CI form (20 learners,
//! cap 8); `scripts/load.sh --learners 200 --cap 50` the full one. Settings
//! come from the environment: PGLAB_LOAD_LEARNERS, PGLAB_LOAD_CAP,
//! PGLAB_LOAD_ROUNDS, PGLAB_LOAD_ACTIVE (0: everyone at once),
//! PGLAB_LOAD_CONCURRENCY, PGLAB_LOAD_LIMIT_S,
//! PGLAB_LOAD_ARRIVAL_MS (learner i arrives i × this into the run; 300),
//! PGLAB_LOAD_FAULTS (comma list of kill, engine, restart; "none"),
//! PGLAB_LOAD_REPORT (a file to write the markdown report to),
//! PGLAB_LOAD_SWARM (N: the swarm backend on N private engines in network
//! namespaces instead, tests/load/engines.rs; `scripts/load.sh --swarm N`).

#![allow(clippy::unwrap_used)]

#[path = "load/client.rs"]
mod client;
mod common;
#[path = "load/engines.rs"]
mod engines;
#[path = "load/faults.rs"]
mod faults;
#[path = "load/learner.rs"]
mod learner;
#[path = "load/report.rs"]
mod report;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::time::{Duration, Instant};

use client::{Class, Ctx};
use engines::Engines;
use learner::{Acknowledged, Labs, Learner};
use reqwest::Method;
use serde_json::json;

fn setting(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

use common::docker::image;

pub const METRICS_SECRET: &str = "load-test-metrics";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_classroom_under_load_with_faults_loses_nothing() {
    let swarm_nodes = setting("PGLAB_LOAD_SWARM", 0);
    if !Engines::available(swarm_nodes) {
        return;
    }
    let learners = setting("PGLAB_LOAD_LEARNERS", 20);
    let cap = setting("PGLAB_LOAD_CAP", 8);
    let rounds = setting("PGLAB_LOAD_ROUNDS", 2);
    let concurrency = setting("PGLAB_LOAD_CONCURRENCY", 8);
    // At work at once: as many as the cap lets run (0: the whole class).
    let active = match setting("PGLAB_LOAD_ACTIVE", cap) {
        0 => learners,
        n => n.min(learners),
    };
    let limit = Duration::from_secs(setting("PGLAB_LOAD_LIMIT_S", 600) as u64);
    let fault_list =
        std::env::var("PGLAB_LOAD_FAULTS").unwrap_or_else(|_| "kill,engine,restart".into());

    let engine = Engines::start(swarm_nodes, &image());
    let (backend, backend_args) = engine.server_args(cap);
    let temp = tempfile::Builder::new()
        .prefix("pglab-load-")
        .tempdir()
        .unwrap();
    let data = temp.path().join("data");
    let opts = {
        let data = data.clone();
        move || common::ServerOptions {
            data_dir: Some(data.clone()),
            sandbox: backend.clone(),
            extra_args: [
                backend_args.clone(),
                vec![
                    "--sandbox-image".into(),
                    image(),
                    "--sandbox-max-running".into(),
                    cap.to_string(),
                ],
            ]
            .concat(),
            env: vec![("PGLAB_METRICS_SECRET".into(), METRICS_SECRET.into())],
            ..Default::default()
        }
    };
    let server = common::TestServer::start_with(opts());
    let pid = Arc::new(AtomicU32::new(server.pid()));
    let arrival_ms = setting("PGLAB_LOAD_ARRIVAL_MS", 300) as u64;
    let ctx = Arc::new(Ctx::new(
        server.base.clone(),
        concurrency,
        active,
        limit,
        arrival_ms,
    ));
    let stop_sampling = Arc::new(AtomicBool::new(false));
    let sampler = report::sample_usage(pid.clone(), stop_sampling.clone());

    // The instructor and the classroom; then the class signs up and in.
    let instructor = instructor_token(&ctx, &server).await;
    let (class, _, room) = ctx
        .send(
            usize::MAX,
            "POST /api/instructor/classrooms",
            Method::POST,
            "/api/instructor/classrooms",
            &instructor,
            Some(&json!({"name": "load class"})),
        )
        .await;
    assert_eq!(class, Class::Ok, "{room}");
    let code = room["join_code"].as_str().unwrap().to_string();
    let room_id = room["id"].as_i64().unwrap();
    let mut signups = Vec::new();
    for i in 0..learners {
        let (ctx, code) = (ctx.clone(), code.clone());
        signups.push(tokio::spawn(async move { sign_up(&ctx, i, &code).await }));
    }
    let mut class_list = Vec::new();
    for s in signups {
        class_list.push(s.await.unwrap());
    }

    // The instructor watches the matrix every 2 s while the class works.
    let class_done = Arc::new(AtomicBool::new(false));
    let watcher = {
        let (ctx, done, token) = (ctx.clone(), class_done.clone(), instructor.clone());
        tokio::spawn(async move {
            let path = format!("/api/instructor/classrooms/{room_id}/progress");
            while !done.load(Ordering::Relaxed) {
                ctx.send(
                    usize::MAX,
                    "GET matrix (instructor, every 2 s)",
                    Method::GET,
                    &path,
                    &token,
                    None,
                )
                .await;
                tokio::time::sleep(Duration::from_secs(2)).await;
            }
        })
    };
    let labs = Arc::new(Labs::load());
    let tasks: Vec<_> = class_list
        .into_iter()
        .map(|l| tokio::spawn(l.run(ctx.clone(), labs.clone(), rounds)))
        .collect();

    // Faults, once the class is warm.
    let server = Arc::new(std::sync::Mutex::new(Some(server)));
    let engine = Arc::new(std::sync::Mutex::new(engine));
    let plan = faults::Plan {
        ctx: ctx.clone(),
        engine: engine.clone(),
        server: server.clone(),
        pid: pid.clone(),
        start_server: Arc::new(opts),
        warm_runs: learners,
        all_arrived: Duration::from_millis(learners as u64 * arrival_ms),
    };
    plan.run(&fault_list).await;
    ctx.faults_done.store(true, Ordering::Relaxed);

    let mut done = Vec::new();
    for t in tasks {
        done.push(t.await.unwrap());
    }
    class_done.store(true, Ordering::Relaxed);
    watcher.await.unwrap();

    // The figures cover the class's work; then nothing acknowledged may be
    // lost (the check's own requests are kept out of the figures).
    stop_sampling.store(true, Ordering::Relaxed);
    let usage = sampler.join().unwrap();
    let measured = ctx.samples.lock().unwrap().len();
    let (lost_markers, lost_passes) = verify(&ctx, &done).await;
    let samples = ctx.samples.lock().unwrap().clone();
    let unexplained = samples
        .iter()
        .filter(|s| !report::explained(&ctx, s))
        .count();
    let summary = report::Summary {
        title: format!(
            "Classroom load: {learners} learners, running cap {cap}, {}",
            engine.lock().unwrap().describe()
        ),
        learners,
        cap,
        active,
        rounds,
        concurrency,
        usage,
        starts_ms: ctx.starts_ms.lock().unwrap().clone(),
        lost_markers,
        acked_markers: done.iter().map(|l| l.acked.markers.len()).sum(),
        lost_passes,
        acked_passes: done.iter().map(|l| l.acked.passed.len()).sum(),
        gave_up: done.iter().map(|l| l.acked.gave_up.len()).sum(),
        unexplained,
    };
    ctx.samples.lock().unwrap().truncate(measured);
    let table = report::render(&ctx, &summary);
    println!("\n{table}");
    if let Ok(path) = std::env::var("PGLAB_LOAD_REPORT")
        && !path.is_empty()
    {
        std::fs::write(path, &table).unwrap();
    }

    drop(server.lock().unwrap().take());
    drop(engine);
    assert_eq!(unexplained, 0, "unexplained errors:\n{table}");
    assert_eq!((lost_markers, lost_passes), (0, 0), "lost data:\n{table}");
    assert_eq!(summary.gave_up, 0, "learners gave up on steps:\n{table}");
    for l in &done {
        assert!(
            l.acked.rounds >= rounds,
            "{} did {} rounds",
            l.username,
            l.acked.rounds
        );
        assert!(
            !l.acked.markers.is_empty() && l.acked.passed.len() == 3,
            "{}: {:?}",
            l.username,
            l.acked
        );
    }
    for f in ["kill", "engine", "restart"] {
        if fault_list.contains(f) {
            let faults = ctx.faults.lock().unwrap();
            assert!(
                faults.iter().any(|x| x.name.starts_with(f)),
                "fault {f} never ran:\n{table}"
            );
        }
    }
}

/// `pglab user add --instructor`, then a bearer token from `POST /api/login`.
async fn instructor_token(ctx: &Ctx, server: &common::TestServer) -> String {
    let out = common::pglab()
        .args([
            "user",
            "add",
            "teacher",
            "--instructor",
            "--password",
            "teacher-password",
            "--data-dir",
        ])
        .arg(&server.data_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    login(ctx, usize::MAX, "teacher", "teacher-password").await
}

async fn login(ctx: &Ctx, who: usize, username: &str, password: &str) -> String {
    let body = json!({"username": username, "password": password});
    let (class, _, v) = ctx
        .send(
            who,
            "POST /api/login",
            Method::POST,
            "/api/login",
            "",
            Some(&body),
        )
        .await;
    assert_eq!(class, Class::Ok, "login of {username}: {v}");
    v["token"].as_str().unwrap().to_string()
}

async fn sign_up(ctx: &Ctx, i: usize, code: &str) -> Learner {
    let username = format!("learner{i:03}");
    let password = format!("{username}-password");
    let body = json!({"username": username, "password": password, "join_code": code});
    let (class, _, v) = ctx
        .send(
            i,
            "POST /api/signup",
            Method::POST,
            "/api/signup",
            "",
            Some(&body),
        )
        .await;
    assert_eq!(class, Class::Ok, "sign-up of {username}: {v}");
    let token = login(ctx, i, &username, &password).await;
    Learner {
        index: i,
        username,
        token,
        acked: Acknowledged::default(),
    }
}

/// Every learner's acknowledged marker rows are in their sandbox and every
/// acknowledged pass is in the store: (lost markers, lost passes). Learners
/// are checked concurrently (seats and the request gate bound it): most
/// sandboxes were stopped by the running cap and must start again.
async fn verify(ctx: &Ctx, done: &[Learner]) -> (usize, usize) {
    let checks = done.iter().map(|l| verify_one(ctx, l));
    futures::future::join_all(checks)
        .await
        .into_iter()
        .fold((0, 0), |a, b| (a.0 + b.0, a.1 + b.1))
}

async fn verify_one(ctx: &Ctx, l: &Learner) -> (usize, usize) {
    // A seat, like a learner at work: at most as many sandboxes at once as
    // the class had, so the check does not thrash the running cap.
    let _seat = ctx.seats.acquire().await.unwrap();
    // 15 s of tries, as before; a learner told "number N in line" (the
    // sandboxes of the class's end still hold their places until reaped)
    // waits on for their turn, up to 10 minutes.
    let mut rows = None;
    let mut end = Instant::now() + Duration::from_secs(15);
    let line_end = Instant::now() + Duration::from_secs(600);
    let mut last = Class::Ok;
    while Instant::now() < end {
        let (class, v) = ctx
            .sql(l.index, &l.token, "select n from load_marker", None)
            .await;
        if class == Class::Ok {
            rows = Some(v);
            break;
        }
        if class == Class::InLine {
            end = line_end;
        }
        last = class;
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    let rows =
        rows.unwrap_or_else(|| panic!("cannot read {}'s markers (last: {last:?})", l.username));
    let kept: Vec<i64> = rows["statements"][0]["rows"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|r| r[0].as_str()?.parse().ok())
        .collect();
    let lost_markers = l.acked.markers.iter().filter(|m| !kept.contains(m)).count();
    let (class, _, progress) = ctx
        .send(
            l.index,
            "GET /api/progress",
            Method::GET,
            "/api/progress",
            &l.token,
            None,
        )
        .await;
    assert_eq!(class, Class::Ok, "{progress}");
    let passed: Vec<&str> = progress["exercises"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["status"] == "passed")
        .filter_map(|e| e["id"].as_str())
        .collect();
    let lost_passes = l
        .acked
        .passed
        .iter()
        .filter(|p| !passed.contains(&p.as_str()))
        .count();
    (lost_markers, lost_passes)
}
