//! The single writer: a dedicated thread that owns the only write connection.
//!
//! Handlers hand it whole requests over a queue bounded in spans. The thread
//! takes everything waiting (up to `max_batch_spans`), writes it in one
//! transaction, commits, and only then acknowledges each request: group
//! commit. One transaction per batch instead of per request is what lets
//! SQLite's single writer keep up with many concurrent agents.

use std::collections::hash_map::Entry;
use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc;
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Instant;

use rusqlite::{params, Connection, ErrorCode, OptionalExtension, TransactionBehavior};
use serde_json::{json, Value};
use swarmscope_model::timestamp::now_nanos;
use swarmscope_model::{id, LogRecord, Span, SpanStatus};
use tokio::sync::oneshot;

use crate::error::{StoreError, WriteError};

/// Sizes of the writer's queue and transactions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriterConfig {
    /// Most spans waiting for the writer; beyond it writes fail with
    /// [`WriteError::QueueFull`] so memory stays bounded under any load.
    pub queue_capacity_spans: usize,
    /// Most spans committed in one transaction.
    pub max_batch_spans: usize,
    /// Most rows in the forwarding backlog (0: no forwarding, no backlog);
    /// past it new items are not queued for forwarding and are counted as
    /// dropped, so a dead backend never fills the disk.
    pub outbox_capacity: usize,
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            queue_capacity_spans: 100_000,
            max_batch_spans: 8_192,
            outbox_capacity: 0,
        }
    }
}

/// What a committed request changed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WriteOutcome {
    /// Spans or log lines stored by this request.
    pub inserted: usize,
    /// Spans or log lines that were already stored and so were left as they
    /// were: re-sending is idempotent.
    pub duplicates: usize,
    /// Open (or collector-closed) spans replaced by their completed version.
    pub completed: usize,
    /// Open spans closed as incomplete.
    pub closed: usize,
    /// Positions, in the request, of the spans this write stored or completed
    /// (not the duplicates): what span-derived metrics may count.
    pub stored: Vec<usize>,
    /// What a prune removed.
    pub pruned: PruneOutcome,
}

/// Whose data [`Writer::prune`] removes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PruneScope {
    /// One tenant's.
    Tenant(String),
    /// Every tenant's except these (which have retention of their own).
    AllExcept(Vec<String>),
}

/// Rows a prune deleted.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PruneOutcome {
    /// Traces (summary rows).
    pub traces: u64,
    /// Their spans.
    pub spans: u64,
    /// Log lines.
    pub logs: u64,
}

/// Which open spans [`Writer::close_open_spans`] closes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CloseScope {
    /// Open spans that ran in this VM (it is gone), optionally only one tenant's.
    Vm {
        /// Only this tenant's spans (`None`: every tenant's).
        tenant_id: Option<String>,
        /// The VM that died.
        vm_id: String,
    },
    /// Open spans of traces that got no data since this time (Unix ns).
    SilentSince(i64),
}

/// Counters of the writer's work since start, for `/metrics` and benchmarks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriterStats {
    /// Spans waiting in the queue now.
    pub queued_spans: usize,
    /// Transactions committed.
    pub batches: u64,
    /// Spans in committed transactions (duplicates included).
    pub spans_committed: u64,
    /// Spans in the most recent transaction.
    pub last_batch_spans: u64,
    /// Total time spent in committed transactions, microseconds.
    pub commit_micros: u64,
    /// Items waiting in the forwarding backlog.
    pub outbox_len: u64,
    /// Items not queued for forwarding because the backlog was full.
    pub outbox_dropped: u64,
}

/// One unit of work for the writer thread.
enum Work {
    Spans(Vec<Span>),
    Logs(Vec<LogRecord>),
    Close(CloseScope, i64),
    Prune {
        scope: PruneScope,
        before_ns: i64,
        max_traces: usize,
    },
    Forwarded {
        target: String,
        seq: i64,
        delete_upto: i64,
    },
}

impl Work {
    /// Its weight against the queue's capacity.
    fn size(&self) -> usize {
        match self {
            Work::Spans(s) => s.len(),
            Work::Logs(l) => l.len(),
            Work::Close(..) | Work::Prune { .. } | Work::Forwarded { .. } => 1,
        }
    }
}

struct Job {
    work: Work,
    ack: oneshot::Sender<Result<WriteOutcome, WriteError>>,
}

struct Inner {
    sender: Mutex<Option<mpsc::Sender<Job>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
    queued: AtomicUsize,
    capacity: usize,
    batches: AtomicU64,
    spans_committed: AtomicU64,
    last_batch_spans: AtomicU64,
    commit_micros: AtomicU64,
    outbox_len: AtomicU64,
    outbox_dropped: AtomicU64,
}

/// The forwarding backlog as the writer thread sees it.
struct Outbox {
    capacity: usize,
    len: usize,
    /// Rows added (+) or removed (-) by the transaction in progress.
    delta: i64,
    dropped: u64,
}

