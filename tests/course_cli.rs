//! `pglab content check`: exit codes on good and broken content, JSON
//! output, and `--run` on our own section 14 against a real PostgreSQL.

#![allow(clippy::unwrap_used)]

mod common;

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
    assert!(
        out.contains("14.C.1  EXPLAIN ANALYZE Before and After an Index"),
        "{out}"
    );
    assert!(out.contains("scripts/generate_bulk_data.sql  ok"), "{out}");
    assert!(
        out.contains("check    a valid composite index on tasks (status, priority)"),
        "{out}"
    );

    let (code, json, _) = check(&[dir.to_str().unwrap(), "--json"]);
    assert_eq!(code, 0);
    let report: serde_json::Value = serde_json::from_str(&json).unwrap();
    let exercises = report["sections"][0]["exercises"].as_array().unwrap();
    assert_eq!(exercises.len(), 12);
    assert!(
        report["sections"][0]["files"]
            .as_array()
            .unwrap()
            .iter()
            .all(|f| f["exists"] == true)
    );
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

#[test]
fn content_check_run_passes_on_section_14() {
    let dir = repo_content_dir();
    let (code, out, err) = check(&[dir.to_str().unwrap(), "--run"]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(!out.contains("FAIL"), "{out}");
    assert!(
        out.contains("PASS  the open, important tasks query does not scan tasks sequentially"),
        "{out}"
    );
    assert!(out.contains("PASS  the data survived a restart"), "{out}");
    assert!(
        out.contains("expected error: ") && out.contains("deadlock detected"),
        "{out}"
    );
    // Checks fail before their reference solution: they test something.
    assert!(
        out.contains("before the reference solution: 3 of 3 checks failed"),
        "{out}"
    );
}
