//! The twelve `swarm_*` metrics of the seed, plus `swarm_disk_usage_ratio`
//! for the disk alerts and two for the Ticket Pipeline dashboard (time in
//! each status, dependency wait). Names here are the registered family names; counters
//! are exposed with the `_total` suffix (docs/metrics.md lists every exposed
//! name). Bucket boundaries fit each quantity: a snapshot restore takes
//! milliseconds, an HTTP call tens of milliseconds, a ticket minutes.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::Histogram;
use prometheus_client::registry::Registry;

/// `tenant_id`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TenantLabels {
    /// The tenant.
    pub tenant_id: String,
}

/// `tenant_id`, `status`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TenantStatusLabels {
    /// The tenant.
    pub tenant_id: String,
    /// A lifecycle state (VM: `started`, `failed`, `terminated`; ticket:
    /// `queued`, `claimed`, `completed`, `failed`; queue: ticket status).
    pub status: String,
}

/// `method` = `boot` | `restore`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct BootLabels {
    /// How the VM started.
    pub method: String,
}

/// `type`, `complexity`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TicketLabels {
    /// Ticket type (feature, bugfix, …).
    pub r#type: String,
    /// Ticket complexity (low, medium, high).
    pub complexity: String,
}

/// `method`, `path`, `status`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ApiLabels {
    /// HTTP method.
    pub method: String,
    /// Route template, never the raw path (bounded cardinality).
    pub path: String,
    /// HTTP status code.
    pub status: String,
}

/// `method`, `path`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct RouteLabels {
    /// HTTP method.
    pub method: String,
    /// Route template.
    pub path: String,
}

/// `model`, `status`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModelStatusLabels {
    /// The model.
    pub model: String,
    /// `ok` or `error`.
    pub status: String,
}

/// `model`, `direction` = `input` | `output` | `cache_read` | `cache_write`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TokenLabels {
    /// The model.
    pub model: String,
    /// Which tokens.
    pub direction: String,
}

/// `tenant_id`, `model`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TenantModelLabels {
    /// The tenant.
    pub tenant_id: String,
    /// The model.
    pub model: String,
}

/// `agent_type`, `status`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct AgentLabels {
    /// The agent's type (forge, reviewer, …).
    pub agent_type: String,
    /// `ok` or `error`.
    pub status: String,
}

/// `mount`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct MountLabels {
    /// A mount point.
    pub mount: String,
}

/// A histogram constructor (families need a `fn` to build new series).
pub type HistogramFn = fn() -> Histogram;

fn boot_ms() -> Histogram {
    Histogram::new([
        1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 300.0, 500.0, 1000.0, 2500.0,
    ])
}

fn ticket_seconds() -> Histogram {
    Histogram::new([
        30.0, 60.0, 120.0, 300.0, 600.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0,
    ])
}

fn pipeline_seconds() -> Histogram {
    Histogram::new([
        0.1, 0.5, 1.0, 5.0, 15.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 14400.0,
    ])
}

fn api_ms() -> Histogram {
    Histogram::new([
        1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
        60000.0,
    ])
}

/// Every `swarm_*` metric family.
#[derive(Clone, Debug)]
pub struct SwarmMetrics {
    /// `swarm_vms_active` (gauge): running VMs.
    pub vms_active: Family<TenantLabels, Gauge>,
    /// `swarm_vms_total` (counter): VM spawns by outcome.
    pub vms: Family<TenantStatusLabels, Counter>,
    /// `swarm_vm_boot_duration_ms` (histogram): boot or snapshot-restore time.
    pub vm_boot_duration_ms: Family<BootLabels, Histogram, HistogramFn>,
    /// `swarm_tickets_total` (counter): ticket state transitions.
    pub tickets: Family<TenantStatusLabels, Counter>,
    /// `swarm_ticket_duration_seconds` (histogram): claim to completion.
    pub ticket_duration_seconds: Family<TicketLabels, Histogram, HistogramFn>,
    /// `swarm_api_requests_total` (counter): HTTP requests.
    pub api_requests: Family<ApiLabels, Counter>,
    /// `swarm_api_request_duration_ms` (histogram): HTTP latency.
    pub api_request_duration_ms: Family<RouteLabels, Histogram, HistogramFn>,
    /// `swarm_claude_api_calls_total` (counter): LLM calls by outcome.
    pub claude_api_calls: Family<ModelStatusLabels, Counter>,
    /// `swarm_claude_api_tokens_total` (counter): tokens by direction.
    pub claude_api_tokens: Family<TokenLabels, Counter>,
    /// `swarm_claude_api_cost_usd_total` (counter): USD spent.
    pub claude_api_cost_usd: Family<TenantModelLabels, Counter<f64, AtomicU64>>,
    /// `swarm_agent_executions_total` (counter): agent runs by outcome.
    pub agent_executions: Family<AgentLabels, Counter>,
    /// `swarm_queue_depth` (gauge): tickets by status.
    pub queue_depth: Family<TenantStatusLabels, Gauge>,
    /// `swarm_disk_usage_ratio` (gauge): used / size of a mount, 0–1.
    pub disk_usage_ratio: Family<MountLabels, Gauge<f64, AtomicU64>>,
    /// `swarm_ticket_status_seconds` (histogram): time a ticket spent in a
    /// status (`blocked`, `queued`, `running`), observed when it leaves it.
    pub ticket_status_seconds: Family<TenantStatusLabels, Histogram, HistogramFn>,
    /// `swarm_ticket_dependency_wait_seconds` (histogram): time a ticket
    /// waited for the tickets it depends on.
    pub ticket_dependency_wait_seconds: Family<TenantLabels, Histogram, HistogramFn>,
}

