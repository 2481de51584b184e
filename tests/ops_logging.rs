//! JSON logs: one object per line, a line per request with its route, and
//! never the Authorization header, a cookie or the query string.

#![allow(clippy::unwrap_used)]

mod common;

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use common::{client, pglab, repo_content_dir};

#[tokio::test]
async fn json_logs_carry_requests_but_no_credentials() {
    let temp = tempfile::tempdir().unwrap();
    let log_path = temp.path().join("stderr.log");
    let log_file = std::fs::File::create(&log_path).unwrap();
    let mut child = pglab()
        .args(["serve", "--sandbox", "local", "--bind", "127.0.0.1:0"])
        .args(["--log-format", "json"])
        .arg("--data-dir")
        .arg(temp.path().join("data"))
        .arg("--content-dir")
        .arg(repo_content_dir())
        .env("RUST_LOG", "info")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(log_file))
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if let Some(url) = line.strip_prefix("pglab listening on ") {
                let _ = tx.send(url.trim().to_string());
            }
        }
    });
    let base = rx.recv_timeout(Duration::from_secs(120)).unwrap();

    let token = "tok-secret-9d1c";
    let cookie = "cookie-secret-44ab";
    let query = "query-secret-7e02";
    let http = client();
    let answer = http
        .get(format!("{base}/healthz?token={query}"))
        .header("authorization", format!("Bearer {token}"))
        .header("cookie", format!("pglab_session={cookie}"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), 200);
    http.post(format!("{base}/api/nowhere"))
        .header("authorization", format!("Bearer {token}"))
        .body(format!("{{\"password\": \"{token}\"}}"))
        .send()
        .await
        .unwrap();

    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let status = child.wait().unwrap();
    assert!(status.success(), "clean exit on SIGTERM");

    let log = std::fs::read_to_string(&log_path).unwrap();
    let lines: Vec<serde_json::Value> = log
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let request_line = lines
        .iter()
        .find(|l| l["fields"]["message"] == "answered" && l["span"]["route"] == "/healthz")
        .unwrap_or_else(|| panic!("a line for GET /healthz in\n{log}"));
    assert_eq!(request_line["fields"]["status"], 200, "{request_line}");
    assert_eq!(request_line["level"], "INFO");
    assert_eq!(request_line["span"]["method"], "GET");
    for secret in [token, cookie, query] {
        assert!(
            !log.contains(secret),
            "{secret} leaked into the log:\n{log}"
        );
    }
    assert!(
        lines.iter().any(|l| l["span"]["route"] == "unmatched"),
        "404s are logged too:\n{log}"
    );
}

#[test]
fn an_empty_rust_log_keeps_the_default_level_and_text_has_no_colours() {
    // Compose files pass unset settings as empty values.
    let temp = tempfile::tempdir().unwrap();
    let log_path = temp.path().join("stderr.log");
    let mut child = pglab()
        .args(["serve", "--sandbox", "local", "--bind", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(temp.path().join("data"))
        .arg("--content-dir")
        .arg(repo_content_dir())
        .env("RUST_LOG", "")
        .env("PGLAB_LOG_FORMAT", "text")
        .stdout(Stdio::piped())
        .stderr(Stdio::from(std::fs::File::create(&log_path).unwrap()))
        .spawn()
        .unwrap();
    let mut first = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut first)
        .unwrap();
    assert!(first.starts_with("pglab listening on"), "{first}");
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    assert!(child.wait().unwrap().success());
    let log = std::fs::read_to_string(&log_path).unwrap();
    assert!(
        log.contains("INFO") && log.contains("pglab is ready"),
        "{log}"
    );
    assert!(
        !log.contains('\u{1b}'),
        "no ANSI colours in a file: {log:?}"
    );
}
