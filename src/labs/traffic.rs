//! 14.D.1, "production traffic": the dashboard's chart query of the lab runs
//! in a loop in the learner's sandbox, from one background task per learner
//! on one connection (application_name `taskflow-dashboard`, so it shows in
//! `pg_stat_activity`), with a short pause between runs. Each run's latency
//! goes into a ring buffer the panel draws as a live chart; after the learner
//! adds the index, the points drop.
//!
//! The chart query is 14.C.1's filter (`status = 'open' AND priority >= 4`)
//! once per day of the chart, 540 times: on the bulk data of
//! generate_bulk_data.sql (120,014 tasks) without `idx_tasks_status_priority`
//! each run is 540 sequential scans of tasks, 7.9 s on a sandbox with half a
//! CPU, so it is always in the lesson's list of queries active for more than
//! five seconds; with the index, 0.45 s.
//!
//! Bounds: one run per learner, [`MAX_RUNNING`] for the whole server, a
//! statement timeout per query, and the run stops by itself after the lab's
//! time (`--lab-traffic-secs`, 10 minutes by default), on the switch, before
//! the sandbox stops, restarts or resets, and after [`MAX_ERRORS_IN_A_ROW`]
//! failures in a row (e.g. no `tasks` table yet), saying why.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Serialize;
use sqlx::postgres::PgConnectOptions;
use sqlx::{ConnectOptions, Connection, PgConnection};
use tokio::sync::watch;

use crate::sandbox::LearnerId;

/// The dashboard's chart query of 14.D.1, as the lesson shows it.
pub const DASHBOARD_QUERY: &str = "SELECT d::date AS day,
       (SELECT count(*) FROM tasks t
        WHERE t.status = 'open' AND t.priority >= 4 AND t.created_at < d) AS open_important
FROM generate_series(now() - interval '539 days', now(), interval '1 day') AS d";
/// Most traffic runs at once on this server.
pub const MAX_RUNNING: usize = 32;
/// Latency points kept per run (the chart's width).
pub const POINTS: usize = 600;
/// Failures in a row that stop the traffic.
pub const MAX_ERRORS_IN_A_ROW: u32 = 5;
/// Pause between two queries.
const PAUSE: Duration = Duration::from_millis(200);
/// Longest one query may run: well above the chart query's seconds without
/// the index on a small sandbox, so that it shows as a long-running query
/// rather than as errors.
const STATEMENT_TIMEOUT: &str = "60s";

/// One query's latency.
#[derive(Clone, Copy, Debug, Serialize)]
pub struct Point {
    /// Sequence number within the run (1, 2, ...), for `since`.
    pub seq: u64,
    /// Milliseconds since the run started.
    pub t_ms: u64,
    /// The query's latency in milliseconds.
    pub ms: f64,
}

#[derive(Default)]
struct State {
    running: bool,
    points: VecDeque<Point>,
    queries: u64,
    errors: u64,
    errors_in_a_row: u32,
    last_error: Option<String>,
    stopped_reason: Option<String>,
}

/// One learner's traffic run.
struct Run {
    started: Instant,
    limit: Duration,
    state: std::sync::Mutex<State>,
    stop: watch::Sender<Option<String>>,
}

/// What the panel shows.
#[derive(Debug, Serialize)]
pub struct Snapshot {
    pub running: bool,
    pub queries: u64,
    pub errors: u64,
    pub last_error: Option<String>,
    pub stopped_reason: Option<String>,
    /// Seconds until it stops by itself.
    pub ends_in_s: Option<u64>,
    /// Points after `since`, oldest first.
    pub points: Vec<Point>,
    pub query: &'static str,
}

/// Every learner's traffic run (the last one stays to show why it stopped).
pub struct Traffic {
    limit: Duration,
    runs: std::sync::Mutex<HashMap<LearnerId, Arc<Run>>>,
}

impl Run {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn snapshot(&self, since: u64) -> Snapshot {
        let s = self.lock();
        Snapshot {
            running: s.running,
            queries: s.queries,
            errors: s.errors,
            last_error: s.last_error.clone(),
            stopped_reason: s.stopped_reason.clone(),
            ends_in_s: s
                .running
                .then(|| self.limit.saturating_sub(self.started.elapsed()).as_secs()),
            points: s.points.iter().filter(|p| p.seq > since).copied().collect(),
            query: DASHBOARD_QUERY,
        }
    }

    fn finish(&self, why: String) {
        let mut s = self.lock();
        s.running = false;
        s.stopped_reason.get_or_insert(why);
    }
}

impl Traffic {
    pub fn new(limit: Duration) -> Self {
        Self {
            limit,
            runs: Default::default(),
        }
    }

    fn runs(&self) -> std::sync::MutexGuard<'_, HashMap<LearnerId, Arc<Run>>> {
        self.runs.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Starts the learner's traffic against `options` (idempotent while one
    /// runs); refuses when the server runs [`MAX_RUNNING`] already.
    pub fn start(&self, learner: LearnerId, options: PgConnectOptions) -> Result<Snapshot, String> {
        let mut runs = self.runs();
        if let Some(run) = runs.get(&learner)
            && run.lock().running
        {
            return Ok(run.snapshot(0));
        }
        if runs.values().filter(|r| r.lock().running).count() >= MAX_RUNNING {
            return Err(format!(
                "{MAX_RUNNING} learners run production traffic already: try again in a few minutes"
            ));
        }
        let (stop, stopped) = watch::channel(None);
        let run = Arc::new(Run {
            started: Instant::now(),
            limit: self.limit,
            state: std::sync::Mutex::new(State {
                running: true,
                ..State::default()
            }),
            stop,
        });
        runs.insert(learner, run.clone());
        tokio::spawn(drive(run.clone(), options, stopped));
        Ok(run.snapshot(0))
    }

