//! The binary's command line: serve's start, stop and refusals; keys; the
//! terminal readers; the ingest benchmark.

mod support;

use std::time::Duration;

use serde_json::json;
use support::{run, span, Server, BIN};

#[tokio::test]
async fn serve_is_ready_quickly_and_healthy() {
    let server = Server::start();
    println!("ready after {:?}", server.ready_after);
    let (status, health) = server.get("/healthz", None).await;
    assert_eq!(status, 200, "{health}");
    assert_eq!(health["status"], "ok");
    assert_eq!(health["writer"], "running");
    assert_eq!(health["disk"], "ok");
    // The startup sweeps may have a job queued at this instant.
    assert!(health["queued_spans"].is_u64(), "{health}");
    // The data is the tenants': only the collector's user may read it.
    use std::os::unix::fs::PermissionsExt;
    let mode =
        |p: &std::path::Path| std::fs::metadata(p).expect("stat").permissions().mode() & 0o777;
    assert_eq!(mode(&server.data_dir.join("data")), 0o700);
    assert_eq!(mode(&server.data_dir.join("data/swarmscope.db")), 0o600);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigterm_drains_commits_and_exits_zero() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut server = Server::start_in(tmp.path(), None, &[]);
    let base = server.base.clone();
    let client = reqwest::Client::new();
    // Many concurrent writers; stop the server while they are in flight.
    let mut tasks = Vec::new();
    for w in 0..16 {
        let (client, base) = (client.clone(), base.clone());
        tasks.push(tokio::spawn(async move {
            let mut acked = Vec::new();
            for i in 0..200 {
                let spans: Vec<_> = (0..20)
                    .map(|j| span("acme", &format!("w{w}-t{i}"), &format!("s{j}"), "x"))
                    .collect();
                match client
                    .post(format!("{base}/api/traces"))
                    .json(&spans)
                    .send()
                    .await
                {
                    Ok(r) if r.status() == 202 => acked.push(format!("w{w}-t{i}")),
                    _ => break,
                }
            }
            acked
        }));
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    let status = tokio::task::spawn_blocking(move || {
        let s = server.terminate();
        (s, server)
    })
    .await
    .expect("join");
    assert_eq!(status.0.code(), Some(0), "stderr: {}", status.1.stderr());
    drop(status);
    let mut acked = Vec::new();
    for t in tasks {
        acked.extend(t.await.expect("task"));
    }
    assert!(
        !acked.is_empty(),
        "some requests were acknowledged before the stop"
    );
    let restarted = Server::start_in(tmp.path(), None, &[]);
    for trace in &acked {
        let (status, doc) = restarted.get(&format!("/api/traces/{trace}"), None).await;
        assert_eq!(status, 200, "acknowledged trace {trace} lost");
        assert_eq!(doc["trace"]["span_count"], 20);
    }
}

#[test]
fn a_public_address_without_keys_is_refused() {
    let (code, out, err) = run(&["serve", "--listen", "0.0.0.0:0"]);
    assert_eq!(code, 2, "{out}{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert!(
        err.contains("refusing to listen on 0.0.0.0:0 without API keys")
            && err.contains("--insecure"),
        "{err}"
    );
}

#[test]
fn bad_flags_and_bad_configs_are_one_line_and_exit_2() {
    let tmp = tempfile::tempdir().expect("tmp");
    let bad = tmp.path().join("bad.toml");
    std::fs::write(&bad, "listen = \"127.0.0.1:4318\"\nmax_body_byts = 5\n").expect("write");
    let wildcard = tmp.path().join("wildcard.toml");
    std::fs::write(&wildcard, "cors_origins = [\"*\"]\n").expect("write");
    let missing = tmp.path().join("missing.toml");
    let cases: Vec<(Vec<String>, &str)> = vec![
        (vec!["serve".into(), "--bogus".into()], "--bogus"),
        (
            vec!["serve".into(), "--listen".into(), "localhost".into()],
            "localhost",
        ),
        (
            vec!["serve".into(), "--config".into(), bad.display().to_string()],
            "max_body_byts",
        ),
        (
            vec![
                "serve".into(),
                "--config".into(),
                wildcard.display().to_string(),
            ],
            "cors_origins",
        ),
        (
            vec![
                "serve".into(),
                "--config".into(),
                missing.display().to_string(),
            ],
            "missing.toml",
        ),
        (vec!["frobnicate".into()], "frobnicate"),
        (
            vec![
                "keys".into(),
                "add".into(),
                "--config".into(),
                bad.display().to_string(),
                "--role".into(),
                "read".into(),
            ],
            "--tenant",
        ),
    ];
    for (args, needle) in cases {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let (code, _, err) = run(&args);
        assert_eq!(code, 2, "{args:?}: {err}");
        assert_eq!(err.trim().lines().count(), 1, "{args:?}: {err}");
        assert!(err.contains(needle), "{args:?}: {err}");
    }
}

#[tokio::test]
async fn keys_add_prints_a_key_once_and_the_server_accepts_it() {
    let tmp = tempfile::tempdir().expect("tmp");
    let config = tmp.path().join("swarmscope.toml");
    let cfg = config.display().to_string();
    let (code, key, err) = run(&[
        "keys", "add", "--config", &cfg, "--tenant", "acme", "--role", "ingest", "--role", "read",
    ]);
    assert_eq!(code, 0, "{err}");
    let key = key.trim().to_owned();
    assert!(key.starts_with("ssk_"), "{key}");
    // A config the service reads through its group keeps its mode.
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&config, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    let (code, admin, _) = run(&["keys", "add", "--config", &cfg, "--role", "admin"]);
    assert_eq!(code, 0);
    let admin = admin.trim().to_owned();
    let mode = std::fs::metadata(&config)
        .expect("config")
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o640, "{mode:o}");
    let (code, scraper, err) = run(&["keys", "add", "--config", &cfg, "--role", "metrics"]);
    assert_eq!(code, 0, "{err}");
    let scraper = scraper.trim().to_owned();
    let (code, _, err) = run(&[
        "keys", "add", "--config", &cfg, "--role", "metrics", "--tenant", "acme",
    ]);
    assert_eq!(code, 2, "a metrics key has no tenant: {err}");
    let text = std::fs::read_to_string(&config).expect("config");
    assert!(
        !text.contains(&key) && !text.contains(&admin),
        "only hashes are stored"
    );
    assert_eq!(text.matches("sha256:").count(), 3);

    let server = Server::start_in(tmp.path(), Some(&text), &[]);
    assert_eq!(
        server
            .post("/api/traces", &span("acme", "t", "s", "x"), Some(&key))
            .await
            .0,
        202
    );
    assert_eq!(server.get("/api/traces/t", Some(&key)).await.0, 200);
    assert_eq!(server.get("/api/traces/t", None).await.0, 401);
    assert_eq!(server.span_count(Some(&admin)).await, 1);
    let scrape = reqwest::Client::new()
        .get(server.url("/metrics"))
        .bearer_auth(&scraper)
        .send()
        .await
        .expect("scrape");
    assert_eq!(scrape.status(), 200);
    assert_eq!(server.get("/api/traces/t", Some(&scraper)).await.0, 403);
}

