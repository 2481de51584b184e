//! The plan view: askama templates (`templates/plan/`) rendered on the
//! server from the plan, its analysis and its findings.
//!
//! The tree is a flat list in pre-order; each node opens a `<details>` and,
//! when it has children, a `<div class="pn-children">` that the last node of
//! its subtree closes (`closing`). Flat data keeps askama free of recursion
//! and rendering linear in the number of nodes.

use askama::Template;

use super::analysis::{Analysis, NodeStats};
use super::findings::Finding;
use super::model::{Node, Plan};
use super::numbers::{factor, group_digits, ms};
use super::text::{buffers_line, node_title};

/// Indentation stops growing below this depth (deep plans stay readable).
const MAX_INDENT_DEPTH: usize = 12;

/// One label/value line of a node's details.
pub struct Detail {
    pub label: &'static str,
    pub value: String,
    /// Conditions are shown in monospace and wrap.
    pub code: bool,
}

/// What the template needs of one node.
pub struct NodeView {
    pub id: usize,
    pub depth: usize,
    pub flat: bool,
    pub title: String,
    pub subplan: Option<String>,
    pub relationship: Option<String>,
    pub has_children: bool,
    /// Closing tags of the subtrees this node ends.
    pub closing: String,
    pub exclusive: Option<String>,
    pub inclusive: Option<String>,
    /// Bar width, percent of the total time (0..=100, one decimal).
    pub share_pct: Option<String>,
    pub hot: bool,
    pub est_rows: String,
    pub actual_rows: Option<String>,
    pub loops: Option<String>,
    pub misestimate: Option<String>,
    /// "" | "warn" | "bad"
    pub misestimate_class: &'static str,
    pub never_executed: bool,
    pub cost: Option<String>,
    pub details: Vec<Detail>,
    /// Indexes into the view's findings.
    pub findings: Vec<usize>,
}

/// A finding as listed at the top.
pub struct FindingView {
    pub index: usize,
    pub node: usize,
    pub node_title: String,
    pub kind: String,
    pub title: String,
    pub explanation: String,
    pub action: String,
}

/// The whole plan view (a fragment: embeddable in the console and in pages).
#[derive(Template)]
#[template(path = "plan/view.html")]
pub struct PlanView {
    /// Prefix of every element id (`<prefix>node-3`), unique per view so
    /// that several plans can share a page.
    pub prefix: String,
    pub nodes: Vec<NodeView>,
    pub findings: Vec<FindingView>,
    pub analyzed: bool,
    pub planning_time: Option<String>,
    pub execution_time: Option<String>,
    pub total_time: Option<String>,
    pub settings: Option<String>,
    pub triggers: Vec<String>,
}

impl PlanView {
    /// Builds the view of a plan.
    pub fn new(plan: &Plan, analysis: &Analysis, findings: &[Finding], prefix: &str) -> Self {
        let mut by_node: Vec<Vec<usize>> = vec![Vec::new(); plan.nodes.len()];
        for (i, f) in findings.iter().enumerate() {
            if let Some(v) = by_node.get_mut(f.node) {
                v.push(i);
            }
        }
        let nodes = plan
            .nodes
            .iter()
            .map(|n| {
                node_view(
                    plan,
                    n,
                    &analysis.nodes[n.id],
                    std::mem::take(&mut by_node[n.id]),
                )
            })
            .collect();
        let findings = findings
            .iter()
            .enumerate()
            .map(|(index, f)| FindingView {
                index,
                node: f.node,
                node_title: plan
                    .nodes
                    .get(f.node)
                    .map(|n| node_title(n, false))
                    .unwrap_or_default(),
                kind: serde_json::to_value(f.kind)
                    .ok()
                    .and_then(|v| v.as_str().map(str::to_string))
                    .unwrap_or_default(),
                title: f.title.clone(),
                explanation: f.explanation.clone(),
                action: f.action.clone(),
            })
            .collect();
        let settings = (!plan.settings.is_empty()).then(|| {
            plan.settings
                .iter()
                .map(|(k, v)| format!("{k} = '{v}'"))
                .collect::<Vec<_>>()
                .join(", ")
        });
        Self {
            prefix: prefix.to_string(),
            nodes,
            findings,
            analyzed: plan.analyzed(),
            planning_time: plan.planning_time.map(ms),
            execution_time: plan.execution_time.map(ms),
            total_time: analysis.total_ms.map(ms),
            settings,
            triggers: plan
                .triggers
                .iter()
                .map(|t| {
                    format!(
                        "{}: {} ({} calls)",
                        t.name
                            .as_deref()
                            .or(t.constraint.as_deref())
                            .unwrap_or("trigger"),
                        ms(t.time.unwrap_or(0.0)),
                        group_digits(t.calls.unwrap_or(0.0))
                    )
                })
                .collect(),
        }
    }
}

