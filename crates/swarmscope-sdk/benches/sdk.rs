//! SDK benchmarks (`cargo bench -p swarmscope-sdk`): prints figures, asserts
//! nothing. What docs/sdk.md quotes comes from here.
//!
//! - span start + end, per span;
//! - memory held by 1,000 recorded spans (a counting allocator);
//! - JSON log lines per second into a buffered file on one thread, ours vs
//!   tracing-subscriber's own JSON formatter on the same events;
//! - flush of 1,000 spans to a collector on loopback (the real router and
//!   store, in this process).

// The counting allocator needs `unsafe impl GlobalAlloc`; it only forwards to
// the system allocator and counts.
#![allow(unsafe_code, missing_docs)]

use std::alloc::{GlobalAlloc, Layout, System};
use std::io::BufWriter;
use std::sync::atomic::{AtomicIsize, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde_json::Value;
use swarmscope_sdk::log::SeedJsonLayer;
use swarmscope_sdk::tracer::{AgentTracer, Tracer, TracerConfig};
use tracing_subscriber::layer::SubscriberExt;

struct Counting;

static LIVE: AtomicIsize = AtomicIsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        LIVE.fetch_add(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.alloc(layout) }
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        LIVE.fetch_sub(layout.size() as isize, Ordering::Relaxed);
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOC: Counting = Counting;

/// A tracer whose flush fails at once (closed port, no retries) and spools
/// to a scratch file: a cheap way to empty its queue between rounds.
fn offline_tracer() -> Tracer {
    let mut config = TracerConfig::from_env();
    config.url = "http://127.0.0.1:9".into();
    config.deadline = Duration::from_millis(50);
    config.retries = 0;
    config.spool_path =
        std::env::temp_dir().join(format!("swarmscope-bench-{}.jsonl", std::process::id()));
    Tracer::new(config)
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn bench_span_start_end() {
    let tracer = offline_tracer();
    let agent = AgentTracer::with_tracer(&tracer, "ticket_456", "agent_789", "tenant_001");
    let mut rounds = Vec::new();
    for _ in 0..30 {
        let n = 20_000;
        let t = Instant::now();
        for _ in 0..n {
            agent
                .start_span("file.write", std::iter::empty::<(String, Value)>())
                .end();
        }
        rounds.push(t.elapsed().as_nanos() as f64 / n as f64);
        // Drain outside the timing: recording is what is measured.
        while tracer.pending() > 0 {
            let _ = tracer_drain(&tracer);
        }
    }
    println!(
        "span start + end (no attributes): median {:.0} ns per span over 30 rounds of 20,000",
        median(rounds)
    );

    let mut rounds = Vec::new();
    for _ in 0..30 {
        let n = 20_000;
        let t = Instant::now();
        for i in 0..n {
            let mut s = agent.start_span(
                "llm.generate",
                [("model", Value::from("claude-sonnet-4-5"))],
            );
            s.set_attribute("input_tokens", i);
            s.end();
        }
        rounds.push(t.elapsed().as_nanos() as f64 / n as f64);
        while tracer.pending() > 0 {
            let _ = tracer_drain(&tracer);
        }
    }
    println!(
        "span start + end (2 attributes): median {:.0} ns per span",
        median(rounds)
    );
}

/// Empties the tracer's queue (outside any timing) and discards the spool.
fn tracer_drain(tracer: &Tracer) -> usize {
    let n = tracer.pending();
    tracer.flush_blocking();
    let _ = std::fs::remove_file(&tracer.config().spool_path);
    n
}

fn bench_memory() {
    let tracer = offline_tracer();
    let agent = AgentTracer::with_tracer(&tracer, "ticket_456", "agent_789", "tenant_001");
    let before = LIVE.load(Ordering::SeqCst);
    for i in 0..1_000 {
        let mut s = agent.start_span(
            "llm.generate",
            [("model", Value::from("claude-sonnet-4-5"))],
        );
        s.set_attribute("input_tokens", 1200 + i);
        s.set_attribute("output_tokens", 300);
        s.add_event("retry", [("attempt", 1)]);
        s.end();
    }
    let after = LIVE.load(Ordering::SeqCst);
    let bytes = after - before;
    println!(
        "memory held by 1,000 recorded spans (3 attributes, 1 event each): {} bytes ({:.0} bytes per span)",
        bytes,
        bytes as f64 / 1000.0
    );
}

fn log_events(n: usize) {
    for i in 0..n {
        tracing::info!(
            tenant_id = "tenant_001",
            ticket_id = "ticket_456",
            agent_id = "agent_789",
            duration_ms = 45,
            attempt = i,
            "Ticket claimed by agent"
        );
    }
}

fn bench_logging() {
    let dir = std::env::temp_dir().join(format!("swarmscope-log-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("dir");
    let n = 1_000_000;
    for round in 0..3 {
        let ours = {
            let file = std::fs::File::create(dir.join("ours.log")).expect("file");
            let writer = Mutex::new(BufWriter::with_capacity(1 << 16, file));
            let subscriber = tracing_subscriber::registry().with(SeedJsonLayer::new(writer));
            let t = Instant::now();
            tracing::subscriber::with_default(subscriber, || log_events(n));
            n as f64 / t.elapsed().as_secs_f64()
        };
        let theirs = {
            let file = std::fs::File::create(dir.join("theirs.log")).expect("file");
            let writer = Mutex::new(BufWriter::with_capacity(1 << 16, file));
            let subscriber = tracing_subscriber::fmt()
                .json()
                .with_writer(writer)
                .finish();
            let t = Instant::now();
            tracing::subscriber::with_default(subscriber, || log_events(n));
            n as f64 / t.elapsed().as_secs_f64()
        };
        println!(
            "JSON log lines, 1,000,000 events of 5 fields into a buffered file, round {}: swarmscope {:.0} lines/s, tracing-subscriber .json() {:.0} lines/s",
            round + 1,
            ours,
            theirs
        );
    }
    let _ = std::fs::remove_dir_all(&dir);
}

fn bench_flush() {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("rt");
    rt.block_on(async {
        let dir = tempfile::tempdir().expect("tmp");
        let store = swarmscope_store::Store::open(dir.path(), swarmscope_store::WriterConfig::default()).expect("store");
        let state = swarmscope_server::AppState::new(store, &swarmscope_server::Config::default()).expect("state");
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let url = format!("http://{}", listener.local_addr().expect("addr"));
        tokio::spawn(async move { axum::serve(listener, swarmscope_server::router(state)).await });
        let mut config = TracerConfig::from_env();
        config.url = url;
        let tracer = Tracer::new(config);
        let mut times = Vec::new();
        for round in 0..20 {
            let agent = AgentTracer::with_tracer(&tracer, &format!("ticket-{round}"), "agent_789", "tenant_001");
            for i in 0..1_000 {
                let mut s = agent.start_span("llm.generate", [("model", Value::from("claude-sonnet-4-5"))]);
                s.set_attribute("input_tokens", i);
                s.end();
            }
            let t = Instant::now();
            let report = tracer.flush().await;
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            assert_eq!(report.sent_spans, 1_000, "{report:?}");
        }
        let mut sorted = times.clone();
        sorted.sort_by(f64::total_cmp);
        println!(
            "flush of 1,000 spans to a collector on loopback (one request, acknowledged after commit): median {:.1} ms, max {:.1} ms over 20 flushes",
            median(times),
            sorted[sorted.len() - 1]
        );
    });
}

fn main() {
    // `cargo bench` passes --bench; `cargo test --benches` passes nothing we need.
    bench_span_start_end();
    bench_memory();
    bench_logging();
    bench_flush();
}
