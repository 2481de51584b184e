//! The plan model: PostgreSQL's `EXPLAIN (FORMAT JSON)` output parsed with
//! serde into a flat, pre-ordered list of nodes (index = node id, root = 0).
//! Every field is optional and unknown keys are ignored, so a newer server's
//! plan or a hand-made one parses; malformed JSON is a [`PlanError`].

use serde::Deserialize;
use serde_json::value::RawValue;

/// Why a plan could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("the plan is not valid EXPLAIN JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the EXPLAIN JSON holds no plan")]
    Empty,
}

/// Buffer counters (blocks of 8 kB) of a node or of planning.
#[derive(Clone, Debug, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Buffers {
    #[serde(rename = "Shared Hit Blocks")]
    pub shared_hit: Option<f64>,
    #[serde(rename = "Shared Read Blocks")]
    pub shared_read: Option<f64>,
    #[serde(rename = "Shared Dirtied Blocks")]
    pub shared_dirtied: Option<f64>,
    #[serde(rename = "Shared Written Blocks")]
    pub shared_written: Option<f64>,
    #[serde(rename = "Local Hit Blocks")]
    pub local_hit: Option<f64>,
    #[serde(rename = "Local Read Blocks")]
    pub local_read: Option<f64>,
    #[serde(rename = "Local Dirtied Blocks")]
    pub local_dirtied: Option<f64>,
    #[serde(rename = "Local Written Blocks")]
    pub local_written: Option<f64>,
    #[serde(rename = "Temp Read Blocks")]
    pub temp_read: Option<f64>,
    #[serde(rename = "Temp Written Blocks")]
    pub temp_written: Option<f64>,
}

impl Buffers {
    /// Whether any counter was reported (the plan ran with BUFFERS).
    pub fn present(&self) -> bool {
        self.shared_hit.is_some() || self.temp_read.is_some()
    }
    /// Whether any counter is above zero (psql prints the line only then).
    pub fn any(&self) -> bool {
        [
            self.shared_hit,
            self.shared_read,
            self.shared_dirtied,
            self.shared_written,
            self.local_hit,
            self.local_read,
            self.local_dirtied,
            self.local_written,
            self.temp_read,
            self.temp_written,
        ]
        .iter()
        .any(|v| v.unwrap_or(0.0) > 0.0)
    }
}

