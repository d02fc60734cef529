//! The span: one timed operation of an agent or a platform request, as stored
//! and served by swarmscope.

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::{Map, Value};

use crate::timestamp::format_rfc3339;

/// Span and event attributes: a JSON object, key order not significant.
pub type Attributes = Map<String, Value>;

/// What role a span plays in a call, as in OpenTelemetry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SpanKind {
    /// Work inside one process (the seed's default).
    #[default]
    Internal,
    /// The receiving side of a remote call.
    Server,
    /// The calling side of a remote call.
    Client,
    /// The sending side of an asynchronous message.
    Producer,
    /// The receiving side of an asynchronous message.
    Consumer,
}

impl SpanKind {
    /// Every kind, in code order.
    pub const ALL: [SpanKind; 5] = [
        SpanKind::Internal,
        SpanKind::Server,
        SpanKind::Client,
        SpanKind::Producer,
        SpanKind::Consumer,
    ];

    /// The lowercase wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            SpanKind::Internal => "internal",
            SpanKind::Server => "server",
            SpanKind::Client => "client",
            SpanKind::Producer => "producer",
            SpanKind::Consumer => "consumer",
        }
    }

    /// Parses a wire name, case-insensitively, also accepting OpenTelemetry's
    /// `SPAN_KIND_SERVER` spelling.
    pub fn parse(text: &str) -> Option<SpanKind> {
        let lower = text.to_ascii_lowercase();
        let name = lower.strip_prefix("span_kind_").unwrap_or(&lower);
        SpanKind::ALL.into_iter().find(|k| k.as_str() == name)
    }

    /// The small integer the store keeps.
    pub fn code(self) -> i64 {
        match self {
            SpanKind::Internal => 0,
            SpanKind::Server => 1,
            SpanKind::Client => 2,
            SpanKind::Producer => 3,
            SpanKind::Consumer => 4,
        }
    }

    /// Inverse of [`SpanKind::code`]; unknown codes read as internal.
    pub fn from_code(code: i64) -> SpanKind {
        SpanKind::ALL
            .into_iter()
            .find(|k| k.code() == code)
            .unwrap_or_default()
    }
}

/// A span's outcome, as in OpenTelemetry and the seed (`ok`, `error`, `unset`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SpanStatus {
    /// Not set by the instrumentation (the seed's default).
    #[default]
    Unset,
    /// Completed successfully.
    Ok,
    /// Failed.
    Error,
}

impl SpanStatus {
    /// Every status, in code order.
    pub const ALL: [SpanStatus; 3] = [SpanStatus::Unset, SpanStatus::Ok, SpanStatus::Error];

    /// The lowercase wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            SpanStatus::Unset => "unset",
            SpanStatus::Ok => "ok",
            SpanStatus::Error => "error",
        }
    }

    /// Parses a wire name case-insensitively, also accepting OpenTelemetry's
    /// `STATUS_CODE_ERROR` spelling.
    pub fn parse(text: &str) -> Option<SpanStatus> {
        let lower = text.to_ascii_lowercase();
        let name = lower.strip_prefix("status_code_").unwrap_or(&lower);
        SpanStatus::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// The small integer the store keeps.
    pub fn code(self) -> i64 {
        match self {
            SpanStatus::Unset => 0,
            SpanStatus::Ok => 1,
            SpanStatus::Error => 2,
        }
    }

    /// Inverse of [`SpanStatus::code`]; unknown codes read as unset.
    pub fn from_code(code: i64) -> SpanStatus {
        SpanStatus::ALL
            .into_iter()
            .find(|s| s.code() == code)
            .unwrap_or_default()
    }
}

/// A timestamped annotation on a span (the seed's `addEvent`).
#[derive(Debug, Clone, PartialEq)]
pub struct SpanEvent {
    /// What happened.
    pub name: String,
    /// When, in Unix nanoseconds.
    pub time_ns: i64,
    /// Details.
    pub attributes: Attributes,
}

