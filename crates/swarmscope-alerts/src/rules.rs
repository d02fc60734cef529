//! Alert rules: the seed's eight and a per-tenant LLM cost budget, as data.
//!
//! An expression is one of four shapes, enough for every rule here and each
//! printable as the PromQL Prometheus would run (`deploy/prometheus/alerts.yml`
//! holds exactly those strings; a test checks it).

use std::time::Duration;

use serde::Serialize;

/// How bad.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Look soon.
    Warning,
    /// Wake someone.
    Critical,
}

impl Severity {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }
}

/// Where a rule's notifications go.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Channel {
    /// A Slack incoming webhook.
    Slack,
    /// PagerDuty Events API v2.
    Pagerduty,
}

impl Channel {
    /// The label value.
    pub fn as_str(self) -> &'static str {
        match self {
            Channel::Slack => "slack",
            Channel::Pagerduty => "pagerduty",
        }
    }
}

/// A label matcher.
#[derive(Debug, Clone, PartialEq)]
pub enum Matcher {
    /// `label="value"`.
    Eq(String, String),
    /// `label=~"5.."`: three characters, the first given (HTTP status class).
    Class(String, char),
}

impl Matcher {
    fn matches(&self, labels: &crate::samples::Labels) -> bool {
        match self {
            Matcher::Eq(k, v) => labels.get(k).is_some_and(|x| x == v),
            Matcher::Class(k, c) => labels
                .get(k)
                .is_some_and(|x| x.len() == 3 && x.starts_with(*c)),
        }
    }

    fn promql(&self) -> String {
        match self {
            Matcher::Eq(k, v) => format!("{k}=\"{v}\""),
            Matcher::Class(k, c) => format!("{k}=~\"{c}..\""),
        }
    }
}

/// A metric name and label matchers.
#[derive(Debug, Clone, PartialEq)]
pub struct Selector {
    /// The exposed metric name.
    pub metric: String,
    /// Every matcher must hold.
    pub matchers: Vec<Matcher>,
}

impl Selector {
    /// `metric{}`.
    pub fn new(metric: &str) -> Selector {
        Selector {
            metric: metric.to_owned(),
            matchers: Vec::new(),
        }
    }

    /// Adds `label="value"`.
    pub fn eq(mut self, label: &str, value: &str) -> Selector {
        self.matchers
            .push(Matcher::Eq(label.to_owned(), value.to_owned()));
        self
    }

    /// Adds `label=~"C.."`.
    pub fn class(mut self, label: &str, first: char) -> Selector {
        self.matchers.push(Matcher::Class(label.to_owned(), first));
        self
    }

    /// Whether a series' labels match.
    pub fn matches(&self, labels: &crate::samples::Labels) -> bool {
        self.matchers.iter().all(|m| m.matches(labels))
    }

    fn promql(&self) -> String {
        if self.matchers.is_empty() {
            return self.metric.clone();
        }
        let m: Vec<String> = self.matchers.iter().map(Matcher::promql).collect();
        format!("{}{{{}}}", self.metric, m.join(", "))
    }
}

/// How samples become one value per group.
#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    /// `sum(rate(num[w])) / sum(rate(den[w]))`.
    Ratio {
        /// Counted events.
        numerator: Selector,
        /// All events.
        denominator: Selector,
        /// Window.
        window: Duration,
    },
    /// `sum by (by) (increase(sel[w]))`.
    Increase {
        /// The counter.
        selector: Selector,
        /// Window.
        window: Duration,
        /// Group labels (empty: one group).
        by: Vec<String>,
    },
    /// `histogram_quantile(q, sum by (le) (rate(bucket[w])))`.
    Quantile {
        /// The quantile, 0–1.
        q: f64,
        /// The `_bucket` series.
        buckets: Selector,
        /// Window.
        window: Duration,
    },
    /// `sum by (by) (sel)` or `max by (by) (sel)` of the latest values.
    Gauge {
        /// The gauge.
        selector: Selector,
        /// `max` when true, else `sum`.
        max: bool,
        /// Group labels.
        by: Vec<String>,
    },
}

