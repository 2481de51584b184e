//! 14.D.3, connection exhaustion: pglab plays the leaking application.
//!
//! "Leak" opens connections to the learner's sandbox as the lab's application
//! role `taskflow_app` (a non-superuser, made or re-enabled with its
//! documented lab password) and leaves each one `idle` after one query, as
//! the story's broken code path does (it takes a connection from its pool and
//! never gives it back), until PostgreSQL refuses the next one. Idle, not
//! idle in a transaction: the lesson's long-idle query (`state = 'idle' AND
//! state_change < now() - interval '1 minute'`) finds them once they are a
//! minute old, and `pg_terminate_backend` on its rows frees the slots. The
//! refusal (`remaining connection slots are reserved for non-replication
//! superuser connections`, `too many connections for role "taskflow_app"`
//! once the learner set a role limit, or `sorry, too many clients already`)
//! is the answer the learner reads.
//!
//! Why the learner is never locked out: the leaked connections are ordinary
//! ones, so PostgreSQL's `superuser_reserved_connections` slots (3 by
//! default) stay free for `labuser`, the superuser pglab's console, checks
//! and monitor connect as. pglab never asks for more than
//! `max_connections`, never more than [`MAX_PER_LEARNER`] per learner and
//! [`MAX_TOTAL`] in all, refuses to leak while fewer than [`MIN_RESERVED`]
//! slots are reserved (a learner may have lowered the setting with ALTER
//! SYSTEM), and the release needs no connection at all.
//!
//! The held connections live in [`Leaks`] (`AppState.labs.leaks`), keyed by
//! learner, and are closed by the release button, by the lab's own timeout
//! (`--lab-leak-secs`), and before the sandbox stops, restarts or resets.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use serde::Serialize;
use sqlx::postgres::{PgConnectOptions, PgDatabaseError};
use sqlx::{Connection, PgConnection};

use crate::sandbox::LearnerId;

/// The lab's application role (ex14_1_setup.sql makes it too).
pub const APP_ROLE: &str = "taskflow_app";
/// Its password in the lab scripts; pglab sets it again before leaking.
pub const APP_PASSWORD: &str = "taskflow-lab-only";
/// Most connections one learner's leak holds.
pub const MAX_PER_LEARNER: usize = 100;
/// Most leaked connections pglab holds for all learners together.
pub const MAX_TOTAL: usize = 1000;
/// Fewest superuser-reserved slots pglab leaks with: pglab's own new
/// connections while the server is full (a console session, a check, the
/// monitor) need them.
pub const MIN_RESERVED: i64 = 3;
/// Deadline of one connection attempt.
const CONNECT_DEADLINE: Duration = Duration::from_secs(5);

/// Makes `taskflow_app` able to log in with the lab password.
const PREPARE: [&str; 3] = [
    r#"do $$ begin
  if not exists (select from pg_roles where rolname = 'taskflow_app') then
    create role taskflow_app login password 'taskflow-lab-only';
  end if;
end $$"#,
    "alter role taskflow_app login password 'taskflow-lab-only'",
    "grant connect on database labdb to taskflow_app",
];

/// The connections one learner's leak holds.
#[derive(Default)]
struct Held {
    conns: Vec<PgConnection>,
    /// Bumped by every leak; a timeout only releases its own leak's epoch.
    epoch: u64,
    since: Option<Instant>,
}

/// Every learner's leaked connections.
pub struct Leaks {
    hold: Duration,
    map: std::sync::Mutex<HashMap<LearnerId, Arc<tokio::sync::Mutex<Held>>>>,
    total: Arc<AtomicUsize>,
    epochs: AtomicU64,
}

/// What a leak did, for the panel.
#[derive(Debug, Serialize)]
pub struct LeakOutcome {
    /// Connections opened by this leak.
    pub opened: usize,
    /// Connections pglab holds for the learner now.
    pub held: usize,
    /// PostgreSQL's refusal, as psql prints it (`FATAL:  ...`), or why the
    /// leak stopped before one.
    pub error: Option<String>,
    /// The refusal's SQLSTATE (53300 too many connections).
    pub sqlstate: Option<String>,
    pub max_connections: i64,
    pub superuser_reserved_connections: i64,
    /// Seconds until pglab releases them by itself.
    pub release_in_s: u64,
}

