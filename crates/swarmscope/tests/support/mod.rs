//! Shared harness: starts the real `swarmscope` binary on a free loopback
//! port with a temporary data directory, and talks to it over HTTP.
#![allow(dead_code, unreachable_pub, missing_docs)]

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

pub const BIN: &str = env!("CARGO_BIN_EXE_swarmscope");

/// Runs the binary to completion: (exit code, stdout, stderr).
pub fn run(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env("SWARMSCOPE_LOG", "warn")
        .env_remove("SWARMSCOPE_CONFIG")
        .env_remove("SWARMSCOPE_API_KEY")
        .env_remove("SWARMSCOPE_URL")
        .output()
        .expect("run swarmscope");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// A running collector, killed on drop.
pub struct Server {
    child: Option<Child>,
    pub base: String,
    pub data_dir: PathBuf,
    /// Seconds from spawn to the "listening" line.
    pub ready_after: Duration,
    _tmp: Option<tempfile::TempDir>,
    client: reqwest::Client,
}

impl Server {
    /// An open (keyless) collector on a fresh data dir.
    #[track_caller]
    pub fn start() -> Server {
        Server::start_with(None, &[])
    }

    /// A collector with this config file text.
    #[track_caller]
    pub fn with_config(config: &str) -> Server {
        Server::start_with(Some(config), &[])
    }

    #[track_caller]
    pub fn start_with(config: Option<&str>, extra: &[&str]) -> Server {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path().to_owned();
        let mut s = Server::start_in(&dir, config, extra);
        s._tmp = Some(tmp);
        s
    }

    /// A collector on an existing data dir (for restarts).
    #[track_caller]
    pub fn start_in(dir: &Path, config: Option<&str>, extra: &[&str]) -> Server {
        let mut cmd = Command::new(BIN);
        cmd.args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(dir.join("data"));
        if let Some(text) = config {
            let path = dir.join("swarmscope.toml");
            std::fs::write(&path, text).expect("write config");
            cmd.arg("--config").arg(path);
        }
        let stderr = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(dir.join("stderr.log"))
            .expect("stderr log");
        let started = Instant::now();
        let mut child = cmd
            .args(extra)
            .env("SWARMSCOPE_LOG", "info")
            .env_remove("SWARMSCOPE_CONFIG")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .spawn()
            .expect("spawn swarmscope serve");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, rx) = mpsc::channel();
        std::thread::spawn(move || {
            let mut lines = BufReader::new(stdout).lines();
            if let Some(Ok(first)) = lines.next() {
                let _ = tx.send(first);
            }
            for _ in lines {}
        });
        let line = rx
            .recv_timeout(Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("server did not start; stderr: {}", read_log(dir)));
        let ready_after = started.elapsed();
        let base = line
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no address in {line:?}"))
            .to_owned();
        Server {
            child: Some(child),
            base,
            data_dir: dir.to_owned(),
            ready_after,
            _tmp: None,
            client: reqwest::Client::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// SIGKILL, no chance to clean up.
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// SIGTERM, then wait for the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut c = self.child.take().expect("running");
        Command::new("kill")
            .args(["-TERM", &c.id().to_string()])
            .status()
            .expect("kill");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if let Some(status) = c.try_wait().expect("wait") {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "server did not exit after SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    pub fn stderr(&self) -> String {
        read_log(&self.data_dir)
    }

    pub async fn send(&self, req: reqwest::RequestBuilder, key: Option<&str>) -> (u16, Value) {
        let req = match key {
            Some(k) => req.bearer_auth(k),
            None => req,
        };
        let resp = req.send().await.expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or_else(|_| json!({ "raw": text }));
        (status, body)
    }

    pub async fn post(&self, path: &str, body: &Value, key: Option<&str>) -> (u16, Value) {
        self.send(self.client.post(self.url(path)).json(body), key)
            .await
    }

    pub async fn post_raw(
        &self,
        path: &str,
        body: Vec<u8>,
        headers: &[(&str, &str)],
        key: Option<&str>,
    ) -> (u16, Value) {
        let mut req = self.client.post(self.url(path)).body(body);
        for (k, v) in headers {
            req = req.header(*k, *v);
        }
        self.send(req, key).await
    }

    pub async fn get(&self, path: &str, key: Option<&str>) -> (u16, Value) {
        self.send(self.client.get(self.url(path)), key).await
    }

    /// Total spans stored, from the admin stats endpoint.
    pub async fn span_count(&self, admin_key: Option<&str>) -> i64 {
        let (status, body) = self.get("/api/stats", admin_key).await;
        assert_eq!(status, 200, "{body}");
        body["spans"].as_i64().expect("spans")
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.kill9();
    }
}

fn read_log(dir: &Path) -> String {
    std::fs::read_to_string(dir.join("stderr.log")).unwrap_or_default()
}

/// The seed's exact AgentTracer body, from tests/fixtures.
pub fn seed_span() -> Value {
    serde_json::from_str(include_str!("../fixtures/seed-span.json")).expect("fixture")
}

/// A seed-format span with the given ids.
pub fn span(tenant: &str, trace: &str, id: &str, name: &str) -> Value {
    let mut s = seed_span();
    s["tenantId"] = json!(tenant);
    s["trace_id"] = json!(trace);
    s["id"] = json!(id);
    s["name"] = json!(name);
    s
}

/// Writes a config with one key per (tenant, roles) and returns the keys.
pub fn config_with_keys(keys: &[(Option<&str>, &[&str])]) -> (String, Vec<String>) {
    let mut text = String::new();
    let mut out = Vec::new();
    for (i, (tenant, roles)) in keys.iter().enumerate() {
        let key = format!("ssk_test_key_{i}_{}", "x".repeat(20));
        let hash = {
            use std::fmt::Write;
            let digest = sha256(key.as_bytes());
            let mut h = String::new();
            for b in digest {
                let _ = write!(h, "{b:02x}");
            }
            h
        };
        text.push_str("[[keys]]\n");
        text.push_str(&format!("hash = \"sha256:{hash}\"\n"));
        if let Some(t) = tenant {
            text.push_str(&format!("tenant = \"{t}\"\n"));
        }
        let roles: Vec<String> = roles.iter().map(|r| format!("\"{r}\"")).collect();
        text.push_str(&format!("roles = [{}]\n", roles.join(", ")));
        out.push(key);
    }
    (text, out)
}

/// SHA-256, so the harness does not depend on the server's hashing code.
fn sha256(data: &[u8]) -> [u8; 32] {
    let out = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().expect("stdin").write_all(data)?;
            c.wait_with_output()
        })
        .expect("sha256sum");
    let hex = String::from_utf8_lossy(&out.stdout);
    let mut digest = [0u8; 32];
    for (i, b) in digest.iter_mut().enumerate() {
        *b = u8::from_str_radix(&hex[2 * i..2 * i + 2], 16).expect("hex");
    }
    digest
}
