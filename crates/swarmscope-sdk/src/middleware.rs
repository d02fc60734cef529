//! Request middleware for axum services (the swarm platform's API server).
//!
//! For every request [`RequestLayer`]:
//! - takes `X-Request-ID` or makes one, and the trace context from
//!   `traceparent` (or `X-Trace-ID`), or starts a trace;
//! - runs the handler inside a `tracing` span carrying `request_id`,
//!   `trace_id` and `span_id` (and `tenant_id`, `ticket_id`, `agent_id` once
//!   the handler sets them through [`RequestContext`]), so every log line of
//!   the request is correlated;
//! - counts `swarm_api_requests_total` and `swarm_api_request_duration_ms`
//!   (with [`RequestLayer::with_metrics`]);
//! - records an `http.request` server span (method, route template — never
//!   the raw path —, status_code) with the tracer, parented to the caller's
//!   span;
//! - answers `X-Trace-ID` and `X-Request-ID` on every response;
//! - turns a handler panic into a JSON 500 that is still logged and traced.
//!
//! Handlers reach the request's context with the [`RequestContext`] extractor,
//! e.g. to name the tenant or to trace child work under `http.request`.

use std::convert::Infallible;
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use axum::body::Body;
use axum::extract::{FromRequestParts, MatchedPath};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Request, Response, StatusCode};
use futures_util::future::{BoxFuture, FutureExt};
use serde_json::{json, Value};
use swarmscope_model::timestamp::now_nanos;
use swarmscope_model::{SpanKind, SpanStatus};
use tracing::Instrument;

use crate::metrics::{ApiLabels, RouteLabels, SwarmMetrics};
use crate::propagation::{
    extract, format_traceparent, new_span_id, new_trace_id, X_REQUEST_ID, X_TRACE_ID,
};
use crate::tracer::{AgentTracer, ParentId, SpanId, Tracer};

/// The tower layer; add it with `Router::layer` so routes are matched first
/// and the span names the route template.
#[derive(Clone)]
pub struct RequestLayer {
    tracer: Tracer,
    default_tenant: Arc<str>,
    metrics: Option<SwarmMetrics>,
}

impl RequestLayer {
    /// Records `http.request` spans with `tracer`; requests whose handler
    /// names no tenant are attributed to `default_tenant`.
    pub fn new(tracer: Tracer, default_tenant: &str) -> RequestLayer {
        RequestLayer {
            tracer,
            default_tenant: Arc::from(default_tenant),
            metrics: None,
        }
    }

    /// Also counts requests and their latency in `swarm_api_requests_total`
    /// and `swarm_api_request_duration_ms` (labelled by route template).
    pub fn with_metrics(mut self, metrics: SwarmMetrics) -> RequestLayer {
        self.metrics = Some(metrics);
        self
    }
}

impl<S> tower::Layer<S> for RequestLayer {
    type Service = RequestService<S>;
    fn layer(&self, inner: S) -> RequestService<S> {
        RequestService {
            inner,
            layer: self.clone(),
        }
    }
}

/// The service [`RequestLayer`] wraps around each route.
#[derive(Clone)]
pub struct RequestService<S> {
    inner: S,
    layer: RequestLayer,
}

#[derive(Debug, Default)]
struct Owners {
    tenant_id: Option<String>,
    ticket_id: Option<String>,
    agent_id: Option<String>,
}

struct ContextInner {
    trace_id: String,
    span: SpanId,
    span_id: String,
    request_id: String,
    caller_span: Option<ParentId>,
    tracer: Tracer,
    owners: Mutex<Owners>,
    log_span: tracing::Span,
}

/// The current request's trace position and owners; an axum extractor.
#[derive(Clone)]
pub struct RequestContext(Arc<ContextInner>);

impl std::fmt::Debug for RequestContext {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RequestContext")
            .field("trace_id", &self.0.trace_id)
            .field("request_id", &self.0.request_id)
            .finish()
    }
}

impl RequestContext {
    /// The trace id (incoming or new).
    pub fn trace_id(&self) -> &str {
        &self.0.trace_id
    }

    /// The `http.request` span's id.
    pub fn span_id(&self) -> &str {
        &self.0.span_id
    }

    /// The request id (incoming or new).
    pub fn request_id(&self) -> &str {
        &self.0.request_id
    }

    /// `traceparent` for outgoing calls made while handling this request.
    pub fn traceparent(&self) -> String {
        format_traceparent(&self.0.trace_id, &self.0.span_id, true)
    }

    fn owners(&self) -> std::sync::MutexGuard<'_, Owners> {
        self.0.owners.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Names the tenant the request acts for (on its span and log lines).
    pub fn set_tenant(&self, tenant_id: &str) {
        self.0.log_span.record("tenant_id", tenant_id);
        self.owners().tenant_id = Some(tenant_id.to_owned());
    }

    /// Names the ticket the request is about.
    pub fn set_ticket(&self, ticket_id: &str) {
        self.0.log_span.record("ticket_id", ticket_id);
        self.owners().ticket_id = Some(ticket_id.to_owned());
    }

    /// Names the agent making the request.
    pub fn set_agent(&self, agent_id: &str) {
        self.0.log_span.record("agent_id", agent_id);
        self.owners().agent_id = Some(agent_id.to_owned());
    }

    /// A tracer for work done under this request: its spans are children of
    /// `http.request` in the same trace.
    pub fn tracer(&self, ticket_id: &str, agent_id: &str, tenant_id: &str) -> AgentTracer {
        AgentTracer::build(
            &self.0.tracer,
            self.0.trace_id.clone(),
            Some(ParentId::Local(self.0.span)),
            ticket_id,
            agent_id,
            tenant_id,
        )
    }
}

