//! The keyboard-only walk through a lab (issue #19) in a real headless
//! Chromium on the local sandbox backend: sign in, open a lesson, start the
//! sandbox, run a block, reach its result and its plan view, check the
//! exercise, then the deadlock lab in the console's T1 and T2 and the
//! terminal, all with WebDriver key actions (Tab, Shift+Tab, Enter, Space,
//! Escape, and typing in the editor and the terminal), never a click.
//! At every Tab the focused element shows a visible ring and focus moved
//! (tests/common/keys.rs); each step's effect is asserted (result text,
//! live-region text, check verdict, the deadlock error in one session).

#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/sandbox.rs"]
mod support;

use common::browser::Browser;
use common::keys::Keys;
use common::{ServerOptions, TestServer};
use fantoccini::key::Key;

const LESSON: &str = "/sections/14-postgresql-production-labs";

/// JS predicate: the focused element is the Run button of the lesson's code
/// block whose text contains `needle`.
fn run_button_of(needle: &str) -> String {
    format!(
        "el.matches('[data-run-sql]') && el.closest('.code-block').querySelector('pre code').textContent.includes({needle:?})"
    )
}

/// JS predicate: a console pane's editor (CodeMirror's content, or the
/// plain textarea fallback) of session `name`.
fn editor_of(name: &str) -> String {
    format!(
        "el.matches('.cm-content, textarea') && !!el.closest('.con-editor') && \
         el.closest('.con-pane').querySelector('.con-name').textContent === {name:?}"
    )
}

/// The text of pane `name`'s results and its live region, and whether it is busy.
async fn pane(browser: &Browser, name: &str) -> (String, String, bool, String) {
    let v = browser
        .js(&format!(
            "const p = Array.from(document.querySelectorAll('.con-pane')).find(p => p.querySelector('.con-name').textContent === {name:?}); \
             return [p.querySelector('.con-results').textContent, p.querySelector('[data-announce]').textContent, \
                     p.classList.contains('con-busy'), p.querySelector('.con-badge').dataset.tx];"
        ))
        .await;
    (
        v[0].as_str().unwrap().to_string(),
        v[1].as_str().unwrap().to_string(),
        v[2] == true,
        v[3].as_str().unwrap().to_string(),
    )
}

