//! The plan model: PostgreSQL's `EXPLAIN (FORMAT JSON)` output parsed with
//! serde, in one pass over the text, into typed structs (no generic JSON
//! value), then laid out as a flat, pre-ordered list of nodes (index = node
//! id, root = 0). Every field is optional and keys pglab has no use for are
//! skipped, so a newer server's plan or a hand-made one parses; malformed JSON
//! is a [`PlanError`]. The keys kept are those psql's text output
//! (`super::text`), the plan view and the findings need.

use std::fmt;

use std::borrow::Cow;

use serde::Deserialize;
use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};

/// Why a plan could not be read.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("the plan is not valid EXPLAIN JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("the EXPLAIN JSON holds no plan")]
    Empty,
    #[error(
        "the plan is nested more deeply than pglab reads (about {MAX_PLAN_DEPTH} levels of plan nodes)"
    )]
    TooDeep,
    #[error(
        "the plan's JSON is {} MiB, more than the {} MiB pglab draws (explain::MAX_PLAN_VIEW_BYTES)",
        mib(*bytes),
        mib(*limit)
    )]
    TooBig { bytes: usize, limit: usize },
}

/// Plan nodes nested deeper than this cannot be read: each level is two
/// levels of JSON (`"Plans": [{...}]`) and serde_json stops at 128, which
/// keeps a hostile document from overflowing the stack.
pub const MAX_PLAN_DEPTH: usize = 62;

/// Bytes as MiB with one decimal, for messages.
pub fn mib(bytes: usize) -> String {
    format!("{:.1}", bytes as f64 / (1024.0 * 1024.0))
}

impl PlanError {
    fn from_json(err: serde_json::Error) -> Self {
        if err.to_string().starts_with("recursion limit exceeded") {
            PlanError::TooDeep
        } else {
            PlanError::Json(err)
        }
    }
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
    /// `I/O Read Time` / `I/O Write Time`, ms (with `track_io_timing`).
    #[serde(rename = "I/O Read Time")]
    pub io_read_time: Option<f64>,
    #[serde(rename = "I/O Write Time")]
    pub io_write_time: Option<f64>,
}

