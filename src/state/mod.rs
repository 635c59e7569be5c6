//! Checkpoint state in the target database (schema `sluice`): jobs, chunks and finished steps.
//!
//! Everything that makes a copy resumable commits in the same target transaction as the work
//! it describes: a chunk's rows and its new key offset, a DDL step and its "done" mark, the
//! whole pre-data schema and the job's chunk plan. A crash therefore leaves state that matches
//! the target exactly, and a resume neither loses nor repeats a row or a step.

use tokio_postgres::types::{to_sql_checked, IsNull, ToSql, Type};
use tokio_postgres::Client;

use crate::catalog::quote_ident;
use crate::error::{db_reason, Error, Result};
use crate::plan::{Chunk, ChunkRange};

/// Version of the state tables' layout; a later release migrates older layouts forward.
pub const STATE_VERSION: i32 = 1;

/// Where the state lives and which job it is about.
#[derive(Debug, Clone)]
pub struct StateRef {
    /// Schema holding the state tables (default `sluice`).
    pub schema: String,
    /// Job name (default `default`).
    pub job: String,
}

impl StateRef {
    /// `"schema".table` for a state table.
    pub fn table(&self, name: &str) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(name))
    }
}

fn query_err(what: &str) -> impl Fn(tokio_postgres::Error) -> Error + '_ {
    move |e| Error::Query {
        what: what.to_string(),
        reason: db_reason(&e),
    }
}

/// SQL that creates the state tables when missing (idempotent).
pub fn create_sql(st: &StateRef) -> String {
    format!(
        "CREATE SCHEMA IF NOT EXISTS {schema};
         CREATE TABLE IF NOT EXISTS {meta} (version int NOT NULL);
         INSERT INTO {meta} SELECT {STATE_VERSION} WHERE NOT EXISTS (SELECT 1 FROM {meta});
         CREATE TABLE IF NOT EXISTS {jobs} (
           name text PRIMARY KEY,
           config text NOT NULL,
           phase text NOT NULL,
           created_at timestamptz NOT NULL DEFAULT now(),
           updated_at timestamptz NOT NULL DEFAULT now(),
           last_error text);
         CREATE TABLE IF NOT EXISTS {chunks} (
           job text NOT NULL REFERENCES {jobs} (name) ON DELETE CASCADE,
           table_no int NOT NULL,
           chunk_no int NOT NULL,
           table_name text NOT NULL,
           range_kind text NOT NULL,
           lower_key text[],
           upper_key text[],
           start_block bigint,
           end_block bigint,
           last_key text[],
           rows_done bigint NOT NULL DEFAULT 0,
           bytes_done bigint NOT NULL DEFAULT 0,
           estimated_rows bigint NOT NULL DEFAULT 0,
           commits int NOT NULL DEFAULT 0,
           attempts int NOT NULL DEFAULT 0,
           status text NOT NULL DEFAULT 'pending',
           updated_at timestamptz NOT NULL DEFAULT now(),
           last_error text,
           PRIMARY KEY (job, table_no, chunk_no));
         CREATE TABLE IF NOT EXISTS {steps} (
           job text NOT NULL REFERENCES {jobs} (name) ON DELETE CASCADE,
           step text NOT NULL,
           done_at timestamptz NOT NULL DEFAULT now(),
           PRIMARY KEY (job, step));",
        schema = quote_ident(&st.schema),
        meta = st.table("meta"),
        jobs = st.table("jobs"),
        chunks = st.table("chunks"),
        steps = st.table("steps"),
    )
}

/// Creates the state tables if needed and checks that their layout is one this build knows.
pub async fn ensure(client: &Client, st: &StateRef) -> Result<()> {
    client
        .batch_execute(&create_sql(st))
        .await
        .map_err(query_err("creating the sluice state tables on the target"))?;
    let row = client
        .query_one(
            &format!("SELECT max(version) FROM {}", st.table("meta")),
            &[],
        )
        .await
        .map_err(query_err("reading the state version"))?;
    let version: Option<i32> = row.get(0);
    if version != Some(STATE_VERSION) {
        return Err(Error::Config(format!(
            "the state schema {} has layout version {:?}; this build of sluice knows version {STATE_VERSION}",
            st.schema, version
        )));
    }
    Ok(())
}

