//! The OTLP decoders (protobuf and JSON, traces and logs): no input panics,
//! the count taken before decoding (`scan`) finds exactly the items prost
//! decodes, and what converts to swarmscope spans and log lines converts
//! back to an OTLP request that decodes to the same items (the forwarding
//! path).
#![no_main]

use libfuzzer_sys::fuzz_target;
use prost::Message;
use swarmscope_model::Limits;
use swarmscope_otlp::scan::{scan, Kind};
use swarmscope_otlp::{
    decode_logs, decode_traces, logs_from_request, logs_to_request, spans_from_request,
    spans_to_request, Encoding,
};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else {
        return;
    };
    let encoding = if selector & 1 == 0 {
        Encoding::Protobuf
    } else {
        Encoding::Json
    };
    let limits = Limits::default();
    // Encoding back adds attributes (resource.tenant_id, otel.scope.*, the
    // correlation ids), so a span at the attribute limit is legitimately
    // over it on the way back: read our own output with room for those.
    let roomy = Limits {
        max_attributes: limits.max_attributes + 64,
        ..limits.clone()
    };
    let kind = if selector & 2 == 0 { Kind::Traces } else { Kind::Logs };
    let shape = (encoding == Encoding::Protobuf).then(|| scan(body, kind, usize::MAX));
    let agrees = |decoded: usize| {
        match &shape {
            Some(Ok(s)) => assert_eq!(s.items, decoded, "{s:?}"),
            // Refusals prost does not make are deliberate: nesting deeper
            // than any OTLP request, and protobuf groups.
            Some(Err(e)) => assert!(
                e.0.contains("nested too deep") || e.0.contains("wire type"),
                "scan refused what prost decodes: {e}"
            ),
            None => {}
        }
    };
    if selector & 2 == 0 {
        let Ok(request) = decode_traces(body, encoding) else {
            return;
        };
        agrees(swarmscope_otlp::span_count(&request));
        let converted = spans_from_request(&request, Some("fuzz"), &limits);
        if converted.items.is_empty() {
            return;
        }
        let again = spans_to_request(&converted.items).encode_to_vec();
        let request = decode_traces(&again, Encoding::Protobuf).expect("our own encoding decodes");
        let back = spans_from_request(&request, Some("fuzz"), &roomy);
        assert_eq!(back.rejected, 0, "{:?}", back.first_error);
        let ids = |s: &[swarmscope_model::Span]| {
            s.iter()
                .map(|s| {
                    (
                        s.trace_id.clone(),
                        s.span_id.clone(),
                        s.parent_span_id.clone(),
                    )
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(ids(&back.items), ids(&converted.items));
    } else {
        let Ok(request) = decode_logs(body, encoding) else {
            return;
        };
        agrees(swarmscope_otlp::log_count(&request));
        let converted = logs_from_request(&request, Some("fuzz"), &limits);
        if converted.items.is_empty() {
            return;
        }
        let again = logs_to_request(&converted.items).encode_to_vec();
        let request = decode_logs(&again, Encoding::Protobuf).expect("our own encoding decodes");
        let back = logs_from_request(&request, Some("fuzz"), &roomy);
        assert_eq!(back.rejected, 0, "{:?}", back.first_error);
        assert_eq!(back.items.len(), converted.items.len());
        for (a, b) in back.items.iter().zip(&converted.items) {
            assert_eq!((&a.trace_id, &a.message), (&b.trace_id, &b.message));
        }
    }
});
