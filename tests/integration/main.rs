//! Integration tests: one binary, real PostgreSQL (and MariaDB), a fresh database per test.
#![allow(clippy::unwrap_used)]

mod cast_oracle;
mod codec_oracle;
mod compose;
mod copy;
mod errors;
mod mysql;
mod mysql_schema;
mod observability;
mod plan;
mod proxy;
mod resume;
mod safety;
mod schema;
mod support;
mod transform;
mod values_oracle;
mod verify;
mod verify_ranges;
mod workers;
