//! The local backend against real PostgreSQL 15 processes: lifecycle, data
//! that survives stops and pglab restarts, reset, isolation between
//! learners, a server killed behind pglab's back, and idle reaping.

#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/sandbox.rs"]
mod support;

use std::time::Duration;

use pglab::sandbox::local::LocalProvisioner;
use pglab::sandbox::records::Records;
use pglab::sandbox::{Provisioner, SandboxSettings, SandboxState, reaper};
use sqlx::Connection;
use support::{LocalClusters, add_learner, scalar};

async fn provisioner(data: &std::path::Path) -> (LocalProvisioner, pglab::store::Store) {
    let config = support::config(&["--sandbox", "local", "--data-dir", data.to_str().unwrap()]);
    let store = support::store(data).await;
    (
        LocalProvisioner::new(&config.sandbox, &config.sandbox_dirs(), &store).unwrap(),
        store,
    )
}

#[tokio::test]
async fn local_lifecycle_keeps_data_until_reset_and_destroy() {
    let (_temp, data) = support::data_dir();
    let _guard = LocalClusters(data.clone());
    let (p, store) = provisioner(&data).await;
    let a = add_learner(&store, "ann").await;

    assert_eq!(p.status(a).await.unwrap().state, SandboxState::Absent);
    let opts = p.start(a).await.unwrap();
    assert_eq!(scalar(&opts, "select current_user::text").await, "labuser");
    assert_eq!(
        scalar(&opts, "select current_database()::text").await,
        "labdb"
    );
    assert_eq!(
        scalar(&opts, "select current_setting('listen_addresses')").await,
        "",
        "no TCP listener"
    );
    let mut conn = support::connect(&opts).await;
    sqlx::raw_sql("create table t (x int); insert into t values (42);")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();

    let status = p.status(a).await.unwrap();
    assert_eq!(status.state, SandboxState::Running);
    assert!(
        status
            .pg_version
            .as_deref()
            .is_some_and(|v| v.starts_with("15"))
    );
    assert!(status.size_bytes.unwrap() > 1_000_000);

    // Idempotent: a second start re-attaches to the same server.
    let again = p.start(a).await.unwrap();
    assert_eq!(scalar(&again, "select x::text from t").await, "42");

    p.stop(a).await.unwrap();
    assert_eq!(p.status(a).await.unwrap().state, SandboxState::Stopped);
    p.stop(a).await.unwrap(); // stopping twice is fine
    let opts = p.start(a).await.unwrap();
    assert_eq!(
        scalar(&opts, "select x::text from t").await,
        "42",
        "data survives a stop"
    );

    let opts = p.restart(a).await.unwrap();
    assert_eq!(
        scalar(&opts, "select x::text from t").await,
        "42",
        "data survives a restart"
    );

    let opts = p.reset(a).await.unwrap();
    assert_eq!(
        scalar(
            &opts,
            "select count(*)::text from pg_tables where tablename = 't'"
        )
        .await,
        "0",
        "reset empties the database"
    );

    p.destroy(a).await.unwrap();
    assert_eq!(p.status(a).await.unwrap().state, SandboxState::Absent);
    assert!(!data.join("local").join(a.to_string()).exists());
}

#[tokio::test]
async fn local_learners_cannot_reach_each_other() {
    let (_temp, data) = support::data_dir();
    let _guard = LocalClusters(data.clone());
    let (p, store) = provisioner(&data).await;
    let a = add_learner(&store, "ann").await;
    let b = add_learner(&store, "bob").await;
    let (oa, ob) = tokio::join!(p.start(a), p.start(b));
    let (oa, ob) = (oa.unwrap(), ob.unwrap());

    let mut conn = support::connect(&oa).await;
    sqlx::raw_sql("create table secret (s text); insert into secret values ('ann''s');")
        .execute(&mut conn)
        .await
        .unwrap();
    assert_eq!(
        scalar(
            &ob,
            "select count(*)::text from pg_tables where tablename = 'secret'"
        )
        .await,
        "0"
    );

    // Bob's socket with Ann's password: refused.
    let records = Records::new(&store);
    let ann_pw = records.get(a).await.unwrap().unwrap().password;
    let bob_pw = records.get(b).await.unwrap().unwrap().password;
    assert_ne!(ann_pw, bob_pw);
    let wrong = ob.clone().password(&ann_pw);
    let err = sqlx::PgConnection::connect_with(&wrong).await.unwrap_err();
    assert!(
        err.to_string().contains("password authentication failed"),
        "{err}"
    );
    // And without any password: refused too (scram even on the socket).
    let none = sqlx::postgres::PgConnectOptions::new()
        .socket(data.join("local").join(b.to_string()))
        .username("labuser")
        .database("labdb");
    assert!(sqlx::PgConnection::connect_with(&none).await.is_err());
}

