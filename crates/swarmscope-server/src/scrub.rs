//! Secrets are masked before spans and log lines reach disk.
//!
//! Agents log what they see: a prompt holding a customer's API key, a
//! command line with a token, an `Authorization` header copied into an
//! attribute. The SDK masks what it recognises, but not every sender uses the
//! SDK (OpenTelemetry exporters, curl), so the collector masks again, with
//! patterns the operator can extend. Every string in a span's name, service,
//! attributes, events and status message, and in a log line's message and
//! metadata, is searched with one combined regular expression; each match
//! becomes `[REDACTED]`. An attribute whose name says it holds a secret
//! (`authorization`, `api_key`, `db_password`…) or is listed in the config is
//! replaced whole unless it is a number or boolean; a message that is a JSON
//! object is masked field by field the same way. Correlation ids (trace,
//! span, ticket, agent, VM, request) are stored as sent: they are how data is
//! found, and a secret in an id is a sender's bug to fix, not to hide.

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
    /// Every pattern in one regex: the fast "anything here?" test.
    text: Option<Regex>,
    /// Each pattern alone, to find every match of every pattern when the
    /// combined one says there is one (see [`Scrubber::string`]).
    each: Vec<Regex>,
    attributes: Vec<String>,
}

impl Scrubber {
    /// Compiles `config`; names the first pattern that is not a valid regex.
    pub fn new(config: &ScrubConfig) -> Result<Scrubber, String> {
        let builtin = BUILTIN_PATTERNS.iter().filter(|_| config.builtin);
        let mut each: Vec<Regex> = builtin
            .map(|p| Regex::new(p).map_err(|e| format!("scrub: built-in pattern {p}: {e}")))
            .collect::<Result<_, _>>()?;
        for (i, p) in config.patterns.iter().enumerate() {
            let re = Regex::new(p).map_err(|e| {
                let first = e.to_string().lines().last().unwrap_or("").trim().to_owned();
                format!("scrub.patterns[{i}] is not a valid regex: {first}")
            })?;
            // `\b` or `$` never match the empty string as a whole text but
            // do match nothing at every word end: refuse any pattern whose
            // shortest match is empty.
            let empty = regex_syntax::parse(p)
                .map_or(true, |hir| hir.properties().minimum_len() == Some(0));
            if empty {
                return Err(format!(
                    "scrub.patterns[{i}] can match an empty string, which would insert masks everywhere"
                ));
            }
            each.push(re);
        }
        let text = if each.is_empty() {
            None
        } else {
            let parts: Vec<String> = each.iter().map(|r| format!("(?:{})", r.as_str())).collect();
            Some(Regex::new(&parts.join("|")).map_err(|e| format!("scrub.patterns: {e}"))?)
        };
        Ok(Scrubber {
            builtin: config.builtin,
            text,
            each,
            attributes: config.attributes.iter().map(|a| a.to_lowercase()).collect(),
        })
    }

    /// Masks secrets in `spans`; returns how many values changed.
    pub fn spans(&self, spans: &mut [Span]) -> u64 {
        let mut n = 0;
        for span in spans {
            n += u64::from(self.string(&mut span.name));
            if let Some(s) = span.service.as_mut() {
                n += u64::from(self.string(s));
            }
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
            n += self.message(&mut line.message);
            n += self.attributes(&mut line.metadata);
        }
        n
    }

    /// A message that is a JSON object (an OTLP structured body, a logger
    /// writing JSON) is masked by field name as well as by pattern.
    fn message(&self, message: &mut String) -> u64 {
        if message.starts_with('{') {
            if let Ok(mut object) = serde_json::from_str::<Value>(message) {
                if object.is_object() {
                    let n = self.value(&mut object);
                    if n > 0 {
                        *message = object.to_string();
                    }
                    return n;
                }
            }
        }
        u64::from(self.string(message))
    }

    fn secret_name(&self, name: &str) -> bool {
        (self.builtin && is_secret_name(name))
            || self.attributes.iter().any(|a| a.eq_ignore_ascii_case(name))
    }