/// One plan node's own fields, as PostgreSQL names them (children apart).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct NodeFields {
    #[serde(rename = "Node Type")]
    pub node_type: String,
    #[serde(rename = "Parent Relationship")]
    pub parent_relationship: Option<String>,
    #[serde(rename = "Subplan Name")]
    pub subplan_name: Option<String>,
    #[serde(rename = "Parallel Aware")]
    pub parallel_aware: bool,
    #[serde(rename = "Async Capable")]
    pub async_capable: bool,
    #[serde(rename = "Relation Name")]
    pub relation_name: Option<String>,
    #[serde(rename = "Schema")]
    pub schema: Option<String>,
    #[serde(rename = "Alias")]
    pub alias: Option<String>,
    #[serde(rename = "CTE Name")]
    pub cte_name: Option<String>,
    #[serde(rename = "Function Name")]
    pub function_name: Option<String>,
    #[serde(rename = "Index Name")]
    pub index_name: Option<String>,
    #[serde(rename = "Scan Direction")]
    pub scan_direction: Option<String>,
    #[serde(rename = "Join Type")]
    pub join_type: Option<String>,
    #[serde(rename = "Strategy")]
    pub strategy: Option<String>,
    #[serde(rename = "Partial Mode")]
    pub partial_mode: Option<String>,
    #[serde(rename = "Operation")]
    pub operation: Option<String>,
    #[serde(rename = "Command")]
    pub command: Option<String>,
    #[serde(rename = "Custom Plan Provider")]
    pub custom_plan_provider: Option<String>,
    #[serde(rename = "Startup Cost")]
    pub startup_cost: Option<f64>,
    #[serde(rename = "Total Cost")]
    pub total_cost: Option<f64>,
    #[serde(rename = "Plan Rows")]
    pub plan_rows: Option<f64>,
    #[serde(rename = "Plan Width")]
    pub plan_width: Option<f64>,
    #[serde(rename = "Actual Startup Time")]
    pub actual_startup_time: Option<f64>,
    #[serde(rename = "Actual Total Time")]
    pub actual_total_time: Option<f64>,
    #[serde(rename = "Actual Rows")]
    pub actual_rows: Option<f64>,
    #[serde(rename = "Actual Loops")]
    pub actual_loops: Option<f64>,
    #[serde(rename = "Inner Unique")]
    pub inner_unique: Option<bool>,
    #[serde(rename = "Function Call")]
    pub function_call: Option<String>,
    #[serde(rename = "Table Function Call")]
    pub table_function_call: Option<String>,
    #[serde(rename = "Output")]
    pub output: Option<Vec<String>>,
    #[serde(rename = "Filter")]
    pub filter: Option<String>,
    #[serde(rename = "Rows Removed by Filter")]
    pub rows_removed_by_filter: Option<f64>,
    #[serde(rename = "Index Cond")]
    pub index_cond: Option<String>,
    #[serde(rename = "Recheck Cond")]
    pub recheck_cond: Option<String>,
    #[serde(rename = "Rows Removed by Index Recheck")]
    pub rows_removed_by_index_recheck: Option<f64>,
    #[serde(rename = "Order By")]
    pub order_by: Option<String>,
    #[serde(rename = "TID Cond")]
    pub tid_cond: Option<String>,
    #[serde(rename = "Join Filter")]
    pub join_filter: Option<String>,
    #[serde(rename = "Rows Removed by Join Filter")]
    pub rows_removed_by_join_filter: Option<f64>,
    #[serde(rename = "Hash Cond")]
    pub hash_cond: Option<String>,
    #[serde(rename = "Merge Cond")]
    pub merge_cond: Option<String>,
    #[serde(rename = "One-Time Filter")]
    pub one_time_filter: Option<String>,
    #[serde(rename = "Sort Key")]
    pub sort_key: Option<Vec<String>>,
    #[serde(rename = "Presorted Key")]
    pub presorted_key: Option<Vec<String>>,
    #[serde(rename = "Group Key")]
    pub group_key: Option<Vec<String>>,
    #[serde(rename = "Sort Method")]
    pub sort_method: Option<String>,
    #[serde(rename = "Sort Space Used")]
    pub sort_space_used: Option<f64>,
    #[serde(rename = "Sort Space Type")]
    pub sort_space_type: Option<String>,
    #[serde(rename = "Hash Buckets")]
    pub hash_buckets: Option<f64>,
    #[serde(rename = "Original Hash Buckets")]
    pub original_hash_buckets: Option<f64>,
    #[serde(rename = "Hash Batches")]
    pub hash_batches: Option<f64>,
    #[serde(rename = "Original Hash Batches")]
    pub original_hash_batches: Option<f64>,
    #[serde(rename = "Peak Memory Usage")]
    pub peak_memory_usage: Option<f64>,
    #[serde(rename = "Planned Partitions")]
    pub planned_partitions: Option<f64>,
    #[serde(rename = "HashAgg Batches")]
    pub hashagg_batches: Option<f64>,
    #[serde(rename = "Disk Usage")]
    pub disk_usage: Option<f64>,
    #[serde(rename = "Heap Fetches")]
    pub heap_fetches: Option<f64>,
    #[serde(rename = "Exact Heap Blocks")]
    pub exact_heap_blocks: Option<f64>,
    #[serde(rename = "Lossy Heap Blocks")]
    pub lossy_heap_blocks: Option<f64>,
    #[serde(rename = "Workers Planned")]
    pub workers_planned: Option<f64>,
    #[serde(rename = "Workers Launched")]
    pub workers_launched: Option<f64>,
    #[serde(rename = "Params Evaluated")]
    pub params_evaluated: Option<Vec<String>>,
    #[serde(rename = "Workers")]
    pub workers: Vec<WorkerFields>,
    #[serde(rename = "Single Copy")]
    pub single_copy: Option<bool>,
    #[serde(rename = "Cache Key")]
    pub cache_key: Option<String>,
    #[serde(rename = "Cache Mode")]
    pub cache_mode: Option<String>,
    #[serde(rename = "Cache Hits")]
    pub cache_hits: Option<f64>,
    #[serde(rename = "Cache Misses")]
    pub cache_misses: Option<f64>,
    #[serde(rename = "Cache Evictions")]
    pub cache_evictions: Option<f64>,
    #[serde(rename = "Cache Overflows")]
    pub cache_overflows: Option<f64>,
    #[serde(rename = "WAL Records")]
    pub wal_records: Option<f64>,
    #[serde(rename = "WAL FPI")]
    pub wal_fpi: Option<f64>,
    #[serde(rename = "WAL Bytes")]
    pub wal_bytes: Option<f64>,
    /// Buffer counters (filled from the flat JSON keys below after parsing;
    /// serde's `flatten` would make parsing several times slower).
    #[serde(skip)]
    pub buffers: Buffers,
    #[serde(rename = "Shared Hit Blocks")]
    shared_hit: Option<f64>,
    #[serde(rename = "Shared Read Blocks")]
    shared_read: Option<f64>,
    #[serde(rename = "Shared Dirtied Blocks")]
    shared_dirtied: Option<f64>,
    #[serde(rename = "Shared Written Blocks")]
    shared_written: Option<f64>,
    #[serde(rename = "Local Hit Blocks")]
    local_hit: Option<f64>,
    #[serde(rename = "Local Read Blocks")]
    local_read: Option<f64>,
    #[serde(rename = "Local Dirtied Blocks")]
    local_dirtied: Option<f64>,
    #[serde(rename = "Local Written Blocks")]
    local_written: Option<f64>,
    #[serde(rename = "Temp Read Blocks")]
    temp_read: Option<f64>,
    #[serde(rename = "Temp Written Blocks")]
    temp_written: Option<f64>,
}

