//! LISTEN/NOTIFY and `\c DBNAME` in the console against a real PostgreSQL
//! (TempPg): notifications in one session and across sessions, worded as the
//! real psql 15 prints them (psql runs the same statements at test time), a
//! 100,000-notification flood, and `\c` with its messages, refusals, the
//! kept connection on failure, and a restored database (14.C.4).

#![allow(clippy::unwrap_used)]

mod common;

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::fixed::Fixed;
use common::pg::TempPg;
use pglab::console::result::RunResult;
use pglab::console::{ConsoleConfig, Consoles};
use pglab::sandbox::LearnerId;

const ME: LearnerId = 1;

fn consoles(pg: &TempPg) -> Arc<Consoles> {
    Consoles::new(Arc::new(Fixed::new(pg.options())), ConsoleConfig::default())
}

async fn run(c: &Arc<Consoles>, session: &str, sql: &str) -> Arc<RunResult> {
    let run = c.submit(ME, session, sql, None).unwrap();
    run.wait(Duration::from_secs(120))
        .await
        .expect("run finished")
}

/// What the real psql prints for `script` on `pg` (stdout and stderr).
fn psql(pg: &TempPg, db: &str, script: &str) -> String {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.sql");
    std::fs::write(&file, script).unwrap();
    let out = Command::new(common::pg::pg_bindir().join("psql"))
        .args(["-X", "-v", "ON_ERROR_STOP=1", "-h"])
        .arg(pg.socket_dir())
        .args(["-U", "labuser", "-d", db, "-f"])
        .arg(&file)
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr)
}

/// psql's notification lines with the PID replaced, so two runs compare.
fn without_pids(lines: impl IntoIterator<Item = String>) -> Vec<String> {
    lines
        .into_iter()
        .filter(|l| l.starts_with("Asynchronous notification"))
        .map(|l| {
            let cut = l.find("PID ").map_or(l.len(), |i| i + 4);
            format!("{}N.", &l[..cut])
        })
        .collect()
}

