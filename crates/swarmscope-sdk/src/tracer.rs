//! The agent-side tracer: the seed's `AgentTracer` API in Rust.
//!
//! ```no_run
//! # async fn run() {
//! use swarmscope_sdk::tracer::AgentTracer;
//! let tracer = AgentTracer::new("ticket_456", "agent_789", "tenant_001");
//! let mut span = tracer.start_span("git.clone", [("repo_url", "https://example.com/r.git")]);
//! span.add_event("cloned", [("files", 812)]);
//! span.set_status(swarmscope_model::SpanStatus::Ok);
//! span.end();
//! tracer.flush().await; // one batched request; spooled to disk if the collector is away
//! # }
//! ```
//!
//! Recording does no I/O: an ended span goes onto a lock-free queue, and
//! [`Tracer::flush`] sends everything pending in as few requests as the body
//! limit allows, with a deadline, bounded retries with backoff, and a local
//! spool file when all else fails. Ids are W3C (32-hex trace, 16-hex span).

use std::borrow::Cow;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use crossbeam_queue::SegQueue;
use serde_json::Value;
use swarmscope_model::timestamp::now_nanos;
use swarmscope_model::{SpanKind, SpanStatus};

use crate::log::LogBuffer;
use crate::propagation::{format_traceparent, new_trace_id, TraceContext};

/// A span id: 64 random bits, written as 16 lowercase hex digits. Kept as an
/// integer while recording so that starting a span allocates nothing for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SpanId(u64);

impl SpanId {
    /// A new random, non-zero id.
    pub fn random() -> SpanId {
        loop {
            let v: u64 = rand::random();
            if v != 0 {
                return SpanId(v);
            }
        }
    }

    /// Parses 16 lowercase hex digits (not all zero).
    pub fn parse(text: &str) -> Option<SpanId> {
        if text.len() != 16
            || !text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        {
            return None;
        }
        u64::from_str_radix(text, 16)
            .ok()
            .filter(|v| *v != 0)
            .map(SpanId)
    }
}

impl std::fmt::Display for SpanId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016x}", self.0)
    }
}

/// A span's parent: one of ours, or an id from elsewhere kept as sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum ParentId {
    Local(SpanId),
    Remote(Arc<str>),
}

impl ParentId {
    fn from_text(text: &str) -> ParentId {
        SpanId::parse(text).map_or_else(|| ParentId::Remote(Arc::from(text)), ParentId::Local)
    }
}

impl std::fmt::Display for ParentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ParentId::Local(id) => id.fmt(f),
            ParentId::Remote(text) => f.write_str(text),
        }
    }
}

/// Attributes while recording: a small vector, not a map (a `BTreeMap` node
/// alone is ~600 bytes); keys are usually `&'static str` and cost nothing.
pub(crate) type AttrList = Vec<(Cow<'static, str>, Value)>;

/// Where and how a tracer sends its data.
#[derive(Clone)]
pub struct TracerConfig {
    /// Collector base URL (`SWARMSCOPE_URL`, default `http://127.0.0.1:4318`).
    pub url: String,
    /// Bearer key (`SWARMSCOPE_API_KEY`).
    pub api_key: Option<String>,
    /// Service name put on every span (`SWARMSCOPE_SERVICE`).
    pub service: Option<String>,
    /// The VM this process runs in (`SWARMSCOPE_VM_ID`).
    pub vm_id: Option<String>,
    /// Longest a whole flush may take, retries included.
    pub deadline: Duration,
    /// Retries of one request after the first attempt.
    pub retries: u32,
    /// Largest request body a flush sends.
    pub max_body_bytes: usize,
    /// Where unsendable spans and log lines are appended as JSON lines
    /// (`SWARMSCOPE_SPOOL`, default a file in the temp dir named by pid).
    pub spool_path: PathBuf,
    /// Log lines to ship with each flush (the JSON layer's queue).
    pub logs: Option<LogBuffer>,
}

impl std::fmt::Debug for TracerConfig {
    /// Everything but the API key.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TracerConfig")
            .field("url", &self.url)
            .field("api_key", &self.api_key.as_ref().map(|_| "[REDACTED]"))
            .field("service", &self.service)
            .field("vm_id", &self.vm_id)
            .field("deadline", &self.deadline)
            .field("retries", &self.retries)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("spool_path", &self.spool_path)
            .finish()
    }
}

