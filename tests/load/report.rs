//! The load run's figures: server CPU and memory sampled from /proc, and the
//! markdown tables printed at the end (and kept in docs/benchmarks.md).

#![allow(dead_code, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::sync::atomic::{AtomicBool, AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::client::{Class, Ctx, GRACE_S, Sample};

/// CPU and memory of the pglab process (across restarts) and the machine.
#[derive(Default, Debug, Clone)]
pub struct Usage {
    /// Seconds of CPU pglab used (user + system), all its lives together.
    pub server_cpu_s: f64,
    pub server_rss_peak_kib: u64,
    /// Seconds into the run when the peak grew last.
    pub server_rss_peak_at_s: f64,
    /// VmRSS at the last sample (the class has finished its work).
    pub server_rss_last_kib: u64,
    pub machine_busy_pct_sum: f64,
    pub machine_samples: u32,
    pub machine_used_peak_kib: u64,
    pub wall_s: f64,
}

/// Samples /proc once a second on a thread until `stop` is set.
pub fn sample_usage(pid: Arc<AtomicU32>, stop: Arc<AtomicBool>) -> std::thread::JoinHandle<Usage> {
    std::thread::spawn(move || {
        let began = std::time::Instant::now();
        let mut usage = Usage::default();
        let mut last: Option<(u32, u64)> = None;
        let mut last_machine = machine_ticks();
        while !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_secs(1));
            let p = pid.load(Ordering::Relaxed);
            if let Some(ticks) = process_ticks(p) {
                let before = match last {
                    Some((lp, lt)) if lp == p => lt,
                    _ => 0,
                };
                usage.server_cpu_s += ticks.saturating_sub(before) as f64 / 100.0;
                last = Some((p, ticks));
            }
            if let Some(kib) = status_field(p, "VmHWM:")
                && kib > usage.server_rss_peak_kib
            {
                usage.server_rss_peak_kib = kib;
                usage.server_rss_peak_at_s = began.elapsed().as_secs_f64();
            }
            if let Some(kib) = status_field(p, "VmRSS:") {
                usage.server_rss_last_kib = kib;
            }
            let now = machine_ticks();
            if let (Some((b0, t0)), Some((b1, t1))) = (last_machine, now)
                && t1 > t0
            {
                usage.machine_busy_pct_sum += (b1 - b0) as f64 * 100.0 / (t1 - t0) as f64;
                usage.machine_samples += 1;
            }
            last_machine = now;
            usage.machine_used_peak_kib = usage.machine_used_peak_kib.max(machine_used_kib());
        }
        usage.wall_s = began.elapsed().as_secs_f64();
        usage
    })
}

fn process_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which may contain spaces).
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn status_field(pid: u32, name: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(name))?
        .split_whitespace()
        .next()?
        .parse()
        .ok()
}

/// (busy, total) jiffies of all CPUs.
fn machine_ticks() -> Option<(u64, u64)> {
    let stat = std::fs::read_to_string("/proc/stat").ok()?;
    let cpu: Vec<u64> = stat
        .lines()
        .next()?
        .split_whitespace()
        .skip(1)
        .filter_map(|v| v.parse().ok())
        .collect();
    let total: u64 = cpu.iter().sum();
    let idle = cpu.get(3)? + cpu.get(4).unwrap_or(&0);
    Some((total - idle, total))
}

fn machine_used_kib() -> u64 {
    let info = std::fs::read_to_string("/proc/meminfo").unwrap_or_default();
    let field = |name: &str| -> u64 {
        info.lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse().ok())
            .unwrap_or(0)
    };
    field("MemTotal:").saturating_sub(field("MemAvailable:"))
}

/// The p-th percentile (0..=100) of sorted values.
pub fn percentile(sorted: &[f64], p: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = ((p / 100.0) * sorted.len() as f64).ceil() as usize;
    sorted[rank.clamp(1, sorted.len()) - 1]
}

