//! The job's chunks in the state tables: the plan, claims with leases, checkpoints, progress.
//!
//! A worker takes a chunk with one `UPDATE ... FOR UPDATE SKIP LOCKED` claim that sets it as
//! owner with a lease. A chunk is claimable when it is pending, or running under an owner that
//! is gone (its liveness lock is free, see [`super::worker`]) or whose lease ran out. Every
//! checkpoint commits only while the committing worker still owns the chunk, so a worker
//! whose chunk was taken over rolls its batch back instead of writing rows twice.

use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use tokio_postgres::{Client, Row};

use super::{query_err, StateRef};
use crate::catalog::Table;
use crate::chunking::{Chunk, ChunkRange};
use crate::error::{Error, Result};

/// SQL that inserts the chunk plan (part of the job's creation transaction).
pub fn insert_chunks_sql(
    st: &StateRef,
    chunks: &[Chunk],
    table_names: &[String],
    priority: &[i32],
) -> String {
    let lit = |s: &str| crate::catalog::quote_literal(s);
    let arr = |v: &Option<Vec<String>>| match v {
        None => "NULL".to_string(),
        Some(v) => format!(
            "ARRAY[{}]::text[]",
            v.iter().map(|s| lit(s)).collect::<Vec<_>>().join(", ")
        ),
    };
    let null = || "NULL".to_string();
    let mut sql = String::new();
    for rows in chunks.chunks(500) {
        let values: Vec<String> = rows
            .iter()
            .map(|c| {
                let (kind, lower, upper, start, end) = match &c.range {
                    ChunkRange::Whole => ("whole", null(), null(), null(), null()),
                    ChunkRange::Keyset { lower, upper } => {
                        ("keyset", arr(lower), arr(upper), null(), null())
                    }
                    ChunkRange::Ctid { start, end } => (
                        "ctid",
                        null(),
                        null(),
                        start.to_string(),
                        end.map(|e| e.to_string()).unwrap_or_else(null),
                    ),
                };
                format!(
                    "({}, {}, {}, {}, '{kind}', {lower}, {upper}, {start}, {end}, {}, {})",
                    lit(&st.job),
                    c.table,
                    c.ordinal,
                    lit(&table_names[c.table]),
                    c.estimated_rows.max(0),
                    priority.get(c.table).copied().unwrap_or(0)
                )
            })
            .collect();
        sql.push_str(&format!(
            "INSERT INTO {} (job, table_no, chunk_no, table_name, range_kind, lower_key, upper_key, \
             start_block, end_block, estimated_rows, priority) VALUES {};\n",
            st.table("chunks"),
            values.join(", ")
        ));
    }
    sql
}

/// Columns [`chunk_from_row`] reads, in order.
const CHUNK_COLUMNS: &str =
    "table_no, chunk_no, range_kind, lower_key, upper_key, start_block, end_block, last_key, estimated_rows";

/// Rebuilds a planned chunk (with its resume offset) from a row of [`CHUNK_COLUMNS`].
fn chunk_from_row(r: &Row) -> Result<Chunk> {
    let kind: String = r.get(2);
    let range = match kind.as_str() {
        "whole" => ChunkRange::Whole,
        "keyset" => ChunkRange::Keyset {
            lower: r.get(3),
            upper: r.get(4),
        },
        "ctid" => ChunkRange::Ctid {
            start: r.get::<_, Option<i64>>(5).unwrap_or(0),
            end: r.get(6),
        },
        other => {
            return Err(Error::Internal(format!(
                "unknown chunk kind {other} in the state tables"
            )))
        }
    };
    Ok(Chunk {
        table: r.get::<_, i32>(0) as usize,
        ordinal: r.get::<_, i32>(1) as usize,
        range,
        estimated_rows: r.get(8),
        estimated_bytes: 0,
        resume_after: r.get(7),
    })
}

/// How many chunks the job has, and how many are done.
pub async fn chunk_counts(client: &Client, st: &StateRef) -> Result<(i64, i64)> {
    let (total, done, _) = counts(client, st).await?;
    Ok((total, done))
}

