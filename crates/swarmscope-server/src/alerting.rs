//! Wiring the built-in alert engine into the collector, and `GET /api/alerts`.

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::Json;
use serde_json::Value;
use swarmscope_alerts::engine::Source;
use swarmscope_alerts::{AlertEngine, AlertsConfig};

use crate::error::ApiError;
use crate::query::Params;
use crate::AppState;

/// Builds the engine over the collector's own metrics (instance
/// `swarmscope`) and the configured scrape targets, spawns its loop on the
/// current runtime, and returns the state with it attached. Does nothing
/// when `config.enabled` is false.
pub fn start_alerts(mut state: AppState, config: &AlertsConfig) -> AppState {
    if !config.enabled {
        return state;
    }
    let metrics = Arc::clone(&state.metrics);
    let data_dir = state
        .store
        .path()
        .parent()
        .map(std::path::Path::to_owned)
        .unwrap_or_default();
    let mut sources = vec![Source::Local {
        instance: "swarmscope".to_owned(),
        render: Box::new(move || metrics.render_for_alerts(&data_dir)),
    }];
    sources.extend(config.scrape.iter().cloned().map(Source::Http));
    let engine = AlertEngine::new(config, sources);
    tokio::spawn(Arc::clone(&engine).run());
    state.alerts = Some(engine);
    state
}

/// `GET /api/alerts[?tenant_id=]`: rules with their state, active alerts,
/// recent transitions and delivery counts. Read rights; a tenant key sees
/// alerts without a tenant and its own tenant's.
pub(crate) async fn alerts(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Json<Value>, ApiError> {
    let principal = state.auth.authenticate(&headers)?;
    let params = Params::parse(raw.as_deref(), &["tenant_id"])?;
    let scope = principal.read_scope(params.text("tenant_id")?.as_deref())?;
    let Some(engine) = &state.alerts else {
        return Err(ApiError::not_found(
            "the alert engine is off (alerts.enabled = false)",
        ));
    };
    Ok(Json(engine.snapshot(scope.as_deref())))
}
