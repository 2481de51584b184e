//! pglab deployed on a Docker Swarm with `deploy/swarm/pglab-stack.yml`, as
//! docs/operations.md tells operators to, on the test swarm of three nodes
//! (tests/common/swarm.rs): the pglab image (scripts/build-pglab-image.sh)
//! and the sandbox image loaded into every node, the metrics secret as a
//! Docker secret, `docker stack deploy`. Then a learner's path over HTTP: an
//! instructor made with the CLI inside pglab's task, a classroom, a learner
//! whose first statement starts their sandbox as a swarm service reached
//! over the overlay (nothing published), /metrics opened by the secret from
//! its file, node engines reached from the task over TLS with the client
//! certificate from Docker secrets (`deploy/swarm/engine-tls.yml`), and
//! after `docker service update --force` (a new pglab task,
//! as an upgrade makes) the same account, store and learner's row.
//!
//! Its own test binary with one test: it needs root, Docker and the tools
//! of a test swarm; the first run builds the release image (minutes, shared
//! with tests/compose.rs).

#![allow(clippy::unwrap_used)]

mod common;

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use common::engine::run_deadline;
use common::stack as api;
use common::swarm::Swarm;

const STACK: &str = "pglabt";
const SERVICE: &str = "pglabt_pglab";
const TEACHER: (&str, &str) = ("stack-teacher", "teacher passphrase 42");
const LEARNER: (&str, &str) = ("stack-learner", "a long passphrase 42");
const METRICS_SECRET: &str = "scrape me, swarm 42";

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn build_pglab_image() {
    let started = Instant::now();
    let out = Command::new(repo().join("scripts/build-pglab-image.sh"))
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "build-pglab-image.sh failed:\n{}\n{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    eprintln!("build-pglab-image.sh: {:.0?}", started.elapsed());
}

/// `docker -H MANAGER stack deploy` of the repository's stack file, with the
/// settings an operator gives in the environment.
fn deploy(swarm: &Swarm) -> Result<String, String> {
    let manager = swarm.manager_address();
    let socket = manager.trim_start_matches("unix://").to_string();
    let gid = run_deadline(
        Command::new("stat").args(["-c", "%g", &socket]),
        Duration::from_secs(5),
    )
    .unwrap();
    run_deadline(
        Command::new("docker")
            .args(["-H", &manager, "stack", "deploy", "-c"])
            .arg(repo().join("deploy/swarm/pglab-stack.yml"))
            .arg("-c")
            .arg(repo().join("deploy/swarm/engine-tls.yml"))
            .arg(STACK)
            .env("PGLAB_DOCKER_SOCKET", &socket)
            .env("DOCKER_GID", gid.trim())
            .env("PGLAB_SANDBOX_IMAGE", common::docker::image())
            .env("PGLAB_SWARM_NODE_CAPACITY", "2")
            .env("PGLAB_SANDBOX_POOL", "1")
            .env("PGLAB_CPUS", "1")
            .env("RUST_LOG", "info"),
        Duration::from_secs(60),
    )
}

/// The id of pglab's running task's container on the manager, once its
/// health check passes, in a task other than `not: previous`.
fn wait_healthy(swarm: &Swarm, not: Option<&str>) -> String {
    let deadline = Instant::now() + Duration::from_secs(180);
    let mut last = String::new();
    while Instant::now() < deadline {
        let ids = swarm
            .manager(&[
                "ps",
                "-q",
                "--filter",
                &format!("label=com.docker.swarm.service.name={SERVICE}"),
            ])
            .unwrap_or_default();
        for id in ids.lines().map(str::trim).filter(|l| !l.is_empty()) {
            if not == Some(id) {
                continue;
            }
            last = swarm
                .manager(&["inspect", "-f", "{{.State.Health.Status}}", id])
                .unwrap_or_default();
            if last.trim() == "healthy" {
                return id.to_string();
            }
        }
        std::thread::sleep(Duration::from_millis(500));
    }
    let tasks = swarm
        .manager(&["service", "ps", "--no-trunc", SERVICE])
        .unwrap_or_else(|e| e);
    let logs = swarm
        .manager(&["service", "logs", "--tail", "40", SERVICE])
        .unwrap_or_else(|e| e);
    panic!("pglab's task never became healthy (last: {last}):\n{tasks}\n{logs}");
}

/// The status of `GET /metrics` with `secret` as the bearer token.
async fn scrape(http: &reqwest::Client, base: &str, secret: &str) -> reqwest::StatusCode {
    http.get(format!("{base}/metrics"))
        .bearer_auth(secret)
        .send()
        .await
        .unwrap()
        .status()
}

/// Removes the stack (the swarm's own drop removes the rest).
struct Deployed<'a>(&'a Swarm);

impl Drop for Deployed<'_> {
    fn drop(&mut self) {
        let _ = self.0.manager(&["stack", "rm", STACK]);
    }
}

