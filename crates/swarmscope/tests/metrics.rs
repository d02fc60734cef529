//! `GET /metrics` of the collector: agent-side metrics derived from spans
//! (seed and OpenTelemetry GenAI attribute names, cache tokens, USD cost
//! stored on the span), counted once per stored span, the collector's own
//! health, Prometheus and OpenMetrics formats, promtool, and auth.

mod support;

use std::io::Write;
use std::process::{Command, Stdio};

use serde_json::{json, Value};
use support::{config_with_keys, span, Server};

fn llm(trace: &str, id: &str, attributes: Value) -> Value {
    let mut s = span("acme", trace, id, "llm.generate");
    s["attributes"] = attributes;
    s
}

fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find(|l| l.starts_with(series) && l[series.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
}

fn promtool_accepts(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool not found: run scripts/test, which installs Debian's prometheus package");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write");
    let out = child.wait_with_output().expect("promtool");
    let findings = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let unexpected: Vec<&str> = findings
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| {
            !(l.contains("should not contain abbreviated units")
                && ["swarm_api_request_duration_ms", "swarm_vm_boot_duration_ms"]
                    .iter()
                    .any(|n| l.starts_with(n)))
        })
        .collect();
    assert!(
        matches!(out.status.code(), Some(0) | Some(3)) && unexpected.is_empty(),
        "promtool: {findings}"
    );
}

