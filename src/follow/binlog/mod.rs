//! Following a live MySQL/MariaDB source after the bulk copy: binary log change capture,
//! applied exactly once through the PostgreSQL follow's applier, commit point, lag metrics and
//! `cutover`/`abort` commands.
//!
//! How it fits together: `run.rs` records the binary log position of a consistent snapshot
//! before the copy reads anything (`position.rs`), and after the copy follows from the applied
//! position: `stream.rs` reads the binary log as a replica (mysql_async's binlog stream),
//! `rows.rs` decodes each rows event's row images (DECIMAL through `decimal.rs`), `tables.rs` turns each row into target fields through the bulk converter (after
//! `values.rs` undid what the binary log encodes differently from the binary protocol), and
//! the applier commits many source transactions in one target transaction with the position
//! after the last one (`state/follow.rs`). Until the stream passes the copy's snapshots the
//! target's foreign keys are off; `overlap.rs` then runs the cascades the binary log lacks.

pub mod decimal;
pub mod overlap;
pub mod position;
pub mod rows;
pub mod run;
pub mod stream;
pub mod tables;
pub mod values;
