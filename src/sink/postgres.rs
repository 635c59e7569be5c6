//! PostgreSQL target: `COPY ... FROM STDIN (FORMAT binary)` fed with whole-tuple batches.
//!
//! One transaction per chunk: the chunk's rows become visible together or not at all. This is
//! the commit point where checkpoints will be written in the same transaction as the rows.

use futures_util::SinkExt;
use tokio::sync::mpsc;
use tokio_postgres::Client;

use crate::catalog::{quote_ident, Table};
use crate::connect::{connect, Side};
use crate::conninfo::PgUrl;
use crate::error::{db_reason, Error, Result};
use crate::pgcopy::{encode, Batch};
use crate::transform::Transform;

/// Largest CopyData message sent: far below the server's 1 GiB message limit.
const FRAME_BYTES: usize = 256 * 1024;

/// How a chunk is loaded.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoadMode {
    /// Append to whatever the table holds.
    Append,
    /// `TRUNCATE` then `COPY ... FREEZE` in one transaction: for a table sluice created and
    /// loads in a single chunk, so the target never rewrites hint bits later.
    TruncateFreeze,
}

/// A target connection dedicated to one lane.
pub struct PgWriter {
    client: Client,
}

/// What loading one chunk wrote.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteStats {
    /// Rows the server reports as copied.
    pub rows: u64,
    /// Tuple bytes sent.
    pub bytes: u64,
}

/// The `COPY ... FROM STDIN` statement for a table.
pub fn copy_in_sql(table: &Table, mode: LoadMode) -> String {
    let cols = table
        .copy_columns()
        .map(|c| quote_ident(&c.name))
        .collect::<Vec<_>>()
        .join(", ");
    let freeze = if mode == LoadMode::TruncateFreeze {
        ", FREEZE"
    } else {
        ""
    };
    // Without a list, COPY takes every column but generated ones: the same set, and valid for
    // tables without any such column.
    let cols = if cols.is_empty() {
        String::new()
    } else {
        format!(" ({cols})")
    };
    format!(
        "COPY {}{cols} FROM STDIN (FORMAT binary{freeze})",
        table.name.quoted()
    )
}

impl PgWriter {
    /// Opens a target connection with the writer's session settings.
    ///
    /// `quiet_triggers` loads with `session_replication_role = replica`, so that triggers and
    /// foreign-key checks of a pre-existing target schema do not fire on copied rows.
    pub async fn open(url: &PgUrl, quiet_triggers: bool) -> Result<Self> {
        let client = connect(url, Side::Target).await?;
        if quiet_triggers {
            if let Err(e) = client
                .batch_execute("SET session_replication_role = replica")
                .await
            {
                tracing::warn!(
                    "cannot set session_replication_role on the target ({}): triggers and foreign-key \
                     checks of the existing tables fire during the load",
                    db_reason(&e)
                );
            }
        }
        Ok(PgWriter { client })
    }

    /// Loads every batch received on `rx` into `table` in one transaction and commits.
    ///
    /// `expected_rows` is what the reader sent; the server's own count must match it, so a row
    /// can never be lost between the two without the chunk failing.
    pub async fn write_chunk(
        &mut self,
        table: &Table,
        chunk: &str,
        mode: LoadMode,
        transform: &dyn Transform,
        mut rx: mpsc::Receiver<Batch>,
    ) -> Result<WriteStats> {
        let fail = |stage: &'static str, reason: String| Error::Copy {
            table: table.name.clone(),
            chunk: chunk.to_string(),
            stage,
            reason,
        };
        let mut begin = String::from("BEGIN;");
        if mode == LoadMode::TruncateFreeze {
            begin.push_str(&format!(" TRUNCATE ONLY {};", table.name.quoted()));
        }
        self.client
            .batch_execute(&begin)
            .await
            .map_err(|e| fail("starting the target transaction", db_reason(&e)))?;
        let sink = self
            .client
            .copy_in::<_, bytes::Bytes>(&copy_in_sql(table, mode))
            .await
            .map_err(|e| fail("writing the target", db_reason(&e)))?;
        futures_util::pin_mut!(sink);
        sink.feed(encode::header())
            .await
            .map_err(|e| fail("writing the target", db_reason(&e)))?;
        let mut stats = WriteStats::default();
        let mut sent_rows = 0u64;
        while let Some(batch) = rx.recv().await {
            let batch = transform.apply(table, batch)?;
            sent_rows += batch.rows;
            stats.bytes += batch.data.len() as u64;
            for frame in encode::frames(&batch.data, FRAME_BYTES) {
                sink.feed(frame)
                    .await
                    .map_err(|e| fail("writing the target", db_reason(&e)))?;
            }
        }
        sink.feed(encode::trailer())
            .await
            .map_err(|e| fail("writing the target", db_reason(&e)))?;
        stats.rows = sink
            .as_mut()
            .finish()
            .await
            .map_err(|e| fail("writing the target", db_reason(&e)))?;
        if stats.rows != sent_rows {
            return Err(fail(
                "checking the row count",
                format!("sent {sent_rows} rows but the target copied {}", stats.rows),
            ));
        }
        Ok(stats)
    }

    /// Commits the chunk's transaction.
    pub async fn commit(&mut self, table: &Table, chunk: &str) -> Result<()> {
        self.client
            .batch_execute("COMMIT")
            .await
            .map_err(|e| Error::Copy {
                table: table.name.clone(),
                chunk: chunk.to_string(),
                stage: "committing",
                reason: db_reason(&e),
            })
    }
}
