//! Forwarding: every committed span and log line, in batches, to OTLP/HTTP
//! endpoints (an OpenTelemetry Collector in front of Tempo or Jaeger, a
//! Honeycomb or Datadog intake, another swarmscope).
//!
//! The backlog is a table in the database (the writer adds a row per
//! committed item in the same transaction, so nothing acknowledged is
//! missed, and it survives restarts); each target keeps a cursor in it. A
//! slow or dead target costs ingest nothing: its worker retries with
//! backoff, and the backlog is capped in rows (`forward_backlog`): past the
//! cap new items are not queued, and are counted as dropped.

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use prost::Message;
use serde::Deserialize;
use swarmscope_store::Store;

use crate::span_metrics::CollectorMetrics;

/// `[[forward]]`: one OTLP/HTTP destination.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ForwardTarget {
    /// A name for metrics and the cursor (keep it stable).
    pub name: String,
    /// Base URL; spans go to `{url}/v1/traces`, logs to `{url}/v1/logs`.
    pub url: String,
    /// Headers sent with every request (authorization, API keys).
    #[serde(default)]
    pub headers: BTreeMap<String, String>,
    /// Items per request (default 512).
    #[serde(default = "default_batch")]
    pub batch: usize,
}

fn default_batch() -> usize {
    512
}

/// Checks targets: unique names, http(s) URLs, sane batch sizes.
pub fn validate(targets: &[ForwardTarget]) -> Result<(), String> {
    for (i, t) in targets.iter().enumerate() {
        if t.name.is_empty() || targets[..i].iter().any(|o| o.name == t.name) {
            return Err(format!("forward[{i}].name must be non-empty and unique"));
        }
        if !(t.url.starts_with("http://") || t.url.starts_with("https://")) {
            return Err(format!("forward[{i}].url must be an http(s) URL"));
        }
        if !(1..=10_000).contains(&t.batch) {
            return Err(format!("forward[{i}].batch must be 1 to 10000"));
        }
    }
    Ok(())
}

type Cursors = Arc<Mutex<HashMap<String, i64>>>;

/// Starts one worker per target on the current runtime; returns their tasks.
pub fn start(
    store: Store,
    targets: Vec<ForwardTarget>,
    metrics: Arc<CollectorMetrics>,
) -> Vec<tokio::task::JoinHandle<()>> {
    let mut initial = HashMap::new();
    for t in &targets {
        initial.insert(
            t.name.clone(),
            store.reader().forward_cursor(&t.name).unwrap_or(0),
        );
    }
    let cursors: Cursors = Arc::new(Mutex::new(initial));
    targets
        .into_iter()
        .map(|target| {
            tokio::spawn(run(
                store.clone(),
                target,
                Arc::clone(&cursors),
                Arc::clone(&metrics),
            ))
        })
        .collect()
}

async fn post(
    client: &reqwest::Client,
    target: &ForwardTarget,
    path: &str,
    body: Vec<u8>,
) -> Result<(), String> {
    let mut req = client
        .post(format!("{}{path}", target.url.trim_end_matches('/')))
        .header("content-type", "application/x-protobuf")
        .body(body);
    for (k, v) in &target.headers {
        req = req.header(k, v);
    }
    match req.send().await {
        Ok(r) if r.status().is_success() => Ok(()),
        Ok(r) => Err(format!("{path}: HTTP {}", r.status().as_u16())),
        Err(e) => Err(format!("{path}: {e}")),
    }
}

async fn run(
    store: Store,
    target: ForwardTarget,
    cursors: Cursors,
    metrics: Arc<CollectorMetrics>,
) {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap_or_default();
    let mut backoff = Duration::from_millis(500);
    loop {
        let cursor = cursors
            .lock()
            .map(|c| c.get(&target.name).copied().unwrap_or(0))
            .unwrap_or(0);
        let reader = store.reader().clone();
        let limit = target.batch;
        let batch = tokio::task::spawn_blocking(move || reader.forward_batch(cursor, limit))
            .await
            .ok()
            .and_then(Result::ok)
            .flatten();
        let Some(batch) = batch else {
            tokio::time::sleep(Duration::from_millis(250)).await;
            continue;
        };
        let mut result = Ok(());
        if !batch.spans.is_empty() {
            let body = swarmscope_otlp::spans_to_request(&batch.spans).encode_to_vec();
            result = post(&client, &target, "/v1/traces", body).await;
        }
        if result.is_ok() && !batch.logs.is_empty() {
            let body = swarmscope_otlp::logs_to_request(&batch.logs).encode_to_vec();
            result = post(&client, &target, "/v1/logs", body).await;
        }
        match result {
            Ok(()) => {
                backoff = Duration::from_millis(500);
                let everyone = {
                    let mut c = cursors.lock().unwrap_or_else(|p| p.into_inner());
                    c.insert(target.name.clone(), batch.last_seq);
                    c.values().copied().min().unwrap_or(batch.last_seq)
                };
                if let Err(e) = store
                    .writer()
                    .forwarded(&target.name, batch.last_seq, everyone)
                    .await
                {
                    tracing::warn!(target = %target.name, error = %e, "cannot record forwarding progress");
                }
                metrics.forwarded(
                    &target.name,
                    batch.spans.len() as u64,
                    batch.logs.len() as u64,
                );
            }
            Err(e) => {
                metrics.forward_failed(&target.name);
                tracing::warn!(target = %target.name, error = %e, retry_in = ?backoff, "forwarding failed");
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(60));
            }
        }
    }
}
