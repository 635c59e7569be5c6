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

use super::{check_range, where_clause, Method, Repair};
use crate::batch::Piece;
use crate::chunking::ChunkRange;
use crate::config::CopySettings;
use crate::connect::{connect, Side};
use crate::error::{db_reason, Error, Result};
use crate::metrics::{ChunkMetrics, Live, RunMetrics, TableMetrics};
use crate::source::{ChunkRead, Reader, Reading};

/// Repairs `ranges` of table `t` in one target transaction; one outcome per range, in order.
pub async fn repair_table(
    settings: &CopySettings,
    source: &Reading,
    t: usize,
    method: &Method,
    ranges: &[ChunkRange],
) -> Result<Vec<Repair>> {
    let name = match method {
        Method::InServer { target, .. } | Method::Streamed { target, .. } => target.name.clone(),
    };
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
    let (read_table, target_table, transform) = match method {
        Method::InServer { source, target, .. } => (source.clone(), target.clone(), None),
        Method::Streamed {
            source_table,
            target,
            transform,
            ..
        } => (source_table.clone(), target.clone(), transform.clone()),
    };
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
    let mut done = Vec::with_capacity(ranges.len());
    for range in ranges {
        let fail = |what: &str, e: &tokio_postgres::Error| Error::Query {
            what: format!("{what} ({} {range})", target_table.name),
            reason: db_reason(e),
        };
        let deleted = target
            .execute(
                &format!(
                    "DELETE FROM ONLY {}{}",
                    target_table.name.quoted(),
                    where_clause(&target_table, range)
                ),
                &[],
            )
            .await
            .map_err(|e| fail("deleting the range", &e))?;
        let (tx, mut rx) = mpsc::channel::<Piece>(4);
        let req = ChunkRead {
            table: &read_table,
            read: source.read(t, &read_table)?,
            range,
            resume_after: None,
            batch_bytes: settings.batch_bytes,
        };
        let read = reader.read_chunk(&req, tx, &metrics);
        let write = async {
            use futures_util::SinkExt;
            let sql = crate::sink::postgres::copy_in_sql(
                &target_table,
                crate::sink::postgres::LoadMode::Append,
            );
            let sink = target
                .copy_in::<_, bytes::Bytes>(&sql)
                .await
                .map_err(|e| fail("copying the range", &e))?;
            futures_util::pin_mut!(sink);
            sink.feed(crate::pgcopy::encode::header())
                .await
                .map_err(|e| fail("copying the range", &e))?;
            while let Some(Piece::Rows(batch)) = rx.recv().await {
                let batch = match transform.as_deref() {
                    Some(tr) => tr.apply(batch)?.0,
                    None => batch,
                };
                for frame in crate::pgcopy::encode::frames(&batch.data, 256 * 1024) {
                    sink.feed(frame)
                        .await
                        .map_err(|e| fail("copying the range", &e))?;
                }
            }
            sink.feed(crate::pgcopy::encode::trailer())
                .await
                .map_err(|e| fail("copying the range", &e))?;
            sink.as_mut()
                .finish()
                .await
                .map_err(|e| fail("copying the range", &e))
        };
        let (read, copied) = tokio::join!(read, write);
        read?;
        done.push((deleted, copied?));
    }
    // Check every range again, as the verification did, seeing this transaction's rows.
    let mut checked = Vec::with_capacity(ranges.len());
    for (range, (deleted, copied)) in ranges.iter().zip(done) {
        let (src, tgt, _) = check_range(
            reader,
            target,
            source,
            t,
            method,
            range,
            settings.batch_bytes,
            &metrics,
            false,
        )
        .await?;
        checked.push((deleted, copied, src == tgt));
    }
    Ok(checked)
}
