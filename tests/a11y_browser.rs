//! Accessibility in a real headless Chromium (common::browser): axe-core 4
//! (npm devDependency, injected through WebDriver, never served by pglab) on
//! every page in the light and the dark theme, with no violation of impact
//! serious or critical and every remaining one named in
//! docs/accessibility.md (which covers what screen readers are given: live
//! region, table headers, the plan tree, matrix cells). The keyboard walk is
//! tests/a11y_keyboard.rs, the layout and media preferences
//! tests/a11y_layout.rs.

#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/sandbox.rs"]
mod support;

use std::collections::BTreeMap;
use std::time::Duration;

use common::browser::Browser;
use common::console::{first_error, run_t1};
use common::{ServerOptions, TestServer};
use serde_json::{Value, json};

/// A server with the local backend on a data dir the `postgres` user reaches.
pub fn server() -> (TestServer, tempfile::TempDir, support::LocalClusters) {
    let (temp, data) = support::data_dir();
    let clusters = support::LocalClusters(data.clone());
    let server = TestServer::start_with(ServerOptions {
        data_dir: Some(data),
        ..ServerOptions::default()
    });
    (server, temp, clusters)
}

/// An instructor, a classroom, and a learner who joined it; returns the
/// learner's HTTP client, the classroom id and the learner's user id.
async fn class(server: &TestServer, teacher: &str, learner: &str) -> (reqwest::Client, i64, i64) {
    let prof = common::signed_in_instructor(server, teacher).await;
    let room: Value = prof
        .post(server.url("/api/instructor/classrooms"))
        .json(&json!({"name": "Accessible class"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let code = room["join_code"].as_str().unwrap();
    let anonymous = common::client();
    let res = anonymous
        .post(server.url("/api/signup"))
        .json(&json!({"username": learner, "password": format!("{learner}-password"), "join_code": code}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    let http = login_http(server, learner).await;
    let me: Value = http
        .get(server.url("/api/me"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    (
        http,
        room["id"].as_i64().unwrap(),
        me["id"].as_i64().unwrap(),
    )
}

/// A signed-in HTTP client (sends the CSRF header) for `name`.
async fn login_http(server: &TestServer, name: &str) -> reqwest::Client {
    let jar = std::sync::Arc::new(reqwest::cookie::Jar::default());
    let http = reqwest::Client::builder()
        .cookie_provider(jar.clone())
        .build()
        .unwrap();
    let res = http
        .post(server.url("/api/login"))
        .json(&json!({"username": name, "password": format!("{name}-password")}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    use reqwest::cookie::CookieStore;
    let cookies = jar.cookies(&server.base.parse().unwrap()).unwrap();
    let csrf = cookies
        .to_str()
        .unwrap()
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == "pglab_csrf")
        .map(|(_, v)| v.to_string())
        .unwrap();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert("x-csrf-token", csrf.parse().unwrap());
    reqwest::Client::builder()
        .cookie_provider(jar)
        .default_headers(headers)
        .build()
        .unwrap()
}

/// Signs the browser in through the real form.
async fn sign_in(browser: &Browser, server: &TestServer, name: &str) {
    browser.client.goto(&server.url("/login")).await.unwrap();
    browser
        .wait_for("input[name=username]")
        .await
        .send_keys(name)
        .await
        .unwrap();
    browser
        .wait_for("input[name=password]")
        .await
        .send_keys(&format!("{name}-password"))
        .await
        .unwrap();
    browser
        .js("document.querySelector('form.auth-form').submit(); return true")
        .await;
    browser
        .wait_for_text("[data-testid=user-name]", name, 15)
        .await;
}

/// Violations found so far: rule id → (impact, pages where it was seen, an example).
#[derive(Default)]
struct Findings(BTreeMap<String, (String, Vec<String>, String)>);

impl Findings {
    /// Runs axe on the current page in the light and then the dark theme.
    async fn audit(&mut self, browser: &Browser, page: &str) {
        browser
            .until("return document.readyState === 'complete'", page)
            .await;
        // Let the page's scripts fill their parts (panels, user menu).
        tokio::time::sleep(Duration::from_millis(700)).await;
        for theme in ["light", "dark"] {
            browser
                .js(&format!(
                    "document.documentElement.dataset.theme = '{theme}'; return true"
                ))
                .await;
            for v in browser.axe().await {
                let id = v["id"].as_str().unwrap().to_string();
                let impact = v["impact"].as_str().unwrap_or("").to_string();
                let nodes = v["nodes"].as_array().unwrap();
                let example = format!(
                    "{} — {} node(s), e.g. {} {}\n    {}",
                    v["help"].as_str().unwrap_or(""),
                    nodes.len(),
                    nodes[0]["target"].as_str().unwrap_or(""),
                    nodes[0]["html"].as_str().unwrap_or(""),
                    nodes[0]["summary"]
                        .as_str()
                        .unwrap_or("")
                        .replace('\n', " ")
                );
                let entry = self
                    .0
                    .entry(id)
                    .or_insert_with(|| (impact, Vec::new(), example));
                entry.1.push(format!("{page} ({theme})"));
            }
        }
    }

    /// Fails on any serious or critical violation, and on any other one that
    /// docs/accessibility.md does not name (as `rule-id`).
    fn assert_clean(&self) {
        let doc = std::fs::read_to_string(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/docs/accessibility.md"
        ))
        .unwrap();
        let mut bad = Vec::new();
        for (id, (impact, pages, example)) in &self.0 {
            let listed = doc.contains(&format!("`{id}`"));
            if impact == "serious" || impact == "critical" || !listed {
                bad.push(format!(
                    "{id} [{impact}]{} on {}:\n  {example}",
                    if listed {
                        ""
                    } else {
                        " (not in docs/accessibility.md)"
                    },
                    pages.join(", ")
                ));
            }
        }
        assert!(bad.is_empty(), "axe-core found:\n{}", bad.join("\n"));
    }
}

#[tokio::test]
async fn axe_finds_nothing_serious_on_any_page_in_either_theme() {
    let (server, _temp, _clusters) = server();
    let browser = Browser::start().await;
    browser.viewport(1280, 720, 1.0).await;
    let mut found = Findings::default();

    // Before any instructor exists: the setup page, then the public pages.
    let setup = server.setup_link();
    browser.client.goto(&setup).await.unwrap();
    browser.wait_for("form.auth-form").await;
    found.audit(&browser, "setup").await;
    for (path, name) in [("/", "home"), ("/login", "sign-in"), ("/signup", "sign-up")] {
        browser.client.goto(&server.url(path)).await.unwrap();
        found.audit(&browser, name).await;
    }

    let (http, room, learner_id) = class(&server, "prof-a11y", "ada").await;
    // The learner's work: a table, two plans, a check.
    let made = run_t1(
        &http,
        &server,
        "create table t (id int primary key, v text); \
         insert into t select g, md5(g::text) from generate_series(1, 2000) g; analyze t; \
         explain analyze select * from t where v like 'a%' order by v; \
         explain analyze select * from t where id < 50;",
    )
    .await;
    assert_eq!(first_error(&made), None, "{made}");
    // Plans are stored off the answer's path: wait for both.
    let mut ids: Vec<i64> = Vec::new();
    for _ in 0..100 {
        let plans: Value = http
            .get(server.url("/api/plans"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        ids = plans
            .as_array()
            .unwrap()
            .iter()
            .map(|p| p["id"].as_i64().unwrap())
            .collect();
        if ids.len() >= 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(ids.len() >= 2, "two plans stored: {ids:?}");
    let checked = http
        .post(server.url("/api/exercises/14.B.1/check"))
        .send()
        .await
        .unwrap();
    assert_eq!(checked.status(), 200);

    sign_in(&browser, &server, "ada").await;
    browser.client.goto(&server.url("/")).await.unwrap();
    browser
        .wait_for(".sandbox-panel .sandbox-badge[data-state=running]")
        .await;
    found.audit(&browser, "home (signed in)").await;

    // The lesson with every fold of the dock open: labs and the log pane.
    browser
        .client
        .goto(&server.url("/sections/14-postgresql-production-labs"))
        .await
        .unwrap();
    browser
        .wait_for("[data-labs-panel] details[data-lab]")
        .await;
    browser
        .js("document.querySelectorAll('.lesson-dock details').forEach(d => d.open = true); return true")
        .await;
    browser.wait_for(".sandbox-log-lines .log-line").await;
    found
        .audit(&browser, "lesson, labs panel and log pane")
        .await;

    // The console with a result table, an error and a plan view.
    browser.client.goto(&server.url("/console")).await.unwrap();
    browser
        .wait_for(".con-pane textarea, .con-pane .cm-content")
        .await;
    browser
        .js("document.dispatchEvent(new CustomEvent('pglab:run-sql', {detail: {sql: \"select * from t order by id limit 5; explain analyze select count(*) from t; select nope;\"}})); return true")
        .await;
    browser.wait_for(".con-pane .con-error").await;
    found.audit(&browser, "console").await;
    // The same page with CodeMirror's search and replace panel open.
    if browser
        .js("return !!document.querySelector('.con-pane .cm-editor')")
        .await
        == true
    {
        browser
            .js("const e = pglab.console.panes[0].editor; e.setValue('select * from t'); e.focus(); \
                 document.querySelectorAll('.con-pane .cm-content')[0].dispatchEvent(new KeyboardEvent('keydown', {key: 'f', ctrlKey: true, bubbles: true, cancelable: true})); \
                 return true")
            .await;
        browser.wait_for(".con-pane .cm-search").await;
        found.audit(&browser, "console, editor panels").await;
    }

    browser
        .client
        .goto(&server.url("/sandbox/compose"))
        .await
        .unwrap();
    browser
        .wait_for("[data-compose-yaml] .cm-content, [data-compose-yaml] textarea")
        .await;
    found.audit(&browser, "compose file editor").await;

    browser.client.goto(&server.url("/terminal")).await.unwrap();
    browser.wait_for(".terminal-screen .xterm").await;
    browser
        .until(
            "const b = document.querySelector('[data-terminal-close]'); return b && !b.hidden",
            "the terminal connected",
        )
        .await;
    found.audit(&browser, "terminal").await;

    for (path, name) in [
        ("/plans".to_string(), "plans list"),
        (format!("/api/plans/{}", ids[0]), "plan view"),
        (
            format!("/api/plans/compare?a={}&b={}", ids[1], ids[0]),
            "plan compare",
        ),
        ("/progress".to_string(), "progress"),
    ] {
        browser.client.goto(&server.url(&path)).await.unwrap();
        found.audit(&browser, name).await;
    }

    // The instructor's pages.
    browser
        .js("document.querySelector('.user-signout').submit(); return true")
        .await;
    browser
        .until("return location.pathname.startsWith('/login') || document.querySelector('.user-signin') !== null", "signed out")
        .await;
    sign_in(&browser, &server, "prof-a11y").await;
    for (path, name) in [
        ("/instructor".to_string(), "instructor classrooms"),
        (format!("/instructor/classrooms/{room}"), "classroom"),
        (format!("/instructor/classrooms/{room}/progress"), "matrix"),
        (
            format!("/instructor/learners/{learner_id}"),
            "learner detail",
        ),
    ] {
        browser.client.goto(&server.url(&path)).await.unwrap();
        found.audit(&browser, name).await;
    }
    found.assert_clean();
    browser.close().await;
}
