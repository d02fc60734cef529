//! `swarmscope bench ingest`: simulated agents against a real collector over
//! loopback. Prints throughput, acknowledgement latency, trace read latency,
//! collector RSS and bytes per span, then checks every acknowledged span.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context};
use clap::{Args, ValueEnum};
use rand::{Rng, RngCore, SeedableRng};
use serde_json::{json, Value};
use swarmscope_model::timestamp::{format_rfc3339, now_nanos};

/// How agents send their spans.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum Mode {
    /// One request per trace with all its spans (swarmscope's SDKs).
    Batch,
    /// One request per span (the seed's AgentTracer.flush()).
    Single,
}

/// Flags of `bench ingest`.
#[derive(Debug, Args)]
pub(crate) struct IngestArgs {
    /// Collector to drive. Without it, the bench starts its own
    /// `swarmscope serve` on a free loopback port.
    #[arg(long)]
    pub(crate) url: Option<String>,
    /// Admin API key for --url.
    #[arg(long, env = "SWARMSCOPE_API_KEY", hide_env_values = true)]
    pub(crate) key: Option<String>,
    /// PID of the collector at --url, to report its memory.
    #[arg(long)]
    pub(crate) pid: Option<u32>,
    /// Data directory of the collector the bench starts (default: temporary).
    #[arg(long)]
    pub(crate) data_dir: Option<PathBuf>,
    /// Concurrent simulated agents.
    #[arg(long, default_value_t = 50)]
    pub(crate) agents: usize,
    /// Traces (tickets) each agent sends.
    #[arg(long, default_value_t = 20)]
    pub(crate) traces: usize,
    /// Spans per trace.
    #[arg(long, default_value_t = 50)]
    pub(crate) spans: usize,
    /// One batched request per trace, or one request per span.
    #[arg(long, value_enum, default_value_t = Mode::Batch)]
    pub(crate) mode: Mode,
    /// Spans to load (batched, unmeasured) before the measured run.
    #[arg(long, default_value_t = 0)]
    pub(crate) prefill: usize,
}

const SEED_SPANS: [&str; 11] = [
    "http.request",
    "ticket.claim",
    "vm.spawn",
    "agent.execute",
    "git.clone",
    "llm.generate",
    "file.write",
    "git.commit",
    "git.push",
    "pr.create",
    "ticket.complete",
];

fn uuid(rng: &mut impl RngCore) -> String {
    let mut b = [0u8; 16];
    rng.fill_bytes(&mut b);
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!(
        "{}-{}-{}-{}-{}",
        &h[0..8],
        &h[8..12],
        &h[12..16],
        &h[16..20],
        &h[20..32]
    )
}

/// One ticket's trace in the seed's wire format: the seed's span names with
/// its attributes, UUID ids, ISO times, no parent ids.
struct GeneratedTrace {
    tenant: String,
    trace_id: String,
    span_ids: Vec<String>,
    spans: Vec<Value>,
}

