//! `GET /api/events`: live updates as server-sent events, so the UI shows new
//! and changed traces without reloading.
//!
//! Each connection polls the store once a second for traces written since
//! its last look (an indexed `updated_ns` range; no per-write fan-out inside
//! the writer) and sends each as an `event: trace` whose data is the trace
//! summary. When the alert engine runs, an `event: alerts` carries the
//! pending and firing alerts the caller may see, at connect and whenever they
//! change. Connections are capped ([`MAX_LIVE`], and a quarter of that for
//! one caller): the 65th, or a caller's 17th, gets a 503.

use std::collections::VecDeque;
use std::convert::Infallible;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::HeaderMap;
use axum::response::sse::{Event, KeepAlive, Sse};
use axum::response::{IntoResponse, Response};
use swarmscope_model::timestamp::now_nanos;
use swarmscope_store::{Reader, TraceFilter};
use tokio::sync::OwnedSemaphorePermit;

use crate::error::ApiError;
use crate::query::{blocking, Params};
use crate::AppState;

/// Most live connections at once.
pub(crate) const MAX_LIVE: usize = 64;

/// How often a connection looks for changes.
const POLL: Duration = Duration::from_secs(1);

/// Most traces sent per look (a burst beyond it is caught up next second).
const PER_POLL: usize = 200;

struct Feed {
    reader: Reader,
    alerts: Option<Arc<swarmscope_alerts::AlertEngine>>,
    alerts_seen: Option<u64>,
    tenant: Option<String>,
    since_ns: i64,
    queue: VecDeque<Event>,
    stopping: tokio::sync::watch::Receiver<bool>,
    _permit: OwnedSemaphorePermit,
    _share: crate::fair_share::Reservation,
}

impl Feed {
    async fn next(mut self) -> Option<(Result<Event, Infallible>, Feed)> {
        loop {
            if let Some(event) = self.queue.pop_front() {
                return Some((Ok(event), self));
            }
            if let Some(engine) = &self.alerts {
                let version = engine.version();
                if self.alerts_seen != Some(version) {
                    self.alerts_seen = Some(version);
                    let active = engine.active(self.tenant.as_deref());
                    let data = serde_json::json!({ "alerts": active }).to_string();
                    return Some((Ok(Event::default().event("alerts").data(data)), self));
                }
            }
            tokio::select! {
                _ = tokio::time::sleep(POLL) => {}
                // The collector is stopping: end the stream (the client's
                // EventSource reconnects to whichever collector comes up).
                _ = self.stopping.wait_for(|s| *s) => return None,
            }
            let filter = TraceFilter {
                tenant_id: self.tenant.clone(),
                updated_after_ns: Some(self.since_ns),
                limit: PER_POLL,
                ..TraceFilter::default()
            };
            let reader = self.reader.clone();
            let Ok(page) = blocking(move || Ok(reader.list_traces(&filter)?)).await else {
                continue;
            };
            // Oldest change first, so a client applying them in order ends
            // with the newest state.
            let mut traces = page.traces;
            traces.sort_by_key(|t| t.updated_ns);
            for t in traces {
                self.since_ns = self.since_ns.max(t.updated_ns);
                self.queue.push_back(
                    Event::default()
                        .event("trace")
                        .data(t.to_json().to_string()),
                );
            }
        }
    }
}

/// `GET /api/events[?tenant_id=]`: read rights; a tenant key sees only its
/// tenant's traces.
pub(crate) async fn events(
    State(state): State<AppState>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let principal = state.auth.authenticate(&headers)?;
    let params = Params::parse(raw.as_deref(), &["tenant_id"])?;
    let tenant = principal.read_scope(params.text("tenant_id")?.as_deref())?;
    let share = state.shares.live(&crate::query::reader_share(&principal))?;
    let permit = Arc::clone(&state.live).try_acquire_owned().map_err(|_| {
        ApiError::new(
            axum::http::StatusCode::SERVICE_UNAVAILABLE,
            format!("too many live connections (at most {MAX_LIVE})"),
        )
    })?;
    let feed = Feed {
        reader: state.store.reader().clone(),
        alerts: state.alerts.clone(),
        alerts_seen: None,
        tenant,
        since_ns: now_nanos(),
        queue: VecDeque::from([Event::default().event("hello").data("{}")]),
        stopping: state.stopping.subscribe(),
        _permit: permit,
        _share: share,
    };
    let stream = futures_util::stream::unfold(feed, Feed::next);
    Ok(Sse::new(stream)
        .keep_alive(KeepAlive::new().interval(Duration::from_secs(15)))
        .into_response())
}
