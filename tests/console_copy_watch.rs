//! `\copy` and `\watch` in the console against psql 15 itself.
//!
//! `\copy`: every script of
//! tests/fixtures/psql_copy/*.psql runs through the real
//! `psql -X -v ON_ERROR_STOP=1 -f SCRIPT` (from that folder, so
//! `\copy t from 'data/pets.csv'` reads the fixture's file) and through
//! `console::Consoles` whose lab files are that folder's sub-folders, one
//! fresh session each, on a real PostgreSQL; standard output and standard
//! error must be the same, byte for byte (`common::psql`). Then what psql
//! cannot show: the console refuses to write files, run programs or read
//! standard input, and reads no file but the course's lab files.
//!
//! `\watch`: runs until cancelled (the cancel route's `Consoles::cancel`),
//! each result under psql's title (compared with the real psql's, which is
//! stopped by SIGINT, the time of day left out), `\watch 0` every second
//! as psql 15, an empty query buffer refused with psql's words, the first
//! error ends it, and a runaway watch stops at the console's bound with
//! only the latest results kept.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use common::fixed::Fixed;
use common::pg::TempPg;
use common::psql::{print_results, run_psql, without_pids};
use pglab::console::result::RunResult;
use pglab::console::{ConsoleConfig, Consoles};
use pglab::sandbox::labfiles::LabFiles;

const ME: i64 = 1;

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/psql_copy")
}

fn consoles(pg: &TempPg) -> Arc<Consoles> {
    let c = Consoles::new(Arc::new(Fixed::new(pg.options())), ConsoleConfig::default());
    c.set_lab_files(LabFiles::collect(&dir()).texts());
    c
}

fn reset(pg: &TempPg) {
    let ok = std::process::Command::new(common::pg::pg_bindir().join("psql"))
        .args(["-X", "-q", "-h"])
        .arg(pg.socket_dir())
        .args(["-U", "labuser", "-d", "labdb", "-c"])
        .arg("drop schema public cascade; create schema public")
        .status()
        .unwrap()
        .success();
    assert!(ok);
}

