//! Cutting tables into chunks: keyset ranges on a unique key, `ctid` block ranges otherwise.
//!
//! Boundaries come from a block sample of the key (`TABLESAMPLE SYSTEM`), never from counting
//! or sorting the whole table, so planning a table of billions of rows takes a moment.

use std::fmt;

use tokio_postgres::Client;

use crate::catalog::{quote_ident, quote_literal, KeyColumn, Table};
use crate::error::{db_reason, Error, Result};

/// Sampled keys per chunk: enough that chunk sizes stay within a few tens of percent.
const SAMPLES_PER_CHUNK: f64 = 50.0;

/// The rows of a table that one chunk covers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkRange {
    /// The whole table, read with a plain `COPY table TO`.
    Whole,
    /// Key values after `lower` (exclusive) up to `upper` (inclusive); `None` is unbounded.
    /// Values are the server's text rendering of each key column.
    Keyset {
        /// Exclusive lower bound.
        lower: Option<Vec<String>>,
        /// Inclusive upper bound.
        upper: Option<Vec<String>>,
    },
    /// Heap blocks `[start, end)`; `end = None` reads to the end of the table.
    Ctid {
        /// First block.
        start: i64,
        /// Block after the last one, or open.
        end: Option<i64>,
    },
}

impl fmt::Display for ChunkRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let show = |b: &Option<Vec<String>>| match b {
            Some(v) => format!("({})", v.join(", ")),
            None => "unbounded".to_string(),
        };
        match self {
            ChunkRange::Whole => write!(f, "whole table"),
            ChunkRange::Keyset { lower, upper } => {
                write!(f, "keys {} .. {}", show(lower), show(upper))
            }
            ChunkRange::Ctid {
                start,
                end: Some(end),
            } => write!(f, "blocks [{start}, {end})"),
            ChunkRange::Ctid { start, end: None } => write!(f, "blocks [{start}, end)"),
        }
    }
}

