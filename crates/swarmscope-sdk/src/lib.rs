//! What an instrumented program links to be observed by swarmscope.
//!
//! - [`log`]: a `tracing-subscriber` layer writing the seed's JSON log line,
//!   with correlation ids (trace, request, tenant, ticket, agent) taken from
//!   the enclosing spans automatically — across `.await` and across
//!   `tokio::spawn` of instrumented futures, the Rust counterpart of the
//!   seed's AsyncLocalStorage decision — plus secret masking, a pretty format
//!   for terminals, and size-based file rotation.
//! - [`propagation`]: W3C `traceparent` in and out, with the seed's
//!   `X-Trace-ID` as fallback and `X-Request-ID`.
//! - [`tracer`]: the seed's `AgentTracer` API; recording costs no I/O, and
//!   [`export`] flushes in one batched request with a deadline, retries and a
//!   spool file, and ships spools later.
//! - [`middleware`]: a tower layer for axum services: request id, trace
//!   context, an `http.request` span per request, correlated logs, response
//!   headers, panics turned into traced 500s.
//! - [`metrics`]: the `swarm_*` catalogue (`SwarmMetrics`) and a `/metrics`
//!   handler for the instrumented process.
//! - [`fatal!`]: the seed's fifth log level.

pub mod export;
pub mod log;
pub mod metrics;
pub mod middleware;
pub mod propagation;
pub mod tracer;

/// Logs at the seed's `fatal` level: an `error` event marked `fatal = true`,
/// which the JSON layer writes as `"level": "fatal"`. Takes the same arguments
/// as [`tracing::error!`].
#[macro_export]
macro_rules! fatal {
    ($($arg:tt)+) => {
        ::tracing::error!(fatal = true, $($arg)+)
    };
}