#[tokio::test]
async fn notifications_in_one_session_across_sessions_and_a_flood() {
    let pg = TempPg::start();
    let c = consoles(&pg);

    // One session: psql prints the notification after the NOTIFY (its
    // transaction commits), not after the next statement.
    let script = "listen ch;\nnotify ch;\nnotify ch, 'it''s here';\nselect 1 as one;\n\
                  begin;\nnotify ch, 'in tx';\nselect 2;\ncommit;\n\
                  listen \"Ch\";\nnotify \"Ch\", 'quoted \"q\"';\n";
    // psql first, while nobody listens in labdb: its NOTIFYs would reach T1
    // too once T1 listens (any session of the database notifying "ch" does),
    // and T1's idle poll below would then rightly deliver psql's
    // notifications (same text, psql's PID).
    let theirs: Vec<String> = psql(&pg, "labdb", script)
        .lines()
        .map(str::to_string)
        .collect();
    let r = run(&c, "T1", script).await;
    assert!(r.failed_statement.is_none(), "{r:?}");
    assert!(!r.connection_lost);
    let tags: Vec<_> = r
        .statements
        .iter()
        .map(|s| s.command_tag.clone().unwrap_or_default())
        .collect();
    assert_eq!(
        tags,
        [
            "LISTEN", "NOTIFY", "NOTIFY", "SELECT 1", "BEGIN", "NOTIFY", "SELECT 1", "COMMIT",
            "LISTEN", "NOTIFY"
        ]
    );
    let ours: Vec<String> = r
        .statements
        .iter()
        .flat_map(|s| s.notifications.clone())
        .collect();
    assert_eq!(without_pids(ours.clone()), without_pids(theirs));
    assert_eq!(r.statements[1].notifications.len(), 1);
    assert_eq!(r.statements[2].notifications.len(), 1);
    assert!(r.statements[3].notifications.is_empty());
    // In a transaction: with the COMMIT, as psql prints it.
    assert!(r.statements[5].notifications.is_empty());
    assert!(r.statements[6].notifications.is_empty());
    assert_eq!(r.statements[7].notifications.len(), 1);
    assert_eq!(r.statements[9].notifications.len(), 1);
    assert!(
        r.statements[9].notifications[0].starts_with(
            "Asynchronous notification \"Ch\" with payload \"quoted \"q\"\" received from server process with PID "
        ),
        "{:?}",
        r.statements[9]
    );
    let pid = c
        .sessions(ME)
        .into_iter()
        .find(|s| s.name == "T1")
        .unwrap()
        .pid
        .unwrap();
    assert!(
        ours[0].ends_with(&format!("server process with PID {pid}.")),
        "{ours:?} pid {pid}"
    );

    // Across sessions: T1 listens and is idle; T2 notifies; T1's pane gets it
    // live through the idle poll, with T2's pid.
    let r2 = run(&c, "T2", "notify ch, 'from T2'; select pg_backend_pid();").await;
    let t2_pid = r2.statements[1].rows[0][0].clone().unwrap();
    let idle = c
        .notifications(ME, "T1", Duration::from_secs(5))
        .await
        .unwrap();
    assert!(idle.listening);
    assert_eq!(
        idle.notifications,
        [format!(
            "Asynchronous notification \"ch\" with payload \"from T2\" received from server process with PID {t2_pid}."
        )]
    );
    // A session that never listened answers at once with nothing.
    let t0 = std::time::Instant::now();
    let none = c
        .notifications(ME, "T2", Duration::from_secs(5))
        .await
        .unwrap();
    assert!(!none.listening && none.notifications.is_empty());
    assert!(t0.elapsed() < Duration::from_secs(2));

    // A run submitted while T1's idle poll waits is not refused as busy: the
    // poll answers at once and the run takes the connection.
    let c2 = c.clone();
    let poll = tokio::spawn(async move {
        c2.notifications(ME, "T1", Duration::from_secs(10))
            .await
            .unwrap()
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let t0 = std::time::Instant::now();
    let r = run(&c, "T1", "select 'ran' as r;").await;
    assert_eq!(r.statements[0].rows[0][0].as_deref(), Some("ran"));
    assert!(r.listening, "T1 still listens");
    assert!(t0.elapsed() < Duration::from_secs(3), "{:?}", t0.elapsed());
    let polled = poll.await.unwrap();
    assert!(polled.notifications.is_empty(), "{polled:?}");
    // While a run goes on, a poll answers at once that it runs.
    let long = c.submit(ME, "T1", "select pg_sleep(1);", None).unwrap();
    let t0 = std::time::Instant::now();
    let during = c
        .notifications(ME, "T1", Duration::from_secs(5))
        .await
        .unwrap();
    assert!(during.running && t0.elapsed() < Duration::from_millis(500));
    long.wait(Duration::from_secs(10)).await.unwrap();

    // A notification that arrives while T1 is idle and is not polled comes
    // with T1's next statement, as psql prints it before the next result.
    run(&c, "T2", "notify ch, 'queued';").await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    let r = run(&c, "T1", "select 2;").await;
    assert_eq!(
        r.statements[0].notifications.len(),
        1,
        "{:?}",
        r.statements[0]
    );
    assert!(r.statements[0].notifications[0].contains("\"queued\""));

    // A flood of 100,000 in one transaction of T2: T1 keeps the first 1000
    // (the cap), counts the rest, and stays usable.
    let r = run(
        &c,
        "T2",
        "select count(pg_notify('ch', i::text)) from generate_series(1, 100000) i;",
    )
    .await;
    assert!(r.failed_statement.is_none(), "{r:?}");
    let mut kept = 0usize;
    let mut dropped = 0u64;
    let t0 = std::time::Instant::now();
    while (kept as u64) + dropped < 100_000 && t0.elapsed() < Duration::from_secs(60) {
        let got = c
            .notifications(ME, "T1", Duration::from_secs(2))
            .await
            .unwrap();
        assert!(got.notifications.len() <= pglab::console::run::NOTIFICATION_CAP);
        kept += got.notifications.len();
        dropped += got.dropped;
    }
    assert_eq!(kept as u64 + dropped, 100_000);
    assert!(dropped > 0);
    let r = run(&c, "T1", "select 3 as three;").await;
    assert_eq!(r.statements[0].rows[0][0].as_deref(), Some("3"));

    // The flood inside the listening session itself: the statement carries
    // the cap and the count of the rest.
    let r = run(
        &c,
        "T1",
        "select count(pg_notify('ch', i::text)) from generate_series(1, 100000) i;\nselect 4;",
    )
    .await;
    let s = &r.statements[0];
    assert_eq!(s.notifications.len(), pglab::console::run::NOTIFICATION_CAP);
    assert_eq!(
        s.notifications.len() as u64 + s.notifications_dropped,
        100_000
    );
    assert_eq!(r.statements[1].rows[0][0].as_deref(), Some("4"));

    // UNLISTEN *: the pane stops being a listener.
    run(&c, "T1", "unlisten *;").await;
    let got = c
        .notifications(ME, "T1", Duration::from_secs(1))
        .await
        .unwrap();
    assert!(!got.listening);
}

#[tokio::test]
async fn connect_to_another_database_like_psql() {
    let pg = TempPg::start();
    let c = consoles(&pg);
    let r = run(&c, "T1", "create database other;").await;
    assert!(r.failed_statement.is_none(), "{r:?}");
    assert_eq!(r.database, "labdb");

    let r = run(&c, "T1", "\\c other\nselect current_database();").await;
    assert!(r.failed_statement.is_none(), "{r:?}");
    let theirs = psql(&pg, "labdb", "\\c other\n");
    assert_eq!(r.statements[0].text.as_deref(), Some(theirs.trim_end()));
    assert_eq!(
        r.statements[0].text.as_deref(),
        Some("You are now connected to database \"other\" as user \"labuser\".")
    );
    assert_eq!(r.statements[1].rows[0][0].as_deref(), Some("other"));
    assert_eq!(r.database, "other");
    assert_eq!(
        c.sessions(ME)
            .into_iter()
            .find(|s| s.name == "T1")
            .unwrap()
            .database,
        "other"
    );

    // The database survives across runs.
    let r = run(&c, "T1", "select current_database();").await;
    assert_eq!(r.statements[0].rows[0][0].as_deref(), Some("other"));

    // A failed \c keeps the old connection, as psql does, and stops the script.
    let r = run(&c, "T1", "\\c nope\nselect 1;").await;
    assert_eq!(r.failed_statement, Some(0));
    let e = r.statements[0].error.as_ref().unwrap();
    assert!(
        e.message.contains("\"nope\" does not exist"),
        "{}",
        e.message
    );
    assert!(
        e.message.ends_with("Previous connection kept"),
        "{}",
        e.message
    );
    assert_eq!(r.database, "other");
    let r = run(&c, "T1", "select current_database();").await;
    assert_eq!(r.statements[0].rows[0][0].as_deref(), Some("other"));

    // Other users, hosts, ports and connection strings are refused clearly.
    for (line, says) in [
        ("\\c labdb postgres", "cannot change the user"),
        ("\\c labdb - example.com", "host"),
        ("\\c labdb - - 5433", "port"),
        ("\\c host=example.com dbname=labdb", "connection string"),
    ] {
        let r = run(&c, "T1", line).await;
        let e = r.statements[0].error.as_ref().unwrap();
        assert!(e.message.contains(says), "{line}: {}", e.message);
        assert_eq!(r.database, "other");
    }

    // An open transaction is closed by \c (the server rolls it back).
    let r = run(
        &c,
        "T1",
        "begin; create table lost (id int);\n\\c labdb\nselect to_regclass('lost') is null as gone;",
    )
    .await;
    assert!(r.failed_statement.is_none(), "{r:?}");
    assert_eq!(r.database, "labdb");
    run(&c, "T1", "\\c other").await;
    let r = run(&c, "T1", "select to_regclass('lost') is null as gone;").await;
    assert_eq!(r.statements[0].rows[0][0].as_deref(), Some("t"));
    run(&c, "T1", "\\c").await;

    // 14.C.4: a dump of labdb restored into labdb_restore, checked with \c.
    let r = run(
        &c,
        "T1",
        "\\c labdb\ncreate table tasks (id int primary key, title text);\n\
         insert into tasks select i, 'task ' || i from generate_series(1, 250) i;",
    )
    .await;
    assert!(r.failed_statement.is_none(), "{r:?}");
    let dump = tempfile::tempdir().unwrap();
    let file = dump.path().join("labdb.dump");
    let bin = common::pg::pg_bindir();
    let ok = Command::new(bin.join("pg_dump"))
        .args(["-Fc", "-h"])
        .arg(pg.socket_dir())
        .args(["-U", "labuser", "-d", "labdb", "-f"])
        .arg(&file)
        .status()
        .unwrap();
    assert!(ok.success());
    run(&c, "T2", "create database labdb_restore;").await;
    let ok = Command::new(bin.join("pg_restore"))
        .args(["-h"])
        .arg(pg.socket_dir())
        .args(["-U", "labuser", "-d", "labdb_restore"])
        .arg(&file)
        .status()
        .unwrap();
    assert!(ok.success());
    let r = run(
        &c,
        "T1",
        "\\c labdb_restore\nselect count(*) from tasks;\n\\conninfo",
    )
    .await;
    assert!(r.failed_statement.is_none(), "{r:?}");
    assert_eq!(
        r.statements[0].text.as_deref(),
        Some("You are now connected to database \"labdb_restore\" as user \"labuser\".")
    );
    assert_eq!(r.statements[1].rows[0][0].as_deref(), Some("250"));
    assert!(
        r.statements[2]
            .text
            .as_deref()
            .unwrap()
            .starts_with("You are connected to database \"labdb_restore\"")
    );
    assert_eq!(r.database, "labdb_restore");
}

/// Exactly once: T2 sends 300 notifications one by one while T1 is polled
/// idle and runs statements at the same time, from two tasks; every payload
/// comes once, by a poll or with a T1 statement, never both, none lost, and
/// no T1 run is refused as busy by a waiting poll.
#[tokio::test]
async fn each_notification_is_delivered_once_by_a_run_or_a_poll() {
    let pg = TempPg::start();
    let c = consoles(&pg);
    run(&c, "T1", "listen ch;").await;
    const N: usize = 300;
    let sender = {
        let c = c.clone();
        tokio::spawn(async move {
            for i in 1..=N {
                let r = run(&c, "T2", &format!("notify ch, '{i}';")).await;
                assert!(r.failed_statement.is_none(), "{r:?}");
                // Paced, so that the sending outlasts many T1 runs.
                tokio::time::sleep(Duration::from_millis(2)).await;
            }
        })
    };
    let done = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let poller = {
        let (c, done) = (c.clone(), done.clone());
        tokio::spawn(async move {
            let mut got = Vec::new();
            while !done.load(std::sync::atomic::Ordering::Relaxed) {
                let idle = c
                    .notifications(ME, "T1", Duration::from_millis(300))
                    .await
                    .unwrap();
                assert_eq!(idle.dropped, 0);
                got.extend(idle.notifications);
                if idle.running {
                    tokio::time::sleep(Duration::from_millis(5)).await;
                }
            }
            got
        })
    };
    let mut with_runs = Vec::new();
    let mut runs = 0;
    while !sender.is_finished() {
        // A run that lasts: what arrives during it comes with it (the
        // server hands a busy backend its notifications when it is done).
        let r = run(&c, "T1", "select pg_sleep(0.01);").await;
        with_runs.extend(r.statements[0].notifications.clone());
        runs += 1;
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    sender.await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;
    done.store(true, std::sync::atomic::Ordering::Relaxed);
    let by_polls = poller.await.unwrap();
    // What is still buffered comes with the next statement.
    let r = run(&c, "T1", "select 1;").await;
    with_runs.extend(r.statements[0].notifications.clone());
    let payload = |n: &String| -> usize {
        let rest = &n[n.find("payload \"").unwrap() + 9..];
        rest[..rest.find('"').unwrap()].parse().unwrap()
    };
    let mut all: Vec<usize> = by_polls.iter().chain(&with_runs).map(payload).collect();
    all.sort_unstable();
    assert_eq!(all, (1..=N).collect::<Vec<_>>(), "every notification once");
    eprintln!(
        "{N} notifications: {} by idle polls, {} with {runs} runs",
        by_polls.len(),
        with_runs.len()
    );
    assert!(
        !by_polls.is_empty() && !with_runs.is_empty(),
        "both paths were exercised"
    );
}
