//! The 14.D.3 connection leak against real sandboxes: pglab opens
//! connections as taskflow_app until PostgreSQL answers "too many
//! connections" (SQLSTATE 53300), the learner still gets in as the
//! superuser, finds them with the lesson's long-idle query (`state =
//! 'idle'`, `state_change` older than an interval: the lesson says one
//! minute, here 3 seconds) and ends them with pg_terminate_backend, which
//! frees their slots (a new leak opens as many again), a role limit changes
//! PostgreSQL's answer, and the leak is always released: by the button, by
//! a restart of the sandbox, and by the lab's own timeout. The learner
//! lowers max_connections with ALTER SYSTEM and a restart, but never below
//! pglab's floor.

#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/labs.rs"]
mod labs;
#[path = "common/sandbox.rs"]
mod support;

use std::time::Duration;

const APP_SESSIONS: &str =
    "select count(*)::text from pg_stat_activity where usename = 'taskflow_app'";

async fn leak_is_refused_seen_ended_and_released(backend: &'static str) {
    let Some(lab) = labs::start(
        backend,
        &format!("leak{backend}"),
        &["--lab-leak-secs", "12"],
    )
    .await
    else {
        return;
    };
    // T1 is open before the leak, as the lesson's learner has it.
    assert_eq!(lab.scalar(APP_SESSIONS).await, "0");

    let leak = lab.ok("POST", "/api/labs/connections/leak").await;
    let opened = leak["opened"].as_u64().unwrap();
    eprintln!(
        "{backend}: the leak opened {opened} connections before: {}",
        leak["error"]
    );
    assert_eq!(leak["max_connections"], 20, "{leak}");
    assert!(opened > 5 && opened < 20, "{leak}");
    assert_eq!(leak["sqlstate"], "53300", "{leak}");
    let error = leak["error"].as_str().unwrap();
    assert!(
        error.starts_with("FATAL:  ") && error.contains("reserved for non-replication superuser"),
        "{leak}"
    );
    assert_eq!(lab.scalar(APP_SESSIONS).await, opened.to_string());
    let idle: String = lab
        .scalar("select count(*)::text from pg_stat_activity where usename = 'taskflow_app' and state = 'idle'")
        .await;
    assert_eq!(idle, opened.to_string());
    // Never locked out: new superuser connections (the monitor's) still get in.
    lab.ok("GET", "/api/labs/stats").await;
    // A second leak finds the server full at once.
    let again = lab.ok("POST", "/api/labs/connections/leak").await;
    assert_eq!(again["opened"], 0, "{again}");
    assert_eq!(again["held"], opened, "{again}");

    // Another learner neither sees nor releases them.
    let other = common::signed_in_learner(lab.server(), &format!("other{backend}")).await;
    let theirs: serde_json::Value = other
        .get(lab.url("/api/labs/connections"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(theirs["held"], 0, "{theirs}");
    let theirs: serde_json::Value = other
        .post(lab.url("/api/labs/connections/release"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(theirs["released"], 0, "{theirs}");
    assert_eq!(lab.scalar(APP_SESSIONS).await, opened.to_string());

    // The learner finds them with the lesson's query once they are older
    // than its interval, and ends them; pglab sees they are dead, then lets go.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let found = lab
        .scalar("select count(*)::text from pg_stat_activity where usename = 'taskflow_app' and state = 'idle' and state_change < now() - interval '3 seconds'")
        .await;
    assert_eq!(found, opened.to_string());
    let ended = lab
        .sql(
            "T1",
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE state = 'idle' AND state_change < now() - interval '3 seconds'",
        )
        .await;
    assert!(
        ended["rows"].as_array().unwrap().len() as u64 >= opened,
        "{ended}"
    );
    let freed = labs::eventually(Duration::from_secs(5), || async {
        lab.scalar(APP_SESSIONS).await == "0"
    })
    .await;
    assert!(freed, "the terminated sessions still hold their slots");
    let status = lab.ok("GET", "/api/labs/connections").await;
    assert_eq!(status["held"], opened, "{status}");
    assert_eq!(status["alive"], 0, "{status}");
    let released = lab.ok("POST", "/api/labs/connections/release").await;
    assert_eq!(released["released"], opened, "{released}");
    assert_eq!(lab.ok("GET", "/api/labs/connections").await["held"], 0);
    // The slots are free: a new leak gets as many again, then is released.
    let refill = lab.ok("POST", "/api/labs/connections/leak").await;
    assert!(refill["opened"].as_u64().unwrap() >= opened, "{refill}");
    lab.ok("POST", "/api/labs/connections/release").await;

    // A role limit (the lesson's fix) changes PostgreSQL's answer.
    lab.sql("T1", "alter role taskflow_app connection limit 4")
        .await;
    let limited = lab.ok("POST", "/api/labs/connections/leak").await;
    assert_eq!(limited["opened"], 4, "{limited}");
    assert!(
        limited["error"]
            .as_str()
            .unwrap()
            .contains("too many connections for role"),
        "{limited}"
    );
    // A restart of the sandbox releases them first.
    lab.ok("POST", "/api/sandbox/restart").await;
    assert_eq!(lab.ok("GET", "/api/labs/connections").await["held"], 0);
    assert_eq!(lab.scalar(APP_SESSIONS).await, "0");

    // The lab's own timeout (12 s here) releases a forgotten leak.
    lab.sql("T1", "alter role taskflow_app connection limit -1")
        .await;
    let forgotten = lab.ok("POST", "/api/labs/connections/leak").await;
    assert!(forgotten["opened"].as_u64().unwrap() > 5, "{forgotten}");
    assert!(forgotten["release_in_s"].as_u64().unwrap() <= 12);
    let gone = labs::eventually(Duration::from_secs(25), || async {
        lab.ok("GET", "/api/labs/connections").await["held"] == 0
    })
    .await;
    assert!(gone, "the leak outlived its timeout");
    let closed = labs::eventually(Duration::from_secs(10), || async {
        lab.scalar(APP_SESSIONS).await == "0"
    })
    .await;
    assert!(closed, "the server still has taskflow_app sessions");

    // The lesson's step 3: the learner lowers max_connections with ALTER
    // SYSTEM and a restart from the panel, and the leak stops sooner. pglab
    // never starts a sandbox with fewer than 10 (else no way in is left).
    lab.sql("T1", "alter system set max_connections = 15").await;
    lab.ok("POST", "/api/sandbox/restart").await;
    assert_eq!(lab.scalar("show max_connections").await, "15");
    let smaller = lab.ok("POST", "/api/labs/connections/leak").await;
    assert_eq!(smaller["max_connections"], 15, "{smaller}");
    assert_eq!(smaller["sqlstate"], "53300", "{smaller}");
    let fewer = smaller["opened"].as_u64().unwrap();
    assert!(fewer > 5 && fewer < 12 && fewer < opened, "{smaller}");
    lab.ok("POST", "/api/labs/connections/release").await;
    lab.sql("T1", "alter system set max_connections = 3").await;
    lab.ok("POST", "/api/sandbox/restart").await;
    assert_eq!(lab.scalar("show max_connections").await, "10");
    lab.sql("T1", "alter system reset max_connections").await;

    // With fewer than 3 reserved slots a full server would lock the learner
    // out too: pglab refuses to leak and says how to undo it.
    lab.sql("T1", "alter system set superuser_reserved_connections = 1")
        .await;
    lab.ok("POST", "/api/sandbox/restart").await;
    let refused = lab.ok("POST", "/api/labs/connections/leak").await;
    assert_eq!(refused["opened"], 0, "{refused}");
    assert_eq!(refused["superuser_reserved_connections"], 1, "{refused}");
    assert!(
        refused["error"]
            .as_str()
            .unwrap()
            .contains("ALTER SYSTEM RESET superuser_reserved_connections"),
        "{refused}"
    );
    assert_eq!(lab.scalar(APP_SESSIONS).await, "0");
}

#[tokio::test]
async fn leak_on_the_docker_backend() {
    let _one = labs::DOCKER.lock().await;
    leak_is_refused_seen_ended_and_released("docker").await;
}

#[tokio::test]
async fn leak_on_the_local_backend() {
    leak_is_refused_seen_ended_and_released("local").await;
}
