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
//! failing check does not hide the others. A check's `before` statements that
//! fail make the check fail with the server's error.
//!
//! A `learner_result` check judges what the learner ran: the caller passes
//! the learner's recent successful statements ([`CheckContext`]), and the
//! check replays the read-only ones inside its savepoint and compares their
//! rows with a reference query's ([`same_rows`]).
//!
//! A `sandbox` check judges the learner's running container itself (named
//! volume, health check, limits: [`super::sandbox_check`]) from the facts the
//! caller passes in [`CheckContext::sandbox`].
//!
//! The sidecar also declares how `content check --run` plays the section's
//! sql blocks (`[[block]]`, see [`BlockSpec`]).

use std::path::Path;
use std::time::{Duration, Instant};

use futures::TryStreamExt;
use serde::{Deserialize, Serialize};
use sqlx::postgres::{PgConnectOptions, PgRow};
use sqlx::{Connection, PgConnection, Row, ValueRef};

use super::sandbox_check::{self, Requirement, SandboxFacts};
use crate::console::split::{self, ItemKind};
use crate::console::tag;

/// A parsed sidecar file.
#[derive(Clone, Debug, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct ChecksFile {
    /// `[[exercise]]` tables, in order.
    #[serde(default, rename = "exercise")]
    pub exercises: Vec<ExerciseChecks>,
    /// `[[block]]` tables: sql blocks of the section that `content check
    /// --run` expects to fail, or does not play.
    #[serde(default, rename = "block", skip_serializing_if = "Vec::is_empty")]
    pub blocks: Vec<BlockSpec>,
}

/// How `content check --run` treats one sql block of the section: the first
/// block whose text (whitespace-normalized) contains `contains`. Exactly one
/// of `expect_sqlstate` and `skip` is set.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct BlockSpec {
    /// A piece of the block's text.
    pub contains: String,
    /// The block must fail with this SQLSTATE (a deadlock demo: `40P01`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expect_sqlstate: Option<String>,
    /// Why the block is not played.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub skip: Option<String>,
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
/// - `kind = "learner_result"`: one of the learner's recent successful
///   queries returns the same rows as `sql` (the reference query); row order
///   counts only with `ordered = true`;
/// - `kind = "sandbox"`: the learner's running container, from their own
///   compose file, meets every one of `requires` (no `sql`);
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
    /// How the check judges; absent for the SQL assertions below.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<CheckKind>,
    /// The query (for `learner_result`, the reference query; none for `sandbox`).
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub sql: String,
    /// What to tell the learner when the check fails: exactly what is missing.
    pub message: String,
    /// Statements run first, inside the check's savepoint (rolled back):
    /// one string (split like psql does) or a list of them.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub before: Option<Before>,
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
    /// `learner_result` only: rows must come in the reference's order.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub ordered: bool,
    /// `sandbox` only: what the running container must have.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub requires: Vec<Requirement>,
}

/// A check's `before`: `before = "..."` or `before = ["...", "..."]`.
#[derive(Clone, Debug, Deserialize, Serialize)]
#[serde(untagged)]
pub enum Before {
    One(String),
    Many(Vec<String>),
}

impl Before {
    /// The texts, in order.
    pub fn texts(&self) -> &[String] {
        match self {
            Self::One(s) => std::slice::from_ref(s),
            Self::Many(v) => v,
        }
    }
}

/// The kinds of check besides the SQL assertions.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum CheckKind {
    /// Compare the learner's own recent queries with a reference query.
    LearnerResult,
    /// Inspect the learner's running container (see `requires`).
    Sandbox,
}

