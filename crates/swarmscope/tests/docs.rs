//! The docs cannot drift from the code: every fenced block in README.md,
//! docs/*.md and deploy/README.md is checked by its language.
//!
//! - ` ```sh `: run by bash (`set -euo pipefail`, 60 s at most) with the
//!   real `swarmscope` first on PATH, in a fresh directory per file. README
//!   blocks run against an open collector (the quickstart); the others
//!   against a collector with keys, seeded with a small fixture, with
//!   `SWARMSCOPE_URL` and an admin `SWARMSCOPE_API_KEY` exported.
//!   `127.0.0.1:4318` becomes the collector's address, and the placeholders
//!   TRACE_ID, TICKET_ID, TENANT, DATA_DIR and MOUNT the fixture's values.
//! - ` ```sh no-run `: for commands that run for long or need root. Not run,
//!   but every `swarmscope SUBCOMMAND --flag` must exist (checked against
//!   `--help`), and every `cargo test/bench -p CRATE [--test NAME]` must name
//!   a real crate and test.
//! - ` ```toml `: each block is a complete swarmscope config (`Config::parse`).
//! - ` ```json `: valid JSON. ` ```yaml `: valid YAML; an OpenTelemetry
//!   Collector config must define every component its pipelines use.
//! - ` ```promql `: every expression runs as an instant query on a real
//!   Prometheus scraping the collector.
//! - ` ```rust ` (compiled in examples/ instead) and plain ` ``` ` blocks
//!   (diagrams, sample output) are not checked; any other language fails.

mod support;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::json;
use support::{config_with_keys, host_port, Prometheus, Server, BIN};

/// One fenced block.
#[derive(Debug)]
struct Block {
    file: String,
    line: usize,
    lang: String,
    no_run: bool,
    text: String,
}

impl Block {
    fn at(&self) -> String {
        format!("{}:{}", self.file, self.line)
    }
}

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

/// The markdown files checked, in a fixed order.
fn markdown_files() -> Vec<PathBuf> {
    let root = repo();
    let mut files = vec![root.join("README.md")];
    let mut docs: Vec<PathBuf> = std::fs::read_dir(root.join("docs"))
        .expect("docs/")
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "md"))
        .collect();
    docs.sort();
    files.extend(docs);
    let deploy = root.join("deploy/README.md");
    if deploy.exists() {
        files.push(deploy);
    }
    files
}

fn blocks_of(path: &Path) -> Vec<Block> {
    let text = std::fs::read_to_string(path).expect("read markdown");
    let file = path
        .strip_prefix(repo())
        .unwrap_or(path)
        .display()
        .to_string()
        .trim_start_matches("crates/swarmscope/../../")
        .to_owned();
    let mut out = Vec::new();
    let mut open: Option<(usize, String, bool, Vec<&str>)> = None;
    for (i, line) in text.lines().enumerate() {
        let fence = line.trim_start().strip_prefix("```");
        match (&mut open, fence) {
            (None, Some(info)) => {
                let mut words = info.split_whitespace();
                let lang = words.next().unwrap_or("").to_owned();
                let no_run = words.any(|w| w == "no-run");
                open = Some((i + 1, lang, no_run, Vec::new()));
            }
            (Some(_), Some(_)) => {
                if let Some((line, lang, no_run, lines)) = open.take() {
                    out.push(Block {
                        file: file.clone(),
                        line,
                        lang,
                        no_run,
                        text: lines.join("\n"),
                    });
                }
            }
            (Some((_, _, _, lines)), None) => lines.push(line),
            (None, None) => {}
        }
    }
    assert!(open.is_none(), "{file}: a code fence is never closed");
    out
}

/// Replaces `word` where it stands alone (not part of a longer name).
fn replace_word(text: &str, word: &str, with: &str) -> String {
    let ident = |c: Option<char>| c.is_some_and(|c| c.is_ascii_alphanumeric() || c == '_');
    let mut out = String::with_capacity(text.len());
    let mut copied = 0;
    for (i, _) in text.match_indices(word) {
        let before = text[..i].chars().last();
        let after = text[i + word.len()..].chars().next();
        if i >= copied && !ident(before) && !ident(after) {
            out.push_str(&text[copied..i]);
            out.push_str(with);
            copied = i + word.len();
        }
    }
    out.push_str(&text[copied..]);
    out
}

