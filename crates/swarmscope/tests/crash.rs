//! kill -9 in the middle of ingest: every span and log line answered 202
//! survives, the database passes `PRAGMA integrity_check` after each kill,
//! and what SDK tracers spooled while the collector was down arrives with
//! `swarmscope spool push` after the restart. Three rounds in CI; `SWARMSCOPE_CRASH_ROUNDS=20 cargo test -p
//! swarmscope --test crash -- --nocapture` for the full run.

mod support;

use std::time::Duration;

use support::{run, span, Server};
use swarmscope_sdk::tracer::{AgentTracer, Tracer, TracerConfig};

/// Spans per SDK trace.
const SDK_SPANS: usize = 5;

/// An SDK tracer (one per simulated VM) flushing traces of [`SDK_SPANS`]
/// spans until a flush cannot reach the collector and spools. Returns the
/// trace ids acknowledged and the one spooled.
async fn sdk_vm(base: String, spool: std::path::PathBuf, vm: String) -> (Vec<String>, Vec<String>) {
    let mut config = TracerConfig::from_env();
    config.url = base;
    config.api_key = None;
    config.spool_path = spool;
    config.deadline = Duration::from_millis(800);
    config.retries = 1;
    config.vm_id = Some(vm.clone());
    let tracer = Tracer::new(config);
    let (mut acked, mut spooled) = (Vec::new(), Vec::new());
    for i in 0..10_000 {
        let agent =
            AgentTracer::with_tracer(&tracer, &format!("{vm}-ticket-{i}"), "agent_1", "acme");
        let root = agent.start_span("agent.execute", [("i", i)]);
        for j in 0..SDK_SPANS - 1 {
            agent.start_span("tool.call", [("j", j)]).end();
        }
        root.end();
        let report = agent.flush().await;
        if report.sent_spans == SDK_SPANS {
            acked.push(agent.trace_id().to_owned());
        } else {
            assert_eq!(report.spooled_spans, SDK_SPANS, "{vm}: {report:?}");
            spooled.push(agent.trace_id().to_owned());
            break;
        }
    }
    (acked, spooled)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_spans_survive_kill_9() {
    let tmp = tempfile::tempdir().expect("tmp");
    let rounds: u64 = std::env::var("SWARMSCOPE_CRASH_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3);
    let mut all_acked: Vec<(String, usize)> = Vec::new();
    let mut acked_logs: Vec<String> = Vec::new();
    let (mut sdk_acked, mut sdk_spooled) = (Vec::new(), Vec::new());
    let spool_dir = tmp.path().join("spool");
    std::fs::create_dir_all(&spool_dir).expect("spool dir");
    for round in 0..rounds {
        let mut server = Server::start_in(tmp.path(), None, &[]);
        let client = reqwest::Client::new();
        let mut tasks = Vec::new();
        for w in 0..8 {
            let (client, base) = (client.clone(), server.base.clone());
            tasks.push(tokio::spawn(async move {
                let mut acked = Vec::new();
                let mut logs = Vec::new();
                for i in 0..10_000 {
                    let trace = format!("r{round}-w{w}-t{i}");
                    let n = 1 + (i % 30);
                    let spans: Vec<_> = (0..n)
                        .map(|j| span("acme", &trace, &format!("s{j}"), "llm.generate"))
                        .collect();
                    match client
                        .post(format!("{base}/api/traces"))
                        .json(&spans)
                        .send()
                        .await
                    {
                        Ok(r) if r.status() == 202 => acked.push((trace.clone(), n)),
                        _ => break,
                    }
                    let line = serde_json::json!([{"timestamp": "2025-12-14T10:30:45.123Z",
                        "level": "info", "message": format!("line {trace}"), "tenant_id": "acme"}]);
                    match client
                        .post(format!("{base}/api/logs"))
                        .json(&line)
                        .send()
                        .await
                    {
                        Ok(r) if r.status() == 202 => logs.push(format!("line {trace}")),
                        _ => break,
                    }
                }
                (acked, logs)
            }));
        }
        let vms: Vec<_> = (0..2)
            .map(|v| {
                let spool = spool_dir.join(format!("r{round}-vm{v}.jsonl"));
                tokio::spawn(sdk_vm(
                    server.base.clone(),
                    spool,
                    format!("r{round}-vm{v}"),
                ))
            })
            .collect();
        // Kill at a different moment each round.
        tokio::time::sleep(Duration::from_millis(250 + (round * 137) % 600)).await;
        server.kill9();
        for t in tasks {
            let (spans, logs) = t.await.expect("task");
            all_acked.extend(spans);
            acked_logs.extend(logs);
        }
        for vm in vms {
            let (acked, spooled) = vm.await.expect("sdk vm");
            sdk_acked.extend(acked);
            sdk_spooled.extend(spooled);
        }
        let db =
            rusqlite::Connection::open(tmp.path().join("data/swarmscope.db")).expect("open db");
        let check: String = db
            .query_row("PRAGMA integrity_check", [], |r| r.get(0))
            .expect("integrity_check");
        assert_eq!(check, "ok", "round {round}");
    }
    assert!(
        all_acked.len() > 50,
        "the run acknowledged too little to test: {}",
        all_acked.len()
    );
    let server = Server::start_in(tmp.path(), None, &[]);
    // The SDK's spool files, shipped after the restart.
    let (code, out, err) = run(&[
        "spool",
        "push",
        spool_dir.to_str().expect("utf-8"),
        "--url",
        &server.base,
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert_eq!(sdk_spooled.len() as u64, 2 * rounds, "every VM spools once");
    for trace in sdk_acked.iter().chain(&sdk_spooled) {
        let (status, doc) = server.get(&format!("/api/traces/{trace}"), None).await;
        assert_eq!(status, 200, "SDK trace {trace} is missing");
        assert_eq!(
            doc["spans"].as_array().map(Vec::len),
            Some(SDK_SPANS),
            "{trace}"
        );
    }
    for (trace, n) in &all_acked {
        let (status, doc) = server.get(&format!("/api/traces/{trace}"), None).await;
        assert_eq!(
            status, 200,
            "acknowledged trace {trace} is missing after kill -9"
        );
        assert_eq!(doc["spans"].as_array().map(Vec::len), Some(*n), "{trace}");
    }
    // Every acknowledged log line too (looked up by its unique text).
    for message in acked_logs.iter().step_by((acked_logs.len() / 300).max(1)) {
        let (status, page) = server
            .get(
                &format!("/api/logs?q={}&limit=1000", message.replace(' ', "%20")),
                None,
            )
            .await;
        assert_eq!(status, 200);
        let found = page["logs"].as_array().is_some_and(|ls| {
            ls.iter()
                .filter(|l| l["message"] == message.as_str())
                .count()
                == 1
        });
        assert!(found, "{message} is not stored exactly once");
    }
    let (_, stats) = server.get("/api/stats", None).await;
    assert!(
        stats["logs"].as_i64() >= Some(acked_logs.len() as i64),
        "{stats}"
    );
    println!(
        "{} acknowledged span requests and {} log lines all present after {rounds} kill -9 rounds; integrity_check ok each time; \
         SDK: {} traces acknowledged and {} spooled, all stored once after spool push",
        all_acked.len(),
        acked_logs.len(),
        sdk_acked.len(),
        sdk_spooled.len()
    );
}
