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
use support::{config_with_keys, run, span, Server};

type Got = Arc<Mutex<Vec<Value>>>;

async fn receiver() -> (Got, String) {
    let got: Got = Arc::default();
    let app = Router::new()
        .route(
            "/pd",
            post(|State(g): State<Got>, Json(v): Json<Value>| async move {
                g.lock().expect("lock").push(v);
                axum::http::StatusCode::ACCEPTED
            }),
        )
        .with_state(Arc::clone(&got));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move { axum::serve(listener, app).await });
    (got, format!("http://{addr}/pd"))
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
    let (keys_toml, keys) = config_with_keys(&[(None, &["admin"]), (Some("acme"), &["read"])]);
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

    // The API and the CLI show it; a tenant key sees this tenant-less alert.
    let (status, doc) = server.get("/api/alerts", Some(acme)).await;
    assert_eq!(status, 200, "{doc}");
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
