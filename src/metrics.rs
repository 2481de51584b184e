//! The server's Prometheus metrics: one process-wide registry, served by
//! `GET /metrics` (src/web/metrics.rs) in the Prometheus text format.
//!
//! # The API other modules use
//! Plain functions, cheap (atomics) and callable from anywhere; no handle to
//! thread through:
//! - [`set_sandboxes_running`]`(n)`: the number of running sandboxes, when the
//!   backend knows it (`GET /metrics` sets it at each scrape from
//!   `Provisioner::running_count`); or [`sandbox_running_inc`] /
//!   [`sandbox_running_dec`] on each start and stop;
//! - [`set_sandbox_queue`]`(n)`: starts waiting in the admission queue of a
//!   full classroom (`GET /metrics` sets it at each scrape);
//! - [`observe_sandbox_start`]`(duration)`: how long a `Provisioner::start`
//!   that actually started something took (not re-attaches);
//! - [`sql_statements_run`]`(n)`: statements of learners' SQL sent to their
//!   sandboxes; [`sql_error`]`()` for each that PostgreSQL rejected;
//! - [`check_passed`]`()`: an exercise check that passed;
//! - [`observe_store_write`]`(duration)`: one write of learners' activity,
//!   from queued to committed (`store::writer`); [`observe_store_batch`]`(n)`
//!   for each batch the writer committed;
//! - [`csp_violation`]`()`: a browser reported a Content-Security-Policy
//!   violation (`POST /api/csp-report`).
//!
//! HTTP requests and their latency are counted by the web layer's middleware
//! ([`observe_http`]) with axum's `MatchedPath` as the route label, so label
//! values stay bounded: never put a learner id, a username or a raw path in a
//! label.
//!
//! Why `prometheus-client`: it is the Prometheus project's own Rust client,
//! keeps no global recorder (we own the one registry below), types label sets
//! as structs (an unbounded label cannot slip in by accident) and has few
//! dependencies.

use std::sync::LazyLock;
use std::time::Duration;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// Labels of an HTTP request counter.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct HttpLabels {
    route: String,
    method: String,
    status: u16,
}

/// Labels of the HTTP latency histogram.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct RouteLabels {
    route: String,
}

/// Labels of the build info gauge.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
struct BuildLabels {
    version: String,
}

struct Metrics {
    registry: Registry,
    http_requests: Family<HttpLabels, Counter>,
    http_latency: Family<RouteLabels, Histogram>,
    sandboxes_running: Gauge,
    sandbox_queue: Gauge,
    sandbox_start: Histogram,
    sql_statements: Counter,
    sql_errors: Counter,
    checks_passed: Counter,
    csp_violations: Counter,
    store_write: Histogram,
    store_batch: Histogram,
}

fn http_latency_histogram() -> Histogram {
    Histogram::new([
        0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0,
    ])
}

static METRICS: LazyLock<Metrics> = LazyLock::new(|| {
    let mut registry = Registry::with_prefix("pglab");
    let http_requests = Family::<HttpLabels, Counter>::default();
    registry.register(
        "http_requests",
        "HTTP requests by route template, method and status",
        http_requests.clone(),
    );
    let http_latency =
        Family::<RouteLabels, Histogram>::new_with_constructor(http_latency_histogram as fn() -> _);
    registry.register(
        "http_request_duration_seconds",
        "HTTP request latency by route template",
        http_latency.clone(),
    );
    let sandboxes_running = Gauge::default();
    registry.register(
        "sandboxes_running",
        "Learners' sandboxes running now",
        sandboxes_running.clone(),
    );
    let sandbox_queue = Gauge::default();
    registry.register(
        "sandbox_queue_length",
        "Learners waiting in line for a sandbox place (the classroom is full)",
        sandbox_queue.clone(),
    );
    // Container starts take ~0.3 s, initdb of a local cluster a few seconds.
    let sandbox_start = Histogram::new([
        0.1, 0.25, 0.5, 1.0, 2.0, 3.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0,
    ]);
    registry.register(
        "sandbox_start_seconds",
        "Time to start a learner's sandbox until it accepts connections",
        sandbox_start.clone(),
    );
    let sql_statements = Counter::default();
    registry.register(
        "sql_statements",
        "Statements of learners' SQL run in their sandboxes",
        sql_statements.clone(),
    );
    let sql_errors = Counter::default();
    registry.register(
        "sql_errors",
        "Statements of learners' SQL that PostgreSQL rejected",
        sql_errors.clone(),
    );
    let checks_passed = Counter::default();
    registry.register(
        "checks_passed",
        "Exercise checks that passed",
        checks_passed.clone(),
    );
    let csp_violations = Counter::default();
    registry.register(
        "csp_violations",
        "Content-Security-Policy violations reported by browsers",
        csp_violations.clone(),
    );
    // A write is a fraction of a millisecond when the store keeps up; the
    // goal is 50 ms at p99 under load.
    let store_write = Histogram::new([
        0.0005, 0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5,
    ]);
    registry.register(
        "store_write_seconds",
        "Writes of learners' activity (evidence, history, progress), queued to committed",
        store_write.clone(),
    );
    let store_batch = Histogram::new([1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0]);
    registry.register(
        "store_batch_jobs",
        "Writes committed together in one transaction by the store's writer",
        store_batch.clone(),
    );
    let build = Family::<BuildLabels, Gauge>::default();
    build
        .get_or_create(&BuildLabels {
            version: env!("CARGO_PKG_VERSION").to_string(),
        })
        .set(1);
    registry.register("build_info", "The running pglab version", build);
    Metrics {
        registry,
        http_requests,
        http_latency,
        sandboxes_running,
        sandbox_queue,
        sandbox_start,
        sql_statements,
        sql_errors,
        checks_passed,
        csp_violations,
        store_write,
        store_batch,
    }
});

