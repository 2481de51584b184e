//! Exercise checks: the sidecar file beside each section
//! (`14-postgresql-production-labs.checks.toml`) and running its checks
//! against a learner's database.
//!
//! The sidecar keeps the markdown plain. Per exercise it holds a list of
//! checks (SQL assertions with a message for the learner) and a reference
//! solution that `pglab content check --run` plays to prove the checks can
//! pass. The format is documented in `docs/api.md` ("Exercise checks").
//!
//! Checks run inside one transaction that is always rolled back, each check
//! in its own savepoint: a check may exercise the learner's objects (update a
//! row to see the audit trigger fire) without leaving a trace, and one
//! failing check does not hide the others.

use std::path::Path;

use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgConnectOptions, PgRow};
use sqlx::{Connection, PgConnection, Row, ValueRef};

/// A parsed sidecar file.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ChecksFile {
    /// `[[exercise]]` tables, in order.
    #[serde(default, rename = "exercise")]
    pub exercises: Vec<ExerciseChecks>,
}

/// The checks and reference solution of one exercise.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ExerciseChecks {
    /// The exercise id from the markdown, e.g. `14.B.2` (or `14.E` for a scenario).
    pub id: String,
    /// `[[exercise.check]]`: all must pass.
    #[serde(default, rename = "check")]
    pub checks: Vec<Check>,
    /// `[[exercise.solution]]`: steps that make the checks pass, played in order.
    #[serde(default, rename = "solution")]
    pub solution: Vec<SolutionStep>,
}

/// One assertion. Exactly one way of judging applies:
/// - default: `sql` returns one row whose first column is `true`;
/// - `expect_rows` / `min_rows`: the number of rows `sql` returns;
/// - `same_as`: `sql`'s single value equals that of `same_as` run on the
///   learner's own database (with `database`, compares two databases);
/// - `plan_has_no_seq_scan_on`: `EXPLAIN (FORMAT JSON) sql` has no
///   sequential scan on that table.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct Check {
    /// Short name shown in reports: `tasks has a composite index`.
    pub name: String,
    /// The query.
    pub sql: String,
    /// What to tell the learner when the check fails: exactly what is missing.
    pub message: String,
    /// Statements run first, inside the check's savepoint (rolled back).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_rows: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min_rows: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub same_as: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_has_no_seq_scan_on: Option<String>,
    /// Run `sql` in this other database of the learner's server (e.g. a
    /// restored copy) instead of `labdb`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub database: Option<String>,
}

/// One step of a reference solution; exactly one of `file`, `sql`, `shell`,
/// `restart` is set.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct SolutionStep {
    /// A lab file (relative to the curriculum root) run like `psql -f`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// SQL run like psql runs a script (one statement at a time, autocommit),
    /// or, with `session`, on that named connection that stays open.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sql: Option<String>,
    /// A named session (`T1`, `T2`) for steps that need concurrent connections.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// Do not wait for this session step (it blocks on a lock); it is awaited
    /// at the end of the exercise.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub background: bool,
    /// An error of this step is expected (a deadlock victim) and not a failure.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub allow_error: bool,
    /// A shell command (`pg_dump`, `psql`) with PGHOST, PGUSER, PGDATABASE set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<String>,
    /// Restart the PostgreSQL server (data must survive).
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub restart: bool,
}

impl ChecksFile {
    /// Parses and validates a sidecar's text.
    pub fn parse(text: &str) -> Result<Self, String> {
        let file: Self = toml::from_str(text).map_err(|e| e.to_string())?;
        file.validate()?;
        Ok(file)
    }

