//! Getting spans and log lines to the collector before a VM dies.
//!
//! [`Tracer::flush`] drains everything pending and sends it as few requests as
//! the body limit allows (`POST /api/traces` with `{"spans": [...]}` in the
//! seed's wire format, `POST /api/logs` with JSON lines), within one deadline,
//! retrying network errors, 429 and 5xx with exponential backoff (honouring
//! `Retry-After`). Whatever still cannot be sent is appended to a local spool
//! file, one JSON object per line tagged `"kind": "span"` or `"kind": "log"`
//! (the Node tracer writes the same format); [`push_spool`] ships such files
//! later. A request the collector refuses as invalid (4xx other than 429) is
//! dropped, not spooled: it would be refused again.

use std::collections::HashMap;
use std::io::{BufRead, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Map, Value};
use swarmscope_model::timestamp::format_rfc3339;
use swarmscope_model::SpanKind;
use tokio::time::Instant;

use crate::tracer::{SpanRecord, Tracer, TracerConfig};

/// Most items the collector takes in one request.
const MAX_ITEMS: usize = 10_000;

/// What one flush did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FlushReport {
    /// Spans the collector acknowledged.
    pub sent_spans: usize,
    /// Log lines the collector acknowledged.
    pub sent_logs: usize,
    /// Spans written to the spool file.
    pub spooled_spans: usize,
    /// Log lines written to the spool file.
    pub spooled_logs: usize,
    /// Items refused by the collector as invalid (not retried, not spooled).
    pub dropped: usize,
    /// HTTP requests made that were answered (retries included).
    pub requests: usize,
}

/// The seed's wire format for one span (what `AgentTracer.flush()` posts),
/// plus parent, kind, vm and service when set.
pub(crate) fn span_json(r: &SpanRecord) -> Value {
    let mut m = Map::new();
    let t = &r.trace;
    if let Some(v) = &t.ticket_id {
        m.insert("ticketId".into(), json!(v));
    }
    if let Some(v) = &t.agent_id {
        m.insert("agentId".into(), json!(v));
    }
    m.insert("tenantId".into(), json!(t.tenant_id));
    m.insert("trace_id".into(), json!(t.trace_id));
    m.insert("id".into(), json!(r.span_id.to_string()));
    m.insert("name".into(), json!(r.name));
    m.insert("startTime".into(), json!(format_rfc3339(r.start_ns)));
    m.insert("attributes".into(), Value::Object(to_map(&r.attributes)));
    let events: Vec<Value> = r
        .events
        .iter()
        .map(|(name, at, attrs)| json!({"name": name, "timestamp": format_rfc3339(*at), "attributes": to_map(attrs)}))
        .collect();
    m.insert("events".into(), Value::Array(events));
    m.insert("status".into(), json!(r.status.as_str()));
    if let Some(end) = r.end_ns {
        m.insert("endTime".into(), json!(format_rfc3339(end)));
        m.insert("durationMs".into(), json!((end - r.start_ns) as f64 / 1e6));
    }
    if let Some(p) = &r.parent {
        m.insert("parent_span_id".into(), json!(p.to_string()));
    }
    if r.kind != SpanKind::Internal {
        // `span_kind`, not `kind`: the spool's envelope uses `kind`.
        m.insert("span_kind".into(), json!(r.kind.as_str()));
    }
    if let Some(v) = &r.status_message {
        m.insert("status_message".into(), json!(v));
    }
    if let Some(v) = &t.vm_id {
        m.insert("vm_id".into(), json!(v));
    }
    if let Some(v) = &t.service {
        m.insert("service".into(), json!(v));
    }
    Value::Object(m)
}

