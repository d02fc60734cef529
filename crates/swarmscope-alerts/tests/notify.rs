//! Delivery to a local webhook receiver over a real socket: Slack and
//! PagerDuty payload shapes, resolve with the same dedup key, retries, a
//! final 4xx, and a dead channel that does not hold up the other.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::Value;
use swarmscope_alerts::engine::{AlertStatus, Transition};
use swarmscope_alerts::notify::{deliver, Notifier};
use swarmscope_alerts::{AlertsConfig, Channel, Severity};

#[derive(Clone, Default)]
struct Receiver {
    got: Arc<Mutex<Vec<(String, Value)>>>,
    /// Answers per path, used in order; then 200.
    script: Arc<Mutex<BTreeMap<String, Vec<u16>>>>,
}

async fn hook(
    State(r): State<Receiver>,
    Path(name): Path<String>,
    Json(body): Json<Value>,
) -> StatusCode {
    r.got.lock().expect("lock").push((name.clone(), body));
    let next = r
        .script
        .lock()
        .expect("lock")
        .get_mut(&name)
        .and_then(|s| (!s.is_empty()).then(|| s.remove(0)));
    StatusCode::from_u16(next.unwrap_or(202)).expect("status")
}

async fn receiver() -> (Receiver, String) {
    let r = Receiver::default();
    let app = Router::new()
        .route("/hook/{name}", post(hook))
        .with_state(r.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (r, format!("http://{addr}"))
}

fn transition(name: &str, severity: Severity, channel: Channel, state: AlertStatus) -> Transition {
    Transition {
        name: name.into(),
        severity,
        channel,
        labels: [("tenant_id".to_owned(), "acme".to_owned())].into(),
        state,
        value: 4.0,
        summary: "4 VM spawns failed in 5 minutes for tenant acme".into(),
        description: "More than 3 microVMs failed.".into(),
        runbook_url: "docs/runbook.md#vmspawnfailure".into(),
        at: 1_700_000_000.0,
        dedup_key: format!("swarmscope/{name}/{}/tenant_id=acme", severity.as_str()),
    }
}

async fn wait_for(r: &Receiver, n: usize) -> Vec<(String, Value)> {
    for _ in 0..200 {
        let got = r.got.lock().expect("lock").clone();
        if got.len() >= n {
            return got;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!(
        "expected {n} deliveries, got {:?}",
        r.got.lock().expect("lock")
    );
}

#[tokio::test]
async fn slack_and_pagerduty_get_their_shapes_and_resolves_share_the_dedup_key() {
    let (r, base) = receiver().await;
    let config = AlertsConfig {
        slack_webhook_url: Some(format!("{base}/hook/slack")),
        pagerduty_routing_key: Some("R0UT1NGKEY".into()),
        pagerduty_url: format!("{base}/hook/pd"),
        retry_base_ms: 20,
        ..AlertsConfig::default()
    };
    let n = Notifier::start(&config);
    n.send(transition(
        "VMSpawnFailure",
        Severity::Critical,
        Channel::Pagerduty,
        AlertStatus::Firing,
    ));
    n.send(transition(
        "QueueBacklog",
        Severity::Warning,
        Channel::Slack,
        AlertStatus::Firing,
    ));
    n.send(transition(
        "VMSpawnFailure",
        Severity::Critical,
        Channel::Pagerduty,
        AlertStatus::Resolved,
    ));
    let got = wait_for(&r, 3).await;
    let pd: Vec<&Value> = got
        .iter()
        .filter(|(p, _)| p == "pd")
        .map(|(_, b)| b)
        .collect();
    let slack: Vec<&Value> = got
        .iter()
        .filter(|(p, _)| p == "slack")
        .map(|(_, b)| b)
        .collect();
    assert_eq!((pd.len(), slack.len()), (2, 1));
    // PagerDuty Events API v2: trigger then resolve, same dedup key.
    assert_eq!(pd[0]["routing_key"], "R0UT1NGKEY");
    assert_eq!(pd[0]["event_action"], "trigger");
    assert_eq!(pd[0]["payload"]["severity"], "critical");
    assert_eq!(pd[0]["payload"]["source"], "swarmscope");
    assert_eq!(pd[0]["payload"]["group"], "acme");
    assert!(pd[0]["payload"]["summary"]
        .as_str()
        .expect("summary")
        .starts_with("VMSpawnFailure: 4 VM spawns failed"));
    assert_eq!(pd[1]["event_action"], "resolve");
    assert_eq!(pd[1]["dedup_key"], pd[0]["dedup_key"]);
    assert!(pd[1].get("payload").is_none());
    // Slack incoming webhook: text plus an attachment with the labels.
    let text = slack[0]["text"].as_str().expect("text");
    assert!(
        text.starts_with("[FIRING] QueueBacklog (warning):"),
        "{text}"
    );
    let fields = slack[0]["attachments"][0]["fields"]
        .as_array()
        .expect("fields");
    assert!(fields
        .iter()
        .any(|f| f["title"] == "tenant_id" && f["value"] == "acme"));
    assert_eq!(n.stats()["sent"], 3);
}

#[tokio::test]
async fn failures_are_retried_with_backoff_and_a_final_4xx_is_not() {
    let (r, base) = receiver().await;
    r.script
        .lock()
        .expect("lock")
        .insert("flaky".into(), vec![500, 429, 503]);
    r.script
        .lock()
        .expect("lock")
        .insert("bad".into(), vec![400, 400]);
    let client = reqwest::Client::new();
    let body = serde_json::json!({"text": "x"});
    let started = std::time::Instant::now();
    let ok = deliver(
        &client,
        &format!("{base}/hook/flaky"),
        &body,
        5,
        Duration::from_millis(40),
    )
    .await;
    assert!(ok, "accepted on the 4th attempt");
    // Backoff 40 + 80 + 160 ms between the four attempts.
    assert!(
        started.elapsed() >= Duration::from_millis(280),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(r.got.lock().expect("lock").len(), 4);
    let ok = deliver(
        &client,
        &format!("{base}/hook/bad"),
        &body,
        5,
        Duration::from_millis(10),
    )
    .await;
    assert!(!ok);
    assert_eq!(
        r.got.lock().expect("lock").len(),
        5,
        "400 is final: one attempt"
    );
    // Out of attempts.
    r.script
        .lock()
        .expect("lock")
        .insert("down".into(), vec![500; 10]);
    let ok = deliver(
        &client,
        &format!("{base}/hook/down"),
        &body,
        3,
        Duration::from_millis(5),
    )
    .await;
    assert!(!ok);
    assert_eq!(r.got.lock().expect("lock").len(), 8);
}

#[tokio::test]
async fn a_dead_channel_does_not_hold_up_the_other() {
    let (r, base) = receiver().await;
    // Nothing listens on this port (bound, then dropped).
    let dead = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        l.local_addr().expect("addr")
    };
    let config = AlertsConfig {
        slack_webhook_url: Some(format!("http://{dead}/slack")),
        pagerduty_routing_key: Some("k".into()),
        pagerduty_url: format!("{base}/hook/pd"),
        retry_base_ms: 200,
        max_attempts: 5,
        ..AlertsConfig::default()
    };
    let n = Notifier::start(&config);
    for _ in 0..3 {
        n.send(transition(
            "HighLatency",
            Severity::Warning,
            Channel::Slack,
            AlertStatus::Firing,
        ));
    }
    n.send(transition(
        "ClaudeAPIErrors",
        Severity::Critical,
        Channel::Pagerduty,
        AlertStatus::Firing,
    ));
    let started = std::time::Instant::now();
    let got = wait_for(&r, 1).await;
    assert_eq!(got[0].0, "pd");
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
}
