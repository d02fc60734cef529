//! `GET /metrics`: the span-derived `swarm_*` metrics and the collector's
//! `swarmscope_*` health, for Prometheus. Prometheus text by default,
//! OpenMetrics when asked for. Readable with an admin key or a metrics key
//! (`swarmscope keys add --role metrics`), or by anyone when no key is set.

use axum::extract::State;
use axum::http::{header, HeaderMap, HeaderValue};
use axum::response::{IntoResponse, Response};
use swarmscope_metrics::Format;

use crate::error::ApiError;
use crate::AppState;

pub(crate) async fn metrics(
    State(state): State<AppState>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    let principal = state.auth.authenticate(&headers)?;
    if !principal.may_scrape() {
        return Err(ApiError::forbidden("/metrics needs a metrics or admin key"));
    }
    let format = Format::from_accept(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
    let reader = state.store.reader().clone();
    let metrics = std::sync::Arc::clone(&state.metrics);
    let dir = state.store.path().parent().map(std::path::Path::to_owned);
    let db_bytes = tokio::task::spawn_blocking(move || {
        if let Some(dir) = dir {
            metrics.set_disk_usage(&dir);
        }
        reader.db_bytes()
    })
    .await
    .map_err(|_| ApiError::internal("scrape task failed"))??;
    let body = state
        .metrics
        .scrape(format, state.store.writer().stats(), db_bytes);
    let mut resp = body.into_response();
    resp.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    Ok(resp)
}
