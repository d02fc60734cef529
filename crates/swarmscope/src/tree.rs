//! `swarmscope trace` and `swarmscope traces`: traces in a terminal.

use std::collections::{HashMap, HashSet};
use std::fmt::Write;

use serde_json::Value;
use swarmscope_model::timestamp::parse_rfc3339;

use crate::cli::{TraceArgs, TracesArgs};
use crate::client::Client;

pub(crate) async fn print_trace(args: TraceArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.client)?;
    let mut query = Vec::new();
    if let Some(t) = &args.tenant {
        query.push(("tenant_id", t.clone()));
    }
    let path = format!("/api/traces/{}", encode_path(&args.trace_id));
    let doc = client.get_json(&path, &query).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print!("{}", render_trace(&doc));
    }
    Ok(())
}

fn encode_path(segment: &str) -> String {
    segment
        .bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v[key].as_str().unwrap_or("-")
}

fn ms(v: &Value) -> String {
    match v.as_f64() {
        Some(x) if x >= 10_000.0 => format!("{:.1}s", x / 1000.0),
        Some(x) => format!("{x:.1}ms"),
        None => "open".into(),
    }
}

/// Renders a trace document (the `GET /api/traces/{id}` body) as a tree:
/// one line per span with its start offset, duration, status and name.
pub(crate) fn render_trace(doc: &Value) -> String {
    let summary = &doc["trace"];
    let spans = doc["spans"].as_array().cloned().unwrap_or_default();
    let mut out = String::new();
    let _ = writeln!(
        out,
        "trace {}  tenant {}  ticket {}  agent {}  {}  {} spans, {} errors",
        text(summary, "trace_id"),
        text(summary, "tenant_id"),
        text(summary, "ticket_id"),
        text(summary, "agent_id"),
        ms(&summary["duration_ms"]),
        summary["span_count"].as_i64().unwrap_or(0),
        summary["error_count"].as_i64().unwrap_or(0),
    );
    let start0 = summary["start_time"]
        .as_str()
        .and_then(parse_rfc3339)
        .unwrap_or(0);
    let ids: HashSet<&str> = spans.iter().filter_map(|s| s["span_id"].as_str()).collect();
    let mut children: HashMap<&str, Vec<usize>> = HashMap::new();
    let mut roots = Vec::new();
    for (i, s) in spans.iter().enumerate() {
        match s["parent_span_id"].as_str() {
            Some(p) if ids.contains(p) && p != text(s, "span_id") => {
                children.entry(p).or_default().push(i)
            }
            _ => roots.push(i),
        }
    }
    let mut stack: Vec<(usize, usize)> = roots.into_iter().rev().map(|i| (i, 0)).collect();
    let mut seen = HashSet::new();
    while let Some((i, depth)) = stack.pop() {
        if !seen.insert(i) {
            continue;
        }
        let s = &spans[i];
        let offset = s["start_time"]
            .as_str()
            .and_then(parse_rfc3339)
            .map(|t| (t - start0) as f64 / 1e6);
        let status = match text(s, "status") {
            "error" => "ERROR",
            "ok" => "ok",
            _ => "-",
        };
        let mut marks = String::new();
        if s["orphan"].as_bool() == Some(true) {
            marks.push_str("  [orphan: parent missing]");
        }
        if s["attributes"]["swarm.incomplete"].as_bool() == Some(true) {
            marks.push_str("  [incomplete]");
        }
        if let Some(m) = s["status_message"].as_str() {
            let _ = write!(marks, "  ({m})");
        }
        let _ = writeln!(
            out,
            "{:>10} {:>10}  {:<5} {}{}{}",
            offset.map(|o| format!("+{o:.1}ms")).unwrap_or_default(),
            ms(&s["duration_ms"]),
            status,
            "  ".repeat(depth),
            text(s, "name"),
            marks
        );
        if let Some(kids) = children.get(text(s, "span_id")) {
            for &k in kids.iter().rev() {
                stack.push((k, depth + 1));
            }
        }
    }
    out
}

pub(crate) async fn print_traces(args: TracesArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.client)?;
    let mut query = vec![("limit", args.limit.to_string())];
    let pairs = [
        ("tenant_id", &args.tenant),
        ("ticket_id", &args.ticket),
        ("agent_id", &args.agent),
        ("status", &args.status),
        ("name", &args.name),
        ("since", &args.since),
        ("until", &args.until),
        ("attr", &args.attr),
    ];
    for (k, v) in pairs {
        if let Some(v) = v {
            query.push((k, v.clone()));
        }
    }
    if let Some(d) = args.min_duration_ms {
        query.push(("min_duration_ms", d.to_string()));
    }
    let doc = client.get_json("/api/traces", &query).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&doc)?);
        return Ok(());
    }
    let traces = doc["traces"].as_array().cloned().unwrap_or_default();
    println!(
        "{:<24} {:>10} {:>5} {:>4}  {:<16} {:<12} {:<14} {:<14} TRACE",
        "START", "DURATION", "SPANS", "ERR", "ROOT", "TENANT", "TICKET", "AGENT"
    );
    for t in &traces {
        println!(
            "{:<24} {:>10} {:>5} {:>4}  {:<16} {:<12} {:<14} {:<14} {}",
            text(t, "start_time"),
            ms(&t["duration_ms"]),
            t["span_count"].as_i64().unwrap_or(0),
            t["error_count"].as_i64().unwrap_or(0),
            text(t, "root_name"),
            text(t, "tenant_id"),
            text(t, "ticket_id"),
            text(t, "agent_id"),
            text(t, "trace_id"),
        );
    }
    if traces.is_empty() {
        println!("(no traces match)");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn trees_nest_children_and_mark_errors_and_orphans() {
        let doc = json!({
            "trace": {"trace_id": "t", "tenant_id": "a", "ticket_id": "T1", "agent_id": "A1",
                      "start_time": "2025-12-14T10:00:00Z", "duration_ms": 1500.0, "span_count": 3, "error_count": 1},
            "spans": [
                {"span_id": "r", "name": "http.request", "status": "ok", "start_time": "2025-12-14T10:00:00Z", "duration_ms": 1500.0},
                {"span_id": "c", "parent_span_id": "r", "name": "ticket.claim", "status": "error",
                 "status_message": "no ticket", "start_time": "2025-12-14T10:00:00.250Z", "duration_ms": 20.0},
                {"span_id": "o", "parent_span_id": "gone", "name": "git.push", "orphan": true,
                 "start_time": "2025-12-14T10:00:01Z", "duration_ms": null}
            ]
        });
        let text = render_trace(&doc);
        let lines: Vec<&str> = text.lines().collect();
        assert!(lines[0].contains("3 spans, 1 errors"), "{text}");
        assert!(lines[1].ends_with("http.request"), "{text}");
        assert!(
            lines[2].contains("+250.0ms")
                && lines[2].contains("ERROR")
                && lines[2].contains("  ticket.claim  (no ticket)"),
            "{text}"
        );
        assert!(
            lines[3].contains("open") && lines[3].contains("git.push  [orphan"),
            "{text}"
        );
    }
}
