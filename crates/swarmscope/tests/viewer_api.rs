//! What the trace viewer needs from the server, over a real socket: the page
//! itself, `whoami`, tenants, attribute search, cost on summaries, and the
//! live feed of server-sent events.

mod support;

use std::time::Duration;

use serde_json::{json, Value};
use support::{config_with_keys, span, Server};

fn llm(tenant: &str, trace: &str, id: &str, input: u64, output: u64) -> Value {
    let mut s = span(tenant, trace, id, "llm.generate");
    s["attributes"] = json!({
        "model": "claude-sonnet-4-5",
        "input_tokens": input,
        "output_tokens": output,
        "swarm.incomplete_hint": false,
    });
    s
}

#[tokio::test]
async fn the_page_is_served_from_the_binary_with_a_strict_policy() {
    let server = Server::start();
    let client = reqwest::Client::new();
    for (path, kind) in [
        ("/", "text/html"),
        ("/ui/app.js", "text/javascript"),
        ("/ui/app.css", "text/css"),
    ] {
        let resp = client.get(server.url(path)).send().await.expect("get");
        assert_eq!(resp.status(), 200, "{path}");
        let headers = resp.headers().clone();
        let ctype = headers["content-type"].to_str().expect("ascii");
        assert!(ctype.starts_with(kind), "{path}: {ctype}");
        let csp = headers["content-security-policy"].to_str().expect("ascii");
        assert!(
            csp.contains("script-src 'self'") && !csp.contains("unsafe"),
            "{csp}"
        );
        assert_eq!(headers["x-content-type-options"], "nosniff");
        let body = resp.text().await.expect("body");
        assert!(!body.is_empty());
        if path == "/" {
            assert!(body.contains("/ui/app.js") && body.contains("/ui/app.css"));
            // No network: nothing loaded from another origin.
            assert!(
                !body.contains("http://") && !body.contains("https://"),
                "{body}"
            );
        }
    }
}

#[tokio::test]
async fn whoami_and_tenants_say_what_a_key_may_do() {
    let (config, keys) = config_with_keys(&[
        (None, &["admin"]),
        (Some("acme"), &["read"]),
        (None, &["metrics"]),
    ]);
    let server = Server::with_config(&config);
    let (admin, acme, metrics) = (&keys[0], &keys[1], &keys[2]);
    let (status, me) = server.get("/api/whoami", Some(admin)).await;
    assert_eq!(status, 200);
    assert_eq!(me["role"], "admin");
    let (_, me) = server.get("/api/whoami", Some(acme)).await;
    assert_eq!(
        (me["role"].as_str(), me["tenant_id"].as_str()),
        (Some("tenant"), Some("acme"))
    );
    assert_eq!(
        (me["read"].as_bool(), me["ingest"].as_bool()),
        (Some(true), Some(false))
    );
    let (_, me) = server.get("/api/whoami", Some(metrics)).await;
    assert_eq!(me["role"], "metrics");
    let (status, body) = server.get("/api/whoami", Some("ssk_wrong")).await;
    assert_eq!(status, 401, "{body}");

    let spans = json!([
        span("acme", "t1", "a", "git.clone"),
        span("globex", "t2", "b", "git.clone")
    ]);
    let (status, body) = server.post("/api/traces", &spans, Some(admin)).await;
    assert_eq!(status, 202, "{body}");
    let (status, body) = server.get("/api/tenants", Some(admin)).await;
    assert_eq!(status, 200);
    assert_eq!(
        body["tenants"],
        json!([{"tenant_id": "acme"}, {"tenant_id": "globex"}])
    );
    let (status, body) = server.get("/api/tenants", Some(acme)).await;
    assert_eq!(status, 403, "{body}");
}

