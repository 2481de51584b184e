//! Notifications and the current database in the console panes, in a real
//! headless Chromium (common::browser) against a real local sandbox: T1
//! listens and stays idle, T2 notifies, and the notification shows up live in
//! T1's pane (an ARIA live log) exactly once; T1 then runs at once (the idle
//! poll gives the connection back). The pane header names the session's
//! database, and follows `\c labdb_restore`, on the full page and in a
//! lesson's docked pane.

#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/sandbox.rs"]
mod support;

use common::browser::Browser;
use common::{ServerOptions, TestServer};

/// Runs `sql` in pane `i` through the pane's own run (as its Run button
/// does), whatever editor the pane has.
fn run_in(pane: usize, sql: &str) -> String {
    format!("pglab.console.panes[{pane}].run({sql:?}, null); return true;")
}

/// The text of pane `i`'s results once it contains `needle`.
fn results_with(pane: usize, needle: &str) -> String {
    format!(
        "const r = document.querySelectorAll('.con-pane')[{pane}].querySelector('.con-results'); \
         return r.textContent.includes({needle:?}) && !document.querySelectorAll('.con-pane')[{pane}].classList.contains('con-busy') ? r.textContent : ''"
    )
}

fn db_of(pane: usize) -> String {
    format!(
        "const d = document.querySelectorAll('.con-pane')[{pane}].querySelector('.con-db'); \
         return d && !d.hidden ? d.querySelector('.con-db-name').textContent : ''"
    )
}

#[tokio::test]
async fn idle_pane_shows_notifications_live_and_header_shows_the_database() {
    let driver = Browser::start().await;
    let (_temp, data) = support::data_dir();
    let _clusters = support::LocalClusters(data.clone());
    let server = TestServer::start_with(ServerOptions {
        data_dir: Some(data),
        ..ServerOptions::default()
    });
    driver.sign_in(&server, "notify-learner").await;
    driver.client.goto(&server.url("/console")).await.unwrap();
    let panes = driver
        .until(
            "return pglab.console && pglab.console.panes.length",
            "panes",
        )
        .await;
    assert_eq!(panes, 2);

    // T1 listens, then is idle; its header names its database.
    driver.js(&run_in(0, "listen ch;")).await;
    driver.until(&results_with(0, "LISTEN"), "T1 listens").await;
    assert_eq!(driver.until(&db_of(0), "T1's database").await, "labdb");

    // T2 notifies: T1's pane shows it without T1 running anything.
    driver
        .js(&run_in(
            1,
            "notify ch, 'hello from T2'; select pg_backend_pid();",
        ))
        .await;
    let t2 = driver
        .until(&results_with(1, "NOTIFY"), "T2 notified")
        .await;
    let t2_pid = driver
        .js("return document.querySelectorAll('.con-pane')[1].querySelectorAll('tbody td')[0].textContent")
        .await;
    let t2_pid = t2_pid.as_str().unwrap().to_string();
    assert!(t2.as_str().unwrap().contains(&t2_pid));
    let live = driver
        .until(
            "const l = document.querySelectorAll('.con-pane')[0].querySelector('.con-live-notify'); \
             return l && !l.hidden && l.textContent.includes('hello from T2') ? l.outerHTML : ''",
            "the notification in T1's pane",
        )
        .await;
    let live = live.as_str().unwrap();
    assert!(live.contains("role=\"log\""), "{live}");
    assert!(live.contains("aria-live=\"polite\""), "{live}");
    assert!(
        live.contains(&format!(
            "Asynchronous notification \"ch\" with payload \"hello from T2\" received from server process with PID {t2_pid}."
        )),
        "{live}"
    );

    // T1 runs right away (the pending poll hands the connection over), and
    // the notification is not delivered a second time with its statement.
    let started = std::time::Instant::now();
    driver.js(&run_in(0, "select 41 + 1 as answer;")).await;
    let t1 = driver.until(&results_with(0, "42"), "T1 runs").await;
    assert!(
        started.elapsed() < std::time::Duration::from_secs(5),
        "T1 waited {:?} for its idle poll",
        started.elapsed()
    );
    assert!(!t1.as_str().unwrap().contains("hello from T2"), "{t1}");
    assert!(!t1.as_str().unwrap().contains("still running"), "{t1}");

    // A second notification while T1 is idle again: one line, once.
    driver.js(&run_in(1, "notify ch, 'second';")).await;
    driver
        .until(&results_with(1, "NOTIFY"), "T2 notified again")
        .await;
    let lines = driver
        .until(
            "const l = document.querySelectorAll('.con-pane')[0].querySelector('.con-live-notify'); \
             return l.textContent.includes('second') ? l.querySelectorAll('.con-notify').length : ''",
            "the second notification",
        )
        .await;
    assert_eq!(
        lines, 1,
        "the log restarts with each run; one line per notification"
    );

    // \c: the header follows the session's database.
    driver
        .js(&run_in(1, "create database labdb_restore;"))
        .await;
    driver
        .until(&results_with(1, "CREATE DATABASE"), "created")
        .await;
    driver.js(&run_in(0, "\\c labdb_restore")).await;
    let t1 = driver
        .until(&results_with(0, "You are now connected"), "T1 switched")
        .await;
    assert!(
        t1.as_str()
            .unwrap()
            .contains("You are now connected to database \"labdb_restore\" as user "),
        "{t1}"
    );
    assert_eq!(
        driver.until(&db_of(0), "T1's database").await,
        "labdb_restore"
    );
    assert_eq!(driver.until(&db_of(1), "T2's database").await, "labdb");

    // The lesson's docked pane: the same header.
    driver
        .client
        .goto(&server.url("/sections/14-postgresql-production-labs"))
        .await
        .unwrap();
    driver
        .until(
            "return pglab.console && pglab.console.panes.length",
            "the docked pane",
        )
        .await;
    driver
        .js(&run_in(0, "\\c labdb_restore\nselect current_database();"))
        .await;
    driver
        .until(
            &results_with(0, "You are now connected"),
            "docked T1 switched",
        )
        .await;
    assert_eq!(
        driver.until(&db_of(0), "docked T1's database").await,
        "labdb_restore"
    );
    driver.js(&run_in(0, "\\c labdb")).await;
    driver
        .until(
            "const d = document.querySelector('[data-dock] .con-db-name'); return d && d.textContent === 'labdb'",
            "docked T1 back in labdb",
        )
        .await;
    driver.close().await;
}
