//! Findings: what a plan teaches, each tied to a node, with an explanation
//! and a suggested action.
//!
//! Policy: never a finding that is wrong for the plan. Every rule needs
//! ANALYZE figures, fires only above conservative thresholds, and stays silent
//! when the plan does not carry what it needs (e.g. index-only suggestions
//! need VERBOSE output columns). Each rule has negative unit tests.

use super::analysis::Analysis;
use super::conditions::{column_tests, index_columns, plain_column};
use super::model::{Node, Plan};
use super::numbers::group_digits;

/// Which rule produced a finding.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum FindingKind {
    MissingIndex,
    Misestimate,
    SortSpill,
    HashSpill,
    NestedLoop,
    IndexOnlyPossible,
    HeapFetches,
    TopNSort,
}

/// One thing worth learning from the plan.
#[derive(Clone, Debug, serde::Serialize)]
pub struct Finding {
    /// The node it is about (its id; the view's anchor is `<prefix>node-<id>`).
    pub node: usize,
    pub kind: FindingKind,
    /// Short headline.
    pub title: String,
    /// Why this matters, in teaching words.
    pub explanation: String,
    /// What to try (often a statement).
    pub action: String,
}

/// Rows below which scans, sorts and loops are too small to matter.
const MANY_ROWS: f64 = 1_000.0;
/// Share of scanned rows a filter must remove before an index is suggested.
const MOSTLY_REMOVED: f64 = 0.9;
/// Misestimate factor worth a finding.
const MISESTIMATE: f64 = 10.0;
/// Outer rows of a nested loop worth a finding.
const MANY_LOOPS: f64 = 10_000.0;

/// All findings for a plan, in node order.
pub fn findings(plan: &Plan, analysis: &Analysis) -> Vec<Finding> {
    let mut out = Vec::new();
    for node in &plan.nodes {
        if !node.analyzed() || node.never_executed() {
            continue;
        }
        missing_index(analysis, node, &mut out);
        misestimate(analysis, node, &mut out);
        spill(node, &mut out);
        nested_loop(plan, analysis, node, &mut out);
        index_only(analysis, node, &mut out);
        top_n(plan, analysis, node, &mut out);
    }
    out
}

fn rel(node: &Node) -> Option<&str> {
    node.fields.relation_name.as_deref()
}

fn fmt_rows(v: f64) -> String {
    group_digits(v)
}

fn missing_index(a: &Analysis, node: &Node, out: &mut Vec<Finding>) {
    let f = &node.fields;
    if f.node_type != "Seq Scan" {
        return;
    }
    let (Some(table), Some(filter)) = (rel(node), f.filter.as_deref()) else {
        return;
    };
    let s = &a.nodes[node.id];
    let (Some(removed), Some(kept)) = (s.rows_removed_total, s.actual_rows_total) else {
        return;
    };
    let scanned = removed + kept;
    if removed < MANY_ROWS || scanned <= 0.0 || removed / scanned < MOSTLY_REMOVED {
        return;
    }
    let cols = index_columns(&column_tests(filter));
    if cols.is_empty() {
        return;
    }
    out.push(Finding {
        node: node.id,
        kind: FindingKind::MissingIndex,
        title: format!("Sequential scan on {table} throws away most rows: possible missing index"),
        explanation: format!(
            "PostgreSQL read all {} rows of {table} and its filter removed {} of them ({:.1}%) to keep {}. \
             An index on the filtered column{} ({}) lets it jump to the matching rows instead of reading the whole table.",
            fmt_rows(scanned),
            fmt_rows(removed),
            removed / scanned * 100.0,
            fmt_rows(kept),
            if cols.len() > 1 { "s" } else { "" },
            cols.join(", "),
        ),
        action: format!(
            "create index on {table} ({}); then run EXPLAIN ANALYZE again and compare.",
            cols.join(", ")
        ),
    });
}

const TABLE_SCANS: &[&str] = &[
    "Seq Scan",
    "Index Scan",
    "Index Only Scan",
    "Bitmap Heap Scan",
];

