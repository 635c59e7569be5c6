//! Planning a copy: which tables, cut into which chunks, in which order.

pub mod chunks;
pub mod mysql;
pub mod mysql_read;

pub use chunks::{Chunk, ChunkRange};
pub mod order;