impl Buffers {
    /// Whether any counter was reported (the plan ran with BUFFERS).
    pub fn present(&self) -> bool {
        self.shared_hit.is_some() || self.temp_read.is_some()
    }
    /// Whether any I/O time is above zero (psql's `I/O Timings` line).
    pub fn any_timing(&self) -> bool {
        self.io_read_time.unwrap_or(0.0) > 0.0 || self.io_write_time.unwrap_or(0.0) > 0.0
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

/// Declares [`NodeFields`] from `["JSON key"] field: Type` lines and the
/// matching key dispatch, so that parsing a node needs no per-node derive
/// frame on the recursion (deep plans keep a small stack, also in debug
/// builds) and every value goes straight into its typed field.
macro_rules! node_fields {
    ($( $(#[$m:meta])* [$key:literal] $vis:vis $field:ident : $ty:ty, )*) => {
        /// One plan node's own fields, as PostgreSQL names them (children apart).
        #[derive(Clone, Debug, Default)]
        pub struct NodeFields {
            $( $(#[$m])* $vis $field: $ty, )*
            /// Buffer counters (gathered from the flat JSON keys after the
            /// node is read).
            pub buffers: Buffers,
        }

        impl NodeFields {
            /// Reads the value of `key` into its field; `false` for a key
            /// pglab does not keep (the caller skips its value).
            #[inline(never)]
            fn set<'de, A: MapAccess<'de>>(&mut self, key: &str, map: &mut A) -> Result<bool, A::Error> {
                match key {
                    $( $key => self.$field = map.next_value()?, )*
                    _ => return Ok(false),
                }
                Ok(true)
            }
        }
    };
}

node_fields! {
    ["Node Type"]
    pub node_type: String,
    ["Parent Relationship"]
    pub parent_relationship: Option<String>,
    ["Subplan Name"]
    pub subplan_name: Option<String>,
    ["Parallel Aware"]
    pub parallel_aware: bool,
    ["Async Capable"]
    pub async_capable: bool,
    ["Relation Name"]
    pub relation_name: Option<String>,
    ["Schema"]
    pub schema: Option<String>,
    ["Alias"]
    pub alias: Option<String>,
    ["CTE Name"]
    pub cte_name: Option<String>,
    ["Function Name"]
    pub function_name: Option<String>,
    ["Index Name"]
    pub index_name: Option<String>,
    ["Scan Direction"]
    pub scan_direction: Option<String>,
    ["Join Type"]
    pub join_type: Option<String>,
    ["Strategy"]
    pub strategy: Option<String>,
    ["Partial Mode"]
    pub partial_mode: Option<String>,
    ["Operation"]
    pub operation: Option<String>,
    ["Command"]
    pub command: Option<String>,
    ["Custom Plan Provider"]
    pub custom_plan_provider: Option<String>,
    ["Startup Cost"]
    pub startup_cost: Option<f64>,
    ["Total Cost"]
    pub total_cost: Option<f64>,
    ["Plan Rows"]
    pub plan_rows: Option<f64>,
    ["Plan Width"]
    pub plan_width: Option<f64>,
    ["Actual Startup Time"]
    pub actual_startup_time: Option<f64>,
    ["Actual Total Time"]
    pub actual_total_time: Option<f64>,
    ["Actual Rows"]
    pub actual_rows: Option<f64>,
    ["Actual Loops"]
    pub actual_loops: Option<f64>,
    ["Inner Unique"]
    pub inner_unique: Option<bool>,
    ["Function Call"]
    pub function_call: Option<String>,
    ["Table Function Call"]
    pub table_function_call: Option<String>,
    ["Output"]
    pub output: Option<Vec<String>>,
    ["Filter"]
    pub filter: Option<String>,
    ["Rows Removed by Filter"]
    pub rows_removed_by_filter: Option<f64>,
    ["Index Cond"]
    pub index_cond: Option<String>,
    ["Recheck Cond"]
    pub recheck_cond: Option<String>,
    ["Rows Removed by Index Recheck"]
    pub rows_removed_by_index_recheck: Option<f64>,
    ["Order By"]
    pub order_by: Option<String>,
    ["TID Cond"]
    pub tid_cond: Option<String>,
    ["Join Filter"]
    pub join_filter: Option<String>,
    ["Rows Removed by Join Filter"]
    pub rows_removed_by_join_filter: Option<f64>,
    ["Hash Cond"]
    pub hash_cond: Option<String>,
    ["Merge Cond"]
    pub merge_cond: Option<String>,
    ["One-Time Filter"]
    pub one_time_filter: Option<String>,
    ["Sort Key"]
    pub sort_key: Option<Vec<String>>,
    ["Presorted Key"]
    pub presorted_key: Option<Vec<String>>,
    ["Group Key"]
    pub group_key: Option<Vec<String>>,
    /// GROUPING SETS, ROLLUP and CUBE: each sort (or hash) pass's keys.
    ["Grouping Sets"]
    pub grouping_sets: Vec<GroupingSet>,
    ["Sort Method"]
    pub sort_method: Option<String>,
    ["Sort Space Used"]
    pub sort_space_used: Option<f64>,
    ["Sort Space Type"]
    pub sort_space_type: Option<String>,
    ["Hash Buckets"]
    pub hash_buckets: Option<f64>,
    ["Original Hash Buckets"]
    pub original_hash_buckets: Option<f64>,
    ["Hash Batches"]
    pub hash_batches: Option<f64>,
    ["Original Hash Batches"]
    pub original_hash_batches: Option<f64>,
    ["Peak Memory Usage"]
    pub peak_memory_usage: Option<f64>,
    ["Planned Partitions"]
    pub planned_partitions: Option<f64>,
    ["HashAgg Batches"]
    pub hashagg_batches: Option<f64>,
    ["Disk Usage"]
    pub disk_usage: Option<f64>,
    ["Heap Fetches"]
    pub heap_fetches: Option<f64>,
    ["Exact Heap Blocks"]
    pub exact_heap_blocks: Option<f64>,
    ["Lossy Heap Blocks"]
    pub lossy_heap_blocks: Option<f64>,
    ["Workers Planned"]
    pub workers_planned: Option<f64>,
    ["Workers Launched"]
    pub workers_launched: Option<f64>,
    ["Params Evaluated"]
    pub params_evaluated: Option<Vec<String>>,
    ["Workers"]
    pub workers: Vec<WorkerFields>,
    ["Single Copy"]
    pub single_copy: Option<bool>,
    ["Cache Key"]
    pub cache_key: Option<String>,
    ["Cache Mode"]
    pub cache_mode: Option<String>,
    ["Cache Hits"]
    pub cache_hits: Option<f64>,
    ["Cache Misses"]
    pub cache_misses: Option<f64>,
    ["Cache Evictions"]
    pub cache_evictions: Option<f64>,
    ["Cache Overflows"]
    pub cache_overflows: Option<f64>,
    ["WAL Records"]
    pub wal_records: Option<f64>,
    ["WAL FPI"]
    pub wal_fpi: Option<f64>,
    ["WAL Bytes"]
    pub wal_bytes: Option<f64>,
    /// Append / Merge Append children pruned at executor start-up.
    ["Subplans Removed"]
    pub subplans_removed: Option<f64>,
    /// ModifyTable over several tables (partitions, inheritance).
    ["Target Tables"]
    pub target_tables: Vec<TargetTable>,
    ["Conflict Resolution"]
    pub conflict_resolution: Option<String>,
    ["Conflict Arbiter Indexes"]
    pub conflict_arbiter_indexes: Option<Vec<String>>,
    ["Conflict Filter"]
    pub conflict_filter: Option<String>,
    ["Rows Removed by Conflict Filter"]
    pub rows_removed_by_conflict_filter: Option<f64>,
    ["Tuples Inserted"]
    pub tuples_inserted: Option<f64>,
    /// MERGE under ANALYZE (PostgreSQL 15), beside Tuples Inserted.
    ["Tuples Updated"]
    pub tuples_updated: Option<f64>,
    ["Tuples Deleted"]
    pub tuples_deleted: Option<f64>,
    ["Tuples Skipped"]
    pub tuples_skipped: Option<f64>,
    /// Sample Scan (TABLESAMPLE).
    ["Sampling Method"]
    pub sampling_method: Option<String>,
    ["Sampling Parameters"]
    pub sampling_parameters: Option<Vec<String>>,
    ["Repeatable Seed"]
    pub repeatable_seed: Option<String>,
    ["Conflicting Tuples"]
    pub conflicting_tuples: Option<f64>,
    /// Named Tuplestore Scan (a trigger's transition table).
    ["Tuplestore Name"]
    pub tuplestore_name: Option<String>,
    /// Incremental Sort's groups under ANALYZE.
    ["Full-sort Groups"]
    pub full_sort_groups: Option<SortGroups>,
    ["Pre-sorted Groups"]
    pub pre_sorted_groups: Option<SortGroups>,
    /// WindowAgg's run condition (PostgreSQL 15).
    ["Run Condition"]
    pub run_condition: Option<String>,
    ["Shared Hit Blocks"]
    shared_hit: Option<f64>,
    ["Shared Read Blocks"]
    shared_read: Option<f64>,
    ["Shared Dirtied Blocks"]
    shared_dirtied: Option<f64>,
    ["Shared Written Blocks"]
    shared_written: Option<f64>,
    ["Local Hit Blocks"]
    local_hit: Option<f64>,
    ["Local Read Blocks"]
    local_read: Option<f64>,
    ["Local Dirtied Blocks"]
    local_dirtied: Option<f64>,
    ["Local Written Blocks"]
    local_written: Option<f64>,
    ["Temp Read Blocks"]
    temp_read: Option<f64>,
    ["Temp Written Blocks"]
    temp_written: Option<f64>,
    ["I/O Read Time"]
    io_read_time: Option<f64>,
    ["I/O Write Time"]
    io_write_time: Option<f64>,
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
    #[serde(rename = "WAL Records")]
    pub wal_records: Option<f64>,
    #[serde(rename = "WAL FPI")]
    pub wal_fpi: Option<f64>,
    #[serde(rename = "WAL Bytes")]
    pub wal_bytes: Option<f64>,
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
    #[serde(rename = "I/O Read Time")]
    io_read_time: Option<f64>,
    #[serde(rename = "I/O Write Time")]
    io_write_time: Option<f64>,
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
            io_read_time: $f.io_read_time,
            io_write_time: $f.io_write_time,
        }
    };
}

/// An Incremental Sort's full-sort or pre-sorted groups.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct SortGroups {
    #[serde(rename = "Group Count")]
    pub group_count: f64,
    #[serde(rename = "Sort Methods Used")]
    pub sort_methods: Vec<String>,
    #[serde(rename = "Sort Space Memory")]
    pub memory: Option<SortSpace>,
    #[serde(rename = "Sort Space Disk")]
    pub disk: Option<SortSpace>,
}

/// Average and peak sort space of a group kind, kB.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct SortSpace {
    #[serde(rename = "Average Sort Space Used")]
    pub average: f64,
    #[serde(rename = "Peak Sort Space Used")]
    pub peak: f64,
}

/// One pass of a grouping-sets aggregate: its sort (absent for the first
/// pass, which reads its input as it comes) and the key lists it groups by
/// (an empty list is the `()` set).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct GroupingSet {
    #[serde(rename = "Sort Key")]
    pub sort_key: Option<Vec<String>>,
    #[serde(rename = "Group Keys")]
    pub group_keys: Option<Vec<Vec<String>>>,
    #[serde(rename = "Hash Keys")]
    pub hash_keys: Option<Vec<Vec<String>>>,
}

/// One table a ModifyTable node writes to, when it writes to several.
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct TargetTable {
    #[serde(rename = "Relation Name")]
    pub relation_name: Option<String>,
    #[serde(rename = "Schema")]
    pub schema: Option<String>,
    #[serde(rename = "Alias")]
    pub alias: Option<String>,
}

/// A trigger's time (ANALYZE of a statement that fired triggers).
#[derive(Clone, Debug, Default, Deserialize)]
#[serde(default)]
pub struct Trigger {
    #[serde(rename = "Trigger Name")]
    pub name: Option<String>,
    #[serde(rename = "Constraint Name")]
    pub constraint: Option<String>,
    #[serde(rename = "Relation")]
    pub relation: Option<String>,
    #[serde(rename = "Time")]
    pub time: Option<f64>,
    #[serde(rename = "Calls")]
    pub calls: Option<f64>,
}

/// `SETTINGS` output in the server's order (a JSON object of strings).
#[derive(Debug, Default)]
struct Settings(Vec<(String, String)>);

impl<'de> Deserialize<'de> for Settings {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Settings;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of settings")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Settings, A::Error> {
                let mut out = Vec::new();
                while let Some(key) = map.next_key::<String>()? {
                    let value = match map.next_value::<serde_json::Value>()? {
                        serde_json::Value::String(s) => s,
                        other => other.to_string(),
                    };
                    out.push((key, value));
                }
                Ok(Settings(out))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Settings, E> {
                Ok(Settings::default())
            }
        }
        d.deserialize_any(V)
    }
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
    /// A node with no fields yet (built apart, so the recursive reader's frame stays small).
    #[inline(never)]
    fn new(id: usize, parent: Option<usize>, depth: usize) -> Self {
        Node {
            id,
            parent,
            children: Vec::new(),
            depth,
            fields: NodeFields::default(),
        }
    }
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
    /// `Query Identifier` (VERBOSE with `compute_query_id`).
    pub query_identifier: Option<i64>,
    /// The JSON text it was parsed from (shown as is for FORMAT JSON).
    pub source: String,
}

