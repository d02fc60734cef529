//! Log lines: the seed's structured log format, as stored and served.
//!
//! One JSON object per line: `timestamp, level, message, trace_id, request_id,
//! tenant_id, ticket_id, agent_id, duration_ms, metadata{…}` (plus `span_id`,
//! which ties a line to the span it was logged in). Unknown fields are kept in
//! `metadata`. [`decode_logs`] takes one object, an array, `{"logs": [...]}`, or
//! newline-delimited JSON, and fails the whole body on the first bad line.

use serde::ser::{Serialize, SerializeMap, Serializer};
use serde_json::Value;

use crate::limits::Limits;
use crate::seed::{check_attributes, join, optional_id, take, time_value, DecodeError};
use crate::span::Attributes;
use crate::timestamp::format_rfc3339;

/// Severity, ordered: a filter for `warn` keeps warn, error and fatal.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum LogLevel {
    /// Developer detail.
    Debug,
    /// Normal operation.
    Info,
    /// Something unexpected that was handled.
    Warn,
    /// A failed operation.
    Error,
    /// The process cannot go on.
    Fatal,
}

impl LogLevel {
    /// Every level, least severe first.
    pub const ALL: [LogLevel; 5] = [
        LogLevel::Debug,
        LogLevel::Info,
        LogLevel::Warn,
        LogLevel::Error,
        LogLevel::Fatal,
    ];

    /// The lowercase wire name.
    pub fn as_str(self) -> &'static str {
        match self {
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
            LogLevel::Fatal => "fatal",
        }
    }

    /// Parses a level name case-insensitively (`warning` and `trace` too).
    pub fn parse(text: &str) -> Option<LogLevel> {
        match text.to_ascii_lowercase().as_str() {
            "trace" | "debug" => Some(LogLevel::Debug),
            "info" => Some(LogLevel::Info),
            "warn" | "warning" => Some(LogLevel::Warn),
            "error" => Some(LogLevel::Error),
            "fatal" | "critical" => Some(LogLevel::Fatal),
            _ => None,
        }
    }

    /// The small integer the store keeps (ordered like the levels).
    pub fn code(self) -> i64 {
        self as i64
    }

    /// Inverse of [`LogLevel::code`]; unknown codes read as info.
    pub fn from_code(code: i64) -> LogLevel {
        LogLevel::ALL
            .into_iter()
            .find(|l| l.code() == code)
            .unwrap_or(LogLevel::Info)
    }
}

/// One log line.
#[derive(Debug, Clone, PartialEq)]
pub struct LogRecord {
    /// Owner.
    pub tenant_id: String,
    /// When, Unix nanoseconds.
    pub time_ns: i64,
    /// Severity.
    pub level: LogLevel,
    /// The message.
    pub message: String,
    /// The trace it was logged in.
    pub trace_id: Option<String>,
    /// The span it was logged in.
    pub span_id: Option<String>,
    /// The HTTP request it was logged in.
    pub request_id: Option<String>,
    /// Ticket.
    pub ticket_id: Option<String>,
    /// Agent.
    pub agent_id: Option<String>,
    /// Duration of the operation the line reports, if any.
    pub duration_ms: Option<f64>,
    /// Every other field.
    pub metadata: Attributes,
}

impl LogRecord {
    /// A stable 64-bit fingerprint of the line's content (FNV-1a), so that a
    /// re-sent line is recognised and stored once. Stable across builds and
    /// platforms, unlike `std`'s hasher.
    pub fn fingerprint(&self) -> i64 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut feed = |bytes: &[u8]| {
            for &b in bytes.iter().chain(std::iter::once(&0xffu8)) {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
        };
        feed(self.tenant_id.as_bytes());
        feed(&self.time_ns.to_le_bytes());
        feed(self.level.as_str().as_bytes());
        feed(self.message.as_bytes());
        for part in [
            &self.trace_id,
            &self.span_id,
            &self.request_id,
            &self.ticket_id,
            &self.agent_id,
        ] {
            feed(part.as_deref().unwrap_or("\u{0}").as_bytes());
        }
        feed(&self.duration_ms.unwrap_or(f64::NAN).to_bits().to_le_bytes());
        feed(Value::Object(self.metadata.clone()).to_string().as_bytes());
        h as i64
    }
}

