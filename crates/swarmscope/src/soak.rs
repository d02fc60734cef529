//! `swarmscope bench soak`: a steady, realistic load for a bounded time
//! against a collector this command starts with short retention, so pruning
//! runs all along. Samples the collector's memory, open file descriptors,
//! database size and pruned rows, and fails unless memory and descriptors
//! stay flat and pruning happened.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use clap::Args;
use serde_json::{json, Value};
use swarmscope_model::timestamp::{format_rfc3339, now_nanos};

use crate::bench::{percentile, rss_kib};
use crate::UsageError;

/// Flags of `bench soak`.
#[derive(Debug, Args)]
pub(crate) struct SoakArgs {
    /// How long to run, seconds.
    #[arg(long, default_value_t = 600)]
    pub(crate) secs: u64,
    /// Spans per second (plus half as many log lines), spread over 20 senders.
    #[arg(long, default_value_t = 2000)]
    pub(crate) rate: u64,
    /// Seconds between samples of the collector.
    #[arg(long, default_value_t = 10)]
    pub(crate) sample_secs: u64,
    /// Retention given to the collector, seconds (data older is pruned).
    #[arg(long, default_value_t = 120)]
    pub(crate) retain_secs: u64,
}

/// Senders; each posts one trace of [`TRACE_SPANS`] spans and half as many
/// log lines per tick.
const SENDERS: u64 = 20;
const TRACE_SPANS: u64 = 20;

/// One sample of the collector.
#[derive(Debug, Clone, Copy)]
struct Sample {
    at: Duration,
    rss_kib: u64,
    fds: usize,
    stored_spans: i64,
    db_bytes: i64,
    pruned: f64,
    acked: u64,
    p99_ms: f64,
    refused: u64,
}

#[derive(Default)]
struct Counters {
    acked_spans: AtomicU64,
    refused: AtomicU64,
    latencies: Mutex<Vec<Duration>>,
}

fn spans_of(sender: u64, n: u64) -> Value {
    let now = now_nanos();
    let trace = format!("soak-{sender}-{n}");
    let spans: Vec<Value> = (0..TRACE_SPANS)
        .map(|i| {
            let start = format_rfc3339(now - 1_000_000 * (TRACE_SPANS - i) as i64);
            let end = format_rfc3339(now - 1_000_000 * (TRACE_SPANS - i - 1) as i64);
            let mut s = json!({"ticketId": format!("T-{sender}-{n}"), "agentId": format!("agent-{sender}"),
                "tenantId": format!("tenant_{:02}", sender % 5), "trace_id": trace,
                "id": format!("s{i}"), "name": if i == 0 { "agent.execute" } else { "llm.generate" },
                "startTime": start, "endTime": end, "durationMs": 1, "status": "ok", "events": [],
                "attributes": {"model": "claude-sonnet-4-5", "input_tokens": 1200 + i,
                               "output_tokens": 300, "prompt_summary": "refactor the billing module"}});
            if i > 0 {
                s["parent_span_id"] = json!("s0");
            }
            s
        })
        .collect();
    json!(spans)
}

fn logs_of(sender: u64, n: u64) -> Value {
    let now = format_rfc3339(now_nanos());
    let lines: Vec<Value> = (0..TRACE_SPANS / 2)
        .map(|i| {
            json!({"timestamp": now, "level": "info", "message": format!("step {i} of ticket T-{sender}-{n}"),
                "trace_id": format!("soak-{sender}-{n}"), "span_id": "s0",
                "tenant_id": format!("tenant_{:02}", sender % 5)})
        })
        .collect();
    json!(lines)
}

