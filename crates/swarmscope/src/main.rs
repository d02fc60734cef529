//! The `swarmscope` binary: the collector (`serve`), key management, terminal
//! readers for traces, the demo, and benchmarks.

mod alerts;
mod bench;
mod cli;
mod client;
mod demo;
mod fleet;
mod keys;
mod logs;
mod serve;
mod soak;
mod spool;
mod tree;

use std::process::ExitCode;

use clap::Parser;

/// mimalloc: the collector is allocation-heavy (JSON in and out); glibc's
/// malloc was the top of the profile of a trace read.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// An error in how the command was invoked (flags, config): exit code 2.
#[derive(Debug)]
pub(crate) struct UsageError(pub(crate) String);

impl std::fmt::Display for UsageError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UsageError {}

fn main() -> ExitCode {
    let cli = match cli::Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(
                e.kind(),
                ErrorKind::DisplayHelp
                    | ErrorKind::DisplayVersion
                    | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
            ) {
                let _ = e.print();
                return if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                    ExitCode::from(2)
                } else {
                    ExitCode::SUCCESS
                };
            }
            // One clear line: clap's first line names the problem.
            let rendered = e.render().to_string();
            let first = rendered.lines().next().unwrap_or("invalid arguments");
            eprintln!("swarmscope: {}", first.trim_start_matches("error: "));
            return ExitCode::from(2);
        }
    };
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("swarmscope: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::run(cli)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let code = if e.downcast_ref::<UsageError>().is_some() {
                2
            } else {
                1
            };
            // anyhow's alternate form keeps the context chain on one line.
            eprintln!("swarmscope: {e:#}");
            ExitCode::from(code)
        }
    }
}
