//! PostgreSQL target: `COPY ... FROM STDIN (FORMAT binary)` fed with whole-tuple batches, and
//! the commit point of a copy.
//!
//! Why a row is written exactly once: rows travel in segments. A segment is one target
//! transaction holding one COPY, the server's count of that COPY (which must equal the rows
//! sent), the segment's rejects, and its checkpoint (the chunk's rows so far and the key of the
//! last source row covered, or "done"), recorded by a statement that updates nothing unless this
//! worker still holds the chunk's claim. [`PgWriter::commit_segment`] does all of that, then
//! COMMIT, then books what is now durable (metrics, the rejects tally); it is the only place a
//! copy commits rows. A crash before the COMMIT loses the segment and its checkpoint together;
//! after it, both are there. A chunk's last segment commits only when its stream's end mark
//! arrives and the counts of the reader and the transform add up (see [`crate::batch::Piece`]).

use bytes::Bytes;
use futures_util::SinkExt;
use tokio::sync::mpsc;
use tokio_postgres::Client;

use crate::batch::{Batch, Piece};
use crate::catalog::{quote_ident, Table};
use crate::connect::{connect, Side};
use crate::conninfo::PgUrl;
use crate::error::{db_reason, Error, Result};
use crate::metrics::ChunkMetrics;
use crate::pgcopy::encode;
use crate::state::chunks::RawBinary;

/// Largest CopyData message sent: far below the server's 1 GiB message limit.
const FRAME_BYTES: usize = 256 * 1024;

/// How a chunk is loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadMode {
    /// Append to whatever the table holds.
    Append,
    /// `TRUNCATE` then `COPY ... FREEZE` in one transaction: for a table howdah created and
    /// loads in a single chunk, so the target never rewrites hint bits later.
    TruncateFreeze,
}

/// Where and how often a writer records a chunk's progress.
pub struct Checkpoint {
    /// Statement that records progress with the last key (`state::checkpoint_sql`).
    pub with_key: String,
    /// Statement that records progress without touching the key (keyless tables, empty tail).
    pub without_key: String,
    /// Job name, table and chunk numbers in the state tables.
    pub job: String,
    /// Table number in the plan.
    pub table_no: i32,
    /// Chunk number within the table.
    pub chunk_no: i32,
    /// The claim's fencing token (see [`crate::state::chunks::Claim`]).
    pub claim: i32,
    /// Positions of the key columns among the copied columns; empty for keyless tables.
    pub key_positions: Vec<usize>,
    /// The reader gives each batch's last key as text (MySQL): commit part-way with it.
    pub text_keys: bool,
    /// Statement that stores rejected rows (`state::rejects::insert_sql`).
    pub rejects_sql: String,
    /// Target table name as recorded with rejects.
    pub table_name: String,
    /// Commit after this many rows.
    pub commit_rows: u64,
    /// Commit after this many bytes.
    pub commit_bytes: u64,
    /// Set by Ctrl-C: commit at the next batch and stop.
    pub stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    /// The process's committed reads and rejects, checked against `max_rejects`.
    pub tally: std::sync::Arc<crate::reject::Tally>,
    /// `--max-rejects`.
    pub max_rejects: Option<crate::reject::MaxRejects>,
    /// The job's rate cap (this process's share): taken before each batch is sent.
    pub throttle: std::sync::Arc<crate::rate::Throttle>,
}

impl Checkpoint {
    /// Whether a chunk can commit part-way: its rows arrive in key order.
    pub fn resumable(&self) -> bool {
        !self.key_positions.is_empty() || self.text_keys
    }

    /// Stores the segment's rejects, then its progress and new offset (the key of the last
    /// source row `last` covers), in the caller's transaction.
    async fn record(
        &self,
        client: &Client,
        last: Option<&LastKey>,
        seg: &Segment,
        done: bool,
    ) -> std::result::Result<(), RecordError> {
        let db = |e: tokio_postgres::Error| {
            RecordError::Db(db_reason(&e), crate::error::is_transient(&e))
        };
        crate::state::rejects::insert(
            client,
            &self.rejects_sql,
            &self.job,
            &self.table_name,
            &seg.rejects,
        )
        .await
        .map_err(db)?;
        let (rows, bytes) = (seg.rows as i64, seg.bytes as i64);
        let rejected = seg.rejects.len() as i64;
        let base: [&(dyn tokio_postgres::types::ToSql + Sync); 8] = [
            &self.job,
            &self.table_no,
            &self.chunk_no,
            &rows,
            &bytes,
            &done,
            &self.claim,
            &rejected,
        ];
        if let Some(key) = last.and_then(|k| k.text.as_ref()) {
            let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = base.to_vec();
            params.push(key);
            return match client.execute(&self.with_key, &params).await {
                Ok(1) => Ok(()),
                Ok(_) => Err(RecordError::LeaseLost),
                Err(e) => Err(db(e)),
            };
        }
        let keys: Option<Vec<RawBinary>> = last
            .and_then(|k| k.raw.as_ref())
            .map(|k| k.iter().map(|f| RawBinary(f.as_deref())).collect());
        let result = match &keys {
            Some(keys) => {
                let mut params: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = base.to_vec();
                params.extend(
                    keys.iter()
                        .map(|k| k as &(dyn tokio_postgres::types::ToSql + Sync)),
                );
                client.execute(&self.with_key, &params).await
            }
            None => client.execute(&self.without_key, &base).await,
        };
        match result {
            Ok(1) => Ok(()),
            // Another worker owns the chunk now (see state::checkpoint_sql).
            Ok(_) => Err(RecordError::LeaseLost),
            Err(e) => Err(db(e)),
        }
    }
}

