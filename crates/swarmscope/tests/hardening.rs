//! Hostile clients, as an attacker writes them, against the real binary over
//! loopback: what they get, what is stored, and what the collector's memory
//! and its other callers see. The timed, side-by-side view of the same
//! attacks is tests/neighbours/neighbours.py.

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{config_with_keys, span, Server};

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    e.write_all(data).expect("gzip");
    e.finish().expect("gzip")
}

fn rss_mib(pid: u32) -> f64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .expect("VmRSS")
        / 1024.0
}

fn addr(server: &Server) -> String {
    server.base.trim_start_matches("http://").to_owned()
}

/// Sends raw bytes, then reads until the server closes or answers.
fn raw(server: &Server, request: &[u8], wait: Duration) -> String {
    let mut s = TcpStream::connect(addr(server)).expect("connect");
    s.set_read_timeout(Some(wait)).expect("timeout");
    s.write_all(request).expect("write");
    let mut out = Vec::new();
    let mut buf = [0u8; 4096];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        out.extend_from_slice(&buf[..n]);
        if out.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn tenants() -> (String, Vec<String>) {
    config_with_keys(&[
        (Some("acme"), &["ingest", "read"]),
        (Some("globex"), &["ingest", "read"]),
        (None, &["admin"]),
    ])
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decode_bombs_cost_a_bounded_amount_with_or_without_a_key() {
    let (config, keys) = tenants();
    let server = Server::with_config(&config);
    // 5 MB of `{},` in 5 KB: 1.7 million spans for the seed route.
    let mut items = b"[".to_vec();
    items.extend(b"{},".repeat(1_666_000));
    items.extend(b"{}]");
    let json_bomb = gzip(&items);
    assert!(json_bomb.len() < 16 * 1024, "{}", json_bomb.len());
    // The protobuf one: 2.5 million empty spans in one ScopeSpans.
    let wrap = |field: u8, inner: &[u8]| {
        let mut out = vec![(field << 3) | 2];
        let mut n = inner.len();
        while n >= 0x80 {
            out.push((n as u8) | 0x80);
            n >>= 7;
        }
        out.push(n as u8);
        out.extend_from_slice(inner);
        out
    };
    let proto_bomb = gzip(&wrap(1, &wrap(2, &[0x12u8, 0x00].repeat(2_400_000))));
    let before = rss_mib(server.pid());
    let mut tasks = Vec::new();
    for i in 0..32 {
        let (client, url) = (reqwest::Client::new(), server.base.clone());
        let key = (i % 2 == 0).then(|| keys[0].clone());
        let (path, ct, body) = if i % 4 < 2 {
            ("/api/traces", "application/json", json_bomb.clone())
        } else {
            ("/v1/traces", "application/x-protobuf", proto_bomb.clone())
        };
        tasks.push(tokio::spawn(async move {
            let mut req = client
                .post(format!("{url}{path}"))
                .header("content-type", ct)
                .header("content-encoding", "gzip")
                .body(body);
            if let Some(k) = &key {
                req = req.bearer_auth(k);
            }
            let resp = req.send().await.expect("send");
            let status = resp.status().as_u16();
            let body: Value = resp.json().await.unwrap_or(Value::Null);
            (key.is_some(), status, body)
        }));
    }
    for t in tasks {
        let (authenticated, status, body) = t.await.expect("task");
        if authenticated {
            assert_eq!(status, 400, "{body}");
            let error = body["error"].as_str().unwrap_or("");
            assert!(error.contains("too many items"), "{body}");
        } else {
            assert_eq!(status, 401, "{body}");
        }
    }
    let after = rss_mib(server.pid());
    println!("collector RSS {before:.1} MiB before, {after:.1} MiB after 32 bombs");
    // Before the counting and fair shares, the same bombs took it past 3 GB.
    assert!(after < 300.0, "RSS grew from {before:.1} to {after:.1} MiB");
    assert_eq!(server.span_count(Some(&keys[2])).await, 0);
}

#[tokio::test]
async fn a_key_is_checked_before_a_byte_of_the_body_is_read() {
    let (config, _keys) = tenants();
    let server = Server::with_config(&config);
    // Promise 5 MB and send none of it: the answer comes at once.
    let started = Instant::now();
    let reply = raw(
        &server,
        b"POST /api/traces HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 5000000\r\n\r\n",
        Duration::from_secs(5),
    );
    assert!(reply.starts_with("HTTP/1.1 401"), "{reply}");
    assert!(started.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn every_gzip_member_is_stored_and_trailing_junk_is_refused() {
    let (config, keys) = tenants();
    let server = Server::with_config(&config);
    let one = json!([span("acme", "t-multi", "s1", "a")]).to_string();
    let two = json!([span("acme", "t-multi", "s2", "b")]).to_string();
    // Two members that only together are one JSON body.
    let text = format!("{}, {}", &one[..one.len() - 1], &two[1..]);
    let (head, tail) = text.split_at(text.len() / 2);
    let mut body = gzip(head.as_bytes());
    body.extend(gzip(tail.as_bytes()));
    let headers = [
        ("content-type", "application/json"),
        ("content-encoding", "GZIP"),
    ];
    let (status, reply) = server
        .post_raw("/api/traces", body.clone(), &headers, Some(&keys[0]))
        .await;
    assert_eq!(status, 202, "{reply}");
    assert_eq!(reply["accepted"], 2);
    body.extend_from_slice(b"junk");
    let (status, reply) = server
        .post_raw("/api/traces", body, &headers, Some(&keys[0]))
        .await;
    assert_eq!(status, 400, "{reply}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spans_whose_numbers_cannot_be_summed_are_refused_and_fail_nobody_else() {
    let (config, keys) = tenants();
    let server = Server::with_config(&config);
    for bad in [json!("abc"), json!(1e308), json!(-1e308)] {
        let mut open = span("acme", "t-bad", "s1", "llm.generate");
        open.as_object_mut().expect("object").remove("endTime");
        open["attributes"]["swarm.cost_usd"] = bad.clone();
        let (status, reply) = server
            .post("/api/traces", &json!([open]), Some(&keys[0]))
            .await;
        assert_eq!(status, 400, "{bad}: {reply}");
        assert_eq!(reply["field"], "[0].attributes.swarm.cost_usd", "{reply}");
    }
    let mut wraps = span("acme", "t-bad", "s2", "llm.generate");
    wraps["attributes"]["input_tokens"] = json!(18_446_744_073_709_551_615u64);
    let (status, reply) = server
        .post("/api/traces", &json!([wraps]), Some(&keys[0]))
        .await;
    assert_eq!(status, 400, "{reply}");
    // Meanwhile another tenant's writes all commit.
    let mut tasks = Vec::new();
    for i in 0..50 {
        let (client, url, key) = (
            reqwest::Client::new(),
            server.url("/api/traces"),
            keys[1].clone(),
        );
        tasks.push(tokio::spawn(async move {
            client
                .post(url)
                .bearer_auth(key)
                .json(&json!([span("globex", &format!("g{i}"), "s1", "ok")]))
                .send()
                .await
                .expect("send")
                .status()
                .as_u16()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.expect("task"), 202);
    }
}

#[tokio::test]
async fn data_dated_far_ahead_is_refused_so_it_cannot_escape_retention() {
    let (config, keys) = tenants();
    let server = Server::with_config(&config);
    let mut future = span("acme", "t-future", "s1", "a");
    future["startTime"] = json!("2200-01-01T00:00:00Z");
    future["endTime"] = json!("2200-01-01T00:00:01Z");
    let (status, reply) = server
        .post("/api/traces", &json!([future]), Some(&keys[0]))
        .await;
    assert_eq!(status, 400, "{reply}");
    assert_eq!(reply["field"], "startTime");
    let line = json!({"timestamp": "2200-01-01T00:00:00Z", "level": "info", "message": "m", "tenant_id": "acme"});
    let (status, reply) = server.post("/api/logs", &line, Some(&keys[0])).await;
    assert_eq!(status, 400, "{reply}");
    // A NUL in a search is refused, not matched against every line.
    let (status, reply) = server.get("/api/logs?q=%00", Some(&keys[0])).await;
    assert_eq!(status, 400, "{reply}");
    assert_eq!(reply["field"], "q");
}

fn config_with(extra: &str) -> (String, Vec<String>) {
    let (config, keys) = tenants();
    (format!("{extra}\n{config}"), keys)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_silent_and_idle_connections_are_closed() {
    let (config, keys) =
        config_with("body_timeout_secs = 1\nheader_timeout_secs = 1\nidle_timeout_secs = 2");
    let server = Server::with_config(&config);
    // A body trickled slower than the deadline: 408, and the connection back.
    let started = Instant::now();
    let head = format!(
        "POST /api/traces HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n[",
        keys[0]
    );
    let reply = raw(&server, head.as_bytes(), Duration::from_secs(5));
    assert!(reply.starts_with("HTTP/1.1 408"), "{reply}");
    assert!(started.elapsed() < Duration::from_secs(4));
    // Nothing at all, or half a header: closed after the header timeout.
    for request in [&b""[..], b"POST /api/traces HTTP/1.1\r\nHost:"] {
        let started = Instant::now();
        let reply = raw(&server, request, Duration::from_secs(5));
        assert!(!reply.starts_with("HTTP/1.1 2"), "{reply}");
        assert!(
            started.elapsed() < Duration::from_secs(4),
            "closed after {:?}",
            started.elapsed()
        );
    }
    // A kept-alive connection with nothing in flight is closed when idle.
    let mut s = TcpStream::connect(addr(&server)).expect("connect");
    s.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .expect("write");
    s.set_read_timeout(Some(Duration::from_secs(6)))
        .expect("timeout");
    let started = Instant::now();
    let mut all = Vec::new();
    let mut buf = [0u8; 1024];
    while let Ok(n) = s.read(&mut buf) {
        if n == 0 {
            break;
        }
        all.extend_from_slice(&buf[..n]);
    }
    assert!(String::from_utf8_lossy(&all).starts_with("HTTP/1.1 200"));
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stop_drops_stalled_connections_at_its_deadline_and_keeps_what_was_acknowledged() {
    let (config, keys) = config_with("shutdown_timeout_secs = 1\nbody_timeout_secs = 60");
    let mut server = Server::with_config(&config);
    let (status, _) = server
        .post(
            "/api/traces",
            &json!([span("acme", "t-kept", "s1", "a")]),
            Some(&keys[0]),
        )
        .await;
    assert_eq!(status, 202);
    // A request whose body never finishes.
    let mut stalled = TcpStream::connect(addr(&server)).expect("connect");
    let head = format!(
        "POST /api/traces HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\nContent-Length: 1000\r\n\r\n[",
        keys[0]
    );
    stalled.write_all(head.as_bytes()).expect("write");
    tokio::time::sleep(Duration::from_millis(200)).await;
    let started = Instant::now();
    let status = server.terminate();
    assert!(status.success(), "{status:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let dir = server.data_dir.clone();
    let reopened = Server::start_in(&dir, Some(&config), &[]);
    let (status, trace) = reopened.get("/api/traces/t-kept", Some(&keys[0])).await;
    assert_eq!(status, 200, "{trace}");
}

#[tokio::test]
async fn otlp_resources_cannot_multiply_into_the_database() {
    use prost::Message;
    use swarmscope_otlp::proto::collector::trace::v1::ExportTraceServiceRequest;
    use swarmscope_otlp::proto::common::v1::{any_value, AnyValue, KeyValue};
    use swarmscope_otlp::proto::resource::v1::Resource;
    use swarmscope_otlp::proto::trace::v1::{ResourceSpans, ScopeSpans, Span};
    let (config, keys) = tenants();
    let server = Server::with_config(&config);
    let big = KeyValue {
        key: "blob".into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue("x".repeat(60_000))),
        }),
    };
    let request = ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![big],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans: (0..2_000u32)
                    .map(|i| Span {
                        trace_id: vec![1; 16],
                        span_id: [i.to_be_bytes(), [1; 4]].concat(),
                        name: "s".into(),
                        start_time_unix_nano: 1,
                        end_time_unix_nano: 2,
                        ..Default::default()
                    })
                    .collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let (status, reply) = server
        .post_raw(
            "/v1/traces",
            request.encode_to_vec(),
            &[("content-type", "Application/X-Protobuf")],
            Some(&keys[0]),
        )
        .await;
    assert_eq!(status, 413, "{reply}");
    assert_eq!(reply["field"], "resource");
    assert_eq!(server.span_count(Some(&keys[2])).await, 0);
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_lockout_counts_each_client() {
    let (config, keys) =
        config_with("trusted_proxies = [\"127.0.0.1\"]\nauth_failures_per_minute = 5");
    let server = Server::with_config(&config);
    let client = reqwest::Client::new();
    let get = |from: &'static str, key: String| {
        client
            .get(server.url("/api/traces"))
            .header("x-forwarded-for", from)
            .bearer_auth(key)
            .send()
    };
    for _ in 0..5 {
        let r = get("10.0.0.1", "ssk_wrong".into()).await.expect("send");
        assert_eq!(r.status(), 401);
    }
    let r = get("10.0.0.1", "ssk_wrong".into()).await.expect("send");
    assert_eq!(r.status(), 429, "the guessing client is slowed");
    // Another client behind the same proxy is not: its failure is a 401, and
    // a valid key is served.
    let r = get("10.0.0.2", "ssk_wrong".into()).await.expect("send");
    assert_eq!(r.status(), 401);
    let r = get("10.0.0.2", keys[0].clone()).await.expect("send");
    assert_eq!(r.status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_tenant_cannot_hold_every_live_feed() {
    let (config, keys) = tenants();
    let server = Server::with_config(&config);
    let client = reqwest::Client::new();
    let mut open = Vec::new();
    for i in 0..16 {
        let r = client
            .get(server.url("/api/events"))
            .bearer_auth(&keys[0])
            .send()
            .await
            .expect("send");
        assert_eq!(r.status(), 200, "feed {i}");
        open.push(r);
    }
    let r = client
        .get(server.url("/api/events"))
        .bearer_auth(&keys[0])
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 503, "acme's 17th feed");
    let r = client
        .get(server.url("/api/events"))
        .bearer_auth(&keys[1])
        .send()
        .await
        .expect("send");
    assert_eq!(r.status(), 200, "globex still gets one");
    drop(open);
}
