//! `swarmscope bench fleet`: N simulated VMs, each with its own SDK tracer,
//! record a ticket's spans and log lines and flush at the same moment (the
//! end of a fleet-wide burst), against a collector this command starts.
//! Reports flush latency, 503s, what the SDK spooled, the collector's peak
//! memory, and then ships the spools and checks that every span and log
//! line is stored, none twice.

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{bail, Context};

use crate::bench::{percentile, rss_kib};
use crate::UsageError;
use clap::Args;
use serde_json::json;
use swarmscope_sdk::log::LogBuffer;
use swarmscope_sdk::tracer::{AgentTracer, Tracer, TracerConfig};

/// Flags of `bench fleet`.
#[derive(Debug, Args)]
pub(crate) struct FleetArgs {
    /// Simulated VMs flushing at once.
    #[arg(long, default_value_t = 1000)]
    pub(crate) agents: usize,
    /// Spans each VM flushes.
    #[arg(long, default_value_t = 100)]
    pub(crate) spans: usize,
    /// Log lines each VM flushes.
    #[arg(long, default_value_t = 50)]
    pub(crate) logs: usize,
    /// The collector's ingest queue, in spans (small values force overload).
    #[arg(long, default_value_t = 100_000)]
    pub(crate) queue_capacity: usize,
    /// How long each VM's flush may take, retries included, before it spools.
    #[arg(long, default_value_t = 10)]
    pub(crate) deadline_secs: u64,
}

/// One VM: records its spans and lines, waits for the start signal, flushes.
async fn vm(
    n: usize,
    args: Arc<FleetArgs>,
    url: String,
    spool: PathBuf,
    start: Arc<tokio::sync::Barrier>,
) -> (Duration, swarmscope_sdk::export::FlushReport) {
    let logs = LogBuffer::new(args.logs + 10);
    let mut config = TracerConfig::from_env();
    config.url = url;
    config.api_key = None;
    config.service = Some("fleet-bench".into());
    config.vm_id = Some(format!("vm-{n:05}"));
    config.spool_path = spool;
    config.deadline = Duration::from_secs(args.deadline_secs);
    config.retries = 8;
    config.logs = Some(logs.clone());
    let tracer = Tracer::new(config);
    let agent =
        AgentTracer::with_tracer(&tracer, &format!("T-{n}"), &format!("agent-{n}"), "fleet");
    let root = agent.start_span("agent.execute", [("agent_type", "forge")]);
    for i in 1..args.spans {
        let mut s = agent.start_span(
            "llm.generate",
            [("model", json!("claude-sonnet-4-5")), ("call", json!(i))],
        );
        s.set_attribute("input_tokens", 1000 + i);
        s.end();
    }
    drop(root);
    let now = swarmscope_model::timestamp::format_rfc3339(swarmscope_model::timestamp::now_nanos());
    for i in 0..args.logs {
        let line = json!({"timestamp": now, "level": "info", "message": format!("step {i}"),
            "trace_id": agent.trace_id(), "tenant_id": "fleet", "ticket_id": format!("T-{n}")});
        logs.push(line.to_string().as_bytes());
    }
    start.wait().await;
    let began = Instant::now();
    let report = tracer.flush().await;
    (began.elapsed(), report)
}

