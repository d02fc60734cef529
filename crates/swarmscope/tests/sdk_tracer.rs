//! The Rust SDK's tracer against the real collector: the seed's API, batching,
//! announced spans, retries, refusals, the spool and `swarmscope spool push`,
//! and log lines shipped in the same flush.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::Value;
use support::{run, Server};
use swarmscope_model::SpanStatus;
use swarmscope_sdk::tracer::{AgentTracer, Tracer, TracerConfig};

fn tracer_for(url: &str, spool: &std::path::Path) -> Tracer {
    let mut config = TracerConfig::from_env();
    config.url = url.to_owned();
    config.api_key = None;
    config.spool_path = spool.to_owned();
    config.deadline = Duration::from_secs(5);
    config.vm_id = Some("vm-42".into());
    config.service = Some("forge-agent".into());
    Tracer::new(config)
}

#[tokio::test]
async fn the_seed_api_arrives_whole_in_one_request() {
    let server = Server::start();
    let tmp = tempfile::tempdir().expect("tmp");
    let tracer = tracer_for(&server.base, &tmp.path().join("spool.jsonl"));
    let agent = AgentTracer::with_tracer(&tracer, "ticket_456", "agent_789", "tenant_001");

    let mut execute = agent.start_span("agent.execute", [("agent_type", "forge")]);
    let execute_id = execute.id().to_owned();
    {
        let mut clone = agent.start_span(
            "git.clone",
            [
                ("repo_url", "https://git.example.com/a.git"),
                ("branch", "main"),
            ],
        );
        clone.add_event("cloned", [("files", 812)]);
        clone.set_status(SpanStatus::Ok);
        clone.end();
    }
    let mut llm = agent.start_child(
        &execute_id,
        "llm.generate",
        [("model", "claude-sonnet-4-5")],
    );
    llm.set_attribute("input_tokens", 1200);
    llm.set_error("overloaded");
    llm.end();
    execute.set_status(SpanStatus::Ok);
    execute.end();
    let report = agent.flush().await;
    assert_eq!(
        (report.sent_spans, report.requests, report.spooled_spans),
        (3, 1, 0),
        "{report:?}"
    );
    assert_eq!(
        agent.flush().await.requests,
        0,
        "a second flush has nothing to send"
    );

    let (status, doc) = server
        .get(&format!("/api/traces/{}", agent.trace_id()), None)
        .await;
    assert_eq!(status, 200, "{doc}");
    let spans = doc["spans"].as_array().expect("spans");
    let by_name = |n: &str| {
        spans
            .iter()
            .find(|s| s["name"] == n)
            .cloned()
            .unwrap_or(Value::Null)
    };
    let clone = by_name("git.clone");
    assert_eq!(
        clone["parent_span_id"],
        execute_id.as_str(),
        "implicit parent: the open span"
    );
    assert_eq!(clone["events"][0]["name"], "cloned");
    assert_eq!(clone["attributes"]["branch"], "main");
    assert_eq!(clone["ticket_id"], "ticket_456");
    assert_eq!(clone["agent_id"], "agent_789");
    assert_eq!(clone["vm_id"], "vm-42");
    assert_eq!(clone["service"], "forge-agent");
    let llm = by_name("llm.generate");
    assert_eq!(llm["parent_span_id"], execute_id.as_str());
    assert_eq!(
        (llm["status"].as_str(), llm["status_message"].as_str()),
        (Some("error"), Some("overloaded"))
    );
    assert_eq!(llm["attributes"]["input_tokens"], 1200);
    assert!(by_name("agent.execute")["parent_span_id"].is_null());
    assert_eq!(doc["trace"]["tenant_id"], "tenant_001");
    assert_eq!(agent.trace_id().len(), 32);
}

#[tokio::test]
async fn a_thousand_spans_are_one_request() {
    let server = Server::start();
    let tmp = tempfile::tempdir().expect("tmp");
    let tracer = tracer_for(&server.base, &tmp.path().join("spool.jsonl"));
    let agent = AgentTracer::with_tracer(&tracer, "T", "A", "acme");
    for i in 0..1_000 {
        agent.start_span("file.write", [("n", i)]).end();
    }
    let started = Instant::now();
    let report = agent.flush().await;
    println!("flush of 1,000 spans took {:?}", started.elapsed());
    assert_eq!((report.sent_spans, report.requests), (1_000, 1));
    let (_, doc) = server
        .get(&format!("/api/traces/{}", agent.trace_id()), None)
        .await;
    assert_eq!(doc["trace"]["span_count"], 1_000);
}

