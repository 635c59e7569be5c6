//! The block-range (`ctid`) chunks of a table without a key are all read in one snapshot.
//!
//! Block ranges partition a table's rows only within one snapshot: an update between two
//! snapshots moves a row's new version to another block, from a range not yet copied into
//! one already copied (the row is lost) or the other way round (it is copied twice). And
//! without a key, the target's copy of a row cannot be found to delete it. So before a lane
//! copies such a chunk, under a lock on all of the table's chunk rows:
//! - if every other chunk that holds rows (done) or will (running) was read in this lane's
//!   snapshot, the chunk records it and is copied;
//! - else, if that one other snapshot can still be imported (its exporting transaction is
//!   open: the run's coordinator, or the lane of another worker that exported it), the lane
//!   switches its reader to it;
//! - else (a resumed run, a retry after the snapshot holder's connection was cut, a worker that
//!   joined after the first one ended) the table starts over in this lane's snapshot: its rows
//!   on the target and its rejects are deleted, and its other chunks go back to pending with
//!   their claims ended, all in one target transaction. A lane still copying one of them finds
//!   its claim gone at its checkpoint and rolls back, so no row of the old snapshot survives.
//!
//! The table's rows are deleted with `DELETE FROM ONLY` (a partition leaf or an inheritance
//! parent holds only its own rows), not `TRUNCATE`, whose exclusive lock would wait for the
//! other lanes' open COPY into the same table while they wait for the chunk rows locked here.

use std::collections::BTreeSet;

use tokio_postgres::Client;

use super::Shared;
use crate::error::{Error, Result};
use crate::source::postgres::PgReader;
use crate::source::{Reader, Source};
use crate::state::{self, Claim};

/// Makes `reader` read `claim`'s block-range chunk in the snapshot of the table's other
/// chunks, or starts the table over in the reader's snapshot (see the module comment).
/// Uses `writer` (a target session outside any transaction) for the state and the deletion.
pub(super) async fn align(
    shared: &Shared,
    reader: &mut Reader,
    writer: &Client,
    claim: &Claim,
) -> Result<()> {
    let Source::Postgres { url, .. } = &shared.source else {
        return Ok(());
    };
    let table = &shared.tables[claim.chunk.table].job.table;
    let mut tried_import = false;
    loop {
        let Some(mine) = reader.snapshot().map(str::to_string) else {
            return Ok(());
        };
        begin(writer).await?;
        let chunks =
            match state::lock_table_chunks(writer, &shared.state, claim.chunk.table as i32).await {
                Ok(c) => c,
                Err(e) => {
                    rollback(writer).await;
                    return Err(e);
                }
            };
        let ours = chunks.iter().any(|c| {
            c.chunk_no == claim.chunk.ordinal as i32
                && c.status == "running"
                && c.owner == Some(shared.worker)
                && c.claims == claim.token
        });
        if !ours {
            rollback(writer).await;
            return Err(Error::LeaseLost {
                table: table.name.clone(),
                chunk: claim.chunk.range.to_string(),
            });
        }
        let others: BTreeSet<&str> = chunks
            .iter()
            .filter(|c| c.chunk_no != claim.chunk.ordinal as i32)
            .filter(|c| c.status == "done" || c.status == "running")
            .map(|c| c.snapshot.as_str())
            .collect();
        if others.iter().all(|s| *s == mine) {
            return record(shared, writer, claim, &mine).await;
        }
        let single = (others.len() == 1)
            .then(|| others.first().map(|s| s.to_string()))
            .flatten()
            .filter(|s| !s.is_empty());
        if let (false, Some(theirs)) = (tried_import, single) {
            // Not under the lock while connecting: the state is read again afterwards.
            rollback(writer).await;
            tried_import = true;
            match PgReader::open_in(url, &theirs).await? {
                Some(r) => {
                    tracing::debug!(
                        "{}: reading {} in snapshot {theirs}, as its other block ranges",
                        table.name,
                        claim.chunk.range
                    );
                    *reader = Reader::Pg(r);
                }
                None => tracing::debug!(
                    "{}: snapshot {theirs} of its other block ranges is gone",
                    table.name
                ),
            }
            continue;
        }
        let done = chunks.iter().filter(|c| c.status == "done").count();
        let reset = async {
            writer
                .execute(&format!("DELETE FROM ONLY {}", table.name.quoted()), &[])
                .await
                .map_err(|e| {
                    crate::error::query_error(
                        format!("deleting the rows of {} to copy it again", table.name),
                        &e,
                    )
                })?;
            state::rejects::delete_table(writer, &shared.state, &table.name.to_string()).await?;
            state::reset_table_chunks(writer, &shared.state, claim).await
        };
        if let Err(e) = reset.await {
            rollback(writer).await;
            return Err(e);
        }
        if done > 0 {
            tracing::warn!(
                "{}: {done} of its {} block ranges were copied in a snapshot that is gone (a \
                 resumed run, a retry after the snapshot holder's connection was cut, or a worker \
                 that joined after the first one ended); a table without a key cannot go on from \
                 there when the source may have changed, so its rows on the target are deleted \
                 and all of its ranges are copied again, in one snapshot",
                table.name,
                chunks.len()
            );
        } else {
            tracing::debug!(
                "{}: its block ranges being copied in a snapshot that is gone start over",
                table.name
            );
        }
        return record(shared, writer, claim, &mine).await;
    }
}

/// Records the chunk's snapshot and commits (the caller's lock transaction).
async fn record(shared: &Shared, writer: &Client, claim: &Claim, snapshot: &str) -> Result<()> {
    match state::set_chunk_snapshot(writer, &shared.state, claim, shared.worker, snapshot).await {
        Ok(true) => {}
        Ok(false) => {
            rollback(writer).await;
            return Err(Error::LeaseLost {
                table: shared.tables[claim.chunk.table].job.table.name.clone(),
                chunk: claim.chunk.range.to_string(),
            });
        }
        Err(e) => {
            rollback(writer).await;
            return Err(e);
        }
    }
    writer
        .batch_execute("COMMIT")
        .await
        .map_err(|e| crate::error::query_error("committing a chunk's snapshot", &e))
}

async fn begin(writer: &Client) -> Result<()> {
    writer
        .batch_execute("BEGIN")
        .await
        .map_err(|e| crate::error::query_error("locking the chunks of a table", &e))
}

/// Best effort: a failed rollback means a broken session, which the caller's error replaces.
async fn rollback(writer: &Client) {
    let _ = writer.batch_execute("ROLLBACK").await;
}
