//! Retention with an injected clock: per-tenant age limits for traces and
//! logs, the size cap, and ingest carrying on while a large prune runs.

use std::time::{Duration, Instant};

use swarmscope_model::timestamp::now_nanos;
use swarmscope_model::{LogLevel, LogRecord, Span, SpanKind, SpanStatus};
use swarmscope_server::retention::{prune_once, RetentionConfig};
use swarmscope_store::{Store, TraceFilter, WriterConfig};

const DAY: i64 = 86_400 * 1_000_000_000;

fn span(tenant: &str, trace: &str, id: &str) -> Span {
    let now = now_nanos();
    Span {
        tenant_id: tenant.into(),
        trace_id: trace.into(),
        span_id: id.into(),
        parent_span_id: None,
        name: "git.clone".into(),
        kind: SpanKind::Internal,
        status: SpanStatus::Ok,
        status_message: None,
        start_ns: now,
        end_ns: Some(now + 1_000_000),
        ticket_id: Some("T-1".into()),
        agent_id: None,
        vm_id: None,
        service: None,
        attributes: serde_json::Map::new(),
        events: Vec::new(),
    }
}

fn log(tenant: &str, message: &str, time_ns: i64) -> LogRecord {
    LogRecord {
        tenant_id: tenant.into(),
        time_ns,
        level: LogLevel::Info,
        message: message.into(),
        trace_id: None,
        span_id: None,
        request_id: None,
        ticket_id: None,
        agent_id: None,
        duration_ms: None,
        metadata: serde_json::Map::new(),
    }
}

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), WriterConfig::default()).expect("open");
    (dir, store)
}

fn traces_of(store: &Store, tenant: &str) -> usize {
    store
        .reader()
        .list_traces(&TraceFilter {
            tenant_id: Some(tenant.into()),
            limit: 1_000,
            ..TraceFilter::default()
        })
        .expect("list")
        .traces
        .len()
}

fn logs(store: &Store) -> i64 {
    store.reader().stats().expect("stats").logs
}

#[tokio::test]
async fn each_tenant_keeps_its_own_number_of_days() {
    let (_dir, store) = open();
    for tenant in ["acme", "globex"] {
        let spans = (0..3)
            .map(|i| span(tenant, &format!("{tenant}-{i}"), "s"))
            .collect();
        store.writer().write(spans).await.expect("write");
        let now = now_nanos();
        store
            .writer()
            .write_logs(vec![
                log(tenant, "ten days old", now - 10 * DAY),
                log(tenant, "today", now),
            ])
            .await
            .expect("logs");
    }
    let config = RetentionConfig {
        days: 7.0,
        tenants: [("acme".to_owned(), 30.0)].into(),
        ..RetentionConfig::default()
    };
    // Today: only log lines past their tenant's limit go (globex's 10-day-old one).
    let now = now_nanos();
    let p = prune_once(&store, &config, now).await;
    assert_eq!((p.traces, p.logs), (0, 1));
    assert_eq!(
        (traces_of(&store, "acme"), traces_of(&store, "globex")),
        (3, 3)
    );
    // Eight days on: globex (7 days) loses its traces and their spans; acme keeps them.
    let p = prune_once(&store, &config, now + 8 * DAY).await;
    assert_eq!((p.traces, p.spans), (3, 3));
    assert_eq!(
        (traces_of(&store, "acme"), traces_of(&store, "globex")),
        (3, 0)
    );
    // Thirty-one days on: acme's go too, and every log line.
    let p = prune_once(&store, &config, now + 31 * DAY).await;
    assert_eq!(p.traces, 3);
    assert_eq!(traces_of(&store, "acme"), 0);
    assert_eq!(logs(&store), 0);
    assert_eq!(store.reader().stats().expect("stats").spans, 0);
    // 0 days: kept forever.
    store
        .writer()
        .write(vec![span("acme", "new", "s")])
        .await
        .expect("write");
    let forever = RetentionConfig {
        days: 0.0,
        ..RetentionConfig::default()
    };
    assert_eq!(
        prune_once(&store, &forever, now + 1_000 * DAY).await.traces,
        0
    );
}