    /// Reads `path`; `Ok(None)` when the file does not exist.
    pub fn load(path: &Path) -> Result<Option<Self>, String> {
        match std::fs::read_to_string(path) {
            Ok(text) => Self::parse(&text).map(Some),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e.to_string()),
        }
    }

    /// The sidecar of a section file: `14-x.md` → `14-x.checks.toml`.
    pub fn path_for(section_file: &Path) -> std::path::PathBuf {
        section_file.with_extension("checks.toml")
    }

    /// The checks of one exercise.
    pub fn exercise(&self, id: &str) -> Option<&ExerciseChecks> {
        self.exercises.iter().find(|e| e.id == id)
    }

    fn validate(&self) -> Result<(), String> {
        let mut seen = std::collections::HashSet::new();
        for ex in &self.exercises {
            if !seen.insert(ex.id.as_str()) {
                return Err(format!("exercise {} appears twice", ex.id));
            }
            for check in &ex.checks {
                let modes = [
                    check.expect_rows.is_some() || check.min_rows.is_some(),
                    check.same_as.is_some(),
                    check.plan_has_no_seq_scan_on.is_some(),
                ];
                if modes.iter().filter(|m| **m).count() > 1 {
                    return Err(format!(
                        "{}: check {:?} mixes expect_rows/min_rows, same_as and plan_has_no_seq_scan_on; use one",
                        ex.id, check.name
                    ));
                }
                if check.sql.trim().is_empty()
                    || check.message.trim().is_empty()
                    || check.name.trim().is_empty()
                {
                    return Err(format!(
                        "{}: every check needs name, sql and message",
                        ex.id
                    ));
                }
            }
            for (i, step) in ex.solution.iter().enumerate() {
                let kinds = [
                    step.file.is_some(),
                    step.sql.is_some(),
                    step.shell.is_some(),
                    step.restart,
                ];
                if kinds.iter().filter(|k| **k).count() != 1 {
                    return Err(format!(
                        "{}: solution step {} needs exactly one of file, sql, shell, restart",
                        ex.id,
                        i + 1
                    ));
                }
                if step.session.is_some() && step.sql.is_none() {
                    return Err(format!(
                        "{}: solution step {}: session only goes with sql",
                        ex.id,
                        i + 1
                    ));
                }
                if step.background && step.session.is_none() {
                    return Err(format!(
                        "{}: solution step {}: background needs a session",
                        ex.id,
                        i + 1
                    ));
                }
            }
        }
        Ok(())
    }
}

