//! `howdah verify`: compares source and target table by table, chunk by chunk, as the target
//! should hold the rows (after the job file's mappings and MySQL's type conversions).
//!
//! Two ways to compare a chunk, picked per table:
//! - **In the servers**: a PostgreSQL table copied without a transform has the same types on
//!   both sides, so each side computes `count(*)` and a sum of 64-bit row hashes over the
//!   chunk's key range ([`rowhash`]); only two numbers travel.
//! - **Streamed**: a mapped table or a MySQL source is read through the copy's own reader and
//!   transform into target tuples, the target's range with `COPY ... (FORMAT binary)`, and both
//!   sides hash each tuple here. Rows the copy rejects are left out of the source side, as
//!   they are out of the target.
//!
//! A table is cut into key ranges only where both sides select the same rows for a range
//! ([`ranges`]). A chunk whose counts or sums differ is a mismatch; `--drill-down` reads its
//! rows' keys and hashes on both sides and names the keys missing, extra or different;
//! `--repair` re-copies a table's mismatched ranges in one transaction ([`repair`]).
//! `default_sql`/`value_sql` columns are compared with the values the copy's job recorded,
//! or left out (and named) when it recorded none.
//!
//! [`run`] is the sequence: open the source as `copy` does, decide what is checked and how
//! ([`scope`]), check the chunks ([`check`], by [`in_server`] or [`stream`]), tally the
//! report, repair ([`repair`]); [`render`] writes it for the terminal.

mod check;
mod compare;
mod in_server;
mod json;
mod large_objects;
mod ranges;
mod render;
mod repair;
mod rowhash;
mod scope;
mod stream;

use std::sync::Arc;

use serde::Serialize;
use tokio_postgres::Client;

use crate::catalog::{Catalog, Table};
use crate::chunking::{Chunk, ChunkRange};
use crate::config::CopySettings;
use crate::connect::{connect, Side};
use crate::error::{Error, Result};
use crate::prepare::prepare;
pub use render::render;

/// What to verify and how.
#[derive(Debug, Clone)]
pub struct VerifyOptions {
    /// Check only this percent of each table's chunks (chosen by a fixed hash, so a rerun
    /// checks the same ones); `None` checks all.
    pub sample_pct: Option<f64>,
    /// Name the differing keys of mismatched chunks.
    pub drill_down: bool,
    /// Rows per verified chunk (smaller chunks locate a difference more precisely).
    pub chunk_rows: u64,
    /// Re-copy every mismatched range (delete it on the target, copy it again from the
    /// source), then check those ranges again; a table's ranges in one transaction, committed
    /// only when all of them match.
    pub repair: bool,
}

impl VerifyOptions {
    /// Checked options: a sample is a percent above 0 and at most 100; chunks hold at least
    /// 1,000 rows.
    pub fn new(
        sample_pct: Option<f64>,
        drill_down: bool,
        chunk_rows: u64,
        repair: bool,
    ) -> Result<Self> {
        if let Some(p) = sample_pct {
            if !(p > 0.0 && p <= 100.0) {
                return Err(Error::Config(format!(
                    "--sample {p}: give a percent above 0 and at most 100"
                )));
            }
        }
        Ok(VerifyOptions {
            sample_pct,
            drill_down,
            chunk_rows: chunk_rows.max(1000),
            repair,
        })
    }
}

/// The outcome for one table.
#[derive(Debug, Clone, Serialize)]
pub struct TableResult {
    /// Target table name.
    pub table: String,
    /// `in-server` or `streamed`.
    pub method: &'static str,
    /// Rows counted on the source (after filters and rejects, in the checked chunks).
    pub source_rows: u64,
    /// Rows counted on the target (in the checked chunks).
    pub target_rows: u64,
    /// Chunks of the table.
    pub chunks: usize,
    /// Chunks checked (all, unless sampled).
    pub checked: usize,
    /// Chunks whose count and checksum match.
    pub matched: usize,
    /// The chunks that differ.
    pub mismatches: Vec<Mismatch>,
    /// What is worth knowing besides the rows: foreign keys of the table that are `NOT VALID`
    /// on the target, with their orphans now and the query that lists them.
    pub notes: Vec<String>,
    /// Target columns left out of the comparison: their `default_sql`/`value_sql` value is
    /// not recorded in the job's state (another `--job`, or a copy by an older build).
    pub not_compared: Vec<String>,
}

