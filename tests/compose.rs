//! The self-hosting stack end to end, offline: builds the pglab image with
//! scripts/build-pglab-image.sh (and the sandbox image with
//! scripts/build-sandbox-image.sh when present), runs `docker-compose up -d`
//! on a temporary data dir and a free port, waits for healthy, checks the
//! probes, the non-root user, the Docker socket, the logs and /metrics, keeps
//! store data across `docker-compose restart` and `down` + `up`, then tears
//! everything down (`down -v`), also on failure.
//!
//! Its own test binary with one test, so it never runs beside another Docker
//! test; it needs Docker, docker-compose (Debian: `apt-get install
//! docker-compose`) and root (debootstrap). The first run takes minutes (a
//! release build and the base rootfs); later runs reuse both.

#![allow(clippy::unwrap_used)]

mod common;

use common::stack as api;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use sqlx::sqlite::SqliteConnectOptions;
use sqlx::{ConnectOptions, Connection};

/// Learner sign-up, sandbox start and a query through `/api/sql` need the
/// accounts, sandbox and console branches. Turn this on once they are merged
/// (and adjust the paths in [`learner_step`] to their final API).
const LEARNER_STEP: bool = true;

fn repo() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn text(out: &[u8]) -> String {
    String::from_utf8_lossy(out).into_owned()
}

fn run_script(script: &str) {
    let started = Instant::now();
    let out = Command::new(repo().join(script))
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script} failed:\n{}\n{}",
        text(&out.stdout),
        text(&out.stderr)
    );
    eprintln!("{script}: {:.0?}", started.elapsed());
}

/// A compose project; `down -v` when dropped, whatever happened.
struct Stack {
    project: String,
    env: Vec<(String, String)>,
    data_dir: PathBuf,
    base: String,
    /// The server's instance id once known: its sandboxes carry it as a label.
    instance: std::sync::Mutex<Option<String>>,
    _temp: tempfile::TempDir,
}