impl Outbox {
    /// Queues a committed item for forwarding, unless full or off.
    fn push(&mut self, tx: &Connection, kind: i64, row: i64) -> rusqlite::Result<()> {
        if self.capacity == 0 {
            return Ok(());
        }
        if (self.len as i64 + self.delta) >= self.capacity as i64 {
            self.dropped += 1;
            return Ok(());
        }
        tx.prepare_cached("INSERT INTO outbox (kind, ref) VALUES (?1, ?2)")?
            .execute(params![kind, row])?;
        self.delta += 1;
        Ok(())
    }
}

/// Handle to the writer thread; cheap to clone.
#[derive(Clone)]
pub struct Writer {
    inner: Arc<Inner>,
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

impl Writer {
    pub(crate) fn start(conn: Connection, config: WriterConfig) -> Result<Writer, StoreError> {
        let (sender, receiver) = mpsc::channel();
        let inner = Arc::new(Inner {
            sender: Mutex::new(Some(sender)),
            thread: Mutex::new(None),
            queued: AtomicUsize::new(0),
            capacity: config.queue_capacity_spans.max(1),
            batches: AtomicU64::new(0),
            spans_committed: AtomicU64::new(0),
            last_batch_spans: AtomicU64::new(0),
            commit_micros: AtomicU64::new(0),
            outbox_len: AtomicU64::new(0),
            outbox_dropped: AtomicU64::new(0),
        });
        let len: i64 = conn.query_row("SELECT count(*) FROM outbox", [], |r| r.get(0))?;
        inner.outbox_len.store(len as u64, Ordering::Relaxed);
        let outbox = Outbox {
            capacity: config.outbox_capacity,
            len: len as usize,
            delta: 0,
            dropped: 0,
        };
        let thread_inner = Arc::clone(&inner);
        let max_batch = config.max_batch_spans.max(1);
        let handle = std::thread::Builder::new()
            .name("swarmscope-writer".into())
            .spawn(move || run(conn, receiver, &thread_inner, max_batch, outbox))
            .map_err(StoreError::Thread)?;
        *lock(&inner.thread) = Some(handle);
        Ok(Writer { inner })
    }

    /// Queues `spans` and waits until they are committed to disk.
    ///
    /// Returns only after the transaction holding them committed, so a success
    /// means the spans survive the process being killed. Fails at once with
    /// [`WriteError::QueueFull`] when the queue is at capacity. A span already
    /// stored is left alone, unless it was open (or closed by the collector as
    /// incomplete) and this copy has an end: then this copy replaces it.
    pub async fn write(&self, spans: Vec<Span>) -> Result<WriteOutcome, WriteError> {
        self.submit(Work::Spans(spans)).await
    }

    /// Queues log lines and waits until they are committed; a line already
    /// stored (same content) is not stored twice.
    pub async fn write_logs(&self, logs: Vec<LogRecord>) -> Result<WriteOutcome, WriteError> {
        self.submit(Work::Logs(logs)).await
    }

    /// Closes open spans in `scope` as `error`, `swarm.incomplete = true`, so a
    /// trace shows where an agent died. `now_ns` is the end given to spans of a
    /// dead VM; spans of silent traces end at their trace's last activity.
    pub async fn close_open_spans(
        &self,
        scope: CloseScope,
        now_ns: i64,
    ) -> Result<WriteOutcome, WriteError> {
        self.submit(Work::Close(scope, now_ns)).await
    }

    /// Deletes up to `max_traces` whole traces of `scope` last written to
    /// before `before_ns` (ingest time, oldest first) with their spans, and
    /// up to 20 times as many log lines timestamped before it, in one small
    /// transaction; then frees up to 2,000 pages (incremental vacuum). Call
    /// it repeatedly until it removes less than asked: each call holds the
    /// writer for only a few milliseconds, so ingest carries on in between.
    pub async fn prune(
        &self,
        scope: PruneScope,
        before_ns: i64,
        max_traces: usize,
    ) -> Result<PruneOutcome, WriteError> {
        self.submit(Work::Prune {
            scope,
            before_ns,
            max_traces,
        })
        .await
        .map(|o| o.pruned)
    }

    /// Records that forwarding target `target` delivered everything up to
    /// backlog position `seq`, and deletes backlog rows up to `delete_upto`
    /// (the position every target has passed).
    pub async fn forwarded(
        &self,
        target: &str,
        seq: i64,
        delete_upto: i64,
    ) -> Result<(), WriteError> {
        self.submit(Work::Forwarded {
            target: target.to_owned(),
            seq,
            delete_upto,
        })
        .await
        .map(|_| ())
    }

