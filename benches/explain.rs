//! Plan view speed: a 500-node plan (an Append over 498 partitions, the kind
//! of plan a partitioned table gives) to its plan view (parse + analysis +
//! HTML) in ≤ 5 ms (median); a 5,000-node plan in ≤ 60 ms, and its psql text
//! (parse + text) in ≤ 20 ms. Prints parse, analysis + findings, HTML and
//! text times apart; exits 1 over a budget.
//!
//! Run: `scripts/bench.sh explain` or `cargo bench --bench explain`.

use std::time::{Duration, Instant};

use pglab::explain::{
    AnalyzedPlan, ExplainOptions, Plan, analysis, findings, plan_html, render_text,
};

/// (nodes, runs, plan view budget ms, psql text budget ms)
const CASES: [(usize, usize, f64, f64); 2] = [(500, 200, 5.0, 5.0), (5_000, 40, 60.0, 20.0)];

/// A realistic partition scan: filter, removed rows, buffers, like PostgreSQL 15 writes it.
fn partition_scan(i: usize) -> serde_json::Value {
    serde_json::json!({
        "Node Type": "Seq Scan", "Parent Relationship": "Member", "Parallel Aware": false,
        "Async Capable": false, "Relation Name": format!("events_{i}"), "Alias": format!("events_{i}"),
        "Startup Cost": 0.00, "Total Cost": 2.25, "Plan Rows": 100, "Plan Width": 0,
        "Actual Startup Time": 0.004, "Actual Total Time": 0.021 + (i % 7) as f64 * 0.003,
        "Actual Rows": 95, "Actual Loops": 1,
        "Filter": "((payload = 'x'::text) AND (at >= '2020-01-01'::date))",
        "Rows Removed by Filter": 5 + i % 3,
        "Shared Hit Blocks": 1, "Shared Read Blocks": 0, "Shared Dirtied Blocks": 0,
        "Shared Written Blocks": 0, "Local Hit Blocks": 0, "Local Read Blocks": 0,
        "Local Dirtied Blocks": 0, "Local Written Blocks": 0, "Temp Read Blocks": 0,
        "Temp Written Blocks": 0
    })
}

fn big_plan(nodes: usize) -> String {
    let scans: Vec<_> = (0..nodes - 2).map(partition_scan).collect();
    let plan = serde_json::json!([{
        "Plan": {
            "Node Type": "Aggregate", "Strategy": "Plain", "Partial Mode": "Simple",
            "Parallel Aware": false, "Startup Cost": 1200.0, "Total Cost": 1200.01,
            "Plan Rows": 1, "Plan Width": 8, "Actual Startup Time": 25.1,
            "Actual Total Time": 25.1, "Actual Rows": 1, "Actual Loops": 1,
            "Plans": [{
                "Node Type": "Append", "Parent Relationship": "Outer", "Parallel Aware": false,
                "Startup Cost": 0.0, "Total Cost": 1100.0, "Plan Rows": 49800, "Plan Width": 0,
                "Actual Startup Time": 0.01, "Actual Total Time": 22.0, "Actual Rows": 47310,
                "Actual Loops": 1, "Subplans Removed": 0, "Plans": scans
            }]
        },
        "Planning Time": 12.5, "Triggers": [], "Execution Time": 25.3
    }]);
    plan.to_string()
}

fn measure(runs: usize, mut f: impl FnMut()) -> (f64, f64) {
    for _ in 0..3 {
        f();
    }
    let mut times: Vec<Duration> = (0..runs)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed()
        })
        .collect();
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    (ms(times[runs / 2]), ms(times[runs * 99 / 100]))
}

fn main() {
    let mut over = false;
    // PGLAB_BENCH_RUNS=3 for a profile run (callgrind), where only the
    // instruction counts matter.
    let runs_override: Option<usize> = std::env::var("PGLAB_BENCH_RUNS")
        .ok()
        .and_then(|r| r.parse().ok());
    for (nodes, runs, view_budget, text_budget) in CASES {
        let runs = runs_override.unwrap_or(runs).max(1);
        over |= !bench(nodes, runs, view_budget, text_budget);
    }
    if over {
        std::process::exit(1);
    }
}

/// One plan size; `false` when over a budget.
fn bench(nodes: usize, runs: usize, view_budget: f64, text_budget: f64) -> bool {
    let json = big_plan(nodes);
    let plan = Plan::parse(&json).expect("bench plan parses");
    assert_eq!(plan.nodes.len(), nodes);
    let analyzed = AnalyzedPlan::new(plan.clone());
    let options = ExplainOptions {
        analyze: true,
        buffers: Some(true),
        ..Default::default()
    };

    let (parse, parse99) = measure(runs, || {
        std::hint::black_box(Plan::parse(&json).ok());
    });
    let (anal, anal99) = measure(runs, || {
        let a = analysis::analyze(&plan);
        std::hint::black_box(findings::findings(&plan, &a));
    });
    let (html, html99) = measure(runs, || {
        std::hint::black_box(analyzed.html());
    });
    let (full, full99) = measure(runs, || {
        std::hint::black_box(plan_html(&json).ok());
    });
    let (text, text99) = measure(runs, || {
        std::hint::black_box(render_text(&plan, &options));
    });
    let (text_full, text_full99) = measure(runs, || {
        let p = Plan::parse(&json).expect("parses");
        std::hint::black_box(render_text(&p, &options));
    });
    let size = analyzed.html().len();
    println!(
        "explain bench: {nodes}-node plan, {} KB JSON, {} KB HTML, {runs} runs",
        json.len() / 1024,
        size / 1024
    );
    println!("  parse JSON            median {parse:7.3} ms   p99 {parse99:7.3} ms");
    println!("  analysis + findings   median {anal:7.3} ms   p99 {anal99:7.3} ms");
    println!("  HTML render only      median {html:7.3} ms   p99 {html99:7.3} ms");
    println!(
        "  plan view (all steps) median {full:7.3} ms   p99 {full99:7.3} ms   budget {view_budget} ms"
    );
    println!("  psql text render only median {text:7.3} ms   p99 {text99:7.3} ms");
    println!(
        "  psql text (parse+text) median {text_full:6.3} ms   p99 {text_full99:7.3} ms   budget {text_budget} ms"
    );
    let mut ok = true;
    if full > view_budget {
        println!("  OVER BUDGET: plan view median {full:.3} ms > {view_budget} ms");
        ok = false;
    }
    if text_full > text_budget {
        println!("  OVER BUDGET: psql text median {text_full:.3} ms > {text_budget} ms");
        ok = false;
    }
    if ok {
        println!(
            "  within budget ({:.1}× headroom on the plan view)",
            view_budget / full
        );
    }
    ok
}