/// Posts at a steady pace until `stop`.
async fn sender(
    id: u64,
    url: String,
    period: Duration,
    stop: Instant,
    counters: Arc<Counters>,
) -> anyhow::Result<()> {
    let client = reqwest::Client::new();
    let mut tick = tokio::time::interval(period);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut n = 0;
    while Instant::now() < stop {
        tick.tick().await;
        let began = Instant::now();
        let spans = client
            .post(format!("{url}/api/traces"))
            .json(&spans_of(id, n))
            .send()
            .await
            .context("span post failed")?;
        let logs = client
            .post(format!("{url}/api/logs"))
            .json(&logs_of(id, n))
            .send()
            .await
            .context("log post failed")?;
        let elapsed = began.elapsed();
        for status in [spans.status().as_u16(), logs.status().as_u16()] {
            match status {
                202 => {}
                503 | 507 => {
                    counters.refused.fetch_add(1, Ordering::Relaxed);
                }
                other => bail!("the collector answered {other}"),
            }
        }
        if spans.status().as_u16() == 202 {
            counters
                .acked_spans
                .fetch_add(TRACE_SPANS, Ordering::Relaxed);
        }
        if let Ok(mut l) = counters.latencies.lock() {
            l.push(elapsed);
        }
        n += 1;
    }
    Ok(())
}

fn open_fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

async fn sample(url: &str, pid: u32, at: Duration, counters: &Counters) -> anyhow::Result<Sample> {
    let stats: Value = reqwest::get(format!("{url}/api/stats"))
        .await?
        .json()
        .await?;
    let metrics = reqwest::get(format!("{url}/metrics")).await?.text().await?;
    let pruned = metrics
        .lines()
        .filter(|l| l.starts_with("swarmscope_pruned_rows_total{kind=\"spans\"}"))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum::<f64>()
        + 0.0; // an empty sum of floats is -0.0
    let mut window = counters
        .latencies
        .lock()
        .map(|mut l| std::mem::take(&mut *l))
        .unwrap_or_default();
    window.sort();
    Ok(Sample {
        at,
        rss_kib: rss_kib(pid, "VmRSS:").unwrap_or(0),
        fds: open_fds(pid),
        stored_spans: stats["spans"].as_i64().unwrap_or(-1),
        db_bytes: stats["db_bytes"].as_i64().unwrap_or(-1),
        pruned,
        acked: counters.acked_spans.load(Ordering::Relaxed),
        p99_ms: percentile(&window, 0.99).as_secs_f64() * 1e3,
        refused: counters.refused.load(Ordering::Relaxed),
    })
}

fn mean(xs: impl Iterator<Item = f64>) -> f64 {
    let (sum, n) = xs.fold((0.0, 0), |(s, n), x| (s + x, n + 1));
    if n == 0 {
        0.0
    } else {
        sum / f64::from(n)
    }
}

/// Memory may grow by this fraction plus [`RSS_SLACK_MB`] from the middle
/// third of the run to the last before it counts as growing.
const RSS_GROWTH: f64 = 0.15;
const RSS_SLACK_MB: f64 = 4.0;
/// Descriptors may vary by this many (connections come and go).
const FD_SLACK: usize = 8;