    /// Stops the learner's traffic, if it runs, with the reason shown.
    pub fn stop(&self, learner: LearnerId, why: &str) {
        if let Some(run) = self.runs().get(&learner)
            && run.lock().running
        {
            run.stop.send_replace(Some(why.to_string()));
            run.finish(why.to_string());
        }
    }

    /// The learner's current or last run, with the points after `since`.
    pub fn snapshot(&self, learner: LearnerId, since: u64) -> Option<Snapshot> {
        self.runs().get(&learner).map(|r| r.snapshot(since))
    }
}

/// The loop of one run.
async fn drive(
    run: Arc<Run>,
    options: PgConnectOptions,
    mut stopped: watch::Receiver<Option<String>>,
) {
    // Seconds-long runs are the lab's point, not news for pglab's log.
    let options = options
        .application_name("taskflow-dashboard")
        .options([("statement_timeout", STATEMENT_TIMEOUT)])
        .disable_statement_logging();
    let deadline = tokio::time::Instant::from_std(run.started + run.limit);
    let mut conn: Option<Backend> = None;
    // A query still running on the server when the run stops: without the
    // index one takes seconds, and the backend would only notice the closed
    // connection when it is done.
    let mut interrupted = false;
    let why = loop {
        if let Some(why) = stopped.borrow().clone() {
            break why;
        }
        if tokio::time::Instant::now() >= deadline {
            break format!(
                "stopped by itself after {} s, the lab's limit",
                run.limit.as_secs()
            );
        }
        let began = Instant::now();
        let outcome = tokio::select! {
            r = query(&mut conn, &options) => r,
            _ = stopped.changed() => { interrupted = true; continue }
            _ = tokio::time::sleep_until(deadline) => { interrupted = true; continue }
        };
        let stop_now = record(&run, began, outcome);
        if let Some(why) = stop_now {
            break why;
        }
        tokio::select! {
            _ = tokio::time::sleep(PAUSE) => {}
            _ = stopped.changed() => {}
        }
    };
    run.finish(why);
    if let Some(c) = conn {
        if interrupted {
            end_backend(c.pid, &options).await;
        } else {
            let _ = tokio::time::timeout(Duration::from_secs(2), c.conn.close()).await;
        }
    }
}

/// The traffic's connection and its server process id.
struct Backend {
    conn: PgConnection,
    pid: i32,
}

/// Ends the traffic's server process `pid`, whose query was dropped
/// half-way, from a second short connection (its own is busy until the
/// query is done).
async fn end_backend(pid: i32, options: &PgConnectOptions) {
    let _ = tokio::time::timeout(Duration::from_secs(5), async {
        let mut other = PgConnection::connect_with(options).await.ok()?;
        let _ = sqlx::query("select pg_terminate_backend($1)")
            .bind(pid)
            .execute(&mut other)
            .await;
        let _ = other.close().await;
        Some(())
    })
    .await;
}

/// Runs the query once, connecting first when needed; a broken connection
/// is dropped so that the next round reconnects.
async fn query(conn: &mut Option<Backend>, options: &PgConnectOptions) -> Result<(), String> {
    if conn.is_none() {
        let mut c =
            tokio::time::timeout(Duration::from_secs(10), PgConnection::connect_with(options))
                .await
                .map_err(|_| "connecting to the sandbox timed out".to_string())?
                .map_err(|e| e.to_string())?;
        let pid: i32 = sqlx::query_scalar("select pg_backend_pid()")
            .fetch_one(&mut c)
            .await
            .map_err(|e| e.to_string())?;
        *conn = Some(Backend { conn: c, pid });
    }
    let Some(c) = conn.as_mut() else {
        return Err("no connection".into());
    };
    // A prepared statement, as an application's driver would send it; the
    // index's creation invalidates its cached plan.
    match sqlx::query(DASHBOARD_QUERY).execute(&mut c.conn).await {
        Ok(_) => Ok(()),
        Err(sqlx::Error::Database(e)) => Err(format!("ERROR:  {}", e.message())),
        Err(e) => {
            *conn = None;
            Err(e.to_string())
        }
    }
}

/// Records one query's outcome; says why to stop after too many failures.
fn record(run: &Run, began: Instant, outcome: Result<(), String>) -> Option<String> {
    let mut s = run.lock();
    s.queries += 1;
    match outcome {
        Ok(()) => {
            s.errors_in_a_row = 0;
            let seq = s.queries;
            if s.points.len() >= POINTS {
                s.points.pop_front();
            }
            s.points.push_back(Point {
                seq,
                t_ms: run.started.elapsed().as_millis() as u64,
                ms: began.elapsed().as_secs_f64() * 1000.0,
            });
            None
        }
        Err(e) => {
            s.errors += 1;
            s.errors_in_a_row += 1;
            s.last_error = Some(e.clone());
            (s.errors_in_a_row >= MAX_ERRORS_IN_A_ROW).then(|| {
                let hint = if e.contains("does not exist") {
                    " (create the TaskFlow tables first: ex14_1_setup.sql, schema.sql, seed.sql)"
                } else {
                    ""
                };
                format!("stopped after {MAX_ERRORS_IN_A_ROW} failures in a row: {e}{hint}")
            })
        }
    }
}