impl<S: Send + Sync> FromRequestParts<S> for RequestContext {
    type Rejection = (StatusCode, &'static str);

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        parts.extensions.get::<RequestContext>().cloned().ok_or((
            StatusCode::INTERNAL_SERVER_ERROR,
            "RequestLayer is not installed",
        ))
    }
}

fn new_request_id() -> String {
    // 64 random bits are plenty for a request id.
    format!("req_{}", new_span_id())
}

impl<S> tower::Service<Request<Body>> for RequestService<S>
where
    S: tower::Service<Request<Body>, Response = Response<Body>, Error = Infallible>
        + Clone
        + Send
        + 'static,
    S::Future: Send + 'static,
{
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = BoxFuture<'static, Result<Response<Body>, Infallible>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut req: Request<Body>) -> Self::Future {
        let incoming = extract(req.headers());
        let trace_id = incoming.trace_id.unwrap_or_else(new_trace_id);
        let request_id = incoming.request_id.unwrap_or_else(new_request_id);
        let span = SpanId::random();
        let span_id = span.to_string();
        let route = req
            .extensions()
            .get::<MatchedPath>()
            .map(|m| m.as_str().to_owned())
            .unwrap_or_else(|| "unmatched".to_owned());
        // Standard methods only as label values: a custom method would mint series.
        let method = match req.method().as_str() {
            m @ ("GET" | "POST" | "PUT" | "PATCH" | "DELETE" | "HEAD" | "OPTIONS") => m.to_owned(),
            _ => "OTHER".to_owned(),
        };
        let log_span = tracing::info_span!(
            "http.request",
            method = %method,
            route = %route,
            request_id = %request_id,
            trace_id = %trace_id,
            span_id = %span_id,
            tenant_id = tracing::field::Empty,
            ticket_id = tracing::field::Empty,
            agent_id = tracing::field::Empty,
        );
        let ctx = RequestContext(Arc::new(ContextInner {
            trace_id,
            span,
            span_id,
            request_id,
            caller_span: incoming
                .context
                .map(|c| ParentId::Remote(Arc::from(c.parent_span_id))),
            tracer: self.layer.tracer.clone(),
            owners: Mutex::new(Owners::default()),
            log_span: log_span.clone(),
        }));
        req.extensions_mut().insert(ctx.clone());
        // The clone-and-swap keeps the service that was polled ready.
        let clone = self.inner.clone();
        let mut inner = std::mem::replace(&mut self.inner, clone);
        let default_tenant = Arc::clone(&self.layer.default_tenant);
        let metrics = self.layer.metrics.clone();
        Box::pin(async move {
            let start_ns = now_nanos();
            let outcome = AssertUnwindSafe(inner.call(req))
                .catch_unwind()
                .instrument(log_span.clone())
                .await;
            let (mut response, panic_message) = match outcome {
                Ok(Ok(response)) => (response, None),
                Ok(Err(never)) => match never {},
                Err(panic) => {
                    let message = panic
                        .downcast_ref::<&str>()
                        .map(|s| (*s).to_owned())
                        .or_else(|| panic.downcast_ref::<String>().cloned())
                        .unwrap_or_else(|| "handler panicked".to_owned());
                    log_span.in_scope(|| tracing::error!(panic = %message, "handler panicked"));
                    let body = json!({"error": "internal error", "field": null}).to_string();
                    let mut r = Response::new(Body::from(body));
                    *r.status_mut() = StatusCode::INTERNAL_SERVER_ERROR;
                    r.headers_mut()
                        .insert("content-type", HeaderValue::from_static("application/json"));
                    (r, Some(message))
                }
            };
            let headers = response.headers_mut();
            if let Ok(v) = HeaderValue::from_str(&ctx.0.trace_id) {
                headers.insert(X_TRACE_ID, v);
            }
            if let Ok(v) = HeaderValue::from_str(&ctx.0.request_id) {
                headers.insert(X_REQUEST_ID, v);
            }
            let status_code = response.status().as_u16();
            if let Some(m) = &metrics {
                let elapsed_ms = (now_nanos() - start_ns) as f64 / 1e6;
                m.api_requests
                    .get_or_create(&ApiLabels {
                        method: method.clone(),
                        path: route.clone(),
                        status: status_code.to_string(),
                    })
                    .inc();
                m.api_request_duration_ms
                    .get_or_create(&RouteLabels {
                        method: method.clone(),
                        path: route.clone(),
                    })
                    .observe(elapsed_ms);
            }
            let owners = std::mem::take(&mut *ctx.owners());
            let tenant = owners
                .tenant_id
                .unwrap_or_else(|| default_tenant.to_string());
            let tracer = AgentTracer::build(
                &ctx.0.tracer,
                ctx.0.trace_id.clone(),
                ctx.0.caller_span.clone(),
                owners.ticket_id.as_deref().unwrap_or(""),
                owners.agent_id.as_deref().unwrap_or(""),
                &tenant,
            );
            let attributes = vec![
                ("method".into(), Value::from(method)),
                ("path".into(), Value::from(route)),
                ("status_code".into(), Value::from(status_code)),
                ("request_id".into(), Value::from(ctx.0.request_id.clone())),
            ];
            let status = if status_code >= 500 {
                SpanStatus::Error
            } else {
                SpanStatus::Ok
            };
            tracer.record_finished(
                ctx.0.span,
                "http.request",
                SpanKind::Server,
                start_ns,
                status,
                panic_message,
                attributes,
            );
            Ok(response)
        })
    }
}
