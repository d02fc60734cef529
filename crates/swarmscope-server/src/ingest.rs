//! Ingest: one pipeline for every way data arrives — the seed route
//! (`POST /api/traces`, `POST /api/logs`), OTLP/HTTP ([`crate::otlp`]) and
//! OTLP/gRPC ([`crate::grpc`]):
//!
//! authenticate → bounded read → bounded decode → validate → scrub → price →
//! write → count.
//!
//! [`admit`] authenticates before a byte of the body is read. [`read`] takes
//! the body within a size bound and a deadline, holding decode memory from
//! the caller's fair share ([`crate::fair_share`]). [`decode`] decompresses,
//! counts the items without parsing, reserves the memory parsing will take,
//! and only then parses. [`store_spans`] and [`store_logs`] validate times,
//! scrub, price, take room in the caller's share of the writer queue, and
//! acknowledge only after commit. Also here: `POST /api/vms/{vm_id}/terminated`.

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::Path;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use swarmscope_model::timestamp::now_nanos;
use swarmscope_model::{decode_logs, decode_spans, LogRecord, Span};
use swarmscope_store::{CloseScope, WriteOutcome};

use crate::body::{self, RawBody};
use crate::error::ApiError;
use crate::fair_share::Reservation;
use crate::span_metrics;
use crate::{AppState, Principal};

/// An authenticated ingest caller.
#[derive(Debug, Clone)]
pub(crate) struct Caller {
    /// The tenant the key is bound to (`None`: admin or open, any tenant).
    pub(crate) key_tenant: Option<String>,
    /// Whose fair share the request draws on.
    pub(crate) share: String,
}

/// Stage one, before the body is touched: the key, its right to ingest, and
/// room on the data disk.
pub(crate) fn admit(state: &AppState, headers: &HeaderMap) -> Result<Caller, ApiError> {
    let principal = state.auth.authenticate(headers)?;
    let key_tenant = principal.ingest_tenant()?.map(str::to_owned);
    state.disk.check()?;
    let share = match (&key_tenant, &principal) {
        (Some(t), _) => format!("tenant:{t}"),
        (None, Principal::Open) => "open".to_owned(),
        (None, _) => "admin".to_owned(),
    };
    Ok(Caller { key_tenant, share })
}

/// Stage two: the body, read within the size limit and the body deadline,
/// with the memory it takes (and its decompressed size, for gzip) held from
/// the caller's share.
pub(crate) async fn read(
    state: &AppState,
    caller: &Caller,
    headers: &HeaderMap,
    body: Body,
) -> Result<(RawBody, Reservation), ApiError> {
    let limit = state.max_body_bytes;
    let declared = body::declared_length(headers, limit)?.unwrap_or(limit);
    let gzip = body::is_gzip(headers)?;
    let need = declared + if gzip { limit } else { 0 };
    let held = state.shares.memory(&caller.share, need).await?;
    let raw = body::read_body(headers, body, limit, state.body_timeout).await?;
    Ok((raw, held))
}

/// How a body is counted before it is parsed: the bytes parsing it will
/// take, or why it is refused.
pub(crate) type Measure = fn(&[u8], usize) -> Result<usize, ApiError>;

/// Counts a JSON body (seed spans, seed logs, OTLP/JSON). The parsed tree
/// is converted into model items, about as large again: twice the tree.
pub(crate) fn measure_json(content: &[u8], max_items: usize) -> Result<usize, ApiError> {
    let shape = swarmscope_model::scan::scan(content, max_items)?;
    Ok(shape.decoded_bytes.saturating_mul(2))
}

/// Stage three: decompresses (refusing more than the limit out), counts the
/// items with `measure`, reserves the memory parsing will take from the
/// caller's share (giving back `held`, the read's, first: the raw body is
/// gone by then), then parses with `parse`. Large bodies are handled on a
/// blocking thread, never on the async workers. Returns the parsed value and
/// its reservation, which the caller shrinks once what it holds shrinks and
/// keeps until the items are written.
pub(crate) async fn decode<T: Send + 'static>(
    state: &AppState,
    caller: &Caller,
    raw: RawBody,
    held: Reservation,
    measure: Measure,
    parse: impl FnOnce(&[u8]) -> Result<T, ApiError> + Send + 'static,
) -> Result<(T, Parsed), ApiError> {
    let limit = state.max_body_bytes;
    let max_items = state.limits.max_spans_per_request;
    let heavy = raw.is_heavy();
    let unpack = move || -> Result<(Vec<u8>, usize), ApiError> {
        let content = raw.into_content(limit)?;
        let need = measure(&content, max_items)?;
        Ok((content, need))
    };
    let (content, need) = blocking_if(heavy, unpack).await?;
    drop(held);
    let reservation = state.shares.memory(&caller.share, need).await?;
    let body_bytes = content.len();
    let heavy = heavy || body_bytes > 64 * 1024;
    let items = blocking_if(heavy, move || parse(&content)).await?;
    Ok((
        items,
        Parsed {
            reservation,
            body_bytes,
        },
    ))
}