/// Runs the bench and prints its figures.
pub(crate) async fn run(args: FleetArgs) -> anyhow::Result<()> {
    if !(1..=10_000).contains(&args.agents)
        || args.spans == 0
        || args.queue_capacity == 0
        || args.deadline_secs == 0
    {
        return Err(UsageError(
            "--agents must be 1 to 10000, and --spans, --queue-capacity and --deadline-secs positive".into(),
        )
        .into());
    }
    let tmp = tempfile::tempdir().context("cannot make a temporary directory")?;
    let config = tmp.path().join("swarmscope.toml");
    std::fs::write(
        &config,
        format!(
            "queue_capacity_spans = {}\nmax_batch_spans = 8192\n",
            args.queue_capacity
        ),
    )?;
    let (collector, url) =
        crate::bench::spawn_collector_with(Some(tmp.path().join("data")), Some(&config))?;
    let pid = collector.pid();
    let spool_dir = tmp.path().join("spool");
    std::fs::create_dir_all(&spool_dir)?;
    let args = Arc::new(args);
    println!(
        "bench fleet: {} VMs × ({} spans + {} log lines), ingest queue {} spans, flush deadline {} s",
        args.agents, args.spans, args.logs, args.queue_capacity, args.deadline_secs
    );
    let start = Arc::new(tokio::sync::Barrier::new(args.agents));
    let mut tasks = tokio::task::JoinSet::new();
    for n in 0..args.agents {
        tasks.spawn(vm(
            n,
            Arc::clone(&args),
            url.clone(),
            spool_dir.join(format!("vm-{n:05}.jsonl")),
            Arc::clone(&start),
        ));
    }
    let began = Instant::now();
    let mut times = Vec::with_capacity(args.agents);
    let (mut sent_spans, mut sent_logs, mut spooled_spans, mut spooled_logs, mut requests) =
        (0, 0, 0, 0, 0);
    while let Some(done) = tasks.join_next().await {
        let (t, r) = done.context("a VM task failed")?;
        times.push(t);
        sent_spans += r.sent_spans;
        sent_logs += r.sent_logs;
        spooled_spans += r.spooled_spans;
        spooled_logs += r.spooled_logs;
        requests += r.requests;
    }
    let wall = began.elapsed();
    times.sort();
    let total_spans = args.agents * args.spans;
    let total_logs = args.agents * args.logs;
    println!(
        "flush: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; all {} VMs done in {:.2} s ({:.0} items/s)",
        percentile(&times, 0.5).as_secs_f64() * 1e3,
        percentile(&times, 0.99).as_secs_f64() * 1e3,
        percentile(&times, 1.0).as_secs_f64() * 1e3,
        args.agents,
        wall.as_secs_f64(),
        (sent_spans + sent_logs) as f64 / wall.as_secs_f64()
    );
    println!(
        "acknowledged {sent_spans} of {total_spans} spans and {sent_logs} of {total_logs} log lines ({requests} HTTP answers, 503s and their retries included); spooled {spooled_spans} spans, {spooled_logs} log lines"
    );
    let metrics = reqwest::get(format!("{url}/metrics")).await?.text().await?;
    let overloaded = metrics
        .lines()
        .filter(|l| {
            l.starts_with("swarmscope_") && l.contains("rejected_total{reason=\"overloaded\"}")
        })
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>()
        + 0.0; // an empty sum of floats is -0.0
    println!("collector answered 503 (queue full) to {overloaded} requests");
    if let Some(mb) = rss_kib(pid, "VmHWM:").map(|kib| kib as f64 / 1024.0) {
        println!("collector peak RSS: {mb:.1} MB");
    }
    // Ship what the VMs spooled, as a host would after the burst.
    if spooled_spans + spooled_logs > 0 {
        let mut config = TracerConfig::from_env();
        config.url = url.clone();
        config.api_key = None;
        let pushed = swarmscope_sdk::export::push_spool(&spool_dir, &config)
            .await
            .context("cannot push the spools")?;
        println!(
            "spool push: {} spans, {} log lines; {} files kept",
            pushed.spans,
            pushed.logs,
            pushed.files_kept.len()
        );
    }
    let stats = stats(&url).await?;
    let (spans, logs) = (
        stats["spans"].as_i64().unwrap_or(-1),
        stats["logs"].as_i64().unwrap_or(-1),
    );
    println!(
        "stored: {spans} spans (expected {total_spans}), {logs} log lines (expected {total_logs})"
    );
    drop(collector);
    if spans != total_spans as i64 || logs != total_logs as i64 {
        bail!("lost or duplicated data: stored {spans} spans and {logs} log lines");
    }
    println!("nothing lost, nothing duplicated");
    Ok(())
}

async fn stats(url: &str) -> anyhow::Result<serde_json::Value> {
    let resp = reqwest::get(format!("{url}/api/stats")).await?;
    Ok(resp.json().await?)
}
