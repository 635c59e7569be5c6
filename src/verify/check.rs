//! Checking the chunks: a pool of `--jobs` workers, each with its own target session in one
//! repeatable-read snapshot and its own source reader in the run's snapshot, takes chunks off
//! a shared queue and compares each by its table's method; a line every ten seconds says how
//! far it is.
//!
//! Invariants: every queued chunk is checked exactly once or the run fails with the first
//! worker error; the results come back sorted by table and chunk ordinal, so the report does
//! not depend on which worker checked what.

use std::sync::Arc;

use tokio::sync::Mutex;
use tokio_postgres::Client;

use super::compare::{compare, Drill};
use super::stream::ReadSide;
use super::{in_server, stream, ChunkResult, Method, Sums, Task};
use crate::catalog::Catalog;
use crate::chunking::ChunkRange;
use crate::config::CopySettings;
use crate::connect::{connect, Side};
use crate::error::{Error, Result};
use crate::metrics::{ChunkMetrics, Live, RunMetrics, TableMetrics};
use crate::source::postgres::TABLES_PER_TRANSACTION;
use crate::source::{Reader, Reading};

/// Checks every task on `--jobs` workers; the results sorted by table and chunk. Progress
/// lines count seconds from `started`, the run's start.
pub(super) async fn check_chunks(
    settings: &CopySettings,
    drill_down: bool,
    source: &Reading,
    catalog: &Catalog,
    methods: &Arc<Vec<Method>>,
    tasks: Vec<Task>,
    started: std::time::Instant,
) -> Result<Vec<ChunkResult>> {
    let total_tasks = tasks.len();
    let queue = Arc::new(Mutex::new(tasks));
    let results: Arc<Mutex<Vec<ChunkResult>>> = Arc::default();
    let run_metrics = RunMetrics::new(settings.jobs, settings.channel_batches);
    let table_metrics: Vec<TableMetrics> = catalog
        .tables
        .iter()
        .map(|t| TableMetrics::new(&format!("verify:{}", t.name), 0, Arc::new(Live::default())))
        .collect();
    let table_metrics = Arc::new(table_metrics);
    let mut workers = tokio::task::JoinSet::new();
    for _ in 0..settings.jobs.max(1) {
        let (queue, results, methods) = (queue.clone(), results.clone(), methods.clone());
        let (source, settings) = (source.clone(), settings.clone());
        let (tm, rm) = (table_metrics.clone(), run_metrics.clone());
        workers.spawn(async move {
            let mut reader: Option<Reader> = None;
            let target = connect(&settings.target, Side::Target).await?;
            begin_target(&target).await?;
            // Tables read in the target's transaction: each keeps a lock until it ends.
            let mut locked: Vec<usize> = Vec::new();
            loop {
                let Some(task) = queue.lock().await.pop() else {
                    return Ok::<(), Error>(());
                };
                if !locked.contains(&task.table) {
                    if locked.len() >= TABLES_PER_TRANSACTION {
                        // The target is not written while it is verified: a new snapshot
                        // sees what the old one saw, with the locks of fewer tables.
                        target.batch_execute("COMMIT").await.map_err(|e| {
                            crate::error::query_error("ending the target's read transaction", &e)
                        })?;
                        begin_target(&target).await?;
                        locked.clear();
                    }
                    locked.push(task.table);
                }
                if reader.is_none() {
                    reader = Some(Reader::open(&source.source).await?);
                }
                let Some(r) = reader.as_mut() else { continue };
                let metrics = ChunkMetrics::new(&tm[task.table], &rm);
                let mut side = ReadSide {
                    reader: r,
                    source: &source,
                    batch_bytes: settings.batch_bytes,
                    metrics: &metrics,
                };
                let (src, tgt, drill) = check_range(
                    &mut side,
                    &target,
                    task.table,
                    &methods[task.table],
                    &task.chunk.range,
                    drill_down,
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
    let mut results = std::mem::take(&mut *results.lock().await);
    results.sort_by_key(|(t, c, ..)| (*t, c.ordinal));
    Ok(results)
}

/// The target side reads in one repeatable-read snapshot, like the source.
async fn begin_target(target: &Client) -> Result<()> {
    target
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .await
        .map_err(|e| crate::error::query_error("starting the target's read transaction", &e))
}

/// Counts and checksums of one range of table `t` on both sides, by the table's method;
/// with `drill`, the keys that differ when the sums do.
pub(super) async fn check_range(
    side: &mut ReadSide<'_>,
    target: &Client,
    t: usize,
    method: &Method,
    range: &ChunkRange,
    drill: bool,
) -> Result<(Sums, Sums, Option<Drill>)> {
    match method {
        Method::InServer(table) => {
            let Reader::Pg(pg) = &mut *side.reader else {
                return Err(Error::Internal("in-server check on a MySQL source".into()));
            };
            pg.bound_locks(&table.source).await?;
            in_server::check(pg.client(), target, table, range, drill).await
        }
        Method::Streamed(table) => {
            let (a, b) = tokio::join!(
                stream::source_side(side, t, table, range, drill),
                stream::target_side(target, &table.target, &table.skip, range, drill)
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
