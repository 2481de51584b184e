//! Comparing two plans of (usually) the same query: the change in total
//! time, per matched node the change in time and rows, and which scans
//! changed ("Seq Scan on tasks → Index Scan using idx_... on tasks").
//!
//! Matching: table scans pair by relation and alias, in order (a Bitmap Heap
//! Scan counts with its Bitmap Index Scans); other nodes pair by their path of
//! non-scan node types from the root, in order. Unpaired nodes are listed as
//! only in one plan.

use std::collections::HashMap;

use super::AnalyzedPlan;
use super::model::{Node, Plan};
use super::numbers::{group_digits, ms};
use super::text::node_title;

/// One matched (or unmatched) node.
#[derive(Clone, Debug)]
pub struct NodeChange {
    pub a: Option<usize>,
    pub b: Option<usize>,
    pub label_a: Option<String>,
    pub label_b: Option<String>,
    pub time_a: Option<String>,
    pub time_b: Option<String>,
    /// Signed change of inclusive time, e.g. "−12.30 ms (−95%)".
    pub time_change: Option<String>,
    /// true when B is faster.
    pub faster: bool,
    pub rows_a: Option<String>,
    pub rows_b: Option<String>,
    pub changed: bool,
}

/// A scan that changed method or index.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ScanChange {
    pub before: String,
    pub after: String,
}

/// The comparison of plan A (before) with plan B (after).
#[derive(Clone, Debug)]
pub struct Comparison {
    pub total_a: Option<String>,
    pub total_b: Option<String>,
    /// e.g. "−14.20 ms (−97.1%, 34.5× faster)"
    pub total_change: Option<String>,
    pub faster: bool,
    pub scan_changes: Vec<ScanChange>,
    pub nodes: Vec<NodeChange>,
}

/// A scan's description including the indexes of its bitmap children.
fn scan_label(plan: &Plan, n: &Node) -> String {
    let mut s = node_title(n, false);
    if n.fields.node_type == "Bitmap Heap Scan" {
        let idx: Vec<String> = bitmap_indexes(plan, n);
        if !idx.is_empty() {
            s.push_str(&format!(" using {}", idx.join(", ")));
        }
    }
    s
}

fn bitmap_indexes(plan: &Plan, n: &Node) -> Vec<String> {
    let mut out = Vec::new();
    let mut stack: Vec<usize> = n.children.clone();
    while let Some(c) = stack.pop() {
        let cn = &plan.nodes[c];
        if let Some(i) = &cn.fields.index_name {
            out.push(i.clone());
        }
        if cn.fields.node_type.starts_with("Bitmap") {
            stack.extend(cn.children.iter().copied());
        }
    }
    out.sort();
    out
}

fn is_table_scan(n: &Node) -> bool {
    n.fields.relation_name.is_some() && n.fields.node_type.ends_with("Scan")
}

/// Part of a bitmap scan (compared through its heap scan).
fn is_bitmap_part(n: &Node) -> bool {
    matches!(
        n.fields.node_type.as_str(),
        "Bitmap Index Scan" | "BitmapAnd" | "BitmapOr"
    )
}

/// Matching key of a node.
fn key(plan: &Plan, n: &Node) -> String {
    if is_table_scan(n) {
        return format!(
            "scan:{}:{}",
            n.fields.relation_name.as_deref().unwrap_or(""),
            n.fields.alias.as_deref().unwrap_or("")
        );
    }
    let mut path = vec![n.fields.node_type.as_str()];
    let mut cur = n;
    while let Some(p) = cur.parent {
        cur = &plan.nodes[p];
        if !is_table_scan(cur) {
            path.push(cur.fields.node_type.as_str());
        }
    }
    path.reverse();
    format!("path:{}", path.join("/"))
}

/// Compares plan `a` (before) with plan `b` (after).
pub fn compare(a: &AnalyzedPlan, b: &AnalyzedPlan) -> Comparison {
    let mut b_by_key: HashMap<String, Vec<usize>> = HashMap::new();
    for n in b.plan.nodes.iter().filter(|n| !is_bitmap_part(n)) {
        b_by_key.entry(key(&b.plan, n)).or_default().push(n.id);
    }
    for v in b_by_key.values_mut() {
        v.reverse(); // pop() takes them in plan order
    }
    let mut nodes = Vec::new();
    let mut scan_changes = Vec::new();
    let mut used_b = vec![false; b.plan.nodes.len()];
    for n in a.plan.nodes.iter().filter(|n| !is_bitmap_part(n)) {
        let other = b_by_key.get_mut(&key(&a.plan, n)).and_then(Vec::pop);
        if let Some(o) = other {
            used_b[o] = true;
            let on = &b.plan.nodes[o];
            if is_table_scan(n) {
                let (before, after) = (scan_label(&a.plan, n), scan_label(&b.plan, on));
                if before != after {
                    scan_changes.push(ScanChange { before, after });
                }
            }
        }
        nodes.push(change(a, b, Some(n.id), other));
    }
    for n in b.plan.nodes.iter().filter(|n| !is_bitmap_part(n)) {
        if !used_b[n.id] {
            nodes.push(change(a, b, None, Some(n.id)));
        }
    }
    let (ta, tb) = (a.analysis.total_ms, b.analysis.total_ms);
    let total_change = ta.zip(tb).map(|(x, y)| delta(x, y, true));
    Comparison {
        total_a: ta.map(ms),
        total_b: tb.map(ms),
        total_change,
        faster: ta.zip(tb).is_some_and(|(x, y)| y < x),
        scan_changes,
        nodes,
    }
}

