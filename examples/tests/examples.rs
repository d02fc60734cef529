//! The examples run against a real collector (the swarmscope router and store
//! in this process, on a loopback socket): what they record must arrive.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::Value;
use swarmscope_server::{router, AppState, Config};
use swarmscope_store::{Store, WriterConfig};

/// A child process killed when the test ends, passed or not (a survivor
/// would hold the test's output pipes open).
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

struct Collector {
    url: String,
    _dir: tempfile::TempDir,
}

async fn collector() -> Collector {
    let dir = tempfile::tempdir().expect("tmp");
    let store = Store::open(dir.path(), WriterConfig::default()).expect("store");
    let state = AppState::new(store, &Config::default()).expect("state");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    tokio::spawn(async move { axum::serve(listener, router(state)).await });
    Collector { url, _dir: dir }
}

async fn get(url: &str) -> Value {
    reqwest::get(url)
        .await
        .expect("get")
        .json()
        .await
        .expect("json")
}

fn trace_id_from(stdout: &str) -> String {
    stdout
        .lines()
        .find_map(|l| l.strip_prefix("trace_id="))
        .unwrap_or_else(|| panic!("no trace id in {stdout}"))
        .to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_agent_example_delivers_the_seed_span_tree_and_its_logs() {
    let c = collector().await;
    let out = Command::new(env!("CARGO_BIN_EXE_agent"))
        .args(["ticket_456", "agent_789", "tenant_001"])
        .env("SWARMSCOPE_URL", &c.url)
        .env("SWARMSCOPE_VM_ID", "vm-17")
        .output()
        .expect("run agent");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("flushed spans=9 logs=2 spooled=0"),
        "{stdout}"
    );
    // The agent's own stdout is the seed's JSON log line.
    let line: Value = serde_json::from_str(
        stdout
            .lines()
            .find(|l| l.contains("agent started"))
            .expect("log line"),
    )
    .expect("json");
    assert_eq!(line["ticket_id"], "ticket_456");

    let doc = get(&format!("{}/api/traces/{}", c.url, trace_id_from(&stdout))).await;
    let mut names: Vec<&str> = doc["spans"]
        .as_array()
        .expect("spans")
        .iter()
        .map(|s| s["name"].as_str().expect("name"))
        .collect();
    names.sort_unstable();
    assert_eq!(
        names,
        [
            "agent.execute",
            "file.write",
            "git.clone",
            "git.commit",
            "git.push",
            "llm.generate",
            "pr.create",
            "ticket.claim",
            "vm.spawn"
        ]
    );
    assert!(
        doc["spans"]
            .as_array()
            .expect("spans")
            .iter()
            .all(|s| s["end_time"].is_string()),
        "announced spans were completed"
    );
    let llm = doc["spans"]
        .as_array()
        .expect("spans")
        .iter()
        .find(|s| s["name"] == "llm.generate")
        .expect("llm")
        .clone();
    let execute = doc["spans"]
        .as_array()
        .expect("spans")
        .iter()
        .find(|s| s["name"] == "agent.execute")
        .expect("exec")
        .clone();
    assert_eq!(llm["parent_span_id"], execute["span_id"]);
    assert_eq!(llm["attributes"]["output_tokens"], 850);
    assert_eq!(llm["vm_id"], "vm-17");
    let logs: Vec<&str> = doc["logs"]
        .as_array()
        .expect("logs")
        .iter()
        .map(|l| l["message"].as_str().expect("m"))
        .collect();
    assert_eq!(logs, ["agent started", "llm call done"]);
    assert_eq!(doc["logs"][1]["span_id"], llm["span_id"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_mid_llm_call_still_delivers_and_the_vm_report_closes_the_open_spans() {
    let c = collector().await;
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_agent"))
            .args(["ticket_9", "agent_9", "tenant_001", "--hang"])
            .env("SWARMSCOPE_URL", &c.url)
            .env("SWARMSCOPE_VM_ID", "vm-dying")
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn agent"),
    );
    let mut lines = BufReader::new(child.0.stdout.take().expect("stdout")).lines();
    let mut trace_id = None;
    for line in lines.by_ref() {
        let line = line.expect("line");
        if let Some(t) = line.strip_prefix("trace_id=") {
            trace_id = Some(t.to_owned());
        }
        if line.contains("hanging in llm.generate") {
            break;
        }
    }
    let trace_id = trace_id.expect("trace id");
    Command::new("kill")
        .args(["-TERM", &child.0.id().to_string()])
        .status()
        .expect("kill");
    let status = child.0.wait().expect("wait");
    assert_eq!(status.code(), Some(143), "exits 128+SIGTERM after flushing");

    let doc = get(&format!("{}/api/traces/{trace_id}", c.url)).await;
    let spans = doc["spans"].as_array().expect("spans");
    let open: Vec<&str> = spans
        .iter()
        .filter(|s| s["end_time"].is_null())
        .map(|s| s["name"].as_str().expect("n"))
        .collect();
    assert_eq!(
        open.len(),
        2,
        "agent.execute and llm.generate were left open: {doc}"
    );
    assert!(
        spans.iter().any(|s| s["name"] == "git.clone"),
        "spans ended before the kill arrived"
    );

    // The host reports the VM gone: the open spans are closed and marked.
    let closed: Value = reqwest::Client::new()
        .post(format!("{}/api/vms/vm-dying/terminated", c.url))
        .send()
        .await
        .expect("post")
        .json()
        .await
        .expect("json");
    assert_eq!(closed["closed"], 2);
    let doc = get(&format!("{}/api/traces/{trace_id}", c.url)).await;
    let llm = doc["spans"]
        .as_array()
        .expect("spans")
        .iter()
        .find(|s| s["name"] == "llm.generate")
        .expect("llm")
        .clone();
    assert_eq!(llm["status"], "error");
    assert_eq!(llm["attributes"]["swarm.incomplete"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_platform_example_traces_requests_end_to_end() {
    let c = collector().await;
    let mut child = KillOnDrop(
        Command::new(env!("CARGO_BIN_EXE_platform"))
            .env("SWARMSCOPE_URL", &c.url)
            .env("RUST_BACKTRACE", "0")
            .stdout(Stdio::piped())
            .spawn()
            .expect("spawn platform"),
    );
    let mut lines = BufReader::new(child.0.stdout.take().expect("stdout")).lines();
    let first = lines.next().expect("line").expect("line");
    let base = first
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("addr")
        .to_owned();
    std::thread::spawn(move || for _ in lines {});
    let http = reqwest::Client::new();
    let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let resp = http
        .post(format!("{base}/api/tenants/acme/tickets/T-7/claim"))
        .header(
            "traceparent",
            format!("00-{caller_trace}-00f067aa0ba902b7-01"),
        )
        .header("x-request-id", "req_from_caller")
        .send()
        .await
        .expect("claim");
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["x-trace-id"], caller_trace);
    assert_eq!(resp.headers()["x-request-id"], "req_from_caller");

    let boom = http
        .post(format!("{base}/boom"))
        .send()
        .await
        .expect("boom");
    assert_eq!(boom.status(), 500, "a panic becomes a 500");
    let boom_trace = boom.headers()["x-trace-id"]
        .to_str()
        .expect("trace")
        .to_owned();
    let body: Value = boom.json().await.expect("json");
    assert_eq!(body["error"], "internal error");
    let after = http
        .post(format!("{base}/api/tenants/acme/tickets/T-8/claim"))
        .send()
        .await
        .expect("again");
    assert_eq!(after.status(), 200, "the server survives the panic");

    // The platform flushes every 200 ms.
    let mut doc = Value::Null;
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        doc = get(&format!(
            "{}/api/traces/{caller_trace}?tenant_id=acme",
            c.url
        ))
        .await;
        if doc["spans"].as_array().is_some_and(|s| s.len() == 2) {
            break;
        }
    }
    let spans = doc["spans"].as_array().unwrap_or_else(|| panic!("{doc}"));
    let request = spans
        .iter()
        .find(|s| s["name"] == "http.request")
        .expect("http.request");
    let claim = spans
        .iter()
        .find(|s| s["name"] == "ticket.claim")
        .expect("ticket.claim");
    assert_eq!(
        request["parent_span_id"], "00f067aa0ba902b7",
        "child of the caller's span"
    );
    assert_eq!(request["kind"], "server");
    assert_eq!(
        request["attributes"]["path"], "/api/tenants/{tenant}/tickets/{ticket}/claim",
        "the route template"
    );
    assert_eq!(request["attributes"]["status_code"], 200);
    assert_eq!(request["ticket_id"], "T-7");
    assert_eq!(claim["parent_span_id"], request["span_id"]);

    let boom_doc = get(&format!("{}/api/traces/{boom_trace}", c.url)).await;
    let span = &boom_doc["spans"][0];
    assert_eq!(span["status"], "error");
    assert_eq!(span["status_message"], "database is on fire");
    assert_eq!(
        span["tenant_id"], "platform",
        "no tenant named: the default"
    );

    // Its /metrics counted the requests by route template, and Prometheus's
    // own checker accepts the exposition.
    let scrape = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .expect("scrape");
    assert_eq!(
        scrape.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    let text = scrape.text().await.expect("text");
    assert!(
        text.contains(r#"swarm_api_requests_total{method="POST",path="/api/tenants/{tenant}/tickets/{ticket}/claim",status="200"} 2"#),
        "{text}"
    );
    assert!(
        text.contains(r#"swarm_api_requests_total{method="POST",path="/boom",status="500"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(r#"swarm_tickets_total{tenant_id="acme",status="claimed"} 2"#),
        "{text}"
    );
    assert!(
        text.contains("swarm_api_request_duration_ms_bucket{"),
        "{text}"
    );
    let promtool = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut promtool = promtool
        .expect("promtool not found: run scripts/test, which installs Debian's prometheus package");
    std::io::Write::write_all(&mut promtool.stdin.take().expect("stdin"), text.as_bytes())
        .expect("write");
    let checked = promtool.wait_with_output().expect("promtool");
    let findings = format!(
        "{}{}",
        String::from_utf8_lossy(&checked.stdout),
        String::from_utf8_lossy(&checked.stderr)
    );
    // Exit 0: clean. Exit 3: lint findings only (1 would be a parse error).
    // The one finding allowed is the linter's dislike of the seed's own `_ms`
    // names, which dashboards and alerts depend on (docs/metrics.md).
    let seed_ms_names = ["swarm_api_request_duration_ms", "swarm_vm_boot_duration_ms"];
    let unexpected: Vec<&str> = findings
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter(|l| {
            !(l.contains("should not contain abbreviated units")
                && seed_ms_names.iter().any(|n| l.starts_with(n)))
        })
        .collect();
    assert!(
        matches!(checked.status.code(), Some(0) | Some(3)) && unexpected.is_empty(),
        "promtool check metrics ({:?}): {findings}",
        checked.status.code()
    );
}