fn generate_trace(rng: &mut impl Rng, tenant: &str, agent: usize, n: usize) -> GeneratedTrace {
    let trace_id = uuid(rng);
    let ticket = format!("ticket-{}", rng.random_range(0..1_000_000));
    let agent_id = format!("agent-{agent:04}");
    let mut t = now_nanos();
    let mut span_ids = Vec::with_capacity(n);
    let mut spans = Vec::with_capacity(n);
    for i in 0..n {
        // The tree's head once, then the agent's work repeated to fill n.
        let name = if i < 5 {
            SEED_SPANS[i]
        } else {
            SEED_SPANS[5 + (i - 5) % 6]
        };
        let dur_ms: u64 = match name {
            "llm.generate" => rng.random_range(800..9_000),
            "vm.spawn" => rng.random_range(2..10),
            _ => rng.random_range(5..400),
        };
        let attributes = match name {
            "http.request" => {
                json!({"method": "POST", "path": "/api/tickets/claim", "status_code": 200})
            }
            "ticket.claim" => json!({"ticket_id": ticket, "agent_id": agent_id}),
            "vm.spawn" => {
                json!({"vm_id": format!("vm-{}", rng.random_range(0..1000)), "method": "restore"})
            }
            "agent.execute" => json!({"agent_type": "forge"}),
            "git.clone" => {
                json!({"repo_url": "https://git.example.com/acme/app.git", "branch": "main"})
            }
            "llm.generate" => {
                json!({"model": "claude-sonnet-4-5", "input_tokens": rng.random_range(500..20_000), "output_tokens": rng.random_range(50..4_000)})
            }
            "file.write" => {
                json!({"file_count": rng.random_range(1..12), "total_bytes": rng.random_range(100..50_000)})
            }
            "git.commit" => json!({"commit_sha": format!("{:040x}", rng.random::<u128>())}),
            "git.push" => json!({"branch": format!("swarm/{ticket}")}),
            "pr.create" => {
                json!({"pr_number": rng.random_range(1..5000), "pr_url": "https://git.example.com/acme/app/pull/1"})
            }
            _ => json!({"duration_ms": dur_ms}),
        };
        let id = uuid(rng);
        let end = t + (dur_ms as i64) * 1_000_000;
        let failed = rng.random_bool(0.02);
        spans.push(json!({
            "ticketId": ticket,
            "agentId": agent_id,
            "tenantId": tenant,
            "trace_id": trace_id,
            "id": id,
            "name": name,
            "startTime": format_rfc3339(t),
            "attributes": attributes,
            "events": [],
            "status": if failed { "error" } else { "ok" },
            "endTime": format_rfc3339(end),
            "durationMs": dur_ms,
        }));
        span_ids.push(id);
        t = end;
    }
    GeneratedTrace {
        tenant: tenant.to_owned(),
        trace_id,
        span_ids,
        spans,
    }
}

/// A trace the collector acknowledged, to look for afterwards.
struct AckedTrace {
    tenant: String,
    trace_id: String,
    span_ids: Vec<String>,
}

/// A collector this bench started, stopped gracefully on drop.
pub(crate) struct Spawned {
    child: Child,
    _tmp: Option<tempfile::TempDir>,
}

impl Spawned {
    /// The collector's process id.
    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let _ = self.child.wait();
    }
}

fn spawn_collector(data_dir: Option<PathBuf>) -> anyhow::Result<(Spawned, String)> {
    spawn_collector_with(data_dir, None)
}

/// Starts `swarmscope serve` on a free loopback port, with a config file if
/// given; returns it and its base URL.
pub(crate) fn spawn_collector_with(
    data_dir: Option<PathBuf>,
    config: Option<&std::path::Path>,
) -> anyhow::Result<(Spawned, String)> {
    let (dir, tmp) = match data_dir {
        Some(d) => (d, None),
        None => {
            let t = tempfile::tempdir().context("cannot make a temporary data dir")?;
            (t.path().to_owned(), Some(t))
        }
    };
    let exe = std::env::current_exe().context("cannot find my own executable")?;
    let mut cmd = Command::new(exe);
    cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&dir);
    if let Some(c) = config {
        cmd.arg("--config").arg(c);
    }
    let mut child = cmd
        .env("SWARMSCOPE_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .context("cannot start the collector")?;
    let stdout = child
        .stdout
        .take()
        .ok_or_else(|| anyhow!("no collector stdout"))?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .ok_or_else(|| anyhow!("collector did not report its address: {line:?}"))?
        .to_owned();
    Ok((Spawned { child, _tmp: tmp }, url))
}

/// A memory figure of process `pid` from /proc (`VmRSS:`, `VmHWM:`), KiB.
pub(crate) fn rss_kib(pid: u32, field: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with(field))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

/// The `p` quantile (0–1) of sorted durations.
pub(crate) fn percentile(sorted: &[Duration], p: f64) -> Duration {
    if sorted.is_empty() {
        return Duration::ZERO;
    }
    let idx = ((sorted.len() as f64 - 1.0) * p).round() as usize;
    sorted[idx.min(sorted.len() - 1)]
}

fn ms(d: Duration) -> String {
    format!("{:.2} ms", d.as_secs_f64() * 1000.0)
}

struct Target {
    http: reqwest::Client,
    url: String,
    key: Option<String>,
}