fn to_map(list: &[(std::borrow::Cow<'static, str>, Value)]) -> Map<String, Value> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

/// Keeps, per span, its ended copy if there is one, else one open copy.
fn latest_copies(spans: Vec<SpanRecord>) -> Vec<SpanRecord> {
    let mut index: HashMap<(String, crate::tracer::SpanId), usize> = HashMap::new();
    let mut out: Vec<SpanRecord> = Vec::with_capacity(spans.len());
    for s in spans {
        let key = (s.trace.trace_id.clone(), s.span_id);
        match index.get(&key) {
            Some(&i) => {
                if out[i].end_ns.is_none() && s.end_ns.is_some() {
                    out[i] = s;
                }
            }
            None => {
                index.insert(key, out.len());
                out.push(s);
            }
        }
    }
    out
}

/// Groups encoded items into bodies within the byte and item limits.
fn batches(items: &[Vec<u8>], max_bytes: usize) -> Vec<std::ops::Range<usize>> {
    let mut out = Vec::new();
    let mut start = 0;
    let mut size = 0;
    for (i, item) in items.iter().enumerate() {
        if i > start && (size + item.len() + 16 > max_bytes || i - start >= MAX_ITEMS) {
            out.push(start..i);
            start = i;
            size = 0;
        }
        size += item.len() + 1;
    }
    if start < items.len() {
        out.push(start..items.len());
    }
    out
}

fn spans_body<T: AsRef<[u8]>>(items: &[T]) -> Vec<u8> {
    let mut body =
        Vec::with_capacity(items.iter().map(|i| i.as_ref().len() + 1).sum::<usize>() + 12);
    body.extend_from_slice(b"{\"spans\":[");
    for (i, item) in items.iter().enumerate() {
        if i > 0 {
            body.push(b',');
        }
        body.extend_from_slice(item.as_ref());
    }
    body.extend_from_slice(b"]}");
    body
}

fn logs_body<T: AsRef<[u8]>>(items: &[T]) -> Vec<u8> {
    let mut body = Vec::new();
    for item in items {
        let item = item.as_ref();
        body.extend_from_slice(item);
        if !item.ends_with(b"\n") {
            body.push(b'\n');
        }
    }
    body
}

/// Which item of a batch the collector blamed: `spans[3].name` → 3 for
/// spans, `line 4.level` → 3 for log lines (one per line, 1-based).
fn blamed_item(field: &str, logs: bool) -> Option<usize> {
    if logs {
        let rest = field.strip_prefix("line ")?;
        let n: usize = rest.split(['.', ':']).next()?.parse().ok()?;
        n.checked_sub(1)
    } else {
        let rest = field.strip_prefix("spans[")?;
        rest.split(']').next()?.parse().ok()
    }
}

/// What [`deliver`] did with a set of items.
#[derive(Default)]
struct Delivery {
    sent: usize,
    dropped: usize,
    spooled: usize,
}

/// Sends items in batches. A batch refused because of one item (the
/// collector names it) is sent again without that item, so one bad span
/// never costs the others; a batch refused for its key (401, 403) or still
/// failing after retries goes to the spool; anything else refused is dropped.
async fn deliver(
    poster: &mut Poster<'_>,
    items: &[Vec<u8>],
    logs: bool,
    spool: &mut Vec<Vec<u8>>,
) -> Delivery {
    let (route, content_type, kind) = if logs {
        ("/api/logs", "application/x-ndjson", "log")
    } else {
        ("/api/traces", "application/json", "span")
    };
    let mut out = Delivery::default();
    for range in batches(items, poster.config.max_body_bytes) {
        let mut batch: Vec<&Vec<u8>> = items[range].iter().collect();
        while !batch.is_empty() {
            let body = if logs {
                logs_body(&batch)
            } else {
                spans_body(&batch)
            };
            match poster.post(route, body, content_type).await {
                Sent::Accepted => {
                    out.sent += batch.len();
                    break;
                }
                Sent::Refused(400, message, Some(field))
                    if blamed_item(&field, logs).is_some_and(|i| i < batch.len()) =>
                {
                    let i = blamed_item(&field, logs).unwrap_or(0);
                    tracing::warn!(message = %message, field = %field, "collector refused one {kind}; dropped it, resending the rest");
                    batch.remove(i);
                    out.dropped += 1;
                }
                Sent::Refused(status @ (401 | 403), message, _) => {
                    tracing::warn!(status, message = %message, "collector refused the key; spooling");
                    out.spooled += batch.len();
                    spool.extend(batch.iter().map(|item| tagged(kind, item)));
                    break;
                }
                Sent::Refused(status, message, _) => {
                    tracing::warn!(status, message = %message, items = batch.len(), "collector refused a batch; dropped");
                    out.dropped += batch.len();
                    break;
                }
                Sent::Failed(why) => {
                    tracing::warn!(error = %why, items = batch.len(), "could not send; spooling");
                    out.spooled += batch.len();
                    spool.extend(batch.iter().map(|item| tagged(kind, item)));
                    break;
                }
            }
        }
    }
    out
}

/// How one request ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Sent {
    /// Acknowledged (2xx).
    Accepted,
    /// Refused for good (4xx other than 429): status, message, and the field
    /// the collector blamed (e.g. `spans[3].startTime`).
    Refused(u16, String, Option<String>),
    /// Still failing when retries or the deadline ran out.
    Failed(String),
}

pub(crate) struct Poster<'a> {
    pub(crate) client: &'a reqwest::Client,
    pub(crate) config: &'a TracerConfig,
    pub(crate) deadline: Instant,
    pub(crate) requests: usize,
}

impl Poster<'_> {
    pub(crate) async fn post(&mut self, route: &str, body: Vec<u8>, content_type: &str) -> Sent {
        let url = format!("{}{route}", self.config.url.trim_end_matches('/'));
        let mut last = String::from("deadline passed before the first attempt");
        for attempt in 0..=self.config.retries {
            let now = Instant::now();
            if now >= self.deadline {
                break;
            }
            let mut req = self
                .client
                .post(&url)
                .header(reqwest::header::CONTENT_TYPE, content_type)
                .timeout(self.deadline - now)
                .body(body.clone());
            if let Some(k) = &self.config.api_key {
                req = req.bearer_auth(k);
            }
            let mut wait = Duration::from_millis(100u64 << attempt.min(6));
            match req.send().await {
                Ok(resp) => {
                    self.requests += 1;
                    let status = resp.status().as_u16();
                    if resp.status().is_success() {
                        return Sent::Accepted;
                    }
                    let retry_after = resp
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok());
                    let text = resp.text().await.unwrap_or_default();
                    let parsed = serde_json::from_str::<Value>(&text).ok();
                    let field = parsed
                        .as_ref()
                        .and_then(|v| v["field"].as_str().map(str::to_owned));
                    let message = parsed
                        .and_then(|v| v["error"].as_str().map(str::to_owned))
                        .unwrap_or(text);
                    if status != 429 && status < 500 {
                        return Sent::Refused(status, message, field);
                    }
                    if let Some(secs) = retry_after {
                        wait = Duration::from_secs(secs.min(60));
                    }
                    last = format!("{status}: {message}");
                }
                Err(e) => last = e.to_string(),
            }
            if attempt == self.config.retries || Instant::now() + wait >= self.deadline {
                break;
            }
            tokio::time::sleep(wait).await;
        }
        Sent::Failed(last)
    }
}

