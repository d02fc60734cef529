//! How full the data directory's filesystem is, for `swarm_disk_usage_ratio`
//! and the DiskSpaceLow/Critical alerts: the collector is the process that
//! fills that disk, so it measures it itself.

use std::path::Path;

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
    fn the_ratio_of_a_real_directory_is_a_fraction() {
        let dir = tempfile::tempdir().expect("tempdir");
        let r = usage_ratio(dir.path()).expect("statvfs works on a temp dir");
        assert!((0.0..=1.0).contains(&r), "{r}");
        assert!(usage_ratio(&dir.path().join("missing")).is_none());
    }
}
