//! The schema, its versioned migrations, and connection settings.
//!
//! The seed's `agent_traces` table keyed every span by a random UUID and kept
//! four secondary indexes on it; each random-key index costs an insert a disk
//! seek's worth of B-tree work and ~100 bytes. Here spans are keyed by
//! `(trace, span_id)` where `trace` is the integer row id of a per-trace
//! summary row, so span inserts append at the end of the index, and the seed's
//! ticket, agent and start-time lookups live on the much smaller `traces`
//! table (one row per trace, not per span). See docs/design.md for the
//! measurements behind it.

use std::path::Path;

use rusqlite::{Connection, OpenFlags};

use crate::error::StoreError;

/// Migrations, applied in order; `PRAGMA user_version` records how many ran.
const MIGRATIONS: &[&str] = &[
    // 1: tenants, per-trace summaries, spans.
    r#"
    CREATE TABLE tenants (
        id   INTEGER PRIMARY KEY,
        name TEXT NOT NULL UNIQUE
    );

    -- One row per (tenant, trace): the trace's summary, kept current at ingest,
    -- and the anchor its spans hang from. Ticket, agent, vm and service are the
    -- values of the trace's first stored span; spans store their own value only
    -- when it differs ('' meaning none).
    CREATE TABLE traces (
        id            INTEGER PRIMARY KEY,
        tenant        INTEGER NOT NULL,
        trace_id      BLOB NOT NULL,
        start_ns      INTEGER NOT NULL,
        end_ns        INTEGER NOT NULL,
        root_name     TEXT,
        root_start_ns INTEGER,
        span_count    INTEGER NOT NULL DEFAULT 0,
        error_count   INTEGER NOT NULL DEFAULT 0,
        ticket_id     TEXT,
        agent_id      TEXT,
        vm_id         TEXT,
        service       TEXT
    );
    CREATE UNIQUE INDEX traces_by_trace_id ON traces(trace_id, tenant);
    CREATE INDEX traces_by_tenant_start ON traces(tenant, start_ns);
    CREATE INDEX traces_by_start ON traces(start_ns);
    CREATE INDEX traces_by_ticket ON traces(ticket_id, start_ns) WHERE ticket_id IS NOT NULL;
    CREATE INDEX traces_by_agent ON traces(agent_id, start_ns) WHERE agent_id IS NOT NULL;

    CREATE TABLE spans (
        trace          INTEGER NOT NULL,
        span_id        BLOB NOT NULL,
        parent_id      BLOB,
        name           TEXT NOT NULL,
        kind           INTEGER NOT NULL,
        status         INTEGER NOT NULL,
        status_message TEXT,
        start_ns       INTEGER NOT NULL,
        end_ns         INTEGER,
        ticket_id      TEXT,
        agent_id       TEXT,
        vm_id          TEXT,
        service        TEXT,
        attributes     TEXT,
        events         TEXT
    );
    CREATE UNIQUE INDEX spans_by_trace ON spans(trace, span_id);
    "#,
    // 2: logs; open and incomplete spans; when each trace last got data.
    r#"
    -- A span with no end is open (announced at start, or never ended). The
    -- collector closes open spans whose VM died or whose trace went silent,
    -- marking them incomplete; a genuine end that arrives later replaces that.
    ALTER TABLE spans ADD COLUMN incomplete INTEGER NOT NULL DEFAULT 0;
    CREATE INDEX spans_open ON spans(trace) WHERE end_ns IS NULL;
    ALTER TABLE traces ADD COLUMN updated_ns INTEGER NOT NULL DEFAULT 0;

    -- Log lines. (time_ns, tenant, fingerprint) makes a re-sent line a no-op
    -- and, being time-ordered, is appended to rather than written at random;
    -- the tenant is part of it so one tenant's line can never shadow another's.
    CREATE TABLE logs (
        id          INTEGER PRIMARY KEY,
        tenant      INTEGER NOT NULL,
        time_ns     INTEGER NOT NULL,
        fingerprint INTEGER NOT NULL,
        level       INTEGER NOT NULL,
        message     TEXT NOT NULL,
        trace_id    BLOB,
        span_id     BLOB,
        request_id  TEXT,
        ticket_id   TEXT,
        agent_id    TEXT,
        duration_ms REAL,
        metadata    TEXT
    );
    CREATE UNIQUE INDEX logs_by_time ON logs(time_ns, tenant, fingerprint);
    CREATE INDEX logs_by_tenant_time ON logs(tenant, time_ns);
    CREATE INDEX logs_by_trace ON logs(trace_id, time_ns) WHERE trace_id IS NOT NULL;
    "#,
    // 3: LLM cost per trace (the sum of its spans' `swarm.cost_usd`), kept
    // on the summary so search results show it without reading spans; and
    // an index for "traces changed since" (live updates).
    r#"
    ALTER TABLE traces ADD COLUMN cost_usd REAL NOT NULL DEFAULT 0;
    UPDATE traces SET cost_usd = coalesce((
        SELECT sum(json_extract(s.attributes, '$."swarm.cost_usd"')) FROM spans s
        WHERE s.trace = traces.id AND s.attributes IS NOT NULL), 0);
    CREATE INDEX traces_by_update ON traces(updated_ns);
    "#,
    // 4: the forwarding backlog. Every committed, ended span and every log
    // line gets a row (only while forwarding is configured); each forwarding
    // target remembers how far it got; rows every target passed are deleted.
    r#"
    CREATE TABLE outbox (
        seq  INTEGER PRIMARY KEY,
        kind INTEGER NOT NULL,   -- 0: span (spans.rowid), 1: log line (logs.id)
        ref  INTEGER NOT NULL
    );
    CREATE TABLE forward_cursors (
        name TEXT PRIMARY KEY,
        seq  INTEGER NOT NULL
    );
    "#,
    // 5: a tenant's least recently written traces, for the size cap's
    // per-tenant eviction and per-tenant retention.
    r#"
    CREATE INDEX traces_by_tenant_update ON traces(tenant, updated_ns);
    "#,
    // 6: a dead VM's open spans, found by its id instead of by walking every
    // open span of every tenant: spans that name the VM themselves, and
    // traces that do (whose open spans inherit it).
    r#"
    CREATE INDEX spans_open_by_vm ON spans(vm_id) WHERE end_ns IS NULL AND vm_id IS NOT NULL;
    CREATE INDEX traces_by_vm ON traces(vm_id) WHERE vm_id IS NOT NULL;
    "#,
];

