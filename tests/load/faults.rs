//! The faults injected during a load run, one after another once the class
//! is warm, each recorded as a window that explains what learners saw:
//! - `kill`: a random learner's sandbox container is killed (SIGKILL);
//! - `engine`: the (private) Docker engine is stopped and started again (on
//!   a swarm: the last node's engine, until every node is Ready again);
//! - `restart`: pglab gets SIGTERM and is started again on its data dir.

#![allow(dead_code, clippy::unwrap_used)]

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use super::client::{Class, Ctx, Fault};
use super::engines::Engines;
use crate::common::{ServerOptions, TestServer};

/// Seconds between two faults (and before the first, once warm).
const GAP: Duration = Duration::from_secs(8);
/// How long the engine stays down.
const ENGINE_DOWN: Duration = Duration::from_secs(5);

pub struct Plan {
    pub ctx: Arc<Ctx>,
    pub engine: Arc<Mutex<Engines>>,
    pub server: Arc<Mutex<Option<TestServer>>>,
    pub pid: Arc<AtomicU32>,
    pub start_server: Arc<dyn Fn() -> ServerOptions + Send + Sync>,
    /// Successful checks to wait for before the first fault.
    pub warm_runs: usize,
    /// And the time by which the whole class has arrived.
    pub all_arrived: Duration,
}

impl Plan {
    pub async fn run(&self, list: &str) {
        let faults: Vec<&str> = list
            .split(',')
            .map(str::trim)
            .filter(|f| !f.is_empty() && *f != "none")
            .collect();
        if faults.is_empty() {
            return;
        }
        self.wait_warm().await;
        for fault in faults {
            tokio::time::sleep(GAP).await;
            match fault {
                "kill" => self.kill_a_sandbox().await,
                "engine" => self.engine_stop_start().await,
                "restart" => self.restart_pglab().await,
                other => panic!("unknown fault {other} (kill, engine, restart)"),
            }
        }
        // Let the class work on after the last fault before it stops.
        tokio::time::sleep(GAP).await;
    }

    async fn wait_warm(&self) {
        let deadline = Instant::now() + Duration::from_secs(300);
        loop {
            let ok = self
                .ctx
                .samples
                .lock()
                .unwrap()
                .iter()
                .filter(|s| s.endpoint == "POST /api/exercises/{id}/check" && s.class == Class::Ok)
                .count();
            let arrived = self.ctx.now() >= self.all_arrived.as_secs_f64();
            if (ok >= self.warm_runs && arrived) || Instant::now() > deadline {
                return;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    fn open(&self) -> f64 {
        let at = self.ctx.now();
        *self.ctx.open_fault.lock().unwrap() = Some(at);
        at
    }

    fn close(&self, name: &str, began: f64, note: String) {
        let ended = self.ctx.now();
        self.ctx.faults.lock().unwrap().push(Fault {
            name: name.to_string(),
            began,
            ended,
            note,
        });
        *self.ctx.open_fault.lock().unwrap() = None;
    }

    async fn kill_a_sandbox(&self) {
        let engine = self.engine.clone();
        let began = self.open();
        let note = tokio::task::spawn_blocking(move || engine.lock().unwrap().kill_one())
            .await
            .unwrap();
        self.close("kill a sandbox", began, note);
    }

    async fn engine_stop_start(&self) {
        let engine = self.engine.clone();
        let began = self.open();
        let stopped = {
            let engine = engine.clone();
            tokio::task::spawn_blocking(move || engine.lock().unwrap().stop())
                .await
                .unwrap()
        };
        tokio::time::sleep(ENGINE_DOWN).await;
        tokio::task::spawn_blocking(move || engine.lock().unwrap().start_again())
            .await
            .unwrap();
        self.close(
            "engine stop + start",
            began,
            format!(
                "stopping took {:.1} s, down {} s",
                stopped.as_secs_f64(),
                ENGINE_DOWN.as_secs()
            ),
        );
    }

    async fn restart_pglab(&self) {
        let (server, opts, pid) = (
            self.server.clone(),
            self.start_server.clone(),
            self.pid.clone(),
        );
        let began = self.open();
        let (clean, base) = tokio::task::spawn_blocking(move || {
            let mut slot = server.lock().unwrap();
            let clean = slot.as_mut().map(|s| s.stop()).unwrap_or(false);
            drop(slot.take());
            let fresh = TestServer::start_with(opts());
            pid.store(fresh.pid(), Ordering::Relaxed);
            let base = fresh.base.clone();
            *slot = Some(fresh);
            (clean, base)
        })
        .await
        .unwrap();
        self.ctx.set_base(base);
        let note = if clean {
            "clean exit"
        } else {
            "had to be killed"
        };
        self.close("restart pglab", began, note.to_string());
    }
}