/// Appends spooled items (already tagged with `kind`) to the spool file and
/// syncs it, so they survive the process.
fn append_spool(path: &Path, lines: &[Vec<u8>]) -> std::io::Result<()> {
    if lines.is_empty() {
        return Ok(());
    }
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let mut f = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(path)?;
    let mut buf = Vec::new();
    for l in lines {
        buf.extend_from_slice(l);
        if !l.ends_with(b"\n") {
            buf.push(b'\n');
        }
    }
    f.write_all(&buf)?;
    f.sync_data()
}

/// `{"kind": kind, ...object}` from an encoded JSON object.
fn tagged(kind: &str, object: &[u8]) -> Vec<u8> {
    let trimmed = object.strip_suffix(b"\n").unwrap_or(object);
    let rest = trimmed.strip_prefix(b"{").unwrap_or(trimmed);
    let mut out = format!("{{\"kind\":\"{kind}\"").into_bytes();
    if rest != b"}" {
        out.push(b',');
    }
    out.extend_from_slice(rest);
    out
}

impl Tracer {
    /// Sends every pending span and log line; spools what cannot be sent.
    /// Never fails: the report says what happened. Concurrent flushes run one
    /// after the other, and a span is sent once.
    pub async fn flush(&self) -> FlushReport {
        let client = self.shared.client.clone();
        self.flush_with(&client).await
    }

