//! Log lines over a real socket: `POST /api/logs`, `GET /api/logs`, logs
//! returned with their trace, and `swarmscope logs`.

mod support;

use serde_json::{json, Value};
use support::{config_with_keys, run, span, Server};

fn line(tenant: &str, trace: Option<&str>, second: u32, level: &str, message: &str) -> Value {
    json!({
        "timestamp": format!("2025-12-14T10:30:{second:02}.000Z"),
        "level": level,
        "message": message,
        "trace_id": trace,
        "request_id": "req_xyz",
        "tenant_id": tenant,
        "ticket_id": "ticket_456",
        "agent_id": "agent_789",
        "duration_ms": 45,
        "metadata": {"attempt": second}
    })
}

#[tokio::test]
async fn every_body_shape_is_stored_once_and_searchable() {
    let server = Server::start();
    let (status, body) = server
        .post(
            "/api/logs",
            &line("acme", Some("t1"), 1, "info", "claimed"),
            None,
        )
        .await;
    assert_eq!((status, body), (202, json!({"accepted": 1})));
    let (status, _) = server
        .post(
            "/api/logs",
            &json!([line("acme", Some("t1"), 2, "warn", "slow clone")]),
            None,
        )
        .await;
    assert_eq!(status, 202);
    let (status, _) = server
        .post(
            "/api/logs",
            &json!({"logs": [line("acme", None, 3, "error", "push rejected")]}),
            None,
        )
        .await;
    assert_eq!(status, 202);
    let ndjson = format!(
        "{}\n{}\n",
        line("acme", Some("t1"), 4, "debug", "tokens counted"),
        line("acme", Some("t1"), 1, "info", "claimed")
    );
    let (status, body) = server
        .post_raw(
            "/api/logs",
            ndjson.into_bytes(),
            &[("content-type", "application/x-ndjson")],
            None,
        )
        .await;
    assert_eq!(
        (status, body),
        (202, json!({"accepted": 2})),
        "a re-sent line counts as accepted"
    );

    let (_, all) = server.get("/api/logs?tenant_id=acme", None).await;
    let messages: Vec<&str> = all["logs"]
        .as_array()
        .expect("logs")
        .iter()
        .map(|l| l["message"].as_str().expect("m"))
        .collect();
    assert_eq!(
        messages,
        ["tokens counted", "push rejected", "slow clone", "claimed"],
        "newest first, stored once"
    );
    let first = &all["logs"][3];
    assert_eq!(first["request_id"], "req_xyz");
    assert_eq!(first["duration_ms"], 45.0);
    assert_eq!(first["metadata"]["attempt"], 1);

    let count = |q: &'static str| {
        let server = &server;
        async move {
            server.get(&format!("/api/logs?{q}"), None).await.1["logs"]
                .as_array()
                .map(Vec::len)
                .unwrap_or(99)
        }
    };
    assert_eq!(count("level=warn").await, 2);
    assert_eq!(count("trace_id=t1").await, 3);
    assert_eq!(count("q=rejected").await, 1);
    assert_eq!(
        count("since=2025-12-14T10:30:02Z&until=2025-12-14T10:30:04Z").await,
        2
    );

    // The trace's lines come back with the trace, in time order.
    server
        .post("/api/traces", &span("acme", "t1", "s1", "git.clone"), None)
        .await;
    let (_, doc) = server.get("/api/traces/t1", None).await;
    let trace_logs: Vec<&str> = doc["logs"]
        .as_array()
        .expect("logs")
        .iter()
        .map(|l| l["message"].as_str().expect("m"))
        .collect();
    assert_eq!(trace_logs, ["claimed", "slow clone", "tokens counted"]);

    // A ticket's lines are those of its traces (t1 belongs to ticket_456).
    assert_eq!(count("ticket_id=ticket_456").await, 3);
    assert_eq!(count("ticket_id=ticket_456&level=warn").await, 1);
    assert_eq!(count("ticket_id=ticket_999").await, 0);
}

#[tokio::test]
async fn bad_lines_are_refused_with_their_line_number_and_nothing_is_stored() {
    let server = Server::start();
    let good = line("acme", None, 1, "info", "fine");
    let mut bad = line("acme", None, 2, "loud", "bad level");
    let ndjson = format!("{good}\n{good}\n{bad}\n");
    let (status, body) = server
        .post_raw("/api/logs", ndjson.into_bytes(), &[], None)
        .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["field"], "line 3.level");
    assert!(body["error"].as_str().expect("error").contains("line 3"));
    bad["level"] = json!("info");
    bad.as_object_mut().expect("object").remove("timestamp");
    let (status, body) = server.post("/api/logs", &json!([good, bad]), None).await;
    assert_eq!(status, 400);
    assert_eq!(body["field"], "[1].timestamp");
    let (status, body) = server
        .post_raw("/api/logs", b"{\"level\": }\n{}".to_vec(), &[], None)
        .await;
    assert_eq!(status, 400);
    assert_eq!(body["field"], "line 1");
    for (q, param) in [
        ("level=loud", "level"),
        ("order=up", "order"),
        ("limit=0", "limit"),
        ("cursor=x", "cursor"),
        ("what=1", "what"),
    ] {
        let (status, body) = server.get(&format!("/api/logs?{q}"), None).await;
        assert_eq!((status, body["field"].as_str()), (400, Some(param)), "{q}");
    }
    let (_, all) = server.get("/api/logs", None).await;
    assert_eq!(all["logs"].as_array().map(Vec::len), Some(0));
}

