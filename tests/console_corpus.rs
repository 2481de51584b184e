//! The console against psql 15, script by script: every file of
//! tests/fixtures/psql_corpus/*.psql (our own scripts, one per behaviour of
//! issue 13: command tags of each statement kind, values of each type,
//! notices, errors and their carets, psqlscan's statement boundaries,
//! transactions, the stop point) runs through the real
//! `psql -X -v ON_ERROR_STOP=1 -e -f FILE` on a real PostgreSQL 15 (TempPg)
//! and through `POST /api/sql` of the real server with a learner's real
//! sandbox (the local backend), one console session per script. The
//! answer is printed as psql prints it (`common::psql`) and compared with
//! psql's own output field by field: the statements sent (psql's `-e` echo),
//! the rows, tags and texts, notifications, and on standard error the
//! notices and errors (message, caret line, DETAIL, HINT, CONTEXT); the stop
//! point is where both streams end.
//!
//! A script psql and the console cannot agree on is listed in [`KNOWN`]
//! with the reason: it is still run and compared, and the test fails when it
//! starts to agree (so that the mark goes) as well as when any other differs.

#![allow(clippy::unwrap_used)]

mod common;
#[path = "common/labs.rs"]
mod labs;
#[path = "common/sandbox.rs"]
mod support;

use std::path::{Path, PathBuf};

use common::pg::TempPg;
use common::psql::{Printed, print_results, result_from_json, run_psql, without_pids};
use serde_json::{Value, json};

/// Scripts whose difference with psql cannot be removed, and why.
const KNOWN: &[(&str, &str)] = &[];

fn dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/psql_corpus")
}

/// Runs `script` in console session `session` over HTTP: the whole answer.
async fn post(lab: &labs::Lab, session: &str, script: &str) -> Value {
    let res = lab
        .http
        .post(lab.url("/api/sql"))
        .json(&json!({"session": session, "sql": script, "timeout_s": 60}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{script}");
    let mut v: Value = res.json().await.unwrap();
    for _ in 0..100 {
        if v["status"] == "done" {
            return v;
        }
        let id = v["run_id"].as_str().unwrap().to_string();
        v = lab
            .http
            .get(lab.url(&format!("/api/runs/{id}?wait_ms=5000")))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
    }
    panic!("run never finished: {v}");
}

/// The answer printed as psql prints it, with `-e`.
fn printed(answer: &Value) -> Printed {
    let results: Vec<_> = answer["statements"]
        .as_array()
        .unwrap()
        .iter()
        .map(result_from_json)
        .collect();
    print_results(&results, answer["expanded"] == true, true)
}

/// The first line where two texts part, for the report.
fn first_difference(want: &str, got: &str) -> String {
    let (w, g): (Vec<_>, Vec<_>) = (want.lines().collect(), got.lines().collect());
    for i in 0..w.len().max(g.len()) {
        if w.get(i) != g.get(i) {
            return format!(
                "line {}: psql {:?} / pglab {:?}",
                i + 1,
                w.get(i).unwrap_or(&"<end>"),
                g.get(i).unwrap_or(&"<end>")
            );
        }
    }
    String::new()
}

fn reset(pg: &TempPg) {
    let status = std::process::Command::new(common::pg::pg_bindir().join("psql"))
        .args(["-X", "-q", "-h"])
        .arg(pg.socket_dir())
        .args(["-U", "labuser", "-d", "labdb", "-c"])
        .arg("drop schema public cascade; create schema public")
        .stderr(std::process::Stdio::null())
        .status()
        .unwrap();
    assert!(status.success());
}

const RESET: &str = "drop schema public cascade; create schema public;";

#[tokio::test]
async fn every_corpus_script_answers_as_psql() {
    let pg = TempPg::start();
    let lab = labs::start("local", "corpus", &[]).await.unwrap();
    let mut files: Vec<String> = std::fs::read_dir(dir())
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".psql"))
        .collect();
    files.sort();
    assert!(files.len() >= 40, "the corpus has {} scripts", files.len());
    let only = std::env::var("PGLAB_CORPUS_ONLY").ok();
    let mut failures = Vec::new();
    let mut fixed = Vec::new();
    for (i, file) in files.iter().enumerate() {
        // PGLAB_CORPUS_ONLY=60_,74_ runs the scripts whose names hold one
        // of these (the rest are skipped).
        if only
            .as_deref()
            .is_some_and(|o| !o.split(',').any(|p| file.contains(p)))
        {
            continue;
        }
        let script = std::fs::read_to_string(dir().join(file)).unwrap();
        let want = run_psql(&pg, &dir(), file, &["-e"]);
        reset(&pg);
        let session = format!("S{i}");
        let answer = post(&lab, &session, &script).await;
        let got = printed(&answer);
        // Leave nothing open behind the script, then start the next clean.
        let _ = post(&lab, &session, "rollback").await;
        let _ = lab
            .http
            .post(lab.url(&format!("/api/sessions/{session}/close")))
            .send()
            .await;
        post(&lab, "R", RESET).await;
        let (want_out, got_out) = (without_pids(&want.out), without_pids(&got.out));
        let same = want_out == got_out && want.err == got.err;
        let known = KNOWN.iter().find(|(f, _)| f == file);
        match (same, known) {
            (true, Some((_, why))) => fixed.push(format!("{file} (marked: {why})")),
            (true, None) | (false, Some(_)) => {}
            (false, None) => failures.push(format!(
                "--- {file}\nstdout {}\nstderr {}\n[psql stdout]\n{want_out}[pglab stdout]\n{got_out}[psql stderr]\n{}[pglab stderr]\n{}",
                first_difference(&want_out, &got_out),
                first_difference(&want.err, &got.err),
                want.err,
                got.err
            )),
        }
    }
    assert!(
        fixed.is_empty(),
        "these scripts now answer as psql: take them off KNOWN: {fixed:?}"
    );
    assert!(
        failures.is_empty(),
        "{} of {} scripts differ from psql:\n{}",
        failures.len(),
        files.len(),
        failures.join("\n")
    );
}