/// The result of one check.
#[derive(Clone, Debug, Serialize)]
pub struct CheckResult {
    pub name: String,
    pub passed: bool,
    /// The check's message when it failed, else empty.
    pub message: String,
    /// The database error, if the check's SQL failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The result of all checks of an exercise.
#[derive(Clone, Debug, Serialize)]
pub struct CheckOutcome {
    /// All checks passed (false when there are none).
    pub passed: bool,
    /// One line for the learner: "All 3 checks pass" or the first failure's message.
    pub message: String,
    /// Every check's result, in order.
    pub details: Vec<CheckResult>,
}

/// Runs an exercise's checks on the learner's connection (`labdb`). Checks
/// with a `database` fail with a clear message here; use
/// [`run_exercise_checks_with`] to allow them.
pub async fn run_exercise_checks(
    conn: &mut PgConnection,
    exercise: &ExerciseChecks,
) -> CheckOutcome {
    run_exercise_checks_with(conn, None, exercise).await
}

/// Like [`run_exercise_checks`], with the options used to open `conn`, so
/// checks on another database of the same server can connect to it.
pub async fn run_exercise_checks_with(
    conn: &mut PgConnection,
    options: Option<&PgConnectOptions>,
    exercise: &ExerciseChecks,
) -> CheckOutcome {
    let mut details = Vec::with_capacity(exercise.checks.len());
    if let Err(e) = exec(
        conn,
        "begin; set local statement_timeout = '20s'; set local lock_timeout = '5s'",
    )
    .await
    {
        return CheckOutcome {
            passed: false,
            message: format!("could not start checking: {e}"),
            details,
        };
    }
    for check in &exercise.checks {
        let _ = exec(conn, "savepoint pglab_check").await;
        let result = run_one(conn, options, check).await;
        let _ = exec(conn, "rollback to savepoint pglab_check").await;
        details.push(match result {
            Ok(true) => CheckResult {
                name: check.name.clone(),
                passed: true,
                message: String::new(),
                error: None,
            },
            Ok(false) => CheckResult {
                name: check.name.clone(),
                passed: false,
                message: check.message.clone(),
                error: None,
            },
            Err(e) => CheckResult {
                name: check.name.clone(),
                passed: false,
                message: check.message.clone(),
                error: Some(e),
            },
        });
    }
    let _ = exec(conn, "rollback").await;
    let failed = details.iter().find(|d| !d.passed);
    let (passed, message) = match failed {
        _ if details.is_empty() => (false, "this exercise has no automatic checks".to_string()),
        Some(f) => (false, f.message.clone()),
        None => (true, format!("All {} checks pass.", details.len())),
    };
    CheckOutcome {
        passed,
        message,
        details,
    }
}

async fn exec(conn: &mut PgConnection, sql: &str) -> Result<(), String> {
    // `Executor::execute` returns a boxed Send future, unlike
    // `RawSql::execute`, so checks can run inside axum handlers.
    sqlx::Executor::execute(&mut *conn, sqlx::raw_sql(sql))
        .await
        .map(|_| ())
        .map_err(db_message)
}

async fn rows(conn: &mut PgConnection, sql: &str) -> Result<Vec<PgRow>, String> {
    sqlx::Executor::fetch_all(&mut *conn, sqlx::raw_sql(sql))
        .await
        .map_err(db_message)
}

fn db_message(err: sqlx::Error) -> String {
    match err.as_database_error() {
        Some(db) => db.message().to_string(),
        None => err.to_string(),
    }
}

/// The first column of a row as text (`None` for NULL).
fn first_text(row: &PgRow) -> Result<Option<String>, String> {
    let raw = row.try_get_raw(0).map_err(|e| e.to_string())?;
    if raw.is_null() {
        return Ok(None);
    }
    raw.as_str()
        .map(|s| Some(s.to_string()))
        .map_err(|e| e.to_string())
}

/// The single value `sql` returns.
async fn single_value(conn: &mut PgConnection, sql: &str) -> Result<Option<String>, String> {
    let rows = rows(conn, sql).await?;
    match rows.as_slice() {
        [row] => first_text(row),
        other => Err(format!(
            "the check query returned {} rows instead of one",
            other.len()
        )),
    }
}

async fn run_one(
    conn: &mut PgConnection,
    options: Option<&PgConnectOptions>,
    check: &Check,
) -> Result<bool, String> {
    if let Some(before) = &check.before {
        exec(conn, before).await?;
    }
    if let Some(table) = &check.plan_has_no_seq_scan_on {
        let plan = single_value(conn, &format!("explain (format json) {}", check.sql)).await?;
        let plan: serde_json::Value =
            serde_json::from_str(plan.as_deref().unwrap_or("null")).map_err(|e| e.to_string())?;
        return Ok(!has_seq_scan_on(&plan, table));
    }
    // Checks on another database open their own short connection.
    let mut other;
    let target: &mut PgConnection = match &check.database {
        Some(db) => {
            let Some(opts) = options else {
                return Err(format!(
                    "this check reads database {db}, which this runner cannot open"
                ));
            };
            other = PgConnection::connect_with(&opts.clone().database(db))
                .await
                .map_err(|e| format!("cannot connect to database {db}: {}", db_message(e)))?;
            &mut other
        }
        None => &mut *conn,
    };
    if let Some(same_as) = &check.same_as {
        let value = single_value(target, &check.sql).await?;
        let expected = single_value(conn, same_as).await?;
        return Ok(value == expected);
    }
    if check.expect_rows.is_some() || check.min_rows.is_some() {
        let n = rows(target, &check.sql).await?.len() as u64;
        return Ok(
            check.expect_rows.is_none_or(|e| n == e) && check.min_rows.is_none_or(|m| n >= m)
        );
    }
    let value = single_value(target, &check.sql).await?;
    Ok(matches!(value.as_deref(), Some("t" | "true")))
}

/// Whether an `EXPLAIN (FORMAT JSON)` document has a `Seq Scan` on `table`.
pub fn has_seq_scan_on(plan: &serde_json::Value, table: &str) -> bool {
    match plan {
        serde_json::Value::Array(items) => items.iter().any(|p| has_seq_scan_on(p, table)),
        serde_json::Value::Object(map) => {
            let here = map.get("Node Type").and_then(|v| v.as_str()) == Some("Seq Scan")
                && map.get("Relation Name").and_then(|v| v.as_str()) == Some(table);
            here || map.values().any(|v| has_seq_scan_on(v, table))
        }
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_and_validates() {
        let text = r#"
[[exercise]]
id = "14.C.1"
[[exercise.check]]
name = "index"
sql = "select true"
message = "create it"
[[exercise.solution]]
file = "practice/x.sql"
[[exercise.solution]]
session = "T1"
sql = "begin"
"#;
        let f = ChecksFile::parse(text).expect("valid");
        assert_eq!(f.exercises[0].checks.len(), 1);
        assert_eq!(f.exercises[0].solution.len(), 2);
        assert!(
            ChecksFile::parse(
                "[[exercise]]\nid = \"1\"\n[[exercise.solution]]\nfile = \"a\"\nsql = \"b\"\n"
            )
            .is_err()
        );
        assert!(ChecksFile::parse("[[exercise]]\nid = \"1\"\nbogus = 1\n").is_err());
        assert!(ChecksFile::parse("[[exercise]]\nid = \"1\"\n[[exercise.check]]\nname = \"x\"\nsql = \"s\"\nmessage = \"m\"\nmin_rows = 1\nsame_as = \"s\"\n").is_err());
    }

    #[test]
    fn finds_nested_seq_scans() {
        let plan = serde_json::json!([{"Plan": {"Node Type": "Hash Join", "Plans": [
            {"Node Type": "Seq Scan", "Relation Name": "users"},
            {"Node Type": "Index Scan", "Relation Name": "tasks"}]}}]);
        assert!(has_seq_scan_on(&plan, "users"));
        assert!(!has_seq_scan_on(&plan, "tasks"));
    }
}
