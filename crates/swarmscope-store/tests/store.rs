//! The store end to end: writer, group commit, summaries, queries.

use serde_json::json;
use swarmscope_model::{Span, SpanKind, SpanStatus};
use swarmscope_store::{StatusFilter, Store, TraceFilter, TraceLookup, WriteError, WriterConfig};

fn span(tenant: &str, trace: &str, id: &str, name: &str, start_ms: i64) -> Span {
    Span {
        tenant_id: tenant.into(),
        trace_id: trace.into(),
        span_id: id.into(),
        parent_span_id: None,
        name: name.into(),
        kind: SpanKind::Internal,
        status: SpanStatus::Ok,
        status_message: None,
        start_ns: start_ms * 1_000_000,
        end_ns: Some((start_ms + 10) * 1_000_000),
        ticket_id: Some("ticket-1".into()),
        agent_id: Some("agent-1".into()),
        vm_id: None,
        service: None,
        attributes: json!({"k": "v"}).as_object().cloned().unwrap_or_default(),
        events: Vec::new(),
    }
}

fn open() -> (tempfile::TempDir, Store) {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(dir.path(), WriterConfig::default()).expect("open");
    (dir, store)
}

fn found(lookup: TraceLookup) -> swarmscope_store::TraceDetail {
    match lookup {
        TraceLookup::Found(d) => d,
        other => panic!("expected a trace, got {other:?}"),
    }
}

#[tokio::test]
async fn resending_a_span_is_idempotent() {
    let (_dir, store) = open();
    let batch = vec![
        span("a", "t1", "s1", "root", 0),
        span("a", "t1", "s2", "child", 5),
    ];
    let first = store.writer().write(batch.clone()).await.expect("write");
    assert_eq!((first.inserted, first.duplicates), (2, 0));
    let again = store.writer().write(batch).await.expect("rewrite");
    assert_eq!((again.inserted, again.duplicates), (0, 2));
    let d = found(store.reader().get_trace(Some("a"), "t1").expect("read"));
    assert_eq!(d.spans.len(), 2);
    assert_eq!(d.summary.span_count, 2);
}

#[tokio::test]
async fn summaries_track_root_errors_and_bounds() {
    let (_dir, store) = open();
    let mut late_root = span("a", "t1", "r", "http.request", 0);
    late_root.end_ns = Some(500 * 1_000_000);
    let mut child = span("a", "t1", "c", "llm.generate", 10);
    child.parent_span_id = Some("r".into());
    child.status = SpanStatus::Error;
    // The child arrives first, in its own request; the root later.
    store.writer().write(vec![child]).await.expect("child");
    store.writer().write(vec![late_root]).await.expect("root");
    let d = found(store.reader().get_trace(None, "t1").expect("read"));
    assert_eq!(d.summary.root_name.as_deref(), Some("http.request"));
    assert_eq!(d.summary.error_count, 1);
    assert_eq!(d.summary.start_ns, 0);
    assert_eq!(d.summary.end_ns, 500 * 1_000_000);
    assert_eq!(
        d.spans[0].name, "http.request",
        "spans come back by start time"
    );
}

#[tokio::test]
async fn correlation_ids_round_trip_when_they_differ_within_a_trace() {
    let (_dir, store) = open();
    let a = span("a", "t1", "s1", "one", 0);
    let mut b = span("a", "t1", "s2", "two", 1);
    b.ticket_id = None;
    b.agent_id = Some("agent-2".into());
    b.vm_id = Some("vm-9".into());
    store
        .writer()
        .write(vec![a.clone(), b.clone()])
        .await
        .expect("write");
    let d = found(store.reader().get_trace(Some("a"), "t1").expect("read"));
    assert_eq!(d.spans[0], a);
    assert_eq!(d.spans[1], b);
}

#[tokio::test]
async fn tenants_are_isolated() {
    let (_dir, store) = open();
    store
        .writer()
        .write(vec![
            span("a", "same", "s1", "a-root", 0),
            span("b", "same", "s1", "b-root", 0),
        ])
        .await
        .expect("write");
    assert_eq!(
        found(store.reader().get_trace(Some("b"), "same").expect("read"))
            .summary
            .root_name
            .as_deref(),
        Some("b-root")
    );
    assert_eq!(
        store.reader().get_trace(Some("c"), "same").expect("read"),
        TraceLookup::NotFound
    );
    assert!(matches!(
        store.reader().get_trace(None, "same").expect("read"),
        TraceLookup::Ambiguous(t) if t.len() == 2
    ));
    let page = store
        .reader()
        .list_traces(&TraceFilter {
            tenant_id: Some("a".into()),
            limit: 10,
            ..Default::default()
        })
        .expect("list");
    assert_eq!(page.traces.len(), 1);
    assert_eq!(page.traces[0].tenant_id, "a");
}

