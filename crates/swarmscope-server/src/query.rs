//! The read API: one trace, trace search, a ticket's traces, store stats.

use std::collections::{HashMap, HashSet};

use axum::extract::rejection::PathRejection;
use axum::extract::{Path, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::Serialize;
use serde_json::{json, Value};
use swarmscope_model::timestamp::{now_nanos, parse_rfc3339};
use swarmscope_model::{LogLevel, LogRecord, Span};
use swarmscope_store::{Cursor, LogFilter, StatusFilter, TraceFilter, TraceLookup};

use crate::error::ApiError;
use crate::{AppState, Principal};

/// Largest page a search returns.
const MAX_LIMIT: usize = 1_000;
const DEFAULT_LIMIT: usize = 20;
const DEFAULT_LOG_LIMIT: usize = 100;

/// `GET /healthz`: 200 once the collector accepts traffic.
/// Writer liveness, queue depth and disk state; 503 when the writer is dead
/// (nothing could be acknowledged) or the disk is under its floor.
pub(crate) async fn healthz(State(state): State<AppState>) -> Response {
    let writer = state.store.writer();
    let alive = writer.is_alive();
    let disk_ok = state.disk.check().is_ok();
    let body = json!({
        "status": if alive && disk_ok { "ok" } else { "degraded" },
        "writer": if alive { "running" } else { "stopped" },
        "queued_spans": writer.stats().queued_spans,
        "disk": if disk_ok { "ok" } else { "low" },
    });
    let status = if alive && disk_ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, Json(body)).into_response()
}

/// Query parameters, each given at most once, only from an allowed set.
pub(crate) struct Params(HashMap<String, String>);

impl Params {
    pub(crate) fn parse(raw: Option<&str>, allowed: &[&str]) -> Result<Params, ApiError> {
        let mut map = HashMap::new();
        for (k, v) in form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
            if !allowed.contains(&k.as_ref()) {
                return Err(ApiError::bad_param(
                    &k,
                    format!("unknown parameter {k:?} (allowed: {})", allowed.join(", ")),
                ));
            }
            if map.insert(k.to_string(), v.to_string()).is_some() {
                return Err(ApiError::bad_param(
                    &k,
                    format!("parameter {k:?} is given more than once"),
                ));
            }
        }
        Ok(Params(map))
    }

    pub(crate) fn text(&self, name: &str) -> Result<Option<String>, ApiError> {
        match self.0.get(name) {
            None => Ok(None),
            Some(v) if v.contains('\0') => Err(ApiError::bad_param(
                name,
                format!("{name} must not contain a NUL character"),
            )),
            Some(v) if v.is_empty() || v.len() > 256 => Err(ApiError::bad_param(
                name,
                format!("{name} must be 1 to 256 characters"),
            )),
            Some(v) => Ok(Some(v.clone())),
        }
    }

    fn time(&self, name: &str) -> Result<Option<i64>, ApiError> {
        self.0
            .get(name)
            .map(|v| {
                parse_time(v).ok_or_else(|| {
                    ApiError::bad_param(
                        name,
                        format!("{name} must be an RFC 3339 time or an age such as 15m, 2h, 7d"),
                    )
                })
            })
            .transpose()
    }
}

/// An RFC 3339 time, or an age before now (`30s`, `15m`, `2h`, `7d`).
fn parse_time(text: &str) -> Option<i64> {
    if let Some(t) = parse_rfc3339(text) {
        return Some(t);
    }
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (digits, unit) = text.split_at(split);
    let n: i64 = digits.parse().ok()?;
    let secs = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3_600,
        "d" => 86_400,
        _ => return None,
    };
    Some(now_nanos().saturating_sub(n.checked_mul(secs)?.checked_mul(1_000_000_000)?))
}

fn path_param(p: Result<Path<String>, PathRejection>, name: &str) -> Result<String, ApiError> {
    let Path(v) = p.map_err(|e| ApiError::bad_param(name, format!("invalid {name}: {e}")))?;
    if v.is_empty() || v.len() > 256 {
        return Err(ApiError::bad_param(
            name,
            format!("{name} must be 1 to 256 characters"),
        ));
    }
    Ok(v)
}

/// Whose read share a caller draws on.
pub(crate) fn reader_share(principal: &Principal) -> String {
    match principal {
        Principal::Tenant { tenant, .. } => format!("tenant:{tenant}"),
        _ => "admin".to_owned(),
    }
}