/// A job as stored: its configuration summary and phase.
#[derive(Debug, Clone)]
pub struct JobRow {
    /// `key = value` lines describing everything a resume must agree with.
    pub config: String,
    /// `schema` (nothing created yet), `data`, `done`.
    pub phase: String,
}

/// Reads a job, if it exists.
pub async fn load_job(client: &Client, st: &StateRef) -> Result<Option<JobRow>> {
    let row = client
        .query_opt(
            &format!(
                "SELECT config, phase FROM {} WHERE name = $1",
                st.table("jobs")
            ),
            &[&st.job],
        )
        .await
        .map_err(query_err("reading the job from the state tables"))?;
    Ok(row.map(|r| JobRow {
        config: r.get(0),
        phase: r.get(1),
    }))
}

/// Deletes a job and all of its chunks and steps (`--restart`).
pub async fn delete_job(client: &Client, st: &StateRef) -> Result<()> {
    client
        .execute(
            &format!("DELETE FROM {} WHERE name = $1", st.table("jobs")),
            &[&st.job],
        )
        .await
        .map_err(query_err("deleting the job from the state tables"))?;
    Ok(())
}

/// The configuration lines that differ between a stored job and this run, as `key: was -> now`.
pub fn config_changes(stored: &str, now: &str) -> Vec<String> {
    let parse = |s: &str| -> std::collections::BTreeMap<String, String> {
        s.lines()
            .filter_map(|l| l.split_once(" = "))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let (a, b) = (parse(stored), parse(now));
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| {
            let show = |v: Option<&String>| v.cloned().unwrap_or_else(|| "(absent)".into());
            format!("{k}: {} -> {}", show(a.get(k)), show(b.get(k)))
        })
        .collect()
}

/// SQL (to run inside the pre-data transaction) that records a new job and its chunk plan.
pub fn insert_job_sql(
    st: &StateRef,
    config: &str,
    chunks: &[Chunk],
    table_names: &[String],
) -> String {
    let lit = |s: &str| crate::catalog::quote_literal(s);
    let arr = |v: &Option<Vec<String>>| match v {
        None => "NULL".to_string(),
        Some(v) => format!(
            "ARRAY[{}]::text[]",
            v.iter().map(|s| lit(s)).collect::<Vec<_>>().join(", ")
        ),
    };
    let mut sql = format!(
        "INSERT INTO {} (name, config, phase) VALUES ({}, {}, 'data');\n",
        st.table("jobs"),
        lit(&st.job),
        lit(config)
    );
    for rows in chunks.chunks(500) {
        let values: Vec<String> = rows
            .iter()
            .map(|c| {
                let (kind, lower, upper, start, end) = match &c.range {
                    ChunkRange::Whole => (
                        "whole",
                        "NULL".into(),
                        "NULL".into(),
                        "NULL".into(),
                        "NULL".into(),
                    ),
                    ChunkRange::Keyset { lower, upper } => (
                        "keyset",
                        arr(lower),
                        arr(upper),
                        "NULL".into(),
                        "NULL".into(),
                    ),
                    ChunkRange::Ctid { start, end } => (
                        "ctid",
                        "NULL".into(),
                        "NULL".into(),
                        start.to_string(),
                        end.map(|e| e.to_string()).unwrap_or_else(|| "NULL".into()),
                    ),
                };
                format!(
                    "({}, {}, {}, {}, '{kind}', {lower}, {upper}, {start}, {end}, {})",
                    lit(&st.job),
                    c.table,
                    c.ordinal,
                    lit(&table_names[c.table]),
                    c.estimated_rows.max(0)
                )
            })
            .collect();
        sql.push_str(&format!(
            "INSERT INTO {} (job, table_no, chunk_no, table_name, range_kind, lower_key, upper_key, start_block, end_block, estimated_rows) VALUES {};\n",
            st.table("chunks"),
            values.join(", ")
        ));
    }
    sql
}

