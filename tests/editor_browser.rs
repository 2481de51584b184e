//! The console's CodeMirror 6 editor in a real headless Chromium against a
//! real local sandbox: completion from the learner's live schema (a table
//! created a moment before, an alias's columns, meta-commands), every key of
//! the console (Ctrl+Enter, Shift+Enter, Up/Down history, Ctrl+R, Escape,
//! Ctrl+F, comment toggle), bracket matching, themes, the error caret in the
//! editor, typing latency in a 5,000-line script, and a lesson's Run button.
//! `Browser::close` fails the test on any CSP violation.

#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/sandbox.rs"]
mod support;

use common::browser::Browser;
use common::{ServerOptions, TestServer};
use fantoccini::Locator;

/// `pane`'s editor as a JS expression.
fn ed(pane: usize) -> String {
    format!("pglab.console.panes[{pane}].editor")
}

/// A keydown on `pane`'s editor content, as the browser sends it.
fn key(pane: usize, key: &str, mods: &str) -> String {
    format!(
        "document.querySelectorAll('.con-pane')[{pane}].querySelector('.cm-content')\
         .dispatchEvent(new KeyboardEvent('keydown', {{key: {key:?}, {mods} bubbles: true, cancelable: true}})); return true;"
    )
}

/// The labels of the open completion list.
const OPTIONS: &str = "const l = document.querySelectorAll('.cm-tooltip-autocomplete li'); \
     return l.length ? Array.from(l).map((e) => e.textContent).join('|') : '';";

async fn set_doc(driver: &Browser, pane: usize, text: &str, cursor: Option<usize>) {
    let at = cursor.map_or("null".to_string(), |c| c.to_string());
    driver
        .js(&format!(
            "const e = {}; e.setValue({text:?}); if ({at} !== null) e.view.dispatch({{selection: {{anchor: {at}}}}}); e.focus(); return true;",
            ed(pane)
        ))
        .await;
}

/// Types `text` with real key events into the focused editor.
async fn type_keys(driver: &Browser, text: &str) {
    let content = driver
        .client
        .find(Locator::Css(".con-pane .cm-content"))
        .await
        .unwrap();
    content.send_keys(text).await.unwrap();
}

