//! Alert states and the engine that samples, evaluates and notifies.
//!
//! [`Evaluator`] is the pure part (samples in, transitions out, time given),
//! so states and `for`/keep-firing timing are tested without clocks or
//! sockets. [`AlertEngine`] runs it on an interval over its sources and
//! hands transitions to the [`Notifier`](crate::notify::Notifier).

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::Serialize;
use serde_json::{json, Value};

use crate::config::{AlertsConfig, ScrapeTarget};
use crate::eval::evaluate;
use crate::notify::Notifier;
use crate::rules::{Channel, Expr, Rule, Severity};
use crate::samples::{parse, History, Labels};

/// Where an alert is in its life.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum AlertStatus {
    /// Condition true, `for` not yet elapsed.
    Pending,
    /// Firing (notified).
    Firing,
    /// Was firing, has cleared (notified).
    Resolved,
}

/// An alert that is pending or firing now.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AlertState {
    /// Alert name.
    pub name: String,
    /// Severity.
    pub severity: Severity,
    /// Channel.
    pub channel: Channel,
    /// The group's labels (e.g. `tenant_id`).
    pub labels: Labels,
    /// Pending or firing.
    pub state: AlertStatus,
    /// Latest value.
    pub value: f64,
    /// Since when (Unix seconds) it has been in this state.
    pub since: f64,
    /// The rule's summary for this group.
    pub summary: String,
}

/// A change worth one notification: an alert started firing or resolved.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Transition {
    /// Alert name.
    pub name: String,
    /// Severity.
    pub severity: Severity,
    /// Channel.
    pub channel: Channel,
    /// Group labels.
    pub labels: Labels,
    /// Firing or resolved.
    pub state: AlertStatus,
    /// The value that crossed (or the last one seen, when resolving).
    pub value: f64,
    /// Summary line.
    pub summary: String,
    /// What it means.
    pub description: String,
    /// Runbook section.
    pub runbook_url: String,
    /// When (Unix seconds).
    pub at: f64,
    /// Stable across the firing and its resolve: PagerDuty's `dedup_key`.
    pub dedup_key: String,
}

#[derive(Debug, Clone)]
enum State {
    Pending { since: f64, since_wall: f64 },
    Firing { since_wall: f64, last_true: f64 },
}

fn format_value(rule: &Rule, v: f64) -> String {
    let ratio = matches!(rule.expr, Expr::Ratio { .. }) || rule.name.starts_with("DiskSpace");
    if ratio {
        format!("{:.1}%", v * 100.0)
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        format!("{}", v as i64)
    } else {
        format!("{v:.2}")
    }
}

fn fill(template: &str, rule: &Rule, labels: &Labels, value: f64) -> String {
    let mut s = template.replace("{value}", &format_value(rule, value));
    for (k, v) in labels {
        s = s.replace(&format!("{{{k}}}"), v);
    }
    s
}

/// The pure evaluator: history, rules, states.
#[derive(Debug)]
pub struct Evaluator {
    rules: Vec<Rule>,
    keep_firing_for: f64,
    history: History,
    states: HashMap<(usize, Labels), (State, f64)>,
    recent: VecDeque<Transition>,
}

/// Transitions remembered for `GET /api/alerts`.
const RECENT: usize = 100;

/// Series the history keeps at most.
const MAX_SERIES: usize = 50_000;

impl Evaluator {
    /// An evaluator for `rules`; a firing alert whose condition clears keeps
    /// firing for `keep_firing_for` before it resolves.
    pub fn new(rules: Vec<Rule>, keep_firing_for: Duration, interval: Duration) -> Evaluator {
        let wanted: HashSet<String> = rules.iter().flat_map(|r| r.expr.metrics()).collect();
        let longest = rules
            .iter()
            .map(|r| r.expr.window())
            .max()
            .unwrap_or_default();
        let retention = longest.as_secs_f64() + 3.0 * interval.as_secs_f64() + 60.0;
        Evaluator {
            rules,
            keep_firing_for: keep_firing_for.as_secs_f64(),
            history: History::new(wanted, retention, MAX_SERIES),
            states: HashMap::new(),
            recent: VecDeque::new(),
        }
    }

