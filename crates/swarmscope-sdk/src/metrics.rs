//! Platform-side metrics: the instrumented process records VMs, tickets, the
//! queue and its API through [`SwarmMetrics`] (the request middleware records
//! the API ones) and exposes them with [`metrics_handler`] for Prometheus.

use std::sync::Arc;

use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use prometheus_client::registry::Registry;
use subtle_eq::constant_time_eq;

pub use swarmscope_metrics::catalogue::*;
pub use swarmscope_metrics::{render, Format, SwarmMetrics};

/// What `/metrics` serves and who may read it.
#[derive(Clone)]
pub struct MetricsEndpoint {
    registry: Arc<Registry>,
    bearer_token: Option<Arc<str>>,
}

impl std::fmt::Debug for MetricsEndpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MetricsEndpoint")
            .field("protected", &self.bearer_token.is_some())
            .finish()
    }
}

impl MetricsEndpoint {
    /// Serves `registry`; with a token, only to `Authorization: Bearer TOKEN`.
    pub fn new(registry: Registry, bearer_token: Option<String>) -> MetricsEndpoint {
        MetricsEndpoint {
            registry: Arc::new(registry),
            bearer_token: bearer_token.map(Arc::from),
        }
    }

    /// Renders a scrape for a request's headers.
    pub fn respond(&self, headers: &HeaderMap) -> Response {
        if let Some(token) = &self.bearer_token {
            let presented = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "))
                .unwrap_or("");
            if !constant_time_eq(presented.as_bytes(), token.as_bytes()) {
                return (
                    StatusCode::UNAUTHORIZED,
                    [(header::WWW_AUTHENTICATE, "Bearer")],
                    "unauthorized\n",
                )
                    .into_response();
            }
        }
        let format = Format::from_accept(headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()));
        let body = render(&self.registry, format);
        let mut resp = body.into_response();
        resp.headers_mut().insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static(format.content_type()),
        );
        resp
    }
}

/// An axum handler for `GET /metrics`:
/// `.route("/metrics", get(metrics_handler)).with_state(endpoint)`.
pub async fn metrics_handler(
    axum::extract::State(endpoint): axum::extract::State<MetricsEndpoint>,
    headers: HeaderMap,
) -> Response {
    endpoint.respond(&headers)
}

mod subtle_eq {
    /// Compares without stopping at the first difference.
    pub(super) fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
        if a.len() != b.len() {
            return false;
        }
        a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
    }
}
