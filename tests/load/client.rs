//! The load run's HTTP side: one shared client, every request timed and
//! classified by what the learner saw, fault windows to explain errors by.

#![allow(dead_code, clippy::unwrap_used)]

use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// What one request gave the learner.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Class {
    /// 2xx, and for SQL no error.
    Ok,
    /// A SQL run whose session connection had died (a stopped or killed
    /// sandbox): the console says so and reconnects on the next run.
    ConnectionLost,
    /// 503 with a message, or a SQL run that could not start the sandbox.
    Unavailable,
    /// 409 from a sandbox start with a message: the container died while
    /// starting (killed from outside); starting again is the way out.
    SandboxFailed,
    /// A SQL run in a full classroom: told their number in line at once
    /// (their sandbox starts by itself when a place frees).
    InLine,
    /// pglab itself did not answer (connection refused or reset).
    ServerDown,
    /// No answer within the hang deadline.
    Hang,
    /// 500 or another 5xx, or a 503 without a message.
    ServerError,
    /// A 4xx the script did not expect.
    Refused,
    /// A learner's SQL failed where the lab script should not.
    SqlError,
}

impl Class {
    pub fn name(self) -> &'static str {
        match self {
            Class::Ok => "ok",
            Class::ConnectionLost => "connection lost, rerun",
            Class::InLine => "a full classroom: number N in line",
            Class::Unavailable => "503 with a clear message",
            Class::SandboxFailed => "409 sandbox failed, with a clear message",
            Class::ServerDown => "pglab not answering",
            Class::Hang => "hang (no answer in 60 s)",
            Class::ServerError => "500 / unclear 5xx",
            Class::Refused => "unexpected 4xx",
            Class::SqlError => "unexpected SQL error",
        }
    }
}

/// One timed request.
#[derive(Clone, Debug)]
pub struct Sample {
    pub endpoint: &'static str,
    /// Seconds since the run began, at the start and the end.
    pub began: f64,
    pub ended: f64,
    pub ms: f64,
    pub class: Class,
    pub learner: usize,
    pub detail: String,
}

/// A fault injected during the run.
#[derive(Clone, Debug)]
pub struct Fault {
    pub name: String,
    pub began: f64,
    pub ended: f64,
    pub note: String,
}

/// Seconds after a fault ends during which its effects still explain errors
/// (sandboxes that were stopped come back one by one).
pub const GRACE_S: f64 = 10.0;
/// A request with no answer after this long is a hang.
pub const HANG: Duration = Duration::from_secs(60);

/// What every learner task shares.
pub struct Ctx {
    pub http: reqwest::Client,
    base: Mutex<String>,
    pub t0: Instant,
    pub samples: Mutex<Vec<Sample>>,
    pub faults: Mutex<Vec<Fault>>,
    /// Open fault: its start, for windows that are not closed yet.
    pub open_fault: Mutex<Option<f64>>,
    pub statements: AtomicU64,
    /// `elapsed_ms` of sandbox starts that started something (> 50 ms).
    pub starts_ms: Mutex<Vec<f64>>,
    /// Per start answered "in line" (202): from that answer until the
    /// learner's sandbox ran.
    pub in_line_ms: Mutex<Vec<f64>>,
    /// Per `POST /api/sql` answered in one request with no error: its time
    /// minus its statements' `elapsed_ms` (pglab's part, and connecting a
    /// session that was not open).
    pub sql_outside_ms: Mutex<Vec<f64>>,
    /// Bounds the requests in flight (2 cores serve server, engine, sandboxes).
    pub gate: tokio::sync::Semaphore,
    /// Seats at the keyboard: a learner holds one for a round of work, then
    /// takes a break and queues again (first come, first served), so at most
    /// this many learners work at the same moment.
    pub seats: tokio::sync::Semaphore,
    pub faults_done: AtomicBool,
    pub deadline: Instant,
    /// Learner i starts working i × this many milliseconds into the run.
    pub arrival_ms: u64,
}

impl Ctx {
    pub fn new(
        base: String,
        concurrency: usize,
        active: usize,
        limit: Duration,
        arrival_ms: u64,
    ) -> Self {
        Self {
            http: reqwest::Client::builder()
                .timeout(HANG)
                .pool_max_idle_per_host(concurrency)
                .build()
                .unwrap(),
            base: Mutex::new(base),
            t0: Instant::now(),
            samples: Mutex::default(),
            faults: Mutex::default(),
            open_fault: Mutex::default(),
            statements: AtomicU64::new(0),
            starts_ms: Mutex::default(),
            in_line_ms: Mutex::default(),
            sql_outside_ms: Mutex::default(),
            gate: tokio::sync::Semaphore::new(concurrency),
            seats: tokio::sync::Semaphore::new(active),
            faults_done: AtomicBool::new(false),
            deadline: Instant::now() + limit,
            arrival_ms,
        }
    }

    pub fn now(&self) -> f64 {
        self.t0.elapsed().as_secs_f64()
    }