/// The memory a parsed request holds, reserved from its caller's share
/// until its items are written.
pub(crate) struct Parsed {
    reservation: Reservation,
    body_bytes: usize,
}

impl Parsed {
    /// Once only the converted items remain (the parse tree is gone): they
    /// take about twice their wire size.
    pub(crate) fn items_only(&mut self) {
        self.reservation
            .shrink_to(self.body_bytes.saturating_mul(2));
    }
}

async fn blocking_if<T: Send + 'static>(
    heavy: bool,
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    if heavy {
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|_| ApiError::internal("decoder task failed"))?
    } else {
        f()
    }
}

/// Why a span or line dated too far ahead is refused: it would escape age
/// retention (and a size cap would then evict older data first).
pub(crate) fn future_time(time_ns: i64, now_ns: i64, skew_ns: i64) -> Option<String> {
    (time_ns > now_ns.saturating_add(skew_ns)).then(|| {
        format!(
            "time is more than {} s in the future (max_future_skew_secs)",
            skew_ns / 1_000_000_000
        )
    })
}

/// The first span dated beyond the allowed skew: its index and why.
pub(crate) fn first_future_span(state: &AppState, spans: &[Span]) -> Option<(usize, String)> {
    let now = now_nanos();
    spans.iter().enumerate().find_map(|(i, s)| {
        future_time(
            s.start_ns.max(s.end_ns.unwrap_or(0)),
            now,
            state.future_skew_ns,
        )
        .map(|why| (i, why))
    })
}

/// The first line dated beyond the allowed skew.
pub(crate) fn first_future_line(state: &AppState, logs: &[LogRecord]) -> Option<(usize, String)> {
    let now = now_nanos();
    logs.iter()
        .enumerate()
        .find_map(|(i, l)| future_time(l.time_ns, now, state.future_skew_ns).map(|why| (i, why)))
}

/// The last stages for spans: scrub, price, room in the caller's queue
/// share, write (acknowledged after commit), count.
pub(crate) async fn store_spans(
    state: &AppState,
    caller: &Caller,
    mut spans: Vec<Span>,
) -> Result<WriteOutcome, ApiError> {
    if spans.is_empty() {
        return Ok(WriteOutcome::default());
    }
    span_metrics::scrubbed(&state.metrics, state.scrub.spans(&mut spans));
    let derived = span_metrics::prepare(&mut spans, state.metrics.prices());
    let tenants: Vec<String> = spans.iter().map(|s| s.tenant_id.clone()).collect();
    let _queued = state.shares.queue(&caller.share, spans.len())?;
    let outcome = state.store.writer().write(spans).await?;
    span_metrics::apply(&state.metrics, &derived, &outcome.stored);
    span_metrics::accepted(&state.metrics, tenants.into_iter(), false);
    Ok(outcome)
}

/// The last stages for log lines: scrub, room in the queue share, write, count.
pub(crate) async fn store_logs(
    state: &AppState,
    caller: &Caller,
    mut logs: Vec<LogRecord>,
) -> Result<WriteOutcome, ApiError> {
    if logs.is_empty() {
        return Ok(WriteOutcome::default());
    }
    span_metrics::scrubbed(&state.metrics, state.scrub.logs(&mut logs));
    let tenants: Vec<String> = logs.iter().map(|l| l.tenant_id.clone()).collect();
    let _queued = state.shares.queue(&caller.share, logs.len())?;
    let outcome = state.store.writer().write_logs(logs).await?;
    span_metrics::accepted(&state.metrics, tenants.into_iter(), true);
    Ok(outcome)
}

