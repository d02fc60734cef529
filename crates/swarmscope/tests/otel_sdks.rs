//! The official OpenTelemetry SDKs (Python from PyPI, Node from npm) export
//! to the real binary over OTLP/HTTP (protobuf, and JSON from Node) and
//! OTLP/gRPC: every span arrives with its parent, kind, typed attributes,
//! event, link and status, and the log record with its trace context.
//!
//! The SDKs live in `target/otel` (or `SWARMSCOPE_OTEL_DIR`), installed by
//! scripts/test from `tests/otel/requirements.txt` and `package-lock.json`;
//! the emitters are `tests/otel/emit.py` and `emit.mjs`.

mod support;

use std::path::PathBuf;
use std::process::Command;

use serde_json::Value;
use support::{config_with_keys, Server};

fn workspace() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn otel_dir() -> PathBuf {
    let dir = std::env::var_os("SWARMSCOPE_OTEL_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| workspace().join("target/otel"));
    assert!(
        dir.join("py/bin/python").exists() && dir.join("node/node_modules").exists(),
        "the OpenTelemetry SDKs are not installed in {}: run scripts/test (it installs them)",
        dir.display()
    );
    dir
}

/// Runs one emitter; returns its JSON report.
fn emit(
    lang: &str,
    protocol: &str,
    json: bool,
    endpoint: &str,
    key: &str,
    run_id: &str,
    tenant: Option<&str>,
) -> Value {
    let dir = otel_dir();
    let mut cmd = match lang {
        "py" => {
            let mut c = Command::new(dir.join("py/bin/python"));
            c.arg(workspace().join("tests/otel/emit.py"));
            c
        }
        _ => {
            let mut c = Command::new("node");
            c.arg(dir.join("node/emit.mjs"));
            c
        }
    };
    cmd.args([
        "--endpoint",
        endpoint,
        "--protocol",
        protocol,
        "--key",
        key,
        "--run-id",
        run_id,
    ]);
    if json {
        cmd.arg("--json");
    }
    if let Some(t) = tenant {
        cmd.args(["--tenant", t]);
    }
    let out = cmd.output().expect("run the emitter");
    assert!(
        out.status.success(),
        "{lang} {protocol}: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    let line = stdout.lines().last().expect("a report line");
    serde_json::from_str(line).expect("JSON report")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn official_sdks_export_spans_and_logs_over_http_and_grpc() {
    let (config, keys) =
        config_with_keys(&[(Some("acme"), &["ingest", "read"]), (None, &["admin"])]);
    let server = Server::with_config(&config);
    let (acme, admin) = (keys[0].clone(), keys[1].clone());
    let grpc = server.grpc_base();
    let cases = [
        ("py", "http", false, None),
        ("py", "grpc", false, None),
        ("node", "http", false, None),
        ("node", "http", true, None),
        ("node", "grpc", false, Some("globex")),
    ];
    for (lang, protocol, json, tenant) in cases {
        let run_id = format!("{lang}-{protocol}{}", if json { "-json" } else { "" });
        let endpoint = if protocol == "grpc" {
            grpc.clone()
        } else {
            server.base.clone()
        };
        // The globex case goes in with an admin key naming the tenant.
        let key = if tenant.is_some() { &admin } else { &acme };
        let report = tokio::task::block_in_place(|| {
            emit(lang, protocol, json, &endpoint, key, &run_id, tenant)
        });
        let trace = report["trace_id"].as_str().expect("trace id");
        let ids = &report["spans"];
        let path = match tenant {
            Some(t) => format!("/api/traces/{trace}?tenant_id={t}"),
            None => format!("/api/traces/{trace}"),
        };
        let reader = if tenant.is_some() { &admin } else { &acme };
        let (status, doc) = server.get(&path, Some(reader)).await;
        assert_eq!(status, 200, "{run_id}: {doc}");
        let spans = doc["spans"].as_array().expect("spans");
        assert_eq!(spans.len(), 3, "{run_id}: {doc}");
        let by_name = |n: &str| {
            spans
                .iter()
                .find(|s| s["name"] == n)
                .unwrap_or_else(|| panic!("{run_id}: no {n}"))
        };
        let (root, exec, llm) = (
            by_name("http.request"),
            by_name("agent.execute"),
            by_name("llm.generate"),
        );
        assert_eq!(root["span_id"], ids["http.request"], "{run_id}");
        assert!(root["parent_span_id"].is_null(), "{run_id}");
        assert_eq!(exec["parent_span_id"], ids["http.request"], "{run_id}");
        assert_eq!(llm["parent_span_id"], ids["agent.execute"], "{run_id}");
        assert_eq!(llm["span_id"], ids["llm.generate"], "{run_id}");
        assert_eq!(
            (root["kind"].as_str(), llm["kind"].as_str()),
            (Some("server"), Some("client")),
            "{run_id}"
        );
        assert_eq!(root["status"], "ok", "{run_id}");
        assert_eq!(llm["status"], "error", "{run_id}");
        assert_eq!(llm["status_message"], "529 overloaded_error", "{run_id}");
        assert_eq!(root["attributes"]["status_code"], 200, "{run_id}");
        assert_eq!(exec["attributes"]["agent_type"], "forge", "{run_id}");
        let a = &llm["attributes"];
        assert_eq!(a["model"], "claude-sonnet-4-5", "{run_id}");
        assert_eq!(a["input_tokens"], 1200, "{run_id}: {a}");
        assert_eq!(a["output_tokens"], 300, "{run_id}");
        assert_eq!(a["retried"], true, "{run_id}");
        assert_eq!(a["temperature"], 0.2, "{run_id}");
        assert_eq!(a["tags"], serde_json::json!(["a", "b"]), "{run_id}");
        assert_eq!(
            a["otel.links"][0]["span_id"], ids["http.request"],
            "{run_id}"
        );
        assert_eq!(
            a["otel.links"][0]["attributes"]["reason"], "caused-by",
            "{run_id}"
        );
        assert!(
            a["swarm.cost_usd"].as_f64().is_some_and(|c| c > 0.0),
            "{run_id}: priced"
        );
        let service = if lang == "py" { "otel-py" } else { "otel-node" };
        assert_eq!(llm["service"], service, "{run_id}");
        assert_eq!(
            llm["ticket_id"],
            run_id.as_str(),
            "{run_id}: ticket from the resource"
        );
        assert_eq!(llm["tenant_id"], tenant.unwrap_or("acme"), "{run_id}");
        let event = &llm["events"][0];
        assert_eq!(event["name"], "retry", "{run_id}");
        assert_eq!(event["attributes"]["attempt"], 2, "{run_id}");
        // The log record, correlated to llm.generate.
        let logs = doc["logs"].as_array().expect("logs");
        let line = logs
            .iter()
            .find(|l| l["message"] == "Claude API error, retrying")
            .unwrap_or_else(|| panic!("{run_id}: no log line in {doc}"));
        assert_eq!(line["level"], "warn", "{run_id}");
        assert_eq!(line["span_id"], ids["llm.generate"], "{run_id}");
    }
}
