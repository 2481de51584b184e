//! A real headless Chromium (Debian's chromium + chromedriver) driven over
//! WebDriver with fantoccini, for tests of what a person sees and clicks.

#![allow(dead_code, clippy::unwrap_used)]

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use fantoccini::{Client, ClientBuilder, Locator};

/// A chromedriver process and a browser session on it; both end on drop.
pub struct Browser {
    pub client: Client,
    driver: Child,
    /// chromedriver's port, for the one command fantoccini lacks (the log).
    port: u16,
    _profile: tempfile::TempDir,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl Browser {
    /// Starts chromedriver on a free loopback port and opens headless Chromium.
    pub async fn start() -> Self {
        let port = free_port();
        let driver = Command::new("chromedriver")
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver (Debian package chromium-driver) must be installed");
        let profile = tempfile::tempdir().unwrap();
        // The flags keep Chromium off the network: this machine reaches only
        // loopback, and background connections would be refused by the dozen.
        let caps = serde_json::json!({
            // The console log, read by `csp_violations`.
            "goog:loggingPrefs": { "browser": "ALL" },
            "goog:chromeOptions": {
                "binary": "/usr/bin/chromium",
                "args": [
                    "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-quic",
                    "--no-first-run", "--disable-background-networking",
                    "--disable-component-update", "--disable-sync",
                    "--disable-dev-shm-usage", "--window-size=1400,1000",
                    format!("--user-data-dir={}", profile.path().display()),
                ]
            }
        });
        let caps = caps.as_object().unwrap().clone();
        let url = format!("http://127.0.0.1:{port}");
        // Two crypto providers are compiled in (see Cargo.toml): say which.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let mut last_err = None;
        for _ in 0..100 {
            match ClientBuilder::rustls()
                .unwrap()
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(client) => {
                    return Self {
                        client,
                        driver,
                        port,
                        _profile: profile,
                    };
                }
                Err(e) => {
                    last_err = Some(e);
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
        }
        panic!("could not start a Chromium session: {last_err:?}");
    }

    /// Waits (up to 15 s) for an element matching the CSS selector.
    pub async fn wait_for(&self, css: &str) -> fantoccini::elements::Element {
        self.client
            .wait()
            .at_most(Duration::from_secs(15))
            .for_element(Locator::Css(css))
            .await
            .unwrap_or_else(|e| panic!("no element {css:?} appeared: {e}"))
    }

    /// Waits (up to `secs`) until the text of `css` contains `needle`.
    pub async fn wait_for_text(&self, css: &str, needle: &str, secs: u64) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(secs);
        loop {
            let text = match self.client.find(Locator::Css(css)).await {
                Ok(el) => el.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if text.contains(needle) {
                return text;
            }
            if std::time::Instant::now() > deadline {
                panic!("{css:?} never contained {needle:?}; last text: {text}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Runs `script` (a function body; `return` gives the value) in the page.
    pub async fn js(&self, script: &str) -> serde_json::Value {
        self.client
            .execute(script, Vec::new())
            .await
            .unwrap_or_else(|e| panic!("script failed: {e}\n{script}"))
    }

    /// Runs `script` until it returns a truthy value (up to 60 s); returns it.
    pub async fn until(&self, script: &str, what: &str) -> serde_json::Value {
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        loop {
            let v = self.js(script).await;
            if !(v.is_null() || v == false || v == "") {
                return v;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            tokio::time::sleep(Duration::from_millis(150)).await;
        }
    }

    /// Saves a PNG screenshot (for looking at a page by hand).
    pub async fn screenshot(&self, path: &std::path::Path) {
        let png = self.client.screenshot().await.unwrap();
        std::fs::write(path, png).unwrap();
    }

    /// The browser's console messages since the last call (chromedriver's
    /// log endpoint; each read empties it).
    pub async fn console_log(&self) -> Vec<String> {
        let Ok(Some(id)) = self.client.session_id().await else {
            return Vec::new();
        };
        let url = format!("http://127.0.0.1:{}/session/{id}/se/log", self.port);
        let answer: serde_json::Value = reqwest::Client::new()
            .post(url)
            .json(&serde_json::json!({"type": "browser"}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        answer["value"]
            .as_array()
            .map(|entries| {
                entries
                    .iter()
                    .filter_map(|e| e["message"].as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Runs a Chrome DevTools command through chromedriver (`goog/cdp/execute`),
    /// e.g. `Emulation.setEmulatedMedia`; returns its result.
    pub async fn cdp(&self, cmd: &str, params: serde_json::Value) -> serde_json::Value {
        let id = self.client.session_id().await.unwrap().unwrap();
        let url = format!(
            "http://127.0.0.1:{}/session/{id}/goog/cdp/execute",
            self.port
        );
        let answer: serde_json::Value = reqwest::Client::new()
            .post(url)
            .json(&serde_json::json!({"cmd": cmd, "params": params}))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        assert!(answer["value"]["error"].is_null(), "{cmd} failed: {answer}");
        answer["value"].clone()
    }

    /// Emulates a viewport of `width` x `height` CSS pixels at `scale`
    /// device pixels per CSS pixel (200 % zoom of 1280 x 720 is 640 x 360 at 2).
    pub async fn viewport(&self, width: u32, height: u32, scale: f64) {
        self.cdp(
            "Emulation.setDeviceMetricsOverride",
            serde_json::json!({
                "width": width, "height": height, "deviceScaleFactor": scale, "mobile": false
            }),
        )
        .await;
    }

    /// Emulates the user's media preferences, e.g.
    /// `[("prefers-color-scheme", "dark"), ("prefers-reduced-motion", "reduce")]`.
    pub async fn media(&self, features: &[(&str, &str)]) {
        let features: Vec<_> = features
            .iter()
            .map(|(name, value)| serde_json::json!({"name": name, "value": value}))
            .collect();
        self.cdp(
            "Emulation.setEmulatedMedia",
            serde_json::json!({ "features": features }),
        )
        .await;
    }

    /// Runs axe-core (npm devDependency, read from node_modules and injected
    /// through WebDriver: pglab itself never serves it) on the current page
    /// and returns its violations: `[{id, impact, help, nodes: [{target, html}]}]`.
    pub async fn axe(&self) -> Vec<serde_json::Value> {
        static AXE: std::sync::OnceLock<String> = std::sync::OnceLock::new();
        let source = AXE.get_or_init(|| {
            let path = concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/node_modules/axe-core/axe.min.js"
            );
            std::fs::read_to_string(path)
                .unwrap_or_else(|e| panic!("{path}: {e} (run `npm ci` in the source folder)"))
        });
        if self.js("return typeof window.axe").await != "object" {
            self.js(&format!("{source}\n;return true;")).await;
        }
        let found = self
            .js(
                "return axe.run(document, { resultTypes: ['violations'] }).then(r => r.violations.map(v => ({ \
                   id: v.id, impact: v.impact, help: v.help, \
                   nodes: v.nodes.map(n => ({ target: n.target.join(' '), html: n.html.slice(0, 200), \
                     summary: n.failureSummary })) })))",
            )
            .await;
        found.as_array().cloned().unwrap_or_default()
    }

    /// Console messages that report a Content-Security-Policy violation.
    pub async fn csp_violations(&self) -> Vec<String> {
        self.console_log()
            .await
            .into_iter()
            .filter(|m| {
                m.contains("Content Security Policy") || m.contains("Content-Security-Policy")
            })
            .collect()
    }

    /// Ends the session; fails the test if any page it showed broke the
    /// Content-Security-Policy (every page must work under it).
    pub async fn close(mut self) {
        let violations = self.csp_violations().await;
        assert!(
            violations.is_empty(),
            "pages broke the Content-Security-Policy:\n{}",
            violations.join("\n")
        );
        let _ = self.client.clone().close().await;
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.driver.kill();
        let _ = self.driver.wait();
        // Killing chromedriver (a test that panicked never closed its
        // session) leaves Chromium running: end it by its profile folder.
        let _ = Command::new("pkill")
            .arg("-f")
            .arg("--")
            .arg(format!(
                "--user-data-dir={}",
                self._profile.path().display()
            ))
            .status();
    }
}

impl Browser {
    /// Creates learner `name` with the CLI and signs in through the real form.
    pub async fn sign_in(&self, server: &super::TestServer, name: &str) {
        let out = super::pglab()
            .args([
                "user",
                "add",
                name,
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
        self.client.goto(&server.url("/login")).await.unwrap();
        self.wait_for("form.auth-form").await;
        self.js(&format!(
            "document.querySelector('input[name=username]').value = {name:?}; \
             document.querySelector('input[name=password]').value = 'browser-password-1'; \
             document.querySelector('form.auth-form').submit(); return true;"
        ))
        .await;
        self.until(
            "return !location.pathname.startsWith('/login') && document.readyState === 'complete'",
            "signed in",
        )
        .await;
    }
}
