//! The simulated swarm platform: a real HTTP service behind the SDK's request
//! middleware and `SwarmMetrics`, holding a ticket queue per tenant and a VM
//! pool. Agents claim tickets and report completion over HTTP; the VM host
//! reports dead VMs, which the platform passes on to the collector so their
//! open spans are closed as incomplete.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::Context;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::Deserialize;
use serde_json::json;
use swarmscope_model::SpanStatus;
use swarmscope_sdk::metrics::{
    metrics_handler, MetricsEndpoint, SwarmMetrics, TenantLabels, TenantStatusLabels,
};
use swarmscope_sdk::middleware::{RequestContext, RequestLayer};
use swarmscope_sdk::tracer::Tracer;
use tokio::sync::{watch, Semaphore};

use super::plan::{Clock, TicketPlan};
use super::progress::Progress;

/// A queued ticket and how many VM spawns for it have failed so far.
struct Queued {
    plan: TicketPlan,
    spawn_attempts: u32,
    queued_at: Instant,
}

/// Tickets between arrival and end, and those waiting for another ticket.
#[derive(Default)]
struct Pipeline {
    /// Arrived and not yet finished (completed, failed or killed).
    active: HashSet<u64>,
    /// Blocked tickets by the ticket they wait for, with when they arrived.
    blocked: HashMap<u64, Vec<(Queued, Instant)>>,
}

/// One tenant's queue.
struct TenantQueue {
    queued: Mutex<VecDeque<Queued>>,
    running: AtomicU64,
    blocked: AtomicU64,
    /// One permit per queued ticket: an agent takes one before claiming, so
    /// agents do not race for the same ticket.
    available: Semaphore,
}

/// A running VM and the ticket it works.
struct Vm {
    index: u64,
    tenant: String,
    ticket_id: String,
    ticket_type: String,
    complexity: String,
    claimed_at: Instant,
}

/// The platform's state, shared by its handlers and the demo's fleet.
pub(crate) struct Platform {
    metrics: SwarmMetrics,
    tenants: HashMap<String, TenantQueue>,
    pipeline: Mutex<Pipeline>,
    vms: Mutex<HashMap<String, Vm>>,
    next_vm: AtomicU64,
    clock: Clock,
    progress: Arc<Progress>,
    collector_url: String,
    admin_key: String,
    http: reqwest::Client,
}

fn error(status: StatusCode, message: impl Into<String>) -> Response {
    (status, Json(json!({"error": message.into()}))).into_response()
}

impl Platform {
    /// A platform for `tenants`, reporting dead VMs to the collector.
    pub(crate) fn new(
        tenants: &[&str],
        clock: Clock,
        progress: Arc<Progress>,
        collector_url: String,
        admin_key: String,
    ) -> anyhow::Result<Platform> {
        let metrics = SwarmMetrics::new();
        let tenants = tenants
            .iter()
            .map(|t| {
                (
                    (*t).to_owned(),
                    TenantQueue {
                        queued: Mutex::new(VecDeque::new()),
                        running: AtomicU64::new(0),
                        blocked: AtomicU64::new(0),
                        available: Semaphore::new(0),
                    },
                )
            })
            .collect();
        Ok(Platform {
            metrics,
            tenants,
            pipeline: Mutex::new(Pipeline::default()),
            vms: Mutex::new(HashMap::new()),
            next_vm: AtomicU64::new(1),
            clock,
            progress,
            collector_url,
            admin_key,
            http: reqwest::Client::builder()
                .timeout(Duration::from_secs(10))
                .build()
                .context("cannot build an HTTP client")?,
        })
    }

    /// The platform's metric families.
    pub(crate) fn metrics(&self) -> &SwarmMetrics {
        &self.metrics
    }

    fn count_ticket(&self, tenant: &str, status: &str) {
        self.metrics
            .tickets
            .get_or_create(&TenantStatusLabels {
                tenant_id: tenant.to_owned(),
                status: status.to_owned(),
            })
            .inc();
    }

    fn count_vm(&self, tenant: &str, status: &str) {
        self.metrics
            .vms
            .get_or_create(&TenantStatusLabels {
                tenant_id: tenant.to_owned(),
                status: status.to_owned(),
            })
            .inc();
    }

