//! The seed-format JSON line layer.
//!
//! One JSON object per line, keys in the seed's order: `timestamp` (RFC 3339,
//! ms), `level`, `message`, `trace_id`, `request_id`, `tenant_id`, `ticket_id`,
//! `agent_id`, (`span_id` when known), `duration_ms`, `metadata` (every other
//! field of the event and of its enclosing spans). Correlation ids are read
//! from the event first, then from the innermost enclosing span that has them.
//!
//! Written by hand rather than with `tracing-subscriber`'s JSON formatter
//! because the seed's line shape is flat with a `metadata` object, and because
//! it must be fast: the line is built in a reused thread-local buffer with no
//! intermediate JSON tree (see docs/sdk.md for the benchmark).

use std::cell::RefCell;
use std::fmt::Write as _;
use std::io::Write as _;

use tracing::field::{Field, Visit};
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::Layer;

use super::redact::{is_secret_name, scrub, MASK};
use super::shipping::LogBuffer;

/// Correlation ids, in output order.
const CORRELATION: [&str; 6] = [
    "trace_id",
    "request_id",
    "tenant_id",
    "ticket_id",
    "agent_id",
    "span_id",
];

fn correlation_slot(name: &str) -> Option<usize> {
    CORRELATION.iter().position(|c| *c == name)
}

#[derive(Debug, Clone)]
enum FieldValue {
    I64(i64),
    U64(u64),
    F64(f64),
    Bool(bool),
    Str(String),
}

