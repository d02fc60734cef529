//! OpenTelemetry in: OTLP trace and log export requests (protobuf or JSON)
//! turned into swarmscope's spans and log lines.
//!
//! Decoding uses the official protobuf definitions (`opentelemetry-proto`,
//! prost, and its serde support for OTLP/JSON's hex ids). What is ours is
//! the mapping: ids become lowercase hex (32 and 16 digits), resource
//! attributes are kept on every span as `resource.<key>` and the
//! instrumentation scope as `otel.scope.name`/`otel.scope.version` (the
//! convention OpenTelemetry uses for non-OTLP backends), links as
//! `otel.links`, `service.name` becomes the span's service, and the seed's
//! correlation ids are read from span or resource attributes. A span that
//! breaks a rule is left out and counted in the OTLP partial-success answer,
//! with the first reason; the others are stored.

use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest, ExportLogsServiceResponse,
};
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::{any_value, AnyValue, KeyValue};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind as OtlpKind;
use opentelemetry_proto::tonic::trace::v1::status::StatusCode;
use prost::Message;
use serde_json::{json, Map, Value};
use swarmscope_model::seed::check_span;
use swarmscope_model::{Limits, LogLevel, LogRecord, Span, SpanEvent, SpanKind, SpanStatus};

pub use opentelemetry_proto::tonic as proto;

pub mod scan;

/// How a request body is encoded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    /// `application/x-protobuf`.
    Protobuf,
    /// `application/json` (OTLP/JSON).
    Json,
}

impl Encoding {
    /// From a `Content-Type` header; `None` for anything else.
    pub fn from_content_type(content_type: &str) -> Option<Encoding> {
        let mime = content_type
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_ascii_lowercase();
        match mime.as_str() {
            "application/x-protobuf" | "application/protobuf" => Some(Encoding::Protobuf),
            "application/json" => Some(Encoding::Json),
            _ => None,
        }
    }

    /// The `Content-Type` of an answer in this encoding.
    pub fn content_type(self) -> &'static str {
        match self {
            Encoding::Protobuf => "application/x-protobuf",
            Encoding::Json => "application/json",
        }
    }
}

/// A body that is not an OTLP request at all (the whole request is refused).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct OtlpError(pub String);

/// Parses OTLP/JSON, filling in the top-level list when it is omitted (an
/// empty request is `{}` in OTLP/JSON).
fn with_field(body: &[u8], field: &str) -> Result<Value, OtlpError> {
    let mut v: Value =
        serde_json::from_slice(body).map_err(|e| OtlpError(format!("invalid JSON: {e}")))?;
    if let Value::Object(map) = &mut v {
        map.entry(field.to_owned())
            .or_insert_with(|| Value::Array(Vec::new()));
    }
    proto3_doubles(&mut v);
    Ok(v)
}

/// Proto3 JSON writes the doubles JSON cannot hold as strings ("NaN",
/// "Infinity", "-Infinity") and may quote any double. A quoted number becomes
/// a number again; a non-finite one is kept as its text (a JSON attribute
/// cannot hold it), instead of failing the whole request.
fn proto3_doubles(v: &mut Value) {
    match v {
        Value::Object(map) => {
            if let Some(Value::String(text)) = map.get("doubleValue") {
                let text = text.clone();
                match text.trim().parse::<f64>() {
                    Ok(n) if n.is_finite() => {
                        map.insert("doubleValue".into(), Value::from(n));
                    }
                    _ => {
                        map.remove("doubleValue");
                        map.insert("stringValue".into(), Value::String(text));
                    }
                }
            }
            map.values_mut().for_each(proto3_doubles);
        }
        Value::Array(items) => items.iter_mut().for_each(proto3_doubles),
        _ => {}
    }
}

/// Decodes an `ExportTraceServiceRequest`.
pub fn decode_traces(
    body: &[u8],
    encoding: Encoding,
) -> Result<ExportTraceServiceRequest, OtlpError> {
    match encoding {
        Encoding::Protobuf => ExportTraceServiceRequest::decode(body)
            .map_err(|e| OtlpError(format!("not an OTLP protobuf trace request: {e}"))),
        Encoding::Json => serde_json::from_value(with_field(body, "resourceSpans")?)
            .map_err(|e| OtlpError(format!("not an OTLP/JSON trace request: {e}"))),
    }
}

/// Decodes an `ExportLogsServiceRequest`.
pub fn decode_logs(body: &[u8], encoding: Encoding) -> Result<ExportLogsServiceRequest, OtlpError> {
    match encoding {
        Encoding::Protobuf => ExportLogsServiceRequest::decode(body)
            .map_err(|e| OtlpError(format!("not an OTLP protobuf logs request: {e}"))),
        Encoding::Json => serde_json::from_value(with_field(body, "resourceLogs")?)
            .map_err(|e| OtlpError(format!("not an OTLP/JSON logs request: {e}"))),
    }
}