#[tokio::test]
async fn local_server_killed_behind_our_back_is_restarted_with_its_data() {
    let (_temp, data) = support::data_dir();
    let _guard = LocalClusters(data.clone());
    let (p, store) = provisioner(&data).await;
    let a = add_learner(&store, "ann").await;
    let opts = p.start(a).await.unwrap();
    let mut conn = support::connect(&opts).await;
    sqlx::raw_sql("create table t (x int); insert into t values (7); checkpoint;")
        .execute(&mut conn)
        .await
        .unwrap();
    drop(conn);

    let pidfile = data
        .join("local")
        .join(a.to_string())
        .join("data/postmaster.pid");
    let pid = std::fs::read_to_string(&pidfile).unwrap();
    let pid = pid.lines().next().unwrap().trim().to_string();
    assert!(
        std::process::Command::new("kill")
            .args(["-KILL", &pid])
            .status()
            .unwrap()
            .success()
    );
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_ne!(p.status(a).await.unwrap().state, SandboxState::Running);

    let opts = p.start(a).await.unwrap();
    assert_eq!(scalar(&opts, "select x::text from t").await, "7");
}

/// A first start cut short (pglab killed while initdb ran; initdb writes
/// PG_VERSION early) leaves pglab's marker beside the half-made cluster: the
/// next start makes the cluster again instead of failing on it for good.
#[tokio::test]
async fn local_first_start_cut_short_is_made_again() {
    let (_temp, data) = support::data_dir();
    let _guard = LocalClusters(data.clone());
    let (p, store) = provisioner(&data).await;
    let a = add_learner(&store, "ann").await;
    let dir = data.join("local").join(a.to_string());
    // What an initdb killed early leaves: PG_VERSION and little else.
    std::fs::create_dir_all(dir.join("data/base")).unwrap();
    std::fs::write(dir.join("data/PG_VERSION"), "15\n").unwrap();
    std::fs::write(dir.join(".pglab-init-incomplete"), "initdb in progress\n").unwrap();
    let opts = p.start(a).await.unwrap();
    assert_eq!(scalar(&opts, "select (40 + 2)::text").await, "42");
    assert!(!dir.join(".pglab-init-incomplete").exists());
}

#[tokio::test]
async fn local_idle_sandboxes_are_stopped_and_come_back() {
    let (_temp, data) = support::data_dir();
    let _guard = LocalClusters(data.clone());
    let (p, store) = provisioner(&data).await;
    let records = Records::new(&store);
    let a = add_learner(&store, "ann").await;
    let b = add_learner(&store, "bob").await;
    let opts = p.start(a).await.unwrap();
    p.start(b).await.unwrap();

    // A cap of one running sandbox: the least recently used (ann) stops.
    sqlx::query("update sandboxes set last_used = last_used - 100 where learner_id = ?")
        .bind(a)
        .execute(store.pool())
        .await
        .unwrap();
    let settings = SandboxSettings {
        idle_secs: 3600,
        max_running: 1,
    };
    let stopped = reaper::reap_once(&p, &records, &settings).await.unwrap();
    assert_eq!(stopped, vec![a]);
    assert_eq!(p.status(a).await.unwrap().state, SandboxState::Stopped);
    assert_eq!(p.status(b).await.unwrap().state, SandboxState::Running);

    // Idle past the limit: bob stops too.
    sqlx::query("update sandboxes set last_used = last_used - 100 where learner_id = ?")
        .bind(b)
        .execute(store.pool())
        .await
        .unwrap();
    let settings = SandboxSettings {
        idle_secs: 50,
        max_running: 10,
    };
    let stopped = reaper::reap_once(&p, &records, &settings).await.unwrap();
    assert_eq!(stopped, vec![b]);
    assert_eq!(p.status(b).await.unwrap().state, SandboxState::Stopped);

    // The next start brings it back transparently.
    let again = p.start(a).await.unwrap();
    assert_eq!(scalar(&again, "select 'back'::text").await, "back");
    assert_eq!(opts.get_socket(), again.get_socket());
}

