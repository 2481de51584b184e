//! Sandbox start-up and memory figures against the real Docker engine and
//! the course image (`cargo bench --bench sandbox`, or `scripts/bench.sh`).
//!
//! Prints medians (and max) of:
//! - cold start: a new learner, empty pool: container + first-start cluster
//!   + ready + the first `select 1`;
//! - warm start: a new learner served from the warm pool, to the first query;
//! - restart of a stopped sandbox to the first query;
//! - idle memory of a sandbox container (engine stats, minus page cache);
//! - 1, 5 and 20 sandboxes started at once: wall time and total memory.
//!
//! Everything runs under a throw-away data dir and instance id and is
//! removed at the end. Set PGLAB_BENCH_ROUNDS (default 5) for more rounds.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_literal)]

use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bollard::Docker;
use bollard::query_parameters::StatsOptionsBuilder;
use clap::Parser;
use futures::StreamExt;
use pglab::config::ServeConfig;
use pglab::sandbox::Provisioner;
use pglab::store::Store;
use sqlx::Connection;
use sqlx::postgres::PgConnectOptions;

#[derive(Parser)]
struct Wrapper {
    #[command(flatten)]
    config: ServeConfig,
}

struct Bench {
    _temp: tempfile::TempDir,
    store: Store,
    instance: String,
    next_user: usize,
}

impl Drop for Bench {
    fn drop(&mut self) {
        let label = format!("label=pglab.instance={}", self.instance);
        let ids = |args: &[&str]| -> Vec<String> {
            let out = Command::new("docker").args(args).output().unwrap();
            String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .map(String::from)
                .collect()
        };
        let c = ids(&["ps", "-aq", "--filter", &label]);
        if !c.is_empty() {
            let _ = Command::new("docker").args(["rm", "-f"]).args(&c).output();
        }
        let v = ids(&["volume", "ls", "-q", "--filter", &label]);
        if !v.is_empty() {
            let _ = Command::new("docker")
                .args(["volume", "rm", "-f"])
                .args(&v)
                .output();
        }
    }
}

impl Bench {
    async fn new() -> Self {
        let temp = tempfile::tempdir().unwrap();
        let store = Store::open(&temp.path().join("pglab.db")).await.unwrap();
        let instance = store.instance_id().await.unwrap();
        Self {
            _temp: temp,
            store,
            instance,
            next_user: 0,
        }
    }

    async fn provisioner(&self, pool: usize) -> Arc<dyn Provisioner> {
        let image =
            std::env::var("PGLAB_SANDBOX_IMAGE").unwrap_or_else(|_| "pglab/sandbox:15".into());
        let config = Wrapper::parse_from([
            "pglab",
            "--sandbox",
            "docker",
            "--data-dir",
            self._temp.path().to_str().unwrap(),
            "--sandbox-image",
            &image,
            "--sandbox-pool",
            &pool.to_string(),
        ])
        .config;
        let p = pglab::sandbox::open(&config.sandbox, &config.sandbox_dirs(), &self.store)
            .await
            .expect("Docker backend");
        p.clone().start_background();
        p
    }

    async fn learner(&mut self) -> i64 {
        self.next_user += 1;
        sqlx::query("insert into users (username) values (?)")
            .bind(format!("bench{}", self.next_user))
            .execute(self.store.pool())
            .await
            .unwrap()
            .last_insert_rowid()
    }

    async fn pool_len(&self) -> usize {
        pglab::sandbox::records::Records::new(&self.store)
            .pool_all()
            .await
            .unwrap()
            .len()
    }

    async fn container(&self, learner: i64) -> String {
        pglab::sandbox::records::Records::new(&self.store)
            .get(learner)
            .await
            .unwrap()
            .unwrap()
            .container
    }
}

async fn select1(opts: &PgConnectOptions) {
    let mut conn = sqlx::PgConnection::connect_with(opts).await.unwrap();
    let one: i32 = sqlx::query_scalar("select 1")
        .fetch_one(&mut conn)
        .await
        .unwrap();
    assert_eq!(one, 1);
    let _ = conn.close().await;
}

/// Start to first query.
async fn timed_start(p: &dyn Provisioner, learner: i64) -> Duration {
    let began = Instant::now();
    let opts = p.start(learner).await.unwrap();
    select1(&opts).await;
    began.elapsed()
}

async fn memory(docker: &Docker, name: &str) -> u64 {
    let options = StatsOptionsBuilder::default()
        .stream(false)
        .one_shot(false)
        .build();
    let stats = docker
        .stats(name, Some(options))
        .next()
        .await
        .unwrap()
        .unwrap();
    let mem = stats.memory_stats.unwrap();
    let cache = mem
        .stats
        .as_ref()
        .and_then(|m| {
            m.get("total_inactive_file")
                .or_else(|| m.get("inactive_file"))
        })
        .copied()
        .unwrap_or(0);
    mem.usage.unwrap_or(0).saturating_sub(cache)
}

