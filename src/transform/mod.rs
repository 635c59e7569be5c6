//! The transform stage between readers and writers.
//!
//! A PostgreSQL source whose columns have the same types on the target needs no transform:
//! tuples pass through as wire bytes ([`Passthrough`]). Column mappings, casts and defaults plug
//! in here as other implementations of [`Transform`].

pub mod cast;

use crate::catalog::Table;
use crate::error::Result;
use crate::pgcopy::Batch;

/// Rewrites a batch of encoded tuples for the target.
pub trait Transform: Send + Sync {
    /// Returns the batch as the target must receive it.
    fn apply(&self, table: &Table, batch: Batch) -> Result<Batch>;
}

/// Sends tuples through untouched.
#[derive(Debug, Clone, Copy, Default)]
pub struct Passthrough;

impl Transform for Passthrough {
    fn apply(&self, _table: &Table, batch: Batch) -> Result<Batch> {
        Ok(batch)
    }
}
