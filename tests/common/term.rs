//! Helpers of the terminal and dump tests (included with `#[path]` beside
//! `mod common`): a learner's raw cookies (a WebSocket handshake carries
//! them by hand), a terminal client over tokio-tungstenite, and a guard that
//! removes the Docker containers and volumes of a server's instance.

#![allow(dead_code, clippy::unwrap_used)]

use std::time::{Duration, Instant};

use futures::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::common::TestServer;

/// The `Cookie` header value and CSRF token of a fresh sign-in of `name`
/// (password `name-password`, as `common::signed_in_learner` makes it).
pub async fn cookies(server: &TestServer, name: &str) -> (String, String) {
    let http = reqwest::Client::new();
    let res = http
        .post(server.url("/api/login"))
        .json(&json!({"username": name, "password": format!("{name}-password")}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "login of {name}");
    let mut pairs = Vec::new();
    let mut csrf = String::new();
    for v in res.headers().get_all(reqwest::header::SET_COOKIE) {
        let pair = v.to_str().unwrap().split(';').next().unwrap().to_string();
        if let Some(c) = pair.strip_prefix("pglab_csrf=") {
            csrf = c.to_string();
        }
        pairs.push(pair);
    }
    assert!(!csrf.is_empty(), "no CSRF cookie at login");
    (pairs.join("; "), csrf)
}

/// A terminal WebSocket.
pub struct Term {
    ws: tokio_tungstenite::WebSocketStream<
        tokio_tungstenite::MaybeTlsStream<tokio::net::TcpStream>,
    >,
    /// Everything the terminal printed so far (lossy UTF-8).
    pub screen: String,
    /// Control messages received.
    pub control: Vec<Value>,
    pub closed: bool,
}

/// Opens `/api/sandbox/terminal`; `Err(status)` when the handshake is refused.
pub async fn open(
    server: &TestServer,
    cookie: Option<&str>,
    origin: Option<&str>,
    cols: u16,
    rows: u16,
) -> Result<Term, u16> {
    let path = format!("/api/sandbox/terminal?cols={cols}&rows={rows}");
    open_path(server, &path, cookie, origin).await
}

/// Opens the WebSocket at `path`; `Err(status)` when refused.
pub async fn open_path(
    server: &TestServer,
    path: &str,
    cookie: Option<&str>,
    origin: Option<&str>,
) -> Result<Term, u16> {
    let url = format!("{}{path}", server.base.replacen("http://", "ws://", 1));
    let mut req = url.into_client_request().unwrap();
    if let Some(c) = cookie {
        req.headers_mut().insert("cookie", c.parse().unwrap());
    }
    if let Some(o) = origin {
        req.headers_mut().insert("origin", o.parse().unwrap());
    }
    match tokio_tungstenite::connect_async(req).await {
        Ok((ws, _)) => Ok(Term {
            ws,
            screen: String::new(),
            control: Vec::new(),
            closed: false,
        }),
        Err(tokio_tungstenite::tungstenite::Error::Http(res)) => Err(res.status().as_u16()),
        Err(e) => panic!("terminal handshake failed: {e}"),
    }
}

impl Term {
    /// Types `line` and Enter.
    pub async fn line(&mut self, line: &str) {
        let bytes = format!("{line}\r").into_bytes();
        self.ws.send(Message::Binary(bytes.into())).await.unwrap();
    }

    pub async fn send_bytes(&mut self, bytes: &[u8]) {
        self.ws
            .send(Message::Binary(bytes.to_vec().into()))
            .await
            .unwrap();
    }

    pub async fn resize(&mut self, cols: u16, rows: u16) {
        let msg = json!({"type": "resize", "cols": cols, "rows": rows}).to_string();
        self.ws.send(Message::Text(msg.into())).await.unwrap();
    }

    /// Reads one frame (or nothing within `wait`); returns the bytes of a
    /// binary frame.
    pub async fn read_once(&mut self, wait: Duration) -> Option<usize> {
        match tokio::time::timeout(wait, self.ws.next()).await {
            Err(_) => Some(0),
            Ok(None) | Ok(Some(Err(_))) | Ok(Some(Ok(Message::Close(_)))) => {
                self.closed = true;
                None
            }
            Ok(Some(Ok(Message::Binary(b)))) => {
                self.screen.push_str(&String::from_utf8_lossy(&b));
                Some(b.len())
            }
            Ok(Some(Ok(Message::Text(t)))) => {
                self.control.push(serde_json::from_str(&t).unwrap());
                Some(0)
            }
            Ok(Some(Ok(_))) => Some(0),
        }
    }

    /// Reads until the screen (from `from` on) contains `needle`; panics
    /// after `secs` with what was seen.
    pub async fn expect(&mut self, from: usize, needle: &str, secs: u64) -> String {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(at) = self.screen.get(from..).and_then(|s| s.find(needle)) {
                return self.screen[from..from + at + needle.len()].to_string();
            }
            assert!(
                Instant::now() < deadline && !self.closed,
                "waited for {needle:?}; the terminal showed:\n{}\ncontrol: {:?}",
                &self.screen[from.min(self.screen.len())..],
                self.control
            );
            self.read_once(Duration::from_millis(200)).await;
        }
    }

    /// Runs a shell command and waits for its `__END_<code>` marker;
    /// returns the output between the command echo and the marker.
    pub async fn run(&mut self, cmd: &str, secs: u64) -> String {
        let from = self.screen.len();
        // The echo of the typed line shows `__END_$?`; only the real
        // output has the status digits.
        self.line(&format!("{cmd}; echo __END_$?")).await;
        let seen = self.expect(from, "__END_0", secs).await;
        strip_ansi(&seen)
    }

    /// Waits for the server's `closed` control message; returns its reason.
    pub async fn closed_reason(&mut self, secs: u64) -> String {
        let closed = self.wait_control(secs, |c| c["type"] == "closed").await;
        closed["reason"].as_str().unwrap().to_string()
    }

    /// Waits for a control message (received so far or from now on) that
    /// `pred` accepts; panics after `secs`.
    pub async fn wait_control(
        &mut self,
        secs: u64,
        pred: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let deadline = Instant::now() + Duration::from_secs(secs);
        loop {
            if let Some(c) = self.control.iter().find(|c| pred(c)) {
                return c.clone();
            }
            assert!(
                Instant::now() < deadline && !self.closed,
                "no such control message within {secs} s; control: {:?}",
                self.control
            );
            self.read_once(Duration::from_millis(200)).await;
        }
    }

    pub async fn close(mut self) {
        let _ = self.ws.close(None).await;
    }
}

