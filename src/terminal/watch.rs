//! Instructors watching a learner's terminal, read-only.
//!
//! Every chunk a learner's terminal sends to the learner (after the rate
//! limit, so watchers get the same bounded stream) is also published on a
//! per-learner broadcast channel; an instructor's WebSocket subscribes to it.
//! Watchers see output from the moment they join, never send input, and a
//! slow watcher skips chunks rather than slowing the learner down.

use std::collections::HashMap;
use std::sync::{LazyLock, Mutex};
use std::time::Duration;

use axum::extract::ws::{Message, WebSocket};
use serde_json::json;
use tokio::sync::broadcast;

use super::{SESSION_CHECK, session_live};
use crate::sandbox::LearnerId;

/// Chunks kept for a lagging watcher before it skips.
const BACKLOG: usize = 256;

static CHANNELS: LazyLock<Mutex<HashMap<LearnerId, broadcast::Sender<Vec<u8>>>>> =
    LazyLock::new(Default::default);

/// Publishes output of `learner`'s terminal to its watchers, if any.
pub(super) fn publish(learner: LearnerId, bytes: &[u8]) {
    let channels = CHANNELS.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(tx) = channels.get(&learner)
        && tx.receiver_count() > 0
    {
        let _ = tx.send(bytes.to_vec());
    }
}

fn subscribe(learner: LearnerId) -> broadcast::Receiver<Vec<u8>> {
    let mut channels = CHANNELS.lock().unwrap_or_else(|e| e.into_inner());
    channels
        .entry(learner)
        .or_insert_with(|| broadcast::channel(BACKLOG).0)
        .subscribe()
}

/// Sends `learner`'s terminal output to an instructor's socket until the
/// instructor leaves, signs out, or the server stops. Input is ignored.
pub async fn run(
    mut socket: WebSocket,
    learner: LearnerId,
    who: &str,
    pool: sqlx::SqlitePool,
    session: i64,
    shutdown: std::pin::Pin<Box<dyn Future<Output = ()> + Send>>,
) {
    let mut rx = subscribe(learner);
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
