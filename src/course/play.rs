//! The play of a section's own text for `pglab content check --run`: on a
//! fresh server, the section's lab scripts (the `.sql` practice files under
//! a `scripts/` folder, in the order the page first references them) run
//! through the real psql, then **every sql code block of the page, in
//! order**, statement by statement through the console's own machinery
//! (`console::split`, `console::plan_hook`, `console::meta`), as a learner
//! who types the text into pglab's console would run them.
//!
//! A block fails on the first statement error it does not declare, and on
//! an EXPLAIN that comes back without a plan view. The sidecar's `[[block]]`
//! entries ([`BlockSpec`]) mark blocks expected to fail with a SQLSTATE, or
//! not to be played; an entry that matches no block is a stale sidecar.
//! psql meta-commands the console knows (`\d`, `\x`, `\timing`) run as
//! there; `\c DB` switches database when DB exists (else the rest of the
//! block is skipped, with a note); others are skipped with a note.

use serde::Serialize;
use sqlx::postgres::PgConnectOptions;

use super::Course;
use super::checks::{BlockSpec, one_line};
use super::model::{FileRefKind, Section, SqlBlock};
use super::scratch::{self, ThrowAwayServer};
use crate::console::meta::{self, Settings};
use crate::console::plan_hook;
use crate::console::result::{SqlError, TxState};
use crate::console::run::{Conn, Limits};
use crate::console::session::next_state;
use crate::console::split::{self, ItemKind};
use crate::explain;

/// Per-statement timeout while playing blocks.
const BLOCK_STATEMENT_TIMEOUT: &str = "60s";

/// What the play of one section found.
#[derive(Debug, Default, Serialize)]
pub struct Play {
    /// The lab scripts run first, in order.
    pub lab_scripts: Vec<ScriptReport>,
    /// Every sql block of the page, in order.
    pub blocks: Vec<BlockReport>,
}

/// One lab script of the play.
#[derive(Debug, Serialize)]
pub struct ScriptReport {
    pub path: String,
    /// psql's error, if it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// How a block came out.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum BlockOutcome {
    /// Every statement ran (and every EXPLAIN has a plan view).
    Ok,
    /// It failed with the SQLSTATE its `[[block]]` entry declares.
    ExpectedFailure,
    /// Not played (its `[[block]]` entry says why, see `notes`).
    Skipped,
    /// An undeclared error, a missing plan view, or a declared failure that
    /// did not happen.
    Failed,
}

/// One sql block of the play.
#[derive(Debug, Serialize)]
pub struct BlockReport {
    /// 1-based line of the block's opening fence.
    pub line: usize,
    /// The exercise it appears in.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exercise: Option<String>,
    pub outcome: BlockOutcome,
    /// Statements and meta-commands that ran.
    pub statements: usize,
    /// The statement that failed (or was expected to fail).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub statement: Option<String>,
    /// The server's error (or why the block failed).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sqlstate: Option<String>,
    /// Meta-commands skipped, database switches, the skip reason.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub notes: Vec<String>,
}

/// Whitespace runs made one space, so that `contains` matches across lines.
fn normalized(text: &str) -> String {
    text.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Which `[[block]]` entry applies to each block (an index into `specs`),
/// and the problems of the entries: one that matches no block (stale), two
/// that pick the same block.
pub fn match_specs(blocks: &[SqlBlock], specs: &[BlockSpec]) -> (Vec<Option<usize>>, Vec<String>) {
    let texts: Vec<String> = blocks.iter().map(|b| normalized(&b.text)).collect();
    let mut mapping: Vec<Option<usize>> = vec![None; blocks.len()];
    let mut problems = Vec::new();
    for (i, spec) in specs.iter().enumerate() {
        let needle = normalized(&spec.contains);
        match texts.iter().position(|t| t.contains(&needle)) {
            None => problems.push(format!(
                "[[block]] contains = {:?} matches no sql block (a stale sidecar entry)",
                spec.contains
            )),
            Some(b) => match mapping[b] {
                Some(first) => problems.push(format!(
                    "[[block]] entries {:?} and {:?} both pick the sql block at line {}",
                    specs[first].contains, spec.contains, blocks[b].line
                )),
                None => mapping[b] = Some(i),
            },
        }
    }
    (mapping, problems)
}

/// The lab scripts of a section: its practice `.sql` files under a
/// `scripts/` folder, in the order the page first references them.
pub fn lab_scripts(section: &Section) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for f in &section.files {
        if f.kind == FileRefKind::Practice
            && f.path.ends_with(".sql")
            && f.path.split('/').any(|c| c == "scripts")
            && !out.contains(&f.path)
        {
            out.push(f.path.clone());
        }
    }
    out
}

