//! Live progress of sandbox starts, one broadcast channel per learner.
//!
//! Backends call [`ProgressHub::emit`] at each step of a start ("creating
//! volume", "initdb", "waiting for healthy", "ready"); the web layer
//! subscribes and streams the events to the learner's browser over SSE.
//! Nobody listening is normal: events are then simply dropped.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Instant;

use serde::Serialize;
use tokio::sync::broadcast;

use super::LearnerId;

/// One step of a start (or stop, restart, reset), as the browser shows it.
#[derive(Clone, Debug, Serialize)]
pub struct ProgressEvent {
    /// Short machine-friendly step: `pulling image`, `creating volume`,
    /// `creating container`, `initdb`, `starting`, `waiting for healthy`,
    /// `creating database`, `queued` (Docker: a start slot), `in line`
    /// (waiting for a place in a full classroom), `ready`,
    /// `failed`, `left` (left the queue), `stopped`.
    pub step: String,
    /// A sentence for the learner.
    pub message: String,
    /// Milliseconds since the operation began.
    pub elapsed_ms: u64,
    /// The operation ended (ready, stopped or failed).
    pub done: bool,
    /// Set when the operation failed.
    pub error: Option<String>,
    /// The learner's place in the admission queue (step `in line`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub queue_position: Option<usize>,
}

/// Per-learner broadcast channels of [`ProgressEvent`]s.
#[derive(Default)]
pub struct ProgressHub {
    /// Woken after every successful start, so the reaper enforces the cap on
    /// running sandboxes at once rather than at its next tick.
    pub started: tokio::sync::Notify,
    channels: Mutex<HashMap<LearnerId, broadcast::Sender<ProgressEvent>>>,
}

impl ProgressHub {
    /// Receives the learner's future events.
    pub fn subscribe(&self, learner: LearnerId) -> broadcast::Receiver<ProgressEvent> {
        let mut map = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(learner)
            .or_insert_with(|| broadcast::channel(64).0)
            .subscribe()
    }

    /// How many listen to the learner's events now (their open pages'
    /// progress streams, a start request waiting for its answer).
    pub fn listeners(&self, learner: LearnerId) -> usize {
        let map = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        map.get(&learner).map_or(0, |tx| tx.receiver_count())
    }

    /// Starts reporting one operation of the learner's sandbox.
    pub fn reporter(&self, learner: LearnerId) -> Reporter<'_> {
        Reporter {
            hub: self,
            learner,
            began: Instant::now(),
        }
    }

    fn send(&self, learner: LearnerId, event: ProgressEvent) {
        tracing::debug!(learner, step = %event.step, elapsed_ms = event.elapsed_ms, "sandbox progress");
        let mut map = self.channels.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(tx) = map.get(&learner)
            && tx.send(event).is_err()
        {
            // Nobody listens any more: forget the channel.
            map.remove(&learner);
        }
    }
}

/// Reports the steps of one operation, timing them from its creation.
pub struct Reporter<'a> {
    hub: &'a ProgressHub,
    learner: LearnerId,
    began: Instant,
}

impl Reporter<'_> {
    /// A step in progress.
    pub fn step(&self, step: &str, message: impl Into<String>) {
        self.send(step, message.into(), false, None);
    }

    /// The classroom is full: the learner waits at `position` in line.
    pub fn in_line(&self, position: usize) {
        self.hub.send(
            self.learner,
            ProgressEvent {
                step: "in line".into(),
                message: super::admission::full_message(position),
                elapsed_ms: self.elapsed_ms(),
                done: false,
                error: None,
                queue_position: Some(position),
            },
        );
    }

    /// The operation ended well.
    pub fn done(&self, step: &str, message: impl Into<String>) {
        self.send(step, message.into(), true, None);
    }

    /// The operation failed.
    pub fn failed(&self, error: &str) {
        self.send(
            "failed",
            "the sandbox could not start".into(),
            true,
            Some(error.to_string()),
        );
    }

    /// Milliseconds since the operation began.
    pub fn elapsed_ms(&self) -> u64 {
        self.began.elapsed().as_millis() as u64
    }

    fn send(&self, step: &str, message: String, done: bool, error: Option<String>) {
        self.hub.send(
            self.learner,
            ProgressEvent {
                step: step.to_string(),
                message,
                elapsed_ms: self.elapsed_ms(),
                done,
                error,
                queue_position: None,
            },
        );
    }
}

/// Ends a start-like operation of any backend: the final progress event, and
/// the `failed` state in the records when it did not work.
pub async fn finish_start(
    hub: &ProgressHub,
    records: &super::records::Records,
    learner: LearnerId,
    rep: &Reporter<'_>,
    result: Result<sqlx::postgres::PgConnectOptions, super::SandboxError>,
) -> Result<sqlx::postgres::PgConnectOptions, super::SandboxError> {
    match &result {
        Ok(_) => {
            rep.done("ready", format!("ready in {} ms", rep.elapsed_ms()));
            hub.started.notify_one();
        }
        Err(super::SandboxError::Left(why)) => {
            rep.done("left", why.clone());
        }
        Err(err) => {
            rep.failed(&err.to_string());
            let _ = records
                .set_state(learner, super::SandboxState::Failed)
                .await;
        }
    }
    result
}