/// A chunk that differs.
#[derive(Debug, Clone, Serialize)]
pub struct Mismatch {
    /// The key range, e.g. `keys (100) .. (200)` (lower exclusive, upper inclusive).
    pub range: String,
    /// Lower bound (exclusive), as key text; `None` is unbounded.
    pub lower: Option<Vec<String>>,
    /// Upper bound (inclusive), as key text; `None` is unbounded.
    pub upper: Option<Vec<String>>,
    /// Rows on the source side.
    pub source_rows: u64,
    /// Rows on the target side.
    pub target_rows: u64,
    /// With `--drill-down`: keys only on the source (missing on the target).
    pub missing: Vec<String>,
    /// With `--drill-down`: keys only on the target.
    pub extra: Vec<String>,
    /// With `--drill-down`: keys on both sides whose rows differ.
    pub different: Vec<String>,
    /// With `--repair`: rows deleted and copied again, and whether the range matches now.
    pub repaired: Option<Repair>,
}

/// What `--repair` did to one range.
#[derive(Debug, Clone, Serialize)]
pub struct Repair {
    /// Target rows deleted in the range.
    pub deleted: u64,
    /// Rows copied into it from the source.
    pub copied: u64,
    /// The range matched when checked again, before the commit.
    pub matches: bool,
    /// The table's repair was committed: every repaired range of the table matched. When
    /// `false` it was rolled back as a whole, and the target is as it was.
    pub committed: bool,
    /// Why the table's repair was rolled back (a statement failed) or not attempted.
    pub error: Option<String>,
}

/// The whole report.
#[derive(Debug, Clone, Serialize)]
pub struct VerifyReport {
    /// Every table, in plan order.
    pub tables: Vec<TableResult>,
    /// Whether every checked chunk matched.
    pub equal: bool,
    /// Percent of chunks checked, when sampled.
    pub sample_pct: Option<f64>,
    /// Seconds the verification took.
    pub seconds: f64,
}

/// How one table is compared.
#[derive(Clone)]
enum Method {
    /// Counts and row-hash sums computed by both servers.
    InServer(Arc<in_server::InServerTable>),
    /// Tuples of the target's shape from both sides, hashed here.
    Streamed(Arc<stream::StreamedTable>),
}

impl Method {
    /// The target table.
    fn target(&self) -> &Table {
        match self {
            Method::InServer(t) => &t.target,
            Method::Streamed(t) => &t.target,
        }
    }
}

/// A checked chunk: table, chunk, source and target sums, drill-down.
type ChunkResult = (usize, Chunk, Sums, Sums, Option<compare::Drill>);

/// A chunk to check.
struct Task {
    table: usize,
    chunk: Chunk,
}

/// One side's figures for a chunk.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Sums {
    rows: u64,
    sum: u128,
}

