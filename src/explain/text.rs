//! psql's `QUERY PLAN` column for `FORMAT TEXT`, rebuilt from the JSON plan,
//! line for line as PostgreSQL 15's `explain.c` writes it: node lines with
//! `->  ` arrows, two spaces of indent per level, properties in the same
//! order, numbers in the same precision. Only counters above zero appear,
//! as in psql. (FORMAT JSON is shown as the JSON itself.)

use std::fmt::Write;

use super::model::{Buffers, Node, Plan};
use super::statement::{ExplainFormat, ExplainOptions};

/// The lines psql shows in the `QUERY PLAN` column for the learner's options.
pub fn render_text(plan: &Plan, options: &ExplainOptions) -> Vec<String> {
    if options.format != ExplainFormat::Text {
        return plan.source.lines().map(str::to_string).collect();
    }
    let mut r = Renderer {
        plan,
        o: options,
        lines: Vec::new(),
    };
    r.node(0, 0);
    r.summary();
    r.lines
}

struct Renderer<'a> {
    plan: &'a Plan,
    o: &'a ExplainOptions,
    lines: Vec<String>,
}

fn pad(indent: usize) -> String {
    " ".repeat(indent * 2)
}

/// PostgreSQL's `quote_identifier`: as it is when it starts with a lower
/// case letter or `_`, holds only those and digits, and is no keyword but an
/// unreserved one; in double quotes otherwise (`"user"`, `"Tasks"`, `"a$b"`).
fn ident(s: &str) -> String {
    let safe = s
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && s.chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        && !super::keywords::quoted(s);
    if safe {
        s.to_string()
    } else {
        format!("\"{}\"", s.replace('"', "\"\""))
    }
}

fn int(v: f64) -> String {
    // Counters are whole numbers: integer formatting is several times faster
    // than `{:.0}` and prints the same digits.
    if v.fract() == 0.0 && v.abs() < 1e15 && !(v == 0.0 && v.is_sign_negative()) {
        (v as i64).to_string()
    } else {
        format!("{v:.0}")
    }
}

/// `v` with `digits` decimals, as `format!("{v:.digits$}")` (C's `%.*f`)
/// writes it. Costs and times come with exactly that many decimals, so the
/// scaled value is within a hair of an integer, far from a rounding
/// boundary: then integer formatting gives the same digits, faster. Any
/// other value takes the exact path.
struct Fixed(f64, usize);

impl std::fmt::Display for Fixed {
    fn fmt(&self, out: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let Fixed(v, digits) = *self;
        let scale = [1.0, 10.0, 100.0, 1000.0][digits.min(3)];
        let scaled = v * scale;
        let whole = scaled.round();
        if digits <= 3 && v.is_sign_positive() && scaled < 1e15 && (scaled - whole).abs() < 1e-6 {
            let n = whole as u64;
            let unit = scale as u64;
            if digits == 0 {
                return write!(out, "{n}");
            }
            return write!(out, "{}.{:0digits$}", n / unit, n % unit);
        }
        write!(out, "{v:.digits$}")
    }
}

/// The node's title as psql prints it: "Hash Left Join", "Index Scan Backward
/// using idx on tasks t", "Partial HashAggregate", ...
pub fn node_title(n: &Node, verbose: bool) -> String {
    let f = &n.fields;
    let mut s = String::new();
    if f.parallel_aware {
        s.push_str("Parallel ");
    }
    if f.async_capable {
        s.push_str("Async ");
    }
    let t = f.node_type.as_str();
    match t {
        "Aggregate" => {
            match f.partial_mode.as_deref() {
                Some("Partial") => s.push_str("Partial "),
                Some("Finalize") => s.push_str("Finalize "),
                _ => {}
            }
            s.push_str(match f.strategy.as_deref() {
                Some("Sorted") => "GroupAggregate",
                Some("Hashed") => "HashAggregate",
                Some("Mixed") => "MixedAggregate",
                _ => "Aggregate",
            });
        }
        "SetOp" => {
            s.push_str(if f.strategy.as_deref() == Some("Hashed") {
                "HashSetOp"
            } else {
                "SetOp"
            });
            if let Some(c) = &f.command {
                let _ = write!(s, " {c}");
            }
        }
        "ModifyTable" => s.push_str(f.operation.as_deref().unwrap_or("ModifyTable")),
        "Custom Scan" => {
            let _ = write!(
                s,
                "Custom Scan ({})",
                f.custom_plan_provider.as_deref().unwrap_or("?")
            );
        }
        "Nested Loop" | "Hash Join" | "Merge Join" => {
            s.push_str(match t {
                "Hash Join" => "Hash",
                "Merge Join" => "Merge",
                _ => "Nested Loop",
            });
            match f.join_type.as_deref() {
                Some("Inner") | None if t == "Nested Loop" => {}
                Some("Inner") | None => s.push_str(" Join"),
                Some(j) => {
                    let _ = write!(s, " {j} Join");
                }
            }
        }
        other => s.push_str(other),
    }
    match t {
        "Index Scan" | "Index Only Scan" => {
            if f.scan_direction.as_deref() == Some("Backward") {
                s.push_str(" Backward");
            }
            if let Some(i) = &f.index_name {
                let _ = write!(s, " using {}", ident(i));
            }
            target(&mut s, n, verbose);
        }
        "Bitmap Index Scan" => {
            if let Some(i) = &f.index_name {
                let _ = write!(s, " on {}", ident(i));
            }
        }
        "ModifyTable" => target(&mut s, n, verbose),
        _ if t.ends_with("Scan") => target(&mut s, n, verbose),
        _ => {}
    }
    s
}