    /// The rules.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Adds scraped exposition text taken at `now`, labelled `instance`.
    pub fn add_scrape(&mut self, now: f64, text: &str, instance: &str) {
        let extra: Labels = [("instance".to_owned(), instance.to_owned())].into();
        self.history.add(now, parse(text), &extra);
    }

    /// Evaluates every rule at `now` (the history's clock; `wall` is the
    /// Unix time to report) and returns the transitions to notify.
    pub fn evaluate(&mut self, now: f64, wall: f64) -> Vec<Transition> {
        let mut out = Vec::new();
        let mut seen: HashSet<(usize, Labels)> = HashSet::new();
        for (i, rule) in self.rules.iter().enumerate() {
            for (labels, value) in evaluate(&rule.expr, &self.history, now) {
                if value <= rule.threshold || value.is_nan() {
                    continue;
                }
                let key = (i, labels.clone());
                seen.insert(key.clone());
                let for_ = rule.for_.as_secs_f64();
                let next = match self.states.remove(&key) {
                    None if for_ <= 0.0 => None,
                    None => Some(State::Pending {
                        since: now,
                        since_wall: wall,
                    }),
                    Some((State::Pending { since, since_wall }, _)) if now - since < for_ => {
                        Some(State::Pending { since, since_wall })
                    }
                    Some((State::Pending { .. }, _)) => None,
                    Some((State::Firing { since_wall, .. }, _)) => Some(State::Firing {
                        since_wall,
                        last_true: now,
                    }),
                };
                let state = match next {
                    Some(s) => s,
                    None => {
                        out.push(transition(rule, &labels, AlertStatus::Firing, value, wall));
                        State::Firing {
                            since_wall: wall,
                            last_true: now,
                        }
                    }
                };
                self.states.insert(key, (state, value));
            }
        }
        // Groups whose condition is false now.
        let keep = self.keep_firing_for;
        let mut resolved = Vec::new();
        self.states.retain(|key, (state, value)| {
            if seen.contains(key) {
                return true;
            }
            match state {
                State::Pending { .. } => false,
                State::Firing { last_true, .. } if now - *last_true < keep => true,
                State::Firing { .. } => {
                    resolved.push((key.clone(), *value));
                    false
                }
            }
        });
        resolved.sort_by(|a, b| a.0.cmp(&b.0));
        for ((i, labels), value) in resolved {
            if let Some(rule) = self.rules.get(i) {
                out.push(transition(
                    rule,
                    &labels,
                    AlertStatus::Resolved,
                    value,
                    wall,
                ));
            }
        }
        for t in &out {
            if self.recent.len() == RECENT {
                self.recent.pop_front();
            }
            self.recent.push_back(t.clone());
        }
        out
    }

    /// Alerts pending or firing now, sorted by name, severity and labels.
    pub fn active(&self) -> Vec<AlertState> {
        let mut v: Vec<AlertState> = self
            .states
            .iter()
            .filter_map(|((i, labels), (state, value))| {
                let rule = self.rules.get(*i)?;
                let (status, since) = match state {
                    State::Pending { since_wall, .. } => (AlertStatus::Pending, *since_wall),
                    State::Firing { since_wall, .. } => (AlertStatus::Firing, *since_wall),
                };
                Some(AlertState {
                    name: rule.name.clone(),
                    severity: rule.severity,
                    channel: rule.channel,
                    labels: labels.clone(),
                    state: status,
                    value: *value,
                    since,
                    summary: fill(&rule.summary, rule, labels, *value),
                })
            })
            .collect();
        v.sort_by(|a, b| {
            (&a.name, a.severity.as_str(), &a.labels).cmp(&(
                &b.name,
                b.severity.as_str(),
                &b.labels,
            ))
        });
        v
    }

