//! Which chunk a free lane takes next.
//!
//! Lanes spread across tables before doubling up on one: on a small machine one stream per
//! table is the cheapest parallelism, and splitting a table only pays once other tables are
//! done. Among tables with equally few lanes, the one with the most bytes left goes first, so
//! the biggest tables start first and the run does not end waiting on one long table.

use std::collections::VecDeque;

use crate::plan::Chunk;

/// Chunks not yet handed out, per table, with lane counts.
#[derive(Debug)]
pub struct Scheduler {
    pending: Vec<VecDeque<Chunk>>,
    active: Vec<usize>,
    bytes_left: Vec<i64>,
}

impl Scheduler {
    /// Builds the queue for `tables` tables from their chunks.
    pub fn new(tables: usize, chunks: Vec<Chunk>) -> Self {
        let mut pending = vec![VecDeque::new(); tables];
        let mut bytes_left = vec![0i64; tables];
        for c in chunks {
            bytes_left[c.table] += c.estimated_bytes.max(1);
            pending[c.table].push_back(c);
        }
        Scheduler {
            pending,
            active: vec![0; tables],
            bytes_left,
        }
    }

    /// The next chunk to copy, or `None` when every chunk has been handed out.
    pub fn take_next(&mut self) -> Option<Chunk> {
        let t = (0..self.pending.len())
            .filter(|&t| !self.pending[t].is_empty())
            .min_by_key(|&t| (self.active[t], std::cmp::Reverse(self.bytes_left[t])))?;
        let chunk = self.pending[t].pop_front()?;
        self.active[t] += 1;
        self.bytes_left[t] -= chunk.estimated_bytes.max(1);
        Some(chunk)
    }

    /// Records that a lane finished a chunk of `table`.
    pub fn finished(&mut self, table: usize) {
        self.active[table] = self.active[table].saturating_sub(1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::ChunkRange;

    fn chunk(table: usize, bytes: i64) -> Chunk {
        Chunk {
            table,
            ordinal: 0,
            range: ChunkRange::Whole,
            estimated_rows: 1,
            estimated_bytes: bytes,
        }
    }

    #[test]
    fn spreads_across_tables_biggest_first() {
        let mut s = Scheduler::new(
            3,
            vec![chunk(0, 10), chunk(1, 100), chunk(1, 100), chunk(2, 50)],
        );
        assert_eq!(s.take_next().map(|c| c.table), Some(1));
        assert_eq!(s.take_next().map(|c| c.table), Some(2));
        assert_eq!(s.take_next().map(|c| c.table), Some(0));
        assert_eq!(s.take_next().map(|c| c.table), Some(1));
        assert!(s.take_next().is_none());
    }

    #[test]
    fn a_finished_lane_frees_its_table() {
        let mut s = Scheduler::new(
            2,
            vec![chunk(0, 100), chunk(0, 100), chunk(1, 10), chunk(1, 10)],
        );
        assert_eq!(s.take_next().map(|c| c.table), Some(0));
        assert_eq!(s.take_next().map(|c| c.table), Some(1));
        s.finished(0);
        assert_eq!(s.take_next().map(|c| c.table), Some(0));
    }
}
