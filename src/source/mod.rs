//! Readers that stream table chunks out of a source database.

pub mod postgres;