#[tokio::test]
async fn search_filters_and_paginates_newest_first() {
    let (_dir, store) = open();
    let mut spans = Vec::new();
    for i in 0..25 {
        let mut s = span(
            "a",
            &format!("trace-{i:02}"),
            "root",
            "agent.execute",
            i * 1_000,
        );
        if i % 5 == 0 {
            s.status = SpanStatus::Error;
        }
        s.ticket_id = Some(format!("ticket-{}", i % 3));
        spans.push(s);
    }
    let mut slow = span("a", "trace-07", "slow", "llm.generate", 7_000);
    slow.end_ns = Some(9_000 * 1_000_000);
    spans.push(slow);
    store.writer().write(spans).await.expect("write");

    let mut seen = Vec::new();
    let mut filter = TraceFilter {
        limit: 10,
        ..Default::default()
    };
    loop {
        let page = store.reader().list_traces(&filter).expect("page");
        seen.extend(page.traces.iter().map(|t| t.trace_id.clone()));
        match page.next_cursor {
            Some(c) => filter.cursor = Some(c),
            None => break,
        }
    }
    let expected: Vec<String> = (0..25).rev().map(|i| format!("trace-{i:02}")).collect();
    assert_eq!(seen, expected);

    let count = |f: TraceFilter| {
        store
            .reader()
            .list_traces(&TraceFilter { limit: 100, ..f })
            .expect("list")
            .traces
            .len()
    };
    assert_eq!(
        count(TraceFilter {
            status: Some(StatusFilter::Error),
            ..Default::default()
        }),
        5
    );
    assert_eq!(
        count(TraceFilter {
            status: Some(StatusFilter::Ok),
            ..Default::default()
        }),
        20
    );
    assert_eq!(
        count(TraceFilter {
            ticket_id: Some("ticket-1".into()),
            ..Default::default()
        }),
        8
    );
    assert_eq!(
        count(TraceFilter {
            name: Some("llm.generate".into()),
            ..Default::default()
        }),
        1
    );
    assert_eq!(
        count(TraceFilter {
            min_duration_ns: Some(1_000_000_000),
            ..Default::default()
        }),
        1
    );
    assert_eq!(
        count(TraceFilter {
            since_ns: Some(10_000 * 1_000_000),
            until_ns: Some(20_000 * 1_000_000),
            ..Default::default()
        }),
        10
    );
    assert_eq!(
        count(TraceFilter {
            agent_id: Some("nobody".into()),
            ..Default::default()
        }),
        0
    );
}

#[tokio::test]
async fn a_full_queue_refuses_instead_of_growing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let store = Store::open(
        dir.path(),
        WriterConfig {
            queue_capacity_spans: 10,
            max_batch_spans: 10,
        },
    )
    .expect("open");
    // Many concurrent writers of 6 spans each against a 10-span queue: some
    // must be refused, and every accepted one is stored.
    let mut handles = Vec::new();
    for i in 0..50 {
        let w = store.writer().clone();
        let batch: Vec<Span> = (0..6)
            .map(|j| span("a", &format!("t{i}"), &format!("s{j}"), "x", 0))
            .collect();
        handles.push(tokio::spawn(async move { w.write(batch).await }));
    }
    let mut accepted = 0;
    let mut refused = 0;
    for h in handles {
        match h.await.expect("join") {
            Ok(o) => accepted += o.inserted,
            Err(WriteError::QueueFull { .. }) => refused += 1,
            Err(e) => panic!("unexpected {e}"),
        }
    }
    assert!(
        refused > 0,
        "a 10-span queue cannot hold 50 concurrent 6-span writes"
    );
    assert_eq!(
        store.reader().stats().expect("stats").spans,
        accepted as i64
    );
}

#[tokio::test]
async fn close_drains_what_was_queued() {
    let (dir, store) = open();
    let w = store.writer().clone();
    let pending = tokio::spawn(async move { w.write(vec![span("a", "t", "s", "x", 0)]).await });
    // Give the write a moment to be queued, then close.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let closer = store.writer().clone();
    tokio::task::spawn_blocking(move || closer.close())
        .await
        .expect("close");
    assert!(pending.await.expect("join").is_ok());
    assert_eq!(
        store
            .writer()
            .write(vec![span("a", "t", "s2", "x", 0)])
            .await,
        Err(WriteError::Closed)
    );
    drop(store);
    let reopened = Store::open(dir.path(), WriterConfig::default()).expect("reopen");
    assert_eq!(reopened.reader().stats().expect("stats").spans, 1);
}