/// Where the learner's leak stands.
#[derive(Debug, Serialize)]
pub struct LeakStatus {
    /// Connections pglab holds.
    pub held: usize,
    /// Of those, the ones the server has not ended (pg_terminate_backend).
    pub alive: usize,
    pub release_in_s: Option<u64>,
}

impl LeakOutcome {
    /// A leak pglab did not start, and why.
    fn refused(max_connections: i64, reserved: i64, why: String) -> Self {
        Self {
            opened: 0,
            held: 0,
            error: Some(why),
            sqlstate: None,
            max_connections,
            superuser_reserved_connections: reserved,
            release_in_s: 0,
        }
    }
}

impl Leaks {
    pub fn new(hold: Duration) -> Self {
        Self {
            hold,
            map: Default::default(),
            total: Arc::new(AtomicUsize::new(0)),
            epochs: AtomicU64::new(0),
        }
    }

    fn entry(&self, learner: LearnerId) -> Arc<tokio::sync::Mutex<Held>> {
        let mut map = self.map.lock().unwrap_or_else(|e| e.into_inner());
        map.entry(learner).or_default().clone()
    }

    /// Opens leaked connections to the sandbox `admin` reaches (as `labuser`)
    /// until PostgreSQL refuses one or a cap is reached, and holds them.
    pub async fn leak(
        &self,
        learner: LearnerId,
        admin: PgConnectOptions,
    ) -> Result<LeakOutcome, sqlx::Error> {
        let (max_connections, reserved) = prepare(&admin).await?;
        if reserved < MIN_RESERVED {
            return Ok(LeakOutcome::refused(
                max_connections,
                reserved,
                format!(
                    "pglab does not leak while superuser_reserved_connections is {reserved}: \
                     with fewer than {MIN_RESERVED} slots kept for superusers a full server would \
                     lock you out too. Run ALTER SYSTEM RESET superuser_reserved_connections; \
                     and restart the sandbox"
                ),
            ));
        }
        let app = admin
            .clone()
            .username(APP_ROLE)
            .password(APP_PASSWORD)
            .application_name("taskflow-app (leaked by pglab)");
        let entry = self.entry(learner);
        let mut held = entry.lock().await;
        let room = usize::try_from(max_connections)
            .unwrap_or(0)
            .min(MAX_PER_LEARNER)
            .saturating_sub(held.conns.len());
        let mut outcome = LeakOutcome {
            opened: 0,
            held: 0,
            error: None,
            sqlstate: None,
            max_connections,
            superuser_reserved_connections: reserved,
            release_in_s: self.hold.as_secs(),
        };
        for _ in 0..room {
            if self.total.load(Ordering::Relaxed) >= MAX_TOTAL {
                outcome.error = Some(format!(
                    "pglab already holds {MAX_TOTAL} leaked connections for the whole class: \
                     release some first"
                ));
                break;
            }
            match open_leaked(&app).await {
                Ok(conn) => {
                    held.conns.push(conn);
                    self.total.fetch_add(1, Ordering::Relaxed);
                    outcome.opened += 1;
                }
                Err((text, code)) => {
                    outcome.error = Some(text);
                    outcome.sqlstate = code;
                    break;
                }
            }
        }
        if outcome.error.is_none() {
            outcome.error = Some(format!(
                "pglab stopped at its cap of {} leaked connections before PostgreSQL refused one",
                held.conns.len()
            ));
        }
        outcome.held = held.conns.len();
        let epoch = self.epochs.fetch_add(1, Ordering::Relaxed) + 1;
        held.epoch = epoch;
        held.since = Some(Instant::now());
        drop(held);
        self.schedule_release(entry, epoch);
        Ok(outcome)
    }

    /// Releases the leak after the lab's hold time unless a newer leak or a
    /// release came first.
    fn schedule_release(&self, entry: Arc<tokio::sync::Mutex<Held>>, epoch: u64) {
        let hold = self.hold;
        let total = self.total.clone();
        tokio::spawn(async move {
            tokio::time::sleep(hold).await;
            let mut held = entry.lock().await;
            if held.epoch == epoch {
                close_all(&mut held, &total).await;
            }
        });
    }