    /// [`Tracer::flush`] from synchronous code (a `Drop`, a signal handler, a
    /// program without a runtime): runs it on a helper thread.
    pub fn flush_blocking(&self) -> FlushReport {
        let tracer = self.clone();
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .ok()?;
            // A fresh client: pooled connections belong to the runtime that made them.
            Some(rt.block_on(tracer.flush_with(&reqwest::Client::new())))
        })
        .join()
        .ok()
        .flatten()
        .unwrap_or_default()
    }

    async fn flush_with(&self, client: &reqwest::Client) -> FlushReport {
        let _one_at_a_time = self.shared.flush_lock.lock().await;
        let config = &self.shared.config;
        let spans = latest_copies(std::iter::from_fn(|| self.shared.pending.pop()).collect());
        let logs: Vec<Vec<u8>> = config.logs.as_ref().map(|b| b.drain()).unwrap_or_default();
        let mut report = FlushReport::default();
        if spans.is_empty() && logs.is_empty() {
            return report;
        }
        let encoded: Vec<Vec<u8>> = spans
            .iter()
            .map(|s| span_json(s).to_string().into_bytes())
            .collect();
        let mut poster = Poster {
            client,
            config,
            deadline: Instant::now() + config.deadline,
            requests: 0,
        };
        let mut spool = Vec::new();
        let spans_done = deliver(&mut poster, &encoded, false, &mut spool).await;
        let logs_done = deliver(&mut poster, &logs, true, &mut spool).await;
        report.sent_spans = spans_done.sent;
        report.spooled_spans = spans_done.spooled;
        report.sent_logs = logs_done.sent;
        report.spooled_logs = logs_done.spooled;
        report.dropped = spans_done.dropped + logs_done.dropped;
        report.requests = poster.requests;
        if let Err(e) = append_spool(&config.spool_path, &spool) {
            tracing::error!(error = %e, path = %config.spool_path.display(), "cannot write the spool file; data lost");
        }
        report
    }

    /// Flushes when the process is told to stop (SIGTERM, SIGINT), then exits
    /// with 128 + the signal's number. Call it from inside a tokio runtime.
    pub fn install_shutdown_hook(&self) {
        let tracer = self.clone();
        tokio::spawn(async move {
            let code = wait_for_stop_signal().await;
            tracer.flush().await;
            std::process::exit(code);
        });
    }

    /// A guard that flushes (blocking) when dropped: hold it in `main` so a
    /// normal return flushes too.
    pub fn flush_on_drop(&self) -> FlushOnDrop {
        FlushOnDrop(self.clone())
    }
}

#[cfg(unix)]
async fn wait_for_stop_signal() -> i32 {
    use tokio::signal::unix::{signal, SignalKind};
    match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(mut term), Ok(mut int)) => tokio::select! {
            _ = term.recv() => 143,
            _ = int.recv() => 130,
        },
        _ => std::future::pending().await,
    }
}

#[cfg(not(unix))]
async fn wait_for_stop_signal() -> i32 {
    let _ = tokio::signal::ctrl_c().await;
    130
}

/// Flushes its tracer when dropped.
#[derive(Debug)]
pub struct FlushOnDrop(Tracer);

impl Drop for FlushOnDrop {
    fn drop(&mut self) {
        self.0.flush_blocking();
    }
}

/// What [`push_spool`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PushReport {
    /// Spool files fully shipped and deleted.
    pub files_done: Vec<PathBuf>,
    /// Files kept because something could not be sent, with the reason.
    pub files_kept: Vec<(PathBuf, String)>,
    /// Spans acknowledged.
    pub spans: usize,
    /// Log lines acknowledged.
    pub logs: usize,
    /// Items refused as invalid (dropped).
    pub dropped: usize,
}

/// Why a spool could not be read.
#[derive(Debug, thiserror::Error)]
pub enum SpoolError {
    /// The path could not be read.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
}

