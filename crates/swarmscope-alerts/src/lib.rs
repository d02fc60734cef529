//! The built-in alert engine: alerting without Prometheus.
//!
//! Every `interval` the engine samples metrics (the collector's own registry
//! and any `/metrics` it is told to scrape, such as the platform's), keeps a
//! bounded history of the series its rules read ([`samples`]), evaluates the
//! rules ([`rules`], [`eval`]) and moves each alert through pending → firing
//! → resolved with a `for` and a keep-firing grace ([`engine`]). Each
//! transition is one notification, delivered to Slack or PagerDuty by
//! workers that retry with backoff and never hold up evaluation
//! ([`notify`]). The default rules are the seed's eight (and a per-tenant
//! LLM cost budget); `deploy/prometheus/alerts.yml` holds the same rules in
//! PromQL, and a test keeps the two in step.

pub mod config;
pub mod engine;
pub mod eval;
pub mod notify;
pub mod rules;
pub mod samples;

pub use config::AlertsConfig;
pub use engine::{AlertEngine, AlertState, AlertStatus, Transition};
pub use rules::{default_rules, Channel, Expr, Rule, Selector, Severity};
