//! `pglab backup` / `pglab restore` and the data dir lock, against the real
//! binary: backup while a server runs and writes, restore into a stopped data
//! dir then start on it, restore refused while a server runs, damaged files
//! refused, a second server on one data dir refused.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Output;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use common::{ServerOptions, TestServer, client, pglab, repo_content_dir};
use sqlx::SqlitePool;

async fn pool(file: &Path) -> SqlitePool {
    SqlitePool::connect(&format!("sqlite://{}", file.display()))
        .await
        .unwrap()
}

async fn users(file: &Path) -> Vec<String> {
    let pool = pool(file).await;
    let names = sqlx::query_scalar("select username from users order by id")
        .fetch_all(&pool)
        .await
        .unwrap();
    pool.close().await;
    names
}

fn run(args: &[&str], data_dir: &Path) -> Output {
    pglab()
        .args(args)
        .arg("--data-dir")
        .arg(data_dir)
        .env("RUST_LOG", "off")
        .output()
        .unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

fn assert_refused(out: &Output, needle: &str) {
    let err = stderr(out);
    assert_eq!(out.status.code(), Some(2), "exit 2; stderr: {err}");
    let lines: Vec<&str> = err.lines().filter(|l| !l.trim().is_empty()).collect();
    assert_eq!(lines.len(), 1, "one line: {err}");
    assert!(lines[0].starts_with("pglab: "), "{err}");
    assert!(lines[0].contains(needle), "{needle:?} in {err}");
}

#[tokio::test]
async fn backup_is_consistent_while_the_server_runs_and_writes() {
    let server = TestServer::start();
    let store = server.data_dir.join("pglab.db");
    let writer_pool = pool(&store).await;
    let stop = Arc::new(AtomicBool::new(false));
    let writer = {
        let stop = stop.clone();
        let pool = writer_pool.clone();
        tokio::spawn(async move {
            let mut n = 0u32;
            while !stop.load(Ordering::Relaxed) {
                // Two rows per transaction: a consistent copy has an even count.
                let mut tx = pool.begin().await.unwrap();
                for side in ["a", "b"] {
                    sqlx::query("insert into users (username) values (?)")
                        .bind(format!("writer-{n}-{side}"))
                        .execute(&mut *tx)
                        .await
                        .unwrap();
                }
                tx.commit().await.unwrap();
                n += 1;
            }
            n
        })
    };
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    let out_dir = tempfile::tempdir().unwrap();
    let file = out_dir.path().join("pglab-backup.db");
    let file_arg = file.to_str().unwrap();
    let data_dir = server.data_dir.clone();
    let first = tokio::task::spawn_blocking({
        let (f, d) = (file_arg.to_string(), data_dir.clone());
        move || run(&["backup", &f], &d)
    })
    .await
    .unwrap();
    assert!(first.status.success(), "backup: {}", stderr(&first));
    let said = String::from_utf8_lossy(&first.stdout);
    assert!(said.contains("backed up"), "{said}");

    let again = run(&["backup", file_arg], &data_dir);
    assert_refused(&again, "--force");

    let forced = tokio::task::spawn_blocking({
        let (f, d) = (file_arg.to_string(), data_dir.clone());
        move || run(&["backup", &f, "--force"], &d)
    })
    .await
    .unwrap();
    assert!(
        forced.status.success(),
        "backup --force: {}",
        stderr(&forced)
    );

    stop.store(true, Ordering::Relaxed);
    let transactions = writer.await.unwrap();
    assert!(transactions > 0);

    let copied: Vec<String> = users(&file).await;
    let writers = copied.iter().filter(|u| u.starts_with("writer-")).count();
    assert!(writers > 0, "the copy holds rows written before it");
    assert_eq!(writers % 2, 0, "no half transaction in the copy");
    assert!(writers <= 2 * transactions as usize);
    let check = pool(&file).await;
    let integrity: String = sqlx::query_scalar("pragma integrity_check")
        .fetch_one(&check)
        .await
        .unwrap();
    assert_eq!(integrity, "ok");
    check.close().await;
    writer_pool.close().await;
    let leftovers: Vec<_> = std::fs::read_dir(out_dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "no temporary file left: {leftovers:?}");
}

#[tokio::test]
async fn restore_into_a_stopped_data_dir_then_serve_it() {
    // A store with a known user, backed up.
    let source = TestServer::start();
    let source_store = source.data_dir.join("pglab.db");
    let p = pool(&source_store).await;
    sqlx::query("insert into users (username, role) values ('restored-teacher', 'instructor')")
        .execute(&p)
        .await
        .unwrap();
    p.close().await;
    let backups = tempfile::tempdir().unwrap();
    let file = backups.path().join("store.bak");
    let out = run(&["backup", file.to_str().unwrap()], &source.data_dir);
    assert!(out.status.success(), "{}", stderr(&out));
    drop(source);

    // An older store exists in the target: it is replaced, and kept aside.
    let target = TestServer::start();
    let target_dir = target.data_dir.clone();
    let (clean, temp, _) = target.stop_keep_data();
    assert!(clean);
    let restored = run(&["restore", file.to_str().unwrap()], &target_dir);
    assert!(restored.status.success(), "restore: {}", stderr(&restored));
    let said = String::from_utf8_lossy(&restored.stdout);
    assert!(said.contains("kept as"), "{said}");
    let kept: Vec<_> = std::fs::read_dir(&target_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with("pglab.db.before-restore-"))
        .collect();
    assert_eq!(kept.len(), 1, "{kept:?}");

    let again = TestServer::start_with(ServerOptions {
        data_dir: Some(target_dir.clone()),
        ..Default::default()
    });
    let health = client().get(again.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
    let names = users(&target_dir.join("pglab.db")).await;
    assert!(names.contains(&"restored-teacher".to_string()), "{names:?}");
    drop(again);

    // A fresh, empty data dir works too.
    let fresh = backups.path().join("fresh-data");
    let restored = run(&["restore", file.to_str().unwrap()], &fresh);
    assert!(restored.status.success(), "{}", stderr(&restored));
    assert!(
        users(&fresh.join("pglab.db"))
            .await
            .contains(&"restored-teacher".to_string())
    );
    drop(temp);
}

#[tokio::test]
async fn restore_is_refused_while_a_server_runs() {
    let server = TestServer::start();
    let backups = tempfile::tempdir().unwrap();
    let file = backups.path().join("store.bak");
    let out = run(&["backup", file.to_str().unwrap()], &server.data_dir);
    assert!(out.status.success(), "{}", stderr(&out));
    let p = pool(&server.data_dir.join("pglab.db")).await;
    sqlx::query("insert into users (username) values ('after-backup')")
        .execute(&p)
        .await
        .unwrap();
    p.close().await;

    let refused = run(&["restore", file.to_str().unwrap()], &server.data_dir);
    assert_refused(&refused, "server is running");
    assert!(
        users(&server.data_dir.join("pglab.db"))
            .await
            .contains(&"after-backup".to_string()),
        "the live store is untouched"
    );
    let health = client().get(server.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
}

#[tokio::test]
async fn damaged_or_foreign_files_are_refused() {
    let server = TestServer::start();
    let dir = tempfile::tempdir().unwrap();
    let good = dir.path().join("good.bak");
    let out = run(&["backup", good.to_str().unwrap()], &server.data_dir);
    assert!(out.status.success(), "{}", stderr(&out));
    drop(server);
    let target = dir.path().join("target-data");

    let text = dir.path().join("notes.txt");
    std::fs::write(&text, "this is not a database at all, just some text").unwrap();
    assert_refused(
        &run(&["restore", text.to_str().unwrap()], &target),
        "not a pglab store",
    );

    let foreign = dir.path().join("foreign.db");
    let p = SqlitePool::connect(&format!("sqlite://{}?mode=rwc", foreign.display()))
        .await
        .unwrap();
    sqlx::query("create table t (x)").execute(&p).await.unwrap();
    p.close().await;
    assert_refused(
        &run(&["restore", foreign.to_str().unwrap()], &target),
        "no _sqlx_migrations table",
    );

    // Overwrite the middle of the file: pages become garbage.
    let mut bytes = std::fs::read(&good).unwrap();
    assert!(bytes.len() > 8192, "the store has several pages");
    let len = bytes.len();
    for b in &mut bytes[4096..len] {
        *b = 0xA5;
    }
    let damaged = dir.path().join("damaged.bak");
    std::fs::write(&damaged, &bytes).unwrap();
    assert_refused(
        &run(&["restore", damaged.to_str().unwrap()], &target),
        "not a pglab store",
    );
    assert!(
        !target.join("pglab.db").exists(),
        "nothing was restored from a refused file"
    );

    let missing = run(
        &["backup", dir.path().join("x.bak").to_str().unwrap()],
        &target,
    );
    assert_refused(&missing, "no store at");
}

#[test]
fn a_second_server_on_the_same_data_dir_exits_2() {
    let first = TestServer::start();
    let out = pglab()
        .args(["serve", "--sandbox", "local", "--bind", "127.0.0.1:0"])
        .arg("--data-dir")
        .arg(&first.data_dir)
        .arg("--content-dir")
        .arg(repo_content_dir())
        .env("RUST_LOG", "off")
        .output()
        .unwrap();
    assert_refused(&out, "in use by another pglab server");
    assert!(
        stderr(&out).contains(&format!("pid {}", first.pid())),
        "{}",
        stderr(&out)
    );
}
