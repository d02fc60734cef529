//! The swarmscope collector as an axum application.
//!
//! [`router`] builds every route over an [`AppState`]; [`collector::Collector`]
//! binds, serves and runs everything else; the binary parses flags. Modules are named for what they own: [`config`] (the one config
//! struct), [`auth`] (API keys and tenancy), [`ingest`] (`POST /api/traces`),
//! the read API, the live feed (`GET /api/events`), the embedded trace
//! viewer UI, [`incomplete`] (closing spans that never end), [`error`] (the
//! one JSON error type).

mod alerting;
pub mod auth;
mod body;
pub mod collector;
pub mod config;
pub mod cors;
pub mod disk;
pub mod error;
pub mod fair_share;
pub mod forward;
pub mod grpc;
pub mod incomplete;
mod ingest;
mod live;
pub mod lockout;
pub mod otlp;
mod query;
#[doc(hidden)]
pub use query::parse_queries;
pub mod retention;
mod scrape;
pub mod scrub;
pub mod serve;
pub mod span_metrics;
mod ui;

use std::sync::Arc;

use axum::routing::{get, post};
use axum::Router;
use swarmscope_model::Limits;
use swarmscope_store::Store;

pub use auth::{Auth, Principal};
pub use config::{Config, ConfigError};
pub use error::ApiError;

/// Everything a handler needs; cheap to clone.
#[derive(Clone)]
pub struct AppState {
    /// The database.
    pub store: Store,
    /// Configured API keys.
    pub auth: Arc<Auth>,
    /// Bounds on decoded spans.
    pub limits: Arc<Limits>,
    /// Largest accepted request body, before and after decompression.
    pub max_body_bytes: usize,
    /// Span-derived and health metrics.
    pub metrics: Arc<span_metrics::CollectorMetrics>,
    /// Permits for live (server-sent events) connections.
    pub live: Arc<tokio::sync::Semaphore>,
    /// Failed authentications per address (429 past a limit).
    pub lockout: Arc<lockout::Lockout>,
    /// Refuses writes while the data disk is nearly full.
    pub disk: Arc<disk::DiskGuard>,
    /// The built-in alert engine, when running (see [`start_alerts`]).
    pub alerts: Option<Arc<swarmscope_alerts::AlertEngine>>,
    /// Masks secrets in spans and log lines before they are stored.
    pub scrub: Arc<scrub::Scrubber>,
    /// Cross-origin access, when `cors_origins` names any site.
    pub cors: Option<tower_http::cors::CorsLayer>,
    /// Set to true when the collector stops: live streams end at once, so a
    /// graceful shutdown does not wait for open viewers to disconnect.
    pub stopping: Arc<tokio::sync::watch::Sender<bool>>,
    /// Each caller's share of decode memory and of the writer queue.
    pub shares: Arc<fair_share::FairShare>,
    /// How long a request body may take to arrive.
    pub body_timeout: std::time::Duration,
    /// How far ahead of now a span or log line may be dated, in ns.
    pub future_skew_ns: i64,
    /// How long one read (a search, a trace) may run.
    pub query_timeout: std::time::Duration,
    /// Proxies whose `X-Forwarded-For` names the client (for the lockout).
    pub trusted_proxies: Arc<Vec<std::net::IpAddr>>,
}

impl AppState {
    /// State for `config` over an opened store.
    pub fn new(store: Store, config: &Config) -> Result<AppState, ConfigError> {
        let data_dir = store
            .path()
            .parent()
            .map(std::path::Path::to_owned)
            .unwrap_or_default();
        Ok(AppState {
            disk: Arc::new(disk::DiskGuard::new(config.min_free_disk_bytes, &data_dir)),
            lockout: Arc::new(lockout::Lockout::new(config.auth_failures_per_minute)),
            store,
            auth: Arc::new(Auth::from_config(&config.keys)?),
            limits: Arc::new(Limits::default()),
            max_body_bytes: config.max_body_bytes,
            metrics: Arc::new(span_metrics::CollectorMetrics::new(
                swarmscope_model::price::PriceTable::with_overrides(&config.prices),
                config.metrics_tenant_cap,
            )),
            live: Arc::new(tokio::sync::Semaphore::new(live::MAX_LIVE)),
            alerts: None,
            scrub: Arc::new(scrub::Scrubber::new(&config.scrub).map_err(ConfigError::Invalid)?),
            stopping: Arc::new(tokio::sync::watch::channel(false).0),
            cors: cors::layer(&config.cors_origins),
            shares: Arc::new(fair_share::FairShare::new(
                config.decode_memory_bytes,
                config.caller_decode_memory_bytes,
                config
                    .caller_queue_share_spans
                    .unwrap_or(config.queue_capacity_spans / 2),
                std::time::Duration::from_secs(5),
            )),
            body_timeout: std::time::Duration::from_secs(config.body_timeout_secs.max(1)),
            trusted_proxies: Arc::new(config.trusted_proxies.clone()),
            query_timeout: std::time::Duration::from_secs(config.query_timeout_secs.max(1)),
            future_skew_ns: i64::try_from(config.max_future_skew_secs)
                .unwrap_or(i64::MAX / 1_000_000_000)
                .saturating_mul(1_000_000_000),
        })
    }
}

pub use alerting::start_alerts;

/// Every route of the collector.
pub fn router(state: AppState) -> Router {
    let cors = state.cors.clone();
    let router = Router::new()
        .route("/", get(ui::index))
        .route("/ui/app.js", get(ui::script))
        .route("/ui/app.css", get(ui::stylesheet))
        .route("/healthz", get(query::healthz))
        .route("/metrics", get(scrape::metrics))
        .route(
            "/api/traces",
            post(ingest::post_traces).get(query::list_traces),
        )
        .route("/api/traces/{trace_id}", get(query::get_trace))
        .route("/api/logs", post(ingest::post_logs).get(query::list_logs))
        .route("/api/vms/{vm_id}/terminated", post(ingest::vm_terminated))
        .route("/api/tickets/{ticket_id}/traces", get(query::ticket_traces))
        .route("/api/stats", get(query::stats))
        .route("/api/whoami", get(query::whoami))
        .route("/api/tenants", get(query::tenants))
        .route("/api/events", get(live::events))
        .route("/api/alerts", get(alerting::alerts))
        .route("/v1/traces", post(otlp::post_traces))
        .route("/v1/logs", post(otlp::post_logs))
        .fallback(error::not_found)
        .method_not_allowed_fallback(error::method_not_allowed)
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(
            error::panic_response,
        ))
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            lockout::guard,
        ))
        .with_state(state);
    // Outermost, so preflights and refusals (429, 503) carry the headers too.
    match cors {
        Some(cors) => router.layer(cors),
        None => router,
    }
}
