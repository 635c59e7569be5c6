//! `howdah verify` of large objects: both sides cut into the same chunks of OIDs, each chunk
//! compared by its count of objects and a checksum of their OIDs, sizes and bytes.
//!
//! Chunks are cut at the source's OIDs (at most [`OBJECTS_PER_CHUNK`] source objects each) and
//! cover the whole OID space between them, so a target object that the source lacks falls in
//! some chunk and makes it differ. Bytes are hashed by the servers (`md5` of each piece read
//! with `lo_get` at an offset), so only digests travel and no object is held whole.

use tokio_postgres::Client;

use super::{Mismatch, TableResult};
use crate::error::Result;
use crate::source::large_objects as lo_source;
use crate::state::fnv1a;

/// Source objects per verified chunk.
pub const OBJECTS_PER_CHUNK: usize = 1000;

/// One side's figures for a chunk.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Sums {
    objects: u64,
    hash: u64,
}

/// Compares the large objects of both sides (`source` in the verification's snapshot);
/// `None` when neither side has any.
pub async fn check(source: &Client, target: &Client) -> Result<Option<TableResult>> {
    let (src_oids, tgt_oids) = tokio::try_join!(lo_source::list(source), lo_source::list(target))?;
    if src_oids.is_empty() && tgt_oids.is_empty() {
        return Ok(None);
    }
    // Upper bounds (inclusive) of the chunks; the last one reaches the end of the OID space.
    let mut uppers: Vec<u32> = src_oids
        .chunks(OBJECTS_PER_CHUNK)
        .filter_map(|c| c.last().copied())
        .collect();
    match uppers.last_mut() {
        Some(last) => *last = u32::MAX,
        None => uppers.push(u32::MAX),
    }
    let mut result = TableResult {
        table: "large objects".into(),
        method: "large-objects",
        source_rows: 0,
        target_rows: 0,
        chunks: uppers.len(),
        checked: 0,
        matched: 0,
        mismatches: Vec::new(),
        notes: Vec::new(),
        not_compared: Vec::new(),
    };
    let (mut si, mut ti) = (0usize, 0usize);
    let mut lower: Option<u32> = None;
    for upper in uppers {
        let s_end = si + src_oids[si..].partition_point(|&o| o <= upper);
        let t_end = ti + tgt_oids[ti..].partition_point(|&o| o <= upper);
        let (s, t) = tokio::try_join!(
            sums(source, &src_oids[si..s_end]),
            sums(target, &tgt_oids[ti..t_end])
        )?;
        result.checked += 1;
        result.source_rows += s.objects;
        result.target_rows += t.objects;
        if s == t {
            result.matched += 1;
        } else {
            let range = format!(
                "large objects {}..{}",
                lower.map_or("0".to_string(), |l| (l + 1).to_string()),
                upper
            );
            result.mismatches.push(Mismatch {
                range,
                lower: lower.map(|l| vec![l.to_string()]),
                upper: Some(vec![upper.to_string()]),
                source_rows: s.objects,
                target_rows: t.objects,
                missing: Vec::new(),
                extra: Vec::new(),
                different: Vec::new(),
                repaired: None,
            });
        }
        (si, ti, lower) = (s_end, t_end, Some(upper));
    }
    Ok(Some(result))
}

/// Count and checksum of `oids` on one side.
async fn sums(client: &Client, oids: &[u32]) -> Result<Sums> {
    let mut hash = fnv1a(&[]);
    for &oid in oids {
        let (size, md5s) = lo_source::digest(client, oid).await?;
        hash = fnv1a(&[
            &hash.to_le_bytes(),
            &oid.to_le_bytes(),
            &size.to_le_bytes(),
            md5s.as_bytes(),
        ]);
    }
    Ok(Sums {
        objects: oids.len() as u64,
        hash,
    })
}
