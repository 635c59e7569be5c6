//! Which chunk a free lane takes next.
//!
//! Lanes take chunks of tables in the planned order (see [`crate::plan::order`]): all lanes
//! work on the first table with chunks left, so each table's data is in as early as possible
//! and its index builds overlap the copy of the tables after it.

use std::collections::VecDeque;

use crate::plan::Chunk;

/// Chunks not yet handed out, per table, and the order of tables.
#[derive(Debug)]
pub struct Scheduler {
    pending: Vec<VecDeque<Chunk>>,
    order: Vec<usize>,
}

impl Scheduler {
    /// Builds the queue for `tables` tables from their chunks, served in `order`.
    pub fn new(tables: usize, order: Vec<usize>, chunks: Vec<Chunk>) -> Self {
        let mut pending = vec![VecDeque::new(); tables];
        for c in chunks {
            pending[c.table].push_back(c);
        }
        Scheduler { pending, order }
    }

    /// The next chunk to copy, or `None` when every chunk has been handed out.
    pub fn take_next(&mut self) -> Option<Chunk> {
        let t = self
            .order
            .iter()
            .copied()
            .find(|&t| !self.pending[t].is_empty())?;
        self.pending[t].pop_front()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::ChunkRange;

    fn chunk(table: usize, ordinal: usize) -> Chunk {
        Chunk {
            table,
            ordinal,
            range: ChunkRange::Whole,
            estimated_rows: 1,
            estimated_bytes: 1,
            resume_after: None,
        }
    }

    #[test]
    fn serves_tables_in_order_and_chunks_in_key_order() {
        let mut s = Scheduler::new(
            3,
            vec![2, 0, 1],
            vec![chunk(0, 0), chunk(1, 0), chunk(2, 0), chunk(2, 1)],
        );
        let got: Vec<(usize, usize)> = std::iter::from_fn(|| s.take_next())
            .map(|c| (c.table, c.ordinal))
            .collect();
        assert_eq!(got, vec![(2, 0), (2, 1), (0, 0), (1, 0)]);
    }
}
