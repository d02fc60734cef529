//! `swarmscope demo`: a short seeded run, checked against the seed's script
//! (`--plan`) for span tree, attributes, logs, failures and metrics.

mod support;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::Duration;

use serde_json::Value;
use support::{run, Demo};

const SEED: &str = "2";
const TICKETS: usize = 60;
const ADMIN_KEY: &str = "demo-admin-key-for-tests-0001";

/// The first `n` tickets of a seed's script.
fn plan(seed: &str, n: usize) -> Vec<Value> {
    let (code, out, err) = run(&["demo", "--seed", seed, "--plan", &n.to_string()]);
    assert_eq!(code, 0, "{err}");
    out.lines()
        .map(|l| serde_json::from_str(l).expect("plan line is JSON"))
        .collect()
}

/// `name{labels} value` lines of a Prometheus text scrape.
fn samples(text: &str) -> Vec<(String, BTreeMap<String, String>, f64)> {
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (series, value) = l.rsplit_once(' ').expect("sample line");
            let (name, labels) = match series.split_once('{') {
                Some((n, rest)) => (n, rest.trim_end_matches('}')),
                None => (series, ""),
            };
            let labels = labels
                .split("\",")
                .filter(|p| !p.is_empty())
                .map(|p| {
                    let (k, v) = p.split_once("=\"").expect("label");
                    (k.to_owned(), v.trim_end_matches('"').to_owned())
                })
                .collect();
            (name.to_owned(), labels, value.parse().expect("value"))
        })
        .collect()
}

fn sum(
    samples: &[(String, BTreeMap<String, String>, f64)],
    name: &str,
    labels: &[(&str, &str)],
) -> f64 {
    samples
        .iter()
        .filter(|(n, l, _)| {
            n == name
                && labels
                    .iter()
                    .all(|(k, v)| l.get(*k).map(String::as_str) == Some(*v))
        })
        .map(|(_, _, v)| v)
        .sum()
}

fn attr<'a>(span: &'a Value, key: &str) -> &'a Value {
    &span["attributes"][key]
}

#[test]
fn the_same_seed_gives_the_same_tickets_and_outcomes() {
    let a = plan("5", 40);
    assert_eq!(a.len(), 40);
    assert_eq!(a, plan("5", 40));
    assert_ne!(a, plan("6", 40));
    for t in &a {
        for field in [
            "ticket_id",
            "tenant",
            "ticket_type",
            "complexity",
            "outcome",
        ] {
            assert!(t[field].is_string(), "{field} in {t}");
        }
    }
}

