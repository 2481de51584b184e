//! The Docker backend against the real engine and the offline image
//! (`scripts/build-sandbox-image.sh`): lifecycle, limits, isolation, faults
//! (killed, removed), reaping, the warm pool, and pglab restarts.
//!
//! One Docker test runs at a time (a static lock): containers are heavy on
//! these 2-core machines. Everything a test creates carries its store's
//! unique instance id as a label and is removed by a guard, also on failure.

#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/sandbox.rs"]
mod support;

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use pglab::sandbox::records::Records;
use pglab::sandbox::{Provisioner, SandboxSettings, SandboxState, reaper};
use pglab::store::Store;
use sqlx::Connection;
use support::{add_learner, scalar};

/// One Docker test at a time.
static DOCKER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

use common::docker::DockerCleanup as Cleanup;

use common::docker::image;

async fn provisioner(
    data: &std::path::Path,
    extra: &[&str],
) -> (Arc<dyn Provisioner>, Store, Cleanup) {
    let mut args = vec!["--sandbox", "docker", "--data-dir", data.to_str().unwrap()];
    if !extra.contains(&"--sandbox-pool") {
        args.extend(["--sandbox-pool", "0"]);
    }
    let img = image();
    args.extend(["--sandbox-image", &img]);
    args.extend_from_slice(extra);
    let config = support::config(&args);
    let store = support::store(data).await;
    let cleanup = Cleanup(store.instance_id().await.unwrap());
    let p = pglab::sandbox::open(&config.sandbox, &config.sandbox_dirs(), &store)
        .await
        .unwrap();
    assert_eq!(p.backend_name(), "docker");
    (p, store, cleanup)
}