/// The job's chunks: all, done, and open (pending or running).
async fn counts(client: &Client, st: &StateRef) -> Result<(i64, i64, i64)> {
    let row = client
        .query_one(
            &format!(
                "SELECT count(*), count(*) FILTER (WHERE status = 'done'), \
                 count(*) FILTER (WHERE status IN ('pending', 'running')) FROM {} WHERE job = $1",
                st.table("chunks")
            ),
            &[&st.job],
        )
        .await
        .map_err(query_err("counting the job's chunks"))?;
    Ok((row.get(0), row.get(1), row.get(2)))
}

/// A chunk claimed by a worker.
#[derive(Debug, Clone)]
pub struct Claim {
    /// The chunk, with the offset its last checkpoint left.
    pub chunk: Chunk,
    /// The claim's number (the chunk's `claims` count): a fencing token. Checkpoints commit
    /// only while it is current, so after a takeover the old holder cannot write, even when
    /// it is the same worker (whose liveness lock blinked with a cut connection).
    pub token: i32,
    /// The worker that held the chunk before this claim (a takeover), if any.
    pub owner_before: Option<i32>,
}

/// Claims the next chunk for `worker` in the planned order, with a lease of `lease_secs`;
/// `None` when no chunk is claimable right now (all done, failed, or owned by live workers).
/// A worker takes over its own running chunks only when none of its lanes is on them
/// (`busy`: the `(table, chunk)` numbers its lanes hold), so a chunk a lane gave up on is
/// never left running under a live heartbeat.
pub async fn claim_chunk(
    client: &Client,
    st: &StateRef,
    worker: i32,
    lease_secs: u32,
    busy: &[(i32, i32)],
) -> Result<Option<Claim>> {
    let sql = format!(
        "WITH next AS (
           SELECT table_no, chunk_no, owner AS owner_before FROM {chunks} c
           WHERE c.job = $1 AND (c.status = 'pending'
             OR (c.status = 'running' AND c.owner = $2 AND (c.table_no, c.chunk_no) NOT IN (
               SELECT * FROM unnest($4::int[], $5::int[])))
             OR (c.status = 'running'
             AND c.owner IS DISTINCT FROM $2 AND (
             c.owner IS NULL OR c.lease_until < now() OR NOT EXISTS (
               SELECT 1 FROM pg_locks l
               WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2
                 AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
                 AND l.classid = {key}::oid AND l.objid = c.owner::oid))))
           ORDER BY c.priority, c.table_no, c.chunk_no
           LIMIT 1 FOR UPDATE SKIP LOCKED)
         UPDATE {chunks} c SET status = 'running', owner = $2, claims = claims + 1,
           lease_until = now() + make_interval(secs => $3::int), updated_at = now()
         FROM next WHERE c.job = $1 AND c.table_no = next.table_no AND c.chunk_no = next.chunk_no
         RETURNING {cols}, c.claims, next.owner_before",
        chunks = st.table("chunks"),
        key = st.lock_key(),
        cols = CHUNK_COLUMNS
            .split(", ")
            .map(|c| format!("c.{c}"))
            .collect::<Vec<_>>()
            .join(", "),
    );
    let lease = lease_secs as i32;
    let (tables, chunks): (Vec<i32>, Vec<i32>) = busy.iter().copied().unzip();
    let row = client
        .query_opt(&sql, &[&st.job, &worker, &lease, &tables, &chunks])
        .await
        .map_err(query_err("claiming a chunk"))?;
    row.map(|r| {
        Ok(Claim {
            chunk: chunk_from_row(&r)?,
            token: r.get(9),
            owner_before: r.get(10),
        })
    })
    .transpose()
}

/// Chunks of the job that are pending or running, anywhere: a worker with nothing to claim
/// waits while this is above zero, since a running chunk may yet be taken over.
pub async fn open_chunks(client: &Client, st: &StateRef) -> Result<i64> {
    Ok(counts(client, st).await?.2)
}