    pub fn set_base(&self, base: String) {
        *self.base.lock().unwrap() = base;
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base.lock().unwrap())
    }

    /// Whether a request over [began, ended] overlaps a fault (or its grace).
    pub fn in_fault(&self, began: f64, ended: f64) -> bool {
        if self.open_fault.lock().unwrap().is_some() {
            return true;
        }
        self.faults
            .lock()
            .unwrap()
            .iter()
            .any(|f| began <= f.ended + GRACE_S && ended >= f.began - 1.0)
    }

    /// Sends one request (bearer token, JSON body) and records it.
    pub async fn send(
        &self,
        learner: usize,
        endpoint: &'static str,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> (Class, u16, Value) {
        let (class, status, value, _) = self
            .send_timed(learner, endpoint, method, path, token, body)
            .await;
        (class, status, value)
    }

    /// [`Ctx::send`], also returning how long the request took (ms, from
    /// sending it, not counting the wait for a place in flight).
    pub async fn send_timed(
        &self,
        learner: usize,
        endpoint: &'static str,
        method: reqwest::Method,
        path: &str,
        token: &str,
        body: Option<&Value>,
    ) -> (Class, u16, Value, f64) {
        let _permit = self.gate.acquire().await.unwrap();
        let began = self.now();
        let mut req = self.http.request(method, self.url(path)).bearer_auth(token);
        if let Some(body) = body {
            req = req.json(body);
        }
        let (class, status, value, detail) = match req.send().await {
            Err(e) if e.is_timeout() => (Class::Hang, 0, Value::Null, e.to_string()),
            Err(e) => (Class::ServerDown, 0, Value::Null, e.to_string()),
            Ok(res) => {
                let status = res.status().as_u16();
                let text = res.text().await.unwrap_or_default();
                let value: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                let error = value["error"].as_str().unwrap_or("").to_string();
                let class = match status {
                    200..=299 => Class::Ok,
                    503 if !error.is_empty() => Class::Unavailable,
                    409 if !error.is_empty() && endpoint == "POST /api/sandbox/start" => {
                        Class::SandboxFailed
                    }
                    500..=599 => Class::ServerError,
                    _ => Class::Refused,
                };
                let detail = if class == Class::Ok {
                    String::new()
                } else {
                    format!("{status} {}", if error.is_empty() { &text } else { &error })
                };
                (class, status, value, detail)
            }
        };
        drop(_permit);
        let ms = (self.now() - began) * 1000.0;
        self.record(learner, endpoint, began, class, detail);
        (class, status, value, ms)
    }

    /// Records a sample (also used for SQL answers classified later).
    pub fn record(
        &self,
        learner: usize,
        endpoint: &'static str,
        began: f64,
        class: Class,
        detail: String,
    ) {
        let ended = self.now();
        self.samples.lock().unwrap().push(Sample {
            endpoint,
            began,
            ended,
            ms: (ended - began) * 1000.0,
            class,
            learner,
            detail,
        });
    }

    /// Runs a script in session T1 (polling while it runs) and classifies
    /// the final answer: the statements, or why not.
    pub async fn sql(
        &self,
        learner: usize,
        token: &str,
        sql: &str,
        exercise: Option<&str>,
    ) -> (Class, Value) {
        let body = json!({"session": "T1", "sql": sql, "exercise": exercise});
        let began = self.now();
        let (mut class, _, mut value, answered_ms) = self
            .send_timed(
                learner,
                "POST /api/sql",
                reqwest::Method::POST,
                "/api/sql",
                token,
                Some(&body),
            )
            .await;
        let polled = value["status"] == "running";
        while class == Class::Ok && value["status"] == "running" {
            let path = format!(
                "/api/runs/{}?wait_ms=5000",
                value["run_id"].as_str().unwrap()
            );
            (class, _, value) = self
                .send(
                    learner,
                    "GET /api/runs/{id}",
                    reqwest::Method::GET,
                    &path,
                    token,
                    None,
                )
                .await;
        }
        if class != Class::Ok {
            return (class, value);
        }
        let statements = value["statements"].as_array().cloned().unwrap_or_default();
        self.statements
            .fetch_add(statements.len() as u64, Ordering::Relaxed);
        let Some(error) = statements
            .iter()
            .find_map(|s| s["error"]["message"].as_str())
        else {
            if !polled {
                let inside: f64 = statements
                    .iter()
                    .filter_map(|s| s["elapsed_ms"].as_f64())
                    .sum();
                crate::report::push(&self.sql_outside_ms, (answered_ms - inside).max(0.0));
            }
            return (Class::Ok, value);
        };
        let class = if value["connection_lost"] == true && error.contains("connection was lost") {
            Class::ConnectionLost
        } else if error.starts_with("the classroom is full: you are number") {
            Class::InLine
        } else if error.contains("your sandbox is not available")
            || error.contains("cannot connect to your sandbox")
            || error.contains("cannot use the connection to your sandbox")
        {
            Class::Unavailable
        } else {
            Class::SqlError
        };
        // The HTTP sample says 200; this one says what the learner read.
        self.record(learner, "SQL outcome", began, class, error.to_string());
        (class, value)
    }
}