/// Schema version this binary writes.
pub(crate) const SCHEMA_VERSION: i64 = MIGRATIONS.len() as i64;

/// Opens the writer's connection: WAL, NORMAL sync, migrations applied.
///
/// With WAL and `synchronous=NORMAL` a committed transaction survives the
/// process being killed (the WAL is in the OS page cache); it may be lost
/// only to a power cut or kernel crash before the next checkpoint's fsync.
pub(crate) fn open_writer_connection(path: &Path) -> Result<Connection, StoreError> {
    let mut conn = Connection::open(path)?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    // Pruned space goes back to the filesystem bit by bit (retention runs
    // `incremental_vacuum`). Only takes effect on a new, empty database.
    let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if version == 0 {
        conn.pragma_update(None, "auto_vacuum", "INCREMENTAL")?;
    }
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "NORMAL")?;
    conn.pragma_update(None, "temp_store", "MEMORY")?;
    conn.pragma_update(None, "cache_size", -32_000)?;
    migrate(&mut conn)?;
    Ok(conn)
}

/// Opens a read-only connection for queries.
pub(crate) fn open_read_connection(path: &Path) -> Result<Connection, StoreError> {
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(std::time::Duration::from_secs(5))?;
    conn.pragma_update(None, "query_only", true)?;
    conn.pragma_update(None, "cache_size", -8_000)?;
    Ok(conn)
}

fn migrate(conn: &mut Connection) -> Result<(), StoreError> {
    let current: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
    if current > SCHEMA_VERSION {
        return Err(StoreError::SchemaTooNew {
            found: current,
            supported: SCHEMA_VERSION,
        });
    }
    for (i, sql) in MIGRATIONS.iter().enumerate().skip(current as usize) {
        let tx = conn.transaction()?;
        tx.execute_batch(sql)?;
        tx.pragma_update(None, "user_version", (i + 1) as i64)?;
        tx.commit()?;
        tracing::info!(version = i + 1, "applied schema migration");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn migrations_apply_once_and_refuse_newer_files() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("t.db");
        drop(open_writer_connection(&path).expect("first open"));
        let conn = open_writer_connection(&path).expect("second open is a no-op");
        let v: i64 = conn
            .pragma_query_value(None, "user_version", |r| r.get(0))
            .expect("version");
        assert_eq!(v, SCHEMA_VERSION);
        let mode: String = conn
            .pragma_query_value(None, "journal_mode", |r| r.get(0))
            .expect("mode");
        assert_eq!(mode, "wal");
        conn.pragma_update(None, "user_version", SCHEMA_VERSION + 1)
            .expect("bump");
        drop(conn);
        assert!(matches!(
            open_writer_connection(&path),
            Err(StoreError::SchemaTooNew { .. })
        ));
    }
}