/// Where a chunk goes on after a failed attempt: `Some(last committed key)` while the claim
/// is still current, `None` when the chunk has been taken over.
pub async fn resume_point(
    client: &Client,
    st: &StateRef,
    claim: &Claim,
    worker: i32,
) -> Result<Option<Option<Vec<String>>>> {
    let chunk = &claim.chunk;
    let row = client
        .query_opt(
            &format!(
                "SELECT last_key FROM {} WHERE job = $1 AND table_no = $2 AND chunk_no = $3 \
                 AND owner = $4 AND claims = $5 AND status = 'running'",
                st.table("chunks")
            ),
            &[
                &st.job,
                &(chunk.table as i32),
                &(chunk.ordinal as i32),
                &worker,
                &claim.token,
            ],
        )
        .await
        .map_err(query_err("reading a chunk's checkpoint"))?;
    Ok(row.map(|r| r.get(0)))
}

/// How a checkpoint gets the chunk's new offset.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyParams<'a> {
    /// The offset does not move (a table without a key commits once per chunk).
    None,
    /// One parameter per key column, bound as raw binary values of these PostgreSQL types and
    /// turned into text by the server (so every key type renders as PostgreSQL would).
    Raw(&'a [String]),
    /// One `text[]` parameter already holding the key as text (MySQL sources).
    Text,
}

/// SQL that records progress of a chunk owned by `worker` and renews its lease: `$1` job,
/// `$2` table, `$3` chunk, `$4` rows, `$5` bytes, `$6` done, `$7` the claim's token, `$8`
/// rows rejected; then the key parameters from `$9` (see [`KeyParams`]). It updates no row
/// once the chunk has been taken over.
pub fn checkpoint_sql(st: &StateRef, key: KeyParams<'_>, worker: i32, lease_secs: u32) -> String {
    let key = match key {
        KeyParams::None => "last_key".to_string(),
        KeyParams::Text => "$9::text[]".to_string(),
        KeyParams::Raw(types) => {
            let parts: Vec<String> = types
                .iter()
                .enumerate()
                .map(|(i, t)| format!("(${}::{t})::text", i + 9))
                .collect();
            format!("ARRAY[{}]::text[]", parts.join(", "))
        }
    };
    format!(
        "UPDATE {} SET last_key = {key}, rows_done = rows_done + $4, bytes_done = bytes_done + $5, \
         rows_rejected = rows_rejected + $8, \
         commits = commits + 1, status = CASE WHEN $6 THEN 'done' ELSE 'running' END, updated_at = now(), \
         lease_until = now() + interval '{lease_secs} seconds' \
         WHERE job = $1 AND table_no = $2 AND chunk_no = $3 AND owner = {worker} AND claims = $7",
        st.table("chunks")
    )
}

/// Counts a failed attempt of a chunk and keeps its error for `howdah status`; `failed` marks
/// the chunk failed (a rerun retries it), otherwise it is being retried. Only while the claim
/// is current.
pub async fn record_attempt(
    client: &Client,
    st: &StateRef,
    claim: &Claim,
    worker: i32,
    error: &str,
    failed: bool,
) -> Result<()> {
    let chunk = &claim.chunk;
    client
        .execute(
            &format!(
                "UPDATE {} SET attempts = attempts + 1, last_error = $4, updated_at = now(), \
                 status = CASE WHEN $5 THEN 'failed' ELSE status END \
                 WHERE job = $1 AND table_no = $2 AND chunk_no = $3 AND owner = $6 AND claims = $7",
                st.table("chunks")
            ),
            &[
                &st.job,
                &(chunk.table as i32),
                &(chunk.ordinal as i32),
                &error,
                &failed,
                &worker,
                &claim.token,
            ],
        )
        .await
        .map_err(query_err("recording a failed attempt"))?;
    Ok(())
}

/// One table's chunks, as the state says (all workers together).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct TableProgress {
    /// Chunks planned.
    pub chunks: i64,
    /// Chunks fully copied.
    pub done: i64,
    /// Chunks failed in this round (not retried until a worker starts).
    pub failed: i64,
    /// Chunks being copied.
    pub running: i64,
    /// Rows committed.
    pub rows: i64,
    /// Tuple bytes committed.
    pub bytes: i64,
    /// Source rows rejected.
    pub rejected: i64,
}