impl Target {
    async fn post(&self, body: &Value) -> anyhow::Result<()> {
        // Retry on 503 (queue full) as the SDK does, so overload shows as latency.
        for attempt in 0..100u32 {
            let mut req = self
                .http
                .post(format!("{}/api/traces", self.url))
                .json(body);
            if let Some(k) = &self.key {
                req = req.bearer_auth(k);
            }
            let resp = req.send().await.context("POST /api/traces failed")?;
            match resp.status().as_u16() {
                202 => return Ok(()),
                503 => tokio::time::sleep(Duration::from_millis(20 * u64::from(attempt + 1))).await,
                s => bail!(
                    "POST /api/traces answered {s}: {}",
                    resp.text().await.unwrap_or_default()
                ),
            }
        }
        bail!("collector stayed overloaded")
    }

    async fn get(&self, path: &str) -> anyhow::Result<Value> {
        let mut req = self.http.get(format!("{}{path}", self.url));
        if let Some(k) = &self.key {
            req = req.bearer_auth(k);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("GET {path} failed"))?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            bail!("GET {path} answered {status}: {}", body["error"]);
        }
        Ok(body)
    }
}

async fn prefill(target: &Arc<Target>, total: usize, seed: u64) -> anyhow::Result<()> {
    let started = Instant::now();
    let per_trace = 50;
    let traces = total.div_ceil(per_trace);
    let workers = 4;
    let mut handles = Vec::new();
    for w in 0..workers {
        let target = Arc::clone(target);
        handles.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(seed ^ 0x5eed ^ w as u64);
            let mut i = w;
            while i < traces {
                let mut batch = Vec::new();
                for _ in 0..4 {
                    if i >= traces {
                        break;
                    }
                    let t =
                        generate_trace(&mut rng, &format!("bench-{}", i % 4), i % 1000, per_trace);
                    batch.extend(t.spans);
                    i += workers;
                }
                target.post(&Value::Array(batch)).await?;
            }
            anyhow::Ok(())
        }));
    }
    for h in handles {
        h.await.context("prefill worker failed")??;
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "prefill: {} spans in {secs:.1} s ({:.0} spans/s, not measured)",
        traces * per_trace,
        (traces * per_trace) as f64 / secs
    );
    Ok(())
}

