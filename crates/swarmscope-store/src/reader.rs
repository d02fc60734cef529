//! The read side: a small pool of read-only connections. In WAL mode readers
//! see the last committed state and never wait for the writer. Every method
//! blocks; async callers run them with `spawn_blocking`.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use rusqlite::types::Value as SqlValue;
use rusqlite::{params_from_iter, Connection, OptionalExtension, Row};
use serde_json::{Map, Value};
use swarmscope_model::{id, LogLevel, LogRecord, Span, SpanEvent, SpanKind, SpanStatus};

use crate::error::StoreError;
use crate::query::{
    Cursor, LogFilter, LogPage, StatusFilter, TraceDetail, TraceFilter, TraceLookup, TracePage,
    TraceSummary, TRACE_LOG_LIMIT, TRACE_SPAN_LIMIT,
};
use crate::schema::open_read_connection;

/// Read connections open at most (and kept idle for reuse).
const POOL_SIZE: usize = 8;

/// Size and content counts of the database.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StoreStats {
    /// Tenants seen.
    pub tenants: i64,
    /// Traces stored.
    pub traces: i64,
    /// Spans stored.
    pub spans: i64,
    /// Log lines stored (the highest row id: exact until retention deletes).
    pub logs: i64,
    /// Bytes used by the main database file (pages in use × page size).
    pub db_bytes: i64,
    /// Bytes in the write-ahead log file.
    pub wal_bytes: i64,
}

/// Read access to the store; cheap to clone.
#[derive(Clone)]
pub struct Reader {
    inner: Arc<ReaderInner>,
    budget: Option<Arc<ReadBudget>>,
}

/// How long a read may run, and a flag that ends it early (its client went
/// away). SQLite checks it every few thousand steps of a query and stops the
/// query when it is spent, so an abandoned or runaway search frees its core
/// and its connection.
#[derive(Debug)]
pub struct ReadBudget {
    deadline: std::time::Instant,
    cancelled: std::sync::atomic::AtomicBool,
}

