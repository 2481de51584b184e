//! The Docker engine stopped and started again while pglab runs (issue #3),
//! on a private engine of the test's own (tests/common/engine.rs): the
//! shared engine is never touched.
//!
//! While the engine is down every answer comes promptly and says so: the
//! sandbox panel's JSON (state `failed`, the engine named), `POST /api/sql`
//! (503 with the reason), `POST /api/sandbox/start` (503), `/readyz` (not
//! ready, why) and the running-sandboxes gauge of `/metrics` (0). Once the
//! engine is back, "restart my sandbox" works and the learner's committed row
//! is still there: the data volume was kept.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::{Duration, Instant};

use common::engine::PrivateEngine;
use serde_json::{Value, json};

const SECRET: &str = "engine-test-metrics";

use common::docker::image;

/// A request that must answer within `limit` (no hang): status and JSON.
async fn timed(req: reqwest::RequestBuilder, limit: Duration) -> (u16, Value) {
    let began = Instant::now();
    let res = tokio::time::timeout(limit, req.send())
        .await
        .unwrap_or_else(|_| panic!("no answer within {limit:?}"))
        .unwrap();
    let status = res.status().as_u16();
    let body = res.json().await.unwrap_or(Value::Null);
    assert!(began.elapsed() < limit);
    (status, body)
}

async fn running_gauge(server: &common::TestServer) -> String {
    common::metric(server, SECRET, "pglab_sandboxes_running").await
}

#[tokio::test]
async fn engine_stop_and_start_give_clear_errors_and_keep_the_data() {
    if !PrivateEngine::available() {
        return;
    }
    let had_docker0 = std::path::Path::new("/sys/class/net/docker0").exists();
    let mut engine = PrivateEngine::start(&image());
    let address = engine.host_address();
    let server = common::TestServer::start_with(common::ServerOptions {
        env: vec![("PGLAB_METRICS_SECRET".into(), SECRET.into())],
        ..common::docker::server_options(&image(), &["--docker-host", &address])
    });
    let http = common::signed_in_learner(&server, "engine-learner").await;
    let sql = |text: &str| {
        http.post(server.url("/api/sql"))
            .json(&json!({"session": "T1", "sql": text}))
    };
    let quick = Duration::from_secs(20);

    // A sandbox with a committed row (the first run starts the sandbox and
    // may outlast the answer's wait: follow the run to its end).
    let (status, mut body) = timed(
        sql("create table kept (x int); insert into kept values (42);"),
        Duration::from_secs(120),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    while body["status"] == "running" {
        let run = format!(
            "/api/runs/{}?wait_ms=5000",
            body["run_id"].as_str().unwrap()
        );
        body = timed(http.get(server.url(&run)), quick).await.1;
    }
    assert_eq!(body["status"], "done", "{body}");
    assert_eq!(body["failed_statement"], Value::Null, "{body}");
    assert_eq!(running_gauge(&server).await, "1");

    // The engine stops (it stops the sandbox's container on its way out).
    engine.stop_daemon();

    let (status, panel) = timed(http.get(server.url("/api/sandbox")), quick).await;
    assert_eq!(status, 200, "{panel}");
    assert_eq!(panel["state"], "failed", "{panel}");
    let detail = panel["detail"].as_str().unwrap();
    assert!(
        detail.contains(&format!("Docker engine at {address}")),
        "{detail}"
    );

    // The open session's connection died with the container: the first run
    // says so (200, a lost connection); the next one cannot start the
    // sandbox and answers 503 naming the engine.
    let mut answer = timed(sql("select x from kept"), quick).await;
    if answer.0 == 200 {
        assert_eq!(answer.1["connection_lost"], true, "{}", answer.1);
        answer = timed(sql("select x from kept"), quick).await;
    }
    let (status, body) = answer;
    assert_eq!(status, 503, "{body}");
    let error = body["error"].as_str().unwrap();
    assert!(error.contains("your sandbox is not available"), "{error}");
    assert!(
        error.contains(&format!("Docker engine at {address}")),
        "{error}"
    );

    let (status, body) = timed(http.post(server.url("/api/sandbox/start")), quick).await;
    assert_eq!(status, 503, "{body}");
    assert!(
        body["error"].as_str().unwrap().contains("Docker engine"),
        "{body}"
    );

    let (status, ready) = timed(http.get(server.url("/readyz")), quick).await;
    assert_eq!(status, 200);
    assert_eq!(ready["ready"], false, "{ready}");
    let reason = ready["sandbox"]["reason"].as_str().unwrap();
    assert!(reason.contains(&address), "{reason}");
    assert_eq!(running_gauge(&server).await, "0");

    // The engine is back: "restart my sandbox", and the row is there.
    engine.start_daemon();
    let (status, ready) = timed(http.get(server.url("/readyz")), quick).await;
    assert_eq!((status, &ready["ready"]), (200, &json!(true)), "{ready}");
    let (status, body) = timed(
        http.post(server.url("/api/sandbox/restart")),
        Duration::from_secs(120),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "running", "{body}");
    let (status, body) = timed(sql("select x from kept"), Duration::from_secs(60)).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["statements"][0]["rows"], json!([["42"]]), "{body}");
    assert_eq!(running_gauge(&server).await, "1");

    // A stopped sandbox no longer counts.
    let (status, _) = timed(
        http.post(server.url("/api/sandbox/stop")),
        Duration::from_secs(60),
    )
    .await;
    assert_eq!(status, 200);
    assert_eq!(running_gauge(&server).await, "0");
    drop(server);
    drop(engine);
    // The private engine ran in a network namespace of its own: the
    // machine engine's default bridge is still there.
    if had_docker0 {
        assert!(
            std::path::Path::new("/sys/class/net/docker0").exists(),
            "the private engine deleted the machine engine's docker0 bridge"
        );
    }
}