/// Runs a read for `principal` under the read rules: at most a few at once
/// per caller (so one tenant's searches cannot take every connection), each
/// within the query time budget, and cancelled when its client goes away
/// (this future is dropped).
async fn read<T: Send + 'static>(
    state: &AppState,
    principal: &Principal,
    f: impl FnOnce(&swarmscope_store::Reader) -> Result<T, swarmscope_store::StoreError>
        + Send
        + 'static,
) -> Result<T, ApiError> {
    let _share = state.shares.read(&reader_share(principal)).await?;
    let budget = swarmscope_store::ReadBudget::new(state.query_timeout);
    struct CancelOnDrop(std::sync::Arc<swarmscope_store::ReadBudget>);
    impl Drop for CancelOnDrop {
        fn drop(&mut self) {
            self.0.cancel();
        }
    }
    let _cancel = CancelOnDrop(std::sync::Arc::clone(&budget));
    let reader = state.store.reader().with_budget(budget);
    let limit = state.query_timeout;
    blocking(move || {
        f(&reader).map_err(|e| match e {
            swarmscope_store::StoreError::Interrupted => {
                let mut e = ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    format!(
                        "the query ran past its time budget of {} s: narrow it (a tenant, a shorter time range, fewer results)",
                        limit.as_secs_f64()
                    ),
                );
                e.retry_after = Some(1);
                e
            }
            other => other.into(),
        })
    })
    .await
}

pub(crate) async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|_| ApiError::internal("query task failed"))?
}

/// `GET /api/traces/{trace_id}`: the trace and all its spans, orphans flagged.
pub(crate) async fn get_trace(
    State(state): State<AppState>,
    headers: HeaderMap,
    trace_id: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let principal = state.auth.authenticate(&headers)?;
    let trace_id = path_param(trace_id, "trace_id")?;
    let params = Params::parse(raw.as_deref(), &["tenant_id"])?;
    let scope = principal.read_scope(params.text("tenant_id")?.as_deref())?;
    let id = trace_id.clone();
    let lookup = read(&state, &principal, move |r| {
        r.get_trace(scope.as_deref(), &id)
    })
    .await?;
    let detail = match lookup {
        TraceLookup::Found(d) => d,
        TraceLookup::NotFound => {
            return Err(ApiError::not_found(format!("no trace {trace_id:?}")).field("trace_id"))
        }
        TraceLookup::Ambiguous(tenants) => {
            return Err(ApiError::new(
                axum::http::StatusCode::CONFLICT,
                format!(
                    "trace {trace_id:?} exists in several tenants ({}); pass tenant_id",
                    tenants.join(", ")
                ),
            )
            .field("tenant_id"))
        }
    };
    let ids: HashSet<&str> = detail.spans.iter().map(|s| s.span_id.as_str()).collect();
    let spans: Vec<SpanOut<'_>> = detail
        .spans
        .iter()
        .map(|s| SpanOut {
            span: s,
            orphan: s
                .parent_span_id
                .as_deref()
                .is_some_and(|p| !ids.contains(p)),
        })
        .collect();
    Ok(Json(TraceOut {
        trace: detail.summary.to_json(),
        spans,
        truncated: detail.truncated,
        logs: &detail.logs,
    })
    .into_response())
}

/// A span of a trace document, with whether its parent is missing.
#[derive(Serialize)]
struct SpanOut<'a> {
    #[serde(flatten)]
    span: &'a Span,
    orphan: bool,
}

/// `GET /api/traces/{trace_id}`'s body.
#[derive(Serialize)]
struct TraceOut<'a> {
    trace: Value,
    spans: Vec<SpanOut<'a>>,
    /// True when the trace has more than the 10,000 spans returned.
    truncated: bool,
    logs: &'a [LogRecord],
}

const LIST_PARAMS: &[&str] = &[
    "tenant_id",
    "ticket_id",
    "agent_id",
    "status",
    "name",
    "min_duration_ms",
    "since",
    "until",
    "attr",
    "limit",
    "cursor",
];

/// `attr=key=value`: a key of 1–128 characters (letters, digits, `._-:/`)
/// and a value of up to 256.
fn parse_attr(params: &Params) -> Result<Option<(String, String)>, ApiError> {
    let Some(text) = params.0.get("attr") else {
        return Ok(None);
    };
    let bad = || {
        ApiError::bad_param(
            "attr",
            "attr must be key=value with a key of letters, digits and ._-:/ (at most 128) and a value of at most 256 characters",
        )
    };
    let (key, value) = text.split_once('=').ok_or_else(bad)?;
    let key_ok = (1..=128).contains(&key.len())
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-:/".contains(c));
    if !key_ok || value.len() > 256 {
        return Err(bad());
    }
    Ok(Some((key.to_owned(), value.to_owned())))
}

fn parse_limit(params: &Params) -> Result<Option<usize>, ApiError> {
    params
        .0
        .get("limit")
        .map(|v| match v.parse::<usize>() {
            Ok(n) if (1..=MAX_LIMIT).contains(&n) => Ok(n),
            _ => Err(ApiError::bad_param(
                "limit",
                format!("limit must be an integer from 1 to {MAX_LIMIT}"),
            )),
        })
        .transpose()
}

