//! Progress: what each learner did on each exercise, and what an instructor
//! sees of it.
//!
//! - [`evidence`] owns the short trail of evidence kept per learner (its row
//!   type and the queries that read it);
//! - [`record`] writes activity (a statement run on an exercise's page) and
//!   check results through the store's writer, and reads progress rows;
//! - [`stuck`] decides who looks stuck (the same error three times, or active
//!   for 20 minutes without passing anything), from evidence alone;
//! - [`catalog`] lists the course's exercises (the matrix columns) and
//!   finds one exercise's checks;
//! - [`matrix`] builds the classroom's learners × exercises matrix and its CSV.
//!
//! Every change is also announced on the [`ProgressHub`], so the instructor's
//! page updates live.

pub mod catalog;
pub mod evidence;
pub mod matrix;
pub mod record;
pub mod stuck;

use serde::Serialize;
use tokio::sync::broadcast;

/// Where a learner stands on one exercise.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    NotStarted,
    InProgress,
    Passed,
}

impl Status {
    /// The stored form (`exercise_progress.status`); `NotStarted` has no row.
    pub fn parse(stored: &str) -> Self {
        match stored {
            "passed" => Self::Passed,
            "in_progress" => Self::InProgress,
            _ => Self::NotStarted,
        }
    }

    /// The CSS class of cells and pills: `not-started`, `in-progress`, `passed`.
    pub fn css(self) -> &'static str {
        match self {
            Self::NotStarted => "not-started",
            Self::InProgress => "in-progress",
            Self::Passed => "passed",
        }
    }

    /// The word shown in CSV exports and badges.
    pub fn label(self) -> &'static str {
        match self {
            Self::NotStarted => "not started",
            Self::InProgress => "in progress",
            Self::Passed => "passed",
        }
    }
}

/// A change of one learner's progress, for live views.
#[derive(Clone, Debug, Serialize)]
pub struct ProgressEvent {
    pub user_id: i64,
    pub exercise_id: String,
    pub status: Status,
}

/// Broadcasts progress changes to whoever watches (instructors' pages).
#[derive(Clone, Debug)]
pub struct ProgressHub {
    tx: broadcast::Sender<ProgressEvent>,
}

impl Default for ProgressHub {
    fn default() -> Self {
        let (tx, _) = broadcast::channel(1024);
        Self { tx }
    }
}

impl ProgressHub {
    /// Announces a change; nobody listening is fine.
    pub fn publish(&self, event: ProgressEvent) {
        let _ = self.tx.send(event);
    }

    /// A receiver of every change from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<ProgressEvent> {
        self.tx.subscribe()
    }
}

/// Seconds since the Unix epoch.
pub fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
