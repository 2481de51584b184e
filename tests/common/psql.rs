//! The comparison with psql 15 itself, shared by the console tests that
//! hold pglab's answers against the real client: run a script file through
//! `psql -X -v ON_ERROR_STOP=1 -f FILE` (from the file's folder, so `\i`
//! finds lab files beside it), take psql's `psql:FILE:LINE: ` and `error: `
//! prefixes off its standard error, and print a console answer (in-process
//! [`StatementResult`]s or the JSON of `POST /api/sql`) the way psql prints
//! the same results: standard output (echoed statements with `-e`, tables,
//! tags, texts, notifications) and standard error (notices, errors with
//! their caret).

#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;
use std::process::Command;

use pglab::console::meta::text::{psql_error_text, psql_notice_text, psql_text};
use pglab::console::notices::Notice;
use pglab::console::result::{Column, SqlError, StatementResult};
use serde_json::Value;

use super::pg::TempPg;

/// What psql printed: standard output and standard error (prefixes off).
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Printed {
    pub out: String,
    pub err: String,
}

/// Runs `file` (a name in `dir`) through the real psql on `pg` as `labuser`
/// on `labdb`, with `ON_ERROR_STOP=on`, no pager, and `extra` arguments
/// (e.g. `-e` to echo each statement as sent).
pub fn run_psql(pg: &TempPg, dir: &Path, file: &str, extra: &[&str]) -> Printed {
    let out = Command::new(super::pg::pg_bindir().join("psql"))
        .args(["-X", "-v", "ON_ERROR_STOP=on", "-P", "pager=off"])
        .args(extra)
        .arg("-h")
        .arg(pg.socket_dir())
        .args(["-U", "labuser", "-d", "labdb", "-f", file])
        .current_dir(dir)
        .env_remove("PGCLIENTENCODING")
        .output()
        .unwrap();
    let prefix = format!("psql:{file}:");
    let err: String = String::from_utf8_lossy(&out.stderr)
        .lines()
        .map(|l| {
            let l = match l.strip_prefix(&prefix).and_then(|r| r.split_once(": ")) {
                Some((_, rest)) => rest,
                None => l,
            };
            format!("{}\n", l.strip_prefix("error: ").unwrap_or(l))
        })
        .collect();
    Printed {
        out: String::from_utf8_lossy(&out.stdout).into_owned(),
        err,
    }
}

/// Prints a run's results as psql does: with `echo`, each statement sent
/// to the server first (psql's `-e`); notices then the error on standard
/// error; notifications after their statement.
pub fn print_results(results: &[StatementResult], expanded: bool, echo: bool) -> Printed {
    let mut p = Printed::default();
    for r in results {
        // psql echoes what it sends: statements, and the query of a
        // `\gset` or `\gexec` (a meta item whose `sql` is that query).
        if echo && (r.kind == "statement" || !r.sql.starts_with('\\')) {
            p.out.push_str(&r.sql);
            p.out.push('\n');
        }
        if let Some(text) = &r.messages {
            // Under VERBOSITY or SHOW_CONTEXT the server prints them.
            p.err.push_str(text);
        } else {
            for n in &r.notices {
                p.err.push_str(&psql_notice_text(n, &r.sql));
            }
        }
        if let Some(text) = &r.stderr {
            p.err.push_str(text);
            p.err.push('\n');
        }
        if r.error.is_some() {
            if r.messages.is_none() {
                p.err.push_str(&psql_error_text(r));
            }
        } else if let Some(printed) = &r.printed {
            // Under `\pset` options the server prints the result itself.
            p.out.push_str(printed);
        } else if !r.empty_query {
            p.out.push_str(&psql_text(r, expanded));
        }
        for n in &r.notifications {
            p.out.push_str(n);
            p.out.push('\n');
        }
    }
    p
}

fn s(v: &Value) -> Option<String> {
    v.as_str().map(str::to_string)
}

/// A statement of `POST /api/sql`'s answer as the [`StatementResult`] it
/// was serialized from (the fields psql's printing needs).
pub fn result_from_json(v: &Value) -> StatementResult {
    let strings = |v: &Value| -> Vec<String> {
        v.as_array()
            .map(|a| a.iter().filter_map(s).collect())
            .unwrap_or_default()
    };
    StatementResult {
        sql: s(&v["sql"]).unwrap_or_default(),
        kind: if v["kind"] == "meta" {
            "meta"
        } else {
            "statement"
        },
        columns: v["columns"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|c| Column {
                        name: s(&c["name"]).unwrap_or_default(),
                        type_name: s(&c["type"]).unwrap_or_default(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        rows: v["rows"]
            .as_array()
            .map(|rows| {
                rows.iter()
                    .map(|r| r.as_array().unwrap().iter().map(s).collect())
                    .collect()
            })
            .unwrap_or_default(),
        command_tag: s(&v["command_tag"]),
        notices: v["notices"]
            .as_array()
            .map(|a| {
                a.iter()
                    .map(|n| Notice {
                        severity: s(&n["severity"]).unwrap_or_default(),
                        sqlstate: s(&n["sqlstate"]).unwrap_or_default(),
                        message: s(&n["message"]).unwrap_or_default(),
                        detail: s(&n["detail"]),
                        hint: s(&n["hint"]),
                        position: n["position"].as_u64().map(|p| p as usize),
                        internal_position: n["internal_position"].as_u64().map(|p| p as usize),
                        internal_query: s(&n["internal_query"]),
                        context: s(&n["context"]),
                        ..Notice::default()
                    })
                    .collect()
            })
            .unwrap_or_default(),
        error: v["error"].is_object().then(|| SqlError {
            severity: s(&v["error"]["severity"]).unwrap_or_default(),
            sqlstate: s(&v["error"]["sqlstate"]).unwrap_or_default(),
            message: s(&v["error"]["message"]).unwrap_or_default(),
            detail: s(&v["error"]["detail"]),
            hint: s(&v["error"]["hint"]),
            context: s(&v["error"]["context"]),
            internal_query: s(&v["error"]["internal_query"]),
            internal_position: v["error"]["internal_position"].as_u64().map(|p| p as usize),
            position: v["error"]["position"].as_u64().map(|p| p as usize),
            ..SqlError::default()
        }),
        text: s(&v["text"]),
        stderr: s(&v["stderr"]),
        printed: s(&v["printed"]),
        messages: s(&v["messages"]),
        empty_query: v["empty_query"] == true,
        tuples: v["tuples"] == true,
        expanded: v["expanded"].as_bool(),
        notifications: strings(&v["notifications"]),
        title: s(&v["title"]),
        footers: strings(&v["footers"]),
        count_footer: v["count_footer"] == true,
        unexpanded: v["unexpanded"] == true,
        more: v["more"]
            .as_array()
            .map(|a| a.iter().map(result_from_json).collect())
            .unwrap_or_default(),
        null_display: s(&v["null_display"]),
        ..StatementResult::default()
    }
}

/// psql's notification lines with the server process id replaced by `N`
/// (two servers, or two sessions, never share one).
pub fn without_pids(text: &str) -> String {
    text.lines()
        .map(
            |l| match (l.starts_with("Asynchronous notification"), l.find("PID ")) {
                (true, Some(i)) => format!("{}N.\n", &l[..i + 4]),
                _ => format!("{l}\n"),
            },
        )
        .collect()
}
