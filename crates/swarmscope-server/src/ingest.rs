//! Ingest: `POST /api/traces` (spans), `POST /api/logs` (log lines) and
//! `POST /api/vms/{vm_id}/terminated` (a VM died: close its open spans).
//! Everything is acknowledged only after commit.

use axum::body::Body;
use axum::extract::rejection::PathRejection;
use axum::extract::Path;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;
use swarmscope_model::timestamp::now_nanos;
use swarmscope_model::{decode_logs, decode_spans, DecodeError, Limits, LogRecord, Span};
use swarmscope_store::CloseScope;

use crate::body::read_body;
use crate::error::ApiError;
use crate::span_metrics;
use crate::AppState;

/// A wire decoder: body, limits, the key's tenant for items that name none.
type Decoder<T> = fn(&[u8], &Limits, Option<&str>) -> Result<Vec<T>, DecodeError>;

/// What span and log ingest share: authenticate, read the body within bounds,
/// decode it (on a blocking thread when large), and refuse it whole when any
/// item belongs to a tenant other than the key's.
async fn decode_checked<T: Send + 'static>(
    state: &AppState,
    headers: &HeaderMap,
    body: Body,
    decode: Decoder<T>,
    tenant_of: fn(&T) -> &str,
    tenant_field: &str,
) -> Result<Vec<T>, ApiError> {
    let principal = state.auth.authenticate(headers)?;
    let key_tenant = principal.ingest_tenant()?.map(str::to_owned);
    state.disk.check()?;
    let raw = read_body(headers, body, state.max_body_bytes).await?;
    let limits = state.limits.clone();
    let limit = state.max_body_bytes;
    let key = key_tenant.clone();
    let heavy = raw.is_heavy();
    let run = move || -> Result<Vec<T>, ApiError> {
        let content = raw.into_content(limit)?;
        Ok(decode(&content, &limits, key.as_deref())?)
    };
    // Gunzip and large decodes run on a blocking thread, never on the async workers.
    let items = if heavy {
        tokio::task::spawn_blocking(run)
            .await
            .map_err(|_| ApiError::internal("decoder task failed"))??
    } else {
        run()?
    };
    if let Some(tenant) = &key_tenant {
        if let Some(i) = items.iter().position(|item| tenant_of(item) != tenant) {
            return Err(ApiError::forbidden(format!(
                "item {i} belongs to tenant {:?} but this API key is bound to {tenant:?}",
                tenant_of(&items[i])
            ))
            .field(if items.len() == 1 {
                tenant_field.to_owned()
            } else {
                format!("[{i}].{tenant_field}")
            }));
        }
    }
    Ok(items)
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
    let mut spans = decode_checked(
        state,
        &headers,
        body,
        decode_spans,
        |s: &Span| &s.tenant_id,
        "tenantId",
    )
    .await?;
    span_metrics::scrubbed(&state.metrics, state.scrub.spans(&mut spans));
    let derived = span_metrics::prepare(&mut spans, state.metrics.prices());
    let tenants: Vec<String> = spans.iter().map(|s| s.tenant_id.clone()).collect();
    let outcome = state.store.writer().write(spans).await?;
    span_metrics::apply(&state.metrics, &derived, &outcome.stored);
    span_metrics::accepted(&state.metrics, tenants.into_iter(), false);
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
    let mut logs = decode_checked(
        state,
        &headers,
        body,
        decode_logs,
        |l: &LogRecord| &l.tenant_id,
        "tenant_id",
    )
    .await?;
    span_metrics::scrubbed(&state.metrics, state.scrub.logs(&mut logs));
    let tenants: Vec<String> = logs.iter().map(|l| l.tenant_id.clone()).collect();
    let outcome = state.store.writer().write_logs(logs).await?;
    span_metrics::accepted(&state.metrics, tenants.into_iter(), true);
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
    let principal = state.auth.authenticate(&headers)?;
    let tenant_id = principal.ingest_tenant()?.map(str::to_owned);
    let Path(vm_id) =
        vm_id.map_err(|e| ApiError::bad_param("vm_id", format!("invalid vm_id: {e}")))?;
    if vm_id.is_empty() || vm_id.len() > state.limits.max_id_bytes {
        return Err(ApiError::bad_param("vm_id", "vm_id must be 1 to 128 bytes"));
    }
    let outcome = state
        .store
        .writer()
        .close_open_spans(CloseScope::Vm { tenant_id, vm_id }, now_nanos())
        .await?;
    Ok(Json(json!({ "closed": outcome.closed })))
}
