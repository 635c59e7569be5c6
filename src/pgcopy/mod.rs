//! PostgreSQL's binary COPY format: the stream header and trailer, and a push decoder that
//! cuts a `COPY ... TO STDOUT (FORMAT binary)` stream into whole tuples without decoding values.

pub mod decode;
pub mod encode;
pub mod values;

pub use decode::{TupleSplitter, Tuples};

/// The 11-byte signature that opens every binary COPY stream.
pub const SIGNATURE: &[u8; 11] = b"PGCOPY\n\xff\r\n\0";

/// A binary COPY stream that does not follow the format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FormatError {
    /// The stream does not start with the binary COPY signature.
    #[error("binary COPY stream has a bad signature")]
    BadSignature,
    /// The header announces OIDs or a critical extension howdah does not understand.
    #[error("binary COPY header has unsupported flags {0:#x}")]
    UnsupportedFlags(u32),
    /// A tuple has another number of fields than the columns requested.
    #[error("binary COPY tuple has {found} fields, expected {expected}")]
    FieldCount {
        /// Fields in the tuple.
        found: i16,
        /// Columns requested.
        expected: i16,
    },
    /// A field length is negative but not -1 (NULL).
    #[error("binary COPY field has invalid length {0}")]
    BadLength(i32),
    /// The stream ended inside the header, a tuple, or before the trailer.
    #[error("binary COPY stream ended early ({0})")]
    Truncated(&'static str),
    /// Bytes follow the trailer.
    #[error("binary COPY stream has data after its trailer")]
    TrailingData,
}