/// "−14.20 ms (−97.1%)" and, with `ratio`, ", 34.5× faster".
fn delta(x: f64, y: f64, ratio: bool) -> String {
    let d = y - x;
    let sign = if d < 0.0 { "−" } else { "+" };
    let pct = if x > 0.0 {
        format!(" ({sign}{:.1}%", (d.abs() / x) * 100.0)
    } else {
        " (".to_string()
    };
    let mut s = format!("{sign}{}{pct}", ms(d.abs()));
    if ratio && x > 0.0 && y > 0.0 {
        if y < x {
            s.push_str(&format!(", {:.1}× faster", x / y));
        } else if y > x {
            s.push_str(&format!(", {:.1}× slower", y / x));
        }
    }
    if s.ends_with(" (") {
        s.truncate(s.len() - 2);
    } else {
        s.push(')');
    }
    s
}

fn change(a: &AnalyzedPlan, b: &AnalyzedPlan, ia: Option<usize>, ib: Option<usize>) -> NodeChange {
    let label =
        |p: &AnalyzedPlan, i: Option<usize>| i.map(|i| scan_label(&p.plan, &p.plan.nodes[i]));
    let time =
        |p: &AnalyzedPlan, i: Option<usize>| i.and_then(|i| p.analysis.nodes[i].inclusive_ms);
    let rows = |p: &AnalyzedPlan, i: Option<usize>| {
        i.map(|i| {
            p.analysis.nodes[i]
                .actual_rows_total
                .or(p.plan.nodes[i].fields.plan_rows)
                .unwrap_or(0.0)
        })
    };
    let (la, lb) = (label(a, ia), label(b, ib));
    let (xa, xb) = (time(a, ia), time(b, ib));
    let (ra, rb) = (rows(a, ia), rows(b, ib));
    NodeChange {
        a: ia,
        b: ib,
        changed: la != lb || ra != rb,
        label_a: la,
        label_b: lb,
        time_a: xa.map(ms),
        time_b: xb.map(ms),
        time_change: xa.zip(xb).map(|(x, y)| delta(x, y, false)),
        faster: xa.zip(xb).is_some_and(|(x, y)| y < x),
        rows_a: ra.map(group_digits),
        rows_b: rb.map(group_digits),
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn names_the_scan_change_and_total() {
        let a = AnalyzedPlan::parse(
            r#"[{"Plan": {"Node Type": "Limit", "Actual Total Time": 15, "Actual Loops": 1, "Actual Rows": 20, "Plans": [
              {"Node Type": "Seq Scan", "Relation Name": "tasks", "Alias": "tasks", "Actual Total Time": 14, "Actual Loops": 1, "Actual Rows": 20}]},
              "Execution Time": 15.0}]"#,
        )
        .unwrap();
        let b = AnalyzedPlan::parse(
            r#"[{"Plan": {"Node Type": "Limit", "Actual Total Time": 0.5, "Actual Loops": 1, "Actual Rows": 20, "Plans": [
              {"Node Type": "Bitmap Heap Scan", "Relation Name": "tasks", "Alias": "tasks", "Actual Total Time": 0.4, "Actual Loops": 1, "Actual Rows": 20, "Plans": [
                {"Node Type": "Bitmap Index Scan", "Index Name": "idx_tasks_status_priority", "Actual Total Time": 0.1, "Actual Loops": 1, "Actual Rows": 20}]}]},
              "Execution Time": 0.5}]"#,
        )
        .unwrap();
        let c = compare(&a, &b);
        assert_eq!(
            c.scan_changes,
            [ScanChange {
                before: "Seq Scan on tasks".into(),
                after: "Bitmap Heap Scan on tasks using idx_tasks_status_priority".into()
            }]
        );
        assert!(c.faster);
        assert_eq!(
            c.total_change.as_deref(),
            Some("−14.50 ms (−96.7%, 30.0× faster)")
        );
        assert_eq!(c.nodes.len(), 2);
        assert!(c.nodes.iter().all(|n| n.a.is_some() && n.b.is_some()));
    }

    #[test]
    fn unmatched_nodes_are_listed_once() {
        let a = AnalyzedPlan::parse(r#"[{"Plan": {"Node Type": "Sort", "Plans": [{"Node Type": "Seq Scan", "Relation Name": "t"}]}}]"#).unwrap();
        let b = AnalyzedPlan::parse(
            r#"[{"Plan": {"Node Type": "Index Scan", "Relation Name": "t", "Index Name": "i"}}]"#,
        )
        .unwrap();
        let c = compare(&a, &b);
        assert_eq!(c.scan_changes.len(), 1);
        assert_eq!(c.nodes.len(), 2, "{:?}", c.nodes);
        assert!(c.total_change.is_none());
    }
}
