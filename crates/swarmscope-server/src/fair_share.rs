//! Fair shares: what one caller may hold of the collector's shared ingest
//! resources at once, so a flooding or hostile tenant waits on its own share
//! and never stalls the others.
//!
//! Two resources are shared. Decode memory: every ingest request reserves,
//! before it reads its body and again before it parses it, the bytes that
//! step will take (measured by [`swarmscope_model::scan`] and
//! [`swarmscope_otlp::scan`] without parsing), first from its tenant's share,
//! then from the collector's total. The writer queue: a tenant may have at
//! most its share of the queue's spans waiting for commit. A request that
//! cannot get its memory within a short wait gets 503 with `Retry-After`; one
//! that would need more than a whole share gets 413, since no retry can help.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::http::StatusCode;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use crate::error::ApiError;

/// Callers tracked at once; idle ones are forgotten first.
const MAX_TRACKED: usize = 10_000;

/// Reads (searches, trace lookups) one caller may run at once: half the
/// store's read connections, so one caller alone never holds them all.
pub const READS_PER_CALLER: usize = 4;

/// Live feeds (`GET /api/events`) one caller may hold open: a quarter of
/// the collector's 64, so one tenant's tabs cannot take them all.
pub const LIVE_PER_CALLER: usize = 16;

/// VM-termination closes one caller may have in flight: each searches the
/// VM's open spans in the writer.
pub const CLOSES_PER_CALLER: usize = 8;

/// The shares of one caller.
#[derive(Clone)]
struct Share {
    memory_kib: Arc<Semaphore>,
    queued_spans: Arc<Semaphore>,
    reads: Arc<Semaphore>,
    live: Arc<Semaphore>,
    closes: Arc<Semaphore>,
}

/// Per-caller and total bounds on decode memory and queued spans.
pub struct FairShare {
    total_kib: Arc<Semaphore>,
    share_kib: u32,
    share_spans: u32,
    wait: Duration,
    callers: Mutex<HashMap<String, Share>>,
}

/// Memory or queue room held by one request; given back when dropped.
#[derive(Default)]
pub struct Reservation {
    permits: Vec<OwnedSemaphorePermit>,
}

impl Reservation {
    /// Adds another reservation's room to this one.
    pub fn merge(&mut self, other: Reservation) {
        self.permits.extend(other.permits);
    }

    /// Gives back all but `bytes` of a memory reservation (the caller's
    /// share and the total alike), once what it guarded has shrunk.
    pub fn shrink_to(&mut self, bytes: usize) {
        let keep = kib(bytes) as usize;
        for permit in &mut self.permits {
            let n = permit.num_permits();
            if n > keep {
                drop(permit.split(n - keep));
            }
        }
    }
}

fn kib(bytes: usize) -> u32 {
    u32::try_from(bytes.div_ceil(1024).max(1)).unwrap_or(u32::MAX)
}

impl FairShare {
    /// `total_bytes` of decode memory for everyone, `share_bytes` of it and
    /// `share_spans` queued spans for any one caller; a request waits up to
    /// `wait` for room.
    pub fn new(
        total_bytes: usize,
        share_bytes: usize,
        share_spans: usize,
        wait: Duration,
    ) -> FairShare {
        let total = kib(total_bytes);
        FairShare {
            total_kib: Arc::new(Semaphore::new(total as usize)),
            share_kib: kib(share_bytes).min(total),
            share_spans: u32::try_from(share_spans.max(1)).unwrap_or(u32::MAX),
            wait,
            callers: Mutex::new(HashMap::new()),
        }
    }

    fn share(&self, caller: &str) -> Share {
        let mut map = self.callers.lock().unwrap_or_else(|p| p.into_inner());
        if map.len() >= MAX_TRACKED && !map.contains_key(caller) {
            // Forget callers holding nothing.
            let (kib, spans) = (self.share_kib as usize, self.share_spans as usize);
            map.retain(|_, s| {
                s.memory_kib.available_permits() < kib
                    || s.queued_spans.available_permits() < spans
                    || s.reads.available_permits() < READS_PER_CALLER
                    || s.live.available_permits() < LIVE_PER_CALLER
                    || s.closes.available_permits() < CLOSES_PER_CALLER
            });
        }
        map.entry(caller.to_owned())
            .or_insert_with(|| Share {
                memory_kib: Arc::new(Semaphore::new(self.share_kib as usize)),
                queued_spans: Arc::new(Semaphore::new(self.share_spans as usize)),
                reads: Arc::new(Semaphore::new(READS_PER_CALLER)),
                live: Arc::new(Semaphore::new(LIVE_PER_CALLER)),
                closes: Arc::new(Semaphore::new(CLOSES_PER_CALLER)),
            })
            .clone()
    }

