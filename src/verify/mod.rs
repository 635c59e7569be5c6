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

mod json;
mod ranges;
mod repair;
mod rowhash;

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use futures_util::StreamExt;
use serde::Serialize;
use tokio::sync::{mpsc, Mutex};
use tokio_postgres::Client;

use crate::batch::Batch;
use crate::catalog::{quote_ident, KeyColumn, Table};
use crate::chunking::{Chunk, ChunkRange};
use crate::config::CopySettings;
use crate::connect::{connect, Side};
use crate::error::{db_reason, Error, Result};
use crate::metrics::{ChunkMetrics, Live, RunMetrics, TableMetrics};
use crate::pgcopy::TupleSplitter;
use crate::prepare::{prepare, Origin};
use crate::source::{Reader, Source};
use crate::transform::TableTransform;

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

/// Keys shown per list in a drill-down.
const KEYS_SHOWN: usize = 20;

/// How one table is compared.
#[derive(Clone)]
enum Method {
    InServer {
        source: Arc<Table>,
        target: Arc<Table>,
        /// Each side's record hash of a row (SQL), before the finaliser.
        source_hash: Arc<String>,
        target_hash: Arc<String>,
    },
    Streamed {
        source_table: Arc<Table>,
        target: Arc<Table>,
        transform: Option<Arc<TableTransform>>,
        /// Per target column: left out of the hash (a per-run value the job did not record).
        skip: Arc<Vec<bool>>,
    },
}

