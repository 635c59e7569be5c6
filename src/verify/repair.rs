//! `verify --repair`: re-copies a table's mismatched ranges from the source, through the copy's
//! own reader and transform, all of them in one target transaction.
//!
//! Invariant: a table's repair commits only when every range it re-copied matches the source
//! when checked again inside that transaction. If a statement fails, or a range still
//! differs (the two sides' ranges hold different rows, a target trigger rewrites the rows),
//! the transaction is rolled back and the target is exactly as it was: a repair never deletes
//! rows it does not put back. Ranges are read in the verification's snapshot, which the
//! planning session keeps exported until the repairs end.

use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_postgres::Client;

use super::check::check_range;
use super::stream::ReadSide;
use super::{where_clause, Method, Repair, TableResult};
use crate::batch::Piece;
use crate::catalog::Table;
use crate::chunking::ChunkRange;
use crate::config::CopySettings;
use crate::connect::{connect, Side};
use crate::error::{db_reason, Error, Result};
use crate::metrics::{ChunkMetrics, Live, RunMetrics, TableMetrics};
use crate::source::{Reader, Reading};
use crate::transform::TableTransform;

/// Repairs the `mismatched` ranges, given as (table, range, index in its table's
/// mismatches) in table order, and records each outcome in its mismatch. A table's ranges
/// are repaired together, in one target transaction; a table with columns left out of the
/// comparison is not repaired (a re-copy would write values evaluated now into them).
pub async fn repair_mismatches(
    settings: &CopySettings,
    source: &Reading,
    methods: &[Method],
    tables: &mut [TableResult],
    mismatched: Vec<(usize, ChunkRange, usize)>,
) -> Result<()> {
    let mut by_table: Vec<(usize, Vec<ChunkRange>, Vec<usize>)> = Vec::new();
    for (t, range, at) in mismatched {
        match by_table.last_mut() {
            Some((last, ranges, ats)) if *last == t => {
                ranges.push(range);
                ats.push(at);
            }
            _ => by_table.push((t, vec![range], vec![at])),
        }
    }
    for (t, ranges, ats) in by_table {
        let outcome = if tables[t].not_compared.is_empty() {
            repair_table(settings, source, t, &methods[t], &ranges).await?
        } else {
            let why = format!(
                "not attempted: {} take default_sql/value_sql values the job's state does not \
                 record, and a re-copy would write new ones (give verify the copy's --job)",
                tables[t].not_compared.join(", ")
            );
            (0..ranges.len())
                .map(|_| Repair {
                    deleted: 0,
                    copied: 0,
                    matches: false,
                    committed: false,
                    error: Some(why.clone()),
                })
                .collect()
        };
        for (at, fixed) in ats.into_iter().zip(outcome) {
            tables[t].mismatches[at].repaired = Some(fixed);
        }
    }
    Ok(())
}

/// Repairs `ranges` of table `t` in one target transaction; one outcome per range, in order.
async fn repair_table(
    settings: &CopySettings,
    source: &Reading,
    t: usize,
    method: &Method,
    ranges: &[ChunkRange],
) -> Result<Vec<Repair>> {
    let name = method.target().name.clone();
    let target = connect(&settings.target, Side::Target).await?;
    let mut reader = Reader::open(&source.source).await?;
    target
        .batch_execute("BEGIN")
        .await
        .map_err(|e| crate::error::query_error(format!("starting the repair of {name}"), &e))?;
    let outcome = rewrite(&target, &mut reader, settings, source, t, method, ranges).await;
    let committed = matches!(&outcome, Ok(done) if done.iter().all(|d| d.2));
    if committed {
        target.batch_execute("COMMIT").await.map_err(|e| {
            crate::error::query_error(format!("committing the repair of {name}"), &e)
        })?;
    } else {
        // Best effort: a session that cannot roll back ends, and the server rolls back.
        let _ = target.batch_execute("ROLLBACK").await;
        tracing::warn!("the repair of {name} was rolled back; the target table is unchanged");
    }
    Ok(match outcome {
        Ok(done) => done
            .into_iter()
            .map(|(deleted, copied, matches)| Repair {
                deleted,
                copied,
                matches,
                committed,
                error: None,
            })
            .collect(),
        Err(e) => ranges
            .iter()
            .map(|_| Repair {
                deleted: 0,
                copied: 0,
                matches: false,
                committed: false,
                error: Some(format!("rolled back: the re-copy failed: {e}")),
            })
            .collect(),
    })
}

