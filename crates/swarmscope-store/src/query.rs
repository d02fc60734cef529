//! Query types: filters, pages and results of the read API.

use serde_json::{json, Value};
use swarmscope_model::timestamp::format_rfc3339;
use swarmscope_model::{LogLevel, LogRecord, Span};

/// One trace's summary, as listed by search.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceSummary {
    /// Owner.
    pub tenant_id: String,
    /// The trace id as sent.
    pub trace_id: String,
    /// Name of the earliest span without a parent, if any has arrived.
    pub root_name: Option<String>,
    /// Earliest span start, Unix ns.
    pub start_ns: i64,
    /// Latest span end (or start, for open spans), Unix ns.
    pub end_ns: i64,
    /// Spans stored.
    pub span_count: i64,
    /// Spans with status error.
    pub error_count: i64,
    /// Ticket of the trace's first span.
    pub ticket_id: Option<String>,
    /// Agent of the trace's first span.
    pub agent_id: Option<String>,
    /// VM of the trace's first span.
    pub vm_id: Option<String>,
    /// Service of the trace's first span.
    pub service: Option<String>,
    /// LLM cost of the trace's spans (their `swarm.cost_usd`), USD.
    pub cost_usd: f64,
    /// When a write last touched the trace, Unix ns.
    pub updated_ns: i64,
}

impl TraceSummary {
    /// Duration from first start to last end, in milliseconds.
    pub fn duration_ms(&self) -> f64 {
        (self.end_ns.saturating_sub(self.start_ns)) as f64 / 1_000_000.0
    }

    /// The summary as the query API renders it.
    pub fn to_json(&self) -> Value {
        json!({
            "tenant_id": self.tenant_id,
            "trace_id": self.trace_id,
            "root_name": self.root_name,
            "start_time": format_rfc3339(self.start_ns),
            "end_time": format_rfc3339(self.end_ns),
            "duration_ms": self.duration_ms(),
            "span_count": self.span_count,
            "error_count": self.error_count,
            "ticket_id": self.ticket_id,
            "agent_id": self.agent_id,
            "vm_id": self.vm_id,
            "service": self.service,
            "cost_usd": self.cost_usd,
        })
    }
}

/// A whole trace.
#[derive(Debug, Clone, PartialEq)]
pub struct TraceDetail {
    /// Its summary.
    pub summary: TraceSummary,
    /// Its spans, by start time, at most [`TRACE_SPAN_LIMIT`].
    pub spans: Vec<Span>,
    /// Whether the trace has more spans than were returned.
    pub truncated: bool,
    /// Its log lines (those carrying its trace id), in time order, at most
    /// [`TRACE_LOG_LIMIT`].
    pub logs: Vec<LogRecord>,
}

/// Most spans returned for one trace (the first by start time).
pub const TRACE_SPAN_LIMIT: usize = 10_000;

/// Most log lines returned with one trace.
pub const TRACE_LOG_LIMIT: usize = 5_000;

/// Search criteria for [`crate::Reader::list_logs`]; every field narrows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LogFilter {
    /// Only this tenant's lines (`None`: all tenants, for admins).
    pub tenant_id: Option<String>,
    /// Only lines of this trace.
    pub trace_id: Option<String>,
    /// Only lines of this ticket's traces (a trace belongs to the ticket of
    /// its first span; lines outside any trace are not matched).
    pub ticket_id: Option<String>,
    /// Only lines at least this severe.
    pub min_level: Option<LogLevel>,
    /// Only lines at or after this time, Unix ns.
    pub since_ns: Option<i64>,
    /// Only lines before this time, Unix ns.
    pub until_ns: Option<i64>,
    /// Only lines whose message contains this text (case-insensitive for ASCII).
    pub text: Option<String>,
    /// Oldest first (for following a stream or reading one trace) instead of newest first.
    pub ascending: bool,
    /// Page size.
    pub limit: usize,
    /// Continue after this position.
    pub cursor: Option<Cursor>,
}

