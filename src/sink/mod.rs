//! Writers that load batches into the target database.

pub mod postgres;
