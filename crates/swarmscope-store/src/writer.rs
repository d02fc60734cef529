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

use rusqlite::{params, Connection, ErrorCode, TransactionBehavior};
use serde_json::{json, Value};
use swarmscope_model::{id, Span, SpanStatus};
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
}

impl Default for WriterConfig {
    fn default() -> Self {
        Self {
            queue_capacity_spans: 100_000,
            max_batch_spans: 8_192,
        }
    }
}

/// What a committed request changed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WriteOutcome {
    /// Spans stored by this request.
    pub inserted: usize,
    /// Spans that were already stored (same tenant, trace and span id) and so
    /// were left as they were: re-sending is idempotent.
    pub duplicates: usize,
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
}

struct Job {
    spans: Vec<Span>,
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
        });
        let thread_inner = Arc::clone(&inner);
        let max_batch = config.max_batch_spans.max(1);
        let handle = std::thread::Builder::new()
            .name("swarmscope-writer".into())
            .spawn(move || run(conn, receiver, &thread_inner, max_batch))
            .map_err(StoreError::Thread)?;
        *lock(&inner.thread) = Some(handle);
        Ok(Writer { inner })
    }

    /// Queues `spans` and waits until they are committed to disk.
    ///
    /// Returns only after the transaction holding them committed, so a success
    /// means the spans survive the process being killed. Fails at once with
    /// [`WriteError::QueueFull`] when the queue is at capacity.
    pub async fn write(&self, spans: Vec<Span>) -> Result<WriteOutcome, WriteError> {
        let n = spans.len();
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
            Some(sender) => sender.send(Job { spans, ack }).is_ok(),
            None => false,
        };
        if !sent {
            self.inner.queued.fetch_sub(n, Ordering::SeqCst);
            return Err(WriteError::Closed);
        }
        done.await.unwrap_or(Err(WriteError::Closed))
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

