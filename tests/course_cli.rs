//! `pglab content check`: exit codes on good and broken content, JSON
//! output, `--run` on our own course against a real PostgreSQL (the CI run
//! of the course's reference solutions and of the play of every sql block),
//! and the play of the fixture section (`tests/fixtures/checks_course`):
//! expected failures, skips, stale `[[block]]` entries, undeclared errors.

#![allow(clippy::unwrap_used)]

mod common;

use std::path::{Path, PathBuf};

use common::{pglab, repo_content_dir};

fn check(args: &[&str]) -> (i32, String, String) {
    let out = pglab()
        .args(["content", "check"])
        .args(args)
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn our_course_is_clean() {
    let dir = repo_content_dir();
    let (code, out, err) = check(&[dir.to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("SECTION 14 — "), "{out}");
    assert!(
        out.contains("checks: 14-postgresql-production-labs.checks.toml"),
        "{out}"
    );

    let (code, json, _) = check(&[dir.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0);
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    let section = &report["sections"][0];
    assert!(
        section["exercises"].as_array().unwrap().len() >= 10,
        "{section}"
    );
    assert!(section["sql_blocks"].as_u64().unwrap() > 10, "{section}");
    let files = section["files"].as_array().unwrap();
    assert!(
        files
            .iter()
            .any(|f| f["path"].as_str().unwrap().ends_with("/scripts/schema.sql"))
    );
    assert!(files.iter().all(|f| f["exists"] == true));
}

#[test]
fn broken_references_and_bad_checks_exit_non_zero() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("15-elasticsearch-practice.md"),
        "# SECTION 15 — Elasticsearch Practice\n\n## PART B — BEGINNER PRACTICE\n\n### Exercise 15.B.1 — Start\n\n**Practice file:** `practice/curriculum/15-elasticsearch-practice/missing.yml`\n",
    )
    .unwrap();
    let (code, out, _) = check(&[dir.path().to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("missing.yml  MISSING"), "{out}");
    assert!(out.contains("problem: 15-elasticsearch-practice.md: lab file practice/curriculum/15-elasticsearch-practice/missing.yml does not exist"), "{out}");

    // Fix the file; a reading lesson without checks is fine.
    std::fs::create_dir_all(
        dir.path()
            .join("practice/curriculum/15-elasticsearch-practice"),
    )
    .unwrap();
    std::fs::write(
        dir.path()
            .join("practice/curriculum/15-elasticsearch-practice/missing.yml"),
        "a: 1\n",
    )
    .unwrap();
    let (code, out, _) = check(&[dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{out}");
    assert!(out.contains("checks: none"), "{out}");

    // An unparsable sidecar.
    let sidecar = dir.path().join("15-elasticsearch-practice.checks.toml");
    std::fs::write(
        &sidecar,
        "[[exercise]]\nid = \"15.B.1\"\n[[exercise.check]]\nname = \"x\"\n",
    )
    .unwrap();
    let (code, out, _) = check(&[dir.path().to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("unparsable checks"), "{out}");

    // Checks for an exercise the markdown does not have.
    std::fs::write(&sidecar, "[[exercise]]\nid = \"15.Z.9\"\n").unwrap();
    let (code, out, _) = check(&[dir.path().to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("checks for exercise 15.Z.9"), "{out}");

    // Not a folder at all.
    let (code, _, err) = check(&["/no/such/folder"]);
    assert_eq!(code, 2);
    assert!(err.starts_with("pglab: "), "{err}");
}

/// The CI run of the course on itself (scripts/test.sh runs every test):
/// each exercise's reference solution makes its checks pass, and the play
/// of the section's text (lab scripts, then every sql block) has no
/// undeclared error and no EXPLAIN without a plan view.
#[test]
fn content_check_run_passes_on_section_14() {
    let dir = repo_content_dir();
    let started = std::time::Instant::now();
    let (code, json, err) = check(&[dir.to_str().unwrap(), "--run", "--json"]);
    let took = started.elapsed();
    let report: serde_json::Value = serde_json::from_str(&json).unwrap_or_default();
    assert_eq!(code, 0, "{:#}\n{err}", report["problems"]);
    let section = &report["sections"][0];
    for ex in section["exercises"].as_array().unwrap() {
        if let Some(after) = ex.get("after") {
            assert_eq!(after["passed"], true, "{ex}");
        }
        // Checks fail before their reference solution: they test something.
        // Except where an earlier exercise already did the work in this
        // cumulative run: 14.C.1 makes the index 14.D.1 asks for, and
        // 14.D.2's checks (no open transaction, no money lost) hold on any
        // healthy database; they fail on a learner's broken state instead.
        let cumulative = ["14.D.1", "14.D.2"];
        if let Some(before) = ex.get("before")
            && !cumulative.contains(&ex["id"].as_str().unwrap_or(""))
        {
            assert_eq!(before["passed"], false, "{ex}");
        }
    }
    let play = &section["play"];
    assert!(
        !play["lab_scripts"].as_array().unwrap().is_empty(),
        "{play}"
    );
    let blocks = play["blocks"].as_array().unwrap();
    assert_eq!(blocks.len() as u64, section["sql_blocks"].as_u64().unwrap());
    assert!(blocks.iter().all(|b| b["outcome"] != "failed"), "{play}");
    assert!(
        blocks.iter().filter(|b| b["outcome"] == "ok").count() * 2 > blocks.len(),
        "most of the text plays: {play}"
    );
    eprintln!("content check --run on content/: {took:?}");
}

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/checks_course")
}

/// A copy of the fixture course to change.
fn fixture_copy() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let status = std::process::Command::new("cp")
        .arg("-a")
        .arg(format!("{}/.", fixture().display()))
        .arg(dir.path())
        .status()
        .unwrap();
    assert!(status.success());
    dir
}

fn outcomes(report: &serde_json::Value) -> Vec<(u64, String)> {
    report["sections"][0]["play"]["blocks"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| {
            (
                b["line"].as_u64().unwrap(),
                b["outcome"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

#[test]
fn the_fixture_section_plays_with_its_declared_failure_and_skips() {
    let dir = fixture();
    let (code, json, err) = check(&[dir.to_str().unwrap(), "--run", "--json"]);
    assert_eq!(code, 0, "{json}\n{err}");
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    // learner_result checks pass on the reference solutions as evidence.
    for ex in report["sections"][0]["exercises"].as_array().unwrap() {
        assert_eq!(ex["after"]["passed"], true, "{ex}");
        assert_eq!(ex["before"]["passed"], false, "{ex}");
    }
    let play = &report["sections"][0]["play"];
    let scripts: Vec<&str> = play["lab_scripts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["path"].as_str().unwrap())
        .collect();
    assert_eq!(
        scripts,
        [
            "practice/curriculum/90-fixture-lab/scripts/schema.sql",
            "practice/curriculum/90-fixture-lab/scripts/seed.sql"
        ]
    );
    let ok = |line: u64| (line, "ok".to_string());
    assert_eq!(
        outcomes(&report),
        [
            ok(16),
            ok(24),
            (35, "expected_failure".into()),
            ok(42),
            ok(47),
            (53, "skipped".into()),
            (60, "skipped".into()),
            ok(81),
        ]
    );
    let blocks = play["blocks"].as_array().unwrap();
    // Meta-commands ran through the console's own (\timing, \d).
    assert_eq!(blocks[0]["statements"], 3);
    assert_eq!(blocks[2]["sqlstate"], "23514");
    assert!(
        blocks[5]["notes"][0]
            .as_str()
            .unwrap()
            .contains("labdb_restore")
    );
    assert_eq!(blocks[6]["notes"][0], "needs a pid the learner looks up");
    assert_eq!(blocks[7]["exercise"], "90.B.3");

    let (code, text, _) = check(&[dir.to_str().unwrap(), "--run"]);
    assert_eq!(code, 0, "{text}");
    assert!(
        text.contains("play: 2 lab script(s), then 8 sql block(s): 5 ok, 1 expected failure(s), 2 skipped, 0 FAILED"),
        "{text}"
    );
    assert!(text.contains("block 90-fixture-lab.md:35  expected failure 23514: new row for relation \"tasks\" violates check constraint"), "{text}");
    assert!(
        text.contains("PASS  query: important open work, most important first"),
        "{text}"
    );
}

#[test]
fn undeclared_errors_unmet_expectations_and_stale_entries_fail_the_play() {
    let dir = fixture_copy();
    let md = dir.path().join("90-fixture-lab.md");
    let mut text = std::fs::read_to_string(&md).unwrap();
    text.push_str(
        "\nTwo more blocks:\n\n```sql\nSELECT 1;\nSELECT username FROM accounts;\nSELECT 2;\n```\n\n```sql\nSELECT 'no deadlock here';\n```\n",
    );
    let fences: Vec<usize> = text
        .lines()
        .enumerate()
        .filter(|(_, l)| *l == "```sql")
        .map(|(i, _)| i + 1)
        .collect();
    let (first_new_line, second_new_line) = (fences[fences.len() - 2], fences[fences.len() - 1]);
    std::fs::write(&md, text).unwrap();
    let sidecar = dir.path().join("90-fixture-lab.checks.toml");
    let mut checks = std::fs::read_to_string(&sidecar).unwrap();
    checks = checks.replacen(
        "[[exercise]]",
        "[[block]]\ncontains = \"'no deadlock here'\"\nexpect_sqlstate = \"40P01\"\n\n[[block]]\ncontains = \"SELECT * FROM accounts_that_went_away\"\nskip = \"stale\"\n\n[[exercise]]",
        1,
    );
    std::fs::write(&sidecar, checks).unwrap();

    // A stale entry is a problem without --run too.
    let (code, out, _) = check(&[dir.path().to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("problem: 90-fixture-lab.checks.toml: [[block]] contains = \"SELECT * FROM accounts_that_went_away\" matches no sql block (a stale sidecar entry)"),
        "{out}"
    );

    let (code, json, err) = check(&[dir.path().to_str().unwrap(), "--run", "--json"]);
    assert_eq!(code, 1, "{json}\n{err}");
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    let all = outcomes(&report);
    assert_eq!(all.len(), 10);
    assert_eq!(
        all[8..],
        [
            (first_new_line as u64, "failed".to_string()),
            (second_new_line as u64, "failed".to_string()),
        ]
    );
    let blocks = report["sections"][0]["play"]["blocks"].as_array().unwrap();
    // The statement as psql sends it: with its semicolon.
    assert_eq!(blocks[8]["statement"], "SELECT username FROM accounts;");
    assert_eq!(blocks[8]["error"], "relation \"accounts\" does not exist");
    assert_eq!(blocks[8]["sqlstate"], "42P01");
    assert_eq!(blocks[8]["statements"], 2, "the block stops at its error");
    assert!(
        blocks[9]["error"]
            .as_str()
            .unwrap()
            .contains("expects this block to fail with SQLSTATE 40P01, but every statement ran")
    );
    // The earlier blocks are unchanged.
    assert_eq!(all[2].1, "expected_failure");
    let problems: Vec<&str> = report["problems"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p.as_str().unwrap())
        .collect();
    assert_eq!(problems.len(), 3, "{problems:?}");
    assert!(problems[0].contains("stale sidecar entry"));
    assert!(problems[1].starts_with(&format!(
        "90-fixture-lab.md: sql block at line {first_new_line} FAILED: `SELECT username FROM accounts;`: relation \"accounts\" does not exist"
    )));

    let (_, text, _) = check(&[dir.path().to_str().unwrap(), "--run"]);
    assert!(
        text.contains(&format!(
            "block 90-fixture-lab.md:{first_new_line} (90.B.3)  FAILED\n               statement: SELECT username FROM accounts;\n               error: relation \"accounts\" does not exist (42P01)"
        )),
        "{text}"
    );
}
