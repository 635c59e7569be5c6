//! The ETA of a whole copy: the data still to come at the job's rate so far, plus the index
//! builds still to run, estimated from the size of each index on the source.
//!
//! Index builds are estimated at a fixed rate, [`INDEX_BYTES_PER_SECOND`] of source index
//! size per second for the job as a whole (measured: see BENCHMARKS.md, "A 20 GB mixed
//! dataset"). Builds that overlap the data phase (a table's indexes start as soon as its
//! own rows are in) are counted after it, so the estimate leans late while data still
//! flows; constraints, foreign keys and `ANALYZE` are not estimated (they read the target's
//! tables once each and are usually short next to the builds). Pure functions: `status`
//! and the progress line feed them what they read.

use serde::Serialize;

/// Source index bytes the job's builds get through per second (the builders together):
/// what a 2-core machine reached with two index builders on B-trees over bigint, int and
/// timestamptz columns.
pub const INDEX_BYTES_PER_SECOND: f64 = 20e6;

/// What a job is doing, as `status` shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Stage {
    /// Rows (or large objects) are still to be copied.
    Data,
    /// Every row is in; index builds are left.
    Indexes,
    /// Every row and index is in; constraints, foreign keys, `ANALYZE` and the final steps
    /// are left.
    Constraints,
    /// The job is finished.
    Done,
}

impl Stage {
    /// Where a job is from what its state says: `done` (the job's phase), whether any chunk
    /// of rows or large objects is still open, and whether any index build is not done.
    pub fn of(done: bool, data_left: bool, builds_left: bool) -> Stage {
        if done {
            Stage::Done
        } else if data_left {
            Stage::Data
        } else if builds_left {
            Stage::Indexes
        } else {
            Stage::Constraints
        }
    }

    /// `data`, `indexes`, `constraints`, `done`.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Data => "data",
            Stage::Indexes => "indexes",
            Stage::Constraints => "constraints",
            Stage::Done => "done",
        }
    }
}

/// Seconds the index builds still need: `index_bytes_left` at [`INDEX_BYTES_PER_SECOND`].
pub fn index_seconds(index_bytes_left: i64) -> f64 {
    index_bytes_left.max(0) as f64 / INDEX_BYTES_PER_SECOND
}

/// Seconds until the job is done: `data_seconds` (the data's ETA; `None` while no rate is
/// known yet) in the data stage, plus the builds left. `None` when the job is done, or
/// while data is still to come at no known rate.
pub fn total_seconds(
    stage: Stage,
    data_seconds: Option<f64>,
    index_bytes_left: i64,
) -> Option<f64> {
    let data = match stage {
        Stage::Done => return None,
        Stage::Data => data_seconds?,
        Stage::Indexes | Stage::Constraints => 0.0,
    };
    Some(data.max(0.0) + index_seconds(index_bytes_left))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_stage_follows_what_is_left() {
        assert_eq!(Stage::of(false, true, true), Stage::Data);
        assert_eq!(Stage::of(false, false, true), Stage::Indexes);
        assert_eq!(Stage::of(false, false, false), Stage::Constraints);
        assert_eq!(Stage::of(true, false, false), Stage::Done);
        assert_eq!(
            serde_json::to_string(&Stage::Indexes).ok().as_deref(),
            Some("\"indexes\"")
        );
    }

    #[test]
    fn the_eta_adds_the_index_builds_left_to_the_data() {
        // 2 GB of indexes at 20 MB/s: 100 s after the data's 50 s.
        assert_eq!(
            total_seconds(Stage::Data, Some(50.0), 2_000_000_000),
            Some(150.0)
        );
        // No rate yet: no ETA rather than one that leaves the data out.
        assert_eq!(total_seconds(Stage::Data, None, 2_000_000_000), None);
    }

    #[test]
    fn once_the_rows_are_in_only_the_builds_count() {
        // The data's ETA may stay above 0 when the planner over-estimated the rows; the
        // stage says the rows are in.
        assert_eq!(
            total_seconds(Stage::Indexes, Some(30.0), 400_000_000),
            Some(20.0)
        );
        assert_eq!(total_seconds(Stage::Constraints, Some(30.0), 0), Some(0.0));
        assert_eq!(total_seconds(Stage::Done, Some(30.0), 400_000_000), None);
        assert_eq!(index_seconds(-5), 0.0);
    }
}
