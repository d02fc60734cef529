//! The collector's lifecycle: one [`Collector`] owns everything that runs —
//! the writer (through the store), the HTTP and OTLP/gRPC listeners, the
//! silence sweep, the disk watch, retention, forwarding and the alert engine
//! — starts them from one [`Config`], and on [`Collector::stop`] stops
//! accepting, lets in-flight requests finish (up to `shutdown_timeout_secs`),
//! ends the background tasks and commits what the writer holds. The binary
//! only parses flags and calls it.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use swarmscope_store::{Store, StoreError, WriterConfig};
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

use crate::serve::{serve, ServeOptions};
use crate::{router, AppState, Config, ConfigError};

/// Why a collector could not start. Each message fits on one line.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// The configuration cannot be used (a bad key, pattern or origin).
    #[error("{0}")]
    Config(#[from] ConfigError),
    /// The store could not be opened.
    #[error("cannot open the store in {dir}: {source}")]
    Store {
        /// The data directory.
        dir: String,
        /// Why.
        source: StoreError,
    },
    /// An address could not be bound.
    #[error("cannot listen{what} on {addr}: {source}{hint}")]
    Bind {
        /// Which listener.
        what: &'static str,
        /// The address.
        addr: SocketAddr,
        /// The OS error.
        source: std::io::Error,
        /// How to move it.
        hint: &'static str,
    },
}

/// Why a stop did not end cleanly.
#[derive(Debug, thiserror::Error)]
pub enum StopError {
    /// A task of the collector panicked.
    #[error("a collector task failed: {0}")]
    Task(String),
}

/// A running collector.
pub struct Collector {
    /// The HTTP address it listens on.
    pub addr: SocketAddr,
    /// Where OTLP/gRPC listens, when on.
    pub grpc_addr: Option<SocketAddr>,
    /// Its store.
    pub store: Store,
    /// The built-in alert engine, when enabled.
    pub alerts: Option<Arc<swarmscope_alerts::AlertEngine>>,
    /// Whether no keys are configured (every caller may do everything).
    pub open: bool,
    stop: Arc<tokio::sync::watch::Sender<bool>>,
    listeners: Vec<JoinHandle<()>>,
    background: Vec<JoinHandle<()>>,
}

async fn bind(
    addr: SocketAddr,
    what: &'static str,
    hint: &'static str,
) -> Result<(TcpListener, SocketAddr), StartError> {
    let bind_error = |source| StartError::Bind {
        what,
        addr,
        source,
        hint,
    };
    let listener = TcpListener::bind(addr).await.map_err(bind_error)?;
    let bound = listener.local_addr().map_err(bind_error)?;
    Ok((listener, bound))
}

impl Collector {
    /// Opens the store, binds every listener and starts every task.
    pub async fn start(config: &Config) -> Result<Collector, StartError> {
        let store = Store::open(
            &config.data_dir,
            WriterConfig {
                queue_capacity_spans: config.queue_capacity_spans,
                max_batch_spans: config.max_batch_spans,
                outbox_capacity: if config.forward.is_empty() {
                    0
                } else {
                    config.forward_backlog
                },
            },
        )
        .map_err(|source| StartError::Store {
            dir: config.data_dir.display().to_string(),
            source,
        })?;
        let state = AppState::new(store.clone(), config)?;
        let state = crate::start_alerts(state, &config.alerts);
        let mut background = Vec::new();
        if config.incomplete_after_secs > 0 {
            let after = Duration::from_secs(config.incomplete_after_secs);
            let interval = (after / 10).clamp(Duration::from_secs(1), Duration::from_secs(60));
            background.push(tokio::spawn(crate::incomplete::close_silent_spans(
                store.writer().clone(),
                after,
                interval,
            )));
        }
        background.push(tokio::spawn(
            Arc::clone(&state.disk).watch(config.data_dir.clone()),
        ));
        background.extend(crate::forward::start(
            store.clone(),
            config.forward.clone(),
            Arc::clone(&state.metrics),
        ));
        background.push(tokio::spawn(crate::retention::run(
            store.clone(),
            config.retention.clone(),
            Arc::clone(&state.metrics),
        )));
        let (listener, addr) = bind(config.listen, "", " (move it with --listen)").await?;
        let stop = Arc::clone(&state.stopping);
        let options = ServeOptions {
            header_timeout: Duration::from_secs(config.header_timeout_secs.max(1)),
            idle_timeout: Duration::from_secs(config.idle_timeout_secs.max(1)),
            h2_max_streams: config.h2_max_concurrent_streams.max(1),
            http2: false,
            shutdown_timeout: Duration::from_secs(config.shutdown_timeout_secs),
            connections: Arc::new(tokio::sync::Semaphore::new(match config.max_connections {
                0 => crate::serve::default_max_connections(),
                n => n,
            })),
        };
        let mut listeners = Vec::new();
        let grpc_addr = match crate::otlp::grpc_addr(config) {
            Some(at) => {
                let (grpc_listener, bound) = bind(
                    at,
                    " for OTLP/gRPC",
                    " (move it with otlp_grpc_listen, or set otlp_grpc = false)",
                )
                .await?;
                listeners.push(tokio::spawn(serve(
                    grpc_listener,
                    crate::grpc::router(state.clone()),
                    ServeOptions {
                        http2: true,
                        ..options.clone()
                    },
                    stop.subscribe(),
                )));
                Some(bound)
            }
            None => None,
        };
        let open = state.auth.is_open();
        let alerts = state.alerts.clone();
        listeners.push(tokio::spawn(serve(
            listener,
            router(state),
            options,
            stop.subscribe(),
        )));
        Ok(Collector {
            addr,
            grpc_addr,
            store,
            alerts,
            open,
            stop,
            listeners,
            background,
        })
    }

    /// Stops accepting, lets in-flight requests finish (up to the shutdown
    /// deadline), ends the background tasks and commits the writer's queue.
    pub async fn stop(self) -> Result<(), StopError> {
        self.stop.send_replace(true);
        let mut failed = None;
        for task in self.listeners {
            if let Err(e) = task.await {
                failed = Some(e.to_string());
            }
        }
        tracing::info!("stopped accepting; draining the ingest queue");
        for task in &self.background {
            task.abort();
        }
        for task in self.background {
            let _ = task.await;
        }
        let writer = self.store.writer().clone();
        if let Err(e) = tokio::task::spawn_blocking(move || writer.close()).await {
            failed = Some(e.to_string());
        }
        tracing::info!("all queued spans committed; bye");
        match failed {
            Some(e) => Err(StopError::Task(e)),
            None => Ok(()),
        }
    }
}
