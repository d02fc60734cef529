//! Log lines queued for the collector. The JSON layer pushes each rendered
//! line; the tracer's flush drains them into one `POST /api/logs` (as
//! newline-delimited JSON) alongside the spans. The queue is bounded: when
//! full, the oldest lines are dropped and counted, never blocking the program.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use crossbeam_queue::ArrayQueue;

/// A bounded, lock-free queue of rendered log lines; cheap to clone.
#[derive(Clone)]
pub struct LogBuffer {
    queue: Arc<ArrayQueue<Vec<u8>>>,
    dropped: Arc<AtomicU64>,
}

impl std::fmt::Debug for LogBuffer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LogBuffer")
            .field("len", &self.len())
            .field("dropped", &self.dropped())
            .finish()
    }
}

impl LogBuffer {
    /// A queue holding at most `capacity` lines.
    pub fn new(capacity: usize) -> LogBuffer {
        LogBuffer {
            queue: Arc::new(ArrayQueue::new(capacity.max(1))),
            dropped: Arc::new(AtomicU64::new(0)),
        }
    }

    /// Queues one line (with its trailing newline).
    pub fn push(&self, line: &[u8]) {
        if self.queue.force_push(line.to_vec()).is_some() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// Takes every queued line, oldest first.
    pub fn drain(&self) -> Vec<Vec<u8>> {
        std::iter::from_fn(|| self.queue.pop()).collect()
    }

    /// Lines dropped because the queue was full.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }

    /// Lines waiting.
    pub fn len(&self) -> usize {
        self.queue.len()
    }

    /// Whether no line is waiting.
    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}
