//! What a console run leaves in the store, and when the learner may be told
//! it is saved.
//!
//! Each run gets a recorder task (it outlives the request, so a learner who
//! closes the tab still leaves their evidence): when the run ends, it writes
//! the script to the learner's [`history`](super::history), each
//! statement's evidence and progress (`progress::record`) and its EXPLAIN
//! plans (`explain::store`) as one job of the store's writer, which commits
//! jobs in batches. A run still going after [`QUICK_RUN`] gets its history
//! entry written at once (the answer saying "running" needs it) and the
//! rest when it ends. The [`Receipt`] says what has committed: `POST /api/sql`
//! and `GET /api/runs/{id}` wait on it so that an answer saying `"saved":
//! true` is only sent once what it stands for is on disk, and a learner who
//! runs a query and presses "Check my work" finds it in their evidence.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::watch;

use super::history::{self, NewEntry};
use super::result::RunResult;
use super::session::Run;
use crate::explain::store::NewPlan;
use crate::progress::ProgressHub;
use crate::progress::record::{
    Statement, StatementRun, add_statements, apply_statement, fits_script,
};
use crate::progress::{ProgressEvent, Status};
use crate::sandbox::LearnerId;
use crate::store::Store;
use crate::store::writer::{Script, Value};

/// A run that ends within this is recorded in one store job (history,
/// evidence and plans together); a longer one gets its history entry first.
const QUICK_RUN: Duration = Duration::from_millis(20);
/// Longest an answer waits for the store before saying `"saved": false`.
const SAVE_WAIT: Duration = Duration::from_secs(10);
/// Receipts of runs whose answer was never delivered are dropped after this.
const RECEIPT_RETENTION: Duration = Duration::from_secs(15 * 60);
/// Receipts kept before old ones are swept.
const RECEIPTS_SWEPT_PAST: usize = 4096;

/// What of a run has been committed so far.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
struct Committed {
    /// The history entry: `Some(saved)` once its write ended.
    history: Option<bool>,
    /// Everything (history, evidence, plans): `Some(saved)` once the run
    /// ended and its writes ended.
    all: Option<bool>,
}

/// Tells when a run's records have committed.
#[derive(Clone, Debug)]
pub struct Receipt(watch::Receiver<Committed>);

impl Receipt {
    /// Waits until the history entry is written; whether it was saved.
    pub async fn history(&self) -> bool {
        self.wait(|c| c.history).await
    }

    /// Waits until everything of the finished run is written; whether all
    /// of it was saved.
    pub async fn all(&self) -> bool {
        self.wait(|c| c.all).await
    }

    async fn wait(&self, field: impl Fn(&Committed) -> Option<bool>) -> bool {
        let mut rx = self.0.clone();
        match tokio::time::timeout(SAVE_WAIT, rx.wait_for(|c| field(c).is_some())).await {
            Ok(Ok(c)) => field(&c).unwrap_or(false),
            _ => false,
        }
    }
}

/// Starts runs' recorders and keeps their receipts until delivered.
pub struct Records {
    store: Store,
    hub: ProgressHub,
    receipts: Mutex<HashMap<String, (Receipt, Instant)>>,
}

/// A run to record: whose, where, what.
pub struct RunInfo<'a> {
    pub learner: LearnerId,
    pub session: &'a str,
    pub script: &'a str,
    pub exercise: Option<&'a str>,
}

impl Records {
    pub fn new(store: Store, hub: ProgressHub) -> Arc<Self> {
        Arc::new(Self {
            store,
            hub,
            receipts: Mutex::new(HashMap::new()),
        })
    }

    /// Starts recording `run`; its receipt is kept for [`Records::receipt`]
    /// until [`Records::delivered`].
    pub fn start(&self, run: &Arc<Run>, info: RunInfo<'_>) {
        let (tx, rx) = watch::channel(Committed::default());
        let receipt = Receipt(rx);
        {
            let mut receipts = self.receipts.lock().unwrap_or_else(|p| p.into_inner());
            if receipts.len() >= RECEIPTS_SWEPT_PAST {
                receipts.retain(|_, (_, at)| at.elapsed() < RECEIPT_RETENTION);
            }
            receipts.insert(run.id.clone(), (receipt, Instant::now()));
        }
        let entry = NewEntry::new(info.learner, info.session, info.script, info.exercise);
        let (store, hub, run) = (self.store.clone(), self.hub.clone(), run.clone());
        let (learner, exercise) = (info.learner, info.exercise.map(String::from));
        tokio::spawn(async move {
            // Most runs end within a millisecond: their history entry,
            // evidence and plans go into one store job (one commit on the
            // answer's path instead of two in a row). A run still going
            // after QUICK_RUN has its history entry written on its own,
            // well before the request's wait ends and its answer needs it.
            if let Some(result) = run.wait(QUICK_RUN).await {
                let saved = record_run(&store, &hub, learner, entry, exercise, &result).await;
                tx.send_modify(|c| {
                    c.history = Some(saved);
                    c.all = Some(saved);
                });
                return;
            }
            let history = async {
                let saved = match entry {
                    None => true,
                    Some(entry) => {
                        let saved = store
                            .writer()
                            .write(move |conn| {
                                let entry = entry.clone();
                                Box::pin(async move { history::apply(conn, &entry).await })
                            })
                            .await;
                        if let Err(err) = &saved {
                            tracing::warn!(error = %err, "could not record console history");
                        }
                        saved.is_ok()
                    }
                };
                tx.send_modify(|c| c.history = Some(saved));
                saved
            };
            // A statement may wait on a lock for long: progress is recorded
            // when the run ends, however long that takes (runs end by
            // timeout at worst).
            let evidence = async {
                match run.wait(Duration::from_secs(24 * 3600)).await {
                    Some(result) => {
                        record_run(&store, &hub, learner, None, exercise, &result).await
                    }
                    None => false,
                }
            };
            let (history, evidence) = tokio::join!(history, evidence);
            tx.send_modify(|c| c.all = Some(history && evidence));
        });
    }

