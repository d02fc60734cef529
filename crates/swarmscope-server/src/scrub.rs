//! Secrets are masked before spans and log lines reach disk.
//!
//! Agents log what they see: a prompt holding a customer's API key, a
//! command line with a token, an `Authorization` header copied into an
//! attribute. The SDK masks what it recognises, but not every sender uses the
//! SDK (OpenTelemetry exporters, curl), so the collector masks again, with
//! patterns the operator can extend. Every string in a span's attributes,
//! events and status message, and in a log line's message and metadata, is
//! searched with one combined regular expression; each match becomes
//! `[REDACTED]`. An attribute whose name says it holds a secret
//! (`authorization`, `api_key`, `db_password`…) or is listed in the config is
//! replaced whole, whatever its type.

use regex::Regex;
use serde::Deserialize;
use serde_json::Value;
use swarmscope_model::secret::{is_secret_name, MASK};
use swarmscope_model::{Attributes, LogRecord, Span};

/// Patterns masked unless `builtin = false`: Anthropic and swarmscope keys,
/// bearer tokens, AWS access key ids, GitHub and Slack tokens, PEM private
/// keys.
pub const BUILTIN_PATTERNS: &[&str] = &[
    r"sk-ant-[A-Za-z0-9_\-]{8,}",
    r"ssk_[0-9a-fA-F]{16,}",
    r"(?-u:\b)[Bb][Ee][Aa][Rr][Ee][Rr][ \t]+[A-Za-z0-9\-._~+/]{8,}=*",
    r"(?-u:\b)AKIA[0-9A-Z]{16}(?-u:\b)",
    r"(?-u:\b)gh[pousr]_[A-Za-z0-9]{30,}(?-u:\b)",
    r"(?-u:\b)xox[abprs]-[A-Za-z0-9\-]{10,}",
    r"-----BEGIN [A-Z ]*PRIVATE KEY-----[\s\S]*?-----END [A-Z ]*PRIVATE KEY-----",
];

/// The `[scrub]` config section.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScrubConfig {
    /// Mask [`BUILTIN_PATTERNS`] and secret-named attributes (default true).
    #[serde(default = "default_true")]
    pub builtin: bool,
    /// More regular expressions (Rust `regex` syntax); every match is masked.
    #[serde(default)]
    pub patterns: Vec<String>,
    /// More attribute names (ASCII case-insensitive) whose values are masked whole.
    #[serde(default)]
    pub attributes: Vec<String>,
}

fn default_true() -> bool {
    true
}

impl Default for ScrubConfig {
    fn default() -> Self {
        ScrubConfig {
            builtin: true,
            patterns: Vec::new(),
            attributes: Vec::new(),
        }
    }
}

/// Masks secrets in spans and log lines, as configured.
#[derive(Debug, Clone)]
pub struct Scrubber {
    builtin: bool,
    text: Option<Regex>,
    attributes: Vec<String>,
}

impl Scrubber {
    /// Compiles `config`; names the first pattern that is not a valid regex.
    pub fn new(config: &ScrubConfig) -> Result<Scrubber, String> {
        let mut parts = Vec::new();
        for (i, p) in config.patterns.iter().enumerate() {
            if let Err(e) = Regex::new(p) {
                let first = e.to_string().lines().last().unwrap_or("").trim().to_owned();
                return Err(format!("scrub.patterns[{i}] is not a valid regex: {first}"));
            }
            if Regex::new(p).is_ok_and(|r| r.is_match("")) {
                return Err(format!("scrub.patterns[{i}] matches the empty string"));
            }
            parts.push(format!("(?:{p})"));
        }
        if config.builtin {
            parts.extend(BUILTIN_PATTERNS.iter().map(|p| format!("(?:{p})")));
        }
        let text = if parts.is_empty() {
            None
        } else {
            Some(Regex::new(&parts.join("|")).map_err(|e| format!("scrub.patterns: {e}"))?)
        };
        Ok(Scrubber {
            builtin: config.builtin,
            text,
            attributes: config.attributes.iter().map(|a| a.to_lowercase()).collect(),
        })
    }

    /// Masks secrets in `spans`; returns how many values changed.
    pub fn spans(&self, spans: &mut [Span]) -> u64 {
        let mut n = 0;
        for span in spans {
            n += self.attributes(&mut span.attributes);
            if let Some(m) = span.status_message.as_mut() {
                n += u64::from(self.string(m));
            }
            for event in &mut span.events {
                n += u64::from(self.string(&mut event.name));
                n += self.attributes(&mut event.attributes);
            }
        }
        n
    }

    /// Masks secrets in `logs`; returns how many values changed.
    pub fn logs(&self, logs: &mut [LogRecord]) -> u64 {
        let mut n = 0;
        for line in logs {
            n += u64::from(self.string(&mut line.message));
            n += self.attributes(&mut line.metadata);
        }
        n
    }

    fn secret_name(&self, name: &str) -> bool {
        (self.builtin && is_secret_name(name))
            || self.attributes.iter().any(|a| a.eq_ignore_ascii_case(name))
    }

