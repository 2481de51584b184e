//! Query plans: recognising EXPLAIN, reading PostgreSQL's JSON plans,
//! computing per-node figures and findings that teach, rendering psql's text
//! output and an HTML plan view, keeping each learner's last plans and
//! comparing two of them.
//!
//! Pipeline: 1. [`parse_explain`] turns the learner's EXPLAIN into the
//! statement to run (`FORMAT JSON`); 2. [`Plan::parse`] reads the JSON;
//! 3. [`analysis::analyze`] computes times, shares and misestimates;
//! 4. [`findings::findings`] applies the teaching rules; 5. [`render_text`]
//! and [`PlanView`](html::PlanView) render; 6. [`store::save_plan`] keeps it.
//!
//! # API for the console
//!
//! ```text
//! pub fn parse_explain(sql: &str) -> Option<ExplainRequest>
//! pub fn Plan::parse(json: &str) -> Result<Plan, PlanError>
//! pub fn render_text(plan: &Plan, options: &ExplainOptions) -> Vec<String>
//! pub fn explain_output(req: &ExplainRequest, json: &str) -> Result<ExplainOutput, PlanError>
//! pub fn plan_html(json: &str) -> Result<String, PlanError>
//! pub fn render_plan_html(plan: &Plan) -> String
//! pub fn ExplainRequest::learner_position(&self, json_sql_position: usize) -> Option<usize>
//! pub async fn store::save_plan(pool: &SqlitePool, learner: LearnerId, sql: &str, json: &str) -> anyhow::Result<i64>
//! ```
//!
//! Integration recipe (one EXPLAIN statement `sql` in the console):
//! 1. `let Some(req) = explain::parse_explain(sql)` else run it as usual.
//! 2. If `req.run_as_written` (YAML/XML), run `sql` as usual for the output.
//! 3. If `let Some(j) = &req.json_sql`: run `j` instead of `sql` (a server
//!    error is the learner's, shown as for any statement, its caret moved
//!    with `req.learner_position(pos)`); the one value it returns, as text,
//!    is `json`.
//! 4. `let out = explain::explain_output(&req, &json)?`: unless
//!    `run_as_written`, the result is one column `QUERY PLAN` (type text)
//!    with `out.rows` (command tag `EXPLAIN`); `plan_html = out.plan_html`.
//! 5. `explain::store::save_plan(state.store.pool(), learner.id, sql, &json).await`;
//!    pages showing `plan_html` include `/static/css/plan.css` and `/static/js/plan.js`.
//!
//! EXPLAIN ANALYZE executes the statement: never run it twice (step 3 is the
//! only run for TEXT and JSON; `json_sql` is `None` for YAML/XML + ANALYZE).

pub mod analysis;
pub mod compare;
mod conditions;
pub mod findings;
pub mod html;
pub mod model;
pub mod statement;
pub mod store;
pub mod text;

use std::sync::atomic::{AtomicU64, Ordering};

use askama::Template;

pub use analysis::{Analysis, NodeStats};
pub use findings::{Finding, FindingKind};
pub use model::{Node, Plan, PlanError};
pub use statement::{ExplainFormat, ExplainOptions, ExplainRequest, parse_explain};
pub use text::render_text;

/// A plan with its figures and findings, ready to render or compare.
pub struct AnalyzedPlan {
    pub plan: Plan,
    pub analysis: Analysis,
    pub findings: Vec<Finding>,
}

impl AnalyzedPlan {
    /// Analyses a parsed plan.
    pub fn new(plan: Plan) -> Self {
        let analysis = analysis::analyze(&plan);
        let findings = findings::findings(&plan, &analysis);
        Self {
            plan,
            analysis,
            findings,
        }
    }

    /// Parses and analyses `EXPLAIN (FORMAT JSON)` output.
    pub fn parse(json: &str) -> Result<Self, PlanError> {
        Plan::parse(json).map(Self::new)
    }

    /// The HTML plan view (a fragment) with a fresh id prefix (`plan<N>-`),
    /// so that several views can share a page.
    pub fn html(&self) -> String {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        self.html_with_prefix(&format!("plan{n}-"))
    }

    /// The HTML plan view whose element ids start with `prefix`: nodes are
    /// `<prefix>node-<id>`, findings `<prefix>finding-<index>`.
    pub fn html_with_prefix(&self, prefix: &str) -> String {
        let view = html::PlanView::new(&self.plan, &self.analysis, &self.findings, prefix);
        view.render().unwrap_or_else(|err| {
            // Rendering plain data cannot fail short of a template bug.
            tracing::error!(error = %err, "rendering a plan view");
            String::from("<div class=\"plan-view\">The plan view could not be rendered.</div>")
        })
    }
}

/// What the console shows for one EXPLAIN statement.
#[derive(Clone, Debug)]
pub struct ExplainOutput {
    /// The rows of psql's one-column `QUERY PLAN` result: one per line for
    /// FORMAT TEXT, the whole document in one row for FORMAT JSON, empty when
    /// the learner's statement ran as written (YAML/XML).
    pub rows: Vec<String>,
    /// The plan view fragment (see [`render_plan_html`]).
    pub plan_html: String,
}

/// Everything the console needs from the JSON run of `req.json_sql`: the
/// psql-like rows and the plan view. `json` is the text of the one value
/// that statement returns (keep it as text: FORMAT JSON shows it verbatim).
pub fn explain_output(req: &ExplainRequest, json: &str) -> Result<ExplainOutput, PlanError> {
    let plan = AnalyzedPlan::parse(json)?;
    let rows = if req.run_as_written {
        Vec::new()
    } else if req.options.format == ExplainFormat::Json {
        vec![json.to_string()]
    } else {
        render_text(&plan.plan, &req.options)
    };
    Ok(ExplainOutput {
        rows,
        plan_html: plan.html(),
    })
}

/// The HTML plan view of a parsed plan (a fragment for the console's result).
pub fn render_plan_html(plan: &Plan) -> String {
    AnalyzedPlan::new(plan.clone()).html()
}

/// The HTML plan view of `EXPLAIN (FORMAT JSON)` output.
pub fn plan_html(json: &str) -> Result<String, PlanError> {
    Ok(AnalyzedPlan::parse(json)?.html())
}