/// Spans in a trace request.
pub fn span_count(request: &ExportTraceServiceRequest) -> usize {
    request
        .resource_spans
        .iter()
        .flat_map(|r| &r.scope_spans)
        .map(|s| s.spans.len())
        .sum()
}

/// Log records in a logs request.
pub fn log_count(request: &ExportLogsServiceRequest) -> usize {
    request
        .resource_logs
        .iter()
        .flat_map(|r| &r.scope_logs)
        .map(|s| s.log_records.len())
        .sum()
}

/// Bytes of resource and scope attributes a trace request copies onto each
/// of its spans when stored: what it costs beyond its wire size.
pub fn copied_bytes_traces(request: &ExportTraceServiceRequest) -> usize {
    request
        .resource_spans
        .iter()
        .map(|rs| {
            let resource = rs.resource.as_ref().map_or(0, Message::encoded_len);
            rs.scope_spans
                .iter()
                .map(|ss| {
                    let scope = ss.scope.as_ref().map_or(0, Message::encoded_len);
                    (resource + scope).saturating_mul(ss.spans.len())
                })
                .fold(0usize, usize::saturating_add)
        })
        .fold(0, usize::saturating_add)
}

/// The same for a logs request: resource attributes copied onto each line.
pub fn copied_bytes_logs(request: &ExportLogsServiceRequest) -> usize {
    request
        .resource_logs
        .iter()
        .map(|rl| {
            let resource = rl.resource.as_ref().map_or(0, Message::encoded_len);
            rl.scope_logs
                .iter()
                .map(|sl| resource.saturating_mul(sl.log_records.len()))
                .fold(0usize, usize::saturating_add)
        })
        .fold(0, usize::saturating_add)
}

/// Encodes a trace export answer.
pub fn encode_trace_response(rejected: u64, message: &str, encoding: Encoding) -> Vec<u8> {
    let response = ExportTraceServiceResponse {
        partial_success: (rejected > 0).then(|| ExportTracePartialSuccess {
            rejected_spans: rejected as i64,
            error_message: message.to_owned(),
        }),
    };
    match encoding {
        Encoding::Protobuf => response.encode_to_vec(),
        Encoding::Json => match &response.partial_success {
            Some(p) => json!({"partialSuccess": {"rejectedSpans": p.rejected_spans.to_string(), "errorMessage": p.error_message}}),
            None => json!({}),
        }
        .to_string()
        .into_bytes(),
    }
}

/// Encodes a logs export answer.
pub fn encode_logs_response(rejected: u64, message: &str, encoding: Encoding) -> Vec<u8> {
    let response = ExportLogsServiceResponse {
        partial_success: (rejected > 0).then(|| ExportLogsPartialSuccess {
            rejected_log_records: rejected as i64,
            error_message: message.to_owned(),
        }),
    };
    match encoding {
        Encoding::Protobuf => response.encode_to_vec(),
        Encoding::Json => match &response.partial_success {
            Some(p) => json!({"partialSuccess": {"rejectedLogRecords": p.rejected_log_records.to_string(), "errorMessage": p.error_message}}),
            None => json!({}),
        }
        .to_string()
        .into_bytes(),
    }
}

/// Items converted, and what was left out.
#[derive(Debug, Clone, PartialEq)]
pub struct Converted<T> {
    /// Items to store.
    pub items: Vec<T>,
    /// How many were left out.
    pub rejected: u64,
    /// Why the first one was.
    pub first_error: Option<String>,
}

impl<T> Converted<T> {
    /// Leaves one item out, remembering the first reason.
    pub fn reject(&mut self, why: String) {
        self.rejected += 1;
        if self.first_error.is_none() {
            self.first_error = Some(why);
        }
    }
}

/// An attribute value as JSON: strings, booleans, numbers, arrays and maps
/// as themselves; bytes as lowercase hex.
pub fn any_value(v: &AnyValue) -> Value {
    match &v.value {
        None => Value::Null,
        Some(any_value::Value::StringValue(s)) => Value::String(s.clone()),
        Some(any_value::Value::BoolValue(b)) => Value::Bool(*b),
        Some(any_value::Value::IntValue(i)) => json!(i),
        Some(any_value::Value::DoubleValue(d)) => {
            serde_json::Number::from_f64(*d).map_or(Value::Null, Value::Number)
        }
        Some(any_value::Value::ArrayValue(a)) => {
            Value::Array(a.values.iter().map(any_value).collect())
        }
        Some(any_value::Value::KvlistValue(kv)) => Value::Object(attributes(&kv.values)),
        Some(any_value::Value::BytesValue(b)) => Value::String(hex::encode(b)),
    }
}

/// Key-values as a JSON map (later duplicates win).
pub fn attributes(kvs: &[KeyValue]) -> Map<String, Value> {
    kvs.iter()
        .map(|kv| {
            (
                kv.key.clone(),
                kv.value.as_ref().map_or(Value::Null, any_value),
            )
        })
        .collect()
}

fn text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) if !s.is_empty() => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    }
}