    async fn submit(&self, work: Work) -> Result<WriteOutcome, WriteError> {
        let n = work.size();
        if n == 0 {
            return Ok(WriteOutcome::default());
        }
        let before = self.inner.queued.fetch_add(n, Ordering::SeqCst);
        if before > 0 && before + n > self.inner.capacity {
            self.inner.queued.fetch_sub(n, Ordering::SeqCst);
            return Err(WriteError::QueueFull {
                queued: before,
                capacity: self.inner.capacity,
            });
        }
        let (ack, done) = oneshot::channel();
        let sent = match lock(&self.inner.sender).as_ref() {
            Some(sender) => sender.send(Job { work, ack }).is_ok(),
            None => false,
        };
        if !sent {
            self.inner.queued.fetch_sub(n, Ordering::SeqCst);
            return Err(WriteError::Closed);
        }
        done.await.unwrap_or(Err(WriteError::Closed))
    }

    /// Whether the writer thread is running and taking writes: false once it
    /// has stopped, by [`Writer::close`] or by dying.
    pub fn is_alive(&self) -> bool {
        lock(&self.inner.sender).is_some()
            && lock(&self.inner.thread)
                .as_ref()
                .is_some_and(|t| !t.is_finished())
    }

    /// Counters since start.
    pub fn stats(&self) -> WriterStats {
        let i = &self.inner;
        WriterStats {
            queued_spans: i.queued.load(Ordering::Relaxed),
            batches: i.batches.load(Ordering::Relaxed),
            spans_committed: i.spans_committed.load(Ordering::Relaxed),
            last_batch_spans: i.last_batch_spans.load(Ordering::Relaxed),
            commit_micros: i.commit_micros.load(Ordering::Relaxed),
            outbox_len: i.outbox_len.load(Ordering::Relaxed),
            outbox_dropped: i.outbox_dropped.load(Ordering::Relaxed),
        }
    }

