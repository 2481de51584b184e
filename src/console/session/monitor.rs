//! Watching and stopping a learner's runs from the side: what a statement
//! waits for (`pg_blocking_pids`, named after the learner's own sessions) and
//! cancelling it (`pg_cancel_backend`), both on a per-learner side connection
//! that never runs learners' SQL.

use std::collections::HashMap;
use std::sync::atomic::Ordering;
use std::time::Duration;

use serde::Serialize;
use sqlx::Connection;
use sqlx::postgres::PgConnection;

use super::{ConsoleError, Consoles, Run, Session, lock};
use crate::console::result::StatementResult;
use crate::sandbox::LearnerId;

/// A session's live state as the pane polls it.
#[derive(Clone, Debug, Serialize)]
pub struct Progress {
    pub run_id: String,
    pub session: String,
    /// 0-based index and text of the statement running now.
    pub statement_index: usize,
    pub statements: usize,
    pub elapsed_ms: u64,
    /// Set when the statement waits for a lock.
    pub waiting: Option<Waiting>,
    /// While a `\watch` runs: its latest result, live.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub watch: Option<WatchProgress>,
}

/// A running `\watch`: how many runs so far and the latest one's result.
#[derive(Clone, Debug, Serialize)]
pub struct WatchProgress {
    pub runs: usize,
    pub latest: StatementResult,
}

/// A lock wait, worded for the learner.
#[derive(Clone, Debug, Serialize)]
pub struct Waiting {
    /// "waiting for lock held by T1 (pid 1234)".
    pub message: String,
    pub blocking: Vec<Blocker>,
    pub wait_event_type: Option<String>,
    pub wait_event: Option<String>,
}

/// A backend that blocks a session.
#[derive(Clone, Debug, Serialize)]
pub struct Blocker {
    pub pid: i32,
    /// The learner's own session holding that backend, if it is one.
    pub session: Option<String>,
}
impl Consoles {
    /// Runs `f` on the learner's side connection (opened on first use,
    /// reopened once if it broke).
    pub(super) async fn side<T>(
        &self,
        learner: LearnerId,
        sql: &str,
        pid: i32,
        f: impl Fn(sqlx::postgres::PgRow) -> T,
    ) -> Option<T> {
        let lc = self.learner(learner);
        let mut side = lc.side.lock().await;
        for _ in 0..2 {
            if side.is_none() {
                let opts = self.sandbox.start(learner).await.ok()?;
                let opts = opts.application_name("pglab console monitor");
                *side =
                    tokio::time::timeout(Duration::from_secs(5), PgConnection::connect_with(&opts))
                        .await
                        .ok()?
                        .ok();
            }
            let conn = side.as_mut()?;
            let q = sqlx::query(sql).bind(pid).fetch_one(conn);
            match tokio::time::timeout(Duration::from_secs(3), q).await {
                Ok(Ok(row)) => return Some(f(row)),
                _ => *side = None,
            }
        }
        None
    }

    /// What the run is doing now, with lock-wait details.
    pub async fn progress(&self, run: &Run) -> Progress {
        let current = run.current.load(Ordering::Relaxed);
        let mut progress = Progress {
            run_id: run.id.clone(),
            session: run.session.clone(),
            statement_index: current,
            statements: run.total,
            elapsed_ms: run.started.elapsed().as_millis() as u64,
            waiting: None,
            watch: lock(&run.watching)
                .as_ref()
                .map(|(runs, latest)| WatchProgress {
                    runs: *runs,
                    latest: latest.clone(),
                }),
        };
        let Some(session) = self.existing_session(run.learner, &run.session) else {
            return progress;
        };
        let pid = session.pid.load(Ordering::Relaxed);
        if pid == 0 || run.result().is_some() {
            return progress;
        }
        use sqlx::Row;
        let found = self
            .side(
                run.learner,
                "select coalesce(pg_catalog.pg_blocking_pids($1), '{}'), \
                 (select wait_event_type from pg_catalog.pg_stat_activity where pid = $1), \
                 (select wait_event from pg_catalog.pg_stat_activity where pid = $1)",
                pid,
                |row| {
                    let pids: Vec<i32> = row.try_get(0).unwrap_or_default();
                    let wtype: Option<String> = row.try_get(1).ok().flatten();
                    let wevent: Option<String> = row.try_get(2).ok().flatten();
                    (pids, wtype, wevent)
                },
            )
            .await;
        let Some((pids, wait_event_type, wait_event)) = found else {
            return progress;
        };
        if pids.is_empty() {
            return progress;
        }
        let names = self.session_pids(run.learner);
        let blocking: Vec<Blocker> = pids
            .iter()
            .map(|p| Blocker {
                pid: *p,
                session: names.get(p).cloned(),
            })
            .collect();
        let who = blocking
            .iter()
            .map(|b| match &b.session {
                Some(s) => format!("{s} (pid {})", b.pid),
                None => format!("another connection (pid {})", b.pid),
            })
            .collect::<Vec<_>>()
            .join(", ");
        progress.waiting = Some(Waiting {
            message: format!("waiting for lock held by {who}"),
            blocking,
            wait_event_type,
            wait_event,
        });
        progress
    }

    fn session_pids(&self, learner: LearnerId) -> HashMap<i32, String> {
        let Some(lc) = lock(&self.learners).get(&learner).cloned() else {
            return HashMap::new();
        };
        lock(&lc.sessions)
            .values()
            .map(|s| (s.pid.load(Ordering::Relaxed), s.name.clone()))
            .filter(|(pid, _)| *pid != 0)
            .collect()
    }

    /// Cancels the statement running in session `name`; returns whether one
    /// was running. The session stays usable.
    pub async fn cancel(&self, learner: LearnerId, name: &str) -> Result<bool, ConsoleError> {
        let session = self
            .existing_session(learner, name)
            .ok_or_else(|| ConsoleError::NotFound(format!("no session {name}")))?;
        let Some(run) = lock(&session.running).clone() else {
            return Ok(false);
        };
        run.cancel_requested.store(true, Ordering::Relaxed);
        let pid = session.pid.load(Ordering::Relaxed);
        if pid == 0 {
            return Ok(true);
        }
        use sqlx::Row;
        let ok = self
            .side(
                learner,
                "select pg_catalog.pg_cancel_backend($1)",
                pid,
                |row| row.try_get::<bool, _>(0).unwrap_or(false),
            )
            .await;
        Ok(ok.unwrap_or(false) || run.result().is_some())
    }

    pub(super) async fn cancel_pid(&self, learner: LearnerId, session: &Session) -> Option<bool> {
        lock(&session.running).as_ref()?;
        let pid = session.pid.load(Ordering::Relaxed);
        use sqlx::Row;
        self.side(
            learner,
            "select pg_catalog.pg_cancel_backend($1)",
            pid,
            |row| row.try_get::<bool, _>(0).unwrap_or(false),
        )
        .await
    }
}
