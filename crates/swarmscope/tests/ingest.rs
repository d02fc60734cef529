//! `POST /api/traces` over a real socket: the seed's body, batching,
//! idempotency, and refusal of bad input with nothing stored.

mod support;

use std::io::Write;

use serde_json::{json, Value};
use support::{seed_span, span, Server};

#[tokio::test]
async fn the_seed_body_is_accepted_unchanged_and_read_back() {
    let server = Server::start();
    let (status, body) = server.post("/api/traces", &seed_span(), None).await;
    assert_eq!((status, &body), (202, &json!({"accepted": 1})));

    let (status, doc) = server
        .get("/api/traces/0b4ab6f4-0d4e-4c2a-9b7e-1f2d3c4b5a69", None)
        .await;
    assert_eq!(status, 200, "{doc}");
    let s = &doc["spans"][0];
    assert_eq!(s["span_id"], "5c1d8a0e-7f3b-4d2e-8a9c-0e1f2a3b4c5d");
    assert_eq!(s["name"], "git.clone");
    assert_eq!(s["tenant_id"], "tenant_001");
    assert_eq!(s["ticket_id"], "ticket_456");
    assert_eq!(s["agent_id"], "agent_789");
    assert_eq!(s["status"], "ok");
    assert_eq!(s["kind"], "internal");
    assert_eq!(s["start_time"], "2025-12-14T10:30:45.123Z");
    assert_eq!(s["end_time"], "2025-12-14T10:30:46.623Z");
    assert_eq!(s["duration_ms"], 1500.0);
    assert_eq!(s["attributes"]["branch"], "main");
    assert_eq!(s["events"][0]["name"], "clone.done");
    assert_eq!(s["events"][0]["attributes"]["files"], 812);
    assert_eq!(s["orphan"], false);
    assert_eq!(doc["trace"]["span_count"], 1);
    assert_eq!(doc["trace"]["root_name"], "git.clone");
}

#[tokio::test]
async fn arrays_span_lists_and_optional_fields() {
    let server = Server::start();
    let trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let mut root = span("acme", trace, "00f067aa0ba902b7", "http.request");
    root["kind"] = json!("server");
    root["service"] = json!("swarm-platform");
    let mut child = span("acme", trace, "00f067aa0ba902b8", "ticket.claim");
    child["parentSpanId"] = json!("00f067aa0ba902b7");
    child["vm_id"] = json!("vm-7");
    child["prompt_version"] = json!("v3");
    assert_eq!(
        server.post("/api/traces", &json!([root]), None).await,
        (202, json!({"accepted": 1}))
    );
    assert_eq!(
        server
            .post("/api/traces", &json!({"spans": [child]}), None)
            .await,
        (202, json!({"accepted": 1}))
    );

    let (_, doc) = server.get(&format!("/api/traces/{trace}"), None).await;
    let spans = doc["spans"].as_array().expect("spans");
    assert_eq!(spans.len(), 2);
    let claim = spans
        .iter()
        .find(|s| s["name"] == "ticket.claim")
        .expect("claim");
    assert_eq!(claim["parent_span_id"], "00f067aa0ba902b7");
    assert_eq!(claim["vm_id"], "vm-7");
    assert_eq!(
        claim["attributes"]["prompt_version"], "v3",
        "unknown fields are kept as attributes"
    );
    let req = spans
        .iter()
        .find(|s| s["name"] == "http.request")
        .expect("root");
    assert_eq!(req["kind"], "server");
    assert_eq!(req["service"], "swarm-platform");
}

#[tokio::test]
async fn resending_a_span_is_idempotent() {
    let server = Server::start();
    for _ in 0..3 {
        assert_eq!(
            server.post("/api/traces", &seed_span(), None).await,
            (202, json!({"accepted": 1}))
        );
    }
    assert_eq!(server.span_count(None).await, 1);
    let (_, doc) = server
        .get("/api/traces/0b4ab6f4-0d4e-4c2a-9b7e-1f2d3c4b5a69", None)
        .await;
    assert_eq!(doc["trace"]["span_count"], 1);
}

