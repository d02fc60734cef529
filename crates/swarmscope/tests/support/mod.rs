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
    /// `http://ADDR` of OTLP/gRPC, from the "OTLP/gRPC on ADDR" part of the first line.
    grpc: Option<String>,
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
        let grpc = line
            .split("OTLP/gRPC on ")
            .nth(1)
            .and_then(|rest| rest.split_whitespace().next())
            .map(|a| format!("http://{a}"));
        Server {
            child: Some(child),
            base,
            grpc,
            data_dir: dir.to_owned(),
            ready_after,
            _tmp: None,
            client: reqwest::Client::new(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// OTLP/gRPC endpoint.
    pub fn grpc_base(&self) -> String {
        self.grpc.clone().expect("the collector serves OTLP/gRPC")
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

/// A running `swarmscope demo` (collector, platform and fleet), killed on drop.
/// The browser, dashboard and alert tests reuse it.
pub struct Demo {
    child: Option<Child>,
    lines: mpsc::Receiver<String>,
    /// Every stdout line read so far.
    pub stdout: Vec<String>,
    /// Collector base URL.
    pub base: String,
    /// The platform's /metrics URL.
    pub platform_metrics: String,
    /// `demo-keys.json`.
    pub keys: Value,
    pub data_dir: PathBuf,
    _tmp: tempfile::TempDir,
    client: reqwest::Client,
}

impl Demo {
    /// Starts a demo on a free port and a fresh data dir with `args`
    /// (e.g. `--seed`, `--tickets`); waits for its banner.
    #[track_caller]
    pub fn start(args: &[&str]) -> Demo {
        let tmp = tempfile::tempdir().expect("tempdir");
        let data_dir = tmp.path().join("demo");
        let stderr = std::fs::File::create(tmp.path().join("stderr.log")).expect("stderr log");
        let mut child = Command::new(BIN)
            .args(["demo", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(&data_dir)
            .args(args)
            .env("SWARMSCOPE_LOG", "warn")
            .env_remove("SWARMSCOPE_DEMO_ADMIN_KEY")
            .stdout(Stdio::piped())
            .stderr(Stdio::from(stderr))
            .spawn()
            .expect("spawn swarmscope demo");
        let stdout = child.stdout.take().expect("stdout");
        let (tx, lines) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        let mut demo = Demo {
            child: Some(child),
            lines,
            stdout: Vec::new(),
            base: String::new(),
            platform_metrics: String::new(),
            keys: Value::Null,
            data_dir: data_dir.clone(),
            _tmp: tmp,
            client: reqwest::Client::new(),
        };
        let first = demo.wait_for_line("swarmscope", Duration::from_secs(30));
        demo.base = first
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .unwrap_or_else(|| panic!("no address in {first:?}"))
            .to_owned();
        let platform = demo.wait_for_line("  platform metrics", Duration::from_secs(10));
        demo.platform_metrics = platform
            .split_whitespace()
            .find(|w| w.starts_with("http://"))
            .expect("platform address")
            .to_owned();
        demo.wait_for_line("  fleet", Duration::from_secs(10));
        let keys =
            std::fs::read_to_string(data_dir.join("demo-keys.json")).expect("demo-keys.json");
        demo.keys = serde_json::from_str(&keys).expect("keys json");
        demo
    }

    /// Reads stdout until a line starting with `prefix` (after trimming
    /// leading blank space of the progress line); panics after `timeout`.
    #[track_caller]
    pub fn wait_for_line(&mut self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) => {
                    self.stdout.push(line.clone());
                    if line.trim_start_matches('\n').starts_with(prefix) {
                        return line;
                    }
                }
                Err(_) => panic!(
                    "no line starting {prefix:?} within {timeout:?}; stdout so far:\n{}\nstderr:\n{}",
                    self.stdout.join("\n"),
                    self.stderr()
                ),
            }
        }
    }

    pub fn admin_key(&self) -> String {
        self.keys["admin"].as_str().expect("admin key").to_owned()
    }

    pub fn read_key(&self, tenant: &str) -> String {
        self.keys["tenants"][tenant]["read"]
            .as_str()
            .expect("read key")
            .to_owned()
    }

    pub fn stderr(&self) -> String {
        std::fs::read_to_string(self._tmp.path().join("stderr.log")).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// GET on the collector with `key`: (status, JSON body or {"raw": text}).
    pub async fn get(&self, path: &str, key: &str) -> (u16, Value) {
        let resp = self
            .client
            .get(self.url(path))
            .bearer_auth(key)
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        let text = resp.text().await.expect("body");
        let body = serde_json::from_str(&text).unwrap_or_else(|_| json!({ "raw": text }));
        (status, body)
    }

    /// GET a URL with `key`: (status, text).
    pub async fn get_text(&self, url: &str, key: &str) -> (u16, String) {
        let resp = self
            .client
            .get(url)
            .bearer_auth(key)
            .send()
            .await
            .expect("request");
        let status = resp.status().as_u16();
        (status, resp.text().await.expect("body"))
    }

    /// SIGINT, then the exit status (the demo flushes and exits 0).
    pub fn interrupt(&mut self) -> ExitStatus {
        let mut c = self.child.take().expect("running");
        Command::new("kill")
            .args(["-INT", &c.id().to_string()])
            .status()
            .expect("kill");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            if let Some(status) = c.try_wait().expect("wait") {
                while let Ok(line) = self.lines.recv_timeout(Duration::from_millis(200)) {
                    self.stdout.push(line);
                }
                return status;
            }
            assert!(Instant::now() < deadline, "demo did not exit after SIGINT");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Demo {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// A real Prometheus (Debian's package) on a free loopback port, killed on drop.
pub struct Prometheus {
    child: Option<Child>,
    pub base: String,
    _tmp: tempfile::TempDir,
}

impl Prometheus {
    /// Starts `prometheus` scraping `targets` (job name, `host:port`) every
    /// second with `bearer`, evaluating `rules` (YAML text, may be empty)
    /// every second; waits until it is ready.
    #[track_caller]
    pub fn start(targets: &[(&str, &str)], bearer: &str, rules: &str) -> Prometheus {
        let tmp = tempfile::tempdir().expect("tempdir");
        let dir = tmp.path();
        std::fs::write(dir.join("key"), bearer).expect("key file");
        let mut config =
            String::from("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n");
        if !rules.is_empty() {
            std::fs::write(dir.join("rules.yml"), rules).expect("rules");
            config.push_str(&format!(
                "rule_files:\n  - {}\n",
                dir.join("rules.yml").display()
            ));
        }
        config.push_str("scrape_configs:\n");
        for (job, target) in targets {
            config.push_str(&format!(
                "  - job_name: {job}\n    authorization:\n      credentials_file: {}\n    static_configs:\n      - targets: ['{target}']\n",
                dir.join("key").display()
            ));
        }
        std::fs::write(dir.join("prometheus.yml"), config).expect("config");
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("free port")
            .port();
        let log = std::fs::File::create(dir.join("prometheus.log")).expect("log");
        let child = Command::new("prometheus")
            .arg(format!(
                "--config.file={}",
                dir.join("prometheus.yml").display()
            ))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.join("tsdb").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::from(log))
            .spawn()
            .expect("prometheus is installed (scripts/test installs it)");
        let base = format!("http://127.0.0.1:{port}");
        let p = Prometheus {
            child: Some(child),
            base,
            _tmp: tmp,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let ready = http_ok(&format!("127.0.0.1:{port}"), "/-/ready");
            if ready {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "prometheus not ready: {}",
                std::fs::read_to_string(p._tmp.path().join("prometheus.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(200));
        }
        p
    }

    /// Runs an instant query: Ok(result array) or Err(the error text).
    pub async fn query(&self, expr: &str) -> Result<Vec<Value>, String> {
        let resp = reqwest::Client::new()
            .get(format!("{}/api/v1/query", self.base))
            .query(&[("query", expr)])
            .send()
            .await
            .map_err(|e| e.to_string())?;
        let body: Value = resp.json().await.map_err(|e| e.to_string())?;
        if body["status"] != "success" {
            return Err(body["error"].as_str().unwrap_or("query failed").to_owned());
        }
        Ok(body["data"]["result"]
            .as_array()
            .cloned()
            .unwrap_or_default())
    }

    /// Alerts Prometheus has firing: (alertname, severity).
    pub async fn firing(&self) -> Vec<(String, String)> {
        let body: Value = match reqwest::get(format!("{}/api/v1/alerts", self.base)).await {
            Ok(r) => r.json().await.unwrap_or(Value::Null),
            Err(_) => return Vec::new(),
        };
        let mut out: Vec<(String, String)> = body["data"]["alerts"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|a| a["state"] == "firing")
            .map(|a| {
                (
                    a["labels"]["alertname"].as_str().unwrap_or("").to_owned(),
                    a["labels"]["severity"].as_str().unwrap_or("").to_owned(),
                )
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

/// `host:port` of a URL like `http://127.0.0.1:9000/metrics`.
pub fn host_port(url: &str) -> String {
    url.trim_start_matches("http://")
        .split('/')
        .next()
        .unwrap_or("")
        .to_owned()
}

/// A plain HTTP/1.0 GET over a socket: whether the answer is 200.
pub fn http_ok(addr: &str, path: &str) -> bool {
    use std::io::{Read, Write};
    let Ok(mut stream) = std::net::TcpStream::connect(addr) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
    if write!(stream, "GET {path} HTTP/1.0\r\nHost: {addr}\r\n\r\n").is_err() {
        return false;
    }
    let mut head = [0u8; 16];
    stream.read_exact(&mut head).is_ok() && head[9..12] == *b"200"
}