impl Stack {
    fn compose(&self, args: &[&str]) -> Output {
        Command::new("docker-compose")
            .arg("--project-name")
            .arg(&self.project)
            .arg("--file")
            .arg(repo().join("docker-compose.yml"))
            .args(args)
            .current_dir(repo())
            .envs(self.env.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap()
    }

    fn compose_ok(&self, args: &[&str]) -> String {
        let out = self.compose(args);
        assert!(
            out.status.success(),
            "docker-compose {args:?} failed:\n{}\n{}",
            text(&out.stdout),
            text(&out.stderr)
        );
        text(&out.stdout)
    }

    fn container(&self) -> String {
        let id = self.compose_ok(&["ps", "-q", "pglab"]).trim().to_string();
        assert!(!id.is_empty(), "no pglab container");
        id
    }

    /// When the pglab container (re)started, as Docker reports it.
    fn started_at(&self) -> String {
        let out = Command::new("docker")
            .args(["inspect", "-f", "{{.State.StartedAt}}"])
            .arg(self.container())
            .output()
            .unwrap();
        text(&out.stdout).trim().to_string()
    }

    /// Waits until Docker reports the pglab container healthy, in a run that
    /// started after `not_before` (the previous run's start, if any): right
    /// after a restart the old run's status may still be on show.
    fn wait_healthy(&self, not_before: Option<&str>) {
        let deadline = Instant::now() + Duration::from_secs(180);
        let mut last = String::new();
        while Instant::now() < deadline {
            let out = Command::new("docker")
                .args([
                    "inspect",
                    "-f",
                    "{{.State.StartedAt}} {{.State.Health.Status}}",
                ])
                .arg(self.container())
                .output()
                .unwrap();
            last = text(&out.stdout).trim().to_string();
            let (started, status) = last.split_once(' ').unwrap_or_default();
            if status == "healthy" && not_before.is_none_or(|old| old != started) {
                return;
            }
            std::thread::sleep(Duration::from_millis(500));
        }
        let logs = self.compose(&["logs", "--no-color", "--tail", "50"]);
        panic!(
            "pglab never became healthy (last: {last:?}); logs:\n{}",
            text(&logs.stdout)
        );
    }

    fn store(&self) -> PathBuf {
        self.data_dir.join("pglab.db")
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        let out = self.compose(&["down", "-v", "--remove-orphans", "--timeout", "20"]);
        if !out.status.success() {
            eprintln!("docker-compose down failed: {}", text(&out.stderr));
        }
        // Learners' sandboxes are pglab's, not compose's: remove them by label.
        let instance = self.instance.lock().ok().and_then(|i| i.clone());
        if let Some(instance) = instance {
            let label = format!("label=pglab.instance={instance}");
            for (list, remove) in [
                (vec!["ps", "-aq", "--filter"], vec!["rm", "-f", "-v"]),
                (
                    vec!["volume", "ls", "-q", "--filter"],
                    vec!["volume", "rm", "-f"],
                ),
            ] {
                let ids = Command::new("docker").args(&list).arg(&label).output();
                let ids = ids.map(|o| text(&o.stdout)).unwrap_or_default();
                let ids: Vec<&str> = ids.split_whitespace().collect();
                if !ids.is_empty() {
                    let _ = Command::new("docker").args(&remove).args(&ids).output();
                }
            }
        }
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn docker_gid() -> String {
    let out = Command::new("stat")
        .args(["-c", "%g", "/var/run/docker.sock"])
        .output()
        .unwrap();
    text(&out.stdout).trim().to_string()
}

async fn store_conn(path: &Path) -> sqlx::SqliteConnection {
    SqliteConnectOptions::new()
        .filename(path)
        .busy_timeout(Duration::from_secs(10))
        .connect()
        .await
        .unwrap()
}

/// What must survive restarts: the instance id and a row we add.
async fn store_facts(path: &Path) -> (String, i64) {
    let mut conn = store_conn(path).await;
    let instance: String =
        sqlx::query_scalar("select value from settings where key = 'instance_id'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    let marker: i64 =
        sqlx::query_scalar("select count(*) from users where username = 'compose-marker'")
            .fetch_one(&mut conn)
            .await
            .unwrap();
    conn.close().await.unwrap();
    (instance, marker)
}

async fn probes_answer(stack: &Stack, http: &reqwest::Client) {
    let health = http
        .get(format!("{}/healthz", stack.base))
        .send()
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "ok");
    let ready: serde_json::Value = http
        .get(format!("{}/readyz", stack.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["store"], true, "{ready}");
}

/// The learner's path through the stack (see [`LEARNER_STEP`]): an
/// instructor made with the CLI inside the container, a classroom, a learner
/// who signs up with its code, a sandbox started by the first statement, and
/// a committed row. Returns the learner's bearer token.
async fn learner_step(stack: &Stack) -> String {
    let base = &stack.base;
    // A script's client: no cookie store, bearer tokens only (a cookie
    // session would need the CSRF token on every write).
    let http = &reqwest::Client::new();
    stack.compose_ok(&[
        "exec",
        "-T",
        "pglab",
        "pglab",
        "user",
        "add",
        "compose-teacher",
        "--instructor",
        "--password",
        "teacher passphrase 42",
        "--data-dir",
        stack.data_dir.to_str().unwrap(),
    ]);
    let token = api::enrol(
        http,
        base,
        ("compose-teacher", "teacher passphrase 42"),
        ("compose-learner", "a long passphrase 42"),
    )
    .await;
    let v = api::run_sql(
        http,
        base,
        &token,
        "create table if not exists kept(x int); insert into kept values (42); select sum(x) from kept",
    )
    .await;
    assert!(v["failed_statement"].is_null(), "{v}");
    assert_eq!(v["statements"][2]["rows"][0][0], "42", "{v}");
    token
}

#[tokio::test]
async fn compose_stack_runs_offline_and_keeps_its_data() {
    if !common::require_docker() {
        return;
    }
    let compose_present = Command::new("docker-compose")
        .arg("version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(
        compose_present,
        "docker-compose is missing: apt-get install docker-compose"
    );

    // 1. The images, offline.
    run_script("scripts/build-pglab-image.sh");
    if repo().join("scripts/build-sandbox-image.sh").exists() {
        run_script("scripts/build-sandbox-image.sh");
    }

    // 2. The stack on a temporary data dir and a free port.
    let temp = tempfile::tempdir().unwrap();
    let data_dir = temp.path().join("data");
    std::fs::create_dir_all(&data_dir).unwrap();
    let port = free_port();
    let project = format!(
        "pglabtest{}{}",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_millis()
            % 100_000
    );
    let secret = "compose-metrics-secret";
    let stack = Stack {
        env: vec![
            ("PGLAB_DATA_DIR".into(), data_dir.to_str().unwrap().into()),
            ("PGLAB_PUBLISH".into(), format!("127.0.0.1:{port}")),
            ("DOCKER_GID".into(), docker_gid()),
            ("PGLAB_METRICS_SECRET".into(), secret.into()),
            ("PGLAB_HEALTH_INTERVAL".into(), "2s".into()),
            ("PGLAB_SANDBOX".into(), "auto".into()),
            ("PGLAB_SANDBOX_POOL".into(), "0".into()),
        ],
        project,
        data_dir,
        base: format!("http://127.0.0.1:{port}"),
        instance: std::sync::Mutex::new(None),
        _temp: temp,
    };
    stack.compose_ok(&["up", "-d", "--no-build"]);
    stack.wait_healthy(None);
    let http = common::client();
    probes_answer(&stack, &http).await;

    // 3. How it runs: non-root, with the Docker socket, logs on stdout.
    let uid = stack.compose_ok(&["exec", "-T", "pglab", "id", "-u"]);
    assert_eq!(uid.trim(), "10001", "pglab runs as the pglab user");
    stack.compose_ok(&["exec", "-T", "pglab", "test", "-w", "/var/run/docker.sock"]);
    let logs = stack.compose_ok(&["logs", "--no-color", "pglab"]);
    assert!(logs.contains("pglab listening on"), "{logs}");
    assert!(logs.contains("\"pglab is ready\""), "JSON logs: {logs}");
    let metrics = http
        .get(format!("{}/metrics", stack.base))
        .bearer_auth(secret)
        .send()
        .await
        .unwrap();
    assert_eq!(metrics.status(), 200);
    assert!(
        metrics
            .text()
            .await
            .unwrap()
            .contains("pglab_http_requests_total")
    );

    // 4. Data to keep: a row, and an online backup made inside the container.
    assert!(stack.store().is_file(), "the store is on the host data dir");
    {
        let mut conn = store_conn(&stack.store()).await;
        sqlx::query("insert into users (username) values ('compose-marker')")
            .execute(&mut conn)
            .await
            .unwrap();
        conn.close().await.unwrap();
    }
    let backup = stack.data_dir.join("backup-before-restart.db");
    stack.compose_ok(&[
        "exec",
        "-T",
        "pglab",
        "pglab",
        "backup",
        backup.to_str().unwrap(),
    ]);
    assert!(backup.is_file());
    let before = store_facts(&stack.store()).await;
    assert_eq!(before.1, 1);
    *stack.instance.lock().unwrap() = Some(before.0.clone());
    let learner_token = if LEARNER_STEP {
        Some(learner_step(&stack).await)
    } else {
        eprintln!("learner sign-up + sandbox + /api/sql step is off (LEARNER_STEP)");
        None
    };

    // 5. Restart, then down + up: the same store.
    // A fresh client after each restart: a pooled keep-alive connection to
    // the old container's port proxy is dead.
    let first_run = stack.started_at();
    stack.compose_ok(&["restart", "pglab"]);
    stack.wait_healthy(Some(&first_run));
    let http = common::client();
    probes_answer(&stack, &http).await;
    assert_eq!(store_facts(&stack.store()).await, before, "after restart");

    stack.compose_ok(&["down", "--timeout", "20"]);
    stack.compose_ok(&["up", "-d", "--no-build"]);
    stack.wait_healthy(None);
    let http = common::client();
    probes_answer(&stack, &http).await;
    assert_eq!(store_facts(&stack.store()).await, before, "after down + up");
    assert!(backup.is_file(), "files in the data dir survive down + up");

    if let Some(token) = learner_token {
        let script = reqwest::Client::new();
        let v = api::run_sql(&script, &stack.base, &token, "select sum(x) from kept").await;
        assert_eq!(
            v["statements"][0]["rows"][0][0], "42",
            "the learner's data is intact after down + up: {v}"
        );
    }
    // 6. `stack` drops here: down -v.
}
