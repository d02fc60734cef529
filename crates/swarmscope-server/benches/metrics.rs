//! Metrics benchmarks (`cargo bench -p swarmscope-server`): prints figures.
//!
//! - rendering a scrape with 100 tenants and every label set populated;
//! - the cost of deriving metrics at ingest (pricing the span, then counting
//!   it), per span, to compare with the per-span cost of ingest itself;
//! - the cost of masking secrets (the default `[scrub]`) per span, with
//!   realistic attribute text and no secret in it (the common case).
#![allow(missing_docs)]

use std::time::Instant;

use serde_json::json;
use swarmscope_metrics::catalogue::*;
use swarmscope_metrics::Format;
use swarmscope_model::price::PriceTable;
use swarmscope_model::{Limits, Span};
use swarmscope_server::span_metrics::CollectorMetrics;
use swarmscope_store::WriterStats;

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn populated() -> CollectorMetrics {
    let m = CollectorMetrics::new(PriceTable::default(), 1_000);
    let s = &m.swarm;
    let models = ["claude-opus-4-5", "claude-sonnet-4-5", "claude-haiku-4-5"];
    for t in 0..100 {
        let tenant = format!("tenant-{t:03}");
        for status in ["queued", "claimed", "running", "completed", "failed"] {
            let l = TenantStatusLabels {
                tenant_id: tenant.clone(),
                status: status.into(),
            };
            s.tickets.get_or_create(&l).inc();
            s.queue_depth.get_or_create(&l).set(3);
            s.vms.get_or_create(&l).inc();
        }
        s.vms_active
            .get_or_create(&TenantLabels {
                tenant_id: tenant.clone(),
            })
            .set(7);
        for model in models {
            s.claude_api_cost_usd
                .get_or_create(&TenantModelLabels {
                    tenant_id: tenant.clone(),
                    model: model.into(),
                })
                .inc_by(0.5);
        }
        m.health
            .spans_accepted
            .get_or_create(&TenantLabels {
                tenant_id: tenant.clone(),
            })
            .inc();
    }
    for model in models {
        for status in ["ok", "error"] {
            s.claude_api_calls
                .get_or_create(&ModelStatusLabels {
                    model: model.into(),
                    status: status.into(),
                })
                .inc();
        }
        for d in ["input", "output", "cache_read", "cache_write"] {
            s.claude_api_tokens
                .get_or_create(&TokenLabels {
                    model: model.into(),
                    direction: d.into(),
                })
                .inc_by(100);
        }
    }
    for method in ["boot", "restore"] {
        s.vm_boot_duration_ms
            .get_or_create(&BootLabels {
                method: method.into(),
            })
            .observe(5.0);
    }
    for ty in ["feature", "bugfix", "refactor", "docs"] {
        for c in ["low", "medium", "high"] {
            s.ticket_duration_seconds
                .get_or_create(&TicketLabels {
                    r#type: ty.into(),
                    complexity: c.into(),
                })
                .observe(600.0);
        }
        s.agent_executions
            .get_or_create(&AgentLabels {
                agent_type: ty.into(),
                status: "ok".into(),
            })
            .inc();
    }
    for route in 0..20 {
        for method in ["GET", "POST"] {
            let path = format!("/api/route/{route}");
            s.api_requests
                .get_or_create(&ApiLabels {
                    method: method.into(),
                    path: path.clone(),
                    status: "200".into(),
                })
                .inc();
            s.api_request_duration_ms
                .get_or_create(&RouteLabels {
                    method: method.into(),
                    path,
                })
                .observe(12.0);
        }
    }
    s.disk_usage_ratio
        .get_or_create(&MountLabels { mount: "/".into() })
        .set(0.42);
    m
}

fn bench_scrape() {
    let m = populated();
    let mut times = Vec::new();
    let mut size = 0;
    let mut series = 0;
    for _ in 0..50 {
        let t = Instant::now();
        let text = m.scrape(Format::Prometheus, WriterStats::default(), 1 << 30);
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        size = text.len();
        series = text.lines().filter(|l| !l.starts_with('#')).count();
    }
    println!(
        "scrape with 100 tenants, every label set populated: {series} series, {size} bytes, median {:.2} ms over 50 renders",
        median(times)
    );
}