/// Deletes and copies every range, then checks each again, inside the open transaction:
/// `(deleted, copied, matches)` per range.
async fn rewrite(
    target: &Client,
    reader: &mut Reader,
    settings: &CopySettings,
    source: &Reading,
    t: usize,
    method: &Method,
    ranges: &[ChunkRange],
) -> Result<Vec<(u64, u64, bool)>> {
    let (read_table, transform) = match method {
        Method::InServer(m) => (&m.source, None),
        Method::Streamed(m) => (&m.source_table, m.transform.as_ref()),
    };
    let target_table = method.target();
    // Triggers and foreign-key checks of the target do not fire on re-copied rows (where the
    // role may set it), as for `--schema existing`.
    if target
        .batch_execute("SAVEPOINT r; SET LOCAL session_replication_role = replica")
        .await
        .is_err()
    {
        let _ = target.batch_execute("ROLLBACK TO SAVEPOINT r").await;
        tracing::warn!(
            "the target role cannot set session_replication_role: triggers fire on repaired rows"
        );
    }
    let tm = TableMetrics::new("verify:repair", 0, Arc::new(Live::default()));
    let metrics = ChunkMetrics::new(&tm, &RunMetrics::new(1, 4));
    let mut side = ReadSide {
        reader,
        source,
        batch_bytes: settings.batch_bytes,
        metrics: &metrics,
    };
    let mut done = Vec::with_capacity(ranges.len());
    for range in ranges {
        let deleted = target
            .execute(
                &format!(
                    "DELETE FROM ONLY {}{}",
                    target_table.name.quoted(),
                    where_clause(target_table, range)
                ),
                &[],
            )
            .await
            .map_err(|e| range_failed(target_table, range, "deleting the range", &e))?;
        let copied = recopy(
            &mut side,
            target,
            t,
            read_table,
            transform,
            target_table,
            range,
        )
        .await?;
        done.push((deleted, copied));
    }
    // Check every range again, as the verification did, seeing this transaction's rows.
    let mut checked = Vec::with_capacity(ranges.len());
    for (range, (deleted, copied)) in ranges.iter().zip(done) {
        let (src, tgt, _) = check_range(&mut side, target, t, method, range, false).await?;
        checked.push((deleted, copied, src == tgt));
    }
    Ok(checked)
}

/// A failed statement of a range's repair.
fn range_failed(table: &Table, range: &ChunkRange, what: &str, e: &tokio_postgres::Error) -> Error {
    Error::Query {
        what: format!("{what} ({} {range})", table.name),
        reason: db_reason(e),
    }
}

/// Copies one range from the source into the target table through the copy's reader,
/// transform and binary COPY, in the open transaction; the rows copied. This is the one
/// place the repair reads and writes rows.
async fn recopy(
    side: &mut ReadSide<'_>,
    target: &Client,
    t: usize,
    read_table: &Table,
    transform: Option<&TableTransform>,
    target_table: &Table,
    range: &ChunkRange,
) -> Result<u64> {
    let fail =
        |e: &tokio_postgres::Error| range_failed(target_table, range, "copying the range", e);
    let (tx, mut rx) = mpsc::channel::<Piece>(4);
    let read = side.read(t, read_table, range, tx)?;
    let write = async {
        use futures_util::SinkExt;
        let sql = crate::sink::postgres::copy_in_sql(
            target_table,
            crate::sink::postgres::LoadMode::Append,
        );
        let sink = target
            .copy_in::<_, bytes::Bytes>(&sql)
            .await
            .map_err(|e| fail(&e))?;
        futures_util::pin_mut!(sink);
        sink.feed(crate::pgcopy::encode::header())
            .await
            .map_err(|e| fail(&e))?;
        while let Some(Piece::Rows(batch)) = rx.recv().await {
            let batch = match transform {
                Some(tr) => tr.apply(batch)?.0,
                None => batch,
            };
            for frame in crate::pgcopy::encode::frames(&batch.data, 256 * 1024) {
                sink.feed(frame).await.map_err(|e| fail(&e))?;
            }
        }
        sink.feed(crate::pgcopy::encode::trailer())
            .await
            .map_err(|e| fail(&e))?;
        sink.as_mut().finish().await.map_err(|e| fail(&e))
    };
    let (read, copied) = tokio::join!(read, write);
    read?;
    copied
}
