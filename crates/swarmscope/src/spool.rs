//! `swarmscope spool push PATH`: for the host to run after a VM died, to ship
//! what its agent spooled. Re-pushing is harmless: the collector stores each
//! span once.

use anyhow::bail;
use swarmscope_sdk::export::push_spool;
use swarmscope_sdk::tracer::TracerConfig;

use crate::cli::SpoolPushArgs;

pub(crate) async fn push(args: SpoolPushArgs) -> anyhow::Result<()> {
    let mut config = TracerConfig::from_env();
    config.url = args.client.url.clone();
    config.api_key = args.client.key.clone();
    let report = push_spool(&args.path, &config)
        .await
        .map_err(|e| crate::UsageError(e.to_string()))?;
    println!(
        "pushed {} spans and {} log lines from {} file(s); {} invalid item(s) dropped",
        report.spans,
        report.logs,
        report.files_done.len(),
        report.dropped
    );
    if !report.files_kept.is_empty() {
        for (file, why) in &report.files_kept {
            eprintln!("kept {}: {why}", file.display());
        }
        bail!(
            "{} spool file(s) could not be fully sent and were kept",
            report.files_kept.len()
        );
    }
    Ok(())
}