async fn results(driver: &Browser, pane: usize, needle: &str) -> String {
    driver
        .until(
            &format!(
                "const r = document.querySelectorAll('.con-results')[{pane}].textContent; return r.includes({needle:?}) ? r : ''"
            ),
            needle,
        )
        .await
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn codemirror_editor_completes_and_keeps_the_console_keys() {
    let driver = Browser::start().await;
    let (_temp, data) = support::data_dir();
    let _clusters = support::LocalClusters(data.clone());
    let server = TestServer::start_with(ServerOptions {
        data_dir: Some(data),
        ..ServerOptions::default()
    });
    driver.sign_in(&server, "editor-learner").await;
    driver.client.goto(&server.url("/console")).await.unwrap();
    driver
        .until(
            "return document.querySelectorAll('.con-pane .cm-editor').length === 2",
            "two CodeMirror editors",
        )
        .await;
    assert_eq!(
        driver
            .js("return document.querySelector('.sqled-missing') === null")
            .await,
        true,
        "no fallback note when the bundle loaded"
    );

    // Ctrl+Enter runs all: a table created a moment before ...
    set_doc(
        &driver,
        0,
        "create table tasks (id int primary key, title text, done bool);",
        None,
    )
    .await;
    driver.js(&key(0, "Enter", "ctrlKey: true,")).await;
    results(&driver, 0, "CREATE TABLE").await;
    // ... is offered on typing once the schema refreshed after the DDL.
    driver
        .until(
            "return pglab.api('GET', '/api/sandbox/schema').then((s) => !!(s.schema.public && s.schema.public.tasks))",
            "schema has tasks",
        )
        .await;
    let mut offered = String::new();
    for _ in 0..20 {
        set_doc(&driver, 0, "select * from ta", None).await;
        type_keys(&driver, "s").await;
        offered = driver
            .until(OPTIONS, "completion list")
            .await
            .as_str()
            .unwrap()
            .to_string();
        if offered.contains("tasks") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    assert!(offered.contains("tasks"), "{offered}");
    // An alias's columns after `t.`.
    set_doc(&driver, 0, "select t from tasks t", Some(8)).await;
    type_keys(&driver, ".").await;
    let offered = driver.until(OPTIONS, "alias columns").await;
    let offered = offered.as_str().unwrap();
    for col in ["id", "title", "done"] {
        assert!(
            offered.split('|').any(|o| o.starts_with(col)),
            "{col} in {offered}"
        );
    }
    // psql meta-commands after a backslash.
    set_doc(&driver, 0, "", None).await;
    type_keys(&driver, "\\d").await;
    let offered = driver.until(OPTIONS, "meta-commands").await;
    assert!(offered.as_str().unwrap().contains("\\dt"), "{offered}");
    driver.js(&key(0, "Escape", "")).await;

    // Shift+Enter runs the statement under the cursor only.
    set_doc(
        &driver,
        0,
        "select 1 as first_one;\nselect 2 as second_one;",
        Some(30),
    )
    .await;
    driver.js(&key(0, "Enter", "shiftKey: true,")).await;
    let r = results(&driver, 0, "second_one").await;
    assert!(!r.contains("first_one"), "{r}");

    // Up on the first line walks history (newest first), Down comes back.
    set_doc(&driver, 0, "", None).await;
    driver.js(&key(0, "ArrowUp", "")).await;
    assert_eq!(
        driver.js(&format!("return {}.value", ed(0))).await,
        "select 2 as second_one;"
    );
    driver.js(&key(0, "ArrowDown", "")).await;
    assert_eq!(driver.js(&format!("return {}.value", ed(0))).await, "");

    // Ctrl+R opens the history search.
    driver.js(&key(0, "r", "ctrlKey: true,")).await;
    driver
        .until(
            "return !document.querySelector('.con-search').hidden",
            "history search",
        )
        .await;
    driver
        .js("document.querySelector('.con-search').hidden = true; return true")
        .await;

    // Ctrl+F opens CodeMirror's search and replace.
    set_doc(&driver, 0, "select 1", None).await;
    driver.js(&key(0, "f", "ctrlKey: true,")).await;
    driver
        .until(
            "return !!document.querySelector('.con-pane .cm-search input[name=replace]')",
            "search panel",
        )
        .await;
    driver.js(&format!("{}.focus(); return true", ed(0))).await;
    // Ctrl+/ toggles a line comment.
    driver.js(&key(0, "/", "ctrlKey: true,")).await;
    assert_eq!(
        driver.js(&format!("return {}.value", ed(0))).await,
        "-- select 1"
    );
    // Bracket matching.
    set_doc(&driver, 0, "select (1 + 2)", Some(8)).await;
    driver
        .until(
            "return document.querySelectorAll('.con-pane .cm-matchingBracket').length === 2",
            "matched brackets",
        )
        .await;
    // The page's theme reaches the editor.
    let light = driver
        .js("return document.querySelector('.cm-editor').className")
        .await;
    driver.js("document.documentElement.dataset.theme = document.documentElement.dataset.theme === 'dark' ? 'light' : 'dark'; return true").await;
    let dark = driver.until(&format!("const c = document.querySelector('.cm-editor').className; return c !== {light} ? c : ''"), "theme class").await;
    assert_ne!(light, dark);

    // An error's caret marks the character in the editor.
    set_doc(&driver, 0, "select 1;\nselect id, nope from tasks;", None).await;
    driver.js(&key(0, "Enter", "ctrlKey: true,")).await;
    results(&driver, 0, "does not exist").await;
    let marked = driver
        .until("const m = document.querySelector('.con-pane .cm-pglab-caret'); return m ? m.textContent : ''", "caret mark")
        .await;
    assert_eq!(marked, "n");

    // Escape cancels a running statement.
    set_doc(&driver, 0, "select pg_sleep(30);", None).await;
    driver.js(&key(0, "Enter", "ctrlKey: true,")).await;
    driver
        .until(
            "return document.querySelector('.con-pane').classList.contains('con-busy')",
            "busy",
        )
        .await;
    driver.js(&key(0, "Escape", "")).await;
    results(&driver, 0, "canceling statement due to user request").await;

    // A 5,000-line script: typing stays responsive (time from a keystroke's
    // transaction to the next frame, 30 keystrokes).
    let script: String = (1..=5000)
        .map(|i| format!("insert into tasks values ({i}, 'task {i}', false);\n"))
        .collect();
    set_doc(&driver, 0, &script, Some(2000)).await;
    driver
        .js(&format!(
            "window.__lat = null; (async () => {{ const v = {}.view; const t = []; \
             for (let i = 0; i < 30; i++) {{ const s = performance.now(); \
               v.dispatch({{changes: {{from: v.state.selection.main.head, insert: 'x'}}, selection: {{anchor: v.state.selection.main.head + 1}}, userEvent: 'input.type'}}); \
               await new Promise((r) => requestAnimationFrame(() => setTimeout(r, 0))); t.push(performance.now() - s); }} \
             t.sort((a, b) => a - b); window.__lat = {{median: t[15], max: t[29]}}; }})(); return true",
            ed(0)
        ))
        .await;
    let lat = driver.until("return window.__lat", "latency").await;
    println!("typing latency in a 5,000-line script: {lat}");
    assert!(lat["median"].as_f64().unwrap() < 150.0, "{lat}");
    assert_eq!(
        driver
            .js(&format!("return {}.view.state.doc.lines", ed(0)))
            .await,
        5001
    );

    // A lesson's Run button puts the block in the docked editor and runs it.
    driver
        .client
        .goto(&server.url("/sections/14-postgresql-production-labs"))
        .await
        .unwrap();
    driver
        .until("return document.querySelector('[data-console] .cm-editor') && document.querySelector('button[data-run-sql]')", "lesson editor")
        .await;
    driver
        .js("document.querySelector('button[data-run-sql]').click(); return true")
        .await;
    driver
        .until("return pglab.console.panes[0].editor.value.length > 0 && !document.querySelector('.con-pane').classList.contains('con-busy') && document.querySelector('.con-results').textContent.length > 0", "lesson block ran")
        .await;
    let code = driver
        .js("return document.querySelector('button[data-run-sql]').closest('.code-block').querySelector('pre').textContent")
        .await;
    assert_eq!(
        driver
            .js("return pglab.console.panes[0].editor.value")
            .await
            .as_str()
            .unwrap()
            .trim(),
        code.as_str().unwrap().trim()
    );
    driver.close().await;
}
