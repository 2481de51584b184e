//! Odd and malformed plans never panic: every truncation of a real plan,
//! absurd numbers, missing fields, and shapes PostgreSQL never writes.

#![allow(clippy::unwrap_used)]

use pglab::explain::compare::compare;
use pglab::explain::{AnalyzedPlan, ExplainOptions, Plan, plan_html, render_text};

const REAL: &str = include_str!("fixtures/plans/lab_after_index_analyze.json");

fn exercise(json: &str) {
    let Ok(plan) = Plan::parse(json) else { return };
    let analyzed = AnalyzedPlan::new(plan.clone());
    let _ = analyzed.html();
    for options in [
        ExplainOptions::default(),
        ExplainOptions {
            analyze: true,
            verbose: true,
            buffers: Some(true),
            ..Default::default()
        },
    ] {
        let _ = render_text(&plan, &options);
    }
    let _ = compare(&analyzed, &analyzed);
}

#[test]
fn every_truncation_of_a_real_plan_is_handled() {
    let mut errors = 0;
    for (i, _) in REAL.char_indices() {
        let cut = &REAL[..i];
        if plan_html(cut).is_err() {
            errors += 1;
        }
        exercise(cut);
    }
    assert!(
        errors > REAL.len() / 2,
        "truncated JSON is reported as an error"
    );
    assert!(plan_html(REAL).is_ok());
}

#[test]
fn absurd_values_render() {
    let odd = [
        r#"[{"Plan": {}}]"#,
        r#"{"Plan": {"Node Type": ""}}"#,
        r#"[{"Plan": {"Node Type": "Sort", "Sort Method": "external merge", "Sort Space Type": "Disk", "Sort Space Used": 1e308, "Actual Loops": 1, "Actual Rows": 1}}]"#,
        r#"[{"Plan": {"Node Type": "Hash", "Hash Batches": 1e300, "Hash Buckets": -5, "Peak Memory Usage": 1e300, "Actual Loops": 1}}]"#,
        r#"[{"Plan": {"Node Type": "Seq Scan", "Relation Name": "t", "Filter": "((((", "Rows Removed by Filter": 1e12, "Actual Rows": 0, "Actual Loops": 1, "Actual Total Time": -3}, "Execution Time": 0}]"#,
        r#"[{"Plan": {"Node Type": "Nested Loop", "Actual Loops": 0, "Plans": [{"Node Type": "Seq Scan", "Parent Relationship": "Outer", "Actual Rows": 1e9, "Actual Loops": 1e9, "Actual Total Time": 1e9}]}}]"#,
        r#"[{"Plan": {"Node Type": "CTE Scan", "CTE Name": "x", "Actual Loops": 1, "Actual Total Time": 1, "Plans": [{"Node Type": "Result", "Subplan Name": "CTE x", "Actual Loops": 1, "Actual Total Time": 5}]}}]"#,
        r#"[{"Plan": {"Node Type": "Gather", "Workers Launched": -1, "Actual Loops": 1, "Actual Total Time": 1, "Plans": [{"Node Type": "Seq Scan", "Actual Loops": 7, "Actual Total Time": 1, "Workers": [{"Worker Number": 0}, {}]}]}}]"#,
        r#"[{"Plan": {"Node Type": "Index Scan", "Relation Name": "t", "Index Name": "i", "Index Cond": "(a = 1)", "Output": ["", "..", "a.b.c"], "Actual Rows": 5000, "Actual Loops": 1}}]"#,
        r#"[{"Plan": {"Node Type": "Limit", "Actual Loops": 1, "Plans": [{"Node Type": "Sort", "Sort Method": "top-N heapsort", "Sort Key": [], "Actual Loops": 1, "Plans": [{"Node Type": "Seq Scan", "Relation Name": "t", "Actual Rows": 5000, "Actual Loops": 1}]}]}}]"#,
        r#"[{"Plan": {"Node Type": "Seq Scan", "Relation Name": "<script>alert(1)</script>", "Filter": "(\"<b>\" = '</details>'::text)", "Rows Removed by Filter": 100000, "Actual Rows": 1, "Actual Loops": 1}, "Settings": {"work_mem": "64kB", "x": 3}, "JIT": {"Functions": 3}, "Triggers": [{}]}]"#,
    ];
    for json in odd {
        let html = plan_html(json).unwrap_or_else(|e| panic!("{json}: {e}"));
        assert!(!html.contains("<script>"), "escaped: {html}");
        assert!(!html.contains("'</details>'"), "escaped: {html}");
        exercise(json);
    }
}

