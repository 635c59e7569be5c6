//! Which rows make two answers differ: for a differing query with small answers, both sides
//! are read once more into memory and compared as multisets, and a few rows found on one side
//! only are named (as each side printed them, or in canonical form for a MySQL source).
//!
//! Invariant: at most [`MAX_ROWS`] rows per side are ever held; a larger answer is reported
//! by its counts and checksums alone.

use serde::Serialize;

use super::answer::RowSink;

/// Answers up to this many rows per side are compared row by row.
pub const MAX_ROWS: u64 = 10_000;
/// Rows named per side.
const SHOWN: usize = 5;

/// Collects rows, up to [`MAX_ROWS`]; past that it only counts.
#[derive(Debug, Default)]
pub struct RowCollector {
    rows: Vec<Vec<Option<String>>>,
    current: Vec<Option<String>>,
    overflow: bool,
}

impl RowSink for RowCollector {
    fn value(&mut self, v: Option<&[u8]>) {
        if !self.overflow {
            self.current
                .push(v.map(|b| String::from_utf8_lossy(b).into_owned()));
        }
    }

    fn end_row(&mut self) {
        if self.overflow {
            return;
        }
        if self.rows.len() as u64 >= MAX_ROWS {
            self.overflow = true;
            self.rows.clear();
            self.current.clear();
            return;
        }
        self.rows.push(std::mem::take(&mut self.current));
    }
}

impl RowCollector {
    /// The rows, unless there were too many.
    pub fn into_rows(self) -> Option<Vec<Vec<Option<String>>>> {
        (!self.overflow).then_some(self.rows)
    }
}

/// Rows found on one side only.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RowDiff {
    /// Rows the source returned and the target did not (a few, printed).
    pub only_on_source: Vec<String>,
    /// Rows the target returned and the source did not.
    pub only_on_target: Vec<String>,
    /// How many rows are on the source only, in all.
    pub source_only_count: usize,
    /// How many rows are on the target only, in all.
    pub target_only_count: usize,
}

/// The multiset difference of two answers.
pub fn differences(
    mut source: Vec<Vec<Option<String>>>,
    mut target: Vec<Vec<Option<String>>>,
) -> RowDiff {
    source.sort();
    target.sort();
    let (mut i, mut j) = (0, 0);
    let mut d = RowDiff::default();
    let note = |side: &mut Vec<String>, count: &mut usize, row: &[Option<String>]| {
        *count += 1;
        if side.len() < SHOWN {
            side.push(print(row));
        }
    };
    while i < source.len() || j < target.len() {
        match (source.get(i), target.get(j)) {
            (Some(s), Some(t)) if s == t => {
                i += 1;
                j += 1;
            }
            (Some(s), Some(t)) if s < t => {
                note(&mut d.only_on_source, &mut d.source_only_count, s);
                i += 1;
            }
            (Some(s), None) => {
                note(&mut d.only_on_source, &mut d.source_only_count, s);
                i += 1;
            }
            (_, Some(t)) => {
                note(&mut d.only_on_target, &mut d.target_only_count, t);
                j += 1;
            }
            (None, None) => break,
        }
    }
    d
}

/// `(1, Ann, NULL)`, each value cut to 60 characters.
fn print(row: &[Option<String>]) -> String {
    let values: Vec<String> = row
        .iter()
        .map(|v| match v {
            None => "NULL".to_string(),
            Some(s) if s.chars().count() > 60 => {
                format!("{}...", s.chars().take(60).collect::<String>())
            }
            Some(s) => s.clone(),
        })
        .collect();
    format!("({})", values.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rows(r: &[&[Option<&str>]]) -> Vec<Vec<Option<String>>> {
        r.iter()
            .map(|r| r.iter().map(|v| v.map(String::from)).collect())
            .collect()
    }

    #[test]
    fn rows_on_one_side_only_are_named_duplicates_included() {
        let s = rows(&[
            &[Some("1"), Some("a")],
            &[Some("2"), None],
            &[Some("3"), Some("c")],
            &[Some("3"), Some("c")],
        ]);
        let t = rows(&[
            &[Some("3"), Some("c")],
            &[Some("1"), Some("a")],
            &[Some("2"), Some("")],
        ]);
        let d = differences(s, t);
        assert_eq!(
            d.only_on_source,
            vec!["(2, NULL)".to_string(), "(3, c)".to_string()]
        );
        assert_eq!(d.only_on_target, vec!["(2, )".to_string()]);
        assert_eq!((d.source_only_count, d.target_only_count), (2, 1));

        let mut c = RowCollector::default();
        for _ in 0..=MAX_ROWS {
            c.value(Some(b"x"));
            c.end_row();
        }
        assert!(c.into_rows().is_none());
    }
}
