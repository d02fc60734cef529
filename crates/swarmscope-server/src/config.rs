//! The collector's configuration: one TOML file, one struct.
//!
//! Precedence is file → environment (`SWARMSCOPE_*`) → command-line flags; the
//! binary applies the last two. Unknown keys are errors, so a typo never goes
//! unnoticed. docs/configuration.md lists every key.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

/// Why a config could not be used. Every message fits on one line.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read.
    #[error("config file {}: {source}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The file is not valid TOML or has wrong or unknown keys.
    #[error("config file {}: {message}", path.display())]
    Parse {
        /// The file.
        path: PathBuf,
        /// What is wrong and where.
        message: String,
    },
    /// A value is out of range or inconsistent.
    #[error("config: {0}")]
    Invalid(String),
}

/// What an API key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Deserialize, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Send spans and logs for its tenant.
    Ingest,
    /// Read its tenant's data.
    Read,
    /// Everything, for every tenant.
    Admin,
    /// Only `GET /metrics` (for Prometheus).
    Metrics,
}

impl Role {
    /// The config spelling.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Ingest => "ingest",
            Role::Read => "read",
            Role::Admin => "admin",
            Role::Metrics => "metrics",
        }
    }
}

/// One API key, stored as a hash: the key itself is shown once, at creation.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KeyConfig {
    /// `sha256:` followed by the hex SHA-256 of the key.
    pub hash: String,
    /// The tenant the key is bound to; absent for admin keys.
    #[serde(default)]
    pub tenant: Option<String>,
    /// What the key may do.
    pub roles: Vec<Role>,
    /// A label for people (never used for auth).
    #[serde(default)]
    pub name: Option<String>,
}