    /// Stops taking writes, commits everything already queued, and waits for
    /// the thread to finish. Blocking; call it outside async tasks.
    pub fn close(&self) {
        drop(lock(&self.inner.sender).take());
        let handle = lock(&self.inner.thread).take();
        if let Some(handle) = handle {
            if handle.join().is_err() {
                tracing::error!("writer thread panicked");
            }
        }
    }
}

fn run(
    mut conn: Connection,
    receiver: mpsc::Receiver<Job>,
    inner: &Inner,
    max_batch: usize,
    mut outbox: Outbox,
) {
    let mut tenants: HashMap<String, i64> = HashMap::new();
    // `recv` keeps returning queued jobs after every sender is gone, so a
    // close drains the queue before the loop ends.
    while let Ok(first) = receiver.recv() {
        let mut count = first.work.size();
        let mut jobs = vec![first];
        while count < max_batch {
            match receiver.try_recv() {
                Ok(job) => {
                    count += job.work.size();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        let started = Instant::now();
        outbox.delta = 0;
        let dropped_before = outbox.dropped;
        let result = commit(&mut conn, &mut tenants, &jobs, &mut outbox);
        if result.is_ok() {
            outbox.len = (outbox.len as i64 + outbox.delta).max(0) as usize;
            inner.outbox_len.store(outbox.len as u64, Ordering::Relaxed);
            inner
                .outbox_dropped
                .store(outbox.dropped, Ordering::Relaxed);
        } else {
            outbox.dropped = dropped_before;
        }
        if let Ok(outcomes) = &result {
            if outcomes
                .iter()
                .flatten()
                .any(|o| o.pruned.traces + o.pruned.logs > 0)
            {
                // Give freed pages back to the filesystem, a bounded amount
                // at a time (only on databases created with auto_vacuum).
                if let Err(e) = conn.execute_batch("PRAGMA incremental_vacuum(2000)") {
                    tracing::warn!(error = %e, "incremental vacuum failed");
                }
            }
        }
        let micros = u64::try_from(started.elapsed().as_micros()).unwrap_or(u64::MAX);
        inner.queued.fetch_sub(count, Ordering::SeqCst);
        match result {
            Ok(outcomes) => {
                inner.batches.fetch_add(1, Ordering::Relaxed);
                inner
                    .spans_committed
                    .fetch_add(count as u64, Ordering::Relaxed);
                inner
                    .last_batch_spans
                    .store(count as u64, Ordering::Relaxed);
                inner.commit_micros.fetch_add(micros, Ordering::Relaxed);
                for (job, outcome) in jobs.into_iter().zip(outcomes) {
                    let _ = job.ack.send(outcome);
                }
            }
            Err(e) => {
                // The transaction rolled back: tenants it created are gone too.
                tenants.clear();
                let err = classify(&e);
                tracing::error!(error = %e, spans = count, "ingest batch rolled back");
                for job in jobs {
                    let _ = job.ack.send(Err(err.clone()));
                }
            }
        }
    }
}

fn classify(e: &rusqlite::Error) -> WriteError {
    match e.sqlite_error_code() {
        Some(ErrorCode::DiskFull) => WriteError::DiskFull(e.to_string()),
        _ => WriteError::Commit(e.to_string()),
    }
}

/// Changes one batch makes to one trace's summary row.
struct TraceState {
    id: i64,
    ticket_id: Option<String>,
    agent_id: Option<String>,
    vm_id: Option<String>,
    service: Option<String>,
    inserted: i64,
    errors: i64,
    /// LLM cost added by this batch (`swarm.cost_usd` of new spans).
    cost_usd: f64,
    start_ns: i64,
    end_ns: i64,
    root: Option<(i64, String)>,
    touched: bool,
    /// Recompute start and end from the spans (a closure was replaced).
    recount_bounds: bool,
}

impl TraceState {
    fn new(id: i64, first: &Span, ids: [Option<String>; 4]) -> TraceState {
        let [ticket_id, agent_id, vm_id, service] = ids;
        TraceState {
            id,
            ticket_id,
            agent_id,
            vm_id,
            service,
            inserted: 0,
            errors: 0,
            cost_usd: 0.0,
            start_ns: first.start_ns,
            end_ns: first.start_ns,
            root: None,
            touched: false,
            recount_bounds: false,
        }
    }

    /// A stored open span was replaced by its completed version.
    fn complete(&mut self, span: &Span, old_status: SpanStatus, old_cost: f64) {
        self.touched = true;
        self.cost_usd += span_cost(span) - old_cost;
        self.errors += i64::from(span.status == SpanStatus::Error)
            - i64::from(old_status == SpanStatus::Error);
        self.end_ns = self.end_ns.max(span.end_ns.unwrap_or(span.start_ns));
        self.note_root(span);
    }

    /// Remembers `span` as the trace's root when it is the earliest parentless
    /// span seen; a completion that renames a root replaces the stored name.
    fn note_root(&mut self, span: &Span) {
        if span.parent_span_id.is_none()
            && self
                .root
                .as_ref()
                .is_none_or(|(start, _)| span.start_ns < *start)
        {
            self.root = Some((span.start_ns, span.name.clone()));
        }
    }

    fn add(&mut self, span: &Span) {
        self.touched = true;
        self.inserted += 1;
        self.cost_usd += span_cost(span);
        if span.status == SpanStatus::Error {
            self.errors += 1;
        }
        self.start_ns = self.start_ns.min(span.start_ns);
        self.end_ns = self.end_ns.max(span.end_ns.unwrap_or(span.start_ns));
        self.note_root(span);
    }
}

/// The LLM cost the collector priced onto a span, if any.
fn span_cost(span: &Span) -> f64 {
    span.attributes
        .get("swarm.cost_usd")
        .and_then(Value::as_f64)
        .filter(|c| c.is_finite())
        .unwrap_or(0.0)
}

/// A span's own value of a correlation column, stored only when it differs
/// from its trace's: NULL means "as the trace", '' means "none".
fn own_value<'a>(span: &'a Option<String>, trace: &Option<String>) -> Option<&'a str> {
    if span == trace {
        None
    } else {
        Some(span.as_deref().unwrap_or(""))
    }
}

/// Events as stored: `[{"n": name, "t": unix_ns, "a": {attributes}}]`.
fn events_json(span: &Span) -> Option<String> {
    if span.events.is_empty() {
        return None;
    }
    let events: Vec<Value> = span
        .events
        .iter()
        .map(|e| {
            if e.attributes.is_empty() {
                json!({"n": e.name, "t": e.time_ns})
            } else {
                json!({"n": e.name, "t": e.time_ns, "a": e.attributes})
            }
        })
        .collect();
    Some(Value::Array(events).to_string())
}

fn tenant_ref(
    conn: &Connection,
    cache: &mut HashMap<String, i64>,
    name: &str,
) -> rusqlite::Result<i64> {
    if let Some(&id) = cache.get(name) {
        return Ok(id);
    }
    conn.prepare_cached("INSERT OR IGNORE INTO tenants (name) VALUES (?1)")?
        .execute([name])?;
    let id: i64 = conn
        .prepare_cached("SELECT id FROM tenants WHERE name = ?1")?
        .query_row([name], |r| r.get(0))?;
    cache.insert(name.to_owned(), id);
    Ok(id)
}

/// Writes one batch in one transaction. Each job runs inside its own
/// savepoint: a job that fails (bad data that got past validation, a
/// constraint) is rolled back alone and answered with its error, while the
/// other jobs of the batch commit and are acknowledged. Only a failure of the
/// transaction itself (the commit, a full disk) fails every job.
fn commit(
    conn: &mut Connection,
    tenants: &mut HashMap<String, i64>,
    jobs: &[Job],
    outbox: &mut Outbox,
) -> rusqlite::Result<Vec<Result<WriteOutcome, WriteError>>> {
    let mut tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let now = now_nanos();
    // Traces that received data earlier in this transaction (their
    // `updated_ns` is written with it): sweeps and prunes leave them alone.
    let mut active: Vec<i64> = Vec::new();
    let mut outcomes = Vec::with_capacity(jobs.len());
    for job in jobs {
        let (delta, dropped) = (outbox.delta, outbox.dropped);
        let savepoint = tx.savepoint()?;
        match write_job(&savepoint, tenants, &job.work, now, outbox, &active) {
            Ok((outcome, touched)) => {
                savepoint.commit()?;
                active.extend(touched);
                outcomes.push(Ok(outcome));
            }
            Err(e) => {
                // Dropping the savepoint rolls its writes back; forget what
                // the job did to the caches and counters too.
                drop(savepoint);
                tenants.clear();
                outbox.delta = delta;
                outbox.dropped = dropped;
                // A full disk, or an error after which SQLite rolled the
                // whole transaction back itself (I/O, memory, corruption):
                // the batch fails whole, nothing of it is committed.
                if matches!(e.sqlite_error_code(), Some(ErrorCode::DiskFull)) || tx.is_autocommit()
                {
                    return Err(e);
                }
                tracing::error!(error = %e, "one ingest job rolled back; the rest of its batch goes on");
                outcomes.push(Err(classify(&e)));
            }
        }
    }
    tx.commit()?;
    Ok(outcomes)
}

/// One job's writes, inside its savepoint; returns its outcome and the
/// traces it wrote to.
fn write_job(
    tx: &Connection,
    tenants: &mut HashMap<String, i64>,
    work: &Work,
    now: i64,
    outbox: &mut Outbox,
    active: &[i64],
) -> rusqlite::Result<(WriteOutcome, Vec<i64>)> {
    let outcome = match work {
        Work::Spans(spans) => {
            let mut traces: HashMap<(i64, Vec<u8>), TraceState> = HashMap::new();
            let outcome = write_spans(tx, tenants, &mut traces, spans, now, outbox)?;
            update_summaries(tx, &traces, now)?;
            return Ok((outcome, traces.values().map(|t| t.id).collect()));
        }
        Work::Logs(logs) => write_logs(tx, tenants, logs, outbox)?,
        Work::Forwarded {
            target,
            seq,
            delete_upto,
        } => {
            tx.prepare_cached(
                "INSERT INTO forward_cursors (name, seq) VALUES (?1, ?2)
                 ON CONFLICT(name) DO UPDATE SET seq = max(seq, excluded.seq)",
            )?
            .execute(params![target, seq])?;
            let deleted = tx
                .prepare_cached("DELETE FROM outbox WHERE seq <= ?1")?
                .execute([delete_upto])?;
            outbox.delta -= deleted as i64;
            WriteOutcome::default()
        }
        Work::Close(scope, end_ns) => close_spans(tx, scope, *end_ns, active)?,
        // Traces this batch wrote to are left for the next prune.
        Work::Prune {
            scope,
            before_ns,
            max_traces,
        } => prune(tx, scope, *before_ns, *max_traces, active)?,
    };
    Ok((outcome, Vec::new()))
}

/// Folds what a job did to each trace into its summary row.
fn update_summaries(
    tx: &Connection,
    traces: &HashMap<(i64, Vec<u8>), TraceState>,
    now: i64,
) -> rusqlite::Result<()> {
    let mut update = tx.prepare_cached(
        "UPDATE traces SET
             start_ns = min(start_ns, ?2),
             end_ns = max(end_ns, ?3),
             span_count = span_count + ?4,
             error_count = error_count + ?5,
             cost_usd = cost_usd + ?9,
             root_name = CASE WHEN ?6 IS NOT NULL AND (root_start_ns IS NULL OR ?7 <= root_start_ns)
                              THEN ?6 ELSE root_name END,
             root_start_ns = CASE WHEN ?6 IS NOT NULL AND (root_start_ns IS NULL OR ?7 <= root_start_ns)
                              THEN ?7 ELSE root_start_ns END,
             updated_ns = ?8
         WHERE id = ?1",
    )?;
    for t in traces.values().filter(|t| t.touched) {
        let (root_start, root_name) = match &t.root {
            Some((start, name)) => (Some(*start), Some(name.as_str())),
            None => (None, None),
        };
        update.execute(params![
            t.id, t.start_ns, t.end_ns, t.inserted, t.errors, root_name, root_start, now,
            t.cost_usd
        ])?;
    }
    let mut recount = tx.prepare_cached(
        "UPDATE traces SET
             start_ns = (SELECT min(start_ns) FROM spans WHERE trace = ?1),
             end_ns = (SELECT max(coalesce(end_ns, start_ns)) FROM spans WHERE trace = ?1)
         WHERE id = ?1",
    )?;
    for t in traces.values().filter(|t| t.recount_bounds) {
        recount.execute([t.id])?;
    }
    Ok(())
}

fn trace_state<'a>(
    tx: &Connection,
    traces: &'a mut HashMap<(i64, Vec<u8>), TraceState>,
    tenant: i64,
    span: &Span,
    now: i64,
) -> rusqlite::Result<&'a mut TraceState> {
    match traces.entry((tenant, id::encode(&span.trace_id))) {
        Entry::Occupied(e) => Ok(e.into_mut()),
        Entry::Vacant(e) => {
            let existing = tx
                .prepare_cached(
                    "SELECT id, ticket_id, agent_id, vm_id, service FROM traces
                     WHERE trace_id = ?1 AND tenant = ?2",
                )?
                .query_row(params![e.key().1, tenant], |r| {
                    Ok(TraceState::new(
                        r.get(0)?,
                        span,
                        [r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?],
                    ))
                })
                .optional()?;
            let state = match existing {
                Some(state) => state,
                None => {
                    tx.prepare_cached(
                        "INSERT INTO traces (tenant, trace_id, start_ns, end_ns, ticket_id, agent_id,
                             vm_id, service, updated_ns)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                    )?
                    .execute(params![
                        tenant,
                        e.key().1,
                        span.start_ns,
                        span.end_ns.unwrap_or(span.start_ns),
                        span.ticket_id,
                        span.agent_id,
                        span.vm_id,
                        span.service,
                        now,
                    ])?;
                    TraceState::new(
                        tx.last_insert_rowid(),
                        span,
                        [
                            span.ticket_id.clone(),
                            span.agent_id.clone(),
                            span.vm_id.clone(),
                            span.service.clone(),
                        ],
                    )
                }
            };
            Ok(e.insert(state))
        }
    }
}