fn misestimate(a: &Analysis, node: &Node, out: &mut Vec<Finding>) {
    let f = &node.fields;
    let Some(table) = rel(node) else { return };
    if !TABLE_SCANS.contains(&f.node_type.as_str()) {
        return;
    }
    let s = &a.nodes[node.id];
    let (Some(factor), Some(actual), Some(est)) =
        (s.misestimate, s.actual_rows_total, s.estimated_rows_total)
    else {
        return;
    };
    if factor < MISESTIMATE || actual.max(est) < MANY_ROWS {
        return;
    }
    if !s.underestimated && s.may_stop_early {
        return;
    }
    let direction = if s.underestimated { "fewer" } else { "more" };
    let cols = f
        .filter
        .as_deref()
        .or(f.index_cond.as_deref())
        .or(f.recheck_cond.as_deref())
        .map(column_tests)
        .unwrap_or_default();
    let correlated = if cols.len() > 1 {
        format!(
            " If ANALYZE does not fix it, the columns may be correlated: \
             create statistics on ({}) from {table}; then analyze {table};",
            cols.iter()
                .map(|c| c.column.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    } else {
        String::new()
    };
    out.push(Finding {
        node: node.id,
        kind: FindingKind::Misestimate,
        title: format!("Row estimate off by {factor:.0}× on {table}"),
        explanation: format!(
            "The planner expected {} rows here but {} came: it planned for {direction} rows than it got. \
             Estimates come from the table's statistics; after a bulk insert, update or delete they are \
             stale until autovacuum (or you) runs ANALYZE, and every choice above this node (join method, \
             sort, memory) may be wrong.",
            fmt_rows(est),
            fmt_rows(actual),
        ),
        action: format!("analyze {table};{correlated}"),
    });
}

fn spill(node: &Node, out: &mut Vec<Finding>) {
    let f = &node.fields;
    let sort_disk = f.sort_space_type.as_deref() == Some("Disk")
        || f.sort_method
            .as_deref()
            .is_some_and(|m| m.contains("external"));
    if f.node_type.ends_with("Sort") && sort_disk {
        let kb = f.sort_space_used.unwrap_or(0.0);
        out.push(Finding {
            node: node.id,
            kind: FindingKind::SortSpill,
            title: "Sort spilled to disk".to_string(),
            explanation: format!(
                "The rows to sort did not fit in work_mem, so PostgreSQL sorted them in pieces in temporary files \
                 ({} method, {} kB on disk). Disk sorts are much slower than in-memory quicksorts.",
                f.sort_method.as_deref().unwrap_or("external"),
                fmt_rows(kb)
            ),
            action: format!(
                "set work_mem = '{}MB'; (for this session) and run it again; or sort fewer rows (filter first, an index on the ORDER BY).",
                suggest_mb(kb)
            ),
        });
    }
    let hash_batches = if f.node_type == "Hash" {
        f.hash_batches
    } else if f.node_type == "Aggregate" {
        f.hashagg_batches
    } else {
        None
    };
    if let Some(batches) = hash_batches.filter(|b| *b > 1.0) {
        let kb = f.disk_usage.or(f.peak_memory_usage).unwrap_or(0.0);
        out.push(Finding {
            node: node.id,
            kind: FindingKind::HashSpill,
            title: format!("Hash table split into {batches:.0} batches on disk"),
            explanation: "The hash table did not fit in work_mem (times hash_mem_multiplier), so PostgreSQL split it \
                          into batches written to temporary files and read back."
                .to_string(),
            action: format!(
                "set work_mem = '{}MB'; (for this session) and run it again.",
                suggest_mb(kb * batches)
            ),
        });
    }
}

/// A work_mem in MB comfortably above `kb`, as a power of two.
fn suggest_mb(kb: f64) -> u64 {
    // Clamped so absurd figures in a hand-made plan cannot overflow.
    let mb = (kb * 2.0 / 1024.0).ceil().clamp(8.0, 1_048_576.0) as u64;
    mb.next_power_of_two()
}

fn nested_loop(plan: &Plan, a: &Analysis, node: &Node, out: &mut Vec<Finding>) {
    if node.fields.node_type != "Nested Loop" {
        return;
    }
    let Some(&outer) = node
        .children
        .iter()
        .find(|&&c| plan.nodes[c].fields.parent_relationship.as_deref() == Some("Outer"))
    else {
        return;
    };
    let so = &a.nodes[outer];
    let Some(outer_rows) = so.actual_rows_total else {
        return;
    };
    let weight = a.nodes[node.id]
        .inclusive_ms
        .zip(a.total_ms)
        .map(|(i, t)| i / t);
    if outer_rows < MANY_LOOPS || weight.is_some_and(|w| w < 0.2) {
        return;
    }
    let misestimated = so.underestimated && so.misestimate.is_some_and(|m| m >= MISESTIMATE);
    out.push(Finding {
        node: node.id,
        kind: FindingKind::NestedLoop,
        title: format!("Nested loop runs its inner side {} times", fmt_rows(outer_rows)),
        explanation: format!(
            "A nested loop runs its inner side once per outer row. With {} outer rows that adds up; \
             a hash join or merge join reads each side once.{}",
            fmt_rows(outer_rows),
            if misestimated {
                " The planner expected far fewer outer rows: fixing that estimate often fixes the join choice."
            } else {
                ""
            }
        ),
        action: if misestimated {
            "Run ANALYZE on the tables of the outer side, then EXPLAIN ANALYZE again.".to_string()
        } else {
            "Make sure the inner side uses an index on the join column; check the outer side's row estimate.".to_string()
        },
    });
}

fn index_only(a: &Analysis, node: &Node, out: &mut Vec<Finding>) {
    let f = &node.fields;
    let s = &a.nodes[node.id];
    let (Some(table), Some(rows)) = (rel(node), s.actual_rows_total) else {
        return;
    };
    if rows < MANY_ROWS {
        return;
    }
    if f.node_type == "Index Only Scan" {
        let fetches = f.heap_fetches.unwrap_or(0.0) * f.actual_loops.unwrap_or(1.0);
        if fetches >= MANY_ROWS && fetches >= rows * 0.5 {
            out.push(Finding {
                node: node.id,
                kind: FindingKind::HeapFetches,
                title: "Index-only scan still visits the table".to_string(),
                explanation: format!(
                    "{} of {} rows needed a heap fetch: the visibility map does not mark those pages all-visible \
                     yet, so the index alone cannot prove the rows are visible.",
                    fmt_rows(fetches),
                    fmt_rows(rows)
                ),
                action: format!("vacuum {table};"),
            });
        }
        return;
    }
    if f.node_type != "Index Scan" || f.filter.is_some() {
        return;
    }
    // Only with VERBOSE do we know which columns the scan returns.
    let (Some(output), Some(cond), Some(index)) = (&f.output, &f.index_cond, &f.index_name) else {
        return;
    };
    let outputs: Option<Vec<String>> = output.iter().map(|o| plain_column(o)).collect();
    let Some(outputs) = outputs else { return };
    let cond_cols: Vec<String> = column_tests(cond).into_iter().map(|t| t.column).collect();
    if outputs.is_empty() || cond_cols.is_empty() {
        return;
    }
    let extra: Vec<&String> = outputs.iter().filter(|o| !cond_cols.contains(o)).collect();
    if extra.len() > 3 {
        return;
    }
    let action = if extra.is_empty() {
        format!("vacuum analyze {table}; (so the visibility map lets {index} answer alone)")
    } else {
        format!(
            "create index on {table} ({}) include ({}); then vacuum analyze {table};",
            cond_cols.join(", "),
            extra
                .iter()
                .map(|s| s.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    out.push(Finding {
        node: node.id,
        kind: FindingKind::IndexOnlyPossible,
        title: "This index scan could be index-only".to_string(),
        explanation: format!(
            "The scan reads {} rows through {index} and then fetches each from the table for the columns \
             {}. An index holding every column the query needs allows an Index Only Scan, which skips the table \
             for pages marked all-visible.",
            fmt_rows(rows),
            outputs.join(", ")
        ),
        action,
    });
}

fn top_n(plan: &Plan, a: &Analysis, node: &Node, out: &mut Vec<Finding>) {
    let f = &node.fields;
    if f.node_type != "Sort" || f.sort_method.as_deref() != Some("top-N heapsort") {
        return;
    }
    let Some(p) = node.parent else { return };
    if plan.nodes[p].fields.node_type != "Limit" {
        return;
    }
    let [child] = node.children[..] else { return };
    let c = &plan.nodes[child];
    let Some(table) = rel(c) else { return };
    if !TABLE_SCANS.contains(&c.fields.node_type.as_str())
        && c.fields.node_type != "Bitmap Heap Scan"
    {
        return;
    }
    let Some(input) = a.nodes[child].actual_rows_total else {
        return;
    };
    if input < MANY_ROWS {
        return;
    }
    let keys: Option<Vec<String>> = f
        .sort_key
        .as_deref()
        .unwrap_or_default()
        .iter()
        .map(|k| {
            let (col, dir) = match k.strip_suffix(" DESC") {
                Some(col) => (col, " desc"),
                None => (k.as_str(), ""),
            };
            plain_column(col).map(|c| format!("{c}{dir}"))
        })
        .collect();
    let Some(keys) = keys.filter(|k| !k.is_empty()) else {
        return;
    };
    let cond = [
        &c.fields.filter,
        &c.fields.index_cond,
        &c.fields.recheck_cond,
    ]
    .into_iter()
    .flatten()
    .map(|s| column_tests(s))
    .find(|t| !t.is_empty())
    .unwrap_or_default();
    let mut cols: Vec<String> = cond
        .iter()
        .filter(|t| t.equality)
        .map(|t| t.column.clone())
        .collect();
    cols.extend(keys.iter().cloned());
    out.push(Finding {
        node: node.id,
        kind: FindingKind::TopNSort,
        title: format!("Sorting {} rows to keep the first few", fmt_rows(input)),
        explanation: format!(
            "The Limit needs only the first rows in ORDER BY {} order, but PostgreSQL read and sorted all {} \
             matching rows (top-N heapsort). An index whose order matches the ORDER BY (after the equality \
             columns of the WHERE clause) returns rows already sorted, so the scan can stop after the limit.",
            keys.join(", "),
            fmt_rows(input)
        ),
        action: format!("create index on {table} ({});", cols.join(", ")),
    });
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::explain::analysis::analyze;

    fn run(json: &str) -> Vec<Finding> {
        let plan = Plan::parse(json).unwrap();
        findings(&plan, &analyze(&plan))
    }

    fn seq(removed: u32, kept: u32, filter: &str) -> String {
        format!(
            r#"[{{"Plan": {{"Node Type": "Seq Scan", "Relation Name": "tasks", "Filter": "{filter}",
            "Plan Rows": {kept}, "Actual Rows": {kept}, "Actual Loops": 1, "Actual Total Time": 10,
            "Rows Removed by Filter": {removed}}}, "Execution Time": 11}}]"#
        )
    }

    #[test]
    fn missing_index_names_the_filter_columns() {
        let f = run(&seq(
            93_333,
            6_667,
            "((status = 'todo'::text) AND (priority = 'high'::text))",
        ));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].kind, FindingKind::MissingIndex);
        assert!(
            f[0].action.contains("tasks (status, priority)"),
            "{}",
            f[0].action
        );
    }

    #[test]
    fn no_missing_index_when_few_rows_or_most_kept_or_unreadable() {
        assert!(run(&seq(900, 10, "(status = 'todo'::text)")).is_empty());
        assert!(run(&seq(50_000, 50_000, "(status = 'todo'::text)")).is_empty());
        assert!(run(&seq(99_000, 1_000, "(lower(title) = 'x'::text)")).is_empty());
        // Without ANALYZE there is nothing to go on.
        assert!(run(
            r#"[{"Plan": {"Node Type": "Seq Scan", "Relation Name": "t", "Filter": "(a = 1)", "Plan Rows": 1}}]"#
        )
        .is_empty());
    }

    #[test]
    fn misestimate_needs_factor_and_rows_and_ignores_early_stop() {
        let scan = |est: u32, act: u32| {
            format!(
                r#"{{"Node Type": "Seq Scan", "Relation Name": "tasks", "Plan Rows": {est}, "Actual Rows": {act}, "Actual Loops": 1, "Actual Total Time": 1}}"#
            )
        };
        let f = run(&format!(r#"[{{"Plan": {}}}]"#, scan(10, 100_000)));
        assert_eq!(f.len(), 1);
        assert_eq!(f[0].kind, FindingKind::Misestimate);
        assert!(f[0].action.starts_with("analyze tasks;"));
        // Factor under 10, or too few rows: nothing.
        assert!(run(&format!(r#"[{{"Plan": {}}}]"#, scan(20_000, 100_000))).is_empty());
        assert!(run(&format!(r#"[{{"Plan": {}}}]"#, scan(1, 500))).is_empty());
        // Fewer rows than estimated under a Limit is the Limit, not statistics.
        let limited = format!(
            r#"[{{"Plan": {{"Node Type": "Limit", "Plan Rows": 20, "Actual Rows": 20, "Actual Loops": 1, "Plans": [{}]}}}}]"#,
            scan(100_000, 20)
        );
        assert!(run(&limited).is_empty());
    }

    #[test]
    fn sort_spill_only_on_disk() {
        let sort = |method: &str, space: &str| {
            format!(
                r#"[{{"Plan": {{"Node Type": "Sort", "Sort Method": "{method}", "Sort Space Used": 4000, "Sort Space Type": "{space}", "Actual Rows": 1, "Actual Loops": 1}}}}]"#
            )
        };
        let f = run(&sort("external merge", "Disk"));
        assert_eq!(f[0].kind, FindingKind::SortSpill);
        assert!(f[0].action.contains("work_mem = '8MB'"), "{}", f[0].action);
        assert!(run(&sort("quicksort", "Memory")).is_empty());
    }

    #[test]
    fn hash_single_batch_is_fine() {
        let hash = |b: u32| {
            format!(
                r#"[{{"Plan": {{"Node Type": "Hash", "Hash Batches": {b}, "Peak Memory Usage": 4000, "Actual Rows": 1, "Actual Loops": 1}}}}]"#
            )
        };
        assert!(run(&hash(1)).is_empty());
        assert_eq!(run(&hash(4))[0].kind, FindingKind::HashSpill);
    }

    #[test]
    fn nested_loop_needs_many_outer_rows() {
        let nl = |outer: u32| {
            format!(
                r#"[{{"Plan": {{"Node Type": "Nested Loop", "Actual Rows": 1, "Actual Loops": 1, "Actual Total Time": 100, "Plans": [
                {{"Node Type": "Function Scan", "Parent Relationship": "Outer", "Plan Rows": {outer}, "Actual Rows": {outer}, "Actual Loops": 1, "Actual Total Time": 1}},
                {{"Node Type": "Result", "Parent Relationship": "Inner", "Plan Rows": 1, "Actual Rows": 1, "Actual Loops": {outer}, "Actual Total Time": 0.001}}]}}}}]"#
            )
        };
        assert_eq!(run(&nl(50_000))[0].kind, FindingKind::NestedLoop);
        assert!(run(&nl(500)).is_empty());
    }

    #[test]
    fn index_only_needs_verbose_output() {
        let scan = |output: &str, filter: &str| {
            format!(
                r#"[{{"Plan": {{"Node Type": "Index Scan", "Relation Name": "tasks", "Index Name": "idx_tasks_status_priority",
                "Index Cond": "((status = 'todo'::text) AND (priority = 'high'::text))"{output}{filter},
                "Plan Rows": 6000, "Actual Rows": 6000, "Actual Loops": 1, "Actual Total Time": 3}}}}]"#
            )
        };
        let f = run(&scan(r#", "Output": ["id", "status"]"#, ""));
        assert_eq!(f.len(), 1);
        assert!(
            f[0].action.contains("(status, priority) include (id)"),
            "{}",
            f[0].action
        );
        assert!(run(&scan("", "")).is_empty());
        assert!(run(&scan(r#", "Output": ["lower(title)"]"#, "")).is_empty());
        assert!(run(&scan(r#", "Output": ["id"]"#, r#", "Filter": "(x > 1)""#)).is_empty());
    }

    #[test]
    fn top_n_under_limit_suggests_the_order_by_index() {
        let plan = |method: &str, rows: u32| {
            format!(
                r#"[{{"Plan": {{"Node Type": "Limit", "Actual Rows": 20, "Actual Loops": 1, "Plans": [
                {{"Node Type": "Sort", "Sort Key": ["created_at DESC"], "Sort Method": "{method}", "Actual Rows": 20, "Actual Loops": 1, "Plans": [
                {{"Node Type": "Bitmap Heap Scan", "Relation Name": "tasks", "Recheck Cond": "((status = 'todo'::text) AND (priority = 'high'::text))",
                  "Plan Rows": {rows}, "Actual Rows": {rows}, "Actual Loops": 1}}]}}]}}}}]"#
            )
        };
        let f = run(&plan("top-N heapsort", 6_667));
        assert_eq!(f.len(), 1, "{f:?}");
        assert_eq!(f[0].kind, FindingKind::TopNSort);
        assert_eq!(
            f[0].action,
            "create index on tasks (status, priority, created_at desc);"
        );
        assert!(run(&plan("quicksort", 6_667)).is_empty());
        assert!(run(&plan("top-N heapsort", 50)).is_empty());
    }
}
