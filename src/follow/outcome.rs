//! How a follow starts and ends, shared by the PostgreSQL and the MySQL follower (`run.rs`,
//! `binlog/run.rs`), so that neither imports the other for it: the claim of a job (its row,
//! its follower lock) and the words a follow ends with.
//!
//! Invariants: a job whose phase is `cut over` or `aborted` is never followed again; a
//! follower works from the job's row as read after it took the lock, never from one read
//! before (another follower may have moved on while it waited).

use tokio_postgres::Client;

use crate::error::{Error, Result};
use crate::state::follow::{self as fstate, phase, FollowRow};
use crate::state::StateRef;

/// What a follower found when it claimed its job.
pub enum Claim {
    /// It holds the job's follower lock; the job's row, read once it did.
    Follow(Box<FollowRow>),
    /// The job had ended already, or ended while the follower waited for the lock.
    Ended(FollowOutcome),
}

/// Claims job `st` for a follower in `session`: the job must follow a source; then its
/// follower lock (waiting for a follower that has just stopped, [`fstate::take_lock`]), then
/// its row again.
pub async fn claim(session: &Client, st: &StateRef) -> Result<Claim> {
    fstate::ensure(session, st).await?;
    let Some(row) = fstate::load(session, st).await? else {
        return Err(Error::Follow(format!(
            "job \"{}\" does not follow a source: start it with `howdah copy --follow`",
            st.job
        )));
    };
    if let Some(ended) = ended_message(st, &row) {
        return Ok(Claim::Ended(ended));
    }
    if !fstate::take_lock(session, st).await? {
        return Err(Error::Follow(format!(
            "another process follows job \"{}\" already (it holds the job's follower lock)",
            st.job
        )));
    }
    // Another follower may have moved the position, cut the job over or aborted it while this
    // one waited for the lock: what it left is what counts.
    let row = fstate::load(session, st)
        .await?
        .ok_or_else(|| Error::Follow(format!("job \"{}\" no longer follows a source", st.job)))?;
    Ok(match ended_message(st, &row) {
        Some(ended) => Claim::Ended(ended),
        None => Claim::Follow(Box::new(row)),
    })
}

/// How a follow ended.
#[derive(Debug)]
pub struct FollowOutcome {
    /// One line for the user.
    pub message: String,
    /// The job is cut over (by this process or another).
    pub cut_over: bool,
}

/// The outcome of a job that ended already (cut over or aborted), if it did.
pub fn ended_message(st: &StateRef, row: &FollowRow) -> Option<FollowOutcome> {
    match row.phase.as_str() {
        phase::CUT_OVER => Some(FollowOutcome {
            message: format!("job \"{}\" is cut over already", st.job),
            cut_over: true,
        }),
        phase::ABORTED => Some(FollowOutcome {
            message: format!(
                "job \"{}\" was aborted{}",
                st.job,
                row.error
                    .as_ref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            ),
            cut_over: false,
        }),
        _ => None,
    }
}
