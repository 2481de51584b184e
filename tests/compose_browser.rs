//! Issue #14's persistence lesson in a real headless Chromium against the
//! real Docker engine: the learner writes a compose file without a volume in
//! the compose editor, brings it up (the progress streams into the page
//! line by line), writes a row in the console, brings it up again (the
//! container is re-created) and finds the row gone; then adds a named volume
//! at /var/lib/postgresql/data, brings it up, writes a row, re-creates, and
//! finds it there.

#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/labs.rs"]
mod labs;
#[path = "common/sandbox.rs"]
mod support;

use common::browser::Browser;

const NO_VOLUME: &str = "services:
  postgres:
    image: postgres:15
    environment:
      POSTGRES_USER: labuser
      POSTGRES_PASSWORD: example
      POSTGRES_DB: labdb
    healthcheck:
      test: [\"CMD-SHELL\", \"pg_isready -U labuser -d labdb\"]
      interval: 30s
      timeout: 5s
      retries: 5
    mem_limit: 200m
    cpus: 0.5
";

fn with_volume() -> String {
    NO_VOLUME.replace(
        "    mem_limit",
        "    volumes:\n      - pgdata:/var/lib/postgresql/data\n    mem_limit",
    ) + "volumes:\n  pgdata:\n"
}

/// On the compose page: puts `yaml` in the editor as typed text (a user
/// input transaction, so the page sees an edit), clicks "Save and up" and
/// waits for the streamed answer. Returns the output and how many times it
/// grew while streaming.
async fn save_and_up(
    browser: &Browser,
    server: &common::TestServer,
    yaml: Option<&str>,
) -> (String, u64) {
    browser
        .client
        .goto(&server.url("/sandbox/compose"))
        .await
        .unwrap();
    browser
        .until(
            "return document.querySelector('[data-compose] .cm-editor') && document.querySelector('[data-compose-state]').dataset.inForce",
            "compose editor loaded",
        )
        .await;
    if let Some(yaml) = yaml {
        browser
            .js(&format!(
                "const v = pglab.compose.editor.view; \
                 v.dispatch({{changes: {{from: 0, to: v.state.doc.length, insert: {yaml:?}}}, userEvent: 'input.type'}}); \
                 return v.state.doc.toString() === {yaml:?}"
            ))
            .await;
    }
    // Counts the output's updates while the answer streams (from the moment
    // the page empties it for the stream, after "Saved.").
    browser
        .js(
            "const out = document.querySelector('[data-compose-output]'); window.__grew = 0; \
             new MutationObserver(() => { window.__grew = out.textContent.length ? window.__grew + 1 : 0; }) \
               .observe(out, {childList: true, characterData: true, subtree: true}); \
             document.querySelector('button[data-compose-action=up]').click(); return true",
        )
        .await;
    let done = browser
        .until(
            "const o = document.querySelector('[data-compose-output]'); return o.dataset.done ? o.dataset.done : ''",
            "compose up finished",
        )
        .await;
    let output = browser
        .js("return document.querySelector('[data-compose-output]').textContent")
        .await
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(done, "ok", "up failed:\n{output}");
    let grew = browser.js("return window.__grew").await.as_u64().unwrap();
    (output, grew)
}

/// On the console page: runs `sql` in T1 with Ctrl+Enter and returns the
/// results pane's text once it holds `needle`. A run whose connection died
/// with the re-created container says so and is run once more.
async fn console_run(
    browser: &Browser,
    server: &common::TestServer,
    sql: &str,
    needle: &str,
) -> String {
    browser.client.goto(&server.url("/console")).await.unwrap();
    browser
        .until(
            "return pglab.console && pglab.console.panes.length && document.querySelector('.con-pane .cm-editor')",
            "console",
        )
        .await;
    for _ in 0..2 {
        browser
            .js(&format!(
                "const p = pglab.console.panes[0]; p.editor.setValue({sql:?}); \
                 document.querySelector('.con-results').textContent = ''; \
                 p.el.querySelector('.cm-content').dispatchEvent(new KeyboardEvent('keydown', \
                   {{key: 'Enter', ctrlKey: true, bubbles: true, cancelable: true}})); return true"
            ))
            .await;
        let text = browser
            .until(
                &format!(
                    "const p = pglab.console.panes[0]; const r = document.querySelector('.con-results').textContent; \
                     return !p.el.classList.contains('con-busy') && (r.includes({needle:?}) || /connection|ERROR/.test(r)) ? r : ''"
                ),
                needle,
            )
            .await
            .as_str()
            .unwrap()
            .to_string();
        if text.contains(needle) {
            return text;
        }
        assert!(text.contains("connection"), "{sql}: {text}");
    }
    panic!("{sql}: {needle} never came");
}

#[tokio::test]
async fn compose_editor_without_then_with_a_named_volume() {
    if std::process::Command::new("chromedriver")
        .arg("--version")
        .output()
        .is_err()
    {
        eprintln!("SKIPPED: chromedriver is not installed");
        return;
    }
    let _one = labs::DOCKER.lock().await;
    // The Lab owns the server and removes every container and volume of
    // its instance afterwards; the browser signs in as a learner of its own.
    let Some(lab) = labs::start("docker", "compose-owner", &[]).await else {
        return;
    };
    let server = lab.server();
    let browser = Browser::start().await;
    browser.sign_in(server, "composer").await;
    browser
        .js("return pglab.api('POST', '/api/sandbox/start').then((s) => s.state)")
        .await;

    // No volume: the row dies with the re-created container.
    let (output, grew) = save_and_up(&browser, server, Some(NO_VOLUME)).await;
    eprintln!("compose up output, {grew} updates while streaming:\n{output}");
    assert!(
        output.contains("[+] Running") && output.contains("✔ Container"),
        "{output}"
    );
    assert!(
        output.lines().filter(|l| l.contains('⠿')).count() >= 1 && grew >= 2,
        "progress streamed line by line ({grew} updates):\n{output}"
    );
    let info = browser
        .js("return pglab.api('GET', '/api/sandbox/inspect')")
        .await;
    let mounts = info[0]["Mounts"].to_string();
    assert!(!mounts.contains("pgdata"), "no named volume: {mounts}");
    console_run(
        &browser,
        server,
        "create table kept (x int); insert into kept values (41);",
        "INSERT 0 1",
    )
    .await;
    save_and_up(&browser, server, None).await;
    let gone = console_run(&browser, server, "select x from kept;", "does not exist").await;
    assert!(gone.contains("relation \"kept\" does not exist"), "{gone}");

    // A named volume at the data directory: the row survives.
    let (output, _) = save_and_up(&browser, server, Some(&with_volume())).await;
    assert!(output.contains("✔ Container"), "{output}");
    let info = browser
        .js("return pglab.api('GET', '/api/sandbox/inspect')")
        .await;
    let mount = info[0]["Mounts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|m| m["Destination"] == "/var/lib/postgresql/data")
        .cloned()
        .unwrap();
    assert_eq!(mount["Type"], "volume", "{mount}");
    assert!(
        mount["Name"].as_str().unwrap().contains("pgdata"),
        "the learner's named volume: {mount}"
    );
    console_run(
        &browser,
        server,
        "create table kept (x int); insert into kept values (42);",
        "INSERT 0 1",
    )
    .await;
    save_and_up(&browser, server, None).await;
    let kept = console_run(&browser, server, "select x from kept;", "(1 row)").await;
    assert!(kept.contains("42"), "{kept}");
    browser.close().await;
}
