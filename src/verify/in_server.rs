//! The in-server method: a PostgreSQL table copied without a transform has the same types
//! on both sides, so each side computes `count(*)` and a sum of 64-bit row hashes over the
//! chunk's key range ([`rowhash`](super::rowhash)); only two numbers travel. A drill-down
//! reads each row's key text and hash.
//!
//! Invariants: both sides run the same query shape over `ONLY` the table and the same range
//! predicate; each side hashes its own column types ([`InServerTable`]), so a target column of
//! another type differs rather than fails; keys are rendered by the servers under the target's
//! key names, so both sides name a key alike.

use std::collections::HashMap;

use tokio_postgres::Client;

use super::compare::{compare, Drill};
use super::{rowhash, where_clause, Sums};
use crate::catalog::{quote_ident, Table};
use crate::chunking::ChunkRange;
use crate::error::{db_reason, Error, Result};

/// A table compared in the servers.
pub(super) struct InServerTable {
    /// The table as read from the source.
    pub source: Table,
    /// The target table.
    pub target: Table,
    /// The source's record hash of a row (SQL), before the finaliser.
    pub source_hash: String,
    /// The target's record hash of a row (SQL), before the finaliser.
    pub target_hash: String,
}

/// Counts and checksums of one range on both sides; with `drill`, the keys that differ when
/// the sums do.
pub(super) async fn check(
    source: &Client,
    target: &Client,
    table: &InServerTable,
    range: &ChunkRange,
    drill: bool,
) -> Result<(Sums, Sums, Option<Drill>)> {
    let (s, tt) = (&table.source, &table.target);
    let (a, b) = tokio::join!(
        checksum(source, s, range, &table.source_hash),
        checksum(target, tt, range, &table.target_hash)
    );
    let (a, b) = (a?, b?);
    if a == b || !drill {
        return Ok((a, b, None));
    }
    let labels = tt.key_names();
    let (x, y) = tokio::join!(
        row_hashes(source, s, &labels, range, &table.source_hash),
        row_hashes(target, tt, &labels, range, &table.target_hash)
    );
    Ok((a, b, Some(compare(x?, y?))))
}

/// Count and sum of 64-bit row hashes of a chunk, computed by the server (`record_hash`: the
/// SQL of a row's record hash; `OFFSET 0` keeps the server from computing it twice per row
/// for the finaliser).
async fn checksum(
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