/// One page of log lines.
#[derive(Debug, Clone, PartialEq)]
pub struct LogPage {
    /// The lines.
    pub logs: Vec<LogRecord>,
    /// Where the next page starts, when there may be one.
    pub next_cursor: Option<Cursor>,
    /// The position of the last line returned, even when no more lines exist
    /// yet: an ascending reader polls from here to follow new lines.
    pub last_cursor: Option<Cursor>,
    /// The position of the first line returned: for a newest-first page, the
    /// newest line, from which an ascending reader follows what comes next.
    pub first_cursor: Option<Cursor>,
}

/// Result of looking a trace up by id.
#[derive(Debug, Clone, PartialEq)]
pub enum TraceLookup {
    /// Exactly one trace matched.
    Found(Box<TraceDetail>),
    /// No trace with that id is visible.
    NotFound,
    /// Several tenants have a trace with that id (only possible for an
    /// unscoped lookup); their names, so the caller can pick one.
    Ambiguous(Vec<String>),
}

/// Which traces a status filter keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StatusFilter {
    /// Traces with at least one error span.
    Error,
    /// Traces with no error span.
    Ok,
}

impl StatusFilter {
    /// Parses `error` or `ok`.
    pub fn parse(text: &str) -> Option<StatusFilter> {
        match text {
            "error" => Some(StatusFilter::Error),
            "ok" => Some(StatusFilter::Ok),
            _ => None,
        }
    }
}

/// Position after which the next page of a search starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cursor {
    pub(crate) start_ns: i64,
    pub(crate) row: i64,
}

impl Cursor {
    /// The cursor as an opaque token for URLs.
    pub fn encode(&self) -> String {
        format!("{}.{}", self.start_ns, self.row)
    }

    /// Parses a token made by [`Cursor::encode`].
    pub fn decode(token: &str) -> Option<Cursor> {
        let (start, row) = token.split_once('.')?;
        Some(Cursor {
            start_ns: start.parse().ok()?,
            row: row.parse().ok()?,
        })
    }
}

/// Search criteria for [`crate::Reader::list_traces`]; every field narrows.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TraceFilter {
    /// Only this tenant's traces (`None`: all tenants, for admins).
    pub tenant_id: Option<String>,
    /// Only traces of this ticket.
    pub ticket_id: Option<String>,
    /// Only traces of this agent.
    pub agent_id: Option<String>,
    /// Only traces with / without errors.
    pub status: Option<StatusFilter>,
    /// Only traces holding a span with this name.
    pub name: Option<String>,
    /// Only traces at least this long, nanoseconds.
    pub min_duration_ns: Option<i64>,
    /// Only traces starting at or after this time, Unix ns.
    pub since_ns: Option<i64>,
    /// Only traces starting before this time, Unix ns.
    pub until_ns: Option<i64>,
    /// Only traces holding a span whose attribute `.0` equals `.1` (compared
    /// as text; `true`/`false` also match JSON booleans).
    pub attribute: Option<(String, String)>,
    /// Only traces written to after this time, Unix ns (live updates).
    pub updated_after_ns: Option<i64>,
    /// Page size.
    pub limit: usize,
    /// Continue after this position.
    pub cursor: Option<Cursor>,
}

/// One page of search results, newest first.
#[derive(Debug, Clone, PartialEq)]
pub struct TracePage {
    /// The traces.
    pub traces: Vec<TraceSummary>,
    /// Where the next page starts, when there may be one.
    pub next_cursor: Option<Cursor>,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let c = Cursor {
            start_ns: 1_765_708_245_123_000_000,
            row: 42,
        };
        assert_eq!(Cursor::decode(&c.encode()), Some(c));
        for bad in ["", "12", "a.b", "1.2.3", "1.", ".1"] {
            assert_eq!(Cursor::decode(bad), None, "{bad}");
        }
    }
}
