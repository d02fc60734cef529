//! Trace context across HTTP: W3C `traceparent`/`tracestate` first, then the
//! seed's `X-Trace-ID`; `X-Request-ID` accepted or generated. Responses carry
//! `X-Trace-ID` and `X-Request-ID`.

use http::header::{HeaderMap, HeaderName, HeaderValue};
use rand::RngCore;

/// `traceparent` (W3C Trace Context).
pub const TRACEPARENT: HeaderName = HeaderName::from_static("traceparent");
/// `tracestate` (W3C Trace Context), passed through unchanged.
pub const TRACESTATE: HeaderName = HeaderName::from_static("tracestate");
/// The seed's correlation header.
pub const X_TRACE_ID: HeaderName = HeaderName::from_static("x-trace-id");
/// The request id header.
pub const X_REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// The caller's position in a trace.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TraceContext {
    /// 32 lowercase hex digits.
    pub trace_id: String,
    /// The caller's span: 16 lowercase hex digits.
    pub parent_span_id: String,
    /// The sampled flag.
    pub sampled: bool,
    /// `tracestate`, kept as received.
    pub tracestate: Option<String>,
}

fn is_lower_hex(s: &str, len: usize) -> bool {
    s.len() == len
        && s.bytes()
            .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// Parses a `traceparent` value. Refuses version `ff`, all-zero ids, upper
/// case, and wrong lengths; a future version may carry more fields after the
/// four of version 00, which are ignored.
pub fn parse_traceparent(value: &str) -> Option<TraceContext> {
    let value = value.trim();
    let mut parts = value.split('-');
    let version = parts.next()?;
    let trace_id = parts.next()?;
    let parent = parts.next()?;
    let flags = parts.next()?;
    if !is_lower_hex(version, 2) || version == "ff" {
        return None;
    }
    if version == "00" && parts.next().is_some() {
        return None;
    }
    if !is_lower_hex(trace_id, 32) || trace_id.bytes().all(|b| b == b'0') {
        return None;
    }
    if !is_lower_hex(parent, 16) || parent.bytes().all(|b| b == b'0') {
        return None;
    }
    if !is_lower_hex(flags, 2) {
        return None;
    }
    let flags = u8::from_str_radix(flags, 16).ok()?;
    Some(TraceContext {
        trace_id: trace_id.to_owned(),
        parent_span_id: parent.to_owned(),
        sampled: flags & 1 == 1,
        tracestate: None,
    })
}

/// Formats a version-00 `traceparent`.
pub fn format_traceparent(trace_id: &str, span_id: &str, sampled: bool) -> String {
    format!(
        "00-{trace_id}-{span_id}-{}",
        if sampled { "01" } else { "00" }
    )
}

fn random_hex(bytes: usize) -> String {
    let mut buf = [0u8; 16];
    let buf = &mut buf[..bytes];
    loop {
        rand::rng().fill_bytes(buf);
        if buf.iter().any(|b| *b != 0) {
            break;
        }
    }
    let mut s = String::with_capacity(bytes * 2);
    for b in buf.iter() {
        const D: &[u8; 16] = b"0123456789abcdef";
        s.push(D[usize::from(b >> 4)] as char);
        s.push(D[usize::from(b & 15)] as char);
    }
    s
}

/// A new W3C trace id: 32 hex digits, never all zero.
pub fn new_trace_id() -> String {
    random_hex(16)
}

/// A new W3C span id: 16 hex digits, never all zero.
pub fn new_span_id() -> String {
    random_hex(8)
}

/// What an incoming request says about its trace.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Incoming {
    /// A valid `traceparent` (with `tracestate`), if sent.
    pub context: Option<TraceContext>,
    /// The trace id to continue: the `traceparent`'s, else `X-Trace-ID`'s.
    pub trace_id: Option<String>,
    /// `X-Request-ID`, if sent (1–128 visible ASCII characters).
    pub request_id: Option<String>,
}

fn header_text(headers: &HeaderMap, name: &HeaderName) -> Option<String> {
    let v = headers.get(name)?.to_str().ok()?.trim();
    (!v.is_empty() && v.len() <= 128 && v.bytes().all(|b| b.is_ascii_graphic()))
        .then(|| v.to_owned())
}

