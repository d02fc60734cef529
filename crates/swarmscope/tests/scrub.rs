//! Secrets in spans and log lines are masked before they reach disk, by the
//! built-in patterns and by the operator's own, whatever the ingest path
//! (seed JSON, OTLP); a bad pattern stops the collector at start-up.

mod support;

use serde_json::json;
use support::{run, span, Server};

const ANTHROPIC: &str = "sk-ant-api03-Zx9Yw8Vu7Ts6Rq5Po4";
const AWS: &str = "AKIAQWERTYUIOPASDFGH";
const CUSTOMER: &str = "cust-204817";
const SESSION: &str = "sess-a1b2c3d4";
const BEARER: &str = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl";

/// Every byte of the database, its WAL and shared memory.
fn stored_bytes(server: &Server) -> Vec<u8> {
    let mut all = Vec::new();
    for entry in std::fs::read_dir(server.data_dir.join("data")).expect("data dir") {
        let path = entry.expect("entry").path();
        all.extend(std::fs::read(&path).unwrap_or_default());
    }
    all
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test]
async fn secrets_are_masked_before_they_are_stored() {
    let server = Server::with_config(
        "[scrub]\npatterns = ['cust-[0-9]{6}']\nattributes = [\"x-session\"]\n",
    );
    let trace = "7d1c3b2a-1111-4222-8333-944455566677";

    // Seed JSON span: a prompt, a nested header, a secret-named attribute,
    // a status message and an event.
    let mut s = span(
        "acme",
        trace,
        "8e2d4c3b-2222-4333-8444-a55566677788",
        "llm.generate",
    );
    s["attributes"] = json!({
        "prompt": format!("deploy with key {ANTHROPIC} for {CUSTOMER}"),
        "request": {"headers": {"x-session": SESSION, "accept": "json"}},
        "api_key": AWS,
        "model": "claude-sonnet-4-5",
        "input_tokens": 1200,
    });
    s["status"] = json!("error");
    s["statusMessage"] = json!(format!("401 for Bearer {BEARER}"));
    s["events"] = json!([{"name": "retry", "timestamp": "2025-12-14T10:30:46.000Z",
        "attributes": {"env": format!("AWS_ACCESS_KEY_ID={AWS}")}}]);
    let (status, body) = server.post("/api/traces", &json!([s]), None).await;
    assert_eq!(status, 202, "{body}");

    // A seed log line.
    let log = json!({"timestamp": "2025-12-14T10:30:46.100Z", "level": "error",
        "message": format!("claude refused {ANTHROPIC}"), "trace_id": trace,
        "tenant_id": "acme", "metadata": {"x-session": SESSION, "customer": CUSTOMER}});
    let (status, body) = server.post("/api/logs", &json!([log]), None).await;
    assert_eq!(status, 202, "{body}");

    // An OTLP/JSON span whose attribute carries a token.
    let otlp = json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "tenant_id", "value": {"stringValue": "acme"}}]},
        "scopeSpans": [{"spans": [{
            "traceId": "0af7651916cd43dd8448eb211c80319d", "spanId": "b7ad6b7169203332",
            "name": "http.request", "kind": 3,
            "startTimeUnixNano": "1764000000000000000", "endTimeUnixNano": "1764000001000000000",
            "attributes": [{"key": "http.request.header.authorization",
                            "value": {"stringValue": format!("Bearer {BEARER}")}},
                           {"key": "url.full", "value": {"stringValue":
                            format!("https://api.example.com/c/{CUSTOMER}")}}]}]}]}]});
    let (status, body) = server.post("/v1/traces", &otlp, None).await;
    assert_eq!(status, 200, "{body}");

    // Read back: masked where the secret was, everything else intact.
    let (status, doc) = server.get(&format!("/api/traces/{trace}"), None).await;
    assert_eq!(status, 200, "{doc}");
    let sp = &doc["spans"][0];
    let a = &sp["attributes"];
    assert_eq!(a["prompt"], "deploy with key [REDACTED] for [REDACTED]");
    assert_eq!(
        a["request"],
        json!({"headers": {"x-session": "[REDACTED]", "accept": "json"}})
    );
    assert_eq!(a["api_key"], "[REDACTED]");
    assert_eq!(a["model"], "claude-sonnet-4-5");
    assert_eq!(a["input_tokens"], 1200);
    assert_eq!(sp["status_message"], "401 for [REDACTED]");
    assert_eq!(
        sp["events"][0]["attributes"]["env"],
        "AWS_ACCESS_KEY_ID=[REDACTED]"
    );

    let (status, logs) = server
        .get(&format!("/api/logs?trace_id={trace}"), None)
        .await;
    assert_eq!(status, 200, "{logs}");
    let line = &logs["logs"][0];
    assert_eq!(line["message"], "claude refused [REDACTED]");
    assert_eq!(
        line["metadata"],
        json!({"x-session": "[REDACTED]", "customer": "[REDACTED]"})
    );

    let (status, doc) = server
        .get("/api/traces/0af7651916cd43dd8448eb211c80319d", None)
        .await;
    assert_eq!(status, 200, "{doc}");
    let a = &doc["spans"][0]["attributes"];
    assert_eq!(a["http.request.header.authorization"], "[REDACTED]");
    assert_eq!(a["url.full"], "https://api.example.com/c/[REDACTED]");

    // Not a byte of any secret on disk.
    let disk = stored_bytes(&server);
    for secret in [ANTHROPIC, AWS, CUSTOMER, SESSION, BEARER] {
        assert!(!contains(&disk, secret), "{secret} reached the database");
    }

    // Counted: prompt, request.headers.x-session, api_key, status message,
    // event env; message, x-session, customer; authorization, url.full.
    let (_, metrics) = server.get("/metrics", None).await;
    let text = metrics["raw"].as_str().unwrap_or_default().to_owned();
    assert!(
        text.lines()
            .any(|l| l == "swarmscope_scrubbed_values_total 10"),
        "{text}"
    );
}

#[test]
fn a_bad_pattern_stops_the_collector_with_one_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("swarmscope.toml");
    std::fs::write(&config, "[scrub]\npatterns = ['ok', '(unclosed']\n").expect("config");
    let (code, _out, err) = run(&[
        "serve",
        "--config",
        config.to_str().expect("utf-8"),
        "--listen",
        "127.0.0.1:0",
    ]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("scrub.patterns[1] is not a valid regex"),
        "{err}"
    );
    assert_eq!(err.trim().lines().count(), 1, "{err}");
}
