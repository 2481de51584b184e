//! A learner fills their sandbox's disk (the Docker backend, the real
//! engine): the learner's volume is given a small filesystem of its own (a
//! loop-mounted ext4 image over the volume's folder, as a per-sandbox quota
//! would be), then the learner writes until PostgreSQL runs out of space.
//! They get PostgreSQL's own error through `POST /api/sql` (not a 500, not a
//! hang), their committed rows stay, and once they drop what they wrote the
//! sandbox works again, also after a restart.
//!
//! Needs root (mount); CI runs as root.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

use common::TestServer;
use common::console::{first_error, run_t1};
use common::docker::DockerCleanup;
use serde_json::{Value, json};

fn run(cmd: &str, args: &[&str]) -> String {
    let out = Command::new(cmd).args(args).output().unwrap();
    assert!(
        out.status.success(),
        "{cmd} {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

/// A small ext4 filesystem mounted over a folder; unmounted on drop.
struct SmallDisk {
    target: PathBuf,
    _image_dir: tempfile::TempDir,
}

impl SmallDisk {
    /// Moves the contents of `target` onto a new `mib` MiB filesystem and
    /// mounts that over `target` (same owner and mode).
    fn mount_over(target: &Path, mib: u64) -> Self {
        let image_dir = tempfile::tempdir().unwrap();
        let image = image_dir.path().join("disk.img");
        let staging = image_dir.path().join("staging");
        std::fs::create_dir(&staging).unwrap();
        run(
            "truncate",
            &["-s", &format!("{mib}M"), image.to_str().unwrap()],
        );
        run("mkfs.ext4", &["-q", "-m", "0", image.to_str().unwrap()]);
        let (image, staging, target_s) = (
            image.to_str().unwrap(),
            staging.to_str().unwrap(),
            target.to_str().unwrap(),
        );
        run("mount", &["-o", "loop", image, staging]);
        run("rm", &["-rf", &format!("{staging}/lost+found")]);
        run("cp", &["-a", &format!("{target_s}/."), staging]);
        run("chown", &[&format!("--reference={target_s}"), staging]);
        run("chmod", &[&format!("--reference={target_s}"), staging]);
        run("umount", &[staging]);
        run("mount", &["-o", "loop", image, target_s]);
        Self {
            target: target.to_path_buf(),
            _image_dir: image_dir,
        }
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        // Lazy: the container may still hold it; the loop device goes with it.
        let _ = Command::new("umount").arg("-l").arg(&self.target).status();
    }
}

async fn post(http: &reqwest::Client, server: &TestServer, path: &str) -> Value {
    let res = http.post(server.url(path)).send().await.unwrap();
    assert_eq!(res.status(), 200, "{path}");
    res.json().await.unwrap()
}

#[tokio::test]
async fn a_full_sandbox_disk_is_a_clear_sql_error_and_loses_nothing() {
    if !common::require_docker() {
        return;
    }
    if run("id", &["-u"]) != "0" {
        eprintln!("SKIPPED: mounting a small filesystem needs root");
        return;
    }
    let server = TestServer::start_with(common::docker::server_options(
        &common::docker::image(),
        &[],
    ));
    // Dropped last: removes the container and the volume once the small
    // disk below is unmounted.
    let _cleanup = DockerCleanup::for_data_dir(&server.data_dir).await;
    let http = common::signed_in_learner(&server, "fill-fay").await;
    post(&http, &server, "/api/sandbox/start").await;
    let made = run_t1(
        &http,
        &server,
        "create table kept (x int); insert into kept select generate_series(1, 1000)",
    )
    .await;
    assert_eq!(first_error(&made), None, "{made}");

    // The learner's volume gets a 160 MiB disk of its own.
    post(&http, &server, "/api/sandbox/stop").await;
    let store = pglab::store::Store::open(&server.data_dir.join("pglab.db"))
        .await
        .unwrap();
    let (volume,): (String,) = sqlx::query_as("select volume from sandboxes")
        .fetch_one(store.pool())
        .await
        .unwrap();
    let mountpoint = run(
        "docker",
        &["volume", "inspect", "-f", "{{.Mountpoint}}", &volume],
    );
    let _disk = SmallDisk::mount_over(Path::new(&mountpoint), 160);
    let started = post(&http, &server, "/api/sandbox/start").await;
    assert_eq!(started["state"], "running", "{started}");

    // Fill it (an unlogged table: the data files fill the disk, not the WAL).
    let full = run_t1(
        &http,
        &server,
        "create unlogged table filler (pad text);\n\
         insert into filler select repeat(md5(g::text), 30) from generate_series(1, 3000000) g",
    )
    .await;
    let error = first_error(&full).unwrap_or_default();
    assert!(
        error.contains("No space left on device"),
        "PostgreSQL's own error reaches the learner: {full}"
    );
    let status: Value = http
        .get(server.url("/api/sandbox"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(status["state"], "running", "{status}");
    let kept = run_t1(&http, &server, "select count(*) from kept").await;
    assert_eq!(kept["statements"][0]["rows"], json!([["1000"]]), "{kept}");

    // Freeing the space is the way out; the data survives a restart too.
    let freed = run_t1(
        &http,
        &server,
        "drop table filler; create table after_full as select 1 as x",
    )
    .await;
    assert_eq!(first_error(&freed), None, "{freed}");
    post(&http, &server, "/api/sandbox/restart").await;
    let after = run_t1(
        &http,
        &server,
        "select (select count(*) from kept) || '/' || (select count(*) from after_full)",
    )
    .await;
    assert_eq!(
        after["statements"][0]["rows"],
        json!([["1000/1"]]),
        "{after}"
    );
}