fn run(mut conn: Connection, receiver: mpsc::Receiver<Job>, inner: &Inner, max_batch: usize) {
    let mut tenants: HashMap<String, i64> = HashMap::new();
    // `recv` keeps returning queued jobs after every sender is gone, so a
    // close drains the queue before the loop ends.
    while let Ok(first) = receiver.recv() {
        let mut count = first.spans.len();
        let mut jobs = vec![first];
        while count < max_batch {
            match receiver.try_recv() {
                Ok(job) => {
                    count += job.spans.len();
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        let started = Instant::now();
        let result = commit(&mut conn, &mut tenants, &jobs);
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
                    let _ = job.ack.send(Ok(outcome));
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
    start_ns: i64,
    end_ns: i64,
    root: Option<(i64, String)>,
}

impl TraceState {
    fn add(&mut self, span: &Span) {
        self.inserted += 1;
        if span.status == SpanStatus::Error {
            self.errors += 1;
        }
        self.start_ns = self.start_ns.min(span.start_ns);
        self.end_ns = self.end_ns.max(span.end_ns.unwrap_or(span.start_ns));
        if span.parent_span_id.is_none()
            && self
                .root
                .as_ref()
                .is_none_or(|(start, _)| span.start_ns < *start)
        {
            self.root = Some((span.start_ns, span.name.clone()));
        }
    }
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

fn commit(
    conn: &mut Connection,
    tenants: &mut HashMap<String, i64>,
    jobs: &[Job],
) -> rusqlite::Result<Vec<WriteOutcome>> {
    let tx = conn.transaction_with_behavior(TransactionBehavior::Immediate)?;
    let mut traces: HashMap<(i64, Vec<u8>), TraceState> = HashMap::new();
    let mut outcomes = Vec::with_capacity(jobs.len());
    {
        let mut find_trace = tx.prepare_cached(
            "SELECT id, ticket_id, agent_id, vm_id, service FROM traces
             WHERE trace_id = ?1 AND tenant = ?2",
        )?;
        let mut new_trace = tx.prepare_cached(
            "INSERT INTO traces (tenant, trace_id, start_ns, end_ns, ticket_id, agent_id, vm_id, service)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
        )?;
        let mut insert_span = tx.prepare_cached(
            "INSERT OR IGNORE INTO spans (trace, span_id, parent_id, name, kind, status,
                 status_message, start_ns, end_ns, ticket_id, agent_id, vm_id, service,
                 attributes, events)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15)",
        )?;
        for job in jobs {
            let mut outcome = WriteOutcome::default();
            for span in &job.spans {
                let tenant = tenant_ref(&tx, tenants, &span.tenant_id)?;
                let trace = match traces.entry((tenant, id::encode(&span.trace_id))) {
                    Entry::Occupied(e) => e.into_mut(),
                    Entry::Vacant(e) => {
                        let existing = find_trace
                            .query_row(params![e.key().1, tenant], |r| {
                                Ok(TraceState {
                                    id: r.get(0)?,
                                    ticket_id: r.get(1)?,
                                    agent_id: r.get(2)?,
                                    vm_id: r.get(3)?,
                                    service: r.get(4)?,
                                    inserted: 0,
                                    errors: 0,
                                    start_ns: span.start_ns,
                                    end_ns: span.start_ns,
                                    root: None,
                                })
                            })
                            .map(Some)
                            .or_else(|e| match e {
                                rusqlite::Error::QueryReturnedNoRows => Ok(None),
                                other => Err(other),
                            })?;
                        let state = match existing {
                            Some(state) => state,
                            None => {
                                new_trace.execute(params![
                                    tenant,
                                    e.key().1,
                                    span.start_ns,
                                    span.end_ns.unwrap_or(span.start_ns),
                                    span.ticket_id,
                                    span.agent_id,
                                    span.vm_id,
                                    span.service,
                                ])?;
                                TraceState {
                                    id: tx.last_insert_rowid(),
                                    ticket_id: span.ticket_id.clone(),
                                    agent_id: span.agent_id.clone(),
                                    vm_id: span.vm_id.clone(),
                                    service: span.service.clone(),
                                    inserted: 0,
                                    errors: 0,
                                    start_ns: span.start_ns,
                                    end_ns: span.start_ns,
                                    root: None,
                                }
                            }
                        };
                        e.insert(state)
                    }
                };
                let attributes = if span.attributes.is_empty() {
                    None
                } else {
                    Some(Value::Object(span.attributes.clone()).to_string())
                };
                let changed = insert_span.execute(params![
                    trace.id,
                    id::encode(&span.span_id),
                    span.parent_span_id.as_deref().map(id::encode),
                    span.name,
                    span.kind.code(),
                    span.status.code(),
                    span.status_message,
                    span.start_ns,
                    span.end_ns,
                    own_value(&span.ticket_id, &trace.ticket_id),
                    own_value(&span.agent_id, &trace.agent_id),
                    own_value(&span.vm_id, &trace.vm_id),
                    own_value(&span.service, &trace.service),
                    attributes,
                    events_json(span),
                ])?;
                if changed == 1 {
                    outcome.inserted += 1;
                    trace.add(span);
                } else {
                    outcome.duplicates += 1;
                }
            }
            outcomes.push(outcome);
        }
        let mut update = tx.prepare_cached(
            "UPDATE traces SET
                 start_ns = min(start_ns, ?2),
                 end_ns = max(end_ns, ?3),
                 span_count = span_count + ?4,
                 error_count = error_count + ?5,
                 root_name = CASE WHEN ?6 IS NOT NULL AND (root_start_ns IS NULL OR ?7 < root_start_ns)
                                  THEN ?6 ELSE root_name END,
                 root_start_ns = CASE WHEN ?6 IS NOT NULL AND (root_start_ns IS NULL OR ?7 < root_start_ns)
                                  THEN ?7 ELSE root_start_ns END
             WHERE id = ?1",
        )?;
        for t in traces.values().filter(|t| t.inserted > 0) {
            let (root_start, root_name) = match &t.root {
                Some((start, name)) => (Some(*start), Some(name.as_str())),
                None => (None, None),
            };
            update.execute(params![
                t.id, t.start_ns, t.end_ns, t.inserted, t.errors, root_name, root_start
            ])?;
        }
    }
    tx.commit()?;
    Ok(outcomes)
}
