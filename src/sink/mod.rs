//! Writers that load batches into the target database.

pub mod large_objects;
pub mod postgres;
