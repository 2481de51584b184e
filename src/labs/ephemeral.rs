//! 14.D.4, the "no volume" demonstration: beside the learner's sandbox (data
//! on a volume) runs a second, throw-away server (the provisioner's
//! `ephemeral_*` operations: a container without a named volume, or a
//! cluster in a throw-away folder). The panel writes the same row into both,
//! re-creates the throw-away one and restarts the real one, and counts the
//! rows again: one kept them, the other starts empty.
//!
//! The rows go into `restart_proof` (the table of 14.D.4). A throw-away
//! server unused for `--lab-ephemeral-idle-secs` is removed by the sweeper
//! here; the provisioner removes it with the learner's sandbox too.

use std::collections::HashMap;
use std::sync::Weak;
use std::time::{Duration, Instant};

use serde::Serialize;
use sqlx::postgres::PgConnectOptions;
use sqlx::{Connection, PgConnection};

use super::Labs;
use crate::sandbox::LearnerId;

/// Creates `restart_proof` (as 14.D.4 does) and writes one row.
const WRITE: [&str; 2] = [
    "CREATE TABLE IF NOT EXISTS restart_proof (
  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
  note text NOT NULL,
  written_at timestamptz NOT NULL DEFAULT now()
)",
    "INSERT INTO restart_proof (note) VALUES ('written by the volume demo')",
];

/// Whether the table exists, and when the server started.
const PROBE: &str =
    "select to_regclass('restart_proof') is not null, pg_postmaster_start_time()::text";

/// What one server holds, as the demo shows it.
#[derive(Debug, Serialize)]
pub struct Side {
    /// Rows in `restart_proof`; `None` when the table does not exist.
    pub rows: Option<i64>,
    /// `pg_postmaster_start_time()`.
    pub server_started: Option<String>,
    /// Why it could not be read.
    pub error: Option<String>,
}

/// Most throw-away servers at once on this server (each is a second
/// PostgreSQL server, with the sandbox's memory limit).
pub const MAX_EPHEMERAL: usize = 20;

/// Last use of each learner's throw-away server.
pub struct EphemeralUse {
    idle: Duration,
    last: std::sync::Mutex<HashMap<LearnerId, Instant>>,
}

impl EphemeralUse {
    pub fn new(idle: Duration) -> Self {
        Self {
            idle,
            last: Default::default(),
        }
    }

    /// Notes a use now, unless that would make one server more than
    /// [`MAX_EPHEMERAL`]; says whether the learner may have one.
    pub fn admit(&self, learner: LearnerId) -> bool {
        let mut map = self.map();
        if !map.contains_key(&learner) && map.len() >= MAX_EPHEMERAL {
            return false;
        }
        map.insert(learner, Instant::now());
        true
    }

    /// Whether the learner has a throw-away server this process made.
    pub fn known(&self, learner: LearnerId) -> bool {
        self.map().contains_key(&learner)
    }

    /// Forgets a removed server.
    pub fn forget(&self, learner: LearnerId) {
        self.map().remove(&learner);
    }

    fn map(&self) -> std::sync::MutexGuard<'_, HashMap<LearnerId, Instant>> {
        self.last.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Learners whose server was idle too long (and forgets them).
    fn take_idle(&self) -> Vec<LearnerId> {
        let mut map = self.map();
        let idle: Vec<_> = map
            .iter()
            .filter(|(_, t)| t.elapsed() >= self.idle)
            .map(|(l, _)| *l)
            .collect();
        for l in &idle {
            map.remove(l);
        }
        idle
    }
}

/// Removes idle throw-away servers every few seconds, while the labs live.
pub fn spawn_sweeper(labs: Weak<Labs>) {
    let Ok(handle) = tokio::runtime::Handle::try_current() else {
        return;
    };
    handle.spawn(async move {
        loop {
            let period = match labs.upgrade() {
                Some(l) => (l.ephemeral.idle / 4).clamp(Duration::from_secs(1), Duration::from_secs(30)),
                None => return,
            };
            tokio::time::sleep(period).await;
            let Some(labs) = labs.upgrade() else { return };
            for learner in labs.ephemeral.take_idle() {
                if let Err(e) = labs.sandbox.ephemeral_remove(learner).await {
                    tracing::warn!(learner, error = %e, "could not remove an idle ephemeral sandbox");
                }
            }
        }
    });
}

/// Writes one row into `restart_proof` of the server `options` reaches.
pub async fn write_row(options: &PgConnectOptions) -> Result<(), String> {
    let mut conn = connect(options).await?;
    let mut result = Ok(());
    for statement in WRITE {
        if let Err(e) = sqlx::query(statement).execute(&mut conn).await {
            result = Err(e.to_string());
            break;
        }
    }
    let _ = conn.close().await;
    result
}

/// Counts the rows of `restart_proof` on the server `options` reaches.
pub async fn read_side(options: &PgConnectOptions) -> Side {
    let read = async {
        let mut conn = connect(options).await?;
        let (exists, started): (bool, String) = sqlx::query_as(PROBE)
            .fetch_one(&mut conn)
            .await
            .map_err(|e| e.to_string())?;
        // A query naming a missing table fails at parse time, hence two.
        let rows = if exists {
            let n: i64 = sqlx::query_scalar("select count(*) from restart_proof")
                .fetch_one(&mut conn)
                .await
                .map_err(|e| e.to_string())?;
            Some(n)
        } else {
            None
        };
        let _ = conn.close().await;
        Ok::<_, String>((rows, started))
    };
    match read.await {
        Ok((rows, started)) => Side {
            rows,
            server_started: Some(started),
            error: None,
        },
        Err(e) => Side {
            rows: None,
            server_started: None,
            error: Some(e),
        },
    }
}

async fn connect(options: &PgConnectOptions) -> Result<PgConnection, String> {
    let options = options
        .clone()
        .application_name("pglab-volume-demo")
        .options([("statement_timeout", "5s")]);
    tokio::time::timeout(Duration::from_secs(5), PgConnection::connect_with(&options))
        .await
        .map_err(|_| "connecting timed out".to_string())?
        .map_err(|e| e.to_string())
}
