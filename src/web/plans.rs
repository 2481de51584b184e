//! Plan pages and API: the learner's kept plans, one plan's view, and the
//! comparison of two. Thin over `crate::explain`; every lookup is by the
//! signed-in learner, so another learner's plan is simply not found (404).

use askama::Template;
use askama_web::WebTemplate;
use axum::extract::{Path, Query, State};
use axum::routing::get;
use axum::{Json, Router};
use serde::Deserialize;

use crate::app::AppState;
use crate::explain::compare::{Comparison, compare};
use crate::explain::store::{self, PlanSummary, StoredPlan};
use crate::explain::{AnalyzedPlan, numbers::ms};
use crate::web::{AppError, Learner};

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/plans", get(list_page))
        .route("/api/plans", get(list_json))
        .route("/api/plans/compare", get(compare_page))
        .route("/api/plans/{id}", get(plan_page))
}

/// `GET /api/plans`: the learner's plans, newest first.
async fn list_json(
    State(state): State<AppState>,
    learner: Learner,
) -> Result<Json<Vec<PlanSummary>>, AppError> {
    Ok(Json(
        store::list_plans(state.store.pool(), learner.id).await?,
    ))
}

/// A plan row as the list page shows it.
struct PlanRow {
    id: i64,
    when: String,
    sql: String,
    total: String,
}

#[derive(Template, WebTemplate)]
#[template(path = "plan/list.html")]
struct ListPage {
    plans: Vec<PlanRow>,
}

/// `GET /plans`: the learner's plans with two pickers to compare.
async fn list_page(State(state): State<AppState>, learner: Learner) -> Result<ListPage, AppError> {
    let plans = store::list_plans(state.store.pool(), learner.id)
        .await?
        .into_iter()
        .map(|p| PlanRow {
            id: p.id,
            when: utc_time(p.created_at),
            sql: one_line(&p.sql, 120),
            total: p
                .total_ms
                .map(ms)
                .unwrap_or_else(|| "estimates only".into()),
        })
        .collect();
    Ok(ListPage { plans })
}

#[derive(Template, WebTemplate)]
#[template(path = "plan/page.html")]
struct PlanPage {
    id: i64,
    when: String,
    sql: String,
    plan_html: String,
}

async fn load(state: &AppState, learner: &Learner, raw_id: &str) -> Result<StoredPlan, AppError> {
    let not_found = || AppError::NotFound(format!("no plan {raw_id}"));
    let id: i64 = raw_id.trim().parse().map_err(|_| not_found())?;
    store::get_plan(state.store.pool(), learner.id, id)
        .await?
        .ok_or_else(not_found)
}

fn view(stored: &StoredPlan, prefix: &str) -> (Option<AnalyzedPlan>, String) {
    match AnalyzedPlan::parse(&stored.plan_json) {
        Ok(p) => {
            let html = p.html_with_prefix(prefix);
            (Some(p), html)
        }
        Err(err) => (
            None,
            format!(
                "<p class=\"plan-error\">{}</p>",
                escape(&format!("This plan cannot be shown: {err}"))
            ),
        ),
    }
}

/// `GET /api/plans/{id}`: one plan's HTML view.
async fn plan_page(
    State(state): State<AppState>,
    learner: Learner,
    Path(id): Path<String>,
) -> Result<PlanPage, AppError> {
    let stored = load(&state, &learner, &id).await?;
    let (_, plan_html) = view(&stored, "plan-");
    Ok(PlanPage {
        id: stored.id,
        when: utc_time(stored.created_at),
        sql: stored.sql,
        plan_html,
    })
}

#[derive(Deserialize)]
struct CompareQuery {
    a: Option<String>,
    b: Option<String>,
}

#[derive(Template, WebTemplate)]
#[template(path = "plan/compare.html")]
struct ComparePage {
    a: PlanPage,
    b: PlanPage,
    cmp: Option<Comparison>,
}

/// `GET /api/plans/compare?a=..&b=..`: two of the learner's plans side by side.
async fn compare_page(
    State(state): State<AppState>,
    learner: Learner,
    Query(q): Query<CompareQuery>,
) -> Result<ComparePage, AppError> {
    let (Some(a), Some(b)) = (q.a, q.b) else {
        return Err(AppError::BadRequest("pick two plans: ?a=ID&b=ID".into()));
    };
    let sa = load(&state, &learner, &a).await?;
    let sb = load(&state, &learner, &b).await?;
    let (pa, ha) = view(&sa, "a-");
    let (pb, hb) = view(&sb, "b-");
    let cmp = pa.as_ref().zip(pb.as_ref()).map(|(x, y)| compare(x, y));
    let page = |s: StoredPlan, plan_html: String| PlanPage {
        id: s.id,
        when: utc_time(s.created_at),
        sql: s.sql,
        plan_html,
    };
    Ok(ComparePage {
        a: page(sa, ha),
        b: page(sb, hb),
        cmp,
    })
}

fn one_line(s: &str, max: usize) -> String {
    let flat: String = s.split_whitespace().collect::<Vec<_>>().join(" ");
    if flat.chars().count() > max {
        let cut: String = flat.chars().take(max).collect();
        format!("{cut}…")
    } else {
        flat
    }
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Unix seconds as `2026-11-25 14:20 UTC` (civil-from-days, no date crate).
fn utc_time(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        (rem % 3600) / 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_times_and_lines() {
        assert_eq!(utc_time(0), "1970-01-01 00:00 UTC");
        assert_eq!(utc_time(1_795_616_400), "2026-11-25 14:20 UTC");
        assert_eq!(one_line("select\n  1", 50), "select 1");
        assert_eq!(one_line("abcdef", 3), "abc…");
    }
}
