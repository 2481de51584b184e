//! The admission queue of a full classroom (issue #18, item 5) on a real
//! three-node Docker Swarm (tests/common/swarm.rs) with a real `pglab
//! serve` over HTTP: capacity 1 per node, so three learners fill the
//! swarm; a fourth and a fifth who start are answered at once (202, state
//! `queued`, "number 1" and "number 2 in line"), hear the same through the
//! progress stream (SSE) and the sandbox status, and a console run of the
//! fifth answers its number at once too; the instructor's API lists the line
//! (a learner gets 403); pglab is restarted and the line comes back as it
//! was (same order and join times, a start again answers the kept place,
//! not a second start); one of the first three stops, and the fourth's
//! start goes on by itself (its page hears `ready`) and its console answers
//! a query, while the fifth becomes number 1; the fifth leaves the line with
//! Stop and its start ends (progress `left`).
//!
//! One test function on one swarm: setting a swarm up costs about half a
//! minute. Only the engines of this test's swarm are used.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::docker::image;
use common::swarm::Swarm;
use common::{ServerOptions, TestServer};
use serde_json::{Value, json};

const SECRET: &str = "queue-scrape-secret";

/// Reads an SSE response until an event of `kind` whose data satisfies
/// `want`, or `deadline`; returns the data.
async fn next_event(
    res: &mut reqwest::Response,
    buf: &mut String,
    kind: &str,
    want: impl Fn(&Value) -> bool,
    deadline: Duration,
) -> Value {
    let end = Instant::now() + deadline;
    loop {
        while let Some(at) = buf.find("\n\n") {
            let block: String = buf.drain(..at + 2).collect();
            let mut event = "message";
            let mut data = String::new();
            for line in block.lines() {
                if let Some(e) = line.strip_prefix("event:") {
                    event = e.trim();
                } else if let Some(d) = line.strip_prefix("data:") {
                    data.push_str(d.trim_start());
                }
            }
            if event == kind
                && let Ok(v) = serde_json::from_str::<Value>(&data)
                && want(&v)
            {
                return v;
            }
        }
        let left = end.saturating_duration_since(Instant::now());
        assert!(
            !left.is_zero(),
            "no {kind} event as wanted within {deadline:?}; buffer: {buf}"
        );
        match tokio::time::timeout(left, res.chunk()).await {
            Ok(Ok(Some(bytes))) => buf.push_str(&String::from_utf8_lossy(&bytes)),
            Ok(Ok(None)) => panic!("the event stream ended; buffer: {buf}"),
            Ok(Err(e)) => panic!("the event stream failed: {e}"),
            Err(_) => {}
        }
    }
}

