//! Serving a router on a listener with connection hygiene, so that no
//! client can hold the collector's connections or its shutdown hostage:
//!
//! - a cap on open connections (shared by every listener, with headroom
//!   under the process's file-descriptor limit); past it new connections
//!   are closed at once;
//! - a connection must send its first bytes, and an HTTP/1 request its whole
//!   header, within `header_timeout`;
//! - a connection with no request in flight is closed after `idle_timeout`
//!   (HTTP/1 keep-alive and HTTP/2 alike);
//! - HTTP/2 connections allow a bounded number of concurrent streams;
//! - on stop, connections finish what is in flight and close; after
//!   `shutdown_timeout` the stalled ones are dropped.
//!
//! Request bodies have their own deadline ([`crate::body`]).

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::body::Body;
use axum::extract::ConnectInfo;
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::{watch, Semaphore};
use tower::ServiceExt;

/// How one listener treats its connections.
#[derive(Debug, Clone)]
pub struct ServeOptions {
    /// Time to the first byte of a connection and to the end of an HTTP/1
    /// request header.
    pub header_timeout: Duration,
    /// Time a connection may stay open with no request in flight.
    pub idle_timeout: Duration,
    /// Most concurrent streams on one HTTP/2 connection.
    pub h2_max_streams: u32,
    /// Serve HTTP/2 only (gRPC) instead of HTTP/1 only.
    pub http2: bool,
    /// Time a stop waits for in-flight requests before dropping connections.
    pub shutdown_timeout: Duration,
    /// Open connections allowed, shared by every listener given the same one.
    pub connections: Arc<Semaphore>,
}

/// Connections to allow when the config says 0: three quarters of the
/// file-descriptor limit, less room for the database, logs and clients.
pub fn default_max_connections() -> usize {
    let soft = rustix::process::getrlimit(rustix::process::Resource::Nofile)
        .current
        .unwrap_or(1024);
    let soft = usize::try_from(soft).unwrap_or(usize::MAX);
    (soft.saturating_sub(64) / 4 * 3).clamp(16, 16_384)
}

fn now_ms(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_millis()).unwrap_or(u64::MAX)
}

/// Marks a request in flight on its connection until dropped.
struct InFlight {
    count: Arc<AtomicUsize>,
    last: Arc<AtomicU64>,
    start: Instant,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.last.store(now_ms(self.start), Ordering::Relaxed);
        self.count.fetch_sub(1, Ordering::Relaxed);
    }
}

/// Serves `router` on `listener` until `stop` turns true, then drains.
pub async fn serve(
    listener: TcpListener,
    router: Router,
    options: ServeOptions,
    mut stop: watch::Receiver<bool>,
) {
    // Connection tasks, reaped as they end; aborted at the shutdown deadline.
    let mut tasks = tokio::task::JoinSet::new();
    let mut refused: u64 = 0;
    let stop_tasks = stop.clone();
    let stopped = async move {
        let _ = stop.wait_for(|s| *s).await;
    };
    tokio::pin!(stopped);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(x) => x,
                Err(e) => {
                    // Out of descriptors or similar: back off, keep serving.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut stopped => break,
            Some(_) = tasks.join_next(), if !tasks.is_empty() => continue,
        };
        let Ok(permit) = Arc::clone(&options.connections).try_acquire_owned() else {
            refused += 1;
            if refused.is_power_of_two() {
                tracing::warn!(refused, "connection limit reached; closing new connections");
            }
            drop(stream);
            continue;
        };
        let _ = stream.set_nodelay(true);
        let start = Instant::now();
        let count = Arc::new(AtomicUsize::new(0));
        let last = Arc::new(AtomicU64::new(0));
        let (c, l) = (Arc::clone(&count), Arc::clone(&last));
        let service = router
            .clone()
            .map_request(move |mut req: axum::http::Request<hyper::body::Incoming>| {
                req.extensions_mut().insert(ConnectInfo::<SocketAddr>(peer));
                req.map(Body::new)
            })
            .map_future(move |future| {
                // In flight from the call until the response body ends, or
                // until the request is dropped (a client's RST_STREAM).
                c.fetch_add(1, Ordering::Relaxed);
                let guard = InFlight {
                    count: Arc::clone(&c),
                    last: Arc::clone(&l),
                    start,
                };
                async move {
                    let response: Result<axum::response::Response, _> = future.await;
                    response.map(|res| {
                        res.map(|body| {
                            Body::new(Guarded {
                                body,
                                _guard: guard,
                            })
                        })
                    })
                }
            });
        let mut builder = auto::Builder::new(TokioExecutor::new());
        if options.http2 {
            builder = builder.http2_only();
            builder
                .http2()
                .timer(TokioTimer::new())
                .max_concurrent_streams(options.h2_max_streams)
                .max_pending_accept_reset_streams(Some(64))
                .keep_alive_interval(Some(Duration::from_secs(30)))
                .keep_alive_timeout(Duration::from_secs(10));
        } else {
            builder = builder.http1_only();
            builder
                .http1()
                .timer(TokioTimer::new())
                .header_read_timeout(options.header_timeout)
                .keep_alive(true);
        }
        let header_timeout = options.header_timeout;
        let idle_timeout = options.idle_timeout;
        let mut stop = stop_tasks.clone();
        tasks.spawn(async move {
            let _permit = permit;
            // A connection that sends nothing is closed without a task for HTTP.
            let mut first = [0u8; 1];
            match tokio::time::timeout(header_timeout, stream.peek(&mut first)).await {
                Ok(Ok(n)) if n > 0 => {}
                _ => return,
            }
            let conn = builder.serve_connection_with_upgrades(
                TokioIo::new(stream),
                TowerToHyperService::new(service),
            );
            tokio::pin!(conn);
            let stopping = async move {
                let _ = stop.wait_for(|s| *s).await;
            };
            tokio::pin!(stopping);
            let mut tick = tokio::time::interval(Duration::from_secs(1).min(idle_timeout));
            let mut closing = false;
            loop {
                tokio::select! {
                    _ = conn.as_mut() => break,
                    _ = tick.tick(), if !closing => {
                        let idle = count.load(Ordering::Relaxed) == 0
                            && now_ms(start).saturating_sub(last.load(Ordering::Relaxed))
                                >= idle_timeout.as_millis() as u64;
                        if idle {
                            tracing::debug!(%peer, "closing an idle connection");
                            // HTTP/2 gets a GOAWAY; HTTP/1 is closed between requests.
                            conn.as_mut().graceful_shutdown();
                            closing = true;
                        }
                    }
                    () = &mut stopping, if !closing => {
                        conn.as_mut().graceful_shutdown();
                        closing = true;
                    }
                }
            }
        });
    }
    drop(listener);
    // In-flight requests finish; connections close as they go idle. Past the
    // deadline the stalled ones are dropped.
    let drained = async { while tasks.join_next().await.is_some() {} };
    if tokio::time::timeout(options.shutdown_timeout, drained)
        .await
        .is_err()
    {
        tracing::warn!(
            secs = options.shutdown_timeout.as_secs_f64(),
            open = tasks.len(),
            "connections still open at the shutdown deadline are dropped"
        );
        tasks.abort_all();
        while tasks.join_next().await.is_some() {}
    }
}

/// A response body that keeps its connection's in-flight guard alive.
struct Guarded {
    body: Body,
    _guard: InFlight,
}

impl http_body::Body for Guarded {
    type Data = axum::body::Bytes;
    type Error = axum::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.body).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        http_body::Body::is_end_stream(&self.body)
    }

    fn size_hint(&self) -> http_body::SizeHint {
        http_body::Body::size_hint(&self.body)
    }
}
