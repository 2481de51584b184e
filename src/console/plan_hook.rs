//! The one place where an EXPLAIN statement meets the plan view.
//!
//! An EXPLAIN the plan view can use runs **once**, as `FORMAT JSON` with the
//! learner's other options (EXPLAIN ANALYZE executes the statement, so it
//! must never run twice). That JSON is read whole, never cut at the
//! per-value display cap (up to [`explain::MAX_PLAN_READ_BYTES`]); from it
//! `crate::explain` renders the text psql would have shown ("QUERY PLAN"
//! rows) and the HTML plan view. The display caps (rows per statement, bytes
//! per value, the run's byte budget) then apply to those rows only, as for
//! any result. An EXPLAIN the plan view cannot use (FORMAT YAML/XML) runs as
//! written.

use super::notices::Notice;
use super::result::{Column, StatementResult};
use super::run::{Conn, Limits, Ran, cap_value, run_statement};
use crate::explain;

/// Runs one statement, taking the plan-view path for EXPLAIN. The result's
/// `plan_json` carries the JSON plan for the caller to keep (plan compare).
pub async fn run_with_plan(c: &mut Conn, sql: &str, limits: &Limits, in_failed_tx: bool) -> Ran {
    let request = explain::parse_explain(sql);
    let Some((request, json_sql)) = request.and_then(|r| {
        let json_sql = r.json_sql.clone()?;
        (!r.run_as_written).then_some((r, json_sql))
    }) else {
        return run_statement(c, sql, limits, in_failed_tx).await;
    };
    // The JSON is pglab's to read, not the browser's: no display cap on it.
    let read_whole = Limits {
        row_cap: 1,
        value_cap: explain::MAX_PLAN_READ_BYTES,
        byte_budget: usize::MAX,
        keep_bytes: 0,
    };
    let mut ran = run_statement(c, &json_sql, &read_whole, in_failed_tx).await;
    let result = &mut ran.result;
    result.sql = sql.to_string();
    // Carets point into the learner's text, not the rewritten one.
    for n in &mut result.notices {
        n.position = n.position.and_then(|p| request.learner_position(p));
    }
    if let Some(error) = result.error.as_mut() {
        // The caret points into the learner's text, not the rewritten one.
        error.position = error.position.and_then(|p| request.learner_position(p));
        return ran;
    }
    let Some(json) = result
        .rows
        .first_mut()
        .and_then(|row| row.first_mut())
        .and_then(Option::take)
    else {
        return ran;
    };
    if result.values_truncated {
        // Past what pglab reads: say so rather than show a cut document.
        result.rows.clear();
        result.total_rows = 0;
        result.values_truncated = false;
        result.command_tag = Some("EXPLAIN".into());
        result.notices.push(Notice::note(
            "NOTICE",
            format!(
                "this plan's JSON is over {} MiB, more than pglab reads: no output and no plan view (the statement ran once and is not run again); EXPLAIN it with fewer options (no VERBOSE), or a smaller part of the query",
                explain::MAX_PLAN_READ_BYTES >> 20
            ),
        ));
        return ran;
    }
    match explain::explain_output(&request, &json) {
        Ok(out) => {
            result.columns = vec![Column {
                name: "QUERY PLAN".into(),
                type_name: "text".into(),
            }];
            show_rows(result, out.rows, limits);
            result.command_tag = Some("EXPLAIN".into());
            if let Some(message) = out.no_view {
                result
                    .notices
                    .push(Notice::note("NOTICE", format!("pglab: {message}")));
            }
            if out.plan_html.is_some() {
                result.plan_json = Some(json);
            }
            result.plan_html = out.plan_html;
        }
        Err(err) => {
            // The JSON came from the server: keep it visible as the output
            // and say why there is no plan view, rather than hide the result.
            show_rows(result, vec![json], limits);
            result.notices.push(Notice::note(
                "NOTICE",
                format!("pglab could not draw this plan: {err}"),
            ));
        }
    }
    ran
}

/// Puts `rows` (one column) into `result` under the display caps: rows past
/// the row cap or the byte budget are counted, not kept; each value is cut
/// at the value cap with a marker.
fn show_rows(result: &mut StatementResult, rows: Vec<String>, limits: &Limits) {
    result.total_rows = rows.len() as u64;
    let mut bytes = 0usize;
    let mut cut = false;
    let mut kept = Vec::with_capacity(rows.len().min(limits.row_cap));
    for row in &rows {
        if kept.len() >= limits.row_cap || bytes >= limits.byte_budget {
            break;
        }
        let value = cap_value(row, limits.value_cap, &mut cut);
        bytes += value.len() + 8;
        kept.push(vec![Some(value)]);
    }
    result.truncated = (kept.len() as u64) < result.total_rows;
    result.values_truncated = cut;
    result.rows = kept;
    if result.truncated || cut {
        // The whole text, for "show all", when it fits.
        let whole = super::kept::FullRows {
            rows: rows.into_iter().map(|r| vec![Some(r)]).collect(),
        };
        if whole.bytes() <= limits.keep_bytes {
            result.full = Some(whole);
        }
    }
}