/// The text without terminal escape sequences and carriage returns.
pub fn strip_ansi(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut chars = s.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\x1b' => match chars.next() {
                Some('[') => {
                    for c in chars.by_ref() {
                        if ('@'..='~').contains(&c) {
                            break;
                        }
                    }
                }
                Some(']') => {
                    for c in chars.by_ref() {
                        if c == '\x07' {
                            break;
                        }
                    }
                }
                _ => {}
            },
            '\r' => {}
            c => out.push(c),
        }
    }
    out
}

/// The instance id of a server's store.
pub async fn instance_of(server: &TestServer) -> String {
    let store = pglab::store::Store::open(&server.data_dir.join("pglab.db"))
        .await
        .unwrap();
    store.instance_id().await.unwrap()
}

pub use crate::common::docker::DockerCleanup;

pub use crate::common::docker::image;

/// A server on the Docker backend (no warm pool) with `extra` flags, after
/// the guard that removes its containers (bind them in this order, so that
/// the server stops first).
pub async fn docker_server(
    data: std::path::PathBuf,
    extra: &[&str],
) -> (DockerCleanup, TestServer) {
    // The store (and its instance id) exists before the server starts, so
    // the guard is armed even if the server fails.
    let store = pglab::store::Store::open(&data.join("pglab.db"))
        .await
        .unwrap();
    let cleanup = DockerCleanup(store.instance_id().await.unwrap());
    drop(store);
    let server = TestServer::start_with(crate::common::ServerOptions {
        data_dir: Some(data),
        ..crate::common::docker::server_options(&image(), extra)
    });
    (cleanup, server)
}
