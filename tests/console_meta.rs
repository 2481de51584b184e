//! The console's meta-commands against psql 15 itself: a varied schema
//! (tests/fixtures/psql_meta/schema.sql) on a real server, then every case of
//! the corpus (tests/fixtures/psql_meta/*.psql) run through the real
//! `psql -X -P pager=off -c ...` and through `console::Consoles`, and pglab's
//! psql-style rendering (`meta::text`) compared with psql's output: standard
//! output and standard error, byte for byte.
//!
//! Corpus format: one case per line (`#` comments); a case's parts are
//! separated by ` ||| `, each one psql `-c` and one console run in the same
//! session. A case starting with `~ ` compares with sizes (`8192 bytes`)
//! and column padding normalized (they can change between the two runs);
//! one starting with `1 ` compares only the first line of standard error
//! (pglab adds the list of its meta-commands to psql's `invalid command`).

#![allow(clippy::unwrap_used)]

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use common::fixed::Fixed;
use common::pg::TempPg;
use pglab::console::meta::text::{psql_error_text, psql_text};
use pglab::console::result::StatementResult;
use pglab::console::{ConsoleConfig, Consoles};

const ME: i64 = 1;

fn psql(pg: &TempPg, parts: &[&str]) -> (String, String) {
    let mut cmd = Command::new("psql");
    cmd.args(["-X", "-P", "pager=off", "-h"])
        .arg(pg.socket_dir())
        .args(["-U", "labuser", "-d", "labdb"]);
    for p in parts {
        cmd.arg("-c").arg(p);
    }
    let out = cmd.env_remove("PGCLIENTENCODING").output().unwrap();
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// What psql prints on standard error for a result that did not fail:
/// a listing's "Did not find any relation named ..." and `\errverbose`.
fn stderr_text(r: &StatementResult) -> String {
    if r.error.is_some() {
        return psql_error_text(r);
    }
    match &r.text {
        Some(t)
            if r.kind == "meta"
                && (t.starts_with("Did not find any")
                    || (r.sql.trim_start().starts_with("\\errverbose")
                        && t != "There is no previous error.")) =>
        {
            format!("{t}\n")
        }
        _ => String::new(),
    }
}

async fn pglab(c: &Arc<Consoles>, session: &str, parts: &[&str]) -> (String, String) {
    let (mut out, mut err) = (String::new(), String::new());
    for p in parts {
        let run = c.submit(ME, session, p, None).unwrap();
        let res = run
            .wait(Duration::from_secs(60))
            .await
            .expect("run finished");
        for r in &res.statements {
            let e = stderr_text(r);
            if e.is_empty() {
                out.push_str(&psql_text(r, res.expanded));
            }
            err.push_str(&e);
        }
    }
    c.close(ME, session).await.unwrap();
    (out, err)
}

/// Sizes become `SIZE`, runs of spaces and dashes one each.
fn loose(s: &str) -> String {
    let mut words: Vec<String> = Vec::new();
    for w in s.split_whitespace() {
        if matches!(w, "bytes" | "kB" | "MB" | "GB")
            && words
                .last()
                .is_some_and(|p| p.chars().all(|c| c.is_ascii_digit()))
        {
            words.pop();
            words.push("SIZE".into());
            continue;
        }
        let mut x = String::new();
        for ch in w.chars() {
            if !(ch == '-' && x.ends_with('-')) {
                x.push(ch);
            }
        }
        words.push(x);
    }
    words.join(" ")
}

fn corpus() -> Vec<(String, String)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/psql_meta");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "psql"))
        .collect();
    files.sort();
    let mut cases = Vec::new();
    for f in files {
        let name = f.file_name().unwrap().to_string_lossy().into_owned();
        for line in std::fs::read_to_string(&f).unwrap().lines() {
            let line = line.trim_end();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            cases.push((name.clone(), line.to_string()));
        }
    }
    cases
}

#[tokio::test]
async fn meta_commands_print_what_psql_prints() {
    let pg = TempPg::start();
    let schema = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/psql_meta/schema.sql");
    let status = Command::new("psql")
        .args(["-X", "-q", "-v", "ON_ERROR_STOP=1", "-h"])
        .arg(pg.socket_dir())
        .args(["-U", "labuser", "-d", "labdb", "-f"])
        .arg(&schema)
        .status()
        .unwrap();
    assert!(status.success(), "the schema loads");
    let c = Consoles::new(Arc::new(Fixed::new(pg.options())), ConsoleConfig::default());
    let cases = corpus();
    assert!(cases.len() >= 60, "the corpus has {} cases", cases.len());
    let mut failures = Vec::new();
    for (i, (file, case)) in cases.iter().enumerate() {
        let (mode, body) = match case.split_once(' ') {
            Some(("~", rest)) => ('~', rest),
            Some(("1", rest)) => ('1', rest),
            _ => (' ', case.as_str()),
        };
        let parts: Vec<&str> = body.split(" ||| ").collect();
        let (want_out, want_err) = psql(&pg, &parts);
        let (got_out, got_err) = pglab(&c, &format!("C{i}"), &parts).await;
        let same = match mode {
            '~' => loose(&want_out) == loose(&got_out) && want_err == got_err,
            '1' => {
                want_out == got_out
                    && want_err.lines().next() == got_err.lines().next()
                    && !want_err.is_empty()
            }
            _ => want_out == got_out && want_err == got_err,
        };
        if !same {
            failures.push(format!(
                "--- {file}: {body}\n[psql stdout]\n{want_out}[pglab stdout]\n{got_out}[psql stderr]\n{want_err}[pglab stderr]\n{got_err}"
            ));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases differ from psql:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
}
