//! The Labs area of a lesson page in a real headless Chromium: the traffic
//! switch starts the 14.D.1 traffic and the chart draws its points, the
//! monitor fills with sparklines while open, and the leak's "too many
//! connections" answer appears in the console (local backend: the browser
//! is what is under test here; the labs' Docker behaviour has its own tests).

#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/labs.rs"]
mod labs;
#[path = "common/sandbox.rs"]
mod support;

use std::time::{Duration, Instant};

use common::browser::Browser;
use serde_json::Value;

/// Evaluates `script` until it returns something truthy.
async fn until(browser: &Browser, script: &str, what: &str) -> Value {
    let end = Instant::now() + Duration::from_secs(60);
    loop {
        let v = browser.client.execute(script, vec![]).await.unwrap();
        if !(v.is_null() || v == false || v == "" || v == 0) {
            return v;
        }
        assert!(Instant::now() < end, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(150)).await;
    }
}

async fn js(browser: &Browser, script: &str) -> Value {
    browser.client.execute(script, vec![]).await.unwrap()
}

#[tokio::test]
async fn traffic_switch_draws_the_chart_and_the_leak_error_reaches_the_console() {
    if std::process::Command::new("chromedriver")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: chromedriver is not installed");
        return;
    }
    let Some(lab) = labs::start("local", "labsbrowser", &[]).await else {
        return;
    };
    lab.sql(
        "T1",
        "create table tasks (id int primary key, title text, status text, priority int, created_at timestamptz);
         insert into tasks select g, 't' || g, case when g % 3 = 0 then 'closed' else 'open' end, 1 + g % 5,
           now() - g * interval '10 minutes' from generate_series(1, 2000) g;",
    )
    .await;
    let browser = Browser::start().await;
    browser.client.goto(&lab.url("/login")).await.unwrap();
    browser.wait_for("form.auth-form").await;
    js(
        &browser,
        "document.querySelector('input[name=username]').value = 'labsbrowser'; \
         document.querySelector('input[name=password]').value = 'labsbrowser-password'; \
         document.querySelector('form.auth-form').submit(); return true;",
    )
    .await;
    until(
        &browser,
        "return !location.pathname.startsWith('/login') && document.readyState === 'complete'",
        "signed in",
    )
    .await;
    // The learner's sandbox runs and has a tasks table (above).
    browser
        .client
        .goto(&lab.url("/sections/14-postgresql-production-labs"))
        .await
        .unwrap();
    browser
        .wait_for("[data-labs-panel] details[data-lab=traffic]")
        .await;

    // The switch: open the block, press Start traffic, the chart draws.
    js(
        &browser,
        "document.querySelector('details[data-lab=traffic]').open = true; return true;",
    )
    .await;
    browser
        .wait_for("details[data-lab=traffic] [data-lab-action=traffic]")
        .await
        .click()
        .await
        .unwrap();
    let points = until(
        &browser,
        "const c = document.querySelector('[data-lab-chart]'); \
         return c.querySelector('svg polyline') && +c.dataset.points >= 5 ? +c.dataset.points : 0",
        "the traffic chart",
    )
    .await;
    assert!(points.as_u64().unwrap() >= 5);
    let pressed = js(
        &browser,
        "return document.querySelector('[data-lab-action=traffic]').getAttribute('aria-pressed')",
    )
    .await;
    assert_eq!(pressed, "true");
    browser
        .wait_for("[data-lab-action=traffic]")
        .await
        .click()
        .await
        .unwrap();
    browser
        .wait_for_text("[data-lab-action=traffic]", "Start traffic", 10)
        .await;

    // The monitor fills while open, with sparklines.
    js(
        &browser,
        "document.querySelector('details[data-lab=monitor]').open = true; return true;",
    )
    .await;
    until(
        &browser,
        "const d = document.querySelector('details[data-lab=monitor]'); return +d.dataset.samples >= 2 && d.querySelectorAll('svg.lab-spark polyline').length > 0",
        "monitor samples with sparklines",
    )
    .await;
    let text = js(
        &browser,
        "return document.querySelector('details[data-lab=monitor]').innerText",
    )
    .await;
    assert!(text.as_str().unwrap().contains("tasks"), "{text}");

    // The leak: PostgreSQL's refusal in the panel and in the console.
    js(
        &browser,
        "document.querySelector('details[data-lab=leak]').open = true; return true;",
    )
    .await;
    browser
        .wait_for("[data-lab-action=leak]")
        .await
        .click()
        .await
        .unwrap();
    let console = until(
        &browser,
        "const e = document.querySelector('[data-console] .con-results .con-error'); return e ? e.innerText : ''",
        "the refusal in the console",
    )
    .await;
    assert!(console.as_str().unwrap().contains("FATAL"), "{console}");
    assert!(console.as_str().unwrap().contains("53300"), "{console}");
    browser
        .wait_for("[data-lab-action=release]")
        .await
        .click()
        .await
        .unwrap();
    browser
        .wait_for_text("details[data-lab=leak] .lab-msg", "Released", 15)
        .await;
    // PGLAB_LABS_SCREENSHOT=/tmp/labs.png: look at the panel by hand.
    if let Ok(path) = std::env::var("PGLAB_LABS_SCREENSHOT") {
        js(
            &browser,
            "document.querySelector('[data-labs-panel]').scrollIntoView(); return true;",
        )
        .await;
        browser.screenshot(std::path::Path::new(&path)).await;
    }
    browser.close().await;
}
