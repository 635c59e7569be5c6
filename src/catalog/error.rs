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
}
