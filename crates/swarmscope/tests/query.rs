//! The read API over a real socket: traces, search, tickets, parameters.

mod support;

use serde_json::json;
use support::{span, Server};

async fn load(server: &Server) {
    let mut spans = Vec::new();
    for i in 0..12 {
        let trace = format!("trace-{i:02}");
        let mut root = span("acme", &trace, "root", "http.request");
        root["startTime"] = json!(format!("2025-12-14T10:{i:02}:00.000Z"));
        root["endTime"] = json!(format!(
            "2025-12-14T10:{i:02}:0{}.000Z",
            if i == 3 { 9 } else { 1 }
        ));
        root.as_object_mut().expect("object").remove("durationMs");
        root["ticketId"] = json!(format!("ticket-{}", i % 4));
        root["agentId"] = json!(format!("agent-{}", i % 2));
        let mut child = span(
            "acme",
            &trace,
            "child",
            if i == 5 { "llm.generate" } else { "git.push" },
        );
        child["parentSpanId"] = json!("root");
        child["startTime"] = root["startTime"].clone();
        child["endTime"] = root["startTime"].clone();
        child.as_object_mut().expect("object").remove("durationMs");
        child["ticketId"] = root["ticketId"].clone();
        child["agentId"] = root["agentId"].clone();
        if i % 4 == 1 {
            child["status"] = json!("error");
        }
        spans.push(root);
        spans.push(child);
    }
    let (status, body) = server.post("/api/traces", &json!(spans), None).await;
    assert_eq!(status, 202, "{body}");
}

#[tokio::test]
async fn search_filters_and_paginates() {
    let server = Server::start();
    load(&server).await;
    let ids = |body: &serde_json::Value| -> Vec<String> {
        body["traces"]
            .as_array()
            .expect("traces")
            .iter()
            .map(|t| t["trace_id"].as_str().expect("id").to_owned())
            .collect()
    };

    let (status, page1) = server.get("/api/traces?limit=5", None).await;
    assert_eq!(status, 200, "{page1}");
    assert_eq!(
        ids(&page1),
        ["trace-11", "trace-10", "trace-09", "trace-08", "trace-07"]
    );
    let first = &page1["traces"][0];
    assert_eq!(first["root_name"], "http.request");
    assert_eq!(first["span_count"], 2);
    assert_eq!(first["tenant_id"], "acme");
    assert_eq!(first["ticket_id"], "ticket-3");
    let cursor = page1["next_cursor"].as_str().expect("cursor").to_owned();
    let (_, page2) = server
        .get(&format!("/api/traces?limit=5&cursor={cursor}"), None)
        .await;
    assert_eq!(
        ids(&page2),
        ["trace-06", "trace-05", "trace-04", "trace-03", "trace-02"]
    );
    let cursor = page2["next_cursor"].as_str().expect("cursor").to_owned();
    let (_, page3) = server
        .get(&format!("/api/traces?limit=5&cursor={cursor}"), None)
        .await;
    assert_eq!(ids(&page3), ["trace-01", "trace-00"]);
    assert!(page3["next_cursor"].is_null());

    let count = |q: &str| {
        let q = q.to_owned();
        let server = &server;
        async move {
            let (status, body) = server
                .get(&format!("/api/traces?limit=100&{q}"), None)
                .await;
            assert_eq!(status, 200, "{q}: {body}");
            body["traces"].as_array().expect("traces").len()
        }
    };
    assert_eq!(count("ticket_id=ticket-1").await, 3);
    assert_eq!(count("agent_id=agent-0").await, 6);
    assert_eq!(count("status=error").await, 3);
    assert_eq!(count("status=ok").await, 9);
    assert_eq!(count("name=llm.generate").await, 1);
    assert_eq!(count("min_duration_ms=5000").await, 1);
    assert_eq!(
        count("since=2025-12-14T10:05:00Z&until=2025-12-14T10:08:00Z").await,
        3
    );
    assert_eq!(count("tenant_id=acme").await, 12);
    assert_eq!(count("tenant_id=nobody").await, 0);
    assert_eq!(count("since=1h").await, 0);

    let (status, body) = server.get("/api/tickets/ticket-2/traces", None).await;
    assert_eq!(status, 200);
    assert_eq!(ids(&body), ["trace-10", "trace-06", "trace-02"]);
}

#[tokio::test]
async fn invalid_parameters_are_named() {
    let server = Server::start();
    for (query, param) in [
        ("limit=0", "limit"),
        ("limit=abc", "limit"),
        ("limit=1000000", "limit"),
        ("status=maybe", "status"),
        ("min_duration_ms=-3", "min_duration_ms"),
        ("since=yesterday", "since"),
        ("until=2025-13-45", "until"),
        ("cursor=zzz", "cursor"),
        ("colour=blue", "colour"),
        ("limit=1&limit=2", "limit"),
        ("ticket_id=", "ticket_id"),
    ] {
        let (status, body) = server.get(&format!("/api/traces?{query}"), None).await;
        assert_eq!(status, 400, "{query}: {body}");
        assert_eq!(body["field"], param, "{query}: {body}");
    }
}

#[tokio::test]
async fn unknown_traces_are_404_and_orphans_are_flagged() {
    let server = Server::start();
    let (status, body) = server.get("/api/traces/does-not-exist", None).await;
    assert_eq!(status, 404);
    assert_eq!(body["field"], "trace_id");

    let mut orphan = span("acme", "t-orphan", "kid", "git.push");
    orphan["parent_span_id"] = json!("never-arrived");
    let root = span("acme", "t-orphan", "root", "agent.execute");
    server
        .post("/api/traces", &json!([root, orphan]), None)
        .await;
    let (_, doc) = server.get("/api/traces/t-orphan", None).await;
    let flags: Vec<(String, bool)> = doc["spans"]
        .as_array()
        .expect("spans")
        .iter()
        .map(|s| {
            (
                s["span_id"].as_str().expect("id").to_owned(),
                s["orphan"].as_bool().expect("flag"),
            )
        })
        .collect();
    assert!(
        flags.contains(&("kid".into(), true)) && flags.contains(&("root".into(), false)),
        "{flags:?}"
    );
}
