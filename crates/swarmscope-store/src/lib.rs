//! swarmscope's embedded SQLite store.
//!
//! One [`Store`] owns a database file in WAL mode, a single [`Writer`] thread
//! that group-commits every queued request in one transaction before
//! acknowledging each, and a pool of read connections ([`Reader`]) that never
//! wait behind the writer. Callers in async code use [`Writer::write`] (which
//! awaits the commit) and run [`Reader`] calls on a blocking thread.

mod error;
pub mod query;
mod reader;
mod schema;
mod writer;

pub use error::{StoreError, WriteError};
pub use query::{
    Cursor, LogFilter, LogPage, StatusFilter, TraceDetail, TraceFilter, TraceLookup, TracePage,
    TraceSummary, TRACE_LOG_LIMIT, TRACE_SPAN_LIMIT,
};
pub use reader::{ForwardBatch, ReadBudget, Reader, StoreStats};
pub use writer::{
    CloseScope, PruneOutcome, PruneScope, WriteOutcome, Writer, WriterConfig, WriterStats,
};

use std::path::{Path, PathBuf};

/// Name of the database file inside the data directory.
pub const DATABASE_FILE: &str = "swarmscope.db";

/// The store: one writer and a reader pool over one database file.
#[derive(Clone)]
pub struct Store {
    path: PathBuf,
    writer: Writer,
    reader: Reader,
}

impl Store {
    /// Opens (creating if needed) the database in `data_dir`, applies pending
    /// migrations and starts the writer thread.
    pub fn open(data_dir: &Path, config: WriterConfig) -> Result<Store, StoreError> {
        std::fs::create_dir_all(data_dir).map_err(|source| StoreError::Io {
            path: data_dir.to_owned(),
            source,
        })?;
        let path = data_dir.join(DATABASE_FILE);
        // Spans and logs are the tenants' data: only the collector's user may
        // read them, whatever the umask (SQLite gives its -wal and -shm files
        // the database file's mode).
        private(data_dir, 0o700)?;
        if !path.exists() {
            std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(&path)
                .map_err(|source| StoreError::Io {
                    path: path.clone(),
                    source,
                })?;
        }
        private(&path, 0o600)?;
        let conn = schema::open_writer_connection(&path)?;
        let writer = Writer::start(conn, config)?;
        let reader = Reader::new(path.clone());
        Ok(Store {
            path,
            writer,
            reader,
        })
    }

    /// The database file's path.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// The single writer.
    pub fn writer(&self) -> &Writer {
        &self.writer
    }

    /// The read side.
    pub fn reader(&self) -> &Reader {
        &self.reader
    }
}

/// Sets `path`'s permission bits to `mode`.
fn private(path: &Path, mode: u32) -> Result<(), StoreError> {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).map_err(|source| {
        StoreError::Io {
            path: path.to_owned(),
            source,
        }
    })
}