    /// The latest transitions, oldest first.
    pub fn recent(&self) -> impl Iterator<Item = &Transition> {
        self.recent.iter()
    }

    /// Series held in the history.
    pub fn series(&self) -> usize {
        self.history.len()
    }
}

fn transition(
    rule: &Rule,
    labels: &Labels,
    state: AlertStatus,
    value: f64,
    wall: f64,
) -> Transition {
    let group: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    Transition {
        name: rule.name.clone(),
        severity: rule.severity,
        channel: rule.channel,
        labels: labels.clone(),
        state,
        value,
        summary: fill(&rule.summary, rule, labels, value),
        description: rule.description.clone(),
        runbook_url: rule.runbook_url(),
        at: wall,
        dedup_key: format!(
            "swarmscope/{}/{}/{}",
            rule.name,
            rule.severity.as_str(),
            group.join(",")
        ),
    }
}

/// Where the engine reads metrics from.
pub enum Source {
    /// The collector's own registry, rendered as exposition text.
    Local {
        /// The `instance` label its samples get.
        instance: String,
        /// Renders the current metrics.
        render: Box<dyn Fn() -> String + Send + Sync>,
    },
    /// A `/metrics` endpoint over HTTP.
    Http(ScrapeTarget),
}

fn unix_now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

/// The running engine: evaluation on an interval, states for the API.
pub struct AlertEngine {
    evaluator: Mutex<Evaluator>,
    sources: Vec<Source>,
    notifier: Notifier,
    interval: Duration,
    http: reqwest::Client,
    started: Instant,
    version: AtomicU64,
    scrape_errors: AtomicU64,
    evaluations: AtomicU64,
}

