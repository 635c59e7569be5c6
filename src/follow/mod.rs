//! Following a live PostgreSQL source after the bulk copy (`copy --follow`, `cutover`,
//! `abort`): change data capture from a logical replication slot, applied exactly once.
//!
//! How it fits together: `slot.rs` creates the publication and, through the replication
//! protocol (`wire.rs`), a `pgoutput` slot that exports a snapshot; the copy reads in that
//! snapshot, so the stream starts exactly where the copy's image ends. After the copy,
//! `run.rs` starts the follower: `stream.rs` reads the slot's messages (`pgoutput.rs` decodes
//! them), `apply.rs` turns each change into an idempotent statement, and many source
//! transactions commit in one target transaction together with the applied position
//! (`state/follow.rs`). Only then is the position confirmed to the source. `cutover` records
//! the source's current position; the follower applies up to it, sets the sequences and drops
//! the slot and publication. `lag.rs` renders lag and retained WAL.
//!
//! A MySQL/MariaDB source is followed through its binary log instead (`binlog/`), with the
//! same applier, commit point, lag metrics and commands.
//!
//! A mapped table's changes take the bulk copy's read, filter and transform (`mapped.rs`).
//! Changes that arrive as binary fields (mapped tables, MySQL rows) are applied through
//! `row_ops.rs`, which groups them into multi-row statements.

pub mod apply;
pub mod binlog;
pub mod lag;
pub mod mapped;
pub mod outcome;
pub mod pgoutput;
pub mod row_ops;
pub mod run;
pub mod slot;
pub mod stream;
pub mod wire;