async fn get(http: &reqwest::Client, server: &TestServer, path: &str) -> (u16, Value) {
    let res = http.get(server.url(path)).send().await.unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

async fn post(
    http: &reqwest::Client,
    server: &TestServer,
    path: &str,
    body: Value,
) -> (u16, Value) {
    let res = http
        .post(server.url(path))
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// Waits until `GET /api/sandbox` of `http` satisfies `want`.
async fn sandbox_until(
    http: &reqwest::Client,
    server: &TestServer,
    what: &str,
    want: impl Fn(&Value) -> bool,
) -> Value {
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        let (status, v) = get(http, server, "/api/sandbox").await;
        if status == 200 && want(&v) {
            return v;
        }
        assert!(Instant::now() < end, "{what}: last {status} {v}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn a_full_swarm_queues_starts_first_come_and_instructors_see_the_line() {
    if !Swarm::available() {
        return;
    }
    let began = Instant::now();
    let swarm = Swarm::start(3, &image());
    eprintln!("swarm of 3 up in {:?}", began.elapsed());
    let options = || ServerOptions {
        sandbox: "swarm".into(),
        extra_args: vec![
            "--docker-host".into(),
            swarm.manager_address(),
            "--engine-tls".into(),
            swarm.engine_tls().to_str().unwrap().into(),
            "--sandbox-image".into(),
            image(),
            "--swarm-node-capacity".into(),
            "1".into(),
            // The line of a full classroom alone (the warm pool's own turn
            // in the line is tested in tests/sandbox_swarm.rs).
            "--sandbox-pool".into(),
            "0".into(),
        ],
        env: vec![("PGLAB_METRICS_SECRET".into(), SECRET.into())],
        ..Default::default()
    };
    let server = TestServer::start_with(options());

    // One classroom: its instructor, five learners.
    let teacher = common::signed_in_instructor(&server, "queue-teacher").await;
    let (status, room) = post(
        &teacher,
        &server,
        "/api/instructor/classrooms",
        json!({"name": "full class"}),
    )
    .await;
    assert_eq!(status, 201, "{room}");
    let room_id = room["id"].as_i64().unwrap();
    let code = room["join_code"].as_str().unwrap().to_string();
    let mut learners = Vec::new();
    for i in 1..=5 {
        learners.push(common::joined_learner(&server, &format!("q{i}"), &code).await);
    }

    // Three learners fill the three nodes (capacity 1 each).
    let starts: Vec<_> = learners[..3]
        .iter()
        .map(|http| post(http, &server, "/api/sandbox/start", json!({})))
        .collect();
    for (status, v) in futures::future::join_all(starts).await {
        assert_eq!(status, 200, "{v}");
        assert_eq!(v["state"], "running", "{v}");
    }
    let nodes: std::collections::HashSet<String> = {
        let mut set = std::collections::HashSet::new();
        for http in &learners[..3] {
            let (_, v) = get(http, &server, "/api/sandbox").await;
            set.insert(v["node"].as_str().unwrap_or_default().to_string());
        }
        set
    };
    eprintln!("three sandboxes running at {:?}", began.elapsed());

    // The fourth and the fifth start: each is answered at once with their
    // number in line (the start goes on by itself) and hears it through the
    // progress stream.
    let mut streams = Vec::new();
    for (i, number) in [(3, 1), (4, 2)] {
        let mut events = learners[i]
            .get(server.url("/api/sandbox/events"))
            .send()
            .await
            .unwrap();
        assert_eq!(events.status(), 200);
        let mut buf = String::new();
        next_event(
            &mut events,
            &mut buf,
            "status",
            |_| true,
            Duration::from_secs(10),
        )
        .await;
        let asked = Instant::now();
        let (status, v) = tokio::time::timeout(
            Duration::from_secs(30),
            post(&learners[i], &server, "/api/sandbox/start", json!({})),
        )
        .await
        .expect("a start in a full classroom held its request");
        assert_eq!(status, 202, "{v}");
        assert_eq!(v["state"], "queued", "{v}");
        assert_eq!(v["queue_position"], number, "{v}");
        eprintln!("number {number} answered in {:?}", asked.elapsed());
        let told = next_event(
            &mut events,
            &mut buf,
            "progress",
            |v| v["step"] == "in line",
            Duration::from_secs(30),
        )
        .await;
        assert_eq!(told["queue_position"], number, "{told}");
        assert_eq!(
            told["message"],
            format!("the classroom is full: you are number {number} in line")
        );
        assert_eq!(told["done"], false);
        let v = sandbox_until(&learners[i], &server, "queued status", |v| {
            v["state"] == "queued"
        })
        .await;
        assert_eq!(v["queue_position"], number, "{v}");
        streams.push((events, buf));
    }
    // Starting again while in line answers the same place, and a console
    // run answers it at once rather than waiting for a place.
    let (status, v) = post(&learners[4], &server, "/api/sandbox/start", json!({})).await;
    assert_eq!(status, 202, "{v}");
    assert_eq!(v["queue_position"], 2, "{v}");
    let (status, run) = tokio::time::timeout(
        Duration::from_secs(30),
        post(
            &learners[4],
            &server,
            "/api/sql",
            json!({"sql": "select 1"}),
        ),
    )
    .await
    .expect("a console run in a full classroom held its request");
    assert_eq!(status, 200, "{run}");
    let error = run["statements"][0]["error"]["message"]
        .as_str()
        .unwrap_or_default();
    assert!(
        error.starts_with("the classroom is full: you are number 2 in line."),
        "{run}"
    );
    assert_eq!(
        sandbox_until(&learners[4], &server, "still in line", |_| true).await["queue_position"],
        2
    );

    // The instructor sees the line; a learner may not.
    let (status, progress) = get(
        &teacher,
        &server,
        &format!("/api/instructor/classrooms/{room_id}/progress"),
    )
    .await;
    assert_eq!(status, 200, "{progress}");
    let queue = &progress["queue"];
    assert_eq!(queue["in_line"], 2, "{queue}");
    let line: Vec<(String, i64, String)> = queue["learners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| {
            (
                q["username"].as_str().unwrap().to_string(),
                q["position"].as_i64().unwrap(),
                q["message"].as_str().unwrap().to_string(),
            )
        })
        .collect();
    assert_eq!(
        line,
        vec![
            (
                "q4".to_string(),
                1,
                "waiting for a place, number 1".to_string()
            ),
            (
                "q5".to_string(),
                2,
                "waiting for a place, number 2".to_string()
            ),
        ]
    );
    let states: Vec<String> = progress["sandboxes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p[1].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        states.iter().filter(|s| *s == "queued").count(),
        2,
        "{states:?}"
    );
    let page = teacher
        .get(server.url(&format!("/instructor/classrooms/{room_id}/progress")))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("waiting for a place, number 2"), "{page}");
    assert!(page.contains("2 waiting for a place in line"), "{page}");
    for http in &learners[3..] {
        let (status, _) = get(
            http,
            &server,
            &format!("/api/instructor/classrooms/{room_id}/progress"),
        )
        .await;
        assert_eq!(status, 403, "a learner saw the instructor's queue");
    }
    assert_eq!(
        common::metric(&server, SECRET, "pglab_sandbox_queue_length").await,
        "2"
    );
    let since_before: Vec<i64> = queue["learners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| q["since"].as_i64().unwrap())
        .collect();

    // pglab restarted while two wait: the line comes back as it was (same
    // order, same join times), and their starts go on by themselves.
    drop(streams);
    let (stopped, temp, data_dir) = server.stop_keep_data();
    assert!(stopped, "pglab did not stop cleanly");
    let server = TestServer::start_with(ServerOptions {
        data_dir: Some(data_dir),
        ..options()
    });
    let _temp = temp;
    let restarted = Instant::now();
    let mut streams = Vec::new();
    for (i, number) in [(3, 1), (4, 2)] {
        let v = sandbox_until(&learners[i], &server, "in line after the restart", |v| {
            v["state"] == "queued"
        })
        .await;
        assert_eq!(v["queue_position"], number, "after the restart: {v}");
        let events = learners[i]
            .get(server.url("/api/sandbox/events"))
            .send()
            .await
            .unwrap();
        assert_eq!(events.status(), 200);
        streams.push((events, String::new()));
    }
    eprintln!("the line back {:?} after the restart", restarted.elapsed());
    let (_, progress) = get(
        &teacher,
        &server,
        &format!("/api/instructor/classrooms/{room_id}/progress"),
    )
    .await;
    let after: Vec<(String, i64, i64)> = progress["queue"]["learners"]
        .as_array()
        .unwrap()
        .iter()
        .map(|q| {
            (
                q["username"].as_str().unwrap().to_string(),
                q["position"].as_i64().unwrap(),
                q["since"].as_i64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        after,
        vec![
            ("q4".to_string(), 1, since_before[0]),
            ("q5".to_string(), 2, since_before[1]),
        ],
        "{progress}"
    );
    // Starting again still answers the kept place, not a new one.
    let (status, v) = post(&learners[4], &server, "/api/sandbox/start", json!({})).await;
    assert_eq!(status, 202, "{v}");
    assert_eq!(v["queue_position"], 2, "{v}");

    // The first learner stops: the fourth's start goes on by itself, on the
    // node that freed; the fifth becomes number 1.
    // Timed from the stop's request: the place frees while it runs (the
    // fourth's start may be ready before the stop answers).
    let freed_at = Instant::now();
    let (status, v) = post(&learners[0], &server, "/api/sandbox/stop", json!({})).await;
    assert_eq!(status, 200, "{v}");
    {
        let (events, buf) = &mut streams[0];
        let ready = next_event(
            events,
            buf,
            "progress",
            |v| v["done"] == true,
            Duration::from_secs(90),
        )
        .await;
        assert_eq!(ready["step"], "ready", "the fourth's start: {ready}");
    }
    let v = sandbox_until(&learners[3], &server, "the fourth runs", |v| {
        v["state"] == "running"
    })
    .await;
    assert!(
        nodes.contains(v["node"].as_str().unwrap_or_default()),
        "the fourth runs on a node of the swarm: {v}"
    );
    eprintln!(
        "the fourth runs {:?} after the stop was asked",
        freed_at.elapsed()
    );
    let (status, answer) = post(
        &learners[3],
        &server,
        "/api/sql",
        json!({"sql": "select 6 * 7 as answer"}),
    )
    .await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(answer["status"], "done", "{answer}");
    assert_eq!(answer["statements"][0]["rows"][0][0], "42", "{answer}");
    let (events, buf) = &mut streams[1];
    let told = next_event(
        events,
        buf,
        "progress",
        |v| v["step"] == "in line" && v["queue_position"] == 1,
        Duration::from_secs(30),
    )
    .await;
    assert_eq!(
        told["message"],
        "the classroom is full: you are number 1 in line"
    );
    let v = sandbox_until(&learners[4], &server, "fifth is number 1", |v| {
        v["queue_position"] == 1
    })
    .await;
    assert_eq!(v["state"], "queued");
    let (_, progress) = get(
        &teacher,
        &server,
        &format!("/api/instructor/classrooms/{room_id}/progress"),
    )
    .await;
    assert_eq!(progress["queue"]["in_line"], 1, "{progress}");
    assert_eq!(progress["queue"]["learners"][0]["username"], "q5");

    // The fifth leaves the line: their start ends (its page hears `left`),
    // the line is empty, and no sandbox of theirs was made.
    let (status, v) = post(&learners[4], &server, "/api/sandbox/stop", json!({})).await;
    assert_eq!(status, 200, "{v}");
    {
        let (events, buf) = &mut streams[1];
        let left = next_event(
            events,
            buf,
            "progress",
            |v| v["done"] == true,
            Duration::from_secs(10),
        )
        .await;
        assert_eq!(left["step"], "left", "{left}");
        assert!(
            left["message"]
                .as_str()
                .unwrap_or_default()
                .contains("left the line"),
            "{left}"
        );
    }
    let (_, v) = get(&learners[4], &server, "/api/sandbox").await;
    assert_ne!(v["state"], "queued", "{v}");
    assert_ne!(v["state"], "running", "{v}");
    let (_, progress) = get(
        &teacher,
        &server,
        &format!("/api/instructor/classrooms/{room_id}/progress"),
    )
    .await;
    assert_eq!(progress["queue"]["in_line"], 0, "{progress}");
    assert_eq!(
        common::metric(&server, SECRET, "pglab_sandbox_queue_length").await,
        "0"
    );
    // Three run (the second, third and fourth), one per node. pglab takes a
    // task as running once PostgreSQL answers in it; the swarm counts it
    // (`1/1`) only once its first health check passed, 10 s after its start.
    let healthy_by = Instant::now() + Duration::from_secs(40);
    loop {
        let services = swarm
            .manager(&[
                "service",
                "ls",
                "--filter",
                "label=pglab.managed=true",
                "--format",
                "{{.Name}} {{.Replicas}}",
            ])
            .unwrap();
        let running = services.lines().filter(|l| l.ends_with(" 1/1")).count();
        if running == 3 || Instant::now() > healthy_by {
            assert_eq!(running, 3, "{services}");
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }

    drop(streams);
    drop(server);
    drop(swarm);
    let left = Swarm::leftovers();
    assert!(left.is_empty(), "the swarm left {left:?}");
    eprintln!("whole test {:?}", began.elapsed());
}
