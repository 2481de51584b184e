//! The one place where an EXPLAIN statement meets the plan view.
//!
//! An EXPLAIN the plan view can use runs **once**, as `FORMAT JSON` with the
//! learner's other options (EXPLAIN ANALYZE executes the statement, so it
//! must never run twice). From that JSON, `crate::explain` renders the text
//! psql would have shown ("QUERY PLAN" rows) and the HTML plan view. An
//! EXPLAIN the plan view cannot use (FORMAT YAML/XML) runs as written.

use super::result::Column;
use super::run::{Conn, Limits, Ran, run_statement};
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
    let mut ran = run_statement(c, &json_sql, limits, in_failed_tx).await;
    let result = &mut ran.result;
    result.sql = sql.to_string();
    if let Some(error) = result.error.as_mut() {
        // The caret points into the learner's text, not the rewritten one.
        error.position = error.position.and_then(|p| request.learner_position(p));
        return ran;
    }
    let Some(json) = result
        .rows
        .first()
        .and_then(|row| row.first())
        .cloned()
        .flatten()
    else {
        return ran;
    };
    match explain::explain_output(&request, &json) {
        Ok(out) => {
            result.columns = vec![Column {
                name: "QUERY PLAN".into(),
                type_name: "text".into(),
            }];
            result.total_rows = out.rows.len() as u64;
            result.rows = out.rows.into_iter().map(Some).map(|v| vec![v]).collect();
            result.truncated = false;
            result.command_tag = Some("EXPLAIN".into());
            result.plan_html = Some(out.plan_html);
            result.plan_json = Some(json);
        }
        Err(err) => {
            // The JSON came from the server: keep it visible as the output
            // and say why there is no plan view, rather than hide the result.
            result.notices.push(super::notices::Notice {
                severity: "NOTICE".into(),
                message: format!("pglab could not draw this plan: {err}"),
            });
        }
    }
    ran
}
