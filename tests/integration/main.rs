//! Integration tests: one binary, real PostgreSQL (and MariaDB), a fresh database per test.
#![allow(clippy::unwrap_used)]

mod cast_oracle;
mod codec_oracle;
mod collation_keys;
mod compose;
mod copy;
mod errors;
mod existing_types;
mod held;
mod keyless_resume;
mod memory;
mod mysql;
mod mysql_schema;
mod observability;
mod plan;
mod proxy;
mod real_schemas;
mod resume;
mod safety;
mod schema;
mod support;
mod transform;
mod values_oracle;
mod verify;
mod verify_ranges;
mod workers;
