//! `pglab content check DIR [--json] [--run]`: the course tests itself.
//!
//! Without `--run` it loads every section of a curriculum folder and reports
//! its exercises, the lab files they reference (and whether each exists) and
//! the checks attached; a missing lab file, an unparsable sidecar or a check
//! for an exercise the markdown does not have is a problem (non-zero exit).
//!
//! With `--run`, for each section with checks it starts a fresh throw-away
//! server ([`super::scratch::start`]) and, exercise by exercise in lesson
//! order, runs the checks (expecting them to fail), plays the reference
//! solution, and runs the checks again (they must pass). Lab `.sql` files and
//! solution SQL run through the real `psql -v ON_ERROR_STOP=1`, so scripts
//! behave exactly as a learner's psql runs them (one statement at a time,
//! autocommit); named sessions (`T1`, `T2`) are long-lived sqlx connections.
//! `learner_result` checks take the exercise's reference solution (its SQL
//! and SQL files) as the learner's evidence, so a solution that contains the
//! query proves the check can pass.
//!
//! Then, on another fresh server, it plays the section's own text
//! ([`super::play`]): the lab scripts, then every sql block in order. A
//! block's undeclared error, an EXPLAIN without a plan view and a stale
//! `[[block]]` entry are problems.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Command;

use serde::Serialize;
use sqlx::{Connection, PgConnection};
use tokio::sync::{mpsc, oneshot};

use super::checks::{self, CheckContext, CheckOutcome, ChecksFile, ExerciseChecks, SolutionStep};
use super::model::{self, FileRefKind};
use super::play::{self, BlockOutcome, Play};
use super::sandbox_check;
use super::scratch::{self, ThrowAwayServer};
use super::{Course, list_sections};
use crate::sandbox::compose;

/// The whole report.
#[derive(Debug, Default, Serialize)]
pub struct Report {
    pub sections: Vec<SectionReport>,
    /// What makes the exit code non-zero.
    pub problems: Vec<String>,
    /// Worth knowing, not fatal (e.g. a next link to a section not in this folder).
    pub warnings: Vec<String>,
}

/// One section file.
#[derive(Debug, Serialize)]
pub struct SectionReport {
    pub file: String,
    pub number: Option<u32>,
    pub title: String,
    /// The sidecar, when there is one.
    pub checks_file: Option<String>,
    pub exercises: Vec<ExerciseReport>,
    /// Every lab file reference of the page.
    pub files: Vec<FileReport>,
    pub next: Option<String>,
    /// How many sql code blocks the page has.
    pub sql_blocks: usize,
    /// With `--run`: the play of the lab scripts and every sql block.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub play: Option<Play>,
}

/// One exercise.
#[derive(Debug, Serialize)]
pub struct ExerciseReport {
    pub id: String,
    pub title: String,
    /// Names of its checks.
    pub checks: Vec<String>,
    pub solution_steps: usize,
    /// With `--run`: the checks before the reference solution.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<CheckOutcome>,
    /// With `--run`: the errors of the reference solution's steps.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub solution_errors: Vec<String>,
    /// With `--run`: errors the reference solution expects (a deadlock victim).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub expected_errors: Vec<String>,
    /// With `--run`: the checks after the reference solution.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<CheckOutcome>,
    /// With `--run`: checks not run on the throw-away server, and why
    /// (`sandbox` checks need a Docker sandbox; their reference compose file
    /// is validated and judged without `--run`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub not_run: Vec<String>,
}

/// One lab file reference.
#[derive(Debug, Serialize)]
pub struct FileReport {
    pub path: String,
    pub kind: FileRefKind,
    pub exercise: Option<String>,
    pub exists: bool,
}

