//! NOTICE and WARNING messages of learners' statements.
//!
//! sqlx does not return the server's notices: it only emits each one as a
//! tracing event with target `sqlx::postgres::notice` (message text, level by
//! severity). The runner executes every statement inside a span named
//! [`SPAN_NAME`] carrying a `sink` id; [`NoticeLayer`] finds that span among
//! the event's ancestors and appends the notice to the sink, so that each
//! notice lands on the statement (and learner) that caused it even when many
//! learners run at once. The layer must be installed in the process's
//! subscriber (`cli.rs` does it; tests call [`init_for_tests`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{LazyLock, Mutex};

use serde::Serialize;
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber, span};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::{Context, Filter};
use tracing_subscriber::registry::LookupSpan;

/// The name of the span the runner opens around a statement.
pub const SPAN_NAME: &str = "pglab_console_statement";
const NOTICE_TARGET: &str = "sqlx::postgres::notice";

/// One message the server sent while a statement ran.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Notice {
    /// `NOTICE`, `WARNING`, `INFO`, `DEBUG` (what sqlx's level tells).
    pub severity: String,
    pub message: String,
}

static SINKS: LazyLock<Mutex<HashMap<u64, Vec<Notice>>>> = LazyLock::new(Default::default);
static NEXT: AtomicU64 = AtomicU64::new(1);

/// Collects the notices of one statement; unregisters itself on drop.
pub struct NoticeSink {
    id: u64,
}

impl NoticeSink {
    pub fn new() -> Self {
        let id = NEXT.fetch_add(1, Ordering::Relaxed);
        lock().insert(id, Vec::new());
        Self { id }
    }

    /// The span to instrument the statement's future with.
    pub fn span(&self) -> tracing::Span {
        tracing::span!(Level::INFO, "pglab_console_statement", sink = self.id)
    }

    /// The notices received so far.
    pub fn take(&self) -> Vec<Notice> {
        lock()
            .get_mut(&self.id)
            .map(std::mem::take)
            .unwrap_or_default()
    }
}

impl Default for NoticeSink {
    fn default() -> Self {
        Self::new()
    }
}

impl Drop for NoticeSink {
    fn drop(&mut self) {
        lock().remove(&self.id);
    }
}

fn lock() -> std::sync::MutexGuard<'static, HashMap<u64, Vec<Notice>>> {
    // A poisoned map only means a panic elsewhere mid-push: the data is fine.
    SINKS.lock().unwrap_or_else(|p| p.into_inner())
}

/// Routes sqlx's notice events to the sink of the enclosing statement span.
pub struct NoticeLayer;

struct SinkId(u64);

#[derive(Default)]
struct Fields {
    sink: Option<u64>,
    message: Option<String>,
}

impl Visit for Fields {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == "sink" {
            self.sink = Some(value);
        }
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message = Some(value.to_string());
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            self.message = Some(format!("{value:?}"));
        }
    }
}

impl<S> Layer<S> for NoticeLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &span::Attributes<'_>, id: &span::Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != SPAN_NAME {
            return;
        }
        let mut fields = Fields::default();
        attrs.record(&mut fields);
        if let (Some(sink), Some(span)) = (fields.sink, ctx.span(id)) {
            span.extensions_mut().insert(SinkId(sink));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        if event.metadata().target() != NOTICE_TARGET {
            return;
        }
        let Some(scope) = ctx.event_scope(event) else {
            return;
        };
        for span in scope {
            if let Some(SinkId(sink)) = span.extensions().get::<SinkId>() {
                let mut fields = Fields::default();
                event.record(&mut fields);
                let severity = match *event.metadata().level() {
                    Level::ERROR => "ERROR",
                    Level::WARN => "WARNING",
                    Level::INFO => "NOTICE",
                    Level::DEBUG => "DEBUG",
                    Level::TRACE => "INFO",
                };
                if let Some(list) = lock().get_mut(sink) {
                    list.push(Notice {
                        severity: severity.to_string(),
                        message: fields.message.unwrap_or_default(),
                    });
                }
                return;
            }
        }
    }
}

/// Lets through only what the layer needs, whatever `RUST_LOG` says
/// elsewhere: the statement spans and sqlx's notice events at every level.
struct OnlyNotices;

impl<S> Filter<S> for OnlyNotices {
    fn enabled(&self, meta: &tracing::Metadata<'_>, _: &Context<'_, S>) -> bool {
        meta.target() == NOTICE_TARGET || meta.name() == SPAN_NAME
    }
}

/// The layer with its own filter, to add to a registry beside the log output.
pub fn layer<S>() -> impl Layer<S>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    NoticeLayer.with_filter(OnlyNotices)
}

/// Installs a subscriber with only the notice layer (for tests that use the
/// console module without the binary). Does nothing if one is installed.
pub fn init_for_tests() {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let _ = tracing_subscriber::registry().with(layer()).try_init();
}
