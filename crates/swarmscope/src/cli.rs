//! Command-line interface: every subcommand and flag, and dispatch.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

use crate::client::ClientArgs;

/// Observability for fleets of AI coding agents: traces, logs and metrics in one binary.
#[derive(Debug, Parser)]
#[command(name = "swarmscope", version, about)]
pub(crate) struct Cli {
    #[command(subcommand)]
    pub(crate) command: Command,
}

#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Run the collector: ingest, query API and storage.
    Serve(ServeArgs),
    /// Manage API keys.
    Keys {
        #[command(subcommand)]
        command: KeysCommand,
    },
    /// Print one trace as an indented tree.
    Trace(TraceArgs),
    /// List trace summaries, newest first.
    Traces(TracesArgs),
    /// Print log lines (oldest first); with --follow, keep printing new ones.
    Logs(LogsArgs),
    /// Ship spool files written by agents that could not reach the collector.
    Spool {
        #[command(subcommand)]
        command: SpoolCommand,
    },
    /// Run the collector, UI, a simulated platform and a fleet of agents.
    Demo(DemoArgs),
    /// Print the alert rules, their states and the alerts pending or firing.
    Alerts(AlertsArgs),
    /// Benchmarks that print figures.
    Bench {
        #[command(subcommand)]
        command: BenchCommand,
    },
}

/// Flags of `alerts`.
#[derive(Debug, Args)]
pub(crate) struct AlertsArgs {
    /// Only alerts of this tenant and those without one (admin keys).
    #[arg(long)]
    pub(crate) tenant: Option<String>,
    #[command(flatten)]
    pub(crate) client: ClientArgs,
}

/// Flags of `demo`.
#[derive(Debug, Args)]
pub(crate) struct DemoArgs {
    /// Simulated agents working at once (each works one ticket at a time).
    #[arg(long, default_value_t = 50)]
    pub(crate) agents: usize,
    /// Tenants, of different sizes (1-8).
    #[arg(long, default_value_t = 3)]
    pub(crate) tenants: usize,
    /// Time compression: real-world durations beyond 300 ms run this many
    /// times faster (an LLM call of 30 s takes 0.8 s at 60).
    #[arg(long, default_value_t = 60.0)]
    pub(crate) speed: f64,
    /// Seed of the ticket sequence: the same seed gives the same tickets and outcomes [default: random, printed].
    #[arg(long)]
    pub(crate) seed: Option<u64>,
    /// Stop after this many seconds (flushing everything) [default: until Ctrl-C].
    #[arg(long)]
    pub(crate) duration: Option<u64>,
    /// Work this many tickets, then keep serving until Ctrl-C or --duration.
    #[arg(long)]
    pub(crate) tickets: Option<u64>,
    /// Address of the collector and UI [default: 127.0.0.1:4318].
    #[arg(long)]
    pub(crate) listen: Option<SocketAddr>,
    /// Directory for the database, keys and spool [default: ./swarmscope-demo].
    #[arg(long)]
    pub(crate) data_dir: Option<PathBuf>,
    /// The admin key to create [default: a new random key].
    #[arg(long, env = "SWARMSCOPE_DEMO_ADMIN_KEY")]
    pub(crate) admin_key: Option<String>,
    /// Print the first N tickets of the seed's script as JSON lines and exit.
    #[arg(long, value_name = "N")]
    pub(crate) plan: Option<u64>,
    /// Fail often: VM spawns, Claude overloaded and rate-limited errors (to see alerts fire).
    #[arg(long)]
    pub(crate) inject_failures: bool,
    /// A collector config file (alerts and their channels, prices, limits); its keys are kept alongside the demo's.
    #[arg(long)]
    pub(crate) config: Option<PathBuf>,
}

/// Flags of `serve`. Each overrides the config file; environment variables
/// override the file too and are overridden by flags.
#[derive(Debug, Args)]
pub(crate) struct ServeArgs {
    /// Address to listen on [default: 127.0.0.1:4318].
    #[arg(long, env = "SWARMSCOPE_LISTEN")]
    pub(crate) listen: Option<SocketAddr>,
    /// Directory for the database [default: ./swarmscope-data].
    #[arg(long, env = "SWARMSCOPE_DATA_DIR")]
    pub(crate) data_dir: Option<PathBuf>,
    /// TOML config file (keys, limits).
    #[arg(long, env = "SWARMSCOPE_CONFIG")]
    pub(crate) config: Option<PathBuf>,
    /// Allow a non-loopback listen address without API keys.
    #[arg(long)]
    pub(crate) insecure: bool,
}

