//! A job's index builds and foreign key checks with their sizes on the source (the index's;
//! the referencing table's), recorded when the job is planned, so that `status` and the
//! progress line can give an ETA that covers them, not only the data (see [`crate::eta`]).
//!
//! Invariants: one row per index build or foreign key step of the job (`step` is the step's
//! `what`, the key of its done mark in the steps table), written in the job's creating transaction, never
//! changed afterwards; a build is done exactly when its step's done mark exists. Jobs of a
//! MySQL source, and jobs planned by an earlier version, have no rows (their ETA leaves the
//! builds out). The table is created when missing, like `invalid_keys`: no layout migration.

use tokio_postgres::Client;

use super::{query_err, StateRef};
use crate::catalog::quote_literal;
use crate::error::Result;

/// What a recorded step does.
pub const INDEX: &str = "index";
/// See [`INDEX`].
pub const FOREIGN_KEY: &str = "foreign key";

/// One index build or foreign key check of a job.
#[derive(Debug, Clone, PartialEq)]
pub struct Build {
    /// The step's `what` (see [`crate::schema::ddl::index_builds`] and
    /// [`crate::schema::ddl::foreign_key_steps`]).
    pub step: String,
    /// [`INDEX`] or [`FOREIGN_KEY`].
    pub kind: &'static str,
    /// The table it indexes, `schema.table`.
    pub table: String,
    /// `pg_relation_size` of the index on the source; for a foreign key, the referencing
    /// table's heap and TOAST bytes.
    pub bytes: i64,
}

/// SQL that creates the table when missing.
pub fn create_sql(st: &StateRef) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {b} (
           job text NOT NULL REFERENCES {jobs} (name) ON DELETE CASCADE,
           step text NOT NULL,
           kind text NOT NULL,
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
                "({}, {}, {}, {}, {})",
                quote_literal(&st.job),
                quote_literal(&b.step),
                quote_literal(b.kind),
                quote_literal(&b.table),
                b.bytes
            )
        })
        .collect();
    format!(
        "INSERT INTO {} (job, step, kind, table_name, bytes) VALUES {} ON CONFLICT DO NOTHING;",
        st.table("builds"),
        values.join(", ")
    )
}

/// What is left of a job's builds and checks for one table.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct TableBuilds {
    /// `schema.table`.
    pub table: String,
    /// Index bytes of the table.
    pub index_bytes: i64,
    /// Index bytes of the table not built yet.
    pub index_bytes_left: i64,
    /// Bytes counted for its foreign keys not checked yet.
    pub check_bytes_left: i64,
}

/// The job's builds and checks by table; empty when the state predates this table (`status`
/// does not create tables).
pub async fn by_table(client: &Client, st: &StateRef) -> Result<Vec<TableBuilds>> {
    let exists: bool = client
        .query_one(
            "SELECT to_regclass(format('%I.builds', $1::text)) IS NOT NULL",
            &[&st.schema],
        )
        .await
        .map_err(query_err("looking for the job's index builds"))?
        .get(0);
    if !exists {
        return Ok(Vec::new());
    }
    let rows = client
        .query(
            &format!(
                "SELECT b.table_name, \
                   coalesce(sum(b.bytes) FILTER (WHERE b.kind = $2), 0)::int8, \
                   coalesce(sum(b.bytes) FILTER (WHERE b.kind = $2 AND NOT d.done), 0)::int8, \
                   coalesce(sum(b.bytes) FILTER (WHERE b.kind = $3 AND NOT d.done), 0)::int8 \
                 FROM {builds} b CROSS JOIN LATERAL (SELECT EXISTS (SELECT 1 FROM {steps} s \
                   WHERE s.job = b.job AND s.step = b.step) AS done) d \
                 WHERE b.job = $1 GROUP BY b.table_name ORDER BY b.table_name",
                builds = st.table("builds"),
                steps = st.table("steps"),
            ),
            &[&st.job, &INDEX, &FOREIGN_KEY],
        )
        .await
        .map_err(query_err("reading the job's index builds"))?;
    Ok(rows
        .iter()
        .map(|r| TableBuilds {
            table: r.get(0),
            index_bytes: r.get(1),
            index_bytes_left: r.get(2),
            check_bytes_left: r.get(3),
        })
        .collect())
}