/// Plays `section` (file name `file`) on `server`: lab scripts, then every
/// sql block. Each failure is also pushed to `problems`.
pub async fn play_section(
    course: &Course,
    file: &str,
    section: &Section,
    specs: &[BlockSpec],
    server: &dyn ThrowAwayServer,
    problems: &mut Vec<String>,
) -> Play {
    let mut play = Play::default();
    for rel in lab_scripts(section) {
        let result = course
            .resolve(&rel)
            .map_err(|e| format!("{rel}: {e}"))
            .and_then(|path| scratch::psql_file(server, &path));
        if let Err(e) = &result {
            problems.push(format!(
                "{file}: lab script {rel} fails before the sql blocks: {e}"
            ));
        }
        play.lab_scripts.push(ScriptReport {
            path: rel,
            error: result.err(),
        });
    }
    let (mapping, _) = match_specs(&section.sql_blocks, specs);
    let base = server
        .options()
        .options([("statement_timeout", BLOCK_STATEMENT_TIMEOUT)]);
    let mut player = match Player::new(base).await {
        Ok(p) => p,
        Err(e) => {
            problems.push(format!(
                "{file}: cannot connect to play the sql blocks: {e}"
            ));
            return play;
        }
    };
    for (block, spec) in section.sql_blocks.iter().zip(mapping) {
        let report = player.play(block, spec.map(|i| &specs[i])).await;
        if report.outcome == BlockOutcome::Failed {
            let what = report
                .statement
                .as_deref()
                .map(|s| format!("`{}`: ", one_line(s, 100)))
                .unwrap_or_default();
            problems.push(format!(
                "{file}: sql block at line {} FAILED: {what}{}",
                block.line,
                report.error.as_deref().unwrap_or("")
            ));
        }
        play.blocks.push(report);
    }
    play
}

/// One console-like session that plays blocks in order; like psql, it keeps
/// its database, settings and open transaction from block to block.
struct Player {
    base: PgConnectOptions,
    conn: Conn,
    state: TxState,
    settings: Settings,
    limits: Limits,
}

async fn connect(base: &PgConnectOptions, database: &str) -> Result<Conn, String> {
    Conn::connect(&base.clone().database(database))
        .await
        .map_err(|e| {
            e.as_database_error()
                .map_or_else(|| e.to_string(), |d| d.message().to_string())
        })
}

/// A statement's failure, before it is judged against the block's entry.
struct Failure {
    statement: String,
    error: SqlError,
}

impl Player {
    async fn new(base: PgConnectOptions) -> Result<Self, String> {
        let conn = connect(&base, base.get_database().unwrap_or("labdb")).await?;
        Ok(Self {
            base,
            conn,
            state: TxState::Idle,
            settings: Settings::default(),
            // What the console sends a learner (the same caps).
            limits: Limits::default(),
        })
    }

    async fn play(&mut self, block: &SqlBlock, spec: Option<&BlockSpec>) -> BlockReport {
        let mut report = BlockReport {
            line: block.line,
            exercise: block.exercise.clone(),
            outcome: BlockOutcome::Ok,
            statements: 0,
            statement: None,
            error: None,
            sqlstate: None,
            notes: Vec::new(),
        };
        if let Some(reason) = spec.and_then(|s| s.skip.as_deref()) {
            report.outcome = BlockOutcome::Skipped;
            report.notes.push(reason.to_string());
            return report;
        }
        let expected = spec.and_then(|s| s.expect_sqlstate.as_deref());
        let mut failure: Option<Failure> = None;
        for item in split::split(&block.text) {
            if item.kind == ItemKind::Meta {
                let mut words = item.text.split_whitespace();
                let command = words.next().unwrap_or_default();
                if matches!(command, "\\c" | "\\connect") {
                    if !self.switch(words.next(), &item.text, &mut report).await {
                        break;
                    }
                    continue;
                }
                let result =
                    meta::run_meta(&mut self.conn, &item.text, &mut self.settings, &self.limits)
                        .await;
                match result.error {
                    Some(e) if e.message.starts_with("invalid command") => report
                        .notes
                        .push(format!("skipped `{}`: not a console command", item.text)),
                    Some(error) => {
                        failure = Some(Failure {
                            statement: item.text.clone(),
                            error,
                        });
                        break;
                    }
                    None => report.statements += 1,
                }
                continue;
            }
            let ran = plan_hook::run_with_plan(
                &mut self.conn,
                &item.text,
                &self.limits,
                self.state == TxState::Failed,
            )
            .await;
            report.statements += 1;
            self.state = next_state(self.state, &item.text, ran.result.error.is_some());
            if ran.lost {
                self.reconnect(&mut report).await;
            }
            if let Some(error) = ran.result.error {
                failure = Some(Failure {
                    statement: item.text.clone(),
                    error,
                });
                break;
            }
            if let Some(why) = missing_plan_view(&item.text, &ran.result) {
                report.outcome = BlockOutcome::Failed;
                report.statement = Some(item.text.clone());
                report.error = Some(why);
                break;
            }
        }
        match (failure, expected) {
            (Some(f), Some(code)) if f.error.sqlstate == code => {
                report.outcome = BlockOutcome::ExpectedFailure;
                report.statement = Some(f.statement);
                report.sqlstate = Some(f.error.sqlstate);
                report.error = Some(f.error.message);
            }
            (Some(f), _) => {
                report.outcome = BlockOutcome::Failed;
                report.statement = Some(f.statement);
                if let Some(code) = expected {
                    report
                        .notes
                        .push(format!("the sidecar expects SQLSTATE {code}"));
                }
                report.error = Some(f.error.message);
                report.sqlstate = Some(f.error.sqlstate);
            }
            (None, Some(code))
                if !matches!(report.outcome, BlockOutcome::Failed | BlockOutcome::Skipped) =>
            {
                report.outcome = BlockOutcome::Failed;
                report.error = Some(format!(
                    "the sidecar expects this block to fail with SQLSTATE {code}, but every statement ran"
                ));
            }
            (None, _) => {}
        }
        if self.state == TxState::Failed {
            // The next block starts clean, as a learner would after ROLLBACK.
            let _ = plan_hook::run_with_plan(&mut self.conn, "rollback", &self.limits, true).await;
            self.state = TxState::Idle;
            report
                .notes
                .push("rolled back the failed transaction before the next block".into());
        }
        report
    }

