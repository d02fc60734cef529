//! swarmscope's data model.
//!
//! The types every other crate speaks ([`Span`], [`SpanEvent`], [`SpanKind`],
//! [`SpanStatus`]), the compact id codec used by the store ([`id`]), RFC 3339
//! time handling ([`timestamp`]), secret recognition ([`secret`]) and the decoder for the seed's AgentTracer wire
//! format ([`seed`]). This crate does no I/O.

pub mod id;
pub mod limits;
pub mod log;
pub mod numbers;
pub mod price;
pub mod scan;
pub mod secret;
pub mod seed;
pub mod span;
pub mod timestamp;

pub use limits::Limits;
pub use log::{decode_logs, LogLevel, LogRecord};
pub use seed::{decode_spans, DecodeError};
pub use span::{Attributes, Span, SpanEvent, SpanKind, SpanStatus};
