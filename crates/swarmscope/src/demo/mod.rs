//! `swarmscope demo`: the collector, a simulated swarm platform and a fleet
//! of simulated agents in one process, all talking over real sockets, with
//! authentication on. The fleet works tickets along the seed's span tree with
//! realistic timings and failures (see `plan`), so every span type, log line,
//! metric and failure path of the product has real data behind it.

mod agent;
mod plan;
mod platform;
mod progress;

use std::collections::HashMap;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use rand::Rng;
use serde_json::json;
use swarmscope_model::price::PriceTable;
use swarmscope_sdk::log::{LogBuffer, SeedJsonLayer};
use swarmscope_sdk::tracer::{Tracer, TracerConfig};
use swarmscope_server::auth::{generate_key, hash_key};
use swarmscope_server::config::{KeyConfig, Role};
use swarmscope_server::Config;
use tokio::sync::watch;
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

use crate::cli::DemoArgs;
use crate::serve::{shutdown_signal, start_collector};
use crate::UsageError;

use self::agent::Fleet;
use self::plan::{Clock, Scenario};
use self::platform::{Platform, PlatformServer};
use self::progress::Progress;

/// The keys a demo run creates.
struct DemoKeys {
    admin: String,
    metrics: String,
    /// tenant → (read key, ingest key)
    tenants: Vec<(String, String, String)>,
}

impl DemoKeys {
    fn new(admin: Option<String>, tenants: &[&str]) -> DemoKeys {
        DemoKeys {
            admin: admin.unwrap_or_else(generate_key),
            metrics: generate_key(),
            tenants: tenants
                .iter()
                .map(|t| ((*t).to_owned(), generate_key(), generate_key()))
                .collect(),
        }
    }

    fn config(&self) -> Vec<KeyConfig> {
        let key = |k: &str, tenant: Option<&str>, role: Role, name: String| KeyConfig {
            hash: hash_key(k),
            tenant: tenant.map(str::to_owned),
            roles: vec![role],
            name: Some(name),
        };
        let mut keys = vec![
            key(&self.admin, None, Role::Admin, "demo admin".into()),
            key(&self.metrics, None, Role::Metrics, "demo metrics".into()),
        ];
        for (tenant, read, ingest) in &self.tenants {
            keys.push(key(
                read,
                Some(tenant),
                Role::Read,
                format!("{tenant} read"),
            ));
            keys.push(key(
                ingest,
                Some(tenant),
                Role::Ingest,
                format!("{tenant} agents"),
            ));
        }
        keys
    }
}

/// Checks the flags; a bad one is a usage error (exit 2).
fn validate(args: &DemoArgs) -> Result<(), UsageError> {
    let bad = |m: String| Err(UsageError(m));
    if !(1..=plan::TENANTS.len()).contains(&args.tenants) {
        return bad(format!(
            "--tenants must be 1 to {}, not {}",
            plan::TENANTS.len(),
            args.tenants
        ));
    }
    if args.agents < args.tenants || args.agents > 2_000 {
        return bad(format!(
            "--agents must be between --tenants ({}) and 2000, not {}",
            args.tenants, args.agents
        ));
    }
    if !(args.speed.is_finite() && (1.0..=10_000.0).contains(&args.speed)) {
        return bad(format!("--speed must be 1 to 10000, not {}", args.speed));
    }
    if let Some(key) = &args.admin_key {
        if key.len() < 16 || key.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return bad("--admin-key must be at least 16 characters, without spaces".into());
        }
    }
    if args.duration == Some(0) || args.tickets == Some(0) {
        return bad("--duration and --tickets must be positive".into());
    }
    Ok(())
}

/// The demo's logging: collector warnings to stderr; agent and platform log
/// lines in the seed's JSON shape, queued for shipping to the collector.
fn init_logging(buffer: LogBuffer) {
    let stderr_filter = tracing_subscriber::EnvFilter::try_from_env("SWARMSCOPE_LOG")
        .unwrap_or_else(|_| {
            tracing_subscriber::EnvFilter::new(
                "warn,swarmscope::demo=off,swarmscope_sdk=error,swarmscope_alerts=error",
            )
        });
    let shipped = tracing_subscriber::filter::Targets::new()
        .with_target("swarmscope::demo", tracing::Level::INFO)
        .with_target("swarmscope_sdk", tracing::Level::INFO);
    let _ = tracing_subscriber::registry()
        .with(
            tracing_subscriber::fmt::layer()
                .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
                .with_writer(std::io::stderr)
                .with_filter(stderr_filter),
        )
        .with(
            SeedJsonLayer::new(std::io::sink)
                .with_shipper(buffer)
                .with_filter(shipped),
        )
        .try_init();
}

