//! The built-in alert engine in the real binary: spans drive a rule over its
//! threshold, the alert fires once to PagerDuty (a local receiver), shows in
//! `GET /api/alerts` and `swarmscope alerts`, and resolves with the same
//! dedup key when the errors age out of the window.

mod support;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::routing::post;
use axum::{Json, Router};
use serde_json::{json, Value};
use support::{config_with_keys, host_port, run, span, Demo, Prometheus, Server};

type Got = Arc<Mutex<Vec<Value>>>;

/// A webhook receiver: (PagerDuty events, Slack messages, base URL).
async fn receivers() -> (Got, Got, String) {
    let pd: Got = Arc::default();
    let slack: Got = Arc::default();
    let record = |State(g): State<Got>, Json(v): Json<Value>| async move {
        g.lock().expect("lock").push(v);
        axum::http::StatusCode::ACCEPTED
    };
    let app = Router::new()
        .route("/pd", post(record).with_state(Arc::clone(&pd)))
        .route("/slack", post(record).with_state(Arc::clone(&slack)));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (pd, slack, format!("http://{addr}"))
}

async fn receiver() -> (Got, String) {
    let (pd, _, base) = receivers().await;
    (pd, format!("{base}/pd"))
}

async fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while !f() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_errors_fire_notify_show_and_resolve() {
    let (got, url) = receiver().await;
    let (keys_toml, keys) = config_with_keys(&[
        (None, &["admin"]),
        (Some("acme"), &["read"]),
        (Some("globex"), &["read"]),
    ]);
    let config = format!(
        "{keys_toml}\n[alerts]\ninterval_secs = 1\nkeep_firing_for_secs = 1\n\
         pagerduty_routing_key = \"test-routing-key\"\npagerduty_url = \"{url}\"\nretry_base_ms = 50\n\
         [[alerts.rules]]\nname = \"ClaudeAPIErrors\"\nwindow_secs = 4\n"
    );
    let server = Server::with_config(&config);
    let (admin, acme) = (&keys[0], &keys[1]);

    // Eleven failed Claude calls: one more than the threshold of 10.
    let spans: Vec<Value> = (0..11)
        .map(|i| {
            let mut s = span("acme", "t-claude", &format!("c{i}"), "llm.generate");
            s["status"] = json!("error");
            s["attributes"] = json!({"model": "claude-sonnet-4-5"});
            s
        })
        .collect();
    let (status, body) = server.post("/api/traces", &json!(spans), Some(admin)).await;
    assert_eq!(status, 202, "{body}");

    wait_until("the PagerDuty trigger", 15, || {
        !got.lock().expect("lock").is_empty()
    })
    .await;
    let trigger = got.lock().expect("lock")[0].clone();
    assert_eq!(trigger["event_action"], "trigger");
    assert_eq!(trigger["routing_key"], "test-routing-key");
    assert_eq!(trigger["payload"]["class"], "ClaudeAPIErrors");
    assert_eq!(trigger["payload"]["severity"], "critical");
    assert!(trigger["payload"]["summary"]
        .as_str()
        .expect("summary")
        .contains("11 Claude API errors"));

    // It fires for acme, whose calls failed: acme's key sees it, another
    // tenant's does not (its calls are fine).
    assert!(trigger["payload"]["summary"]
        .as_str()
        .expect("summary")
        .contains("for tenant acme"));
    let firing = |doc: &Value| {
        doc["alerts"]
            .as_array()
            .expect("alerts")
            .iter()
            .any(|a| a.to_string().contains("ClaudeAPIErrors"))
    };
    let (status, doc) = server.get("/api/alerts", Some(&keys[2])).await;
    assert_eq!(status, 200, "{doc}");
    assert!(!firing(&doc), "globex sees acme's alert: {doc}");
    // The API and the CLI show it.
    let (status, doc) = server.get("/api/alerts", Some(acme)).await;
    assert_eq!(status, 200, "{doc}");
    assert!(firing(&doc), "{doc}");
    let rule = doc["rules"]
        .as_array()
        .expect("rules")
        .iter()
        .find(|r| r["name"] == "ClaudeAPIErrors")
        .expect("rule")
        .clone();
    assert_eq!(rule["window_secs"], 4);
    let (code, out, err) = run(&["alerts", "--url", &server.base, "--key", admin]);
    assert_eq!(code, 0, "{err}");
    assert!(
        out.lines()
            .any(|l| l.starts_with("FIRING") && l.contains("ClaudeAPIErrors")),
        "{out}"
    );
    assert!(out.contains("HighErrorRate"), "every rule is listed: {out}");

    // The errors leave the 4 s window; after the 1 s grace it resolves, once.
    wait_until("the PagerDuty resolve", 20, || {
        got.lock().expect("lock").len() >= 2
    })
    .await;
    let events = got.lock().expect("lock").clone();
    assert_eq!(events[1]["event_action"], "resolve");
    assert_eq!(events[1]["dedup_key"], trigger["dedup_key"]);
    tokio::time::sleep(Duration::from_secs(2)).await;
    assert_eq!(
        got.lock().expect("lock").len(),
        2,
        "one notification per transition"
    );
    let (_, doc) = server.get("/api/alerts", Some(admin)).await;
    assert_eq!(doc["notifications"]["sent"], 2);
    let recent = doc["recent"].as_array().expect("recent");
    assert_eq!(recent.len(), 2);

    let (status, body) = server.get("/api/alerts", None).await;
    assert_eq!(status, 401, "{body}");
}

