//! The foundation: the real binary starts on port 0, serves its probes and
//! pages, keeps its store across restarts, and refuses bad settings clearly.

mod common;

use std::process::Output;

use common::{ServerOptions, TestServer, client, pglab, repo_content_dir};

#[tokio::test]
async fn serves_health_home_static_and_404() {
    let server = TestServer::start();
    let http = client();

    let health = http.get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    assert_eq!(health.text().await.unwrap(), "ok");

    let ready: serde_json::Value = http
        .get(server.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["store"], true, "{ready}");
    assert!(ready["sandbox"]["backend"].is_string(), "{ready}");

    let home = http.get(server.url("/")).send().await.unwrap();
    assert_eq!(home.status(), 200);
    let body = home.text().await.unwrap();
    assert!(body.contains("<title>pglab"), "{body}");
    assert!(body.contains("/static/css/pglab.css"));

    let css = http
        .get(server.url("/static/css/pglab.css"))
        .send()
        .await
        .unwrap();
    assert_eq!(css.status(), 200);
    let cache = css.headers()["cache-control"].to_str().unwrap().to_string();
    assert!(cache.contains("max-age"), "{cache}");
    assert!(css.text().await.unwrap().contains("--accent"));

    let missing = http.get(server.url("/no/such/page")).send().await.unwrap();
    assert_eq!(missing.status(), 404);
}

#[tokio::test]
async fn home_lists_sections_of_the_content_dir() {
    let content = tempfile::tempdir().unwrap();
    std::fs::write(
        content.path().join("15-elasticsearch-practice.md"),
        "# SECTION 15 — Elasticsearch Practice\n\nText.\n",
    )
    .unwrap();
    std::fs::write(
        content.path().join("03-joins.md"),
        "# SECTION 3 — Joins\n\nText.\n",
    )
    .unwrap();
    let server = TestServer::start_with(ServerOptions {
        content_dir: content.path().to_path_buf(),
        ..Default::default()
    });
    let body = client()
        .get(server.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    let joins = body.find("Joins").expect("section 3 listed");
    let elastic = body
        .find("Elasticsearch Practice")
        .expect("section 15 listed");
    assert!(joins < elastic, "sections are in numeric order");
    assert!(body.contains("/sections/15-elasticsearch-practice"));
}

#[tokio::test]
async fn store_is_created_migrated_and_kept_across_restarts() {
    let server = TestServer::start();
    let store = server.data_dir.join("pglab.db");
    assert!(store.is_file(), "store file created at {}", store.display());

    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", store.display()))
        .await
        .unwrap();
    let migrations: i64 = sqlx::query_scalar("select count(*) from _sqlx_migrations where success")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert!(migrations >= 1);
    let instance: String =
        sqlx::query_scalar("select value from settings where key = 'instance_id'")
            .fetch_one(&pool)
            .await
            .unwrap();
    sqlx::query("insert into users (username, role) values ('kept-user', 'learner')")
        .execute(&pool)
        .await
        .unwrap();
    pool.close().await;

    let (clean, temp, data_dir) = server.stop_keep_data();
    assert!(clean, "SIGTERM ends the server with exit code 0");

    let again = TestServer::start_with(ServerOptions {
        data_dir: Some(data_dir.clone()),
        ..Default::default()
    });
    let status = client()
        .get(again.url("/healthz"))
        .send()
        .await
        .unwrap()
        .status();
    assert_eq!(status, 200);
    let pool = sqlx::SqlitePool::connect(&format!("sqlite://{}", store.display()))
        .await
        .unwrap();
    let kept: i64 = sqlx::query_scalar("select count(*) from users where username = 'kept-user'")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(kept, 1, "data survives a restart");
    let instance_again: String =
        sqlx::query_scalar("select value from settings where key = 'instance_id'")
            .fetch_one(&pool)
            .await
            .unwrap();
    assert_eq!(instance, instance_again, "instance id is stable");
    drop(temp);
}

fn assert_clear_failure(out: &Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "exit code 2; stderr: {stderr}");
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "exactly one line: {stderr}");
    assert!(lines[0].starts_with("pglab: "), "{stderr}");
    assert!(lines[0].contains(needle), "{needle:?} in {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_taken_port_exits_2_with_a_clear_line() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let data = tempfile::tempdir().unwrap();
    let out = pglab()
        .args(["serve", "--sandbox", "local", "--bind", &addr])
        .arg("--data-dir")
        .arg(data.path())
        .arg("--content-dir")
        .arg(repo_content_dir())
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert_clear_failure(&out, "--bind");
}

#[test]
fn an_unwritable_data_dir_exits_2_with_a_clear_line() {
    // Root may write anywhere, so make the data dir impossible instead: its
    // parent is a regular file.
    let temp = tempfile::tempdir().unwrap();
    let file = temp.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let out = pglab()
        .args(["serve", "--sandbox", "local", "--bind", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(file.join("data"))
        .arg("--content-dir")
        .arg(repo_content_dir())
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert_clear_failure(&out, "--data-dir");
}

#[test]
fn a_missing_content_dir_exits_2_with_a_clear_line() {
    let temp = tempfile::tempdir().unwrap();
    let out = pglab()
        .args(["serve", "--sandbox", "local", "--bind", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(temp.path().join("data"))
        .arg("--content-dir")
        .arg(temp.path().join("nope"))
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert_clear_failure(&out, "--content-dir");
}

#[test]
fn a_bad_flag_exits_2_with_a_clear_line() {
    let out = pglab().arg("--no-such-flag").output().unwrap();
    assert_clear_failure(&out, "--no-such-flag");
    let out = pglab()
        .args(["serve", "--sandbox", "kubernetes"])
        .output()
        .unwrap();
    assert_clear_failure(&out, "kubernetes");
}

#[test]
fn settings_come_from_the_environment_too() {
    let temp = tempfile::tempdir().unwrap();
    let out = pglab()
        .arg("serve")
        .env("PGLAB_BIND", "127.0.0.1:0")
        .env("PGLAB_SANDBOX", "local")
        .env("PGLAB_DATA_DIR", temp.path().join("data"))
        .env("PGLAB_CONTENT_DIR", temp.path().join("missing-from-env"))
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert_clear_failure(&out, "missing-from-env");
}

/// A request still in flight at SIGTERM (here a body that never finishes
/// arriving) holds the stop for the grace period, then pglab exits cleanly
/// anyway instead of waiting for it (or being killed).
#[test]
fn a_stop_waits_for_requests_in_flight_only_for_the_grace_period() {
    use std::io::Write;
    use std::time::{Duration, Instant};

    let mut server = TestServer::start_with(ServerOptions {
        extra_args: vec!["--shutdown-grace-secs".into(), "1".into()],
        ..Default::default()
    });
    let addr = server.base.trim_start_matches("http://").to_string();
    let mut slow = std::net::TcpStream::connect(&addr).unwrap();
    slow.write_all(
        b"POST /api/login HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n\
          Content-Length: 1000\r\n\r\n{\"username\":",
    )
    .unwrap();
    std::thread::sleep(Duration::from_millis(300));

    let began = Instant::now();
    let clean = server.stop();
    let took = began.elapsed();
    assert!(
        clean,
        "pglab exits by itself (code 0) after the grace period, not killed"
    );
    assert!(
        took >= Duration::from_millis(900),
        "the request in flight had its grace period first ({took:?})"
    );
    drop(slow);
}