/// Each bad body must get a 400 naming the field, and the good span sent
/// with it in the same request must not be stored.
#[tokio::test]
async fn bad_spans_are_refused_with_the_field_and_nothing_is_stored() {
    let server = Server::start();
    let good = span("acme", "trace-bad-batch", "good", "git.clone");
    let cases: Vec<(&str, Value, &str)> = vec![
        ("name", Value::Null, "spans[1].name"),
        ("trace_id", json!(7), "spans[1].trace_id"),
        ("startTime", json!("14/12/2025"), "spans[1].startTime"),
        ("endTime", json!("2020-01-01T00:00:00Z"), "spans[1].endTime"),
        ("status", json!("meh"), "spans[1].status"),
        ("kind", json!("lateral"), "spans[1].kind"),
        ("durationMs", json!(-1), "spans[1].durationMs"),
        ("attributes", json!("x"), "spans[1].attributes"),
        (
            "attributes",
            json!({"long": "x".repeat(70_000)}),
            "spans[1].attributes.long",
        ),
        (
            "events",
            json!([{"timestamp": "2025-12-14T10:30:46Z"}]),
            "spans[1].events[0].name",
        ),
    ];
    for (key, value, field) in cases {
        let mut bad = span("acme", "trace-bad-batch", "bad", "git.clone");
        if value.is_null() {
            bad.as_object_mut().expect("object").remove(key);
        } else {
            bad[key] = value;
        }
        let (status, body) = server
            .post("/api/traces", &json!({"spans": [good, bad]}), None)
            .await;
        assert_eq!(status, 400, "{key}: {body}");
        assert_eq!(body["field"], field, "{key}: {body}");
        assert!(
            body["error"].as_str().is_some_and(|e| !e.is_empty()),
            "{body}"
        );
    }
    let many: serde_json::Map<String, Value> =
        (0..300).map(|i| (format!("k{i}"), json!(i))).collect();
    let mut bad = span("acme", "trace-bad-batch", "bad", "x");
    bad["attributes"] = Value::Object(many);
    assert_eq!(
        server
            .post("/api/traces", &json!([good, bad]), None)
            .await
            .0,
        400
    );
    assert_eq!(
        server.span_count(None).await,
        0,
        "nothing of a refused request is stored"
    );
}

#[tokio::test]
async fn malformed_bodies_get_json_errors() {
    let server = Server::start();
    let json_ct = [("content-type", "application/json")];
    let deep = format!("{}{}", "[".repeat(5000), "]".repeat(5000));
    let bodies: Vec<(&str, Vec<u8>)> = vec![
        ("empty", Vec::new()),
        ("not json", b"hello".to_vec()),
        ("truncated", br#"{"name": "x", "trace_id": "#.to_vec()),
        ("scalar", b"42".to_vec()),
        ("invalid utf-8", b"{\"name\": \"\xc3\x28\"}".to_vec()),
        ("nested too deep", deep.into_bytes()),
        ("NaN", br#"{"durationMs": NaN}"#.to_vec()),
    ];
    for (what, body) in bodies {
        let (status, reply) = server.post_raw("/api/traces", body, &json_ct, None).await;
        assert_eq!(status, 400, "{what}: {reply}");
        assert!(reply["error"].is_string(), "{what}: {reply}");
    }
    let (status, _) = server.get("/healthz", None).await;
    assert_eq!(status, 200, "the server survives bad input");
}

/// A POST over a raw socket, for bodies a normal client cannot finish
/// sending because the server (rightly) stops reading: write errors are
/// ignored and whatever the server answered is returned.
fn raw_post(server: &Server, framing: &str, chunks: &[&[u8]]) -> String {
    use std::io::Read;
    let addr = server.base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(std::time::Duration::from_secs(10)))
        .expect("timeout");
    let head = format!("POST /api/traces HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n{framing}\r\n");
    let _ = stream.write_all(head.as_bytes());
    for c in chunks {
        let framed = [format!("{:x}\r\n", c.len()).as_bytes(), c, b"\r\n"].concat();
        if stream.write_all(&framed).is_err() {
            break;
        }
    }
    let mut reply = Vec::new();
    let _ = stream.read_to_end(&mut reply);
    String::from_utf8_lossy(&reply).into_owned()
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).expect("gzip");
    enc.finish().expect("gzip")
}

