//! Rows kept out of the target because a value cannot be converted: what, where and why.
//!
//! A reader (or, later, the transform stage) that cannot convert a value drops the whole row
//! and records a [`Reject`]; the writer stores the rejects of a segment in `howdah.rejects` in
//! the same transaction as the segment's rows and checkpoint, so a resume neither loses nor
//! repeats one, and source rows = copied rows + rejected rows, always. `--max-rejects` is checked
//! against the committed tally here ([`Tally`], [`MaxRejects`]).

use crate::error::{Error, Result};

/// Longest value text kept in a reject record.
pub const VALUE_CHARS: usize = 200;

/// One rejected row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reject {
    /// The row's key on the source, e.g. `id=42` (or its position in its chunk for a table
    /// without a key).
    pub key: String,
    /// The column whose value failed.
    pub column: String,
    /// The value, as text, cut to [`VALUE_CHARS`] characters.
    pub value: String,
    /// Why it failed, e.g. `zero date 0000-00-00 in a NOT NULL column`.
    pub reason: String,
}

/// Rows read and rejected by this process in committed segments, for `max_rejects`: counted
/// once committed, so rows a retry reads again are not counted twice.
#[derive(Debug, Default)]
pub struct Tally {
    read: std::sync::atomic::AtomicU64,
    rejected: std::sync::atomic::AtomicU64,
}

impl Tally {
    /// Adds a committed segment's source rows (copied + rejected) and rejects; fails when
    /// the totals exceed `limit` (`last` names the last rejected row for the message).
    pub fn add(
        &self,
        limit: Option<crate::reject::MaxRejects>,
        read: u64,
        rejected: u64,
        last: impl FnOnce() -> String,
    ) -> crate::error::Result<()> {
        use std::sync::atomic::Ordering::Relaxed;
        let total_read = self.read.fetch_add(read, Relaxed) + read;
        let total = self.rejected.fetch_add(rejected, Relaxed) + rejected;
        match limit {
            Some(l) if rejected > 0 && l.exceeded(total, total_read, false) => {
                Err(crate::error::Error::TooManyRejects {
                    rejected: total,
                    read: total_read,
                    limit: l.to_string(),
                    last: last(),
                })
            }
            _ => Ok(()),
        }
    }
}

/// `value` cut to [`VALUE_CHARS`] characters, with an ellipsis when cut; NUL bytes (which a
/// PostgreSQL text column cannot store) shown as `\0`.
pub fn shorten(value: &str) -> String {
    let cut = match value.char_indices().nth(VALUE_CHARS) {
        Some((at, _)) => format!("{}...", &value[..at]),
        None => value.to_string(),
    };
    cut.replace('\0', "\\0")
}

/// When rejected rows stop a copy.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum MaxRejects {
    /// More than this many rows.
    Count(u64),
    /// More than this percent of the rows read (checked once 10 000 rows were read, and at
    /// the end).
    Percent(f64),
}

impl std::fmt::Display for MaxRejects {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            MaxRejects::Count(n) => write!(f, "{n}"),
            MaxRejects::Percent(p) => write!(f, "{p}%"),
        }
    }
}

impl MaxRejects {
    /// Parses "1000" or "0.5%".
    pub fn parse(s: &str) -> Result<Self> {
        let bad = || {
            Error::Config(format!(
                "max_rejects \"{s}\" is neither a row count (\"1000\") nor a percent (\"0.5%\")"
            ))
        };
        match s.trim().strip_suffix('%') {
            Some(p) => {
                let p: f64 = p.trim().parse().map_err(|_| bad())?;
                if !(0.0..=100.0).contains(&p) {
                    return Err(bad());
                }
                Ok(MaxRejects::Percent(p))
            }
            None => Ok(MaxRejects::Count(s.trim().parse().map_err(|_| bad())?)),
        }
    }

    /// Whether `rejected` of `read` rows is over the limit (`end`: the run is over, so a
    /// percent applies however few rows were read).
    pub fn exceeded(&self, rejected: u64, read: u64, end: bool) -> bool {
        match *self {
            MaxRejects::Count(n) => rejected > n,
            MaxRejects::Percent(p) => {
                (end || read >= 10_000) && read > 0 && rejected as f64 * 100.0 > p * read as f64
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_values_are_cut() {
        let long = "é".repeat(300);
        let s = shorten(&long);
        assert_eq!(s.chars().count(), VALUE_CHARS + 3);
        assert_eq!(shorten("short"), "short");
        assert_eq!(shorten("a\0b"), "a\\0b");
    }
}
