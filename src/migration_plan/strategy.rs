//! Section 4: parallelism, chunks, the throughput probe, a rough duration estimate and the
//! rollback point after each phase.
//!
//! Invariants: the estimate is only as good as its inputs and says how it was computed; no
//! throughput figure, no estimate.

use super::execution;
use super::model::{Estimate, Strategy, TablePlan, Throughput};
use super::preflight;
use crate::catalog::{Catalog, TargetFacts};
use crate::config::CopySettings;

/// Section 4 from the tables' chunks and the throughput probe.
pub(super) fn strategy(
    settings: &CopySettings,
    catalog: &Catalog,
    facts: &TargetFacts,
    tables: &[TablePlan],
    throughput: Option<Throughput>,
) -> Strategy {
    let estimate = throughput
        .as_ref()
        .and_then(|t| estimate(t, catalog, tables, settings));
    Strategy {
        jobs: settings.jobs,
        index_jobs: settings.index_jobs,
        chunk_rows: settings.chunk_rows,
        total_chunks: tables.iter().map(|t| t.chunks).sum(),
        throughput,
        estimate,
        rollback_points: execution::rollback_points(settings, catalog, facts),
    }
}

/// Data time from the probe's rate, post-data time from howdah's benchmark constants.
fn estimate(
    tp: &Throughput,
    catalog: &Catalog,
    tables: &[TablePlan],
    settings: &CopySettings,
) -> Option<Estimate> {
    let rate = tp.storage_bytes_per_sec;
    if !(rate.is_finite() && rate > 0.0) {
        return None;
    }
    let total: f64 = tables.iter().map(|t| t.table_bytes as f64).sum();
    let chunks: usize = tables.iter().map(|t| t.chunks).sum();
    let lanes = settings.jobs.min(chunks.max(1)) as f64;
    // No lane can finish before its largest chunk: a big unsplit table sets a floor.
    let largest_chunk = tables
        .iter()
        .filter(|t| t.chunks > 0)
        .map(|t| t.table_bytes as f64 / t.chunks as f64)
        .fold(0.0, f64::max);
    let uncapped = (total / (rate * lanes)).max(largest_chunk / rate);
    // Under --max-rate no copy is faster than its data over the cap (table bytes stand in
    // for tuple bytes; rows from the statistics).
    let cap = settings.max_rate.flatten();
    let capped = cap.map(|c| match c.unit {
        crate::rate::RateUnit::Bytes => total / c.per_sec as f64,
        crate::rate::RateUnit::Rows => {
            catalog
                .tables
                .iter()
                .map(|t| crate::chunking::chunks::estimated_rows(t).max(0) as f64)
                .sum::<f64>()
                / c.per_sec as f64
        }
    });
    let data = uncapped.max(capped.unwrap_or(0.0));
    let post: f64 = catalog
        .tables
        .iter()
        .map(crate::chunking::order::build_cost)
        .sum::<f64>()
        / settings.index_jobs.max(1) as f64;
    let under_cap = match (cap, capped) {
        (Some(c), Some(secs)) => format!(
            "; under --max-rate {}, the data takes at least {:.0} s (the data over the cap)",
            c.describe(),
            secs
        ),
        _ => String::new(),
    };
    Some(Estimate {
        max_rate: cap.map(|c| c.describe()),
        data_seconds: data,
        post_data_seconds: post,
        total_seconds: data + post,
        method: format!(
            "rough: the probe read {}/s of source storage from {} (one session, source side only); \
             data time = {} of table data / ({}/s x {} lanes), at least the largest chunk / the probe rate; \
             post-data time = {} index entries x 0.32 us per build (howdah's benchmark) / {} builders. \
             It assumes the target keeps up (its COPY costs about twice the source's CPU), that lanes scale linearly, \
             and that the probed table is typical; the first copy's own summary gives the real rate{}",
            preflight::bytes(rate as i64),
            tp.table,
            preflight::bytes(total as i64),
            preflight::bytes(rate as i64),
            lanes,
            catalog
                .tables
                .iter()
                .map(|t| {
                    let builds = t.indexes.len()
                        + t.constraints.len()
                        + usize::from(t.primary_key.is_some());
                    crate::chunking::chunks::estimated_rows(t).max(0) as u64 * builds as u64
                })
                .sum::<u64>(),
            settings.index_jobs,
            under_cap
        ),
    })
}