    fn vms_active(&self, tenant: &str) -> prometheus_client::metrics::gauge::Gauge {
        self.metrics
            .vms_active
            .get_or_create(&TenantLabels {
                tenant_id: tenant.to_owned(),
            })
            .clone()
    }

    /// Publishes a tenant's queue depth by status.
    fn publish_depth(&self, tenant: &str, queue: &TenantQueue, queued: usize) {
        for (status, n) in [
            ("blocked", queue.blocked.load(Ordering::Relaxed) as i64),
            ("queued", queued as i64),
            ("running", queue.running.load(Ordering::Relaxed) as i64),
        ] {
            self.metrics
                .queue_depth
                .get_or_create(&TenantStatusLabels {
                    tenant_id: tenant.to_owned(),
                    status: status.to_owned(),
                })
                .set(n);
        }
        let total: usize = self
            .tenants
            .values()
            .map(|q| q.queued.lock().map(|g| g.len()).unwrap_or(0))
            .sum();
        self.progress.set_queued(total);
    }

    /// Time spent in a status, observed as the ticket leaves it.
    fn observe_status(&self, tenant: &str, status: &str, since: Instant) {
        self.metrics
            .ticket_status_seconds
            .get_or_create(&TenantStatusLabels {
                tenant_id: tenant.to_owned(),
                status: status.to_owned(),
            })
            .observe(since.elapsed().as_secs_f64());
    }

    /// A new ticket arrives: queued, or blocked until the ticket it depends
    /// on finishes.
    pub(crate) fn enqueue(&self, plan: TicketPlan) {
        let Some(queue) = self.tenants.get(&plan.tenant) else {
            return;
        };
        self.count_ticket(&plan.tenant, "queued");
        {
            let mut pipeline = self.pipeline.lock().unwrap_or_else(|p| p.into_inner());
            pipeline.active.insert(plan.index);
            if let Some(d) = plan.depends_on.filter(|d| pipeline.active.contains(d)) {
                let tenant = plan.tenant.clone();
                let item = Queued {
                    plan,
                    spawn_attempts: 0,
                    queued_at: Instant::now(),
                };
                pipeline
                    .blocked
                    .entry(d)
                    .or_default()
                    .push((item, Instant::now()));
                drop(pipeline);
                queue.blocked.fetch_add(1, Ordering::Relaxed);
                let len = queue.queued.lock().map(|q| q.len()).unwrap_or(0);
                self.publish_depth(&tenant, queue, len);
                return;
            }
        }
        self.make_ready(queue, plan);
    }

    /// A ticket ended: tickets waiting for it move to their queues.
    fn finished(&self, index: u64) {
        let released = {
            let mut pipeline = self.pipeline.lock().unwrap_or_else(|p| p.into_inner());
            pipeline.active.remove(&index);
            pipeline.blocked.remove(&index).unwrap_or_default()
        };
        for (item, since) in released {
            let tenant = item.plan.tenant.clone();
            let Some(queue) = self.tenants.get(&tenant) else {
                continue;
            };
            queue.blocked.fetch_sub(1, Ordering::Relaxed);
            self.observe_status(&tenant, "blocked", since);
            self.metrics
                .ticket_dependency_wait_seconds
                .get_or_create(&TenantLabels {
                    tenant_id: tenant.clone(),
                })
                .observe(since.elapsed().as_secs_f64());
            self.make_ready(queue, item.plan);
        }
    }

    /// Puts a ticket at the back of its tenant's queue.
    fn make_ready(&self, queue: &TenantQueue, plan: TicketPlan) {
        let tenant = plan.tenant.clone();
        let len = {
            let mut q = queue.queued.lock().unwrap_or_else(|p| p.into_inner());
            q.push_back(Queued {
                plan,
                spawn_attempts: 0,
                queued_at: Instant::now(),
            });
            q.len()
        };
        self.publish_depth(&tenant, queue, len);
        queue.available.add_permits(1);
    }