/// The query API's rendering: the seed's line format plus `span_id`.
impl Serialize for LogRecord {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut m = serializer.serialize_map(Some(11))?;
        m.serialize_entry("timestamp", &format_rfc3339(self.time_ns))?;
        m.serialize_entry("level", self.level.as_str())?;
        m.serialize_entry("message", &self.message)?;
        m.serialize_entry("trace_id", &self.trace_id)?;
        m.serialize_entry("span_id", &self.span_id)?;
        m.serialize_entry("request_id", &self.request_id)?;
        m.serialize_entry("tenant_id", &self.tenant_id)?;
        m.serialize_entry("ticket_id", &self.ticket_id)?;
        m.serialize_entry("agent_id", &self.agent_id)?;
        m.serialize_entry("duration_ms", &self.duration_ms)?;
        m.serialize_entry("metadata", &self.metadata)?;
        m.end()
    }
}

/// Decodes a `POST /api/logs` body: one object, an array, `{"logs": [...]}`,
/// or newline-delimited JSON (field paths then read `line 3.level`).
pub fn decode_logs(
    body: &[u8],
    limits: &Limits,
    default_tenant: Option<&str>,
) -> Result<Vec<LogRecord>, DecodeError> {
    let text = std::str::from_utf8(body).map_err(|e| {
        DecodeError::body(format!(
            "body is not valid UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        ))
    })?;
    let items: Vec<(String, Value)> = match serde_json::from_str::<Value>(text) {
        Ok(Value::Array(items)) => items
            .into_iter()
            .enumerate()
            .map(|(i, v)| (format!("[{i}]"), v))
            .collect(),
        Ok(Value::Object(mut map)) if map.contains_key("logs") && !map.contains_key("message") => {
            match map.remove("logs") {
                Some(Value::Array(items)) => items
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| (format!("logs[{i}]"), v))
                    .collect(),
                _ => return Err(DecodeError::field("logs", "`logs` must be an array")),
            }
        }
        Ok(v @ Value::Object(_)) => vec![(String::new(), v)],
        Ok(_) => {
            return Err(DecodeError::body(
                "body must be a log object, an array, {\"logs\": [...]}, or JSON lines",
            ))
        }
        Err(whole) => {
            if !text.trim().contains('\n') {
                return Err(DecodeError::body(format!("invalid JSON: {whole}")));
            }
            let mut items = Vec::new();
            for (i, line) in text.lines().enumerate() {
                if line.trim().is_empty() {
                    continue;
                }
                let v = serde_json::from_str(line).map_err(|e| {
                    DecodeError::field(
                        &format!("line {}", i + 1),
                        format!("line {}: invalid JSON: {e}", i + 1),
                    )
                })?;
                items.push((format!("line {}", i + 1), v));
            }
            items
        }
    };
    if items.len() > limits.max_spans_per_request {
        return Err(DecodeError::body(format!(
            "too many log lines in one request: {} (limit {})",
            items.len(),
            limits.max_spans_per_request
        )));
    }
    items
        .into_iter()
        .map(|(path, v)| decode_line(v, &path, limits, default_tenant))
        .collect()
}

fn decode_line(
    value: Value,
    path: &str,
    limits: &Limits,
    default_tenant: Option<&str>,
) -> Result<LogRecord, DecodeError> {
    let here = if path.is_empty() { "$" } else { path };
    let Value::Object(mut map) = value else {
        return Err(DecodeError::field(
            here,
            format!("{here}: a log line must be a JSON object"),
        ));
    };
    let f = |key: &str| join(path, key);
    let fail = |key: &str, msg: String| DecodeError::field(&f(key), format!("{}: {msg}", f(key)));

    let time_ns = match take(&mut map, &["timestamp", "time", "ts"]) {
        Some((key, v)) => time_value(&v, &f(key))?,
        None => {
            return Err(fail(
                "timestamp",
                "missing required field `timestamp`".into(),
            ))
        }
    };
    let level = match take(&mut map, &["level"]) {
        Some((_, Value::String(s))) => LogLevel::parse(&s).ok_or_else(|| {
            fail(
                "level",
                format!("unknown level {s:?} (expected debug, info, warn, error or fatal)"),
            )
        })?,
        Some(_) => return Err(fail("level", "`level` must be a string".into())),
        None => return Err(fail("level", "missing required field `level`".into())),
    };
    let message = match take(&mut map, &["message", "msg"]) {
        Some((_, Value::String(s))) if s.len() <= limits.max_attribute_value_bytes => s,
        Some((_, Value::String(_))) => return Err(fail("message", "message is too long".into())),
        Some(_) => return Err(fail("message", "`message` must be a string".into())),
        None => return Err(fail("message", "missing required field `message`".into())),
    };
    let tenant_id = match optional_id(&mut map, &["tenant_id", "tenantId"], path, limits)? {
        Some(t) => t,
        None => default_tenant
            .map(str::to_owned)
            .ok_or_else(|| fail("tenant_id", "missing required field `tenant_id`".into()))?,
    };
    let trace_id = optional_id(&mut map, &["trace_id", "traceId"], path, limits)?;
    let span_id = optional_id(&mut map, &["span_id", "spanId"], path, limits)?;
    let request_id = optional_id(&mut map, &["request_id", "requestId"], path, limits)?;
    let ticket_id = optional_id(&mut map, &["ticket_id", "ticketId"], path, limits)?;
    let agent_id = optional_id(&mut map, &["agent_id", "agentId"], path, limits)?;
    let duration_ms = match take(&mut map, &["duration_ms", "durationMs"]) {
        None => None,
        Some((key, Value::Number(n))) => match n.as_f64() {
            Some(ms) if (0.0..1e12).contains(&ms) => Some(ms),
            _ => {
                return Err(fail(
                    key,
                    "duration must be a non-negative number of milliseconds".into(),
                ))
            }
        },
        Some((key, _)) => return Err(fail(key, "duration must be a number".into())),
    };
    let mut metadata = match take(&mut map, &["metadata"]) {
        None => Attributes::new(),
        Some((_, Value::Object(m))) => m,
        Some(_) => return Err(fail("metadata", "`metadata` must be an object".into())),
    };
    for (key, value) in map {
        metadata.entry(key).or_insert(value);
    }
    check_attributes(&metadata, &f("metadata"), limits)?;
    Ok(LogRecord {
        tenant_id,
        time_ns,
        level,
        message,
        trace_id,
        span_id,
        request_id,
        ticket_id,
        agent_id,
        duration_ms,
        metadata,
    })
}

/// Checks a log line decoded from another wire format (OTLP) against the
/// bounds seed-format lines get: ids, message size, metadata.
pub fn check_log(log: &LogRecord, path: &str, limits: &Limits) -> Result<(), DecodeError> {
    for (field, value) in [
        ("tenant_id", Some(&log.tenant_id)),
        ("trace_id", log.trace_id.as_ref()),
        ("span_id", log.span_id.as_ref()),
        ("request_id", log.request_id.as_ref()),
        ("ticket_id", log.ticket_id.as_ref()),
        ("agent_id", log.agent_id.as_ref()),
    ] {
        if let Some(v) = value {
            if v.is_empty() || v.len() > limits.max_id_bytes {
                return Err(DecodeError::field(
                    &join(path, field),
                    format!("{field} must be 1 to {} bytes", limits.max_id_bytes),
                ));
            }
        }
    }
    if log.message.len() > limits.max_attribute_value_bytes {
        return Err(DecodeError::field(
            &join(path, "body"),
            format!(
                "message larger than {} bytes",
                limits.max_attribute_value_bytes
            ),
        ));
    }
    check_attributes(&log.metadata, &join(path, "attributes"), limits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn seed_line() -> Value {
        json!({
            "timestamp": "2025-12-14T10:30:45.123Z",
            "level": "info",
            "message": "Ticket claimed by agent",
            "trace_id": "abc123",
            "request_id": "req_xyz",
            "tenant_id": "tenant_001",
            "ticket_id": "ticket_456",
            "agent_id": "agent_789",
            "duration_ms": 45,
            "metadata": {}
        })
    }

    fn decode(body: &str) -> Result<Vec<LogRecord>, DecodeError> {
        decode_logs(body.as_bytes(), &Limits::default(), None)
    }

    #[test]
    fn the_seed_line_decodes_and_renders_back() {
        let logs = decode(&seed_line().to_string()).expect("seed line");
        let l = &logs[0];
        assert_eq!(l.level, LogLevel::Info);
        assert_eq!(l.duration_ms, Some(45.0));
        assert_eq!(l.request_id.as_deref(), Some("req_xyz"));
        let back = serde_json::to_value(l).expect("json");
        for key in [
            "timestamp",
            "level",
            "message",
            "trace_id",
            "request_id",
            "tenant_id",
            "ticket_id",
            "agent_id",
        ] {
            assert_eq!(back[key], seed_line()[key], "{key}");
        }
    }

    #[test]
    fn every_body_shape_decodes() {
        let line = seed_line().to_string();
        assert_eq!(decode(&format!("[{line},{line}]")).expect("array").len(), 2);
        assert_eq!(
            decode(&format!("{{\"logs\":[{line}]}}"))
                .expect("logs")
                .len(),
            1
        );
        assert_eq!(
            decode(&format!("{line}\n{line}\n\n{line}\n"))
                .expect("ndjson")
                .len(),
            3
        );
    }

    #[test]
    fn bad_lines_are_refused_with_their_line_number() {
        let good = seed_line().to_string();
        let mut bad = seed_line();
        bad["level"] = json!("loud");
        let err = decode(&format!("{good}\n{good}\n{bad}\n")).expect_err("bad level");
        assert_eq!(err.field.as_deref(), Some("line 3.level"));
        assert!(err.message.starts_with("line 3.level"), "{}", err.message);
        let err = decode(&format!("{good}\n{{oops\n")).expect_err("bad json");
        assert_eq!(err.field.as_deref(), Some("line 2"));
        let mut no_msg = seed_line();
        no_msg.as_object_mut().expect("object").remove("message");
        assert_eq!(
            decode(&json!([seed_line(), no_msg]).to_string())
                .expect_err("no message")
                .field
                .as_deref(),
            Some("[1].message")
        );
    }

    #[test]
    fn unknown_fields_go_to_metadata_and_levels_order() {
        let mut v = seed_line();
        v["model"] = json!("claude");
        assert_eq!(
            decode(&v.to_string()).expect("ok")[0].metadata["model"],
            "claude"
        );
        assert!(LogLevel::Warn > LogLevel::Info && LogLevel::Fatal > LogLevel::Error);
        assert_eq!(LogLevel::parse("WARNING"), Some(LogLevel::Warn));
    }

    const PINNED: i64 = 5_578_982_950_970_471_768;

    #[test]
    fn fingerprints_tell_lines_apart_and_are_stable() {
        let a = decode(&seed_line().to_string()).expect("ok").remove(0);
        let mut b = a.clone();
        assert_eq!(a.fingerprint(), b.fingerprint());
        b.message.push('!');
        assert_ne!(a.fingerprint(), b.fingerprint());
        // Pinned: fingerprints are stored, so the function must never change.
        assert_eq!(a.fingerprint(), PINNED, "got {}", a.fingerprint());
    }
}
