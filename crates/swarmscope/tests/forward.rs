//! Forwarding over OTLP: into a second swarmscope instance, and into an
//! independent decoder (the opentelemetry-proto Python package) — ids mapped
//! deterministically, tenant and ticket carried along — and through a dead
//! backend with a bounded backlog that is delivered once it comes back.

mod support;

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use support::{config_with_keys, span, Server};

const SEED_TRACE: &str = "0b4ab6f4-0d4e-4c2a-9b7e-1f2d3c4b5a69";

/// A small seed-format trace: a root and a child with UUID ids, and a log line.
fn seed_trace(tenant: &str) -> (Value, Value) {
    let mut root = span(
        tenant,
        SEED_TRACE,
        "5c1d8a0e-7f3b-4d2e-8a9c-0e1f2a3b4c5d",
        "agent.execute",
    );
    root["attributes"] = json!({"agent_type": "forge"});
    let mut child = span(
        tenant,
        SEED_TRACE,
        "7e2f9b1c-1a2b-4c3d-9e8f-0a1b2c3d4e5f",
        "llm.generate",
    );
    child["parentSpanId"] = json!("5c1d8a0e-7f3b-4d2e-8a9c-0e1f2a3b4c5d");
    child["attributes"] =
        json!({"model": "claude-sonnet-4-5", "input_tokens": 1000, "output_tokens": 10});
    let log = json!({"timestamp": "2025-12-14T10:30:45.500Z", "level": "warn",
        "message": "Claude API error, retrying", "trace_id": SEED_TRACE, "tenant_id": tenant,
        "ticket_id": "ticket_456", "agent_id": "agent_789"});
    (json!([root, child]), log)
}

/// The Python receiver on `port`; its stdout lines arrive on the channel.
fn receiver(port: u16) -> (Child, mpsc::Receiver<Value>) {
    let dir = std::env::var_os("SWARMSCOPE_OTEL_DIR")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| {
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../target/otel")
        });
    let python = dir.join("py/bin/python");
    assert!(
        python.exists(),
        "run scripts/test: it installs the OpenTelemetry Python packages"
    );
    let mut child = Command::new(python)
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../tests/otel/receive.py"))
        .arg(port.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("start the receiver");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Ok(v) = serde_json::from_str::<Value>(&line) {
                if tx.send(v).is_err() {
                    break;
                }
            } else if line == "ready" {
                let _ = tx.send(json!({"kind": "ready"}));
            }
        }
    });
    (child, rx)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("port")
        .port()
}

