//! The sandbox terminal between a browser WebSocket and a [`Terminal`] the
//! backend opened: bytes both ways, resizes, and the limits.
//!
//! Protocol (also in docs/api.md): binary frames carry terminal bytes both
//! ways; text frames carry JSON control messages. From the browser:
//! `{"type":"resize","cols":C,"rows":R}`. From the server: `{"type":"banner",
//! "message":..}` first, `{"type":"watchers","names":[..],"message":..}`
//! whenever who watches (instructors, [`watch`]) changes, and
//! `{"type":"closed","reason":R,"message":..}` last, where R is `exit`,
//! `idle`, `signed_out`, `error` or `shutdown`.
//!
//! Limits: output is rate-limited with a token bucket (a second's worth of
//! burst); the limiter stops *reading* the program's output, so a flood
//! (`cat /dev/urandom`) blocks the program on its full TTY rather than
//! filling server memory. A terminal closes after `--terminal-idle-secs`
//! without a keystroke, when its sign-in session ends (checked every few
//! seconds), and when the server stops. Each learner has at most
//! `--terminal-max` terminals open. Instructors may watch one read-only
//! ([`watch`]).

pub mod watch;

use std::collections::HashMap;
use std::sync::{Arc, LazyLock, Mutex};
use std::time::{Duration, Instant};

use axum::extract::ws::{CloseFrame, Message, WebSocket};
use futures::StreamExt;
use serde::Deserialize;
use serde_json::json;
use sqlx::SqlitePool;
use tokio::io::AsyncWriteExt;

use crate::sandbox::{LearnerId, Provisioner, Terminal, TerminalSize};

/// Settings of the sandbox terminal (flags of `pglab serve`).
#[derive(Clone, Debug, clap::Args)]
pub struct TerminalConfig {
    /// Seconds without a keystroke after which a sandbox terminal closes.
    #[arg(
        long = "terminal-idle-secs",
        env = "PGLAB_TERMINAL_IDLE_SECS",
        default_value_t = 900
    )]
    pub idle_secs: u64,
    /// Most bytes per second one terminal sends to the browser.
    #[arg(
        long = "terminal-output-rate",
        env = "PGLAB_TERMINAL_OUTPUT_RATE",
        default_value_t = 256 * 1024
    )]
    pub output_bytes_per_sec: u64,
    /// Terminals one learner may have open at once.
    #[arg(long = "terminal-max", env = "PGLAB_TERMINAL_MAX", default_value_t = 3)]
    pub max_per_learner: usize,
}

/// How often the sign-in session is looked up again.
const SESSION_CHECK: Duration = Duration::from_secs(2);
/// How often a terminal in use marks its sandbox used.
const KEEPALIVE: Duration = Duration::from_secs(60);
/// Least time between two resizes passed on to the backend (a burst of
/// them while a window is dragged becomes one, with the latest size).
const RESIZE_GAP: Duration = Duration::from_millis(100);
/// Largest input frame (a paste) accepted from the browser.
pub const MAX_INPUT_FRAME: usize = 64 * 1024;

/// Open terminals per learner.
static OPEN: LazyLock<Mutex<HashMap<LearnerId, usize>>> = LazyLock::new(Default::default);

/// A learner's slot among their open terminals; freed on drop.
pub struct Slot(LearnerId);

impl Slot {
    /// A slot, or `None` when the learner has `max` terminals open.
    pub fn take(learner: LearnerId, max: usize) -> Option<Self> {
        let mut open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
        let n = open.entry(learner).or_default();
        if *n >= max {
            return None;
        }
        *n += 1;
        Some(Self(learner))
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        let mut open = OPEN.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = open.get_mut(&self.0) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                open.remove(&self.0);
            }
        }
    }
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
enum Control {
    Resize { cols: u32, rows: u32 },
}

/// Why a terminal ended.
#[derive(Debug, PartialEq, Eq)]
pub enum Ended {
    Exit,
    Idle,
    SignedOut,
    ClientGone,
    Shutdown,
    Error(String),
}

