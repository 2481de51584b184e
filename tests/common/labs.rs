//! Helpers of the labs tests (included with `#[path]` by tests/labs_*.rs,
//! beside `mod common` and `mod support`): a real server on either backend
//! with one signed-in learner whose sandbox runs, JSON calls, console runs,
//! and a guard that removes every container and volume (anonymous ones
//! included) and stops every local cluster the test made.

#![allow(dead_code, clippy::unwrap_used)]

use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::common::{ServerOptions, TestServer};
use crate::support::LocalClusters;

/// One Docker-backed labs test at a time per test binary: containers are
/// heavy on these machines.
pub static DOCKER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A running server, a signed-in learner with a running sandbox, and the
/// clean-up of what they made.
pub struct Lab {
    pub server: Option<TestServer>,
    pub http: reqwest::Client,
    pub backend: &'static str,
    instance: String,
    /// The server's data dir and flags, for a restart.
    data: std::path::PathBuf,
    args: Vec<String>,
    _clusters: Option<LocalClusters>,
    _temp: tempfile::TempDir,
}

impl Lab {
    pub fn server(&self) -> &TestServer {
        self.server.as_ref().unwrap()
    }

    pub fn url(&self, path: &str) -> String {
        self.server().url(path)
    }

    /// Sends a request; answers the status and the JSON body.
    pub async fn call(&self, method: &str, path: &str) -> (u16, Value) {
        let req = match method {
            "GET" => self.http.get(self.url(path)),
            _ => self.http.post(self.url(path)),
        };
        let res = req.send().await.unwrap();
        let status = res.status().as_u16();
        let body = res.json().await.unwrap_or(Value::Null);
        (status, body)
    }

    /// A call that must answer 200.
    pub async fn ok(&self, method: &str, path: &str) -> Value {
        let (status, body) = self.call(method, path).await;
        assert_eq!(status, 200, "{method} {path}: {body}");
        body
    }

    /// Runs a script in console session `session`; the last statement's
    /// answer (rows as text), after polling a long run. A session whose
    /// connection died with a sandbox restart reconnects: run once more.
    pub async fn sql(&self, session: &str, script: &str) -> Value {
        match self.try_sql(session, script).await {
            Ok(v) => v,
            Err(e) if e.to_string().contains("connection was lost") => self
                .try_sql(session, script)
                .await
                .unwrap_or_else(|e| panic!("{script}: {e}")),
            Err(e) => panic!("{script}: {e}"),
        }
    }