    fn attributes(&self, attrs: &mut Attributes) -> u64 {
        let mut n = 0;
        for (name, value) in attrs.iter_mut() {
            if self.secret_name(name) {
                if value.as_str() != Some(MASK) && !value.is_null() {
                    *value = Value::String(MASK.to_owned());
                    n += 1;
                }
            } else {
                n += self.value(value);
            }
        }
        n
    }

    fn value(&self, value: &mut Value) -> u64 {
        match value {
            Value::String(s) => u64::from(self.string(s)),
            Value::Array(items) => items.iter_mut().map(|v| self.value(v)).sum(),
            Value::Object(map) => self.attributes(map),
            _ => 0,
        }
    }

    /// Masks every match in `s`; whether anything changed.
    fn string(&self, s: &mut String) -> bool {
        let Some(re) = &self.text else {
            return false;
        };
        match re.replace_all(s, MASK) {
            std::borrow::Cow::Borrowed(_) => false,
            std::borrow::Cow::Owned(masked) => {
                *s = masked;
                true
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn span(attrs: Value) -> Span {
        let mut s = Span {
            tenant_id: "acme".into(),
            trace_id: "t".into(),
            span_id: "s".into(),
            parent_span_id: None,
            name: "llm.generate".into(),
            kind: Default::default(),
            status: Default::default(),
            status_message: None,
            start_ns: 0,
            end_ns: Some(1),
            ticket_id: None,
            agent_id: None,
            vm_id: None,
            service: None,
            attributes: Attributes::new(),
            events: Vec::new(),
        };
        if let Value::Object(m) = attrs {
            s.attributes = m;
        }
        s
    }

    #[test]
    fn builtin_patterns_and_secret_names_are_masked() {
        let scrub = Scrubber::new(&ScrubConfig::default()).expect("compiles");
        let mut spans = vec![span(json!({
            "prompt": "use sk-ant-api03-AbCdEf1234567890 and AKIAABCDEFGHIJKLMNOP",
            "cmd": ["curl -H 'Authorization: Bearer eyJhbGciOi.payload.sig'", 3],
            "nested": {"db_password": "hunter2", "model": "claude-sonnet-4-5"},
            "api_key": 12345,
            "input_tokens": 4200,
            "note": "nothing secret here",
        }))];
        spans[0].status_message = Some("gh token ghp_0123456789abcdefghijklmnopqrstuvwxyz".into());
        assert_eq!(scrub.spans(&mut spans), 5);
        let a = &spans[0].attributes;
        assert_eq!(a["prompt"], json!("use [REDACTED] and [REDACTED]"));
        assert_eq!(a["cmd"], json!(["curl -H 'Authorization: [REDACTED]'", 3]));
        assert_eq!(
            a["nested"],
            json!({"db_password": "[REDACTED]", "model": "claude-sonnet-4-5"})
        );
        assert_eq!(a["api_key"], json!("[REDACTED]"));
        assert_eq!(a["input_tokens"], json!(4200));
        assert_eq!(a["note"], json!("nothing secret here"));
        assert_eq!(
            spans[0].status_message.as_deref(),
            Some("gh token [REDACTED]")
        );
        // Masking again changes nothing.
        assert_eq!(scrub.spans(&mut spans), 0);
    }

    #[test]
    fn configured_patterns_and_names_are_masked_in_logs() {
        let scrub = Scrubber::new(&ScrubConfig {
            builtin: false,
            patterns: vec![r"cust-[0-9]{6}".into()],
            attributes: vec!["X-Session".into()],
        })
        .expect("compiles");
        let mut logs = vec![LogRecord {
            tenant_id: "acme".into(),
            time_ns: 0,
            level: swarmscope_model::LogLevel::Info,
            message: "customer cust-123456 uses sk-ant-api03-AbCdEf1234567890".into(),
            trace_id: None,
            span_id: None,
            request_id: None,
            ticket_id: None,
            agent_id: None,
            duration_ms: None,
            metadata: json!({"x-session": "abc", "token": "t0k3n"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
        }];
        assert_eq!(scrub.logs(&mut logs), 2);
        // builtin = false: the Anthropic key and the `token` name are kept.
        assert_eq!(
            logs[0].message,
            "customer [REDACTED] uses sk-ant-api03-AbCdEf1234567890"
        );
        assert_eq!(logs[0].metadata["x-session"], json!("[REDACTED]"));
        assert_eq!(logs[0].metadata["token"], json!("t0k3n"));
    }

    #[test]
    fn bad_patterns_are_named() {
        let bad = |p: &str| {
            Scrubber::new(&ScrubConfig {
                patterns: vec!["ok-[0-9]+".into(), p.into()],
                ..ScrubConfig::default()
            })
            .expect_err("refused")
        };
        assert!(bad("(unclosed").starts_with("scrub.patterns[1] is not a valid regex"));
        assert_eq!(bad("x*"), "scrub.patterns[1] matches the empty string");
    }
}