/// What a checkpoint needs of the last batch sent: the key of the last source row it covers,
/// owned, so that the batch (maybe one huge row) is dropped as soon as it is sent.
struct LastKey {
    /// The key as text, when the reader gave it so (MySQL).
    text: Option<Vec<String>>,
    /// The key's binary fields; `None` when the table has no key or the batch no row.
    raw: Option<Vec<Option<Bytes>>>,
}

impl LastKey {
    fn of(batch: &Batch, key_positions: &[usize]) -> LastKey {
        let own = |f: Option<&[u8]>| f.map(Bytes::copy_from_slice);
        let raw = match &batch.last_raw_key {
            _ if key_positions.is_empty() => None,
            Some(k) => Some(k.iter().map(|f| own(f.as_deref())).collect()),
            None if batch.rows > 0 => {
                let fields: Vec<Option<&[u8]>> =
                    crate::pgcopy::decode::fields(batch.last_tuple()).collect();
                Some(
                    key_positions
                        .iter()
                        .map(|&i| own(fields.get(i).copied().flatten()))
                        .collect(),
                )
            }
            None => None,
        };
        LastKey {
            text: batch.last_key.clone(),
            raw,
        }
    }
}

/// Which chunk a writer loads, and how.
pub struct ChunkTarget<'a> {
    /// The target table.
    pub table: &'a Table,
    /// The chunk's range, for messages.
    pub label: &'a str,
    /// Append, or truncate and freeze.
    pub mode: LoadMode,
}

impl ChunkTarget<'_> {
    /// The error of a statement on this chunk's target that failed at `stage`.
    fn failed(&self, stage: &'static str, e: &tokio_postgres::Error) -> Error {
        Error::Copy {
            table: self.table.name.clone(),
            chunk: self.label.to_string(),
            stage,
            reason: db_reason(e),
            transient: crate::error::is_transient(e),
        }
    }
}

/// Why a checkpoint could not be recorded.
enum RecordError {
    /// Another worker owns the chunk now.
    LeaseLost,
    /// The statement failed: the server's message, and whether a retry may succeed.
    Db(String, bool),
}

/// A target connection dedicated to one lane.
pub struct PgWriter {
    client: Client,
}

/// What loading one chunk wrote and committed.
#[derive(Debug, Clone, Default)]
pub struct WriteStats {
    /// Rows the server reports as copied.
    pub rows: u64,
    /// Tuple bytes sent.
    pub bytes: u64,
    /// Source rows rejected (recorded in `howdah.rejects`).
    pub rejected: u64,
}

/// What the writer has sent since its last commit.
#[derive(Default)]
struct Segment {
    rows: u64,
    bytes: u64,
    rejects: Vec<crate::reject::Reject>,
    /// The key of the last source row the segment covers.
    last: Option<LastKey>,
}

/// An open `COPY ... FROM STDIN`.
type CopySink = std::pin::Pin<Box<tokio_postgres::CopyInSink<Bytes>>>;

/// The error of a writer whose stream ended without its end mark: the stage before it failed
/// (and its error is the one to report), nothing of the last segment was committed.
pub fn stream_cut(table: &Table, chunk: &str) -> Error {
    Error::Copy {
        table: table.name.clone(),
        chunk: chunk.to_string(),
        stage: "reading the source",
        reason: "the stream of rows ended before its end mark".into(),
        transient: true,
    }
}

/// The `COPY ... FROM STDIN` statement for a table.
pub fn copy_in_sql(table: &Table, mode: LoadMode) -> String {
    let cols = table
        .copy_columns()
        .map(|c| quote_ident(&c.name))
        .collect::<Vec<_>>()
        .join(", ");
    let freeze = if mode == LoadMode::TruncateFreeze {
        ", FREEZE"
    } else {
        ""
    };
    // Without a list, COPY takes every column but generated ones: the same set, and valid for
    // tables without any such column.
    let cols = if cols.is_empty() {
        String::new()
    } else {
        format!(" ({cols})")
    };
    format!(
        "COPY {}{cols} FROM STDIN (FORMAT binary{freeze})",
        table.name.quoted()
    )
}

