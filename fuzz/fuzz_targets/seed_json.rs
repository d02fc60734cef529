//! The seed's JSON decoders (spans and log lines): no input panics, and
//! whatever is accepted passes the same checks as a span built by hand; the
//! count taken before parsing (`scan`) agrees with what the parser found.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swarmscope_model::seed::check_span;
use swarmscope_model::{decode_logs, decode_spans, Limits};

fuzz_target!(|data: &[u8]| {
    let limits = Limits::default();
    let shape = swarmscope_model::scan::scan(data, usize::MAX);
    if let Ok(spans) = decode_spans(data, &limits, Some("fuzz")) {
        // Whatever parses was counted, and a list's items were counted exactly.
        let shape = shape.as_ref().expect("a body that parses scans");
        let first = data.iter().find(|b| !b.is_ascii_whitespace());
        if first == Some(&b'[') {
            assert_eq!(shape.items, spans.len(), "{shape:?}");
        } else if spans.len() > 1 {
            assert!(shape.items >= spans.len(), "{shape:?}");
        }
        assert!(shape.values >= spans.len());
        for (i, span) in spans.iter().enumerate() {
            if let Err(e) = check_span(span, &format!("[{i}]"), &limits) {
                panic!("decoded span {i} fails its own check: {e}");
            }
            assert!(!span.tenant_id.is_empty());
            assert!(span.end_ns.is_none_or(|end| end >= span.start_ns));
        }
    }
    if let Ok(lines) = decode_logs(data, &limits, Some("fuzz")) {
        for line in &lines {
            assert!(!line.tenant_id.is_empty());
            for id in [
                &line.trace_id,
                &line.span_id,
                &line.ticket_id,
                &line.agent_id,
            ] {
                assert!(
                    id.as_ref().is_none_or(|id| id.len() <= limits.max_id_bytes),
                    "{id:?}"
                );
            }
        }
    }
});
