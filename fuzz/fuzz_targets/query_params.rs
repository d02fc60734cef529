//! The query-string parser of `GET /api/traces` and `GET /api/logs`: no
//! input panics, a refusal is a 400 with a message, and what is accepted is
//! within the documented bounds (limit 1–1000, text parameters ≤ 256).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(raw) = std::str::from_utf8(data) else {
        return;
    };
    for parsed in swarmscope_server::parse_queries(raw) {
        match parsed {
            Ok((limit, text_len)) => {
                assert!((1..=1_000).contains(&limit), "limit {limit}");
                assert!(text_len <= 256, "text of {text_len} bytes accepted");
            }
            Err((status, message)) => {
                assert_eq!(status, 400, "{message}");
                assert!(!message.is_empty());
            }
        }
    }
});