/// The binary's name as the docs spell it, in every form.
fn plain_binary(text: &str) -> String {
    text.replace("cargo run --release -p swarmscope --", "swarmscope")
        .replace("target/release/swarmscope", "swarmscope")
        .replace("target/debug/swarmscope", "swarmscope")
}

/// What a runnable block runs against.
struct Target {
    url: String,
    key: Option<String>,
    words: Vec<(&'static str, String)>,
}

impl Target {
    fn script(&self, text: &str) -> String {
        let mut s = plain_binary(text)
            .replace("http://127.0.0.1:4318", &self.url)
            .replace("127.0.0.1:4318", &host_port(&self.url));
        for (word, with) in &self.words {
            s = replace_word(&s, word, with);
        }
        if let Some(key) = &self.key {
            s = s.replace("ssk_…", key);
        }
        s
    }
}

/// Runs a script with bash; Err(output) unless it exits 0 within 60 s.
fn run_sh(script: &str, dir: &Path, target: &Target) -> Result<(), String> {
    let bin_dir = Path::new(BIN).parent().expect("bin dir");
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut cmd = Command::new("bash");
    // Its own process group, so a timeout kills what the script started too.
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    cmd.arg("-c")
        .arg(format!("set -euo pipefail\n{script}"))
        .current_dir(dir)
        .env("PATH", path)
        .env("SWARMSCOPE_URL", &target.url)
        .env("SWARMSCOPE_LOG", "warn")
        .env_remove("SWARMSCOPE_CONFIG")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    match &target.key {
        Some(k) => cmd.env("SWARMSCOPE_API_KEY", k),
        None => cmd.env_remove("SWARMSCOPE_API_KEY"),
    };
    let mut child = cmd.spawn().map_err(|e| format!("bash: {e}"))?;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        match child.try_wait() {
            Ok(Some(_)) => break,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = Command::new("kill")
                    .args(["-KILL", "--", &format!("-{}", child.id())])
                    .status();
                let _ = child.kill();
                break;
            }
        }
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(format!(
            "exit {:?}\n--- script\n{script}\n--- stdout\n{}\n--- stderr\n{}",
            out.status.code(),
            tail(&String::from_utf8_lossy(&out.stdout)),
            tail(&String::from_utf8_lossy(&out.stderr))
        ))
    }
}

fn tail(s: &str) -> String {
    let lines: Vec<&str> = s.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}

/// Shell commands of a block: continuation lines joined, comments dropped,
/// split at `;`, `&&`, `||` and `|`.
fn commands(text: &str) -> Vec<Vec<String>> {
    let joined = text.replace("\\\n", " ");
    let mut out = Vec::new();
    for line in joined.lines() {
        let line = match line.find(" #") {
            Some(i) => &line[..i],
            None if line.trim_start().starts_with('#') => "",
            None => line,
        };
        let line = line.replace("&&", ";").replace("||", ";").replace('|', ";");
        for part in line.split(';') {
            let words: Vec<String> = part.split_whitespace().map(str::to_owned).collect();
            if !words.is_empty() {
                out.push(words);
            }
        }
    }
    out
}