/// A chunk of the stored plan with its progress.
#[derive(Debug, Clone)]
pub struct StoredChunk {
    /// The chunk as planned.
    pub chunk: Chunk,
    /// Key of the last committed row, when part of the chunk is already in the target.
    pub last_key: Option<Vec<String>>,
    /// Whether the whole chunk is in.
    pub done: bool,
    /// Rows already committed.
    pub rows_done: i64,
    /// Bytes already committed.
    pub bytes_done: i64,
}

/// Reads the stored plan of the job.
pub async fn load_chunks(client: &Client, st: &StateRef) -> Result<Vec<StoredChunk>> {
    let rows = client
        .query(
            &format!(
                "SELECT table_no, chunk_no, range_kind, lower_key, upper_key, start_block, end_block, last_key, \
                 status = 'done', rows_done, bytes_done, estimated_rows \
                 FROM {} WHERE job = $1 ORDER BY table_no, chunk_no",
                st.table("chunks")
            ),
            &[&st.job],
        )
        .await
        .map_err(query_err("reading the job's chunks from the state tables"))?;
    let mut out = Vec::with_capacity(rows.len());
    for r in rows {
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
        let table: i32 = r.get(0);
        let ordinal: i32 = r.get(1);
        out.push(StoredChunk {
            chunk: Chunk {
                table: table as usize,
                ordinal: ordinal as usize,
                range,
                estimated_rows: r.get(11),
                estimated_bytes: 0,
                resume_after: r.get(7),
            },
            last_key: r.get(7),
            done: r.get(8),
            rows_done: r.get(9),
            bytes_done: r.get(10),
        });
    }
    Ok(out)
}

/// SQL that records progress of a chunk; `$1` job, `$2` table, `$3` chunk, `$4` rows, `$5`
/// bytes, `$6` done; then one parameter per key column, bound as raw binary values of the key
/// type and turned into text by the server (so every key type renders exactly as PostgreSQL
/// would).
pub fn checkpoint_sql(st: &StateRef, key_types: &[String]) -> String {
    let key = if key_types.is_empty() {
        "last_key".to_string()
    } else {
        let parts: Vec<String> = key_types
            .iter()
            .enumerate()
            .map(|(i, t)| format!("(${}::{t})::text", i + 7))
            .collect();
        format!("ARRAY[{}]::text[]", parts.join(", "))
    };
    format!(
        "UPDATE {} SET last_key = {key}, rows_done = rows_done + $4, bytes_done = bytes_done + $5, \
         commits = commits + 1, status = CASE WHEN $6 THEN 'done' ELSE 'running' END, updated_at = now() \
         WHERE job = $1 AND table_no = $2 AND chunk_no = $3",
        st.table("chunks")
    )
}

/// SQL that marks a step done; run in the same transaction as the step.
pub fn step_done_sql(st: &StateRef, step: &str) -> String {
    format!(
        "INSERT INTO {} (job, step) VALUES ({}, {}) ON CONFLICT DO NOTHING",
        st.table("steps"),
        crate::catalog::quote_literal(&st.job),
        crate::catalog::quote_literal(step)
    )
}

/// Steps of the job already done.
pub async fn done_steps(
    client: &Client,
    st: &StateRef,
) -> Result<std::collections::HashSet<String>> {
    let rows = client
        .query(
            &format!("SELECT step FROM {} WHERE job = $1", st.table("steps")),
            &[&st.job],
        )
        .await
        .map_err(query_err("reading finished steps from the state tables"))?;
    Ok(rows.into_iter().map(|r| r.get(0)).collect())
}

