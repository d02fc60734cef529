//! A simulated agent: claims its tenant's tickets from the platform over HTTP
//! and works each one in "its VM" along the seed's span tree, with the SDK's
//! tracer (its own per VM, as a real VM process would have) and logger.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use serde_json::json;
use swarmscope_model::price::PriceTable;
use swarmscope_model::SpanStatus;
use swarmscope_sdk::propagation::parse_traceparent;
use swarmscope_sdk::tracer::{AgentTracer, SpanGuard, Tracer, TracerConfig};
use tokio::sync::watch;

use super::plan::{backoff_ms, call_cost, Clock, Outcome, TicketPlan, MAX_PUSH_ATTEMPTS};
use super::platform::Platform;
use super::progress::Progress;

/// What every agent shares.
pub(crate) struct Fleet {
    /// The platform (for waiting on work; everything else goes over HTTP).
    pub(crate) platform: Arc<Platform>,
    /// Platform base URL.
    pub(crate) platform_url: String,
    /// Collector base URL.
    pub(crate) collector_url: String,
    /// Each tenant's ingest key.
    pub(crate) ingest_keys: HashMap<String, String>,
    /// Time compression.
    pub(crate) clock: Clock,
    /// Prices agents put on their calls.
    pub(crate) prices: PriceTable,
    /// Shared counters.
    pub(crate) progress: Arc<Progress>,
    /// Where a VM's tracer spools what it cannot send.
    pub(crate) spool_dir: PathBuf,
    /// HTTP client for platform calls.
    pub(crate) http: reqwest::Client,
    /// Becomes true when the demo stops.
    pub(crate) stop: watch::Receiver<bool>,
}

impl Fleet {
    fn stopping(&self) -> bool {
        *self.stop.borrow()
    }

    async fn pause(&self, real_ms: f64) {
        tokio::time::sleep(self.clock.scaled(real_ms)).await;
    }
}

/// The platform's answer to a claim.
#[derive(Debug, Deserialize)]
struct Claimed {
    ticket: TicketPlan,
    vm_id: String,
    traceparent: String,
}

/// Runs one agent until the demo stops.
pub(crate) async fn run(fleet: Arc<Fleet>, tenant: String, agent_id: String) {
    let url = format!("{}/api/tenants/{tenant}/tickets/claim", fleet.platform_url);
    let mut stop = fleet.stop.clone();
    while fleet.platform.wait_for_work(&tenant, &mut stop).await {
        let response = fleet
            .http
            .post(&url)
            .json(&json!({"agent_id": agent_id}))
            .send()
            .await;
        let response = match response {
            Ok(r) => r,
            Err(e) => {
                tracing::warn!(error = %e, "cannot reach the platform");
                tokio::time::sleep(Duration::from_millis(500)).await;
                continue;
            }
        };
        match response.status().as_u16() {
            200 => {}
            // Another agent took it (a re-queued ticket), or the VM did not
            // start and the ticket is back in the queue.
            _ => continue,
        }
        let claimed: Claimed = match response.json().await {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "unreadable claim answer");
                continue;
            }
        };
        fleet.progress.claimed();
        work(&fleet, &agent_id, claimed).await;
    }
}

/// Why a run stopped early.
enum Stop {
    Failed(String),
    Killed,
}

