//! The console page in a real headless Chromium (common::browser): the panes mount, a lesson's `pglab:run-sql` event and
//! Ctrl+Enter run SQL, results render psql-like (NULL distinct, caret under
//! the error), T2 shows live that it waits for T1's lock, and "Show all"
//! brings the rows past the row cap.

#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/sandbox.rs"]
mod support;

use common::browser::Browser;
use common::{ServerOptions, TestServer};

#[tokio::test]
async fn console_page_runs_sql_and_shows_lock_waits() {
    let driver = Browser::start().await;
    let (_temp, data) = support::data_dir();
    let _clusters = support::LocalClusters(data.clone());
    let server = TestServer::start_with(ServerOptions {
        data_dir: Some(data),
        ..ServerOptions::default()
    });

    // Sign in through the real form, as a learner would.
    let out = common::pglab()
        .args([
            "user",
            "add",
            "browser-learner",
            "--learner",
            "--password",
            "browser-password-1",
            "--data-dir",
        ])
        .arg(&server.data_dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    driver.client.goto(&server.url("/login")).await.unwrap();
    driver
        .until(
            "return document.querySelector('form.auth-form') !== null",
            "the sign-in form",
        )
        .await;
    driver
        .js(
            "document.querySelector('input[name=username]').value = 'browser-learner'; \
             document.querySelector('input[name=password]').value = 'browser-password-1'; \
             document.querySelector('form.auth-form').submit(); return true;",
        )
        .await;
    driver
        .until(
            "return !location.pathname.startsWith('/login') && document.readyState === 'complete'",
            "signed in",
        )
        .await;
    driver.client.goto(&server.url("/console")).await.unwrap();
    let panes = driver
        .until(
            "return document.querySelectorAll('.con-pane').length",
            "panes",
        )
        .await;
    assert_eq!(panes, 2, "T1 and T2 side by side");

    // A lesson's Run button goes to the first pane.
    driver.js("document.dispatchEvent(new CustomEvent('pglab:run-sql', {detail: {sql: \"select 1 as a, null as b, '' as c;\\nselect nope\", exercise: null}}))").await;
    let html = driver.until("const r = document.querySelector('.con-pane .con-results'); return r.querySelector('.con-error') ? r.innerHTML : ''", "T1 results").await;
    let html = html.as_str().unwrap();
    assert!(html.contains("<td>1</td>"), "{html}");
    assert!(
        html.contains("con-null"),
        "NULL is shown distinctly: {html}"
    );
    assert!(html.contains("<td></td>"), "'' is an empty cell: {html}");
    assert!(html.contains("column \"nope\" does not exist"), "{html}");
    assert!(
        html.contains("LINE 2: select nope\n               ^"),
        "caret under the error: {html}"
    );
    assert!(html.contains("Statement 2 (line 2) failed"), "{html}");

    // Ctrl+Enter in T1's editor: begin and update, left open.
    let type_and_run = |pane: usize, sql: &str| {
        format!(
            "const p = document.querySelectorAll('.con-pane')[{pane}]; pglab.console.panes[{pane}].editor.setValue({sql:?}); \
             (p.querySelector('.cm-content') || p.querySelector('textarea')) \
               .dispatchEvent(new KeyboardEvent('keydown', {{key: 'Enter', ctrlKey: true, bubbles: true}}));"
        )
    };
    driver.js(&type_and_run(0, "create table acc (id int primary key, n int); insert into acc values (1, 0); begin; update acc set n = 1 where id = 1")).await;
    driver
        .until(
            "return document.querySelectorAll('.con-badge')[0].textContent === 'in transaction'",
            "T1 in transaction",
        )
        .await;
    driver
        .js(&type_and_run(1, "update acc set n = 2 where id = 1"))
        .await;
    let status = driver.until("const s = document.querySelectorAll('.con-status')[1].textContent; return s.includes('waiting for lock') ? s : ''", "T2 waiting").await;
    assert!(
        status
            .as_str()
            .unwrap()
            .contains("waiting for lock held by T1 (pid "),
        "{status}"
    );
    driver.js(&type_and_run(0, "commit")).await;
    let t2 = driver.until("const r = document.querySelectorAll('.con-results')[1]; return r.textContent.includes('UPDATE 1') ? r.textContent : ''", "T2 done").await;
    assert!(t2.as_str().unwrap().contains("UPDATE 1"));
    assert_eq!(
        driver
            .js("return document.querySelectorAll('.con-badge')[0].textContent")
            .await,
        "idle"
    );

    // 1,000 rows x 20 columns render, with the cap line.
    let cols: Vec<String> = (1..=20)
        .map(|i| format!("md5((g * {i})::text) as c{i}"))
        .collect();
    let big = format!("select {} from generate_series(1, 3000) g", cols.join(", "));
    driver.js(&type_and_run(0, &big)).await;
    let foot = driver.until("const f = document.querySelector('.con-pane .con-foot'); return f && f.textContent.includes('showing') ? f.textContent : ''", "big result").await;
    assert!(
        foot.as_str()
            .unwrap()
            .contains("showing 1,000 of 3,000 rows"),
        "{foot}"
    );
    assert_eq!(
        driver
            .js("return document.querySelector('.con-pane tbody').rows.length")
            .await,
        1000
    );
    // "Show all" (the keyboard reaches it: a button) brings every row.
    driver
        .js("const b = document.querySelector('.con-pane [data-show-all]'); b.focus(); b.click(); return true")
        .await;
    let shown = driver
        .until(
            "const t = document.querySelector('.con-pane tbody'); return t && t.rows.length === 3000 ? t.rows[2999].cells[0].textContent : ''",
            "every row shown",
        )
        .await;
    assert_eq!(shown, "e93028bdc1aacdfb3687181f2031765d", "md5 of 3000");
    let foot = driver
        .js("return document.querySelector('.con-pane .con-foot').textContent")
        .await;
    assert!(foot.as_str().unwrap().contains("(3000 rows)"), "{foot}");
    assert_eq!(
        driver
            .js("return document.querySelectorAll('.con-pane [data-show-all]').length")
            .await,
        0
    );
    // Under psql's print options the pane shows psql's own text.
    driver
        .js(&type_and_run(
            0,
            "\\pset border 2\nselect 7 as seven;\n\\pset border 1",
        ))
        .await;
    let printed = driver
        .until(
            "const p = document.querySelector('.con-pane .con-printed'); return p ? p.textContent : ''",
            "psql's text under \\pset border 2",
        )
        .await;
    assert_eq!(
        printed.as_str().unwrap(),
        "+-------+\n| seven |\n+-------+\n|     7 |\n+-------+\n(1 row)\n\n"
    );
    // `\watch` shows its latest result live; Cancel stops it.
    driver
        .js(&type_and_run(0, "select 40 + 2 as answer \\watch 0.3"))
        .await;
    let live = driver
        .until(
            "const l = document.querySelector('.con-pane .con-watch-live'); const s = document.querySelector('.con-status').textContent; return l && s.includes('watch: run') ? l.textContent : ''",
            "the watch live",
        )
        .await;
    assert!(live.as_str().unwrap().contains("42"), "{live}");
    assert!(live.as_str().unwrap().contains("(every 0.3s)"), "{live}");
    driver
        .js("document.querySelector('.con-pane .con-cancel').click(); return true")
        .await;
    driver
        .until(
            "const p = document.querySelector('.con-pane'); return !p.classList.contains('con-busy') && !p.querySelector('.con-watch-live') && p.querySelector('.con-title') !== null",
            "the watch stopped",
        )
        .await;
    driver.close().await;
}
