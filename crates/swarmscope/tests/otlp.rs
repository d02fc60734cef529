//! OTLP/HTTP into the real binary: protobuf and JSON, gzip, partial
//! success, tenancy from the key or (admins) the resource, span-derived
//! metrics, and clear errors. The official SDKs' exporters are exercised in
//! `otel_sdks.rs`.

mod support;

use prost::Message;
use serde_json::{json, Value};
use support::{config_with_keys, Server};
use swarmscope_otlp::proto::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use swarmscope_otlp::proto::common::v1::{any_value, AnyValue, KeyValue};
use swarmscope_otlp::proto::resource::v1::Resource;
use swarmscope_otlp::proto::trace::v1::{span, ResourceSpans, ScopeSpans, Span, Status};

fn kv(k: &str, v: any_value::Value) -> KeyValue {
    KeyValue {
        key: k.into(),
        value: Some(AnyValue { value: Some(v) }),
    }
}

fn s(v: &str) -> any_value::Value {
    any_value::Value::StringValue(v.into())
}

fn otlp_span(trace: u8, id: u8, parent: Option<u8>, name: &str, attrs: Vec<KeyValue>) -> Span {
    Span {
        trace_id: vec![trace; 16],
        span_id: vec![id; 8],
        parent_span_id: parent.map(|p| vec![p; 8]).unwrap_or_default(),
        name: name.into(),
        kind: span::SpanKind::Internal as i32,
        start_time_unix_nano: 1_764_000_000_000_000_000,
        end_time_unix_nano: 1_764_000_002_000_000_000,
        attributes: attrs,
        status: Some(Status {
            message: String::new(),
            code: 1,
        }),
        ..Default::default()
    }
}

fn request(spans: Vec<Span>, tenant: Option<&str>) -> ExportTraceServiceRequest {
    let mut attributes = vec![kv("service.name", s("forge-agent"))];
    if let Some(t) = tenant {
        attributes.push(kv("tenant_id", s(t)));
    }
    ExportTraceServiceRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes,
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            schema_url: String::new(),
        }],
    }
}

async fn post(
    server: &Server,
    path: &str,
    body: Vec<u8>,
    content_type: &str,
    key: &str,
    gzip: bool,
) -> (u16, Vec<u8>) {
    let mut req = reqwest::Client::new()
        .post(server.url(path))
        .header("content-type", content_type)
        .bearer_auth(key);
    let body = if gzip {
        use std::io::Write;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&body).expect("gzip");
        req = req.header("content-encoding", "gzip");
        enc.finish().expect("gzip")
    } else {
        body
    };
    let resp = req.body(body).send().await.expect("post");
    let status = resp.status().as_u16();
    (status, resp.bytes().await.expect("body").to_vec())
}

#[tokio::test]
async fn protobuf_and_json_spans_are_stored_with_their_tree_and_feed_metrics() {
    let (config, keys) =
        config_with_keys(&[(Some("acme"), &["ingest", "read"]), (None, &["admin"])]);
    let server = Server::with_config(&config);
    let (acme, admin) = (&keys[0], &keys[1]);
    let llm = otlp_span(
        7,
        2,
        Some(1),
        "llm.generate",
        vec![
            kv("model", s("claude-sonnet-4-5")),
            kv(
                "gen_ai.usage.input_tokens",
                any_value::Value::IntValue(1_000_000),
            ),
            kv("gen_ai.usage.output_tokens", any_value::Value::IntValue(0)),
        ],
    );
    let root = otlp_span(
        7,
        1,
        None,
        "agent.execute",
        vec![kv("agent_type", s("forge"))],
    );
    let body = request(vec![root, llm], None).encode_to_vec();
    let (status, answer) = post(
        &server,
        "/v1/traces",
        body,
        "application/x-protobuf",
        acme,
        true,
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    let decoded = ExportTraceServiceResponse::decode(answer.as_slice()).expect("OTLP answer");
    assert!(decoded.partial_success.is_none(), "{decoded:?}");

    let trace = "07".repeat(16);
    let (status, doc) = server
        .get(&format!("/api/traces/{trace}"), Some(acme))
        .await;
    assert_eq!(status, 200, "{doc}");
    let spans = doc["spans"].as_array().expect("spans");
    assert_eq!(spans.len(), 2);
    let llm = spans
        .iter()
        .find(|s| s["name"] == "llm.generate")
        .expect("llm");
    assert_eq!(llm["parent_span_id"], "01".repeat(8));
    assert_eq!(llm["service"], "forge-agent");
    assert_eq!(llm["attributes"]["resource.service.name"], "forge-agent");
    // Priced at ingest like a seed-format span: 1M Sonnet input tokens = $3.
    assert_eq!(llm["attributes"]["swarm.cost_usd"], 3.0);
    let (_, metrics) = server.get("/metrics", Some(admin)).await;
    let text = metrics["raw"].as_str().expect("text");
    assert!(
        text.contains(
            "swarm_claude_api_cost_usd_total{tenant_id=\"acme\",model=\"claude-sonnet-4-5\"} 3"
        ),
        "{text}"
    );

    // OTLP/JSON, from an admin key naming the tenant in the resource.
    let json_body = json!({"resourceSpans": [{
        "resource": {"attributes": [{"key": "tenant_id", "value": {"stringValue": "globex"}}]},
        "scopeSpans": [{"scope": {"name": "json-test"}, "spans": [{
            "traceId": "0af7651916cd43dd8448eb211c80319c", "spanId": "b7ad6b7169203331",
            "name": "git.clone", "kind": 3,
            "startTimeUnixNano": "1764000000000000000", "endTimeUnixNano": "1764000001000000000",
            "attributes": [{"key": "branch", "value": {"stringValue": "main"}}],
            "status": {"code": 2, "message": "remote hung up"}}]}]}]});
    let (status, answer) = post(
        &server,
        "/v1/traces",
        json_body.to_string().into_bytes(),
        "application/json",
        admin,
        false,
    )
    .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&answer));
    assert_eq!(
        serde_json::from_slice::<Value>(&answer).expect("json"),
        json!({})
    );
    let (status, doc) = server
        .get(
            "/api/traces/0af7651916cd43dd8448eb211c80319c?tenant_id=globex",
            Some(admin),
        )
        .await;
    assert_eq!(status, 200, "{doc}");
    let span = &doc["spans"][0];
    assert_eq!(
        (span["status"].as_str(), span["kind"].as_str()),
        (Some("error"), Some("client"))
    );
    assert_eq!(span["status_message"], "remote hung up");
    assert_eq!(span["attributes"]["otel.scope.name"], "json-test");
    // A tenant key does not see it.
    let (status, _) = server
        .get("/api/traces/0af7651916cd43dd8448eb211c80319c", Some(acme))
        .await;
    assert_eq!(status, 404);
}

