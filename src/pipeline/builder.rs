//! A post-data builder: runs jobs of DDL steps (index builds, constraints, `ANALYZE`, the
//! final phases) on its own target connection.
//!
//! Each step runs exactly once per job through [`state::run_step_in_transaction`]: a resumed
//! run, or a second worker, skips a step that committed and waits for one still running
//! elsewhere. A job's steps share transactions, each committing with the marks of the steps
//! it ran: at most [`MAX_STEPS_PER_TRANSACTION`] (fewer on a small lock table, as the schema's
//! transactions) and no new step after [`TRANSACTION_TIME`], so quick steps (thousands of
//! foreign keys to one table) pay one commit per batch, while a failure redoes at most a
//! second's work besides the failed step. A commit per step made each foreign key to a shared
//! table three times slower: every commit made the server rebuild that table's trigger list,
//! which grows with every key.

use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio_postgres::Client;

use super::{backoff, Event, Job, MAX_ATTEMPTS};
use crate::config::CopySettings;
use crate::connect::{connect, Side};
use crate::error::{db_reason, Error, Result};
use crate::schema::Step;
use crate::state::{self, StateRef, StepRun};

/// Steps one transaction takes at most.
const MAX_STEPS_PER_TRANSACTION: usize = 25;

/// A transaction takes no new step once it has been open this long.
const TRANSACTION_TIME: Duration = Duration::from_secs(1);

/// Runs jobs until the channel closes.
pub(super) async fn run(
    settings: &CopySettings,
    st: &StateRef,
    jobs: &tokio::sync::Mutex<mpsc::UnboundedReceiver<Job>>,
    events: &mpsc::Sender<Event>,
) -> Result<()> {
    let mut client = builder_conn(settings).await?;
    let per_transaction = crate::catalog::postgres::steps_per_transaction(&client)
        .await?
        .min(MAX_STEPS_PER_TRANSACTION);
    loop {
        let job = jobs.lock().await.recv().await;
        let Some(job) = job else { return Ok(()) };
        let mut next = 0;
        let mut attempt = 0u32;
        while next < job.steps.len() {
            let (failed, err) =
                match run_batch(&client, st, &job.steps[next..], per_transaction).await {
                    Ok(committed) => {
                        next += committed;
                        attempt = 0;
                        continue;
                    }
                    Err(failure) => failure,
                };
            let step = &job.steps[next + failed];
            crate::metrics::error(if crate::error::is_transient(&err) {
                "transient"
            } else {
                "step"
            });
            if !crate::error::is_transient(&err) || attempt + 1 >= MAX_ATTEMPTS {
                return Err(state::step_error(step, &err));
            }
            attempt += 1;
            let wait = backoff(attempt);
            tracing::warn!(
                "{} failed: {}; retrying in {:.1} s (attempt {} of {MAX_ATTEMPTS})",
                step.what,
                db_reason(&err),
                wait.as_secs_f64(),
                attempt + 1
            );
            tokio::time::sleep(wait).await;
            // The cut session may still be running the steps; the retry waits for their
            // advisory locks, then sees whether they committed.
            client = loop {
                match builder_conn(settings).await {
                    Ok(c) => break c,
                    Err(e) if attempt + 1 < MAX_ATTEMPTS => {
                        tracing::warn!("{e}");
                        attempt += 1;
                        tokio::time::sleep(backoff(attempt)).await;
                    }
                    Err(e) => return Err(e),
                }
            };
        }
        if events
            .send(Event::JobDone { table: job.table })
            .await
            .is_err()
        {
            return Ok(());
        }
    }
}

/// Runs the first of `steps` in one transaction (see the module comment) and commits; returns
/// how many it committed, or the position of the step that failed with the error. After a
/// failure nothing of the transaction is kept: the caller runs those steps again.
async fn run_batch(
    client: &Client,
    st: &StateRef,
    steps: &[Step],
    per_transaction: usize,
) -> std::result::Result<usize, (usize, tokio_postgres::Error)> {
    client.batch_execute("BEGIN").await.map_err(|e| (0, e))?;
    let opened = Instant::now();
    let mut ran = Vec::with_capacity(per_transaction);
    for (i, step) in steps.iter().enumerate() {
        if i == per_transaction || (i > 0 && opened.elapsed() >= TRANSACTION_TIME) {
            break;
        }
        let started = Instant::now();
        match state::run_step_in_transaction(client, st, step).await {
            Ok(run) => ran.push((run, started.elapsed())),
            Err(e) => {
                // The transaction is aborted; a broken connection needs nothing.
                let _ = client.batch_execute("ROLLBACK").await;
                return Err((i, e));
            }
        }
    }
    if let Err(e) = client.batch_execute("COMMIT").await {
        return Err((ran.len().saturating_sub(1), e));
    }
    for ((run, took), step) in ran.iter().zip(steps) {
        match run {
            StepRun::Ran => {
                crate::metrics::step(true, took.as_secs_f64());
                tracing::debug!("{}", step.what);
            }
            StepRun::Skipped => {
                crate::metrics::step(false, 0.0);
                tracing::debug!("{}: already done", step.what);
            }
        }
    }
    Ok(ran.len())
}

async fn builder_conn(settings: &CopySettings) -> Result<tokio_postgres::Client> {
    let client = connect(&settings.target, Side::Target).await?;
    client
        .batch_execute(&format!(
            "SET maintenance_work_mem = '{}'",
            settings.maintenance_work_mem
        ))
        .await
        .map_err(|e| Error::Schema {
            what: "setting maintenance_work_mem".into(),
            reason: db_reason(&e),
        })?;
    Ok(client)
}
