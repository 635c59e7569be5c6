//! The streamed method: a mapped table or a MySQL source is read through the copy's own
//! reader and transform into target tuples, the target's range with `COPY ... (FORMAT
//! binary)`, and both sides' tuples are hashed here, alike.
//!
//! Invariants: both sides hash tuples of the target's shape with the same [`TupleHasher`],
//! so equal rows give equal sums whatever the source; rows the copy rejects are left out of
//! the source side as they are out of the target; a field the job did not record a per-run
//! value for is skipped on both sides. [`source_side`] is the one place verify reads through
//! the copy's reader and transform.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_postgres::Client;

use super::{json, where_clause, Sums};
use crate::batch::Piece;
use crate::catalog::{quote_ident, KeyColumn, Table};
use crate::chunking::ChunkRange;
use crate::error::{db_reason, Error, Result};
use crate::metrics::ChunkMetrics;
use crate::pgcopy::TupleSplitter;
use crate::source::{Reader, Reading};
use crate::transform::TableTransform;

/// The source side of a check: a reader of the run's source, with the batch size and the
/// metrics its reads report to.
pub(super) struct ReadSide<'a> {
    /// The reader (its session is in the run's snapshot).
    pub reader: &'a mut Reader,
    /// The run's source.
    pub source: &'a Reading,
    /// Bytes per batch read.
    pub batch_bytes: usize,
    /// Metrics of the table being read.
    pub metrics: &'a ChunkMetrics,
}

impl<'a> ReadSide<'a> {
    /// Starts reading `range` of table `t` (read as `table`) into `tx`: the copy's own reader.
    pub(super) fn read<'s>(
        &'s mut self,
        t: usize,
        table: &'s Table,
        range: &'s ChunkRange,
        tx: mpsc::Sender<Piece>,
    ) -> Result<impl std::future::Future<Output = Result<crate::source::ReadStats>> + use<'a, 's>>
    {
        let req = crate::source::ChunkRead {
            table,
            read: self.source.read(t, table)?,
            range,
            resume_after: None,
            batch_bytes: self.batch_bytes,
        };
        Ok(async move { self.reader.read_chunk(&req, tx, self.metrics).await })
    }
}

/// A table compared by streaming.
pub(super) struct StreamedTable {
    /// The table as read from the source.
    pub source_table: Table,
    /// The target table.
    pub target: Table,
    /// The copy's transform of the table, if it has one.
    pub transform: Option<TableTransform>,
    /// Per target column: left out of the hash (a per-run value the job did not record).
    pub skip: Vec<bool>,
}

/// One side's figures for a chunk, and with a drill-down each row's key and hash.
pub(super) type Side = (Sums, Option<HashMap<String, u64>>);

/// Hashes tuples of the target's shape; `jsonb` fields are compared by value (the server
/// normalises jsonb text, a MySQL source's JSON arrives as MySQL wrote it), through their
/// canonical bytes ([`json::canonical`]) and those bytes' length.
struct TupleHasher {
    jsonb: Vec<bool>,
    /// Fields left out of the hash.
    skip: Vec<bool>,
    key: Vec<(usize, String, String)>,
    fields: Vec<(usize, i32)>,
    /// Canonical bytes of the current `jsonb` value, reused from row to row.
    scratch: Vec<u8>,
}

impl TupleHasher {
    fn new(target: &Table, skip: &[bool]) -> Self {
        let cols: Vec<&crate::catalog::Column> = target.copy_columns().collect();
        let key = target
            .chunk_key
            .iter()
            .flatten()
            .filter_map(|k: &KeyColumn| {
                let p = cols.iter().position(|c| c.name == k.name)?;
                Some((p, k.name.clone(), k.type_sql.clone()))
            })
            .collect();
        TupleHasher {
            jsonb: cols.iter().map(|c| c.type_sql == "jsonb").collect(),
            skip: skip.to_vec(),
            key,
            fields: Vec::new(),
            scratch: Vec::new(),
        }
    }