#[derive(Debug, Subcommand)]
pub(crate) enum KeysCommand {
    /// Create a key, print it once, and store its hash in the config file.
    Add(KeysAddArgs),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(crate) enum RoleArg {
    Ingest,
    Read,
    Admin,
    /// Only GET /metrics (for Prometheus).
    Metrics,
}

#[derive(Debug, Args)]
pub(crate) struct KeysAddArgs {
    /// Config file to add the key to (created if missing).
    #[arg(long, env = "SWARMSCOPE_CONFIG")]
    pub(crate) config: PathBuf,
    /// Tenant the key is bound to (not for admin keys).
    #[arg(long)]
    pub(crate) tenant: Option<String>,
    /// What the key may do; repeat for several (e.g. --role ingest --role read).
    #[arg(long = "role", required = true)]
    pub(crate) roles: Vec<RoleArg>,
    /// A label for people.
    #[arg(long)]
    pub(crate) name: Option<String>,
}

#[derive(Debug, Args)]
pub(crate) struct TraceArgs {
    /// The trace id.
    pub(crate) trace_id: String,
    /// Tenant, for admin keys when several tenants share the id.
    #[arg(long)]
    pub(crate) tenant: Option<String>,
    /// Print the raw JSON instead of the tree.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) client: ClientArgs,
}

#[derive(Debug, Args)]
pub(crate) struct TracesArgs {
    /// Only this tenant (admin keys).
    #[arg(long)]
    pub(crate) tenant: Option<String>,
    /// Only this ticket.
    #[arg(long)]
    pub(crate) ticket: Option<String>,
    /// Only this agent.
    #[arg(long)]
    pub(crate) agent: Option<String>,
    /// Only traces with (error) or without (ok) errors.
    #[arg(long)]
    pub(crate) status: Option<String>,
    /// Only traces holding a span with this name.
    #[arg(long)]
    pub(crate) name: Option<String>,
    /// Only traces at least this long.
    #[arg(long)]
    pub(crate) min_duration_ms: Option<f64>,
    /// Only traces starting after this (RFC 3339, or an age like 15m, 2h).
    #[arg(long)]
    pub(crate) since: Option<String>,
    /// Only traces starting before this.
    #[arg(long)]
    pub(crate) until: Option<String>,
    /// Only traces holding a span with this attribute value (`key=value`,
    /// e.g. `model=claude-sonnet-4-5`).
    #[arg(long)]
    pub(crate) attr: Option<String>,
    /// How many to list.
    #[arg(long, default_value_t = 20)]
    pub(crate) limit: usize,
    /// Print the raw JSON instead of a table.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) client: ClientArgs,
}

#[derive(Debug, Args)]
pub(crate) struct LogsArgs {
    /// Only lines of this trace (all of them, in time order).
    #[arg(long)]
    pub(crate) trace: Option<String>,
    /// Only lines of this ticket.
    #[arg(long)]
    pub(crate) ticket: Option<String>,
    /// Only this tenant (admin keys).
    #[arg(long)]
    pub(crate) tenant: Option<String>,
    /// Only lines at least this severe (debug, info, warn, error, fatal).
    #[arg(long)]
    pub(crate) level: Option<String>,
    /// Only lines whose message contains this text.
    #[arg(long)]
    pub(crate) grep: Option<String>,
    /// Only lines after this (RFC 3339, or an age like 15m, 2h).
    #[arg(long)]
    pub(crate) since: Option<String>,
    /// How many of the newest lines to print first.
    #[arg(long, default_value_t = 100)]
    pub(crate) limit: usize,
    /// Keep running and print new lines as they arrive.
    #[arg(long, short = 'f')]
    pub(crate) follow: bool,
    /// Print raw JSON lines instead of text.
    #[arg(long)]
    pub(crate) json: bool,
    #[command(flatten)]
    pub(crate) client: ClientArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum SpoolCommand {
    /// Send a spool file (or every *.jsonl in a directory) and delete what was accepted.
    Push(SpoolPushArgs),
}

#[derive(Debug, Args)]
pub(crate) struct SpoolPushArgs {
    /// A spool file, or a directory of them.
    pub(crate) path: PathBuf,
    #[command(flatten)]
    pub(crate) client: ClientArgs,
}

#[derive(Debug, Subcommand)]
pub(crate) enum BenchCommand {
    /// Drive a collector with simulated agents and report spans/s, ack
    /// latency, trace read latency, RSS and bytes per span; then check that
    /// every acknowledged span is stored.
    Ingest(crate::bench::IngestArgs),
    /// N simulated VMs flush a ticket's spans and log lines at once through
    /// the SDK; report flush latency, 503s, spooling, collector memory, and
    /// check that everything is stored once.
    Fleet(crate::fleet::FleetArgs),
    /// A steady load for a bounded time with short retention: samples the
    /// collector's memory, descriptors and database size, and fails unless
    /// they stay flat while pruning runs.
    Soak(crate::soak::SoakArgs),
}

pub(crate) async fn run(cli: Cli) -> anyhow::Result<()> {
    match cli.command {
        Command::Serve(args) => crate::serve::run(args).await,
        Command::Demo(args) => crate::demo::run(args).await,
        Command::Alerts(args) => crate::alerts::print_alerts(args).await,
        Command::Keys {
            command: KeysCommand::Add(args),
        } => crate::keys::add(args),
        Command::Trace(args) => crate::tree::print_trace(args).await,
        Command::Traces(args) => crate::tree::print_traces(args).await,
        Command::Logs(args) => crate::logs::print_logs(args).await,
        Command::Spool {
            command: SpoolCommand::Push(args),
        } => crate::spool::push(args).await,
        Command::Bench {
            command: BenchCommand::Ingest(args),
        } => crate::bench::ingest(args).await,
        Command::Bench {
            command: BenchCommand::Fleet(args),
        } => crate::fleet::run(args).await,
        Command::Bench {
            command: BenchCommand::Soak(args),
        } => crate::soak::run(args).await,
    }
}