/// Fields recorded on a span, kept in its extensions.
#[derive(Debug, Default)]
struct SpanFields {
    correlation: [Option<String>; 6],
    other: Vec<(&'static str, FieldValue)>,
}

impl SpanFields {
    fn set(&mut self, name: &'static str, value: FieldValue) {
        if let Some(i) = correlation_slot(name) {
            let text = match value {
                FieldValue::Str(s) => s,
                FieldValue::I64(n) => n.to_string(),
                FieldValue::U64(n) => n.to_string(),
                FieldValue::F64(n) => n.to_string(),
                FieldValue::Bool(b) => b.to_string(),
            };
            self.correlation[i] = Some(text);
            return;
        }
        let value = match value {
            FieldValue::Str(_) if secret(name) => FieldValue::Str(MASK.to_owned()),
            FieldValue::Str(s) => FieldValue::Str(scrub(&s).into_owned()),
            other => other,
        };
        match self.other.iter_mut().find(|(n, _)| *n == name) {
            Some(slot) => slot.1 = value,
            None => self.other.push((name, value)),
        }
    }
}

impl Visit for SpanFields {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.set(field.name(), FieldValue::Str(value.to_owned()));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.set(field.name(), FieldValue::Str(format!("{value:?}")));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.set(field.name(), FieldValue::I64(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.set(field.name(), FieldValue::U64(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.set(field.name(), FieldValue::F64(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.set(field.name(), FieldValue::Bool(value));
    }
}

/// Whether a field name is a secret's; a cheap scan first, since it runs for
/// every field of every event.
fn secret(name: &str) -> bool {
    let b = name.as_bytes();
    let hint = |pat: &[u8]| b.windows(pat.len()).any(|w| w.eq_ignore_ascii_case(pat));
    (hint(b"auth")
        || hint(b"key")
        || hint(b"token")
        || hint(b"pass")
        || hint(b"secret")
        || hint(b"cookie")
        || hint(b"credential"))
        && is_secret_name(name)
}

fn push_json_str(out: &mut Vec<u8>, s: &str) {
    // serde_json's string writer does the escaping; writing to a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

fn push_value(out: &mut Vec<u8>, v: &FieldValue) {
    match v {
        FieldValue::I64(n) => {
            let _ = write!(out, "{n}");
        }
        FieldValue::U64(n) => {
            let _ = write!(out, "{n}");
        }
        FieldValue::F64(n) if n.is_finite() => {
            let _ = serde_json::to_writer(&mut *out, n);
        }
        FieldValue::F64(_) => out.extend_from_slice(b"null"),
        FieldValue::Bool(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        FieldValue::Str(s) => push_json_str(out, s),
    }
}

/// Per-thread scratch space, reused for every event.
#[derive(Default)]
struct Scratch {
    line: Vec<u8>,
    meta: Vec<u8>,
    names: Vec<&'static str>,
    message: String,
    debug: String,
}

thread_local! {
    static SCRATCH: RefCell<Scratch> = RefCell::new(Scratch::default());
    static CLOCK: RefCell<(i64, [u8; 19])> = const { RefCell::new((i64::MIN, [0; 19])) };
}

/// Appends `YYYY-MM-DDTHH:MM:SS.mmmZ` for now, formatting the date part once
/// per second per thread.
fn push_timestamp(out: &mut Vec<u8>) {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    let secs = i64::try_from(now.as_secs()).unwrap_or(0);
    let millis = now.subsec_millis();
    CLOCK.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != secs {
            let t = time::OffsetDateTime::from_unix_timestamp(secs)
                .unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
            let mut buf = [0u8; 19];
            let s = format!(
                "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}",
                t.year(),
                u8::from(t.month()),
                t.day(),
                t.hour(),
                t.minute(),
                t.second()
            );
            if s.len() == 19 {
                buf.copy_from_slice(s.as_bytes());
            }
            *c = (secs, buf);
        }
        out.extend_from_slice(&c.1);
    });
    out.push(b'.');
    out.push(b'0' + (millis / 100) as u8);
    out.push(b'0' + (millis / 10 % 10) as u8);
    out.push(b'0' + (millis % 10) as u8);
    out.push(b'Z');
}

/// Collects an event's fields: message and correlation apart, the rest
/// written straight into the metadata buffer.
struct EventVisitor<'a> {
    s: &'a mut Scratch,
    correlation: [Option<String>; 6],
    duration_ms: Option<f64>,
    fatal: bool,
}

impl EventVisitor<'_> {
    fn meta_key(&mut self, name: &'static str) {
        if !self.s.meta.is_empty() {
            self.s.meta.push(b',');
        }
        push_json_str(&mut self.s.meta, name);
        self.s.meta.push(b':');
        self.s.names.push(name);
    }

    fn text(&mut self, name: &'static str, value: &str) {
        if name == "message" {
            self.s.message.push_str(value);
        } else if let Some(i) = correlation_slot(name) {
            self.correlation[i] = Some(value.to_owned());
        } else {
            self.meta_key(name);
            if secret(name) {
                push_json_str(&mut self.s.meta, MASK);
            } else {
                let clean = scrub(value);
                push_json_str(&mut self.s.meta, &clean);
            }
        }
    }

    fn number(&mut self, name: &'static str, value: FieldValue) {
        if name == "duration_ms" {
            self.duration_ms = match value {
                FieldValue::I64(n) => Some(n as f64),
                FieldValue::U64(n) => Some(n as f64),
                FieldValue::F64(n) => Some(n),
                _ => None,
            };
        } else if let Some(i) = correlation_slot(name) {
            let mut v = Vec::new();
            push_value(&mut v, &value);
            self.correlation[i] = String::from_utf8(v).ok();
        } else {
            self.meta_key(name);
            push_value(&mut self.s.meta, &value);
        }
    }
}

impl Visit for EventVisitor<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.text(field.name(), value);
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.s.message, "{value:?}");
            return;
        }
        let mut tmp = std::mem::take(&mut self.s.debug);
        tmp.clear();
        let _ = write!(tmp, "{value:?}");
        self.text(field.name(), &tmp);
        self.s.debug = tmp;
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.number(field.name(), FieldValue::I64(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.number(field.name(), FieldValue::U64(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.number(field.name(), FieldValue::F64(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        if field.name() == "fatal" {
            self.fatal = value;
        } else {
            self.number(field.name(), FieldValue::Bool(value));
        }
    }
}

/// The layer. `W` says where lines go (stdout, a rotating file, a test buffer).
pub struct SeedJsonLayer<W> {
    make_writer: W,
    shipper: Option<LogBuffer>,
}

impl<W> SeedJsonLayer<W>
where
    W: for<'w> MakeWriter<'w> + 'static,
{
    /// A layer writing lines to `make_writer`.
    pub fn new(make_writer: W) -> Self {
        SeedJsonLayer {
            make_writer,
            shipper: None,
        }
    }

    /// Also queue every line for shipping to the collector (with the tracer's
    /// flush).
    pub fn with_shipper(mut self, buffer: LogBuffer) -> Self {
        self.shipper = Some(buffer);
        self
    }
}

fn level_name(level: &Level, fatal: bool) -> &'static [u8] {
    if fatal {
        return b"fatal";
    }
    match *level {
        Level::TRACE | Level::DEBUG => b"debug",
        Level::INFO => b"info",
        Level::WARN => b"warn",
        Level::ERROR => b"error",
    }
}

impl<S, W> Layer<S> for SeedJsonLayer<W>
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    W: for<'w> MakeWriter<'w> + 'static,
{
    fn on_new_span(
        &self,
        attrs: &tracing::span::Attributes<'_>,
        id: &tracing::span::Id,
        ctx: Context<'_, S>,
    ) {
        if let Some(span) = ctx.span(id) {
            let mut fields = SpanFields::default();
            attrs.record(&mut fields);
            span.extensions_mut().insert(fields);
        }
    }

    fn on_record(
        &self,
        id: &tracing::span::Id,
        values: &tracing::span::Record<'_>,
        ctx: Context<'_, S>,
    ) {
        if let Some(span) = ctx.span(id) {
            let mut ext = span.extensions_mut();
            if let Some(fields) = ext.get_mut::<SpanFields>() {
                values.record(fields);
            }
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        SCRATCH.with(|cell| {
            let Ok(mut scratch) = cell.try_borrow_mut() else {
                return; // an event logged while formatting another: drop it
            };
            let s = &mut *scratch;
            s.line.clear();
            s.meta.clear();
            s.names.clear();
            s.message.clear();
            let mut v = EventVisitor {
                s,
                correlation: Default::default(),
                duration_ms: None,
                fatal: false,
            };
            event.record(&mut v);
            let EventVisitor {
                s,
                mut correlation,
                duration_ms,
                fatal,
            } = v;

            // Enclosing spans, innermost first: fill what the event left open.
            let spans: Vec<_> = ctx
                .event_scope(event)
                .map(|scope| scope.collect())
                .unwrap_or_default();
            let exts: Vec<_> = spans.iter().map(|span| span.extensions()).collect();
            for ext in &exts {
                let Some(fields) = ext.get::<SpanFields>() else {
                    continue;
                };
                for (slot, value) in correlation.iter_mut().zip(&fields.correlation) {
                    if slot.is_none() {
                        slot.clone_from(value);
                    }
                }
                for (name, value) in &fields.other {
                    if !s.names.contains(name) {
                        if !s.meta.is_empty() {
                            s.meta.push(b',');
                        }
                        push_json_str(&mut s.meta, name);
                        s.meta.push(b':');
                        push_value(&mut s.meta, value);
                        s.names.push(name);
                    }
                }
            }

            let line = &mut s.line;
            line.extend_from_slice(b"{\"timestamp\":\"");
            push_timestamp(line);
            line.extend_from_slice(b"\",\"level\":\"");
            line.extend_from_slice(level_name(event.metadata().level(), fatal));
            line.extend_from_slice(b"\",\"message\":");
            let message = scrub(&s.message);
            push_json_str(line, &message);
            for (i, name) in CORRELATION.iter().enumerate() {
                let value = correlation[i].as_deref();
                if *name == "span_id" && value.is_none() {
                    continue; // not part of the seed's line; only when known
                }
                line.push(b',');
                push_json_str(line, name);
                line.push(b':');
                match value {
                    Some(v) => push_json_str(line, v),
                    None => line.extend_from_slice(b"null"),
                }
            }
            line.extend_from_slice(b",\"duration_ms\":");
            match duration_ms {
                Some(d) if d.is_finite() => {
                    let _ = serde_json::to_writer(&mut *line, &d);
                }
                _ => line.extend_from_slice(b"null"),
            }
            line.extend_from_slice(b",\"metadata\":{");
            line.extend_from_slice(&s.meta);
            line.extend_from_slice(b"}}\n");

            let mut writer = self.make_writer.make_writer_for(event.metadata());
            let _ = writer.write_all(line);
            if let Some(shipper) = &self.shipper {
                shipper.push(line);
            }
        });
    }
}
