//! Forwards the core's `tracing` records to the app's [`Logger`].
//!
//! Records are queued (up to 1,024; more are dropped and counted) and delivered from an
//! engine thread, so logging never calls foreign code inside the app's own call and a slow
//! logger never slows the engine.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Once, RwLock};

use tokio::sync::mpsc;
use tracing::field::{Field, Visit};
use tracing::{Level, Subscriber};
use tracing_subscriber::layer::{Context, Layer, SubscriberExt};

use crate::callbacks::{try_foreign, LogLevel, Logger};

const QUEUE: usize = 1024;

struct Record {
    level: LogLevel,
    target: String,
    message: String,
}

struct Sink {
    level: LogLevel,
    tx: mpsc::Sender<Record>,
}

static SINK: RwLock<Option<Sink>> = RwLock::new(None);
static INSTALL: Once = Once::new();
static DROPPED: AtomicU64 = AtomicU64::new(0);

/// Sends the library's log records at `level` and above to `logger`. May be called at any
/// time; the last call wins. [`clear_logger`] stops logging.
#[uniffi::export]
pub fn set_logger(logger: Arc<dyn Logger>, level: LogLevel) {
    install(Some(logger), level);
}

/// Stops sending log records to the app.
#[uniffi::export]
pub fn clear_logger() {
    install(None, LogLevel::Error);
}

// The logger is not an `Option` parameter: uniffi-bindgen-react-native 0.31.0-5 cannot
// lower an optional foreign-trait object (see docs/react-native.md).
fn install(logger: Option<Arc<dyn Logger>>, level: LogLevel) {
    INSTALL.call_once(|| {
        let subscriber = tracing_subscriber::registry().with(ForwardLayer);
        // A Rust host may already have its own subscriber; then it keeps the records.
        let _ = tracing::subscriber::set_global_default(subscriber);
    });
    let sink = logger.map(|logger| {
        let (tx, mut rx) = mpsc::channel::<Record>(QUEUE);
        outbox::runtime::handle().spawn(async move {
            while let Some(r) = rx.recv().await {
                let logger = Arc::clone(&logger);
                // Not logged: a logger that throws on every record would loop forever.
                if try_foreign(move || logger.log(r.level, r.target, r.message)).is_err() {
                    DROPPED.fetch_add(1, Ordering::Relaxed);
                }
            }
        });
        Sink { level, tx }
    });
    *SINK.write().unwrap_or_else(|p| p.into_inner()) = sink;
}

/// How many log records were dropped because the logger fell behind or threw.
#[uniffi::export]
pub fn dropped_log_records() -> u64 {
    DROPPED.load(Ordering::Relaxed)
}

fn level_of(level: &Level) -> LogLevel {
    match *level {
        Level::TRACE => LogLevel::Trace,
        Level::DEBUG => LogLevel::Debug,
        Level::INFO => LogLevel::Info,
        Level::WARN => LogLevel::Warn,
        _ => LogLevel::Error,
    }
}

struct ForwardLayer;

impl<S: Subscriber> Layer<S> for ForwardLayer {
    fn on_event(&self, event: &tracing::Event<'_>, _ctx: Context<'_, S>) {
        let guard = SINK.read().unwrap_or_else(|p| p.into_inner());
        let Some(sink) = guard.as_ref() else { return };
        let level = level_of(event.metadata().level());
        if level < sink.level {
            return;
        }
        let mut text = Text::default();
        event.record(&mut text);
        let record = Record { level, target: event.metadata().target().to_string(), message: text.finish() };
        if sink.tx.try_send(record).is_err() {
            DROPPED.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// Collects an event's message and fields as `message key=value ...`.
#[derive(Default)]
struct Text {
    message: String,
    fields: String,
}

impl Text {
    fn finish(self) -> String {
        if self.fields.is_empty() {
            self.message
        } else if self.message.is_empty() {
            self.fields.trim_start().to_string()
        } else {
            format!("{}{}", self.message, self.fields)
        }
    }
}

impl Visit for Text {
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={value:?}", field.name());
        }
    }

    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={value}", field.name());
        }
    }
}