fn docker(args: &[&str]) -> String {
    let out = Command::new("docker").args(args).output().unwrap();
    assert!(
        out.status.success(),
        "docker {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

async fn container_of(store: &Store, learner: i64) -> String {
    Records::new(store)
        .get(learner)
        .await
        .unwrap()
        .unwrap()
        .container
}

/// The learner's state as `states` (the instructor's matrix) sees it.
async fn states_of(p: &dyn Provisioner, learner: i64) -> SandboxState {
    let states = p.states().await.unwrap();
    let found: Vec<_> = states.iter().filter(|(l, _)| *l == learner).collect();
    assert_eq!(found.len(), 1, "{states:?}");
    found[0].1
}

#[tokio::test]
async fn docker_lifecycle_limits_and_faults() {
    if !common::require_docker() {
        return;
    }
    let _one = DOCKER.lock().await;
    let (_temp, data) = support::data_dir();
    let (p, store, _cleanup) = provisioner(&data, &[]).await;
    let a = add_learner(&store, "ann").await;

    assert_eq!(p.status(a).await.unwrap().state, SandboxState::Absent);
    let began = Instant::now();
    let opts = p.start(a).await.unwrap();
    eprintln!("cold start: {:?}", began.elapsed());
    assert_eq!(scalar(&opts, "select current_user::text").await, "labuser");
    assert_eq!(
        scalar(&opts, "select current_database()::text").await,
        "labdb"
    );
    assert_eq!(
        scalar(&opts, "select current_setting('listen_addresses')").await,
        ""
    );
    assert_eq!(
        scalar(&opts, "select current_setting('shared_preload_libraries')").await,
        "pg_stat_statements"
    );
    let mut conn = support::connect(&opts).await;
    sqlx::raw_sql("create table t (x int); insert into t values (42);")
        .execute(&mut conn)
        .await
        .unwrap();
    conn.close().await.unwrap();
    let status = p.status(a).await.unwrap();
    assert_eq!(status.state, SandboxState::Running);
    assert_eq!(states_of(p.as_ref(), a).await, status.state);
    assert!(status.pg_version.is_some());
    assert!(status.size_bytes.unwrap() > 1_000_000, "{status:?}");

    // Limits and isolation, as the engine reports them.
    let name = container_of(&store, a).await;
    let inspect: serde_json::Value = serde_json::from_str(&docker(&["inspect", &name])).unwrap();
    let host = &inspect[0]["HostConfig"];
    assert_eq!(host["Memory"], 256 * 1024 * 1024);
    assert_eq!(host["NanoCpus"], 500_000_000);
    assert_eq!(host["PidsLimit"], 256);
    assert_eq!(host["NetworkMode"], "none");
    assert!(
        host["SecurityOpt"]
            .to_string()
            .contains("no-new-privileges")
    );
    assert_eq!(host["CapDrop"], serde_json::json!(["ALL"]));
    assert_eq!(host["ShmSize"], 64 * 1024 * 1024);
    assert_eq!(host["MemorySwap"], 256 * 1024 * 1024, "no swap");
    assert_eq!(inspect[0]["Config"]["StopSignal"], "SIGINT");
    let labels = &inspect[0]["Config"]["Labels"];
    assert_eq!(labels["pglab.managed"], "true");
    assert_eq!(labels["pglab.learner"], a.to_string());

    // Idempotent start; stop and start keep the data.
    let again = p.start(a).await.unwrap();
    assert_eq!(scalar(&again, "select x::text from t").await, "42");
    p.stop(a).await.unwrap();
    assert_eq!(p.status(a).await.unwrap().state, SandboxState::Stopped);
    assert_eq!(states_of(p.as_ref(), a).await, SandboxState::Stopped);
    let began = Instant::now();
    let opts = p.start(a).await.unwrap();
    eprintln!("start of a stopped sandbox: {:?}", began.elapsed());
    assert_eq!(scalar(&opts, "select x::text from t").await, "42");
    let opts = p.restart(a).await.unwrap();
    assert_eq!(scalar(&opts, "select x::text from t").await, "42");

    // Killed behind pglab's back: detected, started again, data intact.
    docker(&["kill", &name]);
    assert_ne!(p.status(a).await.unwrap().state, SandboxState::Running);
    assert_ne!(states_of(p.as_ref(), a).await, SandboxState::Running);
    let opts = p.start(a).await.unwrap();
    assert_eq!(scalar(&opts, "select x::text from t").await, "42");

    // Removed behind pglab's back: re-created on the kept volume.
    docker(&["rm", "-f", &name]);
    let status = p.status(a).await.unwrap();
    assert_eq!(status.state, SandboxState::Stopped, "{status:?}");
    assert_eq!(states_of(p.as_ref(), a).await, SandboxState::Stopped);
    let opts = p.start(a).await.unwrap();
    assert_eq!(scalar(&opts, "select x::text from t").await, "42");

    // Reset: a fresh, empty database.
    let opts = p.reset(a).await.unwrap();
    assert_eq!(
        scalar(
            &opts,
            "select count(*)::text from pg_tables where tablename = 't'"
        )
        .await,
        "0"
    );

    // Destroy: container and volume gone.
    let volume = Records::new(&store).get(a).await.unwrap().unwrap().volume;
    p.destroy(a).await.unwrap();
    assert_eq!(p.status(a).await.unwrap().state, SandboxState::Absent);
    let states = p.states().await.unwrap();
    assert!(
        states
            .iter()
            .all(|(l, s)| *l != a || *s == SandboxState::Absent),
        "{states:?}"
    );
    let volumes = docker(&["volume", "ls", "-q"]);
    assert!(!volumes.lines().any(|v| v == volume));
}

#[tokio::test]
async fn docker_learners_cannot_reach_each_other() {
    if !common::require_docker() {
        return;
    }
    let _one = DOCKER.lock().await;
    let (_temp, data) = support::data_dir();
    let (p, store, _cleanup) = provisioner(&data, &[]).await;
    let a = add_learner(&store, "ann").await;
    let b = add_learner(&store, "bob").await;
    let (oa, ob) = tokio::join!(p.start(a), p.start(b));
    let (oa, ob) = (oa.unwrap(), ob.unwrap());
    assert_ne!(oa.get_socket(), ob.get_socket());
    let mut conn = support::connect(&oa).await;
    sqlx::raw_sql("create table secret (s text); insert into secret values ('ann');")
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
    let records = Records::new(&store);
    let ann_pw = records.get(a).await.unwrap().unwrap().password;
    let err = sqlx::PgConnection::connect_with(&ob.clone().password(&ann_pw))
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("password authentication failed"),
        "{err}"
    );
    // No network inside: the container has only a loopback interface.
    let name = container_of(&store, a).await;
    let nets = docker(&["inspect", "-f", "{{json .NetworkSettings.Networks}}", &name]);
    assert!(nets.contains("none"), "{nets}");
}

#[tokio::test]
async fn docker_idle_sandboxes_stop_and_come_back() {
    if !common::require_docker() {
        return;
    }
    let _one = DOCKER.lock().await;
    let (_temp, data) = support::data_dir();
    let (p, store, _cleanup) = provisioner(&data, &[]).await;
    let a = add_learner(&store, "ann").await;
    p.start(a).await.unwrap();
    sqlx::query("update sandboxes set last_used = last_used - 100")
        .execute(store.pool())
        .await
        .unwrap();
    let settings = SandboxSettings {
        idle_secs: 60,
        max_running: 50,
    };
    let stopped = reaper::reap_once(p.as_ref(), &Records::new(&store), &settings)
        .await
        .unwrap();
    assert_eq!(stopped, vec![a]);
    let name = container_of(&store, a).await;
    assert_eq!(
        docker(&["inspect", "-f", "{{.State.Running}}", &name]),
        "false"
    );
    let opts = p.start(a).await.unwrap();
    assert_eq!(scalar(&opts, "select 'back'::text").await, "back");
}

#[tokio::test]
async fn docker_warm_pool_serves_a_new_learner_at_once() {
    if !common::require_docker() {
        return;
    }
    let _one = DOCKER.lock().await;
    let (_temp, data) = support::data_dir();
    let (p, store, _cleanup) = provisioner(&data, &["--sandbox-pool", "1"]).await;
    p.clone().start_background();
    let records = Records::new(&store);
    let deadline = Instant::now() + Duration::from_secs(60);
    while records.pool_all().await.unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the pool never filled");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let a = add_learner(&store, "ann").await;
    let began = Instant::now();
    let opts = p.start(a).await.unwrap();
    assert_eq!(scalar(&opts, "select 1::text").await, "1");
    let took = began.elapsed();
    eprintln!("warm start to first query: {took:?}");
    assert!(took < Duration::from_secs(1), "warm start took {took:?}");
    let name = container_of(&store, a).await;
    assert!(name.ends_with(&format!("-{a}")), "renamed: {name}");
    // The pool refills in the background.
    let deadline = Instant::now() + Duration::from_secs(60);
    while records.pool_all().await.unwrap().is_empty() {
        assert!(Instant::now() < deadline, "the pool never refilled");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// The real server, twice on one data dir: the sandbox, its data and its
/// container survive a pglab restart; the API answers JSON on failure.
#[tokio::test]
async fn docker_sandbox_survives_pglab_restart() {
    if !common::require_docker() {
        return;
    }
    let _one = DOCKER.lock().await;
    let (_temp, data) = support::data_dir();
    let store = support::store(&data).await;
    let _cleanup = Cleanup(store.instance_id().await.unwrap());
    let opts = || common::ServerOptions {
        data_dir: Some(data.clone()),
        ..common::docker::server_options(&image(), &[])
    };
    let server = common::TestServer::start_with(opts());
    let http = common::signed_in_learner(&server, "docker-learner").await;
    let ready: serde_json::Value = http
        .get(server.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(ready["sandbox"]["backend"], "docker", "{ready}");
    let started: serde_json::Value = http
        .post(server.url("/api/sandbox/start"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(started["state"], "running", "{started}");
    let (learner, password, volume): (i64, String, String) =
        sqlx::query_as("select learner_id, password, volume from sandboxes")
            .fetch_one(store.pool())
            .await
            .unwrap();
    let key = volume.rsplit('-').next().unwrap();
    let pg = sqlx::postgres::PgConnectOptions::new()
        .socket(data.join("sockets").join(key))
        .username("labuser")
        .password(&password)
        .database("labdb");
    let mut conn = support::connect(&pg).await;
    sqlx::raw_sql("create table kept (x int); insert into kept values (1);")
        .execute(&mut conn)
        .await
        .unwrap();
    drop(conn);
    let name = container_of(&store, learner).await;
    let id_before = docker(&["inspect", "-f", "{{.Id}}", &name]);

    let (ok, _keep, _) = server.stop_keep_data();
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
    assert_eq!(
        docker(&["inspect", "-f", "{{.Id}}", &name]),
        id_before,
        "same container"
    );
    assert_eq!(scalar(&pg, "select x::text from kept").await, "1");

    // Live progress: the event stream opens with the status, then the
    // steps of a start.
    let stopped = http
        .post(server.url("/api/sandbox/stop"))
        .send()
        .await
        .unwrap();
    assert_eq!(stopped.status(), 200);
    let mut events = http
        .get(server.url("/api/sandbox/events"))
        .send()
        .await
        .unwrap();
    assert_eq!(
        events.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    let restart = {
        let http = http.clone();
        let url = server.url("/api/sandbox/start");
        tokio::spawn(async move { http.post(url).send().await.unwrap().status() })
    };
    let mut seen = String::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !seen.contains("\"step\":\"ready\"") && Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(30), events.chunk()).await {
            Ok(Ok(Some(chunk))) => seen.push_str(&String::from_utf8_lossy(&chunk)),
            _ => break,
        }
    }
    assert!(seen.starts_with("event: status"), "{seen}");
    assert!(seen.contains("\"step\":\"starting\""), "{seen}");
    assert!(seen.contains("\"step\":\"ready\""), "{seen}");
    assert_eq!(restart.await.unwrap(), 200);
    // An open event stream does not hold up a graceful shutdown.
    let (ok, _keep, _) = server.stop_keep_data();
    assert!(ok, "pglab stops cleanly with an event stream open");
    drop(events);
}

/// A missing image that cannot be pulled (no registry here, or a name no
/// registry has): the API answers 503 with a message naming the offline
/// build script, never a 500 page or a hang.
#[tokio::test]
async fn docker_missing_image_is_a_clear_503() {
    if !common::require_docker() {
        return;
    }
    let _one = DOCKER.lock().await;
    let (_temp, data) = support::data_dir();
    let store = support::store(&data).await;
    let _cleanup = Cleanup(store.instance_id().await.unwrap());
    let server = common::TestServer::start_with(common::ServerOptions {
        data_dir: Some(data.clone()),
        ..common::docker::server_options("pglab/no-such-image:0", &[])
    });
    let http = common::signed_in_learner(&server, "no-image-learner").await;
    let ready: serde_json::Value = http
        .get(server.url("/readyz"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let reason = ready["sandbox"]["reason"].as_str().unwrap();
    assert!(
        reason.contains("without image pglab/no-such-image:0"),
        "{reason}"
    );
    let began = Instant::now();
    let res = http
        .post(server.url("/api/sandbox/start"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    let body: serde_json::Value = res.json().await.unwrap();
    let msg = body["error"].as_str().unwrap();
    assert!(msg.contains("scripts/build-sandbox-image.sh"), "{msg}");
    assert!(began.elapsed() < Duration::from_secs(60));
    let status: serde_json::Value = http
        .get(server.url("/api/sandbox"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_ne!(status["state"], "running");
}

/// No engine at the configured address: `auto` falls back to local and says
/// why; `docker` refuses to start with a clear line.
#[tokio::test]
async fn without_an_engine_auto_falls_back_and_docker_says_why() {
    let (_temp, data) = support::data_dir();
    let store = support::store(&data).await;
    let dir = data.to_str().unwrap();
    let config = support::config(&[
        "--data-dir",
        dir,
        "--docker-host",
        "unix:///nonexistent/docker.sock",
    ]);
    let p = pglab::sandbox::open(&config.sandbox, &config.sandbox_dirs(), &store)
        .await
        .unwrap();
    assert_eq!(p.backend_name(), "local");
    let reason = p.health().await.reason;
    assert!(
        reason.contains("no Docker engine at /nonexistent/docker.sock"),
        "{reason}"
    );
    assert!(reason.contains("local PostgreSQL 15"), "{reason}");

    let config = support::config(&[
        "--data-dir",
        dir,
        "--sandbox",
        "docker",
        "--docker-host",
        "unix:///nonexistent/docker.sock",
    ]);
    let err = pglab::sandbox::open(&config.sandbox, &config.sandbox_dirs(), &store)
        .await
        .err()
        .unwrap();
    assert!(err.to_string().contains("no Docker engine"), "{err}");
}

/// Removes the named containers and volume on drop (also on failure).
struct RemoveOnDrop {
    containers: Vec<String>,
    volume: String,
}

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        for c in &self.containers {
            let _ = Command::new("docker").args(["rm", "-f", c]).output();
        }
        let _ = Command::new("docker")
            .args(["volume", "rm", "-f", &self.volume])
            .output();
    }
}

/// A first start cut short (the container killed while the entrypoint makes
/// the cluster) is made again from scratch by the next start, instead of
/// leaving a half-made cluster that never starts: seen under the classroom
/// load test, when the engine stopped while a new sandbox's template was
/// being copied. Here an init hook holds the first start at a known point
/// (the cluster in place, its hook half done) while the test kills it.
#[tokio::test]
async fn an_interrupted_first_start_initialises_again() {
    if !common::require_docker() {
        return;
    }
    let _one = DOCKER.lock().await;
    let tag = format!("{:08x}", rand::random::<u32>());
    let (first, second, volume) = (
        format!("pglab-test-init-a-{tag}"),
        format!("pglab-test-init-b-{tag}"),
        format!("pglab-test-init-{tag}"),
    );
    let _cleanup = RemoveOnDrop {
        containers: vec![first.clone(), second.clone()],
        volume: volume.clone(),
    };
    let hooks = tempfile::tempdir().unwrap();
    std::fs::write(
        hooks.path().join("hold.sh"),
        "psql -v ON_ERROR_STOP=1 -q -c 'create table half_made (x int)'\n\
         echo held\nsleep 600\n",
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    for (path, mode) in [
        (hooks.path().to_path_buf(), 0o755),
        (hooks.path().join("hold.sh"), 0o644),
    ] {
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
    }
    let img = image();
    let run = |name: &str, hook: Option<&std::path::Path>| {
        let mut args = vec![
            "run".to_string(),
            "-d".into(),
            "--name".into(),
            name.into(),
            "--network".into(),
            "none".into(),
            "-v".into(),
            format!("{volume}:/var/lib/postgresql/data"),
            "-e".into(),
            "POSTGRES_USER=labuser".into(),
            "-e".into(),
            "POSTGRES_PASSWORD=init-test-pw".into(),
            "-e".into(),
            "POSTGRES_DB=labdb".into(),
        ];
        if let Some(dir) = hook {
            args.extend([
                "-v".into(),
                format!("{}:/docker-entrypoint-initdb.d:ro", dir.display()),
            ]);
        }
        args.push(img.clone());
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        docker(&args)
    };
    let logs_contain = |name: &str, needle: &str, secs: u64| {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            let out = Command::new("docker")
                .args(["logs", name])
                .output()
                .unwrap();
            let text = format!(
                "{}{}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
            if text.contains(needle) {
                return text;
            }
            assert!(
                Instant::now() < deadline,
                "{name} never logged {needle:?}:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(200));
        }
    };

    // The first start, held inside its init hook, then killed there.
    run(&first, Some(hooks.path()));
    logs_contain(&first, "held", 60);
    docker(&["kill", &first]);

    // The next start on the same volume (as pglab re-creates a container
    // that went away) clears the half-made cluster and makes it again.
    run(&second, None);
    let log = logs_contain(&second, "cluster initialised", 60);
    assert!(log.contains("cut short: initialising again"), "{log}");
    let psql = |sql: &str| -> Result<String, String> {
        let out = Command::new("docker")
            .args([
                "exec",
                "-u",
                "postgres",
                "-e",
                "PGPASSWORD=init-test-pw",
                &second,
                "psql",
                "-h",
                "/var/run/postgresql",
                "-U",
                "labuser",
                "-d",
                "labdb",
                "-Atc",
                sql,
            ])
            .output()
            .unwrap();
        if out.status.success() {
            Ok(String::from_utf8_lossy(&out.stdout).trim().to_string())
        } else {
            Err(String::from_utf8_lossy(&out.stderr).to_string())
        }
    };
    let deadline = Instant::now() + Duration::from_secs(60);
    let answer = loop {
        match psql("select 40 + 2") {
            Ok(a) => break a,
            Err(e) => {
                assert!(Instant::now() < deadline, "the server never answered: {e}");
                std::thread::sleep(Duration::from_millis(250));
            }
        }
    };
    assert_eq!(answer, "42");
    assert_eq!(
        psql("select coalesce(to_regclass('half_made')::text, 'gone')").unwrap(),
        "gone",
        "the half-made cluster was made again from scratch"
    );
}

/// Removes image names on drop (also on failure).
struct RemoveImages(Vec<String>);

impl Drop for RemoveImages {
    fn drop(&mut self) {
        for name in &self.0 {
            let _ = Command::new("docker").args(["rmi", "-f", name]).output();
        }
    }
}

/// A sandbox image upgrade (here: a new image under the configured name,
/// made offline with `docker commit`): a running sandbox is left alone; once
/// stopped, its next start re-creates the container from the new image on
/// the same volume, and the learner's data is there.
#[tokio::test]
async fn docker_image_upgrade_recreates_a_stopped_sandbox_on_its_volume() {
    if !common::require_docker() {
        return;
    }
    let _one = DOCKER.lock().await;
    let tag = format!("{:08x}", rand::random::<u32>());
    let configured = format!("pglab-test/sandbox:upgrade-{tag}");
    let newer = format!("pglab-test/sandbox:newer-{tag}");
    let _images = RemoveImages(vec![configured.clone(), newer.clone()]);
    docker(&["tag", &image(), &configured]);
    let base = docker(&["create", &image()]);
    docker(&[
        "commit",
        "--change",
        &format!("LABEL pglab.upgrade-test={tag}"),
        &base,
        &newer,
    ]);
    docker(&["rm", &base]);
    let newer_id = docker(&["image", "inspect", "-f", "{{.Id}}", &newer]);

    let (_temp, data) = support::data_dir();
    let config = support::config(&[
        "--sandbox",
        "docker",
        "--data-dir",
        data.to_str().unwrap(),
        "--sandbox-pool",
        "0",
        "--sandbox-image",
        &configured,
    ]);
    let store = support::store(&data).await;
    let _cleanup = Cleanup(store.instance_id().await.unwrap());
    let p = pglab::sandbox::open(&config.sandbox, &config.sandbox_dirs(), &store)
        .await
        .unwrap();
    let a = add_learner(&store, "ann").await;
    let opts = p.start(a).await.unwrap();
    let mut conn = support::connect(&opts).await;
    sqlx::raw_sql("create table kept (x int); insert into kept values (15);")
        .execute(&mut conn)
        .await
        .unwrap();
    drop(conn);
    let name = container_of(&store, a).await;
    let first_id = docker(&["inspect", "-f", "{{.Id}}", &name]);

    // The upgrade: the configured name now points to the newer image.
    docker(&["tag", &newer, &configured]);
    p.start(a).await.unwrap();
    assert_eq!(
        docker(&["inspect", "-f", "{{.Id}}", &name]),
        first_id,
        "a running sandbox is not re-created under the learner"
    );
    p.stop(a).await.unwrap();
    let opts = p.start(a).await.unwrap();
    assert_ne!(docker(&["inspect", "-f", "{{.Id}}", &name]), first_id);
    assert_eq!(
        docker(&["inspect", "-f", "{{.Image}}", &name]),
        newer_id,
        "re-created from the new image"
    );
    assert_eq!(scalar(&opts, "select x::text from kept").await, "15");
}