#[test]
fn bad_flags_are_refused_with_one_line_and_exit_2() {
    for (args, says) in [
        (&["demo", "--tenants", "9"][..], "--tenants"),
        (&["demo", "--agents", "2", "--tenants", "3"][..], "--agents"),
        (&["demo", "--speed", "0"][..], "--speed"),
        (&["demo", "--admin-key", "short"][..], "--admin-key"),
        (&["demo", "--duration", "0"][..], "--duration"),
    ] {
        let (code, _, err) = run(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(says), "{args:?}: {err}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_seeded_demo_exercises_every_span_log_metric_and_failure() {
    let script = plan(SEED, TICKETS);
    let count = |f: &dyn Fn(&Value) -> bool| script.iter().filter(|t| f(t)).count();
    let outcome = |o: &'static str| move |t: &Value| t["outcome"] == o;
    // The seed was chosen so these tickets hold every failure path.
    assert!(count(&outcome("killed")) >= 1);
    assert!(count(&outcome("failed")) >= 1);
    assert!(count(&|t| t["spawn_failures"].as_u64() > Some(0)) >= 1);
    assert!(count(&|t| t["push_rejections"].as_u64() > Some(0)) >= 1);
    assert!(count(&|t| t["spawn_method"] == "boot") >= 1);
    let errors_of = |t: &Value, kind: &str| {
        t["llm_calls"]
            .as_array()
            .expect("calls")
            .iter()
            .flat_map(|c| c["errors"].as_array().expect("errors").iter())
            .filter(|e| *e == kind)
            .count()
    };
    assert!(
        script
            .iter()
            .map(|t| errors_of(t, "Overloaded"))
            .sum::<usize>()
            > 0
    );
    assert!(
        script
            .iter()
            .map(|t| errors_of(t, "RateLimited"))
            .sum::<usize>()
            > 0
    );

    let mut demo = Demo::start(&[
        "--agents",
        "12",
        "--tenants",
        "3",
        "--speed",
        "600",
        "--seed",
        SEED,
        "--tickets",
        &TICKETS.to_string(),
        "--admin-key",
        ADMIN_KEY,
    ]);
    assert_eq!(demo.admin_key(), ADMIN_KEY);
    demo.wait_for_line("fleet finished", Duration::from_secs(240));
    let admin = ADMIN_KEY;

    // Every trace, through the API.
    let mut summaries = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/traces?limit=1000&cursor={c}"),
            None => "/api/traces?limit=1000".to_owned(),
        };
        let (status, page) = demo.get(&path, admin).await;
        assert_eq!(status, 200, "{page}");
        summaries.extend(page["traces"].as_array().expect("traces").iter().cloned());
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_owned()),
            None => break,
        }
    }
    let mut by_ticket: HashMap<String, Vec<Value>> = HashMap::new();
    let mut names = BTreeSet::new();
    for s in &summaries {
        let path = format!(
            "/api/traces/{}?tenant_id={}",
            s["trace_id"].as_str().expect("id"),
            s["tenant_id"].as_str().expect("tenant")
        );
        let (status, doc) = demo.get(&path, admin).await;
        assert_eq!(status, 200, "{doc}");
        let ticket = s["ticket_id"].as_str().expect("every trace is a ticket's");
        for span in doc["spans"].as_array().expect("spans") {
            names.insert(span["name"].as_str().expect("name").to_owned());
            // Complete, or closed by the collector and marked incomplete.
            assert!(!span["end_time"].is_null(), "open span {span}");
            assert_eq!(span["orphan"], false, "orphan {span}");
        }
        by_ticket.entry(ticket.to_owned()).or_default().push(doc);
    }
    let expected: BTreeSet<String> = [
        "http.request",
        "ticket.claim",
        "vm.spawn",
        "agent.execute",
        "git.clone",
        "llm.generate",
        "file.write",
        "git.commit",
        "git.push",
        "pr.create",
        "ticket.complete",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(names, expected);

    // Each ticket's traces match its script.
    let mut llm_errors = 0;
    let mut cost_by_tenant: HashMap<String, f64> = HashMap::new();
    let mut agent_cost_by_tenant: HashMap<String, f64> = HashMap::new();
    for t in &script {
        let id = t["ticket_id"].as_str().expect("ticket id");
        let traces = by_ticket
            .get(id)
            .unwrap_or_else(|| panic!("no trace for {id}"));
        let failed_spawns = t["spawn_failures"].as_u64().expect("spawn failures") as usize;
        // One trace per claim, and for a dead VM the platform's handling of
        // the VM host's report.
        let killed = usize::from(t["outcome"] == "killed");
        assert_eq!(traces.len(), failed_spawns + 1 + killed, "{id}");
        if killed == 1 {
            assert!(traces
                .iter()
                .any(|d| d["spans"][0]["attributes"]["path"] == "/api/vms/{vm_id}/exited"));
        }
        let work = traces
            .iter()
            .find(|d| {
                d["spans"]
                    .as_array()
                    .expect("spans")
                    .iter()
                    .any(|s| s["name"] == "agent.execute")
            })
            .unwrap_or_else(|| panic!("{id}: no agent.execute"));
        let spans = work["spans"].as_array().expect("spans");
        let named = |n: &'static str| spans.iter().filter(move |s| s["name"] == n);
        let one = |n: &'static str| named(n).next().unwrap_or_else(|| panic!("{id}: no {n}"));
        let by_id: HashMap<&str, &Value> = spans
            .iter()
            .map(|s| (s["span_id"].as_str().expect("span id"), s))
            .collect();
        let parent_name = |s: &Value| {
            s["parent_span_id"]
                .as_str()
                .and_then(|p| by_id.get(p))
                .map(|p| p["name"].as_str().expect("name").to_owned())
        };
        // The seed's tree and attributes.
        let root = one("http.request");
        assert_eq!(parent_name(root), None);
        assert_eq!(attr(root, "method"), "POST");
        assert_eq!(attr(root, "path"), "/api/tenants/{tenant}/tickets/claim");
        assert_eq!(attr(root, "status_code"), 200);
        let claim = one("ticket.claim");
        assert_eq!(parent_name(claim).as_deref(), Some("http.request"));
        assert_eq!(attr(claim, "ticket_id"), id);
        assert!(attr(claim, "agent_id").is_string());
        let spawn = one("vm.spawn");
        assert_eq!(parent_name(spawn).as_deref(), Some("ticket.claim"));
        assert_eq!(attr(spawn, "method"), &t["spawn_method"]);
        assert!(attr(spawn, "vm_id")
            .as_str()
            .is_some_and(|v| v.starts_with("vm-")));
        let exec = one("agent.execute");
        assert_eq!(parent_name(exec).as_deref(), Some("vm.spawn"));
        assert_eq!(attr(exec, "agent_type"), &t["agent_type"]);
        for s in spans {
            let name = s["name"].as_str().expect("name");
            if matches!(
                name,
                "git.clone"
                    | "llm.generate"
                    | "file.write"
                    | "git.commit"
                    | "git.push"
                    | "pr.create"
            ) {
                assert_eq!(
                    parent_name(s).as_deref(),
                    Some("agent.execute"),
                    "{id} {name}"
                );
            }
        }
        assert_eq!(attr(one("git.clone"), "repo_url"), &t["repo_url"]);
        assert_eq!(attr(one("git.clone"), "branch"), "main");
        for call in named("llm.generate") {
            assert!(attr(call, "model").is_string());
            if call["status"] == "error" {
                llm_errors += 1;
                if attr(call, "swarm.incomplete") != true {
                    let kind = attr(call, "error.type").as_str().expect("error.type");
                    assert!(
                        kind == "overloaded_error" || kind == "rate_limit_error",
                        "{call}"
                    );
                }
            } else {
                assert!(attr(call, "input_tokens").as_u64().is_some(), "{call}");
                assert!(attr(call, "output_tokens").as_u64().is_some(), "{call}");
                assert!(attr(call, "cache_read_input_tokens").as_u64().is_some());
                let tenant = t["tenant"].as_str().expect("tenant").to_owned();
                *cost_by_tenant.entry(tenant.clone()).or_default() += attr(call, "swarm.cost_usd")
                    .as_f64()
                    .expect("priced by the collector");
                *agent_cost_by_tenant.entry(tenant).or_default() += attr(call, "cost_usd")
                    .as_f64()
                    .expect("priced by the agent");
            }
        }
        // Correlated log lines, each pointing at a span of the trace.
        let logs = work["logs"].as_array().expect("logs");
        assert!(logs.len() >= 4, "{id}: {} log lines", logs.len());
        for line in logs {
            if let Some(span) = line["span_id"].as_str() {
                assert!(
                    by_id.contains_key(span),
                    "{id}: log line of an unknown span {line}"
                );
            }
        }
        let ok_calls = named("llm.generate")
            .filter(|s| s["status"] == "ok")
            .count();
        match t["outcome"].as_str().expect("outcome") {
            "completed" => {
                assert_eq!(
                    ok_calls,
                    t["llm_calls"].as_array().expect("calls").len(),
                    "{id}"
                );
                assert_eq!(attr(one("git.commit"), "commit_sha"), &t["commit_sha"]);
                assert!(attr(one("git.push"), "branch").is_string());
                assert!(attr(one("file.write"), "file_count").as_u64() > Some(0));
                assert!(attr(one("file.write"), "total_bytes").as_u64() > Some(0));
                assert_eq!(attr(one("pr.create"), "pr_number"), &t["pr_number"]);
                assert!(attr(one("pr.create"), "pr_url").is_string());
                let done = one("ticket.complete");
                assert_eq!(done["status"], "ok");
                assert_eq!(parent_name(done).as_deref(), Some("http.request"));
                assert!(attr(done, "duration_ms").as_f64() > Some(0.0));
                assert_eq!(exec["status"], "ok");
            }
            "failed" => {
                assert_eq!(one("ticket.complete")["status"], "error", "{id}");
                assert_eq!(exec["status"], "error");
            }
            "killed" => {
                // Closed by the collector when the platform reported the dead
                // VM, not by the agent.
                assert_eq!(attr(exec, "swarm.incomplete"), true, "{id}: {exec}");
                assert_eq!(exec["status"], "error");
                assert!(named("ticket.complete").next().is_none());
                assert!(named("llm.generate").any(|s| attr(s, "swarm.incomplete") == true));
            }
            other => panic!("outcome {other}"),
        }
    }
    // Spawn failures are their own traces, ending in an error.
    let failed_spawn_traces = by_ticket
        .values()
        .flatten()
        .filter(|d| {
            d["spans"]
                .as_array()
                .expect("spans")
                .iter()
                .any(|s| s["name"] == "vm.spawn" && s["status"] == "error")
        })
        .count();
    let planned_spawn_failures: u64 = script
        .iter()
        .map(|t| t["spawn_failures"].as_u64().expect("n"))
        .sum();
    assert_eq!(failed_spawn_traces as u64, planned_spawn_failures);

    // Metrics: the collector's (span-derived) and the platform's.
    let (status, _) = demo.get_text(&demo.url("/metrics"), "").await;
    assert_eq!(status, 401);
    let (status, _) = demo
        .get_text(&demo.url("/metrics"), &demo.read_key("acme"))
        .await;
    assert_eq!(status, 403);
    let metrics_key = demo.keys["metrics"]
        .as_str()
        .expect("metrics key")
        .to_owned();
    let (status, _) = demo.get_text(&demo.url("/metrics"), &metrics_key).await;
    assert_eq!(status, 200);
    let (status, collector) = demo.get_text(&demo.url("/metrics"), admin).await;
    assert_eq!(status, 200);
    let (status, platform) = demo.get_text(&demo.platform_metrics, &metrics_key).await;
    assert_eq!(status, 200, "{platform}");
    let c = samples(&collector);
    let p = samples(&platform);
    let mut families = BTreeSet::new();
    for (name, _, _) in c.iter().chain(p.iter()) {
        if let Some(base) = name.strip_prefix("swarm_") {
            let base = base
                .trim_end_matches("_bucket")
                .trim_end_matches("_count")
                .trim_end_matches("_sum");
            families.insert(format!("swarm_{base}"));
        }
    }
    for family in [
        "swarm_vms_active",
        "swarm_vms_total",
        "swarm_vm_boot_duration_ms",
        "swarm_tickets_total",
        "swarm_ticket_duration_seconds",
        "swarm_api_requests_total",
        "swarm_api_request_duration_ms",
        "swarm_claude_api_calls_total",
        "swarm_claude_api_tokens_total",
        "swarm_claude_api_cost_usd_total",
        "swarm_agent_executions_total",
        "swarm_queue_depth",
    ] {
        assert!(
            families.contains(family),
            "{family} missing from {families:?}"
        );
    }
    let completed = count(&outcome("completed")) as f64;
    let finished_runs = (TICKETS - count(&outcome("killed"))) as f64;
    assert_eq!(
        sum(&p, "swarm_tickets_total", &[("status", "queued")]),
        TICKETS as f64
    );
    assert_eq!(
        sum(&p, "swarm_tickets_total", &[("status", "claimed")]),
        TICKETS as f64
    );
    assert_eq!(
        sum(&p, "swarm_tickets_total", &[("status", "completed")]),
        completed
    );
    assert_eq!(
        sum(&p, "swarm_tickets_total", &[("status", "failed")]),
        TICKETS as f64 - completed
    );
    assert_eq!(
        sum(&p, "swarm_vms_total", &[("status", "failed")]),
        planned_spawn_failures as f64
    );
    assert_eq!(
        sum(&p, "swarm_vms_total", &[("status", "started")]),
        TICKETS as f64
    );
    assert_eq!(sum(&p, "swarm_vms_active", &[]), 0.0, "every VM is gone");
    assert_eq!(
        sum(&p, "swarm_queue_depth", &[]),
        0.0,
        "every queue is empty"
    );
    assert_eq!(
        sum(
            &p,
            "swarm_api_requests_total",
            &[
                ("path", "/api/tenants/{tenant}/tickets/claim"),
                ("status", "503")
            ]
        ),
        planned_spawn_failures as f64
    );
    assert!(sum(&p, "swarm_api_request_duration_ms_count", &[]) >= TICKETS as f64 * 2.0);
    // Span-derived, in the collector.
    assert_eq!(
        sum(&c, "swarm_vm_boot_duration_ms_count", &[]),
        TICKETS as f64
    );
    assert_eq!(
        sum(&c, "swarm_ticket_duration_seconds_count", &[]),
        finished_runs
    );
    assert_eq!(
        sum(&c, "swarm_agent_executions_total", &[("status", "ok")]),
        completed
    );
    assert_eq!(
        sum(&c, "swarm_claude_api_calls_total", &[("status", "error")]),
        (llm_errors - count(&outcome("killed"))) as f64,
        "the incomplete calls closed by the collector are not counted as API errors"
    );
    assert!(
        sum(
            &c,
            "swarm_claude_api_tokens_total",
            &[("direction", "output")]
        ) > 0.0
    );
    assert!(
        sum(
            &c,
            "swarm_claude_api_tokens_total",
            &[("direction", "cache_read")]
        ) > 0.0
    );
    // Cost per tenant adds up to the llm.generate spans' costs.
    assert_eq!(cost_by_tenant.len(), 3);
    for (tenant, spans_cost) in &cost_by_tenant {
        let metric = sum(
            &c,
            "swarm_claude_api_cost_usd_total",
            &[("tenant_id", tenant)],
        );
        assert!(
            (metric - spans_cost).abs() < 1e-6,
            "{tenant}: metric {metric} vs spans {spans_cost}"
        );
        let agents = agent_cost_by_tenant[tenant];
        assert!(
            (agents - spans_cost).abs() < 1e-6,
            "{tenant}: agents {agents}"
        );
        assert!(*spans_cost > 0.0);
    }

    // Tenancy: a tenant's read key sees its own traces only.
    let acme = demo.read_key("acme");
    let (status, page) = demo.get("/api/traces?limit=1000", &acme).await;
    assert_eq!(status, 200);
    let acme_traces = page["traces"].as_array().expect("traces");
    assert!(!acme_traces.is_empty());
    assert!(acme_traces.iter().all(|t| t["tenant_id"] == "acme"));
    let other = summaries
        .iter()
        .find(|s| s["tenant_id"] == "globex")
        .expect("a globex trace");
    let (status, _) = demo
        .get(
            &format!("/api/traces/{}", other["trace_id"].as_str().expect("id")),
            &acme,
        )
        .await;
    assert_eq!(status, 404);

    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(demo.data_dir.join("demo-keys.json"))
            .expect("keys file")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }

    let status = demo.interrupt();
    assert!(status.success(), "{status:?}: {}", demo.stderr());
    assert!(
        demo.stdout.iter().any(|l| l.starts_with("demo stopped")),
        "{:?}",
        demo.stdout
    );
}