/// A checked chunk: table, chunk, source and target sums, drill-down.
type ChunkResult = (usize, Chunk, Sums, Sums, Option<Drill>);

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
    let n = prepared.catalog.tables.len();
    if n == 0 {
        return Err(Error::Config(format!(
            "no table of the source matched the table patterns ({})",
            settings.filter.describe()
        )));
    }
    // hash_record_extended exists from PostgreSQL 14 on; both sides must have it.
    let target_version: i32 = target
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await
        .map_err(|e| crate::error::query_error("reading the target's version", &e))?
        .get(0);
    let record_hash_ok =
        prepared.catalog.server_version_num >= 140_000 && target_version >= 140_000;
    // Text keys split the same on both sides only when both sort text alike.
    let collations = match &prepared.origin {
        Origin::Pg { client, .. } => Some((
            ranges::database_collation(client, "source").await?,
            ranges::database_collation(&target, "target").await?,
        )),
        Origin::My { .. } => None,
    };
    let not_compared: Vec<Vec<String>> = prepared
        .maps
        .iter()
        .map(|m| {
            m.iter()
                .flat_map(|m| &m.per_run)
                .filter(|(_, key)| !recorded.contains_key(key))
                .map(|(column, _)| column.clone())
                .collect()
        })
        .collect();
    let mut methods = Vec::with_capacity(n);
    let mut tasks = Vec::new();
    let mut chunk_counts = vec![0usize; n];
    for (i, count) in chunk_counts.iter_mut().enumerate() {
        let table = prepared.catalog.tables[i].clone();
        let map = prepared.maps[i].as_ref();
        let read = map.map_or(&table, |m| &m.read).clone();
        let plain = map.is_none_or(|m| m.transform.is_none() && m.filter.is_none());
        methods.push(match &prepared.origin {
            Origin::Pg { client, .. } if plain => {
                // Each side's own column types: a target column of another type is hashed
                // by its own rules (and seeds), so it differs rather than fails.
                let src = rowhash::column_types(client, &read, "source").await?;
                let tgt = rowhash::column_types(&target, &table, "target").await?;
                let (s, t) = rowhash::record_hashes(&src, &tgt, record_hash_ok);
                Method::InServer {
                    source: Arc::new(read.clone()),
                    target: Arc::new(table.clone()),
                    source_hash: Arc::new(s),
                    target_hash: Arc::new(t),
                }
            }
            _ => {
                let skip = table
                    .copy_columns()
                    .map(|c| not_compared[i].contains(&c.name))
                    .collect();
                Method::Streamed {
                    source_table: Arc::new(read.clone()),
                    target: Arc::new(table.clone()),
                    transform: map.and_then(|m| m.transform.clone()).map(Arc::new),
                    skip: Arc::new(skip),
                }
            }
        });
        if !table.has_storage() {
            continue;
        }
        // Ranges cut on the source must select the same rows on the target: MySQL compares
        // strings in its own collations and binary keys as hex, and two PostgreSQL databases
        // with different collations sort text differently. Such tables are one chunk.
        let ranges_agree = match (&prepared.origin, &collations) {
            (Origin::My { plan, .. }, _) => {
                plan.reads.get(i).and_then(Option::as_ref).is_none_or(|r| {
                    ranges::mysql_key_kept(
                        r,
                        &settings.mysql.zero_dates.clone().unwrap_or_default(),
                    )
                })
            }
            (Origin::Pg { client, .. }, Some((source_db, target_db))) => {
                match (&read.chunk_key, &table.chunk_key) {
                    (Some(sk), Some(tk)) => {
                        let a =
                            ranges::key_collations(client, &read, sk, source_db, "source").await?;
                        let b = ranges::key_collations(&target, &table, tk, target_db, "target")
                            .await?;
                        a == b
                    }
                    _ => false,
                }
            }
            (Origin::Pg { .. }, None) => false,
        };
        let mut chunks = if table.chunk_key.is_none() || !ranges_agree {
            // Heap positions differ between the two sides: a keyless table is one chunk.
            vec![whole(i)]
        } else {
            match &mut prepared.origin {
                Origin::Pg { client, .. } => {
                    crate::chunking::chunks::plan_table(
                        client,
                        &read,
                        i,
                        opts.chunk_rows,
                        prepared.catalog.server_version_num,
                    )
                    .await?
                }
                Origin::My { conn, plan, .. } => match plan.reads.get(i).and_then(Option::as_ref) {
                    Some(r) => {
                        let chunks = crate::chunking::mysql::plan_chunks(
                            conn,
                            r,
                            &table,
                            i,
                            opts.chunk_rows,
                        )
                        .await?;
                        if ranges::zero_date_bound(r, &chunks) {
                            vec![whole(i)]
                        } else {
                            chunks
                        }
                    }
                    None => vec![whole(i)],
                },
            }
        };
        for c in &mut chunks {
            if matches!(c.range, ChunkRange::Ctid { .. }) {
                c.range = ChunkRange::Whole;
            }
        }
        *count = chunks.len();
        for chunk in chunks {
            if sampled(opts.sample_pct, i, chunk.ordinal) {
                tasks.push(Task { table: i, chunk });
            }
        }
    }
    let source =
        crate::prepare::reading_source(&prepared.origin, &prepared.maps, settings, Vec::new());
    let methods = Arc::new(methods);
    let total_tasks = tasks.len();
    let queue = Arc::new(Mutex::new(tasks));
    let results: Arc<Mutex<Vec<ChunkResult>>> = Arc::default();
    let run_metrics = RunMetrics::new(settings.jobs, settings.channel_batches);
    let table_metrics: Vec<TableMetrics> = prepared
        .catalog
        .tables
        .iter()
        .map(|t| TableMetrics::new(&format!("verify:{}", t.name), 0, Arc::new(Live::default())))
        .collect();
    let table_metrics = Arc::new(table_metrics);
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..settings.jobs.max(1) {
        let (queue, results, methods) = (queue.clone(), results.clone(), methods.clone());
        let (source, settings, opts) = (source.clone(), settings.clone(), opts.clone());
        let (tm, rm) = (table_metrics.clone(), run_metrics.clone());
        workers.spawn(async move {
            let mut reader: Option<Reader> = None;
            let target = connect(&settings.target, Side::Target).await?;
            begin_target(&target).await?;
            loop {
                let Some(task) = queue.lock().await.pop() else {
                    return Ok::<(), Error>(());
                };
                if reader.is_none() {
                    reader = Some(Reader::open(&source).await?);
                }
                let Some(r) = reader.as_mut() else { continue };
                let metrics = ChunkMetrics::new(&tm[task.table], &rm);
                let (src, tgt, drill) = check_range(
                    r,
                    &target,
                    &source,
                    task.table,
                    &methods[task.table],
                    &task.chunk.range,
                    settings.batch_bytes,
                    &metrics,
                    opts.drill_down,
                )
                .await?;
                results
                    .lock()
                    .await
                    .push((task.table, task.chunk, src, tgt, drill));
            }
        });
    }
    // A line every few seconds, so a long verification says how far it is.
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(10));
    tick.tick().await;
    loop {
        tokio::select! {
            done = workers.join_next() => match done {
                Some(done) => {
                    done.map_err(|e| Error::Internal(format!("a verify worker failed: {e}")))??;
                }
                None => break,
            },
            _ = tick.tick() => {
                let r = results.lock().await;
                let differ = r.iter().filter(|(_, _, a, b, _)| a != b).count();
                tracing::info!(
                    "verified {} of {total_tasks} chunks, {differ} mismatched, {:.0} s",
                    r.len(),
                    started.elapsed().as_secs_f64()
                );
            }
        }
    }
    let mut tables: Vec<TableResult> = prepared
        .catalog
        .tables
        .iter()
        .zip(methods.iter())
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
    for (r, t) in tables.iter_mut().zip(&prepared.catalog.tables) {
        for key in crate::state::invalid_keys::on_target(&target, &t.name).await? {
            r.notes.push(key.to_string());
        }
    }
    let mut to_repair = Vec::new();
    let mut results = std::mem::take(&mut *results.lock().await);
    results.sort_by_key(|(t, c, ..)| (*t, c.ordinal));
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
        if opts.repair {
            to_repair.push((t, chunk, r.mismatches.len() - 1));
        }
    }
    // A table's ranges are repaired together, in one target transaction.
    let mut by_table: Vec<(usize, Vec<ChunkRange>, Vec<usize>)> = Vec::new();
    for (t, chunk, at) in to_repair {
        match by_table.last_mut() {
            Some((last, ranges, ats)) if *last == t => {
                ranges.push(chunk.range);
                ats.push(at);
            }
            _ => by_table.push((t, vec![chunk.range], vec![at])),
        }
    }
    for (t, ranges, ats) in by_table {
        let outcome = if tables[t].not_compared.is_empty() {
            repair::repair_table(settings, &source, t, &methods[t], &ranges).await?
        } else {
            // A re-copy would write values evaluated now into those columns.
            let why = format!(
                "not attempted: {} take default_sql/value_sql values the job's state does not \
                 record, and a re-copy would write new ones (give verify the copy's --job)",
                tables[t].not_compared.join(", ")
            );
            (0..ranges.len())
                .map(|_| Repair {
                    deleted: 0,
                    copied: 0,
                    matches: false,
                    committed: false,
                    error: Some(why.clone()),
                })
                .collect()
        };
        for (at, fixed) in ats.into_iter().zip(outcome) {
            tables[t].mismatches[at].repaired = Some(fixed);
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

fn whole(table: usize) -> Chunk {
    Chunk {
        table,
        ordinal: 0,
        range: ChunkRange::Whole,
        estimated_rows: 0,
        estimated_bytes: 0,
        resume_after: None,
    }
}

/// Whether chunk `ordinal` of table `table` is in the sample: a fixed hash, so reruns agree.
fn sampled(pct: Option<f64>, table: usize, ordinal: usize) -> bool {
    let Some(pct) = pct else { return true };
    let mut h = std::hash::DefaultHasher::new();
    (table, ordinal).hash(&mut h);
    ((h.finish() % 10_000) as f64) < pct * 100.0
}

/// The target side reads in one repeatable-read snapshot, like the source.
async fn begin_target(target: &Client) -> Result<()> {
    target
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .await
        .map_err(|e| crate::error::query_error("starting the target's read transaction", &e))
}

fn where_clause(table: &Table, range: &ChunkRange) -> String {
    match range.predicate(table.chunk_key.as_deref()) {
        Some(p) => format!(" WHERE {p}"),
        None => String::new(),
    }
}

/// Count and sum of 64-bit row hashes of a chunk, computed by the server (`record_hash`: the
/// SQL of a row's record hash; `OFFSET 0` keeps the server from computing it twice per row
/// for the finaliser).
async fn in_server(
    client: &Client,
    table: &Table,
    range: &ChunkRange,
    record_hash: &str,
) -> Result<Sums> {
    let sql = format!(
        "SELECT count(*), coalesce(sum({}), 0)::text FROM (SELECT {record_hash} AS h FROM ONLY {}{} OFFSET 0) s",
        rowhash::finalise("h"),
        table.name.quoted(),
        where_clause(table, range)
    );
    let row = client
        .query_one(&sql, &[])
        .await
        .map_err(|e| Error::Query {
            what: format!("checksumming {} {range}", table.name),
            reason: db_reason(&e),
        })?;
    let rows: i64 = row.get(0);
    let sum: String = row.get(1);
    // The sum of signed 64-bit values fits an i128; offset it to compare as unsigned.
    let sum: i128 = sum.parse().unwrap_or(0);
    Ok(Sums {
        rows: rows as u64,
        sum: sum as u128,
    })
}

/// Key text and row hash of every row of a chunk, for a drill-down.
async fn row_hashes(
    client: &Client,
    table: &Table,
    labels: &[String],
    range: &ChunkRange,
    record_hash: &str,
) -> Result<HashMap<String, u64>> {
    let key = key_expr(table, labels);
    let sql = format!(
        "SELECT k, {} FROM (SELECT {key} AS k, {record_hash} AS h FROM ONLY {}{} OFFSET 0) s",
        rowhash::finalise("h"),
        table.name.quoted(),
        where_clause(table, range)
    );
    let rows = client.query(&sql, &[]).await.map_err(|e| Error::Query {
        what: format!("reading the row hashes of {} {range}", table.name),
        reason: db_reason(&e),
    })?;
    Ok(rows
        .iter()
        .map(|r| (r.get::<_, String>(0), r.get::<_, i64>(1) as u64))
        .collect())
}

/// `id=1, k=x` rendered by the server, so both sides name keys alike (`labels`: the target's
/// key column names, which a rename may have changed).
fn key_expr(table: &Table, labels: &[String]) -> String {
    match &table.chunk_key {
        Some(key) => {
            let parts: Vec<String> = key
                .iter()
                .zip(labels)
                .map(|(k, label)| {
                    format!(
                        "{} || '=' || coalesce({}::text, 'NULL')",
                        crate::catalog::quote_literal(label),
                        quote_ident(&k.name)
                    )
                })
                .collect();
            parts.join(" || ', ' || ")
        }
        // No key: the row itself names it (duplicates count once here; the sums saw them all).
        None => {
            let cols: Vec<String> = table.copy_columns().map(|c| quote_ident(&c.name)).collect();
            format!("'row ' || left(ROW({})::text, 120)", cols.join(", "))
        }
    }
}

/// Differences between two sides' key -> row hash maps.
#[derive(Debug, Default)]
struct Drill {
    missing: Vec<String>,
    extra: Vec<String>,
    different: Vec<String>,
}

fn compare(src: HashMap<String, u64>, tgt: HashMap<String, u64>) -> Drill {
    let mut d = Drill::default();
    for (k, h) in &src {
        match tgt.get(k) {
            None => d.missing.push(k.clone()),
            Some(g) if g != h => d.different.push(k.clone()),
            _ => {}
        }
    }
    for k in tgt.keys() {
        if !src.contains_key(k) {
            d.extra.push(k.clone());
        }
    }
    for list in [&mut d.missing, &mut d.extra, &mut d.different] {
        list.sort();
        list.truncate(KEYS_SHOWN);
    }
    d
}

/// Hashes tuples of the target's shape; `jsonb` fields are compared by value (the server
/// normalises jsonb text, a MySQL source's JSON arrives as MySQL wrote it), through their
/// canonical bytes ([`json::canonical`]) and those bytes' length.
struct TupleHasher {
    jsonb: Vec<bool>,
    /// Fields left out of the hash.
    skip: Vec<bool>,
    key: Vec<(usize, String, String)>,
    fields: Vec<(usize, i32)>,
    /// Canonical bytes of the current `jsonb` value, reused from row to row.
    scratch: Vec<u8>,
}

impl TupleHasher {
    fn new(target: &Table, skip: &[bool]) -> Self {
        let cols: Vec<&crate::catalog::Column> = target.copy_columns().collect();
        let key = target
            .chunk_key
            .iter()
            .flatten()
            .filter_map(|k: &KeyColumn| {
                let p = cols.iter().position(|c| c.name == k.name)?;
                Some((p, k.name.clone(), k.type_sql.clone()))
            })
            .collect();
        TupleHasher {
            jsonb: cols.iter().map(|c| c.type_sql == "jsonb").collect(),
            skip: skip.to_vec(),
            key,
            fields: Vec::new(),
            scratch: Vec::new(),
        }
    }

    /// Adds every tuple of `data` to `sums` (and, for a drill-down, to `rows`).
    fn add(&mut self, data: &[u8], sums: &mut Sums, mut rows: Option<&mut HashMap<String, u64>>) {
        let mut pos = 0;
        while pos < data.len() {
            let Some(len) = crate::transform::split_tuple(&data[pos..], &mut self.fields) else {
                return;
            };
            let tuple = &data[pos..pos + len];
            let mut h = std::hash::DefaultHasher::new();
            for (i, &(start, l)) in self.fields.iter().enumerate() {
                if self.skip.get(i).copied().unwrap_or(false) {
                    continue;
                }
                if l <= 0 {
                    // NULL (-1) or empty.
                    l.hash(&mut h);
                    continue;
                }
                let v = &tuple[start..start + l as usize];
                // A jsonb field is its version byte, then the text.
                let text = v.get(1..).unwrap_or(&[]);
                self.scratch.clear();
                if self.jsonb.get(i).copied().unwrap_or(false)
                    && json::canonical(text, &mut self.scratch)
                {
                    // The length of what is hashed, never the raw text's.
                    (-2i32).hash(&mut h);
                    self.scratch.hash(&mut h);
                } else {
                    l.hash(&mut h);
                    v.hash(&mut h);
                }
            }
            let row = h.finish();
            sums.rows += 1;
            sums.sum = sums.sum.wrapping_add(u128::from(row));
            if let Some(map) = rows.as_deref_mut() {
                let key = if self.key.is_empty() {
                    format!("row hash {row:016x}")
                } else {
                    self.key
                        .iter()
                        .map(|(p, name, ty)| {
                            let v = self
                                .fields
                                .get(*p)
                                .and_then(|&(s, l)| (l >= 0).then(|| &tuple[s..s + l as usize]));
                            format!("{name}={}", crate::transform::key_text(v, ty))
                        })
                        .collect::<Vec<_>>()
                        .join(", ")
                };
                map.insert(key, row);
            }
            pos += len;
        }
    }
}

type Side2 = (Sums, Option<HashMap<String, u64>>);

/// The source side of a streamed chunk: the copy's reader (and transform), hashed here.
#[allow(clippy::too_many_arguments)]
async fn streamed_source(
    reader: &mut Reader,
    source: &Source,
    t: usize,
    table: &Table,
    transform: Option<&TableTransform>,
    range: &ChunkRange,
    batch_bytes: usize,
    metrics: &ChunkMetrics,
    target: &Table,
    skip: &[bool],
    drill: bool,
) -> Result<Side2> {
    let (tx, mut rx) = mpsc::channel::<Batch>(4);
    let read = reader.read_chunk(source, t, table, range, None, batch_bytes, tx, metrics);
    let hash = async {
        let mut hasher = TupleHasher::new(target, skip);
        let mut sums = Sums::default();
        let mut rows = drill.then(HashMap::new);
        while let Some(batch) = rx.recv().await {
            let batch = match transform {
                Some(tr) => tr.apply(batch)?.0,
                None => batch,
            };
            hasher.add(&batch.data, &mut sums, rows.as_mut());
        }
        Ok::<_, Error>((sums, rows))
    };
    let (read, hashed) = tokio::join!(read, hash);
    read?;
    hashed
}

/// The target side of a streamed chunk: its range as binary tuples, hashed here.
async fn streamed_target(
    client: &Client,
    table: &Table,
    skip: &[bool],
    range: &ChunkRange,
    drill: bool,
) -> Result<Side2> {
    let cols: Vec<String> = table.copy_columns().map(|c| quote_ident(&c.name)).collect();
    let sql = format!(
        "COPY (SELECT {} FROM ONLY {}{}) TO STDOUT (FORMAT binary)",
        cols.join(", "),
        table.name.quoted(),
        where_clause(table, range)
    );
    let fail = |e: &tokio_postgres::Error| Error::Query {
        what: format!("reading {} {range} on the target", table.name),
        reason: db_reason(e),
    };
    let stream = client.copy_out(&sql).await.map_err(|e| fail(&e))?;
    futures_util::pin_mut!(stream);
    let mut splitter = TupleSplitter::new(cols.len(), 1 << 20);
    let mut hasher = TupleHasher::new(table, skip);
    let mut sums = Sums::default();
    let mut rows = drill.then(HashMap::new);
    while let Some(piece) = stream.next().await {
        let piece = piece.map_err(|e| fail(&e))?;
        splitter.push(&piece)?;
        while let Some(b) = splitter.take_full() {
            hasher.add(&b.data, &mut sums, rows.as_mut());
        }
    }
    if let Some(b) = splitter.finish()? {
        hasher.add(&b.data, &mut sums, rows.as_mut());
    }
    Ok((sums, rows))
}

/// Counts and checksums of one range on both sides, by the table's method; with `drill`, the
/// keys that differ when the sums do.
#[allow(clippy::too_many_arguments)]
async fn check_range(
    reader: &mut Reader,
    target: &Client,
    source: &Source,
    t: usize,
    method: &Method,
    range: &ChunkRange,
    batch_bytes: usize,
    metrics: &ChunkMetrics,
    drill: bool,
) -> Result<(Sums, Sums, Option<Drill>)> {
    match method {
        Method::InServer {
            source: s,
            target: tt,
            source_hash,
            target_hash,
        } => {
            let Reader::Pg(pg) = reader else {
                return Err(Error::Internal("in-server check on a MySQL source".into()));
            };
            let (a, b) = tokio::join!(
                in_server(pg.client(), s, range, source_hash),
                in_server(target, tt, range, target_hash)
            );
            let (a, b) = (a?, b?);
            if a == b || !drill {
                return Ok((a, b, None));
            }
            let labels = tt.key_names();
            let (x, y) = tokio::join!(
                row_hashes(pg.client(), s, &labels, range, source_hash),
                row_hashes(target, tt, &labels, range, target_hash)
            );
            Ok((a, b, Some(compare(x?, y?))))
        }
        Method::Streamed {
            source_table,
            target: tt,
            transform,
            skip,
        } => {
            let (a, b) = tokio::join!(
                streamed_source(
                    reader,
                    source,
                    t,
                    source_table,
                    transform.as_deref(),
                    range,
                    batch_bytes,
                    metrics,
                    tt,
                    skip,
                    drill,
                ),
                streamed_target(target, tt, skip, range, drill)
            );
            let ((a, x), (b, y)) = (a?, b?);
            let drill = match (x, y) {
                (Some(x), Some(y)) if a != b => Some(compare(x, y)),
                _ => None,
            };
            Ok((a, b, drill))
        }
    }
}

/// The report as a table per table, for the terminal.
pub fn render(report: &VerifyReport) -> String {
    use std::fmt::Write as _;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<40} {:>10} {:>12} {:>12} {:>9} {:>10}",
        "table", "method", "source rows", "target rows", "chunks", "mismatched"
    );
    for t in &report.tables {
        let _ = writeln!(
            out,
            "{:<40} {:>10} {:>12} {:>12} {:>9} {:>10}",
            t.table,
            t.method,
            t.source_rows,
            t.target_rows,
            format!("{}/{}", t.matched, t.checked),
            t.mismatches.len()
        );
        for note in &t.notes {
            let _ = writeln!(out, "  note: {note}");
        }
        if !t.not_compared.is_empty() {
            let _ = writeln!(
                out,
                "  not compared: {} (default_sql/value_sql values the job's state does not record; give verify the copy's --job)",
                t.not_compared.join(", ")
            );
        }
        for m in &t.mismatches {
            let _ = writeln!(
                out,
                "  mismatch in {}: source {} rows, target {} rows",
                m.range, m.source_rows, m.target_rows
            );
            match &m.repaired {
                Some(r) if r.committed => {
                    let _ = writeln!(
                        out,
                        "    repaired: {} rows deleted, {} copied; now equal",
                        r.deleted, r.copied
                    );
                }
                Some(r) => {
                    let why = match (&r.error, r.matches) {
                        (Some(e), _) => e.clone(),
                        (None, false) => {
                            "rolled back: the range still differed after re-copying".into()
                        }
                        (None, true) => {
                            "rolled back: another range of the table still differed after \
                             re-copying"
                                .into()
                        }
                    };
                    let _ = writeln!(out, "    not repaired, the target is unchanged: {why}");
                }
                None => {}
            }
            for (what, keys) in [
                ("missing on the target", &m.missing),
                ("extra on the target", &m.extra),
                ("different", &m.different),
            ] {
                if !keys.is_empty() {
                    let _ = writeln!(out, "    {what}: {}", keys.join("; "));
                }
            }
        }
    }
    let sample = report
        .sample_pct
        .map(|p| format!(" (sample: {p}% of chunks)"))
        .unwrap_or_default();
    let repaired = report
        .tables
        .iter()
        .flat_map(|t| &t.mismatches)
        .filter(|m| m.repaired.as_ref().is_some_and(|r| r.committed))
        .count();
    let verdict = match (report.equal, repaired) {
        (true, 0) => "source and target are equal".to_string(),
        (true, n) => format!("source and target are equal after repairing {n} range(s)"),
        (false, _) => "source and target DIFFER".to_string(),
    };
    let _ = write!(out, "{verdict} in {:.1} s{sample}", report.seconds);
    out
}