/// Loads `dir` and checks every reference (no database needed).
pub fn inspect(dir: &Path) -> Report {
    let mut report = Report::default();
    let course = Course::load(dir);
    for summary in list_sections(dir) {
        let file = format!("{}.md", summary.slug);
        let text = match std::fs::read_to_string(dir.join(&file)) {
            Ok(t) => t,
            Err(e) => {
                report.problems.push(format!("{file}: cannot read: {e}"));
                continue;
            }
        };
        let section = model::parse(&text);
        let sidecar_path = ChecksFile::path_for(&dir.join(&file));
        let sidecar = match ChecksFile::load(&sidecar_path) {
            Ok(s) => s,
            Err(e) => {
                report.problems.push(format!(
                    "{}: unparsable checks: {e}",
                    display_name(&sidecar_path)
                ));
                None
            }
        };
        let files: Vec<FileReport> = section
            .files
            .iter()
            .map(|f| {
                let exists = course.resolve(&f.path).is_ok();
                if !exists {
                    report
                        .problems
                        .push(format!("{file}: lab file {} does not exist", f.path));
                }
                FileReport {
                    path: f.path.clone(),
                    kind: f.kind,
                    exercise: f.exercise.clone(),
                    exists,
                }
            })
            .collect();
        if let Some(next) = &section.next
            && !dir.join(&next.file).is_file()
        {
            report.warnings.push(format!(
                "{file}: next section {} is not in this folder",
                next.file
            ));
        }
        let exercises = section
            .exercises
            .iter()
            .map(|ex| {
                let checks = sidecar.as_ref().and_then(|s| s.exercise(&ex.id));
                ExerciseReport {
                    id: ex.id.clone(),
                    title: ex.title.clone(),
                    checks: checks
                        .map(|c| c.checks.iter().map(|c| c.name.clone()).collect())
                        .unwrap_or_default(),
                    solution_steps: checks.map_or(0, |c| c.solution.len()),
                    before: None,
                    solution_errors: Vec::new(),
                    expected_errors: Vec::new(),
                    after: None,
                    not_run: Vec::new(),
                }
            })
            .collect();
        if let Some(sidecar) = &sidecar {
            let (_, stale) = play::match_specs(&section.sql_blocks, &sidecar.blocks);
            for p in stale {
                report
                    .problems
                    .push(format!("{}: {p}", display_name(&sidecar_path)));
            }
            for ex in &sidecar.exercises {
                if !section.exercises.iter().any(|e| e.id == ex.id) {
                    report.problems.push(format!(
                        "{}: checks for exercise {} which {file} does not have",
                        display_name(&sidecar_path),
                        ex.id
                    ));
                }
                for step in &ex.solution {
                    if let Some(f) = &step.file
                        && course.resolve(f).is_err()
                    {
                        report.problems.push(format!(
                            "{}: {}: solution file {f} does not exist",
                            display_name(&sidecar_path),
                            ex.id
                        ));
                    }
                }
                for p in compose_problems(ex) {
                    report.problems.push(format!(
                        "{}: {}: {p}",
                        display_name(&sidecar_path),
                        ex.id
                    ));
                }
            }
        }
        report.sections.push(SectionReport {
            file,
            number: section.number,
            title: section.title.clone(),
            checks_file: sidecar.as_ref().map(|_| display_name(&sidecar_path)),
            exercises,
            files,
            next: section.next.as_ref().map(|n| n.file.clone()),
            sql_blocks: section.sql_blocks.len(),
            play: None,
        });
    }
    report
}

/// What is wrong with an exercise's sandbox checks and compose steps: a
/// compose file pglab would refuse, one that would not meet the exercise's
/// sandbox checks, or sandbox checks with no compose file to prove them.
fn compose_problems(ex: &ExerciseChecks) -> Vec<String> {
    let mut out = Vec::new();
    let requires: Vec<_> = ex
        .checks
        .iter()
        .filter(|c| c.kind == Some(checks::CheckKind::Sandbox))
        .flat_map(|c| c.requires.iter().copied())
        .collect();
    let files: Vec<&String> = ex
        .solution
        .iter()
        .filter_map(|s| s.compose.as_ref())
        .collect();
    if !requires.is_empty() && files.is_empty() {
        out.push("sandbox checks need a compose step in the reference solution".to_string());
    }
    if files.is_empty() {
        return out;
    }
    let caps = match compose::Caps::serve_defaults() {
        Ok(caps) => caps,
        Err(e) => {
            out.push(format!("cannot read pglab's default caps: {e}"));
            return out;
        }
    };
    for yaml in files {
        match compose::validate(yaml, &caps) {
            Err(e) => out.push(format!("the reference compose file is refused: {e}")),
            Ok(v) => {
                for m in sandbox_check::missing_in_plan(&v.plan, &requires) {
                    out.push(format!(
                        "the reference compose file does not meet its sandbox checks: {m}"
                    ));
                }
            }
        }
    }
    out
}

