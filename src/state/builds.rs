//! A job's index builds and the size of each index on the source, recorded when the job is
//! planned, so that `status` and the progress line can give an ETA that covers the index
//! builds, not only the data (see [`crate::eta`]).
//!
//! Invariants: one row per index build step of the job (`step` is the step's `what`, the key
//! of its done mark in the steps table), written in the job's creating transaction, never
//! changed afterwards; a build is done exactly when its step's done mark exists. Jobs of a
//! MySQL source, and jobs planned by an earlier version, have no rows (their ETA leaves the
//! builds out). The table is created when missing, like `invalid_keys`: no layout migration.

use tokio_postgres::Client;

use super::{query_err, StateRef};
use crate::catalog::quote_literal;
use crate::error::Result;

/// One index build of a job.
#[derive(Debug, Clone, PartialEq)]
pub struct Build {
    /// The step's `what` (see [`crate::schema::ddl::index_builds`]).
    pub step: String,
    /// The table it indexes, `schema.table`.
    pub table: String,
    /// `pg_relation_size` of the index on the source.
    pub bytes: i64,
}

/// SQL that creates the table when missing.
pub fn create_sql(st: &StateRef) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {b} (
           job text NOT NULL REFERENCES {jobs} (name) ON DELETE CASCADE,
           step text NOT NULL,
           table_name text NOT NULL,
           bytes bigint NOT NULL,
           PRIMARY KEY (job, step));",
        b = st.table("builds"),
        jobs = st.table("jobs"),
    )
}

/// SQL that records a new job's builds (run in the job's creating transaction).
pub fn insert_sql(st: &StateRef, builds: &[Build]) -> String {
    if builds.is_empty() {
        return String::new();
    }
    let values: Vec<String> = builds
        .iter()
        .map(|b| {
            format!(
                "({}, {}, {}, {})",
                quote_literal(&st.job),
                quote_literal(&b.step),
                quote_literal(&b.table),
                b.bytes
            )
        })
        .collect();
    format!(
        "INSERT INTO {} (job, step, table_name, bytes) VALUES {} ON CONFLICT DO NOTHING;",
        st.table("builds"),
        values.join(", ")
    )
}

/// Bytes of the job's indexes on the source: all of them, and those whose build is done;
/// `(0, 0)` when the state predates this table (`status` does not create tables).
pub async fn progress(client: &Client, st: &StateRef) -> Result<(i64, i64)> {
    let exists: bool = client
        .query_one(
            "SELECT to_regclass(format('%I.builds', $1::text)) IS NOT NULL",
            &[&st.schema],
        )
        .await
        .map_err(query_err("looking for the job's index builds"))?
        .get(0);
    if !exists {
        return Ok((0, 0));
    }
    let row = client
        .query_one(
            &format!(
                "SELECT coalesce(sum(b.bytes), 0)::int8, coalesce(sum(b.bytes) FILTER (WHERE EXISTS \
                   (SELECT 1 FROM {steps} s WHERE s.job = b.job AND s.step = b.step)), 0)::int8 \
                 FROM {builds} b WHERE b.job = $1",
                steps = st.table("steps"),
                builds = st.table("builds"),
            ),
            &[&st.job],
        )
        .await
        .map_err(query_err("reading the job's index builds"))?;
    Ok((row.get(0), row.get(1)))
}

/// Bytes of the job's indexes not built yet, by table (`schema.table`), for the run's
/// progress line.
pub async fn by_table(
    client: &Client,
    st: &StateRef,
) -> Result<std::collections::HashMap<String, i64>> {
    let rows = client
        .query(
            &format!(
                "SELECT b.table_name, sum(b.bytes)::int8 FROM {builds} b WHERE b.job = $1 \
                 AND NOT EXISTS (SELECT 1 FROM {steps} s WHERE s.job = b.job AND s.step = b.step) \
                 GROUP BY b.table_name",
                builds = st.table("builds"),
                steps = st.table("steps"),
            ),
            &[&st.job],
        )
        .await
        .map_err(query_err("reading the job's index builds"))?;
    Ok(rows.iter().map(|r| (r.get(0), r.get(1))).collect())
}
