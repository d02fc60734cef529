//! Attributes the collector does arithmetic on (cost, token counts,
//! durations), and the range each must fall in.
//!
//! They are checked at the door, when a span is decoded, so a value that
//! cannot be summed (a string cost, a cost of 1e308 that overflows a trace's
//! total, a token count that would wrap a counter) is refused with a 400
//! naming the attribute instead of failing later, at commit time or in a
//! metric.

use serde_json::Value;

use crate::seed::{join, DecodeError};
use crate::span::Attributes;

/// The collector's own cost attribute (USD): set by the collector on priced
/// LLM spans, accepted from agents on open spans.
pub const COST_ATTRIBUTE: &str = "swarm.cost_usd";

/// Largest cost one span may carry, in USD.
pub const MAX_COST_USD: f64 = 1e6;

/// Largest token count one span may carry (far above any model's context,
/// far below where a 64-bit counter could wrap).
pub const MAX_TOKENS: u64 = 1_000_000_000_000;

/// Input tokens (excluding the cache), in the order they are looked up.
pub const INPUT_TOKENS: &[&str] = &["gen_ai.usage.input_tokens", "input_tokens"];
/// Output tokens.
pub const OUTPUT_TOKENS: &[&str] = &["gen_ai.usage.output_tokens", "output_tokens"];
/// Tokens read from the prompt cache.
pub const CACHE_READ_TOKENS: &[&str] = &[
    "gen_ai.usage.cache_read.input_tokens",
    "cache_read_input_tokens",
    "cache_read_tokens",
];
/// Tokens written to the prompt cache.
pub const CACHE_WRITE_TOKENS: &[&str] = &[
    "gen_ai.usage.cache_creation.input_tokens",
    "cache_creation_input_tokens",
    "cache_write_tokens",
];

/// A token count as a number: a non-negative integer (or a float with no
/// fraction, or a numeric string) up to [`MAX_TOKENS`].
pub fn token_count(value: &Value) -> Option<u64> {
    let n = match value {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.is_finite() && *f >= 0.0 && f.fract() == 0.0 && *f <= 1e15)
                .map(|f| f as u64)
        })?,
        Value::String(s) => s.trim().parse().ok()?,
        _ => return None,
    };
    (n <= MAX_TOKENS).then_some(n)
}

/// Refuses a span's or event's attributes whose cost, token counts or
/// `duration_ms` cannot be used in sums. `path` names the attributes object.
pub fn check_numbers(attrs: &Attributes, path: &str) -> Result<(), DecodeError> {
    if let Some(v) = attrs.get(COST_ATTRIBUTE) {
        let ok = v
            .as_f64()
            .is_some_and(|c| c.is_finite() && (0.0..=MAX_COST_USD).contains(&c));
        if !ok {
            return Err(DecodeError::field(
                &join(path, COST_ATTRIBUTE),
                format!("{COST_ATTRIBUTE} must be a number from 0 to {MAX_COST_USD}"),
            ));
        }
    }
    for names in [
        INPUT_TOKENS,
        OUTPUT_TOKENS,
        CACHE_READ_TOKENS,
        CACHE_WRITE_TOKENS,
    ] {
        for name in names {
            if let Some(v) = attrs.get(*name) {
                if token_count(v).is_none() {
                    return Err(DecodeError::field(
                        &join(path, name),
                        format!("{name} must be a whole number of tokens from 0 to {MAX_TOKENS}"),
                    ));
                }
            }
        }
    }
    if let Some(v) = attrs.get("duration_ms") {
        let ok = match v {
            Value::Number(n) => n.as_f64().is_some_and(|d| d.is_finite() && d >= 0.0),
            // The seed's attribute is a number; other types are kept as sent
            // and not used in any sum.
            _ => true,
        };
        if !ok {
            return Err(DecodeError::field(
                &join(path, "duration_ms"),
                "duration_ms must be a non-negative number",
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn attrs(v: Value) -> Attributes {
        v.as_object().cloned().unwrap_or_default()
    }

    #[test]
    fn costs_that_cannot_be_summed_are_refused_by_name() {
        for bad in [
            json!("abc"),
            json!(1e308),
            json!(-1e308),
            json!(-0.5),
            json!(null),
        ] {
            let e = check_numbers(&attrs(json!({ "swarm.cost_usd": bad })), "[0].attributes")
                .expect_err("refused");
            assert_eq!(e.field.as_deref(), Some("[0].attributes.swarm.cost_usd"));
        }
        assert!(check_numbers(&attrs(json!({ "swarm.cost_usd": 0.0123 })), "a").is_ok());
    }

    #[test]
    fn token_counts_must_be_whole_and_bounded() {
        assert_eq!(token_count(&json!(1200)), Some(1200));
        assert_eq!(token_count(&json!("1200")), Some(1200));
        assert_eq!(token_count(&json!(12.0)), Some(12));
        for bad in [
            json!(-1),
            json!(1.5),
            json!(1e19),
            json!("many"),
            json!(true),
        ] {
            assert_eq!(token_count(&bad), None, "{bad}");
        }
        let e = check_numbers(
            &attrs(json!({ "input_tokens": 18_446_744_073_709_551_615u64 })),
            "attributes",
        )
        .expect_err("wraps a counter");
        assert_eq!(e.field.as_deref(), Some("attributes.input_tokens"));
    }
}