impl ReadBudget {
    /// A budget of `limit` from now.
    pub fn new(limit: std::time::Duration) -> Arc<ReadBudget> {
        Arc::new(ReadBudget {
            deadline: std::time::Instant::now() + limit,
            cancelled: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Ends the reads under this budget at their next check.
    pub fn cancel(&self) {
        self.cancelled
            .store(true, std::sync::atomic::Ordering::Relaxed);
    }

    /// Whether the reads under this budget must stop.
    pub fn spent(&self) -> bool {
        self.cancelled.load(std::sync::atomic::Ordering::Relaxed)
            || std::time::Instant::now() >= self.deadline
    }
}

struct ReaderInner {
    path: PathBuf,
    idle: Mutex<Vec<Connection>>,
    /// Connections in use; at most [`POOL_SIZE`], so concurrent reads wait
    /// instead of opening a connection (and its page cache) each.
    in_use: Mutex<usize>,
    freed: std::sync::Condvar,
}

/// Items of the forwarding backlog, read in order.
#[derive(Debug, Clone, PartialEq)]
pub struct ForwardBatch {
    /// Position of the last item read: the target's new cursor once sent.
    pub last_seq: i64,
    /// Ended spans.
    pub spans: Vec<Span>,
    /// Log lines.
    pub logs: Vec<LogRecord>,
}

/// Gives a connection slot back when a read ends, even by panic.
struct Slot<'a>(&'a ReaderInner);

impl Drop for Slot<'_> {
    fn drop(&mut self) {
        *self.0.in_use.lock().unwrap_or_else(|p| p.into_inner()) -= 1;
        self.0.freed.notify_one();
    }
}

const SUMMARY_COLUMNS: &str = "t.id, tn.name, t.trace_id, t.root_name, t.start_ns, t.end_ns, \
     t.span_count, t.error_count, t.ticket_id, t.agent_id, t.vm_id, t.service, t.cost_usd, t.updated_ns";

fn summary_from_row(row: &Row<'_>) -> rusqlite::Result<(i64, TraceSummary)> {
    let trace_id: Vec<u8> = row.get(2)?;
    Ok((
        row.get(0)?,
        TraceSummary {
            tenant_id: row.get(1)?,
            trace_id: id::decode(&trace_id).unwrap_or_default(),
            root_name: row.get(3)?,
            start_ns: row.get(4)?,
            end_ns: row.get(5)?,
            span_count: row.get(6)?,
            error_count: row.get(7)?,
            ticket_id: row.get(8)?,
            agent_id: row.get(9)?,
            vm_id: row.get(10)?,
            service: row.get(11)?,
            cost_usd: row.get(12)?,
            updated_ns: row.get(13)?,
        },
    ))
}

/// Undoes the writer's "NULL means as the trace, '' means none" encoding.
fn inherit(own: Option<String>, trace: &Option<String>) -> Option<String> {
    match own {
        None => trace.clone(),
        Some(s) if s.is_empty() => None,
        Some(s) => Some(s),
    }
}

fn parse_object(text: Option<String>, what: &str) -> Result<Map<String, Value>, StoreError> {
    match text {
        None => Ok(Map::new()),
        Some(t) => match serde_json::from_str(&t) {
            Ok(Value::Object(m)) => Ok(m),
            _ => Err(StoreError::Corrupt(format!("{what} is not a JSON object"))),
        },
    }
}

fn parse_events(text: Option<String>) -> Result<Vec<SpanEvent>, StoreError> {
    let Some(text) = text else {
        return Ok(Vec::new());
    };
    let corrupt = || StoreError::Corrupt("events are not a JSON array".into());
    let Ok(Value::Array(items)) = serde_json::from_str::<Value>(&text) else {
        return Err(corrupt());
    };
    items
        .into_iter()
        .map(|item| {
            let Value::Object(mut m) = item else {
                return Err(corrupt());
            };
            let name = match m.remove("n") {
                Some(Value::String(s)) => s,
                _ => return Err(corrupt()),
            };
            let time_ns = m.get("t").and_then(Value::as_i64).ok_or_else(corrupt)?;
            let attributes = match m.remove("a") {
                Some(Value::Object(a)) => a,
                _ => Map::new(),
            };
            Ok(SpanEvent {
                name,
                time_ns,
                attributes,
            })
        })
        .collect()
}

impl Reader {
    pub(crate) fn new(path: PathBuf) -> Reader {
        Reader {
            inner: Arc::new(ReaderInner {
                path,
                idle: Mutex::new(Vec::new()),
                in_use: Mutex::new(0),
                freed: std::sync::Condvar::new(),
            }),
            budget: None,
        }
    }

    /// This reader, with every read under `budget`: a read that waits for a
    /// connection or runs past it fails with [`StoreError::Interrupted`].
    pub fn with_budget(&self, budget: Arc<ReadBudget>) -> Reader {
        Reader {
            inner: Arc::clone(&self.inner),
            budget: Some(budget),
        }
    }

    fn with_conn<T>(
        &self,
        f: impl FnOnce(&Connection) -> Result<T, StoreError>,
    ) -> Result<T, StoreError> {
        let _slot = {
            let mut n = self.inner.in_use.lock().unwrap_or_else(|p| p.into_inner());
            while *n >= POOL_SIZE {
                n = match &self.budget {
                    None => self.inner.freed.wait(n).unwrap_or_else(|p| p.into_inner()),
                    Some(b) => {
                        if b.spent() {
                            return Err(StoreError::Interrupted);
                        }
                        let wait = std::time::Duration::from_millis(50);
                        self.inner
                            .freed
                            .wait_timeout(n, wait)
                            .unwrap_or_else(|p| p.into_inner())
                            .0
                    }
                };
            }
            *n += 1;
            Slot(&self.inner)
        };
        if self.budget.as_ref().is_some_and(|b| b.spent()) {
            return Err(StoreError::Interrupted);
        }
        let pooled = self
            .inner
            .idle
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .pop();
        let conn = match pooled {
            Some(c) => c,
            None => open_read_connection(&self.inner.path)?,
        };
        if let Some(b) = &self.budget {
            let b = Arc::clone(b);
            conn.progress_handler(2_000, Some(move || b.spent()));
        }
        let result = f(&conn);
        if self.budget.is_some() {
            conn.progress_handler(0, None::<fn() -> bool>);
        }
        let interrupted = |e: &rusqlite::Error| {
            e.sqlite_error_code() == Some(rusqlite::ErrorCode::OperationInterrupted)
        };
        let result = match result {
            Err(StoreError::Sqlite(e)) if interrupted(&e) => Err(StoreError::Interrupted),
            other => other,
        };
        let mut idle = self.inner.idle.lock().unwrap_or_else(|p| p.into_inner());
        if idle.len() < POOL_SIZE {
            idle.push(conn);
        }
        result
    }