impl Default for SwarmMetrics {
    fn default() -> Self {
        SwarmMetrics {
            vms_active: Family::default(),
            vms: Family::default(),
            vm_boot_duration_ms: Family::new_with_constructor(boot_ms as HistogramFn),
            tickets: Family::default(),
            ticket_duration_seconds: Family::new_with_constructor(ticket_seconds as HistogramFn),
            api_requests: Family::default(),
            api_request_duration_ms: Family::new_with_constructor(api_ms as HistogramFn),
            claude_api_calls: Family::default(),
            claude_api_tokens: Family::default(),
            claude_api_cost_usd: Family::default(),
            agent_executions: Family::default(),
            queue_depth: Family::default(),
            disk_usage_ratio: Family::default(),
            ticket_status_seconds: Family::new_with_constructor(pipeline_seconds as HistogramFn),
            ticket_dependency_wait_seconds: Family::new_with_constructor(
                pipeline_seconds as HistogramFn,
            ),
        }
    }
}

impl SwarmMetrics {
    /// A new, empty set.
    pub fn new() -> SwarmMetrics {
        SwarmMetrics::default()
    }

    /// Registers every family (names without the `_total` suffix, which the
    /// encoder adds to counters).
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "swarm_vms_active",
            "Currently running VMs",
            self.vms_active.clone(),
        );
        registry.register("swarm_vms", "VM spawns by outcome", self.vms.clone());
        registry.register(
            "swarm_vm_boot_duration_ms",
            "VM boot or snapshot-restore time in milliseconds",
            self.vm_boot_duration_ms.clone(),
        );
        registry.register(
            "swarm_tickets",
            "Ticket state transitions",
            self.tickets.clone(),
        );
        registry.register(
            "swarm_ticket_duration_seconds",
            "Time from claim to completion of a ticket in seconds",
            self.ticket_duration_seconds.clone(),
        );
        registry.register(
            "swarm_api_requests",
            "HTTP requests",
            self.api_requests.clone(),
        );
        registry.register(
            "swarm_api_request_duration_ms",
            "HTTP request latency in milliseconds",
            self.api_request_duration_ms.clone(),
        );
        registry.register(
            "swarm_claude_api_calls",
            "Claude API calls by outcome",
            self.claude_api_calls.clone(),
        );
        registry.register(
            "swarm_claude_api_tokens",
            "Claude API tokens by direction",
            self.claude_api_tokens.clone(),
        );
        registry.register(
            "swarm_claude_api_cost_usd",
            "Claude API cost in US dollars",
            self.claude_api_cost_usd.clone(),
        );
        registry.register(
            "swarm_agent_executions",
            "Agent executions by outcome",
            self.agent_executions.clone(),
        );
        registry.register(
            "swarm_queue_depth",
            "Tickets by status",
            self.queue_depth.clone(),
        );
        registry.register(
            "swarm_disk_usage_ratio",
            "Used fraction of a mount (0 to 1)",
            self.disk_usage_ratio.clone(),
        );
        registry.register(
            "swarm_ticket_status_seconds",
            "Time a ticket spent in a status, observed when it leaves it",
            self.ticket_status_seconds.clone(),
        );
        registry.register(
            "swarm_ticket_dependency_wait_seconds",
            "Time a ticket waited for the tickets it depends on",
            self.ticket_dependency_wait_seconds.clone(),
        );
    }
}