fn display_name(path: &Path) -> String {
    path.file_name().map_or_else(
        || path.display().to_string(),
        |n| n.to_string_lossy().into_owned(),
    )
}

/// Runs every section's reference solutions and checks, then plays every
/// section's lab scripts and sql blocks (see the module docs).
pub async fn run(dir: &Path, report: &mut Report) -> anyhow::Result<()> {
    let course = Course::load(dir);
    for section in &mut report.sections {
        let sidecar = ChecksFile::load(&ChecksFile::path_for(&dir.join(&section.file)))
            .ok()
            .flatten();
        if let Some(sidecar) = &sidecar
            && sidecar.exercises.iter().any(|e| !e.checks.is_empty())
        {
            run_solutions(&course, section, sidecar, &mut report.problems).await?;
        }
        let text = std::fs::read_to_string(dir.join(&section.file))?;
        let parsed = model::parse(&text);
        if parsed.sql_blocks.is_empty() && play::lab_scripts(&parsed).is_empty() {
            continue;
        }
        // A server of its own: the solutions pass must not decide what the
        // text's statements find, nor the other way round.
        let server = tokio::task::spawn_blocking(scratch::start).await??;
        let specs = sidecar.as_ref().map_or(&[][..], |s| &s.blocks[..]);
        section.play = Some(
            play::play_section(
                &course,
                &section.file,
                &parsed,
                specs,
                server.as_ref(),
                &mut report.problems,
            )
            .await,
        );
        drop(server);
    }
    Ok(())
}

/// The SQL an exercise's reference solution plays, newest first: what a
/// learner who did the exercise would have run (the evidence of
/// `learner_result` checks under `--run`).
fn solution_statements(course: &Course, spec: &ExerciseChecks) -> Vec<String> {
    let mut out: Vec<String> = spec
        .solution
        .iter()
        .filter_map(|step| match (&step.sql, &step.file) {
            (Some(sql), _) => Some(sql.clone()),
            (None, Some(file)) if file.ends_with(".sql") => course.read_file(file).ok(),
            _ => None,
        })
        .collect();
    out.reverse();
    out
}

/// The solutions pass of one section on a fresh server of its own.
async fn run_solutions(
    course: &Course,
    section: &mut SectionReport,
    sidecar: &ChecksFile,
    problems: &mut Vec<String>,
) -> anyhow::Result<()> {
    let server = tokio::task::spawn_blocking(scratch::start).await??;
    let options = server.options();
    let mut conn = PgConnection::connect_with(&options).await?;
    let mut ran_files = std::collections::HashSet::new();
    for ex in &mut section.exercises {
        let Some(full) = sidecar.exercise(&ex.id) else {
            continue;
        };
        // Sandbox checks judge a running container: none here (see
        // compose_problems for what is proven of them without one).
        let mut runnable = full.clone();
        runnable
            .checks
            .retain(|c| c.kind != Some(checks::CheckKind::Sandbox));
        ex.not_run = full
            .checks
            .iter()
            .filter(|c| c.kind == Some(checks::CheckKind::Sandbox))
            .map(|c| {
                format!(
                    "{}: needs a running Docker sandbox (its reference compose file is validated)",
                    c.name
                )
            })
            .collect();
        let spec = &runnable;
        ex.before = Some(checks::run_exercise_checks_with(&mut conn, Some(&options), spec).await);
        let mut sessions = Sessions::default();
        for step in &spec.solution {
            if let Some(f) = &step.file {
                ran_files.insert(f.clone());
            }
            if step.compose.is_some() {
                // Needs a Docker sandbox; validated without --run.
                continue;
            }
            if step.restart {
                // Our connection and the sessions die with the server.
                sessions
                    .finish(&mut ex.solution_errors, &mut ex.expected_errors)
                    .await;
                drop(conn);
                server.restart()?;
                conn = PgConnection::connect_with(&options).await?;
                continue;
            }
            if let Err(e) = play(course, server.as_ref(), &mut sessions, step).await {
                if step.allow_error {
                    ex.expected_errors.push(e);
                } else {
                    ex.solution_errors.push(e);
                }
            }
        }
        sessions
            .finish(&mut ex.solution_errors, &mut ex.expected_errors)
            .await;
        let evidence = solution_statements(course, spec);
        let ctx = CheckContext {
            options: Some(&options),
            recent_statements: &evidence,
            sandbox: None,
        };
        ex.after = Some(checks::run_checks(&mut conn, spec, &ctx).await);
        if let Some(after) = &ex.after
            && !after.passed
        {
            problems.push(format!(
                "{}: {} fails after its reference solution: {}",
                section.file, ex.id, after.message
            ));
        }
        for e in &ex.solution_errors {
            problems.push(format!(
                "{}: {} reference solution: {e}",
                section.file, ex.id
            ));
        }
    }
    // Every lab script must at least run cleanly.
    for f in &section.files {
        if f.path.ends_with(".sql")
            && f.exists
            && !ran_files.contains(&f.path)
            && let Err(e) = psql_file(course, server.as_ref(), &f.path)
        {
            problems.push(format!(
                "{}: lab script {} fails: {e}",
                section.file, f.path
            ));
        }
    }
    drop(conn);
    drop(server);
    Ok(())
}

