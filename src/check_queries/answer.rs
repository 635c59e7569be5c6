//! A query's answer reduced to a few numbers: row and column counts, an order-independent
//! checksum and an ordered one, fed value by value as rows stream in (nothing is kept).
//!
//! A row's hash runs FNV-1a over its values, each framed by a NULL/value tag and its length
//! (so `('ab', 'c')` and `('a', 'bc')` differ, and NULL differs from `''`), then a non-linear
//! finaliser (splitmix64), so rows that merely trade values do not cancel in the sum. The
//! order-independent checksum is the wrapping sum of the row hashes; the ordered one folds them
//! in sequence. Two answers are equal when their counts and sums agree, and, for a query with
//! a top-level `ORDER BY`, their sequences too.
//!
//! Values arrive as text: PostgreSQL's own output on both sides of a PostgreSQL-to-PostgreSQL
//! check (same types, same session settings, so same text for the same value), or the
//! canonical text of `normalize.rs` when the source is MySQL.

use serde::Serialize;

const FNV_OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
const FNV_PRIME: u64 = 0x0000_0100_0000_01b3;

/// The splitmix64 finaliser: every input bit reaches every output bit.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

fn fnv(mut h: u64, bytes: &[u8]) -> u64 {
    for &b in bytes {
        h ^= u64::from(b);
        h = h.wrapping_mul(FNV_PRIME);
    }
    h
}

/// What rows stream into, value by value.
pub trait RowSink {
    /// The next value of the current row (`None` is NULL).
    fn value(&mut self, v: Option<&[u8]>);
    /// The current row is complete.
    fn end_row(&mut self);
}

/// Accumulates an answer as its rows stream in.
#[derive(Debug, Clone)]
pub struct AnswerHasher {
    row: u64,
    rows: u64,
    sum: u64,
    seq: u64,
}

impl Default for AnswerHasher {
    fn default() -> Self {
        AnswerHasher {
            row: FNV_OFFSET,
            rows: 0,
            sum: 0,
            seq: FNV_OFFSET,
        }
    }
}

impl RowSink for AnswerHasher {
    fn value(&mut self, v: Option<&[u8]>) {
        self.row = match v {
            None => fnv(self.row, &[0]),
            Some(b) => {
                let h = fnv(self.row, &[1]);
                let h = fnv(h, &(b.len() as u64).to_le_bytes());
                fnv(h, b)
            }
        };
    }

    fn end_row(&mut self) {
        let h = mix(self.row);
        self.sum = self.sum.wrapping_add(h);
        self.seq = mix(self.seq.wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ h);
        self.rows += 1;
        self.row = FNV_OFFSET;
    }
}

impl AnswerHasher {
    /// The answer, for a result of `columns` columns.
    pub fn finish(self, columns: usize) -> Answer {
        Answer {
            rows: self.rows,
            columns,
            checksum: format!("{:016x}", self.sum),
            ordered_checksum: format!("{:016x}", self.seq),
        }
    }
}

/// One side's answer to a query.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Answer {
    /// Rows returned.
    pub rows: u64,
    /// Columns of the result.
    pub columns: usize,
    /// Order-independent checksum of the rows (hex).
    pub checksum: String,
    /// Checksum of the rows in the order they came (hex).
    pub ordered_checksum: String,
}

/// How two answers compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// Same rows (in the same order, when the query orders them).
    Same,
    /// Other rows, another count or other columns.
    Different,
    /// Same rows, another order, for a query with `ORDER BY` (ties sort either way: add a
    /// unique column to the `ORDER BY` when the order of ties does not matter).
    OtherOrder,
}

/// Compares the source's and the target's answers.
pub fn compare(source: &Answer, target: &Answer, ordered: bool) -> Verdict {
    if source.rows != target.rows
        || source.columns != target.columns
        || source.checksum != target.checksum
    {
        Verdict::Different
    } else if ordered && source.ordered_checksum != target.ordered_checksum {
        Verdict::OtherOrder
    } else {
        Verdict::Same
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(rows: &[&[Option<&str>]]) -> Answer {
        let mut h = AnswerHasher::default();
        for r in rows {
            for v in *r {
                h.value(v.map(str::as_bytes));
            }
            h.end_row();
        }
        h.finish(rows.first().map_or(0, |r| r.len()))
    }

    #[test]
    fn order_counts_only_when_asked_and_values_are_framed() {
        let a = answer(&[&[Some("1"), Some("x")], &[Some("2"), Some("y")]]);
        let b = answer(&[&[Some("2"), Some("y")], &[Some("1"), Some("x")]]);
        assert_eq!(compare(&a, &b, false), Verdict::Same);
        assert_eq!(compare(&a, &b, true), Verdict::OtherOrder);
        // Values traded between rows, split differently, NULL against empty: all differ.
        let swapped = answer(&[&[Some("1"), Some("y")], &[Some("2"), Some("x")]]);
        assert_eq!(compare(&a, &swapped, false), Verdict::Different);
        let split = answer(&[&[Some("ab"), Some("c")]]);
        let split2 = answer(&[&[Some("a"), Some("bc")]]);
        assert_eq!(compare(&split, &split2, false), Verdict::Different);
        let null = answer(&[&[None]]);
        let empty = answer(&[&[Some("")]]);
        assert_eq!(compare(&null, &empty, false), Verdict::Different);
    }
}
