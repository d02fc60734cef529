//! Spans that never end: announced open spans, the VM-terminated report,
//! the silence timeout, and a late genuine end replacing the closure.

mod support;

use std::time::Duration;

use serde_json::json;
use support::{config_with_keys, span, Server};

fn open_span(tenant: &str, trace: &str, id: &str, name: &str, vm: &str) -> serde_json::Value {
    let mut s = span(tenant, trace, id, name);
    let m = s.as_object_mut().expect("object");
    m.remove("endTime");
    m.remove("durationMs");
    m.insert("vm_id".into(), json!(vm));
    m.insert("status".into(), json!("unset"));
    s
}

#[tokio::test]
async fn a_terminated_vm_has_its_open_spans_closed_and_marked() {
    let (config, keys) = config_with_keys(&[
        (Some("acme"), &["ingest", "read"]),
        (Some("globex"), &["ingest", "read"]),
    ]);
    let server = Server::with_config(&config);
    let (acme, globex) = (keys[0].as_str(), keys[1].as_str());
    let spans = json!([
        open_span("acme", "t1", "exec", "agent.execute", "vm-1"),
        open_span("acme", "t1", "llm", "llm.generate", "vm-1"),
        span("acme", "t1", "clone", "git.clone"),
    ]);
    assert_eq!(server.post("/api/traces", &spans, Some(acme)).await.0, 202);
    assert_eq!(
        server
            .post(
                "/api/traces",
                &open_span("globex", "t2", "g", "agent.execute", "vm-1"),
                Some(globex)
            )
            .await
            .0,
        202
    );

    let (_, before) = server.get("/api/traces/t1", Some(acme)).await;
    assert!(before["spans"]
        .as_array()
        .expect("spans")
        .iter()
        .any(|s| s["end_time"].is_null()));

    let (status, body) = server
        .post("/api/vms/vm-1/terminated", &json!({}), Some(acme))
        .await;
    assert_eq!((status, body), (200, json!({"closed": 2})));
    let (_, after) = server.get("/api/traces/t1", Some(acme)).await;
    for s in after["spans"]
        .as_array()
        .expect("spans")
        .iter()
        .filter(|s| s["name"] != "git.clone")
    {
        assert_eq!(s["status"], "error", "{s}");
        assert_eq!(s["attributes"]["swarm.incomplete"], true, "{s}");
        assert!(s["end_time"].is_string());
    }
    assert_eq!(after["trace"]["error_count"], 2);
    let (_, other) = server.get("/api/traces/t2", Some(globex)).await;
    assert!(
        other["spans"][0]["end_time"].is_null(),
        "acme's report does not close globex's spans"
    );

    // The agent's real end arrives later (a spool pushed by the host): it wins.
    let mut real = span("acme", "t1", "exec", "agent.execute");
    real["vm_id"] = json!("vm-1");
    assert_eq!(server.post("/api/traces", &real, Some(acme)).await.0, 202);
    let (_, fixed) = server.get("/api/traces/t1", Some(acme)).await;
    let exec = fixed["spans"]
        .as_array()
        .expect("spans")
        .iter()
        .find(|s| s["span_id"] == "exec")
        .expect("exec")
        .clone();
    assert_eq!(exec["status"], "ok");
    assert!(exec["attributes"].get("swarm.incomplete").is_none());
    assert_eq!(fixed["trace"]["error_count"], 1);

    let (status, _) = server
        .post("/api/vms/vm-1/terminated", &json!({}), None)
        .await;
    assert_eq!(status, 401);
}

#[tokio::test]
async fn a_silent_trace_has_its_open_spans_closed() {
    let server = Server::with_config("incomplete_after_secs = 1\n");
    server
        .post(
            "/api/traces",
            &open_span("acme", "quiet", "s", "llm.generate", "vm-9"),
            None,
        )
        .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
    loop {
        let (_, doc) = server.get("/api/traces/quiet", None).await;
        if doc["spans"][0]["attributes"]["swarm.incomplete"] == true {
            assert_eq!(doc["spans"][0]["status"], "error");
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "open span was never closed: {doc}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}