/// One span, with the correlation ids the seed puts on every span.
#[derive(Debug, Clone, PartialEq)]
pub struct Span {
    /// The tenant the span belongs to; every span has exactly one.
    pub tenant_id: String,
    /// The trace id, kept as sent (a UUID from the seed, 32 hex digits from W3C).
    pub trace_id: String,
    /// The span id, kept as sent.
    pub span_id: String,
    /// The parent's span id; `None` for a root (and for every seed span).
    pub parent_span_id: Option<String>,
    /// Operation name, e.g. `llm.generate`.
    pub name: String,
    /// Role in a call.
    pub kind: SpanKind,
    /// Outcome.
    pub status: SpanStatus,
    /// Human-readable detail of an error status.
    pub status_message: Option<String>,
    /// Start, Unix nanoseconds.
    pub start_ns: i64,
    /// End, Unix nanoseconds; `None` while the span has not ended.
    pub end_ns: Option<i64>,
    /// The ticket the agent works on.
    pub ticket_id: Option<String>,
    /// The agent that recorded the span.
    pub agent_id: Option<String>,
    /// The microVM the span ran in.
    pub vm_id: Option<String>,
    /// The emitting service (`swarm-platform`, `forge-agent`, …).
    pub service: Option<String>,
    /// Attributes, including any unknown top-level wire fields.
    pub attributes: Attributes,
    /// Events in the order they were added.
    pub events: Vec<SpanEvent>,
}

impl Span {
    /// Duration in milliseconds (fractional), when the span has ended.
    pub fn duration_ms(&self) -> Option<f64> {
        self.end_ns
            .map(|end| (end.saturating_sub(self.start_ns)) as f64 / 1_000_000.0)
    }

    /// The span as the query API renders it: snake_case keys, RFC 3339 times.
    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).unwrap_or(Value::Null)
    }
}

/// Events render as `{"name", "timestamp", "attributes"}`.
struct EventView<'a>(&'a SpanEvent);

impl Serialize for EventView<'_> {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut m = serializer.serialize_map(Some(3))?;
        m.serialize_entry("name", &self.0.name)?;
        m.serialize_entry("timestamp", &format_rfc3339(self.0.time_ns))?;
        m.serialize_entry("attributes", &self.0.attributes)?;
        m.end()
    }
}

/// The query API's rendering, written straight to the output (no
/// intermediate JSON tree: reading a trace is allocation-bound otherwise).
impl Serialize for Span {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut m = serializer.serialize_map(Some(17))?;
        m.serialize_entry("tenant_id", &self.tenant_id)?;
        m.serialize_entry("trace_id", &self.trace_id)?;
        m.serialize_entry("span_id", &self.span_id)?;
        m.serialize_entry("parent_span_id", &self.parent_span_id)?;
        m.serialize_entry("name", &self.name)?;
        m.serialize_entry("kind", self.kind.as_str())?;
        m.serialize_entry("status", self.status.as_str())?;
        m.serialize_entry("status_message", &self.status_message)?;
        m.serialize_entry("start_time", &format_rfc3339(self.start_ns))?;
        m.serialize_entry("end_time", &self.end_ns.map(format_rfc3339))?;
        m.serialize_entry("duration_ms", &self.duration_ms())?;
        m.serialize_entry("ticket_id", &self.ticket_id)?;
        m.serialize_entry("agent_id", &self.agent_id)?;
        m.serialize_entry("vm_id", &self.vm_id)?;
        m.serialize_entry("service", &self.service)?;
        m.serialize_entry("attributes", &self.attributes)?;
        let events: Vec<EventView<'_>> = self.events.iter().map(EventView).collect();
        m.serialize_entry("events", &events)?;
        m.end()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kinds_and_statuses_parse_every_spelling() {
        assert_eq!(SpanKind::parse("SERVER"), Some(SpanKind::Server));
        assert_eq!(
            SpanKind::parse("SPAN_KIND_CONSUMER"),
            Some(SpanKind::Consumer)
        );
        assert_eq!(SpanKind::parse("sideways"), None);
        assert_eq!(SpanStatus::parse("OK"), Some(SpanStatus::Ok));
        assert_eq!(
            SpanStatus::parse("STATUS_CODE_ERROR"),
            Some(SpanStatus::Error)
        );
        assert_eq!(SpanStatus::parse("failed"), None);
    }

    #[test]
    fn codes_round_trip() {
        for k in SpanKind::ALL {
            assert_eq!(SpanKind::from_code(k.code()), k);
        }
        for s in SpanStatus::ALL {
            assert_eq!(SpanStatus::from_code(s.code()), s);
        }
    }
}