/// The whole configuration.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Config {
    /// Address to listen on.
    #[serde(default = "default_listen")]
    pub listen: SocketAddr,
    /// Directory holding the database.
    #[serde(default = "default_data_dir")]
    pub data_dir: PathBuf,
    /// Largest request body in bytes, before and after gzip decompression.
    #[serde(default = "default_max_body_bytes")]
    pub max_body_bytes: usize,
    /// Most spans waiting for the writer before ingest answers 503.
    #[serde(default = "default_queue_capacity_spans")]
    pub queue_capacity_spans: usize,
    /// Most spans committed in one transaction.
    #[serde(default = "default_max_batch_spans")]
    pub max_batch_spans: usize,
    /// Seconds without new data after which a trace's open spans are closed
    /// as incomplete (0: never).
    #[serde(default = "default_incomplete_after_secs")]
    pub incomplete_after_secs: u64,
    /// Most distinct tenant label values in `/metrics`; later tenants are
    /// counted as `other`.
    #[serde(default = "default_metrics_tenant_cap")]
    pub metrics_tenant_cap: usize,
    /// LLM prices (USD per million tokens) replacing or adding to the defaults.
    #[serde(default)]
    pub prices: Vec<swarmscope_model::price::ModelPrice>,
    /// API keys. With none, the collector is open and may listen only on loopback.
    #[serde(default)]
    pub keys: Vec<KeyConfig>,
    /// Serve OTLP/gRPC (default true).
    #[serde(default = "default_true")]
    pub otlp_grpc: bool,
    /// Where OTLP/gRPC listens (default: port 4317 on `listen`'s address).
    #[serde(default)]
    pub otlp_grpc_listen: Option<SocketAddr>,
    /// The built-in alert engine: rules, channels, what else to scrape.
    #[serde(default)]
    pub alerts: swarmscope_alerts::AlertsConfig,
    /// Failed authentications from one address in a minute before it gets
    /// 429 for the rest of the minute (0: no limit). Default 20.
    #[serde(default = "default_auth_failures")]
    pub auth_failures_per_minute: u32,
    /// Below this many free bytes on the data disk, ingest answers 507 until
    /// space returns (0: off). Default 256 MiB.
    #[serde(default = "default_min_free_disk_bytes")]
    pub min_free_disk_bytes: u64,
    /// OTLP/HTTP endpoints that receive every committed span and log line.
    #[serde(default)]
    pub forward: Vec<crate::forward::ForwardTarget>,
    /// Most items waiting to be forwarded (an on-disk backlog); default 1,000,000.
    #[serde(default = "default_forward_backlog")]
    pub forward_backlog: usize,
    /// How long spans and logs are kept, and the database size cap.
    #[serde(default)]
    pub retention: crate::retention::RetentionConfig,
    /// Secret masking before anything is stored.
    #[serde(default)]
    pub scrub: crate::scrub::ScrubConfig,
    /// Browser origins (`https://host[:port]`) allowed to call the API from
    /// another site. Empty (the default): no CORS headers at all.
    #[serde(default)]
    pub cors_origins: Vec<String>,
    /// Seconds a request body may take to arrive (default 20); a slower
    /// client gets 408 and its connection back.
    #[serde(default = "default_body_timeout_secs")]
    pub body_timeout_secs: u64,
    /// Seconds to a connection's first byte and to the end of a request
    /// header (default 10).
    #[serde(default = "default_header_timeout_secs")]
    pub header_timeout_secs: u64,
    /// Seconds a connection may stay open with nothing in flight (default 60).
    #[serde(default = "default_idle_timeout_secs")]
    pub idle_timeout_secs: u64,
    /// Open connections over both listeners (0, the default: three quarters
    /// of the file-descriptor limit, less headroom).
    #[serde(default)]
    pub max_connections: usize,
    /// Concurrent streams on one HTTP/2 (gRPC) connection (default 32).
    #[serde(default = "default_h2_max_streams")]
    pub h2_max_concurrent_streams: u32,
    /// Seconds a stop waits for in-flight requests before dropping stalled
    /// connections (default 10). What was acknowledged is committed either way.
    #[serde(default = "default_shutdown_timeout_secs")]
    pub shutdown_timeout_secs: u64,
    /// Memory all ingest requests together may hold while reading and
    /// decoding (default 256 MiB).
    #[serde(default = "default_decode_memory_bytes")]
    pub decode_memory_bytes: usize,
    /// One caller's (tenant key's) share of it (default 96 MiB); a request
    /// needing more is refused with 413.
    #[serde(default = "default_caller_decode_memory_bytes")]
    pub caller_decode_memory_bytes: usize,
    /// Spans one caller may have waiting for the writer (default half of
    /// `queue_capacity_spans`).
    #[serde(default)]
    pub caller_queue_share_spans: Option<usize>,
    /// How far ahead of the collector's clock a span or log line may be dated
    /// (default 3600 s); later ones are refused, so nothing escapes retention.
    #[serde(default = "default_max_future_skew_secs")]
    pub max_future_skew_secs: u64,
    /// Seconds one read (a search, a trace lookup) may run before it is
    /// stopped with 503 (default 10).
    #[serde(default = "default_query_timeout_secs")]
    pub query_timeout_secs: u64,
    /// Addresses of reverse proxies (Caddy) whose `X-Forwarded-For` names
    /// the client, so the failed-authentication lockout counts each client
    /// and not the proxy (default none).
    #[serde(default)]
    pub trusted_proxies: Vec<std::net::IpAddr>,
}

fn default_query_timeout_secs() -> u64 {
    10
}

fn default_body_timeout_secs() -> u64 {
    20
}
fn default_header_timeout_secs() -> u64 {
    10
}
fn default_idle_timeout_secs() -> u64 {
    60
}
fn default_h2_max_streams() -> u32 {
    32
}
fn default_shutdown_timeout_secs() -> u64 {
    10
}
fn default_decode_memory_bytes() -> usize {
    256 << 20
}
fn default_caller_decode_memory_bytes() -> usize {
    96 << 20
}
fn default_max_future_skew_secs() -> u64 {
    3600
}

fn default_listen() -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], 4318))
}
fn default_data_dir() -> PathBuf {
    PathBuf::from("swarmscope-data")
}
fn default_max_body_bytes() -> usize {
    5 * 1024 * 1024
}
fn default_queue_capacity_spans() -> usize {
    100_000
}
fn default_max_batch_spans() -> usize {
    8_192
}
fn default_incomplete_after_secs() -> u64 {
    1_800
}
fn default_auth_failures() -> u32 {
    20
}
fn default_min_free_disk_bytes() -> u64 {
    256 * 1024 * 1024
}
fn default_forward_backlog() -> usize {
    1_000_000
}
fn default_true() -> bool {
    true
}
fn default_metrics_tenant_cap() -> usize {
    100
}