/// Through the real server and its HTTP API: the sandbox and its data
/// survive a pglab restart, and a stopped one comes back after a restart.
#[tokio::test]
async fn local_sandbox_survives_pglab_restart() {
    let (_temp, data) = support::data_dir();
    let _guard = LocalClusters(data.clone());
    let opts = || common::ServerOptions {
        data_dir: Some(data.clone()),
        ..Default::default()
    };
    let server = common::TestServer::start_with(opts());
    let http = common::signed_in_learner(&server, "homer").await;
    let home = http
        .get(server.url("/"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(home.contains("data-sandbox-panel") && home.contains("/static/js/sandbox.js"));
    assert!(home.contains("local PostgreSQL 15"), "the backend and why");
    for asset in ["/static/js/sandbox.js", "/static/css/sandbox.css"] {
        assert_eq!(
            http.get(server.url(asset)).send().await.unwrap().status(),
            200
        );
    }
    let absent: serde_json::Value = http
        .get(server.url("/api/sandbox"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(absent["state"], "absent", "{absent}");
    let started: serde_json::Value = http
        .post(server.url("/api/sandbox/start"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(started["state"], "running", "{started}");
    assert!(started["elapsed_ms"].as_u64().is_some());

    let store = support::store(&data).await;
    let record = sqlx::query_as::<_, (i64, String)>("select learner_id, password from sandboxes")
        .fetch_one(store.pool())
        .await
        .unwrap();
    let pg = sqlx::postgres::PgConnectOptions::new()
        .socket(data.join("local").join(record.0.to_string()))
        .username("labuser")
        .password(&record.1)
        .database("labdb");
    let mut conn = support::connect(&pg).await;
    sqlx::raw_sql("create table kept (x int); insert into kept values (1);")
        .execute(&mut conn)
        .await
        .unwrap();
    drop(conn);

    let (ok, _keep, _) = server.stop_keep_data();
    assert!(ok, "pglab stops cleanly");
    let server = common::TestServer::start_with(opts());
    let status: serde_json::Value = http
        .get(server.url("/api/sandbox"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["state"], "running", "re-attached: {status}");
    assert_eq!(scalar(&pg, "select x::text from kept").await, "1");

    let stopped: serde_json::Value = http
        .post(server.url("/api/sandbox/stop"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(stopped["state"], "stopped");
    let (ok, _keep2, _) = server.stop_keep_data();
    assert!(ok);
    let server = common::TestServer::start_with(opts());
    let started: serde_json::Value = http
        .post(server.url("/api/sandbox/start"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(started["state"], "running", "{started}");
    assert_eq!(scalar(&pg, "select x::text from kept").await, "1");

    let reset = http
        .post(server.url("/api/sandbox/reset"))
        .send()
        .await
        .unwrap();
    assert_eq!(reset.status(), 200);
    assert_eq!(
        scalar(
            &pg,
            "select count(*)::text from pg_tables where tablename = 'kept'"
        )
        .await,
        "0"
    );
}

/// `pglab sandbox list --orphans` shows a sandbox whose learner was deleted,
/// and `pglab sandbox rm` removes it with its data.
#[tokio::test]
async fn cli_lists_orphans_and_removes_them() {
    let (_temp, data) = support::data_dir();
    let _guard = LocalClusters(data.clone());
    let (p, store) = provisioner(&data).await;
    let kept = add_learner(&store, "kept").await;
    let gone = add_learner(&store, "gone").await;
    p.start(kept).await.unwrap();
    p.start(gone).await.unwrap();
    sqlx::query("delete from users where id = ?")
        .bind(gone)
        .execute(store.pool())
        .await
        .unwrap();
    let dir = data.to_str().unwrap();
    let run = |args: &[&str]| {
        let out = common::pglab()
            .arg("sandbox")
            .args(args)
            .args(["--data-dir", dir, "--sandbox", "local"])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let all = run(&["list"]);
    assert_eq!(all.lines().count(), 3, "{all}");
    let orphans = run(&["list", "--orphans"]);
    let rows: Vec<&str> = orphans.lines().skip(1).collect();
    assert_eq!(rows.len(), 1, "{orphans}");
    assert!(
        rows[0].starts_with(&gone.to_string()) && rows[0].contains("orphan"),
        "{orphans}"
    );

    run(&["stop", &kept.to_string()]);
    assert_eq!(p.status(kept).await.unwrap().state, SandboxState::Stopped);
    run(&["rm", &gone.to_string()]);
    assert!(!data.join("local").join(gone.to_string()).exists());
    assert_eq!(run(&["list", "--orphans"]).lines().count(), 1);
}