#[tokio::test]
async fn pglab_runs_as_a_swarm_stack_and_keeps_its_store_across_an_update() {
    if !Swarm::available() {
        return;
    }
    build_pglab_image();
    let swarm = Swarm::start(3, &common::docker::image());
    swarm.load_image("pglab/server:latest");
    let manager_id = swarm.nodes[0].id.clone();
    swarm
        .manager(&[
            "node",
            "update",
            "--label-add",
            "pglab.store=true",
            &manager_id,
        ])
        .unwrap();

    // The node engines' client certificate, as docs/operations.md says.
    let tls = swarm.engine_tls();
    for (secret, file) in [
        ("pglab_engine_ca", "ca.pem"),
        ("pglab_engine_cert", "cert.pem"),
        ("pglab_engine_key", "key.pem"),
    ] {
        swarm
            .manager(&["secret", "create", secret, tls.join(file).to_str().unwrap()])
            .unwrap();
    }

    // Without its secret, the stack cannot deploy: the file says so.
    let refused = deploy(&swarm).unwrap_err();
    assert!(refused.contains("pglab_metrics_secret"), "{refused}");
    let secret_file = swarm.nodes[0].engine().dir().join("metrics-secret.txt");
    std::fs::write(&secret_file, format!("{METRICS_SECRET}\n")).unwrap();
    swarm
        .manager(&[
            "secret",
            "create",
            "pglab_metrics_secret",
            secret_file.to_str().unwrap(),
        ])
        .unwrap();
    deploy(&swarm).unwrap();
    let _deployed = Deployed(&swarm);
    let container = wait_healthy(&swarm, None);
    // On the labelled manager, published there in mode host.
    let base = format!("http://{}:8080", swarm.nodes[0].addr);
    let http = &reqwest::Client::new();
    let health = http.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);

    swarm
        .manager(&[
            "exec",
            &container,
            "pglab",
            "user",
            "add",
            TEACHER.0,
            "--instructor",
            "--password",
            TEACHER.1,
        ])
        .unwrap();
    // From its task, pglab reaches every node's engine over TLS with the
    // certificate from the secrets (/run/secrets, its user's only).
    let nodes = swarm
        .manager(&["exec", &container, "pglab", "sandbox", "nodes"])
        .unwrap_or_else(|e| panic!("pglab sandbox nodes in the task: {e}"));
    for node in &swarm.nodes[1..] {
        let line = nodes
            .lines()
            .find(|l| l.contains(&node.addr))
            .unwrap_or_else(|| panic!("{} missing in:\n{nodes}", node.addr));
        assert!(
            line.contains(&node.tls_address()) && line.contains("Docker "),
            "{line}"
        );
    }
    let mode = swarm
        .manager(&[
            "exec",
            &container,
            "stat",
            "-c",
            "%a %u",
            "/run/secrets/key.pem",
        ])
        .unwrap();
    assert_eq!(mode.trim(), "400 10001");
    let token = api::enrol(http, &base, TEACHER, LEARNER).await;
    let v = api::run_sql(
        http,
        &base,
        &token,
        "create table kept(x int); insert into kept values (42); select sum(x) from kept",
    )
    .await;
    assert!(v["failed_statement"].is_null(), "{v}");
    assert_eq!(v["statements"][2]["rows"][0][0], "42", "{v}");

    // The learner's sandbox is a swarm service on the overlay, reached by
    // name: no port of it is published on any node.
    let services = swarm
        .manager(&[
            "service",
            "ls",
            "--filter",
            "label=pglab.learner",
            "--format",
            "{{.Name}} {{.Ports}}",
        ])
        .unwrap();
    let sandbox: Vec<&str> = services.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(sandbox.len(), 1, "{services}");
    assert!(
        !sandbox[0].contains("->"),
        "a sandbox port is published: {services}"
    );
    let networks = swarm
        .manager(&[
            "service",
            "inspect",
            "-f",
            "{{range .Spec.TaskTemplate.Networks}}{{.Target}} {{end}}",
            sandbox[0].split(' ').next().unwrap(),
        ])
        .unwrap();
    let overlay = swarm
        .manager(&["network", "inspect", "-f", "{{.Id}}", "pglab-sandboxes"])
        .unwrap();
    assert!(networks.contains(overlay.trim()), "{networks} vs {overlay}");

    // /metrics: the secret from the Docker secret's file opens it, nothing
    // else does.
    assert_eq!(scrape(http, &base, METRICS_SECRET).await, 200);
    assert_ne!(scrape(http, &base, "not the secret").await, 200);

    // An upgrade: a new task, the same volume, the same store and sandbox.
    swarm.nodes[0]
        .engine()
        .docker(
            &["service", "update", "--force", "--detach", SERVICE],
            Duration::from_secs(120),
        )
        .unwrap();
    let second = wait_healthy(&swarm, Some(&container));
    assert_ne!(second, container);
    // The old task's keep-alive connections died with it: a new client, and
    // the new task's port on the manager answering from the host.
    let http = &reqwest::Client::new();
    let deadline = Instant::now() + Duration::from_secs(30);
    while !http
        .get(format!("{base}/healthz"))
        .send()
        .await
        .is_ok_and(|r| r.status() == 200)
    {
        assert!(Instant::now() < deadline, "the new task is not reachable");
        tokio::time::sleep(Duration::from_millis(300)).await;
    }
    let token = api::login(http, &base, LEARNER.0, LEARNER.1).await;
    let v = api::run_sql(http, &base, &token, "select sum(x) from kept").await;
    assert!(v["failed_statement"].is_null(), "{v}");
    assert_eq!(v["statements"][0]["rows"][0][0], "42", "{v}");
    assert_eq!(scrape(http, &base, METRICS_SECRET).await, 200);
}