fn write_spans(
    tx: &Connection,
    tenants: &mut HashMap<String, i64>,
    traces: &mut HashMap<(i64, Vec<u8>), TraceState>,
    spans: &[Span],
    now: i64,
    outbox: &mut Outbox,
) -> rusqlite::Result<WriteOutcome> {
    let mut outcome = WriteOutcome::default();
    let mut insert_span = tx.prepare_cached(
        "INSERT OR IGNORE INTO spans (trace, span_id, parent_id, name, kind, status,
             status_message, start_ns, end_ns, ticket_id, agent_id, vm_id, service,
             attributes, events)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
    )?;
    for (index, span) in spans.iter().enumerate() {
        let tenant = tenant_ref(tx, tenants, &span.tenant_id)?;
        let trace = trace_state(tx, traces, tenant, span, now)?;
        let attributes = if span.attributes.is_empty() {
            None
        } else {
            Some(Value::Object(span.attributes.clone()).to_string())
        };
        let span_key = id::encode(&span.span_id);
        let parent_key = span.parent_span_id.as_deref().map(id::encode);
        let events = events_json(span);
        let (ticket, agent, vm, service) = (
            own_value(&span.ticket_id, &trace.ticket_id),
            own_value(&span.agent_id, &trace.agent_id),
            own_value(&span.vm_id, &trace.vm_id),
            own_value(&span.service, &trace.service),
        );
        // The 15 stored columns, in the order both statements below name them.
        let columns: [&dyn rusqlite::ToSql; 15] = [
            &trace.id,
            &span_key,
            &parent_key,
            &span.name,
            &span.kind.code(),
            &span.status.code(),
            &span.status_message,
            &span.start_ns,
            &span.end_ns,
            &ticket,
            &agent,
            &vm,
            &service,
            &attributes,
            &events,
        ];
        if insert_span.execute(&columns[..])? == 1 {
            if span.end_ns.is_some() {
                outbox.push(tx, 0, tx.last_insert_rowid())?;
            }
            outcome.inserted += 1;
            outcome.stored.push(index);
            trace.add(span);
            continue;
        }
        // Already stored. Replace it only when it is open (or was closed by the
        // collector) and this copy has really ended.
        let replaceable = if span.end_ns.is_some() {
            tx.prepare_cached(
                "SELECT rowid, status, incomplete,
                        CASE WHEN json_type(attributes, '$.\"swarm.cost_usd\"') IN ('integer', 'real')
                             THEN json_extract(attributes, '$.\"swarm.cost_usd\"') ELSE 0 END
                 FROM spans
                 WHERE trace = ?1 AND span_id = ?2 AND (end_ns IS NULL OR incomplete = 1)",
            )?
            .query_row(params![trace.id, span_key], |r| {
                Ok((
                    r.get::<_, i64>(0)?,
                    r.get::<_, i64>(1)?,
                    r.get::<_, bool>(2)?,
                    r.get::<_, f64>(3)?,
                ))
            })
            .optional()?
        } else {
            None
        };
        match replaceable {
            Some((rowid, old_status, was_closed, old_cost)) => {
                // The collector's closure moved the trace's end to the closing
                // time; the genuine end may be earlier, so recount the bounds.
                trace.recount_bounds |= was_closed;
                let mut with_rowid: Vec<&dyn rusqlite::ToSql> = columns.to_vec();
                with_rowid.push(&rowid);
                tx.prepare_cached(
                    "UPDATE spans SET trace = ?1, span_id = ?2, parent_id = ?3, name = ?4, kind = ?5,
                         status = ?6, status_message = ?7, start_ns = ?8, end_ns = ?9, ticket_id = ?10,
                         agent_id = ?11, vm_id = ?12, service = ?13, attributes = ?14, events = ?15,
                         incomplete = 0
                     WHERE rowid = ?16",
                )?
                .execute(&with_rowid[..])?;
                outbox.push(tx, 0, rowid)?;
                trace.complete(span, SpanStatus::from_code(old_status), old_cost);
                outcome.completed += 1;
                outcome.stored.push(index);
            }
            None => outcome.duplicates += 1,
        }
    }
    Ok(outcome)
}

