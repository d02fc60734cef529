//! An agent working one ticket, instrumented like the seed's forge-agent:
//! the seed's span tree with its attributes, log lines correlated to spans
//! and shipped in the same flush, a flush guaranteed on exit and on SIGTERM.
//!
//! Usage: `agent TICKET AGENT TENANT [--hang]`. With `--hang` it stops in the
//! middle of `llm.generate` and waits to be killed (to show the signal flush).

use std::time::Duration;

use swarmscope_model::SpanStatus;
use swarmscope_sdk::log::{LogBuffer, SeedJsonLayer};
use swarmscope_sdk::tracer::{AgentTracer, Tracer, TracerConfig};
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let args: Vec<String> = std::env::args().collect();
    let (ticket, agent_id, tenant) = match args.get(1..4) {
        Some([t, a, n]) => (t.clone(), a.clone(), n.clone()),
        _ => {
            eprintln!("usage: agent TICKET AGENT TENANT [--hang]");
            std::process::exit(2);
        }
    };
    let hang = args.iter().any(|a| a == "--hang");

    // Log lines: JSON on stdout, and queued for the collector.
    let logs = LogBuffer::new(10_000);
    tracing_subscriber::registry()
        .with(SeedJsonLayer::new(std::io::stdout).with_shipper(logs.clone()))
        .init();
    let mut config = TracerConfig::from_env();
    config.logs = Some(logs);
    let tracer = Tracer::new(config);
    tracer.install_shutdown_hook(); // SIGTERM / SIGINT: flush, then exit
    let _flush_at_exit = tracer.flush_on_drop(); // normal return: flush

    let agent = AgentTracer::with_tracer(&tracer, &ticket, &agent_id, &tenant);
    println!("trace_id={}", agent.trace_id());

    let claim = agent.start_span(
        "ticket.claim",
        [
            ("ticket_id", ticket.as_str()),
            ("agent_id", agent_id.as_str()),
        ],
    );
    let mut spawn = agent.start_span("vm.spawn", [("vm_id", "vm-17"), ("method", "restore")]);
    spawn.set_status(SpanStatus::Ok);
    spawn.end();
    // Long spans are announced: if the VM dies, the collector knows where.
    let mut execute = agent.announce("agent.execute", [("agent_type", "forge")]);
    async {
        tracing::info!("agent started");
    }
    .instrument(execute.tracing_span())
    .await;

    let mut clone = agent.start_span(
        "git.clone",
        [
            ("repo_url", "https://git.example.com/acme/app.git"),
            ("branch", "main"),
        ],
    );
    clone.set_status(SpanStatus::Ok);
    clone.end();

    let mut llm = agent.announce("llm.generate", [("model", "claude-sonnet-4-5")]);
    if hang {
        agent.flush().await; // the announced spans reach the collector now
        println!("hanging in llm.generate");
        tokio::time::sleep(Duration::from_secs(600)).await;
    }
    llm.set_attribute("input_tokens", 4_200);
    llm.set_attribute("output_tokens", 850);
    llm.set_status(SpanStatus::Ok);
    async {
        tracing::info!(input_tokens = 4_200, output_tokens = 850, "llm call done");
    }
    .instrument(llm.tracing_span())
    .await;
    llm.end();

    for (name, attrs) in [
        (
            "file.write",
            vec![
                ("file_count", serde_json::json!(3)),
                ("total_bytes", serde_json::json!(5120)),
            ],
        ),
        (
            "git.commit",
            vec![(
                "commit_sha",
                serde_json::json!("9fceb02d0ae598e95dc970b74767f19372d61af8"),
            )],
        ),
        (
            "git.push",
            vec![("branch", serde_json::json!(format!("swarm/{ticket}")))],
        ),
        (
            "pr.create",
            vec![
                ("pr_number", serde_json::json!(42)),
                (
                    "pr_url",
                    serde_json::json!("https://git.example.com/acme/app/pull/42"),
                ),
            ],
        ),
    ] {
        let mut s = agent.start_span(name, attrs);
        s.set_status(SpanStatus::Ok);
        s.end();
    }
    execute.set_status(SpanStatus::Ok);
    execute.end();
    drop(claim);
    let report = agent.flush().await;
    println!(
        "flushed spans={} logs={} spooled={}",
        report.sent_spans, report.sent_logs, report.spooled_spans
    );
}
