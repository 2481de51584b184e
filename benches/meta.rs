//! Meta-command benchmark (`cargo bench --bench meta`): `\d+ tasks` on a
//! sandbox-like server (a real PostgreSQL 15, `TempPg`) holding the corpus
//! schema (tests/fixtures/psql_meta/schema.sql) plus 200 more tables, each
//! with a primary key, an index and a foreign key to `owners`, run through
//! `console::meta::run_meta` on one connection as a session does.
//! Prints the median and p90 of 100 runs (target: median ≤ 20 ms), and the
//! same for `\dt` and `\d tasks`.

#![allow(clippy::unwrap_used, dead_code)]

#[path = "../tests/common/pg.rs"]
mod pg;

use std::process::Command;
use std::time::Instant;

use pglab::console::meta::{Settings, run_meta};
use pglab::console::run::{Conn, Limits};
use sqlx::Connection;
use sqlx::postgres::PgConnection;

fn main() {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    rt.block_on(run());
}

async fn run() {
    let server = pg::TempPg::start();
    let schema = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/psql_meta/schema.sql"
    );
    let status = Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h"])
        .arg(server.socket_dir())
        .args(["-U", "labuser", "-d", "labdb", "-f", schema])
        .status()
        .unwrap();
    assert!(status.success());
    let mut conn = PgConnection::connect_with(&server.options()).await.unwrap();
    let mut ddl = String::new();
    for i in 0..200 {
        ddl.push_str(&format!(
            "create table extra_{i} (id int primary key, owner_id bigint references owners (id), note text); \
             create index extra_{i}_note_idx on extra_{i} (note);"
        ));
    }
    sqlx::raw_sql(&ddl).execute(&mut conn).await.unwrap();
    conn.close().await.unwrap();
    let mut c = Conn::connect(&server.options()).await.unwrap();
    let limits = Limits::default();
    let mut settings = Settings::default();
    println!(
        "meta-command latency, 100 runs each, {} relations",
        200 * 3 + 30
    );
    println!("{:<12} {:>10} {:>10}", "command", "median ms", "p90 ms");
    for cmd in ["\\d+ tasks", "\\d tasks", "\\dt", "\\d+ owners"] {
        // Warm up the connection and the server's caches.
        for _ in 0..5 {
            let r = run_meta(&mut c, cmd, &mut settings, &limits).await;
            assert!(r.error.is_none(), "{cmd}: {:?}", r.error);
        }
        let mut ms: Vec<f64> = (0..100).map(|_| 0.0).collect();
        for m in ms.iter_mut() {
            let t = Instant::now();
            let r = run_meta(&mut c, cmd, &mut settings, &limits).await;
            *m = t.elapsed().as_secs_f64() * 1000.0;
            assert!(r.error.is_none());
        }
        ms.sort_by(|a, b| a.total_cmp(b));
        println!("{cmd:<12} {:>10.2} {:>10.2}", ms[50], ms[90]);
    }
}