impl TracerConfig {
    /// Settings from the environment, with defaults.
    pub fn from_env() -> TracerConfig {
        let var = |k: &str| std::env::var(k).ok().filter(|v| !v.is_empty());
        TracerConfig {
            url: var("SWARMSCOPE_URL").unwrap_or_else(|| "http://127.0.0.1:4318".into()),
            api_key: var("SWARMSCOPE_API_KEY"),
            service: var("SWARMSCOPE_SERVICE"),
            vm_id: var("SWARMSCOPE_VM_ID"),
            deadline: Duration::from_secs(5),
            retries: 3,
            max_body_bytes: 4 * 1024 * 1024,
            spool_path: var("SWARMSCOPE_SPOOL")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    std::env::temp_dir()
                        .join(format!("swarmscope-spool-{}.jsonl", std::process::id()))
                }),
            logs: None,
        }
    }
}

/// A recorded span, as queued for the next flush.
#[derive(Debug, Clone)]
pub(crate) struct SpanRecord {
    pub(crate) trace: Arc<TraceInfo>,
    pub(crate) span_id: SpanId,
    pub(crate) parent: Option<ParentId>,
    pub(crate) name: Cow<'static, str>,
    pub(crate) kind: SpanKind,
    pub(crate) start_ns: i64,
    pub(crate) end_ns: Option<i64>,
    pub(crate) status: SpanStatus,
    pub(crate) status_message: Option<String>,
    pub(crate) attributes: AttrList,
    pub(crate) events: Vec<(Cow<'static, str>, i64, AttrList)>,
}

/// What every span of one agent trace shares.
#[derive(Debug)]
pub(crate) struct TraceInfo {
    pub(crate) trace_id: String,
    pub(crate) tenant_id: String,
    pub(crate) ticket_id: Option<String>,
    pub(crate) agent_id: Option<String>,
    pub(crate) service: Option<String>,
    pub(crate) vm_id: Option<String>,
    /// Parent of this trace's root spans (a caller's span, from `traceparent`).
    pub(crate) remote_parent: Option<ParentId>,
    /// Open spans, innermost last: the implicit parent of a new span.
    open: Mutex<Vec<SpanId>>,
}

pub(crate) struct Shared {
    pub(crate) config: TracerConfig,
    pub(crate) pending: SegQueue<SpanRecord>,
    pub(crate) flush_lock: tokio::sync::Mutex<()>,
    pub(crate) client: reqwest::Client,
}

/// A process's tracer: the pending queue and the exporter. Cheap to clone.
#[derive(Clone)]
pub struct Tracer {
    pub(crate) shared: Arc<Shared>,
}

impl std::fmt::Debug for Tracer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tracer")
            .field("url", &self.shared.config.url)
            .field("pending", &self.shared.pending.len())
            .finish()
    }
}

static GLOBAL: OnceLock<Tracer> = OnceLock::new();

impl Tracer {
    /// A tracer with these settings.
    pub fn new(config: TracerConfig) -> Tracer {
        Tracer {
            shared: Arc::new(Shared {
                config,
                pending: SegQueue::new(),
                flush_lock: tokio::sync::Mutex::new(()),
                client: reqwest::Client::new(),
            }),
        }
    }

    /// The process-wide tracer used by [`AgentTracer::new`]: configured from
    /// the environment on first use, or by [`Tracer::set_global`].
    pub fn global() -> &'static Tracer {
        GLOBAL.get_or_init(|| Tracer::new(TracerConfig::from_env()))
    }

    /// Makes `tracer` the process-wide one; false if one was already in use.
    pub fn set_global(tracer: Tracer) -> bool {
        GLOBAL.set(tracer).is_ok()
    }

    /// Its settings.
    pub fn config(&self) -> &TracerConfig {
        &self.shared.config
    }

    /// Spans waiting for the next flush.
    pub fn pending(&self) -> usize {
        self.shared.pending.len()
    }

    pub(crate) fn record(&self, span: SpanRecord) {
        self.shared.pending.push(span);
    }
}

/// The seed's `AgentTracer`: one trace for one agent working one ticket.
/// Cheap to clone; clones share the trace.
#[derive(Clone)]
pub struct AgentTracer {
    tracer: Tracer,
    trace: Arc<TraceInfo>,
}

impl std::fmt::Debug for AgentTracer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AgentTracer")
            .field("trace_id", &self.trace.trace_id)
            .finish()
    }
}

impl AgentTracer {
    /// The seed's constructor: a new trace on the process-wide tracer.
    pub fn new(ticket_id: &str, agent_id: &str, tenant_id: &str) -> AgentTracer {
        AgentTracer::with_tracer(Tracer::global(), ticket_id, agent_id, tenant_id)
    }

