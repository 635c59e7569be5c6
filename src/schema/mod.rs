//! Target schema: DDL generated from the catalog, split into the phases of a copy.
//!
//! `ddl.rs` turns a [`Catalog`](crate::catalog::Catalog) into statements; the pipeline runs
//! them at the right moment (before data, after one table's data, after all data).

pub mod ddl;

/// One DDL statement with a human description for logs and errors.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Step {
    /// What the step does, e.g. `create index orders_created_idx on public.orders`.
    pub what: String,
    /// The SQL to run (one statement, or several separated by `;` run via simple query).
    pub sql: String,
}

/// Steps in phases: phases run one after another, the jobs of a phase in parallel (each on its
/// own connection), the steps of a job in order.
pub type Phases = Vec<Vec<Vec<Step>>>;

/// The steps of `phases` in an order that is valid to run serially on one connection.
pub fn serial(phases: Phases) -> Vec<Step> {
    phases.into_iter().flatten().flatten().collect()
}

/// How howdah treats the target schema, from `--schema`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SchemaMode {
    /// Create every object; refuse when a selected table already exists.
    #[default]
    Create,
    /// Load into tables that already exist; create nothing, build no indexes.
    Existing,
    /// Drop the selected tables (and views over them) on the target, then create them.
    Recreate,
}