/// Refuses a seed body whole when any item belongs to a tenant other than
/// the key's, or is dated beyond the allowed skew.
fn check_items<T>(
    caller: &Caller,
    items: &[T],
    tenant_of: fn(&T) -> &str,
    tenant_field: &str,
    future: Option<(usize, String)>,
    time_field: &str,
) -> Result<(), ApiError> {
    let path = |i: usize, field: &str| {
        if items.len() == 1 {
            field.to_owned()
        } else {
            format!("[{i}].{field}")
        }
    };
    if let Some(tenant) = &caller.key_tenant {
        if let Some(i) = items.iter().position(|item| tenant_of(item) != tenant) {
            return Err(ApiError::forbidden(format!(
                "item {i} belongs to tenant {:?} but this API key is bound to {tenant:?}",
                tenant_of(&items[i])
            ))
            .field(path(i, tenant_field)));
        }
    }
    if let Some((i, why)) = future {
        return Err(ApiError::bad_param(&path(i, time_field), why));
    }
    Ok(())
}

/// Counts a refused request in the collector's health metrics.
fn counted(state: &AppState, logs: bool, result: Result<Response, ApiError>) -> Response {
    result.unwrap_or_else(|e| {
        state.metrics.rejected(logs, e.status.as_u16());
        e.into_response()
    })
}

/// Accepts spans; answers 202 `{"accepted": N}` once all N are committed.
pub(crate) async fn post_traces(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = ingest_spans(&state, headers, body).await;
    counted(&state, false, result)
}

async fn ingest_spans(
    state: &AppState,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let caller = admit(state, &headers)?;
    let (raw, held) = read(state, &caller, &headers, body).await?;
    let limits = state.limits.clone();
    let tenant = caller.key_tenant.clone();
    let (spans, mut parsed) = decode(state, &caller, raw, held, measure_json, move |content| {
        Ok(decode_spans(content, &limits, tenant.as_deref())?)
    })
    .await?;
    parsed.items_only();
    let future = first_future_span(state, &spans);
    check_items(
        &caller,
        &spans,
        |s| &s.tenant_id,
        "tenantId",
        future,
        "startTime",
    )?;
    let outcome = store_spans(state, &caller, spans).await?;
    let accepted = outcome.inserted + outcome.duplicates + outcome.completed;
    Ok((StatusCode::ACCEPTED, Json(json!({ "accepted": accepted }))).into_response())
}

/// Accepts log lines; answers 202 `{"accepted": N}` once all N are committed.
pub(crate) async fn post_logs(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let result = ingest_logs(&state, headers, body).await;
    counted(&state, true, result)
}

async fn ingest_logs(
    state: &AppState,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    let caller = admit(state, &headers)?;
    let (raw, held) = read(state, &caller, &headers, body).await?;
    let limits = state.limits.clone();
    let tenant = caller.key_tenant.clone();
    let (logs, mut parsed) = decode(state, &caller, raw, held, measure_json, move |content| {
        Ok(decode_logs(content, &limits, tenant.as_deref())?)
    })
    .await?;
    parsed.items_only();
    let future = first_future_line(state, &logs);
    check_items(
        &caller,
        &logs,
        |l| &l.tenant_id,
        "tenant_id",
        future,
        "timestamp",
    )?;
    let outcome = store_logs(state, &caller, logs).await?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "accepted": outcome.inserted + outcome.duplicates })),
    )
        .into_response())
}

/// A VM is gone: close its open spans as incomplete. A tenant key closes only
/// its tenant's spans. Answers 200 `{"closed": N}`.
pub(crate) async fn vm_terminated(
    State(state): State<AppState>,
    headers: HeaderMap,
    vm_id: Result<Path<String>, PathRejection>,
) -> Result<impl IntoResponse, ApiError> {
    let caller = admit(&state, &headers)?;
    let Path(vm_id) =
        vm_id.map_err(|e| ApiError::bad_param("vm_id", format!("invalid vm_id: {e}")))?;
    if vm_id.is_empty() || vm_id.len() > state.limits.max_id_bytes {
        return Err(ApiError::bad_param("vm_id", "vm_id must be 1 to 128 bytes"));
    }
    // A closure is a writer job: at most a few in flight per caller, each
    // taking room in its queue share.
    let _closing = state.shares.close(&caller.share).await?;
    let _queued = state.shares.queue(&caller.share, 1)?;
    let outcome = state
        .store
        .writer()
        .close_open_spans(
            CloseScope::Vm {
                tenant_id: caller.key_tenant,
                vm_id,
            },
            now_nanos(),
        )
        .await?;
    Ok(Json(json!({ "closed": outcome.closed })))
}