#[tokio::test]
async fn log_tenancy_matches_spans() {
    let (config, keys) = config_with_keys(&[
        (Some("acme"), &["ingest", "read"]),
        (Some("globex"), &["read"]),
    ]);
    let server = Server::with_config(&config);
    let (acme, globex) = (keys[0].as_str(), keys[1].as_str());
    let (status, body) = server
        .post(
            "/api/logs",
            &line("globex", None, 1, "info", "x"),
            Some(acme),
        )
        .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["field"], "tenant_id");
    let mut own = line("acme", Some("t"), 1, "info", "mine");
    own.as_object_mut().expect("object").remove("tenant_id");
    assert_eq!(server.post("/api/logs", &own, Some(acme)).await.0, 202);
    let mut own_span = span("acme", "t", "s1", "agent.run");
    own_span.as_object_mut().expect("object").remove("tenantId");
    assert_eq!(
        server.post("/api/traces", &own_span, Some(acme)).await.0,
        202
    );
    let (_, by_ticket) = server
        .get("/api/logs?ticket_id=ticket_456", Some(acme))
        .await;
    assert_eq!(by_ticket["logs"][0]["message"], "mine", "{by_ticket}");
    let (_, seen) = server.get("/api/logs", Some(acme)).await;
    assert_eq!(seen["logs"][0]["tenant_id"], "acme");
    for path in ["/api/logs", "/api/logs?ticket_id=ticket_456"] {
        let (status, other) = server.get(path, Some(globex)).await;
        assert_eq!(status, 200);
        assert_eq!(
            other["logs"].as_array().map(Vec::len),
            Some(0),
            "globex sees none of acme's lines: {path}"
        );
    }
    assert_eq!(
        server.get("/api/logs?tenant_id=acme", Some(globex)).await.0,
        403
    );
    assert_eq!(
        server.post("/api/logs", &own, Some(globex)).await.0,
        403,
        "a read key cannot ingest"
    );
    assert_eq!(server.get("/api/logs", None).await.0, 401);
}

#[tokio::test]
async fn the_logs_command_prints_a_trace_and_the_newest_lines() {
    let server = Server::start();
    let lines: Vec<Value> = (1..=5)
        .map(|i| {
            line(
                "acme",
                Some(if i % 2 == 0 { "even" } else { "odd" }),
                i,
                "info",
                &format!("step {i}"),
            )
        })
        .collect();
    server.post("/api/logs", &json!(lines), None).await;
    let mut even = span("acme", "even", "s1", "agent.run");
    even["ticketId"] = json!("ticket_2");
    server.post("/api/traces", &even, None).await;
    let url = server.base.clone();
    let (code, out, err) = run(&["logs", "--trace", "odd", "--url", &url]);
    assert_eq!(code, 0, "{err}");
    let printed: Vec<&str> = out.lines().collect();
    assert_eq!(printed.len(), 3, "{out}");
    assert!(printed[0].starts_with("2025-12-14T10:30:01Z INFO  acme ticket_456 agent_789  step 1 (45ms) attempt=1 trace=odd"), "{out}");
    assert!(printed[2].contains("step 5"));
    let (code, out, _) = run(&["logs", "--limit", "2", "--url", &url]);
    assert_eq!(code, 0);
    let printed: Vec<&str> = out.lines().collect();
    assert!(
        printed.len() == 2 && printed[0].contains("step 4") && printed[1].contains("step 5"),
        "{out}"
    );
    let (code, out, err) = run(&["logs", "--ticket", "ticket_2", "--url", &url]);
    assert_eq!(code, 0, "{err}");
    let printed: Vec<&str> = out.lines().collect();
    assert!(
        printed.len() == 2 && printed[0].contains("step 2") && printed[1].contains("step 4"),
        "{out}"
    );
    let (code, _, err) = run(&["logs", "--level", "loud", "--url", &url]);
    assert_eq!(code, 1);
    assert!(err.contains("level must be"), "{err}");
}

#[test]
fn the_logs_command_follows_new_lines() {
    let server = Server::start();
    let url = server.base.clone();
    let mut child = std::process::Command::new(support::BIN)
        .args(["logs", "--follow", "--url", &url])
        .stdout(std::process::Stdio::piped())
        .spawn()
        .expect("spawn");
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for l in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            let _ = tx.send(l);
        }
    });
    let rt = tokio::runtime::Runtime::new().expect("rt");
    std::thread::sleep(std::time::Duration::from_millis(500));
    rt.block_on(server.post(
        "/api/logs",
        &line("acme", None, 7, "warn", "arrived later"),
        None,
    ));
    let got = rx.recv_timeout(std::time::Duration::from_secs(10));
    let _ = child.kill();
    let _ = child.wait();
    assert!(got.expect("a followed line").contains("arrived later"));
}