impl TableProgress {
    /// Every chunk is copied.
    pub fn complete(&self) -> bool {
        self.done == self.chunks
    }

    /// No chunk is pending or running, and some failed.
    pub fn stuck(&self) -> bool {
        self.failed > 0 && self.done + self.failed == self.chunks
    }
}

/// The per-table aggregates [`progress_from_row`] reads, after the table number.
const PROGRESS_COLUMNS: &str = "count(*), count(*) FILTER (WHERE status = 'done'), \
     count(*) FILTER (WHERE status = 'failed'), sum(rows_done)::int8, sum(bytes_done)::int8, \
     count(*) FILTER (WHERE status = 'running'), sum(rows_rejected)::int8";

/// A table's progress from a row of `table_no, PROGRESS_COLUMNS`.
fn progress_from_row(r: &Row) -> TableProgress {
    TableProgress {
        chunks: r.get(1),
        done: r.get(2),
        failed: r.get(3),
        rows: r.get::<_, Option<i64>>(4).unwrap_or(0),
        bytes: r.get::<_, Option<i64>>(5).unwrap_or(0),
        running: r.get(6),
        rejected: r.get::<_, Option<i64>>(7).unwrap_or(0),
    }
}

/// Progress of every table of the job with chunks, indexed by table number. It reads every
/// chunk of the job: for a periodic look, not once per chunk (see [`one_table_progress`]).
pub async fn table_progress(
    client: &Client,
    st: &StateRef,
    tables: usize,
) -> Result<Vec<TableProgress>> {
    let rows = client
        .query(
            &format!(
                "SELECT table_no, {PROGRESS_COLUMNS} FROM {} WHERE job = $1 GROUP BY table_no",
                st.table("chunks")
            ),
            &[&st.job],
        )
        .await
        .map_err(query_err("reading the job's progress"))?;
    let mut out = vec![TableProgress::default(); tables];
    for r in rows {
        let t = r.get::<_, i32>(0) as usize;
        if let Some(p) = out.get_mut(t) {
            *p = progress_from_row(&r);
        }
    }
    Ok(out)
}

/// Progress of table `table_no` alone: its chunks only, through the chunks' primary key, so
/// the cost does not grow with the job's number of tables.
pub async fn one_table_progress(
    client: &Client,
    st: &StateRef,
    table_no: i32,
) -> Result<TableProgress> {
    let row = client
        .query_one(
            &format!(
                "SELECT $2::int, {PROGRESS_COLUMNS} FROM {} WHERE job = $1 AND table_no = $2",
                st.table("chunks")
            ),
            &[&st.job, &table_no],
        )
        .await
        .map_err(query_err("reading a table's progress"))?;
    Ok(progress_from_row(&row))
}

/// The failed chunks of the job, as `table range: error` lines.
pub async fn failed_chunks(client: &Client, st: &StateRef) -> Result<Vec<String>> {
    let rows = client
        .query(
            &format!(
                "SELECT {CHUNK_COLUMNS}, table_name, coalesce(last_error, 'no error recorded') \
                 FROM {} WHERE job = $1 AND status = 'failed' ORDER BY table_no, chunk_no",
                st.table("chunks")
            ),
            &[&st.job],
        )
        .await
        .map_err(query_err("listing failed chunks"))?;
    rows.iter()
        .map(|r| {
            let chunk = chunk_from_row(r)?;
            let table: String = r.get(9);
            let error: String = r.get(10);
            Ok(format!("{table} {}: {error}", chunk.range))
        })
        .collect()
}

/// Hands the chunks `worker` is running back to the pool (after Ctrl-C): another worker, or
/// the next run, claims them at once and goes on from their last checkpoint.
pub async fn release_chunks(client: &Client, st: &StateRef, worker: i32) -> Result<()> {
    client
        .execute(
            &format!(
                "UPDATE {} SET status = 'pending', owner = NULL, lease_until = NULL \
                 WHERE job = $1 AND owner = $2 AND status = 'running'",
                st.table("chunks")
            ),
            &[&st.job, &worker],
        )
        .await
        .map_err(query_err("releasing this worker's chunks"))?;
    Ok(())
}

