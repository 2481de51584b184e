//! Layout and media preferences in a real headless Chromium (issue #19): the
//! lesson, the console, a plan view and the progress matrix at a 1280 x 720
//! laptop, at 200 % zoom (640 x 360 CSS px at 2 device px each), on a
//! 1024 x 768 projector and on a 768 x 1024 tablet: no sideways page scroll,
//! the main controls on screen and not covered; on the tablet the lesson and
//! its console stack, and the docked pane is a drawer the keyboard opens and
//! closes. `prefers-reduced-motion` and `prefers-color-scheme` (emulated
//! through Chrome DevTools) are honoured.
//!
//! With `PGLAB_SCREENSHOTS=DIR` the layout test also saves the lesson and the
//! console at each size as PNGs in DIR (scripts/screenshots.sh makes the
//! ones in docs/screenshots/).

#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/sandbox.rs"]
mod support;

use std::time::Duration;

use common::browser::Browser;
use common::console::{first_error, run_t1};
use common::keys::Keys;
use common::{ServerOptions, TestServer};
use serde_json::Value;

/// One Chromium at a time: the tests of this file share two cores.
static ONE_BROWSER: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

const LESSON: &str = "/sections/14-postgresql-production-labs";

/// The four screens: name, CSS width and height, device pixels per CSS pixel.
const SIZES: [(&str, u32, u32, f64); 4] = [
    ("laptop-1280x720", 1280, 720, 1.0),
    ("zoom200-1280x720", 640, 360, 2.0),
    ("projector-1024x768", 1024, 768, 1.0),
    ("tablet-768x1024", 768, 1024, 1.0),
];

fn server() -> (TestServer, tempfile::TempDir, support::LocalClusters) {
    let (temp, data) = support::data_dir();
    let clusters = support::LocalClusters(data.clone());
    let server = TestServer::start_with(ServerOptions {
        data_dir: Some(data),
        ..ServerOptions::default()
    });
    (server, temp, clusters)
}

/// Signs the browser in through the real form (typed, then submitted).
async fn sign_in(browser: &Browser, server: &TestServer, name: &str, password: &str) {
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
        .send_keys(password)
        .await
        .unwrap();
    browser
        .js("document.querySelector('form.auth-form').submit(); return true")
        .await;
    browser
        .wait_for_text("[data-testid=user-name]", name, 15)
        .await;
}

/// Loads `path` and waits until `ready` (a CSS selector) is there.
async fn open(browser: &Browser, server: &TestServer, path: &str, ready: &str) {
    browser.client.goto(&server.url(path)).await.unwrap();
    browser.wait_for(ready).await;
    browser
        .until("return document.readyState === 'complete'", path)
        .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
}

/// What is wrong with the layout of the current page: the page scrolls
/// sideways, or one of `controls` (CSS selectors) is missing, not drawn,
/// off screen once scrolled to, or covered by something else at its centre.
async fn layout_problems(browser: &Browser, controls: &[&str]) -> Vec<String> {
    let script = format!(
        r##"
        const describe = (e) => !e ? "nothing" : e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") +
          (typeof e.className === "string" && e.className ? "." + e.className.trim().split(/\s+/).join(".") : "");
        const problems = [];
        const doc = document.documentElement;
        if (doc.scrollWidth > doc.clientWidth + 1) {{
          // The outermost elements that stick out, outside any scroll box.
          // (An absolutely positioned element is clipped only by scroll
          // boxes at or above its containing block.)
          const clipped = (e) => {{
            let abs = getComputedStyle(e).position === "absolute";
            for (let p = e.parentElement; p && p !== document.body; p = p.parentElement) {{
              const cs = getComputedStyle(p);
              if (abs) {{ if (cs.position === "static") continue; abs = false; }}
              if (cs.overflowX !== "visible") return true;
            }}
            return false;
          }};
          const wide = Array.from(document.querySelectorAll("body *"))
            .filter((e) => e.getBoundingClientRect().right > doc.clientWidth + 1 && !clipped(e))
            .slice(0, 6).map((e) => describe(e) + " (" + Math.round(e.getBoundingClientRect().right) + ")");
          problems.push("the page scrolls sideways: " + doc.scrollWidth + " > " + doc.clientWidth + " px (e.g. " + wide.join(", ") + ")");
        }}
        for (const sel of {controls}) {{
          const el = Array.from(document.querySelectorAll(sel)).find((e) => e.getClientRects().length > 0);
          if (!el) {{ problems.push(sel + ": not shown"); continue; }}
          el.scrollIntoView({{ block: "center", inline: "nearest" }});
          const r = el.getBoundingClientRect();
          if (r.width < 1 || r.height < 1) {{ problems.push(sel + ": no size"); continue; }}
          if (r.left < -1 || r.right > innerWidth + 1 || r.top < -1 || r.bottom > innerHeight + 1) {{
            problems.push(sel + ": off screen at " + [r.left, r.top, r.right, r.bottom].map(Math.round).join(","));
            continue;
          }}
          const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
          if (!hit || !(hit === el || el.contains(hit))) problems.push(sel + ": covered by " + describe(hit));
        }}
        window.scrollTo(0, 0);
        return problems;
        "##,
        controls = serde_json::to_string(controls).unwrap()
    );
    browser
        .js(&script)
        .await
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap().to_string())
        .collect()
}

