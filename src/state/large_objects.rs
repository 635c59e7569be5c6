//! The large objects of a job: the source's objects cut into chunks of consecutive OIDs, and
//! which chunks are done.
//!
//! Invariant: a chunk is marked done in the same target transaction that created its objects
//! (see `sink::large_objects`), so after a crash a chunk's objects are either all there and the
//! chunk done, or none there and the chunk open. A worker claims an open chunk by locking its
//! row (`FOR UPDATE SKIP LOCKED`) in that same transaction: the lock ends with the transaction,
//! whether it commits, rolls back or dies with its connection, so no lease is needed.
//! The table is created when missing (as `invalid_keys`), so it needs no layout migration.

use tokio_postgres::Client;

use super::{query_err, StateRef};
use crate::error::Result;

/// A chunk of consecutive large objects (by OID).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LoChunk {
    /// Chunk number within the job.
    pub chunk_no: i32,
    /// First OID of the chunk (inclusive).
    pub first_oid: u32,
    /// Last OID of the chunk (inclusive).
    pub last_oid: u32,
    /// Objects in the chunk when the job was planned.
    pub objects: i32,
}

/// SQL that creates the table (idempotent).
pub fn create_sql(st: &StateRef) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {lo} (
           job text NOT NULL REFERENCES {jobs} (name) ON DELETE CASCADE,
           chunk_no int NOT NULL,
           first_oid oid NOT NULL,
           last_oid oid NOT NULL,
           objects int NOT NULL,
           done bool NOT NULL DEFAULT false,
           objects_done int NOT NULL DEFAULT 0,
           bytes_done bigint NOT NULL DEFAULT 0,
           done_at timestamptz,
           PRIMARY KEY (job, chunk_no));",
        lo = st.table("large_objects"),
        jobs = st.table("jobs"),
    )
}

/// SQL that records a new job's large-object chunks (run in the job's creating transaction).
pub fn insert_sql(st: &StateRef, chunks: &[LoChunk]) -> String {
    if chunks.is_empty() {
        return String::new();
    }
    let values: Vec<String> = chunks
        .iter()
        .map(|c| {
            format!(
                "({}, {}, {}, {}, {})",
                crate::catalog::quote_literal(&st.job),
                c.chunk_no,
                c.first_oid,
                c.last_oid,
                c.objects
            )
        })
        .collect();
    format!(
        "INSERT INTO {} (job, chunk_no, first_oid, last_oid, objects) VALUES {};",
        st.table("large_objects"),
        values.join(", ")
    )
}

/// Cuts a sorted list of OIDs into chunks of at most `per_chunk` objects.
pub fn plan(oids: &[u32], per_chunk: usize) -> Vec<LoChunk> {
    oids.chunks(per_chunk.max(1))
        .enumerate()
        .filter_map(|(i, c)| {
            Some(LoChunk {
                chunk_no: i as i32,
                first_oid: *c.first()?,
                last_oid: *c.last()?,
                objects: c.len() as i32,
            })
        })
        .collect()
}

/// Claims the first open chunk that no other transaction holds, inside the caller's open
/// transaction (the claim lasts as long as it); `None` when none is left.
pub async fn claim(client: &Client, st: &StateRef) -> Result<Option<LoChunk>> {
    let sql = format!(
        "SELECT chunk_no, first_oid, last_oid, objects FROM {} \
         WHERE job = $1 AND NOT done ORDER BY chunk_no LIMIT 1 FOR UPDATE SKIP LOCKED",
        st.table("large_objects")
    );
    let row = client
        .query_opt(&sql, &[&st.job])
        .await
        .map_err(query_err("claiming a chunk of large objects"))?;
    Ok(row.map(|r| LoChunk {
        chunk_no: r.get(0),
        first_oid: r.get(1),
        last_oid: r.get(2),
        objects: r.get(3),
    }))
}

/// Marks a chunk done with what it copied, inside the caller's transaction.
pub async fn mark_done(
    client: &Client,
    st: &StateRef,
    chunk: &LoChunk,
    objects: i32,
    bytes: i64,
) -> Result<()> {
    let sql = format!(
        "UPDATE {} SET done = true, objects_done = $3, bytes_done = $4, done_at = now() \
         WHERE job = $1 AND chunk_no = $2",
        st.table("large_objects")
    );
    client
        .execute(&sql, &[&st.job, &chunk.chunk_no, &objects, &bytes])
        .await
        .map_err(query_err("recording a chunk of large objects as done"))?;
    Ok(())
}

/// The job's large-object chunks: (open, all).
pub async fn counts(client: &Client, st: &StateRef) -> Result<(i64, i64)> {
    let sql = format!(
        "SELECT count(*) FILTER (WHERE NOT done), count(*) FROM {} WHERE job = $1",
        st.table("large_objects")
    );
    let row = client
        .query_one(&sql, &[&st.job])
        .await
        .map_err(query_err("counting the job's large objects"))?;
    Ok((row.get(0), row.get(1)))
}

/// What the job's done chunks copied: (chunks, objects, bytes).
pub async fn done_totals(client: &Client, st: &StateRef) -> Result<(i64, i64, i64)> {
    let sql = format!(
        "SELECT count(*), coalesce(sum(objects_done), 0)::int8, coalesce(sum(bytes_done), 0)::int8 \
         FROM {} WHERE job = $1 AND done",
        st.table("large_objects")
    );
    let row = client
        .query_one(&sql, &[&st.job])
        .await
        .map_err(query_err("totalling the job's large objects"))?;
    Ok((row.get(0), row.get(1), row.get(2)))
}

/// A job's large objects as `status` shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct LoStatus {
    /// Chunks of objects.
    pub chunks: i64,
    /// Chunks done.
    pub chunks_done: i64,
    /// Objects when the job was planned.
    pub objects: i64,
    /// Objects copied.
    pub objects_done: i64,
    /// Bytes copied.
    pub bytes_done: i64,
}

/// The job's large objects (`None`: it has none, or the state predates them).
pub async fn status(client: &Client, st: &StateRef) -> Result<Option<LoStatus>> {
    let exists: bool = client
        .query_one(
            "SELECT to_regclass($1) IS NOT NULL",
            &[&st.table("large_objects")],
        )
        .await
        .map_err(query_err("looking for the large-object state"))?
        .get(0);
    if !exists {
        return Ok(None);
    }
    let sql = format!(
        "SELECT count(*), count(*) FILTER (WHERE done), coalesce(sum(objects), 0)::int8, \
           coalesce(sum(objects_done), 0)::int8, coalesce(sum(bytes_done), 0)::int8 \
         FROM {} WHERE job = $1",
        st.table("large_objects")
    );
    let r = client
        .query_one(&sql, &[&st.job])
        .await
        .map_err(query_err("reading the job's large objects"))?;
    let s = LoStatus {
        chunks: r.get(0),
        chunks_done: r.get(1),
        objects: r.get(2),
        objects_done: r.get(3),
        bytes_done: r.get(4),
    };
    Ok((s.chunks > 0).then_some(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plan_cuts_consecutive_oids() {
        let chunks = plan(&[10, 11, 20, 30, 31], 2);
        assert_eq!(chunks.len(), 3);
        assert_eq!((chunks[0].first_oid, chunks[0].last_oid), (10, 11));
        assert_eq!(
            (chunks[2].first_oid, chunks[2].last_oid, chunks[2].objects),
            (31, 31, 1)
        );
        assert!(plan(&[], 5).is_empty());
    }
}
