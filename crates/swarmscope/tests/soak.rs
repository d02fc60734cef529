//! `swarmscope bench soak` in its reduced CI form: half a minute at a steady
//! 1,000 spans/s with 6 s retention. The command itself fails unless memory
//! and descriptors stay flat, pruning ran, and every acknowledged span is
//! stored or was pruned; the full run is `swarmscope bench soak` (10 minutes,
//! docs/reliability.md).

mod support;

use support::run;

#[test]
fn a_steady_load_with_pruning_keeps_memory_and_descriptors_flat() {
    let (code, out, err) = run(&[
        "bench",
        "soak",
        "--secs",
        "30",
        "--rate",
        "1000",
        "--sample-secs",
        "3",
        "--retain-secs",
        "6",
    ]);
    assert_eq!(code, 0, "{out}\n{err}");
    assert!(out.contains("flat: memory and descriptors steady"), "{out}");
    let pruned: f64 = out
        .lines()
        .find_map(|l| l.strip_prefix("flat: memory and descriptors steady while retention pruned "))
        .and_then(|l| l.split_whitespace().next()?.parse().ok())
        .unwrap_or(0.0);
    // 30 s at 1,000 spans/s with 6 s kept: most of it was pruned.
    assert!(pruned >= 10_000.0, "{out}");
}

#[test]
fn soak_refuses_bad_flags() {
    let (code, _, err) = run(&["bench", "soak", "--secs", "5", "--sample-secs", "10"]);
    assert_eq!(code, 2, "{err}");
    assert!(
        err.contains("--secs must be at least three --sample-secs"),
        "{err}"
    );
}
