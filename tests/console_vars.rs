//! psql variables, `\i` of lab files, `\gset` and `\gexec` in the console,
//! against psql 15 itself: every script of tests/fixtures/psql_vars/*.psql
//! runs through the real `psql -X -v ON_ERROR_STOP=on -f SCRIPT` (from that
//! folder, so `\i scripts/...` reads the fixture's lab files) and through
//! `console::Consoles` (whose lab files are that folder's sub-folders), one
//! fresh session each, on a real PostgreSQL; standard output and standard
//! error (psql's `psql:FILE:LINE: ` and `error: ` prefixes taken off) must
//! be the same, byte for byte. `\set`'s listing is compared without the
//! variables that describe psql's own client and connection (HOST, PORT,
//! VERSION...), which the console does not have.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::fixed::Fixed;
use common::pg::TempPg;
use common::psql::{Printed, print_results, run_psql};
use pglab::console::{ConsoleConfig, Consoles};
use pglab::sandbox::labfiles::LabFiles;

const ME: i64 = 1;

/// psql's variables the console does not list (they are psql's client's).
const CLIENT_VARS: &[&str] = &[
    "HOST",
    "PORT",
    "VERSION",
    "VERSION_NAME",
    "VERSION_NUM",
    "SERVER_VERSION_NAME",
    "SERVER_VERSION_NUM",
    "LAST_ERROR_MESSAGE",
    "LAST_ERROR_SQLSTATE",
    "ERROR",
    "SQLSTATE",
    "ROW_COUNT",
    "LASTOID",
];

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/psql_vars")
}

fn without_client_vars(out: &str) -> String {
    out.lines()
        .filter(|l| {
            !CLIENT_VARS
                .iter()
                .any(|v| l.starts_with(&format!("{v} = '")))
        })
        .map(|l| format!("{l}\n"))
        .collect()
}

fn psql(pg: &TempPg, file: &str) -> (String, String) {
    let p = run_psql(pg, &dir(), file, &[]);
    (p.out, p.err)
}

async fn pglab(c: &Arc<Consoles>, session: &str, script: &str) -> (String, String) {
    let run = c.submit(ME, session, script, None).unwrap();
    let res = run
        .wait(Duration::from_secs(120))
        .await
        .expect("run finished");
    let Printed { out, err } = print_results(&res.statements, res.expanded, false);
    c.close(ME, session).await.unwrap();
    (out, err)
}

fn consoles(pg: &TempPg) -> Arc<Consoles> {
    let c = Consoles::new(Arc::new(Fixed::new(pg.options())), ConsoleConfig::default());
    c.set_lab_files(LabFiles::collect(&dir()).texts());
    c
}

#[tokio::test]
async fn variables_include_gset_and_gexec_print_what_psql_prints() {
    let pg = TempPg::start();
    let c = consoles(&pg);
    let mut files: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".psql"))
        .collect();
    files.sort();
    assert!(files.len() >= 10, "the corpus has {} scripts", files.len());
    let mut failures = Vec::new();
    for (i, file) in files.iter().enumerate() {
        let script = std::fs::read_to_string(dir().join(file)).unwrap();
        // Each script twice on the same server: drop what the first made.
        let (want_out, want_err) = psql(&pg, file);
        let _ = Command::new("psql")
            .args(["-X", "-q", "-h"])
            .arg(pg.socket_dir())
            .args(["-U", "labuser", "-d", "labdb", "-c"])
            .arg("drop schema public cascade; create schema public")
            .output()
            .unwrap();
        let (got_out, got_err) = pglab(&c, &format!("V{i}"), &script).await;
        let _ = Command::new("psql")
            .args(["-X", "-q", "-h"])
            .arg(pg.socket_dir())
            .args(["-U", "labuser", "-d", "labdb", "-c"])
            .arg("drop schema public cascade; create schema public")
            .output()
            .unwrap();
        let (want_out, got_out) = (
            without_client_vars(&want_out),
            without_client_vars(&got_out),
        );
        if want_out != got_out || want_err != got_err {
            failures.push(format!(
                "--- {file}\n[psql stdout]\n{want_out}[pglab stdout]\n{got_out}[psql stderr]\n{want_err}[pglab stderr]\n{got_err}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} scripts differ from psql:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}

/// Variables belong to one console session: T2 does not see T1's.
#[tokio::test]
async fn variables_are_per_session() {
    let pg = TempPg::start();
    let c = consoles(&pg);
    let run = |s: &'static str, sql: &'static str| {
        let c = c.clone();
        async move {
            let r = c.submit(ME, s, sql, None).unwrap();
            r.wait(Duration::from_secs(60)).await.unwrap()
        }
    };
    run("T1", "\\set who one").await;
    run("T2", "\\set who two").await;
    let t1 = run("T1", "\\echo :who :{?other}").await;
    let t2 = run("T2", "\\echo :who").await;
    assert_eq!(t1.statements[0].text.as_deref(), Some("one FALSE"));
    assert_eq!(t2.statements[0].text.as_deref(), Some("two"));
}

/// `\i` reads only lab files: no absolute path, no `..`, nothing else.
#[tokio::test]
async fn include_reads_only_lab_files() {
    let pg = TempPg::start();
    let c = consoles(&pg);
    for (line, want) in [
        ("\\i /etc/passwd", "reads only the course's lab files"),
        (
            "\\i ../../../Cargo.toml",
            "reads only the course's lab files",
        ),
        (
            "\\i scripts/../../console_vars.rs",
            "reads only the course's lab files",
        ),
        ("\\i basic.psql", "basic.psql: No such file or directory"),
        ("\\i", "\\i: missing required argument"),
        ("\\i more.sql", ""),
    ] {
        let r = c.submit(ME, "T1", line, None).unwrap();
        let res = r.wait(Duration::from_secs(60)).await.unwrap();
        let got = res
            .statements
            .iter()
            .find_map(|s| s.error.as_ref().map(|e| e.message.clone()))
            .unwrap_or_default();
        if want.is_empty() {
            // `more.sql` is the end of exactly one lab file's path; it
            // fails only because its table does not exist here.
            assert!(got.contains("lab_items"), "{line}: {got}");
        } else {
            assert!(got.contains(want), "{line}: {got}");
        }
    }
}

/// A `\gexec` of more than 10,000 statements runs none and says why; the
/// session answers right after.
#[tokio::test]
async fn gexec_is_bounded() {
    let pg = TempPg::start();
    let c = consoles(&pg);
    let r = c
        .submit(
            ME,
            "T1",
            "select 'select 1' from generate_series(1, 10001) \\gexec\n",
            None,
        )
        .unwrap();
    let res = r.wait(Duration::from_secs(60)).await.unwrap();
    let e = res.statements[0].error.as_ref().expect("refused");
    assert!(e.message.contains("at most 10000"), "{}", e.message);
    assert_eq!(res.statements.len(), 1);
    let r = c
        .submit(
            ME,
            "T1",
            "select 'select 1' from generate_series(1, 3) \\gexec",
            None,
        )
        .unwrap();
    let res = r.wait(Duration::from_secs(60)).await.unwrap();
    assert_eq!(res.statements.len(), 4, "the \\gexec and its 3 statements");
    assert!(res.statements.iter().all(|s| s.error.is_none()));
}
