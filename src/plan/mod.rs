//! Planning a copy: which tables, cut into which chunks, in which order.

pub mod chunks;
pub mod filter;
pub mod mysql;

pub use chunks::{Chunk, ChunkRange};
pub use filter::TableFilter;
pub mod order;
