//! `swarmscope serve`: load config, open the store, serve until a signal,
//! then stop accepting, drain the ingest queue, commit, and exit 0.

use std::io::Write;
use std::net::SocketAddr;

use anyhow::Context;
use std::time::Duration;

use swarmscope_server::serve::ServeOptions;
use swarmscope_server::{router, AppState, Config};
use swarmscope_store::{Store, WriterConfig};
use tokio::net::TcpListener;

use crate::cli::ServeArgs;
use crate::UsageError;

/// Resolves the effective config: file, then env and flags (clap merges those two).
pub(crate) fn resolve_config(args: &ServeArgs) -> Result<Config, UsageError> {
    let mut config = match &args.config {
        Some(path) => Config::load(path).map_err(|e| UsageError(e.to_string()))?,
        None => Config::default(),
    };
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    if let Some(dir) = &args.data_dir {
        config.data_dir = dir.clone();
    }
    Ok(config)
}

pub(crate) fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("SWARMSCOPE_LOG")
        .or_else(|_| tracing_subscriber::EnvFilter::try_from_default_env())
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    // Colours only on a terminal: a journal or a log file gets plain text.
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .with_writer(std::io::stderr)
        .try_init();
}

pub(crate) async fn run(args: ServeArgs) -> anyhow::Result<()> {
    let config = resolve_config(&args)?;
    // Every listener counts: OTLP/gRPC serves writes too.
    let listeners =
        std::iter::once(config.listen).chain(swarmscope_server::otlp::grpc_addr(&config));
    for at in listeners {
        if config.keys.is_empty() && !at.ip().is_loopback() && !args.insecure {
            return Err(UsageError(format!(
                "refusing to listen on {at} without API keys: add one with `swarmscope keys add` and pass --config, or pass --insecure"
            ))
            .into());
        }
    }
    init_logging();
    let collector = Collector::start(&config).await?;
    if collector.state_open {
        tracing::warn!("no API keys configured: every caller may read and write every tenant");
    }
    {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "swarmscope {} listening on http://{} (data in {}){}",
            env!("CARGO_PKG_VERSION"),
            collector.addr,
            config.data_dir.display(),
            collector
                .grpc_addr
                .map(|a| format!("; OTLP/gRPC on {a}"))
                .unwrap_or_default()
        )?;
        out.flush()?;
    }
    shutdown_signal().await;
    collector.stop().await
}

/// A collector serving on this process's runtime: `serve` runs one until a
/// signal, `demo` runs one next to its simulated fleet.
pub(crate) struct Collector {
    /// The address it listens on.
    pub(crate) addr: SocketAddr,
    /// Where OTLP/gRPC listens, when on.
    pub(crate) grpc_addr: Option<SocketAddr>,
    /// Its store (for progress figures).
    pub(crate) store: Store,
    /// The built-in alert engine, when enabled.
    pub(crate) alerts: Option<std::sync::Arc<swarmscope_alerts::AlertEngine>>,
    /// Whether no keys are configured.
    state_open: bool,
    stop: std::sync::Arc<tokio::sync::watch::Sender<bool>>,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Collector {
    /// Opens the store, binds, and serves in a background task.
    pub(crate) async fn start(config: &Config) -> anyhow::Result<Collector> {
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
        .with_context(|| format!("cannot open the store in {}", config.data_dir.display()))?;
        let state = AppState::new(store.clone(), config).map_err(|e| UsageError(e.to_string()))?;
        let state = swarmscope_server::start_alerts(state, &config.alerts);
        let state_open = state.auth.is_open();
        let alerts = state.alerts.clone();
        if config.incomplete_after_secs > 0 {
            let after = std::time::Duration::from_secs(config.incomplete_after_secs);
            let interval = (after / 10).clamp(
                std::time::Duration::from_secs(1),
                std::time::Duration::from_secs(60),
            );
            tokio::spawn(swarmscope_server::incomplete::close_silent_spans(
                store.writer().clone(),
                after,
                interval,
            ));
        }
        tokio::spawn(std::sync::Arc::clone(&state.disk).watch(config.data_dir.clone()));
        swarmscope_server::forward::start(
            store.clone(),
            config.forward.clone(),
            std::sync::Arc::clone(&state.metrics),
        );
        tokio::spawn(swarmscope_server::retention::run(
            store.clone(),
            config.retention.clone(),
            std::sync::Arc::clone(&state.metrics),
        ));
        let listener = TcpListener::bind(config.listen)
            .await
            .with_context(|| format!("cannot listen on {}", config.listen))?;
        let addr = listener.local_addr().context("no local address")?;
        // One stop signal for the HTTP and gRPC servers and the live streams.
        let stop = std::sync::Arc::clone(&state.stopping);
        let options = ServeOptions {
            header_timeout: Duration::from_secs(config.header_timeout_secs.max(1)),
            idle_timeout: Duration::from_secs(config.idle_timeout_secs.max(1)),
            h2_max_streams: config.h2_max_concurrent_streams.max(1),
            http2: false,
            shutdown_timeout: Duration::from_secs(config.shutdown_timeout_secs),
            connections: std::sync::Arc::new(tokio::sync::Semaphore::new(
                match config.max_connections {
                    0 => swarmscope_server::serve::default_max_connections(),
                    n => n,
                },
            )),
        };
        let (grpc_addr, grpc) = match swarmscope_server::otlp::grpc_addr(config) {
            Some(at) => {
                let grpc_listener = TcpListener::bind(at).await.with_context(|| {
                    format!("cannot listen for OTLP/gRPC on {at} (move it with otlp_grpc_listen, or set otlp_grpc = false)")
                })?;
                let bound = grpc_listener.local_addr().context("no local address")?;
                let task = tokio::spawn(swarmscope_server::serve::serve(
                    grpc_listener,
                    swarmscope_server::grpc::router(state.clone()),
                    ServeOptions {
                        http2: true,
                        ..options.clone()
                    },
                    stop.subscribe(),
                ));
                (Some(bound), Some(task))
            }
            None => (None, None),
        };
        let writer = store.writer().clone();
        let stopped = stop.subscribe();
        let task = tokio::spawn(async move {
            swarmscope_server::serve::serve(listener, router(state), options, stopped).await;
            if let Some(grpc) = grpc {
                if grpc.await.is_err() {
                    tracing::error!("OTLP/gRPC server task failed");
                }
            }
            tracing::info!("stopped accepting; draining the ingest queue");
            tokio::task::spawn_blocking(move || writer.close())
                .await
                .context("writer shutdown failed")?;
            tracing::info!("all queued spans committed; bye");
            Ok(())
        });
        Ok(Collector {
            addr,
            grpc_addr,
            store,
            alerts,
            state_open,
            stop,
            task,
        })
    }

    /// Stops accepting, lets in-flight requests finish, commits the queue.
    pub(crate) async fn stop(self) -> anyhow::Result<()> {
        self.stop.send_replace(true);
        self.task.await.context("the server task failed")?
    }
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = term => {},
    }
    tracing::info!("shutdown signal received");
}