fn node_view(plan: &Plan, n: &Node, s: &NodeStats, findings: Vec<usize>) -> NodeView {
    let f = &n.fields;
    let mut d: Vec<Detail> = Vec::new();
    let mut code = |label: &'static str, v: &Option<String>| {
        if let Some(v) = v {
            d.push(Detail {
                label,
                value: v.clone(),
                code: true,
            });
        }
    };
    code("Join", &f.join_type.as_ref().map(|j| format!("{j} join")));
    code("Hash Cond", &f.hash_cond);
    code("Merge Cond", &f.merge_cond);
    code("Index Cond", &f.index_cond);
    code("Recheck Cond", &f.recheck_cond);
    code("Join Filter", &f.join_filter);
    code("Filter", &f.filter);
    code("One-Time Filter", &f.one_time_filter);
    code("Order By", &f.order_by);
    code("Sort Key", &f.sort_key.as_ref().map(|k| k.join(", ")));
    code(
        "Presorted Key",
        &f.presorted_key.as_ref().map(|k| k.join(", ")),
    );
    code("Group Key", &f.group_key.as_ref().map(|k| k.join(", ")));
    code("Grouping Sets", &grouping_sets(&f.grouping_sets));
    code("TID Cond", &f.tid_cond);
    code("Run Condition", &f.run_condition);
    code("Sampling", &super::text::sampling(f));
    code("Conflict", &f.conflict_resolution);
    code("Conflict Filter", &f.conflict_filter);
    code("Cache Key", &f.cache_key);
    code("Output", &f.output.as_ref().map(|k| k.join(", ")));
    let mut plain = |label: &'static str, v: Option<String>| {
        if let Some(v) = v {
            d.push(Detail {
                label,
                value: v,
                code: false,
            });
        }
    };
    let loops = f.actual_loops.unwrap_or(1.0);
    let removed = |v: Option<f64>| v.filter(|v| *v > 0.0).map(|v| group_digits(v * loops));
    plain("Rows Removed by Filter", removed(f.rows_removed_by_filter));
    plain(
        "Rows Removed by Join Filter",
        removed(f.rows_removed_by_join_filter),
    );
    plain(
        "Rows Removed by Recheck",
        removed(f.rows_removed_by_index_recheck),
    );
    plain(
        "Heap Fetches",
        f.heap_fetches.map(|h| group_digits(h * loops)),
    );
    if f.operation.as_deref() == Some("Merge") {
        let outcomes: Vec<String> = [
            ("inserted", f.tuples_inserted),
            ("updated", f.tuples_updated),
            ("deleted", f.tuples_deleted),
            ("skipped", f.tuples_skipped),
        ]
        .into_iter()
        .filter_map(|(what, v)| {
            v.filter(|v| *v > 0.0)
                .map(|v| format!("{} {what}", group_digits(v)))
        })
        .collect();
        plain("Rows", (!outcomes.is_empty()).then(|| outcomes.join(", ")));
    }
    if let Some(m) = &f.sort_method {
        let space = match (f.sort_space_used, f.sort_space_type.as_deref()) {
            (Some(u), Some("Disk")) => format!(", {} kB on disk (spilled)", group_digits(u)),
            (Some(u), Some(t)) => format!(", {} kB {}", group_digits(u), t.to_lowercase()),
            _ => String::new(),
        };
        plain("Sort", Some(format!("{m}{space}")));
    }
    if let (Some(b), Some(nb)) = (f.hash_buckets, f.hash_batches) {
        let spill = if nb > 1.0 { " (spilled to disk)" } else { "" };
        plain(
            "Hash",
            Some(format!(
                "{} buckets, {} batch{}{spill}, {} kB",
                group_digits(b),
                group_digits(nb),
                if nb == 1.0 { "" } else { "es" },
                group_digits(f.peak_memory_usage.unwrap_or(0.0))
            )),
        );
    }
    if let Some(b) = f.hashagg_batches {
        plain(
            "Hash Aggregate",
            Some(format!(
                "{} batch{}, {} kB memory{}",
                group_digits(b),
                if b == 1.0 { "" } else { "es" },
                group_digits(f.peak_memory_usage.unwrap_or(0.0)),
                f.disk_usage
                    .filter(|u| *u > 0.0)
                    .map(|u| format!(", {} kB disk", group_digits(u)))
                    .unwrap_or_default()
            )),
        );
    }
    if f.workers_planned.is_some() || f.workers_launched.is_some() {
        let planned = f.workers_planned.map(group_digits).unwrap_or("?".into());
        let launched = f
            .workers_launched
            .map(|l| format!(", {} launched", group_digits(l)))
            .unwrap_or_default();
        plain("Workers", Some(format!("{planned} planned{launched}")));
    }
    if let (Some(h), Some(m)) = (f.cache_hits, f.cache_misses) {
        plain(
            "Cache",
            Some(format!(
                "{} hits, {} misses",
                group_digits(h),
                group_digits(m)
            )),
        );
    }
    if let (Some(e), l) = (f.exact_heap_blocks, f.lossy_heap_blocks) {
        let lossy = l
            .filter(|l| *l > 0.0)
            .map(|l| format!(", {} lossy", group_digits(l)))
            .unwrap_or_default();
        plain(
            "Heap Blocks",
            Some(format!("{} exact{lossy}", group_digits(e))),
        );
    }
    plain(
        "Buffers",
        buffers_line(&f.buffers).map(|l| l.trim_start_matches("Buffers: ").to_string()),
    );
    // Fewer rows than estimated under a Limit (and the like) is the Limit
    // at work: no factor, so nothing looks wrong that is not.
    let (mis, class) = match s.misestimate {
        Some(m) if m >= 1.5 && (s.underestimated || !s.may_stop_early) => (
            Some(format!(
                "{} {}",
                if s.underestimated { "↑" } else { "↓" },
                factor(m)
            )),
            if m >= 10.0 {
                "bad"
            } else if m >= 3.0 {
                "warn"
            } else {
                ""
            },
        ),
        _ => (None, ""),
    };
    NodeView {
        id: n.id,
        depth: n.depth,
        flat: n.depth >= MAX_INDENT_DEPTH,
        title: node_title(n, false),
        subplan: f.subplan_name.clone(),
        relationship: f.parent_relationship.clone(),
        has_children: !n.children.is_empty(),
        closing: "</div></details>".repeat(closing_count(plan, n)),
        exclusive: s.exclusive_ms.map(ms),
        inclusive: s.inclusive_ms.map(ms),
        share_pct: s.share.map(|x| format!("{:.1}", x * 100.0)),
        hot: s.share.is_some_and(|x| x >= 0.3),
        est_rows: group_digits(f.plan_rows.unwrap_or(0.0) * f.actual_loops.unwrap_or(1.0).max(1.0)),
        actual_rows: s.actual_rows_total.map(group_digits),
        loops: f.actual_loops.map(group_digits),
        misestimate: mis,
        misestimate_class: class,
        never_executed: n.never_executed(),
        cost: f
            .total_cost
            .map(|t| format!("{:.2}..{t:.2}", f.startup_cost.unwrap_or(0.0))),
        details: d,
        findings,
    }
}

