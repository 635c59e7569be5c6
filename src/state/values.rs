//! The values of a job's `default_sql` and `value_sql` expressions, evaluated once when the
//! job is created and used by every later run, worker and `verify` of the job.
//!
//! Invariant: a job's rows all carry the same value of an expression (`now()` is the moment
//! the job started, not the moment a resumed run or a second worker did), and `verify`
//! compares against the value the copy wrote instead of evaluating it again. The values are
//! recorded in the transaction that records the job, and deleted with it.

use std::collections::HashMap;

use tokio_postgres::Client;

use super::StateRef;
use crate::error::Result;

/// Values by (expression, type), as the target rendered them as text.
pub type SqlValues = HashMap<(String, String), String>;

/// SQL that creates the table of recorded values when missing (idempotent; a state schema
/// of layout 2 written by an earlier build gains it on the next copy).
pub fn create_sql(st: &StateRef) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {values} (
           job text NOT NULL REFERENCES {jobs} (name) ON DELETE CASCADE,
           expression text NOT NULL,
           type text NOT NULL,
           value text NOT NULL,
           PRIMARY KEY (job, expression, type));",
        values = st.table("job_values"),
        jobs = st.table("jobs"),
    )
}

/// SQL (to run in the transaction that records a new job) that records its values.
pub fn insert_sql(st: &StateRef, values: &SqlValues) -> String {
    let lit = |s: &str| crate::catalog::quote_literal(s);
    let mut sorted: Vec<_> = values.iter().collect();
    sorted.sort();
    sorted
        .into_iter()
        .map(|((expression, ty), value)| {
            format!(
                "INSERT INTO {} (job, expression, type, value) VALUES ({}, {}, {}, {});\n",
                st.table("job_values"),
                lit(&st.job),
                lit(expression),
                lit(ty),
                lit(value)
            )
        })
        .collect()
}

/// The values the job recorded; empty when there is no such job or state (or the job was
/// created by a build that did not record them). `finished`: also those of a finished job
/// (a new copy after a finished job starts a new one, with new values; `verify` wants the
/// finished job's).
pub async fn load(client: &Client, st: &StateRef, finished: bool) -> Result<SqlValues> {
    let what = "reading the job's recorded default_sql/value_sql values";
    let table = st.table("job_values");
    let exists: bool = client
        .query_one("SELECT to_regclass($1::text) IS NOT NULL", &[&table])
        .await
        .map_err(|e| crate::error::query_error(what, &e))?
        .get(0);
    if !exists {
        return Ok(SqlValues::new());
    }
    let rows = client
        .query(
            &format!(
                "SELECT v.expression, v.type, v.value FROM {table} v JOIN {jobs} j ON j.name = v.job \
                 WHERE v.job = $1 AND ($2 OR j.phase <> 'done')",
                jobs = st.table("jobs")
            ),
            &[&st.job, &finished],
        )
        .await
        .map_err(|e| crate::error::query_error(what, &e))?;
    Ok(rows
        .iter()
        .map(|r| ((r.get(0), r.get(1)), r.get(2)))
        .collect())
}
