//! Per-node figures computed from the plan: inclusive and exclusive time,
//! share of the total, row totals and the misestimate factor.
//!
//! PostgreSQL reports `Actual Total Time` and `Actual Rows` per loop, so totals
//! are multiplied by `Actual Loops`. Two corrections keep exclusive times true:
//! - under `Gather`/`Gather Merge`, loops count the parallel processes, which
//!   ran at the same time: wall time is per-loop time × loops ÷ processes;
//! - a CTE's subplan is charged to the `CTE Scan` nodes that read it, not to
//!   the node it hangs under; InitPlans and SubPlans are part of their parent.
//!
//! Exclusive time is clamped at 0 (timing overhead makes it slightly negative).

use super::model::{Node, Plan};

/// Computed figures of one node (same index as [`Plan::nodes`]).
#[derive(Clone, Debug, Default)]
pub struct NodeStats {
    /// Wall time of the node and its children, ms (None without ANALYZE).
    pub inclusive_ms: Option<f64>,
    /// Wall time of the node alone, ms.
    pub exclusive_ms: Option<f64>,
    /// `exclusive_ms` ÷ the plan's total, 0..=1.
    pub share: Option<f64>,
    /// Rows returned over all loops.
    pub actual_rows_total: Option<f64>,
    /// Estimated rows over all loops (`Plan Rows` × loops).
    pub estimated_rows_total: Option<f64>,
    /// max(actual, estimate) ÷ min(actual, estimate), per loop, both at least 1.
    pub misestimate: Option<f64>,
    /// Whether the planner expected fewer rows than came.
    pub underestimated: bool,
    /// Whether the node may have stopped before producing all its rows (under
    /// a Limit, a semi/anti or merge join, or in a subplan): then fewer rows
    /// than estimated is expected, not a misestimate.
    pub may_stop_early: bool,
    /// Rows removed by this node's filter over all loops.
    pub rows_removed_total: Option<f64>,
    /// Whether this node runs inside a parallel section (under Gather).
    pub parallel: bool,
}

/// Figures for the whole plan.
#[derive(Clone, Debug, Default)]
pub struct Analysis {
    pub nodes: Vec<NodeStats>,
    /// The time the shares are relative to: `Execution Time`, or the root's
    /// inclusive time.
    pub total_ms: Option<f64>,
}

/// Computes every node's figures.
pub fn analyze(plan: &Plan) -> Analysis {
    let n = plan.nodes.len();
    let mut stats = vec![NodeStats::default(); n];
    // Parallel processes of the nearest Gather above each node.
    let mut procs = vec![1.0f64; n];
    for node in &plan.nodes {
        if let Some(p) = node.parent {
            let parent = &plan.nodes[p].fields;
            procs[node.id] = if parent.node_type.starts_with("Gather") {
                let launched = parent
                    .workers_launched
                    .or(parent.workers_planned)
                    .unwrap_or(0.0);
                launched + 1.0
            } else {
                procs[p]
            };
            stats[node.id].parallel = procs[node.id] > 1.0;
        }
    }
    for node in &plan.nodes {
        let f = &node.fields;
        let s = &mut stats[node.id];
        let loops = f.actual_loops;
        if let (Some(t), Some(l)) = (f.actual_total_time, loops) {
            let wall_loops = if l > 0.0 {
                (l / procs[node.id]).max(1.0)
            } else {
                0.0
            };
            s.inclusive_ms = Some(t * wall_loops);
        }
        if let Some(l) = loops {
            s.actual_rows_total = f.actual_rows.map(|r| r * l);
            s.estimated_rows_total = f.plan_rows.map(|r| r * l);
            s.rows_removed_total = f.rows_removed_by_filter.map(|r| r * l);
            if let (Some(actual), Some(est), true) = (f.actual_rows, f.plan_rows, l > 0.0) {
                let (a, e) = (actual.max(1.0), est.max(1.0));
                s.misestimate = Some(a.max(e) / a.min(e));
                s.underestimated = a > e;
            }
        }
    }
    for node in &plan.nodes {
        stats[node.id].may_stop_early = may_stop_early(plan, node);
    }
    // Exclusive time: own inclusive minus the children charged to this node.
    for node in &plan.nodes {
        let Some(incl) = stats[node.id].inclusive_ms else {
            continue;
        };
        let mut children_ms = 0.0;
        for &c in &node.children {
            if plan.nodes[c].cte_definition().is_none() {
                children_ms += stats[c].inclusive_ms.unwrap_or(0.0);
            }
        }
        if node.fields.node_type == "CTE Scan" {
            children_ms += cte_time(plan, &stats, node);
        }
        stats[node.id].exclusive_ms = Some((incl - children_ms).max(0.0));
    }
    let total_ms = plan
        .execution_time
        .or_else(|| stats.first().and_then(|s| s.inclusive_ms))
        .filter(|t| *t > 0.0);
    if let Some(total) = total_ms {
        for s in &mut stats {
            s.share = s.exclusive_ms.map(|e| (e / total).clamp(0.0, 1.0));
        }
    }
    Analysis {
        nodes: stats,
        total_ms,
    }
}