    /// Closes every connection the learner's leak holds; returns how many.
    pub async fn release(&self, learner: LearnerId) -> usize {
        let entry = {
            let map = self.map.lock().unwrap_or_else(|e| e.into_inner());
            map.get(&learner).cloned()
        };
        let Some(entry) = entry else { return 0 };
        let mut held = entry.lock().await;
        close_all(&mut held, &self.total).await
    }

    /// How many connections the learner's leak holds, and how many of them
    /// the server still serves.
    pub async fn status(&self, learner: LearnerId) -> LeakStatus {
        let entry = self.entry(learner);
        let mut held = entry.lock().await;
        // All at once: a hung server costs half a second, not one per connection.
        let pings = futures::future::join_all(
            held.conns
                .iter_mut()
                .map(|c| tokio::time::timeout(Duration::from_millis(500), c.ping())),
        )
        .await;
        let alive = pings.iter().filter(|p| matches!(p, Ok(Ok(())))).count();
        LeakStatus {
            held: held.conns.len(),
            alive,
            release_in_s: held
                .since
                .filter(|_| !held.conns.is_empty())
                .map(|s| self.hold.saturating_sub(s.elapsed()).as_secs()),
        }
    }
}

/// Runs [`PREPARE`] as `labuser` and reads max_connections and
/// superuser_reserved_connections.
async fn prepare(admin: &PgConnectOptions) -> Result<(i64, i64), sqlx::Error> {
    let mut conn = tokio::time::timeout(CONNECT_DEADLINE, PgConnection::connect_with(admin))
        .await
        .map_err(|_| timed_out())??;
    for statement in PREPARE {
        sqlx::query(statement).execute(&mut conn).await?;
    }
    let row: (String, String) = sqlx::query_as(
        "select current_setting('max_connections'), current_setting('superuser_reserved_connections')",
    )
    .fetch_one(&mut conn)
    .await?;
    let _ = conn.close().await;
    Ok((row.0.parse().unwrap_or(0), row.1.parse().unwrap_or(0)))
}

/// One leaked connection, left idle after one query; or the refusal
/// as psql shows it, with its SQLSTATE.
async fn open_leaked(app: &PgConnectOptions) -> Result<PgConnection, (String, Option<String>)> {
    let connected = tokio::time::timeout(CONNECT_DEADLINE, PgConnection::connect_with(app)).await;
    let mut conn = match connected {
        Err(_) => return Err(("the connection attempt timed out".into(), None)),
        Ok(Err(err)) => return Err(describe(&err)),
        Ok(Ok(conn)) => conn,
    };
    if let Err(err) = sqlx::query("select 1").execute(&mut conn).await {
        return Err(describe(&err));
    }
    Ok(conn)
}

/// `FATAL:  message` and the SQLSTATE of a server error; the plain text of
/// any other.
fn describe(err: &sqlx::Error) -> (String, Option<String>) {
    match err {
        sqlx::Error::Database(db) => {
            let severity = db
                .try_downcast_ref::<PgDatabaseError>()
                .map(|e| format!("{:?}", e.severity()).to_uppercase())
                .unwrap_or_else(|| "ERROR".into());
            (
                format!("{severity}:  {}", db.message()),
                db.code().map(|c| c.to_string()),
            )
        }
        other => (other.to_string(), None),
    }
}

async fn close_all(held: &mut Held, total: &AtomicUsize) -> usize {
    let conns = std::mem::take(&mut held.conns);
    let n = conns.len();
    held.since = None;
    // Terminate messages in parallel; a connection the server already ended
    // just fails to say goodbye.
    futures::future::join_all(conns.into_iter().map(|c| async move {
        let _ = tokio::time::timeout(Duration::from_secs(2), c.close()).await;
    }))
    .await;
    total.fetch_sub(n, Ordering::Relaxed);
    n
}

/// The error of a connection attempt that did not finish in time.
fn timed_out() -> sqlx::Error {
    sqlx::Error::Io(std::io::Error::new(
        std::io::ErrorKind::TimedOut,
        "connecting to the sandbox timed out",
    ))
}
