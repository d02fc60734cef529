//! What an instrumented program links to be observed by swarmscope.
//!
//! - [`log`]: a `tracing-subscriber` layer writing the seed's JSON log line,
//!   with correlation ids (trace, request, tenant, ticket, agent) taken from
//!   the enclosing spans automatically — across `.await` and across
//!   `tokio::spawn` of instrumented futures, the Rust counterpart of the
//!   seed's AsyncLocalStorage decision — plus secret masking, a pretty format
//!   for terminals, and size-based file rotation.
//! - [`fatal!`]: the seed's fifth log level.

pub mod log;

/// Logs at the seed's `fatal` level: an `error` event marked `fatal = true`,
/// which the JSON layer writes as `"level": "fatal"`. Takes the same arguments
/// as [`tracing::error!`].
#[macro_export]
macro_rules! fatal {
    ($($arg:tt)+) => {
        ::tracing::error!(fatal = true, $($arg)+)
    };
}