#[tokio::test]
async fn body_size_limits_and_gzip() {
    let server = Server::start();
    let gz = [
        ("content-encoding", "gzip"),
        ("content-type", "application/json"),
    ];

    let body = serde_json::to_vec(&seed_span()).expect("json");
    let (status, reply) = server.post_raw("/api/traces", gzip(&body), &gz, None).await;
    assert_eq!((status, reply), (202, json!({"accepted": 1})));

    // Over 5 MiB raw, declared: 413 before the body is read.
    let reply = raw_post(&server, "Content-Length: 6291456\r\n", &[]);
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");
    assert!(reply.contains(r#""field":"body""#), "{reply}");
    // Over 5 MiB raw, chunked (no length declared): 413 once the limit is passed.
    let chunk = vec![b' '; 1024 * 1024];
    let chunks = vec![chunk.as_slice(); 6];
    let reply = raw_post(&server, "Transfer-Encoding: chunked\r\n", &chunks);
    assert!(reply.starts_with("HTTP/1.1 413"), "{reply}");

    // A gzip bomb: 20 KiB that inflates past the limit.
    let bomb = gzip(&vec![b' '; 20 * 1024 * 1024]);
    assert!(bomb.len() < 100 * 1024);
    let (status, reply) = server.post_raw("/api/traces", bomb, &gz, None).await;
    assert_eq!(status, 413, "{reply}");

    let (status, _) = server
        .post_raw("/api/traces", b"not gzip".to_vec(), &gz, None)
        .await;
    assert_eq!(status, 400);
    let (status, reply) = server
        .post_raw("/api/traces", body, &[("content-encoding", "br")], None)
        .await;
    assert_eq!(status, 415, "{reply}");
    assert_eq!(reply["field"], "Content-Encoding");
    assert_eq!(server.span_count(None).await, 1);
}

#[tokio::test]
async fn unknown_routes_and_methods_answer_json() {
    let server = Server::start();
    let (status, body) = server.get("/api/nope", None).await;
    assert_eq!(status, 404);
    assert!(body["error"].is_string());
    let (status, body) = server.post("/api/traces/abc", &json!({}), None).await;
    assert_eq!(status, 405, "{body}");
    assert!(body["error"].is_string());
}

/// Under the free-space floor, every ingest route answers 507 with
/// Retry-After and stores nothing; reads keep working.
#[tokio::test]
async fn a_nearly_full_disk_refuses_writes_with_507_and_stores_nothing() {
    let (keys_toml, keys) = support::config_with_keys(&[(None, &["admin"])]);
    // A floor no disk can meet: the data disk is "nearly full".
    let server = Server::with_config(&format!(
        "min_free_disk_bytes = 9000000000000000000\n{keys_toml}"
    ));
    let admin = &keys[0];
    let client = reqwest::Client::new();
    for (path, ct, body) in [
        ("/api/traces", "application/json", json!([support::seed_span()]).to_string()),
        ("/api/logs", "application/json", json!([{"timestamp": "2025-12-14T10:30:45.123Z", "level": "info", "message": "m", "tenant_id": "t"}]).to_string()),
        ("/v1/traces", "application/json", "{}".to_owned()),
    ] {
        let resp = client
            .post(server.url(path))
            .bearer_auth(admin)
            .header("content-type", ct)
            .body(body)
            .send()
            .await
            .expect("post");
        assert_eq!(resp.status(), 507, "{path}");
        assert_eq!(resp.headers()["retry-after"], "30", "{path}");
        let err: serde_json::Value = resp.json().await.expect("JSON error");
        assert!(
            err["error"].as_str().is_some_and(|e| e.contains("nearly full")),
            "{err}"
        );
    }
    assert_eq!(server.span_count(Some(admin)).await, 0);
    let (status, _) = server.get("/api/traces", Some(admin)).await;
    assert_eq!(status, 200, "reads still work");
}