fn window(d: Duration) -> String {
    let s = d.as_secs();
    if s % 3600 == 0 {
        format!("{}h", s / 3600)
    } else if s % 60 == 0 {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

impl Expr {
    /// The PromQL Prometheus would evaluate for this expression.
    pub fn promql(&self) -> String {
        match self {
            Expr::Ratio {
                numerator,
                denominator,
                window: w,
            } => format!(
                "sum(rate({}[{}])) / sum(rate({}[{}]))",
                numerator.promql(),
                window(*w),
                denominator.promql(),
                window(*w)
            ),
            Expr::Increase {
                selector,
                window: w,
                by,
            } => {
                let inner = format!("increase({}[{}])", selector.promql(), window(*w));
                if by.is_empty() {
                    format!("sum({inner})")
                } else {
                    format!("sum by ({}) ({inner})", by.join(", "))
                }
            }
            Expr::Quantile {
                q,
                buckets,
                window: w,
            } => format!(
                "histogram_quantile({q}, sum by (le) (rate({}[{}])))",
                buckets.promql(),
                window(*w)
            ),
            Expr::Gauge { selector, max, by } => {
                let agg = if *max { "max" } else { "sum" };
                if by.is_empty() {
                    format!("{agg}({})", selector.promql())
                } else {
                    format!("{agg} by ({}) ({})", by.join(", "), selector.promql())
                }
            }
        }
    }

    /// The metric names the expression reads.
    pub fn metrics(&self) -> Vec<String> {
        match self {
            Expr::Ratio {
                numerator,
                denominator,
                ..
            } => vec![numerator.metric.clone(), denominator.metric.clone()],
            Expr::Increase { selector, .. } | Expr::Gauge { selector, .. } => {
                vec![selector.metric.clone()]
            }
            Expr::Quantile { buckets, .. } => vec![buckets.metric.clone()],
        }
    }

    /// The longest window read.
    pub fn window(&self) -> Duration {
        match self {
            Expr::Ratio { window, .. }
            | Expr::Increase { window, .. }
            | Expr::Quantile { window, .. } => *window,
            Expr::Gauge { .. } => Duration::ZERO,
        }
    }

    /// Sets the window (for rules overridden in the config).
    pub fn set_window(&mut self, w: Duration) {
        match self {
            Expr::Ratio { window, .. }
            | Expr::Increase { window, .. }
            | Expr::Quantile { window, .. } => *window = w,
            Expr::Gauge { .. } => {}
        }
    }
}

/// One alert rule.
#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// Alert name (shared by the warning and critical variants).
    pub name: String,
    /// Severity label.
    pub severity: Severity,
    /// Notification channel.
    pub channel: Channel,
    /// What is measured.
    pub expr: Expr,
    /// Fires when the value is above this.
    pub threshold: f64,
    /// How long the condition must hold before firing.
    pub for_: Duration,
    /// One line; `{value}` and `{tenant_id}` are replaced.
    pub summary: String,
    /// What it means.
    pub description: String,
}

impl Rule {
    /// The rule as a Prometheus alert expression: `<expr> > <threshold>`.
    pub fn promql(&self) -> String {
        format!("{} > {}", self.expr.promql(), self.threshold)
    }

    /// The runbook section for this alert.
    pub fn runbook_url(&self) -> String {
        format!("docs/runbook.md#{}", self.name.to_lowercase())
    }
}

const M5: Duration = Duration::from_secs(300);

/// The seed's eight rules, and the ninth: a per-tenant LLM cost budget.
pub fn default_rules() -> Vec<Rule> {
    let error_ratio = Expr::Ratio {
        numerator: Selector::new("swarm_api_requests_total").class("status", '5'),
        denominator: Selector::new("swarm_api_requests_total"),
        window: M5,
    };
    let disk = Expr::Gauge {
        selector: Selector::new("swarm_disk_usage_ratio"),
        max: true,
        by: vec!["instance".into(), "mount".into()],
    };
    let rule = |name: &str,
                severity,
                channel,
                expr: Expr,
                threshold: f64,
                for_secs: u64,
                summary: &str,
                description: &str| Rule {
        name: name.to_owned(),
        severity,
        channel,
        expr,
        threshold,
        for_: Duration::from_secs(for_secs),
        summary: summary.to_owned(),
        description: description.to_owned(),
    };
    use Channel::{Pagerduty, Slack};
    use Severity::{Critical, Warning};
    vec![
        rule(
            "HighErrorRate",
            Warning,
            Slack,
            error_ratio.clone(),
            0.05,
            300,
            "API error rate is {value}",
            "More than 5% of platform API requests answered 5xx over the last 5 minutes.",
        ),
        rule(
            "HighErrorRate",
            Critical,
            Pagerduty,
            error_ratio,
            0.20,
            300,
            "API error rate is {value}",
            "More than 20% of platform API requests answered 5xx over the last 5 minutes.",
        ),
        rule(
            "VMSpawnFailure",
            Critical,
            Pagerduty,
            Expr::Increase {
                selector: Selector::new("swarm_vms_total").eq("status", "failed"),
                window: M5,
                by: vec!["tenant_id".into()],
            },
            3.0,
            0,
            "{value} VM spawns failed in 5 minutes for tenant {tenant_id}",
            "More than 3 microVMs failed to boot or restore in 5 minutes.",
        ),
        rule(
            "HighLatency",
            Warning,
            Slack,
            Expr::Quantile {
                q: 0.95,
                buckets: Selector::new("swarm_api_request_duration_ms_bucket"),
                window: M5,
            },
            30_000.0,
            600,
            "API p95 latency is {value} ms",
            "The 95th percentile of platform API latency has been above 30 s for 10 minutes.",
        ),
        rule(
            "QueueBacklog",
            Warning,
            Slack,
            Expr::Gauge {
                selector: Selector::new("swarm_queue_depth").eq("status", "queued"),
                max: false,
                by: vec!["tenant_id".into()],
            },
            100.0,
            900,
            "{value} tickets queued for tenant {tenant_id}",
            "More than 100 tickets have been waiting for an agent for 15 minutes.",
        ),
        rule(
            "ClaudeAPIErrors",
            Critical,
            Pagerduty,
            Expr::Increase {
                selector: Selector::new("swarmscope_llm_call_errors_total"),
                window: M5,
                by: vec!["tenant_id".into()],
            },
            10.0,
            0,
            "{value} Claude API errors in 5 minutes for tenant {tenant_id}",
            "More than 10 of a tenant's Claude API calls failed (overloaded, rate limited, …) in 5 minutes.",
        ),
        rule(
            "DiskSpaceLow",
            Warning,
            Slack,
            disk.clone(),
            0.85,
            300,
            "Disk {value} full",
            "A data disk is more than 85% full.",
        ),
        rule(
            "DiskSpaceCritical",
            Critical,
            Pagerduty,
            disk,
            0.95,
            60,
            "Disk {value} full",
            "A data disk is more than 95% full: writes will soon fail.",
        ),
        rule(
            "LLMCostBudget",
            Warning,
            Slack,
            Expr::Increase {
                selector: Selector::new("swarm_claude_api_cost_usd_total"),
                window: Duration::from_secs(3600),
                by: vec!["tenant_id".into()],
            },
            100.0,
            0,
            "Tenant {tenant_id} spent ${value} on LLM calls in the last hour",
            "A tenant's LLM spend in the last hour is over its budget.",
        ),
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_defaults_print_as_the_promql_in_the_prometheus_rules_file() {
        let file = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../deploy/prometheus/alerts.yml");
        let Ok(text) = std::fs::read_to_string(&file) else {
            panic!("{} is missing", file.display());
        };
        let normalized: String = text.split_whitespace().collect::<Vec<_>>().join(" ");
        for rule in default_rules() {
            let expr = format!("{} > ", rule.expr.promql());
            let found = normalized.match_indices(&expr).any(|(i, _)| {
                normalized[i + expr.len()..]
                    .split(|c: char| c.is_whitespace() || c == '"' || c == '\'')
                    .next()
                    .and_then(|n| n.parse::<f64>().ok())
                    == Some(rule.threshold)
            });
            assert!(
                found,
                "{} ({}): `{expr}{}` not in alerts.yml",
                rule.name,
                rule.severity.as_str(),
                rule.threshold
            );
        }
    }

    #[test]
    fn there_are_the_seeds_eight_rules_and_a_budget() {
        let rules = default_rules();
        assert_eq!(rules.len(), 9);
        let critical: Vec<&str> = rules
            .iter()
            .filter(|r| r.severity == Severity::Critical)
            .map(|r| r.name.as_str())
            .collect();
        assert_eq!(
            critical,
            [
                "HighErrorRate",
                "VMSpawnFailure",
                "ClaudeAPIErrors",
                "DiskSpaceCritical"
            ]
        );
        assert!(rules
            .iter()
            .all(|r| (r.severity == Severity::Critical) == (r.channel == Channel::Pagerduty)));
    }
}