/// Writes `demo-keys.json` (the keys) and `demo.toml` (a config with their
/// hashes, to reopen the data with `swarmscope serve --config`), owner-only.
fn write_key_files(dir: &Path, keys: &DemoKeys, config: &Config, ui: &str) -> anyhow::Result<()> {
    let tenants: serde_json::Map<String, serde_json::Value> = keys
        .tenants
        .iter()
        .map(|(t, read, ingest)| (t.clone(), json!({"read": read, "ingest": ingest})))
        .collect();
    let doc = json!({
        "ui": ui,
        "admin": keys.admin,
        "metrics": keys.metrics,
        "tenants": tenants,
    });
    let mut toml = format!(
        "# Written by `swarmscope demo`: reopen its data with\n#   swarmscope serve --config {}\nlisten = \"{}\"\ndata_dir = {:?}\n",
        dir.join("demo.toml").display(),
        config.listen,
        config.data_dir.display().to_string(),
    );
    for k in &config.keys {
        toml.push_str(&format!("\n[[keys]]\nhash = \"{}\"\n", k.hash));
        if let Some(t) = &k.tenant {
            toml.push_str(&format!("tenant = \"{t}\"\n"));
        }
        let roles: Vec<String> = k
            .roles
            .iter()
            .map(|r| format!("\"{}\"", r.as_str()))
            .collect();
        toml.push_str(&format!("roles = [{}]\n", roles.join(", ")));
        if let Some(n) = &k.name {
            toml.push_str(&format!("name = \"{n}\"\n"));
        }
    }
    for (name, text) in [
        ("demo-keys.json", serde_json::to_string_pretty(&doc)? + "\n"),
        ("demo.toml", toml),
    ] {
        let path = dir.join(name);
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create(true).truncate(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut file = options
            .open(&path)
            .with_context(|| format!("cannot write {}", path.display()))?;
        file.write_all(text.as_bytes())
            .with_context(|| format!("cannot write {}", path.display()))?;
    }
    Ok(())
}

/// At `--speed` 60 a demo minute holds an hour of fleet work, so rules that
/// count events in a window (spawn failures, Claude errors, LLM spend) would
/// fire on a healthy fleet: their thresholds are multiplied by the speed.
/// Ratios, latencies and gauges are not rates of time and stay as they are.
fn scaled_event_thresholds(speed: f64) -> Vec<swarmscope_alerts::config::RuleOverride> {
    swarmscope_alerts::default_rules()
        .into_iter()
        .filter(|r| {
            ["VMSpawnFailure", "ClaudeAPIErrors", "LLMCostBudget"].contains(&r.name.as_str())
        })
        .map(|r| swarmscope_alerts::config::RuleOverride {
            name: r.name,
            severity: None,
            threshold: Some(r.threshold * speed),
            for_secs: None,
            window_secs: None,
            enabled: None,
        })
        .collect()
}

/// Feeds tickets to the platform: an initial batch that keeps every agent
/// busy, then arrivals at about 85% of the fleet's capacity with a burst
/// every minute that builds a queue. Stops after `limit` tickets if given.
async fn arrivals(
    scenario: Scenario,
    platform: Arc<Platform>,
    clock: Clock,
    agents: usize,
    limit: Option<u64>,
    mut stop: watch::Receiver<bool>,
) {
    let sample: Vec<f64> = (0..200)
        .map(|i| clock.ticket_time(&scenario.ticket(i)).as_secs_f64())
        .collect();
    let mean = sample.iter().sum::<f64>() / sample.len() as f64;
    let base_rate = 0.85 * agents as f64 / mean.max(0.05);
    let mut gaps = scenario.stream(1);
    let start = tokio::time::Instant::now();
    let mut next = 0u64;
    let limit = limit.unwrap_or(u64::MAX);
    while next < (agents as u64).min(limit) {
        platform.enqueue(scenario.ticket(next));
        next += 1;
    }
    while next < limit && !*stop.borrow() {
        // A minute's cycle: 40 s calm, then 20 s of twice the rate.
        let phase = start.elapsed().as_secs() % 60;
        let rate = if phase < 40 {
            base_rate * 0.8
        } else {
            base_rate * 1.9
        };
        let u: f64 = gaps.random_range(f64::EPSILON..1.0);
        let gap = Duration::from_secs_f64((-u.ln() / rate).min(10.0));
        tokio::select! {
            _ = tokio::time::sleep(gap) => {}
            _ = stop.changed() => break,
        }
        platform.enqueue(scenario.ticket(next));
        next += 1;
    }
}

/// Runs the demo until Ctrl-C or `--duration`.
pub(crate) async fn run(args: DemoArgs) -> anyhow::Result<()> {
    validate(&args)?;
    let seed = args
        .seed
        .unwrap_or_else(|| rand::rng().random_range(1..1_000_000));
    let mut scenario = Scenario::new(seed, args.tenants);
    if args.inject_failures {
        scenario = scenario.with_injected_failures();
    }
    if let Some(n) = args.plan {
        let mut out = std::io::stdout().lock();
        for i in 0..n {
            writeln!(out, "{}", serde_json::to_string(&scenario.ticket(i))?)?;
        }
        return Ok(());
    }
    let tenants = scenario.tenants();
    let data_dir = args
        .data_dir
        .clone()
        .unwrap_or_else(|| PathBuf::from("swarmscope-demo"));
    std::fs::create_dir_all(data_dir.join("spool"))
        .with_context(|| format!("cannot create {}", data_dir.display()))?;
    let keys = DemoKeys::new(args.admin_key.clone(), &tenants);
    // A config file may set alerts (channels, overrides), prices, limits.
    let mut config = match &args.config {
        Some(path) => Config::load(path).map_err(|e| UsageError(e.to_string()))?,
        None => {
            let mut c = Config {
                incomplete_after_secs: 120,
                ..Config::default()
            };
            c.alerts.interval_secs = 5;
            c.alerts.rules = scaled_event_thresholds(args.speed);
            c
        }
    };
    config.data_dir = data_dir.clone();
    config.keys.extend(keys.config());
    if let Some(listen) = args.listen {
        config.listen = listen;
    }
    // The platform's address is known before the collector starts, so the
    // alert engine can scrape it.
    let platform_listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("the platform cannot listen")?;
    let platform_addr = platform_listener
        .local_addr()
        .context("no platform address")?;
    config
        .alerts
        .scrape
        .push(swarmscope_alerts::config::ScrapeTarget {
            url: format!("http://{platform_addr}/metrics"),
            bearer: Some(keys.metrics.clone()),
        });
    config.validate().map_err(|e| UsageError(e.to_string()))?;

    let logs = LogBuffer::new(200_000);
    init_logging(logs.clone());
    let collector = start_collector(&config).await?;
    let collector_url = format!("http://{}", collector.addr);
    write_key_files(&data_dir, &keys, &config, &format!("{collector_url}/"))?;

    let progress = Arc::new(Progress::default());
    let clock = Clock::new(args.speed);
    let platform = Arc::new(Platform::new(
        &tenants,
        clock,
        Arc::clone(&progress),
        collector_url.clone(),
        keys.admin.clone(),
    )?);
    // The platform is one multi-tenant service: it sends with the admin key
    // (a tenant key may only send its own tenant's spans), and ships the
    // log lines of the whole process.
    let mut platform_config = TracerConfig::from_env();
    platform_config.url = collector_url.clone();
    platform_config.api_key = Some(keys.admin.clone());
    platform_config.service = Some("swarm-platform".into());
    platform_config.vm_id = None;
    platform_config.spool_path = data_dir.join("spool").join("platform.jsonl");
    platform_config.logs = Some(logs);
    let platform_tracer = Tracer::new(platform_config);
    let server = PlatformServer::start(
        platform_listener,
        Arc::clone(&platform),
        platform_tracer.clone(),
        keys.metrics.clone(),
    )
    .await?;
    let platform_url = format!("http://{}", server.addr);

    {
        let mut out = std::io::stdout().lock();
        writeln!(
            out,
            "swarmscope {} demo listening on {collector_url} (data in {})",
            env!("CARGO_PKG_VERSION"),
            data_dir.display()
        )?;
        writeln!(
            out,
            "  UI                {collector_url}/   (sign in with a key below)"
        )?;
        writeln!(out, "  admin key         {}", keys.admin)?;
        for (tenant, read, _) in &keys.tenants {
            writeln!(out, "  {:<17} {read}", format!("{tenant} read key"))?;
        }
        writeln!(
            out,
            "  metrics           {collector_url}/metrics (admin key or metrics key {})",
            keys.metrics
        )?;
        writeln!(
            out,
            "  platform metrics  {platform_url}/metrics (metrics key)"
        )?;
        writeln!(
            out,
            "  OTLP              {collector_url}/v1/traces, /v1/logs{}",
            collector
                .grpc_addr
                .map(|a| format!("; gRPC {a}"))
                .unwrap_or_default()
        )?;
        writeln!(
            out,
            "  alerts            {collector_url}/api/alerts, or `swarmscope alerts` (every {}s{})",
            config.alerts.interval_secs,
            if args.config.is_none() {
                "; event-count thresholds × speed"
            } else {
                ""
            }
        )?;
        writeln!(
            out,
            "  keys              {} (reopen later: swarmscope serve --config {})",
            data_dir.join("demo-keys.json").display(),
            data_dir.join("demo.toml").display()
        )?;
        writeln!(
            out,
            "  fleet             {} agents, {} tenants, {}x speed, seed {seed}{}{}",
            args.agents,
            args.tenants,
            args.speed,
            args.tickets
                .map(|n| format!(", {n} tickets"))
                .unwrap_or_default(),
            if args.inject_failures {
                ", failures injected"
            } else {
                ""
            }
        )?;
        out.flush()?;
    }

    let (stop_tx, stop_rx) = watch::channel(false);
    // The platform's spans and the process's log lines go out 4 times a second.
    let flusher = {
        let tracer = platform_tracer.clone();
        let mut stop = stop_rx.clone();
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(Duration::from_millis(250)) => {}
                    _ = stop.changed() => break,
                }
                tracer.flush().await;
            }
        })
    };
    let fleet = Arc::new(Fleet {
        platform: Arc::clone(&platform),
        platform_url,
        collector_url: collector_url.clone(),
        ingest_keys: keys
            .tenants
            .iter()
            .map(|(t, _, ingest)| (t.clone(), ingest.clone()))
            .collect::<HashMap<_, _>>(),
        clock,
        prices: PriceTable::default(),
        progress: Arc::clone(&progress),
        spool_dir: data_dir.join("spool"),
        http: reqwest::Client::builder()
            .timeout(Duration::from_secs(30))
            .build()
            .context("cannot build an HTTP client")?,
        stop: stop_rx.clone(),
    });
    let mut agents = tokio::task::JoinSet::new();
    for (tenant, count) in tenants.iter().zip(scenario.agents_per_tenant(args.agents)) {
        for n in 1..=count {
            let agent_id = format!("agent-{tenant}-{n:02}");
            agents.spawn(agent::run(
                Arc::clone(&fleet),
                (*tenant).to_owned(),
                agent_id,
            ));
        }
    }
    let feeder = tokio::spawn(arrivals(
        scenario.clone(),
        Arc::clone(&platform),
        clock,
        args.agents,
        args.tickets,
        stop_rx.clone(),
    ));
    let reporter = tokio::spawn(progress::report(
        Arc::clone(&progress),
        collector.store.clone(),
        collector.alerts.clone(),
        stop_rx.clone(),
    ));

    // Run until a signal or the duration; with --tickets, say when they are
    // all done (and keep serving, so the data can be browsed).
    let finished = {
        let progress = Arc::clone(&progress);
        let limit = args.tickets;
        async move {
            match limit {
                Some(n) => loop {
                    if progress.snapshot().finished() >= n {
                        break;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                },
                None => std::future::pending::<()>().await,
            }
        }
    };
    let deadline = async {
        match args.duration {
            Some(secs) => tokio::time::sleep(Duration::from_secs(secs)).await,
            None => std::future::pending::<()>().await,
        }
    };
    tokio::pin!(deadline);
    let signal = shutdown_signal();
    tokio::pin!(signal);
    tokio::select! {
        _ = &mut signal => {}
        _ = &mut deadline => {}
        _ = finished => {
            let s = progress.snapshot();
            // Flush first: the line promises the data is in the collector.
            platform_tracer.flush().await;
            println!(
                "\nfleet finished: {} tickets ({} completed, {} failed, {} killed); still serving until Ctrl-C",
                s.finished(), s.completed, s.failed, s.killed
            );
            tokio::select! {
                _ = &mut signal => {}
                _ = &mut deadline => {}
            }
        }
    }

    // Stop: no new tickets; agents finish or abandon their current ticket
    // (ending its trace) and flush; then the platform, then the collector.
    let _ = stop_tx.send(true);
    let _ = feeder.await;
    let drained = tokio::time::timeout(Duration::from_secs(60), async {
        while agents.join_next().await.is_some() {}
    })
    .await;
    if drained.is_err() {
        tracing::warn!("some agents did not stop within 60 s");
        agents.abort_all();
    }
    let _ = reporter.await;
    let _ = flusher.await;
    server.stop().await;
    let report = platform_tracer.flush().await;
    if report.spooled_spans + report.spooled_logs > 0 {
        tracing::warn!(
            spans = report.spooled_spans,
            logs = report.spooled_logs,
            "some platform data was spooled; ship it with `swarmscope spool push`"
        );
    }
    collector.stop().await?;
    let s = progress.snapshot();
    println!(
        "demo stopped: {} tickets ({} completed, {} failed, {} killed), LLM ${:.2}; data in {}",
        s.finished(),
        s.completed,
        s.failed,
        s.killed,
        s.cost_usd,
        data_dir.display()
    );
    Ok(())
}