fn bench_derivation() {
    let m = CollectorMetrics::new(PriceTable::default(), 100);
    const NAMES: [&str; 5] = [
        "llm.generate",
        "agent.execute",
        "vm.spawn",
        "git.push",
        "file.write",
    ];
    let body =
        json!((0..50).map(|i| json!({
        "ticketId": "ticket-1", "agentId": "agent-1", "tenantId": format!("tenant-{}", i % 4),
        "trace_id": "0b4ab6f4-0d4e-4c2a-9b7e-1f2d3c4b5a69", "id": format!("span-{i}"),
        "name": NAMES[i % 5],
        "startTime": "2025-12-14T10:30:45.123Z", "endTime": "2025-12-14T10:30:47.123Z",
        "attributes": {"model": "claude-sonnet-4-5", "input_tokens": 4200, "output_tokens": 800,
                       "agent_type": "forge", "method": "restore"},
        "events": [], "status": "ok"
    })).collect::<Vec<_>>())
        .to_string();
    let spans: Vec<Span> =
        swarmscope_model::decode_spans(body.as_bytes(), &Limits::default(), None).expect("spans");
    let stored: Vec<usize> = (0..spans.len()).collect();
    let mut per_span = Vec::new();
    for _ in 0..30 {
        let rounds = 2_000;
        let mut batches: Vec<Vec<Span>> = (0..rounds).map(|_| spans.clone()).collect();
        let t = Instant::now();
        for batch in &mut batches {
            swarmscope_server::span_metrics::derive_for_bench(&m, batch, &stored);
        }
        per_span.push(t.elapsed().as_nanos() as f64 / (rounds * spans.len()) as f64);
    }
    let ns = median(per_span);
    println!(
        "deriving metrics at ingest (price, store the cost, count): median {ns:.0} ns per span (50-span requests, 1 in 5 an llm.generate)"
    );
}

fn bench_scrub() {
    let scrub = swarmscope_server::scrub::Scrubber::new(&Default::default()).expect("scrubber");
    let body = json!((0..50).map(|i| json!({
        "ticketId": "ticket-1", "agentId": "agent-1", "tenantId": "tenant-1",
        "trace_id": "0b4ab6f4-0d4e-4c2a-9b7e-1f2d3c4b5a69", "id": format!("span-{i}"),
        "name": "llm.generate", "startTime": "2025-12-14T10:30:45.123Z",
        "endTime": "2025-12-14T10:30:47.123Z", "status": "ok",
        "attributes": {"model": "claude-sonnet-4-5", "input_tokens": 4200, "output_tokens": 800,
                       "prompt_summary": "Refactor the billing module so invoices are generated per tenant and retried on failure",
                       "repo_url": "https://git.example.com/acme/app.git", "branch": "main",
                       "file_path": "src/billing/invoice.rs"},
        "events": [{"name": "tool_use", "timestamp": "2025-12-14T10:30:46.000Z",
                    "attributes": {"tool": "bash", "command": "cargo test -p billing -- --nocapture"}}]
    })).collect::<Vec<_>>())
    .to_string();
    let spans: Vec<Span> =
        swarmscope_model::decode_spans(body.as_bytes(), &Limits::default(), None).expect("spans");
    let mut per_span = Vec::new();
    for _ in 0..30 {
        let rounds = 1_000;
        let mut batches: Vec<Vec<Span>> = (0..rounds).map(|_| spans.clone()).collect();
        let t = Instant::now();
        let mut masked = 0;
        for batch in &mut batches {
            masked += scrub.spans(batch);
        }
        assert_eq!(masked, 0);
        per_span.push(t.elapsed().as_nanos() as f64 / (rounds * spans.len()) as f64);
    }
    println!(
        "masking secrets (default [scrub], 7 string values per span, none secret): median {:.0} ns per span",
        median(per_span)
    );
}

fn main() {
    bench_scrape();
    bench_derivation();
    bench_scrub();
}