#[tokio::test]
async fn a_bad_alerts_section_is_refused_at_start() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("c.toml");
    std::fs::write(
        &path,
        "[alerts]\n[[alerts.rules]]\nname = \"NoSuchAlert\"\n",
    )
    .expect("write");
    let (code, _, err) = run(&["serve", "--config", path.to_str().expect("utf-8")]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("NoSuchAlert"), "{err}");
    assert_eq!(err.lines().count(), 1, "{err}");
}

/// The rules file with every window 30 s and every `for` 5 s, for a test.
fn compressed_rules() -> String {
    let path =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/prometheus/alerts.yml");
    let mut text = std::fs::read_to_string(path).expect("alerts.yml");
    for w in ["[5m]", "[10m]", "[15m]", "[1h]"] {
        text = text.replace(w, "[30s]");
    }
    for f in ["for: 1m", "for: 5m", "for: 10m", "for: 15m"] {
        text = text.replace(f, "for: 5s");
    }
    text
}

/// Injected failures drive the error rate, VM spawn failures and Claude
/// errors over their thresholds: the built-in engine and a real Prometheus
/// loaded with deploy/prometheus/alerts.yml (time compressed the same way in
/// both) fire the same alerts, and the engine notifies Slack and PagerDuty.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_built_in_engine_and_prometheus_fire_the_same_alerts() {
    let (pd, slack, base) = receivers().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let mut config = format!(
        "[alerts]\ninterval_secs = 1\nkeep_firing_for_secs = 30\nretry_base_ms = 100\n\
         slack_webhook_url = \"{base}/slack\"\npagerduty_routing_key = \"k\"\npagerduty_url = \"{base}/pd\"\n"
    );
    for (name, window, for_secs) in [
        ("HighErrorRate", 30, 5),
        ("VMSpawnFailure", 30, 0),
        ("HighLatency", 30, 5),
        ("QueueBacklog", 30, 5),
        ("ClaudeAPIErrors", 30, 0),
        ("DiskSpaceLow", 30, 5),
        ("DiskSpaceCritical", 30, 5),
        ("LLMCostBudget", 30, 0),
    ] {
        config.push_str(&format!(
            "[[alerts.rules]]\nname = \"{name}\"\nwindow_secs = {window}\nfor_secs = {for_secs}\n"
        ));
    }
    let config_path = dir.path().join("demo.toml");
    std::fs::write(&config_path, config).expect("config");
    let demo = Demo::start(&[
        "--agents",
        "12",
        "--speed",
        "600",
        "--seed",
        "9",
        "--inject-failures",
        "--config",
        config_path.to_str().expect("utf-8"),
    ]);
    let key = demo.keys["metrics"]
        .as_str()
        .expect("metrics key")
        .to_owned();
    let prom = Prometheus::start(
        &[
            ("swarmscope", &host_port(&demo.base)),
            ("swarm-platform", &host_port(&demo.platform_metrics)),
        ],
        &key,
        &compressed_rules(),
    );
    let expected: Vec<(String, String)> = [
        ("ClaudeAPIErrors", "critical"),
        ("HighErrorRate", "critical"),
        ("HighErrorRate", "warning"),
        ("VMSpawnFailure", "critical"),
    ]
    .iter()
    .map(|(a, b)| (a.to_string(), b.to_string()))
    .collect();
    let admin = demo.admin_key();
    let engine_firing = || async {
        let (_, doc) = demo.get("/api/alerts", &admin).await;
        let mut v: Vec<(String, String)> = doc["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["state"] == "firing")
            .map(|a| {
                (
                    a["name"].as_str().unwrap_or("").to_owned(),
                    a["severity"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        v.sort();
        v.dedup();
        v
    };
    let deadline = Instant::now() + Duration::from_secs(90);
    let (mut ours, mut theirs);
    loop {
        ours = engine_firing().await;
        theirs = prom.firing().await;
        let has_all = |v: &Vec<(String, String)>| expected.iter().all(|e| v.contains(e));
        if (has_all(&ours) && has_all(&theirs)) || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    for e in &expected {
        assert!(ours.contains(e), "built-in engine lacks {e:?}: {ours:?}");
        assert!(theirs.contains(e), "Prometheus lacks {e:?}: {theirs:?}");
    }
    for quiet in ["DiskSpaceLow", "DiskSpaceCritical"] {
        assert!(
            !ours.iter().chain(&theirs).any(|(n, _)| n == quiet),
            "{quiet} fired"
        );
    }
    // Notifications: pages for the critical ones, Slack for the warning.
    wait_until("notifications", 20, || {
        let pd = pd.lock().expect("lock");
        let classes: Vec<&str> = pd
            .iter()
            .filter(|e| e["event_action"] == "trigger")
            .filter_map(|e| e["payload"]["class"].as_str())
            .collect();
        ["ClaudeAPIErrors", "HighErrorRate", "VMSpawnFailure"]
            .iter()
            .all(|c| classes.contains(c))
            && slack.lock().expect("lock").iter().any(|m| {
                m["text"]
                    .as_str()
                    .is_some_and(|t| t.starts_with("[FIRING] HighErrorRate (warning)"))
            })
    })
    .await;
}
