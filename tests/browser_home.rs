//! The home page in a real headless Chromium: it renders, lists sections, and
//! the theme toggle switches between light and dark (with the `t` shortcut too).

mod common;

use common::TestServer;
use common::browser::Browser;
use fantoccini::Locator;

#[tokio::test]
async fn home_page_renders_and_theme_toggles() {
    let server = TestServer::start();
    let browser = Browser::start().await;
    let c = &browser.client;
    c.goto(&server.url("/")).await.unwrap();
    let title = c.title().await.unwrap();
    assert!(title.starts_with("pglab"), "{title}");
    browser.wait_for("[data-testid=sandbox-backend]").await;

    let theme = || async {
        c.execute(
            "return document.documentElement.dataset.theme || ''",
            vec![],
        )
        .await
        .unwrap()
        .as_str()
        .unwrap()
        .to_string()
    };
    let before = theme().await;
    c.find(Locator::Css("[data-theme-toggle]"))
        .await
        .unwrap()
        .click()
        .await
        .unwrap();
    let after_click = theme().await;
    assert!(["light", "dark"].contains(&after_click.as_str()));
    assert_ne!(before, after_click);
    // The `t` key toggles back when no input has focus.
    c.find(Locator::Css("body"))
        .await
        .unwrap()
        .send_keys("t")
        .await
        .unwrap();
    let after_key = theme().await;
    assert_ne!(after_click, after_key, "t toggles the theme");
    browser.close().await;
}