#[tokio::test]
async fn bad_spans_are_partial_success_and_bad_requests_are_clear_errors() {
    let (config, keys) =
        config_with_keys(&[(Some("acme"), &["ingest", "read"]), (None, &["admin"])]);
    let server = Server::with_config(&config);
    let (acme, admin) = (&keys[0], &keys[1]);
    let good = otlp_span(9, 1, None, "git.push", vec![]);
    let mut zero_id = otlp_span(9, 2, None, "git.push", vec![]);
    zero_id.span_id = vec![0; 8];
    let mut no_name = otlp_span(9, 3, None, "", vec![]);
    no_name.name.clear();
    // The resource names another tenant than the key's: refused.
    let other = request(vec![otlp_span(8, 1, None, "x", vec![])], Some("globex"));
    let mut req = request(vec![good, zero_id, no_name], None);
    req.resource_spans.extend(other.resource_spans);
    let (status, answer) = post(
        &server,
        "/v1/traces",
        req.encode_to_vec(),
        "application/x-protobuf",
        acme,
        false,
    )
    .await;
    assert_eq!(status, 200);
    let partial = ExportTraceServiceResponse::decode(answer.as_slice())
        .expect("answer")
        .partial_success
        .expect("partial success");
    assert_eq!(partial.rejected_spans, 3);
    assert!(
        partial.error_message.contains("spanId"),
        "{}",
        partial.error_message
    );
    assert_eq!(
        server.span_count(Some(admin)).await,
        1,
        "only the good span is stored"
    );
    let (_, doc) = server
        .get(&format!("/api/traces/{}", "09".repeat(16)), Some(acme))
        .await;
    assert_eq!(doc["spans"].as_array().map(Vec::len), Some(1));

    // An admin key must name the tenant.
    let unnamed = request(vec![otlp_span(6, 1, None, "x", vec![])], None);
    let (status, answer) = post(
        &server,
        "/v1/traces",
        unnamed.encode_to_vec(),
        "application/x-protobuf",
        admin,
        false,
    )
    .await;
    assert_eq!(status, 200);
    let partial = ExportTraceServiceResponse::decode(answer.as_slice())
        .expect("answer")
        .partial_success
        .expect("partial");
    assert!(
        partial.error_message.contains("tenant"),
        "{}",
        partial.error_message
    );

    for (body, ct, key, want) in [
        (
            b"\xff\x00garbage".to_vec(),
            "application/x-protobuf",
            acme.as_str(),
            400,
        ),
        (
            b"{\"resourceSpans\": 3}".to_vec(),
            "application/json",
            acme.as_str(),
            400,
        ),
        (b"{}".to_vec(), "text/plain", acme.as_str(), 415),
        (b"{}".to_vec(), "application/json", "ssk_wrong", 401),
    ] {
        let (status, answer) = post(&server, "/v1/traces", body, ct, key, false).await;
        assert_eq!(status, want, "{}", String::from_utf8_lossy(&answer));
        let err: Value = serde_json::from_slice(&answer).expect("JSON error body");
        assert!(err["error"].is_string(), "{err}");
    }
    let (status, _) = post(
        &server,
        "/v1/logs",
        b"{}".to_vec(),
        "application/json",
        acme,
        false,
    )
    .await;
    assert_eq!(status, 200, "an empty logs request is fine");
}