    /// The receipt of a run whose answer was not delivered yet.
    pub fn receipt(&self, run_id: &str) -> Option<Receipt> {
        let receipts = self.receipts.lock().unwrap_or_else(|p| p.into_inner());
        receipts.get(run_id).map(|(r, _)| r.clone())
    }

    /// Forgets a receipt once the run's final answer was delivered.
    pub fn delivered(&self, run_id: &str) {
        let mut receipts = self.receipts.lock().unwrap_or_else(|p| p.into_inner());
        receipts.remove(run_id);
    }
}

/// [`record_run`]'s writes as one store script: the history entry, then the
/// statements' evidence and progress (`progress::record::add_statements`);
/// whether they were saved.
async fn record_as_script(
    store: &Store,
    hub: &ProgressHub,
    history: Option<&NewEntry>,
    statements: &[Statement],
) -> bool {
    let mut script = Script::default();
    if let Some(entry) = history {
        history::add_to(&mut script, entry);
    }
    add_statements(&mut script, statements);
    if script.is_empty() {
        // Blank script, no statement: nothing to keep.
        return true;
    }
    let written = store.writer().run_script(script).await;
    match written {
        Ok(rows) => {
            let first = statements.first();
            if let Some((statement, exercise)) =
                first.and_then(|s| s.exercise.as_ref().map(|e| (s, e)))
            {
                let new = rows
                    .first()
                    .and_then(|row| row.first())
                    .and_then(Value::as_i64)
                    == Some(1);
                if new {
                    hub.publish(ProgressEvent {
                        user_id: statement.user_id,
                        exercise_id: exercise.clone(),
                        status: Status::InProgress,
                    });
                }
            }
            true
        }
        Err(err) => {
            tracing::warn!(error = %err, "could not record progress");
            false
        }
    }
}

/// Each statement of a finished run marks its exercise in progress and goes
/// into the learner's evidence trail (the instructor sees errors there);
/// EXPLAIN plans are kept for plan compare; `history`, when given, is the
/// run's history entry. One store job, so one run's records commit
/// together; whether they were saved.
async fn record_run(
    store: &Store,
    hub: &ProgressHub,
    user_id: LearnerId,
    history: Option<NewEntry>,
    exercise: Option<String>,
    result: &RunResult,
) -> bool {
    crate::metrics::sql_statements_run(result.statements.len() as u64);
    let at = crate::progress::now();
    let mut statements = Vec::with_capacity(result.statements.len());
    let mut plans = Vec::new();
    for statement in &result.statements {
        if statement.error.is_some() {
            crate::metrics::sql_error();
        }
        statements.push(Statement::from(StatementRun {
            user_id,
            exercise: exercise.as_deref(),
            sql: &statement.sql,
            error: statement
                .error
                .as_ref()
                .map(|e| (e.sqlstate.as_str(), e.message.as_str())),
            at,
        }));
        if let Some(json) = &statement.plan_json {
            match NewPlan::new(user_id, &statement.sql, json) {
                Ok(plan) => plans.push(plan),
                Err(err) => tracing::warn!(error = %err, "could not keep the plan"),
            }
        }
    }
    if plans.is_empty() && fits_script(&statements) {
        // The usual run: all of it in one call to the store (see
        // `Writer::run_script`).
        return record_as_script(store, hub, history.as_ref(), &statements).await;
    }
    let (statements, plans) = (Arc::new(statements), Arc::new(plans));
    let written = store
        .writer()
        .write(move |conn| {
            let (statements, plans) = (statements.clone(), plans.clone());
            let history = history.clone();
            Box::pin(async move {
                if let Some(entry) = &history {
                    history::apply(conn, entry).await?;
                }
                let mut events = Vec::new();
                for statement in statements.iter() {
                    events.extend(apply_statement(conn, statement).await?);
                }
                for plan in plans.iter() {
                    plan.apply(conn).await?;
                }
                Ok(events)
            })
        })
        .await;
    match written {
        Ok(events) => {
            for event in events {
                hub.publish(event);
            }
            true
        }
        Err(err) => {
            tracing::warn!(error = %err, "could not record progress");
            false
        }
    }
}
