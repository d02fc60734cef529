//! Counting what a protobuf OTLP request holds before decoding it.
//!
//! prost builds the whole request tree at once, and a few bytes on the wire
//! can become a large struct (an empty span is 2 bytes on the wire and a few
//! hundred in memory: a 5 MB body of them is 2.5 million spans, over 1 GB).
//! [`scan`] walks the wire format with the OTLP schema, without allocating,
//! and answers how many items (spans, log records) the request holds and
//! about how much memory decoding it will take, so the collector can refuse
//! it, or wait for room, before prost allocates anything.

use std::mem::size_of;

use opentelemetry_proto::tonic::common::v1 as common;
use opentelemetry_proto::tonic::logs::v1 as logs;
use opentelemetry_proto::tonic::resource::v1 as resource;
use opentelemetry_proto::tonic::trace::v1 as trace;

use crate::OtlpError;

/// Deepest nesting of messages accepted: a request nests 5 deep to an
/// event's attributes, and each level of an attribute value nested to the
/// limit of 8 takes 3 more (KeyValueList → KeyValue → AnyValue).
const MAX_DEPTH: usize = 40;

/// What [`scan`] found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Shape {
    /// Spans or log records.
    pub items: usize,
    /// Messages of every kind.
    pub messages: usize,
    /// Bytes the decoded tree will take, about (struct sizes plus the
    /// strings and bytes it copies).
    pub decoded_bytes: usize,
    /// Bytes of resource and scope copied onto every item they hold: what the
    /// stored form costs beyond the wire size.
    pub amplified_bytes: usize,
}

/// Which request a body is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `ExportTraceServiceRequest`.
    Traces,
    /// `ExportLogsServiceRequest`.
    Logs,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Msg {
    TraceRequest,
    LogsRequest,
    ResourceSpans,
    ResourceLogs,
    Resource,
    ScopeSpans,
    ScopeLogs,
    Scope,
    Span,
    Event,
    Link,
    Status,
    LogRecord,
    KeyValue,
    AnyValue,
    ArrayValue,
    KeyValueList,
}

impl Msg {
    /// The submessage field `field` of this message holds, if it is one.
    fn child(self, field: u64) -> Option<Msg> {
        use Msg::*;
        Some(match (self, field) {
            (TraceRequest, 1) => ResourceSpans,
            (LogsRequest, 1) => ResourceLogs,
            (ResourceSpans, 1) | (ResourceLogs, 1) => Resource,
            (ResourceSpans, 2) => ScopeSpans,
            (ResourceLogs, 2) => ScopeLogs,
            (ScopeSpans, 1) | (ScopeLogs, 1) => Scope,
            (ScopeSpans, 2) => Span,
            (ScopeLogs, 2) => LogRecord,
            (Resource, 1) | (Scope, 3) | (Span, 9) | (Event, 3) | (Link, 4) | (LogRecord, 6) => {
                KeyValue
            }
            (Span, 11) => Event,
            (Span, 13) => Link,
            (Span, 15) => Status,
            (LogRecord, 5) | (KeyValue, 2) | (ArrayValue, 1) => AnyValue,
            (AnyValue, 5) => ArrayValue,
            (AnyValue, 6) => KeyValueList,
            (KeyValueList, 1) => KeyValue,
            _ => return None,
        })
    }

    /// What one decoded message of this kind takes in memory, before its strings.
    fn size(self) -> usize {
        use Msg::*;
        match self {
            TraceRequest | LogsRequest => 32,
            ResourceSpans => size_of::<trace::ResourceSpans>(),
            ResourceLogs => size_of::<logs::ResourceLogs>(),
            Resource => size_of::<resource::Resource>(),
            ScopeSpans => size_of::<trace::ScopeSpans>(),
            ScopeLogs => size_of::<logs::ScopeLogs>(),
            Scope => size_of::<common::InstrumentationScope>(),
            Span => size_of::<trace::Span>(),
            Event => size_of::<trace::span::Event>(),
            Link => size_of::<trace::span::Link>(),
            Status => size_of::<trace::Status>(),
            LogRecord => size_of::<logs::LogRecord>(),
            KeyValue => size_of::<common::KeyValue>(),
            AnyValue => size_of::<common::AnyValue>(),
            ArrayValue => size_of::<common::ArrayValue>(),
            KeyValueList => size_of::<common::KeyValueList>(),
        }
    }
}

fn invalid(what: &str) -> OtlpError {
    OtlpError(format!("not an OTLP protobuf request: {what}"))
}

fn varint(buf: &[u8], at: &mut usize) -> Result<u64, OtlpError> {
    let mut value = 0u64;
    for shift in (0..64).step_by(7) {
        let byte = *buf.get(*at).ok_or_else(|| invalid("truncated varint"))?;
        *at += 1;
        value |= u64::from(byte & 0x7f) << shift;
        if byte & 0x80 == 0 {
            return Ok(value);
        }
    }
    Err(invalid("varint longer than 10 bytes"))
}

struct Walk {
    shape: Shape,
    max_items: usize,
}