/// Reads trace context from request headers.
pub fn extract(headers: &HeaderMap) -> Incoming {
    let context = headers
        .get(&TRACEPARENT)
        .and_then(|v| v.to_str().ok())
        .and_then(parse_traceparent)
        .map(|mut c| {
            c.tracestate = headers
                .get(&TRACESTATE)
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned);
            c
        });
    // A seed-style X-Trace-ID is kept as sent, but only if the collector
    // would accept it as an id (an all-zero id would get the whole flush refused).
    let trace_id = context.as_ref().map(|c| c.trace_id.clone()).or_else(|| {
        header_text(headers, &X_TRACE_ID).filter(|t| !swarmscope_model::id::is_all_zero(t))
    });
    Incoming {
        context,
        trace_id,
        request_id: header_text(headers, &X_REQUEST_ID),
    }
}

/// Writes `traceparent` (and `X-Trace-ID`, and `tracestate` when given) for an
/// outgoing request made from span `span_id` of trace `trace_id`. Works for
/// reqwest (`RequestBuilder::headers`) and hyper requests alike.
pub fn inject(headers: &mut HeaderMap, trace_id: &str, span_id: &str, tracestate: Option<&str>) {
    if let Ok(v) = HeaderValue::from_str(&format_traceparent(trace_id, span_id, true)) {
        headers.insert(TRACEPARENT, v);
    }
    if let Ok(v) = HeaderValue::from_str(trace_id) {
        headers.insert(X_TRACE_ID, v);
    }
    if let Some(Ok(v)) = tracestate.map(HeaderValue::from_str) {
        headers.insert(TRACESTATE, v);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const GOOD: &str = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";

    #[test]
    fn the_spec_example_parses() {
        let c = parse_traceparent(GOOD).expect("valid");
        assert_eq!(c.trace_id, "4bf92f3577b34da6a3ce929d0e0e4736");
        assert_eq!(c.parent_span_id, "00f067aa0ba902b7");
        assert!(c.sampled);
        assert_eq!(
            format_traceparent(&c.trace_id, &c.parent_span_id, true),
            GOOD
        );
    }

    #[test]
    fn invalid_values_are_refused() {
        for bad in [
            "",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "0-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-zz",
        ] {
            assert_eq!(parse_traceparent(bad), None, "{bad:?}");
        }
        // A future version may append fields.
        assert!(
            parse_traceparent("01-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-more")
                .is_some()
        );
    }

    #[test]
    fn extraction_prefers_traceparent_then_x_trace_id() {
        let mut h = HeaderMap::new();
        h.insert(X_TRACE_ID, HeaderValue::from_static("0000"));
        assert_eq!(
            extract(&h).trace_id,
            None,
            "an id the collector would refuse is ignored"
        );
        h.insert(X_TRACE_ID, HeaderValue::from_static("seed-trace-1"));
        h.insert(X_REQUEST_ID, HeaderValue::from_static("req_xyz"));
        let got = extract(&h);
        assert_eq!(got.trace_id.as_deref(), Some("seed-trace-1"));
        assert_eq!(got.request_id.as_deref(), Some("req_xyz"));
        h.insert(TRACEPARENT, HeaderValue::from_static(GOOD));
        h.insert(TRACESTATE, HeaderValue::from_static("vendor=1"));
        let got = extract(&h);
        assert_eq!(
            got.trace_id.as_deref(),
            Some("4bf92f3577b34da6a3ce929d0e0e4736")
        );
        assert_eq!(
            got.context.and_then(|c| c.tracestate).as_deref(),
            Some("vendor=1")
        );
    }

    #[test]
    fn injection_round_trips() {
        let (t, s) = (new_trace_id(), new_span_id());
        let mut h = HeaderMap::new();
        inject(&mut h, &t, &s, Some("a=b"));
        let got = extract(&h);
        let c = got.context.expect("context");
        assert_eq!((c.trace_id, c.parent_span_id), (t.clone(), s));
        assert_eq!(got.trace_id, Some(t));
    }

    proptest! {
        #[test]
        fn never_panics_and_only_accepts_canonical_values(s in "\\PC{0,80}") {
            if let Some(c) = parse_traceparent(&s) {
                prop_assert!(is_lower_hex(&c.trace_id, 32) && is_lower_hex(&c.parent_span_id, 16));
            }
        }

        #[test]
        fn formatted_values_parse_back(t in "[0-9a-f]{32}", p in "[0-9a-f]{16}", sampled: bool) {
            prop_assume!(t.bytes().any(|b| b != b'0') && p.bytes().any(|b| b != b'0'));
            let c = parse_traceparent(&format_traceparent(&t, &p, sampled)).expect("round trip");
            prop_assert_eq!((c.trace_id, c.parent_span_id, c.sampled), (t, p, sampled));
        }

        #[test]
        fn new_ids_are_valid(_n in 0..50u8) {
            let tp = format_traceparent(&new_trace_id(), &new_span_id(), true);
            prop_assert!(parse_traceparent(&tp).is_some());
        }
    }
}