impl AlertEngine {
    /// An engine for `config`'s rules over `sources`; call [`AlertEngine::run`].
    pub fn new(config: &AlertsConfig, sources: Vec<Source>) -> Arc<AlertEngine> {
        let interval = Duration::from_secs(config.interval_secs.max(1));
        Arc::new(AlertEngine {
            evaluator: Mutex::new(Evaluator::new(
                config.effective_rules(),
                Duration::from_secs(config.keep_firing_for_secs),
                interval,
            )),
            sources,
            notifier: Notifier::start(config),
            interval,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(5))
                .build()
                .unwrap_or_default(),
            started: Instant::now(),
            version: AtomicU64::new(0),
            scrape_errors: AtomicU64::new(0),
            evaluations: AtomicU64::new(0),
        })
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Evaluator> {
        self.evaluator.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// One round: sample every source, evaluate, notify.
    pub async fn tick(&self) {
        let mut scraped = Vec::with_capacity(self.sources.len());
        for source in &self.sources {
            match source {
                Source::Local { instance, render } => scraped.push((instance.clone(), render())),
                Source::Http(target) => {
                    let mut req = self.http.get(&target.url);
                    if let Some(token) = &target.bearer {
                        req = req.bearer_auth(token);
                    }
                    let text = match req.send().await {
                        Ok(r) if r.status().is_success() => r.text().await.ok(),
                        _ => None,
                    };
                    match text {
                        Some(t) => {
                            let instance = target
                                .url
                                .split("://")
                                .nth(1)
                                .and_then(|rest| rest.split('/').next())
                                .unwrap_or(&target.url)
                                .to_owned();
                            scraped.push((instance, t));
                        }
                        None => {
                            self.scrape_errors.fetch_add(1, Ordering::Relaxed);
                            tracing::warn!(url = %target.url, "alert engine: scrape failed");
                        }
                    }
                }
            }
        }
        let now = self.started.elapsed().as_secs_f64();
        let transitions = {
            let mut ev = self.lock();
            for (instance, text) in &scraped {
                ev.add_scrape(now, text, instance);
            }
            let before = ev.active();
            let t = ev.evaluate(now, unix_now());
            if t.is_empty() && ev.active() != before {
                self.version.fetch_add(1, Ordering::Relaxed);
            }
            t
        };
        self.evaluations.fetch_add(1, Ordering::Relaxed);
        if !transitions.is_empty() {
            self.version.fetch_add(1, Ordering::Relaxed);
        }
        for t in transitions {
            tracing::warn!(
                alert = %t.name,
                severity = t.severity.as_str(),
                state = ?t.state,
                labels = ?t.labels,
                "{}",
                t.summary
            );
            self.notifier.send(t);
        }
    }

    /// Evaluates every interval, forever (spawn it).
    pub async fn run(self: Arc<Self>) {
        let mut ticker = tokio::time::interval(self.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            ticker.tick().await;
            self.tick().await;
        }
    }

    /// Changes whenever the set of active alerts or their states change.
    pub fn version(&self) -> u64 {
        self.version.load(Ordering::Relaxed)
    }

    /// Alerts pending or firing now, optionally only those a tenant may see
    /// (its own and those without a tenant).
    pub fn active(&self, tenant: Option<&str>) -> Vec<AlertState> {
        self.lock()
            .active()
            .into_iter()
            .filter(|a| visible(&a.labels, tenant))
            .collect()
    }

    /// Everything for `GET /api/alerts`: rules, active alerts, recent
    /// transitions, delivery counts.
    pub fn snapshot(&self, tenant: Option<&str>) -> Value {
        let ev = self.lock();
        let active: Vec<AlertState> = ev
            .active()
            .into_iter()
            .filter(|a| visible(&a.labels, tenant))
            .collect();
        let rules: Vec<Value> = ev
            .rules()
            .iter()
            .map(|r| {
                let firing = active
                    .iter()
                    .filter(|a| a.name == r.name && a.severity == r.severity)
                    .map(|a| a.state)
                    .max_by_key(|s| match s {
                        AlertStatus::Firing => 2,
                        AlertStatus::Pending => 1,
                        AlertStatus::Resolved => 0,
                    });
                json!({
                    "name": r.name,
                    "severity": r.severity,
                    "channel": r.channel,
                    "expr": r.promql(),
                    "threshold": r.threshold,
                    "for_secs": r.for_.as_secs(),
                    "window_secs": r.expr.window().as_secs(),
                    "state": match firing {
                        Some(AlertStatus::Firing) => "firing",
                        Some(AlertStatus::Pending) => "pending",
                        _ => "inactive",
                    },
                    "summary": r.summary,
                    "runbook_url": r.runbook_url(),
                })
            })
            .collect();
        let recent: Vec<&Transition> = ev.recent().filter(|t| visible(&t.labels, tenant)).collect();
        json!({
            "rules": rules,
            "alerts": active,
            "recent": recent,
            "evaluations": self.evaluations.load(Ordering::Relaxed),
            "interval_secs": self.interval.as_secs(),
            "series": ev.series(),
            "scrape_errors": self.scrape_errors.load(Ordering::Relaxed),
            "notifications": self.notifier.stats(),
        })
    }
}

fn visible(labels: &Labels, tenant: Option<&str>) -> bool {
    match (tenant, labels.get("tenant_id")) {
        (None, _) | (Some(_), None) => true,
        (Some(t), Some(own)) => t == own,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rules::default_rules;

    fn only(name: &str, severity: Severity) -> Vec<Rule> {
        default_rules()
            .into_iter()
            .filter(|r| r.name == name && r.severity == severity)
            .collect()
    }

    fn queue(depth: u32) -> String {
        format!("swarm_queue_depth{{tenant_id=\"acme\",status=\"queued\"}} {depth}\n")
    }

    #[test]
    fn pending_then_firing_after_for_then_resolved_after_the_grace() {
        // QueueBacklog: > 100 for 15 min; keep firing 60 s after clearing.
        let mut ev = Evaluator::new(
            only("QueueBacklog", Severity::Warning),
            Duration::from_secs(60),
            Duration::from_secs(15),
        );
        let at = |ev: &mut Evaluator, t: f64, depth: u32| {
            ev.add_scrape(t, &queue(depth), "platform");
            ev.evaluate(t, 1_000.0 + t)
        };
        assert!(at(&mut ev, 0.0, 150).is_empty());
        assert_eq!(ev.active()[0].state, AlertStatus::Pending);
        assert!(at(&mut ev, 885.0, 150).is_empty(), "just short of its for");
        let fired = at(&mut ev, 900.0, 150);
        assert_eq!(fired.len(), 1);
        assert_eq!(fired[0].state, AlertStatus::Firing);
        assert_eq!(fired[0].labels["tenant_id"], "acme");
        assert_eq!(fired[0].summary, "150 tickets queued for tenant acme");
        assert!(
            at(&mut ev, 915.0, 160).is_empty(),
            "one notification per transition"
        );
        // Clears: keeps firing through the grace, then resolves once.
        assert!(at(&mut ev, 930.0, 20).is_empty());
        assert_eq!(ev.active()[0].state, AlertStatus::Firing);
        assert!(at(&mut ev, 960.0, 20).is_empty());
        let resolved = at(&mut ev, 990.0, 20);
        assert_eq!(resolved.len(), 1);
        assert_eq!(resolved[0].state, AlertStatus::Resolved);
        assert_eq!(resolved[0].dedup_key, fired[0].dedup_key);
        assert!(ev.active().is_empty());
        assert!(at(&mut ev, 1_005.0, 20).is_empty());
    }

    #[test]
    fn a_dip_during_pending_restarts_the_for_and_a_blip_while_firing_does_not_flap() {
        let mut ev = Evaluator::new(
            only("QueueBacklog", Severity::Warning),
            Duration::from_secs(60),
            Duration::from_secs(15),
        );
        let at = |ev: &mut Evaluator, t: f64, depth: u32| {
            ev.add_scrape(t, &queue(depth), "platform");
            ev.evaluate(t, t)
        };
        at(&mut ev, 0.0, 150);
        at(&mut ev, 600.0, 90); // dip: pending forgotten
        assert!(ev.active().is_empty());
        at(&mut ev, 615.0, 150);
        assert!(at(&mut ev, 1_500.0, 150).is_empty(), "for restarted at 615");
        assert_eq!(at(&mut ev, 1_515.0, 150).len(), 1);
        // A blip under the threshold shorter than the grace: no resolve.
        assert!(at(&mut ev, 1_530.0, 99).is_empty());
        assert!(at(&mut ev, 1_545.0, 150).is_empty());
        assert_eq!(ev.active()[0].state, AlertStatus::Firing);
    }

    #[test]
    fn rules_without_for_fire_at_once_per_tenant() {
        let mut ev = Evaluator::new(
            only("VMSpawnFailure", Severity::Critical),
            Duration::from_secs(0),
            Duration::from_secs(15),
        );
        let scrape = |a: u32, b: u32| {
            format!(
                "swarm_vms_total{{tenant_id=\"a\",status=\"failed\"}} {a}\n\
                 swarm_vms_total{{tenant_id=\"b\",status=\"failed\"}} {b}\n"
            )
        };
        ev.add_scrape(0.0, &scrape(0, 0), "p");
        assert!(ev.evaluate(0.0, 0.0).is_empty());
        ev.add_scrape(60.0, &scrape(3, 1), "p");
        assert!(ev.evaluate(60.0, 60.0).is_empty(), "3 is not more than 3");
        ev.add_scrape(120.0, &scrape(4, 1), "p");
        let t = ev.evaluate(120.0, 120.0);
        assert_eq!(t.len(), 1);
        assert_eq!(t[0].labels["tenant_id"], "a");
        assert_eq!(t[0].summary, "4 VM spawns failed in 5 minutes for tenant a");
        // The failures age out of the window: resolved.
        ev.add_scrape(400.0, &scrape(4, 1), "p");
        let t = ev.evaluate(400.0, 400.0);
        assert_eq!((t.len(), t[0].state), (1, AlertStatus::Resolved));
    }
}
