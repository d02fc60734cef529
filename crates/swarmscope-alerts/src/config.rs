//! The `[alerts]` section of the collector's config.

use std::time::Duration;

use serde::Deserialize;

use crate::rules::{default_rules, Rule, Severity};

/// A `/metrics` endpoint the engine scrapes (the platform's, typically).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrapeTarget {
    /// Full URL of the endpoint.
    pub url: String,
    /// Bearer token, if the endpoint wants one.
    #[serde(default)]
    pub bearer: Option<String>,
}

/// Changes to a default rule, matched by name (and severity, when given).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleOverride {
    /// The alert name, e.g. `QueueBacklog`.
    pub name: String,
    /// `warning` or `critical` (both variants when absent).
    #[serde(default)]
    pub severity: Option<String>,
    /// New threshold.
    #[serde(default)]
    pub threshold: Option<f64>,
    /// New `for`, seconds.
    #[serde(default)]
    pub for_secs: Option<u64>,
    /// New window, seconds.
    #[serde(default)]
    pub window_secs: Option<u64>,
    /// `false` turns the rule off.
    #[serde(default)]
    pub enabled: Option<bool>,
}

/// `[alerts]`.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AlertsConfig {
    /// Run the built-in engine (default true).
    #[serde(default = "yes")]
    pub enabled: bool,
    /// Seconds between evaluations (default 15).
    #[serde(default = "fifteen")]
    pub interval_secs: u64,
    /// Seconds an alert keeps firing after its condition clears, so a value
    /// hovering at the threshold does not flap (default 60).
    #[serde(default = "sixty")]
    pub keep_firing_for_secs: u64,
    /// Slack incoming-webhook URL for `channel = slack` rules.
    #[serde(default)]
    pub slack_webhook_url: Option<String>,
    /// PagerDuty Events API v2 routing key for `channel = pagerduty` rules.
    #[serde(default)]
    pub pagerduty_routing_key: Option<String>,
    /// PagerDuty Events API v2 endpoint.
    #[serde(default = "pagerduty_url")]
    pub pagerduty_url: String,
    /// First retry delay of a failed delivery, ms (doubles each time).
    #[serde(default = "one_second")]
    pub retry_base_ms: u64,
    /// Deliveries tried per notification before giving up.
    #[serde(default = "five")]
    pub max_attempts: u32,
    /// Other `/metrics` endpoints to sample (the platform's).
    #[serde(default)]
    pub scrape: Vec<ScrapeTarget>,
    /// Changes to the default rules.
    #[serde(default)]
    pub rules: Vec<RuleOverride>,
}

fn yes() -> bool {
    true
}
fn fifteen() -> u64 {
    15
}
fn sixty() -> u64 {
    60
}
fn five() -> u32 {
    5
}
fn one_second() -> u64 {
    1_000
}
fn pagerduty_url() -> String {
    "https://events.pagerduty.com/v2/enqueue".to_owned()
}

impl Default for AlertsConfig {
    fn default() -> Self {
        AlertsConfig {
            enabled: true,
            interval_secs: fifteen(),
            keep_firing_for_secs: sixty(),
            slack_webhook_url: None,
            pagerduty_routing_key: None,
            pagerduty_url: pagerduty_url(),
            retry_base_ms: one_second(),
            max_attempts: five(),
            scrape: Vec::new(),
            rules: Vec::new(),
        }
    }
}

/// A config mistake, naming the field.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("alerts: {0}")]
pub struct AlertsConfigError(pub String);

impl AlertsConfig {
    /// Checks values a typo would make useless.
    pub fn validate(&self) -> Result<(), AlertsConfigError> {
        let err = |m: String| Err(AlertsConfigError(m));
        if self.interval_secs == 0 || self.interval_secs > 3600 {
            return err("interval_secs must be 1 to 3600".into());
        }
        if self.max_attempts == 0 {
            return err("max_attempts must be at least 1".into());
        }
        for (i, t) in self.scrape.iter().enumerate() {
            if !(t.url.starts_with("http://") || t.url.starts_with("https://")) {
                return err(format!("scrape[{i}].url must be an http(s) URL"));
            }
        }
        let names: Vec<String> = default_rules().into_iter().map(|r| r.name).collect();
        for (i, o) in self.rules.iter().enumerate() {
            if !names.contains(&o.name) {
                return err(format!(
                    "rules[{i}].name {:?} is not a rule (rules: {})",
                    o.name,
                    names.join(", ")
                ));
            }
            if let Some(s) = &o.severity {
                if s != "warning" && s != "critical" {
                    return err(format!("rules[{i}].severity must be warning or critical"));
                }
            }
            if o.threshold.is_some_and(|t| !t.is_finite()) {
                return err(format!("rules[{i}].threshold must be a number"));
            }
            if o.window_secs == Some(0) {
                return err(format!("rules[{i}].window_secs must be positive"));
            }
        }
        Ok(())
    }

    /// The default rules with the overrides applied, disabled ones removed.
    pub fn effective_rules(&self) -> Vec<Rule> {
        let mut rules = Vec::new();
        for mut rule in default_rules() {
            let mut enabled = true;
            for o in &self.rules {
                let severity_matches = o.severity.as_deref().is_none_or(|s| {
                    s == match rule.severity {
                        Severity::Warning => "warning",
                        Severity::Critical => "critical",
                    }
                });
                if o.name != rule.name || !severity_matches {
                    continue;
                }
                if let Some(t) = o.threshold {
                    rule.threshold = t;
                }
                if let Some(f) = o.for_secs {
                    rule.for_ = Duration::from_secs(f);
                }
                if let Some(w) = o.window_secs {
                    rule.expr.set_window(Duration::from_secs(w));
                }
                if let Some(e) = o.enabled {
                    enabled = e;
                }
            }
            if enabled {
                rules.push(rule);
            }
        }
        rules
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_change_the_named_rule_only() {
        let config = AlertsConfig {
            rules: vec![
                RuleOverride {
                    name: "HighErrorRate".into(),
                    severity: Some("critical".into()),
                    threshold: Some(0.5),
                    for_secs: Some(10),
                    window_secs: Some(30),
                    enabled: None,
                },
                RuleOverride {
                    name: "LLMCostBudget".into(),
                    severity: None,
                    threshold: None,
                    for_secs: None,
                    window_secs: None,
                    enabled: Some(false),
                },
            ],
            ..AlertsConfig::default()
        };
        assert_eq!(config.validate(), Ok(()));
        let rules = config.effective_rules();
        assert_eq!(rules.len(), 8);
        let critical = &rules[1];
        assert_eq!((critical.threshold, critical.for_.as_secs()), (0.5, 10));
        assert_eq!(critical.expr.window().as_secs(), 30);
        assert_eq!(rules[0].threshold, 0.05, "the warning is untouched");
        let bad = AlertsConfig {
            rules: vec![RuleOverride {
                name: "HighErorRate".into(),
                ..config.rules[1].clone()
            }],
            ..AlertsConfig::default()
        };
        assert!(bad
            .validate()
            .expect_err("a typo")
            .0
            .contains("HighErorRate"));
    }
}
