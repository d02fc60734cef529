//! `swarmscope alerts`: the built-in engine's rules and their states.

use std::io::Write;

use serde_json::Value;

use crate::cli::AlertsArgs;
use crate::client::Client;

fn labels(v: &Value) -> String {
    v.as_object()
        .map(|m| {
            m.iter()
                .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
                .collect::<Vec<_>>()
                .join(",")
        })
        .unwrap_or_default()
}

/// Prints every rule with its state, then the pending and firing alerts.
pub(crate) async fn print_alerts(args: AlertsArgs) -> anyhow::Result<()> {
    let client = Client::new(&args.client)?;
    let mut query = Vec::new();
    if let Some(t) = &args.tenant {
        query.push(("tenant_id", t.clone()));
    }
    let doc = client.get_json("/api/alerts", &query).await?;
    let mut out = std::io::stdout().lock();
    writeln!(
        out,
        "{:<18} {:<9} {:<10} {:<9} {:>6}  EXPRESSION",
        "RULE", "SEVERITY", "CHANNEL", "STATE", "FOR"
    )?;
    for r in doc["rules"].as_array().into_iter().flatten() {
        writeln!(
            out,
            "{:<18} {:<9} {:<10} {:<9} {:>5}s  {}",
            r["name"].as_str().unwrap_or(""),
            r["severity"].as_str().unwrap_or(""),
            r["channel"].as_str().unwrap_or(""),
            r["state"].as_str().unwrap_or(""),
            r["for_secs"].as_u64().unwrap_or(0),
            r["expr"].as_str().unwrap_or("")
        )?;
    }
    let active = doc["alerts"].as_array().cloned().unwrap_or_default();
    writeln!(out)?;
    if active.is_empty() {
        writeln!(out, "no alert pending or firing")?;
    }
    for a in &active {
        writeln!(
            out,
            "{:<8} {:<18} {:<9} {:<24} {}",
            a["state"].as_str().unwrap_or("").to_uppercase(),
            a["name"].as_str().unwrap_or(""),
            a["severity"].as_str().unwrap_or(""),
            labels(&a["labels"]),
            a["summary"].as_str().unwrap_or("")
        )?;
    }
    let n = &doc["notifications"];
    writeln!(
        out,
        "\nnotifications: {} sent, {} failed, {} dropped, {} without a channel; {} evaluations every {}s",
        n["sent"], n["failed"], n["dropped"], n["unrouted"], doc["evaluations"], doc["interval_secs"]
    )?;
    Ok(())
}