/// The first of several attribute names present in `attrs`, then in `resource`.
fn correlation(
    attrs: &Map<String, Value>,
    resource: &Map<String, Value>,
    names: &[&str],
) -> Option<String> {
    names
        .iter()
        .find_map(|n| attrs.get(*n).and_then(text))
        .or_else(|| names.iter().find_map(|n| resource.get(*n).and_then(text)))
}

const TICKET: &[&str] = &["ticket_id", "ticketId", "swarm.ticket_id", "ticket.id"];
const AGENT: &[&str] = &["agent_id", "agentId", "swarm.agent_id", "agent.id"];
const VM: &[&str] = &["vm_id", "swarm.vm_id", "host.id"];
const TENANT: &[&str] = &["tenant_id", "tenantId", "swarm.tenant_id", "tenant.id"];

fn id_hex(bytes: &[u8], len: usize, what: &str) -> Result<String, String> {
    if bytes.len() != len {
        return Err(format!("{what} must be {len} bytes, not {}", bytes.len()));
    }
    if bytes.iter().all(|b| *b == 0) {
        return Err(format!("{what} is all zeros"));
    }
    Ok(hex::encode(bytes))
}

/// The tenant of a resource: the key's (a tenant key), else the resource's
/// `tenant_id` attribute (admin keys), else an error.
fn tenant_for(key_tenant: Option<&str>, resource: &Map<String, Value>) -> Result<String, String> {
    match (
        key_tenant,
        TENANT.iter().find_map(|n| resource.get(*n).and_then(text)),
    ) {
        (Some(k), Some(r)) if k != r => Err(format!(
            "resource names tenant {r:?} but this API key is bound to {k:?}"
        )),
        (Some(k), _) => Ok(k.to_owned()),
        (None, Some(r)) => Ok(r),
        (None, None) => Err(
            "no tenant: send with a tenant's API key, or set the resource attribute tenant_id"
                .into(),
        ),
    }
}

/// Converts a trace export request. `key_tenant` is the API key's tenant
/// (`None` for admin keys, which must name the tenant in the resource).
pub fn spans_from_request(
    request: &ExportTraceServiceRequest,
    key_tenant: Option<&str>,
    limits: &Limits,
) -> Converted<Span> {
    let mut out = Converted {
        items: Vec::new(),
        rejected: 0,
        first_error: None,
    };
    for (r, rs) in request.resource_spans.iter().enumerate() {
        let resource = rs
            .resource
            .as_ref()
            .map(|r| attributes(&r.attributes))
            .unwrap_or_default();
        let tenant = tenant_for(key_tenant, &resource);
        let service = resource.get("service.name").and_then(text);
        for (s, ss) in rs.scope_spans.iter().enumerate() {
            for (i, span) in ss.spans.iter().enumerate() {
                let path = format!("resourceSpans[{r}].scopeSpans[{s}].spans[{i}]");
                let tenant = match &tenant {
                    Ok(t) => t.clone(),
                    Err(e) => {
                        out.reject(format!("{path}: {e}"));
                        continue;
                    }
                };
                match convert_span(
                    span,
                    &tenant,
                    &resource,
                    service.as_deref(),
                    ss,
                    limits,
                    &path,
                ) {
                    Ok(converted) => out.items.push(converted),
                    Err(e) => out.reject(e),
                }
            }
        }
    }
    if out.items.len() > limits.max_spans_per_request {
        let extra = out.items.len() - limits.max_spans_per_request;
        out.items.truncate(limits.max_spans_per_request);
        out.rejected += extra as u64;
        out.first_error.get_or_insert_with(|| {
            format!(
                "more than {} spans in one request",
                limits.max_spans_per_request
            )
        });
    }
    out
}

