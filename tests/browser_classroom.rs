//! The classroom end to end in real headless Chromium: a learner signs up
//! with the join code, runs SQL from the lesson's console, passes "Check my
//! work", and the instructor's matrix — open in a second browser — turns the
//! cell green live.

#![allow(clippy::unwrap_used)]

mod common;

use std::time::Duration;

use common::TestServer;
use common::browser::Browser;
use fantoccini::Locator;
use fantoccini::key::Key;

async fn fill(browser: &Browser, css: &str, text: &str) {
    let el = browser.wait_for(css).await;
    el.clear().await.unwrap();
    el.send_keys(text).await.unwrap();
}

#[tokio::test]
async fn learner_passes_a_check_and_the_instructor_sees_it_live() {
    let server = TestServer::start();
    let teacher = common::signed_in_instructor(&server, "ms-teach").await;
    let room: serde_json::Value = teacher
        .post(server.url("/api/instructor/classrooms"))
        .json(&serde_json::json!({"name": "Evening class"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let room_id = room["id"].as_i64().unwrap();
    let code = room["join_code"].as_str().unwrap().to_string();

    // The learner signs up with the join code.
    let learner = Browser::start().await;
    learner.client.goto(&server.url("/signup")).await.unwrap();
    fill(&learner, "input[name=join_code]", &code).await;
    fill(&learner, "input[name=username]", "nina").await;
    fill(&learner, "input[name=password]", "nina-secret-1").await;
    learner
        .client
        .find(Locator::Css("form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    learner
        .wait_for_text("[data-testid=user-name]", "nina", 15)
        .await;

    // The instructor signs in in a browser and opens the live matrix.
    let instructor = Browser::start().await;
    instructor.client.goto(&server.url("/login")).await.unwrap();
    fill(&instructor, "input[name=username]", "ms-teach").await;
    fill(&instructor, "input[name=password]", "ms-teach-password").await;
    instructor
        .client
        .find(Locator::Css("form button[type=submit]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    instructor
        .client
        .goto(&server.url(&format!("/instructor/classrooms/{room_id}/progress")))
        .await
        .unwrap();
    instructor.wait_for("tr[data-name='nina'] td.cell").await;
    instructor
        .wait_for_text("[data-live-status]", "live", 15)
        .await;
    // Marks this page load: the update must arrive without a reload.
    instructor
        .client
        .execute("window.__sameLoad = true", vec![])
        .await
        .unwrap();

    // The lesson page: type SQL in the docked console and run it (Ctrl+Enter).
    learner
        .client
        .goto(&server.url("/sections/14-postgresql-production-labs"))
        .await
        .unwrap();
    let editor = learner
        .wait_for(".con-pane .cm-content, .con-pane textarea")
        .await;
    editor.click().await.unwrap();
    editor
        .send_keys(
            "create role taskflow_app login password 'app-secret';\ncreate role taskflow_readonly nologin;",
        )
        .await
        .unwrap();
    editor
        .send_keys(&format!(
            "{}{}",
            char::from(Key::Control),
            char::from(Key::Enter)
        ))
        .await
        .unwrap();
    // The first run starts the learner's sandbox: allow for initdb.
    learner
        .wait_for_text(".con-results", "CREATE ROLE", 90)
        .await;
    // The sandbox panel learns at once that the console started the sandbox.
    learner
        .wait_for("[data-sandbox-panel] .sandbox-badge[data-state='running']")
        .await;

    // Check my work on exercise 14.B.1.
    let check = learner.wait_for("[data-check-exercise='14.B.1']").await;
    learner
        .client
        .execute(
            "arguments[0].scrollIntoView({block: 'center'})",
            vec![serde_json::to_value(&check).unwrap()],
        )
        .await
        .unwrap();
    check.click().await.unwrap();
    let result = learner
        .wait_for_text("[data-check-result='14.B.1']", "✓", 60)
        .await;
    assert!(!result.contains('✗'), "{result}");
    learner
        .wait_for_text(
            ".exercise-card[data-exercise='14.B.1'] [data-exercise-status]",
            "passed",
            10,
        )
        .await;

    // The instructor's matrix turned the cell green without a reload.
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let passed = instructor
            .client
            .find_all(Locator::Css("tr[data-name='nina'] td.cell.passed"))
            .await
            .unwrap()
            .len();
        if passed == 1 {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "the matrix never showed nina's pass"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let count = instructor
        .client
        .find(Locator::Css("tr[data-name='nina'] [data-passed-cell]"))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert_eq!(count, "1");
    let same_load = instructor
        .client
        .execute("return window.__sameLoad === true", vec![])
        .await
        .unwrap();
    assert_eq!(
        same_load,
        serde_json::json!(true),
        "updated live, not by reloading"
    );
    if let Ok(dir) = std::env::var("PGLAB_SCREENSHOTS") {
        let dir = std::path::Path::new(&dir);
        learner.screenshot(&dir.join("lesson.png")).await;
        instructor.screenshot(&dir.join("matrix.png")).await;
    }
    learner.close().await;
    instructor.close().await;
}
