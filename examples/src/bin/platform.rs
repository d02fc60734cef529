//! A platform API server behind the request middleware: every request gets a
//! request id, trace context, an `http.request` span and correlated logs; the
//! claim handler traces its own work as children of that span.
//!
//! Usage: `platform` (listens on 127.0.0.1:0 and prints its address).

use std::time::Duration;

use axum::extract::{Path, State};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::{json, Value};
use swarmscope_model::SpanStatus;
use swarmscope_sdk::log::SeedJsonLayer;
use swarmscope_sdk::metrics::{metrics_handler, MetricsEndpoint, SwarmMetrics, TenantStatusLabels};
use swarmscope_sdk::middleware::{RequestContext, RequestLayer};
use swarmscope_sdk::tracer::{Tracer, TracerConfig};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;

async fn claim(
    State(metrics): State<SwarmMetrics>,
    ctx: RequestContext,
    Path((tenant, ticket)): Path<(String, String)>,
) -> Json<Value> {
    metrics
        .tickets
        .get_or_create(&TenantStatusLabels {
            tenant_id: tenant.clone(),
            status: "claimed".into(),
        })
        .inc();
    ctx.set_tenant(&tenant);
    ctx.set_ticket(&ticket);
    ctx.set_agent("agent_789");
    let tracer = ctx.tracer(&ticket, "agent_789", &tenant);
    let mut span = tracer.start_span(
        "ticket.claim",
        [("ticket_id", ticket.as_str()), ("agent_id", "agent_789")],
    );
    tracing::info!("Ticket claimed by agent");
    span.set_status(SpanStatus::Ok);
    span.end();
    Json(json!({"ticket_id": ticket, "trace_id": ctx.trace_id(), "request_id": ctx.request_id()}))
}

async fn boom() -> Json<Value> {
    panic!("database is on fire")
}

#[tokio::main]
async fn main() {
    tracing_subscriber::registry()
        .with(SeedJsonLayer::new(std::io::stdout))
        .init();
    let tracer = Tracer::new(TracerConfig::from_env());
    tracer.install_shutdown_hook();
    let flusher = tracer.clone();
    tokio::spawn(async move {
        loop {
            tokio::time::sleep(Duration::from_millis(200)).await;
            flusher.flush().await;
        }
    });
    let metrics = SwarmMetrics::new();
    let mut registry = prometheus_client::registry::Registry::default();
    metrics.register(&mut registry);
    let endpoint = MetricsEndpoint::new(registry, std::env::var("PLATFORM_METRICS_TOKEN").ok());
    let app = Router::new()
        .route("/api/tenants/{tenant}/tickets/{ticket}/claim", post(claim))
        .route("/boom", post(boom))
        .with_state(metrics.clone())
        .layer(RequestLayer::new(tracer, "platform").with_metrics(metrics))
        .merge(
            Router::new()
                .route("/metrics", get(metrics_handler))
                .with_state(endpoint),
        );
    let listener = match tokio::net::TcpListener::bind("127.0.0.1:0").await {
        Ok(l) => l,
        Err(e) => {
            eprintln!("platform: cannot listen: {e}");
            std::process::exit(1);
        }
    };
    if let Ok(addr) = listener.local_addr() {
        println!("platform listening on http://{addr}");
    }
    if let Err(e) = axum::serve(listener, app).await {
        eprintln!("platform: {e}");
    }
}
