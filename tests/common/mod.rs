//! Test helpers: start the real `pglab` binary on port 0 with a temporary data
//! dir, talk to it over loopback HTTP, and stop it with SIGTERM.

#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

/// The repository's own course folder.
pub fn repo_content_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("content")
}

/// A `pglab` command with the test binary, ready for more arguments.
pub fn pglab() -> Command {
    Command::new(env!("CARGO_BIN_EXE_pglab"))
}

/// A running `pglab serve` process.
pub struct TestServer {
    child: Child,
    /// `http://127.0.0.1:PORT`
    pub base: String,
    /// The data dir it was started with.
    pub data_dir: PathBuf,
    /// The one-time `/setup/<token>` link, once the server printed it.
    setup_link: std::sync::Arc<std::sync::Mutex<Option<String>>>,
    _temp: Option<tempfile::TempDir>,
}

/// Options for [`TestServer::start`].
pub struct ServerOptions {
    pub data_dir: Option<PathBuf>,
    pub content_dir: PathBuf,
    pub sandbox: String,
    pub extra_args: Vec<String>,
    pub env: Vec<(String, String)>,
}

impl Default for ServerOptions {
    fn default() -> Self {
        Self {
            data_dir: None,
            content_dir: repo_content_dir(),
            sandbox: "local".into(),
            extra_args: Vec::new(),
            env: Vec::new(),
        }
    }
}

impl TestServer {
    /// Starts a server on a fresh temporary data dir with the local backend.
    pub fn start() -> Self {
        Self::start_with(ServerOptions::default())
    }

    /// Starts a server with the given options and waits until it listens.
    pub fn start_with(opts: ServerOptions) -> Self {
        let (temp, data_dir) = match opts.data_dir {
            Some(dir) => (None, dir),
            None => {
                let temp = tempfile::tempdir().expect("temp dir");
                let dir = temp.path().join("data");
                (Some(temp), dir)
            }
        };
        let mut cmd = pglab();
        cmd.arg("serve")
            .arg("--bind")
            .arg("127.0.0.1:0")
            .arg("--data-dir")
            .arg(&data_dir)
            .arg("--content-dir")
            .arg(&opts.content_dir)
            .arg("--sandbox")
            .arg(&opts.sandbox)
            .args(&opts.extra_args)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "warn".into()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in &opts.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("spawn pglab");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        let setup_link = std::sync::Arc::new(std::sync::Mutex::new(None));
        let link_slot = setup_link.clone();
        std::thread::spawn(move || {
            let mut sent = false;
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(link) = line.split_whitespace().find(|w| w.contains("/setup/")) {
                    *link_slot.lock().unwrap() = Some(link.to_string());
                }
                if let (false, Some(url)) = (sent, line.strip_prefix("pglab listening on ")) {
                    let _ = tx.send(url.trim().to_string());
                    sent = true;
                }
                // Keep draining so the server never blocks on a full pipe.
            }
        });
        let base = match rx.recv_timeout(Duration::from_secs(120)) {
            Ok(base) => base,
            Err(_) => {
                let _ = child.kill();
                let status = child.wait().ok();
                panic!("pglab did not start listening (exit: {status:?})");
            }
        };
        Self {
            child,
            base,
            data_dir,
            setup_link,
            _temp: temp,
        }
    }

    /// The one-time setup link a first start prints (waits up to 10 s).
    pub fn setup_link(&self) -> String {
        for _ in 0..200 {
            if let Some(link) = self.setup_link.lock().unwrap().clone() {
                return link;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("the server printed no /setup/ link");
    }

    /// `base` + `path`.
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path)
    }

    /// The process id, to signal it.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends SIGTERM and waits for a clean exit; returns whether it exited 0.
    pub fn stop(&mut self) -> bool {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..200 {
            if let Ok(Some(status)) = self.child.try_wait() {
                return status.success();
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
        false
    }

    /// Stops the server but keeps its data dir for a second start.
    pub fn stop_keep_data(mut self) -> (bool, Option<tempfile::TempDir>, PathBuf) {
        let ok = self.stop();
        (ok, self._temp.take(), self.data_dir.clone())
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            self.stop();
        }
    }
}

/// A reqwest client with a cookie store, as a browser would have.
pub fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .cookie_store(true)
        .timeout(Duration::from_secs(120))
        .build()
        .expect("client")
}

pub mod browser;
pub mod console;
pub mod docker;
pub mod engine;
pub mod fixed;
pub mod keys;
pub mod pg;
pub mod psql;
pub mod stack;
pub mod swarm;

/// Whether a Docker engine answers. Tests that need one call this: outside CI
/// they are skipped (with a line saying so) when none answers; under CI=true
/// they fail, because CI must run them.
pub fn require_docker() -> bool {
    let ok = Command::new("docker")
        .arg("info")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !ok {
        if std::env::var("CI").is_ok_and(|v| v == "true") {
            panic!("no Docker engine answers, and CI=true: Docker tests must run in CI");
        }
        eprintln!("SKIPPED: no Docker engine answers (run scripts/test.sh to start one)");
    }
    ok
}

/// The instructor [`signed_in_learner`] makes for learner `name`'s own
/// classroom (password: this + "-password").
pub fn teacher_of(learner: &str) -> String {
    format!("teacher-of-{learner}")
}

