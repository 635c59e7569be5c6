//! How a follow ends, in words for the user: shared by the PostgreSQL and the MySQL follower
//! (`run.rs`, `binlog/run.rs`), so that neither imports the other for it.
//!
//! Invariant: a job whose phase is `cut over` or `aborted` is never followed again; these are
//! the messages its followers end with.

use crate::state::follow::{phase, FollowRow};
use crate::state::StateRef;

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