/// Saves the current page as `DIR/{name}.png` when PGLAB_SCREENSHOTS is set.
async fn screenshot(browser: &Browser, name: &str) {
    let Ok(dir) = std::env::var("PGLAB_SCREENSHOTS") else {
        return;
    };
    // The layout check scrolled boxes to reach controls: show their tops.
    browser
        .js("window.scrollTo(0, 0); document.querySelectorAll('.dock-body, .con-results').forEach(e => e.scrollTop = 0); return true")
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    std::fs::create_dir_all(&dir).unwrap();
    browser
        .screenshot(&std::path::Path::new(&dir).join(format!("{name}.png")))
        .await;
}

/// Rectangles of the elements matching each selector: [left, top, right, bottom].
async fn rects(browser: &Browser, selectors: &[&str]) -> Vec<[f64; 4]> {
    let v = browser
        .js(&format!(
            "return {}.map(s => {{ const r = document.querySelector(s).getBoundingClientRect(); return [r.left, r.top, r.right, r.bottom]; }})",
            serde_json::to_string(selectors).unwrap()
        ))
        .await;
    v.as_array()
        .unwrap()
        .iter()
        .map(|r| {
            let r = r.as_array().unwrap();
            [0, 1, 2, 3].map(|i| r[i].as_f64().unwrap())
        })
        .collect()
}