fn parse_cursor(params: &Params) -> Result<Option<Cursor>, ApiError> {
    params
        .0
        .get("cursor")
        .map(|c| Cursor::decode(c).ok_or_else(|| ApiError::bad_param("cursor", "invalid cursor")))
        .transpose()
}

fn trace_filter(params: &Params, scope: Option<String>) -> Result<TraceFilter, ApiError> {
    let status = params
        .0
        .get("status")
        .map(|s| {
            StatusFilter::parse(s)
                .ok_or_else(|| ApiError::bad_param("status", "status must be ok or error"))
        })
        .transpose()?;
    let min_duration_ns = params
        .0
        .get("min_duration_ms")
        .map(|v| match v.parse::<f64>() {
            Ok(ms) if ms.is_finite() && (0.0..1e12).contains(&ms) => Ok((ms * 1e6) as i64),
            _ => Err(ApiError::bad_param(
                "min_duration_ms",
                "min_duration_ms must be a non-negative number",
            )),
        })
        .transpose()?;
    let limit = parse_limit(params)?.unwrap_or(DEFAULT_LIMIT);
    let cursor = parse_cursor(params)?;
    Ok(TraceFilter {
        tenant_id: scope,
        ticket_id: params.text("ticket_id")?,
        agent_id: params.text("agent_id")?,
        status,
        name: params.text("name")?,
        min_duration_ns,
        since_ns: params.time("since")?,
        until_ns: params.time("until")?,
        attribute: parse_attr(params)?,
        updated_after_ns: None,
        limit,
        cursor,
    })
}

async fn search(
    state: &AppState,
    principal: &Principal,
    filter: TraceFilter,
) -> Result<Json<Value>, ApiError> {
    let page = read(state, principal, move |r| r.list_traces(&filter)).await?;
    Ok(Json(json!({
        "traces": page.traces.iter().map(|t| t.to_json()).collect::<Vec<_>>(),
        "next_cursor": page.next_cursor.map(|c| c.encode()),
    })))
}

/// `GET /api/traces?...`: trace summaries, newest first, cursor-paginated.
pub(crate) async fn list_traces(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let principal = state.auth.authenticate(&headers)?;
    let params = Params::parse(raw.as_deref(), LIST_PARAMS)?;
    let scope = principal.read_scope(params.text("tenant_id")?.as_deref())?;
    let filter = trace_filter(&params, scope)?;
    search(&state, &principal, filter).await
}

/// `GET /api/tickets/{ticket_id}/traces`: every trace of a ticket.
pub(crate) async fn ticket_traces(
    State(state): State<AppState>,
    headers: HeaderMap,
    ticket_id: Result<Path<String>, PathRejection>,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let principal = state.auth.authenticate(&headers)?;
    let ticket_id = path_param(ticket_id, "ticket_id")?;
    let params = Params::parse(raw.as_deref(), &["tenant_id", "limit", "cursor"])?;
    let scope = principal.read_scope(params.text("tenant_id")?.as_deref())?;
    let mut filter = trace_filter(&params, scope)?;
    filter.ticket_id = Some(ticket_id);
    search(&state, &principal, filter).await
}

const LOG_PARAMS: &[&str] = &[
    "tenant_id",
    "trace_id",
    "ticket_id",
    "level",
    "since",
    "until",
    "q",
    "limit",
    "cursor",
    "order",
];

fn log_filter(params: &Params, scope: Option<String>) -> Result<LogFilter, ApiError> {
    let min_level = params
        .0
        .get("level")
        .map(|l| {
            LogLevel::parse(l).ok_or_else(|| {
                ApiError::bad_param("level", "level must be debug, info, warn, error or fatal")
            })
        })
        .transpose()?;
    let ascending = match params.0.get("order").map(String::as_str) {
        None | Some("desc") => false,
        Some("asc") => true,
        Some(_) => return Err(ApiError::bad_param("order", "order must be asc or desc")),
    };
    Ok(LogFilter {
        tenant_id: scope,
        trace_id: params.text("trace_id")?,
        ticket_id: params.text("ticket_id")?,
        min_level,
        since_ns: params.time("since")?,
        until_ns: params.time("until")?,
        text: params.text("q")?,
        ascending,
        limit: parse_limit(params)?.unwrap_or(DEFAULT_LOG_LIMIT),
        cursor: parse_cursor(params)?,
    })
}