/// `ExplainTargetRel`: " on [schema.]object [alias]".
fn target(s: &mut String, n: &Node, verbose: bool) {
    let f = &n.fields;
    let object = f
        .relation_name
        .as_ref()
        .or(f.function_name.as_ref())
        .or(f.cte_name.as_ref())
        .or(f.tuplestore_name.as_ref());
    target_rel(s, object, f.schema.as_ref(), f.alias.as_ref(), verbose);
}

fn target_rel(
    s: &mut String,
    object: Option<&String>,
    schema: Option<&String>,
    alias: Option<&String>,
    verbose: bool,
) {
    if object.is_none() && alias.is_none() {
        return;
    }
    s.push_str(" on");
    if let Some(obj) = object {
        match (schema, verbose) {
            (Some(ns), true) => {
                let _ = write!(s, " {}.{}", ident(ns), ident(obj));
            }
            _ => {
                let _ = write!(s, " {}", ident(obj));
            }
        }
    }
    if let Some(alias) = alias
        && object != Some(alias)
    {
        let _ = write!(s, " {}", ident(alias));
    }
}

impl Renderer<'_> {
    /// A line of `parts` after `indent` levels: one allocation per line.
    fn push_parts(&mut self, indent: usize, parts: &[&str]) {
        let len = indent * 2 + parts.iter().map(|p| p.len()).sum::<usize>();
        let mut line = String::with_capacity(len);
        line.extend(std::iter::repeat_n(' ', indent * 2));
        for p in parts {
            line.push_str(p);
        }
        self.lines.push(line);
    }

    fn push(&mut self, indent: usize, text: impl AsRef<str>) {
        self.push_parts(indent, &[text.as_ref()]);
    }

    fn prop(&mut self, indent: usize, name: &str, value: &Option<String>) {
        if let Some(v) = value {
            self.push_parts(indent, &[name, ": ", v]);
        }
    }

    fn list(&mut self, indent: usize, name: &str, value: &Option<Vec<String>>) {
        if let Some(v) = value {
            let mut line = String::with_capacity(
                indent * 2 + name.len() + 2 + v.iter().map(|x| x.len() + 2).sum::<usize>(),
            );
            line.extend(std::iter::repeat_n(' ', indent * 2));
            line.push_str(name);
            line.push_str(": ");
            for (k, x) in v.iter().enumerate() {
                if k > 0 {
                    line.push_str(", ");
                }
                line.push_str(x);
            }
            self.lines.push(line);
        }
    }

    fn removed(&mut self, indent: usize, name: &str, v: Option<f64>) {
        if let Some(v) = v.filter(|v| *v > 0.0) {
            self.push(indent, format!("{name}: {}", int(v)));
        }
    }

    fn node(&mut self, id: usize, mut indent: usize) {
        let plan = self.plan;
        let n = &plan.nodes[id];
        let f = &n.fields;
        let mut head = String::new();
        if let Some(name) = &f.subplan_name {
            self.push(indent, name);
            indent += 1;
        }
        if indent > 0 {
            head.push_str(&pad(indent));
            head.push_str("->  ");
            indent += 2;
        }
        head.push_str(&node_title(n, self.o.verbose));
        if self.o.shows_costs() {
            let _ = write!(
                head,
                "  (cost={}..{} rows={} width={})",
                Fixed(f.startup_cost.unwrap_or(0.0), 2),
                Fixed(f.total_cost.unwrap_or(0.0), 2),
                int(f.plan_rows.unwrap_or(0.0)),
                int(f.plan_width.unwrap_or(0.0)),
            );
        }
        if self.o.analyze {
            match f.actual_loops {
                Some(l) if l <= 0.0 => head.push_str(" (never executed)"),
                Some(l) if self.o.shows_timing() => {
                    let _ = write!(
                        head,
                        " (actual time={}..{} rows={} loops={})",
                        Fixed(f.actual_startup_time.unwrap_or(0.0), 3),
                        Fixed(f.actual_total_time.unwrap_or(0.0), 3),
                        int(f.actual_rows.unwrap_or(0.0)),
                        int(l)
                    );
                }
                Some(l) => {
                    let _ = write!(
                        head,
                        " (actual rows={} loops={})",
                        int(f.actual_rows.unwrap_or(0.0)),
                        int(l)
                    );
                }
                None => {}
            }
        }
        self.lines.push(head);
        indent += 1;
        let i = indent;
        if self.o.verbose {
            self.list(i, "Output", &f.output);
            if f.inner_unique == Some(true) {
                self.push(i, "Inner Unique: true");
            }
        }
        self.details(n, i);
        if self.o.shows_buffers() {
            self.buffers(i, &f.buffers);
        }
        if let Some(w) = wal_line(f.wal_records, f.wal_fpi, f.wal_bytes) {
            self.push(i, w);
        }
        self.workers(n, i);
        if let Some(r) = f.subplans_removed.filter(|r| *r > 0.0) {
            self.push(i, format!("Subplans Removed: {}", int(r)));
        }
        // Children draw their arrows at this node's property indent.
        for &c in &n.children {
            self.node(c, i);
        }
    }

    fn details(&mut self, n: &Node, i: usize) {
        let f = &n.fields;
        let analyze = self.o.analyze && !n.never_executed();
        match f.node_type.as_str() {
            "Index Scan" | "Index Only Scan" => {
                self.prop(i, "Index Cond", &f.index_cond);
                self.removed(
                    i,
                    "Rows Removed by Index Recheck",
                    f.rows_removed_by_index_recheck,
                );
                self.prop(i, "Order By", &f.order_by);
                self.prop(i, "Filter", &f.filter);
                self.removed(i, "Rows Removed by Filter", f.rows_removed_by_filter);
                if f.node_type == "Index Only Scan"
                    && analyze
                    && let Some(h) = f.heap_fetches
                {
                    self.push(i, format!("Heap Fetches: {}", int(h)));
                }
            }
            "Bitmap Index Scan" => self.prop(i, "Index Cond", &f.index_cond),
            "Bitmap Heap Scan" => {
                self.prop(i, "Recheck Cond", &f.recheck_cond);
                self.removed(
                    i,
                    "Rows Removed by Index Recheck",
                    f.rows_removed_by_index_recheck,
                );
                self.prop(i, "Filter", &f.filter);
                self.removed(i, "Rows Removed by Filter", f.rows_removed_by_filter);
                let exact = f.exact_heap_blocks.unwrap_or(0.0);
                let lossy = f.lossy_heap_blocks.unwrap_or(0.0);
                if analyze && (exact > 0.0 || lossy > 0.0) {
                    let mut s = String::from("Heap Blocks:");
                    if exact > 0.0 {
                        let _ = write!(s, " exact={}", int(exact));
                    }
                    if lossy > 0.0 {
                        let _ = write!(s, " lossy={}", int(lossy));
                    }
                    self.push(i, s);
                }
            }
            "Gather" | "Gather Merge" => {
                self.prop(i, "Filter", &f.filter);
                self.removed(i, "Rows Removed by Filter", f.rows_removed_by_filter);
                if let Some(w) = f.workers_planned {
                    self.push(i, format!("Workers Planned: {}", int(w)));
                }
                self.list(i, "Params Evaluated", &f.params_evaluated);
                if let Some(w) = f.workers_launched.filter(|_| analyze) {
                    self.push(i, format!("Workers Launched: {}", int(w)));
                }
                if f.single_copy == Some(true) {
                    self.push(i, "Single Copy: true");
                }
            }
            "Tid Scan" | "Tid Range Scan" => {
                self.prop(i, "TID Cond", &f.tid_cond);
                self.prop(i, "Filter", &f.filter);
                self.removed(i, "Rows Removed by Filter", f.rows_removed_by_filter);
            }
            "Nested Loop" | "Merge Join" | "Hash Join" => {
                self.prop(i, "Merge Cond", &f.merge_cond);
                self.prop(i, "Hash Cond", &f.hash_cond);
                self.prop(i, "Join Filter", &f.join_filter);
                self.removed(
                    i,
                    "Rows Removed by Join Filter",
                    f.rows_removed_by_join_filter,
                );
                self.prop(i, "Filter", &f.filter);
                self.removed(i, "Rows Removed by Filter", f.rows_removed_by_filter);
            }
            "Aggregate" | "Group" => {
                if f.grouping_sets.is_empty() {
                    self.list(i, "Group Key", &f.group_key);
                } else {
                    self.grouping_sets(n, i);
                }
                self.prop(i, "Filter", &f.filter);
                self.removed(i, "Rows Removed by Filter", f.rows_removed_by_filter);
                if f.node_type == "Aggregate" {
                    self.hashagg(n, i);
                }
            }
            "Sort" | "Incremental Sort" => {
                self.list(i, "Sort Key", &f.sort_key);
                self.list(i, "Presorted Key", &f.presorted_key);
                if let (Some(m), Some(t), Some(u)) =
                    (&f.sort_method, &f.sort_space_type, f.sort_space_used)
                {
                    self.push(i, format!("Sort Method: {m}  {t}: {}kB", int(u)));
                }
                if let Some(full) = f.full_sort_groups.as_ref().filter(|_| analyze) {
                    self.push(i, sort_groups_line("Full-sort", full));
                    if let Some(pre) = &f.pre_sorted_groups {
                        self.push(i, sort_groups_line("Pre-sorted", pre));
                    }
                }
            }
            "Merge Append" => self.list(i, "Sort Key", &f.sort_key),
            "WindowAgg" => {
                self.prop(i, "Filter", &f.filter);
                self.removed(i, "Rows Removed by Filter", f.rows_removed_by_filter);
                self.prop(i, "Run Condition", &f.run_condition);
            }
            "ModifyTable" => self.modify_table(n, i),
            "Result" => {
                self.prop(i, "One-Time Filter", &f.one_time_filter);
                self.prop(i, "Filter", &f.filter);
                self.removed(i, "Rows Removed by Filter", f.rows_removed_by_filter);
            }
            "Hash" => {
                if let (Some(b), Some(nb)) = (f.hash_buckets, f.hash_batches) {
                    let ob = f.original_hash_buckets.unwrap_or(b);
                    let onb = f.original_hash_batches.unwrap_or(nb);
                    let mem = int(f.peak_memory_usage.unwrap_or(0.0));
                    if nb > 0.0 {
                        if ob != b || onb != nb {
                            self.push(i, format!(
                                "Buckets: {} (originally {})  Batches: {} (originally {})  Memory Usage: {mem}kB",
                                int(b), int(ob), int(nb), int(onb)
                            ));
                        } else {
                            self.push(
                                i,
                                format!(
                                    "Buckets: {}  Batches: {}  Memory Usage: {mem}kB",
                                    int(b),
                                    int(nb)
                                ),
                            );
                        }
                    }
                }
            }
            "Memoize" => {
                self.prop(i, "Cache Key", &f.cache_key);
                self.prop(i, "Cache Mode", &f.cache_mode);
                if let (true, Some(h), Some(m)) = (analyze, f.cache_hits, f.cache_misses) {
                    self.push(
                        i,
                        format!(
                            "Hits: {}  Misses: {}  Evictions: {}  Overflows: {}  Memory Usage: {}kB",
                            int(h),
                            int(m),
                            int(f.cache_evictions.unwrap_or(0.0)),
                            int(f.cache_overflows.unwrap_or(0.0)),
                            int(f.peak_memory_usage.unwrap_or(0.0))
                        ),
                    );
                }
            }
            "Sample Scan" => {
                if let Some(sampling) = sampling(f) {
                    self.push(i, format!("Sampling: {sampling}"));
                }
                self.prop(i, "Filter", &f.filter);
                self.removed(i, "Rows Removed by Filter", f.rows_removed_by_filter);
            }
            "Function Scan" | "Table Function Scan" => {
                if self.o.verbose {
                    self.prop(i, "Function Call", &f.function_call);
                    self.prop(i, "Table Function Call", &f.table_function_call);
                }
                self.prop(i, "Filter", &f.filter);
                self.removed(i, "Rows Removed by Filter", f.rows_removed_by_filter);
            }
            _ => {
                self.prop(i, "Filter", &f.filter);
                self.removed(i, "Rows Removed by Filter", f.rows_removed_by_filter);
            }
        }
    }

    /// Per-worker lines (`Worker 0:  Sort Method: ...`), printed after the
    /// node's own properties, as PostgreSQL flushes them.
    fn workers(&mut self, n: &Node, i: usize) {
        let f = &n.fields;
        let hashed = matches!(f.strategy.as_deref(), Some("Hashed" | "Mixed"));
        for w in &f.workers {
            // Under VERBOSE the worker's own timing and buffers come first.
            let mut lines = Vec::new();
            if self.o.verbose {
                if let Some(l) = w.actual_loops {
                    if self.o.shows_timing() {
                        lines.push(format!(
                            "actual time={}..{} rows={} loops={}",
                            Fixed(w.actual_startup_time.unwrap_or(0.0), 3),
                            Fixed(w.actual_total_time.unwrap_or(0.0), 3),
                            int(w.actual_rows.unwrap_or(0.0)),
                            int(l)
                        ));
                    } else {
                        lines.push(format!(
                            "actual rows={} loops={}",
                            int(w.actual_rows.unwrap_or(0.0)),
                            int(l)
                        ));
                    }
                }
                if self.o.shows_buffers() {
                    lines.extend(buffers_line(&w.buffers));
                    lines.extend(io_timings_line(&w.buffers));
                }
                lines.extend(wal_line(w.wal_records, w.wal_fpi, w.wal_bytes));
            }
            if let (Some(m), Some(t), Some(u)) =
                (&w.sort_method, &w.sort_space_type, w.sort_space_used)
            {
                lines.push(format!("Sort Method: {m}  {t}: {}kB", int(u)));
            }
            if let (true, Some(b)) = (hashed, w.hashagg_batches) {
                let mut s = format!(
                    "Batches: {}  Memory Usage: {}kB",
                    int(b),
                    int(w.peak_memory_usage.unwrap_or(0.0))
                );
                if b > 1.0 {
                    let _ = write!(s, "  Disk Usage: {}kB", int(w.disk_usage.unwrap_or(0.0)));
                }
                lines.push(s);
            }
            if let (Some(h), Some(m)) = (w.cache_hits, w.cache_misses) {
                lines.push(format!(
                    "Hits: {}  Misses: {}  Evictions: {}  Overflows: {}  Memory Usage: {}kB",
                    int(h),
                    int(m),
                    int(w.cache_evictions.unwrap_or(0.0)),
                    int(w.cache_overflows.unwrap_or(0.0)),
                    int(w.peak_memory_usage.unwrap_or(0.0))
                ));
            }
            let mut lines = lines.into_iter();
            if let Some(first) = lines.next() {
                let num = int(w.number.unwrap_or(0.0));
                self.push(i, format!("Worker {num}:  {first}"));
                for rest in lines {
                    self.push(i + 1, rest);
                }
            }
        }
    }

    /// `show_modifytable_info`: each target table when there are several,
    /// then ON CONFLICT details.
    fn modify_table(&mut self, n: &Node, i: usize) {
        let f = &n.fields;
        let op = f.operation.as_deref().unwrap_or("ModifyTable");
        for t in &f.target_tables {
            let mut line = op.to_string();
            target_rel(
                &mut line,
                t.relation_name.as_ref(),
                t.schema.as_ref(),
                t.alias.as_ref(),
                self.o.verbose,
            );
            self.push(i, line);
        }
        self.prop(i, "Conflict Resolution", &f.conflict_resolution);
        self.list(i, "Conflict Arbiter Indexes", &f.conflict_arbiter_indexes);
        self.prop(i, "Conflict Filter", &f.conflict_filter);
        self.removed(
            i,
            "Rows Removed by Conflict Filter",
            f.rows_removed_by_conflict_filter,
        );
        if self.o.analyze && f.conflict_resolution.is_some() {
            if let Some(t) = f.tuples_inserted {
                self.push(i, format!("Tuples Inserted: {}", int(t)));
            }
            if let Some(t) = f.conflicting_tuples {
                self.push(i, format!("Conflicting Tuples: {}", int(t)));
            }
        } else if self.o.analyze && op == "Merge" {
            // One line of the source rows' outcomes, the non-zero ones, once
            // any source row came (PostgreSQL 15's show_modifytable_info).
            let counts = [
                ("inserted", f.tuples_inserted),
                ("updated", f.tuples_updated),
                ("deleted", f.tuples_deleted),
                ("skipped", f.tuples_skipped),
            ];
            if counts.iter().map(|(_, v)| v.unwrap_or(0.0)).sum::<f64>() > 0.0 {
                let mut line = String::from("Tuples:");
                for (name, v) in counts {
                    if let Some(v) = v.filter(|v| *v > 0.0) {
                        let _ = write!(line, " {name}={}", int(v));
                    }
                }
                self.push(i, line);
            }
        }
    }

    /// `show_grouping_set_keys` for each pass: its Sort Key, then one
    /// `Group Key` (or `Hash Key`) line per set, `()` for the empty set,
    /// one level further in under a Sort Key.
    fn grouping_sets(&mut self, n: &Node, i: usize) {
        for set in &n.fields.grouping_sets {
            let mut at = i;
            if let Some(sort) = &set.sort_key {
                self.push(i, format!("Sort Key: {}", sort.join(", ")));
                at += 1;
            }
            let (name, keys) = match (&set.hash_keys, &set.group_keys) {
                (Some(keys), _) => ("Hash Key", keys),
                (None, Some(keys)) => ("Group Key", keys),
                (None, None) => continue,
            };
            for key in keys {
                if key.is_empty() {
                    self.push(at, format!("{name}: ()"));
                } else {
                    self.push(at, format!("{name}: {}", key.join(", ")));
                }
            }
        }
    }

    fn hashagg(&mut self, n: &Node, i: usize) {
        let f = &n.fields;
        if !matches!(f.strategy.as_deref(), Some("Hashed" | "Mixed")) {
            return;
        }
        let mut s = String::new();
        if let Some(p) = f
            .planned_partitions
            .filter(|p| *p > 0.0 && self.o.shows_costs())
        {
            let _ = write!(s, "Planned Partitions: {}", int(p));
        }
        if self.o.analyze
            && !n.never_executed()
            && let Some(b) = f.hashagg_batches
        {
            if !s.is_empty() {
                s.push_str("  ");
            }
            let _ = write!(
                s,
                "Batches: {}  Memory Usage: {}kB",
                int(b),
                int(f.peak_memory_usage.unwrap_or(0.0))
            );
            if b > 1.0 {
                let _ = write!(s, "  Disk Usage: {}kB", int(f.disk_usage.unwrap_or(0.0)));
            }
        }
        if !s.is_empty() {
            self.push(i, s);
        }
    }

    fn buffers(&mut self, i: usize, b: &Buffers) {
        if let Some(line) = buffers_line(b) {
            self.push(i, line);
        }
        if let Some(line) = io_timings_line(b) {
            self.push(i, line);
        }
    }

    fn summary(&mut self) {
        let plan = self.plan;
        if !plan.settings.is_empty() {
            let list: Vec<String> = plan
                .settings
                .iter()
                .map(|(k, v)| format!("{k} = '{v}'"))
                .collect();
            self.push(0, format!("Settings: {}", list.join(", ")));
        }
        if let Some(q) = plan.query_identifier.filter(|_| self.o.verbose) {
            self.push(0, format!("Query Identifier: {q}"));
        }
        if let Some(b) = plan
            .planning_buffers
            .as_ref()
            .filter(|b| b.any() || b.any_timing())
            && self.o.shows_buffers()
        {
            self.push(0, "Planning:");
            self.buffers(1, b);
        }
        if let Some(t) = plan.planning_time {
            self.push(0, format!("Planning Time: {t:.3} ms"));
        }
        let show_relname = triggers_name_relation(plan);
        for t in &plan.triggers {
            let mut line = String::from("Trigger");
            if let Some(n) = t
                .name
                .as_ref()
                .filter(|_| self.o.verbose || t.constraint.is_none())
            {
                let _ = write!(line, " {n}");
            }
            if let Some(c) = &t.constraint {
                let _ = write!(line, " for constraint {c}");
            }
            if let Some(r) = t.relation.as_ref().filter(|_| show_relname) {
                let _ = write!(line, " on {r}");
            }
            match t.time {
                Some(time) => {
                    let _ = write!(
                        line,
                        ": time={time:.3} calls={}",
                        int(t.calls.unwrap_or(0.0))
                    );
                }
                None => {
                    let _ = write!(line, ": calls={}", int(t.calls.unwrap_or(0.0)));
                }
            }
            self.push(0, line);
        }
        if let Some(jit) = &plan.jit {
            self.push(0, "JIT:");
            if let Some(n) = jit.functions {
                self.push(1, format!("Functions: {}", int(n)));
            }
            if let Some(o) = &jit.options {
                self.push(
                    1,
                    format!(
                        "Options: Inlining {}, Optimization {}, Expressions {}, Deforming {}",
                        o.inlining, o.optimization, o.expressions, o.deforming
                    ),
                );
            }
            if let Some(t) = &jit.timing {
                self.push(
                    1,
                    format!(
                        "Timing: Generation {:.3} ms, Inlining {:.3} ms, Optimization {:.3} ms, Emission {:.3} ms, Total {:.3} ms",
                        t.generation, t.inlining, t.optimization, t.emission, t.total
                    ),
                );
            }
        }
        if let Some(t) = plan.execution_time {
            self.push(0, format!("Execution Time: {t:.3} ms"));
        }
    }
}

