//! W3C `traceparent` parsing: no input panics, what is accepted has the
//! shape the spec requires, and formatting it parses back to the same.
#![no_main]

use libfuzzer_sys::fuzz_target;
use swarmscope_sdk::propagation::{format_traceparent, parse_traceparent};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Some(ctx) = parse_traceparent(text) else {
        return;
    };
    let hex = |s: &str, n: usize| {
        s.len() == n
            && s.bytes()
                .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase())
    };
    assert!(
        hex(&ctx.trace_id, 32) && hex(&ctx.parent_span_id, 16),
        "{ctx:?}"
    );
    assert!(
        ctx.trace_id.bytes().any(|b| b != b'0') && ctx.parent_span_id.bytes().any(|b| b != b'0')
    );
    let again = parse_traceparent(&format_traceparent(
        &ctx.trace_id,
        &ctx.parent_span_id,
        ctx.sampled,
    ))
    .expect("our own traceparent parses");
    assert_eq!(again, ctx);
});