#[tokio::test]
async fn spans_become_metrics_once_with_their_cost() {
    let server = Server::start();
    let mut vm = span("acme", "t1", "vm", "vm.spawn");
    vm["attributes"] = json!({"vm_id": "vm-1", "method": "restore"});
    vm["durationMs"] = json!(4);
    vm.as_object_mut().expect("object").remove("endTime");
    let mut exec = span("acme", "t1", "exec", "agent.execute");
    exec["attributes"] = json!({"agent_type": "forge"});
    let mut done = span("acme", "t1", "done", "ticket.complete");
    done["attributes"] = json!({"duration_ms": 754_000, "type": "feature", "complexity": "medium"});
    let mut failed = llm(
        "t1",
        "llm3",
        json!({"model": "claude-sonnet-4-5", "input_tokens": 10, "output_tokens": 0}),
    );
    failed["status"] = json!("error");
    let body = json!([
        vm,
        exec,
        done,
        llm(
            "t1",
            "llm1",
            json!({"model": "claude-sonnet-4-5", "input_tokens": 1000, "output_tokens": 200})
        ),
        llm(
            "t1",
            "llm2",
            json!({
                "gen_ai.request.model": "claude-sonnet-4-5-20250929",
                "gen_ai.usage.input_tokens": 500,
                "gen_ai.usage.output_tokens": 100,
                "gen_ai.usage.cache_read.input_tokens": 10000,
                "gen_ai.usage.cache_creation.input_tokens": 2000
            })
        ),
        failed,
        llm(
            "t1",
            "llm4",
            json!({"model": "gpt-9", "input_tokens": 70, "output_tokens": 7})
        ),
    ]);
    assert_eq!(server.post("/api/traces", &body, None).await.0, 202);
    // A retry of the same request must not count anything twice.
    assert_eq!(server.post("/api/traces", &body, None).await.0, 202);
    assert_eq!(
        server
            .post("/api/traces", &json!({"bad": true}), None)
            .await
            .0,
        400
    );

    let resp = reqwest::get(server.url("/metrics")).await.expect("scrape");
    assert_eq!(
        resp.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = resp.text().await.expect("text");
    let v = |series: &str| {
        sample(&text, series).unwrap_or_else(|| panic!("{series} missing from:\n{text}"))
    };
    assert_eq!(
        v(r#"swarm_claude_api_calls_total{model="claude-sonnet-4-5",status="ok"}"#),
        1.0
    );
    assert_eq!(
        v(r#"swarm_claude_api_calls_total{model="claude-sonnet-4-5-20250929",status="ok"}"#),
        1.0
    );
    assert_eq!(
        v(r#"swarm_claude_api_calls_total{model="claude-sonnet-4-5",status="error"}"#),
        1.0
    );
    assert_eq!(
        v(r#"swarm_claude_api_tokens_total{model="claude-sonnet-4-5",direction="input"}"#),
        1010.0
    );
    assert_eq!(
        v(
            r#"swarm_claude_api_tokens_total{model="claude-sonnet-4-5-20250929",direction="cache_read"}"#
        ),
        10000.0
    );
    assert_eq!(
        v(
            r#"swarm_claude_api_tokens_total{model="claude-sonnet-4-5-20250929",direction="cache_write"}"#
        ),
        2000.0
    );
    // $3 / $15 / $0.30 / $3.75 per million: 0.006 + 0.00003, and 0.0015 + 0.0015 + 0.003 + 0.0075.
    let cost_a =
        v(r#"swarm_claude_api_cost_usd_total{tenant_id="acme",model="claude-sonnet-4-5"}"#);
    assert!((cost_a - 0.00603).abs() < 1e-9, "{cost_a}");
    let cost_b = v(
        r#"swarm_claude_api_cost_usd_total{tenant_id="acme",model="claude-sonnet-4-5-20250929"}"#,
    );
    assert!((cost_b - 0.0135).abs() < 1e-9, "{cost_b}");
    assert_eq!(
        v(r#"swarmscope_unpriced_tokens_total{model="gpt-9"}"#),
        77.0
    );
    assert!(
        !text.contains(r#"model="gpt-9"}"#)
            || !text
                .contains("swarm_claude_api_cost_usd_total{tenant_id=\"acme\",model=\"gpt-9\"}")
    );
    assert_eq!(
        v(r#"swarm_agent_executions_total{agent_type="forge",status="ok"}"#),
        1.0
    );
    assert_eq!(
        v(r#"swarm_vm_boot_duration_ms_count{method="restore"}"#),
        1.0
    );
    assert_eq!(
        v(r#"swarm_vm_boot_duration_ms_bucket{le="5.0",method="restore"}"#),
        1.0
    );
    assert_eq!(
        v(r#"swarm_ticket_duration_seconds_sum{type="feature",complexity="medium"}"#),
        754.0
    );
    assert_eq!(
        v(r#"swarmscope_spans_accepted_total{tenant_id="acme"}"#),
        14.0,
        "both requests were acknowledged"
    );
    assert_eq!(
        v(r#"swarmscope_spans_rejected_total{reason="invalid"}"#),
        1.0
    );
    assert!(v("swarmscope_database_bytes") > 0.0);
    assert!(v("swarmscope_writer_batches_total") >= 2.0);
    promtool_accepts(&text);

    // The cost is stored on the span.
    let (_, doc) = server.get("/api/traces/t1", None).await;
    let llm2 = doc["spans"]
        .as_array()
        .expect("spans")
        .iter()
        .find(|s| s["span_id"] == "llm2")
        .expect("llm2")
        .clone();
    assert!((llm2["attributes"]["swarm.cost_usd"].as_f64().expect("cost") - 0.0135).abs() < 1e-12);
    let unknown = doc["spans"]
        .as_array()
        .expect("spans")
        .iter()
        .find(|s| s["span_id"] == "llm4")
        .expect("llm4")
        .clone();
    assert_eq!(unknown["attributes"]["swarm.cost_usd"], 0.0);
    assert_eq!(unknown["attributes"]["swarm.unpriced"], true);

    let open = reqwest::Client::new()
        .get(server.url("/metrics"))
        .header("accept", "application/openmetrics-text; version=1.0.0")
        .send()
        .await
        .expect("scrape");
    assert!(open.headers()["content-type"]
        .to_str()
        .expect("ct")
        .starts_with("application/openmetrics-text"));
    assert!(open.text().await.expect("text").ends_with("# EOF\n"));
}

#[tokio::test]
async fn metrics_need_a_metrics_or_admin_key() {
    let (config, keys) = config_with_keys(&[
        (None, &["metrics"]),
        (None, &["admin"]),
        (Some("acme"), &["ingest", "read"]),
    ]);
    let server = Server::with_config(&config);
    let http = reqwest::Client::new();
    let status = |key: Option<String>| {
        let req = http.get(server.url("/metrics"));
        let req = match key {
            Some(k) => req.bearer_auth(k),
            None => req,
        };
        async move { req.send().await.expect("scrape").status().as_u16() }
    };
    assert_eq!(status(None).await, 401);
    assert_eq!(status(Some("wrong".into())).await, 401);
    assert_eq!(
        status(Some(keys[2].clone())).await,
        403,
        "a tenant key cannot scrape"
    );
    assert_eq!(status(Some(keys[0].clone())).await, 200);
    assert_eq!(status(Some(keys[1].clone())).await, 200);
    // A metrics key can do nothing else.
    assert_eq!(server.get("/api/traces", Some(&keys[0])).await.0, 403);
    assert_eq!(
        server
            .post("/api/traces", &span("acme", "t", "s", "x"), Some(&keys[0]))
            .await
            .0,
        403
    );
}

/// Families in scrape order, each family's samples sorted (series order
/// within a family follows a hash map and is not stable).
fn normalize(lines: &[&str]) -> String {
    let mut out = String::new();
    let mut samples: Vec<&str> = Vec::new();
    let flush = |samples: &mut Vec<&str>, out: &mut String| {
        samples.sort_unstable();
        for s in samples.drain(..) {
            out.push_str(s);
            out.push('\n');
        }
    };
    for line in lines {
        if line.starts_with("# HELP") {
            flush(&mut samples, &mut out);
        }
        if line.starts_with('#') {
            out.push_str(line);
            out.push('\n');
        } else {
            samples.push(line);
        }
    }
    flush(&mut samples, &mut out);
    out
}

/// The `swarm_*` part of a scrape after a fixed set of spans, compared with
/// tests/fixtures/scrape.prom (set UPDATE_SNAPSHOTS=1 to rewrite it after an
/// intended change). The `swarmscope_*` part depends on timing and is left out.
#[tokio::test]
async fn a_full_scrape_matches_its_snapshot() {
    let server = Server::start();
    let mut spans = Vec::new();
    for (i, (model, status)) in [
        ("claude-opus-4-5", "ok"),
        ("claude-haiku-4-5", "ok"),
        ("claude-haiku-4-5", "error"),
    ]
    .iter()
    .enumerate()
    {
        let mut s = llm(
            "snap",
            &format!("l{i}"),
            json!({"model": model, "input_tokens": 1000 * (i + 1), "output_tokens": 100, "cache_read_input_tokens": 50}),
        );
        s["status"] = json!(status);
        spans.push(s);
    }
    let mut exec = span("acme", "snap", "e", "agent.execute");
    exec["attributes"] = json!({"agent_type": "reviewer"});
    exec["status"] = json!("error");
    spans.push(exec);
    let mut vm = span("acme", "snap", "v", "vm.spawn");
    vm["attributes"] = json!({"method": "boot"});
    vm["durationMs"] = json!(180);
    vm.as_object_mut().expect("object").remove("endTime");
    spans.push(vm);
    assert_eq!(server.post("/api/traces", &json!(spans), None).await.0, 202);
    let text = reqwest::get(server.url("/metrics"))
        .await
        .expect("scrape")
        .text()
        .await
        .expect("text");
    // The disk gauge names a temp dir and moves with the disk: checked on
    // its own, then left out of the snapshot.
    let disk: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("swarm_disk_usage_ratio{"))
        .collect();
    assert_eq!(disk.len(), 1, "{disk:?}");
    let (series, ratio) = disk[0].rsplit_once(' ').expect("sample");
    assert!(series.contains(&format!(
        "mount=\"{}\"",
        server.data_dir.join("data").display()
    )));
    let ratio: f64 = ratio.parse().expect("number");
    assert!(ratio > 0.0 && ratio < 1.0, "{ratio}");
    let swarm = normalize(
        &text
            .lines()
            .filter(|l| !l.contains("swarmscope_") && !l.contains("swarm_disk_usage_ratio"))
            .collect::<Vec<_>>(),
    );
    let fixture =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/scrape.prom");
    if std::env::var_os("UPDATE_SNAPSHOTS").is_some() {
        std::fs::write(&fixture, &swarm).expect("write snapshot");
    }
    let expected = std::fs::read_to_string(&fixture)
        .expect("snapshot (run with UPDATE_SNAPSHOTS=1 to create it)");
    assert_eq!(
        swarm, expected,
        "scrape differs from tests/fixtures/scrape.prom"
    );
}
