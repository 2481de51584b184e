//! The terminal pane and the Backup buttons in real headless Chromium, on
//! the local backend (a shell in the pane, psql in it): xterm.js loads from
//! node_modules, typing reaches psql and its answer appears; a dump is made and restored
//! into a new database whose row counts match labdb's. On Docker: the
//! shell's prompt shows and psql answers through the pane. A learner sees
//! when an instructor watches their terminal.

#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/sandbox.rs"]
mod support;
#[path = "common/term.rs"]
mod term;

use common::TestServer;
use common::browser::Browser;
use fantoccini::Locator;

async fn fill(browser: &Browser, css: &str, text: &str) {
    let el = browser.wait_for(css).await;
    el.clear().await.unwrap();
    el.send_keys(text).await.unwrap();
}

#[tokio::test]
async fn the_terminal_pane_runs_psql_and_the_backup_buttons_restore() {
    let (_temp, data) = support::data_dir();
    let server = TestServer::start_with(common::ServerOptions {
        data_dir: Some(data.clone()),
        ..Default::default()
    });
    let _clusters = support::LocalClusters(data.clone());
    let http = common::signed_in_learner(&server, "gus").await;
    let setup = http
        .post(server.url("/api/sql"))
        .json(&serde_json::json!({"session": "T1",
            "sql": "create table tasks as select g as id from generate_series(1, 321) g"}))
        .send()
        .await
        .unwrap();
    assert_eq!(setup.status(), 200);

    let b = Browser::start().await;
    b.client.goto(&server.url("/login")).await.unwrap();
    fill(&b, "input[name=username]", "gus").await;
    fill(&b, "input[name=password]", "gus-password").await;
    b.client
        .find(Locator::Css("form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.wait_for_text("[data-testid=user-name]", "gus", 15).await;
    b.client
        .goto(&server.url("/sections/14-postgresql-production-labs"))
        .await
        .unwrap();

    // The pane: closed on a lesson page until asked (no Close button yet),
    // then open, psql's prompt, a query typed into xterm.js.
    let close = b.wait_for("[data-terminal-close]").await;
    assert!(
        !close.is_displayed().await.unwrap(),
        "no Close before opening"
    );
    b.wait_for("[data-terminal-open]")
        .await
        .click()
        .await
        .unwrap();
    b.wait_for_text("[data-terminal-status]", "psql", 60).await;
    // The local backend's shell, then psql in it.
    b.wait_for_text(".terminal-screen .xterm-rows", "@pglab-local:~$", 60)
        .await;
    let input = b.wait_for(".terminal-screen textarea").await;
    input.send_keys("psql\n").await.unwrap();
    b.wait_for_text(".terminal-screen .xterm-rows", "labdb=#", 60)
        .await;
    input.send_keys("select 6 * 7 as answer;\n").await.unwrap();
    b.wait_for_text(".terminal-screen .xterm-rows", "42", 30)
        .await;
    // An instructor starts watching: the pane says who, until they leave.
    // The instructor of gus's classroom (no other instructor sees her).
    common::signed_in_instructor_of(&server, "teach", "gus").await;
    let (teach, _) = term::cookies(&server, "teach").await;
    let me: serde_json::Value = http
        .get(server.url("/api/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let path = format!("/api/instructor/learners/{}/terminal", me["id"]);
    let watcher = term::open_path(&server, &path, Some(&teach), Some(&server.base))
        .await
        .unwrap();
    let notice = b
        .wait_for_text("[data-terminal-watchers]", "teach", 15)
        .await;
    assert!(notice.contains("watching your terminal"), "{notice}");
    watcher.close().await;
    for _ in 0..100 {
        let shown = b.wait_for("[data-terminal-watchers]").await;
        if !shown.is_displayed().await.unwrap() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    assert!(
        !b.wait_for("[data-terminal-watchers]")
            .await
            .is_displayed()
            .await
            .unwrap(),
        "the notice goes once the instructor has left"
    );
    // Closing says so in the status line.
    b.wait_for("[data-terminal-close]")
        .await
        .click()
        .await
        .unwrap();
    b.wait_for_text("[data-terminal-status]", "closed", 15)
        .await;

    // Backup: make a dump, restore it into labdb_restore.
    b.wait_for("[data-backup-toggle]")
        .await
        .click()
        .await
        .unwrap();
    b.wait_for("[data-dump-make]").await.click().await.unwrap();
    b.wait_for_text("[data-dump-note]", "Dump made", 60).await;
    b.wait_for("[data-dump-restore]")
        .await
        .click()
        .await
        .unwrap();
    // The prompt for the database name.
    for _ in 0..100 {
        if b.client.get_alert_text().await.is_ok() {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    b.client.send_alert_text("labdb_restore").await.unwrap();
    b.client.accept_alert().await.unwrap();
    let note = b
        .wait_for_text("[data-dump-note]", "Restored into", 60)
        .await;
    assert!(note.contains("every table has labdb's row count"), "{note}");
    assert!(
        note.contains("public.tasks") && note.contains("321"),
        "{note}"
    );
    b.close().await;
}

/// Signs `name` in through the login form and opens the lesson page.
async fn lesson_page(b: &Browser, server: &TestServer, name: &str) {
    b.client.goto(&server.url("/login")).await.unwrap();
    fill(b, "input[name=username]", name).await;
    fill(b, "input[name=password]", &format!("{name}-password")).await;
    b.client
        .find(Locator::Css("form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    b.wait_for_text("[data-testid=user-name]", name, 15).await;
    b.client
        .goto(&server.url("/sections/14-postgresql-production-labs"))
        .await
        .unwrap();
}

#[tokio::test]
async fn the_docker_terminal_pane_shows_a_prompt_and_runs_psql() {
    if !common::require_docker() {
        return;
    }
    let (_temp, data) = support::data_dir();
    let (_cleanup, server) = term::docker_server(data, &[]).await;
    common::signed_in_learner(&server, "hal").await;
    let b = Browser::start().await;
    lesson_page(&b, &server, "hal").await;
    // The top bar's Terminal link: its page opens the terminal by itself.
    b.wait_for("nav a[href='/terminal']")
        .await
        .click()
        .await
        .unwrap();
    b.wait_for_text("[data-terminal-status]", "bash", 60).await;
    let close = b.wait_for("[data-terminal-close]").await;
    assert!(
        close.is_displayed().await.unwrap(),
        "Close shows while open"
    );
    b.wait_for_text(".terminal-screen .xterm-rows", ":~$", 60)
        .await;
    let input = b.wait_for(".terminal-screen textarea").await;
    input.send_keys("psql -Atc 'select 6 * 7'\n").await.unwrap();
    b.wait_for_text(".terminal-screen .xterm-rows", "42", 30)
        .await;
    b.close().await;
}