/// A token bucket over output bytes.
struct Bucket {
    rate: f64,
    allowance: f64,
    at: Instant,
}

impl Bucket {
    fn new(rate: u64) -> Self {
        let rate = rate.max(1024) as f64;
        Self {
            rate,
            allowance: rate,
            at: Instant::now(),
        }
    }

    /// Spends `n` bytes; answers how long to wait before reading more.
    fn spend(&mut self, n: usize) -> Option<Duration> {
        let now = Instant::now();
        let refill = now.duration_since(self.at).as_secs_f64() * self.rate;
        self.allowance = (self.allowance + refill).min(self.rate) - n as f64;
        self.at = now;
        (self.allowance < 0.0).then(|| Duration::from_secs_f64(-self.allowance / self.rate))
    }
}

/// Whether session `id` is still signed in.
async fn session_live(pool: &SqlitePool, id: i64) -> bool {
    let now = crate::sandbox::unix_now();
    // A store error counts as live: a busy store must not cut terminals.
    sqlx::query_scalar::<_, i64>("select count(*) from sessions where id = ? and expires_at > ?")
        .bind(id)
        .bind(now)
        .fetch_one(pool)
        .await
        .map(|n| n > 0)
        .unwrap_or(true)
}

/// What `run` needs besides the socket and the terminal.
pub struct Watch {
    /// Whose terminal it is (for instructors watching).
    pub learner: LearnerId,
    /// The backend, to mark the sandbox used while the learner types (the
    /// idle reaper would otherwise stop it under an open terminal).
    pub sandbox: Arc<dyn Provisioner>,
    pub config: TerminalConfig,
    pub pool: SqlitePool,
    pub session: i64,
    pub shutdown: std::pin::Pin<Box<dyn Future<Output = ()> + Send>>,
}