impl Walk {
    /// Walks one message's fields; returns the items found inside it.
    fn message(&mut self, buf: &[u8], msg: Msg, depth: usize) -> Result<usize, OtlpError> {
        if depth > MAX_DEPTH {
            return Err(invalid("messages nested too deep"));
        }
        let mut at = 0;
        let mut items = 0;
        // Bytes of the resource or scope of this message, copied onto each item.
        let mut shared = 0;
        while at < buf.len() {
            let key = varint(buf, &mut at)?;
            let field = key >> 3;
            match key & 7 {
                0 => {
                    varint(buf, &mut at)?;
                }
                1 => at += 8,
                5 => at += 4,
                2 => {
                    let len = usize::try_from(varint(buf, &mut at)?)
                        .map_err(|_| invalid("length out of range"))?;
                    let end = at
                        .checked_add(len)
                        .filter(|end| *end <= buf.len())
                        .ok_or_else(|| invalid("length past the end of the message"))?;
                    let body = &buf[at..end];
                    match msg.child(field) {
                        Some(child) => {
                            self.shape.messages += 1;
                            self.shape.decoded_bytes += child.size();
                            if matches!(child, Msg::Span | Msg::LogRecord) {
                                items += 1;
                                self.shape.items += 1;
                                if self.shape.items > self.max_items {
                                    return Err(OtlpError(format!(
                                        "too many items in one request (limit {})",
                                        self.max_items
                                    )));
                                }
                            }
                            if matches!(child, Msg::Resource | Msg::Scope) {
                                shared += len;
                            }
                            items += self.message(body, child, depth + 1)?;
                        }
                        // Strings and bytes are copied into the tree.
                        None => self.shape.decoded_bytes += len,
                    }
                    at = end;
                }
                _ => return Err(invalid("unsupported wire type")),
            }
            if at > buf.len() {
                return Err(invalid("field past the end of the message"));
            }
        }
        self.shape.amplified_bytes = self
            .shape
            .amplified_bytes
            .saturating_add(shared.saturating_mul(items));
        Ok(items)
    }
}

/// Walks a protobuf OTLP request of `kind` without decoding it, refusing it
/// as soon as it holds more than `max_items` spans or log records, nests
/// deeper than any OTLP request can, or is not well-formed protobuf.
pub fn scan(body: &[u8], kind: Kind, max_items: usize) -> Result<Shape, OtlpError> {
    let mut walk = Walk {
        shape: Shape::default(),
        max_items,
    };
    let top = match kind {
        Kind::Traces => Msg::TraceRequest,
        Kind::Logs => Msg::LogsRequest,
    };
    walk.message(body, top, 0)?;
    Ok(walk.shape)
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::{any_value, AnyValue, ArrayValue, KeyValue};
    use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
    use prost::Message;
    use resource::Resource;
    use trace::{ResourceSpans, ScopeSpans, Span};

    fn kv(i: usize, value: any_value::Value) -> KeyValue {
        KeyValue {
            key: format!("k{i}"),
            value: Some(AnyValue { value: Some(value) }),
        }
    }

    fn request(
        spans: usize,
        resource_attrs: usize,
        attr: any_value::Value,
    ) -> ExportTraceServiceRequest {
        let text = any_value::Value::StringValue("v".repeat(10));
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: (0..resource_attrs).map(|i| kv(i, text.clone())).collect(),
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans: (0..spans)
                        .map(|i| Span {
                            name: format!("s{i}"),
                            attributes: vec![kv(0, attr.clone())],
                            ..Default::default()
                        })
                        .collect(),
                    ..Default::default()
                }],
                ..Default::default()
            }],
        }
    }

    #[test]
    fn counts_spans_and_resource_copies_without_decoding() {
        let text = any_value::Value::StringValue("x".into());
        let bytes = request(7, 3, text.clone()).encode_to_vec();
        let shape = scan(&bytes, Kind::Traces, 100).expect("valid");
        assert_eq!(shape.items, 7);
        let resource_len = request(0, 3, text).resource_spans[0]
            .resource
            .as_ref()
            .map(Message::encoded_len)
            .unwrap_or(0);
        assert_eq!(shape.amplified_bytes, resource_len * 7);
        assert!(shape.decoded_bytes > 7 * size_of::<Span>());
        let e = scan(&bytes, Kind::Traces, 6).expect_err("over the limit");
        assert!(e.0.contains("too many items"), "{e}");
    }

    #[test]
    fn a_bomb_of_empty_spans_is_refused_at_the_limit() {
        // One ScopeSpans of a million empty spans (0x12 0x00 each): 2 MB on
        // the wire, refused after counting 10,001 of them.
        let scope = [0x12u8, 0x00].repeat(1_000_000);
        let wrap = |field: u8, inner: &[u8]| {
            let mut out = vec![(field << 3) | 2];
            let mut n = inner.len();
            while n >= 0x80 {
                out.push((n as u8) | 0x80);
                n >>= 7;
            }
            out.push(n as u8);
            out.extend_from_slice(inner);
            out
        };
        let body = wrap(1, &wrap(2, &scope));
        let e = scan(&body, Kind::Traces, 10_000).expect_err("refused");
        assert!(e.0.contains("limit 10000"), "{e}");
    }

    #[test]
    fn malformed_and_deep_input_is_refused() {
        assert!(scan(&[0x0a, 0x05, 0x01], Kind::Traces, 10).is_err());
        assert!(scan(&[0x0b], Kind::Traces, 10).is_err());
        assert_eq!(scan(&[], Kind::Logs, 10).map(|s| s.items), Ok(0));
        let mut value = any_value::Value::IntValue(1);
        for _ in 0..45 {
            value = any_value::Value::ArrayValue(ArrayValue {
                values: vec![AnyValue { value: Some(value) }],
            });
        }
        let deep = request(1, 0, value).encode_to_vec();
        let e = scan(&deep, Kind::Traces, 10).expect_err("too deep");
        assert!(e.0.contains("nested too deep"), "{e}");
    }
}
