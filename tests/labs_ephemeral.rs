//! The 14.D.4 volume demo against real servers on both backends: a row
//! written into the sandbox (on its volume) and into the throw-away server
//! (no volume); after "re-create both" the sandbox still has it and the
//! throw-away server starts empty. The throw-away server is listed by
//! `pglab sandbox list`, removed on request, after its idle time, and with
//! the learner's sandbox (`pglab sandbox rm`).

#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/labs.rs"]
mod labs;
#[path = "common/sandbox.rs"]
mod support;

use std::time::Duration;

async fn volume_keeps_data_and_the_throwaway_loses_it(backend: &'static str) {
    let name = format!("vol{backend}");
    let Some(mut lab) = labs::start(backend, &name, &["--lab-ephemeral-idle-secs", "8"]).await
    else {
        return;
    };
    let none = lab.ok("GET", "/api/labs/volume-demo").await;
    assert!(none["ephemeral"].is_null(), "{none}");
    assert!(none["sandbox"]["rows"].is_null(), "no table yet: {none}");

    let one = lab.ok("POST", "/api/labs/volume-demo/write").await;
    assert_eq!(one["sandbox"]["rows"], 1, "{one}");
    assert_eq!(one["ephemeral"]["rows"], 1, "{one}");
    let two = lab.ok("POST", "/api/labs/volume-demo/write").await;
    assert_eq!(two["sandbox"]["rows"], 2, "{two}");
    assert_eq!(two["ephemeral"]["rows"], 2, "{two}");
    // Two different servers, not one answering twice.
    let learner_row = lab.scalar("select count(*)::text from restart_proof").await;
    assert_eq!(learner_row, "2");

    if backend == "docker" {
        let eph = labs::containers(&lab, "pglab.ephemeral");
        assert_eq!(eph.len(), 1, "{eph:?}");
        assert!(eph[0].ends_with("-ephemeral"), "{eph:?}");
        // No named volume at PGDATA: only the image's anonymous one.
        let out = std::process::Command::new("docker")
            .args([
                "inspect",
                "-f",
                "{{range .Mounts}}{{.Type}}:{{.Name}}:{{.Destination}} {{end}}",
                &eph[0],
            ])
            .output()
            .unwrap();
        let mounts = String::from_utf8_lossy(&out.stdout).to_string();
        assert!(
            mounts.contains("volume:") && mounts.contains(":/var/lib/postgresql/data"),
            "{mounts}"
        );
        assert!(
            !mounts.contains("volume:pglab-"),
            "a named volume: {mounts}"
        );
        // Same limits as the sandbox.
        let out = std::process::Command::new("docker")
            .args([
                "inspect",
                "-f",
                "{{.HostConfig.Memory}} {{.HostConfig.NetworkMode}} {{.HostConfig.PidsLimit}}",
                &eph[0],
            ])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout).trim(),
            "268435456 none 256"
        );
    }
    let listed = lab.cli(&["sandbox", "list"], &[]);
    assert!(listed.contains("ephemeral"), "{listed}");

    let before = two["sandbox"]["server_started"]
        .as_str()
        .unwrap()
        .to_string();
    let again = lab.ok("POST", "/api/labs/volume-demo/recreate").await;
    assert_eq!(
        again["sandbox"]["rows"], 2,
        "the volume kept the rows: {again}"
    );
    assert!(
        again["ephemeral"]["rows"].is_null(),
        "the throw-away server came back empty: {again}"
    );
    assert!(again["ephemeral"]["error"].is_null(), "{again}");
    assert_ne!(
        again["sandbox"]["server_started"].as_str().unwrap(),
        before,
        "{again}"
    );
    let kept = lab.scalar("select count(*)::text from restart_proof").await;
    assert_eq!(kept, "2");

    // Removed on request.
    lab.ok("POST", "/api/labs/volume-demo/write").await;
    lab.ok("POST", "/api/labs/volume-demo/remove").await;
    assert!(lab.ok("GET", "/api/labs/volume-demo").await["ephemeral"].is_null());
    if backend == "docker" {
        assert!(labs::containers(&lab, "pglab.ephemeral").is_empty());
    } else {
        let dirs: Vec<_> = std::fs::read_dir(lab.server().data_dir.join("local"))
            .unwrap()
            .flatten()
            .filter(|e| e.file_name().to_string_lossy().starts_with("ephemeral-"))
            .collect();
        assert!(dirs.is_empty());
    }

    // Removed after its idle time (8 s here).
    lab.ok("POST", "/api/labs/volume-demo/write").await;
    let idle_gone = labs::eventually(Duration::from_secs(30), || async {
        lab.cli(&["sandbox", "list"], &[])
            .lines()
            .all(|l| !l.contains("ephemeral"))
    })
    .await;
    assert!(idle_gone, "the idle throw-away server was not removed");

    // Removed when pglab starts again (nobody knows its password any more).
    lab.ok("POST", "/api/labs/volume-demo/write").await;
    lab.restart_server();
    let swept = labs::eventually(Duration::from_secs(30), || async {
        lab.cli(&["sandbox", "list"], &[])
            .lines()
            .all(|l| !l.contains("ephemeral"))
    })
    .await;
    assert!(swept, "a throw-away server outlived pglab's restart");

    // Removed with the learner's sandbox.
    lab.ok("POST", "/api/labs/volume-demo/write").await;
    assert!(lab.cli(&["sandbox", "list"], &[]).contains("ephemeral"));
    let me = lab.ok("GET", "/api/me").await;
    let id = me["id"].as_i64().map(|i| i.to_string()).unwrap_or_default();
    assert!(!id.is_empty(), "{me}");
    lab.cli(&["sandbox", "rm", &id], &[]);
    let listed = lab.cli(&["sandbox", "list"], &[]);
    assert!(!listed.contains("ephemeral"), "{listed}");
    if backend == "docker" {
        // Its socket dir went too, though the CLI never knew its key.
        let left: Vec<_> = std::fs::read_dir(lab.server().data_dir.join("sockets"))
            .unwrap()
            .flatten()
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.starts_with('e') && n.len() == 11)
            .collect();
        assert!(left.is_empty(), "{left:?}");
    }
}

#[tokio::test]
async fn volume_demo_on_the_docker_backend() {
    let _one = labs::DOCKER.lock().await;
    volume_keeps_data_and_the_throwaway_loses_it("docker").await;
}

#[tokio::test]
async fn volume_demo_on_the_local_backend() {
    volume_keeps_data_and_the_throwaway_loses_it("local").await;
}