/// Whether psql names each trigger's table: when the statement wrote to
/// several tables, routed rows to partitions or fired triggers on tables it
/// did not write (PostgreSQL knows; the JSON tells it only this way).
fn triggers_name_relation(plan: &Plan) -> bool {
    let targets: Vec<&str> = plan
        .nodes
        .iter()
        .filter(|n| n.fields.node_type == "ModifyTable")
        .filter_map(|n| n.fields.relation_name.as_deref())
        .collect();
    let several = plan
        .nodes
        .iter()
        .any(|n| n.fields.node_type == "ModifyTable" && n.fields.target_tables.len() > 1)
        || targets.len() > 1;
    several
        || plan
            .triggers
            .iter()
            .any(|t| t.relation.as_deref().is_some_and(|r| !targets.contains(&r)))
}

/// `Full-sort Groups: 4  Sort Method: quicksort  Average Memory: 26kB  Peak Memory: 26kB`.
fn sort_groups_line(label: &str, g: &super::model::SortGroups) -> String {
    let mut s = format!(
        "{label} Groups: {}  Sort Method{} {}",
        int(g.group_count),
        if g.sort_methods.len() > 1 { "s:" } else { ":" },
        g.sort_methods.join(", ")
    );
    for (name, space) in [("Memory", &g.memory), ("Disk", &g.disk)] {
        if let Some(sp) = space.as_ref().filter(|sp| sp.peak > 0.0) {
            let _ = write!(
                s,
                "  Average {name}: {}kB  Peak {name}: {}kB",
                int(sp.average),
                int(sp.peak)
            );
        }
    }
    s
}

