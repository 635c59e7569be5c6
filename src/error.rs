//! Typed errors of the library, each carrying what failed and why; `main` maps them to exit codes.

use crate::catalog::QualifiedName;

/// Everything that can make a howdah command fail.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The configuration file or the flags are invalid.
    #[error("{0}")]
    Config(String),
    /// A database could not be reached or refused the login.
    #[error("cannot connect to {side} {url}: {reason}")]
    Connect {
        /// `source` or `target`.
        side: &'static str,
        /// The URL with any password removed.
        url: String,
        /// The driver's explanation.
        reason: String,
    },
    /// A catalog query failed.
    #[error(transparent)]
    Catalog(#[from] crate::catalog::CatalogError),
    /// Selected tables clash with what the target already holds.
    #[error("{0}")]
    TargetNotEmpty(String),
    /// A schema step (DDL) failed on the target.
    #[error("schema step failed ({what}): {reason}")]
    Schema {
        /// The step's description.
        what: String,
        /// The server's message.
        reason: String,
    },
    /// Copying a chunk of a table failed.
    #[error("copy of {table} {chunk} failed while {stage}: {reason}")]
    Copy {
        /// The table being copied.
        table: QualifiedName,
        /// The chunk's key range, e.g. `keyset (100, 200]`.
        chunk: String,
        /// `reading the source`, `writing the target`, `committing`.
        stage: &'static str,
        /// The server's or the codec's message.
        reason: String,
        /// Whether retrying (on a new connection, from the last checkpoint) may succeed.
        transient: bool,
    },
    /// A database statement outside a chunk failed (snapshot, planning).
    #[error("{what}: {reason}")]
    Query {
        /// What howdah was doing.
        what: String,
        /// The server's message.
        reason: String,
    },
    /// A statement outside a chunk lost its connection or hit a passing server condition
    /// (shutdown, too many connections): worth a retry on a new connection.
    #[error("{what}: {reason}")]
    Transient {
        /// What howdah was doing.
        what: String,
        /// The server's or the driver's message.
        reason: String,
    },
    /// Another worker took a chunk over (this worker's lease on it had run out); this
    /// worker's uncommitted rows of it were rolled back.
    #[error("chunk {chunk} of {table} was taken over by another worker")]
    LeaseLost {
        /// The table.
        table: QualifiedName,
        /// The chunk's range.
        chunk: String,
    },
    /// The binary COPY stream did not have the expected shape.
    #[error(transparent)]
    Format(#[from] crate::pgcopy::FormatError),
    /// A failure after the target was changed: says what the target now holds.
    #[error("{source}; the target holds an incomplete copy ({done}); run the same command again to resume")]
    Incomplete {
        /// The failure.
        source: Box<Error>,
        /// What had been done, e.g. `schema created, 3 of 7 tables copied`.
        done: String,
    },
    /// Some chunks failed with errors a retry cannot fix; every other chunk was copied.
    #[error("{} chunk(s) failed: {}{}; every other chunk was copied; fix the cause and run the same command again to copy what is left", failed.len(), failed.iter().take(3).cloned().collect::<Vec<_>>().join(" | "), if failed.len() > 3 { " | ..." } else { "" })]
    ChunksFailed {
        /// One description per failed chunk: table, range and reason.
        failed: Vec<String>,
    },
    /// The user asked the copy to stop (Ctrl-C / SIGTERM); committed work is kept.
    #[error("interrupted")]
    Interrupted,
    /// More rows were rejected than `max_rejects` allows; the copy stopped.
    #[error("{rejected} of {read} rows read were rejected, over max_rejects = {limit} (last: {last}); \
             see the rejects with `SELECT * FROM howdah.rejects`, fix the data or the mapping, and run the same command again to resume")]
    TooManyRejects {
        /// Rows rejected by this worker.
        rejected: u64,
        /// Rows read by this worker.
        read: u64,
        /// The limit as configured.
        limit: String,
        /// The last rejected row: table, key, column and reason.
        last: String,
    },
    /// The copy finished, but some foreign keys are violated by the copied rows (orphans on
    /// the source, or rows a filter or a reject left out): they were added `NOT VALID`.
    #[error("the copy finished, but {} foreign key(s) are violated by the copied rows and were added NOT VALID: {}; \
             fix or delete those rows on the target (each query lists them), then run the same command again to validate the keys",
            keys.len(), keys.join(" | "))]
    ForeignKeysNotValid {
        /// One line per key: table, constraint, orphan count and the query listing them.
        keys: Vec<String>,
    },
    /// A followed table changed on the source (DDL); nothing from that transaction on was applied.
    #[error("the followed table {table} changed on the source ({change}); the follow stopped before that change and nothing after it was applied (the slot keeps the changes): change the target table the same way and copy the table again, or start over with `howdah copy --follow --restart`")]
    SchemaChanged {
        /// The table.
        table: QualifiedName,
        /// What changed: columns added, dropped, renamed or retyped.
        change: String,
    },
    /// Following stopped for a reason the user must act on (retained WAL over its limit, the
    /// job cut over or aborted elsewhere, a follower already running).
    #[error("{0}")]
    Follow(String),
    /// `howdah demo` copied, but the row counts of source and target differ.
    #[error("row counts differ between source and target after the demo copy")]
    DemoCountsDiffer,
    /// A worker task panicked or was cancelled: a bug, not bad input.
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    /// The process exit code: 2 usage/config, 3 connection, 4 interrupted (resumable), 5 too
    /// many rejected rows, 6 finished with foreign keys left NOT VALID, 1 else.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Config(_) => 2,
            Error::Catalog(crate::catalog::CatalogError::NoDatabase { .. }) => 2,
            Error::Connect { .. } => 3,
            Error::Incomplete { source, .. } => source.exit_code(),
            Error::Interrupted => 4,
            Error::TooManyRejects { .. } => 5,
            Error::ForeignKeysNotValid { .. } => 6,
            _ => 1,
        }
    }
}

