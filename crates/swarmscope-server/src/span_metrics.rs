//! Agent-side metrics, derived from spans at ingest.
//!
//! A VM is gone before anything could scrape it, so the collector counts what
//! agents report in their spans: Claude calls, tokens and USD cost from
//! `llm.generate` (the seed's `model`, `input_tokens`, `output_tokens`, or the
//! OpenTelemetry GenAI `gen_ai.*` attributes, cache tokens included), agent
//! outcomes from `agent.execute`, VM boot times from `vm.spawn`, ticket
//! durations from `ticket.complete`. The cost is computed once, here, and
//! stored on the span as `swarm.cost_usd`, so a later price change does not
//! rewrite history. Only spans the write actually stored are counted: a span
//! re-sent after a retry is not counted twice.

use prometheus_client::registry::Registry;
use serde_json::Value;
use swarmscope_metrics::catalogue::{
    AgentLabels, BootLabels, CollectorHealth, ModelLabels, ModelStatusLabels, ReasonLabels,
    TenantFolder, TenantLabels, TenantModelLabels, TicketLabels, TokenLabels,
};
use swarmscope_metrics::{render, Format, SwarmMetrics};
use swarmscope_model::numbers;
use swarmscope_model::price::{PriceTable, TokenUsage};
use swarmscope_model::{Span, SpanStatus};
use swarmscope_store::WriterStats;

/// The collector's metrics: span-derived `swarm_*` and its own `swarmscope_*`.
pub struct CollectorMetrics {
    /// The `swarm_*` families (the collector fills the agent-side ones).
    pub swarm: SwarmMetrics,
    /// The `swarmscope_*` families.
    pub health: CollectorHealth,
    tenants: TenantFolder,
    /// Label values that come from span attributes, each bounded: a tenant
    /// cannot mint unlimited series by varying `model` or `agent_type`.
    values: TenantFolder,
    prices: PriceTable,
    registry: Registry,
}

/// Most distinct attribute-derived label values (models, agent types, boot
/// methods, ticket types and complexities together) before `other`.
const VALUE_CAP: usize = 200;

/// Most of those one tenant may introduce: a quarter, so a tenant minting
/// model names cannot push every other tenant's into `other`.
const VALUE_CAP_PER_TENANT: usize = 50;

impl CollectorMetrics {
    /// Metrics priced by `prices`, with at most `tenant_cap` tenant label values.
    pub fn new(prices: PriceTable, tenant_cap: usize) -> CollectorMetrics {
        let swarm = SwarmMetrics::new();
        let health = CollectorHealth::default();
        let mut registry = Registry::default();
        swarm.register(&mut registry);
        health.register(&mut registry);
        CollectorMetrics {
            swarm,
            health,
            tenants: TenantFolder::new(tenant_cap),
            values: TenantFolder::new(VALUE_CAP),
            prices,
            registry,
        }
    }

    /// The price table in use.
    pub fn prices(&self) -> &PriceTable {
        &self.prices
    }

    /// The label value for a tenant (folded past the cap).
    pub fn tenant(&self, tenant: &str) -> String {
        self.tenants.label(tenant)
    }

    /// The label value for an attribute-derived value seen in `tenant`'s
    /// spans (folded past the cap, and past the tenant's share of it).
    fn value(&self, tenant: &str, v: &str) -> String {
        self.values.label_for(tenant, v, VALUE_CAP_PER_TENANT)
    }

    /// Counts a refused ingest request.
    pub fn rejected(&self, logs: bool, status: u16) {
        let reason = match status {
            401 => "unauthorized",
            403 => "forbidden",
            413 => "too_large",
            503 => "overloaded",
            507 => "storage",
            400..=499 => "invalid",
            _ => "internal",
        };
        let family = if logs {
            &self.health.logs_rejected
        } else {
            &self.health.spans_rejected
        };
        family
            .get_or_create(&ReasonLabels {
                reason: reason.into(),
            })
            .inc();
    }

    /// Counts forwarded items.
    pub fn forwarded(&self, target: &str, spans: u64, logs: u64) {
        for (kind, n) in [("spans", spans), ("logs", logs)] {
            self.health
                .forwarded
                .get_or_create(&swarmscope_metrics::catalogue::TargetKindLabels {
                    target: target.to_owned(),
                    kind: kind.to_owned(),
                })
                .inc_by(n);
        }
    }

    /// Counts a failed forwarding request.
    pub fn forward_failed(&self, target: &str) {
        self.health
            .forward_failures
            .get_or_create(&swarmscope_metrics::catalogue::TargetLabels {
                target: target.to_owned(),
            })
            .inc();
    }

    /// Counts rows deleted by retention.
    pub fn pruned(&self, traces: u64, spans: u64, logs: u64) {
        for (kind, n) in [("traces", traces), ("spans", spans), ("logs", logs)] {
            self.health
                .pruned_rows
                .get_or_create(&swarmscope_metrics::catalogue::KindLabels {
                    kind: kind.to_owned(),
                })
                .inc_by(n);
        }
    }