    /// A new trace on a given tracer.
    pub fn with_tracer(
        tracer: &Tracer,
        ticket_id: &str,
        agent_id: &str,
        tenant_id: &str,
    ) -> AgentTracer {
        AgentTracer::build(tracer, new_trace_id(), None, ticket_id, agent_id, tenant_id)
    }

    /// Continues a caller's trace (from an incoming `traceparent`): root spans
    /// of this tracer become children of the caller's span.
    pub fn continue_trace(
        tracer: &Tracer,
        context: &TraceContext,
        ticket_id: &str,
        agent_id: &str,
        tenant_id: &str,
    ) -> AgentTracer {
        AgentTracer::build(
            tracer,
            context.trace_id.clone(),
            Some(ParentId::from_text(&context.parent_span_id)),
            ticket_id,
            agent_id,
            tenant_id,
        )
    }

    pub(crate) fn build(
        tracer: &Tracer,
        trace_id: String,
        remote_parent: Option<ParentId>,
        ticket_id: &str,
        agent_id: &str,
        tenant_id: &str,
    ) -> AgentTracer {
        let config = tracer.config();
        let non_empty = |s: &str| (!s.is_empty()).then(|| s.to_owned());
        AgentTracer {
            tracer: tracer.clone(),
            trace: Arc::new(TraceInfo {
                trace_id,
                tenant_id: tenant_id.to_owned(),
                ticket_id: non_empty(ticket_id),
                agent_id: non_empty(agent_id),
                service: config.service.clone(),
                vm_id: config.vm_id.clone(),
                remote_parent,
                open: Mutex::new(Vec::new()),
            }),
        }
    }

    /// Records an already finished span with a known id (the request
    /// middleware's `http.request`, whose id its children needed before it ended).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn record_finished(
        &self,
        span_id: SpanId,
        name: &'static str,
        kind: SpanKind,
        start_ns: i64,
        status: SpanStatus,
        status_message: Option<String>,
        attributes: AttrList,
    ) {
        self.tracer.record(SpanRecord {
            trace: Arc::clone(&self.trace),
            span_id,
            parent: self.trace.remote_parent.clone(),
            name: Cow::Borrowed(name),
            kind,
            start_ns,
            end_ns: Some(now_nanos().max(start_ns)),
            status,
            status_message,
            attributes,
            events: Vec::new(),
        });
    }

    /// The trace id (32 hex digits).
    pub fn trace_id(&self) -> &str {
        &self.trace.trace_id
    }

    /// The tracer this trace reports to.
    pub fn tracer(&self) -> &Tracer {
        &self.tracer
    }

    fn open_span(
        &self,
        name: Cow<'static, str>,
        parent: Option<ParentId>,
        attributes: AttrList,
    ) -> SpanGuard {
        let span_id = SpanId::random();
        let parent = {
            let mut open = self.trace.open.lock().unwrap_or_else(|p| p.into_inner());
            let parent = parent
                .or_else(|| open.last().copied().map(ParentId::Local))
                .or_else(|| self.trace.remote_parent.clone());
            open.push(span_id);
            parent
        };
        SpanGuard {
            tracer: self.clone(),
            record: Some(SpanRecord {
                trace: Arc::clone(&self.trace),
                span_id,
                parent,
                name,
                kind: SpanKind::Internal,
                start_ns: now_nanos(),
                end_ns: None,
                status: SpanStatus::Unset,
                status_message: None,
                attributes,
                events: Vec::new(),
            }),
        }
    }

    /// Starts a span; its parent is the innermost span of this trace still
    /// open (or the caller's span, or none).
    pub fn start_span<K, V>(
        &self,
        name: impl Into<Cow<'static, str>>,
        attributes: impl IntoIterator<Item = (K, V)>,
    ) -> SpanGuard
    where
        K: Into<Cow<'static, str>>,
        V: Into<Value>,
    {
        self.open_span(name.into(), None, to_list(attributes))
    }

    /// Starts a span under an explicit parent span id.
    pub fn start_child<K, V>(
        &self,
        parent: &str,
        name: impl Into<Cow<'static, str>>,
        attributes: impl IntoIterator<Item = (K, V)>,
    ) -> SpanGuard
    where
        K: Into<Cow<'static, str>>,
        V: Into<Value>,
    {
        self.open_span(
            name.into(),
            Some(ParentId::from_text(parent)),
            to_list(attributes),
        )
    }

    /// Starts a long span (`agent.execute`, `llm.generate`) and queues an open
    /// copy of it for the next flush, so that if the process dies before the
    /// span ends the collector still knows where it stopped.
    pub fn announce<K, V>(
        &self,
        name: impl Into<Cow<'static, str>>,
        attributes: impl IntoIterator<Item = (K, V)>,
    ) -> SpanGuard
    where
        K: Into<Cow<'static, str>>,
        V: Into<Value>,
    {
        let guard = self.start_span(name, attributes);
        if let Some(r) = &guard.record {
            self.tracer.record(r.clone());
        }
        guard
    }

    /// Sends everything pending (of every trace of this tracer).
    pub async fn flush(&self) -> crate::export::FlushReport {
        self.tracer.flush().await
    }
}

