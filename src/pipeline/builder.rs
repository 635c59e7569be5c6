//! A post-data builder: runs jobs of DDL steps (index builds, constraints, `ANALYZE`, the
//! final phases) on its own target connection.
//!
//! Each step runs exactly once per job through [`state::run_step`]: a resumed run, or a second
//! worker, skips a step that committed and waits for one still running elsewhere.

use tokio::sync::mpsc;

use super::{backoff, Event, Job, MAX_ATTEMPTS};
use crate::config::CopySettings;
use crate::connect::{connect, Side};
use crate::error::{db_reason, Error, Result};
use crate::state::{self, StateRef, StepRun};

/// Runs jobs until the channel closes.
pub(super) async fn run(
    settings: &CopySettings,
    st: &StateRef,
    jobs: &tokio::sync::Mutex<mpsc::UnboundedReceiver<Job>>,
    events: &mpsc::Sender<Event>,
) -> Result<()> {
    let mut client = builder_conn(settings).await?;
    loop {
        let job = jobs.lock().await.recv().await;
        let Some(job) = job else { return Ok(()) };
        for step in &job.steps {
            let mut attempt = 0u32;
            loop {
                let started = std::time::Instant::now();
                let err = match state::run_step(&client, st, step).await {
                    Ok(StepRun::Ran) => {
                        crate::metrics::step(true, started.elapsed().as_secs_f64());
                        tracing::debug!("{}", step.what);
                        break;
                    }
                    Ok(StepRun::Skipped) => {
                        crate::metrics::step(false, 0.0);
                        tracing::debug!("{}: already done", step.what);
                        break;
                    }
                    Err(e) => e,
                };
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
                // The cut session may still be running the step; the retry waits for its
                // advisory lock, then sees whether it committed.
                client = match builder_conn(settings).await {
                    Ok(c) => c,
                    Err(e) if attempt + 1 < MAX_ATTEMPTS => {
                        tracing::warn!("{e}");
                        continue;
                    }
                    Err(e) => return Err(e),
                };
            }
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
