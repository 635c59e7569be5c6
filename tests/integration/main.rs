//! Integration tests: one binary, real PostgreSQL (and MariaDB), a fresh database per test.
//!
//! A test runs the real program through `support::Howdah` and talks to its databases through
//! `support::TestDb` / `support::MyDb` (psql and the mariadb client; `TestDb::client()` where
//! the wire protocol matters). Pick the module below by what the test is about; a module's own
//! `//!` paragraph says more. Tests of one function without a server belong beside the code,
//! as unit tests.
#![allow(clippy::unwrap_used)]

// Helpers, no tests of their own.
// A fresh database per test, and every run of the binary (`Howdah`).
mod support;
// A TCP proxy that cuts connections, and copies through it.
mod proxy;
// A PostgreSQL cluster of the test's own (wal_level = logical), started and stopped by it.
mod cluster;
// A MariaDB server of the test's own (row-format binary log), started and stopped by it.
mod mariadb_server;
// Holding a copy at a chosen point (a trigger waits on the job's state) to kill it there.
mod held;

// The server as the oracle, without the binary.
// tokio-postgres' binary COPY reader and writer against our COPY codec and tuple splitter.
mod codec_oracle;
// Single-value encoders: each value loaded by binary COPY and read back by PostgreSQL.
mod values_oracle;
// Column casts of the job file against PostgreSQL's own casts, on generated inputs.
mod cast_oracle;
// Catalog introspection and DDL rendering, compared by `pg_dump --schema-only`.
mod schema;

// `howdah copy` from PostgreSQL.
// A copy arrives complete and equal: every type, chunks, partitions, filters, schema modes,
// URLs from the environment, awkward names. The default home of a new copy test.
mod copy;
// Failures a user meets: exit codes, the one `error:` line, no password in the output.
mod errors;
// What a careless copier loses, changes or destroys silently: unselected target objects,
// row security, target triggers, owners and grants.
mod safety;
// `--schema existing` into target columns of other types: refused by name, or loaded.
mod existing_types;
// Parity with pg_dump: every object kind, compared by `pg_dump --schema-only`.
mod parity;
// Schemas that failed on real databases: cross-kind dependencies, collations, orphaned keys.
mod real_schemas;
// Peak memory of the binary with huge values.
mod memory;
// PostgreSQL 15 -> 16 -> 15: copy and verify every type both ways.
mod versions;
// Hundreds of tables on a server with a small lock table: bounded schema transactions, source
// locks within the server's lock table, a kill during the schema.
mod many_tables;
// Large objects: OIDs, owners, privileges, comments, resume after kill -9, verify.
mod large_objects;

// Interrupted copies: exactly once after kills, cuts and changed sources.
// kill -9 at seeded moments, Ctrl-C, network cuts, refused config changes, `status`.
mod resume;
// Keyset resume under collations whose equal keys differ in bytes.
mod collation_keys;
// Keyless tables in `ctid` ranges, resumed after the source changed.
mod keyless_resume;
// SIGKILL at random moments under a writer, PostgreSQL and MariaDB sources: exact at the end.
mod kill_loop;
// Several processes on one job: sharing chunks, take-over after a kill or a lapsed lease.
mod workers;
// Three workers of one job in three network namespaces with a delayed, lossy link; one cut.
mod netns_workers;
// What a running copy holds back on its source: snapshot age, oldest xmin, history list.
mod snapshot_hold;

// Following a live source after the copy: `copy --follow`, `cutover`, `abort`, kills, DDL.
mod follow;
// Following a MariaDB source's binary log (a server of the test's own): writer, kills, DDL, purge.
mod mysql_follow;
// Following tables with column mappings: changes take the copy's read, filter and transform.
mod follow_mapped;

// MySQL and MariaDB sources.
// Types, type rules and per-row rejects from MariaDB.
mod mysql;
// A whole MariaDB database: tables, keys, indexes, foreign keys, identities, what stays behind.
mod mysql_schema;

// The job file's column mappings: renames, casts, defaults, filters, rejects.
mod transform;

// The other commands.
// `howdah plan`: its facts, risks, JSON schema, and a target left untouched.
mod plan;
// `howdah verify`: equal copies pass, planted differences found by key, `--repair`.
mod verify;
// `howdah verify` key ranges that both sides cut alike, and repairs as a whole table.
mod verify_ranges;
// `howdah check-queries`: answers and timings of the application's queries on both sides.
mod check_queries;
// Operator controls: completions and man page, MySQL identifier naming, the rate cap.
mod controls;
// Metrics, logs, Prometheus and `howdah demo`; no password in logs, metrics or state.
mod observability;
// The Docker demo files: compose file, demo SQL, the MariaDB demo job.
mod compose;
// The Kubernetes manifests in configs/k8s/, validated offline, and their job file.
mod k8s;
