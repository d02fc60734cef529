//! The structured logger: the seed's JSON line format on top of `tracing`.
//!
//! ```no_run
//! let _guard = swarmscope_sdk::log::init(swarmscope_sdk::log::LogConfig::default()).unwrap();
//! let span = tracing::info_span!("ticket", tenant_id = "tenant_001", ticket_id = "ticket_456");
//! let _in = span.enter();
//! tracing::info!(duration_ms = 45, "Ticket claimed by agent"); // carries tenant and ticket
//! ```
//!
//! Format: JSON lines (the seed's), or a human format for development — chosen
//! automatically (pretty on a terminal) unless `SWARMSCOPE_LOG_FORMAT=json` or
//! `pretty` says otherwise. Level filter: `SWARMSCOPE_LOG`, else `RUST_LOG`,
//! else the config's default. Output: stdout, or a file rotated by size with
//! old files gzip-compressed (the `file-rotate` crate).

mod json;
/// Secret masking, shared with the collector's scrubbing.
pub use swarmscope_model::secret as redact;
mod shipping;

use std::io::{IsTerminal, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use file_rotate::compression::Compression;
use file_rotate::suffix::AppendCount;
use file_rotate::{ContentLimit, FileRotate};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::EnvFilter;

pub use json::SeedJsonLayer;
pub use shipping::LogBuffer;

/// Line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// The seed's JSON lines.
    Json,
    /// Human-readable lines for development.
    Pretty,
}

impl LogFormat {
    /// From `SWARMSCOPE_LOG_FORMAT`, else pretty on a terminal and JSON otherwise.
    pub fn detect() -> LogFormat {
        match std::env::var("SWARMSCOPE_LOG_FORMAT").ok().as_deref() {
            Some("json") => LogFormat::Json,
            Some("pretty") => LogFormat::Pretty,
            _ if std::io::stdout().is_terminal() => LogFormat::Pretty,
            _ => LogFormat::Json,
        }
    }
}

/// Size-based rotation of a log file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileOutput {
    /// The live file; rotated copies are `path.1`, `path.2`, … (`.gz` when compressed).
    pub path: PathBuf,
    /// Rotate once the live file passes this many bytes.
    pub max_bytes: usize,
    /// Rotated files kept.
    pub keep: usize,
    /// Gzip rotated files (all but the newest rotated one).
    pub compress: bool,
}

/// Logger settings.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Format; `None` detects it (see [`LogFormat::detect`]).
    pub format: Option<LogFormat>,
    /// Filter used when neither `SWARMSCOPE_LOG` nor `RUST_LOG` is set.
    pub default_filter: String,
    /// Write to a rotating file instead of stdout.
    pub file: Option<FileOutput>,
    /// Also queue JSON lines for the collector (see the tracer's flush).
    pub ship: Option<LogBuffer>,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: None,
            default_filter: "info".into(),
            file: None,
            ship: None,
        }
    }
}

/// Why the logger could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The filter expression is invalid.
    #[error("invalid log filter: {0}")]
    Filter(String),
    /// A global subscriber is already installed.
    #[error("a global logger is already installed")]
    AlreadyInstalled,
}

/// Keeps buffered output flushed; hold it until the program ends.
pub struct LogGuard {
    file: Option<Arc<Mutex<std::io::BufWriter<FileRotate<AppendCount>>>>>,
}

impl Drop for LogGuard {
    fn drop(&mut self) {
        if let Some(f) = &self.file {
            if let Ok(mut w) = f.lock() {
                let _ = w.flush();
            }
        }
    }
}

/// A writer handle over a shared, buffered rotating file.
#[derive(Clone)]
struct SharedFile(Arc<Mutex<std::io::BufWriter<FileRotate<AppendCount>>>>);

impl Write for SharedFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let mut w = self.0.lock().unwrap_or_else(|p| p.into_inner());
        w.write_all(buf)?;
        // Whole lines reach the file promptly; the BufWriter still batches the syscall
        // when many lines are written back to back.
        if w.buffer().len() > 32 * 1024 {
            w.flush()?;
        }
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        self.0.lock().unwrap_or_else(|p| p.into_inner()).flush()
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for SharedFile {
    type Writer = SharedFile;
    fn make_writer(&'a self) -> Self::Writer {
        self.clone()
    }
}

/// Opens a size-rotated, optionally compressing log file.
pub fn rotating_file(out: &FileOutput) -> FileRotate<AppendCount> {
    FileRotate::new(
        &out.path,
        AppendCount::new(out.keep.max(1)),
        ContentLimit::BytesSurpassed(out.max_bytes.max(1)),
        if out.compress {
            Compression::OnRotate(1)
        } else {
            Compression::None
        },
        None,
    )
}

/// Installs the logger as the global subscriber.
pub fn init(config: LogConfig) -> Result<LogGuard, LogError> {
    let filter = EnvFilter::try_from_env("SWARMSCOPE_LOG")
        .or_else(|_| EnvFilter::try_from_default_env())
        .or_else(|_| EnvFilter::try_new(&config.default_filter))
        .map_err(|e| LogError::Filter(e.to_string()))?;
    let format = config.format.unwrap_or_else(LogFormat::detect);
    let registry = tracing_subscriber::registry().with(filter);
    let mut guard = LogGuard { file: None };
    let installed = match (&config.file, format) {
        (Some(out), LogFormat::Json) => {
            let shared = Arc::new(Mutex::new(std::io::BufWriter::new(rotating_file(out))));
            guard.file = Some(Arc::clone(&shared));
            let layer = SeedJsonLayer::new(SharedFile(shared));
            match config.ship {
                Some(buf) => registry.with(layer.with_shipper(buf)).try_init(),
                None => registry.with(layer).try_init(),
            }
        }
        (Some(out), LogFormat::Pretty) => {
            let shared = Arc::new(Mutex::new(std::io::BufWriter::new(rotating_file(out))));
            guard.file = Some(Arc::clone(&shared));
            registry
                .with(
                    tracing_subscriber::fmt::layer()
                        .with_ansi(false)
                        .with_writer(SharedFile(shared)),
                )
                .try_init()
        }
        (None, LogFormat::Json) => {
            let layer = SeedJsonLayer::new(std::io::stdout);
            match config.ship {
                Some(buf) => registry.with(layer.with_shipper(buf)).try_init(),
                None => registry.with(layer).try_init(),
            }
        }
        (None, LogFormat::Pretty) => registry.with(tracing_subscriber::fmt::layer()).try_init(),
    };
    installed.map_err(|_| LogError::AlreadyInstalled)?;
    Ok(guard)
}
