//! One simulated learner: signs in, then works through rounds of section
//! 14's first labs (lesson page, sandbox start, a committed marker row, the
//! lab scripts of 14.B.1-3 and their checks, the progress page) like a
//! person would, re-trying a step after an error the way a person presses
//! "Run" or "restart my sandbox" again. It remembers every marker row and
//! every check pass the server acknowledged, for the loss check at the end.

#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{Duration, Instant};

use reqwest::Method;
use serde_json::{Value, json};

use super::client::{Class, Ctx};

const SCRIPTS: &str = "content/practice/curriculum/14-postgresql-production-labs/scripts";
pub const LESSON: &str = "/sections/14-postgresql-production-labs";

/// The lab files, read once.
pub struct Labs {
    pub setup: String,
    pub schema_and_seed: String,
    pub queries: String,
}

impl Labs {
    pub fn load() -> Self {
        let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(SCRIPTS);
        let read = |name: &str| std::fs::read_to_string(root.join(name)).unwrap();
        Self {
            setup: read("ex14_1_setup.sql"),
            schema_and_seed: format!("{}\n{}", read("schema.sql"), read("seed.sql")),
            queries: read("queries.sql"),
        }
    }
}

/// What a learner was told was kept.
#[derive(Default, Debug)]
pub struct Acknowledged {
    /// Marker values whose insert answered without error (committed).
    pub markers: Vec<i64>,
    /// Exercises whose check answered `passed: true`.
    pub passed: Vec<String>,
    /// Steps given up after retrying past the deadline.
    pub gave_up: Vec<String>,
    pub rounds: usize,
}

pub struct Learner {
    pub index: usize,
    pub username: String,
    pub token: String,
    pub acked: Acknowledged,
}

/// How long a learner retries one step before giving up on it.
const STEP_DEADLINE: Duration = Duration::from_secs(180);

