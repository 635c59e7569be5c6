//! The order in which tables are copied, and how finely they are cut.
//!
//! Lanes take tables longest copy first (LPT), all lanes on one table before the next, so the
//! longest copy never starts late and the run ends on short tables. Measured on the 1.5 GB
//! benchmark, 2 lanes, 3 runs each (docs/design.md): spreading lanes across tables with
//! 500k-row chunks 23.7 s; Johnson's two-stage rule (copy, then index builds) 21.5 s; longest
//! copy first 20.7 s. Lanes and index builders share the machine's cores, so the total work is
//! fixed and what is left to win is not starting the longest copy late.

use crate::catalog::Table;

/// Bytes per second one lane copies (heap + TOAST), from the benchmark on 2 cores.
const COPY_BYTES_PER_SEC: f64 = 100e6;
/// Seconds to build one B-tree entry, from the benchmark (10M-row index in ~3.2 s).
const BUILD_SECS_PER_ROW: f64 = 0.32e-6;

/// Estimated seconds to copy a table's rows on one lane.
pub fn copy_cost(table: &Table) -> f64 {
    table.size_bytes.max(0) as f64 / COPY_BYTES_PER_SEC
}

/// Estimated seconds of post-data work: one index build per key and index, plus constraint
/// checks that scan the table.
pub fn build_cost(table: &Table) -> f64 {
    let builds =
        table.indexes.len() + table.constraints.len() + usize::from(table.primary_key.is_some());
    crate::chunking::chunks::estimated_rows(table).max(0) as f64
        * BUILD_SECS_PER_ROW
        * builds as f64
}

/// Largest chunk `auto_chunk_rows` makes: bounds the work one chunk holds, whatever the table.
const AUTO_MAX_CHUNK_ROWS: u64 = 10_000_000;

/// One lane's fair share of the whole copy, in seconds of [`copy_cost`].
pub fn lane_share(tables: &[Table], jobs: usize) -> f64 {
    tables.iter().map(copy_cost).sum::<f64>() / jobs.max(1) as f64
}

/// Rows per chunk when the user did not choose: a table is split only when copying it alone
/// would take longer than one lane's share of the whole run (and into pieces of at most
/// 10M rows). Splitting costs: keyset ranges read through the key index instead of a sequential
/// scan, and only a single-chunk table can be loaded with `COPY FREEZE`; on the 2-core benchmark
/// whole-table chunks made the clone 2 s faster than 500k-row chunks.
pub fn auto_chunk_rows(table: &Table, lane_share: f64) -> u64 {
    let rows = crate::chunking::chunks::estimated_rows(table).max(0) as u64;
    let pieces = (copy_cost(table) / lane_share.max(f64::MIN_POSITIVE))
        .ceil()
        .max(1.0) as u64;
    rows.div_ceil(pieces).clamp(1, AUTO_MAX_CHUNK_ROWS)
}

/// Table indexes in the order their chunks are handed out: longest copy first, and among
/// equal copies the one with more to build afterwards.
pub fn copy_order(tables: &[Table]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..tables.len()).collect();
    order.sort_by(|&a, &b| {
        let (ta, tb) = (&tables[a], &tables[b]);
        copy_cost(tb)
            .total_cmp(&copy_cost(ta))
            .then(build_cost(tb).total_cmp(&build_cost(ta)))
    });
    order
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog::{Constraint, Index, QualifiedName};

    fn table(name: &str, bytes: i64, rows: i64, indexes: usize) -> Table {
        Table {
            name: QualifiedName::new("public", name),
            size_bytes: bytes,
            estimated_rows: rows,
            primary_key: Some(Constraint::default()),
            indexes: vec![Index::default(); indexes],
            ..Default::default()
        }
    }

    #[test]
    fn auto_chunks_split_only_tables_beyond_a_lane_share() {
        let tables = vec![
            table("big", 8_000_000_000, 40_000_000, 0),
            table("small", 1_000_000_000, 5_000_000, 0),
        ];
        let share = lane_share(&tables, 2);
        assert_eq!(auto_chunk_rows(&tables[1], share), 5_000_000);
        // 80 s of 90 s on 2 lanes (45 s each): two pieces, capped at 10M rows.
        assert_eq!(auto_chunk_rows(&tables[0], share), 10_000_000);
        let one = vec![table("only", 1_000_000_000, 4_000_000, 0)];
        assert_eq!(auto_chunk_rows(&one[0], lane_share(&one, 4)), 1_000_000);
    }

    #[test]
    fn longest_copy_first() {
        let tables = vec![
            table("blobs", 300_000_000, 70_000, 0),
            table("narrow", 300_000_000, 10_000_000, 1),
            table("wide", 680_000_000, 3_000_000, 2),
            table("small", 7_000_000, 100_000, 1),
        ];
        let order: Vec<&str> = copy_order(&tables)
            .into_iter()
            .map(|i| tables[i].name.name.as_str())
            .collect();
        // narrow and blobs copy alike; narrow has more to build, so it goes first.
        assert_eq!(order, vec!["wide", "narrow", "blobs", "small"]);
    }
}
