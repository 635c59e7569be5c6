//! PostgreSQL source: `COPY ... TO STDOUT (FORMAT binary)` inside the run's exported snapshot.
//!
//! A reader always knows the id of the snapshot it reads in: the one it imported, or, when none
//! could be imported, one it exported from its own fresh snapshot, which other readers can
//! import while it lives (the block ranges of a keyless table must share one snapshot).

use futures_util::StreamExt;
use tokio::sync::mpsc;
use tokio_postgres::Client;

use crate::batch::{Batch, Piece};
use crate::catalog::{quote_ident, Table};
use crate::chunking::ChunkRange;
use crate::connect::{connect, Side};
use crate::conninfo::PgUrl;
use crate::error::{db_reason, Error, Result};
use crate::metrics::ChunkMetrics;
use crate::pgcopy::TupleSplitter;
use crate::source::{ChunkRead, ReadStats};

/// A source connection inside a repeatable-read transaction on the run's snapshot.
pub struct PgReader {
    client: Client,
    /// The id of the snapshot this reader reads in: the one it imported, or for a fresh
    /// snapshot the id it exported itself (importable while this reader lives).
    snapshot: String,
    /// Whether `snapshot` was imported (another session's transaction keeps it), so this
    /// reader may end its transaction and import it again.
    imported: bool,
    /// Tables read in the current transaction: each keeps an ACCESS SHARE lock until it ends.
    locked: Vec<crate::catalog::QualifiedName>,
}

/// Tables a reader reads in one transaction before it ends it and imports its snapshot again,
/// so that a lane over thousands of tables holds a bounded number of locks on the source (the
/// server's lock table is `max_locks_per_transaction` x connections for all sessions).
pub const TABLES_PER_TRANSACTION: usize = 32;

/// How a table with a column mapping is read: its source shape, which columns come as text
/// (for the transform stage to cast), and a source-side filter.
#[derive(Debug, Clone)]
pub struct PgRead {
    /// The source table, with the columns read.
    pub table: Table,
    /// Per copied column: how it is read (as it is, as text, or cast by the server).
    pub read_as: Vec<crate::mapping::ReadAs>,
    /// `WHERE` condition of the user's `[[table]]` rule.
    pub filter: Option<String>,
}

