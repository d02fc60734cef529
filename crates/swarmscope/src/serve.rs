//! `swarmscope serve`: load config, open the store, serve until a signal,
//! then stop accepting, drain the ingest queue, commit, and exit 0.

use std::io::Write;

use swarmscope_server::collector::{Collector, StartError};
use swarmscope_server::Config;

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
    let collector = start_collector(&config).await?;
    if collector.open {
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
    collector.stop().await?;
    Ok(())
}

/// Starts a collector; a config it cannot use is a usage error (exit 2).
pub(crate) async fn start_collector(config: &Config) -> anyhow::Result<Collector> {
    Collector::start(config).await.map_err(|e| match e {
        StartError::Config(e) => UsageError(e.to_string()).into(),
        other => anyhow::Error::new(other),
    })
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