#[test]
fn deeply_nested_plans_are_refused_or_rendered_without_overflow() {
    // 62 plan levels under the root are 127 levels of JSON, the most
    // serde_json accepts; deeper is refused, never a stack overflow.
    for depth in [10usize, 30, 62, 63, 200, 5_000] {
        let mut json = String::new();
        for _ in 0..depth {
            json.push_str(r#"{"Node Type": "Materialize", "Actual Loops": 1, "Actual Total Time": 1, "Plans": ["#);
        }
        json.push_str(r#"{"Node Type": "Result"}"#);
        for _ in 0..depth {
            json.push_str("]}");
        }
        let json = format!(r#"[{{"Plan": {json}}}]"#);
        match plan_html(&json) {
            Ok(html) => {
                assert_eq!(html.matches("<details class=\"pn").count(), depth + 1);
                assert_eq!(
                    html.contains("pn-flat"),
                    depth > 12,
                    "deep levels stop indenting"
                );
            }
            Err(_) => assert!(depth > 62, "only very deep JSON is refused"),
        }
    }
}

#[test]
fn explain_output_gives_psql_rows_per_format() {
    use pglab::explain::{explain_output, parse_explain};
    let json = include_str!("fixtures/plans/lab_seq_scan_analyze.json");
    let text = parse_explain("explain analyze select 1").unwrap();
    let out = explain_output(&text, json).unwrap();
    assert_eq!(out.rows.len(), 9, "{:?}", out.rows);
    assert!(out.rows[0].starts_with("Limit  (cost=2801.41..2801.46"));
    assert!(out.plan_html.unwrap().contains("data-plan-view"));
    assert!(out.no_view.is_none());
    let as_json = parse_explain("explain (analyze, format json) select 1").unwrap();
    assert_eq!(
        explain_output(&as_json, json).unwrap().rows,
        [json.to_string()]
    );
    let yaml = parse_explain("explain (format yaml) select 1").unwrap();
    assert!(explain_output(&yaml, json).unwrap().rows.is_empty());
    assert!(explain_output(&text, "{").is_err());
}

/// Over the plan-view limit: psql's rows still come (TEXT from the parse,
/// JSON verbatim), without a view and with the reason; malformed JSON over
/// the limit is an error, never a panic.
#[test]
fn a_plan_over_the_view_limit_gives_rows_and_a_reason() {
    use pglab::explain::{MAX_PLAN_VIEW_BYTES, explain_output, parse_explain};
    let scan = r#"{"Node Type": "Seq Scan", "Parent Relationship": "Member", "Relation Name": "events_1", "Alias": "events_1", "Startup Cost": 0.00, "Total Cost": 2.25, "Plan Rows": 100, "Plan Width": 4, "Filter": "(payload = 'x'::text)"}"#;
    let n = MAX_PLAN_VIEW_BYTES / scan.len() + 10;
    let json = format!(
        r#"[{{"Plan": {{"Node Type": "Append", "Startup Cost": 0.00, "Total Cost": 9.00, "Plan Rows": 100, "Plan Width": 4, "Plans": [{}]}}}}]"#,
        vec![scan; n].join(",")
    );
    assert!(json.len() > MAX_PLAN_VIEW_BYTES);
    let text = parse_explain("explain select * from events").unwrap();
    let out = explain_output(&text, &json).unwrap();
    assert!(out.plan_html.is_none());
    assert_eq!(out.rows.len(), 1 + 2 * n, "every node and its filter");
    assert_eq!(
        out.rows[1],
        "  ->  Seq Scan on events_1  (cost=0.00..2.25 rows=100 width=4)"
    );
    let why = out.no_view.unwrap();
    assert!(why.contains("more than the 8.0 MiB pglab draws"), "{why}");
    let as_json = parse_explain("explain (format json) select * from events").unwrap();
    let out = explain_output(&as_json, &json).unwrap();
    assert_eq!(out.rows, std::slice::from_ref(&json));
    assert!(out.plan_html.is_none() && out.no_view.is_some());
    assert!(explain_output(&text, &json[..json.len() - 3]).is_err());
}