fn ms(d: Duration) -> String {
    format!("{:.0} ms", d.as_secs_f64() * 1000.0)
}

fn mib(b: u64) -> String {
    format!("{:.1} MiB", b as f64 / 1024.0 / 1024.0)
}

fn median(mut v: Vec<Duration>) -> (Duration, Duration) {
    v.sort();
    (v[v.len() / 2], *v.last().unwrap())
}

#[tokio::main]
async fn main() {
    if !Command::new("docker")
        .arg("info")
        .output()
        .is_ok_and(|o| o.status.success())
    {
        println!("sandbox bench: SKIPPED (no Docker engine answers; run scripts/test.sh first)");
        return;
    }
    let rounds: usize = std::env::var("PGLAB_BENCH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let docker = Docker::connect_with_local_defaults()
        .unwrap()
        .negotiate_version()
        .await
        .unwrap();
    let load = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    println!(
        "sandbox bench: {rounds} rounds; load average {}",
        load.split_whitespace()
            .take(3)
            .collect::<Vec<_>>()
            .join(" ")
    );
    let mut rows: Vec<(String, String, String, String)> = Vec::new();

    // Cold starts, then restarts of the same sandboxes once stopped.
    let mut b = Bench::new().await;
    let p = b.provisioner(0).await;
    let mut cold = Vec::new();
    let mut learners = Vec::new();
    for _ in 0..rounds {
        let l = b.learner().await;
        cold.push(timed_start(p.as_ref(), l).await);
        learners.push(l);
    }
    let (m, max) = median(cold);
    rows.push((
        "cold start to first query".into(),
        ms(m),
        ms(max),
        "target ≤ 2500 ms".into(),
    ));

    tokio::time::sleep(Duration::from_secs(3)).await;
    let mut idle = Vec::new();
    for &l in &learners {
        idle.push(memory(&docker, &b.container(l).await).await);
    }
    idle.sort();
    rows.push((
        "idle sandbox memory".into(),
        mib(idle[idle.len() / 2]),
        mib(*idle.last().unwrap()),
        "target ≤ 64 MiB".into(),
    ));

    let mut restart = Vec::new();
    for &l in &learners {
        p.stop(l).await.unwrap();
        restart.push(timed_start(p.as_ref(), l).await);
    }
    let (m, max) = median(restart);
    rows.push((
        "stopped sandbox to first query".into(),
        ms(m),
        ms(max),
        "target ≤ 1500 ms".into(),
    ));
    drop(p);
    drop(b);

    // Warm pool.
    let mut b = Bench::new().await;
    let p = b.provisioner(2).await;
    let mut warm = Vec::new();
    for _ in 0..rounds {
        let deadline = Instant::now() + Duration::from_secs(120);
        while b.pool_len().await < 2 && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let l = b.learner().await;
        warm.push(timed_start(p.as_ref(), l).await);
    }
    let (m, max) = median(warm);
    rows.push((
        "warm-pool start to first query".into(),
        ms(m),
        ms(max),
        "target ≤ 300 ms".into(),
    ));
    // Let the refill finish, then drop the provisioner (which ends the pool
    // task) before removing everything.
    let deadline = Instant::now() + Duration::from_secs(120);
    while b.pool_len().await < 2 && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    drop(p);
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(b);

    // Many at once.
    for n in [1usize, 5, 20] {
        let mut b = Bench::new().await;
        let p = b.provisioner(0).await;
        let mut ls = Vec::new();
        for _ in 0..n {
            ls.push(b.learner().await);
        }
        let began = Instant::now();
        let starts = ls.iter().map(|&l| {
            let p = p.clone();
            async move { timed_start(p.as_ref(), l).await }
        });
        let each = futures::future::join_all(starts).await;
        let wall = began.elapsed();
        tokio::time::sleep(Duration::from_secs(3)).await;
        let mut total = 0;
        for &l in &ls {
            total += memory(&docker, &b.container(l).await).await;
        }
        let (m, _) = median(each);
        rows.push((
            format!("{n} at once: all ready / total memory"),
            ms(wall),
            mib(total),
            format!("median each {}", ms(m)),
        ));
        drop(p);
        drop(b);
    }

    println!();
    println!(
        "{:<42} {:>12} {:>12}  {}",
        "measure", "median", "max/total", "note"
    );
    for (a, b, c, d) in rows {
        println!("{a:<42} {b:>12} {c:>12}  {d}");
    }
}