/// Runs the soak, prints a sample per line and a verdict.
pub(crate) async fn run(args: SoakArgs) -> anyhow::Result<()> {
    if args.secs == 0 || args.rate == 0 || args.sample_secs == 0 || args.retain_secs == 0 {
        return Err(UsageError(
            "--secs, --rate, --sample-secs and --retain-secs must be positive".into(),
        )
        .into());
    }
    if args.secs < 3 * args.sample_secs {
        return Err(UsageError("--secs must be at least three --sample-secs".into()).into());
    }
    let tmp = tempfile::tempdir().context("cannot make a temporary directory")?;
    let config = tmp.path().join("swarmscope.toml");
    std::fs::write(
        &config,
        format!(
            "[retention]\ndays = {}\ninterval_secs = {}\n",
            args.retain_secs as f64 / 86_400.0,
            (args.retain_secs / 4).clamp(1, 60)
        ),
    )?;
    let (collector, url) =
        crate::bench::spawn_collector_with(Some(tmp.path().join("data")), Some(&config))?;
    let pid = collector.pid();
    let period = Duration::from_secs_f64((SENDERS * TRACE_SPANS) as f64 / args.rate as f64);
    println!(
        "bench soak: {} s at {} spans/s + {} log lines/s ({SENDERS} senders, a {TRACE_SPANS}-span trace each every {:.0} ms), retention {} s, a sample every {} s",
        args.secs,
        args.rate,
        args.rate / 2,
        period.as_secs_f64() * 1e3,
        args.retain_secs,
        args.sample_secs
    );
    let counters = Arc::new(Counters::default());
    let began = Instant::now();
    let stop = began + Duration::from_secs(args.secs);
    let mut senders = tokio::task::JoinSet::new();
    for id in 0..SENDERS {
        senders.spawn(sender(id, url.clone(), period, stop, Arc::clone(&counters)));
    }
    let mut samples = Vec::new();
    let mut next = began + Duration::from_secs(args.sample_secs);
    while next <= stop {
        tokio::select! {
            _ = tokio::time::sleep_until(next.into()) => {}
            Some(done) = senders.join_next() => {
                done.context("a sender panicked")??;
                continue;
            }
        }
        let s = sample(&url, pid, began.elapsed(), &counters).await?;
        println!(
            "t={:>5.0}s  rss {:>6.1} MB  fds {:>3}  acked {:>9} spans  stored {:>8}  db {:>6.1} MB  pruned {:>9}  ack p99 {:>6.1} ms  refused {}",
            s.at.as_secs_f64(),
            s.rss_kib as f64 / 1024.0,
            s.fds,
            s.acked,
            s.stored_spans,
            s.db_bytes as f64 / 1e6,
            s.pruned,
            s.p99_ms,
            s.refused
        );
        samples.push(s);
        next += Duration::from_secs(args.sample_secs);
    }
    while let Some(done) = senders.join_next().await {
        done.context("a sender panicked")??;
    }
    // Everything acknowledged is either stored or was pruned by retention.
    // A prune batch may commit between reading the count and the metric, so
    // look again (for up to 10 s) until the two agree.
    let mut end = sample(&url, pid, began.elapsed(), &counters).await?;
    for _ in 0..20 {
        if end.stored_spans as f64 + end.pruned == end.acked as f64 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
        end = sample(&url, pid, began.elapsed(), &counters).await?;
    }
    drop(collector);
    let accounted = end.stored_spans as f64 + end.pruned;
    println!(
        "at the end: {} spans acknowledged = {} stored + {} pruned",
        end.acked, end.stored_spans, end.pruned
    );

    let third = samples.len() / 3;
    let (middle, last) = (
        &samples[third..2 * third],
        &samples[samples.len() - third..],
    );
    let rss = |xs: &[Sample]| mean(xs.iter().map(|s| s.rss_kib as f64 / 1024.0));
    let (rss_mid, rss_last) = (rss(middle), rss(last));
    let fd_mid = middle.iter().map(|s| s.fds).max().unwrap_or(0);
    let fd_last = last.iter().map(|s| s.fds).max().unwrap_or(0);
    let pruned = samples.last().map_or(0.0, |s| s.pruned);
    let refused = samples.last().map_or(0, |s| s.refused);
    println!(
        "memory: {rss_mid:.1} MB (middle third) → {rss_last:.1} MB (last third); descriptors: {fd_mid} → {fd_last}; spans pruned: {pruned}; requests refused: {refused}"
    );
    let mut failures = Vec::new();
    if rss_last > rss_mid * (1.0 + RSS_GROWTH) + RSS_SLACK_MB {
        failures.push(format!(
            "memory grew from {rss_mid:.1} MB to {rss_last:.1} MB"
        ));
    }
    if fd_last > fd_mid + FD_SLACK {
        failures.push(format!("descriptors grew from {fd_mid} to {fd_last}"));
    }
    if accounted != end.acked as f64 {
        failures.push(format!(
            "{} spans acknowledged but {accounted} stored or pruned",
            end.acked
        ));
    }
    if pruned <= 0.0 {
        failures.push("retention pruned nothing".to_owned());
    }
    if !failures.is_empty() {
        bail!("soak failed: {}", failures.join("; "));
    }
    println!("flat: memory and descriptors steady while retention pruned {pruned} spans");
    Ok(())
}
