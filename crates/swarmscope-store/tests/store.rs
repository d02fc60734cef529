//! The store end to end: writer, group commit, summaries, queries.

use serde_json::json;
use swarmscope_model::{LogLevel, LogRecord, Span, SpanKind, SpanStatus};
use swarmscope_store::{
    CloseScope, LogFilter, StatusFilter, Store, TraceFilter, TraceLookup, WriteError, WriterConfig,
};

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

fn found(lookup: TraceLookup) -> Box<swarmscope_store::TraceDetail> {
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
            ..WriterConfig::default()
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

fn log(tenant: &str, trace: Option<&str>, ms: i64, level: LogLevel, message: &str) -> LogRecord {
    LogRecord {
        tenant_id: tenant.into(),
        time_ns: ms * 1_000_000,
        level,
        message: message.into(),
        trace_id: trace.map(str::to_owned),
        span_id: None,
        request_id: None,
        ticket_id: None,
        agent_id: None,
        duration_ms: None,
        metadata: Default::default(),
    }
}

#[tokio::test]
async fn logs_are_idempotent_searchable_and_come_with_their_trace() {
    let (_dir, store) = open();
    store
        .writer()
        .write(vec![span("a", "t1", "s1", "root", 0)])
        .await
        .expect("span");
    let lines = vec![
        log("a", Some("t1"), 1, LogLevel::Info, "claimed ticket"),
        log(
            "a",
            Some("t1"),
            2,
            LogLevel::Error,
            "push rejected: 100% of 50_ refs",
        ),
        log("a", None, 3, LogLevel::Warn, "queue deep"),
        log(
            "b",
            Some("t1"),
            4,
            LogLevel::Fatal,
            "other tenant, same trace id",
        ),
    ];
    let first = store
        .writer()
        .write_logs(lines.clone())
        .await
        .expect("logs");
    assert_eq!((first.inserted, first.duplicates), (4, 0));
    let again = store.writer().write_logs(lines).await.expect("logs again");
    assert_eq!((again.inserted, again.duplicates), (0, 4));

    let d = found(store.reader().get_trace(Some("a"), "t1").expect("trace"));
    let messages: Vec<&str> = d.logs.iter().map(|l| l.message.as_str()).collect();
    assert_eq!(
        messages,
        ["claimed ticket", "push rejected: 100% of 50_ refs"]
    );

    let list = |f: LogFilter| {
        store
            .reader()
            .list_logs(&LogFilter { limit: 50, ..f })
            .expect("list")
            .logs
            .into_iter()
            .map(|l| l.message)
            .collect::<Vec<_>>()
    };
    assert_eq!(
        list(LogFilter {
            tenant_id: Some("a".into()),
            ..Default::default()
        })
        .len(),
        3
    );
    assert_eq!(
        list(LogFilter {
            min_level: Some(LogLevel::Warn),
            tenant_id: Some("a".into()),
            ..Default::default()
        }),
        ["queue deep", "push rejected: 100% of 50_ refs"]
    );
    assert_eq!(
        list(LogFilter {
            text: Some("100%".into()),
            ..Default::default()
        }),
        ["push rejected: 100% of 50_ refs"]
    );
    assert_eq!(
        list(LogFilter {
            text: Some("0_".into()),
            ..Default::default()
        })
        .len(),
        1,
        "LIKE wildcards are escaped"
    );
    assert_eq!(
        list(LogFilter {
            text: Some("%".into()),
            ..Default::default()
        })
        .len(),
        1
    );
    assert_eq!(
        list(LogFilter {
            since_ns: Some(2_000_000),
            until_ns: Some(4_000_000),
            ..Default::default()
        })
        .len(),
        2
    );

    // A ticket's lines are those of its traces, each in its own tenant.
    let ticketed = |tenant: &str, trace: &str, ticket: &str| Span {
        ticket_id: Some(ticket.into()),
        ..span(tenant, trace, "root", "agent.run", 5)
    };
    store
        .writer()
        .write(vec![
            ticketed("a", "k7", "T-7"),
            ticketed("a", "k8", "T-8"),
            ticketed("b", "k7", "T-9"), // same trace id, another tenant and ticket
            ticketed("b", "j7", "T-7"), // another tenant, same ticket name
        ])
        .await
        .expect("ticket spans");
    let ticket_lines = vec![
        log("a", Some("k7"), 5, LogLevel::Info, "T-7 claimed"),
        log("a", Some("k7"), 6, LogLevel::Warn, "T-7 stuck"),
        log("a", Some("k8"), 7, LogLevel::Info, "T-8 claimed"),
        log("b", Some("j7"), 8, LogLevel::Info, "b's own T-7"),
        log("b", Some("k7"), 9, LogLevel::Info, "b's T-9"),
    ];
    store
        .writer()
        .write_logs(ticket_lines)
        .await
        .expect("ticket logs");
    let ticket = |tenant: Option<&str>, ticket: &str| {
        list(LogFilter {
            tenant_id: tenant.map(str::to_owned),
            ticket_id: Some(ticket.into()),
            ..Default::default()
        })
    };
    assert_eq!(ticket(Some("a"), "T-7"), ["T-7 stuck", "T-7 claimed"]);
    assert_eq!(ticket(Some("b"), "T-7"), ["b's own T-7"]);
    assert_eq!(
        ticket(None, "T-7"),
        ["b's own T-7", "T-7 stuck", "T-7 claimed"]
    );
    assert_eq!(ticket(None, "T-9"), ["b's T-9"]);
    assert_eq!(ticket(Some("a"), "T-404"), Vec::<String>::new());
    assert_eq!(
        list(LogFilter {
            ticket_id: Some("T-7".into()),
            min_level: Some(LogLevel::Warn),
            tenant_id: Some("a".into()),
            ..Default::default()
        }),
        ["T-7 stuck"]
    );

    // Pages in both directions.
    let mut filter = LogFilter {
        limit: 1,
        ascending: true,
        ..Default::default()
    };
    let mut seen = Vec::new();
    loop {
        let page = store.reader().list_logs(&filter).expect("page");
        seen.extend(page.logs.into_iter().map(|l| l.time_ns / 1_000_000));
        match page.next_cursor {
            Some(c) => filter.cursor = Some(c),
            None => break,
        }
    }
    assert_eq!(seen, [1, 2, 3, 4, 5, 6, 7, 8, 9]);
}

#[tokio::test]
async fn an_open_span_is_completed_by_its_ended_copy() {
    let (_dir, store) = open();
    let mut open_span = span("a", "t1", "s1", "llm.generate", 0);
    open_span.end_ns = None;
    store
        .writer()
        .write(vec![open_span.clone()])
        .await
        .expect("announce");
    let d = found(store.reader().get_trace(Some("a"), "t1").expect("read"));
    assert_eq!(d.spans[0].end_ns, None);

    let mut done = open_span.clone();
    done.end_ns = Some(2_000 * 1_000_000);
    done.status = SpanStatus::Error;
    let out = store
        .writer()
        .write(vec![done.clone()])
        .await
        .expect("complete");
    assert_eq!((out.inserted, out.completed), (0, 1));
    let d = found(store.reader().get_trace(Some("a"), "t1").expect("read"));
    assert_eq!(d.spans, vec![done.clone()]);
    assert_eq!((d.summary.span_count, d.summary.error_count), (1, 1));
    assert_eq!(d.summary.end_ns, 2_000 * 1_000_000);

    // A completed span is final: another copy changes nothing.
    let mut other = done.clone();
    other.end_ns = Some(9_000 * 1_000_000);
    let out = store.writer().write(vec![other]).await.expect("again");
    assert_eq!(out.duplicates, 1);
    let d = found(store.reader().get_trace(Some("a"), "t1").expect("read"));
    assert_eq!(d.spans[0].end_ns, Some(2_000 * 1_000_000));
}

#[tokio::test]
async fn open_spans_of_a_dead_vm_are_closed_as_incomplete_and_can_still_complete() {
    let (_dir, store) = open();
    let mut execute = span("a", "t1", "exec", "agent.execute", 0);
    execute.end_ns = None;
    execute.vm_id = Some("vm-1".into());
    let mut llm = span("a", "t1", "llm", "llm.generate", 5);
    llm.end_ns = None;
    llm.vm_id = Some("vm-1".into());
    let mut done = span("a", "t1", "clone", "git.clone", 1);
    done.vm_id = Some("vm-1".into());
    let mut elsewhere = span("a", "t2", "x", "agent.execute", 0);
    elsewhere.end_ns = None;
    elsewhere.vm_id = Some("vm-2".into());
    let mut other_tenant = span("b", "t3", "y", "agent.execute", 0);
    other_tenant.end_ns = None;
    other_tenant.vm_id = Some("vm-1".into());
    store
        .writer()
        .write(vec![execute.clone(), llm, done, elsewhere, other_tenant])
        .await
        .expect("write");

    let out = store
        .writer()
        .close_open_spans(
            CloseScope::Vm {
                tenant_id: Some("a".into()),
                vm_id: "vm-1".into(),
            },
            50 * 1_000_000,
        )
        .await
        .expect("close");
    assert_eq!(out.closed, 2);
    let d = found(store.reader().get_trace(Some("a"), "t1").expect("read"));
    for s in d.spans.iter().filter(|s| s.name != "git.clone") {
        assert_eq!(s.end_ns, Some(50 * 1_000_000), "{}", s.name);
        assert_eq!(s.status, SpanStatus::Error);
        assert_eq!(s.attributes["swarm.incomplete"], true);
        assert!(s
            .status_message
            .as_deref()
            .is_some_and(|m| m.contains("vm-1")));
    }
    assert_eq!(d.summary.error_count, 2);
    let untouched = found(store.reader().get_trace(Some("b"), "t3").expect("read"));
    assert_eq!(
        untouched.spans[0].end_ns, None,
        "another tenant's spans are not closed by a tenant's report"
    );
    let vm2 = found(store.reader().get_trace(Some("a"), "t2").expect("read"));
    assert_eq!(vm2.spans[0].end_ns, None);

    // The agent's real end, shipped late from its spool, replaces the closure.
    let mut real = execute;
    real.end_ns = Some(40 * 1_000_000);
    real.status = SpanStatus::Ok;
    let out = store
        .writer()
        .write(vec![real.clone()])
        .await
        .expect("late");
    assert_eq!(out.completed, 1);
    let d = found(store.reader().get_trace(Some("a"), "t1").expect("read"));
    let exec = d.spans.iter().find(|s| s.span_id == "exec").expect("exec");
    assert_eq!(exec, &real);
    assert_eq!(d.summary.error_count, 1);
}

#[tokio::test]
async fn open_spans_of_silent_traces_are_closed() {
    let (_dir, store) = open();
    let mut stuck = span("a", "t1", "s1", "agent.execute", 0);
    stuck.end_ns = None;
    store.writer().write(vec![stuck]).await.expect("write");
    let none = store
        .writer()
        .close_open_spans(CloseScope::SilentSince(0), 0)
        .await
        .expect("close");
    assert_eq!(none.closed, 0, "the trace got data after time 0");
    let out = store
        .writer()
        .close_open_spans(CloseScope::SilentSince(i64::MAX), 0)
        .await
        .expect("close");
    assert_eq!(out.closed, 1);
    let d = found(store.reader().get_trace(Some("a"), "t1").expect("read"));
    assert_eq!(d.spans[0].attributes["swarm.incomplete"], true);
    assert_eq!(
        d.spans[0].end_ns,
        Some(0),
        "ends at its trace's last activity"
    );
}

#[tokio::test]
async fn a_genuine_end_after_a_closure_restores_the_trace_bounds() {
    let (_dir, store) = open();
    let mut s = span("a", "t1", "exec", "agent.execute", 0);
    s.end_ns = None;
    s.vm_id = Some("vm-1".into());
    store
        .writer()
        .write(vec![s.clone()])
        .await
        .expect("announce");
    store
        .writer()
        .close_open_spans(
            CloseScope::Vm {
                tenant_id: None,
                vm_id: "vm-1".into(),
            },
            90_000 * 1_000_000,
        )
        .await
        .expect("close");
    let d = found(store.reader().get_trace(Some("a"), "t1").expect("read"));
    assert_eq!(d.summary.end_ns, 90_000 * 1_000_000);
    s.end_ns = Some(40 * 1_000_000);
    store.writer().write(vec![s]).await.expect("late end");
    let d = found(store.reader().get_trace(Some("a"), "t1").expect("read"));
    assert_eq!(
        d.summary.end_ns,
        40 * 1_000_000,
        "the closure's end no longer counts"
    );
    assert_eq!(d.summary.error_count, 0);
}

#[tokio::test]
async fn a_huge_trace_is_returned_truncated() {
    let (_dir, store) = open();
    let spans: Vec<Span> = (0..10_001)
        .map(|i| span("a", "big", &format!("s{i}"), "file.write", i))
        .collect();
    store.writer().write(spans).await.expect("write");
    let d = found(store.reader().get_trace(Some("a"), "big").expect("read"));
    assert_eq!(d.spans.len(), swarmscope_store::TRACE_SPAN_LIMIT);
    assert!(d.truncated);
    assert_eq!(
        d.summary.span_count, 10_001,
        "the summary still counts every span"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_that_fails_in_the_writer_fails_alone() {
    let (dir, store) = open();
    // A poison span the database itself refuses, as any unforeseen commit-time
    // failure would: its request must fail, its batch-mates must not.
    let db = rusqlite::Connection::open(store.path()).expect("open db");
    db.execute_batch(
        "CREATE TRIGGER poison BEFORE INSERT ON spans WHEN NEW.name = 'poison'
         BEGIN SELECT RAISE(ABORT, 'poisoned'); END;",
    )
    .expect("trigger");
    drop(db);
    let writes = (0..40).map(|i| {
        let writer = store.writer().clone();
        let name = if i % 4 == 0 { "poison" } else { "fine" };
        let spans = vec![
            span("a", &format!("t{i}"), "s1", "root", i),
            span("a", &format!("t{i}"), "s2", name, i),
        ];
        tokio::spawn(async move { (name, writer.write(spans).await) })
    });
    let mut ok = 0;
    for w in writes {
        let (name, result) = w.await.expect("task");
        match (name, result) {
            ("poison", Err(WriteError::Commit(_))) => {}
            ("fine", Ok(o)) => {
                assert_eq!(o.inserted, 2);
                ok += 1;
            }
            (name, other) => panic!("{name}: {other:?}"),
        }
    }
    assert_eq!(ok, 30);
    // Nothing of a failed job is stored, not even its good span; the others are whole.
    for i in 0..40 {
        let lookup = store
            .reader()
            .get_trace(Some("a"), &format!("t{i}"))
            .expect("read");
        if i % 4 == 0 {
            assert!(!matches!(lookup, TraceLookup::Found(_)), "t{i} stored");
        } else {
            assert_eq!(found(lookup).spans.len(), 2);
        }
    }
    drop(dir);
}

#[tokio::test]
async fn a_read_past_its_budget_or_cancelled_is_interrupted() {
    let (_dir, store) = open();
    let lines: Vec<LogRecord> = (0..20_000)
        .map(|i| log("a", None, i, LogLevel::Info, &format!("line {i}")))
        .collect();
    store.writer().write_logs(lines).await.expect("write");
    let filter = LogFilter {
        tenant_id: Some("a".into()),
        text: Some("no such text".into()),
        limit: 10,
        ..LogFilter::default()
    };
    let spent = swarmscope_store::ReadBudget::new(std::time::Duration::ZERO);
    let reader = store.reader().with_budget(spent);
    assert!(matches!(
        reader.list_logs(&filter),
        Err(swarmscope_store::StoreError::Interrupted)
    ));
    let cancelled = swarmscope_store::ReadBudget::new(std::time::Duration::from_secs(60));
    cancelled.cancel();
    let reader = store.reader().with_budget(cancelled);
    assert!(matches!(
        reader.list_logs(&filter),
        Err(swarmscope_store::StoreError::Interrupted)
    ));
    let roomy = swarmscope_store::ReadBudget::new(std::time::Duration::from_secs(60));
    let page = store
        .reader()
        .with_budget(roomy)
        .list_logs(&filter)
        .expect("in budget");
    assert!(page.logs.is_empty());
    // The connection goes back to the pool without its budget.
    assert!(store.reader().list_logs(&filter).is_ok());
}
