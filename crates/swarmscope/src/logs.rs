//! `swarmscope logs`: log lines in a terminal, optionally followed live.

use std::time::Duration;

use serde_json::Value;

use crate::cli::LogsArgs;
use crate::client::Client;

/// One line of text per log record: time, level, correlation ids, message,
/// then metadata as key=value.
pub(crate) fn render_line(l: &Value) -> String {
    let text = |k: &str| l[k].as_str().unwrap_or("-").to_owned();
    let mut out = format!(
        "{} {:<5} {} {} {}  {}",
        text("timestamp"),
        text("level").to_uppercase(),
        text("tenant_id"),
        text("ticket_id"),
        text("agent_id"),
        text("message"),
    );
    if let Some(d) = l["duration_ms"].as_f64() {
        out.push_str(&format!(" ({d}ms)"));
    }
    if let Some(meta) = l["metadata"].as_object() {
        for (k, v) in meta {
            match v {
                Value::String(s) => out.push_str(&format!(" {k}={s}")),
                other => out.push_str(&format!(" {k}={other}")),
            }
        }
    }
    if let Some(t) = l["trace_id"].as_str() {
        out.push_str(&format!(" trace={t}"));
    }
    out
}

fn print_page(logs: &[Value], json: bool) {
    for l in logs {
        if json {
            println!("{l}");
        } else {
            println!("{}", render_line(l));
        }
    }
}

pub(crate) async fn print_logs(args: LogsArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.client)?;
    let mut base = Vec::new();
    let pairs = [
        ("trace_id", &args.trace),
        ("ticket_id", &args.ticket),
        ("tenant_id", &args.tenant),
        ("level", &args.level),
        ("q", &args.grep),
        ("since", &args.since),
    ];
    for (k, v) in pairs {
        if let Some(v) = v {
            base.push((k, v.clone()));
        }
    }
    let limit = args.limit.clamp(1, 1000).to_string();
    // First a whole trace (oldest first), or the newest `limit` lines.
    let mut cursor = if args.trace.is_some() {
        let mut cursor = None;
        while print_ascending(&client, &base, &mut cursor, args.json).await? {}
        cursor
    } else {
        let mut q = base.clone();
        q.push(("limit", limit));
        let page = client.get_json("/api/logs", &q).await?;
        let mut oldest_first = page["logs"].as_array().cloned().unwrap_or_default();
        oldest_first.reverse();
        print_page(&oldest_first, args.json);
        // Follow from the newest line shown.
        page["first_cursor"].as_str().map(str::to_owned)
    };
    if !args.follow {
        return Ok(());
    }
    loop {
        if !print_ascending(&client, &base, &mut cursor, args.json).await? {
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
    }
}

/// Prints the next page of lines after `cursor`, oldest first, and moves the
/// cursor past them. Returns whether more lines are already waiting.
async fn print_ascending(
    client: &Client,
    base: &[(&'static str, String)],
    cursor: &mut Option<String>,
    json: bool,
) -> anyhow::Result<bool> {
    let mut q = base.to_vec();
    q.push(("order", "asc".into()));
    q.push(("limit", "1000".into()));
    if let Some(c) = cursor.as_ref() {
        q.push(("cursor", c.clone()));
    }
    let page = client.get_json("/api/logs", &q).await?;
    print_page(
        page["logs"].as_array().map(Vec::as_slice).unwrap_or(&[]),
        json,
    );
    if let Some(c) = page["last_cursor"].as_str() {
        *cursor = Some(c.to_owned());
    }
    Ok(!page["next_cursor"].is_null())
}
