//! The first instructor: the one-time setup link printed at first start works
//! exactly once; `pglab user add` (password from stdin) and `pglab user
//! import` create accounts that can sign in; the store holds only argon2
//! hashes and token hashes, and the log never shows a password.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader, Write};
use std::process::{Child, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{TestServer, client, pglab, repo_content_dir};

/// A server started by hand so that its stdout (the setup link) and its log
/// (stderr, at debug level) can be read.
struct Spawned {
    child: Child,
    lines: mpsc::Receiver<String>,
    base: String,
    log: std::path::PathBuf,
}

impl Spawned {
    fn start(data_dir: &std::path::Path, log: std::path::PathBuf) -> Self {
        let mut child = pglab()
            .args([
                "serve",
                "--bind",
                "127.0.0.1:0",
                "--sandbox",
                "local",
                "--data-dir",
            ])
            .arg(data_dir)
            .arg("--content-dir")
            .arg(repo_content_dir())
            .env("RUST_LOG", "debug")
            .stdout(Stdio::piped())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        let first = lines
            .recv_timeout(Duration::from_secs(120))
            .expect("listening line");
        let base = first
            .strip_prefix("pglab listening on ")
            .expect(&first)
            .trim()
            .to_string();
        Self {
            child,
            lines,
            base,
            log,
        }
    }

    fn next_line(&self, wait: Duration) -> Option<String> {
        self.lines.recv_timeout(wait).ok()
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = std::process::Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        for _ in 0..100 {
            if let Ok(Some(_)) = self.child.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn csrf_in(body: &str) -> String {
    let needle = "name=\"csrf_token\" value=\"";
    let at = body.find(needle).expect("csrf field in form") + needle.len();
    body[at..at + 64].to_string()
}

#[tokio::test]
async fn first_start_prints_a_setup_link_that_works_once() {
    let temp = tempfile::tempdir().unwrap();
    let data = temp.path().join("data");
    let server = Spawned::start(&data, temp.path().join("log1.txt"));
    let line = server
        .next_line(Duration::from_secs(10))
        .expect("setup line on stdout");
    let link = line
        .split_whitespace()
        .find(|w| w.contains("/setup/"))
        .unwrap_or_else(|| panic!("no link in {line:?}"))
        .to_string();
    assert!(
        link.starts_with(&format!("{}/setup/", server.base)),
        "{link}"
    );

    let browser = client();
    let form = browser.get(&link).send().await.unwrap();
    assert_eq!(form.status(), 200);
    let csrf = csrf_in(&form.text().await.unwrap());

    // Without the CSRF field the form is refused.
    let forged = browser
        .post(&link)
        .form(&[("username", "prof"), ("password", "first-instructor-pw")])
        .send()
        .await
        .unwrap();
    assert_eq!(forged.status(), 403);

    let created = browser
        .post(&link)
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("username", "prof"),
            ("password", "first-instructor-pw"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(created.status(), 200, "redirected to /instructor and shown");
    assert!(
        created.url().path().ends_with("/instructor"),
        "{}",
        created.url()
    );
    let me: serde_json::Value = browser
        .get(format!("{}/api/me", server.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me["username"], "prof");
    assert_eq!(me["role"], "instructor");

    // Used once: a second visit and a second submission are refused.
    let other = client();
    assert_eq!(other.get(&link).send().await.unwrap().status(), 410);
    let page = other
        .get(format!("{}/login", server.base))
        .send()
        .await
        .unwrap();
    let csrf = csrf_in(&page.text().await.unwrap());
    let again = other
        .post(&link)
        .form(&[
            ("csrf_token", csrf.as_str()),
            ("username", "intruder"),
            ("password", "intruder-pw-123"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(again.status(), 410);

    // The log has the link but never the password.
    drop(server);
    let log = std::fs::read_to_string(temp.path().join("log1.txt")).unwrap();
    assert!(log.contains("/setup/"), "the link is in the log too");
    assert!(!log.contains("first-instructor-pw"), "password in the log");

    // With an instructor in the store, a restart prints no link.
    let again = Spawned::start(&data, temp.path().join("log2.txt"));
    assert_eq!(again.next_line(Duration::from_millis(1500)), None);
    let _ = &again.log;
}

#[tokio::test]
async fn cli_user_add_reads_the_password_from_stdin_and_stores_only_a_hash() {
    let server = TestServer::start();
    let mut child = pglab()
        .args(["user", "add", "Ada", "--instructor", "--data-dir"])
        .arg(&server.data_dir)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"stdin-secret-42\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("created instructor Ada"));

    // A second user with the same name (any case) is refused with one clear line.
    let dup = pglab()
        .args([
            "user",
            "add",
            "ada",
            "--learner",
            "--password",
            "another-pw-1",
            "--data-dir",
        ])
        .arg(&server.data_dir)
        .output()
        .unwrap();
    assert_eq!(dup.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&dup.stderr).contains("taken"));
    let short = pglab()
        .args(["user", "add", "bob", "--password", "short", "--data-dir"])
        .arg(&server.data_dir)
        .output()
        .unwrap();
    assert_eq!(short.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&short.stderr).contains("at least 8"));

    let http = client();
    let login = http
        .post(server.url("/api/login"))
        .json(&serde_json::json!({"username": "ada", "password": "stdin-secret-42"}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200);
    let body: serde_json::Value = login.json().await.unwrap();
    let token = body["token"].as_str().unwrap().to_string();
    assert_eq!(body["user"]["role"], "instructor");

    let pool = sqlx::SqlitePool::connect(&format!(
        "sqlite://{}",
        server.data_dir.join("pglab.db").display()
    ))
    .await
    .unwrap();
    let hash: String = sqlx::query_scalar("select password_hash from users where username = 'Ada'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(hash.starts_with("$argon2id$v=19$"), "{hash}");
    assert!(!hash.contains("stdin-secret-42"));
    // Tokens are stored only as 32-byte hashes, never as given out.
    let stored: Vec<Vec<u8>> = sqlx::query_scalar("select token_hash from sessions")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert_eq!(stored.len(), 2, "a cookie session and a bearer token");
    for h in &stored {
        assert_eq!(h.len(), 32);
        assert_ne!(h.as_slice(), token.as_bytes());
    }
    let clear: i64 =
        sqlx::query_scalar("select count(*) from sessions where token_hash = ? or token_hash = ?")
            .bind(&token)
            .bind(token.as_bytes())
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(clear, 0);
}

#[tokio::test]
async fn cli_user_import_prints_generated_passwords_that_sign_in() {
    let server = TestServer::start();
    let instructor = common::signed_in_instructor(&server, "prof").await;
    let room: serde_json::Value = instructor
        .post(server.url("/api/instructor/classrooms"))
        .json(&serde_json::json!({"name": "Evening class"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let id = room["id"].as_i64().unwrap();
    let csv = server.data_dir.join("learners.csv");
    std::fs::write(&csv, "username,password\nlin\nmay,may-own-password\n").unwrap();
    let out = pglab()
        .args(["user", "import"])
        .arg(&csv)
        .args(["--classroom", &id.to_string(), "--data-dir"])
        .arg(&server.data_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let lin_pw = stdout
        .lines()
        .find_map(|l| l.strip_prefix("lin,"))
        .expect("lin's generated password printed")
        .to_string();
    assert_eq!(lin_pw.len(), 12);
    assert!(!stdout.contains("may-own-password"));

    for (user, pw) in [("lin", lin_pw.as_str()), ("may", "may-own-password")] {
        let res = client()
            .post(server.url("/api/login"))
            .json(&serde_json::json!({"username": user, "password": pw}))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200, "{user} signs in");
    }
    let members: serde_json::Value = instructor
        .get(server.url(&format!("/api/instructor/classrooms/{id}/members")))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let names: Vec<&str> = members
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["username"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["lin", "may"]);

    // Importing the same file again is refused as a whole, naming the lines.
    let again = pglab()
        .args(["user", "import"])
        .arg(&csv)
        .args(["--classroom", &id.to_string(), "--data-dir"])
        .arg(&server.data_dir)
        .output()
        .unwrap();
    assert_eq!(again.status.code(), Some(2));
    let err = String::from_utf8_lossy(&again.stderr);
    assert!(err.contains("line 2") && err.contains("taken"), "{err}");
}
