//! Retention: per-tenant age limits for spans and logs, and an optional cap
//! on database size, enforced in the background. A trace's age is the time
//! since it was last written to (ingest time, immune to agents' clocks and
//! to backfilled data), a log line's is its own timestamp.
//!
//! Each round deletes in small writer transactions (200 traces with their
//! spans, and up to 4,000 log lines, each), pausing between them, so ingest
//! never waits behind a long delete; freed pages go back to the filesystem
//! through `incremental_vacuum`. The clock is a parameter, so tests prune
//! "next week" without waiting for it.

use std::collections::BTreeMap;
use std::time::Duration;

use serde::Deserialize;
use swarmscope_store::{PruneOutcome, PruneScope, Store};

/// `[retention]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RetentionConfig {
    /// Days of spans and logs kept for every tenant (default 7; 0: forever).
    #[serde(default = "seven")]
    pub days: f64,
    /// Days kept for particular tenants, overriding `days`.
    #[serde(default)]
    pub tenants: BTreeMap<String, f64>,
    /// Most bytes of database in use (0: no cap): past it, the tenant
    /// holding the most loses its least recently written traces first.
    #[serde(default)]
    pub max_db_bytes: u64,
    /// Seconds between rounds (default 60).
    #[serde(default = "sixty")]
    pub interval_secs: u64,
}

fn seven() -> f64 {
    7.0
}
fn sixty() -> u64 {
    60
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            days: seven(),
            tenants: BTreeMap::new(),
            max_db_bytes: 0,
            interval_secs: sixty(),
        }
    }
}

impl RetentionConfig {
    /// Checks the values.
    pub fn validate(&self) -> Result<(), String> {
        let ok = |d: f64| d.is_finite() && d >= 0.0;
        if !ok(self.days) {
            return Err("retention.days must be a non-negative number".into());
        }
        if let Some((t, _)) = self.tenants.iter().find(|(_, d)| !ok(**d)) {
            return Err(format!(
                "retention.tenants.{t} must be a non-negative number"
            ));
        }
        if self.interval_secs == 0 {
            return Err("retention.interval_secs must be positive".into());
        }
        Ok(())
    }
}

/// Traces per prune transaction.
pub const BATCH_TRACES: usize = 200;

/// Pause between prune transactions.
const PAUSE: Duration = Duration::from_millis(5);

/// Rows deleted in one round.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    /// Traces.
    pub traces: u64,
    /// Spans.
    pub spans: u64,
    /// Log lines.
    pub logs: u64,
}

impl Pruned {
    fn add(&mut self, o: PruneOutcome) {
        self.traces += o.traces;
        self.spans += o.spans;
        self.logs += o.logs;
    }
}

const NANOS_PER_DAY: f64 = 86_400.0 * 1e9;

/// Called with each committed batch, so the pruned-rows metric follows the
/// deletions as they commit rather than at the end of a round.
type Count<'a> = &'a (dyn Fn(PruneOutcome) + Sync);

async fn drain(
    store: &Store,
    scope: PruneScope,
    before_ns: i64,
    total: &mut Pruned,
    count: Count<'_>,
) {
    loop {
        match store
            .writer()
            .prune(scope.clone(), before_ns, BATCH_TRACES)
            .await
        {
            Ok(o) => {
                total.add(o);
                count(o);
                if o.traces < BATCH_TRACES as u64 && o.logs < (BATCH_TRACES * 20) as u64 {
                    return;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "retention: prune failed; will retry next round");
                return;
            }
        }
        tokio::time::sleep(PAUSE).await;
    }
}

/// Over the size cap, evicts from the tenant holding the most (spans plus
/// log lines), its least recently written traces first, a batch at a time,
/// until the database is under the cap: a tenant flooding the store loses
/// its own oldest data, never a small tenant's.
async fn cap_size(store: &Store, cap: u64, total: &mut Pruned, count: Count<'_>) {
    let reader = store.reader().clone();
    let measured = tokio::task::spawn_blocking(move || {
        let bytes = reader.db_bytes().ok()?;
        (bytes as u64 > cap).then_some(())?;
        reader.tenant_footprints().ok()
    })
    .await
    .ok()
    .flatten();
    let Some(mut footprints) = measured else {
        return;
    };
    for _ in 0..10_000 {
        let Some((tenant, held)) = footprints
            .iter_mut()
            .filter(|(_, n)| *n > 0)
            .max_by_key(|(_, n)| *n)
        else {
            return;
        };
        // Its least recently written traces, a batch of them (prune orders
        // by `updated_ns`; a cutoff would miss traces sharing one timestamp).
        let before = i64::MAX;
        match store
            .writer()
            .prune(PruneScope::Tenant(tenant.clone()), before, BATCH_TRACES)
            .await
        {
            Ok(o) => {
                total.add(o);
                count(o);
                if o.traces + o.logs == 0 {
                    // Nothing of this tenant's is old enough to go.
                    *held = 0;
                } else {
                    *held -= (o.spans + o.logs) as i64;
                }
            }
            Err(_) => return,
        }
        let reader = store.reader().clone();
        let under = tokio::task::spawn_blocking(move || reader.db_bytes().ok())
            .await
            .ok()
            .flatten()
            .is_none_or(|bytes| bytes as u64 <= cap);
        if under {
            return;
        }
        tokio::time::sleep(PAUSE).await;
    }
}

/// One round at time `now_ns`: age limits per tenant, then the size cap.
pub async fn prune_once(store: &Store, config: &RetentionConfig, now_ns: i64) -> Pruned {
    prune_round(store, config, now_ns, &|_| {}).await
}

async fn prune_round(
    store: &Store,
    config: &RetentionConfig,
    now_ns: i64,
    count: Count<'_>,
) -> Pruned {
    let mut total = Pruned::default();
    let cutoff = |days: f64| now_ns - (days * NANOS_PER_DAY) as i64;
    for (tenant, days) in &config.tenants {
        if *days > 0.0 {
            drain(
                store,
                PruneScope::Tenant(tenant.clone()),
                cutoff(*days),
                &mut total,
                count,
            )
            .await;
        }
    }
    if config.days > 0.0 {
        let others = PruneScope::AllExcept(config.tenants.keys().cloned().collect());
        drain(store, others, cutoff(config.days), &mut total, count).await;
    }
    if config.max_db_bytes > 0 {
        cap_size(store, config.max_db_bytes, &mut total, count).await;
    }
    total
}

/// Runs rounds forever (spawn it), counting deletions in `metrics`.
pub async fn run(
    store: Store,
    config: RetentionConfig,
    metrics: std::sync::Arc<crate::span_metrics::CollectorMetrics>,
) {
    // The first round comes one interval after start, not at once.
    let every = Duration::from_secs(config.interval_secs);
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + every, every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticker.tick().await;
        let pruned = prune_round(
            &store,
            &config,
            swarmscope_model::timestamp::now_nanos(),
            &|o| metrics.pruned(o.traces, o.spans, o.logs),
        )
        .await;
        if pruned.traces + pruned.logs > 0 {
            tracing::info!(
                traces = pruned.traces,
                spans = pruned.spans,
                logs = pruned.logs,
                "retention: pruned"
            );
        }
    }
}
