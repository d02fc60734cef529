//! Spans that never end. An agent killed mid-work leaves open spans (sent
//! announced at start, or spooled unended). The collector closes them as
//! `error` with `swarm.incomplete = true` — when the VM is reported dead
//! (`POST /api/vms/{vm_id}/terminated`), or, by the task here, when their
//! trace has had no new data for `incomplete_after_secs` — so the trace shows
//! where the agent stopped. A genuine end that arrives later replaces it.

use std::time::Duration;

use swarmscope_model::timestamp::now_nanos;
use swarmscope_store::{CloseScope, Writer};

/// Every `interval`, closes open spans of traces silent for `after`. Runs
/// until the writer closes.
pub async fn close_silent_spans(writer: Writer, after: Duration, interval: Duration) {
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let cutoff =
            now_nanos().saturating_sub(i64::try_from(after.as_nanos()).unwrap_or(i64::MAX));
        match writer
            .close_open_spans(CloseScope::SilentSince(cutoff), 0)
            .await
        {
            Ok(out) if out.closed > 0 => {
                tracing::info!(
                    closed = out.closed,
                    "closed open spans of silent traces as incomplete"
                )
            }
            Ok(_) => {}
            Err(swarmscope_store::WriteError::Closed) => return,
            Err(e) => tracing::warn!(error = %e, "closing silent spans failed; will retry"),
        }
    }
}
