//! The ETA of a whole copy: the data still to come at the job's rate so far, the index
//! builds still to run (from the size of each index on the source), and the foreign key
//! checks (from the size of each referencing table on the source).
//!
//! The model, in seconds left:
//!
//! `max(data + builds(last), builds(ready + later)) + checks(keys)`
//!
//! - `data`: rows left at the job's rate so far (0 once every row is in);
//! - `builds(...)`: index bytes left at [`INDEX_BYTES_PER_SECOND`], of tables whose rows are
//!   in (`ready`) and of those whose rows are not (`later`). The builders run beside the
//!   lanes, so builds hide under the data as long as there is data; but a table's builds
//!   start only when its own rows are in, so those of the table copied last (`last`: lanes
//!   take the longest copy first, so the smallest table not in yet) come after the data. A
//!   single big table: all of its builds come after its data;
//! - `checks(keys)`: bytes of the tables whose foreign keys are still to be checked, at
//!   [`CHECK_BYTES_PER_SECOND`]: the checks run once every table is finished.
//!
//! `ANALYZE`, the other constraints and the final steps are not estimated. Both rates are
//! constants measured on this project's 2-core machine (BENCHMARKS.md, "A 20 GB mixed
//! dataset"). Pure functions: `status` and the progress line feed them what they read.

use serde::Serialize;

/// Source index bytes the job's builds get through per second (the builders together).
pub const INDEX_BYTES_PER_SECOND: f64 = 20e6;

/// Source bytes of referencing tables the foreign key checks get through per second.
pub const CHECK_BYTES_PER_SECOND: f64 = 150e6;

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

/// What is left of a job, as the ETA counts it.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Left {
    /// The data's ETA at the job's rate so far (`None`: no rate known yet).
    pub data_seconds: Option<f64>,
    /// Index bytes not built yet of tables whose rows are in.
    pub ready_index_bytes: i64,
    /// Index bytes of tables whose rows are not in yet.
    pub later_index_bytes: i64,
    /// Index bytes of the table whose rows come in last (part of `later_index_bytes`).
    pub last_index_bytes: i64,
    /// Bytes of the tables whose foreign keys are still to be checked.
    pub check_bytes: i64,
}

/// Seconds `bytes` of indexes take to build.
pub fn index_seconds(bytes: i64) -> f64 {
    bytes.max(0) as f64 / INDEX_BYTES_PER_SECOND
}

/// Seconds the foreign key checks over `bytes` of referencing tables take.
pub fn check_seconds(bytes: i64) -> f64 {
    bytes.max(0) as f64 / CHECK_BYTES_PER_SECOND
}

/// Seconds until the job is done (see the module's model). `None` when it is done, or while
/// data is still to come at no known rate.
pub fn total_seconds(stage: Stage, left: Left) -> Option<f64> {
    let data = match stage {
        Stage::Done => return None,
        Stage::Data => left.data_seconds?.max(0.0),
        Stage::Indexes | Stage::Constraints => 0.0,
    };
    let after_data = data + index_seconds(left.last_index_bytes);
    let builders = index_seconds(left.ready_index_bytes + left.later_index_bytes);
    Some(after_data.max(builders) + check_seconds(left.check_bytes))
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
    fn a_single_tables_builds_come_after_its_data() {
        // 2 GB of indexes at 20 MB/s: 100 s after the data's 50 s, then 1.5 GB of checks.
        let left = Left {
            data_seconds: Some(50.0),
            later_index_bytes: 2_000_000_000,
            last_index_bytes: 2_000_000_000,
            check_bytes: 1_500_000_000,
            ..Left::default()
        };
        assert_eq!(total_seconds(Stage::Data, left), Some(160.0));
        // No rate yet: no ETA rather than one that leaves the data out.
        let unknown = Left {
            data_seconds: None,
            ..left
        };
        assert_eq!(total_seconds(Stage::Data, unknown), None);
    }

    #[test]
    fn builds_of_tables_already_in_hide_under_the_data() {
        let left = Left {
            data_seconds: Some(50.0),
            ready_index_bytes: 600_000_000,
            later_index_bytes: 200_000_000,
            last_index_bytes: 100_000_000,
            check_bytes: 0,
        };
        // 40 s of builds run beside 50 s of data; the last table's 5 s follow it.
        assert_eq!(total_seconds(Stage::Data, left), Some(55.0));
        // Builds longer than the data: they are what is left.
        let long = Left {
            ready_index_bytes: 2_000_000_000,
            ..left
        };
        assert_eq!(total_seconds(Stage::Data, long), Some(110.0));
    }

    #[test]
    fn once_the_rows_are_in_only_builds_and_checks_count() {
        // The data's ETA may stay above 0 when the planner over-estimated the rows; the
        // stage says the rows are in.
        let left = Left {
            data_seconds: Some(30.0),
            ready_index_bytes: 400_000_000,
            check_bytes: 300_000_000,
            ..Left::default()
        };
        assert_eq!(total_seconds(Stage::Indexes, left), Some(22.0));
        let checks_only = Left {
            ready_index_bytes: 0,
            ..left
        };
        assert_eq!(total_seconds(Stage::Constraints, checks_only), Some(2.0));
        assert_eq!(total_seconds(Stage::Done, left), None);
        assert_eq!(index_seconds(-5), 0.0);
    }
}