    /// Waits until a ticket of the tenant's queue is reserved for the caller
    /// (true), or the demo stops (false).
    pub(crate) async fn wait_for_work(
        &self,
        tenant: &str,
        stop: &mut watch::Receiver<bool>,
    ) -> bool {
        let Some(queue) = self.tenants.get(tenant) else {
            return false;
        };
        if *stop.borrow() {
            return false;
        }
        tokio::select! {
            permit = queue.available.acquire() => match permit {
                Ok(p) => {
                    p.forget();
                    true
                }
                Err(_) => false,
            },
            _ = stop.changed() => false,
        }
    }

    /// VMs running now.
    pub(crate) fn running_vms(&self) -> usize {
        self.vms.lock().map(|v| v.len()).unwrap_or(0)
    }
}

/// The body of a claim.
#[derive(Debug, Deserialize)]
struct ClaimRequest {
    agent_id: String,
}

/// `POST /api/tenants/{tenant}/tickets/claim`: the oldest queued ticket of the
/// tenant, in a freshly spawned VM; 204 when the queue is empty; 503 when the
/// VM failed to spawn (the ticket goes back to the head of the queue).
async fn claim(
    State(p): State<Arc<Platform>>,
    ctx: RequestContext,
    Path(tenant): Path<String>,
    Json(body): Json<ClaimRequest>,
) -> Response {
    ctx.set_tenant(&tenant);
    ctx.set_agent(&body.agent_id);
    let Some(queue) = p.tenants.get(&tenant) else {
        return error(StatusCode::NOT_FOUND, format!("no tenant {tenant:?}"));
    };
    let taken = {
        let mut q = queue.queued.lock().unwrap_or_else(|p| p.into_inner());
        q.pop_front().map(|item| (item, q.len()))
    };
    let Some((mut item, left)) = taken else {
        return StatusCode::NO_CONTENT.into_response();
    };
    let plan = item.plan.clone();
    ctx.set_ticket(&plan.ticket_id);
    let tracer = ctx.tracer(&plan.ticket_id, &body.agent_id, &tenant);
    let mut claim = tracer.start_span(
        "ticket.claim",
        [
            ("ticket_id", plan.ticket_id.as_str()),
            ("agent_id", body.agent_id.as_str()),
            ("ticket_type", plan.ticket_type.as_str()),
            ("complexity", plan.complexity.as_str()),
        ],
    );
    claim.set_attribute(
        "queue_wait_ms",
        item.queued_at.elapsed().as_secs_f64() * 1_000.0,
    );
    if let Some(d) = plan.depends_on {
        claim.set_attribute("depends_on_index", d);
    }
    claim.tracing_span().in_scope(|| {
        tracing::info!(
            ticket_type = %plan.ticket_type,
            complexity = %plan.complexity,
            queued_behind = left,
            "ticket claimed"
        );
    });
    let vm_id = format!("vm-{:05}", p.next_vm.fetch_add(1, Ordering::Relaxed));
    let mut spawn = tracer.start_span(
        "vm.spawn",
        [
            ("vm_id", vm_id.as_str()),
            ("method", plan.spawn_method.as_str()),
        ],
    );
    tokio::time::sleep(p.clock.scaled(plan.spawn_ms)).await;
    if item.spawn_attempts < plan.spawn_failures {
        let why = if plan.spawn_method == "restore" {
            "firecracker: snapshot restore failed: memory file truncated"
        } else {
            "firecracker: InstanceStart failed: KVM_CREATE_VM: Cannot allocate memory"
        };
        spawn.set_error(why);
        spawn
            .tracing_span()
            .in_scope(|| tracing::error!(vm_id = %vm_id, "VM spawn failed: {why}"));
        spawn.end();
        claim.set_error("no VM for the ticket; requeued");
        claim.end();
        p.count_vm(&tenant, "failed");
        item.spawn_attempts += 1;
        let len = {
            let mut q = queue.queued.lock().unwrap_or_else(|p| p.into_inner());
            q.push_front(item);
            q.len()
        };
        p.publish_depth(&tenant, queue, len);
        queue.available.add_permits(1);
        return error(
            StatusCode::SERVICE_UNAVAILABLE,
            format!("VM spawn failed: {why}"),
        );
    }
    spawn.set_status(SpanStatus::Ok);
    let traceparent = spawn.traceparent();
    spawn.tracing_span().in_scope(|| {
        tracing::info!(vm_id = %vm_id, method = %plan.spawn_method, "VM started");
    });
    spawn.end();
    p.observe_status(&tenant, "queued", item.queued_at);
    p.count_vm(&tenant, "started");
    p.vms_active(&tenant).inc();
    p.count_ticket(&tenant, "claimed");
    queue.running.fetch_add(1, Ordering::Relaxed);
    p.publish_depth(&tenant, queue, left);
    p.vms.lock().unwrap_or_else(|p| p.into_inner()).insert(
        vm_id.clone(),
        Vm {
            index: plan.index,
            tenant: tenant.clone(),
            ticket_id: plan.ticket_id.clone(),
            ticket_type: plan.ticket_type.clone(),
            complexity: plan.complexity.clone(),
            claimed_at: Instant::now(),
        },
    );
    p.progress.set_vms(p.running_vms());
    claim.set_status(SpanStatus::Ok);
    claim.end();
    Json(json!({"ticket": plan, "vm_id": vm_id, "traceparent": traceparent})).into_response()
}

