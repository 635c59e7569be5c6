//! A job's lifecycle as one worker sees it: open it (new, resumed, or already finished), and
//! record how a run of it ended.
//!
//! Opening happens under the job's setup lock (see [`super::lock_setup`]), so of the workers
//! that start together exactly one creates the job and the others join it. The lock stays
//! held after [`open`] returns: the caller creates the schema and the chunk plan of a new job
//! before it lets others in with [`super::unlock_setup`].

use tokio_postgres::Client;

use super::invalid_keys::{self, InvalidKey};
use super::{config_changes, delete_job, ensure, load_job, lock_setup, JobRow, StateRef};
use crate::config::CopySettings;
use crate::error::{Error, Result};

/// What [`open`] found.
#[derive(Debug)]
pub enum JobStart {
    /// No job of that name (or `--restart`, or a finished job with other settings): copy anew.
    New,
    /// An unfinished job with the same settings: resume it.
    Resume(JobRow),
    /// A finished job with foreign keys left `NOT VALID`: they were validated again, nothing
    /// is copied; `still_invalid` are those that still fail.
    Revalidated {
        /// What to tell the user.
        message: String,
        /// Keys that are still `NOT VALID`.
        still_invalid: Vec<InvalidKey>,
    },
}

/// Opens job `st` for a run whose settings are summarised by `config` (see the copy's
/// `config_summary`): takes the setup lock, then decides. A finished job with the same
/// settings is refused unless `recreate` (which starts a new one); an unfinished job with other
/// settings is refused with each difference named.
pub async fn open(
    target: &Client,
    st: &StateRef,
    config: &str,
    restart: bool,
    recreate: bool,
) -> Result<JobStart> {
    ensure(target, st).await?;
    // One process at a time decides whether the job is new, creates it, or joins it; a run
    // killed during its setup holds the lock until the server has rolled it back.
    lock_setup(target, st).await?;
    if restart {
        delete_job(target, st).await?;
    }
    let Some(job) = load_job(target, st).await? else {
        return Ok(JobStart::New);
    };
    let changes = config_changes(&job.config, config);
    if job.phase == "done" {
        if recreate || !changes.is_empty() {
            // A finished job is history, not something to resume: new settings (or recreate,
            // which means "start over") start a new job.
            tracing::info!(
                "job \"{}\" had finished; starting a new copy with the new settings",
                st.job
            );
            delete_job(target, st).await?;
            return Ok(JobStart::New);
        }
        if invalid_keys::read(target, st).await?.is_empty() {
            return Err(Error::Config(format!(
                "job \"{}\" already finished; add --restart (with --schema recreate) to copy again, or use another --job name",
                st.job
            )));
        }
        // The job finished with foreign keys left NOT VALID: validate them again (their
        // orphans may have been fixed since), copy nothing.
        let still_invalid = invalid_keys::revalidate(target, st).await?;
        let message = if still_invalid.is_empty() {
            format!(
                "job \"{}\" had finished with foreign keys left NOT VALID; they validate now: the copy is complete",
                st.job
            )
        } else {
            format!(
                "job \"{}\" had finished; nothing was copied again; {} foreign key(s) still NOT VALID",
                st.job,
                still_invalid.len()
            )
        };
        return Ok(JobStart::Revalidated {
            message,
            still_invalid,
        });
    }
    if !changes.is_empty() {
        return Err(Error::Config(format!(
            "job \"{}\" was started with another configuration ({}); rerun with the same settings to resume it, \
             or add --restart (with --schema recreate) to start over",
            st.job,
            changes.join("; ")
        )));
    }
    Ok(JobStart::Resume(job))
}

/// Resumes an unfinished job: its failed chunks go back to pending (a rerun retries them), and
/// the log says how far the job got.
pub async fn resume(target: &Client, st: &StateRef) -> Result<()> {
    let (total, done) = super::chunk_counts(target, st).await?;
    let retried = super::retry_failed(target, st).await?;
    let retried = match retried {
        0 => String::new(),
        n => format!(", {n} failed chunk(s) retried"),
    };
    tracing::info!(
        "resuming job \"{}\": {done} of {total} chunks already copied{retried}",
        st.job
    );
    Ok(())
}

/// Refuses to follow with other column mappings than the copy's (a job file left out, or
/// edited): the changes would not arrive as the copied rows did.
pub async fn same_mappings(settings: &CopySettings, target: &Client, st: &StateRef) -> Result<()> {
    let Some(job) = load_job(target, st).await? else {
        return Ok(());
    };
    let ours = settings.rules_summary();
    let Some(recorded) = job.config.lines().find(|l| l.starts_with("mappings = ")) else {
        return Ok(());
    };
    if recorded.starts_with(&ours) {
        return Ok(());
    }
    Err(Error::Config(format!(
        "job \"{}\" was copied with other column mappings than this run's ({}): pass the same \
         job file (--config) as the copy, so that changes are mapped as the copied rows were",
        st.job,
        if settings.rules.is_empty() {
            "this run has none".to_string()
        } else {
            format!("this run's come from {}", settings.rules.file)
        }
    )))
}