/// SQL condition and parameters selecting the tenants of a scope, for a
/// table whose tenant column is `column`.
fn tenant_condition(scope: &PruneScope, column: &str) -> (String, Vec<String>) {
    match scope {
        PruneScope::Tenant(t) => (
            format!("{column} = (SELECT id FROM tenants WHERE name = ?)"),
            vec![t.clone()],
        ),
        PruneScope::AllExcept(names) if names.is_empty() => ("1 = 1".to_owned(), Vec::new()),
        PruneScope::AllExcept(names) => (
            format!(
                "{column} NOT IN (SELECT id FROM tenants WHERE name IN ({}))",
                vec!["?"; names.len()].join(", ")
            ),
            names.clone(),
        ),
    }
}

fn prune(
    tx: &Connection,
    scope: &PruneScope,
    before_ns: i64,
    max_traces: usize,
    active: &[i64],
) -> rusqlite::Result<WriteOutcome> {
    let mut pruned = PruneOutcome::default();
    let (cond, names) = tenant_condition(scope, "tenant");
    let mut args: Vec<rusqlite::types::Value> = names
        .iter()
        .map(|n| rusqlite::types::Value::Text(n.clone()))
        .collect();
    args.push(rusqlite::types::Value::Integer(before_ns));
    args.push(rusqlite::types::Value::Integer(max_traces as i64));
    let ids: Vec<i64> = tx
        .prepare_cached(&format!(
            "SELECT id FROM traces WHERE {cond} AND updated_ns < ?
             ORDER BY updated_ns LIMIT ?"
        ))?
        .query_map(rusqlite::params_from_iter(&args), |r| r.get(0))?
        .collect::<Result<_, _>>()?;
    for id in ids.into_iter().filter(|id| !active.contains(id)) {
        pruned.spans += tx
            .prepare_cached("DELETE FROM spans WHERE trace = ?1")?
            .execute([id])? as u64;
        pruned.traces += tx
            .prepare_cached("DELETE FROM traces WHERE id = ?1")?
            .execute([id])? as u64;
    }
    let mut args: Vec<rusqlite::types::Value> = names
        .into_iter()
        .map(rusqlite::types::Value::Text)
        .collect();
    args.push(rusqlite::types::Value::Integer(before_ns));
    args.push(rusqlite::types::Value::Integer((max_traces * 20) as i64));
    pruned.logs = tx
        .prepare_cached(&format!(
            "DELETE FROM logs WHERE rowid IN
               (SELECT rowid FROM logs WHERE {cond} AND time_ns < ? LIMIT ?)"
        ))?
        .execute(rusqlite::params_from_iter(&args))? as u64;
    Ok(WriteOutcome {
        pruned,
        ..WriteOutcome::default()
    })
}