/// Whether an error is worth a retry on a fresh connection: the connection broke, the server
/// is shutting down or restarting, too many connections, a serialization failure or deadlock.
/// Everything else (a bad value, a missing privilege, a full disk) fails the same way again.
pub fn is_transient(err: &tokio_postgres::Error) -> bool {
    match err.code() {
        Some(code) => {
            let c = code.code();
            c.starts_with("08") // connection exception
                || matches!(c, "57P01" | "57P02" | "57P03" | "53300" | "40001" | "40P01")
        }
        // No SQLSTATE: the socket or the protocol failed (reset, closed, timed out).
        None => err.as_db_error().is_none(),
    }
}

impl Error {
    /// Whether this error may go away on retry (see [`is_transient`]).
    pub fn is_transient(&self) -> bool {
        match self {
            Error::Copy { transient, .. } => *transient,
            Error::Connect { .. } | Error::Transient { .. } => true,
            // A catalog read cut off by a lost connection or a restarting server.
            Error::Catalog(crate::catalog::CatalogError::Query { source, .. }) => {
                is_transient(source)
            }
            Error::Catalog(crate::catalog::CatalogError::Mysql { source, .. }) => {
                my_transient(source)
            }
            _ => false,
        }
    }
}

/// A failed statement outside a chunk: [`Error::Transient`] when a retry on a new connection
/// may succeed (see [`is_transient`]), else [`Error::Query`].
pub fn query_error(what: impl Into<String>, err: &tokio_postgres::Error) -> Error {
    if is_transient(err) {
        Error::Transient {
            what: what.into(),
            reason: db_reason(err),
        }
    } else {
        Error::Query {
            what: what.into(),
            reason: db_reason(err),
        }
    }
}

/// Turns a failed statement into [`Error::Query`] naming `what` was being done, for
/// `map_err`; unlike [`query_error`] it never says the failure may pass on retry.
pub fn query_failed(what: &str) -> impl Fn(tokio_postgres::Error) -> Error + '_ {
    move |e| Error::Query {
        what: what.to_string(),
        reason: db_reason(&e),
    }
}

/// Renders a `tokio_postgres::Error` with its server detail and hint, on one line.
pub fn db_reason(err: &tokio_postgres::Error) -> String {
    if let Some(db) = err.as_db_error() {
        let mut s = format!("{} (SQLSTATE {})", db.message(), db.code().code());
        if let Some(detail) = db.detail() {
            s.push_str(&format!("; detail: {detail}"));
        }
        if let Some(hint) = db.hint() {
            s.push_str(&format!("; hint: {hint}"));
        }
        if let Some(w) = db.where_() {
            s.push_str(&format!("; context: {}", w.replace('\n', " / ")));
        }
        return s;
    }
    chain(err)
}

/// An error and its sources on one line, skipping sources whose text is already shown.
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut s = err.to_string();
    let mut source = err.source();
    while let Some(e) = source {
        let text = e.to_string();
        if !s.contains(&text) {
            s.push_str(": ");
            s.push_str(&text);
        }
        source = e.source();
    }
    s.replace('\n', " ")
}

/// Shorthand for library results.
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// Whether a driver error is worth a retry on a new connection.
pub fn my_transient(e: &mysql_async::Error) -> bool {
    match e {
        mysql_async::Error::Io(_) | mysql_async::Error::Driver(_) => true,
        // 1040 too many connections, 1205 lock wait timeout, 1213 deadlock, 2006/2013 server
        // gone or lost, 1053 server shutdown, 1927 connection killed (MariaDB), 1317 query
        // interrupted.
        mysql_async::Error::Server(s) => {
            matches!(
                s.code,
                1040 | 1053 | 1205 | 1213 | 1317 | 1927 | 2006 | 2013
            )
        }
        _ => false,
    }
}

/// A driver error outside a chunk.
pub fn my_error(what: &str, e: &mysql_async::Error) -> Error {
    if my_transient(e) {
        Error::Transient {
            what: what.to_string(),
            reason: e.to_string(),
        }
    } else {
        Error::Query {
            what: what.to_string(),
            reason: e.to_string(),
        }
    }
}