#[tokio::test]
async fn layout_holds_on_a_laptop_at_200_percent_on_a_projector_and_a_tablet() {
    let _one = ONE_BROWSER.lock().await;
    let (server, _temp, _clusters) = server();
    let http = common::signed_in_learner(&server, "lia").await;
    // A plan to look at and some progress for the matrix.
    let made = run_t1(
        &http,
        &server,
        "create table t (id int primary key, v text); \
         insert into t select g, md5(g::text) from generate_series(1, 500) g; analyze t; \
         explain analyze select * from t where v like 'a%' order by v;",
    )
    .await;
    assert_eq!(first_error(&made), None, "{made}");
    let mut plan = None;
    for _ in 0..100 {
        let plans: Value = http
            .get(server.url("/api/plans"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        plan = plans
            .as_array()
            .unwrap()
            .first()
            .map(|p| p["id"].as_i64().unwrap());
        if plan.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let plan = plan.expect("the plan was stored");
    let checked = http
        .post(server.url("/api/exercises/14.B.1/check"))
        .send()
        .await
        .unwrap();
    assert_eq!(checked.status(), 200);

    let browser = Browser::start().await;
    browser.viewport(1280, 720, 1.0).await;
    sign_in(&browser, &server, "lia", "lia-password").await;
    let mut problems = Vec::new();
    let pages: [(&str, String, &str, Vec<&str>); 3] = [
        (
            "lesson",
            LESSON.to_string(),
            ".lesson-dock .con-pane .con-editor",
            vec![
                ".topnav a[href=\"/console\"]",
                "[data-theme-toggle]",
                ".lesson-body [data-run-sql]",
                ".lesson-body [data-run-file]",
                ".lesson-body [data-check-exercise]",
                "[data-dock-toggle]",
                ".lesson-dock [data-sandbox-panel] [data-action=start]",
                ".lesson-dock .con-run",
                ".lesson-dock .con-editor",
            ],
        ),
        (
            "console",
            "/console".to_string(),
            ".con-pane .con-editor",
            vec![
                ".topnav a[href=\"/terminal\"]",
                ".con-pane:nth-child(1) .con-run",
                ".con-pane:nth-child(1) .con-timeout",
                ".con-pane:nth-child(1) .con-editor",
                ".con-pane:nth-child(2) .con-run",
                ".con-pane:nth-child(2) .con-editor",
                ".con-add",
                "[data-sandbox-panel] [data-action=restart]",
            ],
        ),
        (
            "plan",
            format!("/api/plans/{plan}"),
            ".plan-tree summary[role=treeitem]",
            vec![
                "[data-plan-expand]",
                "[data-plan-collapse]",
                ".plan-tree summary[role=treeitem]",
                ".plan-tree .pn-share",
            ],
        ),
    ];
    for (name, path, ready, controls) in &pages {
        open(&browser, &server, path, ready).await;
        for (size, w, h, scale) in SIZES {
            browser.viewport(w, h, scale).await;
            tokio::time::sleep(Duration::from_millis(300)).await;
            for p in layout_problems(&browser, controls).await {
                problems.push(format!("{name} at {size}: {p}"));
            }
            if *name != "plan" {
                screenshot(&browser, &format!("{name}-{size}")).await;
            }
        }
    }

    // Stacking: on the tablet and at 200 % the console's panes are one
    // above the other, the lesson's dock spans the width under the lesson.
    for (size, w, h, scale) in [SIZES[1], SIZES[3]] {
        browser.viewport(w, h, scale).await;
        open(&browser, &server, "/console", ".con-pane .con-editor").await;
        let r = rects(
            &browser,
            &[".con-pane:nth-child(1)", ".con-pane:nth-child(2)"],
        )
        .await;
        if r[1][1] < r[0][3] - 1.0 {
            problems.push(format!("console at {size}: T2 is not below T1 ({r:?})"));
        }
        open(&browser, &server, LESSON, ".lesson-dock .con-pane").await;
        let width = browser
            .js("return document.documentElement.clientWidth")
            .await
            .as_f64()
            .unwrap();
        let r = rects(&browser, &["article.lesson", ".lesson-dock"]).await;
        if r[1][0] > 1.0 || r[1][2] < width - 1.0 {
            problems.push(format!(
                "lesson at {size}: the dock does not span the width ({:?})",
                r[1]
            ));
        }
        if r[0][2] - r[0][0] < width - 20.0 {
            problems.push(format!(
                "lesson at {size}: the lesson does not span the width ({:?})",
                r[0]
            ));
        }
    }

    // The tablet's drawer: closed and opened again with the keyboard only.
    let (_, w, h, scale) = SIZES[3];
    browser.viewport(w, h, scale).await;
    open(&browser, &server, LESSON, ".lesson-dock .con-pane").await;
    let mut keys = Keys::new(&browser);
    keys.step(false).await;
    keys.step(false).await;
    keys.expect(
        "el.matches('a.skip-link[href=\"#dock\"]')",
        "the dock's skip link",
    )
    .await;
    keys.enter().await;
    keys.step(false).await;
    keys.expect("el.matches('[data-dock-toggle]')", "the drawer's toggle")
        .await;
    let state = "const t = document.querySelector('[data-dock-toggle]'); const b = document.querySelector('.lesson-dock .dock-body'); \
                 return [t.getAttribute('aria-expanded'), b.getClientRects().length > 0, document.querySelector('.lesson-dock').getBoundingClientRect().height];";
    let open_state = browser.js(state).await;
    assert_eq!(open_state[0], "true", "{open_state}");
    assert_eq!(open_state[1], true, "{open_state}");
    keys.enter().await;
    let closed = browser.js(state).await;
    assert_eq!(closed[0], "false", "Enter closes the drawer: {closed}");
    assert_eq!(closed[1], false, "the drawer's body is hidden: {closed}");
    assert!(
        closed[2].as_f64().unwrap() < 80.0 && open_state[2].as_f64().unwrap() > 200.0,
        "closed, the drawer is a bar: {open_state} → {closed}"
    );
    keys.expect(
        "el.matches('[data-dock-toggle]')",
        "focus stays on the toggle",
    )
    .await;
    keys.space().await;
    let reopened = browser.js(state).await;
    assert_eq!(reopened[0], "true", "Space opens it again: {reopened}");
    assert_eq!(reopened[1], true, "{reopened}");

    // The instructor's matrix at each size.
    browser.viewport(1280, 720, 1.0).await;
    browser
        .js("document.querySelector('.user-signout').submit(); return true")
        .await;
    browser
        .until(
            "return document.readyState === 'complete' && !document.querySelector('[data-testid=user-name]')",
            "signed out",
        )
        .await;
    let teacher = common::teacher_of("lia");
    sign_in(&browser, &server, &teacher, &format!("{teacher}-password")).await;
    let room = browser
        .js("return fetch('/api/instructor/classrooms').then(r => r.json()).then(c => c[0].id)")
        .await;
    open(
        &browser,
        &server,
        &format!("/instructor/classrooms/{room}/progress"),
        ".matrix td.cell",
    )
    .await;
    let controls = [
        "[data-matrix-filter]",
        ".matrix .th-sort",
        ".matrix tbody th a",
        ".matrix td.cell",
        ".matrix-tools a.btn",
    ];
    for (size, w, h, scale) in SIZES {
        browser.viewport(w, h, scale).await;
        tokio::time::sleep(Duration::from_millis(300)).await;
        for p in layout_problems(&browser, &controls).await {
            problems.push(format!("matrix at {size}: {p}"));
        }
    }
    assert!(
        problems.is_empty(),
        "layout problems:\n{}",
        problems.join("\n")
    );
    browser.close().await;
}

/// JS: everything on the page that moves (a CSS animation or transition
/// longer than 1 ms), described; a probe element with a 2 s transition and
/// animation set through the CSSOM stands for any future one.
const MOVING: &str = r##"
  const probe = document.createElement("div");
  probe.id = "motion-probe";
  probe.style.transition = "opacity 2s";
  probe.style.animation = "none 2s infinite";
  probe.style.animationName = "probe-spin";
  document.body.append(probe);
  const secs = (s) => Math.max(...s.split(",").map((x) => parseFloat(x) * (x.trim().endsWith("ms") ? 0.001 : 1)));
  const out = [];
  for (const e of document.querySelectorAll("*")) {
    const cs = getComputedStyle(e);
    const name = e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + (typeof e.className === "string" && e.className ? "." + e.className.trim().split(/\s+/)[0] : "");
    if (cs.animationName !== "none" && secs(cs.animationDuration) > 0.001) out.push(name + ": animation " + cs.animationName + " " + cs.animationDuration);
    if (secs(cs.transitionDuration) > 0.001) out.push(name + ": transition " + cs.transitionProperty + " " + cs.transitionDuration);
  }
  probe.remove();
  return { moving: out, scroll: pglab.scrollBehavior(), root: getComputedStyle(document.documentElement).scrollBehavior };
"##;

/// The body's background colour and the theme the page chose.
async fn theme(browser: &Browser) -> (String, Value) {
    let v = browser
        .js("return [getComputedStyle(document.body).backgroundColor, document.documentElement.dataset.theme || null]")
        .await;
    (v[0].as_str().unwrap().to_string(), v[1].clone())
}

const DARK_BG: &str = "rgb(18, 21, 27)";
const LIGHT_BG: &str = "rgb(247, 248, 250)";

#[tokio::test]
async fn reduced_motion_and_the_system_colour_scheme_are_honoured() {
    let _one = ONE_BROWSER.lock().await;
    let (server, _temp, _clusters) = server();
    common::signed_in_learner(&server, "mo").await;
    let browser = Browser::start().await;
    browser.viewport(1280, 720, 1.0).await;

    // prefers-color-scheme, while the user has chosen no theme.
    browser.media(&[("prefers-color-scheme", "dark")]).await;
    browser.client.goto(&server.url("/")).await.unwrap();
    browser.wait_for("[data-theme-toggle]").await;
    assert_eq!(theme(&browser).await, (DARK_BG.to_string(), Value::Null));
    browser.media(&[("prefers-color-scheme", "light")]).await;
    assert_eq!(theme(&browser).await.0, LIGHT_BG, "it follows the system");
    // The user's own choice (the toggle, by keyboard) wins over the system's.
    browser.media(&[("prefers-color-scheme", "dark")]).await;
    assert_eq!(theme(&browser).await.0, DARK_BG);
    let mut keys = Keys::new(&browser);
    keys.tab_to(
        "el.matches('[data-theme-toggle]')",
        false,
        20,
        "the theme toggle",
    )
    .await;
    keys.enter().await;
    assert_eq!(
        theme(&browser).await,
        (LIGHT_BG.to_string(), Value::from("light")),
        "the toggle picked light on a dark system"
    );
    browser.client.refresh().await.unwrap();
    browser.wait_for("[data-theme-toggle]").await;
    assert_eq!(theme(&browser).await.0, LIGHT_BG, "the choice is kept");

    // prefers-reduced-motion on the console with the editor focused (its
    // cursor blinks).
    sign_in(&browser, &server, "mo", "mo-password").await;
    browser
        .media(&[("prefers-reduced-motion", "no-preference")])
        .await;
    open(&browser, &server, "/console", ".con-pane .con-editor").await;
    browser
        .js("document.querySelector('.con-pane .cm-content, .con-pane textarea').focus(); return true")
        .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let normal = browser.js(MOVING).await;
    let moving = normal["moving"].as_array().unwrap();
    assert!(
        moving
            .iter()
            .any(|m| m.as_str().unwrap().starts_with("div#motion-probe")),
        "without the preference the probe moves: {normal}"
    );
    assert_eq!(normal["scroll"], "smooth", "{normal}");
    browser.media(&[("prefers-reduced-motion", "reduce")]).await;
    let reduced = browser.js(MOVING).await;
    assert_eq!(
        reduced["moving"].as_array().unwrap().len(),
        0,
        "with prefers-reduced-motion nothing moves: {reduced}"
    );
    assert_eq!(reduced["scroll"], "auto", "{reduced}");
    assert_eq!(reduced["root"], "auto", "{reduced}");
    browser.close().await;
}