    /// Adds every tuple of `data` to `sums` (and, for a drill-down, to `rows`).
    fn add(&mut self, data: &[u8], sums: &mut Sums, mut rows: Option<&mut HashMap<String, u64>>) {
        let mut pos = 0;
        while pos < data.len() {
            let Some(len) = crate::transform::split_tuple(&data[pos..], &mut self.fields) else {
                return;
            };
            let tuple = &data[pos..pos + len];
            let mut h = std::hash::DefaultHasher::new();
            for (i, &(start, l)) in self.fields.iter().enumerate() {
                if self.skip.get(i).copied().unwrap_or(false) {
                    continue;
                }
                if l <= 0 {
                    // NULL (-1) or empty.
                    l.hash(&mut h);
                    continue;
                }
                let v = &tuple[start..start + l as usize];
                // A jsonb field is its version byte, then the text.
                let text = v.get(1..).unwrap_or(&[]);
                self.scratch.clear();
                if self.jsonb.get(i).copied().unwrap_or(false)
                    && json::canonical(text, &mut self.scratch)
                {
                    // The length of what is hashed, never the raw text's.
                    (-2i32).hash(&mut h);
                    self.scratch.hash(&mut h);
                } else {
                    l.hash(&mut h);
                    v.hash(&mut h);
                }
            }
            let row = h.finish();
            sums.rows += 1;
            sums.sum = sums.sum.wrapping_add(u128::from(row));
            if let Some(map) = rows.as_deref_mut() {
                let key = if self.key.is_empty() {
                    format!("row hash {row:016x}")
                } else {
                    self.key
                        .iter()
                        .map(|(p, name, ty)| {
                            let v = self
                                .fields
                                .get(*p)
                                .and_then(|&(s, l)| (l >= 0).then(|| &tuple[s..s + l as usize]));
                            format!("{name}={}", crate::transform::key_text(v, ty))
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                map.insert(key, row);
            }
            pos += len;
        }
    }
}

/// The source side of a streamed chunk: the copy's reader (and transform), hashed here.
pub(super) async fn source_side(
    side: &mut ReadSide<'_>,
    t: usize,
    table: &StreamedTable,
    range: &ChunkRange,
    drill: bool,
) -> Result<Side> {
    let (tx, mut rx) = mpsc::channel::<Piece>(4);
    let read = side.read(t, &table.source_table, range, tx)?;
    let hash = async {
        let mut hasher = TupleHasher::new(&table.target, &table.skip);
        let mut sums = Sums::default();
        let mut rows = drill.then(HashMap::new);
        while let Some(Piece::Rows(batch)) = rx.recv().await {
            let batch = match &table.transform {
                Some(tr) => tr.apply(batch)?.0,
                None => batch,
            };
            hasher.add(&batch.data, &mut sums, rows.as_mut());
        }
        Ok::<_, Error>((sums, rows))
    };
    let (read, hashed) = tokio::join!(read, hash);
    read?;
    hashed
}

/// The target side of a streamed chunk: its range as binary tuples, hashed here.
pub(super) async fn target_side(
    client: &Client,
    table: &Table,
    skip: &[bool],
    range: &ChunkRange,
    drill: bool,
) -> Result<Side> {
    let cols: Vec<String> = table.copy_columns().map(|c| quote_ident(&c.name)).collect();
    let sql = format!(
        "COPY (SELECT {} FROM ONLY {}{}) TO STDOUT (FORMAT binary)",
        cols.join(", "),
        table.name.quoted(),
        where_clause(table, range)
    );
    let fail = |e: &tokio_postgres::Error| Error::Query {
        what: format!("reading {} {range} on the target", table.name),
        reason: db_reason(e),
    };
    let stream = client.copy_out(&sql).await.map_err(|e| fail(&e))?;
    futures_util::pin_mut!(stream);
    let mut splitter = TupleSplitter::new(cols.len(), 1 << 20);
    let mut hasher = TupleHasher::new(table, skip);
    let mut sums = Sums::default();
    let mut rows = drill.then(HashMap::new);
    while let Some(piece) = stream.next().await {
        let piece = piece.map_err(|e| fail(&e))?;
        splitter.push(&piece)?;
        while let Some(b) = splitter.take_full() {
            hasher.add(&b.data, &mut sums, rows.as_mut());
        }
    }
    if let Some(b) = splitter.finish()? {
        hasher.add(&b.data, &mut sums, rows.as_mut());
    }
    Ok((sums, rows))
}