    /// Looks a trace up by id. With `tenant_id`, only that tenant's trace is
    /// visible: another tenant's trace reads as [`TraceLookup::NotFound`].
    pub fn get_trace(
        &self,
        tenant_id: Option<&str>,
        trace_id: &str,
    ) -> Result<TraceLookup, StoreError> {
        self.with_conn(|conn| {
            let key = id::encode(trace_id);
            let mut sql = format!(
                "SELECT {SUMMARY_COLUMNS} FROM traces t JOIN tenants tn ON tn.id = t.tenant
                 WHERE t.trace_id = ?1"
            );
            let mut params = vec![SqlValue::Blob(key)];
            if let Some(tenant) = tenant_id {
                sql.push_str(" AND tn.name = ?2");
                params.push(SqlValue::Text(tenant.to_owned()));
            }
            let mut stmt = conn.prepare_cached(&sql)?;
            let found = stmt
                .query_map(params_from_iter(params), summary_from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            let (row, summary) = match found.len() {
                0 => return Ok(TraceLookup::NotFound),
                1 => found
                    .into_iter()
                    .next()
                    .ok_or_else(|| StoreError::Corrupt("lost row".into()))?,
                _ => {
                    return Ok(TraceLookup::Ambiguous(
                        found.into_iter().map(|(_, s)| s.tenant_id).collect(),
                    ))
                }
            };
            let (spans, truncated) = load_spans(conn, row, &summary)?;
            let logs = query_logs(
                conn,
                &LogFilter {
                    tenant_id: Some(summary.tenant_id.clone()),
                    trace_id: Some(summary.trace_id.clone()),
                    ascending: true,
                    limit: TRACE_LOG_LIMIT,
                    ..LogFilter::default()
                },
            )?
            .logs;
            Ok(TraceLookup::Found(Box::new(TraceDetail {
                summary,
                spans,
                truncated,
                logs,
            })))
        })
    }

    /// Searches trace summaries, newest first.
    pub fn list_traces(&self, filter: &TraceFilter) -> Result<TracePage, StoreError> {
        self.with_conn(|conn| {
            let mut sql = format!(
                "SELECT {SUMMARY_COLUMNS} FROM traces t JOIN tenants tn ON tn.id = t.tenant WHERE 1 = 1"
            );
            let mut params: Vec<SqlValue> = Vec::new();
            let mut push = |sql: &mut String, clause: &str, value: SqlValue| {
                params.push(value);
                sql.push_str(&clause.replace('?', &format!("?{}", params.len())));
            };
            if let Some(t) = &filter.tenant_id {
                push(&mut sql, " AND t.tenant = (SELECT id FROM tenants WHERE name = ?)", SqlValue::Text(t.clone()));
            }
            if let Some(v) = &filter.ticket_id {
                push(&mut sql, " AND t.ticket_id = ?", SqlValue::Text(v.clone()));
            }
            if let Some(v) = &filter.agent_id {
                push(&mut sql, " AND t.agent_id = ?", SqlValue::Text(v.clone()));
            }
            match filter.status {
                Some(StatusFilter::Error) => sql.push_str(" AND t.error_count > 0"),
                Some(StatusFilter::Ok) => sql.push_str(" AND t.error_count = 0"),
                None => {}
            }
            if let Some(v) = filter.min_duration_ns {
                push(&mut sql, " AND t.end_ns - t.start_ns >= ?", SqlValue::Integer(v));
            }
            if let Some(v) = filter.since_ns {
                push(&mut sql, " AND t.start_ns >= ?", SqlValue::Integer(v));
            }
            if let Some(v) = filter.until_ns {
                push(&mut sql, " AND t.start_ns < ?", SqlValue::Integer(v));
            }
            if let Some(c) = filter.cursor {
                push(&mut sql, " AND (t.start_ns < ?", SqlValue::Integer(c.start_ns));
                push(&mut sql, " OR (t.start_ns = ?", SqlValue::Integer(c.start_ns));
                push(&mut sql, " AND t.id < ?))", SqlValue::Integer(c.row));
            }
            if let Some(v) = filter.updated_after_ns {
                push(&mut sql, " AND t.updated_ns > ?", SqlValue::Integer(v));
            }
            if let Some((key, value)) = &filter.attribute {
                // `$."key"`: the key is quoted whole, so dots are not paths.
                let path = format!("$.\"{}\"", key.replace('"', ""));
                push(
                    &mut sql,
                    " AND EXISTS (SELECT 1 FROM spans s WHERE s.trace = t.id AND s.attributes IS NOT NULL \
                     AND (CAST(json_extract(s.attributes, ?) AS TEXT)",
                    SqlValue::Text(path.clone()),
                );
                push(&mut sql, " = ?", SqlValue::Text(value.clone()));
                // A JSON boolean extracts as 1/0: match it by its type's name.
                if value == "true" || value == "false" {
                    push(
                        &mut sql,
                        &format!(" OR json_type(s.attributes, ?) = '{value}'"),
                        SqlValue::Text(path),
                    );
                }
                sql.push_str("))");
            }
            if let Some(v) = &filter.name {
                push(
                    &mut sql,
                    " AND EXISTS (SELECT 1 FROM spans s WHERE s.trace = t.id AND s.name = ?)",
                    SqlValue::Text(v.clone()),
                );
            }
            let limit = filter.limit.max(1);
            push(&mut sql, " ORDER BY t.start_ns DESC, t.id DESC LIMIT ?", SqlValue::Integer(limit as i64 + 1));
            let mut stmt = conn.prepare_cached(&sql)?;
            let mut rows = stmt
                .query_map(params_from_iter(params), summary_from_row)?
                .collect::<Result<Vec<_>, _>>()?;
            let more = rows.len() > limit;
            rows.truncate(limit);
            let next_cursor = if more {
                rows.last().map(|(row, s)| Cursor {
                    start_ns: s.start_ns,
                    row: *row,
                })
            } else {
                None
            };
            Ok(TracePage {
                traces: rows.into_iter().map(|(_, s)| s).collect(),
                next_cursor,
            })
        })
    }

    /// Searches log lines.
    pub fn list_logs(&self, filter: &LogFilter) -> Result<LogPage, StoreError> {
        self.with_conn(|conn| query_logs(conn, filter))
    }

    /// Each tenant's footprint: its spans plus its log lines.
    pub fn tenant_footprints(&self) -> Result<Vec<(String, i64)>, StoreError> {
        self.with_conn(|conn| {
            let mut stmt = conn.prepare_cached(
                "SELECT tn.name,
                        coalesce((SELECT sum(span_count) FROM traces t WHERE t.tenant = tn.id), 0)
                      + (SELECT count(*) FROM logs l WHERE l.tenant = tn.id)
                 FROM tenants tn",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?)))?;
            Ok(rows.collect::<Result<_, _>>()?)
        })
    }

    /// How far forwarding target `name` got in the backlog (0: nowhere yet).
    pub fn forward_cursor(&self, name: &str) -> Result<i64, StoreError> {
        self.with_conn(|conn| {
            Ok(conn
                .prepare_cached("SELECT seq FROM forward_cursors WHERE name = ?1")?
                .query_row([name], |r| r.get(0))
                .optional()?
                .unwrap_or(0))
        })
    }

    /// The next backlog items after position `after`, oldest first: spans
    /// and log lines as stored (an item whose row retention already removed
    /// is skipped), and the position of the last item read.
    pub fn forward_batch(
        &self,
        after: i64,
        limit: usize,
    ) -> Result<Option<ForwardBatch>, StoreError> {
        self.with_conn(|conn| {
            let items: Vec<(i64, i64, i64)> = conn
                .prepare_cached(
                    "SELECT seq, kind, ref FROM outbox WHERE seq > ?1 ORDER BY seq LIMIT ?2",
                )?
                .query_map(rusqlite::params![after, limit as i64], |r| {
                    Ok((r.get(0)?, r.get(1)?, r.get(2)?))
                })?
                .collect::<Result<_, _>>()?;
            let Some(&(last, _, _)) = items.last() else {
                return Ok(None);
            };
            let mut batch = ForwardBatch {
                last_seq: last,
                spans: Vec::new(),
                logs: Vec::new(),
            };
            let mut span_stmt = conn.prepare_cached(
                "SELECT s.span_id, s.parent_id, s.name, s.kind, s.status, s.status_message,
                        s.start_ns, s.end_ns, s.ticket_id, s.agent_id, s.vm_id, s.service,
                        s.attributes, s.events, tn.name, t.trace_id, t.ticket_id, t.agent_id,
                        t.vm_id, t.service
                 FROM spans s JOIN traces t ON t.id = s.trace JOIN tenants tn ON tn.id = t.tenant
                 WHERE s.rowid = ?1",
            )?;
            let bad_id = || StoreError::Corrupt("undecodable id".into());
            for (_, kind, row) in &items {
                if *kind != 0 {
                    continue;
                }
                let mut rows = span_stmt.query([row])?;
                let Some(r) = rows.next()? else { continue };
                let span_id: Vec<u8> = r.get(0)?;
                let parent: Option<Vec<u8>> = r.get(1)?;
                let trace_id: Vec<u8> = r.get(15)?;
                let (t_ticket, t_agent, t_vm, t_service): (
                    Option<String>,
                    Option<String>,
                    Option<String>,
                    Option<String>,
                ) = (r.get(16)?, r.get(17)?, r.get(18)?, r.get(19)?);
                batch.spans.push(Span {
                    tenant_id: r.get(14)?,
                    trace_id: id::decode(&trace_id).ok_or_else(bad_id)?,
                    span_id: id::decode(&span_id).ok_or_else(bad_id)?,
                    parent_span_id: match parent {
                        Some(p) => Some(id::decode(&p).ok_or_else(bad_id)?),
                        None => None,
                    },
                    name: r.get(2)?,
                    kind: SpanKind::from_code(r.get(3)?),
                    status: SpanStatus::from_code(r.get(4)?),
                    status_message: r.get(5)?,
                    start_ns: r.get(6)?,
                    end_ns: r.get(7)?,
                    ticket_id: inherit(r.get(8)?, &t_ticket),
                    agent_id: inherit(r.get(9)?, &t_agent),
                    vm_id: inherit(r.get(10)?, &t_vm),
                    service: inherit(r.get(11)?, &t_service),
                    attributes: parse_object(r.get(12)?, "attributes")?,
                    events: parse_events(r.get(13)?)?,
                });
            }
            drop(span_stmt);
            let mut log_stmt = conn.prepare_cached(
                "SELECT tn.name, l.time_ns, l.level, l.message, l.trace_id, l.span_id, l.request_id,
                        l.ticket_id, l.agent_id, l.duration_ms, l.metadata
                 FROM logs l JOIN tenants tn ON tn.id = l.tenant WHERE l.id = ?1",
            )?;
            for (_, kind, row) in &items {
                if *kind != 1 {
                    continue;
                }
                let mut rows = log_stmt.query([row])?;
                let Some(r) = rows.next()? else { continue };
                batch.logs.push(log_from_row(r, 0)?);
            }
            Ok(Some(batch))
        })
    }

    /// Counts and sizes, for `/api/stats` and benchmarks.
    pub fn stats(&self) -> Result<StoreStats, StoreError> {
        let wal_path = {
            let mut p = self.inner.path.clone().into_os_string();
            p.push("-wal");
            PathBuf::from(p)
        };
        let wal_bytes = std::fs::metadata(&wal_path)
            .map(|m| m.len() as i64)
            .unwrap_or(0);
        self.with_conn(|conn| {
            let (traces, spans): (i64, i64) = conn.query_row(
                "SELECT count(*), coalesce(sum(span_count), 0) FROM traces",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )?;
            let tenants: i64 = conn.query_row("SELECT count(*) FROM tenants", [], |r| r.get(0))?;
            let logs: i64 =
                conn.query_row("SELECT coalesce(max(id), 0) FROM logs", [], |r| r.get(0))?;
            let page_count: i64 = conn.pragma_query_value(None, "page_count", |r| r.get(0))?;
            let free: i64 = conn.pragma_query_value(None, "freelist_count", |r| r.get(0))?;
            let page_size: i64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
            Ok(StoreStats {
                tenants,
                traces,
                spans,
                logs,
                db_bytes: (page_count - free) * page_size,
                wal_bytes,
            })
        })
    }

    /// Bytes in use by the database file (pages in use × page size).
    pub fn db_bytes(&self) -> Result<i64, StoreError> {
        self.with_conn(|conn| {
            let page_count: i64 = conn.pragma_query_value(None, "page_count", |r| r.get(0))?;
            let free: i64 = conn.pragma_query_value(None, "freelist_count", |r| r.get(0))?;
            let page_size: i64 = conn.pragma_query_value(None, "page_size", |r| r.get(0))?;
            Ok((page_count - free) * page_size)
        })
    }

    /// Every tenant name that has data, sorted.
    pub fn tenants(&self) -> Result<Vec<String>, StoreError> {
        self.with_conn(|conn| {
            let mut stmt = conn.prepare_cached("SELECT name FROM tenants ORDER BY name")?;
            let names = stmt
                .query_map([], |r| r.get(0))?
                .collect::<Result<Vec<String>, _>>()?;
            Ok(names)
        })
    }

    /// Whether a span with this id is stored in this tenant's trace.
    pub fn has_span(
        &self,
        tenant_id: &str,
        trace_id: &str,
        span_id: &str,
    ) -> Result<bool, StoreError> {
        self.with_conn(|conn| {
            let found = conn
                .prepare_cached(
                    "SELECT 1 FROM spans s JOIN traces t ON t.id = s.trace JOIN tenants tn ON tn.id = t.tenant
                     WHERE t.trace_id = ?1 AND tn.name = ?2 AND s.span_id = ?3",
                )?
                .query_row(
                    rusqlite::params![id::encode(trace_id), tenant_id, id::encode(span_id)],
                    |_| Ok(()),
                )
                .optional()?;
            Ok(found.is_some())
        })
    }
}

fn load_spans(
    conn: &Connection,
    trace_row: i64,
    summary: &TraceSummary,
) -> Result<(Vec<Span>, bool), StoreError> {
    let mut stmt = conn.prepare_cached(
        "SELECT span_id, parent_id, name, kind, status, status_message, start_ns, end_ns,
                ticket_id, agent_id, vm_id, service, attributes, events
         FROM spans WHERE trace = ?1 ORDER BY start_ns, rowid LIMIT ?2",
    )?;
    let mut rows = stmt.query(rusqlite::params![trace_row, TRACE_SPAN_LIMIT as i64 + 1])?;
    let mut spans = Vec::new();
    while let Some(r) = rows.next()? {
        let span_id: Vec<u8> = r.get(0)?;
        let parent: Option<Vec<u8>> = r.get(1)?;
        let bad_id = || StoreError::Corrupt("undecodable id".into());
        spans.push(Span {
            tenant_id: summary.tenant_id.clone(),
            trace_id: summary.trace_id.clone(),
            span_id: id::decode(&span_id).ok_or_else(bad_id)?,
            parent_span_id: match parent {
                Some(p) => Some(id::decode(&p).ok_or_else(bad_id)?),
                None => None,
            },
            name: r.get(2)?,
            kind: SpanKind::from_code(r.get(3)?),
            status: SpanStatus::from_code(r.get(4)?),
            status_message: r.get(5)?,
            start_ns: r.get(6)?,
            end_ns: r.get(7)?,
            ticket_id: inherit(r.get(8)?, &summary.ticket_id),
            agent_id: inherit(r.get(9)?, &summary.agent_id),
            vm_id: inherit(r.get(10)?, &summary.vm_id),
            service: inherit(r.get(11)?, &summary.service),
            attributes: parse_object(r.get(12)?, "attributes")?,
            events: parse_events(r.get(13)?)?,
        });
    }
    let truncated = spans.len() > TRACE_SPAN_LIMIT;
    spans.truncate(TRACE_SPAN_LIMIT);
    Ok((spans, truncated))
}

/// A log line from the 11 columns `tenant name, time_ns, level, message,
/// trace_id, span_id, request_id, ticket_id, agent_id, duration_ms,
/// metadata` starting at column `at`.
fn log_from_row(r: &Row<'_>, at: usize) -> Result<LogRecord, StoreError> {
    let decode_id = |v: Option<Vec<u8>>| v.and_then(|b| id::decode(&b));
    Ok(LogRecord {
        tenant_id: r.get(at)?,
        time_ns: r.get(at + 1)?,
        level: LogLevel::from_code(r.get(at + 2)?),
        message: r.get(at + 3)?,
        trace_id: decode_id(r.get(at + 4)?),
        span_id: decode_id(r.get(at + 5)?),
        request_id: r.get(at + 6)?,
        ticket_id: r.get(at + 7)?,
        agent_id: r.get(at + 8)?,
        duration_ms: r.get(at + 9)?,
        metadata: parse_object(r.get(at + 10)?, "log metadata")?,
    })
}

/// The SQL and parameters of a log search.
fn log_query(filter: &LogFilter) -> (String, Vec<SqlValue>) {
    // A ticket's lines are those of its traces, looked up by trace id
    // (without the hint the planner walks the tenant's lines by time).
    let from = if filter.ticket_id.is_some() {
        "logs l INDEXED BY logs_by_trace"
    } else {
        "logs l"
    };
    let mut sql = format!(
        "SELECT l.id, tn.name, l.time_ns, l.level, l.message, l.trace_id, l.span_id, l.request_id,
                l.ticket_id, l.agent_id, l.duration_ms, l.metadata
         FROM {from} JOIN tenants tn ON tn.id = l.tenant WHERE 1 = 1",
    );
    let mut params: Vec<SqlValue> = Vec::new();
    let mut push = |sql: &mut String, clause: &str, value: SqlValue| {
        params.push(value);
        sql.push_str(&clause.replace('?', &format!("?{}", params.len())));
    };
    if let Some(t) = &filter.tenant_id {
        push(
            &mut sql,
            " AND l.tenant = (SELECT id FROM tenants WHERE name = ?)",
            SqlValue::Text(t.clone()),
        );
    }
    if let Some(t) = &filter.trace_id {
        push(
            &mut sql,
            " AND l.trace_id = ?",
            SqlValue::Blob(id::encode(t)),
        );
    }
    if let Some(t) = &filter.ticket_id {
        // The uncorrelated IN drives the index; EXISTS keeps each line to
        // its own tenant's trace of that ticket.
        push(
            &mut sql,
            " AND l.trace_id IN (SELECT trace_id FROM traces WHERE ticket_id = ?)",
            SqlValue::Text(t.clone()),
        );
        push(
            &mut sql,
            " AND EXISTS (SELECT 1 FROM traces t WHERE t.trace_id = l.trace_id \
               AND t.tenant = l.tenant AND t.ticket_id = ?)",
            SqlValue::Text(t.clone()),
        );
    }
    if let Some(level) = filter.min_level {
        push(
            &mut sql,
            " AND l.level >= ?",
            SqlValue::Integer(level.code()),
        );
    }
    if let Some(v) = filter.since_ns {
        push(&mut sql, " AND l.time_ns >= ?", SqlValue::Integer(v));
    }
    if let Some(v) = filter.until_ns {
        push(&mut sql, " AND l.time_ns < ?", SqlValue::Integer(v));
    }
    if let Some(text) = &filter.text {
        let escaped = text
            .replace('\\', "\\\\")
            .replace('%', "\\%")
            .replace('_', "\\_");
        push(
            &mut sql,
            " AND l.message LIKE ? ESCAPE '\\'",
            SqlValue::Text(format!("%{escaped}%")),
        );
    }
    let (cmp, order) = if filter.ascending {
        (">", "ASC")
    } else {
        ("<", "DESC")
    };
    if let Some(c) = filter.cursor {
        push(
            &mut sql,
            &format!(" AND (l.time_ns {cmp} ?"),
            SqlValue::Integer(c.start_ns),
        );
        push(
            &mut sql,
            " OR (l.time_ns = ?",
            SqlValue::Integer(c.start_ns),
        );
        push(
            &mut sql,
            &format!(" AND l.id {cmp} ?))"),
            SqlValue::Integer(c.row),
        );
    }
    let limit = filter.limit.max(1);
    push(
        &mut sql,
        &format!(" ORDER BY l.time_ns {order}, l.id {order} LIMIT ?"),
        SqlValue::Integer(limit as i64 + 1),
    );
    (sql, params)
}

fn query_logs(conn: &Connection, filter: &LogFilter) -> Result<LogPage, StoreError> {
    let (sql, params) = log_query(filter);
    let limit = filter.limit.max(1);
    let mut stmt = conn.prepare_cached(&sql)?;
    let mut rows = stmt.query(params_from_iter(params))?;
    let mut out: Vec<(i64, LogRecord)> = Vec::new();
    while let Some(r) = rows.next()? {
        out.push((r.get(0)?, log_from_row(r, 1)?));
    }
    let more = out.len() > limit;
    out.truncate(limit);
    let cursor_of = |(id, l): &(i64, LogRecord)| Cursor {
        start_ns: l.time_ns,
        row: *id,
    };
    let last_cursor = out.last().map(cursor_of);
    let first_cursor = out.first().map(cursor_of);
    Ok(LogPage {
        logs: out.into_iter().map(|(_, l)| l).collect(),
        next_cursor: if more { last_cursor } else { None },
        last_cursor,
        first_cursor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A ticket's lines are found through the trace index, not by walking
    /// every line of the tenant: the plan must search `logs_by_trace` by
    /// trace id, whatever other filters come with it.
    #[test]
    fn a_tickets_lines_are_searched_by_trace_id() {
        let dir = tempfile::tempdir().expect("tempdir");
        let conn = crate::schema::open_writer_connection(&dir.path().join("t.db")).expect("open");
        for filter in [
            LogFilter {
                ticket_id: Some("T-1".into()),
                ..LogFilter::default()
            },
            LogFilter {
                ticket_id: Some("T-1".into()),
                tenant_id: Some("acme".into()),
                min_level: Some(LogLevel::Warn),
                since_ns: Some(1),
                ascending: true,
                ..LogFilter::default()
            },
        ] {
            let (sql, params) = log_query(&filter);
            let plan: Vec<String> = conn
                .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
                .expect("explain")
                .query_map(params_from_iter(params), |r| r.get::<_, String>(3))
                .expect("plan")
                .collect::<Result<_, _>>()
                .expect("rows");
            assert!(
                plan.iter()
                    .any(|step| step.contains("SEARCH l USING INDEX logs_by_trace (trace_id=?")),
                "{plan:#?}"
            );
            assert!(
                !plan.iter().any(|step| step.starts_with("SCAN l")),
                "{plan:#?}"
            );
        }
    }
}
