//! A missing sandbox image is pulled from a registry, with progress. No
//! public registry is reachable here, so the test runs a real one on
//! loopback (Debian's `docker-registry`, the CNCF distribution server that
//! Docker Hub's registry image also runs), pushes a copy of the offline
//! image to it under a new name, untags it, and points pglab at that name:
//! the first start pulls it through the engine's API, the event stream shows
//! "pulling image" with the engine's progress lines, and the learner's
//! sandbox then runs from the pulled image. The official `postgres:16`
//! takes the same path where Docker Hub is reachable.

#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/sandbox.rs"]
mod support;

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::docker::DockerCleanup;

fn docker(args: &[&str]) -> Result<String, String> {
    let out = Command::new("docker").args(args).output().unwrap();
    if out.status.success() {
        Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
    } else {
        Err(String::from_utf8_lossy(&out.stderr).to_string())
    }
}

/// A registry on a free loopback port, storing into a temp dir; killed on drop.
struct Registry {
    child: Child,
    addr: String,
    _dir: tempfile::TempDir,
}

impl Registry {
    fn start() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let addr = format!("127.0.0.1:{port}");
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n",
                dir.path().join("store").display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            // It logs every blob the push asks about; a failed push or pull
            // shows in docker's own error instead.
            .stderr(Stdio::null())
            .spawn()
            .expect("docker-registry (Debian package docker-registry) must be installed");
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(&addr).is_err() {
            assert!(Instant::now() < deadline, "the registry never listened");
            std::thread::sleep(Duration::from_millis(100));
        }
        Self {
            child,
            addr,
            _dir: dir,
        }
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Removes the test's image name from the engine, also on failure.
struct Untag(String);

impl Drop for Untag {
    fn drop(&mut self) {
        let _ = docker(&["rmi", &self.0]);
    }
}

#[tokio::test]
async fn a_missing_image_is_pulled_from_a_registry_with_progress() {
    if !common::require_docker() {
        return;
    }
    let source = common::docker::image();
    let registry = Registry::start();
    let name = format!("{}/pglab-pull-test:15", registry.addr);
    let _untag = Untag(name.clone());
    docker(&["tag", &source, &name]).unwrap();
    docker(&["push", &name]).unwrap();
    docker(&["rmi", &name]).unwrap();
    assert!(
        docker(&["image", "inspect", &name]).is_err(),
        "the image is missing before the start"
    );

    let (_temp, data) = support::data_dir();
    let _cleanup = DockerCleanup::for_data_dir(&data).await;
    let server = common::TestServer::start_with(common::ServerOptions {
        data_dir: Some(data.clone()),
        ..common::docker::server_options(&name, &[])
    });
    let http = common::signed_in_learner(&server, "puller").await;
    let mut events = http
        .get(server.url("/api/sandbox/events"))
        .send()
        .await
        .unwrap();
    let start = {
        let (http, url) = (http.clone(), server.url("/api/sandbox/start"));
        tokio::spawn(async move {
            let res = http.post(url).send().await.unwrap();
            (res.status(), res.json::<serde_json::Value>().await.unwrap())
        })
    };
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(180);
    while !seen.contains("\"step\":\"ready\"") && Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(60), events.chunk()).await {
            Ok(Ok(Some(chunk))) => seen.push_str(&String::from_utf8_lossy(&chunk)),
            _ => break,
        }
    }
    let (status, body) = start.await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["state"], "running", "{body}");
    assert!(seen.contains("\"step\":\"pulling image\""), "{seen}");
    // The engine's own progress lines come through (layer ids, digest).
    assert!(
        seen.contains(&format!("pulling {name}: ")),
        "no progress line from the engine:\n{seen}"
    );
    assert!(seen.contains("\"step\":\"ready\""), "{seen}");
    docker(&["image", "inspect", &name]).expect("the image was pulled");

    let res = http
        .post(server.url("/api/sql"))
        .json(&serde_json::json!({"session": "T1", "sql": "select 40 + 2 as answer"}))
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = res.json().await.unwrap();
    assert_eq!(body["statements"][0]["rows"][0][0], "42", "{body}");
    drop(events);
}