/// Works one ticket in its VM.
async fn work(fleet: &Fleet, agent_id: &str, claimed: Claimed) {
    let plan = &claimed.ticket;
    let mut config = TracerConfig::from_env();
    config.url = fleet.collector_url.clone();
    config.api_key = fleet.ingest_keys.get(&plan.tenant).cloned();
    config.service = Some(format!("{}-agent", plan.agent_type));
    config.vm_id = Some(claimed.vm_id.clone());
    config.spool_path = fleet.spool_dir.join(format!("{}.jsonl", claimed.vm_id));
    config.logs = None;
    let tracer = Tracer::new(config);
    let Some(context) = parse_traceparent(&claimed.traceparent) else {
        tracing::error!("the platform sent an invalid traceparent");
        return;
    };
    let agent =
        AgentTracer::continue_trace(&tracer, &context, &plan.ticket_id, agent_id, &plan.tenant);
    let mut execute = agent.announce(
        "agent.execute",
        [
            ("agent_type", plan.agent_type.as_str()),
            ("ticket_type", plan.ticket_type.as_str()),
            ("complexity", plan.complexity.as_str()),
        ],
    );
    execute.tracing_span().in_scope(|| {
        tracing::info!(repo_url = %plan.repo_url, vm_id = %claimed.vm_id, "agent started");
    });
    // Checkpoint: from here on the collector knows the agent is running.
    agent.flush().await;

    let result = steps(fleet, &agent, plan).await;
    let (outcome, error, pr_url) = match result {
        Ok(pr_url) => ("completed", None, Some(pr_url)),
        Err(Stop::Failed(why)) => ("failed", Some(why), None),
        Err(Stop::Killed) => {
            // The VM is gone: its tracer is dropped unflushed, so the spans
            // announced open stay open in the collector until the platform
            // reports the dead VM.
            drop(execute);
            drop(agent);
            drop(tracer);
            // The VM host notices and tells the platform.
            let url = format!("{}/api/vms/{}/exited", fleet.platform_url, claimed.vm_id);
            if let Err(e) = fleet.http.post(&url).send().await {
                tracing::warn!(error = %e, "cannot report the dead VM");
            }
            fleet.progress.killed();
            return;
        }
    };
    match &error {
        None => {
            execute.set_status(SpanStatus::Ok);
            execute
                .tracing_span()
                .in_scope(|| tracing::info!("agent finished"));
        }
        Some(why) => {
            execute.set_error(why.clone());
            execute
                .tracing_span()
                .in_scope(|| tracing::error!(error = %why, "agent gave up"));
        }
    }
    // ticket.complete under its own http.request, continuing this trace.
    let url = format!(
        "{}/api/tenants/{}/tickets/{}/complete",
        fleet.platform_url, plan.tenant, plan.ticket_id
    );
    let sent = fleet
        .http
        .post(&url)
        .header("traceparent", execute.traceparent())
        .json(&json!({
            "vm_id": claimed.vm_id,
            "outcome": outcome,
            "error": error,
            "pr_url": pr_url,
        }))
        .send()
        .await;
    if let Err(e) = sent {
        tracing::warn!(error = %e, "cannot report the ticket's end");
    }
    execute.end();
    agent.flush().await;
    match error {
        None => fleet.progress.completed(),
        Some(_) => fleet.progress.failed(),
    }
}

/// A short span: sleeps `real_ms`, ends ok.
async fn step(fleet: &Fleet, mut span: SpanGuard, real_ms: f64, message: &str) {
    fleet.pause(real_ms).await;
    span.set_status(SpanStatus::Ok);
    span.tracing_span().in_scope(|| tracing::info!("{message}"));
    span.end();
}