/// One parallel worker's figures for a node (`Workers` array under ANALYZE).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct WorkerFields {
    #[serde(rename = "Worker Number")]
    pub number: Option<f64>,
    #[serde(rename = "Sort Method")]
    pub sort_method: Option<String>,
    #[serde(rename = "Sort Space Used")]
    pub sort_space_used: Option<f64>,
    #[serde(rename = "Sort Space Type")]
    pub sort_space_type: Option<String>,
    #[serde(rename = "HashAgg Batches")]
    pub hashagg_batches: Option<f64>,
    #[serde(rename = "Peak Memory Usage")]
    pub peak_memory_usage: Option<f64>,
    #[serde(rename = "Disk Usage")]
    pub disk_usage: Option<f64>,
    #[serde(rename = "Cache Hits")]
    pub cache_hits: Option<f64>,
    #[serde(rename = "Cache Misses")]
    pub cache_misses: Option<f64>,
    #[serde(rename = "Cache Evictions")]
    pub cache_evictions: Option<f64>,
    #[serde(rename = "Cache Overflows")]
    pub cache_overflows: Option<f64>,
    #[serde(rename = "Actual Startup Time")]
    pub actual_startup_time: Option<f64>,
    #[serde(rename = "Actual Total Time")]
    pub actual_total_time: Option<f64>,
    #[serde(rename = "Actual Rows")]
    pub actual_rows: Option<f64>,
    #[serde(rename = "Actual Loops")]
    pub actual_loops: Option<f64>,
    #[serde(skip)]
    pub buffers: Buffers,
    #[serde(rename = "Shared Hit Blocks")]
    shared_hit: Option<f64>,
    #[serde(rename = "Shared Read Blocks")]
    shared_read: Option<f64>,
    #[serde(rename = "Shared Dirtied Blocks")]
    shared_dirtied: Option<f64>,
    #[serde(rename = "Shared Written Blocks")]
    shared_written: Option<f64>,
    #[serde(rename = "Local Hit Blocks")]
    local_hit: Option<f64>,
    #[serde(rename = "Local Read Blocks")]
    local_read: Option<f64>,
    #[serde(rename = "Local Dirtied Blocks")]
    local_dirtied: Option<f64>,
    #[serde(rename = "Local Written Blocks")]
    local_written: Option<f64>,
    #[serde(rename = "Temp Read Blocks")]
    temp_read: Option<f64>,
    #[serde(rename = "Temp Written Blocks")]
    temp_written: Option<f64>,
}