/// Makes the failed chunks of the job claimable again (a new worker retries them).
pub async fn retry_failed(client: &Client, st: &StateRef) -> Result<u64> {
    client
        .execute(
            &format!(
                "UPDATE {} SET status = 'pending', owner = NULL WHERE job = $1 AND status = 'failed'",
                st.table("chunks")
            ),
            &[&st.job],
        )
        .await
        .map_err(query_err("retrying failed chunks"))
}

/// One chunk of a table as [`lock_table_chunks`] found it.
#[derive(Debug, Clone)]
pub struct ChunkSnapshot {
    /// Position of the chunk within its table.
    pub chunk_no: i32,
    /// `pending`, `running`, `done` or `failed`.
    pub status: String,
    /// The worker holding it, if any.
    pub owner: Option<i32>,
    /// Its claim count (the current claim's fencing token).
    pub claims: i32,
    /// The snapshot its rows were (or are being) read in: as recorded, else the job's
    /// snapshot (a chunk of layout 2), else empty (unknown).
    pub snapshot: String,
}

/// Locks every chunk row of table `table_no`, in chunk order (so two lanes cannot deadlock),
/// in the caller's transaction, and returns them: until it ends no chunk of the table can be
/// claimed, checkpointed or committed.
pub async fn lock_table_chunks(
    client: &Client,
    st: &StateRef,
    table_no: i32,
) -> Result<Vec<ChunkSnapshot>> {
    let rows = client
        .query(
            &format!(
                "SELECT c.chunk_no, c.status, c.owner, c.claims, coalesce(c.snapshot, j.snapshot, '') \
                 FROM {} c JOIN {} j ON j.name = c.job \
                 WHERE c.job = $1 AND c.table_no = $2 ORDER BY c.chunk_no FOR UPDATE OF c",
                st.table("chunks"),
                st.table("jobs")
            ),
            &[&st.job, &table_no],
        )
        .await
        .map_err(query_err("locking the chunks of a table"))?;
    Ok(rows
        .iter()
        .map(|r| ChunkSnapshot {
            chunk_no: r.get(0),
            status: r.get(1),
            owner: r.get(2),
            claims: r.get(3),
            snapshot: r.get(4),
        })
        .collect())
}

/// Records the snapshot `claim`'s chunk is read in (in the caller's transaction); `false`
/// when the claim is no longer current.
pub async fn set_chunk_snapshot(
    client: &Client,
    st: &StateRef,
    claim: &Claim,
    worker: i32,
    snapshot: &str,
) -> Result<bool> {
    let chunk = &claim.chunk;
    let n = client
        .execute(
            &format!(
                "UPDATE {} SET snapshot = $6 \
                 WHERE job = $1 AND table_no = $2 AND chunk_no = $3 AND owner = $4 AND claims = $5",
                st.table("chunks")
            ),
            &[
                &st.job,
                &(chunk.table as i32),
                &(chunk.ordinal as i32),
                &worker,
                &claim.token,
                &snapshot,
            ],
        )
        .await
        .map_err(query_err("recording a chunk's snapshot"))?;
    Ok(n == 1)
}

/// Puts every other done or running chunk of `claim`'s table back to pending with nothing
/// copied (in the caller's transaction, which deletes their rows too), and ends their claims:
/// a lane still copying one finds its claim gone at its checkpoint and rolls back.
pub async fn reset_table_chunks(client: &Client, st: &StateRef, claim: &Claim) -> Result<u64> {
    let chunk = &claim.chunk;
    client
        .execute(
            &format!(
                "UPDATE {} SET status = 'pending', owner = NULL, lease_until = NULL, \
                 claims = claims + 1, rows_done = 0, bytes_done = 0, rows_rejected = 0, \
                 last_key = NULL, snapshot = NULL, updated_at = now() \
                 WHERE job = $1 AND table_no = $2 AND chunk_no <> $3 AND status IN ('done', 'running')",
                st.table("chunks")
            ),
            &[&st.job, &(chunk.table as i32), &(chunk.ordinal as i32)],
        )
        .await
        .map_err(query_err("resetting the chunks of a table"))
}