fn collect(rx: &mpsc::Receiver<Value>, want: usize, secs: u64) -> Vec<Value> {
    let deadline = Instant::now() + Duration::from_secs(secs);
    let mut got = Vec::new();
    while got.len() < want {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(v) if v["kind"] == "ready" => {}
            Ok(v) => got.push(v),
            Err(_) => panic!("received {} of {want}: {got:?}", got.len()),
        }
    }
    got
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forwarded_spans_and_logs_decode_with_the_official_definitions() {
    let port = free_port();
    let (mut child, rx) = receiver(port);
    collect(&rx, 0, 1);
    let (keys_toml, keys) = config_with_keys(&[(None, &["admin"])]);
    let config = format!(
        "{keys_toml}\n[[forward]]\nname = \"py\"\nurl = \"http://127.0.0.1:{port}\"\nheaders = {{ authorization = \"Bearer downstream-key\" }}\n"
    );
    let server = Server::with_config(&config);
    let admin = &keys[0];
    let (spans, log) = seed_trace("acme");
    assert_eq!(server.post("/api/traces", &spans, Some(admin)).await.0, 202);
    assert_eq!(
        server.post("/api/logs", &json!([log]), Some(admin)).await.0,
        202
    );
    let got = tokio::task::block_in_place(|| collect(&rx, 3, 20));
    let _ = child.kill();
    let spans: Vec<&Value> = got.iter().filter(|v| v["kind"] == "span").collect();
    let logs: Vec<&Value> = got.iter().filter(|v| v["kind"] == "log").collect();
    assert_eq!((spans.len(), logs.len()), (2, 1), "{got:?}");
    let trace_hex = SEED_TRACE.replace('-', "");
    let root = spans
        .iter()
        .find(|s| s["name"] == "agent.execute")
        .expect("root");
    let child_span = spans
        .iter()
        .find(|s| s["name"] == "llm.generate")
        .expect("child");
    assert_eq!(root["trace_id"], trace_hex.as_str());
    assert_eq!(child_span["trace_id"], trace_hex.as_str());
    assert_eq!(
        child_span["parent_span_id"], root["span_id"],
        "parents map like ids"
    );
    assert_eq!(root["parent_span_id"], "");
    assert_eq!(root["span_id"].as_str().map(str::len), Some(16));
    assert_eq!(root["auth"], "Bearer downstream-key");
    assert_eq!(root["resource"]["tenant_id"]["stringValue"], "acme");
    assert_eq!(root["attributes"]["ticket_id"]["stringValue"], "ticket_456");
    assert_eq!(root["attributes"]["agent_type"]["stringValue"], "forge");
    assert_eq!(
        root["attributes"]["swarm.span_id"]["stringValue"], "5c1d8a0e-7f3b-4d2e-8a9c-0e1f2a3b4c5d",
        "the id as sent travels along"
    );
    assert_eq!(child_span["attributes"]["input_tokens"]["intValue"], "1000");
    assert!(child_span["attributes"]["swarm.cost_usd"]["doubleValue"].as_f64() > Some(0.0));
    assert_eq!(logs[0]["body"]["stringValue"], "Claude API error, retrying");
    assert_eq!(logs[0]["severity_number"], 13);
    assert_eq!(logs[0]["trace_id"], trace_hex.as_str());
    assert_eq!(logs[0]["resource"]["tenant_id"]["stringValue"], "acme");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_swarmscope_receives_the_same_tree() {
    let (b_toml, b_keys) = config_with_keys(&[(None, &["admin"])]);
    let b = Server::with_config(&b_toml);
    let (a_toml, a_keys) = config_with_keys(&[(Some("acme"), &["ingest", "read"])]);
    let config = format!(
        "{a_toml}\n[[forward]]\nname = \"b\"\nurl = \"{}\"\nheaders = {{ authorization = \"Bearer {}\" }}\n",
        b.base, b_keys[0]
    );
    let a = Server::with_config(&config);
    let (spans, _) = seed_trace("acme");
    assert_eq!(a.post("/api/traces", &spans, Some(&a_keys[0])).await.0, 202);
    let trace_hex = SEED_TRACE.replace('-', "");
    let deadline = Instant::now() + Duration::from_secs(20);
    let doc = loop {
        let (status, doc) = b
            .get(
                &format!("/api/traces/{trace_hex}?tenant_id=acme"),
                Some(&b_keys[0]),
            )
            .await;
        if status == 200 && doc["spans"].as_array().map(Vec::len) == Some(2) {
            break doc;
        }
        assert!(
            Instant::now() < deadline,
            "B never got the trace: {status} {doc}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let spans = doc["spans"].as_array().expect("spans");
    let root = spans
        .iter()
        .find(|s| s["name"] == "agent.execute")
        .expect("root");
    let child = spans
        .iter()
        .find(|s| s["name"] == "llm.generate")
        .expect("child");
    assert_eq!(child["parent_span_id"], root["span_id"]);
    assert_eq!(root["ticket_id"], "ticket_456");
    assert_eq!(root["attributes"]["agent_type"], "forge");
    assert_eq!(doc["spans"][0]["orphan"], false);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dead_backend_costs_ingest_nothing_and_gets_a_bounded_backlog_later() {
    let port = free_port();
    let (keys_toml, keys) = config_with_keys(&[(None, &["admin"])]);
    let config = format!(
        "forward_backlog = 50\n{keys_toml}\n[[forward]]\nname = \"later\"\nurl = \"http://127.0.0.1:{port}\"\nbatch = 20\n"
    );
    let server = Server::with_config(&config);
    let admin = &keys[0];
    // 120 ended spans while nothing listens: all acknowledged at once.
    let started = Instant::now();
    for i in 0..4 {
        let batch: Vec<Value> = (0..30)
            .map(|j| span("acme", &format!("dead-{i}"), &format!("s{j}"), "git.push"))
            .collect();
        assert_eq!(
            server
                .post("/api/traces", &json!(batch), Some(admin))
                .await
                .0,
            202
        );
    }
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "{:?}",
        started.elapsed()
    );
    let metric = |text: &str, name: &str| -> f64 {
        text.lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.rsplit(' ').next())
            .and_then(|v| v.parse().ok())
            .unwrap_or(-1.0)
    };
    let (_, m) = server.get("/metrics", Some(admin)).await;
    let text = m["raw"].as_str().expect("metrics").to_owned();
    assert_eq!(metric(&text, "swarmscope_forward_backlog "), 50.0, "{text}");
    assert_eq!(metric(&text, "swarmscope_forward_dropped_total "), 70.0);
    // The worker keeps trying (and failing) with backoff.
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, m) = server.get("/metrics", Some(admin)).await;
        let text = m["raw"].as_str().expect("metrics").to_owned();
        if metric(&text, "swarmscope_forward_failures_total{target=\"later\"}") >= 1.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no failed attempt counted: {text}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // The backend comes up: the 50 queued arrive.
    let (mut child, rx) = tokio::task::block_in_place(|| receiver(port));
    let got = tokio::task::block_in_place(|| collect(&rx, 50, 60));
    let _ = child.kill();
    assert_eq!(got.iter().filter(|v| v["kind"] == "span").count(), 50);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, m) = server.get("/metrics", Some(admin)).await;
        let text = m["raw"].as_str().expect("metrics").to_owned();
        if metric(&text, "swarmscope_forward_backlog ") == 0.0 {
            assert_eq!(
                metric(
                    &text,
                    "swarmscope_forwarded_total{target=\"later\",kind=\"spans\"}"
                ),
                50.0
            );
            break;
        }
        assert!(Instant::now() < deadline, "backlog not drained: {text}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