/// The checks of a `no-run` block: each `swarmscope` command's subcommand
/// and flags exist; each `cargo test|bench -p` names a real crate and test.
fn check_no_run(block: &Block) -> Vec<String> {
    let mut errors = Vec::new();
    for words in commands(&plain_binary(&block.text)) {
        let words: Vec<&str> = words
            .iter()
            .map(String::as_str)
            .skip_while(|w| w.contains('=') && !w.starts_with('-'))
            .collect();
        match words.first() {
            Some(&"swarmscope") => {
                let subs: Vec<&str> = words[1..]
                    .iter()
                    .take_while(|w| !w.starts_with('-'))
                    .copied()
                    .collect();
                // The longest leading run of words that clap knows as a subcommand.
                let help = (1..=subs.len().min(2)).rev().find_map(|n| {
                    let out = Command::new(BIN)
                        .args(&subs[..n])
                        .arg("--help")
                        .output()
                        .ok()?;
                    let text = String::from_utf8_lossy(&out.stdout).into_owned();
                    (out.status.success() && text.contains("Usage: swarmscope"))
                        .then_some((n, text))
                });
                let Some((n, help)) = help else {
                    errors.push(format!(
                        "{}: `swarmscope {}` is not a subcommand",
                        block.at(),
                        subs.join(" ")
                    ));
                    continue;
                };
                for flag in words.iter().filter(|w| w.starts_with("--")) {
                    let flag = flag.split('=').next().unwrap_or(flag);
                    if !help.contains(&format!("{flag} ")) && !help.contains(&format!("{flag}\n")) {
                        errors.push(format!(
                            "{}: `swarmscope {}` has no flag {flag}",
                            block.at(),
                            subs[..n].join(" ")
                        ));
                    }
                }
            }
            Some(&"cargo") if matches!(words.get(1), Some(&"test") | Some(&"bench")) => {
                let arg = |name: &str| {
                    words
                        .iter()
                        .position(|w| *w == name)
                        .and_then(|i| words.get(i + 1))
                        .copied()
                };
                if let Some(krate) = arg("-p") {
                    let dir = repo().join("crates").join(krate);
                    if !dir.join("Cargo.toml").exists() {
                        errors.push(format!("{}: no crate {krate}", block.at()));
                    } else if let Some(test) = arg("--test") {
                        if !dir.join("tests").join(format!("{test}.rs")).exists() {
                            errors.push(format!("{}: {krate} has no test {test}", block.at()));
                        }
                    } else if words[1] == "bench" && !dir.join("benches").is_dir() {
                        errors.push(format!("{}: {krate} has no benches", block.at()));
                    }
                }
            }
            _ => {}
        }
    }
    errors
}

