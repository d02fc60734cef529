//! How full the data directory's filesystem is, for `swarm_disk_usage_ratio`
//! and the DiskSpaceLow/Critical alerts: the collector is the process that
//! fills that disk, so it measures it itself. [`DiskGuard`] refuses writes
//! (507) while free space is under a floor, before SQLite would fail half
//! way, and lets them through again once space returns.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use axum::http::StatusCode;

use crate::error::ApiError;

/// Bytes available to the collector on the filesystem holding `path`.
pub fn free_bytes(path: &Path) -> Option<u64> {
    let s = rustix::fs::statvfs(path).ok()?;
    Some(s.f_bavail.saturating_mul(s.f_frsize))
}

/// Refuses writes while the data disk has less than a floor of free space.
#[derive(Debug)]
pub struct DiskGuard {
    min_free: u64,
    free: AtomicU64,
    low: AtomicBool,
}

impl DiskGuard {
    /// A guard with a floor of `min_free` bytes (0: off), measured now.
    pub fn new(min_free: u64, dir: &Path) -> DiskGuard {
        let guard = DiskGuard {
            min_free,
            free: AtomicU64::new(u64::MAX),
            low: AtomicBool::new(false),
        };
        guard.update(free_bytes(dir));
        guard
    }

    /// Records a measurement (`None`: unknown, writes allowed).
    pub fn update(&self, free: Option<u64>) {
        let free = free.unwrap_or(u64::MAX);
        self.free.store(free, Ordering::Relaxed);
        let low = self.min_free > 0 && free < self.min_free;
        if self.low.swap(low, Ordering::Relaxed) != low {
            if low {
                tracing::error!(
                    free,
                    min_free = self.min_free,
                    "disk nearly full: refusing writes"
                );
            } else {
                tracing::warn!(free, "disk space is back: accepting writes");
            }
        }
    }

    /// Ok while there is room; 507 with `Retry-After` when not.
    pub fn check(&self) -> Result<(), ApiError> {
        if !self.low.load(Ordering::Relaxed) {
            return Ok(());
        }
        let mut e = ApiError::new(
            StatusCode::INSUFFICIENT_STORAGE,
            format!(
                "the disk holding the data directory is nearly full ({} bytes free, {} needed); writes resume when space returns",
                self.free.load(Ordering::Relaxed),
                self.min_free
            ),
        );
        e.retry_after = Some(30);
        Err(e)
    }

    /// Measures `dir` every two seconds, forever (spawn it).
    pub async fn watch(self: Arc<Self>, dir: PathBuf) {
        loop {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let d = dir.clone();
            let free = tokio::task::spawn_blocking(move || free_bytes(&d))
                .await
                .ok()
                .flatten();
            self.update(free);
        }
    }
}

/// Used fraction (0–1) of the filesystem holding `path`, as `df` computes it
/// (space reserved for root counts as unavailable); `None` if unknown.
pub fn usage_ratio(path: &Path) -> Option<f64> {
    let s = rustix::fs::statvfs(path).ok()?;
    let used = s.f_blocks.saturating_sub(s.f_bfree);
    let usable = used + s.f_bavail;
    (usable > 0).then(|| used as f64 / usable as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_guard_refuses_under_the_floor_and_recovers_when_space_returns() {
        let dir = tempfile::tempdir().expect("tempdir");
        let guard = DiskGuard::new(1_000, dir.path());
        guard.update(Some(5_000));
        assert!(guard.check().is_ok());
        guard.update(Some(999));
        let e = guard.check().expect_err("under the floor");
        assert_eq!(e.status, StatusCode::INSUFFICIENT_STORAGE);
        assert_eq!(e.retry_after, Some(30));
        assert!(e.message.contains("999 bytes free"));
        guard.update(Some(1_000));
        assert!(guard.check().is_ok(), "recovers by itself");
        let off = DiskGuard::new(0, dir.path());
        off.update(Some(0));
        assert!(off.check().is_ok(), "a floor of 0 is off");
    }

    #[test]
    fn the_ratio_of_a_real_directory_is_a_fraction() {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = usage_ratio(dir.path()).expect("statvfs works on a temp dir");
        assert!((0.0..=1.0).contains(&r), "{r}");
        assert!(usage_ratio(&dir.path().join("missing")).is_none());
    }
}
