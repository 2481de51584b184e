//! The learner's own compose file against real servers: refused files
//! change nothing; up re-creates the container with exactly the file's
//! settings (no volume: the data dies with it; a named volume: it
//! survives); down with volumes removes the volume; reset to pglab's
//! settings brings pglab's own volume back; another learner never reads or
//! changes ada's file or container; the local backend says it cannot.

#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/labs.rs"]
mod labs;
#[path = "common/sandbox.rs"]
mod support;

use serde_json::{Value, json};

const NO_VOLUME: &str = "services:
  postgres:
    image: postgres:15
    environment:
      POSTGRES_USER: labuser
      POSTGRES_PASSWORD: example
      POSTGRES_DB: labdb
    healthcheck:
      test: [\"CMD-SHELL\", \"pg_isready -U labuser -d labdb\"]
      interval: 30s
      timeout: 5s
      retries: 5
    mem_limit: 200m
    cpus: 0.4
    command: postgres -c work_mem=8MB
";

fn with_volume() -> String {
    NO_VOLUME.replace(
        "    mem_limit",
        "    volumes:\n      - pgdata:/var/lib/postgresql/data\n    mem_limit",
    ) + "volumes:\n  pgdata:\n"
}

async fn put(http: &reqwest::Client, lab: &labs::Lab, yaml: &str) -> (u16, Value) {
    let res = http
        .put(lab.url("/api/sandbox/compose"))
        .json(&json!({ "yaml": yaml }))
        .send()
        .await;
    // A body far over the limit is refused before it is read: the server
    // may answer 413 and close while the client still writes.
    let res = match res {
        Ok(res) => res,
        Err(e) if yaml.len() > 1 << 20 => return (413, json!({"error": e.to_string()})),
        Err(e) => panic!("{e}"),
    };
    let status = res.status().as_u16();
    (status, res.json().await.unwrap_or(Value::Null))
}

/// `POST path`, the whole streamed answer.
async fn streamed(http: &reqwest::Client, lab: &labs::Lab, path: &str) -> String {
    let res = http.post(lab.url(path)).send().await.unwrap();
    let status = res.status();
    let text = res.text().await.unwrap();
    assert_eq!(status, 200, "{path}: {text}");
    text
}

async fn up(lab: &labs::Lab) -> String {
    let text = streamed(&lab.http, lab, "/api/sandbox/compose/up").await;
    assert!(text.contains("✔"), "up failed:\n{text}");
    text
}

async fn inspect(http: &reqwest::Client, lab: &labs::Lab) -> Value {
    let v: Value = http
        .get(lab.url("/api/sandbox/inspect"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v[0].clone()
}

fn data_mount(info: &Value) -> Option<Value> {
    info["Mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["Destination"] == "/var/lib/postgresql/data")
        .cloned()
}

#[tokio::test]
async fn docker_compose_up_volumes_limits_and_isolation() {
    let _one = labs::DOCKER.lock().await;
    let Some(lab) = labs::start("docker", "ada", &[]).await else {
        return;
    };
    lab.sql(
        "T1",
        "create table on_pglab_volume (x int); insert into on_pglab_volume values (7);",
    )
    .await;
    let before = inspect(&lab.http, &lab).await;

    // Refused files: each with its reason, and nothing changes.
    let base = "services:\n  postgres:\n    image: postgres:15\n";
    let bomb = {
        let mut s = String::from("a: &a [x,x,x,x,x,x,x,x,x]\n");
        let mut prev = 'a';
        for c in 'b'..='i' {
            s.push_str(&format!("{c}: &{c} [*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev},*{prev}]\n"));
            prev = c;
        }
        s + base
    };
    let cases: Vec<(String, &str)> = vec![
        (format!("{base}#{}\n", "x".repeat(10 << 20)), ""),
        (bomb, ""),
        (format!("{base}    bogus: 1\n"), "bogus"),
        (
            format!("{base}  web:\n    image: nginx\n"),
            "second service",
        ),
        (
            format!("{base}    volumes:\n      - /:/var/lib/postgresql/data\n"),
            "bind mount of `/`",
        ),
        (format!("{base}    privileged: true\n"), "privileged"),
        (
            format!("{base}    mem_limit: 8g\n"),
            "above the instructor's cap",
        ),
        (
            "services:\n  postgres:\n    image: nginx:1\n".to_string(),
            "allow-list",
        ),
    ];
    for (yaml, why) in &cases {
        let (status, body) = put(&lab.http, &lab, yaml).await;
        assert!(status == 400 || status == 413, "{status} {body}");
        let msg = body["error"].as_str().unwrap_or_default();
        assert!(!msg.is_empty() && msg.contains(why), "{why}: {msg}");
    }
    let got = lab.ok("GET", "/api/sandbox/compose").await;
    assert_eq!(got["saved"], false, "{got}");
    assert_eq!(got["in_force"], "pglab");
    assert_eq!(
        inspect(&lab.http, &lab).await["Id"],
        before["Id"],
        "nothing re-created"
    );

    // No volume: the row dies with the re-created container.
    let (status, body) = put(&lab.http, &lab, NO_VOLUME).await;
    assert_eq!(status, 200, "{body}");
    let text = up(&lab).await;
    assert!(
        text.contains("POSTGRES_PASSWORD"),
        "the password note: {text}"
    );
    let info = inspect(&lab.http, &lab).await;
    assert_ne!(info["Id"], before["Id"]);
    assert_eq!(info["HostConfig"]["Memory"], 200 * 1024 * 1024);
    assert_eq!(info["HostConfig"]["NanoCpus"], 400_000_000);
    assert_eq!(
        info["Config"]["Healthcheck"]["Test"],
        json!(["CMD-SHELL", "pg_isready -U labuser -d labdb"])
    );
    assert_eq!(
        info["Config"]["Healthcheck"]["Interval"],
        30_000_000_000_i64
    );
    let mount = data_mount(&info).unwrap();
    assert!(
        !mount["Name"].as_str().unwrap().starts_with("pglab-"),
        "no named volume: {mount}"
    );
    assert_eq!(lab.scalar("show work_mem").await, "8MB");
    lab.sql("T1", "create table t (x int); insert into t values (1);")
        .await;
    up(&lab).await;
    let gone = lab.try_sql("T1", "select count(*) from t").await;
    let gone = match gone {
        Err(e) if e.to_string().contains("connection was lost") => {
            lab.try_sql("T1", "select count(*) from t").await
        }
        other => other,
    };
    assert!(gone.unwrap_err().to_string().contains("does not exist"));

    // A named volume: the row survives the re-creation.
    let (status, body) = put(&lab.http, &lab, &with_volume()).await;
    assert_eq!(status, 200, "{body}");
    up(&lab).await;
    let info = inspect(&lab.http, &lab).await;
    let mount = data_mount(&info).unwrap();
    let volume = mount["Name"].as_str().unwrap().to_string();
    assert!(
        volume.starts_with("pglab-") && volume.ends_with("-c-pgdata"),
        "{mount}"
    );
    lab.sql("T1", "create table t (x int); insert into t values (1);")
        .await;
    up(&lab).await;
    assert_eq!(lab.scalar("select count(*) from t").await, "1");
    let info = inspect(&lab.http, &lab).await;
    let got = lab.ok("GET", "/api/sandbox/compose").await;
    assert_eq!(got["in_force"], "compose");
    assert_eq!(got["applied"]["volume"], "pgdata");

    // Another learner: their own file and container; ada's stay as they are.
    let bob = common::signed_in_learner(lab.server(), "bob").await;
    let bobs: Value = bob
        .get(lab.url("/api/sandbox/compose"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(bobs["saved"], false, "bob sees no file of ada's: {bobs}");
    assert!(!bobs["yaml"].as_str().unwrap().contains("work_mem"));
    let (status, _) = put(&bob, &lab, NO_VOLUME).await;
    assert_eq!(status, 200);
    let text = streamed(&bob, &lab, "/api/sandbox/compose/up").await;
    assert!(text.contains("✔"), "{text}");
    assert_ne!(inspect(&bob, &lab).await["Name"], info["Name"]);
    let res = bob
        .post(lab.url("/api/sandbox/compose/down"))
        .json(&json!({"volumes": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(
        inspect(&lab.http, &lab).await["Id"],
        info["Id"],
        "ada's container stays"
    );
    let ada = lab.ok("GET", "/api/sandbox/compose").await;
    assert!(
        ada["yaml"].as_str().unwrap().contains("pgdata"),
        "ada's file unchanged"
    );
    let anon = common::client();
    let res = anon
        .get(lab.url("/api/sandbox/compose"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    for path in [
        "/api/sandbox/compose/up",
        "/api/sandbox/compose/down",
        "/api/sandbox/compose/reset",
    ] {
        let res = anon.post(lab.url(path)).send().await.unwrap();
        assert!(res.status() == 401 || res.status() == 403, "{path}");
    }

    // Down with volumes removes the learner's named volume.
    let res = lab
        .http
        .post(lab.url("/api/sandbox/compose/down"))
        .json(&json!({"volumes": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let out = std::process::Command::new("docker")
        .args(["volume", "ls", "-q"])
        .output()
        .unwrap();
    assert!(!String::from_utf8_lossy(&out.stdout).contains(&volume));

    // Reset to pglab's settings: pglab's own volume, with its data, again.
    let text = streamed(&lab.http, &lab, "/api/sandbox/compose/reset").await;
    assert!(text.contains("✔"), "{text}");
    assert_eq!(lab.scalar("select x from on_pglab_volume").await, "7");
    let info = inspect(&lab.http, &lab).await;
    assert_eq!(info["HostConfig"]["Memory"], before["HostConfig"]["Memory"]);
    let got = lab.ok("GET", "/api/sandbox/compose").await;
    assert_eq!(got["saved"], false);
    assert_eq!(got["in_force"], "pglab");
}

#[tokio::test]
async fn local_compose_validates_but_runs_no_containers() {
    let Some(lab) = labs::start("local", "ada", &[]).await else {
        return;
    };
    let (status, body) = put(&lab.http, &lab, NO_VOLUME).await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = put(
        &lab.http,
        &lab,
        "services:\n  postgres:\n    image: postgres:15\n    privileged: true\n",
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["line"], 4, "{body}");
    let res = lab
        .http
        .post(lab.url("/api/sandbox/compose/up"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 503);
    let body: Value = res.json().await.unwrap();
    assert!(
        body["error"].as_str().unwrap().contains("--sandbox docker"),
        "{body}"
    );
    // The sandbox itself is untouched.
    assert_eq!(lab.scalar("select 1").await, "1");
}
