//! pglab's CodeMirror 6 editor in a real headless Chromium against a real
//! local sandbox: completion from the learner's live schema (a table created
//! a moment before, an alias's columns, functions, meta-commands, lab files
//! after `\i`), every key of the console (Ctrl+Enter, Shift+Enter with the
//! server's splitter, Up/Down history, Ctrl+R, Escape, Ctrl+F, comment
//! toggle), bracket matching, both themes, the error caret in the editor,
//! typing latency in a 5,000-line script, a lesson's Run button; the compose
//! file in the same editor; the plain editor and its note without the bundle.
//! `Browser::close` fails a test on any CSP violation.

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
    let offered = offered_after(&driver, "select * from ta", None, "s", "tasks").await;
    assert!(offered.contains("tasks"), "{offered}");
    // An alias's columns after `t.`.
    let offered = offered_after(&driver, "select t from tasks t", Some(8), ".", "title").await;
    let offered = offered.as_str();
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
    // Lab files after `\i `.
    let schema = driver
        .js("return pglab.api('GET', '/api/sandbox/schema')")
        .await;
    let lab_file = schema["lab_files"][0]
        .as_str()
        .expect("the course has .sql lab files")
        .to_string();
    set_doc(&driver, 0, "", None).await;
    type_keys(&driver, "\\i ").await;
    let typed = &lab_file[..3];
    type_keys(&driver, typed).await;
    let offered = driver.until(OPTIONS, "lab files").await;
    assert!(
        offered.as_str().unwrap().contains(&lab_file),
        "{lab_file} in {offered}"
    );
    driver.js(&key(0, "Escape", "")).await;
    // The learner's own functions.
    set_doc(&driver, 0, "create function tally_done() returns bigint language sql as 'select count(*) from tasks where done';", None).await;
    driver.js(&key(0, "Enter", "ctrlKey: true,")).await;
    results(&driver, 0, "CREATE FUNCTION").await;
    driver
        .until(
            "return pglab.api('GET', '/api/sandbox/schema').then((s) => s.functions.some((f) => f.label === 'tally_done'))",
            "schema has the function",
        )
        .await;
    let mut offered = String::new();
    for _ in 0..20 {
        set_doc(&driver, 0, "select tally_d", None).await;
        type_keys(&driver, "o").await;
        offered = driver
            .until(OPTIONS, "function completion")
            .await
            .as_str()
            .unwrap()
            .to_string();
        if offered.contains("tally_done") {
            break;
        }
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    assert!(offered.contains("tally_done"), "{offered}");
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
    // The server's splitter decides: a BEGIN ATOMIC body's semicolons do not
    // end the statement, the cursor inside it runs the whole CREATE FUNCTION.
    let script = "select 1 as before_it;\ncreate function two() returns int language sql\nbegin atomic\n  select 2;\nend;\nselect 3 as after_it;";
    let inside = script.find("select 2").unwrap() + 3;
    set_doc(&driver, 0, script, Some(inside)).await;
    driver.js(&key(0, "Enter", "shiftKey: true,")).await;
    let r = results(&driver, 0, "CREATE FUNCTION").await;
    assert!(!r.contains("before_it") && !r.contains("after_it"), "{r}");
    // A selection runs as it is.
    set_doc(&driver, 0, "select 4 as picked, 5 as not_this", None).await;
    driver
        .js(&format!(
            "{}.view.dispatch({{selection: {{anchor: 0, head: 18}}}}); return true",
            ed(0)
        ))
        .await;
    driver.js(&key(0, "Enter", "shiftKey: true,")).await;
    let r = results(&driver, 0, "picked").await;
    assert!(!r.contains("not_this"), "{r}");

    // Up on the first line walks history (newest first), Up again goes on
    // (a multi-line entry leaves the cursor on its first line), Down comes back.
    set_doc(&driver, 0, "", None).await;
    driver.js(&key(0, "ArrowUp", "")).await;
    assert_eq!(
        driver.js(&format!("return {}.value", ed(0))).await,
        "select 4 as picked"
    );
    driver.js(&key(0, "ArrowUp", "")).await;
    assert!(
        driver
            .js(&format!("return {}.value", ed(0)))
            .await
            .as_str()
            .unwrap()
            .starts_with("create function two()"),
    );
    driver.js(&key(0, "ArrowUp", "")).await;
    assert_eq!(
        driver.js(&format!("return {}.value", ed(0))).await,
        "select 2 as second_one;"
    );
    for _ in 0..3 {
        driver.js(&key(0, "ArrowDown", "")).await;
    }
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
    // The page's themes reach the editor: CodeMirror's dark flag, and the
    // page's colours for text and background.
    let look = "const e = document.querySelector('.cm-editor'); const s = getComputedStyle(e); \
                return [e.dataset.theme, s.backgroundColor, \
                        getComputedStyle(document.querySelector('.cm-content')).color].join(' / ')";
    let mut seen = Vec::new();
    for theme in ["light", "dark"] {
        driver
            .js(&format!(
                "document.documentElement.dataset.theme = '{theme}'; return true"
            ))
            .await;
        let got = driver
            .until(
                &format!(
                    "const l = (() => {{ {look} }})(); return l.startsWith('{theme}') ? l : ''"
                ),
                theme,
            )
            .await;
        seen.push(got.as_str().unwrap().to_string());
    }
    assert_ne!(seen[0], seen[1], "{seen:?}");
    assert!(
        seen[0].contains("rgb(241, 243, 247)"),
        "light code background: {seen:?}"
    );
    assert!(
        seen[1].contains("rgb(22, 26, 33)"),
        "dark code background: {seen:?}"
    );

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

#[tokio::test]
async fn compose_file_uses_the_same_editor_and_the_console_works_without_the_bundle() {
    let driver = Browser::start().await;
    let (_temp, data) = support::data_dir();
    let _clusters = support::LocalClusters(data.clone());
    let server = TestServer::start_with(ServerOptions {
        data_dir: Some(data),
        ..ServerOptions::default()
    });
    driver.sign_in(&server, "compose-editor").await;

    // The console page is interactive soon after load: from navigation start
    // to the editors being there (goal 300 ms on an idle machine; loose here).
    driver.client.goto(&server.url("/console")).await.unwrap();
    let ready = driver
        .until(
            "return document.querySelectorAll('.con-pane .cm-editor').length === 2 ? performance.now() : 0",
            "editors",
        )
        .await;
    let loaded = driver
        .js("const n = performance.getEntriesByType('navigation')[0]; return n.domContentLoadedEventEnd")
        .await;
    println!(
        "console page: DOMContentLoaded {:.0} ms, editors there by {:.0} ms",
        loaded.as_f64().unwrap(),
        ready.as_f64().unwrap()
    );
    assert!(loaded.as_f64().unwrap() < 3000.0, "{loaded}");

    // The compose file: CodeMirror with the YAML mode, the saved file in it.
    driver
        .client
        .goto(&server.url("/sandbox/compose"))
        .await
        .unwrap();
    driver
        .until(
            "const c = document.querySelector('[data-compose-yaml] .cm-content'); return c && c.textContent.includes('postgres')",
            "the compose file in the editor",
        )
        .await;
    assert_eq!(
        driver
            .js("return document.querySelector('[data-compose-yaml] .cm-content').getAttribute('aria-label')")
            .await,
        "docker-compose.yml"
    );
    // Keys are highlighted as such, comments toggle with '#'.
    driver
        .until(
            "return document.querySelectorAll('[data-compose-yaml] .tok-keyword').length > 0",
            "YAML keys highlighted",
        )
        .await;
    let view = "pglab.compose.editor.view";
    driver
        .js(&format!(
            "const v = {view}; v.focus(); v.dispatch({{selection: {{anchor: v.state.doc.line(2).from}}}}); return true"
        ))
        .await;
    driver
        .js("document.querySelector('[data-compose-yaml] .cm-content').dispatchEvent(new KeyboardEvent('keydown', {key: '/', ctrlKey: true, bubbles: true, cancelable: true})); return true")
        .await;
    let second = driver
        .js(&format!("return {view}.state.doc.line(2).text"))
        .await;
    assert_eq!(second, "# services:");
    // A refused file (Ctrl+Enter saves): the error names the line, and the
    // editor marks it.
    driver
        .js(&format!(
            "const v = {view}; v.dispatch({{changes: {{from: 0, to: v.state.doc.length, insert: 'services:\\n  postgres:\\n    image: postgres:15\\n    privileged: true\\n'}}}}); return true"
        ))
        .await;
    driver
        .js("document.querySelector('[data-compose-yaml] .cm-content').dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', ctrlKey: true, bubbles: true, cancelable: true})); return true")
        .await;
    let error = driver
        .wait_for_text("[data-compose-error]", "line 4", 15)
        .await;
    assert!(error.contains("privileged"), "{error}");
    let marked = driver
        .until(
            "const m = document.querySelector('[data-compose-yaml] .cm-pglab-caret-line'); return m ? m.textContent : ''",
            "the refused line marked",
        )
        .await;
    assert!(marked.as_str().unwrap().contains("privileged"), "{marked}");

    // Without the bundle (its request blocked): a plain editor with a note
    // that says what is missing, and the console still runs SQL.
    driver.cdp("Network.enable", serde_json::json!({})).await;
    driver
        .cdp(
            "Network.setBlockedURLs",
            serde_json::json!({"urls": ["*codemirror.js*"]}),
        )
        .await;
    driver.client.goto(&server.url("/console")).await.unwrap();
    let note = driver
        .wait_for_text(".sqled-missing", "codemirror.js", 15)
        .await;
    assert!(note.contains("npm ci"), "{note}");
    assert_eq!(
        driver
            .js("return document.querySelectorAll('.con-pane textarea.sqled-input').length")
            .await,
        2
    );
    driver
        .js("const p = pglab.console.panes[0]; p.editor.setValue('select 41 + 1 as answer;'); \
             p.el.querySelector('textarea').dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', ctrlKey: true, bubbles: true, cancelable: true})); return true")
        .await;
    let r = driver.wait_for_text(".con-results", "answer", 90).await;
    assert!(r.contains("42"), "{r}");
    // Shift+Enter there asks the server's splitter too.
    driver
        .js("const p = pglab.console.panes[0]; p.editor.setValue('select 1 as one;\\nselect 2 as two;'); \
             const t = p.el.querySelector('textarea'); t.setSelectionRange(20, 20); \
             t.dispatchEvent(new KeyboardEvent('keydown', {key: 'Enter', shiftKey: true, bubbles: true, cancelable: true})); return true")
        .await;
    let r = driver.wait_for_text(".con-results", "two", 30).await;
    assert!(!r.contains("one"), "{r}");
    // The compose page falls back the same way.
    driver
        .client
        .goto(&server.url("/sandbox/compose"))
        .await
        .unwrap();
    driver
        .wait_for_text(".sqled-missing", "codemirror.js", 15)
        .await;
    driver
        .until(
            "const t = document.querySelector('[data-compose-yaml] textarea'); return t && t.value.includes('postgres') && !t.value.includes('privileged')",
            "the file as saved (the refused one was not) in the textarea",
        )
        .await;
    driver
        .cdp("Network.setBlockedURLs", serde_json::json!({"urls": []}))
        .await;
    driver.close().await;
}

/// Sets pane 0's text to `doc` (cursor at `cursor`, else at its end), types
/// `typed` and returns the completion list once it offers `want`; typed
/// again (after Escape) while the list is missing or lacks it: the schema
/// may still be on its way, or a busy machine's page missed the keystroke.
async fn offered_after(
    driver: &Browser,
    doc: &str,
    cursor: Option<usize>,
    typed: &str,
    want: &str,
) -> String {
    let mut offered = String::new();
    for _ in 0..20 {
        set_doc(driver, 0, doc, cursor).await;
        type_keys(driver, typed).await;
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        offered.clear();
        while offered.is_empty() && std::time::Instant::now() < deadline {
            offered = driver.js(OPTIONS).await.as_str().unwrap_or("").to_string();
            tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        }
        if offered.contains(want) {
            break;
        }
        driver.js(&key(0, "Escape", "")).await;
        tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    }
    offered
}

/// Runs `sql` in pane 0 with Ctrl+Enter.
async fn run_all(driver: &Browser, sql: &str) {
    set_doc(driver, 0, sql, None).await;
    driver.js(&key(0, "Enter", "ctrlKey: true,")).await;
}

#[tokio::test]
async fn completion_follows_the_session_database_after_backslash_c() {
    let driver = Browser::start().await;
    let (_temp, data) = support::data_dir();
    let _clusters = support::LocalClusters(data.clone());
    let server = TestServer::start_with(ServerOptions {
        data_dir: Some(data),
        ..ServerOptions::default()
    });
    driver.sign_in(&server, "editor-dbswitch").await;
    driver.client.goto(&server.url("/console")).await.unwrap();
    driver
        .until(
            "return document.querySelectorAll('.con-pane .cm-editor').length === 2",
            "two CodeMirror editors",
        )
        .await;
    run_all(&driver, "create table kept_in_labdb (id int);").await;
    results(&driver, 0, "CREATE TABLE").await;
    let offered = offered_after(
        &driver,
        "select * from kept_in_lab",
        None,
        "d",
        "kept_in_labdb",
    )
    .await;
    assert!(offered.contains("kept_in_labdb"), "{offered}");
    driver.js(&key(0, "Escape", "")).await;

    run_all(&driver, "create database otherdb;").await;
    results(&driver, 0, "CREATE DATABASE").await;
    run_all(
        &driver,
        "\\c otherdb\ncreate table elsewhere_only (id int primary key, note text);",
    )
    .await;
    results(&driver, 0, "You are now connected to database \"otherdb\"").await;
    results(&driver, 0, "CREATE TABLE").await;
    // T1 is now in otherdb: its completion offers otherdb's table, with
    // its columns after an alias, and no longer labdb's.
    let offered = offered_after(
        &driver,
        "select * from elsewhere_onl",
        None,
        "y",
        "elsewhere_only",
    )
    .await;
    assert!(offered.contains("elsewhere_only"), "{offered}");
    driver.js(&key(0, "Escape", "")).await;
    let columns = offered_after(
        &driver,
        "select e from elsewhere_only e",
        Some(8),
        ".",
        "note",
    )
    .await;
    assert!(columns.contains("note"), "{columns}");
    driver.js(&key(0, "Escape", "")).await;
    let t1 = driver
        .js("return pglab.api('GET', '/api/sandbox/schema?session=T1')")
        .await;
    assert_eq!(t1["database"], "otherdb", "{t1}");
    assert!(t1["schema"]["public"]["kept_in_labdb"].is_null(), "{t1}");
    // The read ran on T1's own connection (no connection of its own): T1's
    // backend shows pglab's catalog read as its last query, marked as pglab's.
    let sessions = driver.js("return pglab.api('GET', '/api/sessions')").await;
    let pid = sessions["sessions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|s| s["name"] == "T1")
        .and_then(|s| s["pid"].as_i64())
        .expect("T1 is connected");
    set_doc(
        &driver,
        1,
        &format!("select query from pg_stat_activity where pid = {pid};"),
        None,
    )
    .await;
    driver.js(&key(1, "Enter", "ctrlKey: true,")).await;
    results(
        &driver,
        1,
        "pglab: the editor's completion reads the schema",
    )
    .await;
    // T2, never switched, still completes from labdb.
    let t2 = driver
        .js("return pglab.api('GET', '/api/sandbox/schema?session=T2')")
        .await;
    assert_eq!(t2["database"], "labdb", "{t2}");
    assert!(t2["schema"]["public"]["kept_in_labdb"].is_array(), "{t2}");
    assert!(t2["schema"]["public"]["elsewhere_only"].is_null(), "{t2}");

    // Inside an open transaction the session's connection is not lent (a
    // failed read would abort the learner's transaction): the schema still
    // comes from the session's database, on a connection of its own.
    run_all(&driver, "begin;").await;
    results(&driver, 0, "BEGIN").await;
    let in_tx = driver
        .js("return pglab.api('GET', '/api/sandbox/schema?session=T1')")
        .await;
    assert_eq!(in_tx["database"], "otherdb", "{in_tx}");
    assert!(
        in_tx["schema"]["public"]["elsewhere_only"].is_array(),
        "{in_tx}"
    );
    run_all(&driver, "rollback;").await;
    results(&driver, 0, "ROLLBACK").await;

    // Back to labdb with \c: labdb's table again.
    run_all(&driver, "\\c labdb").await;
    results(&driver, 0, "You are now connected to database \"labdb\"").await;
    let offered = offered_after(
        &driver,
        "select * from kept_in_lab",
        None,
        "d",
        "kept_in_labdb",
    )
    .await;
    assert!(offered.contains("kept_in_labdb"), "{offered}");
    driver.close().await;
}
