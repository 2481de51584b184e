//! The one place where an EXPLAIN statement's result becomes a plan view.
//!
//! The `explain` area builds `crate::explain` (plan model, findings, askama
//! HTML). When it lands, [`explain_plan_html`] calls it; until then it
//! returns `None` and the console shows the psql text output ("QUERY PLAN").

use sqlx::postgres::PgConnection;

use super::result::StatementResult;

/// Whether `sql` is an EXPLAIN statement (whatever options it has).
pub fn is_explain(sql: &str) -> bool {
    super::tag::words(sql).first().map(String::as_str) == Some("EXPLAIN")
}

/// Plan HTML for a successful EXPLAIN statement, or `None`.
///
/// `conn` is the session's connection (inside the learner's transaction, if
/// any), should the plan view need the JSON form of the same plan; `result`
/// holds the text output as psql shows it (one "QUERY PLAN" column).
pub async fn explain_plan_html(
    conn: &mut PgConnection,
    sql: &str,
    result: &StatementResult,
) -> Option<String> {
    let _ = (conn, sql, result);
    None
}
