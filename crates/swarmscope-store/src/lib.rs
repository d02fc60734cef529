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
pub use reader::{ForwardBatch, Reader, StoreStats};
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