/// The columns a reader selects, each as the mapping reads it (as it is, as text, or cast by
/// the source server); the follower selects changed rows the same way (`follow/mapped.rs`).
pub fn select_list(table: &Table, read: Option<&PgRead>) -> String {
    use crate::mapping::ReadAs;
    let read_as = |i: usize| read.and_then(|r| r.read_as.get(i));
    table
        .copy_columns()
        .enumerate()
        .map(|(i, c)| {
            if let Some(ReadAs::Text(suffix)) = read_as(i) {
                format!("{}{suffix}", quote_ident(&c.name))
            } else if let Some(ReadAs::Cast(suffix)) = read_as(i) {
                format!("({}{suffix})", quote_ident(&c.name))
            } else {
                quote_ident(&c.name)
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The `COPY ... TO STDOUT` statement for one chunk of a table, resuming after a committed key.
///
/// Tables with a key are read in key order, so that the key of the last committed row is an
/// exact offset for a resume; tables without one are read as stored. `read` says which
/// columns come as text and what filter applies, for a mapped table.
pub fn copy_out_sql(
    table: &Table,
    read: Option<&PgRead>,
    range: &ChunkRange,
    resume_after: Option<&[String]>,
) -> String {
    use crate::mapping::ReadAs;
    let cols = select_list(table, read);
    let user_filter = read
        .and_then(|r| r.filter.as_deref())
        .map(|f| format!("({f})"));
    let plain =
        read.is_none_or(|r| r.filter.is_none() && r.read_as.iter().all(|a| *a == ReadAs::Value));
    let Some(key) = table.chunk_key.as_deref() else {
        let preds: Vec<String> = range
            .predicate(None)
            .into_iter()
            .chain(user_filter)
            .collect();
        return match preds.is_empty() {
            // COPY of a table (not a query) reads that table only, never its inheritance
            // children; without a column list it takes every column but generated ones.
            true if plain && cols.is_empty() => {
                format!("COPY {} TO STDOUT (FORMAT binary)", table.name.quoted())
            }
            true if plain => format!(
                "COPY {} ({cols}) TO STDOUT (FORMAT binary)",
                table.name.quoted()
            ),
            true => format!(
                "COPY (SELECT {cols} FROM ONLY {}) TO STDOUT (FORMAT binary)",
                table.name.quoted()
            ),
            false => format!(
                "COPY (SELECT {cols} FROM ONLY {} WHERE {}) TO STDOUT (FORMAT binary)",
                table.name.quoted(),
                preds.join(" AND ")
            ),
        };
    };
    let mut preds: Vec<String> = range.predicate(Some(key)).into_iter().collect();
    if let Some(after) = resume_after {
        let resumed = ChunkRange::Keyset {
            lower: Some(after.to_vec()),
            upper: None,
        };
        preds.extend(resumed.predicate(Some(key)));
    }
    preds.extend(user_filter);
    let filter = if preds.is_empty() {
        String::new()
    } else {
        format!(" WHERE {}", preds.join(" AND "))
    };
    // In the key index's collation, as the range predicates compare.
    let order = key
        .iter()
        .map(crate::catalog::KeyColumn::sql)
        .collect::<Vec<_>>()
        .join(", ");
    format!(
        "COPY (SELECT {cols} FROM ONLY {}{filter} ORDER BY {order}) TO STDOUT (FORMAT binary)",
        table.name.quoted()
    )
}

/// Exports the snapshot of `client`'s transaction, so that other readers can import it.
async fn export(client: &Client) -> Result<String> {
    let row = client
        .query_one("SELECT pg_export_snapshot()", &[])
        .await
        .map_err(|e| crate::error::query_error("exporting the reader's snapshot", &e))?;
    Ok(row.get(0))
}

impl PgReader {
    /// Opens a connection in a repeatable-read transaction that adopts the first of
    /// `snapshots` still available, so that every reader of the job sees the same database
    /// image; with none left, it reads a fresh snapshot and says so.
    pub async fn open(url: &PgUrl, snapshots: &[String]) -> Result<Self> {
        let client = connect(url, Side::Source).await?;
        let begin = "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY";
        let failed = |e: tokio_postgres::Error| {
            crate::error::query_error("importing the source snapshot", &e)
        };
        client.batch_execute(begin).await.map_err(failed)?;
        let mut gone = Vec::new();
        for id in snapshots {
            let import = format!(
                "SET TRANSACTION SNAPSHOT {}",
                crate::catalog::quote_literal(id)
            );
            match client.batch_execute(&import).await {
                Ok(()) => {
                    return Ok(PgReader {
                        client,
                        snapshot: id.clone(),
                        imported: true,
                        locked: Vec::new(),
                    })
                }
                Err(e) if crate::error::is_transient(&e) => return Err(failed(e)),
                Err(e) => {
                    // A snapshot dies with the transaction that exported it (its worker ended,
                    // or its connection was cut).
                    gone.push(db_reason(&e));
                    client
                        .batch_execute(&format!("ROLLBACK; {begin}"))
                        .await
                        .map_err(failed)?;
                }
            }
        }
        if !gone.is_empty() {
            tracing::warn!(
                "the job's source snapshot is gone ({}): this reader uses a newer snapshot",
                gone.join("; ")
            );
        }
        let snapshot = export(&client).await?;
        Ok(PgReader {
            client,
            snapshot,
            imported: false,
            locked: Vec::new(),
        })
    }

    /// Opens a reader in snapshot `id` only; `None` when it cannot be imported any more (the
    /// transaction that exported it has ended).
    pub async fn open_in(url: &PgUrl, id: &str) -> Result<Option<Self>> {
        let client = connect(url, Side::Source).await?;
        let sql = format!(
            "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET TRANSACTION SNAPSHOT {}",
            crate::catalog::quote_literal(id)
        );
        match client.batch_execute(&sql).await {
            Ok(()) => Ok(Some(PgReader {
                client,
                snapshot: id.to_string(),
                imported: true,
                locked: Vec::new(),
            })),
            Err(e) if crate::error::is_transient(&e) => Err(crate::error::query_error(
                "importing the source snapshot",
                &e,
            )),
            Err(_) => Ok(None),
        }
    }

    /// Before reading `table`: when the transaction already holds the locks of
    /// [`TABLES_PER_TRANSACTION`] other tables and the snapshot was imported, ends it and
    /// imports the same snapshot again (the same image of the source, fewer locks).
    pub async fn bound_locks(&mut self, table: &Table) -> Result<()> {
        if self.locked.contains(&table.name) {
            return Ok(());
        }
        if self.imported && self.locked.len() >= TABLES_PER_TRANSACTION {
            let sql = format!(
                "ROLLBACK; BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET TRANSACTION SNAPSHOT {}",
                crate::catalog::quote_literal(&self.snapshot)
            );
            self.client.batch_execute(&sql).await.map_err(|e| {
                crate::error::query_error("importing the source snapshot again", &e)
            })?;
            self.locked.clear();
        }
        self.locked.push(table.name.clone());
        Ok(())
    }

    /// The id of the snapshot this reader reads in (see [`PgReader::open`]).
    pub fn snapshot(&self) -> &str {
        &self.snapshot
    }

    /// The session, inside its snapshot transaction (for queries such as `howdah verify`'s
    /// checksums).
    pub fn client(&self) -> &Client {
        &self.client
    }

    /// Whether the exported snapshot `id` can still be imported (its exporting transaction
    /// is open).
    pub async fn snapshot_alive(url: &PgUrl, id: &str) -> Result<bool> {
        let client = connect(url, Side::Source).await?;
        let sql = format!(
            "BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY; SET TRANSACTION SNAPSHOT {}; ROLLBACK",
            crate::catalog::quote_literal(id)
        );
        Ok(client.batch_execute(&sql).await.is_ok())
    }

    /// Streams one chunk into `tx` as batches of about `batch_bytes`.
    ///
    /// Returns early (without error) when the receiver is gone: the writer failed and its error
    /// is the one to report.
    pub async fn read_chunk(
        &mut self,
        req: &ChunkRead<'_>,
        read: Option<&PgRead>,
        tx: mpsc::Sender<Piece>,
        metrics: &ChunkMetrics,
    ) -> Result<ReadStats> {
        self.bound_locks(read.map_or(req.table, |r| &r.table))
            .await?;
        let (table, range, batch_bytes) = (req.table, req.range, req.batch_bytes);
        let fail = |reason: String| Error::Copy {
            table: table.name.clone(),
            chunk: range.to_string(),
            stage: "reading the source",
            reason,
            transient: false,
        };
        let fail_db = |e: &tokio_postgres::Error| Error::Copy {
            table: table.name.clone(),
            chunk: range.to_string(),
            stage: "reading the source",
            reason: db_reason(e),
            transient: crate::error::is_transient(e),
        };
        let table = read.map_or(table, |r| &r.table);
        let sql = copy_out_sql(table, read, range, req.resume_after);
        let stream = self.client.copy_out(&sql).await.map_err(|e| fail_db(&e))?;
        futures_util::pin_mut!(stream);
        let mut splitter = TupleSplitter::new(table.copy_columns().count(), batch_bytes);
        let mut stats = ReadStats::default();
        // A batch bigger than all the channel is meant to hold (one huge row) travels alone:
        // nothing more is read until the writer has taken it, so one such row is being written
        // while the next is read, never several queued.
        let alone = batch_bytes.saturating_mul(tx.max_capacity());
        while let Some(piece) = stream.next().await {
            let piece = piece.map_err(|e| fail_db(&e))?;
            splitter
                .push_bytes(&piece)
                .map_err(|e| fail(e.to_string()))?;
            drop(piece);
            while let Some(batch) = splitter.take_full() {
                stats.rows += batch.rows;
                stats.bytes += batch.data.len() as u64;
                metrics.table.read.add(batch.rows, batch.data.len() as u64);
                let huge = batch.data.len() > alone;
                let waited = std::time::Instant::now();
                if tx.send(Piece::Rows(Batch::from(batch))).await.is_err() {
                    return Ok(stats);
                }
                if huge && tx.reserve_many(tx.max_capacity()).await.is_err() {
                    return Ok(stats);
                }
                metrics.queued(waited.elapsed());
            }
        }
        if let Some(batch) = splitter.finish().map_err(|e| fail(e.to_string()))? {
            stats.rows += batch.rows;
            stats.bytes += batch.data.len() as u64;
            metrics.table.read.add(batch.rows, batch.data.len() as u64);
            let waited = std::time::Instant::now();
            if tx.send(Piece::Rows(Batch::from(batch))).await.is_ok() {
                metrics.queued(waited.elapsed());
            }
        }
        Ok(stats)
    }
}