fn write_logs(
    tx: &Connection,
    tenants: &mut HashMap<String, i64>,
    logs: &[LogRecord],
    outbox: &mut Outbox,
) -> rusqlite::Result<WriteOutcome> {
    let mut outcome = WriteOutcome::default();
    let mut insert = tx.prepare_cached(
        "INSERT OR IGNORE INTO logs (tenant, time_ns, fingerprint, level, message, trace_id,
             span_id, request_id, ticket_id, agent_id, duration_ms, metadata)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
    )?;
    for log in logs {
        let tenant = tenant_ref(tx, tenants, &log.tenant_id)?;
        let metadata = if log.metadata.is_empty() {
            None
        } else {
            Some(Value::Object(log.metadata.clone()).to_string())
        };
        let changed = insert.execute(params![
            tenant,
            log.time_ns,
            log.fingerprint(),
            log.level.code(),
            log.message,
            log.trace_id.as_deref().map(id::encode),
            log.span_id.as_deref().map(id::encode),
            log.request_id,
            log.ticket_id,
            log.agent_id,
            log.duration_ms,
            metadata,
        ])?;
        if changed == 1 {
            outbox.push(tx, 1, tx.last_insert_rowid())?;
            outcome.inserted += 1;
        } else {
            outcome.duplicates += 1;
        }
    }
    Ok(outcome)
}