/// `reason` of a refused request.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ReasonLabels {
    /// Why (`invalid`, `unauthorized`, `forbidden`, `too_large`, `overloaded`, `storage`).
    pub reason: String,
}

/// `model`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct ModelLabels {
    /// The model.
    pub model: String,
}

/// The collector's own health, as `swarmscope_*`.
#[derive(Clone, Debug, Default)]
pub struct CollectorHealth {
    /// `swarmscope_spans_accepted_total` by tenant.
    pub spans_accepted: Family<TenantLabels, Counter>,
    /// `swarmscope_spans_rejected_total` by reason.
    pub spans_rejected: Family<ReasonLabels, Counter>,
    /// `swarmscope_logs_accepted_total` by tenant.
    pub logs_accepted: Family<TenantLabels, Counter>,
    /// `swarmscope_logs_rejected_total` by reason.
    pub logs_rejected: Family<ReasonLabels, Counter>,
    /// `swarmscope_unpriced_tokens_total`: tokens of models missing from the price table.
    pub unpriced_tokens: Family<ModelLabels, Counter>,
    /// `swarmscope_ingest_queue_spans`: spans waiting for the writer.
    pub queue_spans: Gauge,
    /// `swarmscope_writer_batches_total`: transactions committed.
    pub writer_batches: Counter,
    /// `swarmscope_writer_spans_total`: items committed in those transactions.
    pub writer_spans: Counter,
    /// `swarmscope_writer_last_batch_spans`: items in the latest transaction.
    pub writer_last_batch: Gauge,
    /// `swarmscope_writer_commit_seconds_total`: time spent committing.
    pub writer_commit_seconds: Counter<f64, AtomicU64>,
    /// `swarmscope_database_bytes`: bytes in use by the database file.
    pub database_bytes: Gauge,
    /// `swarmscope_pruned_rows_total` by kind (`traces`, `spans`, `logs`):
    /// rows deleted by retention.
    pub pruned_rows: Family<KindLabels, Counter>,
    /// `swarmscope_forwarded_total` by target and kind (`spans`, `logs`).
    pub forwarded: Family<TargetKindLabels, Counter>,
    /// `swarmscope_forward_failures_total` by target: failed deliveries (retried).
    pub forward_failures: Family<TargetLabels, Counter>,
    /// `swarmscope_forward_backlog`: items waiting to be forwarded.
    pub forward_backlog: Gauge,
    /// `swarmscope_forward_dropped_total`: items not queued, the backlog being full.
    pub forward_dropped: Counter,
    /// `swarmscope_scrubbed_values_total`: attribute values, messages and
    /// log lines in which a secret was masked before storage.
    pub scrubbed_values: Counter,
    /// `swarmscope_llm_call_errors_total` by tenant: failed LLM calls, so the
    /// ClaudeAPIErrors alert fires for the tenant whose calls fail (the
    /// seed's `swarm_claude_api_calls_total` has no tenant label).
    pub llm_call_errors: Family<TenantLabels, Counter>,
}

/// `target`, `kind`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TargetKindLabels {
    /// The forwarding target's name.
    pub target: String,
    /// `spans` or `logs`.
    pub kind: String,
}

/// `target`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct TargetLabels {
    /// The forwarding target's name.
    pub target: String,
}

/// `kind`.
#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct KindLabels {
    /// What was counted.
    pub kind: String,
}