impl Plan {
    /// Parses `EXPLAIN (FORMAT JSON)` output: an array of one object, or the
    /// object alone. Never panics on odd input.
    pub fn parse(json: &str) -> Result<Self, PlanError> {
        // One pass: serde reads the text straight into the typed fields and
        // lays the nodes out in pre-order as it meets them (no tree of
        // values, nothing read twice). serde_json's nesting limit bounds the
        // recursion (see MAX_PLAN_DEPTH).
        let mut doc = Doc::default();
        let mut de = serde_json::Deserializer::from_str(json);
        Top(&mut doc)
            .deserialize(&mut de)
            .and_then(|()| de.end())
            .map_err(PlanError::from_json)?;
        if doc.nodes.is_empty() {
            return Err(PlanError::Empty);
        }
        Ok(Self {
            nodes: doc.nodes,
            planning_time: doc.planning_time,
            execution_time: doc.execution_time,
            planning_buffers: doc.planning,
            triggers: doc.triggers,
            settings: doc.settings.0,
            jit: doc.jit,
            query_identifier: doc.query_identifier,
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

/// What one document holds, filled while it is read.
#[derive(Default)]
struct Doc {
    nodes: Vec<Node>,
    planning: Option<Buffers>,
    planning_time: Option<f64>,
    execution_time: Option<f64>,
    triggers: Vec<Trigger>,
    settings: Settings,
    jit: Option<Jit>,
    query_identifier: Option<i64>,
}

/// A JSON key, borrowed from the text unless it has escapes.
struct Key<'de>(Cow<'de, str>);

impl<'de> Deserialize<'de> for Key<'de> {
    fn deserialize<D: de::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = Key<'de>;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a key")
            }
            fn visit_borrowed_str<E: de::Error>(self, v: &'de str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Borrowed(v)))
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<Key<'de>, E> {
                Ok(Key(Cow::Owned(v.to_string())))
            }
        }
        d.deserialize_str(V)
    }
}

