//! Instructors watching a learner's terminal, read-only.
//!
//! Every chunk a learner's terminal sends to the learner (after the rate
//! limit, so watchers get the same bounded stream) is also published on a
//! per-learner broadcast channel; an instructor's WebSocket subscribes to it.
//! Watchers see output from the moment they join, never send input, and a
//! slow watcher skips chunks rather than slowing the learner down. The
//! learner is told who is watching (a `watchers` message on their own
//! terminal, whenever the list changes).

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use serde_json::json;
use tokio::sync::{broadcast, watch};

use super::{SESSION_CHECK, session_live};
use crate::sandbox::LearnerId;

/// Chunks kept for a lagging watcher before it skips.
const BACKLOG: usize = 256;

/// One learner's terminal output for watchers, and who is watching.
struct Channel {
    output: broadcast::Sender<Vec<u8>>,
    watchers: watch::Sender<Vec<String>>,
}

static CHANNELS: LazyLock<Mutex<HashMap<LearnerId, Channel>>> = LazyLock::new(Default::default);

/// Runs `f` on `learner`'s channel, made on first use.
fn with_channel<T>(learner: LearnerId, f: impl FnOnce(&Channel) -> T) -> T {
    let mut channels = CHANNELS.lock().unwrap_or_else(|e| e.into_inner());
    let channel = channels.entry(learner).or_insert_with(|| Channel {
        output: broadcast::channel(BACKLOG).0,
        watchers: watch::channel(Vec::new()).0,
    });
    f(channel)
}

/// Publishes output of `learner`'s terminal to its watchers, if any.
pub(super) fn publish(learner: LearnerId, bytes: &[u8]) {
    let channels = CHANNELS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(c) = channels.get(&learner)
        && c.output.receiver_count() > 0
    {
        let _ = c.output.send(bytes.to_vec());
    }
}

/// Who is watching `learner`'s terminal, for the learner's own socket.
pub(super) fn watchers(learner: LearnerId) -> watch::Receiver<Vec<String>> {
    with_channel(learner, |c| c.watchers.subscribe())
}

/// What the learner's terminal is told about its watchers.
pub(super) fn watchers_message(names: &[String]) -> String {
    let message = match names {
        [] => "no one is watching your terminal now".to_string(),
        [one] => format!("{one} (instructor) is watching your terminal, read-only"),
        many => format!(
            "{} (instructors) are watching your terminal, read-only",
            many.join(", ")
        ),
    };
    json!({"type": "watchers", "names": names, "message": message}).to_string()
}

/// An instructor on the watchers list for as long as it lives.
struct Watching {
    learner: LearnerId,
    who: String,
}

impl Watching {
    fn join(learner: LearnerId, who: &str) -> (Self, broadcast::Receiver<Vec<u8>>) {
        let rx = with_channel(learner, |c| {
            c.watchers.send_modify(|w| w.push(who.to_string()));
            c.output.subscribe()
        });
        let me = Self {
            learner,
            who: who.to_string(),
        };
        (me, rx)
    }
}

impl Drop for Watching {
    fn drop(&mut self) {
        with_channel(self.learner, |c| {
            c.watchers.send_modify(|w| {
                if let Some(i) = w.iter().position(|n| *n == self.who) {
                    w.remove(i);
                }
            })
        });
    }
}

/// Who watches whose terminal.
pub struct Viewer {
    pub learner: LearnerId,
    pub learner_name: String,
    /// Shown to the learner while watching.
    pub instructor_name: String,
}

/// Sends the learner's terminal output to an instructor's socket until the
/// instructor leaves, signs out, or the server stops. Input is ignored.
pub async fn run(
    mut socket: WebSocket,
    viewer: Viewer,
    pool: sqlx::SqlitePool,
    session: i64,
    shutdown: std::pin::Pin<Box<dyn Future<Output = ()> + Send>>,
) {
    let (_watching, mut rx) = Watching::join(viewer.learner, &viewer.instructor_name);
    let who = &viewer.learner_name;
    let mut shutdown = shutdown;
    let banner = json!({"type": "banner",
        "message": format!("watching {who}'s terminal, read-only: output from now on")});
    let _ = socket.send(Message::Text(banner.to_string().into())).await;
    let mut check = tokio::time::interval(SESSION_CHECK);
    let reason = loop {
        tokio::select! {
            chunk = rx.recv() => match chunk {
                Ok(bytes) => {
                    if socket.send(Message::Binary(bytes.into())).await.is_err() {
                        return;
                    }
                }
                Err(broadcast::error::RecvError::Lagged(_)) => continue,
                Err(broadcast::error::RecvError::Closed) => break "exit",
            },
            msg = socket.recv() => match msg {
                None | Some(Err(_)) | Some(Ok(Message::Close(_))) => return,
                // Read-only: whatever the watcher types goes nowhere.
                Some(Ok(_)) => {}
            },
            _ = check.tick() => {
                if !session_live(&pool, session).await {
                    break "signed_out";
                }
            }
            _ = &mut shutdown => break "shutdown",
        }
    };
    let closed = json!({"type": "closed", "reason": reason,
        "message": format!("stopped watching: {reason}")});
    let _ = socket.send(Message::Text(closed.to_string().into())).await;
    let _ = tokio::time::timeout(Duration::from_secs(2), socket.send(Message::Close(None))).await;
}
