//! A corpus of malformed and hostile requests across every ingest and query
//! endpoint: each gets a 4xx with a JSON error body naming the problem,
//! nothing is stored, no other tenant's data shows, and the server stays
//! healthy throughout.

mod support;

use std::io::Write;

use serde_json::{json, Value};
use support::{config_with_keys, seed_span, span, Server};

struct Case {
    method: &'static str,
    path: String,
    content_type: &'static str,
    encoding: Option<&'static str>,
    body: Vec<u8>,
    /// Acceptable statuses.
    want: &'static [u16],
    key: usize,
}

fn case(
    method: &'static str,
    path: &str,
    ct: &'static str,
    body: Vec<u8>,
    want: &'static [u16],
) -> Case {
    Case {
        method,
        path: path.to_owned(),
        content_type: ct,
        encoding: None,
        body,
        want,
        key: 0,
    }
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
    enc.write_all(data).expect("gzip");
    enc.finish().expect("gzip")
}

fn with(mut s: Value, key: &str, v: Value) -> Vec<u8> {
    s[key] = v;
    json!([s]).to_string().into_bytes()
}

fn corpus() -> Vec<Case> {
    const BAD: &[u16] = &[400];
    const BIG: &[u16] = &[413];
    const J: &str = "application/json";
    let seed = seed_span();
    let mut c = Vec::new();
    // Seed-format spans.
    for body in [
        b"{\"trace_id\":".to_vec(),
        b"[{\"a\":1},".to_vec(),
        b"".to_vec(),
        b"null".to_vec(),
        b"\"a string\"".to_vec(),
        b"42".to_vec(),
        b"{\"durationMs\": NaN}".to_vec(),
        b"[{\"name\": \"x\" \xff\xfe}]".to_vec(),
        with(seed.clone(), "name", json!(123)),
        with(seed.clone(), "name", json!("")),
        with(seed.clone(), "startTime", json!("not a time")),
        with(seed.clone(), "startTime", json!(1e300)),
        with(seed.clone(), "durationMs", json!(-5)),
        with(seed.clone(), "endTime", json!("2000-01-01T00:00:00Z")),
        with(seed.clone(), "status", json!("sideways")),
        with(seed.clone(), "kind", json!("sideways")),
        with(seed.clone(), "trace_id", json!("x".repeat(10_000))),
        with(seed.clone(), "id", json!(null)),
        with(seed.clone(), "attributes", json!("not an object")),
        with(seed.clone(), "events", json!([{"name": 5}])),
        with(seed.clone(), "trace_id", json!("'; DROP TABLE spans; --")),
    ] {
        // The SQL-looking id is a valid id: stored as text, harmless. Skip it here.
        if body.windows(4).any(|w| w == b"DROP") {
            continue;
        }
        c.push(case("POST", "/api/traces", J, body, BAD));
    }
    // Sizes and shapes.
    let many: serde_json::Map<String, Value> =
        (0..100_000).map(|i| (format!("k{i}"), json!(1))).collect();
    c.push(case(
        "POST",
        "/api/traces",
        J,
        with(seed.clone(), "attributes", Value::Object(many)),
        BAD,
    ));
    let deep = "[".repeat(100_000) + &"]".repeat(100_000);
    c.push(case(
        "POST",
        "/api/traces",
        J,
        deep.clone().into_bytes(),
        BAD,
    ));
    c.push(case(
        "POST",
        "/api/traces",
        J,
        with(
            seed.clone(),
            "attributes",
            json!({"huge": "x".repeat(10 * 1024 * 1024)}),
        ),
        BIG,
    ));
    let bomb = gzip(&vec![b'['; 64 * 1024 * 1024]);
    let mut g = case("POST", "/api/traces", J, bomb, BIG);
    g.encoding = Some("gzip");
    c.push(g);
    let mut notgz = case("POST", "/api/traces", J, b"not gzip at all".to_vec(), BAD);
    notgz.encoding = Some("gzip");
    c.push(notgz);
    let mut br = case("POST", "/api/traces", J, b"[]".to_vec(), &[415]);
    br.encoding = Some("br");
    c.push(br);
    let too_many: Vec<Value> = (0..10_001)
        .map(|i| span("t", "big", &format!("s{i}"), "x"))
        .collect();
    c.push(case(
        "POST",
        "/api/traces",
        J,
        json!(too_many).to_string().into_bytes(),
        &[400, 413],
    ));
    // Log lines.
    for body in [
        b"{\"timestamp\":".to_vec(),
        b"[{\"level\": \"info\"}]".to_vec(),
        json!([{"timestamp": "yesterday", "level": "info", "message": "m", "tenant_id": "t"}]).to_string().into_bytes(),
        json!([{"timestamp": "2025-12-14T10:30:45Z", "level": "shouting", "message": "m", "tenant_id": "t"}]).to_string().into_bytes(),
        json!([{"timestamp": "2025-12-14T10:30:45Z", "level": "info", "message": 5, "tenant_id": "t"}]).to_string().into_bytes(),
        b"{\"ok\": true}\n{broken\n".to_vec(),
        deep.clone().into_bytes(),
    ] {
        c.push(case("POST", "/api/logs", J, body, BAD));
    }
    // OTLP.
    for (path, body, ct, want) in [
        (
            "/v1/traces",
            b"\xff\xff\xff\xff".to_vec(),
            "application/x-protobuf",
            BAD,
        ),
        (
            "/v1/traces",
            vec![0x0a, 0xff, 0x01],
            "application/x-protobuf",
            BAD,
        ),
        ("/v1/traces", b"{\"resourceSpans\": 7}".to_vec(), J, BAD),
        ("/v1/traces", b"[1,2".to_vec(), J, BAD),
        ("/v1/traces", b"{}".to_vec(), "text/plain", &[415][..]),
        ("/v1/traces", deep.clone().into_bytes(), J, BAD),
        (
            "/v1/logs",
            b"\x12\x34\x56".to_vec(),
            "application/x-protobuf",
            BAD,
        ),
        ("/v1/logs", b"{\"resourceLogs\": \"x\"}".to_vec(), J, BAD),
        ("/v1/logs", b"{}".to_vec(), "application/xml", &[415][..]),
    ] {
        c.push(case("POST", path, ct, body, want));
    }
    // Query parameters.
    for q in [
        "limit=-1",
        "limit=abc",
        "limit=100000",
        "limit=0",
        "cursor=garbage",
        "cursor=' OR 1=1 --",
        "since=banana",
        "until=9999999999999999999y",
        "status=maybe",
        "min_duration_ms=NaN",
        "min_duration_ms=-1",
        "nope=1",
        "limit=1&limit=2",
        "attr==x",
        "attr=a\"b=1",
        "attr=noequals",
        "ticket_id=",
        &format!("ticket_id={}", "x".repeat(300)),
    ] {
        c.push(case("GET", &format!("/api/traces?{q}"), J, Vec::new(), BAD));
    }
    for q in [
        "level=loud",
        "order=sideways",
        "limit=-5",
        "since=never",
        "q=",
        "bogus=1",
    ] {
        c.push(case("GET", &format!("/api/logs?{q}"), J, Vec::new(), BAD));
    }
    // Paths, routes and methods.
    for (method, path, want) in [
        ("GET", "/api/traces/..%2F..%2Fetc%2Fpasswd", &[404][..]),
        ("GET", "/api/traces/%00", &[400, 404][..]),
        (
            "GET",
            &format!("/api/traces/{}", "a".repeat(300)),
            &[400][..],
        ),
        ("GET", "/api/tickets/..%2F..%2F/traces", &[200, 404][..]),
        ("GET", "/etc/passwd", &[404][..]),
        ("GET", "/api/nothing", &[404][..]),
        ("DELETE", "/api/traces", &[405][..]),
        ("PUT", "/api/logs", &[405][..]),
        ("GET", "/v1/traces", &[405][..]),
        ("POST", "/metrics", &[405][..]),
        ("POST", "/api/vms/%2E%2E/terminated", &[200, 400, 404][..]),
        ("GET", "/api/events?tenant_id=x&tenant_id=y", &[400][..]),
        ("GET", "/api/alerts?bogus=1", &[400][..]),
    ] {
        c.push(case(method, path, J, Vec::new(), want));
    }
    // Tenancy: a tenant key naming another tenant.
    let mut other = case(
        "POST",
        "/api/traces",
        J,
        json!([span("globex", "x", "y", "z")])
            .to_string()
            .into_bytes(),
        &[403],
    );
    other.key = 1;
    c.push(other);
    c
}