/// The top level: `[doc, ...]` (the first is read) or the doc alone.
struct Top<'a>(&'a mut Doc);

impl<'de> DeserializeSeed<'de> for Top<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Top<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("EXPLAIN (FORMAT JSON) output")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if seq.next_element_seed(DocSeed(self.0))?.is_some() {
            while seq.next_element::<IgnoredAny>()?.is_some() {}
        }
        Ok(())
    }
    fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<(), A::Error> {
        DocSeed(self.0).visit_map(map)
    }
}

/// One document: `Plan` and the summary keys.
struct DocSeed<'a>(&'a mut Doc);

impl<'de> DeserializeSeed<'de> for DocSeed<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for DocSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an EXPLAIN document (an object with a Plan)")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let doc = self.0;
        while let Some(key) = map.next_key::<Key<'de>>()? {
            match key.0.as_ref() {
                "Plan" if doc.nodes.is_empty() => map.next_value_seed(NodeSeed {
                    out: &mut doc.nodes,
                    parent: None,
                    depth: 0,
                })?,
                "Planning" => doc.planning = map.next_value()?,
                "Planning Time" => doc.planning_time = map.next_value()?,
                "Execution Time" => doc.execution_time = map.next_value()?,
                "Triggers" => doc.triggers = map.next_value()?,
                "Settings" => doc.settings = map.next_value()?,
                "JIT" => doc.jit = map.next_value()?,
                "Query Identifier" => doc.query_identifier = map.next_value()?,
                _ => {
                    map.next_value::<IgnoredAny>()?;
                }
            }
        }
        Ok(())
    }
}

