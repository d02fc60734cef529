//! Store errors, typed so the server can map each to an HTTP status.

use std::path::PathBuf;

/// Failure to open, migrate or read the database.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// SQLite refused an operation.
    #[error("sqlite: {0}")]
    Sqlite(#[from] rusqlite::Error),
    /// A file or directory could not be used.
    #[error("{}: {source}", path.display())]
    Io {
        /// The path involved.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The database was written by a newer swarmscope.
    #[error("database schema version {found} is newer than this binary supports ({supported})")]
    SchemaTooNew {
        /// Version in the file.
        found: i64,
        /// Newest version this binary knows.
        supported: i64,
    },
    /// The writer thread could not be started.
    #[error("could not start the writer thread: {0}")]
    Thread(std::io::Error),
    /// A stored row could not be decoded.
    #[error("corrupt row: {0}")]
    Corrupt(String),
    /// A read ran past its time budget, or its caller went away.
    #[error("the read ran past its time budget or was cancelled")]
    Interrupted,
}

/// Why a write was not acknowledged. Nothing of the request was committed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WriteError {
    /// The bounded ingest queue is full; the client should retry later.
    #[error("ingest queue is full ({queued} spans waiting, capacity {capacity})")]
    QueueFull {
        /// Spans already queued.
        queued: usize,
        /// The queue's capacity in spans.
        capacity: usize,
    },
    /// The disk or database is full.
    #[error("storage is full: {0}")]
    DiskFull(String),
    /// The writer is shutting down.
    #[error("the store is shutting down")]
    Closed,
    /// The transaction failed and was rolled back.
    #[error("commit failed: {0}")]
    Commit(String),
}