impl ChunkRange {
    /// The SQL predicate selecting this range, or `None` for the whole table.
    pub fn predicate(&self, key: Option<&[KeyColumn]>) -> Option<String> {
        match self {
            ChunkRange::Whole => None,
            ChunkRange::Keyset { lower, upper } => {
                let key = key?;
                let cols = key
                    .iter()
                    .map(KeyColumn::sql)
                    .collect::<Vec<_>>()
                    .join(", ");
                let tuple = |values: &[String]| {
                    values
                        .iter()
                        .zip(key)
                        .map(|(v, k)| format!("{}::{}", quote_literal(v), k.type_sql))
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                let mut parts = Vec::new();
                if let Some(l) = lower {
                    parts.push(format!("({cols}) > ({})", tuple(l)));
                }
                if let Some(u) = upper {
                    parts.push(format!("({cols}) <= ({})", tuple(u)));
                }
                if parts.is_empty() {
                    None
                } else {
                    Some(parts.join(" AND "))
                }
            }
            ChunkRange::Ctid { start, end } => {
                let mut p = format!("ctid >= '({start},0)'::tid");
                if let Some(e) = end {
                    p.push_str(&format!(" AND ctid < '({e},0)'::tid"));
                }
                Some(p)
            }
        }
    }
}

/// One unit of copy work.
#[derive(Debug, Clone)]
pub struct Chunk {
    /// Index of the table in the plan's table list.
    pub table: usize,
    /// Position of the chunk within its table (0-based).
    pub ordinal: usize,
    /// Rows it covers.
    pub range: ChunkRange,
    /// Estimated rows, for progress.
    pub estimated_rows: i64,
    /// Estimated bytes, for ordering: copy time follows bytes more than rows.
    pub estimated_bytes: i64,
    /// Key of the last row a previous run committed for this chunk: read after it.
    pub resume_after: Option<Vec<String>>,
}

impl Chunk {
    /// The only chunk of table `table`: all its rows in `range`.
    pub fn one(table: usize, range: ChunkRange, rows: i64, bytes: i64) -> Chunk {
        Chunk {
            table,
            ordinal: 0,
            range,
            estimated_rows: rows,
            estimated_bytes: bytes,
            resume_after: None,
        }
    }
}

/// Smallest chunk worth a separate range scan and transaction.
const MIN_CHUNK_BYTES: i64 = 8 << 20;

/// Rows the planner assumes, also when the source was never analyzed (`reltuples = -1`).
pub fn estimated_rows(table: &Table) -> i64 {
    if table.estimated_rows >= 0 {
        table.estimated_rows
    } else {
        // ~60 rows per 8 KiB block is typical for mixed tables; only the chunk count depends on it.
        table.blocks * 60
    }
}

/// The keyset chunks between sorted `bounds` (each an inclusive upper bound, the last chunk
/// open-ended), sharing the table's `rows` and `bytes` evenly.
pub fn keyset_chunks(index: usize, bounds: Vec<Vec<String>>, rows: i64, bytes: i64) -> Vec<Chunk> {
    let n = bounds.len() as i64 + 1;
    let mut chunks = Vec::with_capacity(bounds.len() + 1);
    let mut lower: Option<Vec<String>> = None;
    for upper in bounds.into_iter().map(Some).chain(std::iter::once(None)) {
        chunks.push(Chunk {
            table: index,
            ordinal: chunks.len(),
            range: ChunkRange::Keyset {
                lower: lower.clone(),
                upper: upper.clone(),
            },
            estimated_rows: rows / n,
            estimated_bytes: bytes / n,
            resume_after: None,
        });
        lower = upper;
    }
    chunks
}

/// Cuts one table into chunks of about `chunk_rows` rows, querying the source for boundaries.
pub async fn plan_table(
    client: &Client,
    table: &Table,
    index: usize,
    chunk_rows: u64,
    server_version_num: i32,
) -> Result<Vec<Chunk>> {
    let rows = estimated_rows(table).max(0);
    // However small chunk_rows is, chunks stay above MIN_CHUNK_BYTES, so a wrong row estimate
    // cannot turn a table into thousands of tiny ranges (or an unbounded key sample).
    let by_bytes = (table.size_bytes.max(0) / MIN_CHUNK_BYTES).max(1);
    let wanted = ((rows as f64 / chunk_rows.max(1) as f64).ceil() as i64).min(by_bytes);
    let bytes = table.size_bytes.max(0);
    let whole = || vec![Chunk::one(index, ChunkRange::Whole, rows, bytes)];
    if wanted <= 1 || !table.has_storage() {
        return Ok(whole());
    }
    match &table.chunk_key {
        Some(key) => {
            let bounds = sample_boundaries(client, table, key, wanted as usize, rows).await?;
            if bounds.is_empty() {
                return Ok(whole());
            }
            Ok(keyset_chunks(index, bounds, rows, bytes))
        }
        // TID range scans arrived in PostgreSQL 14; before that each range would scan the table.
        None if server_version_num >= 140000 && table.blocks > 1 => {
            let per = ((table.blocks as f64) / wanted as f64).ceil().max(1.0) as i64;
            let mut chunks = Vec::new();
            let mut start = 0;
            while start < table.blocks {
                let end = start + per;
                let open = end >= table.blocks;
                chunks.push(Chunk {
                    table: index,
                    ordinal: chunks.len(),
                    range: ChunkRange::Ctid {
                        start,
                        end: if open { None } else { Some(end) },
                    },
                    estimated_rows: rows / wanted,
                    estimated_bytes: bytes / wanted,
                    resume_after: None,
                });
                start = end;
            }
            Ok(chunks)
        }
        None => Ok(whole()),
    }
}

/// Picks `wanted - 1` key values that split a block sample of the key into equal parts.
async fn sample_boundaries(
    client: &Client,
    table: &Table,
    key: &[KeyColumn],
    wanted: usize,
    rows: i64,
) -> Result<Vec<Vec<String>>> {
    let target = SAMPLES_PER_CHUNK * wanted as f64;
    let percent = (100.0 * target / rows.max(1) as f64).clamp(0.000_1, 100.0);
    let select = key
        .iter()
        .map(|k| format!("s.{}::text", quote_ident(&k.name)))
        .collect::<Vec<_>>()
        .join(", ");
    // ORDER BY the typed columns (qualified, so the text casts in the select list are not used),
    // in the key index's collation.
    let order = key
        .iter()
        .map(|k| format!("s.{}", k.sql()))
        .collect::<Vec<_>>()
        .join(", ");
    let sql = format!(
        "SELECT {select} FROM ONLY {} AS s TABLESAMPLE SYSTEM ({percent}) REPEATABLE (42) ORDER BY {order}",
        table.name.quoted()
    );
    let sample = client.query(&sql, &[]).await.map_err(|e| Error::Query {
        what: format!("sampling the key of {} for chunk boundaries", table.name),
        reason: db_reason(&e),
    })?;
    if sample.len() < wanted * 2 {
        // Too few sampled keys to cut evenly: fewer, larger chunks.
        let wanted = sample.len() / 2;
        if wanted <= 1 {
            return Ok(Vec::new());
        }
        return Ok(pick(&sample, wanted, key.len()));
    }
    Ok(pick(&sample, wanted, key.len()))
}

fn pick(sample: &[tokio_postgres::Row], wanted: usize, width: usize) -> Vec<Vec<String>> {
    let mut bounds: Vec<Vec<String>> = Vec::with_capacity(wanted);
    for i in 1..wanted {
        let row = &sample[i * sample.len() / wanted];
        let values: Option<Vec<String>> = (0..width)
            .map(|c| row.get::<_, Option<String>>(c))
            .collect();
        if let Some(values) = values {
            if bounds.last() != Some(&values) {
                bounds.push(values);
            }
        }
    }
    bounds
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key() -> Vec<KeyColumn> {
        vec![
            KeyColumn {
                name: "tenant".into(),
                type_sql: "integer".into(),
                collation: None,
            },
            KeyColumn {
                name: "name".into(),
                type_sql: "text".into(),
                collation: Some("pg_catalog.\"C\"".into()),
            },
        ]
    }

    #[test]
    fn keyset_predicates() {
        let r = ChunkRange::Keyset {
            lower: Some(vec!["1".into(), "o'k".into()]),
            upper: None,
        };
        assert_eq!(
            r.predicate(Some(&key())).as_deref(),
            Some("(\"tenant\", \"name\" COLLATE pg_catalog.\"C\") > ('1'::integer, 'o''k'::text)")
        );
        let r = ChunkRange::Keyset {
            lower: None,
            upper: Some(vec!["2".into(), "b".into()]),
        };
        assert_eq!(
            r.predicate(Some(&key())).as_deref(),
            Some("(\"tenant\", \"name\" COLLATE pg_catalog.\"C\") <= ('2'::integer, 'b'::text)")
        );
        assert_eq!(ChunkRange::Whole.predicate(None), None);
    }

    #[test]
    fn ctid_predicates() {
        let r = ChunkRange::Ctid {
            start: 10,
            end: Some(20),
        };
        assert_eq!(
            r.predicate(None).as_deref(),
            Some("ctid >= '(10,0)'::tid AND ctid < '(20,0)'::tid")
        );
        let r = ChunkRange::Ctid {
            start: 20,
            end: None,
        };
        assert_eq!(r.predicate(None).as_deref(), Some("ctid >= '(20,0)'::tid"));
    }
}