fn convert_span(
    span: &opentelemetry_proto::tonic::trace::v1::Span,
    tenant: &str,
    resource: &Map<String, Value>,
    service: Option<&str>,
    scope: &opentelemetry_proto::tonic::trace::v1::ScopeSpans,
    limits: &Limits,
    path: &str,
) -> Result<Span, String> {
    let trace_id =
        id_hex(&span.trace_id, 16, "traceId").map_err(|e| format!("{path}.traceId: {e}"))?;
    let span_id = id_hex(&span.span_id, 8, "spanId").map_err(|e| format!("{path}.spanId: {e}"))?;
    let parent_span_id = if span.parent_span_id.is_empty() {
        None
    } else {
        Some(
            id_hex(&span.parent_span_id, 8, "parentSpanId")
                .map_err(|e| format!("{path}.parentSpanId: {e}"))?,
        )
    };
    if span.start_time_unix_nano == 0 || span.start_time_unix_nano > i64::MAX as u64 {
        return Err(format!("{path}.startTimeUnixNano: missing or out of range"));
    }
    let end_ns = match span.end_time_unix_nano {
        0 => None,
        e if e > i64::MAX as u64 => return Err(format!("{path}.endTimeUnixNano: out of range")),
        e => Some(e as i64),
    };
    let mut attrs = attributes(&span.attributes);
    let ticket_id = correlation(&attrs, resource, TICKET);
    let agent_id = correlation(&attrs, resource, AGENT);
    let vm_id = correlation(&attrs, resource, VM);
    for (k, v) in resource {
        attrs
            .entry(format!("resource.{k}"))
            .or_insert_with(|| v.clone());
    }
    if let Some(sc) = &scope.scope {
        if !sc.name.is_empty() {
            attrs
                .entry("otel.scope.name".to_owned())
                .or_insert_with(|| json!(sc.name));
        }
        if !sc.version.is_empty() {
            attrs
                .entry("otel.scope.version".to_owned())
                .or_insert_with(|| json!(sc.version));
        }
    }
    if !span.links.is_empty() {
        let links: Vec<Value> = span
            .links
            .iter()
            .map(|l| {
                json!({
                    "trace_id": hex::encode(&l.trace_id),
                    "span_id": hex::encode(&l.span_id),
                    "attributes": attributes(&l.attributes),
                })
            })
            .collect();
        attrs.insert("otel.links".to_owned(), Value::Array(links));
    }
    if !span.trace_state.is_empty() {
        attrs.insert("w3c.tracestate".to_owned(), json!(span.trace_state));
    }
    let (status, status_message) = match &span.status {
        Some(st) => {
            let status = match StatusCode::try_from(st.code) {
                Ok(StatusCode::Ok) => SpanStatus::Ok,
                Ok(StatusCode::Error) => SpanStatus::Error,
                _ => SpanStatus::Unset,
            };
            (status, (!st.message.is_empty()).then(|| st.message.clone()))
        }
        None => (SpanStatus::Unset, None),
    };
    let kind = match OtlpKind::try_from(span.kind) {
        Ok(OtlpKind::Server) => SpanKind::Server,
        Ok(OtlpKind::Client) => SpanKind::Client,
        Ok(OtlpKind::Producer) => SpanKind::Producer,
        Ok(OtlpKind::Consumer) => SpanKind::Consumer,
        _ => SpanKind::Internal,
    };
    let events = span
        .events
        .iter()
        .map(|e| SpanEvent {
            name: e.name.clone(),
            time_ns: e.time_unix_nano.min(i64::MAX as u64) as i64,
            attributes: attributes(&e.attributes),
        })
        .collect();
    let converted = Span {
        tenant_id: tenant.to_owned(),
        trace_id,
        span_id,
        parent_span_id,
        name: span.name.clone(),
        kind,
        status,
        status_message,
        start_ns: span.start_time_unix_nano as i64,
        end_ns,
        ticket_id,
        agent_id,
        vm_id,
        service: service.map(str::to_owned),
        attributes: attrs,
        events,
    };
    check_span(&converted, path, limits).map_err(|e| match e.field {
        Some(f) => format!("{f}: {}", e.message),
        None => e.message,
    })?;
    Ok(converted)
}

/// OTLP severity number to a level (1–4 trace, 5–8 debug, 9–12 info,
/// 13–16 warn, 17–20 error, 21–24 fatal); else the severity text; else info.
fn level(number: i32, text: &str) -> LogLevel {
    match number {
        1..=8 => LogLevel::Debug,
        9..=12 => LogLevel::Info,
        13..=16 => LogLevel::Warn,
        17..=20 => LogLevel::Error,
        21..=24 => LogLevel::Fatal,
        _ => LogLevel::parse(text).unwrap_or(LogLevel::Info),
    }
}