#[tokio::test]
async fn over_the_size_cap_the_least_recently_written_go_first() {
    let (_dir, store) = open();
    for batch in 0..6 {
        let spans = (0..200)
            .map(|i| {
                let mut s = span("acme", &format!("t{batch}-{i}"), "s");
                s.attributes
                    .insert("payload".into(), "x".repeat(400).into());
                s
            })
            .collect();
        store.writer().write(spans).await.expect("write");
    }
    let before = store.reader().db_bytes().expect("bytes") as u64;
    let config = RetentionConfig {
        days: 0.0,
        max_db_bytes: before / 2,
        ..RetentionConfig::default()
    };
    let p = prune_once(&store, &config, now_nanos()).await;
    let after = store.reader().db_bytes().expect("bytes") as u64;
    assert!(after <= before / 2, "{after} > {}", before / 2);
    assert!(p.traces >= 400 && p.traces < 1_200, "{p:?}");
    // The newest batch survives.
    let kept = store
        .reader()
        .list_traces(&TraceFilter {
            tenant_id: Some("acme".into()),
            limit: 1_000,
            ..TraceFilter::default()
        })
        .expect("list")
        .traces;
    assert!(kept.iter().any(|t| t.trace_id.starts_with("t5-")));
    assert!(!kept.iter().any(|t| t.trace_id.starts_with("t0-")));
}

/// Ingest keeps being acknowledged while 60,000 spans are pruned: each
/// prune transaction is small, so a write waits behind one at most.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ingest_carries_on_while_a_large_prune_runs() {
    let (_dir, store) = open();
    for batch in 0..30 {
        let spans: Vec<Span> = (0..2_000)
            .map(|i| span("old", &format!("o{batch}-{}", i / 20), &format!("s{i}")))
            .collect();
        store.writer().write(spans).await.expect("prefill");
    }
    // The tenant writing during the prune keeps 30 days; "old" keeps 7.
    let config = RetentionConfig {
        tenants: [("new".to_owned(), 30.0)].into(),
        ..RetentionConfig::default()
    };
    let pruner = {
        let store = store.clone();
        tokio::spawn(async move { prune_once(&store, &config, now_nanos() + 8 * DAY).await })
    };
    let mut latencies = Vec::new();
    let mut i = 0;
    while !pruner.is_finished() && i < 2_000 {
        let started = Instant::now();
        store
            .writer()
            .write(
                (0..10)
                    .map(|j| span("new", &format!("n{i}"), &format!("s{j}")))
                    .collect(),
            )
            .await
            .expect("write during prune");
        latencies.push(started.elapsed());
        i += 1;
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    let pruned = pruner.await.expect("prune");
    assert_eq!(pruned.spans, 60_000);
    assert_eq!(pruned.traces, 3_000);
    assert!(latencies.len() >= 5, "the prune ended too fast to measure");
    latencies.sort();
    let p99 = latencies[latencies.len() * 99 / 100];
    let max = latencies[latencies.len() - 1];
    println!(
        "ingest during prune: {} writes, p50 {:?}, p99 {p99:?}, max {max:?}",
        latencies.len(),
        latencies[latencies.len() / 2]
    );
    // Generous for a debug build on 2 cores; a whole-table delete would
    // hold the writer for seconds.
    assert!(max < Duration::from_millis(750), "max {max:?}");
    assert_eq!(traces_of(&store, "new"), latencies.len());
}

#[tokio::test]
async fn over_the_size_cap_the_tenant_holding_the_most_loses_its_oldest() {
    let (_dir, store) = open();
    // A small tenant's traces, written first (the oldest in the store).
    let small: Vec<Span> = (0..50)
        .map(|i| span("small", &format!("s-{i}"), "s"))
        .collect();
    store.writer().write(small).await.expect("write");
    // Then a tenant floods.
    for batch in 0..6 {
        let spans = (0..200)
            .map(|i| {
                let mut s = span("flood", &format!("f{batch}-{i}"), "s");
                s.attributes
                    .insert("payload".into(), "x".repeat(400).into());
                s
            })
            .collect();
        store.writer().write(spans).await.expect("write");
    }
    let before = store.reader().db_bytes().expect("bytes") as u64;
    let config = RetentionConfig {
        days: 0.0,
        max_db_bytes: before / 2,
        ..RetentionConfig::default()
    };
    let p = prune_once(&store, &config, now_nanos()).await;
    assert!(p.traces >= 400, "{p:?}");
    let count = |tenant: &str| {
        store
            .reader()
            .list_traces(&TraceFilter {
                tenant_id: Some(tenant.into()),
                limit: 1_000,
                ..TraceFilter::default()
            })
            .expect("list")
            .traces
            .len()
    };
    assert_eq!(count("small"), 50, "the small tenant keeps everything");
    assert!(count("flood") < 1_200 - 400);
}