/// A value already in PostgreSQL's binary format for its type, bound as a parameter as is.
#[derive(Debug)]
pub struct RawBinary<'a>(pub Option<&'a [u8]>);

impl ToSql for RawBinary<'_> {
    fn to_sql(
        &self,
        _ty: &Type,
        out: &mut bytes::BytesMut,
    ) -> std::result::Result<IsNull, Box<dyn std::error::Error + Sync + Send>> {
        match self.0 {
            Some(b) => {
                out.extend_from_slice(b);
                Ok(IsNull::No)
            }
            None => Ok(IsNull::Yes),
        }
    }

    fn accepts(_ty: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

/// Per-table checkpoint statements and key positions (see [`crate::sink::postgres::Checkpoint`]).
#[derive(Debug, Clone, Default)]
pub struct TableCheckpoint {
    /// Positions of the key columns among the copied columns; empty for keyless tables.
    pub key_positions: Vec<usize>,
    /// Progress statement that also records the last key.
    pub with_key: String,
    /// Progress statement that leaves the key as it is.
    pub without_key: String,
    /// Batches carry their last key as text (MySQL sources).
    pub text_keys: bool,
    /// Statement that stores rejected rows.
    pub rejects_sql: String,
}

impl TableCheckpoint {
    /// How `table`'s writer records progress: key positions among the copied columns and the
    /// statements (keyless tables commit once per chunk); `text_keys` when the reader gives
    /// each batch's last key as text (MySQL).
    pub fn for_table(
        table: &Table,
        st: &StateRef,
        worker: i32,
        lease_secs: u32,
        text_keys: bool,
    ) -> TableCheckpoint {
        let rejects_sql = super::rejects::insert_sql(st);
        if text_keys {
            // MySQL readers send each batch's last key as text.
            return TableCheckpoint {
                with_key: checkpoint_sql(st, KeyParams::Text, worker, lease_secs),
                without_key: checkpoint_sql(st, KeyParams::None, worker, lease_secs),
                key_positions: Vec::new(),
                text_keys: table.chunk_key.is_some(),
                rejects_sql,
            };
        }
        let cols: Vec<&str> = table.copy_columns().map(|c| c.name.as_str()).collect();
        let key: Vec<(usize, String)> = table
            .chunk_key
            .iter()
            .flatten()
            .filter_map(|k| {
                cols.iter()
                    .position(|c| *c == k.name)
                    .map(|p| (p, k.type_sql.clone()))
            })
            .collect();
        // A key column that is not copied (generated) cannot be an offset: commit per chunk.
        let complete = table
            .chunk_key
            .as_ref()
            .is_some_and(|k| k.len() == key.len());
        let (positions, types): (Vec<usize>, Vec<String>) = if complete {
            key.into_iter().unzip()
        } else {
            (Vec::new(), Vec::new())
        };
        TableCheckpoint {
            with_key: checkpoint_sql(st, KeyParams::Raw(&types), worker, lease_secs),
            without_key: checkpoint_sql(st, KeyParams::None, worker, lease_secs),
            key_positions: positions,
            text_keys: false,
            rejects_sql,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn checkpoint_sql_casts_each_key_column_and_checks_the_owner() {
        let st = StateRef {
            schema: "howdah".into(),
            job: "j".into(),
        };
        let types = ["integer".to_string(), "text".to_string()];
        let sql = checkpoint_sql(&st, KeyParams::Raw(&types), 7, 60);
        assert!(
            sql.contains("ARRAY[($9::integer)::text, ($10::text)::text]::text[]"),
            "{sql}"
        );
        assert!(sql.ends_with("AND owner = 7 AND claims = $7"), "{sql}");
        assert!(sql.contains("interval '60 seconds'"), "{sql}");
    }
}
