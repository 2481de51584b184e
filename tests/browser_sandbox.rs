//! The sandbox panel of a lesson page in real headless Chromium, against the
//! real Docker engine: a learner starts a cold sandbox and watches the
//! server's progress steps arrive live, sees it running with its PostgreSQL
//! version, finds it stopped after its container was killed behind pglab's
//! back, brings it back with Restart (data kept), and throws the data away
//! with Reset after confirming.

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;
use std::time::Duration;

use common::TestServer;
use common::browser::Browser;
use common::console::{first_error, run_t1};
use fantoccini::Locator;
use serde_json::json;

/// Waits until the panel's badge shows `state` (its `data-state`; the text
/// itself is styled in capitals).
async fn wait_state(browser: &Browser, state: &str, secs: u64) {
    let css = format!(".sandbox-panel .sandbox-badge[data-state={state}]");
    let deadline = std::time::Instant::now() + Duration::from_secs(secs);
    while browser.client.find(Locator::Css(&css)).await.is_err() {
        if std::time::Instant::now() > deadline {
            let text = browser
                .client
                .find(Locator::Css(".sandbox-panel"))
                .await
                .unwrap()
                .text()
                .await
                .unwrap();
            panic!("the panel never showed {state}; it shows: {text}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn click(browser: &Browser, css: &str) {
    let button = browser.wait_for(css).await;
    // Buttons are disabled while an operation runs: wait until enabled.
    for _ in 0..300 {
        if button.prop("disabled").await.unwrap().as_deref() != Some("true") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    button.click().await.unwrap();
}

#[tokio::test]
async fn learner_drives_the_sandbox_panel() {
    if !common::require_docker() {
        return;
    }
    // No warm pool: the learner's start is a cold one with every step.
    let server = TestServer::start_with(common::docker::server_options(
        &common::docker::image(),
        &[],
    ));
    let _cleanup = common::docker::DockerCleanup::for_data_dir(&server.data_dir).await;
    let store = pglab::store::Store::open(&server.data_dir.join("pglab.db"))
        .await
        .unwrap();
    // The account is made over HTTP; the browser signs in with its password.
    let http = common::signed_in_learner(&server, "panel-pat").await;

    let browser = Browser::start().await;
    browser.client.goto(&server.url("/login")).await.unwrap();
    browser
        .wait_for("input[name=username]")
        .await
        .send_keys("panel-pat")
        .await
        .unwrap();
    browser
        .wait_for("input[name=password]")
        .await
        .send_keys("panel-pat-password")
        .await
        .unwrap();
    click(&browser, "form button[type=submit]").await;
    browser
        .wait_for_text("[data-testid=user-name]", "panel-pat", 15)
        .await;
    browser
        .client
        .goto(&server.url("/sections/14-postgresql-production-labs"))
        .await
        .unwrap();
    wait_state(&browser, "absent", 15).await;

    // Start: the steps arrive while the request is still running, then the
    // badge says running and the facts show the server's version.
    click(&browser, ".sandbox-panel button[data-action=start]").await;
    browser
        .wait_for_text(".sandbox-panel .sandbox-progress", "s", 30)
        .await;
    wait_state(&browser, "running", 60).await;
    let steps = browser
        .client
        .find_all(Locator::Css(".sandbox-panel .sandbox-progress li"))
        .await
        .unwrap();
    assert!(
        steps.len() >= 3,
        "a cold start shows its steps (got {})",
        steps.len()
    );
    let last = steps.last().unwrap().text().await.unwrap();
    assert!(last.to_lowercase().contains("ready"), "last step: {last}");
    browser
        .wait_for_text(".sandbox-panel .sandbox-facts", "15.", 10)
        .await;

    // A committed row, then the container is killed behind pglab's back.
    let made = run_t1(
        &http,
        &server,
        "create table kept (x int); insert into kept values (7);",
    )
    .await;
    assert_eq!(first_error(&made), None, "{made}");
    let (container,): (String,) = sqlx::query_as("select container from sandboxes")
        .fetch_one(store.pool())
        .await
        .unwrap();
    let killed = Command::new("docker")
        .args(["kill", &container])
        .output()
        .unwrap();
    assert!(killed.status.success());
    // The page learns it on its next refresh (a reload stands in for the
    // 30-second timer): stopped, and Restart is the way out.
    browser.client.refresh().await.unwrap();
    wait_state(&browser, "stopped", 20).await;
    click(&browser, ".sandbox-panel button[data-action=restart]").await;
    wait_state(&browser, "running", 60).await;
    let kept = run_t1(&http, &server, "select x from kept").await;
    assert_eq!(
        kept["statements"][0]["rows"],
        json!([["7"]]),
        "data kept: {kept}"
    );

    // Reset asks first; after confirming, the data is gone.
    click(&browser, ".sandbox-panel button[data-action=reset]").await;
    let prompt = browser.client.get_alert_text().await.unwrap();
    assert!(prompt.contains("thrown away"), "confirm text: {prompt}");
    browser.client.accept_alert().await.unwrap();
    wait_state(&browser, "running", 90).await;
    let gone = run_t1(&http, &server, "select x from kept").await;
    let error = first_error(&gone).unwrap_or_default();
    assert!(
        error.contains("does not exist"),
        "table gone after reset: {gone}"
    );
    browser.close().await;
}