/// Whether what the learner saw is correct behaviour: success, a reported
/// lost connection (the next run reconnects), or a clear 503 / pglab not
/// answering while a fault (or its grace period) lasted.
pub fn explained(ctx: &Ctx, s: &Sample) -> bool {
    match s.class {
        Class::Ok | Class::ConnectionLost | Class::InLine => true,
        Class::Unavailable | Class::SandboxFailed | Class::ServerDown => {
            ctx.in_fault(s.began, s.ended)
        }
        _ => false,
    }
}

/// Everything the final tables need beyond the samples.
pub struct Summary {
    pub title: String,
    pub learners: usize,
    pub cap: usize,
    /// Learners working at the same moment (the rest are away).
    pub active: usize,
    pub rounds: usize,
    pub concurrency: usize,
    pub usage: Usage,
    /// `elapsed_ms` of explicit starts that started something (> 50 ms).
    pub starts_ms: Vec<f64>,
    pub lost_markers: usize,
    pub acked_markers: usize,
    pub lost_passes: usize,
    pub acked_passes: usize,
    pub gave_up: usize,
    pub unexplained: usize,
}

/// The markdown report: figures, latency per endpoint, faults, errors.
pub fn render(ctx: &Ctx, sum: &Summary) -> String {
    let samples = ctx.samples.lock().unwrap().clone();
    let faults = ctx.faults.lock().unwrap().clone();
    let wall = sum.usage.wall_s.max(0.001);
    let requests: Vec<&Sample> = samples
        .iter()
        .filter(|s| s.endpoint != "SQL outcome")
        .collect();
    let statements = ctx.statements.load(Ordering::Relaxed);
    let mut out = String::new();
    let _ = writeln!(out, "### {}\n", sum.title);
    let _ = writeln!(out, "| figure | value |\n| --- | --- |");
    let mut row = |k: &str, v: String| {
        let _ = writeln!(out, "| {k} | {v} |");
    };
    row(
        "learners / at work at once / running cap / rounds each (at least) / requests in flight",
        format!(
            "{} / {} / {} / {} / {}",
            sum.learners, sum.active, sum.cap, sum.rounds, sum.concurrency
        ),
    );
    row(
        "run time (learners arrive one every N ms)",
        format!("{wall:.0} s ({} ms)", ctx.arrival_ms),
    );
    row(
        "HTTP requests",
        format!("{} ({:.1}/s)", requests.len(), requests.len() as f64 / wall),
    );
    row(
        "SQL statements run",
        format!("{statements} ({:.1}/s)", statements as f64 / wall),
    );
    let mut starts = sum.starts_ms.clone();
    starts.sort_by(f64::total_cmp);
    row(
        "sandbox starts (explicit, started something): n, p50, p99",
        format!(
            "{}, {:.0} ms, {:.0} ms",
            starts.len(),
            percentile(&starts, 50.0),
            percentile(&starts, 99.0)
        ),
    );
    let mut in_line = ctx.in_line_ms.lock().unwrap().clone();
    in_line.sort_by(f64::total_cmp);
    row(
        "starts answered \"in line\" (202, a full classroom): n, time until running p50, p99",
        format!(
            "{}, {:.1} s, {:.1} s",
            in_line.len(),
            percentile(&in_line, 50.0) / 1000.0,
            percentile(&in_line, 99.0) / 1000.0
        ),
    );
    let mut outside = ctx.sql_outside_ms.lock().unwrap().clone();
    outside.sort_by(f64::total_cmp);
    row(
        "`POST /api/sql` outside its statements (pglab, and connecting a session not open): n, p50, p99",
        format!(
            "{}, {:.1} ms, {:.1} ms",
            outside.len(),
            percentile(&outside, 50.0),
            percentile(&outside, 99.0)
        ),
    );
    let u = &sum.usage;
    row(
        "pglab CPU (average over the run)",
        format!("{:.1} % of one core", u.server_cpu_s * 100.0 / wall),
    );
    row(
        "pglab RSS: peak (when) / at the end",
        format!(
            "{:.1} MiB ({:.0} s) / {:.1} MiB",
            u.server_rss_peak_kib as f64 / 1024.0,
            u.server_rss_peak_at_s,
            u.server_rss_last_kib as f64 / 1024.0
        ),
    );
    row(
        "machine CPU busy (average, 2 cores = 100 %)",
        format!(
            "{:.0} %",
            u.machine_busy_pct_sum / f64::from(u.machine_samples.max(1))
        ),
    );
    row(
        "machine memory used (peak)",
        format!("{:.1} GiB", u.machine_used_peak_kib as f64 / 1048576.0),
    );
    row(
        "committed marker rows acknowledged / lost",
        format!("{} / {}", sum.acked_markers, sum.lost_markers),
    );
    row(
        "check passes acknowledged / lost",
        format!("{} / {}", sum.acked_passes, sum.lost_passes),
    );
    row("steps given up", sum.gave_up.to_string());
    row(
        "unexplained errors (must be 0)",
        sum.unexplained.to_string(),
    );

    let _ = writeln!(
        out,
        "\n| endpoint | requests | p50 ms | p99 ms | max ms |\n| --- | ---: | ---: | ---: | ---: |"
    );
    let mut by: BTreeMap<&str, Vec<f64>> = BTreeMap::new();
    for s in &requests {
        by.entry(s.endpoint).or_default().push(s.ms);
    }
    for (endpoint, mut ms) in by {
        ms.sort_by(f64::total_cmp);
        let _ = writeln!(
            out,
            "| {endpoint} | {} | {:.1} | {:.1} | {:.0} |",
            ms.len(),
            percentile(&ms, 50.0),
            percentile(&ms, 99.0),
            ms.last().copied().unwrap_or(0.0)
        );
    }

    let _ = writeln!(
        out,
        "\n| fault | at | took | what learners saw (requests during it and {GRACE_S:.0} s after) |\n| --- | ---: | ---: | --- |"
    );
    for f in &faults {
        let mut seen: BTreeMap<Class, usize> = BTreeMap::new();
        for s in samples
            .iter()
            .filter(|s| s.began <= f.ended + GRACE_S && s.ended >= f.began)
        {
            *seen.entry(s.class).or_default() += 1;
        }
        let seen: Vec<String> = seen
            .iter()
            .map(|(c, n)| format!("{} {n}", c.name()))
            .collect();
        let _ = writeln!(
            out,
            "| {} ({}) | {:.0} s | {:.1} s | {} |",
            f.name,
            f.note,
            f.began,
            f.ended - f.began,
            seen.join(", ")
        );
    }

    let _ = writeln!(
        out,
        "\n| outcome | in fault windows | outside | explained |\n| --- | ---: | ---: | --- |"
    );
    let mut classes: BTreeMap<Class, (usize, usize, usize)> = BTreeMap::new();
    for s in &samples {
        let e = classes.entry(s.class).or_default();
        if ctx.in_fault(s.began, s.ended) {
            e.0 += 1
        } else {
            e.1 += 1
        }
        if !explained(ctx, s) {
            e.2 += 1
        }
    }
    for (c, (inside, outside, bad)) in classes {
        let verdict = if bad == 0 {
            "yes".to_string()
        } else {
            format!("**no: {bad}**")
        };
        let _ = writeln!(out, "| {} | {inside} | {outside} | {verdict} |", c.name());
    }
    let bad: Vec<&Sample> = samples
        .iter()
        .filter(|s| !explained(ctx, s))
        .take(10)
        .collect();
    if !bad.is_empty() {
        let _ = writeln!(out, "\nFirst unexplained errors:\n");
        for s in bad {
            let _ = writeln!(
                out,
                "- {:.1} s, learner {}, {}: {} {}",
                s.began,
                s.learner,
                s.endpoint,
                s.class.name(),
                s.detail.chars().take(300).collect::<String>()
            );
        }
    }
    out
}

/// Mutex helper for shared vectors.
pub fn push<T>(v: &Mutex<Vec<T>>, item: T) {
    v.lock().unwrap().push(item);
}