#[tokio::test]
async fn summaries_carry_llm_cost_and_search_matches_attributes() {
    let server = Server::start();
    let mut root = span("acme", "t-cost", "root", "agent.execute");
    root["attributes"] = json!({"agent_type": "forge", "swarm.retry": true, "pr_number": 42});
    let spans = json!([
        root,
        llm("acme", "t-cost", "c1", 1_000_000, 0),
        llm("acme", "t-cost", "c2", 0, 1_000_000),
        span("acme", "t-other", "x", "git.clone"),
    ]);
    let (status, body) = server.post("/api/traces", &spans, None).await;
    assert_eq!(status, 202, "{body}");
    // Re-sent: stored once, cost not counted twice.
    let (status, _) = server.post("/api/traces", &spans, None).await;
    assert_eq!(status, 202);
    let (_, page) = server
        .get("/api/traces?ticket_id=ticket_456&limit=10", None)
        .await;
    let cost = page["traces"]
        .as_array()
        .expect("traces")
        .iter()
        .find(|t| t["trace_id"] == "t-cost")
        .expect("t-cost")["cost_usd"]
        .as_f64()
        .expect("cost");
    // Sonnet 4.5: $3 per million input tokens, $15 per million output.
    assert!((cost - 18.0).abs() < 1e-9, "{cost}");

    let ids = |page: &Value| -> Vec<String> {
        page["traces"]
            .as_array()
            .expect("traces")
            .iter()
            .map(|t| t["trace_id"].as_str().expect("id").to_owned())
            .collect()
    };
    for (query, expected) in [
        ("attr=agent_type=forge", vec!["t-cost"]),
        ("attr=agent_type=fixer", vec![]),
        ("attr=swarm.retry=true", vec!["t-cost"]),
        ("attr=pr_number=42", vec!["t-cost"]),
        ("attr=branch=main", vec!["t-other"]),
    ] {
        let (status, page) = server.get(&format!("/api/traces?{query}"), None).await;
        assert_eq!(status, 200, "{query}: {page}");
        assert_eq!(ids(&page), expected, "{query}");
    }
    for bad in ["attr=noequals", "attr==x", "attr=a%22b=1"] {
        let (status, body) = server.get(&format!("/api/traces?{bad}"), None).await;
        assert_eq!(status, 400, "{bad}: {body}");
        assert_eq!(body["field"], "attr");
    }
}

/// Reads server-sent events until `want` `trace` events arrived or 10 s passed.
async fn read_events(resp: reqwest::Response, want: usize) -> Vec<Value> {
    let mut resp = resp;
    let mut buffer = String::new();
    let mut traces = Vec::new();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while traces.len() < want {
        let chunk = tokio::time::timeout_at(deadline, resp.chunk())
            .await
            .expect("events in time")
            .expect("stream")
            .expect("open");
        buffer.push_str(std::str::from_utf8(&chunk).expect("utf-8"));
        while let Some(end) = buffer.find("\n\n") {
            let block: String = buffer.drain(..end + 2).collect();
            if block.contains("event: trace") {
                let data = block
                    .lines()
                    .find_map(|l| l.strip_prefix("data: "))
                    .expect("data line");
                traces.push(serde_json::from_str(data).expect("json"));
            }
        }
    }
    traces
}

#[tokio::test]
async fn the_live_feed_sends_new_traces_of_the_callers_tenant_only() {
    let (config, keys) = config_with_keys(&[(None, &["admin"]), (Some("acme"), &["read"])]);
    let server = Server::with_config(&config);
    let (admin, acme) = (&keys[0], &keys[1]);
    let client = reqwest::Client::new();
    let open = |key: &str| {
        client
            .get(server.url("/api/events"))
            .bearer_auth(key)
            .send()
    };
    let resp = open(acme).await.expect("events");
    assert_eq!(resp.status(), 200);
    assert!(resp.headers()["content-type"]
        .to_str()
        .expect("ascii")
        .starts_with("text/event-stream"));
    let (status, _) = server
        .post(
            "/api/traces",
            &json!([
                span("globex", "g-1", "a", "git.clone"),
                span("acme", "a-1", "b", "git.clone")
            ]),
            Some(admin),
        )
        .await;
    assert_eq!(status, 202);
    let got = read_events(resp, 1).await;
    assert_eq!(got.len(), 1);
    assert_eq!(got[0]["trace_id"], "a-1");
    assert_eq!(got[0]["tenant_id"], "acme");

    let (status, body) = server.get("/api/events", None).await;
    assert_eq!(status, 401, "{body}");
    let (status, body) = server.get("/api/events?tenant_id=globex", Some(acme)).await;
    assert_eq!(status, 403, "{body}");
}