/// How many open subtrees end with this node: for a leaf, itself (closed in
/// the template) does not count; every ancestor whose last descendant it is
/// does.
/// A grouping-sets aggregate's sets as one line: `(status), (priority), ()`,
/// with each sorted pass's sets after a `;`.
fn grouping_sets(sets: &[super::model::GroupingSet]) -> Option<String> {
    let passes: Vec<String> = sets
        .iter()
        .filter_map(|set| set.hash_keys.as_ref().or(set.group_keys.as_ref()))
        .map(|keys| {
            keys.iter()
                .map(|k| format!("({})", k.join(", ")))
                .collect::<Vec<_>>()
                .join(", ")
        })
        .collect();
    (!passes.is_empty()).then(|| passes.join("; "))
}

fn closing_count(plan: &Plan, n: &Node) -> usize {
    if !n.children.is_empty() {
        return 0;
    }
    let mut count = 0;
    let mut cur = n;
    while let Some(p) = cur.parent {
        let parent = &plan.nodes[p];
        if parent.children.last() != Some(&cur.id) {
            break;
        }
        count += 1;
        cur = parent;
    }
    count
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use crate::explain::AnalyzedPlan;

    #[test]
    fn limit_cut_is_not_shown_as_a_misestimate() {
        let p = AnalyzedPlan::parse(
            r#"[{"Plan": {"Node Type": "Limit", "Plan Rows": 20, "Actual Rows": 20, "Actual Loops": 1, "Actual Total Time": 1, "Plans": [
            {"Node Type": "Sort", "Plan Rows": 6601, "Actual Rows": 20, "Actual Loops": 1, "Actual Total Time": 1, "Plans": [
            {"Node Type": "Seq Scan", "Relation Name": "t", "Plan Rows": 10, "Actual Rows": 6601, "Actual Loops": 1, "Actual Total Time": 1}]}]}}]"#,
        )
        .unwrap();
        let html = p.html_with_prefix("x-");
        assert_eq!(html.matches("class=\"pn-mis").count(), 1, "{html}");
        assert!(
            html.contains("↑ ×660"),
            "underestimate under a Limit still shows"
        );
        // No inline styles (a strict CSP): the bar is an SVG rect's width.
        assert!(!html.contains("style="), "{html}");
        assert_eq!(
            html.matches("<rect class=\"pn-bar-fill\" width=\"").count(),
            3
        );
    }

    #[test]
    fn estimates_only_plans_show_no_actuals() {
        let p = AnalyzedPlan::parse(
            r#"[{"Plan": {"Node Type": "Seq Scan", "Relation Name": "t", "Plan Rows": 10, "Total Cost": 5}}]"#,
        )
        .unwrap();
        let html = p.html_with_prefix("x-");
        assert!(html.contains("Estimates only"));
        assert!(!html.contains(" actual /") && !html.contains("pn-bar") && !html.contains("Loops"));
        assert!(html.contains("10 estimated"));
    }
}