/// Converts a logs export request (same tenant rule as spans).
pub fn logs_from_request(
    request: &ExportLogsServiceRequest,
    key_tenant: Option<&str>,
    limits: &Limits,
) -> Converted<LogRecord> {
    let mut out = Converted {
        items: Vec::new(),
        rejected: 0,
        first_error: None,
    };
    for (r, rl) in request.resource_logs.iter().enumerate() {
        let resource = rl
            .resource
            .as_ref()
            .map(|r| attributes(&r.attributes))
            .unwrap_or_default();
        let tenant = tenant_for(key_tenant, &resource);
        for (s, sl) in rl.scope_logs.iter().enumerate() {
            for (i, rec) in sl.log_records.iter().enumerate() {
                let path = format!("resourceLogs[{r}].scopeLogs[{s}].logRecords[{i}]");
                let tenant = match &tenant {
                    Ok(t) => t.clone(),
                    Err(e) => {
                        out.reject(format!("{path}: {e}"));
                        continue;
                    }
                };
                let time = if rec.time_unix_nano != 0 {
                    rec.time_unix_nano
                } else {
                    rec.observed_time_unix_nano
                };
                if time == 0 || time > i64::MAX as u64 {
                    out.reject(format!("{path}: no timeUnixNano or observedTimeUnixNano"));
                    continue;
                }
                let message = match rec.body.as_ref().map(any_value) {
                    Some(Value::String(s)) => s,
                    Some(Value::Null) | None => String::new(),
                    Some(other) => other.to_string(),
                };
                let mut metadata = attributes(&rec.attributes);
                let ticket_id = correlation(&metadata, &resource, TICKET);
                let agent_id = correlation(&metadata, &resource, AGENT);
                let request_id =
                    correlation(&metadata, &resource, &["request_id", "http.request_id"]);
                for (k, v) in &resource {
                    metadata
                        .entry(format!("resource.{k}"))
                        .or_insert_with(|| v.clone());
                }
                let hex_or_none = |b: &[u8], len: usize| {
                    (b.len() == len && b.iter().any(|x| *x != 0)).then(|| hex::encode(b))
                };
                let record = LogRecord {
                    tenant_id: tenant,
                    time_ns: time as i64,
                    level: level(rec.severity_number, &rec.severity_text),
                    message,
                    trace_id: hex_or_none(&rec.trace_id, 16),
                    span_id: hex_or_none(&rec.span_id, 8),
                    request_id,
                    ticket_id,
                    agent_id,
                    duration_ms: None,
                    metadata,
                };
                match swarmscope_model::log::check_log(&record, &path, limits) {
                    Ok(()) => out.items.push(record),
                    Err(e) => out.reject(format!(
                        "{}: {}",
                        e.field.as_deref().unwrap_or(&path),
                        e.message
                    )),
                }
            }
        }
    }
    out
}

// ---- Out: swarmscope's spans and log lines as OTLP (forwarding). ----

fn hashed(id: &str, len: usize) -> Vec<u8> {
    use sha2::Digest;
    sha2::Sha256::digest(id.as_bytes())[..len].to_vec()
}

/// An id kept as sent, as OTLP bytes of `len` (16 for traces, 8 for spans):
/// hex of that length as is; a UUID (the seed's ids) without its dashes
/// when that is the right length; anything else the first bytes of its
/// SHA-256. Deterministic, so parents and children map alike.
pub fn id_bytes(id: &str, len: usize) -> Vec<u8> {
    let hexish: String = id.chars().filter(|c| *c != '-').collect();
    if hexish.len() == len * 2 {
        if let Ok(bytes) = hex::decode(&hexish) {
            if bytes.iter().any(|b| *b != 0) {
                return bytes;
            }
        }
    }
    hashed(id, len)
}

/// A JSON value as an OTLP attribute value (`null` has none).
pub fn to_any(v: &Value) -> Option<AnyValue> {
    let value =
        match v {
            Value::Null => return None,
            Value::Bool(b) => any_value::Value::BoolValue(*b),
            Value::Number(n) => match n.as_i64() {
                Some(i) => any_value::Value::IntValue(i),
                None => any_value::Value::DoubleValue(n.as_f64().unwrap_or(0.0)),
            },
            Value::String(s) => any_value::Value::StringValue(s.clone()),
            Value::Array(a) => {
                any_value::Value::ArrayValue(opentelemetry_proto::tonic::common::v1::ArrayValue {
                    values: a.iter().filter_map(to_any).collect(),
                })
            }
            Value::Object(m) => any_value::Value::KvlistValue(
                opentelemetry_proto::tonic::common::v1::KeyValueList { values: to_kvs(m) },
            ),
        };
    Some(AnyValue { value: Some(value) })
}

fn to_kvs(m: &Map<String, Value>) -> Vec<KeyValue> {
    m.iter()
        .filter_map(|(k, v)| {
            to_any(v).map(|value| KeyValue {
                key: k.clone(),
                value: Some(value),
            })
        })
        .collect()
}

fn kv_text(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_owned(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_owned())),
        }),
    }
}

fn resource(
    tenant: &str,
    service: Option<&str>,
) -> opentelemetry_proto::tonic::resource::v1::Resource {
    let mut attributes = vec![kv_text("tenant_id", tenant)];
    if let Some(s) = service {
        attributes.push(kv_text("service.name", s));
    }
    opentelemetry_proto::tonic::resource::v1::Resource {
        attributes,
        ..Default::default()
    }
}

fn scope() -> Option<opentelemetry_proto::tonic::common::v1::InstrumentationScope> {
    Some(
        opentelemetry_proto::tonic::common::v1::InstrumentationScope {
            name: "swarmscope".into(),
            version: env!("CARGO_PKG_VERSION").into(),
            ..Default::default()
        },
    )
}

