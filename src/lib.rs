//! howdah: a streaming data-copy engine into PostgreSQL.
//!
//! Data flows one way: [`config`] -> [`catalog`] -> [`plan`] -> [`pipeline`] (readers in
//! [`source`], [`transform`], writers in [`sink`]) -> target, with [`schema`] steps before and
//! after the data.

pub mod batch;
pub mod catalog;
pub mod check_queries;

pub mod chunking;
pub mod config;
pub mod connect;
pub mod conninfo;
pub mod copy;
pub mod demo;
pub mod error;
pub mod eta;
pub mod follow;
pub mod mapping;
pub mod metrics;
pub mod migration_plan;
pub mod pgcopy;
pub mod pipeline;
pub mod prepare;
pub mod progress;
pub mod rate;
pub mod reject;
pub mod schema;
pub mod sink;
pub mod snapshot_hold;
pub mod source;
pub mod state;
pub mod status;
pub mod transform;
pub mod typemap;
pub mod verify;

pub use error::{Error, Result};
