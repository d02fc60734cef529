//! The twelve `swarm_*` metrics of the seed, plus `swarm_disk_usage_ratio`
//! for the disk alerts. Names here are the registered family names; counters
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
    }
}