    /// Records how full the data directory's filesystem is.
    pub fn set_disk_usage(&self, data_dir: &std::path::Path) {
        if let Some(ratio) = crate::disk::usage_ratio(data_dir) {
            self.swarm
                .disk_usage_ratio
                .get_or_create(&swarmscope_metrics::catalogue::MountLabels {
                    mount: data_dir.display().to_string(),
                })
                .set(ratio);
        }
    }

    /// Renders the registry as Prometheus text for the alert engine, after
    /// measuring the data disk.
    pub fn render_for_alerts(&self, data_dir: &std::path::Path) -> String {
        self.set_disk_usage(data_dir);
        render(&self.registry, Format::Prometheus)
    }

    /// Renders a scrape, after refreshing the gauges read from the writer.
    pub fn scrape(&self, format: Format, writer: WriterStats, database_bytes: i64) -> String {
        let h = &self.health;
        h.queue_spans.set(writer.queued_spans as i64);
        h.writer_last_batch.set(writer.last_batch_spans as i64);
        // Counters only move forward: add what the writer did since the last scrape.
        let add = |c: &prometheus_client::metrics::counter::Counter, total: u64| {
            let now = c.get();
            if total > now {
                c.inc_by(total - now);
            }
        };
        add(&h.writer_batches, writer.batches);
        add(&h.forward_dropped, writer.outbox_dropped);
        h.forward_backlog.set(writer.outbox_len as i64);
        add(&h.writer_spans, writer.spans_committed);
        let commit_secs = writer.commit_micros as f64 / 1e6;
        let seen = h.writer_commit_seconds.get();
        if commit_secs > seen {
            h.writer_commit_seconds.inc_by(commit_secs - seen);
        }
        h.database_bytes.set(database_bytes);
        render(&self.registry, format)
    }
}

/// What one span adds to the metrics once stored.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Derived {
    Nothing,
    Llm {
        tenant: String,
        model: String,
        status: &'static str,
        usage: TokenUsage,
        cost: Option<f64>,
    },
    Agent {
        tenant: String,
        agent_type: String,
        status: &'static str,
    },
    VmSpawn {
        tenant: String,
        method: String,
        ms: f64,
    },
    Ticket {
        tenant: String,
        ticket_type: String,
        complexity: String,
        seconds: f64,
    },
}

fn attr<'a>(span: &'a Span, names: &[&str]) -> Option<&'a Value> {
    names.iter().find_map(|n| span.attributes.get(*n))
}

fn attr_text(span: &Span, names: &[&str]) -> Option<String> {
    attr(span, names).and_then(|v| match v {
        Value::String(s) if !s.is_empty() => Some(s.chars().take(128).collect()),
        Value::Number(n) => Some(n.to_string()),
        _ => None,
    })
}

fn attr_count(span: &Span, names: &[&str]) -> u64 {
    attr(span, names)
        .and_then(swarmscope_model::numbers::token_count)
        .unwrap_or(0)
}

/// Adds to a counter without wrapping: a counter that would pass `u64::MAX`
/// stays at its ceiling instead of restarting from zero.
fn add_saturating(counter: &prometheus_client::metrics::counter::Counter, n: u64) {
    let room = u64::MAX - counter.get();
    counter.inc_by(n.min(room));
}

fn outcome(span: &Span) -> &'static str {
    if span.status == SpanStatus::Error {
        "error"
    } else {
        "ok"
    }
}

/// Prices LLM spans (storing `swarm.cost_usd` on them) and says what each
/// span will add to the metrics if the write stores it.
pub(crate) fn prepare(spans: &mut [Span], prices: &PriceTable) -> Vec<Derived> {
    spans
        .iter_mut()
        .map(|span| {
            let is_llm =
                span.name == "llm.generate" || span.attributes.contains_key("gen_ai.request.model");
            if is_llm && span.end_ns.is_some() {
                let model = attr_text(
                    span,
                    &["gen_ai.request.model", "model", "gen_ai.response.model"],
                )
                .unwrap_or_else(|| "unknown".into());
                let usage = TokenUsage {
                    input: attr_count(span, numbers::INPUT_TOKENS),
                    output: attr_count(span, numbers::OUTPUT_TOKENS),
                    cache_read: attr_count(span, numbers::CACHE_READ_TOKENS),
                    cache_write: attr_count(span, numbers::CACHE_WRITE_TOKENS),
                };
                let cost = prices.cost(&model, &usage);
                span.attributes
                    .insert("swarm.cost_usd".into(), Value::from(cost.unwrap_or(0.0)));
                if cost.is_none() {
                    span.attributes
                        .insert("swarm.unpriced".into(), Value::Bool(true));
                }
                return Derived::Llm {
                    tenant: span.tenant_id.clone(),
                    model,
                    status: outcome(span),
                    usage,
                    cost,
                };
            }
            match (span.name.as_str(), span.duration_ms()) {
                ("agent.execute", Some(_)) => Derived::Agent {
                    tenant: span.tenant_id.clone(),
                    agent_type: attr_text(span, &["agent_type", "agent.type"])
                        .unwrap_or_else(|| "unknown".into()),
                    status: outcome(span),
                },
                ("vm.spawn", Some(ms)) if span.status != SpanStatus::Error => Derived::VmSpawn {
                    tenant: span.tenant_id.clone(),
                    method: attr_text(span, &["method"]).unwrap_or_else(|| "unknown".into()),
                    ms,
                },
                ("ticket.complete", Some(ms)) => Derived::Ticket {
                    tenant: span.tenant_id.clone(),
                    ticket_type: attr_text(span, &["type", "ticket_type"])
                        .unwrap_or_else(|| "unknown".into()),
                    complexity: attr_text(span, &["complexity"])
                        .unwrap_or_else(|| "unknown".into()),
                    seconds: attr(span, &["duration_ms"])
                        .and_then(Value::as_f64)
                        .unwrap_or(ms)
                        / 1000.0,
                },
                _ => Derived::Nothing,
            }
        })
        .collect()
}

