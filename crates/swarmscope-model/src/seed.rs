//! Decoder for the seed's wire format: the body `AgentTracer.flush()` posts to
//! `/api/traces`, unchanged, plus the batched shapes swarmscope adds.
//!
//! Accepted bodies: one span object; a JSON array of span objects; or
//! `{"spans": [...]}`. A span object has the seed's fields (`ticketId, agentId,
//! tenantId, trace_id, id, name, startTime, attributes, events, status, endTime,
//! durationMs`) and optionally `parent_span_id`/`parentSpanId`,
//! `kind`/`span_kind`, `vm_id`, `service`, `status_message`. Both camelCase and
//! snake_case spellings are read. Unknown top-level fields are kept as
//! attributes. Any invalid span fails the whole body, with the path of the
//! offending field, so that nothing of a bad request is stored.

use serde_json::{Map, Value};

use crate::id;
use crate::limits::Limits;
use crate::span::{Attributes, Span, SpanEvent, SpanKind, SpanStatus};
use crate::timestamp::parse_rfc3339;

/// Why a body was refused, and which field (a path such as `spans[3].startTime`).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct DecodeError {
    /// What is wrong, in one sentence.
    pub message: String,
    /// The offending field's path, when one field is to blame.
    pub field: Option<String>,
}

impl DecodeError {
    pub(crate) fn body(message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            field: None,
        }
    }

    pub(crate) fn field(path: &str, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            field: Some(path.to_owned()),
        }
    }
}

/// Decodes an ingest body into spans.
///
/// `default_tenant` fills in spans that carry no `tenantId` (the tenant of the
/// API key that sent them); without it, `tenantId` is required. Whether a
/// span's tenant is allowed for the caller is the server's decision, not this
/// function's.
pub fn decode_spans(
    body: &[u8],
    limits: &Limits,
    default_tenant: Option<&str>,
) -> Result<Vec<Span>, DecodeError> {
    if let Err(e) = std::str::from_utf8(body) {
        return Err(DecodeError::body(format!(
            "body is not valid UTF-8 (invalid byte at offset {})",
            e.valid_up_to()
        )));
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| DecodeError::body(format!("invalid JSON: {e}")))?;
    let top_level_object = value.is_object();
    let (items, prefix) = match value {
        Value::Array(items) => (items, String::new()),
        Value::Object(mut map) if map.contains_key("spans") && !map.contains_key("name") => {
            match map.remove("spans") {
                Some(Value::Array(items)) => (items, "spans".to_owned()),
                _ => return Err(DecodeError::field("spans", "`spans` must be an array")),
            }
        }
        Value::Object(map) => (vec![Value::Object(map)], String::new()),
        _ => {
            return Err(DecodeError::body(
                "body must be a span object, an array of spans, or {\"spans\": [...]}",
            ))
        }
    };
    if items.len() > limits.max_spans_per_request {
        return Err(DecodeError::field(
            if prefix.is_empty() { "[]" } else { "spans" },
            format!(
                "too many spans in one request: {} (limit {})",
                items.len(),
                limits.max_spans_per_request
            ),
        ));
    }
    // A lone span object's fields are named plainly (`startTime`); spans of a
    // list by position (`[2].startTime`, `spans[2].startTime`).
    let single = top_level_object && prefix.is_empty();
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let path = if single {
                String::new()
            } else {
                format!("{prefix}[{i}]")
            };
            decode_span(item, &path, limits, default_tenant)
        })
        .collect()
}

pub(crate) fn join(path: &str, key: &str) -> String {
    if path.is_empty() {
        key.to_owned()
    } else {
        format!("{path}.{key}")
    }
}