/// The query finding the open spans a closure of `scope` closes: rowid,
/// trace, status, start, attributes and the trace's end.
fn open_spans_query(scope: &CloseScope) -> (String, Vec<rusqlite::types::Value>) {
    // A VM's open spans come from two indexes: spans naming the VM
    // themselves (spans_open_by_vm), and the open spans (spans_open) of
    // traces naming it (traces_by_vm) that do not name another.
    match scope {
        CloseScope::Vm { tenant_id, vm_id } => {
            let tenant = if tenant_id.is_some() {
                " AND t.tenant = (SELECT id FROM tenants WHERE name = ?2)"
            } else {
                ""
            };
            let sql = format!(
                "SELECT s.rowid, s.trace, s.status, s.start_ns, s.attributes, t.end_ns
                 FROM spans s JOIN traces t ON t.id = s.trace
                 WHERE s.end_ns IS NULL AND s.vm_id = ?1{tenant}
                 UNION ALL
                 SELECT s.rowid, s.trace, s.status, s.start_ns, s.attributes, t.end_ns
                 FROM traces t JOIN spans s ON s.trace = t.id
                 WHERE t.vm_id = ?1 AND s.end_ns IS NULL AND s.vm_id IS NULL{tenant}"
            );
            let mut params = vec![rusqlite::types::Value::Text(vm_id.clone())];
            if let Some(tenant) = tenant_id {
                params.push(rusqlite::types::Value::Text(tenant.clone()));
            }
            (sql, params)
        }
        CloseScope::SilentSince(cutoff) => (
            "SELECT s.rowid, s.trace, s.status, s.start_ns, s.attributes, t.end_ns
             FROM spans s JOIN traces t ON t.id = s.trace
             WHERE s.end_ns IS NULL AND t.updated_ns < ?1"
                .to_owned(),
            vec![rusqlite::types::Value::Integer(*cutoff)],
        ),
    }
}

/// `active`: traces that received data earlier in this same transaction,
/// whose `updated_ns` is not written yet; a silence sweep leaves them alone.
fn close_spans(
    tx: &Connection,
    scope: &CloseScope,
    now_ns: i64,
    active: &[i64],
) -> rusqlite::Result<WriteOutcome> {
    let (sql, params) = open_spans_query(scope);
    type OpenSpan = (i64, i64, i64, i64, Option<String>, i64);
    let silent = matches!(scope, CloseScope::SilentSince(_));
    let open: Vec<OpenSpan> = tx
        .prepare(&sql)?
        .query_map(rusqlite::params_from_iter(params), |r| {
            Ok((
                r.get(0)?,
                r.get(1)?,
                r.get(2)?,
                r.get(3)?,
                r.get(4)?,
                r.get(5)?,
            ))
        })?
        .collect::<Result<Vec<OpenSpan>, _>>()?
        .into_iter()
        // A trace that got data earlier in this transaction is not silent.
        .filter(|row| !(silent && active.contains(&row.1)))
        .collect();
    let reason = match scope {
        CloseScope::Vm { vm_id, .. } => format!("span never ended: vm {vm_id} terminated"),
        CloseScope::SilentSince(_) => "span never ended: its trace went silent".to_owned(),
    };
    let mut update = tx.prepare_cached(
        "UPDATE spans SET end_ns = ?2, status = 2, status_message = ?3, attributes = ?4, incomplete = 1
         WHERE rowid = ?1",
    )?;
    let mut touch = tx.prepare_cached(
        "UPDATE traces SET end_ns = max(end_ns, ?2), error_count = error_count + ?3 WHERE id = ?1",
    )?;
    for (rowid, trace, status, start_ns, attributes, trace_end) in &open {
        let mut attrs = attributes
            .as_deref()
            .and_then(|a| serde_json::from_str::<serde_json::Map<String, Value>>(a).ok())
            .unwrap_or_default();
        attrs.insert("swarm.incomplete".into(), Value::Bool(true));
        let end = match scope {
            CloseScope::Vm { .. } => now_ns.max(*start_ns),
            CloseScope::SilentSince(_) => (*trace_end).max(*start_ns),
        };
        update.execute(params![
            rowid,
            end,
            reason,
            Value::Object(attrs).to_string()
        ])?;
        let new_error = i64::from(SpanStatus::from_code(*status) != SpanStatus::Error);
        touch.execute(params![trace, end, new_error])?;
    }
    Ok(WriteOutcome {
        closed: open.len(),
        ..WriteOutcome::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dead VM's open spans are found through the VM indexes, never by
    /// walking every open span of every tenant.
    #[test]
    fn a_vms_open_spans_are_searched_by_vm_id() {
        let dir = tempfile::tempdir().expect("tempdir");
        let conn = crate::schema::open_writer_connection(&dir.path().join("t.db")).expect("open");
        for tenant_id in [None, Some("acme".to_owned())] {
            let scope = CloseScope::Vm {
                tenant_id,
                vm_id: "vm-1".into(),
            };
            let (sql, params) = open_spans_query(&scope);
            let plan: Vec<String> = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .expect("explain")
                .query_map(rusqlite::params_from_iter(params), |r| {
                    r.get::<_, String>(3)
                })
                .expect("plan")
                .collect::<Result<_, _>>()
                .expect("rows");
            let uses = |index: &str| plan.iter().any(|step| step.contains(index));
            assert!(uses("spans_open_by_vm"), "{plan:#?}");
            assert!(uses("traces_by_vm"), "{plan:#?}");
            assert!(
                !plan.iter().any(|step| step.starts_with("SCAN")),
                "{plan:#?}"
            );
        }
    }
}