/// One step of a reference solution; exactly one of `file`, `sql`, `shell`,
/// `restart`, `compose` is set.
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
    /// The learner's compose file brought up (`docker compose up -d`), for
    /// `sandbox` checks. `content check` validates it and judges its plan
    /// against the exercise's sandbox checks; it needs a Docker sandbox to
    /// run, so `--run` does not play it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compose: Option<String>,
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
                if check.kind == Some(CheckKind::Sandbox) {
                    let other = !check.sql.is_empty()
                        || check.before.is_some()
                        || check.expect_rows.is_some()
                        || check.min_rows.is_some()
                        || check.same_as.is_some()
                        || check.plan_has_no_seq_scan_on.is_some()
                        || check.database.is_some()
                        || check.ordered;
                    if other || check.requires.is_empty() {
                        return Err(format!(
                            "{}: check {:?} is a sandbox check: it takes requires (a non-empty list) and message only",
                            ex.id, check.name
                        ));
                    }
                    if check.name.trim().is_empty() || check.message.trim().is_empty() {
                        return Err(format!("{}: every check needs name and message", ex.id));
                    }
                    continue;
                }
                if !check.requires.is_empty() {
                    return Err(format!(
                        "{}: check {:?}: requires only goes with kind = \"sandbox\"",
                        ex.id, check.name
                    ));
                }
                let learner_result = check.kind == Some(CheckKind::LearnerResult);
                if learner_result
                    && (check.expect_rows.is_some()
                        || check.min_rows.is_some()
                        || check.same_as.is_some()
                        || check.plan_has_no_seq_scan_on.is_some()
                        || check.database.is_some())
                {
                    return Err(format!(
                        "{}: check {:?} is a learner_result check: it takes sql (the reference query), ordered, before and message only",
                        ex.id, check.name
                    ));
                }
                if check.ordered && !learner_result {
                    return Err(format!(
                        "{}: check {:?}: ordered only goes with kind = \"learner_result\"",
                        ex.id, check.name
                    ));
                }
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
                    step.compose.is_some(),
                ];
                if kinds.iter().filter(|k| **k).count() != 1 {
                    return Err(format!(
                        "{}: solution step {} needs exactly one of file, sql, shell, restart, compose",
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
        for (i, block) in self.blocks.iter().enumerate() {
            if block.contains.trim().is_empty() {
                return Err(format!("[[block]] {}: contains is empty", i + 1));
            }
            if block.expect_sqlstate.is_some() == block.skip.is_some() {
                return Err(format!(
                    "[[block]] {:?}: needs exactly one of expect_sqlstate and skip",
                    block.contains
                ));
            }
            if let Some(code) = &block.expect_sqlstate
                && (code.len() != 5 || !code.chars().all(|c| c.is_ascii_alphanumeric()))
            {
                return Err(format!(
                    "[[block]] {:?}: expect_sqlstate {code:?} is not a SQLSTATE (five letters or digits, like 40P01)",
                    block.contains
                ));
            }
        }
        Ok(())
    }
}

impl ExerciseChecks {
    /// Whether a check reads the learner's recent queries.
    pub fn uses_learner_queries(&self) -> bool {
        self.checks
            .iter()
            .any(|c| c.kind == Some(CheckKind::LearnerResult))
    }

    /// Whether a check inspects the learner's running sandbox.
    pub fn uses_sandbox(&self) -> bool {
        self.checks
            .iter()
            .any(|c| c.kind == Some(CheckKind::Sandbox))
    }
}

/// What checks may know besides the learner's database.
#[derive(Clone, Copy, Debug, Default)]
pub struct CheckContext<'a> {
    /// The options used to open the connection, so checks on another
    /// database of the same server (`database`) can connect to it.
    pub options: Option<&'a PgConnectOptions>,
    /// The statements the learner ran successfully, newest first, those run
    /// on this exercise's page first (`learner_result` checks replay them).
    pub recent_statements: &'a [String],
    /// The learner's running sandbox as the backend inspects it (`sandbox`
    /// checks judge it); `None` where there is no sandbox to inspect.
    pub sandbox: Option<&'a SandboxFacts>,
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
    let ctx = CheckContext {
        options,
        recent_statements: &[],
        sandbox: None,
    };
    run_checks(conn, exercise, &ctx).await
}

