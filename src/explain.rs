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
//!    Read that value whole, never cut at the console's per-value display
//!    cap, up to [`MAX_PLAN_READ_BYTES`].
//! 4. `let out = explain::explain_output(&req, &json)?`: unless
//!    `run_as_written`, the result is one column `QUERY PLAN` (type text)
//!    with `out.rows` (command tag `EXPLAIN`; the display caps apply to these
//!    rows); `plan_html = out.plan_html`, `None` past
//!    [`MAX_PLAN_VIEW_BYTES`] with the reason in `out.no_view`.
//! 5. When there is a plan view, `explain::store::save_plan(state.store.pool(), learner.id, sql, &json).await`;
//!    pages showing `plan_html` include `/static/css/plan.css` and `/static/js/plan.js`.
//!
//! EXPLAIN ANALYZE executes the statement: never run it twice (step 3 is the
//! only run for TEXT and JSON; `json_sql` is `None` for YAML/XML + ANALYZE).

pub mod analysis;
pub mod compare;
mod conditions;
pub mod findings;
pub mod html;
mod keywords;
pub mod model;
pub mod numbers;
pub mod statement;
pub mod store;
pub mod text;

use std::sync::atomic::{AtomicU64, Ordering};

use askama::Template;

pub use analysis::{Analysis, NodeStats};
pub use findings::{Finding, FindingKind};
pub use model::{MAX_PLAN_DEPTH, Node, Plan, PlanError};
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

/// Largest EXPLAIN JSON that gets a plan view and is kept for compare
/// (8 MiB: about 5,000 nodes of `ANALYZE, BUFFERS, VERBOSE`). Larger plans
/// still get psql's text, with a notice saying why there is no plan view.
pub const MAX_PLAN_VIEW_BYTES: usize = 8 << 20;

/// Largest EXPLAIN JSON the console reads at all: up to here psql's text
/// rows are still rendered from it; past it the statement's output is
/// dropped with a notice (EXPLAIN ANALYZE is never run a second time).
pub const MAX_PLAN_READ_BYTES: usize = 64 << 20;

/// What the console shows for one EXPLAIN statement.
#[derive(Clone, Debug)]
pub struct ExplainOutput {
    /// The rows of psql's one-column `QUERY PLAN` result: one per line for
    /// FORMAT TEXT, the whole document in one row for FORMAT JSON, empty when
    /// the learner's statement ran as written (YAML/XML). Uncut: the console
    /// applies its display caps to them.
    pub rows: Vec<String>,
    /// The plan view fragment (see [`render_plan_html`]); `None` for a plan
    /// over [`MAX_PLAN_VIEW_BYTES`].
    pub plan_html: Option<String>,
    /// Why there is no plan view, for the learner (a plan over the limit).
    pub no_view: Option<String>,
}

/// Everything the console needs from the JSON run of `req.json_sql`: the
/// psql-like rows and the plan view. `json` is the text of the one value
/// that statement returns, whole (keep it as text: FORMAT JSON shows it
/// verbatim).
pub fn explain_output(req: &ExplainRequest, json: &str) -> Result<ExplainOutput, PlanError> {
    let json_rows = || {
        if req.run_as_written {
            Vec::new()
        } else {
            vec![json.to_string()]
        }
    };
    if json.len() > MAX_PLAN_VIEW_BYTES {
        let too_big = PlanError::TooBig {
            bytes: json.len(),
            limit: MAX_PLAN_VIEW_BYTES,
        };
        let rows = if req.options.format == ExplainFormat::Text && !req.run_as_written {
            render_text(&Plan::parse(json)?, &req.options)
        } else {
            json_rows()
        };
        return Ok(ExplainOutput {
            rows,
            plan_html: None,
            no_view: Some(format!(
                "no plan view: {too_big}; psql's output is shown without it and the plan is not kept for compare"
            )),
        });
    }
    let plan = AnalyzedPlan::parse(json)?;
    let rows = if req.options.format == ExplainFormat::Text && !req.run_as_written {
        render_text(&plan.plan, &req.options)
    } else {
        json_rows()
    };
    Ok(ExplainOutput {
        rows,
        plan_html: Some(plan.html()),
        no_view: None,
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
