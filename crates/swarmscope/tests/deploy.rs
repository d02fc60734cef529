//! The files under deploy/ pass their own tools: `promtool check rules`,
//! `promtool test rules` (each alert fires at its threshold, stays quiet
//! just under it and just short of its `for`), `promtool check config`, and
//! `amtool check-config` plus routing of warnings to Slack and criticals to
//! PagerDuty. The tools come from Debian's prometheus and
//! prometheus-alertmanager packages (scripts/test installs them).

use std::path::{Path, PathBuf};
use std::process::Command;

fn deploy() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy")
}

fn tool(name: &str, args: &[&str]) -> (bool, String) {
    let out = Command::new(name)
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("{name} is not installed ({e}); scripts/test installs it"));
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.success(), text)
}

fn path(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

#[test]
fn alert_rules_pass_promtool_check_and_their_unit_tests() {
    let rules = deploy().join("prometheus/alerts.yml");
    let (ok, out) = tool("promtool", &["check", "rules", path(&rules)]);
    assert!(ok, "{out}");
    assert!(out.contains("SUCCESS: 9 rules found"), "{out}");
    let tests = deploy().join("prometheus/tests/alerts_test.yml");
    let (ok, out) = tool("promtool", &["test", "rules", path(&tests)]);
    assert!(ok, "{out}");
    assert!(out.contains("SUCCESS"), "{out}");
}

#[test]
fn the_prometheus_config_passes_promtool() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = dir.path().join("key");
    std::fs::write(&key, "ssk_test").expect("key");
    let config = std::fs::read_to_string(deploy().join("prometheus/prometheus.yml"))
        .expect("prometheus.yml")
        .replace("/etc/prometheus/swarmscope-metrics-key", path(&key));
    std::fs::write(dir.path().join("prometheus.yml"), config).expect("write");
    std::fs::copy(
        deploy().join("prometheus/alerts.yml"),
        dir.path().join("alerts.yml"),
    )
    .expect("copy rules");
    let (ok, out) = tool(
        "promtool",
        &["check", "config", path(&dir.path().join("prometheus.yml"))],
    );
    assert!(ok, "{out}");
}

#[test]
fn alertmanager_routes_warnings_to_slack_and_criticals_to_pagerduty() {
    let config = deploy().join("alertmanager/alertmanager.yml");
    let (ok, out) = tool("amtool", &["check-config", path(&config)]);
    assert!(ok, "{out}");
    let route = |labels: &[&str]| {
        let mut args = vec!["config", "routes", "test", "--config.file", path(&config)];
        args.extend_from_slice(labels);
        let (ok, out) = tool("amtool", &args);
        assert!(ok, "{out}");
        out.trim().to_owned()
    };
    let critical = route(&[
        "alertname=VMSpawnFailure",
        "severity=critical",
        "tenant_id=acme",
    ]);
    let warning = route(&[
        "alertname=QueueBacklog",
        "severity=warning",
        "tenant_id=acme",
    ]);
    assert!(critical.to_lowercase().contains("pagerduty"), "{critical}");
    assert!(warning.to_lowercase().contains("slack"), "{warning}");
}