/// POSTs over a plain socket, ignoring a write cut short by the server,
/// and returns the status and body the server sent.
fn raw_post(
    addr: &str,
    path: &str,
    key: &str,
    ct: &str,
    enc: Option<&str>,
    body: &[u8],
) -> (u16, String) {
    use std::io::Read;
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    let _ = stream.set_read_timeout(Some(std::time::Duration::from_secs(10)));
    let mut head = format!(
        "POST {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {key}\r\nContent-Type: {ct}\r\nContent-Length: {}\r\nConnection: close\r\n",
        body.len()
    );
    if let Some(e) = enc {
        head.push_str(&format!("Content-Encoding: {e}\r\n"));
    }
    head.push_str("\r\n");
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let text = String::from_utf8_lossy(&answer).into_owned();
    let status = text
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0);
    let body = text.split("\r\n\r\n").nth(1).unwrap_or("").to_owned();
    // A chunked body: the JSON is between the chunk sizes.
    let body = match (body.find('{'), body.rfind('}')) {
        (Some(a), Some(b)) if b >= a => body[a..=b].to_owned(),
        _ => body,
    };
    (status, body)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_hostile_request_gets_a_clear_4xx_and_nothing_is_stored() {
    let (config, keys) =
        config_with_keys(&[(None, &["admin"]), (Some("acme"), &["ingest", "read"])]);
    let server = Server::with_config(&config);
    let client = reqwest::Client::new();
    let corpus = corpus();
    assert!(corpus.len() >= 60, "{} cases", corpus.len());
    let mut failures = Vec::new();
    for (i, c) in corpus.iter().enumerate() {
        let method: reqwest::Method = c.method.parse().expect("method");
        let mut req = client
            .request(method, server.url(&c.path))
            .bearer_auth(&keys[c.key])
            .header("content-type", c.content_type)
            .body(c.body.clone());
        if let Some(e) = c.encoding {
            req = req.header("content-encoding", e);
        }
        // Bodies the server refuses before reading them all: it answers and
        // closes, so send them over a raw socket and read the answer anyway.
        let (status, text) = if c.body.len() > 1024 * 1024 {
            let addr = server.base.trim_start_matches("http://").to_owned();
            let (path, key, ct, enc, body) = (
                c.path.clone(),
                keys[c.key].clone(),
                c.content_type,
                c.encoding,
                c.body.clone(),
            );
            tokio::task::spawn_blocking(move || raw_post(&addr, &path, &key, ct, enc, &body))
                .await
                .expect("raw post")
        } else {
            let resp = req.send().await.expect("the server answers");
            let status = resp.status().as_u16();
            (status, resp.text().await.unwrap_or_default())
        };
        let json: Option<Value> = serde_json::from_str(&text).ok();
        let ok_status = c.want.contains(&status);
        let has_error = status == 200 || json.as_ref().is_some_and(|j| j["error"].is_string());
        if !ok_status || !has_error {
            failures.push(format!(
                "#{i} {} {} -> {status} {}",
                c.method,
                c.path.chars().take(80).collect::<String>(),
                text.chars().take(200).collect::<String>()
            ));
        }
        // Still healthy after each one.
        let (h, _) = server.get("/healthz", None).await;
        assert_eq!(h, 200, "unhealthy after case #{i}");
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        corpus.len(),
        failures.join("\n")
    );
    // Nothing partial was stored; SQL-looking input changed nothing.
    assert_eq!(server.span_count(Some(&keys[0])).await, 0);
    let (_, stats) = server.get("/api/stats", Some(&keys[0])).await;
    assert_eq!(stats["logs"], 0, "{stats}");
    let (status, page) = server
        .get(
            "/api/traces?ticket_id=%27%20OR%201%3D1%20--",
            Some(&keys[1]),
        )
        .await;
    assert_eq!(status, 200);
    assert_eq!(page["traces"], json!([]));
}
