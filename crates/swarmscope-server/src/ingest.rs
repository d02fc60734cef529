//! `POST /api/traces`: the seed's wire format in, acknowledged after commit.

use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::json;
use swarmscope_model::decode_spans;

use crate::body::read_body;
use crate::error::ApiError;
use crate::AppState;

/// Bodies larger than this are decoded on a blocking thread, so a 5 MiB
/// request never stalls the async workers.
const INLINE_DECODE_BYTES: usize = 64 * 1024;

/// Accepts spans; answers 202 `{"accepted": N}` once all N are committed.
pub(crate) async fn post_traces(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Body,
) -> Result<impl IntoResponse, ApiError> {
    let principal = state.auth.authenticate(&headers)?;
    let key_tenant = principal.ingest_tenant()?.map(str::to_owned);
    let bytes = read_body(&headers, body, state.max_body_bytes).await?;
    let limits = state.limits.clone();
    let decode =
        move || decode_spans(&bytes, &limits, key_tenant.as_deref()).map(|s| (s, key_tenant));
    let (spans, key_tenant) = if bytes_len_hint(&headers) > INLINE_DECODE_BYTES {
        tokio::task::spawn_blocking(decode)
            .await
            .map_err(|_| ApiError::internal("decoder task failed"))??
    } else {
        decode()?
    };
    if let Some(tenant) = &key_tenant {
        if let Some(i) = spans.iter().position(|s| &s.tenant_id != tenant) {
            return Err(ApiError::forbidden(format!(
                "span {i} belongs to tenant {:?} but this API key is bound to {tenant:?}",
                spans[i].tenant_id
            ))
            .field(if spans.len() == 1 {
                "tenantId".to_owned()
            } else {
                format!("[{i}].tenantId")
            }));
        }
    }
    let outcome = state.store.writer().write(spans).await?;
    let accepted = outcome.inserted + outcome.duplicates;
    Ok((StatusCode::ACCEPTED, Json(json!({ "accepted": accepted }))))
}

fn bytes_len_hint(headers: &HeaderMap) -> usize {
    headers
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
        .unwrap_or(usize::MAX)
}