/// Counts the derived figures of the spans a write stored.
pub(crate) fn apply(metrics: &CollectorMetrics, derived: &[Derived], stored: &[usize]) {
    let m = &metrics.swarm;
    for d in stored.iter().filter_map(|&i| derived.get(i)) {
        match d {
            Derived::Nothing => {}
            Derived::Llm {
                tenant,
                model,
                status,
                usage,
                cost,
            } => {
                if *status == "error" {
                    metrics
                        .health
                        .llm_call_errors
                        .get_or_create(&TenantLabels {
                            tenant_id: metrics.tenant(tenant),
                        })
                        .inc();
                }
                let model = &metrics.value(tenant, model);
                m.claude_api_calls
                    .get_or_create(&ModelStatusLabels {
                        model: model.clone(),
                        status: (*status).into(),
                    })
                    .inc();
                for (direction, n) in [
                    ("input", usage.input),
                    ("output", usage.output),
                    ("cache_read", usage.cache_read),
                    ("cache_write", usage.cache_write),
                ] {
                    if n > 0 {
                        add_saturating(
                            &m.claude_api_tokens.get_or_create(&TokenLabels {
                                model: model.clone(),
                                direction: direction.into(),
                            }),
                            n,
                        );
                    }
                }
                match cost {
                    Some(c) => {
                        m.claude_api_cost_usd
                            .get_or_create(&TenantModelLabels {
                                tenant_id: metrics.tenant(tenant),
                                model: model.clone(),
                            })
                            .inc_by(*c);
                    }
                    None => {
                        add_saturating(
                            &metrics.health.unpriced_tokens.get_or_create(&ModelLabels {
                                model: model.clone(),
                            }),
                            usage.total(),
                        );
                    }
                }
            }
            Derived::Agent {
                tenant,
                agent_type,
                status,
            } => {
                m.agent_executions
                    .get_or_create(&AgentLabels {
                        agent_type: metrics.value(tenant, agent_type),
                        status: (*status).into(),
                    })
                    .inc();
            }
            Derived::VmSpawn { tenant, method, ms } => {
                m.vm_boot_duration_ms
                    .get_or_create(&BootLabels {
                        method: metrics.value(tenant, method),
                    })
                    .observe(*ms);
            }
            Derived::Ticket {
                tenant,
                ticket_type,
                complexity,
                seconds,
            } => {
                m.ticket_duration_seconds
                    .get_or_create(&TicketLabels {
                        r#type: metrics.value(tenant, ticket_type),
                        complexity: metrics.value(tenant, complexity),
                    })
                    .observe(*seconds);
            }
        }
    }
}

/// Counts acknowledged items per tenant (one counter update per tenant, not
/// per item: this runs on every ingest request).
pub(crate) fn accepted(
    metrics: &CollectorMetrics,
    tenants: impl Iterator<Item = String>,
    logs: bool,
) {
    let family = if logs {
        &metrics.health.logs_accepted
    } else {
        &metrics.health.spans_accepted
    };
    let mut counts: Vec<(String, u64)> = Vec::new();
    for t in tenants {
        match counts.iter_mut().find(|(name, _)| *name == t) {
            Some((_, n)) => *n += 1,
            None => counts.push((t, 1)),
        }
    }
    for (t, n) in counts {
        family
            .get_or_create(&TenantLabels {
                tenant_id: metrics.tenant(&t),
            })
            .inc_by(n);
    }
}

/// Counts values masked by the scrubber (before the write: a request
/// refused later was still scrubbed, and nothing of it stored).
pub(crate) fn scrubbed(metrics: &CollectorMetrics, n: u64) {
    if n > 0 {
        metrics.health.scrubbed_values.inc_by(n);
    }
}

/// Runs the derivation steps of ingest (pricing, storing the cost, counting)
/// on `spans` as if `stored` were what the write stored. For the benchmark
/// in `benches/metrics.rs`; ingest itself calls the same two steps.
#[doc(hidden)]
pub fn derive_for_bench(metrics: &CollectorMetrics, spans: &mut [Span], stored: &[usize]) {
    let derived = prepare(spans, metrics.prices());
    apply(metrics, &derived, stored);
    accepted(metrics, spans.iter().map(|s| s.tenant_id.clone()), false);
}