fn to_list<K: Into<Cow<'static, str>>, V: Into<Value>>(
    attributes: impl IntoIterator<Item = (K, V)>,
) -> AttrList {
    attributes
        .into_iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect()
}

/// A started span. Ends when [`SpanGuard::end`] is called or when dropped.
pub struct SpanGuard {
    tracer: AgentTracer,
    record: Option<SpanRecord>,
}

impl std::fmt::Debug for SpanGuard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SpanGuard")
            .field("span_id", &self.id())
            .finish()
    }
}

impl SpanGuard {
    /// The span id, as 16 hex digits.
    pub fn id(&self) -> String {
        self.span_id().to_string()
    }

    /// The span id.
    pub fn span_id(&self) -> SpanId {
        self.record.as_ref().map_or(SpanId(0), |r| r.span_id)
    }

    /// The trace id.
    pub fn trace_id(&self) -> &str {
        self.tracer.trace_id()
    }

    /// Records a timestamped event.
    pub fn add_event<K, V>(
        &mut self,
        name: impl Into<Cow<'static, str>>,
        attributes: impl IntoIterator<Item = (K, V)>,
    ) where
        K: Into<Cow<'static, str>>,
        V: Into<Value>,
    {
        if let Some(r) = &mut self.record {
            r.events
                .push((name.into(), now_nanos(), to_list(attributes)));
        }
    }

    /// Sets the outcome.
    pub fn set_status(&mut self, status: SpanStatus) {
        if let Some(r) = &mut self.record {
            r.status = status;
        }
    }

    /// Marks the span failed, with a message.
    pub fn set_error(&mut self, message: impl Into<String>) {
        if let Some(r) = &mut self.record {
            r.status = SpanStatus::Error;
            r.status_message = Some(message.into());
        }
    }

    /// Sets the span's kind (server, client, …).
    pub fn set_kind(&mut self, kind: SpanKind) {
        if let Some(r) = &mut self.record {
            r.kind = kind;
        }
    }

    /// Sets one attribute.
    pub fn set_attribute(&mut self, key: impl Into<Cow<'static, str>>, value: impl Into<Value>) {
        if let Some(r) = &mut self.record {
            let key = key.into();
            let value = value.into();
            match r.attributes.iter_mut().find(|(k, _)| *k == key) {
                Some(slot) => slot.1 = value,
                None => r.attributes.push((key, value)),
            }
        }
    }

    /// `traceparent` for an outgoing call made from this span.
    pub fn traceparent(&self) -> String {
        format_traceparent(self.trace_id(), &self.id(), true)
    }

    /// A `tracing` span carrying this span's correlation ids, so that log
    /// lines written inside it (`.instrument(span.tracing_span())` or
    /// `.in_scope`) carry trace, span, tenant, ticket and agent ids.
    pub fn tracing_span(&self) -> tracing::Span {
        let t = &self.tracer.trace;
        tracing::info_span!(
            "swarmscope.span",
            trace_id = %t.trace_id,
            span_id = %self.id(),
            tenant_id = %t.tenant_id,
            ticket_id = t.ticket_id.as_deref(),
            agent_id = t.agent_id.as_deref(),
        )
    }

    /// Ends the span and queues it for the next flush.
    pub fn end(mut self) {
        self.finish();
    }

    fn finish(&mut self) {
        if let Some(mut r) = self.record.take() {
            r.end_ns = Some(now_nanos().max(r.start_ns));
            {
                let mut open = self
                    .tracer
                    .trace
                    .open
                    .lock()
                    .unwrap_or_else(|p| p.into_inner());
                if let Some(i) = open.iter().rposition(|id| *id == r.span_id) {
                    open.remove(i);
                }
            }
            self.tracer.tracer.record(r);
        }
    }
}

impl Drop for SpanGuard {
    fn drop(&mut self) {
        self.finish();
    }
}