fn may_stop_early(plan: &Plan, node: &Node) -> bool {
    let mut cur = node;
    loop {
        if matches!(
            cur.fields.parent_relationship.as_deref(),
            Some("SubPlan" | "InitPlan")
        ) {
            return true;
        }
        let Some(p) = cur.parent else { return false };
        let pf = &plan.nodes[p].fields;
        if pf.node_type == "Limit"
            || pf.node_type == "Merge Join"
            || matches!(pf.join_type.as_deref(), Some("Semi" | "Anti"))
        {
            return true;
        }
        cur = &plan.nodes[p];
    }
}

/// The time of the CTE a `CTE Scan` reads, shared evenly among the scans of
/// that CTE (each pulls part of it; PostgreSQL does not say which part).
fn cte_time(plan: &Plan, stats: &[NodeStats], scan: &Node) -> f64 {
    let Some(name) = scan.fields.cte_name.as_deref() else {
        return 0.0;
    };
    let Some(def) = plan.nodes.iter().find(|n| n.cte_definition() == Some(name)) else {
        return 0.0;
    };
    let readers = plan
        .nodes
        .iter()
        .filter(|n| n.fields.node_type == "CTE Scan" && n.fields.cte_name.as_deref() == Some(name))
        .count()
        .max(1);
    stats[def.id].inclusive_ms.unwrap_or(0.0) / readers as f64
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    fn close(a: Option<f64>, b: f64) -> bool {
        a.is_some_and(|a| (a - b).abs() < 1e-9)
    }

    #[test]
    fn exclusive_time_subtracts_children_times_loops() {
        let plan = Plan::parse(
            r#"[{"Plan": {"Node Type": "Nested Loop", "Actual Total Time": 50.0, "Actual Loops": 1,
                "Actual Rows": 10, "Plan Rows": 10, "Plans": [
                {"Node Type": "Seq Scan", "Actual Total Time": 5.0, "Actual Loops": 1, "Actual Rows": 10, "Plan Rows": 1000},
                {"Node Type": "Index Scan", "Actual Total Time": 4.0, "Actual Loops": 10, "Actual Rows": 1, "Plan Rows": 1}
            ]}, "Execution Time": 100.0}]"#,
        )
        .unwrap();
        let a = analyze(&plan);
        assert!(close(a.nodes[2].inclusive_ms, 40.0));
        assert!(close(a.nodes[0].exclusive_ms, 5.0));
        assert!(close(a.nodes[0].share, 0.05));
        assert!(close(a.nodes[1].misestimate, 100.0));
        assert!(!a.nodes[1].underestimated);
        assert!(close(a.nodes[2].actual_rows_total, 10.0));
    }

    #[test]
    fn parallel_workers_are_not_summed_and_exclusive_is_clamped() {
        let plan = Plan::parse(
            r#"[{"Plan": {"Node Type": "Gather", "Workers Planned": 2, "Workers Launched": 2,
                "Actual Total Time": 30.0, "Actual Loops": 1, "Plans": [
                {"Node Type": "Seq Scan", "Parallel Aware": true, "Actual Total Time": 31.0, "Actual Loops": 3}
            ]}}]"#,
        )
        .unwrap();
        let a = analyze(&plan);
        assert!(close(a.nodes[1].inclusive_ms, 31.0));
        assert!(a.nodes[1].parallel);
        assert!(close(a.nodes[0].exclusive_ms, 0.0));
        assert!(close(a.total_ms, 30.0));
    }

    #[test]
    fn cte_time_is_charged_to_its_scan() {
        let plan = Plan::parse(
            r#"[{"Plan": {"Node Type": "Hash Join", "Actual Total Time": 20.0, "Actual Loops": 1, "Plans": [
                {"Node Type": "Seq Scan", "Subplan Name": "CTE c", "Parent Relationship": "InitPlan", "Actual Total Time": 8.0, "Actual Loops": 1},
                {"Node Type": "CTE Scan", "CTE Name": "c", "Actual Total Time": 10.0, "Actual Loops": 1},
                {"Node Type": "Hash", "Actual Total Time": 3.0, "Actual Loops": 1}
            ]}}]"#,
        )
        .unwrap();
        let a = analyze(&plan);
        assert!(close(a.nodes[0].exclusive_ms, 7.0));
        assert!(close(a.nodes[2].exclusive_ms, 2.0));
    }

    #[test]
    fn estimates_only_without_analyze() {
        let plan = Plan::parse(r#"[{"Plan": {"Node Type": "Seq Scan", "Plan Rows": 5}}]"#).unwrap();
        let a = analyze(&plan);
        assert!(a.nodes[0].inclusive_ms.is_none());
        assert!(a.nodes[0].misestimate.is_none());
        assert!(a.total_ms.is_none());
    }
}