/// A client signed in as a new learner `name` (the one shared accounts
/// helper): makes an instructor ([`teacher_of`] `name`) with `pglab user
/// add`, a classroom through the API, then signs the learner up with its
/// join code. Like a browser, the client keeps the session cookie and sends
/// the CSRF token (`X-CSRF-Token`) on every request. The learner's password
/// is `name` + "-password".
pub async fn signed_in_learner(server: &TestServer, name: &str) -> reqwest::Client {
    let instructor = signed_in_instructor(server, &teacher_of(name)).await;
    let room: serde_json::Value = instructor
        .post(server.url("/api/instructor/classrooms"))
        .json(&serde_json::json!({"name": format!("class of {name}")}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let code = room["join_code"].as_str().expect("join code").to_string();
    joined_learner(server, name, &code).await
}

/// A client signed in as a new learner `name` who signed up with the join
/// code `code` (password `name` + "-password"), sending the CSRF token like
/// a browser.
pub async fn joined_learner(server: &TestServer, name: &str, code: &str) -> reqwest::Client {
    let (jar, anonymous) = jar_client(None);
    let res = anonymous
        .post(server.url("/api/signup"))
        .json(&serde_json::json!({
            "username": name, "password": format!("{name}-password"), "join_code": code
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(
        res.status(),
        201,
        "sign-up of {name}: {}",
        res.text().await.unwrap()
    );
    with_csrf(server, jar)
}

/// A client signed in as a new instructor `name` (made with `pglab user add
/// --instructor`; password `name` + "-password"), sending the CSRF token like
/// a browser.
/// Instructors see only the classrooms they made or were assigned to (see
/// [`signed_in_instructor_of`], [`signed_in_admin`]).
pub async fn signed_in_instructor(server: &TestServer, name: &str) -> reqwest::Client {
    add_instructor(server, name, &[]);
    login_with_csrf(server, name).await
}

/// `pglab user add name --instructor` (password `name` + "-password") plus `extra`.
fn add_instructor(server: &TestServer, name: &str, extra: &[&str]) {
    let password = format!("{name}-password");
    let out = pglab()
        .args(["user", "add", name, "--instructor", "--password", &password])
        .args(extra)
        .arg("--data-dir")
        .arg(&server.data_dir)
        .output()
        .expect("run pglab user add");
    assert!(
        out.status.success(),
        "pglab user add {name}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Signs in `name` (password `name` + "-password") with a browser-like client.
async fn login_with_csrf(server: &TestServer, name: &str) -> reqwest::Client {
    let password = format!("{name}-password");
    let (jar, http) = jar_client(None);
    let res = http
        .post(server.url("/api/login"))
        .json(&serde_json::json!({"username": name, "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "login of {name}");
    with_csrf(server, jar)
}

/// A client signed in as a new instructor `name` who manages the classroom
/// learner `learner` (made by [`signed_in_learner`]) joined: that
/// classroom's instructor assigns `name` to it. Instructors see only the
/// classrooms they manage, so this is the instructor who may watch the
/// learner's terminal, see their progress or reset their sandbox.
pub async fn signed_in_instructor_of(
    server: &TestServer,
    name: &str,
    learner: &str,
) -> reqwest::Client {
    let instructor = signed_in_instructor(server, name).await;
    let (jar, http) = jar_client(None);
    let teacher = teacher_of(learner);
    let res = http
        .post(server.url("/api/login"))
        .json(&serde_json::json!({"username": teacher, "password": format!("{teacher}-password")}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "login of {teacher}");
    let owner = with_csrf(server, jar);
    let rooms: serde_json::Value = owner
        .get(server.url("/api/instructor/classrooms"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let room = rooms[0]["id"].as_i64().expect("the learner's classroom");
    let res = owner
        .post(server.url(&format!("/api/instructor/classrooms/{room}/instructors")))
        .json(&serde_json::json!({"username": name}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "assign {name} to {learner}'s classroom");
    instructor
}

/// A client signed in as a new administrator `name` (`pglab user add
/// --instructor --admin`), who manages every classroom.
pub async fn signed_in_admin(server: &TestServer, name: &str) -> reqwest::Client {
    add_instructor(server, name, &["--admin"]);
    login_with_csrf(server, name).await
}

/// A client over `jar` (a fresh one when `None`), plus the jar.
fn jar_client(
    jar: Option<std::sync::Arc<reqwest::cookie::Jar>>,
) -> (std::sync::Arc<reqwest::cookie::Jar>, reqwest::Client) {
    let jar = jar.unwrap_or_default();
    let http = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .timeout(Duration::from_secs(120))
        .build()
        .expect("client");
    (jar, http)
}

/// A client over `jar` that echoes its `pglab_csrf` cookie in `X-CSRF-Token`.
fn with_csrf(server: &TestServer, jar: std::sync::Arc<reqwest::cookie::Jar>) -> reqwest::Client {
    use reqwest::cookie::CookieStore;
    let url: reqwest::Url = server.base.parse().unwrap();
    let cookies = jar.cookies(&url).expect("cookies after sign-in");
    let csrf = cookies
        .to_str()
        .unwrap()
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == "pglab_csrf")
        .map(|(_, v)| v.to_string())
        .expect("pglab_csrf cookie after sign-in");
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-csrf-token", csrf.parse().unwrap());
    reqwest::Client::builder()
        .cookie_provider(jar)
        .default_headers(headers)
        .timeout(Duration::from_secs(120))
        .build()
        .expect("client")
}

/// The value of metric `name` (a line `name value`) from `GET /metrics`
/// with the scrape secret, or "missing".
pub async fn metric(server: &TestServer, secret: &str, name: &str) -> String {
    let text = client()
        .get(server.url("/metrics"))
        .bearer_auth(secret)
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let prefix = format!("{name} ");
    text.lines()
        .find_map(|l| l.strip_prefix(prefix.as_str()))
        .unwrap_or("missing")
        .to_string()
}
