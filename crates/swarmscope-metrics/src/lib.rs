//! swarmscope's metrics: every exposed name declared once, typed by its label
//! set ([`catalogue`]), and rendered in Prometheus text or OpenMetrics
//! ([`exposition`]). The platform side (VMs, tickets, queue, API) is recorded
//! by an instrumented process through [`SwarmMetrics`]; the agent side (Claude
//! calls, tokens, cost, agent outcomes) is derived by the collector from spans.

pub mod catalogue;
pub mod exposition;

pub use catalogue::SwarmMetrics;
pub use exposition::{render, Format};