impl PgWriter {
    /// Opens a target connection with the writer's session settings.
    ///
    /// `quiet_triggers` loads with `session_replication_role = replica`, so that triggers and
    /// foreign-key checks of a pre-existing target schema do not fire on copied rows.
    pub async fn open(url: &PgUrl, quiet_triggers: bool, lease_secs: u32) -> Result<Self> {
        let client = connect(url, Side::Target).await?;
        // A writer is idle inside a transaction only for an instant (between a checkpoint and
        // its COMMIT). If its process freezes there, the chunk's row stays locked and no other
        // worker could take the chunk over: the server ends such a session after the lease.
        // A worker whose network link dies in the middle of a COPY leaves its server process
        // waiting for data, not idle: keepalives on the server's side of the socket end it
        // after about twice the lease (the OS default would wait two hours).
        let lease = lease_secs.max(3);
        client
            .batch_execute(&format!(
                "SET idle_in_transaction_session_timeout = '{lease}s'; \
                 SET tcp_keepalives_idle = {lease}; \
                 SET tcp_keepalives_interval = {}; \
                 SET tcp_keepalives_count = 3",
                (lease / 3).max(1)
            ))
            .await
            .map_err(|e| crate::error::query_error("setting the writer's session", &e))?;
        if quiet_triggers {
            if let Err(e) = client
                .batch_execute("SET session_replication_role = replica")
                .await
            {
                tracing::warn!(
                    "cannot set session_replication_role on the target ({}): triggers and foreign-key \
                     checks of the existing tables fire during the load",
                    db_reason(&e)
                );
            }
        }
        Ok(PgWriter { client })
    }

    /// Loads every batch received on `rx` into `table`, committing a segment (rows, rejects
    /// and the chunk's checkpoint in one transaction) every `commit_rows` rows or
    /// `commit_bytes` bytes when the table has a key, and once at the end otherwise. The last
    /// segment commits when the stream's end mark arrives with counts that add up; a stream
    /// that stops without it (the reader or the transform failed) leaves that segment
    /// uncommitted and fails with [`stream_cut`].
    pub async fn write_chunk(
        &mut self,
        into: &ChunkTarget<'_>,
        checkpoint: &Checkpoint,
        mut rx: mpsc::Receiver<Piece>,
        metrics: &ChunkMetrics,
    ) -> Result<WriteStats> {
        let (table, chunk) = (into.table, into.label);
        let fail_db = |stage: &'static str, e: &tokio_postgres::Error| into.failed(stage, e);
        let mut sink = self.start_copy(table, into.mode, &fail_db).await?;
        let mut stats = WriteStats::default();
        let mut seg = Segment::default();
        let end = loop {
            let waited = std::time::Instant::now();
            let piece = rx.recv().await;
            metrics.dequeued(waited.elapsed());
            let mut batch = match piece {
                Some(Piece::Rows(batch)) => batch,
                Some(Piece::End(end)) => break end,
                None => return Err(stream_cut(table, chunk)),
            };
            checkpoint
                .throttle
                .take(batch.rows, batch.data.len() as u64)
                .await;
            metrics
                .table
                .written
                .add(batch.rows, batch.data.len() as u64);
            seg.rows += batch.rows;
            seg.bytes += batch.data.len() as u64;
            seg.rejects.append(&mut batch.rejects);
            for frame in encode::frames(&batch.data, FRAME_BYTES) {
                sink.feed(frame)
                    .await
                    .map_err(|e| fail_db("writing the target", &e))?;
            }
            seg.last = Some(LastKey::of(&batch, &checkpoint.key_positions));
            drop(batch);
            let interrupted = checkpoint.stop.load(std::sync::atomic::Ordering::Relaxed);
            let due = seg.rows + seg.rejects.len() as u64 >= checkpoint.commit_rows
                || seg.bytes >= checkpoint.commit_bytes
                || interrupted;
            if checkpoint.resumable() && due {
                let done = std::mem::take(&mut seg);
                self.commit_segment(
                    into, &mut sink, done, checkpoint, false, &mut stats, metrics,
                )
                .await?;
                if interrupted {
                    return Err(Error::Interrupted);
                }
                sink = self.start_copy(table, LoadMode::Append, &fail_db).await?;
            }
        };
        let (wrote, rejected) = (
            stats.rows + seg.rows,
            stats.rejected + seg.rejects.len() as u64,
        );
        if end.read != wrote + end.transform_rejected
            || end.read_rejected + end.transform_rejected != rejected
        {
            return Err(Error::Copy {
                table: table.name.clone(),
                chunk: chunk.to_string(),
                stage: "checking the row count",
                reason: format!(
                    "read {} rows ({} rejected), the transform rejected {}, but wrote {} ({} rejected)",
                    end.read,
                    end.read_rejected,
                    end.transform_rejected,
                    wrote,
                    rejected
                ),
                transient: false,
            });
        }
        self.commit_segment(into, &mut sink, seg, checkpoint, true, &mut stats, metrics)
            .await?;
        Ok(stats)
    }