/// psql's `WAL: records=1 fpi=0 bytes=2` line (positive counters only).
fn wal_line(records: Option<f64>, fpi: Option<f64>, bytes: Option<f64>) -> Option<String> {
    let shown: Vec<String> = [("records", records), ("fpi", fpi), ("bytes", bytes)]
        .iter()
        .filter_map(|(k, v)| v.filter(|v| *v > 0.0).map(|v| format!(" {k}={}", int(v))))
        .collect();
    (!shown.is_empty()).then(|| format!("WAL:{}", shown.concat()))
}

/// psql's `I/O Timings: read=0.123 write=0.456` line (`track_io_timing`).
/// A Sample Scan's method and arguments as psql shows them after
/// `Sampling: `: `system ('1'::real) REPEATABLE ('42'::double precision)`.
pub fn sampling(f: &super::model::NodeFields) -> Option<String> {
    let method = f.sampling_method.as_ref()?;
    let params = f.sampling_parameters.as_deref().unwrap_or_default();
    let mut s = format!("{method} ({})", params.join(", "));
    if let Some(seed) = &f.repeatable_seed {
        let _ = write!(s, " REPEATABLE ({seed})");
    }
    Some(s)
}

pub fn io_timings_line(b: &Buffers) -> Option<String> {
    if !b.any_timing() {
        return None;
    }
    let mut s = String::from("I/O Timings:");
    if let Some(r) = b.io_read_time.filter(|r| *r > 0.0) {
        let _ = write!(s, " read={r:.3}");
    }
    if let Some(w) = b.io_write_time.filter(|w| *w > 0.0) {
        let _ = write!(s, " write={w:.3}");
    }
    Some(s)
}