/// An open viewer does not hold up a graceful stop: SIGTERM ends the live
/// stream, the collector exits 0 within seconds, and the span acknowledged
/// just before is on disk.
#[tokio::test]
async fn an_open_live_stream_does_not_delay_shutdown() {
    let mut server = Server::start();
    let mut resp = reqwest::Client::new()
        .get(server.url("/api/events"))
        .send()
        .await
        .expect("events");
    assert_eq!(resp.status(), 200);
    let first = resp.chunk().await.expect("hello event");
    assert!(first.is_some_and(|c| String::from_utf8_lossy(&c).contains("hello")));
    let (status, _) = server
        .post(
            "/api/traces",
            &json!([span("acme", "stop-1", "a", "git.clone")]),
            None,
        )
        .await;
    assert_eq!(status, 202);
    let began = std::time::Instant::now();
    let exit = tokio::task::spawn_blocking(move || {
        let exit = server.terminate();
        (exit, server)
    });
    // The stream ends (after any events still queued) rather than hanging.
    let ended = tokio::time::timeout(std::time::Duration::from_secs(10), async {
        while let Ok(Some(_)) = resp.chunk().await {}
    })
    .await;
    assert!(ended.is_ok(), "the live stream was not closed by the stop");
    let (exit, server) = exit.await.expect("join");
    assert!(exit.success(), "{exit:?}");
    assert!(
        began.elapsed() < std::time::Duration::from_secs(5),
        "stop took {:?}",
        began.elapsed()
    );
    let restarted = Server::start_in(&server.data_dir, None, &[]);
    let (status, doc) = restarted.get("/api/traces/stop-1", None).await;
    assert_eq!(status, 200, "{doc}");
}

#[tokio::test]
async fn cross_origin_reads_only_for_configured_origins() {
    let client = reqwest::Client::new();
    let allow = |resp: &reqwest::Response| {
        resp.headers()
            .get("access-control-allow-origin")
            .map(|v| v.to_str().expect("ascii").to_owned())
    };
    let preflight = |server: &Server, origin: &str| {
        client
            .request(reqwest::Method::OPTIONS, server.url("/api/traces"))
            .header("origin", origin)
            .header("access-control-request-method", "GET")
            .header("access-control-request-headers", "authorization")
            .send()
    };

    // By default no origin gets CORS headers, not even on a preflight.
    let open = Server::start();
    let resp = preflight(&open, "https://dashboard.example.com")
        .await
        .expect("options");
    assert_eq!(allow(&resp), None);
    let resp = client
        .get(open.url("/api/traces"))
        .header("origin", "https://dashboard.example.com")
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), 200);
    assert_eq!(allow(&resp), None);

    // Configured: that exact origin, and only it.
    let (keys, key) = config_with_keys(&[(Some("acme"), &["read"])]);
    let config = format!("cors_origins = [\"https://dashboard.example.com\"]\n{keys}");
    let server = Server::with_config(&config);
    let resp = preflight(&server, "https://dashboard.example.com")
        .await
        .expect("options");
    assert!(resp.status().is_success(), "{}", resp.status());
    assert_eq!(
        allow(&resp).as_deref(),
        Some("https://dashboard.example.com")
    );
    let headers = resp.headers()["access-control-allow-headers"]
        .to_str()
        .expect("ascii");
    assert!(headers.contains("authorization"), "{headers}");
    let resp = preflight(&server, "https://evil.example")
        .await
        .expect("options");
    assert_eq!(allow(&resp), None);

    for (key, status) in [(Some(key[0].as_str()), 200), (None, 401)] {
        let mut req = client
            .get(server.url("/api/traces"))
            .header("origin", "https://dashboard.example.com");
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        let resp = req.send().await.expect("get");
        assert_eq!(resp.status(), status);
        // Errors carry the header too, so the page can show why.
        assert_eq!(
            allow(&resp).as_deref(),
            Some("https://dashboard.example.com")
        );
    }
    let resp = client
        .get(server.url("/api/traces"))
        .header("origin", "https://evil.example")
        .bearer_auth(&key[0])
        .send()
        .await
        .expect("get");
    assert_eq!(resp.status(), 200);
    assert_eq!(allow(&resp), None);
}