/// The committed offset of one chunk (after a failed attempt: where to go on from).
pub async fn chunk_last_key(
    client: &Client,
    st: &StateRef,
    table_no: i32,
    chunk_no: i32,
) -> Result<Option<Vec<String>>> {
    let row = client
        .query_one(
            &format!(
                "SELECT last_key FROM {} WHERE job = $1 AND table_no = $2 AND chunk_no = $3",
                st.table("chunks")
            ),
            &[&st.job, &table_no, &chunk_no],
        )
        .await
        .map_err(query_err("reading a chunk's checkpoint"))?;
    Ok(row.get(0))
}

/// Counts a failed attempt of a chunk and keeps its error for `sluice status`; `failed` marks
/// the chunk failed (a resume retries it), otherwise it is being retried.
pub async fn record_attempt(
    client: &Client,
    st: &StateRef,
    table_no: i32,
    chunk_no: i32,
    error: &str,
    failed: bool,
) -> Result<()> {
    client
        .execute(
            &format!(
                "UPDATE {} SET attempts = attempts + 1, last_error = $4, updated_at = now(), \
                 status = CASE WHEN $5 THEN 'failed' ELSE status END \
                 WHERE job = $1 AND table_no = $2 AND chunk_no = $3",
                st.table("chunks")
            ),
            &[&st.job, &table_no, &chunk_no, &error, &failed],
        )
        .await
        .map_err(query_err("recording a failed attempt"))?;
    Ok(())
}

/// Whether a step has been recorded done.
pub async fn step_is_done(client: &Client, st: &StateRef, step: &str) -> Result<bool> {
    let row = client
        .query_one(
            &format!(
                "SELECT EXISTS (SELECT 1 FROM {} WHERE job = $1 AND step = $2)",
                st.table("steps")
            ),
            &[&st.job, &step],
        )
        .await
        .map_err(query_err("reading a step's state"))?;
    Ok(row.get(0))
}

/// Waits (up to 60 s) until no other session runs `sql`: after a connection is cut, the
/// server finishes or aborts its statement on its own time, and a retry must not overlap it.
pub async fn wait_for_statement_to_end(client: &Client, sql: &str) -> Result<()> {
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_secs(60) {
        let row = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND state <> 'idle' \
                 AND left(query, 200) = left($1, 200)",
                &[&sql],
            )
            .await
            .map_err(query_err("waiting for a cut session's statement to end"))?;
        if row.get::<_, i64>(0) == 0 {
            return Ok(());
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    Err(Error::Query {
        what: "retrying a step".into(),
        reason: "the statement of a cut connection is still running on the target after 60 s"
            .into(),
    })
}

/// Sets the job's phase (and clears or records its last error).
pub async fn set_phase(
    client: &Client,
    st: &StateRef,
    phase: &str,
    error: Option<&str>,
) -> Result<()> {
    client
        .execute(
            &format!(
                "UPDATE {} SET phase = $2, last_error = $3, updated_at = now() WHERE name = $1",
                st.table("jobs")
            ),
            &[&st.job, &phase, &error],
        )
        .await
        .map_err(query_err("updating the job's phase"))?;
    Ok(())
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_config_changes() {
        let a = "source = db1\ntables = a,b\nkey public.a = id";
        let b = "source = db1\ntables = a,c\nkey public.a = id";
        assert_eq!(config_changes(a, b), vec!["tables: a,b -> a,c".to_string()]);
        assert!(config_changes(a, a).is_empty());
    }

    #[test]
    fn checkpoint_sql_casts_each_key_column() {
        let st = StateRef {
            schema: "sluice".into(),
            job: "j".into(),
        };
        let sql = checkpoint_sql(&st, &["integer".into(), "text".into()]);
        assert!(
            sql.contains("ARRAY[($7::integer)::text, ($8::text)::text]::text[]"),
            "{sql}"
        );
    }
}