/// Removes the first present, non-null of several spellings of one field.
pub(crate) fn take(
    map: &mut Map<String, Value>,
    names: &[&'static str],
) -> Option<(&'static str, Value)> {
    let mut found = None;
    for &name in names {
        if let Some(v) = map.remove(name) {
            if found.is_none() && !v.is_null() {
                found = Some((name, v));
            }
        }
    }
    found
}

fn decode_span(
    value: Value,
    path: &str,
    limits: &Limits,
    default_tenant: Option<&str>,
) -> Result<Span, DecodeError> {
    let Value::Object(mut map) = value else {
        return Err(DecodeError::field(
            if path.is_empty() { "$" } else { path },
            "a span must be a JSON object",
        ));
    };
    let f = |key: &str| join(path, key);

    let trace_id = required_id(&mut map, &["trace_id", "traceId"], path, limits)?;
    let span_id = required_id(&mut map, &["id", "span_id", "spanId"], path, limits)?;
    let parent_span_id = optional_id(
        &mut map,
        &["parent_span_id", "parentSpanId", "parent_id"],
        path,
        limits,
    )?;
    let tenant_id = match optional_id(&mut map, &["tenantId", "tenant_id"], path, limits)? {
        Some(t) => t,
        None => default_tenant.map(str::to_owned).ok_or_else(|| {
            DecodeError::field(&f("tenantId"), "missing required field `tenantId`")
        })?,
    };
    let ticket_id = optional_id(&mut map, &["ticketId", "ticket_id"], path, limits)?;
    let agent_id = optional_id(&mut map, &["agentId", "agent_id"], path, limits)?;
    let vm_id = optional_id(&mut map, &["vm_id", "vmId"], path, limits)?;
    let service = optional_id(
        &mut map,
        &["service", "service_name", "serviceName"],
        path,
        limits,
    )?;

    let name = match take(&mut map, &["name"]) {
        Some((_, Value::String(s))) => s,
        Some(_) => return Err(DecodeError::field(&f("name"), "`name` must be a string")),
        None => {
            return Err(DecodeError::field(
                &f("name"),
                "missing required field `name`",
            ))
        }
    };
    if name.is_empty() {
        return Err(DecodeError::field(&f("name"), "`name` must not be empty"));
    }
    if name.len() > limits.max_name_bytes {
        return Err(DecodeError::field(
            &f("name"),
            format!("`name` is longer than {} bytes", limits.max_name_bytes),
        ));
    }

    let kind = match take(&mut map, &["kind", "span_kind", "spanKind"]) {
        None => SpanKind::Internal,
        Some((key, Value::String(s))) => SpanKind::parse(&s).ok_or_else(|| {
            DecodeError::field(
                &f(key),
                format!("unknown span kind {s:?} (expected internal, server, client, producer or consumer)"),
            )
        })?,
        Some((key, _)) => return Err(DecodeError::field(&f(key), "span kind must be a string")),
    };

    let mut status_message = match take(&mut map, &["status_message", "statusMessage"]) {
        None => None,
        Some((_, Value::String(s))) => Some(s),
        Some((key, _)) => return Err(DecodeError::field(&f(key), "must be a string")),
    };
    let status = match take(&mut map, &["status"]) {
        None => SpanStatus::Unset,
        Some((_, Value::String(s))) => parse_status(&s, &f("status"))?,
        Some((_, Value::Object(mut obj))) => {
            if let Some(Value::String(m)) = obj.remove("message") {
                status_message.get_or_insert(m);
            }
            match obj.remove("code") {
                Some(Value::String(s)) => parse_status(&s, &f("status.code"))?,
                None | Some(Value::Null) => SpanStatus::Unset,
                Some(_) => {
                    return Err(DecodeError::field(
                        &f("status.code"),
                        "`status.code` must be a string",
                    ))
                }
            }
        }
        Some(_) => {
            return Err(DecodeError::field(
                &f("status"),
                "`status` must be a string",
            ))
        }
    };
    if let Some(m) = &status_message {
        if m.len() > limits.max_attribute_value_bytes {
            return Err(DecodeError::field(
                &f("status_message"),
                "status message is too long",
            ));
        }
    }

    let start_ns = match take(&mut map, &["startTime", "start_time"]) {
        Some((key, v)) => time_value(&v, &f(key))?,
        None => {
            return Err(DecodeError::field(
                &f("startTime"),
                "missing required field `startTime`",
            ))
        }
    };
    let end_ns = match take(&mut map, &["endTime", "end_time"]) {
        Some((key, v)) => Some((time_value(&v, &f(key))?, key)),
        None => None,
    };
    let duration = match take(&mut map, &["durationMs", "duration_ms"]) {
        None => None,
        Some((key, Value::Number(n))) => match n.as_f64() {
            Some(ms) if (0.0..1e12).contains(&ms) => Some(ms),
            _ => {
                return Err(DecodeError::field(
                    &f(key),
                    "duration must be a non-negative number of milliseconds",
                ))
            }
        },
        Some((key, _)) => return Err(DecodeError::field(&f(key), "duration must be a number")),
    };
    let end_ns = match (end_ns, duration) {
        (Some((end, key)), _) => {
            if end < start_ns {
                return Err(DecodeError::field(&f(key), "end time is before start time"));
            }
            Some(end)
        }
        (None, Some(ms)) => Some(start_ns.saturating_add((ms * 1_000_000.0) as i64)),
        (None, None) => None,
    };

    let mut attributes = match take(&mut map, &["attributes"]) {
        None => Attributes::new(),
        Some((_, Value::Object(obj))) => obj,
        Some(_) => {
            return Err(DecodeError::field(
                &f("attributes"),
                "`attributes` must be an object",
            ))
        }
    };

    let events = match take(&mut map, &["events"]) {
        None => Vec::new(),
        Some((_, Value::Array(items))) => {
            if items.len() > limits.max_events {
                return Err(DecodeError::field(
                    &f("events"),
                    format!(
                        "too many events: {} (limit {})",
                        items.len(),
                        limits.max_events
                    ),
                ));
            }
            items
                .into_iter()
                .enumerate()
                .map(|(i, e)| decode_event(e, &format!("{}[{i}]", f("events")), limits))
                .collect::<Result<Vec<_>, _>>()?
        }
        Some(_) => {
            return Err(DecodeError::field(
                &f("events"),
                "`events` must be an array",
            ))
        }
    };

    // Unknown top-level fields are kept, never rejected; explicit attributes win.
    for (key, value) in map {
        attributes.entry(key).or_insert(value);
    }
    check_attributes(&attributes, &f("attributes"), limits)?;
    crate::numbers::check_numbers(&attributes, &f("attributes"))?;

    Ok(Span {
        tenant_id,
        trace_id,
        span_id,
        parent_span_id,
        name,
        kind,
        status,
        status_message,
        start_ns,
        end_ns,
        ticket_id,
        agent_id,
        vm_id,
        service,
        attributes,
        events,
    })
}

fn decode_event(value: Value, path: &str, limits: &Limits) -> Result<SpanEvent, DecodeError> {
    let Value::Object(mut map) = value else {
        return Err(DecodeError::field(path, "an event must be a JSON object"));
    };
    let f = |key: &str| join(path, key);
    let name = match take(&mut map, &["name"]) {
        Some((_, Value::String(s))) if !s.is_empty() && s.len() <= limits.max_name_bytes => s,
        Some(_) => {
            return Err(DecodeError::field(
                &f("name"),
                "event `name` must be a non-empty string within the name limit",
            ))
        }
        None => {
            return Err(DecodeError::field(
                &f("name"),
                "missing required field `name`",
            ))
        }
    };
    let time_ns = match take(&mut map, &["timestamp", "time"]) {
        Some((key, v)) => time_value(&v, &f(key))?,
        None => {
            return Err(DecodeError::field(
                &f("timestamp"),
                "missing required field `timestamp`",
            ))
        }
    };
    let mut attributes = match take(&mut map, &["attributes"]) {
        None => Attributes::new(),
        Some((_, Value::Object(obj))) => obj,
        Some(_) => {
            return Err(DecodeError::field(
                &f("attributes"),
                "`attributes` must be an object",
            ))
        }
    };
    for (key, value) in map {
        attributes.entry(key).or_insert(value);
    }
    check_attributes(&attributes, &f("attributes"), limits)?;
    Ok(SpanEvent {
        name,
        time_ns,
        attributes,
    })
}

fn parse_status(text: &str, path: &str) -> Result<SpanStatus, DecodeError> {
    SpanStatus::parse(text).ok_or_else(|| {
        DecodeError::field(
            path,
            format!("unknown status {text:?} (expected ok, error or unset)"),
        )
    })
}

pub(crate) fn time_value(value: &Value, path: &str) -> Result<i64, DecodeError> {
    match value {
        Value::String(s) => parse_rfc3339(s).ok_or_else(|| {
            DecodeError::field(
                path,
                format!("{s:?} is not an RFC 3339 time such as 2025-12-14T10:30:45.123Z"),
            )
        }),
        _ => Err(DecodeError::field(
            path,
            "a time must be an RFC 3339 string",
        )),
    }
}

pub(crate) fn id_text(
    value: Value,
    path: &str,
    limits: &Limits,
    key: &str,
) -> Result<String, DecodeError> {
    let text = match value {
        Value::String(s) => s,
        Value::Number(n) if n.is_u64() || n.is_i64() => n.to_string(),
        _ => {
            return Err(DecodeError::field(
                path,
                format!("`{key}` must be a string"),
            ))
        }
    };
    if text.is_empty() {
        return Err(DecodeError::field(
            path,
            format!("`{key}` must not be empty"),
        ));
    }
    if text.len() > limits.max_id_bytes {
        return Err(DecodeError::field(
            path,
            format!("`{key}` is longer than {} bytes", limits.max_id_bytes),
        ));
    }
    if text.chars().any(char::is_control) {
        return Err(DecodeError::field(
            path,
            format!("`{key}` contains control characters"),
        ));
    }
    Ok(text)
}

fn required_id(
    map: &mut Map<String, Value>,
    names: &[&'static str],
    path: &str,
    limits: &Limits,
) -> Result<String, DecodeError> {
    match take(map, names) {
        Some((key, v)) => {
            let p = join(path, key);
            if !v.is_string() {
                return Err(DecodeError::field(&p, format!("`{key}` must be a string")));
            }
            let text = id_text(v, &p, limits, key)?;
            if id::is_all_zero(&text) {
                return Err(DecodeError::field(
                    &p,
                    format!("`{key}` must not be all zeros"),
                ));
            }
            Ok(text)
        }
        None => Err(DecodeError::field(
            &join(path, names[0]),
            format!("missing required field `{}`", names[0]),
        )),
    }
}

pub(crate) fn optional_id(
    map: &mut Map<String, Value>,
    names: &[&'static str],
    path: &str,
    limits: &Limits,
) -> Result<Option<String>, DecodeError> {
    match take(map, names) {
        Some((key, v)) => id_text(v, &join(path, key), limits, key).map(Some),
        None => Ok(None),
    }
}

/// Checks a span decoded from another wire format (OTLP) against the same
/// bounds the seed decoder applies: ids, name, attributes, events.
pub fn check_span(span: &Span, path: &str, limits: &Limits) -> Result<(), DecodeError> {
    for (field, value) in [
        ("trace_id", Some(&span.trace_id)),
        ("span_id", Some(&span.span_id)),
        ("parent_span_id", span.parent_span_id.as_ref()),
        ("tenant_id", Some(&span.tenant_id)),
        ("ticket_id", span.ticket_id.as_ref()),
        ("agent_id", span.agent_id.as_ref()),
        ("vm_id", span.vm_id.as_ref()),
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
    if span.name.is_empty() || span.name.len() > limits.max_name_bytes {
        return Err(DecodeError::field(
            &join(path, "name"),
            format!("name must be 1 to {} bytes", limits.max_name_bytes),
        ));
    }
    if span.end_ns.is_some_and(|end| end < span.start_ns) {
        return Err(DecodeError::field(
            &join(path, "endTimeUnixNano"),
            "the span ends before it starts",
        ));
    }
    check_attributes(&span.attributes, &join(path, "attributes"), limits)?;
    crate::numbers::check_numbers(&span.attributes, &join(path, "attributes"))?;
    if span.events.len() > limits.max_events {
        return Err(DecodeError::field(
            &join(path, "events"),
            format!("too many events (limit {})", limits.max_events),
        ));
    }
    for (i, e) in span.events.iter().enumerate() {
        let p = format!("{path}.events[{i}]");
        if e.name.len() > limits.max_name_bytes {
            return Err(DecodeError::field(&p, "event name too long"));
        }
        check_attributes(&e.attributes, &join(&p, "attributes"), limits)?;
    }
    Ok(())
}

/// Checks attributes (or log metadata) against the bounds: count, key length,
/// value size and nesting.
pub fn check_attributes(
    attrs: &Attributes,
    path: &str,
    limits: &Limits,
) -> Result<(), DecodeError> {
    if attrs.len() > limits.max_attributes {
        return Err(DecodeError::field(
            path,
            format!(
                "too many attributes: {} (limit {})",
                attrs.len(),
                limits.max_attributes
            ),
        ));
    }
    for (key, value) in attrs {
        if key.is_empty() || key.len() > limits.max_attribute_key_bytes {
            return Err(DecodeError::field(
                path,
                format!(
                    "attribute keys must be 1 to {} bytes long",
                    limits.max_attribute_key_bytes
                ),
            ));
        }
        let (size, depth) = measure(value);
        if depth > limits.max_attribute_depth {
            return Err(DecodeError::field(
                &join(path, key),
                format!(
                    "attribute nested deeper than {} levels",
                    limits.max_attribute_depth
                ),
            ));
        }
        if size > limits.max_attribute_value_bytes {
            return Err(DecodeError::field(
                &join(path, key),
                format!(
                    "attribute value larger than {} bytes",
                    limits.max_attribute_value_bytes
                ),
            ));
        }
    }
    Ok(())
}

/// Approximate encoded size in bytes and nesting depth of a JSON value.
fn measure(value: &Value) -> (usize, usize) {
    match value {
        Value::Null | Value::Bool(_) => (5, 0),
        Value::Number(_) => (20, 0),
        Value::String(s) => (s.len() + 2, 0),
        Value::Array(items) => items.iter().fold((2, 1), |(size, depth), v| {
            let (s, d) = measure(v);
            (size.saturating_add(s + 1), depth.max(d + 1))
        }),
        Value::Object(map) => map.iter().fold((2, 1), |(size, depth), (k, v)| {
            let (s, d) = measure(v);
            (size.saturating_add(k.len() + 4 + s), depth.max(d + 1))
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// Exactly what the seed's `AgentTracer.flush()` sends for one span.
    fn seed_span() -> Value {
        json!({
            "ticketId": "ticket_456",
            "agentId": "agent_789",
            "tenantId": "tenant_001",
            "trace_id": "0b4ab6f4-0d4e-4c2a-9b7e-1f2d3c4b5a69",
            "id": "5c1d8a0e-7f3b-4d2e-8a9c-0e1f2a3b4c5d",
            "name": "git.clone",
            "startTime": "2025-12-14T10:30:45.123Z",
            "attributes": {"repo_url": "https://example.com/r.git", "branch": "main"},
            "events": [{"name": "cloned", "timestamp": "2025-12-14T10:30:46.000Z", "attributes": {"files": 12}}],
            "status": "ok",
            "endTime": "2025-12-14T10:30:46.623Z",
            "durationMs": 1500
        })
    }

    fn decode(v: &Value) -> Result<Vec<Span>, DecodeError> {
        decode_spans(v.to_string().as_bytes(), &Limits::default(), None)
    }

    #[test]
    fn the_seed_body_decodes_unchanged() {
        let spans = decode(&seed_span()).expect("seed body");
        assert_eq!(spans.len(), 1);
        let s = &spans[0];
        assert_eq!(s.tenant_id, "tenant_001");
        assert_eq!(s.ticket_id.as_deref(), Some("ticket_456"));
        assert_eq!(s.agent_id.as_deref(), Some("agent_789"));
        assert_eq!(s.name, "git.clone");
        assert_eq!(s.status, SpanStatus::Ok);
        assert_eq!(s.kind, SpanKind::Internal);
        assert_eq!(s.parent_span_id, None);
        assert_eq!(s.duration_ms(), Some(1500.0));
        assert_eq!(s.events.len(), 1);
        assert_eq!(s.attributes["branch"], "main");
    }

    #[test]
    fn arrays_and_span_lists_decode() {
        let a = decode(&json!([seed_span(), seed_span()])).expect("array");
        assert_eq!(a.len(), 2);
        let b = decode(&json!({"spans": [seed_span()]})).expect("spans object");
        assert_eq!(b.len(), 1);
    }

    #[test]
    fn unknown_fields_become_attributes_without_overriding() {
        let mut v = seed_span();
        v["cost_usd"] = json!(0.12);
        v["branch"] = json!("ignored");
        let s = &decode(&v).expect("ok")[0];
        assert_eq!(s.attributes["cost_usd"], 0.12);
        assert_eq!(s.attributes["branch"], "main");
    }

    #[test]
    fn optional_fields_in_both_spellings() {
        let mut v = seed_span();
        v["parentSpanId"] = json!("00f067aa0ba902b7");
        v["span_kind"] = json!("client");
        v["vm_id"] = json!("vm-12");
        v["service"] = json!("forge-agent");
        let s = &decode(&v).expect("ok")[0];
        assert_eq!(s.parent_span_id.as_deref(), Some("00f067aa0ba902b7"));
        assert_eq!(s.kind, SpanKind::Client);
        assert_eq!(s.vm_id.as_deref(), Some("vm-12"));
        assert_eq!(s.service.as_deref(), Some("forge-agent"));
    }

    #[test]
    fn duration_alone_gives_the_end() {
        let mut v = seed_span();
        v.as_object_mut().expect("object").remove("endTime");
        let s = &decode(&v).expect("ok")[0];
        assert_eq!(s.end_ns, Some(s.start_ns + 1_500_000_000));
    }

    #[test]
    fn an_unended_span_is_accepted_open() {
        let mut v = seed_span();
        let m = v.as_object_mut().expect("object");
        m.remove("endTime");
        m.remove("durationMs");
        assert_eq!(decode(&v).expect("ok")[0].end_ns, None);
    }

    #[test]
    fn the_tenant_can_come_from_the_key() {
        let mut v = seed_span();
        v.as_object_mut().expect("object").remove("tenantId");
        assert_eq!(
            decode(&v).expect_err("no tenant").field.as_deref(),
            Some("tenantId")
        );
        let spans = decode_spans(v.to_string().as_bytes(), &Limits::default(), Some("acme"))
            .expect("key tenant");
        assert_eq!(spans[0].tenant_id, "acme");
    }

    fn field_of(mut v: Value, key: &str, value: Value) -> Option<String> {
        if value.is_null() {
            v.as_object_mut().expect("object").remove(key);
        } else {
            v[key] = value;
        }
        decode(&json!({ "spans": [seed_span(), v] }))
            .expect_err("must fail")
            .field
    }

    #[test]
    fn bad_fields_are_named() {
        let cases: &[(&str, Value, &str)] = &[
            ("name", Value::Null, "spans[1].name"),
            ("name", json!(7), "spans[1].name"),
            ("name", json!(""), "spans[1].name"),
            ("trace_id", Value::Null, "spans[1].trace_id"),
            ("trace_id", json!(12), "spans[1].trace_id"),
            (
                "trace_id",
                json!("00000000000000000000000000000000"),
                "spans[1].trace_id",
            ),
            ("id", json!(""), "spans[1].id"),
            ("startTime", Value::Null, "spans[1].startTime"),
            ("startTime", json!("yesterday"), "spans[1].startTime"),
            ("startTime", json!(1734170000), "spans[1].startTime"),
            (
                "endTime",
                json!("2025-12-14T10:30:44.000Z"),
                "spans[1].endTime",
            ),
            ("durationMs", json!(-5), "spans[1].durationMs"),
            ("durationMs", json!("5"), "spans[1].durationMs"),
            ("status", json!("failed"), "spans[1].status"),
            ("kind", json!("sideways"), "spans[1].kind"),
            ("attributes", json!([1, 2]), "spans[1].attributes"),
            ("events", json!({}), "spans[1].events"),
            (
                "events",
                json!([{"name": "x"}]),
                "spans[1].events[0].timestamp",
            ),
            ("ticketId", json!({"a": 1}), "spans[1].ticketId"),
            ("ticketId", json!("a\nb"), "spans[1].ticketId"),
        ];
        for (key, value, want) in cases {
            assert_eq!(
                field_of(seed_span(), key, value.clone()).as_deref(),
                Some(*want),
                "{key} = {value}"
            );
        }
    }

    #[test]
    fn limits_are_enforced() {
        let limits = Limits::default();
        let mut v = seed_span();
        let many: Map<String, Value> = (0..=limits.max_attributes)
            .map(|i| (format!("k{i}"), json!(i)))
            .collect();
        v["attributes"] = Value::Object(many);
        assert_eq!(
            decode(&v).expect_err("too many").field.as_deref(),
            Some("attributes")
        );

        let mut v = seed_span();
        v["attributes"] = json!({"big": "x".repeat(limits.max_attribute_value_bytes + 1)});
        assert_eq!(
            decode(&v).expect_err("too big").field.as_deref(),
            Some("attributes.big")
        );

        let mut deep = json!(1);
        for _ in 0..=limits.max_attribute_depth {
            deep = json!([deep]);
        }
        let mut v = seed_span();
        v["attributes"] = json!({ "deep": deep });
        assert_eq!(
            decode(&v).expect_err("too deep").field.as_deref(),
            Some("attributes.deep")
        );

        let mut v = seed_span();
        v["id"] = json!("x".repeat(limits.max_id_bytes + 1));
        assert_eq!(
            decode(&v).expect_err("long id").field.as_deref(),
            Some("id")
        );
    }

    #[test]
    fn bodies_that_are_not_spans_are_refused() {
        let limits = Limits::default();
        for body in [
            &b"not json"[..],
            b"",
            b"42",
            b"\"span\"",
            b"{\"spans\": 3}",
            b"[1]",
        ] {
            assert!(decode_spans(body, &limits, None).is_err(), "{body:?}");
        }
        let invalid_utf8 = b"{\"name\": \"\xff\xfe\"}";
        let err = decode_spans(invalid_utf8, &limits, None).expect_err("utf8");
        assert!(err.message.contains("UTF-8"), "{}", err.message);
        let deep = format!("{}{}", "[".repeat(200), "]".repeat(200));
        assert!(decode_spans(deep.as_bytes(), &limits, None).is_err());
    }
}