impl Default for Config {
    fn default() -> Self {
        Config {
            listen: default_listen(),
            data_dir: default_data_dir(),
            max_body_bytes: default_max_body_bytes(),
            queue_capacity_spans: default_queue_capacity_spans(),
            max_batch_spans: default_max_batch_spans(),
            incomplete_after_secs: default_incomplete_after_secs(),
            metrics_tenant_cap: default_metrics_tenant_cap(),
            prices: Vec::new(),
            keys: Vec::new(),
            min_free_disk_bytes: default_min_free_disk_bytes(),
            auth_failures_per_minute: default_auth_failures(),
            forward: Vec::new(),
            forward_backlog: default_forward_backlog(),
            otlp_grpc: true,
            otlp_grpc_listen: None,
            alerts: swarmscope_alerts::AlertsConfig::default(),
            retention: crate::retention::RetentionConfig::default(),
            scrub: crate::scrub::ScrubConfig::default(),
            body_timeout_secs: default_body_timeout_secs(),
            header_timeout_secs: default_header_timeout_secs(),
            idle_timeout_secs: default_idle_timeout_secs(),
            max_connections: 0,
            h2_max_concurrent_streams: default_h2_max_streams(),
            shutdown_timeout_secs: default_shutdown_timeout_secs(),
            decode_memory_bytes: default_decode_memory_bytes(),
            caller_decode_memory_bytes: default_caller_decode_memory_bytes(),
            caller_queue_share_spans: None,
            max_future_skew_secs: default_max_future_skew_secs(),
            query_timeout_secs: default_query_timeout_secs(),
            trusted_proxies: Vec::new(),
            cors_origins: Vec::new(),
        }
    }
}

impl Config {
    /// Reads and validates a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_owned(),
            source,
        })?;
        Config::parse(&text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.to_owned(),
                message,
            },
            other => other,
        })
    }

    /// Parses and validates config text.
    pub fn parse(text: &str) -> Result<Config, ConfigError> {
        let config: Config = toml::from_str(text).map_err(|e| {
            let line = e
                .span()
                .map(|s| text[..s.start.min(text.len())].lines().count().max(1));
            let message = e.message().trim().replace('\n', " ");
            ConfigError::Parse {
                path: PathBuf::new(),
                message: match line {
                    Some(l) => format!("line {l}: {message}"),
                    None => message,
                },
            }
        })?;
        config.validate()?;
        Ok(config)
    }

    /// Checks values the types cannot.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let invalid = |m: String| Err(ConfigError::Invalid(m));
        if !(1024..=1 << 30).contains(&self.max_body_bytes) {
            return invalid(format!(
                "max_body_bytes must be between 1024 and 1073741824, not {}",
                self.max_body_bytes
            ));
        }
        if self.queue_capacity_spans == 0 || self.max_batch_spans == 0 {
            return invalid("queue_capacity_spans and max_batch_spans must be positive".into());
        }
        // A gzip body without a length holds room for itself and its
        // decompressed form: a caller's share must fit one, the total a share.
        let one_body = self.max_body_bytes.saturating_mul(2).saturating_add(5);
        if self.caller_decode_memory_bytes < one_body
            || self.decode_memory_bytes < self.caller_decode_memory_bytes
        {
            return invalid(format!(
                "caller_decode_memory_bytes ({}) must be at least twice max_body_bytes plus 5 ({one_body}) and at most decode_memory_bytes ({})",
                self.caller_decode_memory_bytes, self.decode_memory_bytes
            ));
        }
        if let Err(e) = self.alerts.validate() {
            return invalid(e.to_string());
        }
        if let Err(e) = self.retention.validate() {
            return invalid(e);
        }
        if let Err(e) = crate::forward::validate(&self.forward) {
            return invalid(e);
        }
        if let Err(e) = crate::scrub::Scrubber::new(&self.scrub) {
            return invalid(e);
        }
        for origin in &self.cors_origins {
            if !is_origin(origin) {
                return invalid(format!(
                    "cors_origins: {origin:?} is not an origin like \"https://dashboard.example.com\" \
                     (scheme and host, optional port, no path, no wildcard)"
                ));
            }
        }
        for (i, p) in self.prices.iter().enumerate() {
            let prices = [p.input, p.output, p.cache_read, p.cache_write];
            if p.model.is_empty() || prices.iter().any(|x| !x.is_finite() || *x < 0.0) {
                return invalid(format!("prices[{i}] needs a model and non-negative prices"));
            }
        }
        for (i, key) in self.keys.iter().enumerate() {
            let hex = key.hash.strip_prefix("sha256:").unwrap_or("");
            if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                return invalid(format!(
                    "keys[{i}].hash must be \"sha256:\" and 64 hex digits"
                ));
            }
            if key.roles.is_empty() {
                return invalid(format!(
                    "keys[{i}].roles must name at least one of ingest, read, admin"
                ));
            }
            let admin = key.roles.contains(&Role::Admin) || key.roles.contains(&Role::Metrics);
            match (&key.tenant, admin) {
                (Some(_), true) => {
                    return invalid(format!(
                        "keys[{i}] is an admin or metrics key and must not name a tenant"
                    ))
                }
                (None, false) => {
                    return invalid(format!("keys[{i}] must name the tenant it is bound to"))
                }
                (Some(t), false) if t.is_empty() => {
                    return invalid(format!("keys[{i}].tenant must not be empty"))
                }
                _ => {}
            }
        }
        Ok(())
    }
}

