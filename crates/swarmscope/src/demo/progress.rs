//! Live progress of the demo: one line rewritten in place on a terminal, a
//! plain line every few seconds otherwise.

use std::io::{IsTerminal, Write};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use swarmscope_store::Store;

/// Counters the fleet and the platform update.
#[derive(Debug, Default)]
pub(crate) struct Progress {
    claimed: AtomicU64,
    completed: AtomicU64,
    failed: AtomicU64,
    killed: AtomicU64,
    llm_calls: AtomicU64,
    llm_errors: AtomicU64,
    cost_nano_usd: AtomicU64,
    vms: AtomicU64,
    queued: AtomicU64,
}

/// A snapshot of [`Progress`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Snapshot {
    /// Tickets claimed.
    pub(crate) claimed: u64,
    /// Tickets completed with a pull request.
    pub(crate) completed: u64,
    /// Tickets the agent gave up on.
    pub(crate) failed: u64,
    /// Tickets whose VM died.
    pub(crate) killed: u64,
    /// Successful LLM calls.
    pub(crate) llm_calls: u64,
    /// Failed LLM attempts.
    pub(crate) llm_errors: u64,
    /// USD spent on LLM calls, as priced by the agents.
    pub(crate) cost_usd: f64,
    /// VMs running.
    pub(crate) vms: u64,
    /// Tickets waiting.
    pub(crate) queued: u64,
}

impl Snapshot {
    /// Tickets that reached an end.
    pub(crate) fn finished(&self) -> u64 {
        self.completed + self.failed + self.killed
    }
}

impl Progress {
    pub(crate) fn claimed(&self) {
        self.claimed.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn completed(&self) {
        self.completed.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn failed(&self) {
        self.failed.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn killed(&self) {
        self.killed.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn llm_call(&self, cost_usd: f64) {
        self.llm_calls.fetch_add(1, Ordering::Relaxed);
        self.cost_nano_usd
            .fetch_add((cost_usd * 1e9).round() as u64, Ordering::Relaxed);
    }
    pub(crate) fn llm_error(&self) {
        self.llm_errors.fetch_add(1, Ordering::Relaxed);
    }
    pub(crate) fn set_vms(&self, n: usize) {
        self.vms.store(n as u64, Ordering::Relaxed);
    }
    pub(crate) fn set_queued(&self, n: usize) {
        self.queued.store(n as u64, Ordering::Relaxed);
    }

    /// The counters now.
    pub(crate) fn snapshot(&self) -> Snapshot {
        let l = |a: &AtomicU64| a.load(Ordering::Relaxed);
        Snapshot {
            claimed: l(&self.claimed),
            completed: l(&self.completed),
            failed: l(&self.failed),
            killed: l(&self.killed),
            llm_calls: l(&self.llm_calls),
            llm_errors: l(&self.llm_errors),
            cost_usd: l(&self.cost_nano_usd) as f64 / 1e9,
            vms: l(&self.vms),
            queued: l(&self.queued),
        }
    }
}

/// One progress line.
pub(crate) fn line(s: &Snapshot, elapsed: Duration, spans_per_s: f64, firing: usize) -> String {
    let secs = elapsed.as_secs();
    format!(
        "{:02}:{:02}  tickets {} done, {} failed, {} killed  queue {}  VMs {}  {:.0} spans/s  LLM {} calls, {} errors, ${:.2}  alerts firing {firing}",
        secs / 60,
        secs % 60,
        s.completed,
        s.failed,
        s.killed,
        s.queued,
        s.vms,
        spans_per_s,
        s.llm_calls,
        s.llm_errors,
        s.cost_usd
    )
}

/// Prints progress until `stop` fires: in place on a terminal (twice a
/// second), as plain lines otherwise (every 5 s).
pub(crate) async fn report(
    progress: std::sync::Arc<Progress>,
    store: Store,
    alerts: Option<std::sync::Arc<swarmscope_alerts::AlertEngine>>,
    mut stop: tokio::sync::watch::Receiver<bool>,
) {
    let tty = std::io::stdout().is_terminal();
    let every = if tty {
        Duration::from_millis(500)
    } else {
        Duration::from_secs(5)
    };
    let start = Instant::now();
    let mut last = (Instant::now(), store.writer().stats().spans_committed);
    loop {
        tokio::select! {
            _ = tokio::time::sleep(every) => {}
            _ = stop.changed() => break,
        }
        let committed = store.writer().stats().spans_committed;
        let rate = (committed - last.1) as f64 / last.0.elapsed().as_secs_f64().max(1e-3);
        last = (Instant::now(), committed);
        let firing = alerts.as_ref().map_or(0, |a| {
            a.active(None)
                .iter()
                .filter(|x| x.state == swarmscope_alerts::AlertStatus::Firing)
                .count()
        });
        let text = line(&progress.snapshot(), start.elapsed(), rate, firing);
        let mut out = std::io::stdout().lock();
        let _ = if tty {
            write!(out, "\r\x1b[2K{text}")
        } else {
            writeln!(out, "{text}")
        };
        let _ = out.flush();
    }
    if tty {
        let mut out = std::io::stdout().lock();
        let _ = writeln!(out);
    }
}
