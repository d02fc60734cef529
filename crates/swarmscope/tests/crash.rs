//! kill -9 in the middle of ingest: every span answered 202 survives.

mod support;

use std::time::Duration;

use support::{span, Server};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn acknowledged_spans_survive_kill_9() {
    let tmp = tempfile::tempdir().expect("tmp");
    let mut all_acked: Vec<(String, usize)> = Vec::new();
    for round in 0..3 {
        let mut server = Server::start_in(tmp.path(), None, &[]);
        let client = reqwest::Client::new();
        let mut tasks = Vec::new();
        for w in 0..8 {
            let (client, base) = (client.clone(), server.base.clone());
            tasks.push(tokio::spawn(async move {
                let mut acked = Vec::new();
                for i in 0..10_000 {
                    let trace = format!("r{round}-w{w}-t{i}");
                    let n = 1 + (i % 30);
                    let spans: Vec<_> = (0..n)
                        .map(|j| span("acme", &trace, &format!("s{j}"), "llm.generate"))
                        .collect();
                    match client
                        .post(format!("{base}/api/traces"))
                        .json(&spans)
                        .send()
                        .await
                    {
                        Ok(r) if r.status() == 202 => acked.push((trace, n)),
                        _ => break,
                    }
                }
                acked
            }));
        }
        tokio::time::sleep(Duration::from_millis(300 + 200 * round)).await;
        server.kill9();
        for t in tasks {
            all_acked.extend(t.await.expect("task"));
        }
    }
    assert!(
        all_acked.len() > 50,
        "the run acknowledged too little to test: {}",
        all_acked.len()
    );
    let server = Server::start_in(tmp.path(), None, &[]);
    for (trace, n) in &all_acked {
        let (status, doc) = server.get(&format!("/api/traces/{trace}"), None).await;
        assert_eq!(
            status, 200,
            "acknowledged trace {trace} is missing after kill -9"
        );
        assert_eq!(doc["spans"].as_array().map(Vec::len), Some(*n), "{trace}");
    }
    println!(
        "{} acknowledged requests all present after 3 kill -9 rounds",
        all_acked.len()
    );
}