/// Gathers flat buffer keys into a [`Buffers`].
macro_rules! take_buffers {
    ($f:expr) => {
        Buffers {
            shared_hit: $f.shared_hit,
            shared_read: $f.shared_read,
            shared_dirtied: $f.shared_dirtied,
            shared_written: $f.shared_written,
            local_hit: $f.local_hit,
            local_read: $f.local_read,
            local_dirtied: $f.local_dirtied,
            local_written: $f.local_written,
            temp_read: $f.temp_read,
            temp_written: $f.temp_written,
        }
    };
}

/// A trigger's time (ANALYZE of a statement that fired triggers).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Trigger {
    #[serde(rename = "Trigger Name")]
    pub name: Option<String>,
    #[serde(rename = "Constraint Name")]
    pub constraint: Option<String>,
    #[serde(rename = "Time")]
    pub time: Option<f64>,
    #[serde(rename = "Calls")]
    pub calls: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawDoc {
    #[serde(rename = "Planning")]
    planning: Option<Buffers>,
    #[serde(rename = "Planning Time")]
    planning_time: Option<f64>,
    #[serde(rename = "Execution Time")]
    execution_time: Option<f64>,
    #[serde(rename = "Triggers")]
    triggers: Vec<Trigger>,
    #[serde(rename = "Settings")]
    settings: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(rename = "JIT")]
    jit: Option<Jit>,
}

/// JIT compilation summary (plans above `jit_above_cost`).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Jit {
    #[serde(rename = "Functions")]
    pub functions: Option<f64>,
    #[serde(rename = "Options")]
    pub options: Option<JitOptions>,
    #[serde(rename = "Timing")]
    pub timing: Option<JitTiming>,
}

/// Which JIT steps ran.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct JitOptions {
    #[serde(rename = "Inlining")]
    pub inlining: bool,
    #[serde(rename = "Optimization")]
    pub optimization: bool,
    #[serde(rename = "Expressions")]
    pub expressions: bool,
    #[serde(rename = "Deforming")]
    pub deforming: bool,
}

/// JIT time per step, ms.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct JitTiming {
    #[serde(rename = "Generation")]
    pub generation: f64,
    #[serde(rename = "Inlining")]
    pub inlining: f64,
    #[serde(rename = "Optimization")]
    pub optimization: f64,
    #[serde(rename = "Emission")]
    pub emission: f64,
    #[serde(rename = "Total")]
    pub total: f64,
}

/// A node in the plan tree.
#[derive(Clone, Debug)]
pub struct Node {
    /// Position in pre-order (the order psql prints), also the HTML anchor.
    pub id: usize,
    pub parent: Option<usize>,
    pub children: Vec<usize>,
    /// 0 for the root.
    pub depth: usize,
    pub fields: NodeFields,
}

impl Node {
    /// Whether this node ran under ANALYZE (it has actual figures).
    pub fn analyzed(&self) -> bool {
        self.fields.actual_loops.is_some()
    }
    /// Whether ANALYZE ran but this node never did (loops = 0).
    pub fn never_executed(&self) -> bool {
        self.fields.actual_loops == Some(0.0)
    }
    /// The name of the CTE when this node is a CTE's subplan.
    pub fn cte_definition(&self) -> Option<&str> {
        self.fields.subplan_name.as_deref()?.strip_prefix("CTE ")
    }
}

/// A parsed plan.
#[derive(Clone, Debug)]
pub struct Plan {
    /// Pre-order; `nodes[0]` is the root.
    pub nodes: Vec<Node>,
    pub planning_time: Option<f64>,
    pub execution_time: Option<f64>,
    pub planning_buffers: Option<Buffers>,
    pub triggers: Vec<Trigger>,
    /// `SETTINGS` output, as (name, value).
    pub settings: Vec<(String, String)>,
    pub jit: Option<Jit>,
    /// The JSON text it was parsed from (shown as is for FORMAT JSON).
    pub source: String,
}