/// Sets the number of running sandboxes.
pub fn set_sandboxes_running(n: i64) {
    METRICS.sandboxes_running.set(n);
}

/// How many learners wait in the admission queue now.
pub fn set_sandbox_queue(n: i64) {
    METRICS.sandbox_queue.set(n);
}

/// One more sandbox runs.
pub fn sandbox_running_inc() {
    METRICS.sandboxes_running.inc();
}

/// One sandbox fewer runs.
pub fn sandbox_running_dec() {
    METRICS.sandboxes_running.dec();
}

/// Records how long starting a sandbox took.
pub fn observe_sandbox_start(took: Duration) {
    METRICS.sandbox_start.observe(took.as_secs_f64());
}

/// Counts `n` statements of learners' SQL run.
pub fn sql_statements_run(n: u64) {
    METRICS.sql_statements.inc_by(n);
}

/// Counts one statement PostgreSQL rejected.
pub fn sql_error() {
    METRICS.sql_errors.inc();
}

/// Counts one exercise check that passed.
pub fn check_passed() {
    METRICS.checks_passed.inc();
}

/// Counts one Content-Security-Policy violation a browser reported.
pub fn csp_violation() {
    METRICS.csp_violations.inc();
}

/// Records one store write, from queued to committed.
pub fn observe_store_write(took: Duration) {
    METRICS.store_write.observe(took.as_secs_f64());
}

/// Records one batch the store's writer committed, of `jobs` writes.
pub fn observe_store_batch(jobs: usize) {
    METRICS.store_batch.observe(jobs as f64);
}

/// Records one HTTP request. `route` must be a route template (bounded).
pub fn observe_http(route: &str, method: &str, status: u16, took: Duration) {
    METRICS
        .http_requests
        .get_or_create(&HttpLabels {
            route: route.to_string(),
            method: method.to_string(),
            status,
        })
        .inc();
    METRICS
        .http_latency
        .get_or_create(&RouteLabels {
            route: route.to_string(),
        })
        .observe(took.as_secs_f64());
}

/// Every metric in the Prometheus text exposition format (version 0.0.4;
/// the OpenMetrics `# EOF` trailer is left out, `# UNIT` lines are comments).
pub fn render() -> String {
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode_registry(&mut out, &METRICS.registry);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_every_family_with_the_prefix() {
        observe_http("/healthz", "GET", 200, Duration::from_millis(3));
        observe_sandbox_start(Duration::from_millis(400));
        sql_statements_run(3);
        sql_error();
        check_passed();
        sandbox_running_inc();
        let text = render();
        for needle in [
            "pglab_http_requests_total{route=\"/healthz\",method=\"GET\",status=\"200\"}",
            "pglab_http_request_duration_seconds_bucket{le=\"0.005\",route=\"/healthz\"} 1",
            "pglab_sandboxes_running 1",
            "pglab_sandbox_start_seconds_count 1",
            "pglab_sql_statements_total 3",
            "pglab_sql_errors_total 1",
            "pglab_checks_passed_total 1",
            "pglab_build_info{version=",
        ] {
            assert!(text.contains(needle), "{needle} in\n{text}");
        }
        assert!(!text.contains("# EOF"), "{text}");
    }
}