    /// `\c DB`: switches database when DB exists here; `false` ends the
    /// block (the rest is not played, with a note).
    async fn switch(&mut self, db: Option<&str>, line: &str, report: &mut BlockReport) -> bool {
        let Some(db) = db.map(|d| d.trim_matches('"')) else {
            report
                .notes
                .push(format!("skipped `{line}`: no database named"));
            return true;
        };
        match connect(&self.base, db).await {
            Ok(conn) => {
                self.conn = conn;
                self.state = TxState::Idle;
                self.base = self.base.clone().database(db);
                report.notes.push(format!("`{line}`: now in database {db}"));
                true
            }
            Err(e) => {
                report.notes.push(format!(
                    "`{line}`: {e}; the rest of the block is not played"
                ));
                if report.statements == 0 {
                    report.outcome = BlockOutcome::Skipped;
                }
                false
            }
        }
    }

    async fn reconnect(&mut self, report: &mut BlockReport) {
        let db = self.base.get_database().unwrap_or("labdb").to_string();
        match connect(&self.base, &db).await {
            Ok(conn) => {
                self.conn = conn;
                self.state = TxState::Idle;
                report
                    .notes
                    .push("the connection was lost; reconnected".into());
            }
            Err(e) => report
                .notes
                .push(format!("the connection was lost and cannot reconnect: {e}")),
        }
    }
}

/// Why an EXPLAIN that ran has no plan view (`None` when it has one, or is
/// not an EXPLAIN the plan view draws: FORMAT YAML/XML).
fn missing_plan_view(
    sql: &str,
    result: &crate::console::result::StatementResult,
) -> Option<String> {
    let request = explain::parse_explain(sql)?;
    if request.run_as_written || result.plan_html.is_some() {
        return None;
    }
    let notice = result
        .notices
        .iter()
        .find(|n| n.message.starts_with("pglab could not draw"))
        .map_or_else(|| "no plan came back".to_string(), |n| n.message.clone());
    Some(format!("EXPLAIN came back without a plan view: {notice}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::course::model;

    fn spec(contains: &str) -> BlockSpec {
        BlockSpec {
            contains: contains.into(),
            expect_sqlstate: None,
            skip: Some("why".into()),
        }
    }

    #[test]
    fn matches_entries_on_normalized_text_and_reports_stale_ones() {
        let md = "# SECTION 90 — X\n\n```sql\nSELECT 1;\n```\n\n```sql\nUPDATE accounts\n   SET balance = 0;\n```\n\n```sql\nUPDATE accounts SET balance = 1;\n```\n";
        let section = model::parse(md);
        assert_eq!(section.sql_blocks.len(), 3);
        let specs = [
            spec("accounts SET balance"),
            spec("no such text"),
            spec("UPDATE accounts SET"),
            spec("select 1"),
        ];
        let (mapping, problems) = match_specs(&section.sql_blocks, &specs);
        // Whitespace-normalized, case-sensitive: the second block is the first match.
        assert_eq!(mapping, vec![None, Some(0), None]);
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(problems[0].contains("\"no such text\" matches no sql block"));
        assert!(problems[1].contains("both pick the sql block at line 7"));
        assert!(problems[2].contains("\"select 1\" matches no sql block"));
    }

    #[test]
    fn lab_scripts_are_sql_practice_files_under_scripts_in_first_reference_order() {
        let md = "# SECTION 90 — X\n\n**Practice files:**\n- `practice/x/scripts/b.sql`\n- `practice/x/scripts/a.sql`\n- `practice/x/scripts/run.sh`\n- `practice/x/other/c.sql`\n\nAgain `practice/x/scripts/b.sql`.\n\n**Solution:** `practice/x/scripts/solution.sql`\n";
        let section = model::parse(md);
        assert_eq!(
            lab_scripts(&section),
            ["practice/x/scripts/b.sql", "practice/x/scripts/a.sql"]
        );
    }
}