impl CollectorHealth {
    /// Registers every `swarmscope_*` family.
    pub fn register(&self, registry: &mut Registry) {
        registry.register(
            "swarmscope_llm_call_errors",
            "Failed LLM calls by tenant",
            self.llm_call_errors.clone(),
        );
        registry.register(
            "swarmscope_spans_accepted",
            "Spans acknowledged by tenant",
            self.spans_accepted.clone(),
        );
        registry.register(
            "swarmscope_spans_rejected",
            "Span ingest requests refused by reason",
            self.spans_rejected.clone(),
        );
        registry.register(
            "swarmscope_logs_accepted",
            "Log lines acknowledged by tenant",
            self.logs_accepted.clone(),
        );
        registry.register(
            "swarmscope_logs_rejected",
            "Log ingest requests refused by reason",
            self.logs_rejected.clone(),
        );
        registry.register(
            "swarmscope_unpriced_tokens",
            "LLM tokens of models without a price (counted at cost 0)",
            self.unpriced_tokens.clone(),
        );
        registry.register(
            "swarmscope_ingest_queue_spans",
            "Spans and log lines waiting for the writer",
            self.queue_spans.clone(),
        );
        registry.register(
            "swarmscope_writer_batches",
            "Write transactions committed",
            self.writer_batches.clone(),
        );
        registry.register(
            "swarmscope_writer_spans",
            "Spans and log lines in committed transactions",
            self.writer_spans.clone(),
        );
        registry.register(
            "swarmscope_writer_last_batch_spans",
            "Spans and log lines in the latest transaction",
            self.writer_last_batch.clone(),
        );
        registry.register(
            "swarmscope_writer_commit_seconds",
            "Time spent in write transactions",
            self.writer_commit_seconds.clone(),
        );
        registry.register(
            "swarmscope_database_bytes",
            "Bytes in use by the database file",
            self.database_bytes.clone(),
        );
        registry.register(
            "swarmscope_scrubbed_values",
            "Values in which a secret was masked before storage",
            self.scrubbed_values.clone(),
        );
        registry.register(
            "swarmscope_pruned_rows",
            "Rows deleted by retention",
            self.pruned_rows.clone(),
        );
        registry.register(
            "swarmscope_forwarded",
            "Spans and log lines forwarded over OTLP",
            self.forwarded.clone(),
        );
        registry.register(
            "swarmscope_forward_failures",
            "Failed forwarding requests (retried)",
            self.forward_failures.clone(),
        );
        registry.register(
            "swarmscope_forward_backlog",
            "Items waiting to be forwarded",
            self.forward_backlog.clone(),
        );
        registry.register(
            "swarmscope_forward_dropped",
            "Items not queued for forwarding because the backlog was full",
            self.forward_dropped.clone(),
        );
    }
}

/// A [`TenantFolder`] for any label.
pub type LabelFolder = TenantFolder;

/// Bounds label cardinality: the first `cap` values seen (tenants, models,
/// agent types, …) keep their name, later ones are counted as `other`.
#[derive(Debug)]
pub struct TenantFolder {
    cap: usize,
    seen: std::sync::Mutex<std::collections::HashSet<String>>,
    /// How many of the kept values each owner (a tenant) introduced.
    introduced: std::sync::Mutex<std::collections::HashMap<String, usize>>,
}

impl TenantFolder {
    /// Keeps at most `cap` tenant names.
    pub fn new(cap: usize) -> TenantFolder {
        TenantFolder {
            cap,
            seen: std::sync::Mutex::new(std::collections::HashSet::new()),
            introduced: std::sync::Mutex::new(std::collections::HashMap::new()),
        }
    }

    /// The label value for `tenant` (or any other folded value).
    pub fn label(&self, tenant: &str) -> String {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.contains(tenant) {
            return tenant.to_owned();
        }
        if seen.len() < self.cap {
            seen.insert(tenant.to_owned());
            return tenant.to_owned();
        }
        "other".to_owned()
    }

    /// The label value for `value` seen in `owner`'s data: a value already
    /// kept keeps its name for everyone; a new one is kept only while `owner`
    /// has introduced fewer than `per_owner` values (and the folder has
    /// room), so one tenant minting values cannot use up every tenant's
    /// label budget.
    pub fn label_for(&self, owner: &str, value: &str, per_owner: usize) -> String {
        let mut seen = self.seen.lock().unwrap_or_else(|p| p.into_inner());
        if seen.contains(value) {
            return value.to_owned();
        }
        let mut introduced = self.introduced.lock().unwrap_or_else(|p| p.into_inner());
        let mine = introduced.get(owner).copied().unwrap_or(0);
        if seen.len() < self.cap && mine < per_owner {
            seen.insert(value.to_owned());
            introduced.insert(owner.to_owned(), mine + 1);
            return value.to_owned();
        }
        "other".to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tenants_beyond_the_cap_fold_into_other() {
        let f = TenantFolder::new(2);
        assert_eq!(f.label("a"), "a");
        assert_eq!(f.label("b"), "b");
        assert_eq!(f.label("c"), "other");
        assert_eq!(f.label("a"), "a", "known tenants keep their name");
    }

    #[test]
    fn one_owner_cannot_use_up_the_label_budget() {
        let f = TenantFolder::new(10);
        for i in 0..100 {
            f.label_for("flood", &format!("model-{i}"), 3);
        }
        assert_eq!(f.label_for("flood", "model-1", 3), "model-1");
        assert_eq!(f.label_for("flood", "model-99", 3), "other");
        assert_eq!(f.label_for("acme", "claude-sonnet-4", 3), "claude-sonnet-4");
        assert_eq!(
            f.label_for("acme", "model-1", 3),
            "model-1",
            "a value another tenant introduced is shared"
        );
    }
}
