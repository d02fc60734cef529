//! The seed-format JSON logger: line shape, levels, correlation from spans
//! (across .await and tokio::spawn), secret masking, shipping, rotation.

use std::io::Write;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use swarmscope_sdk::log::{rotating_file, FileOutput, LogBuffer, SeedJsonLayer};
use tracing::Instrument;
use tracing_subscriber::layer::SubscriberExt;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for Capture {
    type Writer = Capture;
    fn make_writer(&'a self) -> Capture {
        self.clone()
    }
}

impl Capture {
    fn lines(&self) -> Vec<Value> {
        let text = String::from_utf8(self.0.lock().expect("lock").clone()).expect("utf8");
        text.lines()
            .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}")))
            .collect()
    }
    fn raw(&self) -> String {
        String::from_utf8(self.0.lock().expect("lock").clone()).expect("utf8")
    }
}

fn capture() -> (Capture, tracing::subscriber::DefaultGuard) {
    let cap = Capture::default();
    let subscriber = tracing_subscriber::registry().with(SeedJsonLayer::new(cap.clone()));
    let guard = tracing::subscriber::set_default(subscriber);
    (cap, guard)
}

#[test]
fn lines_have_the_seed_shape_and_levels() {
    let (cap, _g) = capture();
    tracing::info!(
        trace_id = "abc123",
        request_id = "req_xyz",
        tenant_id = "tenant_001",
        ticket_id = "ticket_456",
        agent_id = "agent_789",
        duration_ms = 45,
        model = "claude-sonnet-4-5",
        retries = 2u64,
        ok = true,
        "Ticket claimed by agent"
    );
    tracing::debug!("d");
    tracing::trace!("t");
    tracing::warn!("w");
    tracing::error!("e");
    swarmscope_sdk::fatal!(code = 7, "cannot go on");
    let raw = cap.raw();
    let first = raw.lines().next().expect("line");
    let keys: Vec<&str> = [
        "\"timestamp\"",
        "\"level\"",
        "\"message\"",
        "\"trace_id\"",
        "\"request_id\"",
        "\"tenant_id\"",
        "\"ticket_id\"",
        "\"agent_id\"",
        "\"duration_ms\"",
        "\"metadata\"",
    ]
    .to_vec();
    let positions: Vec<usize> = keys
        .iter()
        .map(|k| first.find(k).unwrap_or_else(|| panic!("{k} in {first}")))
        .collect();
    assert!(
        positions.windows(2).all(|w| w[0] < w[1]),
        "keys in the seed's order: {first}"
    );

    let lines = cap.lines();
    let l = &lines[0];
    assert_eq!(l["level"], "info");
    assert_eq!(l["message"], "Ticket claimed by agent");
    assert_eq!(l["tenant_id"], "tenant_001");
    assert_eq!(l["duration_ms"], 45.0);
    assert_eq!(
        l["metadata"],
        serde_json::json!({"model": "claude-sonnet-4-5", "retries": 2, "ok": true})
    );
    let ts = l["timestamp"].as_str().expect("ts");
    assert_eq!(ts.len(), 24, "{ts}");
    assert!(
        swarmscope_model::timestamp::parse_rfc3339(ts).is_some(),
        "{ts}"
    );
    let levels: Vec<&str> = lines
        .iter()
        .map(|l| l["level"].as_str().expect("level"))
        .collect();
    assert_eq!(levels, ["info", "debug", "debug", "warn", "error", "fatal"]);
    assert_eq!(
        lines[5]["metadata"],
        serde_json::json!({"code": 7}),
        "the fatal marker is not metadata"
    );
    assert!(lines[1]["trace_id"].is_null() && lines[1]["duration_ms"].is_null());
}

#[test]
fn outer_span_fields_show_on_every_line_inside() {
    let (cap, _g) = capture();
    let request = tracing::info_span!(
        "http.request",
        request_id = "req_1",
        tenant_id = "acme",
        route = "/claim"
    );
    let _r = request.enter();
    tracing::info!("at the top");
    {
        let ticket = tracing::info_span!("ticket.claim", ticket_id = "T-1", route = "/inner");
        let _t = ticket.enter();
        tracing::info!(tenant_id = "override", "inside");
    }
    let lines = cap.lines();
    assert_eq!(lines[0]["request_id"], "req_1");
    assert_eq!(lines[0]["metadata"]["route"], "/claim");
    assert_eq!(
        lines[1]["request_id"], "req_1",
        "outer span's field inside the inner span"
    );
    assert_eq!(lines[1]["ticket_id"], "T-1");
    assert_eq!(
        lines[1]["tenant_id"], "override",
        "the event's own value wins"
    );
    assert_eq!(
        lines[1]["metadata"]["route"], "/inner",
        "the innermost span wins"
    );
}