    /// Reserves `bytes` of decode memory for `caller`, waiting briefly for room.
    pub async fn memory(&self, caller: &str, bytes: usize) -> Result<Reservation, ApiError> {
        let need = kib(bytes);
        if need > self.share_kib {
            return Err(ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!(
                    "decoding this request would take about {} MiB, more than one caller's share of {} MiB: send fewer or smaller items per request",
                    need / 1024 + 1,
                    self.share_kib / 1024
                ),
            )
            .field("body"));
        }
        let own = self.share(caller).memory_kib;
        let acquire = async {
            let mine = own.acquire_many_owned(need).await.ok()?;
            let total = Arc::clone(&self.total_kib)
                .acquire_many_owned(need)
                .await
                .ok()?;
            Some(Reservation {
                permits: vec![mine, total],
            })
        };
        match tokio::time::timeout(self.wait, acquire).await {
            Ok(Some(r)) => Ok(r),
            _ => Err(busy(
                "the collector's decode memory is in use; retry shortly",
            )),
        }
    }

    /// Takes room for `spans` in `caller`'s share of the writer queue, or
    /// fails at once when the share is full.
    pub fn queue(&self, caller: &str, spans: usize) -> Result<Reservation, ApiError> {
        let n = u32::try_from(spans.max(1))
            .unwrap_or(u32::MAX)
            .min(self.share_spans);
        let queue = self.share(caller).queued_spans;
        match queue.try_acquire_many_owned(n) {
            Ok(p) => Ok(Reservation { permits: vec![p] }),
            Err(_) => Err(busy(
                "this caller's share of the ingest queue is full; retry shortly",
            )),
        }
    }
}

impl FairShare {
    /// A live-feed slot in `caller`'s share, or 503 at once.
    pub fn live(&self, caller: &str) -> Result<Reservation, ApiError> {
        let live = self.share(caller).live;
        live.try_acquire_owned()
            .map(|p| Reservation { permits: vec![p] })
            .map_err(|_| {
                busy(&format!(
                    "this caller already holds {LIVE_PER_CALLER} live feeds, its share"
                ))
            })
    }

    /// A VM-close slot in `caller`'s share, waiting briefly for one.
    pub async fn close(&self, caller: &str) -> Result<Reservation, ApiError> {
        let closes = self.share(caller).closes;
        match tokio::time::timeout(self.wait, closes.acquire_owned()).await {
            Ok(Ok(p)) => Ok(Reservation { permits: vec![p] }),
            _ => Err(busy(
                "this caller already has as many VM closes in flight as it may; retry shortly",
            )),
        }
    }

    /// A read slot in `caller`'s share, waiting briefly for one.
    pub async fn read(&self, caller: &str) -> Result<Reservation, ApiError> {
        let reads = self.share(caller).reads;
        match tokio::time::timeout(self.wait, reads.acquire_owned()).await {
            Ok(Ok(p)) => Ok(Reservation { permits: vec![p] }),
            _ => Err(busy(
                "this caller already runs as many searches as it may at once; retry shortly",
            )),
        }
    }
}

fn busy(message: &str) -> ApiError {
    let mut e = ApiError::new(StatusCode::SERVICE_UNAVAILABLE, message);
    e.retry_after = Some(1);
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn one_caller_cannot_take_another_callers_memory() {
        let shares = FairShare::new(8 << 20, 4 << 20, 100, Duration::from_millis(50));
        let a = shares.memory("a", 4 << 20).await.expect("a's whole share");
        // a waits on its own share; b still gets room.
        let e = shares.memory("a", 1024).await.err().expect("a is full");
        assert_eq!(e.status, StatusCode::SERVICE_UNAVAILABLE);
        let b = shares.memory("b", 4 << 20).await.expect("b's share");
        // The total is used up now: a third caller waits, then 503.
        assert!(shares.memory("c", 1024).await.is_err());
        drop(a);
        assert!(shares.memory("c", 1024).await.is_ok());
        drop(b);
        let e = shares
            .memory("a", 5 << 20)
            .await
            .err()
            .expect("over a share");
        assert_eq!(e.status, StatusCode::PAYLOAD_TOO_LARGE);
    }

    #[test]
    fn a_callers_queue_share_is_its_own() {
        let shares = FairShare::new(1 << 20, 1 << 20, 100, Duration::from_millis(1));
        let held = shares.queue("a", 100).expect("room");
        assert!(shares.queue("a", 1).is_err());
        assert!(shares.queue("b", 100).is_ok());
        drop(held);
        assert!(shares.queue("a", 1).is_ok());
    }
}
