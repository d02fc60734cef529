//! The files under deploy/ pass their own tools: `promtool check rules`,
//! `promtool test rules` (each alert fires at its threshold, stays quiet
//! just under it and just short of its `for`), `promtool check config`, and
//! `amtool check-config` plus routing of warnings to Slack and criticals to
//! PagerDuty; the systemd unit passes `systemd-analyze verify` and keeps its
//! hardening, the example config starts, the Caddy snippet passes `caddy
//! validate`, and the PM2 entry loads in Node. The tools come from Debian's
//! prometheus, prometheus-alertmanager, systemd, caddy and nodejs packages
//! (scripts/test installs them).

mod support;

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

/// The systemd unit passes `systemd-analyze verify` (with ExecStart pointing
/// at the built binary, which /usr/local/bin does not hold here) and keeps
/// the hardening score of `systemd-analyze security` at 2.0 or better.
#[test]
fn the_systemd_unit_verifies_and_stays_hardened() {
    let unit = std::fs::read_to_string(deploy().join("systemd/swarmscope.service")).expect("unit");
    assert!(
        unit.contains("ExecStart=/usr/local/bin/swarmscope serve"),
        "{unit}"
    );
    let tmp = tempfile::tempdir().expect("tempdir");
    let copy = tmp.path().join("swarmscope.service");
    std::fs::write(
        &copy,
        unit.replace(
            "/usr/local/bin/swarmscope",
            env!("CARGO_BIN_EXE_swarmscope"),
        ),
    )
    .expect("copy");
    let (ok, text) = tool("systemd-analyze", &["verify", path(&copy)]);
    assert!(ok && text.trim().is_empty(), "{text}");
    let (_, text) = tool(
        "systemd-analyze",
        &["security", "--offline=yes", path(&copy)],
    );
    let score: f64 = text
        .lines()
        .find_map(|l| {
            l.split("Overall exposure level for swarmscope.service: ")
                .nth(1)
        })
        .and_then(|rest| rest.split_whitespace().next()?.parse().ok())
        .unwrap_or_else(|| panic!("no exposure level in: {text}"));
    assert!(score <= 2.0, "exposure {score}: {text}");
}

/// The example config the unit loads starts a collector that asks for keys,
/// and accepts exactly the body size the Caddy snippet lets through.
#[test]
fn the_example_config_starts_and_matches_the_caddy_body_limit() {
    let text = std::fs::read_to_string(deploy().join("systemd/swarmscope.toml")).expect("config");
    let config = swarmscope_server::config::Config::parse(&text).expect("valid config");
    assert!(!config.keys.is_empty(), "the example must not run open");
    let caddy = std::fs::read_to_string(deploy().join("caddy/Caddyfile")).expect("Caddyfile");
    assert!(caddy.contains("max_size 5MiB"), "{caddy}");
    assert_eq!(config.max_body_bytes, 5 * 1024 * 1024);
    let server = support::Server::with_config(&text);
    assert!(support::http_ok(
        &support::host_port(&server.base),
        "/healthz"
    ));
    assert!(!support::http_ok(
        &support::host_port(&server.base),
        "/metrics"
    ));
}

/// Debian's Caddy accepts the snippet as it is shipped.
#[test]
fn the_caddyfile_validates() {
    let file = deploy().join("caddy/Caddyfile");
    let (ok, text) = tool(
        "caddy",
        &[
            "validate",
            "--config",
            path(&file),
            "--adapter",
            "caddyfile",
        ],
    );
    assert!(ok && text.contains("Valid configuration"), "{text}");
}

/// The PM2 entry loads in Node, gives the tracer time to flush on stop, and
/// sets only variables the Node tracer reads.
#[test]
fn the_pm2_entry_loads_and_gives_the_tracer_time_to_flush() {
    let script = r#"
const fs = require('fs');
const c = require(process.argv[1]);
const app = c.apps[0];
const tracer = fs.readFileSync(process.argv[2], 'utf8');
if (!(app.kill_timeout >= 10000)) throw new Error('kill_timeout ' + app.kill_timeout);
for (const k of Object.keys(app.env || {}).filter(k => k.startsWith('SWARMSCOPE_'))) {
  if (!tracer.includes(k)) throw new Error(k + ' is not read by tracer.js');
}
if (!app.env.SWARMSCOPE_URL) throw new Error('no SWARMSCOPE_URL');
console.log('ok', app.name);
"#;
    let ecosystem = deploy().join("pm2/ecosystem.config.js");
    let tracer = deploy().join("../clients/node/tracer.js");
    let (ok, text) = tool("node", &["-e", script, path(&ecosystem), path(&tracer)]);
    assert!(ok && text.starts_with("ok "), "{text}");
}