fn spool_files(path: &Path) -> Result<Vec<PathBuf>, SpoolError> {
    let io = |source| SpoolError::Io {
        path: path.to_owned(),
        source,
    };
    let meta = std::fs::metadata(path).map_err(io)?;
    if !meta.is_dir() {
        return Ok(vec![path.to_owned()]);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(io)?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
        .collect();
    files.sort();
    Ok(files)
}

/// Ships spool files (one file, or every `*.jsonl` in a directory) to the
/// collector in `config`, deleting each file once all of it was accepted.
/// Spans already stored are not duplicated: the collector ignores a span it
/// has, or completes it if it only had it open.
pub async fn push_spool(path: &Path, config: &TracerConfig) -> Result<PushReport, SpoolError> {
    let client = reqwest::Client::new();
    let mut report = PushReport::default();
    for file in spool_files(path)? {
        let reader = std::fs::File::open(&file)
            .map(std::io::BufReader::new)
            .map_err(|source| SpoolError::Io {
                path: file.clone(),
                source,
            })?;
        let mut spans: Vec<Vec<u8>> = Vec::new();
        let mut span_index: HashMap<(String, String), (usize, bool)> = HashMap::new();
        let mut logs: Vec<Vec<u8>> = Vec::new();
        // Read raw lines: a record torn by a dying VM (even mid-character) is
        // counted as dropped, and every line after it is still read.
        let mut keep_file = false;
        for line in reader.split(b'\n') {
            let line = match line {
                Ok(l) => l,
                Err(_) => {
                    keep_file = true;
                    break;
                }
            };
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let Ok(Value::Object(mut obj)) = serde_json::from_slice::<Value>(&line) else {
                report.dropped += 1;
                continue;
            };
            match obj.remove("kind").as_ref().and_then(Value::as_str) {
                Some("span") => {
                    let key = (
                        obj.get("trace_id")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_owned(),
                        obj.get("id")
                            .and_then(Value::as_str)
                            .unwrap_or("")
                            .to_owned(),
                    );
                    let ended = obj.contains_key("endTime") || obj.contains_key("durationMs");
                    let bytes = Value::Object(obj).to_string().into_bytes();
                    match span_index.get(&key) {
                        Some(&(i, had_end)) if !had_end || ended => {
                            spans[i] = bytes;
                            span_index.insert(key, (i, ended));
                        }
                        Some(_) => {}
                        None => {
                            span_index.insert(key, (spans.len(), ended));
                            spans.push(bytes);
                        }
                    }
                }
                Some("log") => logs.push(Value::Object(obj).to_string().into_bytes()),
                _ => report.dropped += 1,
            }
        }
        let mut poster = Poster {
            client: &client,
            config,
            deadline: Instant::now() + config.deadline.max(Duration::from_secs(30)),
            requests: 0,
        };
        let mut keep: Option<String> =
            keep_file.then(|| "the file could not be read to its end".to_owned());
        for (route, items, is_spans) in [("/api/traces", &spans, true), ("/api/logs", &logs, false)]
        {
            for range in batches(items, config.max_body_bytes) {
                let n = range.len();
                let (body, ct) = if is_spans {
                    (spans_body(&items[range]), "application/json")
                } else {
                    (logs_body(&items[range]), "application/x-ndjson")
                };
                match poster.post(route, body, ct).await {
                    Sent::Accepted if is_spans => report.spans += n,
                    Sent::Accepted => report.logs += n,
                    // Wrong key, tenant or URL: keep the file for a retry with the right one.
                    Sent::Refused(status @ (401 | 403 | 404), m, _) => {
                        keep = Some(format!("{status}: {m}"))
                    }
                    Sent::Refused(_, _, _) => report.dropped += n,
                    Sent::Failed(why) => keep = Some(why),
                }
            }
        }
        match keep {
            Some(why) => report.files_kept.push((file, why)),
            None => {
                let _ = std::fs::remove_file(&file);
                report.files_done.push(file);
            }
        }
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_respect_bytes_and_counts() {
        let items: Vec<Vec<u8>> = (0..25).map(|_| vec![b'x'; 100]).collect();
        let b = batches(&items, 1_000);
        assert!(
            b.iter()
                .all(|r| spans_body(&items[r.clone()]).len() <= 1_000),
            "{b:?}"
        );
        assert!(b.len() <= 4, "batches are filled, not one item each: {b:?}");
        assert_eq!(b.iter().map(|r| r.len()).sum::<usize>(), 25);
        assert_eq!(batches(&items, usize::MAX), vec![0..25]);
        // One item larger than the limit still goes, alone.
        let big = vec![vec![b'x'; 5_000], vec![b'y'; 10]];
        assert_eq!(batches(&big, 1_000), vec![0..1, 1..2]);
    }

    #[test]
    fn spool_lines_are_tagged_objects() {
        let line = tagged("span", br#"{"id":"a","name":"x"}"#);
        assert_eq!(line, br#"{"kind":"span","id":"a","name":"x"}"#);
        assert_eq!(tagged("log", b"{}\n"), br#"{"kind":"log"}"#);
    }
}