/// Runs the verification.
pub async fn run(settings: &CopySettings, opts: &VerifyOptions) -> Result<VerifyReport> {
    let started = std::time::Instant::now();
    let target = connect(&settings.target, Side::Target).await?;
    // default_sql/value_sql values as the copy recorded them in its job's state; those it did
    // not record (another job, an older build) are evaluated now and their columns left out.
    let st = crate::state::StateRef {
        schema: settings.state_schema.clone(),
        job: settings.job.clone(),
    };
    let recorded = crate::state::values::load(&target, &st, true).await?;
    let mut prepared = prepare(settings, &target, &recorded).await?;
    if prepared.catalog.tables.is_empty() {
        return Err(Error::Config(format!(
            "no table of the source matched the table patterns ({})",
            settings.filter.describe()
        )));
    }
    let scope = scope::scope(&mut prepared, &target, &recorded, settings, opts).await?;
    let source = crate::source::Reading {
        source: crate::prepare::reading_source(&prepared.origin, settings, Vec::new()),
        reads: crate::prepare::table_reads(&prepared.origin, &prepared.maps),
    };
    let methods = Arc::new(scope.methods);
    let results = check::check_chunks(
        settings,
        opts.drill_down,
        &source,
        &prepared.catalog,
        &methods,
        scope.tasks,
        started,
    )
    .await?;
    let mut tables = table_results(
        &target,
        &prepared.catalog,
        &methods,
        &scope.chunk_counts,
        &scope.not_compared,
    )
    .await?;
    let mismatched = tally(&mut tables, results);
    if opts.repair {
        repair::repair_mismatches(settings, &source, &methods, &mut tables, mismatched).await?;
    }
    // Large objects belong to the whole database: compared when no `--tables` narrows it.
    if let Some(client) = prepared.origin.postgres() {
        if settings.filter.whole_database() {
            tables.extend(large_objects::check(client, &target).await?);
        }
    }
    // Repairs read in the verification's snapshot, which the planning session holds.
    drop(prepared.origin);
    let equal = tables.iter().all(|t| {
        t.mismatches.iter().all(|m| {
            m.repaired
                .as_ref()
                .is_some_and(|r| r.committed && r.matches)
        })
    });
    Ok(VerifyReport {
        tables,
        equal,
        sample_pct: opts.sample_pct,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Each table's result before its chunks are tallied, with its notes (foreign keys `NOT
/// VALID` on the target).
async fn table_results(
    target: &Client,
    catalog: &Catalog,
    methods: &[Method],
    chunk_counts: &[usize],
    not_compared: &[Vec<String>],
) -> Result<Vec<TableResult>> {
    let mut tables: Vec<TableResult> = catalog
        .tables
        .iter()
        .zip(methods)
        .enumerate()
        .map(|(i, (t, m))| TableResult {
            table: t.name.to_string(),
            method: match m {
                Method::InServer { .. } => "in-server",
                Method::Streamed { .. } => "streamed",
            },
            source_rows: 0,
            target_rows: 0,
            chunks: chunk_counts[i],
            checked: 0,
            matched: 0,
            mismatches: Vec::new(),
            notes: Vec::new(),
            not_compared: not_compared[i].clone(),
        })
        .collect();
    for (r, t) in tables.iter_mut().zip(&catalog.tables) {
        for key in crate::state::invalid_keys::on_target(target, &t.name).await? {
            r.notes.push(key.to_string());
        }
    }
    Ok(tables)
}

/// Adds the checked chunks (sorted by table and chunk) to their tables; returns the
/// mismatches as (table, range, index in its table's mismatches), in that order.
fn tally(tables: &mut [TableResult], results: Vec<ChunkResult>) -> Vec<(usize, ChunkRange, usize)> {
    let mut mismatched = Vec::new();
    for (t, chunk, src, tgt, drill) in results {
        let r = &mut tables[t];
        r.checked += 1;
        r.source_rows += src.rows;
        r.target_rows += tgt.rows;
        if src == tgt {
            r.matched += 1;
            continue;
        }
        let (lower, upper) = match &chunk.range {
            ChunkRange::Keyset { lower, upper } => (lower.clone(), upper.clone()),
            _ => (None, None),
        };
        let drill = drill.unwrap_or_default();
        r.mismatches.push(Mismatch {
            range: chunk.range.to_string(),
            lower,
            upper,
            source_rows: src.rows,
            target_rows: tgt.rows,
            missing: drill.missing,
            extra: drill.extra,
            different: drill.different,
            repaired: None,
        });
        mismatched.push((t, chunk.range, r.mismatches.len() - 1));
    }
    mismatched
}

/// Of catalog rows whose first column is a column name, the one of column `name`; when that
/// side has no such column, an error says `what` was being read and which `kind` of column
/// is missing.
fn row_named<'r>(
    rows: &'r [tokio_postgres::Row],
    name: &str,
    kind: &str,
    what: String,
) -> Result<&'r tokio_postgres::Row> {
    rows.iter()
        .find(|r| r.get::<_, String>(0) == name)
        .ok_or_else(|| Error::Query {
            what,
            reason: format!("{kind} \"{name}\" does not exist there"),
        })
}

/// ` WHERE <the range's predicate>`, or nothing for a whole table.
fn where_clause(table: &Table, range: &ChunkRange) -> String {
    match range.predicate(table.chunk_key.as_deref()) {
        Some(p) => format!(" WHERE {p}"),
        None => String::new(),
    }
}
