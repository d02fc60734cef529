//! The Grafana dashboards against a real Prometheus scraping a real demo:
//! every panel query must parse and return data.

mod support;

use std::time::{Duration, Instant};

use serde_json::Value;
use support::{host_port, Demo, Prometheus};

/// Every (dashboard, panel title, expr) in deploy/grafana/dashboards.
fn panel_queries() -> Vec<(String, String, String)> {
    let dir =
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/grafana/dashboards");
    let mut out = Vec::new();
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .expect("dashboards dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 4, "{files:?}");
    for file in files {
        let doc: Value =
            serde_json::from_str(&std::fs::read_to_string(&file).expect("read")).expect("JSON");
        let title = doc["title"].as_str().expect("title").to_owned();
        let vars: Vec<&str> = doc["templating"]["list"]
            .as_array()
            .expect("template variables")
            .iter()
            .map(|v| v["name"].as_str().expect("name"))
            .collect();
        assert!(
            vars.contains(&"datasource") && vars.contains(&"tenant"),
            "{title}: {vars:?}"
        );
        let mut stack: Vec<Value> = doc["panels"].as_array().expect("panels").clone();
        while let Some(panel) = stack.pop() {
            if let Some(inner) = panel["panels"].as_array() {
                stack.extend(inner.iter().cloned());
            }
            for t in panel["targets"].as_array().into_iter().flatten() {
                let expr = t["expr"].as_str().expect("every target has an expr");
                assert!(
                    panel["datasource"]["uid"] == "${datasource}"
                        || t["datasource"]["uid"] == "${datasource}",
                    "{title} / {}: datasource is not the variable",
                    panel["title"]
                );
                out.push((
                    title.clone(),
                    panel["title"].as_str().unwrap_or("").to_owned(),
                    expr.to_owned(),
                ));
            }
        }
    }
    out
}

fn substitute(expr: &str) -> String {
    expr.replace("${tenant}", ".*")
        .replace("$tenant", ".*")
        .replace("$__rate_interval", "1m")
        .replace("$__range", "1h")
        .replace("$__interval", "15s")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_panel_query_returns_data_from_a_demo() {
    let queries = panel_queries();
    assert!(queries.len() >= 20, "{} queries", queries.len());
    let demo = Demo::start(&["--agents", "16", "--speed", "600", "--seed", "3"]);
    let key = demo.keys["metrics"]
        .as_str()
        .expect("metrics key")
        .to_owned();
    let prom = Prometheus::start(
        &[
            ("swarmscope", &host_port(&demo.base)),
            ("swarm-platform", &host_port(&demo.platform_metrics)),
        ],
        &key,
        "",
    );
    // Wait until every query has data (rates need a few scrapes; dependency
    // waits need a blocked ticket to be released), at most 90 s.
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut failing: Vec<String>;
    loop {
        failing = Vec::new();
        for (dashboard, panel, expr) in &queries {
            match prom.query(&substitute(expr)).await {
                Ok(result) if !result.is_empty() => {}
                Ok(_) => failing.push(format!("{dashboard} / {panel}: no data: {expr}")),
                Err(e) => panic!("{dashboard} / {panel}: `{expr}` does not parse: {e}"),
            }
        }
        if failing.is_empty() || Instant::now() > deadline {
            break;
        }
        tokio::time::sleep(Duration::from_secs(3)).await;
    }
    assert!(
        failing.is_empty(),
        "panels without data:\n{}",
        failing.join("\n")
    );
}
