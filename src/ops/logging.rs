//! Log output and the HTTP trace layer.
//!
//! Logs go to stderr (a container's log), as text for people or JSON (one
//! object per line) for log collectors: `--log-format` / `PGLAB_LOG_FORMAT`.
//! `RUST_LOG` overrides the level filter.
//!
//! What is never logged at info level or above: passwords, tokens, cookies
//! and learners' SQL. So the HTTP trace layer records the method, the route
//! template and the path (never the query string, never a header), and the
//! default filter silences sqlx's statement log (`sqlx::query`), which would
//! print learners' SQL with its values. Handlers that know the learner record
//! it in the request span: `tracing::Span::current().record("learner", id)`.
//!
//! Other areas add their own tracing layers (the console's NOTICE collector)
//! through [`init_tracing`]'s `extra_layers`; the level filter applies only to
//! the log output, so each extra layer brings its own filter.

use std::io::IsTerminal;
use std::time::Duration;

use axum::body::Body;
use axum::extract::MatchedPath;
use axum::http::{Request, Response};
use clap::ValueEnum;
use tower_http::classify::{ServerErrorsAsFailures, SharedClassifier};
use tower_http::trace::{DefaultOnRequest, TraceLayer};
use tracing::Span;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::{EnvFilter, Layer, Registry};

/// How log lines look.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    #[default]
    Text,
    /// One JSON object per line.
    Json,
}

/// A tracing layer another area adds (with its own filter).
pub type BoxedLayer = Box<dyn Layer<Registry> + Send + Sync + 'static>;

/// The level filter when `RUST_LOG` is not set. `sqlx::query` logs
/// statements with their text (learners' SQL and values), even slow ones at
/// warn: errors only; `sqlx::postgres::notice` logs learners' NOTICEs and
/// WARNINGs (the console relays them itself): off.
pub const DEFAULT_FILTER: &str =
    "info,tower_http=info,sqlx=warn,sqlx::query=error,sqlx::postgres::notice=off,bollard=warn";

/// Installs the global subscriber: the extra layers (unfiltered here), then
/// the log output filtered by `RUST_LOG` (when set, non-empty and valid) or
/// [`DEFAULT_FILTER`]. A second call does nothing.
pub fn init_tracing(format: LogFormat, extra_layers: Vec<BoxedLayer>) {
    // An empty RUST_LOG (compose files pass unset settings as empty) means
    // the default, not "log nothing".
    let filter = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| !v.trim().is_empty())
        .and_then(|v| EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| EnvFilter::new(DEFAULT_FILTER));
    let output: BoxedLayer = match format {
        LogFormat::Text => tracing_subscriber::fmt::layer()
            .with_writer(std::io::stderr)
            // Colours only for a person at a terminal, not in `docker logs`.
            .with_ansi(std::io::stderr().is_terminal())
            .with_filter(filter)
            .boxed(),
        LogFormat::Json => tracing_subscriber::fmt::layer()
            .json()
            .with_current_span(true)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .with_filter(filter)
            .boxed(),
    };
    let mut layers = extra_layers;
    layers.push(output);
    let _ = tracing_subscriber::registry().with(layers).try_init();
}

/// The HTTP trace layer's type (function pointers keep it nameable).
pub type HttpTraceLayer = TraceLayer<
    SharedClassifier<ServerErrorsAsFailures>,
    fn(&Request<Body>) -> Span,
    DefaultOnRequest,
    fn(&Response<Body>, Duration, &Span),
>;

/// Traces each request in a span with method, route and path, and logs one
/// info line when it is answered. Headers (Authorization, Cookie) and the
/// query string are never recorded.
pub fn http_trace_layer() -> HttpTraceLayer {
    TraceLayer::new_for_http()
        .make_span_with(request_span as fn(&Request<Body>) -> Span)
        .on_response(log_response as fn(&Response<Body>, Duration, &Span))
}

fn request_span(req: &Request<Body>) -> Span {
    let route = req
        .extensions()
        .get::<MatchedPath>()
        .map(|m| m.as_str())
        .unwrap_or("unmatched");
    tracing::info_span!(
        "request",
        method = %req.method(),
        route,
        path = req.uri().path(),
        learner = tracing::field::Empty,
    )
}

fn log_response(res: &Response<Body>, latency: Duration, _span: &Span) {
    tracing::info!(
        status = res.status().as_u16(),
        latency_ms = latency.as_secs_f64() * 1000.0,
        "answered"
    );
}