impl Plan {
    /// Parses `EXPLAIN (FORMAT JSON)` output: an array of one object, or the
    /// object alone. Never panics on odd input.
    pub fn parse(json: &str) -> Result<Self, PlanError> {
        // Each node is read on its own from its slice of the text: its fields
        // (children skipped), then its children as raw slices. No `Value`
        // tree is built, and nothing recurses per plan level, so a deep plan
        // is refused by serde_json's nesting limit, never a stack overflow.
        let doc: &RawValue = if json.trim_start().starts_with('[') {
            let docs: Vec<&RawValue> = serde_json::from_str(json)?;
            docs.into_iter().next().ok_or(PlanError::Empty)?
        } else {
            serde_json::from_str(json)?
        };
        let top: TopDoc<'_> = serde_json::from_str(doc.get())?;
        let root = top.plan.ok_or(PlanError::Empty)?;
        let doc: RawDoc = serde_json::from_str(doc.get())?;
        let nodes = flatten(root)?;
        let settings = doc
            .settings
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| {
                let v = match v {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                (k, v)
            })
            .collect();
        Ok(Self {
            nodes,
            planning_time: doc.planning_time,
            execution_time: doc.execution_time,
            planning_buffers: doc.planning,
            triggers: doc.triggers,
            settings,
            jit: doc.jit,
            source: json.to_string(),
        })
    }

    /// The root node.
    pub fn root(&self) -> &Node {
        &self.nodes[0]
    }

    /// Whether the plan was made with ANALYZE (it has actual figures).
    pub fn analyzed(&self) -> bool {
        self.root().analyzed()
    }
}

/// The plan's root, as a slice of the text.
#[derive(Deserialize)]
struct TopDoc<'a> {
    #[serde(borrow, rename = "Plan")]
    plan: Option<&'a RawValue>,
}

/// A node's children, as slices of the text.
#[derive(Deserialize)]
struct Kids<'a> {
    #[serde(borrow, rename = "Plans", default)]
    plans: Vec<&'a RawValue>,
}

/// The tree in pre-order, read with an explicit stack (no recursion).
fn flatten(root: &RawValue) -> Result<Vec<Node>, PlanError> {
    let mut out: Vec<Node> = Vec::new();
    let mut stack: Vec<(&RawValue, Option<usize>, usize)> = vec![(root, None, 0)];
    while let Some((raw, parent, depth)) = stack.pop() {
        let mut fields: NodeFields = serde_json::from_str(raw.get())?;
        let kids: Kids<'_> = serde_json::from_str(raw.get())?;
        fields.buffers = take_buffers!(fields);
        for w in &mut fields.workers {
            w.buffers = take_buffers!(w);
        }
        let id = out.len();
        if let Some(p) = parent {
            out[p].children.push(id);
        }
        out.push(Node {
            id,
            parent,
            children: Vec::new(),
            depth,
            fields,
        });
        for child in kids.plans.into_iter().rev() {
            stack.push((child, Some(id), depth + 1));
        }
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn parses_nested_nodes_in_pre_order() {
        let plan = Plan::parse(
            r#"[{"Plan": {"Node Type": "Limit", "Plans": [
                {"Node Type": "Sort", "Plans": [{"Node Type": "Seq Scan", "Relation Name": "t"}]},
                {"Node Type": "Result"}]}, "Planning Time": 0.1, "Extra Key": [1]}]"#,
        )
        .unwrap();
        let types: Vec<_> = plan
            .nodes
            .iter()
            .map(|n| n.fields.node_type.as_str())
            .collect();
        assert_eq!(types, ["Limit", "Sort", "Seq Scan", "Result"]);
        assert_eq!(plan.nodes[0].children, [1, 3]);
        assert_eq!(plan.nodes[2].depth, 2);
        assert_eq!(plan.planning_time, Some(0.1));
        assert!(!plan.analyzed());
    }

    #[test]
    fn malformed_input_is_an_error() {
        for bad in [
            "",
            "[]",
            "{}",
            "[1]",
            "null",
            "[{\"Plan\": 3}]",
            "[{\"Plan\": {\"Plan Rows\": \"x\"}}]",
            "[{\"Plan\": {\"Node Type\": \"Seq Scan\"",
        ] {
            assert!(Plan::parse(bad).is_err(), "{bad}");
        }
        let deep = "[".repeat(100_000);
        assert!(Plan::parse(&deep).is_err());
    }
}