/// Spans as one OTLP trace export request, a resource per (tenant, service).
pub fn spans_to_request(spans: &[Span]) -> ExportTraceServiceRequest {
    use opentelemetry_proto::tonic::trace::v1::{span, ResourceSpans, ScopeSpans, Status};
    let mut groups: std::collections::BTreeMap<
        (&str, Option<&str>),
        Vec<opentelemetry_proto::tonic::trace::v1::Span>,
    > = std::collections::BTreeMap::new();
    for s in spans {
        let mut attributes = to_kvs(&s.attributes);
        for (k, v) in [
            ("ticket_id", &s.ticket_id),
            ("agent_id", &s.agent_id),
            ("vm_id", &s.vm_id),
        ] {
            if let Some(v) = v {
                attributes.push(kv_text(k, v));
            }
        }
        // The ids as sent, when they had to be hashed to fit.
        if hex::decode(s.trace_id.replace('-', "")).map_or(true, |b| b.len() != 16) {
            attributes.push(kv_text("swarm.trace_id", &s.trace_id));
        }
        if hex::decode(&s.span_id).map_or(true, |b| b.len() != 8) {
            attributes.push(kv_text("swarm.span_id", &s.span_id));
        }
        let otlp = opentelemetry_proto::tonic::trace::v1::Span {
            trace_id: id_bytes(&s.trace_id, 16),
            span_id: id_bytes(&s.span_id, 8),
            parent_span_id: s
                .parent_span_id
                .as_deref()
                .map(|p| id_bytes(p, 8))
                .unwrap_or_default(),
            name: s.name.clone(),
            kind: match s.kind {
                SpanKind::Internal => span::SpanKind::Internal,
                SpanKind::Server => span::SpanKind::Server,
                SpanKind::Client => span::SpanKind::Client,
                SpanKind::Producer => span::SpanKind::Producer,
                SpanKind::Consumer => span::SpanKind::Consumer,
            } as i32,
            start_time_unix_nano: s.start_ns.max(0) as u64,
            end_time_unix_nano: s.end_ns.unwrap_or(s.start_ns).max(0) as u64,
            attributes,
            events: s
                .events
                .iter()
                .map(|e| span::Event {
                    time_unix_nano: e.time_ns.max(0) as u64,
                    name: e.name.clone(),
                    attributes: to_kvs(&e.attributes),
                    dropped_attributes_count: 0,
                })
                .collect(),
            status: Some(Status {
                message: s.status_message.clone().unwrap_or_default(),
                code: match s.status {
                    SpanStatus::Unset => StatusCode::Unset,
                    SpanStatus::Ok => StatusCode::Ok,
                    SpanStatus::Error => StatusCode::Error,
                } as i32,
            }),
            ..Default::default()
        };
        groups
            .entry((s.tenant_id.as_str(), s.service.as_deref()))
            .or_default()
            .push(otlp);
    }
    ExportTraceServiceRequest {
        resource_spans: groups
            .into_iter()
            .map(|((tenant, service), spans)| ResourceSpans {
                resource: Some(resource(tenant, service)),
                scope_spans: vec![ScopeSpans {
                    scope: scope(),
                    spans,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            })
            .collect(),
    }
}

/// Log lines as one OTLP logs export request, a resource per tenant.
pub fn logs_to_request(logs: &[LogRecord]) -> ExportLogsServiceRequest {
    use opentelemetry_proto::tonic::logs::v1::{LogRecord as OtlpLog, ResourceLogs, ScopeLogs};
    let mut groups: std::collections::BTreeMap<&str, Vec<OtlpLog>> =
        std::collections::BTreeMap::new();
    for l in logs {
        let mut attributes = to_kvs(&l.metadata);
        for (k, v) in [
            ("ticket_id", &l.ticket_id),
            ("agent_id", &l.agent_id),
            ("request_id", &l.request_id),
        ] {
            if let Some(v) = v {
                attributes.push(kv_text(k, v));
            }
        }
        if let Some(d) = l.duration_ms.and_then(serde_json::Number::from_f64) {
            if let Some(v) = to_any(&Value::Number(d)) {
                attributes.push(KeyValue {
                    key: "duration_ms".into(),
                    value: Some(v),
                });
            }
        }
        let severity = match l.level {
            LogLevel::Debug => 5,
            LogLevel::Info => 9,
            LogLevel::Warn => 13,
            LogLevel::Error => 17,
            LogLevel::Fatal => 21,
        };
        groups
            .entry(l.tenant_id.as_str())
            .or_default()
            .push(OtlpLog {
                time_unix_nano: l.time_ns.max(0) as u64,
                observed_time_unix_nano: l.time_ns.max(0) as u64,
                severity_number: severity,
                severity_text: l.level.as_str().to_uppercase(),
                body: Some(AnyValue {
                    value: Some(any_value::Value::StringValue(l.message.clone())),
                }),
                attributes,
                trace_id: l
                    .trace_id
                    .as_deref()
                    .map(|t| id_bytes(t, 16))
                    .unwrap_or_default(),
                span_id: l
                    .span_id
                    .as_deref()
                    .map(|s| id_bytes(s, 8))
                    .unwrap_or_default(),
                ..Default::default()
            });
    }
    ExportLogsServiceRequest {
        resource_logs: groups
            .into_iter()
            .map(|(tenant, log_records)| ResourceLogs {
                resource: Some(resource(tenant, None)),
                scope_logs: vec![ScopeLogs {
                    scope: scope(),
                    log_records,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use opentelemetry_proto::tonic::common::v1::{InstrumentationScope, KeyValue};
    use opentelemetry_proto::tonic::resource::v1::Resource;
    use opentelemetry_proto::tonic::trace::v1::{span, ResourceSpans, ScopeSpans, Status};

    fn kv(k: &str, v: &str) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(v.into())),
            }),
        }
    }

    fn request(
        spans: Vec<opentelemetry_proto::tonic::trace::v1::Span>,
        tenant: Option<&str>,
    ) -> ExportTraceServiceRequest {
        let mut attrs = vec![kv("service.name", "forge-agent"), kv("ticket_id", "T-9")];
        if let Some(t) = tenant {
            attrs.push(kv("tenant_id", t));
        }
        ExportTraceServiceRequest {
            resource_spans: vec![ResourceSpans {
                resource: Some(Resource {
                    attributes: attrs,
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "forge".into(),
                        version: "1.2".into(),
                        ..Default::default()
                    }),
                    spans,
                    schema_url: String::new(),
                }],
                schema_url: String::new(),
            }],
        }
    }

    fn otlp_span(id: u8, parent: Option<u8>) -> opentelemetry_proto::tonic::trace::v1::Span {
        opentelemetry_proto::tonic::trace::v1::Span {
            trace_id: vec![0xab; 16],
            span_id: vec![id; 8],
            parent_span_id: parent.map(|p| vec![p; 8]).unwrap_or_default(),
            name: "llm.generate".into(),
            kind: span::SpanKind::Client as i32,
            start_time_unix_nano: 1_700_000_000_000_000_000,
            end_time_unix_nano: 1_700_000_001_000_000_000,
            attributes: vec![kv("model", "claude-sonnet-4-5")],
            events: vec![span::Event {
                time_unix_nano: 1_700_000_000_500_000_000,
                name: "retry".into(),
                attributes: vec![kv("attempt", "2")],
                dropped_attributes_count: 0,
            }],
            links: vec![span::Link {
                trace_id: vec![0xcd; 16],
                span_id: vec![9; 8],
                ..Default::default()
            }],
            status: Some(Status {
                message: "overloaded".into(),
                code: StatusCode::Error as i32,
            }),
            ..Default::default()
        }
    }

    #[test]
    fn proto3_json_non_finite_and_quoted_doubles_are_accepted() {
        let body = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{
            "traceId":"0102030405060708090a0b0c0d0e0f10","spanId":"0102030405060708",
            "name":"x","startTimeUnixNano":"1","endTimeUnixNano":"2",
            "attributes":[{"key":"nan","value":{"doubleValue":"NaN"}},
                          {"key":"inf","value":{"doubleValue":"-Infinity"}},
                          {"key":"q","value":{"doubleValue":"1.5"}}]}]}]}]}"#;
        let request = decode_traces(body, Encoding::Json).expect("valid proto3 JSON");
        let attrs = attributes(&request.resource_spans[0].scope_spans[0].spans[0].attributes);
        assert_eq!(attrs.get("nan"), Some(&json!("NaN")));
        assert_eq!(attrs.get("inf"), Some(&json!("-Infinity")));
        assert_eq!(attrs.get("q"), Some(&json!(1.5)));
    }

    #[test]
    fn seed_ids_map_deterministically_and_round_trip_through_otlp() {
        let uuid = "0b4ab6f4-0d4e-4c2a-9b7e-1f2d3c4b5a69";
        assert_eq!(
            hex::encode(id_bytes(uuid, 16)),
            "0b4ab6f40d4e4c2a9b7e1f2d3c4b5a69"
        );
        assert_eq!(id_bytes(uuid, 8), id_bytes(uuid, 8), "deterministic");
        assert_eq!(id_bytes(uuid, 8).len(), 8);
        assert_eq!(
            hex::encode(id_bytes("00f067aa0ba902b7", 8)),
            "00f067aa0ba902b7"
        );
        let root = Span {
            tenant_id: "acme".into(),
            trace_id: uuid.into(),
            span_id: "5c1d8a0e-7f3b-4d2e-8a9c-0e1f2a3b4c5d".into(),
            parent_span_id: None,
            name: "agent.execute".into(),
            kind: SpanKind::Internal,
            status: SpanStatus::Ok,
            status_message: None,
            start_ns: 1,
            end_ns: Some(2),
            ticket_id: Some("T-1".into()),
            agent_id: None,
            vm_id: None,
            service: Some("forge".into()),
            attributes: serde_json::json!({"n": 3, "f": 0.5, "tags": ["a"]})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            events: Vec::new(),
        };
        let mut child = root.clone();
        child.span_id = "child-1".into();
        child.parent_span_id = Some(root.span_id.clone());
        let req = spans_to_request(&[root.clone(), child]);
        // Back in through our own receiver: same tree, same attributes.
        let back = spans_from_request(&req, None, &Limits::default());
        assert_eq!(back.rejected, 0, "{:?}", back.first_error);
        assert_eq!(back.items[0].tenant_id, "acme");
        assert_eq!(
            back.items[1].parent_span_id.as_deref(),
            Some(back.items[0].span_id.as_str())
        );
        assert_eq!(back.items[0].attributes["n"], 3);
        assert_eq!(back.items[0].attributes["f"], 0.5);
        assert_eq!(
            back.items[0].attributes["swarm.span_id"],
            root.span_id.as_str()
        );
        assert_eq!(back.items[0].ticket_id.as_deref(), Some("T-1"));
    }

    #[test]
    fn spans_keep_ids_parents_status_events_links_and_resource() {
        let req = request(vec![otlp_span(1, None), otlp_span(2, Some(1))], None);
        let bytes = req.encode_to_vec();
        let decoded = decode_traces(&bytes, Encoding::Protobuf).expect("decode");
        let out = spans_from_request(&decoded, Some("acme"), &Limits::default());
        assert_eq!((out.items.len(), out.rejected), (2, 0));
        let s = &out.items[1];
        assert_eq!(s.trace_id, "ab".repeat(16));
        assert_eq!(s.span_id, "02".repeat(8));
        assert_eq!(s.parent_span_id.as_deref(), Some("0101010101010101"));
        assert_eq!((s.kind, s.status), (SpanKind::Client, SpanStatus::Error));
        assert_eq!(s.status_message.as_deref(), Some("overloaded"));
        assert_eq!(s.end_ns.map(|e| e - s.start_ns), Some(1_000_000_000));
        assert_eq!(s.tenant_id, "acme");
        assert_eq!(s.service.as_deref(), Some("forge-agent"));
        assert_eq!(s.ticket_id.as_deref(), Some("T-9"));
        assert_eq!(s.attributes["model"], "claude-sonnet-4-5");
        assert_eq!(s.attributes["resource.service.name"], "forge-agent");
        assert_eq!(s.attributes["otel.scope.name"], "forge");
        assert_eq!(s.attributes["otel.links"][0]["span_id"], "0909090909090909");
        assert_eq!(s.events[0].name, "retry");
    }

    #[test]
    fn bad_spans_are_counted_not_stored_and_the_rest_are_kept() {
        let mut bad_id = otlp_span(3, None);
        bad_id.trace_id = vec![0; 16];
        let mut backwards = otlp_span(4, None);
        backwards.end_time_unix_nano = 1;
        let req = request(vec![otlp_span(1, None), bad_id, backwards], None);
        let out = spans_from_request(&req, Some("acme"), &Limits::default());
        assert_eq!((out.items.len(), out.rejected), (1, 2));
        assert!(out.first_error.expect("why").contains("traceId"));
    }

    #[test]
    fn the_tenant_comes_from_the_key_or_for_admins_the_resource() {
        let req = request(vec![otlp_span(1, None)], Some("globex"));
        assert_eq!(
            spans_from_request(&req, None, &Limits::default()).items[0].tenant_id,
            "globex"
        );
        let clash = spans_from_request(&req, Some("acme"), &Limits::default());
        assert_eq!(clash.rejected, 1);
        assert!(clash.first_error.expect("why").contains("bound to"));
        let none = spans_from_request(
            &request(vec![otlp_span(1, None)], None),
            None,
            &Limits::default(),
        );
        assert_eq!(none.rejected, 1);
    }

    #[test]
    fn otlp_json_with_hex_ids_and_string_nanos_decodes() {
        let body = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"tenant_id","value":{"stringValue":"acme"}}]},
          "scopeSpans":[{"scope":{"name":"s"},"spans":[{"traceId":"5b8efff798038103d269b633813fc60c",
          "spanId":"eee19b7ec3c1b174","parentSpanId":"eee19b7ec3c1b173","name":"git.clone","kind":1,
          "startTimeUnixNano":"1544712660000000000","endTimeUnixNano":"1544712661000000000",
          "attributes":[{"key":"n","value":{"intValue":"42"}},{"key":"ok","value":{"boolValue":true}}],
          "status":{"code":1}}]}]}]}"#;
        let req = decode_traces(body.as_bytes(), Encoding::Json).expect("OTLP/JSON");
        let out = spans_from_request(&req, None, &Limits::default());
        assert_eq!(out.rejected, 0, "{:?}", out.first_error);
        let s = &out.items[0];
        assert_eq!(s.trace_id, "5b8efff798038103d269b633813fc60c");
        assert_eq!(s.parent_span_id.as_deref(), Some("eee19b7ec3c1b173"));
        assert_eq!(s.start_ns, 1_544_712_660_000_000_000);
        assert_eq!(s.attributes["n"], 42);
        assert_eq!(s.attributes["ok"], true);
        assert_eq!(s.status, SpanStatus::Ok);
        assert!(decode_traces(b"{\"resourceSpans\": 5}", Encoding::Json).is_err());
        assert!(decode_traces(b"\xff\xff\xff", Encoding::Protobuf).is_err());
    }
}