/// Runs an exercise's checks with everything a check may read (`ctx`).
pub async fn run_checks(
    conn: &mut PgConnection,
    exercise: &ExerciseChecks,
    ctx: &CheckContext<'_>,
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
            message: format!("could not start checking: {}", e.message),
            details,
        };
    }
    for check in &exercise.checks {
        let _ = exec(conn, "savepoint pglab_check").await;
        let result = run_one(conn, ctx, check).await;
        let _ = exec(conn, "rollback to savepoint pglab_check").await;
        details.push(match result {
            Ok(Verdict::Pass) => CheckResult {
                name: check.name.clone(),
                passed: true,
                message: String::new(),
                error: None,
            },
            Ok(Verdict::Fail(hint)) => CheckResult {
                name: check.name.clone(),
                passed: false,
                message: with_hint(&check.message, hint.as_deref()),
                error: None,
            },
            Err(failure) => CheckResult {
                name: check.name.clone(),
                passed: false,
                message: failure.learner_message(&check.message),
                error: Some(failure.error),
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

/// What a check found.
enum Verdict {
    Pass,
    /// Failed; the hint, if any, follows the check's message.
    Fail(Option<String>),
}

/// A check that could not judge: its SQL (or its `before`) failed.
#[derive(Debug)]
struct Failure {
    /// The server's error (or ours), kept in [`CheckResult::error`].
    error: String,
    /// Said to the learner after the check's message.
    hint: Option<String>,
}

impl Failure {
    fn plain(error: impl Into<String>) -> Self {
        Self {
            error: error.into(),
            hint: None,
        }
    }

    fn learner_message(&self, message: &str) -> String {
        with_hint(message, self.hint.as_deref())
    }
}

impl From<DbError> for Failure {
    /// A missing object is worth telling the learner: it says what to create.
    fn from(e: DbError) -> Self {
        let missing = e.code.as_deref().is_some_and(is_missing_object);
        Self {
            hint: missing.then(|| e.message.clone()),
            error: e.message,
        }
    }
}

/// `message` followed by `hint`: "Your query ...: hint".
fn with_hint(message: &str, hint: Option<&str>) -> String {
    match hint {
        Some(h) => format!("{}: {h}", message.trim_end().trim_end_matches(['.', ':'])),
        None => message.to_string(),
    }
}

/// SQLSTATEs that mean "no such object": undefined table, column, function,
/// object, schema, database.
fn is_missing_object(code: &str) -> bool {
    matches!(
        code,
        "42P01" | "42703" | "42883" | "42704" | "3F000" | "3D000"
    )
}

/// A server error with its SQLSTATE.
#[derive(Debug)]
struct DbError {
    code: Option<String>,
    message: String,
}

impl From<sqlx::Error> for DbError {
    fn from(err: sqlx::Error) -> Self {
        match err.as_database_error() {
            Some(db) => Self {
                code: db.code().map(|c| c.into_owned()),
                message: db.message().to_string(),
            },
            None => Self {
                code: None,
                message: err.to_string(),
            },
        }
    }
}

async fn exec(conn: &mut PgConnection, sql: &str) -> Result<(), DbError> {
    // `Executor::execute` returns a boxed Send future, unlike
    // `RawSql::execute`, so checks can run inside axum handlers.
    sqlx::Executor::execute(&mut *conn, sqlx::raw_sql(sql))
        .await
        .map(|_| ())
        .map_err(DbError::from)
}

async fn rows(conn: &mut PgConnection, sql: &str) -> Result<Vec<PgRow>, DbError> {
    sqlx::Executor::fetch_all(&mut *conn, sqlx::raw_sql(sql))
        .await
        .map_err(DbError::from)
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
async fn single_value(conn: &mut PgConnection, sql: &str) -> Result<Option<String>, Failure> {
    let rows = rows(conn, sql).await?;
    match rows.as_slice() {
        [row] => first_text(row).map_err(Failure::plain),
        other => Err(Failure::plain(format!(
            "the check query returned {} rows instead of one",
            other.len()
        ))),
    }
}

/// Runs a check's `before` statements one at a time; the first that fails
/// fails the check, with the server's error in the learner's message.
async fn run_before(conn: &mut PgConnection, before: &Before) -> Result<(), Failure> {
    let items = before.texts().iter().flat_map(|t| split::split(t));
    for item in items {
        if item.kind != ItemKind::Statement {
            continue;
        }
        if let Err(e) = exec(conn, &item.text).await {
            return Err(Failure {
                error: format!(
                    "before: `{}` failed: {}",
                    one_line(&item.text, 80),
                    e.message
                ),
                hint: Some(e.message),
            });
        }
    }
    Ok(())
}

async fn run_one(
    conn: &mut PgConnection,
    ctx: &CheckContext<'_>,
    check: &Check,
) -> Result<Verdict, Failure> {
    if check.kind == Some(CheckKind::Sandbox) {
        let Some(facts) = ctx.sandbox else {
            return Err(Failure::plain(
                "this check inspects a running sandbox, which this runner does not have",
            ));
        };
        let missing = sandbox_check::missing(facts, &check.requires);
        return Ok(if missing.is_empty() {
            Verdict::Pass
        } else {
            Verdict::Fail(Some(missing.join("; ")))
        });
    }
    if let Some(before) = &check.before {
        run_before(conn, before).await?;
    }
    if check.kind == Some(CheckKind::LearnerResult) {
        return learner_result(conn, check, ctx.recent_statements).await;
    }
    let pass = |ok: bool| {
        if ok {
            Verdict::Pass
        } else {
            Verdict::Fail(None)
        }
    };
    if let Some(table) = &check.plan_has_no_seq_scan_on {
        let plan = single_value(conn, &format!("explain (format json) {}", check.sql)).await?;
        let plan: serde_json::Value = serde_json::from_str(plan.as_deref().unwrap_or("null"))
            .map_err(|e| Failure::plain(e.to_string()))?;
        return Ok(pass(!has_seq_scan_on(&plan, table)));
    }
    let options = ctx.options;
    // Checks on another database open their own short connection.
    let mut other;
    let target: &mut PgConnection = match &check.database {
        Some(db) => {
            let Some(opts) = options else {
                return Err(Failure::plain(format!(
                    "this check reads database {db}, which this runner cannot open"
                )));
            };
            other = PgConnection::connect_with(&opts.clone().database(db))
                .await
                .map_err(|e| {
                    let e = DbError::from(e);
                    let missing = e.code.as_deref().is_some_and(is_missing_object);
                    let error = format!("cannot connect to database {db}: {}", e.message);
                    Failure {
                        hint: missing.then(|| error.clone()),
                        error,
                    }
                })?;
            &mut other
        }
        None => &mut *conn,
    };
    if let Some(same_as) = &check.same_as {
        let value = single_value(target, &check.sql).await?;
        let expected = single_value(conn, same_as).await?;
        return Ok(pass(value == expected));
    }
    if check.expect_rows.is_some() || check.min_rows.is_some() {
        let n = rows(target, &check.sql).await?.len() as u64;
        return Ok(pass(
            check.expect_rows.is_none_or(|e| n == e) && check.min_rows.is_none_or(|m| n >= m),
        ));
    }
    let value = single_value(target, &check.sql).await?;
    Ok(pass(matches!(value.as_deref(), Some("t" | "true"))))
}

/// Rows as text values (`None` for NULL), as a result set is compared.
pub type TextRows = Vec<Vec<Option<String>>>;

/// How many of the learner's statements a `learner_result` check replays.
pub const LEARNER_QUERIES_TRIED: usize = 30;
/// Per-statement timeout of a replayed learner query.
const LEARNER_QUERY_TIMEOUT: &str = "3s";
/// Time after which no further learner query is started.
const LEARNER_QUERIES_BUDGET: Duration = Duration::from_secs(10);
/// Rows a reference query may return.
const REFERENCE_ROW_CAP: usize = 100_000;

/// Whether two results hold the same rows: values compared as text (NULL is
/// not ''), column names not compared, order compared only when `ordered`
/// (else as multisets: duplicates count).
pub fn same_rows(expected: &TextRows, got: &TextRows, ordered: bool) -> bool {
    if expected.len() != got.len() {
        return false;
    }
    if ordered {
        return expected == got;
    }
    let (mut a, mut b) = (expected.clone(), got.clone());
    a.sort_unstable();
    b.sort_unstable();
    a == b
}

/// Whether `got` holds the rows of `expected` once extra columns are left
/// out: a learner who also selects `created_at` or `*` answered the
/// question too. Each expected column is matched to a column of `got`
/// holding the same values (at most 256 pairings are tried).
pub fn same_rows_within(expected: &TextRows, got: &TextRows, ordered: bool) -> bool {
    if same_rows(expected, got, ordered) {
        return true;
    }
    let (Some(want), Some(have)) = (expected.first(), got.first()) else {
        return false;
    };
    if expected.len() != got.len() || have.len() <= want.len() {
        return false;
    }
    let column = |rows: &TextRows, i: usize| -> Vec<Option<String>> {
        let mut c: Vec<Option<String>> = rows.iter().map(|r| r.get(i).cloned().flatten()).collect();
        c.sort_unstable();
        c
    };
    let candidates: Vec<Vec<usize>> = (0..want.len())
        .map(|j| {
            let target = column(expected, j);
            (0..have.len())
                .filter(|&k| column(got, k) == target)
                .collect()
        })
        .collect();
    if candidates.iter().any(Vec::is_empty) {
        return false;
    }
    let mut pick = vec![0usize; want.len()];
    for _ in 0..256 {
        let cols: Vec<usize> = pick.iter().zip(&candidates).map(|(&i, c)| c[i]).collect();
        let projected: TextRows = got
            .iter()
            .map(|r| cols.iter().map(|&k| r.get(k).cloned().flatten()).collect())
            .collect();
        if same_rows(expected, &projected, ordered) {
            return true;
        }
        // Next pairing, like an odometer; done when it wraps around.
        let mut j = 0;
        loop {
            if j == pick.len() {
                return false;
            }
            pick[j] += 1;
            if pick[j] < candidates[j].len() {
                break;
            }
            pick[j] = 0;
            j += 1;
        }
    }
    false
}

/// How many rows of `got` are also rows of `expected`, as multisets.
pub fn rows_in_common(expected: &TextRows, got: &TextRows) -> usize {
    let mut want: std::collections::HashMap<&Vec<Option<String>>, usize> =
        std::collections::HashMap::new();
    for row in expected {
        *want.entry(row).or_default() += 1;
    }
    got.iter()
        .filter(|row| match want.get_mut(row) {
            Some(n) if *n > 0 => {
                *n -= 1;
                true
            }
            _ => false,
        })
        .count()
}

/// Whether a statement only reads: a SELECT, `WITH ... SELECT`, TABLE or
/// VALUES (not EXPLAIN, not DML, not a WITH whose main statement writes).
pub fn is_read_only_query(sql: &str) -> bool {
    let words = tag::words(strip_leading_parens(sql));
    match words.first().map(String::as_str) {
        Some("SELECT" | "TABLE" | "VALUES") => true,
        // A WITH may hide a writing statement in a CTE's parentheses, which
        // `words` skips: any writing keyword anywhere disqualifies it.
        Some("WITH") => !sql
            .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .any(|w| {
                ["INSERT", "UPDATE", "DELETE", "MERGE"]
                    .iter()
                    .any(|k| w.eq_ignore_ascii_case(k))
            }),
        _ => false,
    }
}

/// `sql` after its leading blanks, comments and opening parentheses:
/// `(SELECT ...) UNION (SELECT ...)` starts with SELECT.
fn strip_leading_parens(mut sql: &str) -> &str {
    loop {
        let before = sql.len();
        sql = sql.trim_start().trim_start_matches('(');
        if let Some(rest) = sql.strip_prefix("--") {
            sql = rest.split_once('\n').map_or("", |(_, r)| r);
        } else if let Some(rest) = sql.strip_prefix("/*") {
            sql = rest.split_once("*/").map_or("", |(_, r)| r);
        }
        if sql.len() == before {
            return sql;
        }
    }
}

/// The queries a `learner_result` check tries, in order: the read-only
/// statements of `recent` (newest first), each once, at most
/// [`LEARNER_QUERIES_TRIED`].
pub fn candidate_queries(recent: &[String]) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    let mut out = Vec::new();
    for text in recent {
        for item in split::split(text) {
            // The splitter keeps psql's trailing `;`: a candidate is replayed
            // inside the check's own statement, without it.
            let query = item.text.trim_end().trim_end_matches(';').trim_end();
            if item.kind == ItemKind::Statement
                && !query.is_empty()
                && is_read_only_query(query)
                && seen.insert(query.to_string())
            {
                out.push(query.to_string());
                if out.len() == LEARNER_QUERIES_TRIED {
                    return out;
                }
            }
        }
    }
    out
}

/// Up to `cap` rows of `sql`, values as text; `Ok(None)` when there are more.
async fn text_rows(
    conn: &mut PgConnection,
    sql: &str,
    cap: usize,
) -> Result<Option<TextRows>, DbError> {
    let mut out = Vec::new();
    let mut stream = sqlx::Executor::fetch(&mut *conn, sqlx::raw_sql(sql));
    while let Some(row) = stream.try_next().await? {
        if out.len() == cap {
            return Ok(None);
        }
        let mut values = Vec::with_capacity(row.len());
        for i in 0..row.len() {
            let raw = row.try_get_raw(i).map_err(DbError::from)?;
            values.push(if raw.is_null() {
                None
            } else {
                Some(String::from_utf8_lossy(raw.as_bytes().unwrap_or_default()).into_owned())
            });
        }
        out.push(values);
    }
    Ok(Some(out))
}

/// The learner query that came closest to the reference, for the hint.
struct Closest {
    sql: String,
    rows: Option<usize>,
    columns: Option<usize>,
    common: usize,
    right_rows_wrong_order: bool,
}

impl Closest {
    fn score(&self, expected: &TextRows) -> (bool, bool, usize, std::cmp::Reverse<usize>) {
        let columns_match = self.columns == expected.first().map(Vec::len);
        let n = self.rows.unwrap_or(usize::MAX);
        (
            self.right_rows_wrong_order,
            columns_match,
            self.common,
            std::cmp::Reverse(n.abs_diff(expected.len())),
        )
    }

    fn describe(&self, expected: &TextRows) -> String {
        let q = one_line(&self.sql, 80);
        if self.right_rows_wrong_order {
            return format!(
                "your closest query `{q}` returns the right rows, but not in the order asked for"
            );
        }
        let rows = match self.rows {
            Some(n) => format!("{n} row{}", if n == 1 { "" } else { "s" }),
            None => format!("more than {} rows", expected.len()),
        };
        let want = expected.len();
        let columns = match (self.columns, expected.first().map(Vec::len)) {
            (Some(got), Some(want)) if got != want => {
                format!(" of {got} columns (expected {want})")
            }
            _ => String::new(),
        };
        format!(
            "your closest query `{q}` returns {rows}{columns}, {} of the {want} expected",
            self.common
        )
    }
}

async fn learner_result(
    conn: &mut PgConnection,
    check: &Check,
    recent: &[String],
) -> Result<Verdict, Failure> {
    let expected = match text_rows(conn, &check.sql, REFERENCE_ROW_CAP).await {
        Ok(Some(rows)) => rows,
        Ok(None) => {
            return Err(Failure::plain(format!(
                "the reference query returns more than {REFERENCE_ROW_CAP} rows"
            )));
        }
        Err(e) => {
            let mut f = Failure::from(e);
            f.error = format!("the reference query fails: {}", f.error);
            return Err(f);
        }
    };
    let candidates = candidate_queries(recent);
    if candidates.is_empty() {
        return Ok(Verdict::Fail(Some(
            "you have not run a query for this yet".into(),
        )));
    }
    let started = Instant::now();
    let mut closest: Option<Closest> = None;
    let mut tried = 0;
    for sql in &candidates {
        if started.elapsed() > LEARNER_QUERIES_BUDGET {
            break;
        }
        tried += 1;
        exec(
            conn,
            &format!(
                "savepoint pglab_try; set local statement_timeout = '{LEARNER_QUERY_TIMEOUT}'; set local lock_timeout = '1s'"
            ),
        )
        .await?;
        let got = text_rows(conn, sql, expected.len() + 1).await;
        exec(
            conn,
            "rollback to savepoint pglab_try; release savepoint pglab_try",
        )
        .await?;
        // A query that fails (or times out) now is just not a match.
        let Ok(got) = got else { continue };
        if let Some(rows) = &got
            && same_rows_within(&expected, rows, check.ordered)
        {
            return Ok(Verdict::Pass);
        }
        let here = Closest {
            sql: sql.clone(),
            rows: got.as_ref().map(Vec::len),
            columns: got.as_ref().and_then(|r| r.first()).map(Vec::len),
            common: got.as_ref().map_or(0, |r| rows_in_common(&expected, r)),
            right_rows_wrong_order: got
                .as_ref()
                .is_some_and(|r| check.ordered && same_rows(&expected, r, false)),
        };
        if closest
            .as_ref()
            .is_none_or(|c| here.score(&expected) > c.score(&expected))
        {
            closest = Some(here);
        }
    }
    let hint = match closest {
        Some(c) => c.describe(&expected),
        None => format!(
            "none of your {tried} recent quer{} runs without an error now",
            if tried == 1 { "y" } else { "ies" }
        ),
    };
    Ok(Verdict::Fail(Some(hint)))
}

/// `sql` on one line (whitespace runs made one space), cut at `max` characters.
pub fn one_line(sql: &str, max: usize) -> String {
    let flat: String = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() <= max {
        flat
    } else {
        let cut: String = flat.chars().take(max).collect();
        format!("{cut}…")
    }
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
    #[test]
    fn extra_columns_of_the_learner_are_left_out() {
        let v = |x: &str| Some(x.to_string());
        let expected = vec![vec![v("a"), v("5")], vec![v("b"), v("4")]];
        let got = vec![
            vec![v("1"), v("a"), v("2026"), v("5")],
            vec![v("2"), v("b"), v("2025"), v("4")],
        ];
        assert!(same_rows_within(&expected, &got, true));
        let wrong_order = vec![got[1].clone(), got[0].clone()];
        assert!(!same_rows_within(&expected, &wrong_order, true));
        assert!(same_rows_within(&expected, &wrong_order, false));
        // The values must sit in the same rows, not just the same columns.
        let mixed = [vec![v("a"), v("4")], vec![v("b"), v("5")]];
        let mixed_wide: TextRows = mixed
            .iter()
            .map(|r| [r.clone(), vec![v("x")]].concat())
            .collect();
        assert!(!same_rows_within(&expected, &mixed_wide, false));
        assert!(!same_rows_within(&expected, &got[..1].to_vec(), false));
    }

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
    fn parses_sandbox_checks_and_compose_steps() {
        let good = r#"
[[exercise]]
id = "14.E"
[[exercise.check]]
name = "compose"
kind = "sandbox"
requires = ["named_volume", "healthcheck", "memory_limit", "cpu_limit"]
message = "bring it up"
[[exercise.solution]]
compose = "services: {}"
"#;
        let f = ChecksFile::parse(good).expect("valid");
        let check = &f.exercises[0].checks[0];
        assert_eq!(check.kind, Some(CheckKind::Sandbox));
        assert_eq!(check.requires.len(), 4);
        assert!(f.exercises[0].uses_sandbox());
        assert!(f.exercises[0].solution[0].compose.is_some());
        // A sandbox check takes no sql and needs requirements; requires
        // goes with sandbox checks only; unknown requirements are refused.
        let with_sql = good.replace(
            "message = \"bring it up\"",
            "message = \"m\"\nsql = \"select 1\"",
        );
        assert!(
            ChecksFile::parse(&with_sql)
                .unwrap_err()
                .contains("sandbox check")
        );
        let none = good.replace(
            r#"["named_volume", "healthcheck", "memory_limit", "cpu_limit"]"#,
            "[]",
        );
        assert!(ChecksFile::parse(&none).is_err());
        let bogus = good.replace("\"cpu_limit\"", "\"gpu_limit\"");
        assert!(ChecksFile::parse(&bogus).is_err());
        let stray = "[[exercise]]\nid = \"1\"\n[[exercise.check]]\nname = \"x\"\nsql = \"s\"\nmessage = \"m\"\nrequires = [\"healthcheck\"]\n";
        assert!(
            ChecksFile::parse(stray)
                .unwrap_err()
                .contains("requires only")
        );
        // A plain check still needs its sql.
        let no_sql =
            "[[exercise]]\nid = \"1\"\n[[exercise.check]]\nname = \"x\"\nmessage = \"m\"\n";
        assert!(ChecksFile::parse(no_sql).is_err());
    }

    #[test]
    fn finds_nested_seq_scans() {
        let plan = serde_json::json!([{"Plan": {"Node Type": "Hash Join", "Plans": [
            {"Node Type": "Seq Scan", "Relation Name": "users"},
            {"Node Type": "Index Scan", "Relation Name": "tasks"}]}}]);
        assert!(has_seq_scan_on(&plan, "users"));
        assert!(!has_seq_scan_on(&plan, "tasks"));
    }

    #[test]
    fn parses_learner_result_checks_and_block_entries() {
        let text = r#"
[[block]]
contains = "UPDATE accounts"
expect_sqlstate = "40P01"

[[block]]
contains = "pg_terminate_backend(<pid>)"
skip = "needs a pid"

[[exercise]]
id = "14.B.3"
[[exercise.check]]
name = "query 1"
kind = "learner_result"
sql = "select 1"
ordered = true
message = "None of your recent queries returns it"
"#;
        let f = ChecksFile::parse(text).expect("valid");
        let check = &f.exercises[0].checks[0];
        assert_eq!(check.kind, Some(CheckKind::LearnerResult));
        assert!(check.ordered);
        assert!(f.exercises[0].uses_learner_queries());
        assert_eq!(f.blocks.len(), 2);
        assert_eq!(f.blocks[0].expect_sqlstate.as_deref(), Some("40P01"));
        assert_eq!(f.blocks[1].skip.as_deref(), Some("needs a pid"));

        let bad = |extra: &str| {
            ChecksFile::parse(&format!(
                "[[exercise]]\nid = \"1\"\n[[exercise.check]]\nname = \"x\"\nsql = \"select 1\"\nmessage = \"m\"\n{extra}\n"
            ))
        };
        assert!(bad("kind = \"learner_result\"").is_ok());
        let list = bad("before = [\"update t set a = a\", \"select 1; select 2\"]").unwrap();
        let texts = list.exercises[0].checks[0]
            .before
            .as_ref()
            .unwrap()
            .texts()
            .to_vec();
        assert_eq!(texts, ["update t set a = a", "select 1; select 2"]);
        assert!(bad("before = 3").is_err());
        let e = bad("kind = \"learner_result\"\nmin_rows = 1").unwrap_err();
        assert!(e.contains("learner_result"), "{e}");
        assert!(bad("kind = \"learner_result\"\ndatabase = \"x\"").is_err());
        let e = bad("ordered = true").unwrap_err();
        assert!(e.contains("ordered only goes with"), "{e}");
        assert!(
            bad("kind = \"row_count\"").is_err(),
            "unknown kinds are refused"
        );

        let block = |body: &str| ChecksFile::parse(&format!("[[block]]\n{body}\n"));
        assert!(
            block("contains = \"x\"").is_err(),
            "needs expect_sqlstate or skip"
        );
        assert!(block("contains = \"x\"\nskip = \"a\"\nexpect_sqlstate = \"40P01\"").is_err());
        assert!(block("contains = \"  \"\nskip = \"a\"").is_err());
        let e = block("contains = \"x\"\nexpect_sqlstate = \"deadlock\"").unwrap_err();
        assert!(e.contains("is not a SQLSTATE"), "{e}");
        assert!(block("contains = \"x\"\nskip = \"a\"\nbogus = 1").is_err());
    }

    fn rows(r: &[&[Option<&str>]]) -> TextRows {
        r.iter()
            .map(|row| row.iter().map(|v| v.map(str::to_string)).collect())
            .collect()
    }

    #[test]
    fn rows_compare_as_text_multisets_unless_ordered() {
        let a = rows(&[
            &[Some("1"), Some("x")],
            &[Some("2"), None],
            &[Some("1"), Some("x")],
        ]);
        let shuffled = rows(&[
            &[Some("2"), None],
            &[Some("1"), Some("x")],
            &[Some("1"), Some("x")],
        ]);
        assert!(same_rows(&a, &a, true));
        assert!(same_rows(&a, &shuffled, false));
        assert!(!same_rows(&a, &shuffled, true), "order counts when ordered");
        // NULL is not the empty string.
        let empty = rows(&[
            &[Some("1"), Some("x")],
            &[Some("2"), Some("")],
            &[Some("1"), Some("x")],
        ]);
        assert!(!same_rows(&a, &empty, false));
        // Duplicates count: a set comparison would call these equal.
        let once = rows(&[
            &[Some("1"), Some("x")],
            &[Some("2"), None],
            &[Some("2"), None],
        ]);
        assert!(!same_rows(&a, &once, false));
        // An extra column is a different row.
        let wide = rows(&[&[Some("1"), Some("x"), Some("y")]]);
        assert!(!same_rows(&rows(&[&[Some("1"), Some("x")]]), &wide, false));
        assert!(same_rows(&Vec::new(), &Vec::new(), false));

        assert_eq!(rows_in_common(&a, &once), 2);
        assert_eq!(rows_in_common(&a, &shuffled), 3);
        assert_eq!(rows_in_common(&a, &wide), 0);
    }

    #[test]
    fn only_read_only_queries_are_replayed() {
        for sql in [
            "select 1",
            "  -- a comment\n SELECT * FROM tasks",
            "(select 1) union (select 2)",
            "WITH x AS (SELECT 1) SELECT * FROM x",
            "with recursive r(n) as (values (1) union all select n + 1 from r where n < 3) select * from r",
            "TABLE tasks",
            "values (1), (2)",
        ] {
            assert!(is_read_only_query(sql), "{sql}");
        }
        for sql in [
            "explain select 1",
            "explain analyze select 1",
            "insert into t values (1)",
            "update tasks set title = title",
            "delete from tasks",
            "WITH gone AS (DELETE FROM tasks RETURNING *) SELECT count(*) FROM gone",
            "create table t as select 1",
            "begin",
        ] {
            assert!(!is_read_only_query(sql), "{sql}");
        }
    }

    #[test]
    fn candidates_are_split_deduplicated_newest_first_and_capped() {
        let recent: Vec<String> = vec![
            "select 2".into(),
            "insert into t values (1); select 1; select 2;".into(),
            "select 1".into(),
        ];
        assert_eq!(candidate_queries(&recent), ["select 2", "select 1"]);
        let many: Vec<String> = (0..100).map(|i| format!("select {i}")).collect();
        let c = candidate_queries(&many);
        assert_eq!(c.len(), LEARNER_QUERIES_TRIED);
        assert_eq!(c[0], "select 0");
    }

    #[test]
    fn hints_follow_the_message() {
        assert_eq!(
            with_hint("Create the index.", Some("x")),
            "Create the index: x"
        );
        assert_eq!(with_hint("Create the index.", None), "Create the index.");
        assert_eq!(
            one_line("select\n   a,\n b  from t", 100),
            "select a, b from t"
        );
        assert_eq!(one_line("select 123456", 6), "select…");
    }
}