async fn play(
    course: &Course,
    server: &dyn ThrowAwayServer,
    sessions: &mut Sessions,
    step: &SolutionStep,
) -> Result<(), String> {
    if let Some(file) = &step.file {
        return psql_file(course, server, file);
    }
    if let Some(shell) = &step.shell {
        let work = tempfile::tempdir().map_err(|e| e.to_string())?;
        let out = Command::new("sh")
            .arg("-c")
            .arg(shell)
            .current_dir(work.path())
            .envs(server.client_env())
            .output()
            .map_err(|e| e.to_string())?;
        return if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "`{shell}` failed: {}",
                String::from_utf8_lossy(&out.stderr).trim()
            ))
        };
    }
    let sql = step.sql.as_deref().unwrap_or_default();
    match &step.session {
        Some(name) => {
            sessions
                .run(server, name, sql, step.background, step.allow_error)
                .await
        }
        None => scratch::psql(server, &["-f", "-"], Some(sql)),
    }
}

fn psql_file(course: &Course, server: &dyn ThrowAwayServer, rel: &str) -> Result<(), String> {
    let path: PathBuf = course.resolve(rel).map_err(|e| format!("{rel}: {e}"))?;
    scratch::psql_file(server, &path)
}

type Job = (String, oneshot::Sender<Result<(), String>>);

/// A background step: what it was, whether an error is expected, its answer.
type Pending = (String, bool, oneshot::Receiver<Result<(), String>>);

/// Named long-lived connections for steps that need concurrency.
#[derive(Default)]
struct Sessions {
    senders: HashMap<String, mpsc::UnboundedSender<Job>>,
    pending: Vec<Pending>,
}

impl Sessions {
    async fn run(
        &mut self,
        server: &dyn ThrowAwayServer,
        name: &str,
        sql: &str,
        background: bool,
        allow_error: bool,
    ) -> Result<(), String> {
        if !self.senders.contains_key(name) {
            let mut conn = PgConnection::connect_with(&server.options())
                .await
                .map_err(|e| e.to_string())?;
            let (tx, mut rx) = mpsc::unbounded_channel::<Job>();
            tokio::spawn(async move {
                while let Some((sql, reply)) = rx.recv().await {
                    let result = exec_boxed(&mut conn, sql).await;
                    let _ = reply.send(result);
                }
            });
            self.senders.insert(name.to_string(), tx);
        }
        let (reply, answer) = oneshot::channel();
        self.senders
            .get(name)
            .ok_or("session vanished")?
            .send((sql.to_string(), reply))
            .map_err(|_| format!("session {name} has ended"))?;
        if background {
            self.pending
                .push((format!("{name}: {sql}"), allow_error, answer));
            return Ok(());
        }
        answer
            .await
            .map_err(|_| format!("session {name} has ended"))?
    }