/// Retries `op` while it fails (a person trying again), up to the step
/// deadline; the answer, or `None` when the learner gave up (noted).
async fn step<F, Fut>(ctx: &Ctx, gave_up: &mut Vec<String>, what: &str, mut op: F) -> Option<Value>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = (Class, Value)>,
{
    let mut end = Instant::now() + STEP_DEADLINE;
    loop {
        let (class, value) = op().await;
        if class == Class::Ok {
            return Some(value);
        }
        if class == Class::InLine {
            // Waiting for a place is not the step failing: the learner
            // waits on (until the run's own deadline).
            end = Instant::now() + STEP_DEADLINE;
        }
        if Instant::now() > end || Instant::now() > ctx.deadline {
            gave_up.push(what.to_string());
            return None;
        }
        // A person reads the message, then tries again.
        let pause = if class == Class::ConnectionLost {
            100
        } else {
            1000
        };
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
}

/// One request with the learner's token: its class and JSON.
async fn call(
    ctx: &Ctx,
    me: usize,
    token: &str,
    endpoint: &'static str,
    method: Method,
    path: &str,
) -> (Class, Value) {
    let (class, status, value) = ctx.send(me, endpoint, method, path, token, None).await;
    // Pages are HTML: the status stands in for the body.
    (
        class,
        if value.is_null() {
            json!(status)
        } else {
            value
        },
    )
}

/// The panel's Start.
async fn start(ctx: &Ctx, me: usize, token: &str) -> (Class, Value) {
    call(
        ctx,
        me,
        token,
        "POST /api/sandbox/start",
        Method::POST,
        "/api/sandbox/start",
    )
    .await
}

/// How long a learner watches their place in line before giving up.
const LINE_DEADLINE: Duration = Duration::from_secs(600);

/// Polls the learner's sandbox once a second (as the panel shows it) until
/// it runs; a start that ended without running (it failed, or the learner
/// lost their place) is pressed again. False when the learner gave up.
async fn wait_in_line(ctx: &Ctx, me: usize, token: &str) -> bool {
    let end = (Instant::now() + LINE_DEADLINE).min(ctx.deadline);
    while Instant::now() < end {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let (class, v) = call(
            ctx,
            me,
            token,
            "GET /api/sandbox",
            Method::GET,
            "/api/sandbox",
        )
        .await;
        if class != Class::Ok || v["state"] == "queued" || v["state"] == "starting" {
            continue;
        }
        if v["state"] == "running" {
            return true;
        }
        let (class, v) = start(ctx, me, token).await;
        if class == Class::Ok && v["state"] == "running" {
            return true;
        }
    }
    false
}

impl Learner {
    /// Runs the learner until its rounds are done and the faults are over.
    pub async fn run(mut self, ctx: Arc<Ctx>, labs: Arc<Labs>, rounds: usize) -> Self {
        // A class arrives over a minute or two, not in one instant.
        tokio::time::sleep(Duration::from_millis(self.index as u64 * ctx.arrival_ms)).await;
        let mut round = 0;
        while (round < rounds || !ctx.faults_done.load(Ordering::Relaxed))
            && Instant::now() < ctx.deadline
        {
            let seat = ctx.seats.acquire().await.unwrap();
            self.round(&ctx, &labs, round).await;
            drop(seat);
            round += 1;
            let think = 500 + (self.index as u64 * 131 + round as u64 * 17) % 1500;
            tokio::time::sleep(Duration::from_millis(think)).await;
        }
        self.acked.rounds = round;
        self
    }

    async fn round(&mut self, ctx: &Ctx, labs: &Labs, round: usize) {
        let (me, token) = (self.index, self.token.as_str());
        let gave_up = &mut self.acked.gave_up;
        step(ctx, gave_up, "lesson page", || {
            call(ctx, me, token, "GET /sections/{slug}", Method::GET, LESSON)
        })
        .await;
        let started = step(ctx, gave_up, "sandbox start", || start(ctx, me, token)).await;
        if started.as_ref().is_some_and(|v| v["state"] == "queued") {
            // A full classroom answered "number N in line" at once: the
            // learner watches the panel until their sandbox runs.
            let waited = Instant::now();
            if wait_in_line(ctx, me, token).await {
                let ms = waited.elapsed().as_secs_f64() * 1000.0;
                ctx.in_line_ms.lock().unwrap().push(ms);
            } else {
                gave_up.push("waiting in line".into());
            }
        } else if let Some(ms) = started.and_then(|v| v["elapsed_ms"].as_f64())
            && ms > 50.0
        {
            ctx.starts_ms.lock().unwrap().push(ms);
        }
        // A committed row, acknowledged only when its answer says so; each
        // attempt inserts its own value, so a retry never duplicates one.
        let next = AtomicI64::new(round as i64 * 1_000_000 + me as i64 * 1000);
        let marker = step(ctx, gave_up, "marker insert", || {
            let n = next.fetch_add(1, Ordering::Relaxed) + 1;
            let sql = format!(
                "create table if not exists load_marker (n bigint not null, at timestamptz not null default now());\n\
                 insert into load_marker (n) values ({n});"
            );
            async move { ctx.sql(me, token, &sql, None).await }
        })
        .await;
        if marker.is_some() {
            self.acked.markers.push(next.load(Ordering::Relaxed));
        }
        for (exercise, script) in [
            ("14.B.1", &labs.setup),
            ("14.B.2", &labs.schema_and_seed),
            ("14.B.3", &labs.queries),
        ] {
            let gave_up = &mut self.acked.gave_up;
            step(ctx, gave_up, exercise, || {
                ctx.sql(me, token, script, Some(exercise))
            })
            .await;
            let path = format!("/api/exercises/{exercise}/check");
            let check = step(ctx, gave_up, "check", || {
                call(
                    ctx,
                    me,
                    token,
                    "POST /api/exercises/{id}/check",
                    Method::POST,
                    &path,
                )
            })
            .await;
            if check.is_some_and(|v| v["passed"] == true)
                && !self.acked.passed.iter().any(|p| p == exercise)
            {
                self.acked.passed.push(exercise.to_string());
            }
        }
        step(ctx, &mut self.acked.gave_up, "progress", || {
            call(
                ctx,
                me,
                token,
                "GET /api/progress",
                Method::GET,
                "/api/progress",
            )
        })
        .await;
    }
}