#[tokio::test]
async fn an_announced_span_is_stored_open_then_completed() {
    let server = Server::start();
    let tmp = tempfile::tempdir().expect("tmp");
    let tracer = tracer_for(&server.base, &tmp.path().join("spool.jsonl"));
    let agent = AgentTracer::with_tracer(&tracer, "T", "A", "acme");
    let llm = agent.announce("llm.generate", [("model", "claude-opus-4")]);
    agent.flush().await;
    let path = format!("/api/traces/{}", agent.trace_id());
    let (_, doc) = server.get(&path, None).await;
    assert!(doc["spans"][0]["end_time"].is_null(), "stored open: {doc}");
    llm.end();
    agent.flush().await;
    let (_, doc) = server.get(&path, None).await;
    assert!(doc["spans"][0]["end_time"].is_string(), "completed: {doc}");
    assert_eq!(doc["trace"]["span_count"], 1);
}

#[tokio::test]
async fn an_unreachable_collector_means_a_spool_that_is_pushed_later_without_duplicates() {
    let tmp = tempfile::tempdir().expect("tmp");
    let spool = tmp.path().join("spool.jsonl");
    // A port nobody listens on.
    let dead = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let dead_url = format!("http://{}", dead.local_addr().expect("addr"));
    drop(dead);
    let mut config = TracerConfig::from_env();
    config.url = dead_url;
    config.spool_path = spool.clone();
    config.deadline = Duration::from_millis(800);
    config.retries = 2;
    let tracer = Tracer::new(config);
    let agent = AgentTracer::with_tracer(&tracer, "T", "A", "acme");
    let open = agent.announce("agent.execute", Vec::<(String, Value)>::new());
    for _ in 0..5 {
        agent
            .start_span("git.push", Vec::<(String, Value)>::new())
            .end();
    }
    let report = agent.flush().await;
    assert_eq!(
        (report.sent_spans, report.spooled_spans),
        (0, 6),
        "{report:?}"
    );
    open.end();
    let report = agent.flush().await;
    assert_eq!(report.spooled_spans, 1);
    let text = std::fs::read_to_string(&spool).expect("spool");
    assert_eq!(text.lines().count(), 7);
    assert!(text.lines().all(|l| l.starts_with("{\"kind\":\"span\"")));

    let server = Server::start();
    let spool_str = spool.display().to_string();
    let (code, out, err) = run(&["spool", "push", &spool_str, "--url", &server.base]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(
        out.contains("pushed 6 spans"),
        "the open copy is superseded by the ended one: {out}"
    );
    assert!(!spool.exists(), "a fully shipped spool is deleted");
    let (_, doc) = server
        .get(&format!("/api/traces/{}", agent.trace_id()), None)
        .await;
    assert_eq!(doc["trace"]["span_count"], 6);
    assert!(doc["spans"]
        .as_array()
        .expect("spans")
        .iter()
        .all(|s| s["end_time"].is_string()));

    // Pushing the same data again stores nothing new.
    std::fs::write(&spool, &text).expect("rewrite");
    let (code, _, _) = run(&["spool", "push", &spool_str, "--url", &server.base]);
    assert_eq!(code, 0);
    let (_, doc) = server
        .get(&format!("/api/traces/{}", agent.trace_id()), None)
        .await;
    assert_eq!(doc["trace"]["span_count"], 6);

    let (code, _, err) = run(&["spool", "push", "/nonexistent/spool", "--url", &server.base]);
    assert_eq!(code, 2, "{err}");
}

/// A stand-in collector that answers with scripted statuses and counts requests.
async fn scripted(statuses: Vec<(u16, Option<&'static str>)>) -> (String, Arc<AtomicUsize>) {
    use axum::http::{HeaderMap, HeaderValue, StatusCode};
    let count = Arc::new(AtomicUsize::new(0));
    let seen = Arc::clone(&count);
    let app = axum::Router::new().fallback(move || {
        let seen = Arc::clone(&seen);
        let statuses = statuses.clone();
        async move {
            let i = seen.fetch_add(1, Ordering::SeqCst);
            let (code, retry) = statuses.get(i).copied().unwrap_or((202, None));
            let mut headers = HeaderMap::new();
            if let Some(r) = retry {
                headers.insert("retry-after", HeaderValue::from_static(r));
            }
            (
                StatusCode::from_u16(code).unwrap_or(StatusCode::ACCEPTED),
                headers,
                "{\"error\":\"scripted\"}",
            )
        }
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, count)
}

#[tokio::test]
async fn overload_is_retried_after_retry_after_and_bad_requests_are_not() {
    let tmp = tempfile::tempdir().expect("tmp");
    let (url, count) = scripted(vec![(503, Some("1")), (500, None)]).await;
    let tracer = tracer_for(&url, &tmp.path().join("spool.jsonl"));
    let agent = AgentTracer::with_tracer(&tracer, "T", "A", "acme");
    agent.start_span("x", Vec::<(String, Value)>::new()).end();
    let started = Instant::now();
    let report = agent.flush().await;
    assert_eq!((report.sent_spans, report.requests), (1, 3), "{report:?}");
    assert!(
        started.elapsed() >= Duration::from_millis(950),
        "Retry-After honoured: {:?}",
        started.elapsed()
    );
    assert_eq!(count.load(Ordering::SeqCst), 3);

    let (url, count) = scripted(vec![(400, None)]).await;
    let spool = tmp.path().join("bad.jsonl");
    let tracer = tracer_for(&url, &spool);
    let agent = AgentTracer::with_tracer(&tracer, "T", "A", "acme");
    agent.start_span("x", Vec::<(String, Value)>::new()).end();
    let report = agent.flush().await;
    assert_eq!(
        (report.dropped, report.spooled_spans, report.requests),
        (1, 0, 1),
        "{report:?}"
    );
    assert_eq!(count.load(Ordering::SeqCst), 1, "a 400 is not retried");
    assert!(!spool.exists(), "nor spooled");
}

#[tokio::test]
async fn log_lines_ship_with_the_spans_and_link_to_their_span() {
    use tracing::Instrument;
    use tracing_subscriber::layer::SubscriberExt;
    let server = Server::start();
    let tmp = tempfile::tempdir().expect("tmp");
    let buffer = swarmscope_sdk::log::LogBuffer::new(10_000);
    let mut config = TracerConfig::from_env();
    config.url = server.base.clone();
    config.spool_path = tmp.path().join("spool.jsonl");
    config.logs = Some(buffer.clone());
    let tracer = Tracer::new(config);
    let subscriber = tracing_subscriber::registry()
        .with(swarmscope_sdk::log::SeedJsonLayer::new(std::io::sink).with_shipper(buffer));
    let _default = tracing::subscriber::set_default(subscriber);

    let agent = AgentTracer::with_tracer(&tracer, "ticket_9", "agent_9", "acme");
    let span = agent.start_span("git.push", [("branch", "main")]);
    let span_id = span.id().to_owned();
    async {
        tracing::warn!(attempt = 2, "push rejected, retrying");
    }
    .instrument(span.tracing_span())
    .await;
    span.end();
    let report = agent.flush().await;
    assert_eq!(
        (report.sent_spans, report.sent_logs, report.requests),
        (1, 1, 2),
        "{report:?}"
    );

    let (_, doc) = server
        .get(&format!("/api/traces/{}", agent.trace_id()), None)
        .await;
    let line = &doc["logs"][0];
    assert_eq!(line["message"], "push rejected, retrying");
    assert_eq!(line["level"], "warn");
    assert_eq!(line["span_id"], span_id.as_str());
    assert_eq!(line["ticket_id"], "ticket_9");
    assert_eq!(line["tenant_id"], "acme");
    assert_eq!(line["metadata"]["attempt"], 2);
}

#[tokio::test]
async fn one_bad_span_costs_only_itself() {
    let server = Server::start();
    let tmp = tempfile::tempdir().expect("tmp");
    let tracer = tracer_for(&server.base, &tmp.path().join("spool.jsonl"));
    let agent = AgentTracer::with_tracer(&tracer, "T", "A", "acme");
    for i in 0..5 {
        let mut s = agent.start_span("file.write", [("n", i)]);
        if i == 2 {
            // Over the collector's 64 KiB attribute limit: refused, named by index.
            s.set_attribute("diff", "x".repeat(70_000));
        }
        s.end();
    }
    let report = agent.flush().await;
    assert_eq!(
        (report.sent_spans, report.dropped, report.spooled_spans),
        (4, 1, 0),
        "{report:?}"
    );
    let (_, doc) = server
        .get(&format!("/api/traces/{}", agent.trace_id()), None)
        .await;
    assert_eq!(doc["trace"]["span_count"], 4);
}