#[tokio::test]
async fn trace_and_traces_print_what_is_stored() {
    let server = Server::start();
    let mut root = span("acme", "cli-trace", "r", "http.request");
    root["ticketId"] = json!("T-9");
    let mut child = span("acme", "cli-trace", "c", "ticket.claim");
    child["parent_span_id"] = json!("r");
    child["status"] = json!("error");
    child["status_message"] = json!("queue empty");
    child["ticketId"] = json!("T-9");
    server
        .post("/api/traces", &json!([root, child]), None)
        .await;

    let url = server.base.clone();
    let (code, out, err) = run(&["trace", "cli-trace", "--url", &url]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    assert!(
        lines[0].contains("trace cli-trace") && lines[0].contains("2 spans, 1 errors"),
        "{out}"
    );
    assert!(lines[1].trim_end().ends_with(" http.request"), "{out}");
    assert!(
        lines[2].contains("ERROR") && lines[2].contains("  ticket.claim  (queue empty)"),
        "{out}"
    );

    let (code, out, _) = run(&["traces", "--ticket", "T-9", "--url", &url]);
    assert_eq!(code, 0);
    assert!(
        out.lines()
            .nth(1)
            .is_some_and(|l| l.contains("cli-trace") && l.contains("http.request")),
        "{out}"
    );
    let (code, out, _) = run(&["traces", "--ticket", "none", "--url", &url]);
    assert_eq!(code, 0);
    assert!(out.contains("(no traces match)"));
    let (code, out, err) = run(&["traces", "--attr", "branch=main", "--url", &url]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("cli-trace"), "{out}");
    let (code, out, _) = run(&["traces", "--attr", "branch=dev", "--url", &url]);
    assert_eq!(code, 0);
    assert!(out.contains("(no traces match)"), "{out}");

    let (code, _, err) = run(&["trace", "unknown", "--url", &url]);
    assert_eq!(code, 1);
    assert!(err.contains("404"), "{err}");
    let (code, _, err) = run(&["traces", "--status", "maybe", "--url", &url]);
    assert_eq!(code, 1);
    assert!(err.contains("status must be ok or error"), "{err}");
}

#[test]
fn bench_ingest_runs_and_verifies() {
    let out = std::process::Command::new(BIN)
        .args([
            "bench", "ingest", "--agents", "4", "--traces", "3", "--spans", "10",
        ])
        .env("SWARMSCOPE_LOG", "warn")
        .output()
        .expect("bench");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        stdout.contains("verified: 120 of 120 acknowledged spans stored, 0 lost"),
        "{stdout}"
    );
    assert!(
        stdout.contains("spans/s")
            && stdout.contains("bytes/span")
            && stdout.contains("collector RSS"),
        "{stdout}"
    );
}