pub(crate) async fn ingest(args: IngestArgs) -> anyhow::Result<()> {
    if args.agents == 0 || args.traces == 0 || args.spans == 0 {
        return Err(
            crate::UsageError("--agents, --traces and --spans must be positive".into()).into(),
        );
    }
    let (spawned, url, pid) = match &args.url {
        Some(u) => (None, u.trim_end_matches('/').to_owned(), args.pid),
        None => {
            let (s, u) = spawn_collector(args.data_dir.clone())?;
            let pid = s.child.id();
            (Some(s), u, Some(pid))
        }
    };
    let target = Arc::new(Target {
        http: reqwest::Client::builder()
            .pool_max_idle_per_host(args.agents.max(8))
            .timeout(Duration::from_secs(60))
            .build()?,
        url,
        key: args.key.clone(),
    });
    target
        .get("/healthz")
        .await
        .context("collector is not healthy")?;
    println!(
        "bench ingest: mode={:?} agents={} traces/agent={} spans/trace={} prefill={} collector={}",
        args.mode, args.agents, args.traces, args.spans, args.prefill, target.url
    );
    // Fresh ids every run, so a rerun into the same data dir adds spans
    // instead of re-sending (idempotently ignored) duplicates.
    let seed: u64 = rand::random();
    if args.prefill > 0 {
        prefill(&target, args.prefill, seed).await?;
    }

    let started = Instant::now();
    let mut handles = Vec::new();
    for agent in 0..args.agents {
        let target = Arc::clone(&target);
        let (traces, spans, mode) = (args.traces, args.spans, args.mode);
        handles.push(tokio::spawn(async move {
            let mut rng = rand::rngs::StdRng::seed_from_u64(
                seed.wrapping_mul(7919).wrapping_add(agent as u64),
            );
            let mut latencies = Vec::new();
            let mut acked = Vec::new();
            for _ in 0..traces {
                let t = generate_trace(&mut rng, &format!("bench-{}", agent % 4), agent, spans);
                match mode {
                    Mode::Batch => {
                        let sent = Instant::now();
                        target.post(&Value::Array(t.spans)).await?;
                        latencies.push(sent.elapsed());
                    }
                    Mode::Single => {
                        for span in &t.spans {
                            let sent = Instant::now();
                            target.post(span).await?;
                            latencies.push(sent.elapsed());
                        }
                    }
                }
                acked.push(AckedTrace {
                    tenant: t.tenant,
                    trace_id: t.trace_id,
                    span_ids: t.span_ids,
                });
            }
            anyhow::Ok((latencies, acked))
        }));
    }
    let mut latencies = Vec::new();
    let mut acked = Vec::new();
    for h in handles {
        let (l, a) = h.await.context("agent task failed")??;
        latencies.extend(l);
        acked.extend(a);
    }
    let elapsed = started.elapsed().as_secs_f64();
    latencies.sort();
    let total_spans = args.agents * args.traces * args.spans;
    println!(
        "ingest: {total_spans} spans in {elapsed:.2} s = {:.0} spans/s ({} requests, {:.0} requests/s)",
        total_spans as f64 / elapsed,
        latencies.len(),
        latencies.len() as f64 / elapsed
    );
    println!(
        "ack latency: p50 {}  p99 {}  max {}",
        ms(percentile(&latencies, 0.50)),
        ms(percentile(&latencies, 0.99)),
        ms(percentile(&latencies, 1.0))
    );

    // Verify, and time trace reads while doing it.
    let mut reads = Vec::with_capacity(acked.len());
    let mut lost = 0usize;
    for AckedTrace {
        tenant,
        trace_id,
        span_ids,
    } in &acked
    {
        let sent = Instant::now();
        let doc = target
            .get(&format!("/api/traces/{trace_id}?tenant_id={tenant}"))
            .await;
        reads.push(sent.elapsed());
        let stored: std::collections::HashSet<&str> = match &doc {
            Ok(d) => d["spans"]
                .as_array()
                .map(|a| a.iter().filter_map(|s| s["span_id"].as_str()).collect())
                .unwrap_or_default(),
            Err(_) => Default::default(),
        };
        lost += span_ids
            .iter()
            .filter(|id| !stored.contains(id.as_str()))
            .count();
    }
    reads.sort();
    println!(
        "read GET /api/traces/{{id}}: {} traces  p50 {}  p99 {}",
        reads.len(),
        ms(percentile(&reads, 0.50)),
        ms(percentile(&reads, 0.99))
    );
    if let Some(pid) = pid {
        match (rss_kib(pid, "VmRSS:"), rss_kib(pid, "VmHWM:")) {
            (Some(now), Some(peak)) => println!(
                "collector RSS: {:.1} MB now, {:.1} MB peak",
                now as f64 / 1024.0,
                peak as f64 / 1024.0
            ),
            _ => println!("collector RSS: unavailable (no /proc/{pid}/status)"),
        }
    }
    match target.get("/api/stats").await {
        Ok(s) => println!(
            "database: {} spans in {} traces, {:.1} bytes/span (db {:.1} MB, wal {:.1} MB), mean batch {:.0} spans, mean commit {:.2} ms",
            s["spans"],
            s["traces"],
            s["bytes_per_span"].as_f64().unwrap_or(0.0),
            s["db_bytes"].as_f64().unwrap_or(0.0) / 1e6,
            s["wal_bytes"].as_f64().unwrap_or(0.0) / 1e6,
            s["writer"]["mean_batch_spans"].as_f64().unwrap_or(0.0),
            s["writer"]["mean_commit_ms"].as_f64().unwrap_or(0.0),
        ),
        Err(e) => println!("database: stats unavailable ({e:#})"),
    }
    let acked_spans: usize = acked.iter().map(|t| t.span_ids.len()).sum();
    println!(
        "verified: {} of {acked_spans} acknowledged spans stored, {lost} lost",
        acked_spans - lost
    );
    drop(spawned);
    if lost > 0 {
        bail!("{lost} acknowledged spans are missing");
    }
    Ok(())
}