/// psql's `Buffers: shared hit=1 read=2, temp read=3 written=4` line, or
/// `None` when every counter is zero.
pub fn buffers_line(b: &Buffers) -> Option<String> {
    let groups = [
        (
            "shared",
            [
                ("hit", b.shared_hit),
                ("read", b.shared_read),
                ("dirtied", b.shared_dirtied),
                ("written", b.shared_written),
            ],
        ),
        (
            "local",
            [
                ("hit", b.local_hit),
                ("read", b.local_read),
                ("dirtied", b.local_dirtied),
                ("written", b.local_written),
            ],
        ),
        (
            "temp",
            [
                ("read", b.temp_read),
                ("written", b.temp_written),
                ("", None),
                ("", None),
            ],
        ),
    ];
    let parts: Vec<String> = groups
        .iter()
        .filter_map(|(name, counters)| {
            let shown: Vec<String> = counters
                .iter()
                .filter_map(|(k, v)| v.filter(|v| *v > 0.0).map(|v| format!(" {k}={}", int(v))))
                .collect();
            (!shown.is_empty()).then(|| format!(" {name}{}", shown.concat()))
        })
        .collect();
    (!parts.is_empty()).then(|| format!("Buffers:{}", parts.join(",")))
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use crate::explain::statement::parse_explain;

    #[test]
    fn fast_number_formatting_prints_what_printf_prints() {
        // Values as EXPLAIN writes them, and values near rounding boundaries,
        // huge, tiny and negative ones, against Rust's exact formatting.
        let mut values = vec![
            0.0,
            -0.0,
            0.005,
            0.0049999,
            0.0050001,
            0.015,
            1.005,
            2.675,
            0.5,
            1.5,
            2.5,
            1e14,
            1e15,
            1e16,
            123456789.125,
            9.9995,
            9.9994999,
            -1.25,
            -0.001,
            f64::MAX,
            1e-300,
        ];
        let mut x: u64 = 0x9e37_79b9_7f4a_7c15;
        for _ in 0..20_000 {
            // xorshift: repeatable pseudo-random decimals of 0..=4 places.
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            let places = (x % 5) as i32;
            let mantissa = (x >> 8) % 10_000_000_000;
            values.push(mantissa as f64 / 10f64.powi(places));
        }
        for v in values {
            for digits in 0..=3 {
                assert_eq!(
                    Fixed(v, digits).to_string(),
                    format!("{v:.digits$}"),
                    "{v} with {digits} decimals"
                );
            }
            assert_eq!(int(v), format!("{v:.0}"), "{v} as a count");
        }
    }

    #[test]
    fn renders_the_lab_plan_like_psql() {
        let json = include_str!("../../tests/fixtures/plans/lab_seq_scan_analyze.json");
        let plan = Plan::parse(json).unwrap();
        let req = parse_explain("explain (analyze, buffers) select 1").unwrap();
        let lines = render_text(&plan, &req.options);
        assert_eq!(
            lines,
            [
                "Limit  (cost=2801.41..2801.46 rows=20 width=33) (actual time=14.534..14.539 rows=20 loops=1)",
                "  Buffers: shared hit=1124",
                "  ->  Sort  (cost=2801.41..2818.07 rows=6667 width=33) (actual time=14.533..14.535 rows=20 loops=1)",
                "        Sort Key: created_at DESC",
                "        Sort Method: top-N heapsort  Memory: 28kB",
                "        Buffers: shared hit=1124",
                "        ->  Seq Scan on tasks  (cost=0.00..2624.00 rows=6667 width=33) (actual time=0.006..13.313 rows=6667 loops=1)",
                "              Filter: ((status = 'todo'::text) AND (priority = 'high'::text))",
                "              Rows Removed by Filter: 93333",
                "              Buffers: shared hit=1124",
                "Planning Time: 0.064 ms",
                "Execution Time: 14.560 ms",
            ]
        );
    }

    #[test]
    fn buffers_line_shows_only_positive_counters() {
        let b = Buffers {
            shared_hit: Some(3.0),
            shared_read: Some(0.0),
            temp_written: Some(7.0),
            ..Default::default()
        };
        assert_eq!(
            buffers_line(&b).unwrap(),
            "Buffers: shared hit=3, temp written=7"
        );
        assert_eq!(buffers_line(&Buffers::default()), None);
    }

    #[test]
    fn titles() {
        let p = Plan::parse(
            r#"[{"Plan": {"Node Type": "Hash Join", "Join Type": "Left", "Plans": [
            {"Node Type": "Aggregate", "Strategy": "Hashed", "Partial Mode": "Partial"},
            {"Node Type": "Index Scan", "Scan Direction": "Backward", "Index Name": "Idx", "Relation Name": "tasks", "Alias": "t"},
            {"Node Type": "Nested Loop", "Join Type": "Inner"},
            {"Node Type": "Seq Scan", "Parallel Aware": true, "Relation Name": "tasks", "Alias": "tasks", "Schema": "public"}]}}]"#,
        )
        .unwrap();
        let t: Vec<String> = p.nodes.iter().map(|n| node_title(n, false)).collect();
        assert_eq!(
            t,
            [
                "Hash Left Join",
                "Partial HashAggregate",
                "Index Scan Backward using \"Idx\" on tasks t",
                "Nested Loop",
                "Parallel Seq Scan on tasks"
            ]
        );
        assert_eq!(
            node_title(&p.nodes[4], true),
            "Parallel Seq Scan on public.tasks"
        );
    }
}
