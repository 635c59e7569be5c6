//! The unit that travels between the stages of a chunk (reader -> transform -> writer): whole
//! binary COPY tuples of one table plus what the commit point needs besides them.
//!
//! Invariants: `rows` counts the tuples in `data`; `last_tuple_start` is where the last of them
//! starts (`0` when there is none); `rejects` are source rows that are not in `data` but belong
//! to the same stretch of the source, so they commit with these rows; `last_key` /
//! `last_raw_key`, when set, name the last source row covered (which may be a rejected one).
//!
//! A chunk's stream is a run of [`Piece::Rows`] closed by one [`Piece::End`] with the counts
//! of the stages before the writer: the writer commits the chunk's last rows only when the end
//! arrives and the counts add up, so a stream cut short (a reader or transform that failed)
//! never commits.

use bytes::Bytes;

use crate::pgcopy::Tuples;
use crate::reject::Reject;

/// Whole tuples of one table, with the rejects and the resume key that commit with them.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Encoded tuples, back to back.
    pub data: Bytes,
    /// Number of tuples in `data`.
    pub rows: u64,
    /// Offset in `data` where the last tuple starts (its key is the batch's high-water mark).
    pub last_tuple_start: usize,
    /// Rows of the source kept out of `data` because a value could not be converted.
    pub rejects: Vec<Reject>,
    /// The key of the last source row the batch covers, as text, when the reader knows it
    /// that way (MySQL); `None` means: read it from the last tuple (PostgreSQL).
    pub last_key: Option<Vec<String>>,
    /// The key fields (binary) of the last source row the batch covers, when the transform
    /// stage rejected that row so that the last tuple is not it; `None`: read the last tuple.
    pub last_raw_key: Option<Vec<Option<Bytes>>>,
}

impl Batch {
    /// The encoded bytes of the last tuple of the batch.
    pub fn last_tuple(&self) -> &[u8] {
        &self.data[self.last_tuple_start..]
    }
}

impl From<Tuples> for Batch {
    fn from(t: Tuples) -> Self {
        Batch {
            data: t.data,
            rows: t.rows,
            last_tuple_start: t.last_tuple_start,
            rejects: Vec::new(),
            last_key: None,
            last_raw_key: None,
        }
    }
}

/// What flows from a chunk's reader, through its transform, to its writer.
#[derive(Debug)]
pub enum Piece {
    /// A batch of rows.
    Rows(Batch),
    /// The stream is complete: nothing follows.
    End(StreamEnd),
}

/// The counts that close a chunk's stream; the writer checks them against what it received.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct StreamEnd {
    /// Rows the reader sent on (its own rejects not included).
    pub read: u64,
    /// Rows the reader rejected (carried in the batches' `rejects`).
    pub read_rejected: u64,
    /// Rows the transform rejected (also carried in the batches' `rejects`).
    pub transform_rejected: u64,
}
