//! Who may do what, over every endpoint: no key, a wrong key, a tenant's
//! ingest key and read key, another tenant's read key, the metrics key and
//! the admin key. And repeated failed authentication is slowed down.

mod support;

use serde_json::{json, Value};
use support::{config_with_keys, span, Server};

const NONE: usize = usize::MAX;
const WRONG: usize = usize::MAX - 1;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_endpoint_allows_exactly_what_each_key_may_do() {
    let (config, keys) = config_with_keys(&[
        (None, &["admin"]),
        (None, &["metrics"]),
        (Some("acme"), &["ingest"]),
        (Some("acme"), &["read"]),
        (Some("globex"), &["read"]),
    ]);
    // The matrix fails authentication on purpose many times: no lockout here.
    let server = Server::with_config(&format!("auth_failures_per_minute = 0\n{config}"));
    // Keys by position in the matrix columns below.
    let (admin, metrics, acme_in, acme_read, globex_read) = (0, 1, 2, 3, 4);
    let seeded = json!([
        span("acme", "t-acme", "a", "git.clone"),
        span("globex", "t-glob", "g", "git.clone")
    ]);
    assert_eq!(
        server
            .post("/api/traces", &seeded, Some(&keys[admin]))
            .await
            .0,
        202
    );
    let acme_line = json!([{"timestamp": "2025-12-14T10:30:45.123Z", "level": "info", "message": "m", "tenant_id": "acme"}]);
    let client = reqwest::Client::new();

    // (method, path, body, [none, wrong, acme ingest, acme read, globex read, metrics, admin])
    let acme_span = json!([span("acme", "t-new", "n", "git.push")]);
    let matrix: Vec<(&str, &str, Option<Value>, [u16; 7])> = vec![
        (
            "POST",
            "/api/traces",
            Some(acme_span.clone()),
            [401, 401, 202, 403, 403, 403, 202],
        ),
        (
            "POST",
            "/api/logs",
            Some(acme_line.clone()),
            [401, 401, 202, 403, 403, 403, 202],
        ),
        (
            "POST",
            "/v1/traces",
            Some(json!({})),
            [401, 401, 200, 403, 403, 403, 200],
        ),
        (
            "POST",
            "/v1/logs",
            Some(json!({})),
            [401, 401, 200, 403, 403, 403, 200],
        ),
        (
            "POST",
            "/api/vms/vm-1/terminated",
            None,
            [401, 401, 200, 403, 403, 403, 200],
        ),
        (
            "GET",
            "/api/traces/t-acme",
            None,
            [401, 401, 403, 200, 404, 403, 200],
        ),
        (
            "GET",
            "/api/traces/t-acme?tenant_id=acme",
            None,
            [401, 401, 403, 200, 403, 403, 200],
        ),
        (
            "GET",
            "/api/traces",
            None,
            [401, 401, 403, 200, 200, 403, 200],
        ),
        (
            "GET",
            "/api/traces?tenant_id=globex",
            None,
            [401, 401, 403, 403, 200, 403, 200],
        ),
        (
            "GET",
            "/api/logs",
            None,
            [401, 401, 403, 200, 200, 403, 200],
        ),
        (
            "GET",
            "/api/tickets/ticket_456/traces",
            None,
            [401, 401, 403, 200, 200, 403, 200],
        ),
        (
            "GET",
            "/api/alerts",
            None,
            [401, 401, 403, 200, 200, 403, 200],
        ),
        (
            "GET",
            "/api/events",
            None,
            [401, 401, 403, 200, 200, 403, 200],
        ),
        ("GET", "/metrics", None, [401, 401, 403, 403, 403, 200, 200]),
        (
            "GET",
            "/api/stats",
            None,
            [401, 401, 403, 403, 403, 403, 200],
        ),
        (
            "GET",
            "/api/tenants",
            None,
            [401, 401, 403, 403, 403, 403, 200],
        ),
        (
            "GET",
            "/api/whoami",
            None,
            [401, 401, 200, 200, 200, 200, 200],
        ),
        ("GET", "/", None, [200, 200, 200, 200, 200, 200, 200]),
        ("GET", "/healthz", None, [200, 200, 200, 200, 200, 200, 200]),
    ];
    let columns = [NONE, WRONG, acme_in, acme_read, globex_read, metrics, admin];
    let mut wrong = Vec::new();
    for (method, path, body, expected) in &matrix {
        for (col, who) in columns.iter().enumerate() {
            let mut req = client.request(method.parse().expect("method"), server.url(path));
            match *who {
                NONE => {}
                WRONG => {
                    req = req.bearer_auth(
                        "ssk_0000000000000000000000000000000000000000000000000000000000000000",
                    )
                }
                k => req = req.bearer_auth(&keys[k]),
            }
            if let Some(b) = body {
                req = req.json(b);
            }
            let resp = req.send().await.expect("request");
            let got = resp.status().as_u16();
            if got != expected[col] {
                wrong.push(format!(
                    "{method} {path} as column {col}: {got}, expected {}",
                    expected[col]
                ));
            }
            if got >= 400 {
                let text = resp.text().await.unwrap_or_default();
                let v: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
                if !v["error"].is_string() {
                    wrong.push(format!(
                        "{method} {path} column {col}: no JSON error: {text}"
                    ));
                }
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));

    // What a tenant reads is its own only.
    let (_, page) = server
        .get("/api/traces?limit=100", Some(&keys[globex_read]))
        .await;
    let traces = page["traces"].as_array().expect("traces");
    assert!(!traces.is_empty() && traces.iter().all(|t| t["tenant_id"] == "globex"));
    let (_, logs) = server.get("/api/logs", Some(&keys[globex_read])).await;
    assert_eq!(logs["logs"], json!([]), "acme's log line is not globex's");
}

#[tokio::test]
async fn repeated_failed_authentication_is_locked_out() {
    let (config, keys) = config_with_keys(&[(None, &["admin"])]);
    let server = Server::with_config(&config);
    for i in 0..20 {
        let (status, _) = server.get("/api/traces", Some("ssk_guess")).await;
        assert_eq!(status, 401, "attempt {i}");
    }
    let resp = reqwest::Client::new()
        .get(server.url("/api/traces"))
        .bearer_auth("ssk_guess")
        .send()
        .await
        .expect("request");
    assert_eq!(resp.status(), 429);
    assert!(resp.headers().contains_key("retry-after"));
    let (status, body) = server.get("/api/traces", Some("ssk_guess")).await;
    assert_eq!(status, 429, "{body}");
    assert!(body["error"]
        .as_str()
        .is_some_and(|e| e.contains("too many failed")));
    // Only failing attempts are slowed: a valid key from the same address
    // (another VM behind the same NAT, the same proxy) is served as ever.
    let (status, body) = server.get("/api/traces", Some(&keys[0])).await;
    assert_eq!(status, 200, "{body}");
    let (status, _) = server.get("/healthz", None).await;
    assert_eq!(status, 200);
}