/// The body of a completion.
#[derive(Debug, Deserialize)]
struct CompleteRequest {
    vm_id: String,
    outcome: String,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    pr_url: Option<String>,
}

/// Takes a VM out of the pool if it runs `ticket` for `tenant`.
fn release(p: &Platform, vm_id: &str, tenant: &str, ticket: Option<&str>) -> Option<Vm> {
    let mut vms = p.vms.lock().unwrap_or_else(|p| p.into_inner());
    let matches = vms
        .get(vm_id)
        .is_some_and(|vm| vm.tenant == tenant && ticket.is_none_or(|t| t == vm.ticket_id));
    let vm = if matches { vms.remove(vm_id) } else { None };
    drop(vms);
    if let Some(vm) = &vm {
        p.vms_active(&vm.tenant).dec();
        if let Some(queue) = p.tenants.get(&vm.tenant) {
            queue.running.fetch_sub(1, Ordering::Relaxed);
            let len = queue.queued.lock().map(|q| q.len()).unwrap_or(0);
            p.publish_depth(&vm.tenant, queue, len);
        }
        p.progress.set_vms(p.running_vms());
    }
    vm
}

/// `POST /api/tenants/{tenant}/tickets/{ticket}/complete`: the agent is done
/// (`outcome` completed or failed); its VM is terminated.
async fn complete(
    State(p): State<Arc<Platform>>,
    ctx: RequestContext,
    Path((tenant, ticket)): Path<(String, String)>,
    Json(body): Json<CompleteRequest>,
) -> Response {
    ctx.set_tenant(&tenant);
    ctx.set_ticket(&ticket);
    let failed = match body.outcome.as_str() {
        "completed" => false,
        "failed" => true,
        other => {
            return error(
                StatusCode::BAD_REQUEST,
                format!("outcome must be completed or failed, not {other:?}"),
            )
        }
    };
    let Some(vm) = release(&p, &body.vm_id, &tenant, Some(&ticket)) else {
        return error(
            StatusCode::NOT_FOUND,
            format!("no running VM {:?} for ticket {ticket:?}", body.vm_id),
        );
    };
    let tracer = ctx.tracer(&ticket, "", &tenant);
    let duration_ms = vm.claimed_at.elapsed().as_secs_f64() * 1_000.0;
    let mut span = tracer.start_span(
        "ticket.complete",
        [
            ("ticket_id", json!(ticket)),
            ("duration_ms", json!(duration_ms)),
            ("type", json!(vm.ticket_type)),
            ("complexity", json!(vm.complexity)),
            ("outcome", json!(body.outcome)),
        ],
    );
    if let Some(url) = &body.pr_url {
        span.set_attribute("pr_url", url.clone());
    }
    span.tracing_span().in_scope(|| {
        if failed {
            tracing::warn!(
                duration_ms,
                error = body.error.as_deref().unwrap_or("unknown"),
                "ticket failed"
            );
        } else {
            tracing::info!(duration_ms, "ticket completed");
        }
    });
    if failed {
        span.set_error(body.error.unwrap_or_else(|| "the agent failed".into()));
    } else {
        span.set_status(SpanStatus::Ok);
    }
    span.end();
    p.count_ticket(&tenant, if failed { "failed" } else { "completed" });
    p.count_vm(&tenant, "terminated");
    p.observe_status(&tenant, "running", vm.claimed_at);
    p.finished(vm.index);
    Json(json!({"ticket_id": ticket, "outcome": body.outcome})).into_response()
}

