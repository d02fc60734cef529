//! The LLM price table: USD per million tokens, per model and token kind.
//!
//! Anthropic reports `input_tokens` *excluding* cached tokens; cache reads and
//! cache writes are reported and priced separately, so the four kinds add up
//! without double counting. A model is matched by exact name, then by the
//! longest entry name it starts with (`claude-sonnet-4-5-20250929` matches
//! `claude-sonnet-4-5`). An unknown model has no price: its cost is not
//! guessed (the collector counts its tokens as unpriced).

/// Token counts of one LLM call.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TokenUsage {
    /// Input tokens, not counting cached ones.
    pub input: u64,
    /// Output tokens.
    pub output: u64,
    /// Tokens read from the prompt cache.
    pub cache_read: u64,
    /// Tokens written to the prompt cache.
    pub cache_write: u64,
}

impl TokenUsage {
    /// All tokens of the call.
    pub fn total(&self) -> u64 {
        self.input + self.output + self.cache_read + self.cache_write
    }
}

/// One model's prices, USD per million tokens.
#[derive(Debug, Clone, PartialEq, serde::Deserialize, serde::Serialize)]
#[serde(deny_unknown_fields)]
pub struct ModelPrice {
    /// Model name, or a prefix of dated model ids.
    pub model: String,
    /// Input (uncached) tokens.
    pub input: f64,
    /// Output tokens.
    pub output: f64,
    /// Cache reads.
    pub cache_read: f64,
    /// Cache writes.
    pub cache_write: f64,
    /// The date (YYYY-MM-DD) these prices took effect.
    pub effective: String,
}

impl ModelPrice {
    /// The cost in USD of `usage` at these prices.
    pub fn cost(&self, usage: &TokenUsage) -> f64 {
        (usage.input as f64 * self.input
            + usage.output as f64 * self.output
            + usage.cache_read as f64 * self.cache_read
            + usage.cache_write as f64 * self.cache_write)
            / 1_000_000.0
    }
}

/// Prices for every known model.
#[derive(Debug, Clone, PartialEq)]
pub struct PriceTable {
    entries: Vec<ModelPrice>,
}

fn price(
    model: &str,
    input: f64,
    output: f64,
    cache_read: f64,
    cache_write: f64,
    effective: &str,
) -> ModelPrice {
    ModelPrice {
        model: model.to_owned(),
        input,
        output,
        cache_read,
        cache_write,
        effective: effective.to_owned(),
    }
}

impl Default for PriceTable {
    /// Anthropic's list prices for current Claude models (cache writes at the
    /// 5-minute rate). Override or extend them in the config's `[[prices]]`.
    fn default() -> Self {
        PriceTable {
            entries: vec![
                price("claude-opus-4-5", 5.0, 25.0, 0.50, 6.25, "2025-11-24"),
                price("claude-opus-4-1", 15.0, 75.0, 1.50, 18.75, "2025-08-05"),
                price("claude-opus-4", 15.0, 75.0, 1.50, 18.75, "2025-05-22"),
                price("claude-sonnet-4-5", 3.0, 15.0, 0.30, 3.75, "2025-09-29"),
                price("claude-sonnet-4", 3.0, 15.0, 0.30, 3.75, "2025-05-22"),
                price("claude-3-7-sonnet", 3.0, 15.0, 0.30, 3.75, "2025-02-24"),
                price("claude-haiku-4-5", 1.0, 5.0, 0.10, 1.25, "2025-10-15"),
                price("claude-3-5-haiku", 0.80, 4.0, 0.08, 1.0, "2024-10-22"),
            ],
        }
    }
}

impl PriceTable {
    /// The defaults, with `overrides` replacing entries of the same model and
    /// adding new ones.
    pub fn with_overrides(overrides: &[ModelPrice]) -> PriceTable {
        let mut table = PriceTable::default();
        for o in overrides {
            match table.entries.iter_mut().find(|e| e.model == o.model) {
                Some(e) => *e = o.clone(),
                None => table.entries.push(o.clone()),
            }
        }
        table
    }

    /// Every entry.
    pub fn entries(&self) -> &[ModelPrice] {
        &self.entries
    }

    /// The price of `model`: exact name, else the longest matching prefix.
    pub fn lookup(&self, model: &str) -> Option<&ModelPrice> {
        self.entries.iter().find(|e| e.model == model).or_else(|| {
            self.entries
                .iter()
                .filter(|e| model.starts_with(&e.model))
                .max_by_key(|e| e.model.len())
        })
    }

    /// The cost of a call, or `None` for an unknown model.
    pub fn cost(&self, model: &str, usage: &TokenUsage) -> Option<f64> {
        self.lookup(model).map(|p| p.cost(usage))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cost_adds_the_four_kinds_without_double_counting_cache() {
        let t = PriceTable::default();
        let usage = TokenUsage {
            input: 1_000_000,
            output: 100_000,
            cache_read: 2_000_000,
            cache_write: 400_000,
        };
        // 1M input at $3 + 0.1M output at $15 + 2M cache reads at $0.30 + 0.4M writes at $3.75.
        let cost = t.cost("claude-sonnet-4-5", &usage).expect("priced");
        assert!((cost - (3.0 + 1.5 + 0.6 + 1.5)).abs() < 1e-9, "{cost}");
        let no_cache = TokenUsage {
            input: 1_000_000,
            output: 0,
            cache_read: 0,
            cache_write: 0,
        };
        assert!((t.cost("claude-sonnet-4-5", &no_cache).expect("priced") - 3.0).abs() < 1e-12);
    }

    #[test]
    fn dated_ids_match_their_family_and_unknown_models_are_not_guessed() {
        let t = PriceTable::default();
        assert_eq!(
            t.lookup("claude-sonnet-4-5-20250929")
                .map(|p| p.model.as_str()),
            Some("claude-sonnet-4-5")
        );
        assert_eq!(
            t.lookup("claude-opus-4-1-20250805")
                .map(|p| p.model.as_str()),
            Some("claude-opus-4-1")
        );
        assert_eq!(
            t.lookup("claude-opus-4-20250514").map(|p| p.model.as_str()),
            Some("claude-opus-4")
        );
        assert_eq!(
            t.cost(
                "gpt-9",
                &TokenUsage {
                    input: 10,
                    ..Default::default()
                }
            ),
            None
        );
    }

    #[test]
    fn overrides_replace_and_extend() {
        let t = PriceTable::with_overrides(&[
            price("claude-sonnet-4-5", 2.0, 10.0, 0.2, 2.5, "2026-01-01"),
            price("in-house-model", 0.1, 0.2, 0.0, 0.0, "2026-01-01"),
        ]);
        assert_eq!(t.lookup("claude-sonnet-4-5").map(|p| p.input), Some(2.0));
        assert!(t.lookup("in-house-model").is_some());
        assert_eq!(t.entries().len(), PriceTable::default().entries().len() + 1);
    }
}
