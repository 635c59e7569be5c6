//! Errors of catalog introspection.

/// A failure while reading a database catalog.
#[derive(Debug, thiserror::Error)]
pub enum CatalogError {
    /// A catalog query failed or returned a value of an unexpected type.
    #[error("reading {what} from the catalog failed")]
    Query {
        /// What was being read, e.g. `columns` or `last value of sequence public.s`.
        what: String,
        /// The driver's error.
        #[source]
        source: tokio_postgres::Error,
    },
    /// The catalog holds something howdah cannot represent.
    #[error("unexpected catalog content in {what}: {detail}")]
    Unexpected {
        /// What was being read.
        what: String,
        /// What was wrong.
        detail: String,
    },
    /// A MySQL/MariaDB catalog query failed (whether a retry may pass is
    /// `crate::error::Error::is_transient`'s to say, from the driver's error).
    #[error("{what}: {source}")]
    Mysql {
        /// What was being read.
        what: String,
        /// The driver's error.
        source: mysql_async::Error,
    },
    /// The database named in the URL does not exist on the server.
    #[error("the {server} server has no database named \"{database}\"")]
    NoDatabase {
        /// `MySQL`.
        server: &'static str,
        /// The database asked for.
        database: String,
    },
}