    /// Waits for background steps and closes the sessions.
    async fn finish(&mut self, errors: &mut Vec<String>, expected: &mut Vec<String>) {
        for (what, allow_error, answer) in self.pending.drain(..) {
            let result = tokio::time::timeout(std::time::Duration::from_secs(30), answer).await;
            match result {
                Ok(Ok(Ok(()))) => {}
                Ok(Ok(Err(e))) if !allow_error => errors.push(format!("{what}: {e}")),
                Ok(Ok(Err(e))) => expected.push(format!("{what}: {e}")),
                _ => errors.push(format!("{what}: did not finish")),
            }
        }
        self.senders.clear();
    }
}

/// Boxed so the spawned session task is `Send` (sqlx's executor bounds are
/// higher-ranked and the compiler cannot prove it for an inline future).
fn exec_boxed(
    conn: &mut PgConnection,
    sql: String,
) -> std::pin::Pin<Box<dyn std::future::Future<Output = Result<(), String>> + Send + '_>> {
    Box::pin(async move {
        // A plain `&str` without arguments runs over the simple query protocol.
        sqlx::Executor::execute(conn, sql.as_str())
            .await
            .map(|_| ())
            .map_err(|e| {
                e.as_database_error()
                    .map_or_else(|| e.to_string(), |d| d.message().to_string())
            })
    })
}

/// The report as text for people.
pub fn to_text(report: &Report) -> String {
    use std::fmt::Write;
    let mut s = String::new();
    for sec in &report.sections {
        let number = sec.number.map_or_else(|| "?".into(), |n| n.to_string());
        let _ = writeln!(s, "SECTION {number} — {}  ({})", sec.title, sec.file);
        match &sec.checks_file {
            Some(c) => {
                let n: usize = sec.exercises.iter().map(|e| e.checks.len()).sum();
                let _ = writeln!(s, "  checks: {c} ({n} checks)");
            }
            None => {
                let _ = writeln!(s, "  checks: none (a reading lesson)");
            }
        }
        for ex in &sec.exercises {
            let _ = writeln!(s, "  {}  {}", ex.id, ex.title);
            for f in sec
                .files
                .iter()
                .filter(|f| f.exercise.as_deref() == Some(&ex.id))
            {
                let state = if f.exists { "ok" } else { "MISSING" };
                let kind = match f.kind {
                    FileRefKind::Practice => "file",
                    FileRefKind::Solution => "solution",
                };
                let _ = writeln!(s, "      {kind:<8} {}  {state}", f.path);
            }
            let after = ex.after.as_ref();
            for name in &ex.checks {
                // By name: checks not run here have no detail.
                let detail = after.and_then(|a| a.details.iter().find(|d| d.name == *name));
                let not_run = ex
                    .not_run
                    .iter()
                    .any(|n| n.starts_with(&format!("{name}: ")));
                let verdict = match detail {
                    Some(d) if d.passed => "PASS  ",
                    Some(_) => "FAIL  ",
                    None if not_run => "NOT RUN  ",
                    None => "",
                };
                let _ = writeln!(s, "      check    {verdict}{name}");
                if let Some(d) = detail.filter(|d| !d.passed) {
                    let _ = writeln!(s, "               {}", d.message);
                    if let Some(e) = &d.error {
                        let _ = writeln!(s, "               error: {e}");
                    }
                }
            }
            if let Some(before) = &ex.before {
                let failing = before.details.iter().filter(|d| !d.passed).count();
                let _ = writeln!(
                    s,
                    "      before the reference solution: {failing} of {} checks failed",
                    before.details.len()
                );
            }
            for n in &ex.not_run {
                let _ = writeln!(s, "      not run  {n}");
            }
            for e in &ex.solution_errors {
                let _ = writeln!(s, "      solution error: {e}");
            }
            for e in &ex.expected_errors {
                let _ = writeln!(s, "      expected error: {e}");
            }
        }
        for f in sec.files.iter().filter(|f| f.exercise.is_none()) {
            let state = if f.exists { "ok" } else { "MISSING" };
            let _ = writeln!(s, "  file {}  {state}", f.path);
        }
        if let Some(play) = &sec.play {
            play_text(&mut s, &sec.file, play);
        }
        if let Some(next) = &sec.next {
            let _ = writeln!(s, "  next: {next}");
        }
        s.push('\n');
    }
    for w in &report.warnings {
        let _ = writeln!(s, "warning: {w}");
    }
    for p in &report.problems {
        let _ = writeln!(s, "problem: {p}");
    }
    let _ = writeln!(
        s,
        "{} section(s), {} problem(s)",
        report.sections.len(),
        report.problems.len()
    );
    s
}

