//! What verify checks: how each table is compared (in the servers or streamed) and which of
//! its chunks, cut as the copy cuts them where both sides select the same rows for a range.
//!
//! Invariants: a table is compared in the servers only when it is a PostgreSQL table read
//! without a transform or filter; a table is cut into key ranges only where a range selects
//! the same rows on both sides (same key collations; MySQL keys the target compares alike),
//! else it is one chunk; a sample is a fixed hash of (table, chunk), so a rerun checks the
//! same chunks.

use std::hash::{Hash, Hasher};

use tokio_postgres::Client;

use super::in_server::InServerTable;
use super::stream::StreamedTable;
use super::{ranges, rowhash, Method, Task, VerifyOptions};
use crate::catalog::Table;
use crate::chunking::{Chunk, ChunkRange};
use crate::config::CopySettings;
use crate::error::Result;
use crate::mapping::TableMapping;
use crate::prepare::{Origin, Prepared};
use crate::state::values::SqlValues;

/// What the run checks, per table (by number).
pub(super) struct Scope {
    /// How each table is compared.
    pub methods: Vec<Method>,
    /// The chunks to check, all tables.
    pub tasks: Vec<Task>,
    /// Chunks each table is cut into (checked or not).
    pub chunk_counts: Vec<usize>,
    /// Target columns left out of the comparison: per-run values the job did not record.
    pub not_compared: Vec<Vec<String>>,
}

/// Picks each table's method and cuts its chunks; `recorded` are the per-run values the
/// copy's job recorded.
pub(super) async fn scope(
    prepared: &mut Prepared,
    target: &Client,
    recorded: &SqlValues,
    settings: &CopySettings,
    opts: &VerifyOptions,
) -> Result<Scope> {
    let n = prepared.catalog.tables.len();
    // hash_record_extended exists from PostgreSQL 14 on; both sides must have it.
    let target_version: i32 = target
        .query_one("SELECT current_setting('server_version_num')::int", &[])
        .await
        .map_err(|e| crate::error::query_error("reading the target's version", &e))?
        .get(0);
    let record_hash_ok =
        prepared.catalog.server_version_num >= 140_000 && target_version >= 140_000;
    // Text keys split the same on both sides only when both sort text alike.
    let collations = ranges::Collations::read(&prepared.origin, target).await?;
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
        let how = Compare {
            map,
            read: &read,
            table: &table,
            skipped: &not_compared[i],
        };
        methods.push(method(&prepared.origin, target, &how, record_hash_ok).await?);
        if !table.has_storage() {
            continue;
        }
        // Ranges cut on the source must select the same rows on the target: MySQL compares
        // strings in its own collations and binary keys as hex, and two PostgreSQL databases
        // with different collations sort text differently. Such tables are one chunk.
        let zero_dates = settings.mysql.zero_dates.clone().unwrap_or_default();
        let agree = collations
            .agree(&prepared.origin, target, i, &read, &table, &zero_dates)
            .await?;
        let chunks = cut(prepared, i, &read, &table, agree, opts.chunk_rows).await?;
        *count = chunks.len();
        for chunk in chunks {
            if sampled(opts.sample_pct, i, chunk.ordinal) {
                tasks.push(Task { table: i, chunk });
            }
        }
    }
    Ok(Scope {
        methods,
        tasks,
        chunk_counts,
        not_compared,
    })
}

/// One table as verify compares it.
struct Compare<'a> {
    /// Its mapping, if the job file has one for it.
    map: Option<&'a TableMapping>,
    /// The table as read from the source.
    read: &'a Table,
    /// The target table.
    table: &'a Table,
    /// Target columns left out of the comparison.
    skipped: &'a [String],
}

/// In the servers for a PostgreSQL table read as it is, else streamed.
async fn method(
    origin: &Origin,
    target: &Client,
    how: &Compare<'_>,
    record_hash_ok: bool,
) -> Result<Method> {
    let plain = how
        .map
        .is_none_or(|m| m.transform.is_none() && m.filter.is_none());
    Ok(match origin.postgres() {
        Some(client) if plain => {
            // Each side's own column types: a target column of another type is hashed by its
            // own rules (and seeds), so it differs rather than fails.
            let src = rowhash::column_types(client, how.read, "source").await?;
            let tgt = rowhash::column_types(target, how.table, "target").await?;
            let (s, t) = rowhash::record_hashes(&src, &tgt, record_hash_ok);
            Method::InServer(std::sync::Arc::new(InServerTable {
                source: how.read.clone(),
                target: how.table.clone(),
                source_hash: s,
                target_hash: t,
            }))
        }
        _ => {
            let skip = how
                .table
                .copy_columns()
                .map(|c| how.skipped.contains(&c.name))
                .collect();
            Method::Streamed(std::sync::Arc::new(StreamedTable {
                source_table: how.read.clone(),
                target: how.table.clone(),
                transform: how.map.and_then(|m| m.transform.clone()),
                skip,
            }))
        }
    })
}

/// The chunks of table `i`, cut as the copy cuts them when the two sides' ranges `agree`,
/// else (and for a keyless table, whose heap positions differ between the sides) one chunk.
async fn cut(
    prepared: &mut Prepared,
    i: usize,
    read: &Table,
    table: &Table,
    agree: bool,
    chunk_rows: u64,
) -> Result<Vec<Chunk>> {
    if table.chunk_key.is_none() || !agree {
        return Ok(vec![whole(i)]);
    }
    let version = prepared.catalog.server_version_num;
    let origin = &mut prepared.origin;
    let mut chunks = origin
        .plan_table(i, read, table, chunk_rows, version)
        .await?;
    if chunks.is_empty() || ranges::unreadable_bound(origin, i, &chunks) {
        chunks = vec![whole(i)];
    }
    for c in &mut chunks {
        if matches!(c.range, ChunkRange::Ctid { .. }) {
            c.range = ChunkRange::Whole;
        }
    }
    Ok(chunks)
}

fn whole(table: usize) -> Chunk {
    Chunk::one(table, ChunkRange::Whole, 0, 0)
}

/// Whether chunk `ordinal` of table `table` is in the sample: a fixed hash, so reruns agree.
fn sampled(pct: Option<f64>, table: usize, ordinal: usize) -> bool {
    let Some(pct) = pct else { return true };
    let mut h = std::hash::DefaultHasher::new();
    (table, ordinal).hash(&mut h);
    ((h.finish() % 10_000) as f64) < pct * 100.0
}
