//! The learner's own server log and `docker inspect` against real servers
//! on both backends: a deadlock between two console sessions is read off
//! the log with both statements; a new log line reaches the SSE stream; the
//! inspect answer has the data directory's mount and passes through a jq
//! filter; another learner and an anonymous caller see none of it.

#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/labs.rs"]
mod labs;
#[path = "common/sandbox.rs"]
mod support;

use std::time::{Duration, Instant};

use serde_json::Value;

/// The kept log lines of the lab's learner after `since`.
async fn log_lines(http: &reqwest::Client, lab: &labs::Lab, since: u64) -> Vec<Value> {
    let res = http
        .get(lab.url(&format!("/api/sandbox/log?since={since}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        res.headers()["content-type"].to_str().unwrap(),
        "application/x-ndjson"
    );
    res.text()
        .await
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn joined(lines: &[Value]) -> String {
    lines
        .iter()
        .map(|l| l["text"].as_str().unwrap())
        .collect::<Vec<_>>()
        .join("\n")
}

async fn deadlock_is_read_off_the_log(backend: &'static str) {
    let Some(lab) = labs::start(backend, "ada", &[]).await else {
        return;
    };
    lab.sql(
        "T1",
        "create table acc (id int primary key, v int); insert into acc values (1, 0), (2, 0);",
    )
    .await;
    lab.sql("T1", "begin; update acc set v = 1 where id = 1;")
        .await;
    lab.sql("T2", "begin; update acc set v = 2 where id = 2;")
        .await;
    let (t1, t2) = tokio::join!(
        lab.try_sql("T1", "update acc set v = 1 where id = 2;"),
        async {
            tokio::time::sleep(Duration::from_millis(1500)).await;
            lab.try_sql("T2", "update acc set v = 2 where id = 1;")
                .await
        }
    );
    let failed = [&t1, &t2].iter().filter(|r| r.is_err()).count();
    assert_eq!(
        failed, 1,
        "exactly one transaction is killed: {t1:?} {t2:?}"
    );
    let killed_pid_hint = if t1.is_err() { "T1" } else { "T2" };
    let _ = lab.try_sql("T1", "rollback;").await;
    let _ = lab.try_sql("T2", "rollback;").await;

    let mut text = String::new();
    let mut found = false;
    for _ in 0..40 {
        text = joined(&log_lines(&lab.http, &lab, 0).await);
        if text.contains("deadlock detected") {
            found = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    assert!(found, "{backend}: no deadlock in the log:\n{text}");
    let lines = log_lines(&lab.http, &lab, 0).await;
    // The ERROR and its DETAIL with both processes' statements.
    let error = lines
        .iter()
        .position(|l| {
            l["text"]
                .as_str()
                .unwrap()
                .contains("ERROR:  deadlock detected")
        })
        .unwrap();
    assert_eq!(lines[error]["level"], "error");
    let after = joined(&lines[error..]);
    assert!(
        after.contains("update acc set v = 1 where id = 2"),
        "{after}"
    );
    assert!(
        after.contains("update acc set v = 2 where id = 1"),
        "{after}"
    );
    assert!(after.contains("DETAIL:  Process "), "{after}");
    assert!(
        lines[error + 1]["level"] == "error",
        "the DETAIL carries the error's level: {}",
        lines[error + 1]
    );
    // log_lock_waits: the first waiter was logged after deadlock_timeout.
    assert!(text.contains("still waiting for ShareLock"), "{text}");
    eprintln!("{backend}: killed {killed_pid_hint}; log:\n{after}");
    // Sequence numbers rise; since= gives only newer lines.
    let seqs: Vec<u64> = lines.iter().map(|l| l["seq"].as_u64().unwrap()).collect();
    assert!(seqs.windows(2).all(|w| w[1] == w[0] + 1), "{seqs:?}");
    let last = *seqs.last().unwrap();
    assert!(log_lines(&lab.http, &lab, last).await.is_empty());
    assert_eq!(log_lines(&lab.http, &lab, last - 2).await.len(), 2);

    // A new line reaches the live stream.
    let res = lab
        .http
        .get(lab.url(&format!("/api/sandbox/log/events?since={last}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let mut events = res;
    let began = Instant::now();
    lab.sql("T1", "do $$ begin raise log 'marker-of-ada'; end $$;")
        .await;
    let mut seen = String::new();
    let arrived = tokio::time::timeout(Duration::from_secs(10), async {
        while let Ok(Some(chunk)) = events.chunk().await {
            seen.push_str(&String::from_utf8_lossy(&chunk));
            if seen.contains("marker-of-ada") {
                return true;
            }
        }
        false
    })
    .await
    .unwrap_or(false);
    assert!(
        arrived,
        "{backend}: the marker never reached the stream: {seen}"
    );
    assert!(seen.contains("event: line"), "{seen}");
    eprintln!(
        "{backend}: marker on the stream after {:?}",
        began.elapsed()
    );

    // Inspect: the data directory's mount, and a jq filter on it.
    let inspect: Value = lab.ok("GET", "/api/sandbox/inspect").await;
    let one = &inspect.as_array().expect("an array like docker inspect")[0];
    let mounts = one["Mounts"].as_array().unwrap();
    let data = mounts
        .iter()
        .find(|m| {
            m["Destination"]
                .as_str()
                .unwrap()
                .ends_with(if backend == "docker" {
                    "/var/lib/postgresql/data"
                } else {
                    "/data"
                })
        })
        .unwrap_or_else(|| panic!("no data mount: {mounts:?}"));
    assert_eq!(one["State"]["Running"], true);
    if backend == "docker" {
        assert_eq!(data["Type"], "volume");
        assert!(one["HostConfig"]["Memory"].as_i64().unwrap() > 0);
        assert!(one["HostConfig"]["PidsLimit"].as_i64().unwrap() > 0);
        let env = one["Config"]["Env"].to_string();
        assert!(env.contains("POSTGRES_PASSWORD=<redacted>"), "{env}");
        assert!(one["State"]["Health"]["Status"].is_string());
    }
    let jq = lab
        .ok(
            "GET",
            "/api/sandbox/inspect?jq=.%5B0%5D.Mounts%20%7C%20map(.Destination)",
        )
        .await;
    let destinations = jq["outputs"][0].as_array().unwrap();
    assert_eq!(destinations.len(), mounts.len(), "{jq}");
    // The engine lists mounts in no fixed order: compare as sets.
    for m in mounts.iter() {
        assert!(destinations.contains(&m["Destination"]), "{jq}");
    }
    let post = lab
        .http
        .post(lab.url("/api/sandbox/inspect/jq"))
        .json(&serde_json::json!({"filter": ".[0].State.Running"}))
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 200);
    let post: Value = post.json().await.unwrap();
    assert_eq!(post["outputs"], serde_json::json!([true]));
    for (filter, why) in [
        (".[0].Mounts[", &["does not parse"][..]),
        ("nosuchfunction", &["nosuchfunction"]),
        // Endless or huge: cut by the output cap, the deadline or the
        // memory limit of the child process.
        ("repeat(.)", &["passed", "stopped"]),
        ("[range(1e12)] | length", &["passed", "stopped", "memory"]),
        ("def f: f; f", &["passed", "stopped"]),
    ] {
        let began = Instant::now();
        let res = lab
            .http
            .post(lab.url("/api/sandbox/inspect/jq"))
            .json(&serde_json::json!({ "filter": filter }))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 400, "{filter}");
        let body: Value = res.json().await.unwrap();
        let msg = body["error"].as_str().unwrap();
        assert!(why.iter().any(|w| msg.contains(w)), "{filter}: {msg}");
        assert!(
            began.elapsed() < Duration::from_secs(5),
            "{filter} took {:?}",
            began.elapsed()
        );
    }

    // Another learner: their own log and container only.
    let bob = common::signed_in_learner(lab.server(), "bob").await;
    let bobs = log_lines(&bob, &lab, 0).await;
    let bob_text = joined(&bobs);
    assert!(!bob_text.contains("marker-of-ada"), "{bob_text}");
    assert!(!bob_text.contains("deadlock"), "{bob_text}");
    let res = bob
        .get(lab.url("/api/sandbox/inspect"))
        .send()
        .await
        .unwrap();
    // Bob has no sandbox yet: a clear refusal, not ada's container.
    assert_eq!(res.status(), 409, "{}", res.text().await.unwrap());
    let started = bob
        .post(lab.url("/api/sandbox/start"))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 200);
    let bob_inspect: Value = bob
        .get(lab.url("/api/sandbox/inspect"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_ne!(bob_inspect[0]["Name"], one["Name"]);
    // Anonymous: nothing.
    let anon = common::client();
    for path in [
        "/api/sandbox/log",
        "/api/sandbox/log/events",
        "/api/sandbox/inspect",
        "/api/sandbox/inspect?jq=.",
    ] {
        let res = anon.get(lab.url(path)).send().await.unwrap();
        assert_eq!(res.status(), 401, "{path}");
    }
    let res = anon
        .post(lab.url("/api/sandbox/inspect/jq"))
        .json(&serde_json::json!({"filter": "."}))
        .send()
        .await
        .unwrap();
    assert!(
        res.status() == 401 || res.status() == 403,
        "{}",
        res.status()
    );
}

#[tokio::test]
async fn local_deadlock_log_inspect_and_isolation() {
    deadlock_is_read_off_the_log("local").await;
}

#[tokio::test]
async fn docker_deadlock_log_inspect_and_isolation() {
    let _one = labs::DOCKER.lock().await;
    deadlock_is_read_off_the_log("docker").await;
}