/// A Python that can `import yaml`.
fn python_with_yaml() -> Option<PathBuf> {
    let mut candidates = Vec::new();
    if let Ok(dir) = std::env::var("SWARMSCOPE_OTEL_DIR") {
        candidates.push(PathBuf::from(dir).join("py/bin/python"));
    }
    candidates.push(repo().join("target/otel/py/bin/python"));
    candidates.push(PathBuf::from("python3"));
    candidates.into_iter().find(|p| {
        Command::new(p)
            .args(["-c", "import yaml"])
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// Parses YAML; for an OpenTelemetry Collector config, also checks that every
/// component a pipeline names is defined.
const YAML_CHECK: &str = r#"
import sys, yaml
doc = yaml.safe_load(sys.stdin)
if isinstance(doc, dict) and "service" in doc:
    for name, p in doc["service"]["pipelines"].items():
        for kind in ("receivers", "processors", "exporters"):
            for c in p.get(kind, []):
                if c not in (doc.get(kind) or {}):
                    sys.exit(f"pipeline {name} uses {kind[:-1]} {c}, which is not defined")
"#;

fn check_yaml(block: &Block, python: &Path) -> Result<(), String> {
    let mut child = Command::new(python)
        .args(["-c", YAML_CHECK])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| e.to_string())?;
    {
        use std::io::Write;
        let mut stdin = child.stdin.take().ok_or("stdin")?;
        stdin
            .write_all(block.text.as_bytes())
            .map_err(|e| e.to_string())?;
    }
    let out = child.wait_with_output().map_err(|e| e.to_string())?;
    if out.status.success() {
        Ok(())
    } else {
        Err(tail(&String::from_utf8_lossy(&out.stderr)))
    }
}

const TRACE: &str = "9f3c2a1e-5b7d-4c8a-9e0f-1a2b3c4d5e6f";
const TICKET: &str = "ticket_docs";

/// A ticket's trace with a failed VM spawn, a Claude call and log lines.
async fn seed_fixture(server: &Server, key: &str) {
    let span = |id: &str, parent: Option<&str>, name: &str, start: &str, end: &str, ms: u64| {
        let mut s = json!({"ticketId": TICKET, "agentId": "agent_docs", "tenantId": "acme",
            "trace_id": TRACE, "id": id, "name": name, "startTime": start, "endTime": end,
            "durationMs": ms, "status": "ok", "attributes": {}, "events": []});
        if let Some(p) = parent {
            s["parent_span_id"] = json!(p);
        }
        s
    };
    let root = "0d9e8f7a-1b2c-4d3e-8f4a-5b6c7d8e9f01";
    let mut spawn = span(
        "1a2b3c4d-5e6f-4a7b-8c9d-0e1f2a3b4c5d",
        Some(root),
        "vm.spawn",
        "2025-12-14T10:30:45.200Z",
        "2025-12-14T10:30:47.200Z",
        2000,
    );
    spawn["status"] = json!("error");
    spawn["statusMessage"] = json!("firecracker: boot timeout");
    spawn["attributes"] = json!({"method": "firecracker"});
    let mut llm = span(
        "2b3c4d5e-6f7a-4b8c-9d0e-1f2a3b4c5d6e",
        Some(root),
        "llm.generate",
        "2025-12-14T10:30:47.300Z",
        "2025-12-14T10:30:49.300Z",
        2000,
    );
    llm["attributes"] =
        json!({"model": "claude-sonnet-4-5", "input_tokens": 4200, "output_tokens": 800});
    let spans = json!([
        span(
            root,
            None,
            "http.request",
            "2025-12-14T10:30:45.123Z",
            "2025-12-14T10:30:50.000Z",
            4877
        ),
        spawn,
        llm
    ]);
    let (status, body) = server.post("/api/traces", &spans, Some(key)).await;
    assert_eq!(status, 202, "{body}");
    let logs = json!([
        {"timestamp": "2025-12-14T10:30:47.200Z", "level": "error", "message": "VM spawn failed",
         "trace_id": TRACE, "tenant_id": "acme", "ticket_id": TICKET},
        {"timestamp": "2025-12-14T10:30:49.300Z", "level": "info", "message": "Ticket claimed by agent",
         "trace_id": TRACE, "tenant_id": "acme", "ticket_id": TICKET}
    ]);
    let (status, body) = server.post("/api/logs", &logs, Some(key)).await;
    assert_eq!(status, 202, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_command_and_config_in_the_docs_works() {
    let blocks: Vec<Block> = markdown_files().iter().flat_map(|p| blocks_of(p)).collect();
    assert!(blocks.len() > 50, "found only {} blocks", blocks.len());

    let open = Server::start();
    let (keys_config, keys) = config_with_keys(&[
        (None, &["admin"]),
        (Some("acme"), &["ingest", "read"]),
        (None, &["metrics"]),
    ]);
    let keyed = Server::with_config(&keys_config);
    seed_fixture(&keyed, &keys[0]).await;
    let data_dir = keyed.data_dir.join("data").display().to_string();
    let readme = Target {
        url: open.base.clone(),
        key: None,
        words: Vec::new(),
    };
    let docs = Target {
        url: keyed.base.clone(),
        key: Some(keys[0].clone()),
        words: vec![
            ("TRACE_ID", TRACE.to_owned()),
            ("TICKET_ID", TICKET.to_owned()),
            ("TENANT", "acme".to_owned()),
            ("DATA_DIR", data_dir.clone()),
            ("MOUNT", data_dir),
        ],
    };
    let promql = blocks
        .iter()
        .any(|b| b.lang == "promql")
        .then(|| Prometheus::start(&[("swarmscope", &host_port(&keyed.base))], &keys[2], ""));
    let python = python_with_yaml();

    let work = tempfile::tempdir().expect("tempdir");
    let mut errors = Vec::new();
    let mut counts: std::collections::BTreeMap<String, usize> = Default::default();
    let mut dirs: BTreeSet<String> = BTreeSet::new();
    for block in &blocks {
        let kind = if block.no_run {
            format!("{} no-run", block.lang)
        } else {
            block.lang.clone()
        };
        *counts.entry(kind).or_default() += 1;
        let result: Result<(), String> = match (block.lang.as_str(), block.no_run) {
            ("sh", true) => {
                let e = check_no_run(block);
                if e.is_empty() {
                    Ok(())
                } else {
                    Err(e.join("\n"))
                }
            }
            ("sh", false) => {
                let dir = work.path().join(block.file.replace('/', "_"));
                if dirs.insert(block.file.clone()) {
                    std::fs::create_dir_all(&dir).expect("work dir");
                }
                let target = if block.file == "README.md" {
                    &readme
                } else {
                    &docs
                };
                run_sh(&target.script(&block.text), &dir, target)
            }
            ("toml", _) => swarmscope_server::config::Config::parse(&block.text)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            ("json", _) => serde_json::from_str::<serde_json::Value>(&block.text)
                .map(|_| ())
                .map_err(|e| e.to_string()),
            ("yaml", _) => match &python {
                Some(py) => check_yaml(block, py),
                None => Err("no Python with PyYAML (scripts/test installs one into target/otel)".into()),
            },
            ("promql", _) => {
                let prom = promql.as_ref().expect("prometheus started");
                let mut failed = Vec::new();
                for expr in block.text.lines() {
                    let expr = expr.trim();
                    if expr.is_empty() || expr.starts_with('#') {
                        continue;
                    }
                    if let Err(e) = prom.query(expr).await {
                        failed.push(format!("{expr}: {e}"));
                    }
                }
                if failed.is_empty() {
                    Ok(())
                } else {
                    Err(failed.join("\n"))
                }
            }
            ("rust", _) | ("", _) => Ok(()),
            (other, _) => Err(format!(
                "code block language {other:?} is not one the docs test knows (sh, sh no-run, toml, json, yaml, promql, rust, or none)"
            )),
        };
        if let Err(e) = result {
            errors.push(format!("{} ({}):\n{e}", block.at(), block.lang));
        }
    }
    println!("checked {} blocks: {counts:?}", blocks.len());
    assert!(
        errors.is_empty(),
        "{} of {} doc blocks fail:\n\n{}",
        errors.len(),
        blocks.len(),
        errors.join("\n\n")
    );
}

#[test]
fn placeholders_are_replaced_only_as_whole_words() {
    assert_eq!(
        replace_word(
            "swarmscope trace TRACE_ID; echo $TRACE_IDS MY_TRACE_ID",
            "TRACE_ID",
            "abc"
        ),
        "swarmscope trace abc; echo $TRACE_IDS MY_TRACE_ID"
    );
    assert_eq!(
        replace_word("--tenant TENANT", "TENANT", "acme"),
        "--tenant acme"
    );
}

#[test]
fn no_run_blocks_catch_unknown_flags_and_tests() {
    let block = |text: &str| Block {
        file: "x.md".into(),
        line: 1,
        lang: "sh".into(),
        no_run: true,
        text: text.into(),
    };
    assert!(check_no_run(&block("swarmscope traces --status error --since 15m")).is_empty());
    assert!(check_no_run(&block(
        "target/release/swarmscope bench fleet --agents 1000"
    ))
    .is_empty());
    let e = check_no_run(&block("swarmscope traces --colour red"));
    assert_eq!(e.len(), 1, "{e:?}");
    assert!(e[0].contains("has no flag --colour"), "{e:?}");
    let e = check_no_run(&block("swarmscope frobnicate --now"));
    assert!(e[0].contains("is not a subcommand"), "{e:?}");
    let e = check_no_run(&block(
        "SWARMSCOPE_CRASH_ROUNDS=20 cargo test -p swarmscope --test nosuch",
    ));
    assert!(e[0].contains("has no test nosuch"), "{e:?}");
    assert!(check_no_run(&block(
        "cargo test -p swarmscope --test crash -- --nocapture"
    ))
    .is_empty());
}

/// GitHub's anchor for a markdown heading.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// Every alert's runbook_url, in the Prometheus rules and in the built-in
/// engine, lands on a section of docs/runbook.md.
#[test]
fn every_runbook_url_lands_on_a_runbook_section() {
    let runbook = std::fs::read_to_string(repo().join("docs/runbook.md")).expect("runbook");
    let anchors: BTreeSet<String> = runbook
        .lines()
        .filter_map(|l| l.strip_prefix('#'))
        .map(|l| anchor(l.trim_start_matches('#')))
        .collect();
    let rules =
        std::fs::read_to_string(repo().join("deploy/prometheus/alerts.yml")).expect("rules");
    let mut urls: Vec<String> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("runbook_url:"))
        .map(|u| u.trim().trim_matches('\'').trim_matches('"').to_owned())
        .collect();
    assert_eq!(urls.len(), 9, "{urls:?}");
    urls.extend(
        swarmscope_alerts::default_rules()
            .iter()
            .map(|r| r.runbook_url()),
    );
    for url in urls {
        let (file, section) = url.split_once('#').expect("url with an anchor");
        assert_eq!(file, "docs/runbook.md", "{url}");
        assert!(
            anchors.contains(section),
            "{url}: no such section in the runbook"
        );
    }
}