/// An exact browser origin: `http(s)://` and a host (name, IPv4 or
/// bracketed IPv6) with an optional port; no path, no wildcard.
fn is_origin(origin: &str) -> bool {
    let Some(authority) = origin
        .strip_prefix("https://")
        .or_else(|| origin.strip_prefix("http://"))
    else {
        return false;
    };
    let host = match authority.rsplit_once(':') {
        Some((host, port))
            if port.parse::<u16>().is_ok() && (host.ends_with(']') || !host.contains(':')) =>
        {
            host
        }
        _ => authority,
    };
    let ipv6 = host.len() > 2
        && host.starts_with('[')
        && host.ends_with(']')
        && host[1..host.len() - 1]
            .bytes()
            .all(|b| b.is_ascii_hexdigit() || b == b':' || b == b'.');
    ipv6 || (!host.is_empty()
        && host
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.'))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cors_origins_must_be_exact_origins() {
        for good in [
            "https://dashboard.example.com",
            "http://127.0.0.1:8080",
            "http://[::1]:3000",
            "http://[::1]",
        ] {
            assert!(is_origin(good), "{good}");
        }
        for bad in [
            "*",
            "dashboard.example.com",
            "https://*.example.com",
            "https://dashboard.example.com/",
            "https://dashboard.example.com/app",
            "https://a.com:",
            "https://a.com:99999",
            "ftp://a.com",
            "https://",
            "https://a b.com",
        ] {
            assert!(!is_origin(bad), "{bad}");
        }
        let config = Config {
            cors_origins: vec!["https://ok.example".into(), "*".into()],
            ..Config::default()
        };
        let message = config.validate().expect_err("wildcard refused").to_string();
        assert!(
            message.contains("cors_origins") && message.contains("\"*\""),
            "{message}"
        );
    }

    #[test]
    fn an_empty_file_gives_the_defaults() {
        assert_eq!(Config::parse("").expect("empty"), Config::default());
    }

    #[test]
    fn keys_parse() {
        let c = Config::parse(&format!(
            "listen = \"0.0.0.0:9000\"\n[[keys]]\nhash = \"sha256:{}\"\ntenant = \"acme\"\nroles = [\"ingest\", \"read\"]\n",
            "ab".repeat(32)
        ))
        .expect("valid");
        assert_eq!(c.keys[0].roles, vec![Role::Ingest, Role::Read]);
        assert_eq!(c.listen.port(), 9000);
    }

    #[test]
    fn mistakes_are_named_on_one_line() {
        let cases = [
            ("lisen = \"x\"", "lisen"),
            ("listen = \"nowhere\"", "line 1"),
            ("max_body_bytes = 3", "max_body_bytes"),
            (
                "[[keys]]\nhash = \"md5:00\"\nroles = [\"read\"]\ntenant = \"a\"",
                "keys[0].hash",
            ),
            ("[[keys]]\nhash = \"x\"\nroles = [\"reader\"]", "line 3"),
        ];
        for (text, needle) in cases {
            let msg = Config::parse(text).expect_err(text).to_string();
            assert!(msg.contains(needle), "{text:?} gave {msg:?}");
            assert!(!msg.contains('\n'), "{msg:?} spans lines");
        }
        let admin_with_tenant = format!(
            "[[keys]]\nhash = \"sha256:{}\"\ntenant = \"a\"\nroles = [\"admin\"]",
            "0".repeat(64)
        );
        assert!(Config::parse(&admin_with_tenant).is_err());
    }
}