#[tokio::test]
async fn slash_copy_prints_what_psql_prints() {
    let pg = TempPg::start();
    let c = consoles(&pg);
    let mut files: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".psql"))
        .collect();
    files.sort();
    assert!(files.len() >= 6, "{} scripts", files.len());
    let mut failures = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let script = std::fs::read_to_string(dir().join(file)).unwrap();
        let want = run_psql(&pg, &dir(), file, &[]);
        reset(&pg);
        let session = format!("C{i}");
        let res = c
            .submit(ME, &session, &script, None)
            .unwrap()
            .wait(Duration::from_secs(60))
            .await
            .expect("run finished");
        let got = print_results(&res.statements, res.expanded, false);
        c.close(ME, &session).await.unwrap();
        reset(&pg);
        if without_pids(&want.out) != without_pids(&got.out) || want.err != got.err {
            failures.push(format!(
                "--- {file}\n[psql stdout]\n{}[pglab stdout]\n{}[psql stderr]\n{}[pglab stderr]\n{}",
                want.out, got.out, want.err, got.err
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// What psql would do on the client's machine the console refuses, and
/// says why; nothing outside the lab files is ever read. The session
/// answers right after.
#[tokio::test]
async fn slash_copy_refuses_files_programs_and_stdin() {
    let pg = TempPg::start();
    let c = consoles(&pg);
    let run = |sql: String| {
        let c = c.clone();
        async move {
            c.submit(ME, "T1", &sql, None)
                .unwrap()
                .wait(Duration::from_secs(60))
                .await
                .unwrap()
        }
    };
    run("create table t (x text)".into()).await;
    for (line, want) in [
        ("\\copy t to '/tmp/pglab-out.csv'", "writes no files"),
        ("\\copy t from program 'id'", "runs no programs"),
        ("\\copy t to program 'cat'", "runs no programs"),
        ("\\copy t from stdin", "no input to read"),
        ("\\copy t from pstdin", "no input to read"),
        (
            "\\copy t from '/etc/passwd'",
            "reads only the course's lab files",
        ),
        (
            "\\copy t from '../psql_vars/basic.psql'",
            "reads only the course's lab files",
        ),
        (
            "\\copy t from 'console_copy.rs'",
            "console_copy.rs: No such file or directory",
        ),
    ] {
        let res = run(line.to_string()).await;
        let e = res.statements[0].error.as_ref().expect(line);
        assert!(e.message.contains(want), "{line}: {}", e.message);
    }
    assert!(!Path::new("/tmp/pglab-out.csv").exists());
    let res = run("select count(*) from t".into()).await;
    assert_eq!(res.statements[0].rows, vec![vec![Some("0".to_string())]]);
}

/// psql's `\watch` title with its time of day (`%c`) replaced.
fn untimed(text: &str) -> String {
    text.lines()
        .map(|l| match l.find(" (every ") {
            Some(i) if i >= 24 => format!("TIME{}\n", &l[i..]),
            _ => format!("{l}\n"),
        })
        .collect()
}

async fn watch_until_cancelled(c: &Arc<Consoles>, script: &str, after: Duration) -> Arc<RunResult> {
    let run = c.submit(ME, "W", script, None).unwrap();
    tokio::time::sleep(after).await;
    assert!(
        c.cancel(ME, "W").await.unwrap(),
        "the watch was still running"
    );
    run.wait(Duration::from_secs(30))
        .await
        .expect("the watch ended")
}

#[tokio::test]
async fn watch_runs_until_cancelled_with_psql_titles() {
    let pg = TempPg::start();
    let c = consoles(&pg);
    let res = watch_until_cancelled(
        &c,
        "select 1 as one \\watch 0.2",
        Duration::from_millis(1300),
    )
    .await;
    let n = res.statements.len();
    assert!((3..=8).contains(&n), "{n} runs in 1.3 s at 0.2 s");
    let title = regex_like_title(res.statements[0].title.as_deref().unwrap());
    assert!(title, "{:?}", res.statements[0].title);
    for s in &res.statements {
        assert!(s.error.is_none());
        assert_eq!(s.rows, vec![vec![Some("1".to_string())]]);
        assert!(s.title.as_deref().unwrap().ends_with(" (every 0.2s)\n"));
    }
    // psql's own output of the same watch, stopped by SIGINT.
    let mut child = std::process::Command::new(common::pg::pg_bindir().join("psql"))
        .args(["-X", "-P", "pager=off", "-h"])
        .arg(pg.socket_dir())
        .args(["-U", "labuser", "-d", "labdb", "-f", "-"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().unwrap();
        stdin.write_all(b"select 1 as one \\watch 0.2\n").unwrap();
    }
    tokio::time::sleep(Duration::from_millis(700)).await;
    let ok = std::process::Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let mut theirs = String::new();
    use std::io::Read;
    child
        .stdout
        .take()
        .unwrap()
        .read_to_string(&mut theirs)
        .unwrap();
    let _ = child.wait();
    let one_of_theirs: String = untimed(&theirs).split_inclusive("\n\n").take(2).collect();
    let mine = untimed(&pglab::console::meta::text::psql_text(
        &res.statements[0],
        false,
    ));
    assert_eq!(mine, one_of_theirs, "psql printed:\n{theirs}");
    // The session answers at once afterwards.
    let r = c.submit(ME, "W", "select 2", None).unwrap();
    let r = r.wait(Duration::from_secs(10)).await.unwrap();
    assert_eq!(r.statements[0].rows, vec![vec![Some("2".to_string())]]);
}

/// `Thu Dec  3 15:04:05 2026 (every ...` : strftime's `%c` in the C locale.
fn regex_like_title(t: &str) -> bool {
    let b = t.as_bytes();
    t.len() > 24
        && b[3] == b' '
        && b[7] == b' '
        && (b[8] == b' ' || b[8].is_ascii_digit())
        && b[9].is_ascii_digit()
        && &t[13..14] == ":"
        && &t[16..17] == ":"
        && t[20..24].chars().all(|c| c.is_ascii_digit())
        && t[24..].starts_with(" (every ")
}

#[tokio::test]
async fn watch_zero_empty_errors_and_the_bound() {
    let pg = TempPg::start();
    let c = consoles(&pg);
    // psql 15 reads `\watch 0` (and an unreadable interval) as 1 second.
    let res =
        watch_until_cancelled(&c, "select 'z' as z \\watch 0", Duration::from_millis(1500)).await;
    assert!((1..=3).contains(&res.statements.len()));
    assert!(
        res.statements[0]
            .title
            .as_deref()
            .unwrap()
            .ends_with("(every 1s)\n")
    );
    // Nothing to run: psql's words (psql prints them too).
    let out = std::process::Command::new(common::pg::pg_bindir().join("psql"))
        .args(["-X", "-h"])
        .arg(pg.socket_dir())
        .args(["-U", "labuser", "-d", "labdb", "-c", "\\watch"])
        .output()
        .unwrap();
    let theirs = String::from_utf8_lossy(&out.stderr).trim().to_string();
    let r = c.submit(ME, "E", "\\watch 1", None).unwrap();
    let r = r.wait(Duration::from_secs(10)).await.unwrap();
    assert_eq!(r.statements[0].error.as_ref().unwrap().message, theirs);
    // The first error ends the watch, as in psql.
    let script = "create sequence s;\nselect 10 / (3 - nextval('s')::int) as x \\watch 0.05";
    let r = c.submit(ME, "E", script, None).unwrap();
    let r = r.wait(Duration::from_secs(30)).await.unwrap();
    let last = r.statements.last().unwrap();
    assert_eq!(
        last.error.as_ref().unwrap().sqlstate,
        "22012",
        "{:?}",
        last.error
    );
    assert_eq!(
        r.statements.len(),
        1 + 3,
        "CREATE SEQUENCE, two runs and the failed one"
    );
    // A runaway watch stops at the bound with the latest results only.
    let r = c.submit(ME, "B", "select 1 \\watch 0.0001", None).unwrap();
    let r = r.wait(Duration::from_secs(120)).await.expect("bounded");
    assert_eq!(r.statements.len(), pglab::console::watch::KEEP);
    let note = &r.statements.last().unwrap().notices[0].message;
    assert!(note.contains("stopped after 1000 runs"), "{note}");
}