    fn attributes(&self, attrs: &mut Attributes) -> u64 {
        let mut n = 0;
        for (name, value) in attrs.iter_mut() {
            // Numbers and booleans are not secrets however they are named
            // (`llm.token_count.prompt` is a count, not a token).
            let masked_whole = !matches!(value, Value::Null | Value::Number(_) | Value::Bool(_));
            if masked_whole && self.secret_name(name) {
                if value.as_str() != Some(MASK) {
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

    /// Masks every match of every pattern in `s`; whether anything changed.
    ///
    /// One combined regex answers "is there anything?" for the common case
    /// of nothing. When there is, each pattern is run alone and the union of
    /// their matches is masked: a combined regex reports one match per
    /// position, so an operator's `authorization: \S+` matching from an
    /// earlier position would otherwise cut the built-in bearer-token match
    /// short and leave the token in clear.
    fn string(&self, s: &mut String) -> bool {
        let Some(re) = &self.text else {
            return false;
        };
        if !re.is_match(s) {
            return false;
        }
        let mut found: Vec<(usize, usize)> = self
            .each
            .iter()
            .flat_map(|r| r.find_iter(s).map(|m| (m.start(), m.end())))
            .collect();
        found.sort_unstable();
        // Merge overlapping matches, then copy the text around them.
        let mut merged: Vec<(usize, usize)> = Vec::with_capacity(found.len());
        for (start, end) in found {
            match merged.last_mut() {
                Some(last) if start <= last.1 => last.1 = last.1.max(end),
                _ => merged.push((start, end)),
            }
        }
        if merged.is_empty() {
            return false;
        }
        let mut out = String::with_capacity(s.len());
        let mut copied = 0;
        for (start, end) in merged {
            out.push_str(&s[copied..start]);
            out.push_str(MASK);
            copied = end;
        }
        out.push_str(&s[copied..]);
        *s = out;
        true
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
            "api_key": "k-12345",
            "input_tokens": 4200,
            "llm.token_count.prompt": 812,
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
        // A number is not a secret whatever its name: token counts survive.
        assert_eq!(a["llm.token_count.prompt"], json!(812));
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
            metadata: json!({"x-session": "abc", "token": "t0k3n"})
                .as_object()
                .cloned()
                .unwrap_or_default(),
            ..log("customer cust-123456 uses sk-ant-api03-AbCdEf1234567890")
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
        assert!(bad("x*").starts_with("scrub.patterns[1] can match an empty string"));
    }

    #[test]
    fn an_operator_pattern_cannot_cut_a_builtin_match_short() {
        let scrub = Scrubber::new(&ScrubConfig {
            patterns: vec![r"(?i)authorization: \S+".into(), r"Bearer \w+".into()],
            ..ScrubConfig::default()
        })
        .expect("compiles");
        let mut logs = vec![log("sent Authorization: Bearer eyJhbGciOi.payload.sig ok")];
        scrub.logs(&mut logs);
        let m = &logs[0].message;
        assert!(
            !m.contains("eyJ") && !m.contains("payload") && !m.contains(".sig"),
            "{m}"
        );
    }

    #[test]
    fn patterns_that_can_match_nothing_are_refused() {
        for bad in [r"\b", r"(?m)$", r"\bx*", "a*", "(?:)"] {
            let e = Scrubber::new(&ScrubConfig {
                patterns: vec![bad.into()],
                ..ScrubConfig::default()
            })
            .expect_err(bad);
            assert!(
                e.contains("scrub.patterns[0]") && e.contains("empty"),
                "{bad}: {e}"
            );
        }
        assert!(Scrubber::new(&ScrubConfig {
            patterns: vec![r"cust-\d+".into()],
            ..ScrubConfig::default()
        })
        .is_ok());
    }

    #[test]
    fn json_messages_are_masked_by_field_and_span_names_by_pattern() {
        let scrub = Scrubber::new(&ScrubConfig {
            patterns: vec![r"cust-[0-9]{6}".into()],
            ..ScrubConfig::default()
        })
        .expect("compiles");
        let mut logs = vec![log(
            r#"{"user":"ann","password":"hunter2","auth":{"basic":"dXNlcjpwYXNz"}}"#,
        )];
        assert_eq!(scrub.logs(&mut logs), 2);
        let body: Value = serde_json::from_str(&logs[0].message).expect("still JSON");
        assert_eq!(
            body,
            json!({"user": "ann", "password": "[REDACTED]", "auth": "[REDACTED]"})
        );
        let mut plain = vec![log("{not json, key sk-ant-api03-AbCdEf1234567890")];
        assert_eq!(scrub.logs(&mut plain), 1);
        assert_eq!(plain[0].message, "{not json, key [REDACTED]");

        let mut spans = vec![span(json!({}))];
        spans[0].name = "export cust-204817".into();
        spans[0].service = Some("svc-cust-204817".into());
        assert_eq!(scrub.spans(&mut spans), 2);
        assert_eq!(spans[0].name, "export [REDACTED]");
        assert_eq!(spans[0].service.as_deref(), Some("svc-[REDACTED]"));
    }

    fn log(message: &str) -> LogRecord {
        LogRecord {
            tenant_id: "acme".into(),
            time_ns: 0,
            level: swarmscope_model::LogLevel::Info,
            message: message.into(),
            trace_id: None,
            span_id: None,
            request_id: None,
            ticket_id: None,
            agent_id: None,
            duration_ms: None,
            metadata: Attributes::new(),
        }
    }
}