/// Parses a query string as `GET /api/traces` and `GET /api/logs` would,
/// without a database: `Err` holds the HTTP status and message of the
/// refusal. For the fuzz targets (`fuzz/`), which check that no input
/// panics and that what is accepted is within bounds.
#[doc(hidden)]
pub fn parse_queries(raw: &str) -> [Result<(usize, usize), (u16, String)>; 2] {
    let refusal = |e: ApiError| (e.status.as_u16(), e.message);
    let traces = Params::parse(Some(raw), LIST_PARAMS)
        .and_then(|p| {
            let scope = p.text("tenant_id")?;
            trace_filter(&p, scope)
        })
        .map(|f| (f.limit, f.ticket_id.map_or(0, |t| t.len())))
        .map_err(refusal);
    let logs = Params::parse(Some(raw), LOG_PARAMS)
        .and_then(|p| {
            let scope = p.text("tenant_id")?;
            log_filter(&p, scope)
        })
        .map(|f| (f.limit, f.text.map_or(0, |t| t.len())))
        .map_err(refusal);
    [traces, logs]
}

/// `GET /api/logs?...`: log lines, newest first (or `order=asc`), paginated.
pub(crate) async fn list_logs(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let principal = state.auth.authenticate(&headers)?;
    let params = Params::parse(raw.as_deref(), LOG_PARAMS)?;
    let scope = principal.read_scope(params.text("tenant_id")?.as_deref())?;
    let filter = log_filter(&params, scope)?;
    let page = read(&state, &principal, move |r| r.list_logs(&filter)).await?;
    Ok(Json(json!({
        "logs": page.logs,
        "next_cursor": page.next_cursor.map(|c| c.encode()),
        "last_cursor": page.last_cursor.map(|c| c.encode()),
        "first_cursor": page.first_cursor.map(|c| c.encode()),
    })))
}

/// `GET /api/stats`: counts and database size (admin only).
pub(crate) async fn stats(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let principal = state.auth.authenticate(&headers)?;
    if !principal.is_admin() {
        return Err(ApiError::forbidden("stats need an admin key"));
    }
    let reader = state.store.reader().clone();
    let s = blocking(move || Ok(reader.stats()?)).await?;
    let w = state.store.writer().stats();
    Ok(Json(json!({
        "tenants": s.tenants,
        "traces": s.traces,
        "spans": s.spans,
        "logs": s.logs,
        "db_bytes": s.db_bytes,
        "wal_bytes": s.wal_bytes,
        "bytes_per_span": if s.spans > 0 { s.db_bytes as f64 / s.spans as f64 } else { 0.0 },
        "writer": {
            "queued_spans": w.queued_spans,
            "batches": w.batches,
            "spans_committed": w.spans_committed,
            "last_batch_spans": w.last_batch_spans,
            "mean_batch_spans": if w.batches > 0 { w.spans_committed as f64 / w.batches as f64 } else { 0.0 },
            "mean_commit_ms": if w.batches > 0 { w.commit_micros as f64 / w.batches as f64 / 1000.0 } else { 0.0 },
        }
    })))
}

/// `GET /api/whoami`: what the presented key may do, so a client (the UI)
/// knows whether to offer a tenant picker.
pub(crate) async fn whoami(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let principal = state.auth.authenticate(&headers)?;
    Ok(Json(match principal {
        Principal::Open => {
            json!({"role": "admin", "tenant_id": null, "read": true, "ingest": true, "open": true})
        }
        Principal::Admin => {
            json!({"role": "admin", "tenant_id": null, "read": true, "ingest": true, "open": false})
        }
        Principal::Metrics => {
            json!({"role": "metrics", "tenant_id": null, "read": false, "ingest": false, "open": false})
        }
        Principal::Tenant {
            tenant,
            ingest,
            read,
        } => {
            json!({"role": "tenant", "tenant_id": tenant, "read": read, "ingest": ingest, "open": false})
        }
    }))
}

/// `GET /api/tenants`: every tenant with data (admin only).
pub(crate) async fn tenants(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Json<Value>, ApiError> {
    let principal = state.auth.authenticate(&headers)?;
    if !principal.is_admin() {
        return Err(ApiError::forbidden("listing tenants needs an admin key"));
    }
    let reader = state.store.reader().clone();
    let names = blocking(move || Ok(reader.tenants()?)).await?;
    Ok(Json(json!({
        "tenants": names.iter().map(|t| json!({"tenant_id": t})).collect::<Vec<_>>()
    })))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_and_times_parse() {
        let now = now_nanos();
        let h = parse_time("2h").expect("age");
        assert!((now - h - 7_200_000_000_000).abs() < 5_000_000_000);
        assert!(parse_time("2025-12-14T10:30:45Z").is_some());
        for bad in ["", "h", "2w", "-2h", "99999999999999999999d", "2h30m"] {
            assert_eq!(parse_time(bad), None, "{bad}");
        }
    }
}
