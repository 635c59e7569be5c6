//! Post-data and final steps, each run exactly once per job, whatever the number of workers.
//!
//! A step runs as `pg_advisory_xact_lock(step); <skip if marked done>; <step>; <mark done>` in
//! a transaction of its own, or of several steps that commit together. The lock makes a
//! second worker (or a resumed run, while the killed run's statement is still finishing on the
//! server) wait for the first, then see its mark and skip; the mark commits with the step, so
//! an interrupted step rolls back and runs again.

use tokio_postgres::Client;

use super::{fnv1a, query_err, StateRef};
use crate::error::{db_reason, Error, Result};
use crate::schema::Step;

/// What happened to a step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StepRun {
    /// This call ran it.
    Ran,
    /// It was already done (by an earlier run or another worker).
    Skipped,
}

/// The step's advisory-lock key (single 64-bit form, apart from the workers' two-key locks).
pub fn step_lock_key(st: &StateRef, step: &str) -> i64 {
    fnv1a(&[
        st.schema.as_bytes(),
        b"/",
        st.job.as_bytes(),
        b"/",
        step.as_bytes(),
    ]) as i64
}

/// Runs `step` once for the job (see the module comment). A database error is returned as
/// the server reported it, for the caller to classify (retry or fail).
pub async fn run_step(
    client: &Client,
    st: &StateRef,
    step: &Step,
) -> std::result::Result<StepRun, tokio_postgres::Error> {
    let key = step_lock_key(st, &step.what);
    client
        .batch_execute(&format!("BEGIN; SELECT pg_advisory_xact_lock({key})"))
        .await?;
    let done: bool = client
        .query_one(
            &format!(
                "SELECT EXISTS (SELECT 1 FROM {} WHERE job = $1 AND step = $2)",
                st.table("steps")
            ),
            &[&st.job, &step.what],
        )
        .await?
        .get(0);
    if done {
        client.batch_execute("COMMIT").await?;
        return Ok(StepRun::Skipped);
    }
    let result = client
        .batch_execute(&format!(
            "{};\n{}; COMMIT",
            step.sql,
            step_done_sql(st, &step.what)
        ))
        .await;
    if let Err(e) = result {
        // The transaction is aborted; a broken connection needs nothing.
        let _ = client.batch_execute("ROLLBACK").await;
        return Err(e);
    }
    Ok(StepRun::Ran)
}

/// Runs `step` inside the caller's open transaction, once for the job: takes the step's
/// advisory lock (held until the transaction ends), skips the step when it is marked done,
/// else runs it and its mark. Several steps may share the transaction ([`run_step`] with a
/// transaction of its own): they commit, or roll back, together with their marks.
pub async fn run_step_in_transaction(
    client: &Client,
    st: &StateRef,
    step: &Step,
) -> std::result::Result<StepRun, tokio_postgres::Error> {
    let key = step_lock_key(st, &step.what);
    client
        .batch_execute(&format!("SELECT pg_advisory_xact_lock({key})"))
        .await?;
    // A statement of its own, after the lock: its snapshot sees a mark that the lock's
    // holder committed while this session waited.
    let done: bool = client
        .query_one(
            &format!(
                "SELECT EXISTS (SELECT 1 FROM {} WHERE job = $1 AND step = $2)",
                st.table("steps")
            ),
            &[&st.job, &step.what],
        )
        .await?
        .get(0);
    if done {
        return Ok(StepRun::Skipped);
    }
    client
        .batch_execute(&format!("{};\n{}", step.sql, step_done_sql(st, &step.what)))
        .await?;
    Ok(StepRun::Ran)
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

/// The error for a step that failed for good.
pub fn step_error(step: &Step, e: &tokio_postgres::Error) -> Error {
    Error::Schema {
        what: step.what.clone(),
        reason: db_reason(e),
    }
}

/// The mark of a job whose schema is not complete yet: recorded with the job, cleared when
/// the last schema step commits.
const SCHEMA_PENDING: &str = "pre-data: pending";

/// SQL that marks the job's schema as pending (run with the job's creation).
pub fn schema_pending_sql(st: &StateRef) -> String {
    step_done_sql(st, SCHEMA_PENDING)
}

/// SQL that clears the job's "schema pending" mark.
pub fn schema_done_sql(st: &StateRef) -> String {
    format!(
        "DELETE FROM {} WHERE job = {} AND step = {}",
        st.table("steps"),
        crate::catalog::quote_literal(&st.job),
        crate::catalog::quote_literal(SCHEMA_PENDING)
    )
}

/// Whether the job's schema is still being created (a run died during it).
pub async fn schema_pending(client: &Client, st: &StateRef) -> Result<bool> {
    let done = done_steps(client, st).await?;
    Ok(done.contains(SCHEMA_PENDING))
}

/// The done mark of a schema step: its description and a hash of its SQL (two steps may
/// share a description).
pub fn schema_step_mark(step: &Step) -> String {
    format!(
        "pre-data: {} #{:016x}",
        step.what,
        fnv1a(&[step.sql.as_bytes()])
    )
}
