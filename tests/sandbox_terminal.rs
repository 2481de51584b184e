//! The sandbox terminal end to end: the real server, real WebSockets over
//! loopback, real containers of the offline image (and a real local
//! cluster for the local backend's shell).
//!
//! Docker tests run one at a time (a static lock): containers are heavy on
//! these 2-core machines. Everything they create is removed by a guard.

#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/sandbox.rs"]
mod support;
#[path = "common/term.rs"]
mod term;

use std::time::{Duration, Instant};

use serde_json::json;

static DOCKER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

fn data_dir() -> (tempfile::TempDir, std::path::PathBuf) {
    use std::os::unix::fs::PermissionsExt;
    let temp = tempfile::Builder::new()
        .prefix("pglab-term-")
        .tempdir()
        .unwrap();
    std::fs::set_permissions(temp.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = temp.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    (temp, data)
}

#[tokio::test]
async fn terminal_round_trip_resize_and_only_the_owner() {
    if !common::require_docker() {
        return;
    }
    let _one = DOCKER.lock().await;
    let (_temp, data) = data_dir();
    let (_cleanup, server) = term::docker_server(data, &["--terminal-max", "2"]).await;
    common::signed_in_learner(&server, "ada").await;
    common::signed_in_learner(&server, "bob").await;
    let (ada, _) = term::cookies(&server, "ada").await;
    let (bob, _) = term::cookies(&server, "bob").await;

    // Nobody signed in, and a page of another site with ada's cookie.
    assert_eq!(
        term::open(&server, None, None, 80, 24).await.err(),
        Some(401)
    );
    let foreign = term::open(&server, Some(&ada), Some("http://evil.example"), 80, 24).await;
    assert_eq!(foreign.err(), Some(403));

    // Our own page's origin works; psql runs as written in the lesson.
    let began = Instant::now();
    let mut t = term::open(&server, Some(&ada), Some(&server.base), 100, 30)
        .await
        .unwrap();
    // The prompt shows before any newline (raw bytes, not lines).
    t.expect(0, ":~$ ", 60).await;
    let out = t.run("psql -Atc 'select 42'", 60).await;
    eprintln!(
        "first psql through the terminal after {:?}",
        began.elapsed()
    );
    assert!(out.lines().any(|l| l.trim() == "42"), "{out}");
    let banner = t.control.iter().find(|c| c["type"] == "banner").unwrap();
    assert!(
        banner["message"].as_str().unwrap().contains("bash"),
        "{banner}"
    );

    // Who and where: the unprivileged user, the lesson's defaults.
    let out = t.run("id -un; echo $PGUSER/$PGDATABASE; pwd", 10).await;
    assert!(
        out.contains("postgres") && out.contains("labuser/labdb"),
        "{out}"
    );
    assert!(out.contains("/var/lib/postgresql/lab"), "{out}");

    // The TTY has the size asked for, and follows resizes.
    let out = t.run("stty size", 10).await;
    assert!(out.contains("30 100"), "{out}");
    t.resize(132, 43).await;
    // Resizes are applied at most every 100 ms (coalesced).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let out = t.run("stty size", 10).await;
    assert!(out.contains("43 132"), "{out}");

    // ada's table is not in bob's sandbox: bob's terminal is his own.
    t.run("psql -qc 'create table ada_only (x int)'", 20).await;
    let mut b = term::open(&server, Some(&bob), None, 80, 24).await.unwrap();
    let out = b
        .run(
            "psql -Atc \"select coalesce(to_regclass('ada_only')::text, 'absent')\"",
            60,
        )
        .await;
    assert!(out.lines().any(|l| l.trim() == "absent"), "{out}");
    let out = t
        .run(
            "psql -Atc \"select coalesce(to_regclass('ada_only')::text, 'absent')\"",
            10,
        )
        .await;
    assert!(out.lines().any(|l| l.trim() == "ada_only"), "{out}");

    // An instructor watches ada's terminal, read-only; a learner may not.
    // The instructor of ada's classroom (no other instructor sees her).
    common::signed_in_instructor_of(&server, "teach", "ada").await;
    let (teach, _) = term::cookies(&server, "teach").await;
    let me: serde_json::Value = reqwest::Client::new()
        .get(server.url("/api/me"))
        .header("cookie", &ada)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let watch = format!("/api/instructor/learners/{}/terminal", me["id"]);
    let refused = term::open_path(&server, &watch, Some(&bob), None).await;
    assert_eq!(refused.err(), Some(403));
    let mut w = term::open_path(&server, &watch, Some(&teach), Some(&server.base))
        .await
        .unwrap();
    while !w.control.iter().any(|c| c["type"] == "banner") {
        assert!(w.read_once(Duration::from_secs(5)).await.is_some());
    }
    // ada is told who watches her terminal.
    let told = t
        .wait_control(10, |c| {
            c["type"] == "watchers" && c["names"] == json!(["teach"])
        })
        .await;
    assert!(
        told["message"].as_str().unwrap().contains("teach"),
        "{told}"
    );
    t.run("echo watched-$((40+2))", 10).await;
    w.expect(0, "watched-42", 10).await;
    w.line("echo typed-by-$((1+1))").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    t.run("true", 10).await;
    assert!(
        !t.screen.contains("typed-by-2"),
        "a watcher's keys reached the shell"
    );
    w.close().await;
    t.wait_control(10, |c| c["type"] == "watchers" && c["names"] == json!([]))
        .await;

    // At most --terminal-max terminals per learner.
    let second = term::open(&server, Some(&ada), None, 80, 24).await.unwrap();
    assert_eq!(
        term::open(&server, Some(&ada), None, 80, 24).await.err(),
        Some(429)
    );
    second.close().await;

    // `exit` ends the shell; the server says so.
    t.line("exit").await;
    assert_eq!(t.closed_reason(15).await, "exit");
    b.close().await;
}

#[tokio::test]
async fn idle_and_signed_out_terminals_close() {
    if !common::require_docker() {
        return;
    }
    let _one = DOCKER.lock().await;
    let (_temp, data) = data_dir();
    let (_cleanup, server) = term::docker_server(data, &["--terminal-idle-secs", "6"]).await;
    common::signed_in_learner(&server, "cyd").await;
    let (cookie, csrf) = term::cookies(&server, "cyd").await;

    let mut t = term::open(&server, Some(&cookie), None, 80, 24)
        .await
        .unwrap();
    t.run("true", 60).await;
    // A process started from the terminal ends with it.
    t.line("sleep 1000 &").await;
    let began = Instant::now();
    assert_eq!(t.closed_reason(15).await, "idle");
    let waited = began.elapsed();
    assert!(waited >= Duration::from_secs(5), "closed after {waited:?}");
    let msg = t.control.iter().find(|c| c["type"] == "closed").unwrap();
    assert!(
        msg["message"].as_str().unwrap().contains("idle for 6 s"),
        "{msg}"
    );

    let mut t = term::open(&server, Some(&cookie), None, 80, 24)
        .await
        .unwrap();
    // (the image has no ps: read /proc)
    let count = "for p in /proc/[0-9]*; do tr '\\0' ' ' < $p/cmdline 2>/dev/null; echo; done | grep -c '^sleep 1000' || true";
    let out = t.run(&format!("sleep 3; {count}"), 20).await;
    assert!(
        out.lines().any(|l| l.trim() == "0"),
        "the background job outlived its terminal: {out}"
    );
    // A keystroke now, so that only the sign-out can close it in time.
    t.line("").await;
    let res = reqwest::Client::new()
        .post(server.url("/api/logout"))
        .header("cookie", &cookie)
        .header("x-csrf-token", &csrf)
        .send()
        .await
        .unwrap();
    assert!(res.status().is_success(), "logout: {}", res.status());
    let began = Instant::now();
    assert_eq!(t.closed_reason(15).await, "signed_out");
    assert!(
        began.elapsed() < Duration::from_secs(4),
        "{:?}",
        began.elapsed()
    );
    // The old cookie opens nothing any more.
    assert_eq!(
        term::open(&server, Some(&cookie), None, 80, 24).await.err(),
        Some(401)
    );
}

#[tokio::test]
async fn a_flood_of_output_is_rate_limited_and_the_server_stays_quick() {
    if !common::require_docker() {
        return;
    }
    let _one = DOCKER.lock().await;
    let (_temp, data) = data_dir();
    let rate: usize = 256 * 1024;
    let (_cleanup, server) =
        term::docker_server(data, &["--terminal-output-rate", &rate.to_string()]).await;
    common::signed_in_learner(&server, "dee").await;
    let (cookie, _) = term::cookies(&server, "dee").await;
    let mut t = term::open(&server, Some(&cookie), None, 80, 24)
        .await
        .unwrap();
    t.run("true", 60).await;
    t.line("cat /dev/urandom").await;
    let http = reqwest::Client::new();
    let began = Instant::now();
    let mut received = 0usize;
    let mut slowest = Duration::ZERO;
    let mut next_probe = Instant::now();
    while began.elapsed() < Duration::from_secs(4) {
        received += t.read_once(Duration::from_millis(100)).await.unwrap_or(0);
        if Instant::now() >= next_probe {
            let probe = Instant::now();
            let res = http.get(server.url("/healthz")).send().await.unwrap();
            assert!(res.status().is_success());
            slowest = slowest.max(probe.elapsed());
            next_probe = Instant::now() + Duration::from_millis(500);
        }
    }
    let secs = began.elapsed().as_secs_f64();
    eprintln!(
        "urandom flood: {received} bytes in {secs:.1} s ({:.0} B/s, limit {rate}); slowest /healthz {slowest:?}",
        received as f64 / secs
    );
    // A second of burst plus the rate, plus two reads (16 KiB each) of
    // slack for clock skew between the two ends; the flood is unbounded.
    assert!(
        received as f64 <= rate as f64 * (secs + 1.0) + 32768.0,
        "{received} bytes"
    );
    assert!(
        received >= rate,
        "the terminal sent almost nothing: {received}"
    );
    assert!(
        slowest < Duration::from_millis(500),
        "/healthz took {slowest:?}"
    );
    // Ctrl-C stops it and the shell answers again, once what the flood had
    // already queued (pipes, socket buffers) has drained at the rate.
    t.send_bytes(b"\x03").await;
    let from = t.screen.len();
    let stopped = Instant::now();
    t.line("echo after-$((6*7))").await;
    t.expect(from, "after-42", 90).await;
    eprintln!("prompt back {:?} after Ctrl-C", stopped.elapsed());
    t.close().await;
}

#[tokio::test]
async fn alembic_upgrade_and_downgrade_in_the_sandbox() {
    if !common::require_docker() {
        return;
    }
    let _one = DOCKER.lock().await;
    let (_temp, data) = data_dir();
    let (_cleanup, server) = term::docker_server(data, &[]).await;
    common::signed_in_learner(&server, "eve").await;
    let (cookie, csrf) = term::cookies(&server, "eve").await;
    let mut t = term::open(&server, Some(&cookie), None, 160, 40)
        .await
        .unwrap();
    t.run("psql -qc 'create table tasks (id int primary key)'", 60)
        .await;
    t.run("alembic init migrations", 60).await;
    t.run(
        "sed -i 's#^sqlalchemy.url = .*#sqlalchemy.url = postgresql://labuser@/labdb#' alembic.ini",
        10,
    )
    .await;
    // The lesson's revision (part E, step 7), typed through a heredoc.
    let revision = r#"cat > migrations/versions/0001_estimates.py <<'PY'
from alembic import op
import sqlalchemy as sa
revision = "0001_estimates"
down_revision = None
def upgrade():
    op.add_column("tasks", sa.Column("estimate_hours", sa.Numeric(5, 1), nullable=True))
    op.create_check_constraint("tasks_estimate_positive", "tasks", "estimate_hours >= 0")
def downgrade():
    op.drop_constraint("tasks_estimate_positive", "tasks")
    op.drop_column("tasks", "estimate_hours")
PY"#;
    for line in revision.lines() {
        t.line(line).await;
    }
    t.run("ls migrations/versions", 10).await;
    t.run("alembic upgrade head", 60).await;
    let out = t.run("alembic current", 60).await;
    assert!(out.contains("0001_estimates (head)"), "{out}");
    let out = t
        .run(
            "psql -Atc \"select version_num, (select count(*) from information_schema.columns where table_name = 'tasks' and column_name = 'estimate_hours') from alembic_version\"",
            10,
        )
        .await;
    assert!(out.contains("0001_estimates|1"), "{out}");
    // The part E check sees the revision and the migrated schema.
    assert_eq!(alembic_check(&server, &cookie, &csrf).await, Some(true));
    let out = t.run("alembic history", 30).await;
    assert!(out.contains("<base> -> 0001_estimates (head)"), "{out}");
    t.run("alembic downgrade -1", 60).await;
    let out = t
        .run(
            "psql -Atc \"select (select count(*) from alembic_version) || '/' || (select count(*) from information_schema.columns where table_name = 'tasks' and column_name = 'estimate_hours')\"",
            10,
        )
        .await;
    assert!(out.lines().any(|l| l.trim() == "0/0"), "{out}");
    assert_eq!(alembic_check(&server, &cookie, &csrf).await, Some(false));
    t.close().await;
}

/// Whether exercise 14.E's Alembic check passes for the learner.
async fn alembic_check(server: &common::TestServer, cookie: &str, csrf: &str) -> Option<bool> {
    let answer: serde_json::Value = reqwest::Client::new()
        .post(server.url("/api/exercises/14.E/check"))
        .header("cookie", cookie)
        .header("x-csrf-token", csrf)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    answer["details"]
        .as_array()?
        .iter()
        .find(|d| d["name"] == "an Alembic revision is applied")
        .map(|d| d["passed"] == true)
}

#[tokio::test]
async fn the_local_backend_terminal_is_a_shell_with_psql() {
    let (_temp, data) = data_dir();
    let server = common::TestServer::start_with(common::ServerOptions {
        data_dir: Some(data.clone()),
        ..Default::default()
    });
    let _clusters = support::LocalClusters(data.clone());
    common::signed_in_learner(&server, "fay").await;
    let (cookie, _) = term::cookies(&server, "fay").await;
    let mut t = term::open(&server, Some(&cookie), Some(&server.base), 90, 20)
        .await
        .unwrap();
    // bash in a folder of the learner's own, as the cluster's OS user.
    t.expect(0, "@pglab-local:~$ ", 120).await;
    let banner = t.control.iter().find(|c| c["type"] == "banner").unwrap();
    assert!(
        banner["message"].as_str().unwrap().contains("no container"),
        "{banner}"
    );
    let out = t.run("psql -Atc 'select 40 + 2'", 30).await;
    assert!(out.lines().any(|l| l.trim() == "42"), "{out}");
    let from = t.screen.len();
    t.line("psql").await;
    t.expect(from, "labdb=#", 30).await;
    let from = t.screen.len();
    t.line("select 40 + 2 as answer;").await;
    t.expect(from, "42", 20).await;
    t.line("\\q").await;
    t.line("exit").await;
    assert_eq!(t.closed_reason(15).await, "exit");
}