#[tokio::test]
async fn context_follows_awaits_and_spawned_instrumented_tasks() {
    let (cap, _g) = capture();
    let span = tracing::info_span!(
        "agent.execute",
        trace_id = "4bf92f3577b34da6a3ce929d0e0e4736",
        agent_id = "agent-7"
    );
    async {
        tokio::task::yield_now().await;
        tracing::info!("after an await");
        let handle = tokio::spawn(
            async {
                tokio::task::yield_now().await;
                tracing::info!("in a spawned task");
            }
            .in_current_span(),
        );
        handle.await.expect("join");
    }
    .instrument(span)
    .await;
    tracing::info!("outside");
    let lines = cap.lines();
    assert_eq!(lines.len(), 3);
    for l in &lines[..2] {
        assert_eq!(l["trace_id"], "4bf92f3577b34da6a3ce929d0e0e4736", "{l}");
        assert_eq!(l["agent_id"], "agent-7");
    }
    assert!(lines[2]["trace_id"].is_null());
}

#[test]
fn secrets_never_reach_a_line() {
    let (cap, _g) = capture();
    let span = tracing::info_span!("call", authorization = "Bearer abcdefghijklmnop");
    let _s = span.enter();
    tracing::info!(
        api_key = "sk-ant-api03-secretsecretsecret",
        password = "hunter2hunter2",
        input_tokens = 1200,
        url = "https://x.example/?q=1",
        note = "retrying with sk-ant-api03-AAAAAAAAAAAAAAAA now",
        "sending Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.e30.sig"
    );
    let raw = cap.raw();
    for secret in [
        "abcdefghijklmnop",
        "secretsecretsecret",
        "hunter2",
        "AAAAAAAAAAAAAAAA",
        "eyJhbGciOiJIUzI1NiJ9",
    ] {
        assert!(!raw.contains(secret), "{secret} leaked: {raw}");
    }
    let l = &cap.lines()[0];
    assert_eq!(l["metadata"]["api_key"], "[REDACTED]");
    assert_eq!(l["metadata"]["authorization"], "[REDACTED]");
    assert_eq!(
        l["metadata"]["input_tokens"], 1200,
        "token counts are not secrets"
    );
    assert_eq!(l["metadata"]["url"], "https://x.example/?q=1");
    assert_eq!(l["message"], "sending Authorization: Bearer [REDACTED]");
}

#[test]
fn lines_are_queued_for_shipping() {
    let buffer = LogBuffer::new(2);
    let cap = Capture::default();
    let subscriber = tracing_subscriber::registry()
        .with(SeedJsonLayer::new(cap.clone()).with_shipper(buffer.clone()));
    tracing::subscriber::with_default(subscriber, || {
        tracing::info!("one");
        tracing::info!("two");
        tracing::info!("three");
    });
    let shipped: Vec<Value> = buffer
        .drain()
        .iter()
        .map(|l| serde_json::from_slice(l).expect("json"))
        .collect();
    let messages: Vec<&str> = shipped
        .iter()
        .map(|l| l["message"].as_str().expect("m"))
        .collect();
    assert_eq!(messages, ["two", "three"], "a full queue drops the oldest");
    assert_eq!(buffer.dropped(), 1);
}

#[test]
fn files_rotate_by_size_and_old_ones_are_compressed() {
    let dir = tempfile::tempdir().expect("tmp");
    let out = FileOutput {
        path: dir.path().join("agent.log"),
        max_bytes: 2_000,
        keep: 3,
        compress: true,
    };
    let mut file = rotating_file(&out);
    for i in 0..400 {
        writeln!(
            file,
            "{{\"level\":\"info\",\"message\":\"line {i:04} padding padding padding\"}}"
        )
        .expect("write");
    }
    file.flush().expect("flush");
    drop(file);
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "agent.log",
            "agent.log.1",
            "agent.log.2.gz",
            "agent.log.3.gz"
        ],
        "{names:?}"
    );
    let live = std::fs::metadata(dir.path().join("agent.log"))
        .expect("live")
        .len();
    assert!(live <= 2_100, "live file {live} bytes");
    let mut gz = flate2::read::GzDecoder::new(
        std::fs::File::open(dir.path().join("agent.log.2.gz")).expect("gz"),
    );
    let mut text = String::new();
    std::io::Read::read_to_string(&mut gz, &mut text).expect("gunzip");
    assert!(
        text.lines().all(|l| l.starts_with("{\"level\"")),
        "whole lines survive compression"
    );
}
