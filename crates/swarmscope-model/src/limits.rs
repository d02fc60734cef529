//! Bounds on everything a client sends, so that one request can never make the
//! collector allocate or store without limit.

/// Per-request and per-span bounds applied while decoding ingest bodies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    /// Most spans accepted in one request.
    pub max_spans_per_request: usize,
    /// Most attributes on one span or event (after unknown fields are folded in).
    pub max_attributes: usize,
    /// Longest attribute key, in bytes.
    pub max_attribute_key_bytes: usize,
    /// Largest attribute value, in bytes of its JSON encoding.
    pub max_attribute_value_bytes: usize,
    /// Deepest nesting of an attribute value (a scalar is depth 0).
    pub max_attribute_depth: usize,
    /// Most events on one span.
    pub max_events: usize,
    /// Longest span or event name, in bytes.
    pub max_name_bytes: usize,
    /// Longest id (trace, span, tenant, ticket, agent, vm), in bytes.
    pub max_id_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_spans_per_request: 10_000,
            max_attributes: 256,
            max_attribute_key_bytes: 256,
            max_attribute_value_bytes: 64 * 1024,
            max_attribute_depth: 8,
            max_events: 1_024,
            max_name_bytes: 1_024,
            max_id_bytes: 128,
        }
    }
}
