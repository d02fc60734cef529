//! The fleet bench in a reduced, bounded form: 100 VMs flushing at once
//! through the SDK, once with room and once against a collector overloaded
//! twenty times over its queue, so that it answers 503, the SDK backs off
//! and spools, and the spools are shipped. Nothing may be lost or doubled
//! (the bench fails if so). The full run: `swarmscope bench fleet`.

mod support;

use support::run;

#[test]
fn a_burst_of_flushes_is_stored_whole() {
    let (code, out, err) = run(&["bench", "fleet", "--agents", "100"]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("nothing lost, nothing duplicated"), "{out}");
    assert!(
        out.contains("stored: 10000 spans (expected 10000), 5000 log lines"),
        "{out}"
    );
}

#[test]
fn an_overloaded_collector_sheds_load_and_the_spools_make_up_for_it() {
    let (code, out, err) = run(&[
        "bench",
        "fleet",
        "--agents",
        "100",
        "--queue-capacity",
        "500",
        "--deadline-secs",
        "1",
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("nothing lost, nothing duplicated"), "{out}");
    // The collector refused (503) until the VMs' flush deadline passed, and
    // they spooled the rest; the spools were then shipped.
    let spooled = out
        .lines()
        .find_map(|l| l.split("; spooled ").nth(1))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(0);
    assert!(spooled > 0, "nothing was spooled under overload: {out}");
    assert!(out.contains("spool push:"), "{out}");
    let refused: f64 = out
        .lines()
        .find_map(|l| l.strip_prefix("collector answered 503 (queue full) to "))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or(0.0);
    assert!(refused > 0.0, "no 503 under overload: {out}");
}

#[test]
fn bad_fleet_flags_are_refused_with_one_line() {
    for args in [
        &["bench", "fleet", "--agents", "0"][..],
        &["bench", "fleet", "--spans", "0"][..],
    ] {
        let (code, _, err) = run(args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains("--agents"), "{err}");
    }
}