/// The play of a section, for people: one line per lab script and block.
fn play_text(s: &mut String, file: &str, play: &Play) {
    use std::fmt::Write;
    let count = |o: BlockOutcome| play.blocks.iter().filter(|b| b.outcome == o).count();
    let _ = writeln!(
        s,
        "  play: {} lab script(s), then {} sql block(s): {} ok, {} expected failure(s), {} skipped, {} FAILED",
        play.lab_scripts.len(),
        play.blocks.len(),
        count(BlockOutcome::Ok),
        count(BlockOutcome::ExpectedFailure),
        count(BlockOutcome::Skipped),
        count(BlockOutcome::Failed),
    );
    for script in &play.lab_scripts {
        match &script.error {
            None => {
                let _ = writeln!(s, "      lab script {}  ok", script.path);
            }
            Some(e) => {
                let _ = writeln!(s, "      lab script {}  FAILED: {e}", script.path);
            }
        }
    }
    for b in &play.blocks {
        let exercise = b
            .exercise
            .as_deref()
            .map(|e| format!(" ({e})"))
            .unwrap_or_default();
        let verdict = match b.outcome {
            BlockOutcome::Ok => format!("ok, {} statement(s)", b.statements),
            BlockOutcome::ExpectedFailure => format!(
                "expected failure {}: {}",
                b.sqlstate.as_deref().unwrap_or(""),
                b.error.as_deref().unwrap_or("")
            ),
            BlockOutcome::Skipped => "skipped".to_string(),
            BlockOutcome::Failed => "FAILED".to_string(),
        };
        let _ = writeln!(s, "      block {file}:{}{exercise}  {verdict}", b.line);
        if b.outcome == BlockOutcome::Failed {
            if let Some(stmt) = &b.statement {
                let _ = writeln!(
                    s,
                    "               statement: {}",
                    checks::one_line(stmt, 200)
                );
            }
            if let Some(e) = &b.error {
                let code = b
                    .sqlstate
                    .as_deref()
                    .map(|c| format!(" ({c})"))
                    .unwrap_or_default();
                let _ = writeln!(s, "               error: {e}{code}");
            }
        }
        for note in &b.notes {
            let _ = writeln!(s, "               note: {note}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exercise(compose: Option<&str>) -> ExerciseChecks {
        let mut text = String::from(
            "[[exercise]]\nid = \"14.E\"\n[[exercise.check]]\nname = \"c\"\nkind = \"sandbox\"\n\
             requires = [\"named_volume\", \"healthcheck\", \"memory_limit\"]\nmessage = \"m\"\n",
        );
        if let Some(yaml) = compose {
            text.push_str(&format!(
                "[[exercise.solution]]\ncompose = '''\n{yaml}'''\n"
            ));
        }
        ChecksFile::parse(&text).expect("valid").exercises.remove(0)
    }

    #[test]
    fn a_reference_compose_file_must_be_valid_and_meet_the_sandbox_checks() {
        let full = "services:\n  postgres:\n    image: postgres:15\n    volumes:\n      - pgdata:/var/lib/postgresql/data\n    healthcheck:\n      test: [\"CMD-SHELL\", \"pg_isready\"]\n    mem_limit: 128m\nvolumes:\n  pgdata:\n";
        assert_eq!(
            compose_problems(&exercise(Some(full))),
            Vec::<String>::new()
        );
        let bare = "services:\n  postgres:\n    image: postgres:15\n";
        let p = compose_problems(&exercise(Some(bare)));
        assert_eq!(p.len(), 3, "{p:?}");
        assert!(p[0].contains("no named volume"), "{p:?}");
        let refused = compose_problems(&exercise(Some(
            "services:\n  postgres:\n    image: postgres:15\n    privileged: true\n",
        )));
        assert!(refused[0].contains("refused"), "{refused:?}");
        let none = compose_problems(&exercise(None));
        assert!(none[0].contains("need a compose step"), "{none:?}");
    }
}