    /// The commit point (see the module comment): ends the segment's COPY and checks the
    /// server's count, records the segment's rejects and checkpoint (`done`: the chunk is
    /// complete), commits, then books the committed rows into `stats`, the metrics and the
    /// rejects tally (which stops the copy past `--max-rejects`).
    #[allow(clippy::too_many_arguments)]
    async fn commit_segment(
        &mut self,
        into: &ChunkTarget<'_>,
        sink: &mut CopySink,
        seg: Segment,
        checkpoint: &Checkpoint,
        done: bool,
        stats: &mut WriteStats,
        metrics: &ChunkMetrics,
    ) -> Result<()> {
        let (table, chunk) = (into.table, into.label);
        let fail_db = |stage: &'static str, e: &tokio_postgres::Error| into.failed(stage, e);
        self.finish_copy(sink, seg.rows, into, &fail_db).await?;
        // A segment that received no batch keeps the offset as it is.
        checkpoint
            .record(&self.client, seg.last.as_ref(), &seg, done)
            .await
            .map_err(|e| match e {
                RecordError::LeaseLost => Error::LeaseLost {
                    table: table.name.clone(),
                    chunk: chunk.to_string(),
                },
                RecordError::Db(reason, transient) => Error::Copy {
                    table: table.name.clone(),
                    chunk: chunk.to_string(),
                    stage: "recording the checkpoint",
                    reason,
                    transient,
                },
            })?;
        self.client
            .batch_execute("COMMIT")
            .await
            .map_err(|e| fail_db("committing", &e))?;
        let rejected = seg.rejects.len() as u64;
        stats.rows += seg.rows;
        stats.bytes += seg.bytes;
        stats.rejected += rejected;
        metrics.table.committed.add(seg.rows, seg.bytes);
        metrics.table.rejected.increment(rejected);
        checkpoint.tally.add(
            checkpoint.max_rejects,
            seg.rows + rejected,
            rejected,
            || {
                seg.rejects.last().map_or_else(
                    || format!("in {}", checkpoint.table_name),
                    |r| {
                        format!(
                            "{} {}, column {}: {}",
                            checkpoint.table_name, r.key, r.column, r.reason
                        )
                    },
                )
            },
        )
    }

    /// Opens a transaction (truncating first for `TruncateFreeze`) and a COPY with its header.
    async fn start_copy(
        &self,
        table: &Table,
        mode: LoadMode,
        fail_db: &impl Fn(&'static str, &tokio_postgres::Error) -> Error,
    ) -> Result<CopySink> {
        let mut begin = String::from("BEGIN;");
        if mode == LoadMode::TruncateFreeze {
            begin.push_str(&format!(" TRUNCATE ONLY {};", table.name.quoted()));
        }
        self.client
            .batch_execute(&begin)
            .await
            .map_err(|e| fail_db("starting the target transaction", &e))?;
        let mut sink = Box::pin(
            self.client
                .copy_in::<_, bytes::Bytes>(&copy_in_sql(table, mode))
                .await
                .map_err(|e| fail_db("writing the target", &e))?,
        );
        sink.feed(encode::header())
            .await
            .map_err(|e| fail_db("writing the target", &e))?;
        Ok(sink)
    }

    async fn finish_copy(
        &self,
        sink: &mut CopySink,
        sent: u64,
        into: &ChunkTarget<'_>,
        fail_db: &impl Fn(&'static str, &tokio_postgres::Error) -> Error,
    ) -> Result<()> {
        sink.feed(encode::trailer())
            .await
            .map_err(|e| fail_db("writing the target", &e))?;
        let copied = sink
            .as_mut()
            .finish()
            .await
            .map_err(|e| fail_db("writing the target", &e))?;
        if copied != sent {
            return Err(Error::Copy {
                table: into.table.name.clone(),
                chunk: into.label.to_string(),
                stage: "checking the row count",
                reason: format!("sent {sent} rows but the target copied {copied}"),
                transient: false,
            });
        }
        Ok(())
    }

    /// The writer's connection, for state queries between chunks.
    pub fn client(&self) -> &Client {
        &self.client
    }
}
