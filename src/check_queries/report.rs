//! The report of `check-queries`: one line per query (its status, both answers, the medians,
//! the plan diagnosis of a slower one), the statements skipped, the planner settings that
//! differ, and the tally that decides the exit code. It serialises as the `--json` output, so
//! every field is part of that contract (README: Check the application's queries).

use serde::Serialize;

use super::answer::{Answer, Verdict};
use super::diff::RowDiff;
use super::plan::Diagnosis;

/// The outcome of one query.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    /// Same answer, not slower.
    Ok,
    /// The answers differ.
    Different,
    /// Same rows in another order, for a query with `ORDER BY`.
    OtherOrder,
    /// Same answer, slower than `--max-slowdown`.
    Slower,
    /// The query failed on a side.
    Error,
    /// Its answer changed between runs on one side (`now()`, `random()`, `LIMIT` over ties):
    /// not compared, not counted as a failure.
    Unstable,
}

/// One query's line of the report.
#[derive(Debug, Clone, Serialize)]
pub struct QueryReport {
    /// Its name.
    pub name: String,
    /// Where it came from (`query file`, `pg_stat_statements`, with filled parameters).
    pub origin: String,
    /// The verdict.
    pub status: Status,
    /// Whether its answer is ordered (a top-level `ORDER BY`).
    pub ordered: bool,
    /// The source's answer.
    pub source: Option<Answer>,
    /// The target's answer.
    pub target: Option<Answer>,
    /// The answers compared.
    pub answer: Option<Verdict>,
    /// Median of the timed runs on the source, in ms.
    pub source_ms: Option<f64>,
    /// Median of the timed runs on the target, in ms.
    pub target_ms: Option<f64>,
    /// `target_ms / source_ms`.
    pub ratio: Option<f64>,
    /// Slower than the threshold.
    pub slower: bool,
    /// For a differing query with small answers: rows found on one side only.
    pub rows_differ: Option<RowDiff>,
    /// For a slower query: the plans and what they tell.
    pub plan: Option<Diagnosis>,
    /// What failed, on which side.
    pub error: Option<String>,
    /// Remarks (an unstable answer).
    pub notes: Vec<String>,
    /// The text run on the source.
    pub source_sql: String,
    /// The text run on the target.
    pub target_sql: String,
}

/// A query that was not run, and why.
#[derive(Debug, Clone, Serialize)]
pub struct Skipped {
    /// The query's text as the source recorded it.
    pub query: String,
    /// Why it was left out.
    pub reason: String,
}

/// The whole check.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The source, password left out.
    pub source: String,
    /// The target, password left out.
    pub target: String,
    /// Timed runs per query and side.
    pub runs: usize,
    /// The slowdown threshold.
    pub max_slowdown: f64,
    /// The minimum difference in ms for "slower".
    pub min_slowdown_ms: f64,
    /// Every query run.
    pub queries: Vec<QueryReport>,
    /// Queries left out (from `pg_stat_statements`).
    pub skipped: Vec<Skipped>,
    /// Planner settings whose values differ between the sides (PostgreSQL source).
    pub settings_differ: Vec<String>,
    /// Queries whose answers differ (another order included).
    pub different: usize,
    /// Queries slower than the threshold.
    pub slower: usize,
    /// Queries that failed on a side.
    pub errors: usize,
    /// No difference, no slower query, no error: the exit code is 0.
    pub ok: bool,
}

/// The first `max` characters of a text, on one line.
pub(super) fn one_line(s: &str, max: usize) -> String {
    let flat = s.split_whitespace().collect::<Vec<_>>().join(" ");
    match flat.char_indices().nth(max) {
        Some((i, _)) => format!("{}...", &flat[..i]),
        None => flat,
    }
}