/// One node: pushed in pre-order before its children, which follow it in
/// `out` whatever the key order.
struct NodeSeed<'a> {
    out: &'a mut Vec<Node>,
    parent: Option<usize>,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for NodeSeed<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_map(self)
    }
}

impl<'de> Visitor<'de> for NodeSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a plan node (an object)")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let out = self.out;
        let id = out.len();
        out.push(Node::new(id, self.parent, self.depth));
        if let Some(p) = self.parent {
            out[p].children.push(id);
        }
        while let Some(key) = map.next_key::<Key<'de>>()? {
            if key.0 == "Plans" {
                map.next_value_seed(ChildrenSeed {
                    out: &mut *out,
                    parent: id,
                    depth: self.depth + 1,
                })?;
            } else if !out[id].fields.set(&key.0, &mut map)? {
                map.next_value::<IgnoredAny>()?;
            }
        }
        let f = &mut out[id].fields;
        f.buffers = take_buffers!(f);
        for w in &mut f.workers {
            w.buffers = take_buffers!(w);
        }
        Ok(())
    }
}

/// A node's `Plans` array.
struct ChildrenSeed<'a> {
    out: &'a mut Vec<Node>,
    parent: usize,
    depth: usize,
}

impl<'de> DeserializeSeed<'de> for ChildrenSeed<'_> {
    type Value = ();
    fn deserialize<D: de::Deserializer<'de>>(self, d: D) -> Result<(), D::Error> {
        d.deserialize_seq(self)
    }
}

impl<'de> Visitor<'de> for ChildrenSeed<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("an array of plan nodes")
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq
            .next_element_seed(NodeSeed {
                out: &mut *self.out,
                parent: Some(self.parent),
                depth: self.depth,
            })?
            .is_some()
        {}
        Ok(())
    }
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
        let nested = format!(
            r#"{{"Plan": {}{{}}{}}}"#,
            r#"{"Node Type": "Result", "Plans": ["#.repeat(10_000),
            "]}".repeat(10_000)
        );
        let err = Plan::parse(&nested).unwrap_err();
        assert!(matches!(err, PlanError::TooDeep), "{err}");
    }

    #[test]
    fn children_may_come_before_fields_and_settings_keep_their_order() {
        let plan = Plan::parse(
            r#"{"Plan": {"Plans": [{"Node Type": "Seq Scan", "Plans": [{"Node Type": "Result"}]}], "Node Type": "Limit"},
               "Settings": {"work_mem": "64MB", "random_page_cost": "1.1", "odd": 3}, "Query Identifier": -42}"#,
        )
        .unwrap();
        let types: Vec<_> = plan
            .nodes
            .iter()
            .map(|n| n.fields.node_type.as_str())
            .collect();
        assert_eq!(types, ["Limit", "Seq Scan", "Result"]);
        assert_eq!(plan.nodes[1].parent, Some(0));
        assert_eq!(plan.nodes[2].depth, 2);
        assert_eq!(
            plan.settings,
            [
                ("work_mem".to_string(), "64MB".to_string()),
                ("random_page_cost".to_string(), "1.1".to_string()),
                ("odd".to_string(), "3".to_string())
            ]
        );
        assert_eq!(plan.query_identifier, Some(-42));
    }
}
