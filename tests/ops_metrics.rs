//! `GET /metrics`: hidden without a secret, 401 with a wrong one, Prometheus
//! text with the right one, requests labelled by route template only.

#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/sandbox.rs"]
mod support;

use common::{ServerOptions, TestServer, client};

#[tokio::test]
async fn metrics_are_hidden_when_no_secret_is_configured() {
    // Compose files pass unset settings as empty values: still no secret.
    let server = TestServer::start_with(ServerOptions {
        env: vec![("PGLAB_METRICS_SECRET".into(), String::new())],
        ..Default::default()
    });
    let http = client();
    let plain = http.get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(plain.status(), 404);
    let guessed = http
        .get(server.url("/metrics"))
        .bearer_auth("")
        .send()
        .await
        .unwrap();
    assert_eq!(guessed.status(), 404, "an empty bearer is no secret");
}

#[tokio::test]
async fn metrics_need_the_secret_and_label_requests_by_route() {
    let secret = "scrape-me-7f3a";
    let server = TestServer::start_with(ServerOptions {
        env: vec![("PGLAB_METRICS_SECRET".into(), secret.into())],
        ..Default::default()
    });
    let http = client();

    let anonymous = http.get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(anonymous.status(), 401);
    let wrong = http
        .get(server.url("/metrics"))
        .bearer_auth("scrape-me-7f3b")
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 401);

    for path in [
        "/healthz",
        "/healthz",
        "/no/such/page-4711",
        "/static/css/pglab.css",
    ] {
        http.get(server.url(path)).send().await.unwrap();
    }
    let answer = http
        .get(server.url("/metrics"))
        .bearer_auth(secret)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    let content_type = answer.headers()["content-type"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(
        content_type.starts_with("text/plain; version=0.0.4"),
        "{content_type}"
    );
    let text = answer.text().await.unwrap();
    for needle in [
        "pglab_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"} 2",
        "pglab_http_requests_total{route=\"unmatched\",method=\"GET\",status=\"404\"} 1",
        "pglab_http_requests_total{route=\"/static\",method=\"GET\",status=\"200\"} 1",
        "pglab_http_requests_total{route=\"/metrics\",method=\"GET\",status=\"401\"} 2",
        "pglab_http_request_duration_seconds_count{route=\"/healthz\"} 2",
        "# TYPE pglab_sandboxes_running gauge",
        "# TYPE pglab_sandbox_start_seconds histogram",
        "# TYPE pglab_sql_statements counter",
        "# TYPE pglab_sql_errors counter",
        "# TYPE pglab_checks_passed counter",
    ] {
        assert!(text.contains(needle), "{needle} in\n{text}");
    }
    assert!(
        !text.contains("page-4711"),
        "raw paths never become labels:\n{text}"
    );
}

/// The running-sandboxes gauge is counted by the backend at each scrape
/// (here local clusters): 0, then 1 while a learner's sandbox runs, then 0
/// after it stops. (tests/sandbox_engine.rs covers the Docker backend.)
#[tokio::test]
async fn the_running_sandboxes_gauge_follows_starts_and_stops() {
    let secret = "gauge-secret-5c1e";
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("data");
    let _clusters = support::LocalClusters(data.clone());
    let server = TestServer::start_with(ServerOptions {
        data_dir: Some(data),
        env: vec![("PGLAB_METRICS_SECRET".into(), secret.into())],
        ..Default::default()
    });
    let gauge = || common::metric(&server, secret, "pglab_sandboxes_running");
    assert_eq!(gauge().await, "0");
    let http = common::signed_in_learner(&server, "gauge-learner").await;
    let started = http
        .post(server.url("/api/sandbox/start"))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 200);
    assert_eq!(gauge().await, "1");
    let stopped = http
        .post(server.url("/api/sandbox/stop"))
        .send()
        .await
        .unwrap();
    assert_eq!(stopped.status(), 200);
    assert_eq!(gauge().await, "0");
}

#[tokio::test]
async fn the_metrics_secret_can_come_from_a_file_as_docker_secrets_give_it() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("pglab_metrics_secret");
    // `docker secret create NAME -` from `echo` keeps the line end.
    std::fs::write(&file, "from-a-file-9c2e\n").unwrap();
    let server = TestServer::start_with(ServerOptions {
        env: vec![(
            "PGLAB_METRICS_SECRET_FILE".into(),
            file.display().to_string(),
        )],
        ..Default::default()
    });
    let http = client();
    let status = |secret: &'static str| {
        let req = http.get(server.url("/metrics")).bearer_auth(secret);
        async move { req.send().await.unwrap().status() }
    };
    assert_eq!(status("from-a-file-9c2e").await, 200);
    assert_eq!(status("from-a-file-9c2").await, 401);
    assert_eq!(status("").await, 401);
}

#[test]
fn a_missing_or_doubled_secret_file_ends_start_up_with_one_clear_line() {
    let temp = tempfile::tempdir().unwrap();
    let missing = temp.path().join("no-such-secret");
    let serve = |extra: &[&str]| {
        common::pglab()
            .args(["serve", "--sandbox", "local", "--bind", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(temp.path().join("data"))
            .arg("--content-dir")
            .arg(common::repo_content_dir())
            .args(extra)
            .env("RUST_LOG", "off")
            .env_remove("PGLAB_METRICS_SECRET")
            .output()
            .unwrap()
    };
    let out = serve(&["--metrics-secret-file", missing.to_str().unwrap()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "{stderr}");
    assert!(
        lines[0].starts_with("pglab: ") && lines[0].contains("no-such-secret"),
        "{stderr}"
    );
    let out = serve(&[
        "--metrics-secret",
        "inline",
        "--metrics-secret-file",
        missing.to_str().unwrap(),
    ]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--metrics-secret"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}