/// `POST /api/vms/{vm_id}/exited`: the VM host saw a VM die. The ticket
/// fails, and the collector is told so it closes the VM's open spans.
async fn exited(
    State(p): State<Arc<Platform>>,
    ctx: RequestContext,
    Path(vm_id): Path<String>,
) -> Response {
    let tenant = {
        let vms = p.vms.lock().unwrap_or_else(|p| p.into_inner());
        vms.get(&vm_id).map(|vm| vm.tenant.clone())
    };
    let Some(vm) = tenant.and_then(|t| release(&p, &vm_id, &t, None)) else {
        return error(StatusCode::NOT_FOUND, format!("no running VM {vm_id:?}"));
    };
    ctx.set_tenant(&vm.tenant);
    ctx.set_ticket(&vm.ticket_id);
    p.count_ticket(&vm.tenant, "failed");
    p.count_vm(&vm.tenant, "crashed");
    p.observe_status(&vm.tenant, "running", vm.claimed_at);
    p.finished(vm.index);
    let url = format!("{}/api/vms/{vm_id}/terminated", p.collector_url);
    let closed = match p.http.post(&url).bearer_auth(&p.admin_key).send().await {
        Ok(r) if r.status().is_success() => r
            .json::<serde_json::Value>()
            .await
            .ok()
            .and_then(|v| v.get("closed").and_then(|c| c.as_u64()))
            .unwrap_or(0),
        Ok(r) => {
            tracing::error!(
                status = r.status().as_u16(),
                "the collector refused the VM termination"
            );
            0
        }
        Err(e) => {
            tracing::error!(error = %e, "cannot reach the collector");
            0
        }
    };
    tracing::error!(
        vm_id = %vm_id,
        closed_spans = closed,
        "VM exited unexpectedly; ticket failed"
    );
    Json(json!({"vm_id": vm_id, "closed": closed})).into_response()
}

/// A running platform server.
pub(crate) struct PlatformServer {
    /// Its address.
    pub(crate) addr: SocketAddr,
    stop: tokio::sync::oneshot::Sender<()>,
    task: tokio::task::JoinHandle<()>,
}

impl PlatformServer {
    /// Serves `platform` on `listener` with `tracer` for its spans;
    /// `/metrics` takes `metrics_key`.
    pub(crate) async fn start(
        listener: tokio::net::TcpListener,
        platform: Arc<Platform>,
        tracer: Tracer,
        metrics_key: String,
    ) -> anyhow::Result<PlatformServer> {
        let mut registry = prometheus_client::registry::Registry::default();
        platform.metrics().register(&mut registry);
        let endpoint = MetricsEndpoint::new(registry, Some(metrics_key));
        let app = Router::new()
            .route("/api/tenants/{tenant}/tickets/claim", post(claim))
            .route(
                "/api/tenants/{tenant}/tickets/{ticket}/complete",
                post(complete),
            )
            .route("/api/vms/{vm_id}/exited", post(exited))
            .with_state(Arc::clone(&platform))
            .layer(RequestLayer::new(tracer, "platform").with_metrics(platform.metrics().clone()))
            .merge(
                Router::new()
                    .route("/metrics", get(metrics_handler))
                    .with_state(endpoint),
            );
        let addr = listener.local_addr().context("no local address")?;
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(PlatformServer { addr, stop, task })
    }

    /// Stops accepting and waits for in-flight requests.
    pub(crate) async fn stop(self) {
        let _ = self.stop.send(());
        let _ = self.task.await;
    }
}
