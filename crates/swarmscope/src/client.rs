//! The HTTP client the terminal commands use to talk to a collector.

use anyhow::{anyhow, Context};
use clap::Args;
use serde_json::Value;

/// Where the collector is and how to authenticate.
#[derive(Debug, Clone, Args)]
pub(crate) struct ClientArgs {
    /// Collector base URL.
    #[arg(long, env = "SWARMSCOPE_URL", default_value = "http://127.0.0.1:4318")]
    pub(crate) url: String,
    /// API key (sent as a bearer token).
    #[arg(long, env = "SWARMSCOPE_API_KEY", hide_env_values = true)]
    pub(crate) key: Option<String>,
}

/// A collector client.
pub(crate) struct Client {
    http: reqwest::Client,
    base: String,
    key: Option<String>,
}

impl Client {
    pub(crate) fn new(args: &ClientArgs) -> anyhow::Result<Client> {
        Ok(Client {
            http: reqwest::Client::builder()
                .timeout(std::time::Duration::from_secs(30))
                .build()
                .context("cannot build the HTTP client")?,
            base: args.url.trim_end_matches('/').to_owned(),
            key: args.key.clone(),
        })
    }

    /// GETs a JSON document; a non-2xx answer becomes an error carrying the
    /// server's message.
    pub(crate) async fn get_json(
        &self,
        path: &str,
        query: &[(&str, String)],
    ) -> anyhow::Result<Value> {
        let mut req = self.http.get(format!("{}{path}", self.base)).query(query);
        if let Some(k) = &self.key {
            req = req.bearer_auth(k);
        }
        let resp = req
            .send()
            .await
            .with_context(|| format!("cannot reach the collector at {}", self.base))?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            let msg = body["error"].as_str().unwrap_or("no error message");
            return Err(anyhow!(
                "{} {}: {msg}",
                status.as_u16(),
                status.canonical_reason().unwrap_or("")
            ));
        }
        Ok(body)
    }
}