    /// Like [`Lab::sql`]; a statement's error is the `Err`.
    pub async fn try_sql(&self, session: &str, script: &str) -> Result<Value, Value> {
        let res = self
            .http
            .post(self.url("/api/sql"))
            .json(&json!({"session": session, "sql": script, "timeout_s": 120}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        let mut v: Value = res.json().await.unwrap();
        for _ in 0..200 {
            if v["status"] == "done" {
                let sts = v["statements"].as_array().unwrap();
                if let Some(failed) = sts.iter().find(|st| !st["error"].is_null()) {
                    return Err(failed["error"].clone());
                }
                return Ok(sts.last().cloned().unwrap_or(Value::Null));
            }
            let id = v["run_id"].as_str().unwrap().to_string();
            v = self
                .http
                .get(self.url(&format!("/api/runs/{id}?wait_ms=2000")))
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
        }
        panic!("run never finished: {v}");
    }

    /// The first value of the first row of a one-statement script.
    pub async fn scalar(&self, script: &str) -> String {
        let st = self.sql("T1", script).await;
        st["rows"][0][0].as_str().unwrap_or("").to_string()
    }
}

/// Starts a server on `backend` ("local" or "docker", warm pool off) with
/// `extra` flags, signs `name` in and starts their sandbox. `None` when the
/// backend is Docker and no engine answers (the test is then skipped).
pub async fn start(backend: &'static str, name: &str, extra: &[&str]) -> Option<Lab> {
    if backend == "docker" && !crate::common::require_docker() {
        return None;
    }
    let temp = tempfile::Builder::new()
        .prefix("pglab-labs-")
        .tempdir()
        .unwrap();
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(temp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    }
    let data = temp.path().join("data");
    let mut args: Vec<String> = vec!["--sandbox-pool".into(), "0".into()];
    if let Ok(image) = std::env::var("PGLAB_SANDBOX_IMAGE") {
        args.extend(["--sandbox-image".into(), image]);
    }
    args.extend(extra.iter().map(|s| s.to_string()));
    let server = serve(backend, &data, &args);
    let instance = instance_of(&data).await;
    let http = crate::common::signed_in_learner(&server, name).await;
    let lab = Lab {
        server: Some(server),
        http,
        backend,
        instance,
        data: data.clone(),
        args,
        _clusters: (backend == "local").then(|| LocalClusters(data.clone())),
        _temp: temp,
    };
    let started = lab.ok("POST", "/api/sandbox/start").await;
    assert_eq!(started["state"], "running", "{started}");
    Some(lab)
}

fn serve(backend: &str, data: &std::path::Path, args: &[String]) -> TestServer {
    TestServer::start_with(ServerOptions {
        data_dir: Some(data.to_path_buf()),
        sandbox: backend.into(),
        extra_args: args.to_vec(),
        ..ServerOptions::default()
    })
}

impl Lab {
    /// Stops the server and starts it again on the same data dir and flags;
    /// the learner's session (in the store) stays signed in.
    pub fn restart_server(&mut self) {
        if let Some(mut server) = self.server.take() {
            assert!(server.stop(), "the server did not stop cleanly");
        }
        self.server = Some(serve(self.backend, &self.data, &self.args));
    }
}

impl Lab {
    /// `pglab ARGS` against the lab's store and backend, with `extra` flags
    /// (e.g. `--docker-host`); its stdout. The command must succeed.
    pub fn cli(&self, args: &[&str], extra: &[&str]) -> String {
        let out = crate::common::pglab()
            .args(args)
            .arg("--data-dir")
            .arg(&self.server().data_dir)
            .args(["--sandbox", self.backend])
            .args(extra)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Saves `yaml` as the learner's compose file (`PUT
    /// /api/sandbox/compose`) and runs `POST /api/sandbox/compose/up`; its
    /// streamed answer, which must end with the server answering.
    pub async fn compose_up(&self, yaml: &str) -> String {
        let res = self
            .http
            .put(self.url("/api/sandbox/compose"))
            .json(&json!({ "yaml": yaml }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
        let res = self
            .http
            .post(self.url("/api/sandbox/compose/up"))
            .send()
            .await
            .unwrap();
        let text = res.text().await.unwrap();
        assert!(text.contains("✔"), "up failed:\n{text}");
        text
    }

    /// `POST /api/sandbox/compose/down {"volumes"}`, which must succeed.
    pub async fn compose_down(&self, volumes: bool) {
        let res = self
            .http
            .post(self.url("/api/sandbox/compose/down"))
            .json(&json!({ "volumes": volumes }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    }
}

/// The instance id the server labels its containers with.
async fn instance_of(data: &std::path::Path) -> String {
    let url = format!("sqlite://{}?mode=ro", data.join("pglab.db").display());
    let pool = sqlx::SqlitePool::connect(&url).await.unwrap();
    let id: String = sqlx::query_scalar("select value from settings where key = 'instance_id'")
        .fetch_one(&pool)
        .await
        .unwrap();
    pool.close().await;
    id
}

/// Names of the containers of this instance that carry `label`.
pub fn containers(lab: &Lab, label: &str) -> Vec<String> {
    let out = Command::new("docker")
        .args(["ps", "-a", "--format", "{{.Names}}"])
        .args([
            "--filter",
            &format!("label=pglab.instance={}", lab.instance),
        ])
        .args(["--filter", &format!("label={label}")])
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .map(String::from)
        .collect()
}

/// Polls `check` every 250 ms until it holds or `limit` passes.
pub async fn eventually<F, Fut>(limit: Duration, mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let began = std::time::Instant::now();
    while began.elapsed() < limit {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    false
}

impl Drop for Lab {
    fn drop(&mut self) {
        if let Some(mut server) = self.server.take() {
            server.stop();
        }
        if self.backend != "docker" {
            return;
        }
        drop(crate::common::docker::DockerCleanup(self.instance.clone()));
    }
}