/// Moves bytes between `socket` and `term` until one side ends or a limit
/// closes it; tells the browser why, then ends the program.
pub async fn run(mut socket: WebSocket, mut term: Terminal, mut watch: Watch) -> Ended {
    let idle = Duration::from_secs(watch.config.idle_secs.max(1));
    let banner = json!({"type": "banner", "message": term.banner}).to_string();
    let _ = socket.send(Message::Text(banner.into())).await;
    let mut bucket = Bucket::new(watch.config.output_bytes_per_sec);
    let mut throttle: Option<tokio::time::Instant> = None;
    let mut last_input = tokio::time::Instant::now();
    let mut check = tokio::time::interval(SESSION_CHECK);
    let mut resize: Option<TerminalSize> = None;
    let mut last_resize = tokio::time::Instant::now() - RESIZE_GAP;
    let mut last_keepalive = tokio::time::Instant::now();
    // Who is watching: said at once when someone already is, then on change.
    let mut watchers = watch::watchers(watch.learner);
    let mut watchers_open = true;
    if !watchers.borrow_and_update().is_empty() {
        let msg = watch::watchers_message(&watchers.borrow());
        let _ = socket.send(Message::Text(msg.into())).await;
    }
    let ended = loop {
        let wait_until = throttle.unwrap_or_else(tokio::time::Instant::now);
        tokio::select! {
            msg = socket.recv() => match msg {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => break Ended::ClientGone,
                Some(Ok(Message::Binary(bytes))) => {
                    last_input = tokio::time::Instant::now();
                    if term.input.write_all(&bytes).await.is_err()
                        || term.input.flush().await.is_err()
                    {
                        break Ended::Exit;
                    }
                }
                Some(Ok(Message::Text(text))) => {
                    if let Ok(Control::Resize { cols, rows }) = serde_json::from_str(&text) {
                        resize = Some(TerminalSize::clamped(cols, rows));
                    }
                }
                Some(Ok(_)) => {}
            },
            chunk = term.output.next(), if throttle.is_none() => match chunk {
                None => break Ended::Exit,
                Some(Err(e)) => break Ended::Error(e.to_string()),
                Some(Ok(bytes)) => {
                    let n = bytes.len();
                    watch::publish(watch.learner, &bytes);
                    if socket.send(Message::Binary(bytes.into())).await.is_err() {
                        break Ended::ClientGone;
                    }
                    throttle = bucket.spend(n).map(|d| tokio::time::Instant::now() + d);
                }
            },
            _ = tokio::time::sleep_until(wait_until), if throttle.is_some() => throttle = None,
            _ = tokio::time::sleep_until(last_resize + RESIZE_GAP), if resize.is_some() => {
                last_resize = tokio::time::Instant::now();
                if let Some(size) = resize.take()
                    && let Err(e) = term.control.resize(size).await
                {
                    tracing::debug!("terminal resize: {e}");
                }
            }
            _ = tokio::time::sleep_until(last_input + idle) => break Ended::Idle,
            _ = check.tick() => {
                if !session_live(&watch.pool, watch.session).await {
                    break Ended::SignedOut;
                }
                let now = tokio::time::Instant::now();
                if now - last_keepalive >= KEEPALIVE && last_input > last_keepalive {
                    last_keepalive = now;
                    // `start` of a running sandbox only records the use.
                    let (sandbox, learner) = (watch.sandbox.clone(), watch.learner);
                    tokio::spawn(async move {
                        if let Err(e) = sandbox.start(learner).await {
                            tracing::debug!("terminal keep-alive: {e}");
                        }
                    });
                }
            }
            changed = watchers.changed(), if watchers_open => {
                if changed.is_err() {
                    watchers_open = false;
                    continue;
                }
                let msg = watch::watchers_message(&watchers.borrow_and_update());
                if socket.send(Message::Text(msg.into())).await.is_err() {
                    break Ended::ClientGone;
                }
            }
            _ = &mut watch.shutdown => break Ended::Shutdown,
        }
    };
    term.control.close().await;
    if ended == Ended::ClientGone {
        return ended;
    }
    let (reason, message) = match &ended {
        Ended::Exit | Ended::ClientGone => (
            "exit",
            "terminal closed: the shell ended — reconnect".to_string(),
        ),
        Ended::Idle => (
            "idle",
            format!(
                "terminal closed: idle for {} — reconnect",
                human_duration(watch.config.idle_secs)
            ),
        ),
        Ended::SignedOut => ("signed_out", "terminal closed: you signed out".to_string()),
        Ended::Shutdown => (
            "shutdown",
            "terminal closed: the server is restarting — reconnect".to_string(),
        ),
        Ended::Error(e) => ("error", format!("terminal closed: {e}")),
    };
    let closed = json!({"type": "closed", "reason": reason, "message": message}).to_string();
    let _ = socket.send(Message::Text(closed.into())).await;
    let _ = socket
        .send(Message::Close(Some(CloseFrame {
            code: 1000,
            reason: reason.into(),
        })))
        .await;
    ended
}

/// "15 min", "90 s", "2 h".
fn human_duration(secs: u64) -> String {
    match secs {
        s if s >= 3600 && s.is_multiple_of(3600) => format!("{} h", s / 3600),
        s if s >= 60 && s.is_multiple_of(60) => format!("{} min", s / 60),
        s => format!("{s} s"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_throttles_past_a_second_of_burst() {
        let mut b = Bucket::new(10_000);
        assert_eq!(b.spend(5_000), None);
        let wait = b.spend(15_000).expect("over the allowance");
        assert!(wait >= Duration::from_millis(900) && wait <= Duration::from_millis(1000));
    }

    #[test]
    fn slots_are_capped_and_freed() {
        let a = Slot::take(-7, 2).expect("first");
        let _b = Slot::take(-7, 2).expect("second");
        assert!(Slot::take(-7, 2).is_none());
        drop(a);
        assert!(Slot::take(-7, 2).is_some());
    }

    #[test]
    fn durations_read_well() {
        assert_eq!(human_duration(900), "15 min");
        assert_eq!(human_duration(45), "45 s");
        assert_eq!(human_duration(7200), "2 h");
    }
}
