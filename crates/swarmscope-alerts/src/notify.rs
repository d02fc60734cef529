//! Delivering transitions: Slack incoming webhooks and PagerDuty Events API v2.
//!
//! One worker per channel with its own bounded queue, so a dead Slack never
//! delays a page, and evaluation only ever does a non-blocking `try_send`
//! (a full queue drops the notification and counts it). Each delivery is
//! retried with exponential backoff on network errors, 5xx and 429
//! (honouring `Retry-After`); other 4xx answers are final.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tokio::sync::mpsc;

use crate::config::AlertsConfig;
use crate::engine::{AlertStatus, Transition};
use crate::rules::Channel;

/// Notifications waiting per channel before new ones are dropped.
const QUEUE: usize = 256;

#[derive(Debug, Default)]
struct Stats {
    sent: AtomicU64,
    failed: AtomicU64,
    dropped: AtomicU64,
    unrouted: AtomicU64,
}

/// Hands transitions to the channel workers.
pub struct Notifier {
    slack: Option<mpsc::Sender<Transition>>,
    pagerduty: Option<mpsc::Sender<Transition>>,
    stats: Arc<Stats>,
}

/// The Slack message for a transition.
pub fn slack_payload(t: &Transition) -> Value {
    let (tag, color) = match t.state {
        AlertStatus::Resolved => ("RESOLVED", "#2e7d32"),
        _ if t.severity == crate::rules::Severity::Critical => ("FIRING", "#c62828"),
        _ => ("FIRING", "#ef6c00"),
    };
    let fields: Vec<Value> = t
        .labels
        .iter()
        .map(|(k, v)| json!({"title": k, "value": v, "short": true}))
        .chain(std::iter::once(
            json!({"title": "severity", "value": t.severity.as_str(), "short": true}),
        ))
        .collect();
    json!({
        "text": format!("[{tag}] {} ({}): {}", t.name, t.severity.as_str(), t.summary),
        "attachments": [{
            "color": color,
            "title": t.name,
            "text": t.description,
            "fields": fields,
            "footer": format!("swarmscope · runbook: {}", t.runbook_url),
            "ts": t.at as i64,
        }],
    })
}

/// The PagerDuty Events API v2 event for a transition.
pub fn pagerduty_payload(t: &Transition, routing_key: &str) -> Value {
    if t.state == AlertStatus::Resolved {
        return json!({
            "routing_key": routing_key,
            "event_action": "resolve",
            "dedup_key": t.dedup_key,
        });
    }
    let summary: String = format!("{}: {}", t.name, t.summary)
        .chars()
        .take(1024)
        .collect();
    json!({
        "routing_key": routing_key,
        "event_action": "trigger",
        "dedup_key": t.dedup_key,
        "payload": {
            "summary": summary,
            "source": "swarmscope",
            "severity": match t.severity {
                crate::rules::Severity::Critical => "critical",
                crate::rules::Severity::Warning => "warning",
            },
            "component": "swarm-platform",
            "group": t.labels.get("tenant_id").map_or("swarm", String::as_str),
            "class": t.name,
            "custom_details": {
                "description": t.description,
                "value": t.value,
                "labels": t.labels,
                "runbook_url": t.runbook_url,
            },
        },
    })
}

/// Posts `body` to `url` until it is accepted, a final error, or `attempts`
/// tries; true when accepted.
pub async fn deliver(
    client: &reqwest::Client,
    url: &str,
    body: &Value,
    attempts: u32,
    base: Duration,
) -> bool {
    let mut delay = base;
    for attempt in 1..=attempts.max(1) {
        let wait = match client.post(url).json(body).send().await {
            Ok(r) if r.status().is_success() => return true,
            Ok(r) if r.status().as_u16() == 429 || r.status().is_server_error() => {
                let after = r
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .map(|s| Duration::from_secs(s.min(60)));
                tracing::warn!(
                    status = r.status().as_u16(),
                    attempt,
                    "alert delivery refused; will retry"
                );
                after.unwrap_or(delay)
            }
            Ok(r) => {
                tracing::error!(
                    status = r.status().as_u16(),
                    "alert delivery refused for good"
                );
                return false;
            }
            Err(e) => {
                tracing::warn!(error = %e, attempt, "alert delivery failed; will retry");
                delay
            }
        };
        if attempt < attempts {
            tokio::time::sleep(wait).await;
            delay = delay.saturating_mul(2);
        }
    }
    false
}

fn worker(
    url: String,
    routing_key: Option<String>,
    attempts: u32,
    base: Duration,
    stats: Arc<Stats>,
) -> mpsc::Sender<Transition> {
    let (tx, mut rx) = mpsc::channel::<Transition>(QUEUE);
    tokio::spawn(async move {
        let client = reqwest::Client::builder()
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap_or_default();
        while let Some(t) = rx.recv().await {
            let body = match &routing_key {
                Some(key) => pagerduty_payload(&t, key),
                None => slack_payload(&t),
            };
            if deliver(&client, &url, &body, attempts, base).await {
                stats.sent.fetch_add(1, Ordering::Relaxed);
            } else {
                stats.failed.fetch_add(1, Ordering::Relaxed);
                tracing::error!(alert = %t.name, "alert notification not delivered");
            }
        }
    });
    tx
}

impl Notifier {
    /// Starts a worker for each configured channel (needs a tokio runtime).
    pub fn start(config: &AlertsConfig) -> Notifier {
        let stats = Arc::new(Stats::default());
        let base = Duration::from_millis(config.retry_base_ms);
        let slack = config
            .slack_webhook_url
            .clone()
            .map(|url| worker(url, None, config.max_attempts, base, Arc::clone(&stats)));
        let pagerduty = config.pagerduty_routing_key.clone().map(|key| {
            worker(
                config.pagerduty_url.clone(),
                Some(key),
                config.max_attempts,
                base,
                Arc::clone(&stats),
            )
        });
        Notifier {
            slack,
            pagerduty,
            stats,
        }
    }

    /// Queues a transition for its channel without waiting.
    pub fn send(&self, t: Transition) {
        let queue = match t.channel {
            Channel::Slack => &self.slack,
            Channel::Pagerduty => &self.pagerduty,
        };
        match queue {
            Some(q) => {
                if q.try_send(t).is_err() {
                    self.stats.dropped.fetch_add(1, Ordering::Relaxed);
                }
            }
            None => {
                self.stats.unrouted.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    /// Delivery counts.
    pub fn stats(&self) -> Value {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        json!({
            "sent": l(&self.stats.sent),
            "failed": l(&self.stats.failed),
            "dropped": l(&self.stats.dropped),
            "unrouted": l(&self.stats.unrouted),
        })
    }
}