/// Waits until the live region of the lesson's T1 pane differs from `before`
/// and no run is going; returns its text.
async fn announced_after(browser: &Browser, before: &str, what: &str) -> String {
    browser
        .until(
            &format!(
                "const p = document.querySelector('.lesson-dock .con-pane'); const t = p.querySelector('[data-announce]').textContent; \
                 return !p.classList.contains('con-busy') && t !== {before:?} && t;"
            ),
            what,
        )
        .await
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn keyboard_only_walk_through_a_lab() {
    let (_temp, data) = support::data_dir();
    let _clusters = support::LocalClusters(data.clone());
    let server = TestServer::start_with(ServerOptions {
        data_dir: Some(data),
        ..ServerOptions::default()
    });
    // A learner who joined a classroom (password "kai-password").
    common::signed_in_learner(&server, "kai").await;

    let browser = Browser::start().await;
    browser.viewport(1280, 720, 1.0).await;
    let mut keys = Keys::new(&browser);

    // 1. Sign in: the form's username field has the focus on arrival.
    browser.client.goto(&server.url("/login")).await.unwrap();
    browser.wait_for("form.auth-form").await;
    keys.expect("el.name === 'username'", "sign-in page on arrival")
        .await;
    keys.type_text("kai").await;
    keys.step(false).await;
    keys.expect("el.name === 'password'", "Tab after the username")
        .await;
    keys.type_text("kai-password").await;
    keys.step(false).await;
    keys.expect(
        "el.matches('form.auth-form button[type=submit]')",
        "Tab after the password",
    )
    .await;
    keys.enter().await;
    browser
        .wait_for_text("[data-testid=user-name]", "kai", 15)
        .await;

    // 2. Home → the lesson: the first Tab reaches the skip link.
    browser
        .until(
            "return document.readyState === 'complete' && location.pathname === '/'",
            "home",
        )
        .await;
    keys.step(false).await;
    keys.expect(
        "el.matches('a.skip-link[href=\"#main\"]')",
        "first Tab on home",
    )
    .await;
    keys.tab_to(
        &format!("el.matches('a.section-card[href=\"{LESSON}\"]')"),
        false,
        40,
        "the lesson's card on home",
    )
    .await;
    keys.enter().await;
    browser
        .until(
            &format!("return location.pathname === '{LESSON}' && document.readyState === 'complete' && !!document.querySelector('.lesson-dock .con-pane')"),
            "the lesson with its console",
        )
        .await;

    // 3. Start the sandbox: the second skip link goes to the dock.
    keys.step(false).await;
    keys.expect(
        "el.matches('a.skip-link[href=\"#main\"]')",
        "first Tab on the lesson",
    )
    .await;
    keys.step(false).await;
    keys.expect(
        "el.matches('a.skip-link[href=\"#dock\"]')",
        "second Tab on the lesson",
    )
    .await;
    keys.enter().await;
    keys.expect("el.id === 'dock'", "the dock skip link").await;
    browser
        .until(
            "const b = document.querySelector('.lesson-dock [data-action=start]'); return b && !b.disabled",
            "the Start button enabled",
        )
        .await;
    let n = keys
        .tab_to(
            "el.matches('.lesson-dock [data-sandbox-panel] button[data-action=start]')",
            false,
            6,
            "the dock's Start button",
        )
        .await;
    assert!(
        n <= 3,
        "Start is the dock's first control after its toggle: {}",
        keys.tail()
    );
    keys.enter().await;
    browser
        .until(
            "return document.querySelector('.lesson-dock .sandbox-badge').dataset.state === 'running' && \
                    !document.querySelector('.lesson-dock [data-action=stop]').disabled",
            "the sandbox running",
        )
        .await;
    // Start is disabled now: focus stayed in the panel, on Stop.
    keys.expect(
        "el.matches('.lesson-dock [data-sandbox-panel] [data-action=stop]')",
        "after Start",
    )
    .await;
    // Escape in the dock goes back to the lesson.
    keys.escape().await;
    keys.expect("el.matches('article.lesson')", "Escape in the dock")
        .await;

    // 4. Run the lab file of 14.B.1 by its button; then run a block and
    // reach its result.
    keys.tab_to(
        "el.matches('[data-run-file$=\"/ex14_1_setup.sql\"]')",
        false,
        300,
        "14.B.1's Run this file button",
    )
    .await;
    let before = pane(&browser, "T1").await.1;
    keys.enter().await;
    let said = announced_after(&browser, &before, "ex14_1_setup.sql ran").await;
    assert!(said.starts_with("T1: "), "{said}");
    assert!(!said.contains("ERROR"), "{said}");
    assert!(
        pane(&browser, "T1").await.0.contains("CREATE ROLE"),
        "the file's result is in T1"
    );
    keys.step(false).await;
    keys.expect(
        "el.matches('a.go-result')",
        "Tab after a Run this file button",
    )
    .await;

    keys.tab_to(
        &run_button_of("SELECT current_user, current_database()"),
        false,
        40,
        "the Run button of the SELECT current_user block",
    )
    .await;
    let before = pane(&browser, "T1").await.1;
    keys.enter().await;
    let said = announced_after(&browser, &before, "the block ran").await;
    assert!(said.contains("SELECT 1"), "live region: {said}");
    assert!(said.contains("SHOW"), "live region: {said}");
    keys.step(false).await;
    keys.expect("el.matches('a.go-result')", "Tab after the Run button")
        .await;
    keys.enter().await;
    keys.expect("el.matches('.lesson-dock .con-results')", "See the result")
        .await;
    let results = pane(&browser, "T1").await.0;
    assert!(
        results.contains("labuser") && results.contains("labdb"),
        "{results}"
    );
    // Tab goes on into the result (its copy buttons, its table).
    keys.step(false).await;
    keys.expect(
        "!!el.closest('.lesson-dock .con-results')",
        "Tab inside the result",
    )
    .await;
    keys.escape().await;
    keys.expect("el.matches('a.go-result')", "Escape in the result")
        .await;

    // 5. Check 14.B.1.
    keys.tab_to(
        "el.matches('[data-check-exercise=\"14.B.1\"]')",
        false,
        40,
        "14.B.1's Check my work",
    )
    .await;
    keys.enter().await;
    let verdict = browser
        .wait_for_text("[data-check-result=\"14.B.1\"]", "✓", 30)
        .await;
    assert!(!verdict.contains('✗'), "{verdict}");

    // 6. The lab's tables (14.B.2's two files), then a plan (14.C.1).
    for file in ["/schema.sql", "/seed.sql"] {
        keys.tab_to(
            &format!("el.matches('[data-run-file$=\"{file}\"]')"),
            false,
            300,
            file,
        )
        .await;
        let before = pane(&browser, "T1").await.1;
        keys.enter().await;
        let said = announced_after(&browser, &before, file).await;
        assert!(!said.contains("ERROR"), "{file}: {said}");
    }
    keys.tab_to(
        &run_button_of("EXPLAIN (ANALYZE, BUFFERS, FORMAT TEXT)"),
        false,
        600,
        "the Run button of 14.C.1's EXPLAIN ANALYZE",
    )
    .await;
    let before = pane(&browser, "T1").await.1;
    keys.enter().await;
    let said = announced_after(&browser, &before, "the EXPLAIN ran").await;
    assert!(said.contains("EXPLAIN"), "{said}");
    browser
        .wait_for(".lesson-dock .con-plan [role=tree] [role=treeitem]")
        .await;
    keys.step(false).await;
    keys.expect("el.matches('a.go-result')", "Tab after the EXPLAIN's Run")
        .await;
    keys.enter().await;
    keys.expect("el.matches('.lesson-dock .con-results')", "See the plan")
        .await;
    keys.tab_to(
        "el.matches('.lesson-dock .con-plan summary[role=treeitem]')",
        false,
        20,
        "the plan's first node",
    )
    .await;
    let expanded = "return document.activeElement.getAttribute('aria-expanded')";
    assert_eq!(browser.js(expanded).await, "true", "{}", keys.tail());
    let bar = browser
        .js("return document.activeElement.textContent")
        .await;
    assert!(
        bar.as_str().unwrap().contains("% of the time"),
        "a node's bar has a text equivalent: {bar}"
    );
    keys.enter().await;
    browser
        .until(
            "return document.activeElement.getAttribute('aria-expanded') === 'false' && !document.activeElement.parentElement.open",
            "Enter closes the node",
        )
        .await;
    keys.space().await;
    browser
        .until(
            "return document.activeElement.getAttribute('aria-expanded') === 'true' && document.activeElement.parentElement.open",
            "Space opens the node",
        )
        .await;
    keys.escape().await;
    keys.expect("el.matches('a.go-result')", "Escape in the plan")
        .await;

    // 7. The console's T1 and T2: back up to the main navigation.
    keys.tab_to(
        "el.matches('.topnav a[href=\"/console\"]')",
        true,
        900,
        "the Console link (Shift+Tab)",
    )
    .await;
    keys.enter().await;
    browser
        .until(
            "return location.pathname === '/console' && document.querySelectorAll('.con-pane').length === 2 && document.readyState === 'complete'",
            "the console with T1 and T2",
        )
        .await;
    keys.step(false).await;
    keys.expect("el.matches('a.skip-link')", "first Tab on the console")
        .await;
    keys.enter().await;
    // The main element takes the focus without a ring (it is no control).
    assert!(
        keys.focus_is("el.id === 'main'").await,
        "the skip link: {}",
        keys.tail()
    );
    keys.tab_to(&editor_of("T1"), false, 12, "T1's editor")
        .await;
    keys.type_text("BEGIN; UPDATE accounts SET balance = balance - 100 WHERE id = 1;")
        .await;
    keys.chord(Key::Control, Key::Enter.into()).await;
    browser
        .until(
            "const p = document.querySelectorAll('.con-pane')[0]; return p.querySelector('.con-badge').dataset.tx === 'in_transaction' && !p.classList.contains('con-busy')",
            "T1 in a transaction",
        )
        .await;
    let (t1, said, _, _) = pane(&browser, "T1").await;
    assert!(t1.contains("UPDATE 1"), "{t1}");
    assert!(said.contains("UPDATE 1"), "{said}");
    // Escape then Tab leaves the editor (Tab alone would indent).
    keys.escape().await;
    keys.step(false).await;
    assert!(
        !keys.focus_is("!!el.closest('.con-editor')").await,
        "Escape then Tab left T1's editor: {}",
        keys.tail()
    );
    keys.tab_to(&editor_of("T2"), false, 12, "T2's editor")
        .await;
    keys.type_text("BEGIN; UPDATE accounts SET balance = balance - 100 WHERE id = 2;")
        .await;
    keys.chord(Key::Control, Key::Enter.into()).await;
    browser
        .until(
            "const p = document.querySelectorAll('.con-pane')[1]; return p.querySelector('.con-badge').dataset.tx === 'in_transaction' && !p.classList.contains('con-busy')",
            "T2 in a transaction",
        )
        .await;
    assert!(pane(&browser, "T2").await.0.contains("UPDATE 1"));
    // T2 now waits for T1's row 1.
    keys.clear_editor().await;
    keys.type_text("UPDATE accounts SET balance = balance + 100 WHERE id = 1;")
        .await;
    keys.chord(Key::Control, Key::Enter.into()).await;
    browser
        .until(
            "return document.querySelectorAll('.con-pane')[1].classList.contains('con-busy')",
            "T2 waiting",
        )
        .await;
    // Escape in a busy pane would cancel its run: Shift+Tab leaves instead.
    keys.step(true).await;
    assert!(
        !keys.focus_is("!!el.closest('.con-editor')").await,
        "Shift+Tab left T2's editor: {}",
        keys.tail()
    );
    keys.tab_to(&editor_of("T1"), true, 12, "T1's editor (Shift+Tab)")
        .await;
    keys.clear_editor().await;
    keys.type_text("UPDATE accounts SET balance = balance + 100 WHERE id = 2;")
        .await;
    keys.chord(Key::Control, Key::Enter.into()).await;
    browser
        .until(
            "const p = document.querySelectorAll('.con-pane'); return !p[0].classList.contains('con-busy') && !p[1].classList.contains('con-busy') && \
                    /deadlock detected/.test(p[0].querySelector('.con-results').textContent + p[1].querySelector('.con-results').textContent)",
            "the deadlock",
        )
        .await;
    let (r1, a1, _, tx1) = pane(&browser, "T1").await;
    let (r2, a2, _, tx2) = pane(&browser, "T2").await;
    let victims = [&r1, &r2]
        .iter()
        .filter(|r| r.contains("deadlock detected"))
        .count();
    assert_eq!(victims, 1, "one session is the victim:\nT1: {r1}\nT2: {r2}");
    let (victim_said, winner, winner_tx, victim_tx) = if r1.contains("deadlock detected") {
        (a1, r2, tx2, tx1)
    } else {
        (a2, r1, tx1, tx2)
    };
    assert!(
        victim_said.contains("ERROR: deadlock detected"),
        "the victim's live region: {victim_said}"
    );
    assert!(
        winner.contains("UPDATE 1"),
        "the other one went on: {winner}"
    );
    assert_eq!(winner_tx, "in_transaction");
    assert_eq!(victim_tx, "failed");

    // ROLLBACK in both, T1 first (focus is in its editor).
    keys.clear_editor().await;
    keys.type_text("ROLLBACK;").await;
    keys.chord(Key::Control, Key::Enter.into()).await;
    browser
        .until(
            "return document.querySelectorAll('.con-pane')[0].querySelector('.con-badge').dataset.tx === 'idle'",
            "T1 rolled back",
        )
        .await;
    keys.escape().await;
    keys.step(false).await;
    keys.tab_to(&editor_of("T2"), false, 12, "T2's editor again")
        .await;
    keys.clear_editor().await;
    keys.type_text("ROLLBACK;").await;
    keys.chord(Key::Control, Key::Enter.into()).await;
    browser
        .until(
            "return document.querySelectorAll('.con-pane')[1].querySelector('.con-badge').dataset.tx === 'idle'",
            "T2 rolled back",
        )
        .await;

    // 8. The terminal: Escape then Tab leaves it.
    keys.escape().await;
    keys.tab_to(
        "el.matches('.topnav a[href=\"/terminal\"]')",
        true,
        80,
        "the Terminal link (Shift+Tab)",
    )
    .await;
    keys.enter().await;
    browser
        .until(
            "return location.pathname === '/terminal' && !!document.activeElement.closest('.terminal-screen')",
            "the terminal connected and focused",
        )
        .await;
    keys.expect("!!el.closest('.terminal-screen')", "the terminal")
        .await;
    browser
        .wait_for_text(".terminal-screen .xterm-rows", "$", 60)
        .await;
    keys.type_text("echo kb-walk-$((6 * 7))").await;
    keys.enter().await;
    browser
        .wait_for_text(".terminal-screen .xterm-rows", "kb-walk-42", 30)
        .await;
    keys.escape().await;
    keys.step(false).await;
    assert!(
        !keys.focus_is("!!el.closest('.terminal-screen')").await,
        "Escape then Tab left the terminal: {}",
        keys.tail()
    );
    browser.close().await;
}