/// The work inside `agent.execute`; the pull request URL when it succeeds.
async fn steps(fleet: &Fleet, agent: &AgentTracer, plan: &TicketPlan) -> Result<String, Stop> {
    let interrupted = || Stop::Failed("interrupted: the demo is stopping".into());
    let clone = agent.start_span(
        "git.clone",
        [("repo_url", plan.repo_url.as_str()), ("branch", "main")],
    );
    step(fleet, clone, plan.clone_ms, "repository cloned").await;

    for (i, call) in plan.llm_calls.iter().enumerate() {
        if fleet.stopping() {
            return Err(interrupted());
        }
        let mut attempt = 0;
        loop {
            let mut span = agent.announce(
                "llm.generate",
                [
                    ("model", json!(call.model)),
                    ("attempt", json!(attempt + 1)),
                    ("call", json!(i + 1)),
                ],
            );
            if let Some(error) = call.errors.get(attempt) {
                fleet.pause(call.latency_ms.min(800.0)).await;
                let message = match error.http_status() {
                    529 => "Overloaded",
                    _ => "Number of request tokens has exceeded your per-minute rate limit",
                };
                span.set_attribute("error.type", error.error_type());
                span.set_attribute("http.status_code", error.http_status());
                span.set_error(format!(
                    "{} {}: {message}",
                    error.http_status(),
                    error.error_type()
                ));
                let wait = backoff_ms(attempt);
                span.tracing_span().in_scope(|| {
                    tracing::warn!(
                        model = %call.model,
                        error_type = error.error_type(),
                        status = error.http_status(),
                        retry_in_ms = wait,
                        "Claude API error"
                    );
                });
                span.end();
                fleet.progress.llm_error();
                attempt += 1;
                if attempt >= super::plan::MAX_LLM_ATTEMPTS {
                    return Err(Stop::Failed(format!(
                        "Claude API: {} after {attempt} attempts",
                        error.error_type()
                    )));
                }
                fleet.pause(wait).await;
                continue;
            }
            if plan.killed_at_call == Some(i) {
                // The VM dies half way through this call, after the last
                // checkpoint told the collector the call had started.
                agent.flush().await;
                fleet.pause(call.latency_ms / 2.0).await;
                drop(span);
                return Err(Stop::Killed);
            }
            fleet.pause(call.latency_ms).await;
            let cost = call_cost(&fleet.prices, call);
            span.set_attribute("input_tokens", call.input_tokens);
            span.set_attribute("output_tokens", call.output_tokens);
            span.set_attribute("cache_read_input_tokens", call.cache_read_tokens);
            span.set_attribute("cache_creation_input_tokens", call.cache_write_tokens);
            span.set_attribute("cost_usd", cost);
            span.set_status(SpanStatus::Ok);
            span.tracing_span().in_scope(|| {
                tracing::info!(
                    model = %call.model,
                    input_tokens = call.input_tokens,
                    output_tokens = call.output_tokens,
                    cache_read_input_tokens = call.cache_read_tokens,
                    latency_ms = call.latency_ms.round(),
                    "LLM call done"
                );
            });
            span.end();
            fleet.progress.llm_call(cost);
            break;
        }
        // Checkpoint after each call.
        agent.flush().await;
    }
    if fleet.stopping() {
        return Err(interrupted());
    }
    if plan.gives_up {
        return Err(Stop::Failed(format!(
            "tests still failing after {} LLM calls",
            plan.llm_calls.len()
        )));
    }
    let write = agent.start_span(
        "file.write",
        [
            ("file_count", plan.file_count),
            ("total_bytes", plan.total_bytes),
        ],
    );
    step(
        fleet,
        write,
        40.0 + plan.file_count as f64 * 3.0,
        "files written",
    )
    .await;
    let commit = agent.start_span("git.commit", [("commit_sha", plan.commit_sha.as_str())]);
    step(fleet, commit, 60.0, "changes committed").await;

    let branch = format!("swarm/{}", plan.ticket_id.to_lowercase());
    for attempt in 1..=MAX_PUSH_ATTEMPTS {
        let mut push = agent.start_span(
            "git.push",
            [("branch", json!(branch)), ("attempt", json!(attempt))],
        );
        fleet.pause(900.0).await;
        if attempt <= plan.push_rejections {
            push.set_error(format!(
                "! [rejected] {branch} -> {branch} (non-fast-forward)"
            ));
            push.tracing_span().in_scope(|| {
                tracing::warn!(branch = %branch, "push rejected; rebasing");
            });
            push.end();
            if attempt == MAX_PUSH_ATTEMPTS {
                return Err(Stop::Failed(
                    "git push rejected twice (non-fast-forward)".into(),
                ));
            }
            fleet.pause(1_500.0).await;
            continue;
        }
        step(fleet, push, 0.0, "branch pushed").await;
        break;
    }
    let repo = plan
        .repo_url
        .trim_start_matches("https://git.example.com/")
        .trim_end_matches(".git");
    let pr_url = format!("https://git.example.com/{repo}/pull/{}", plan.pr_number);
    let pr = agent.start_span(
        "pr.create",
        [
            ("pr_number", json!(plan.pr_number)),
            ("pr_url", json!(pr_url)),
        ],
    );
    step(fleet, pr, 700.0, "pull request opened").await;
    debug_assert_eq!(plan.outcome, Outcome::Completed);
    Ok(pr_url)
}
