//! MySQL/MariaDB source: a streamed keyset query per chunk in a consistent-snapshot
//! transaction, each row converted into a PostgreSQL binary COPY tuple.
//!
//! Rows come over the binary protocol (a prepared statement), so floats, dates and times
//! arrive as typed values, never as text that lost digits. Each column's conversion is chosen
//! once per chunk from the type mapping ([`crate::typemap::mysql`]); a value that cannot be
//! converted rejects its row (recorded with key, column, value and reason) and the chunk goes
//! on. Text arrives as UTF-8: the session's character set is utf8mb4, so the server decodes
//! latin1 (which MySQL means as cp1252) and every other charset itself.

use bytes::Bytes;
use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row, Value};
use tokio::sync::mpsc;

use crate::batch::{Batch, Piece};
use crate::chunking::mysql_read::{chunk_query, KeyKind, MyTablePlan};
use crate::config::Policies;
use crate::connect::connect_mysql;
use crate::conninfo::mysql::MyUrl;
use crate::error::{my_error, my_transient};
use crate::error::{Error, Result};
use crate::metrics::ChunkMetrics;
use crate::reject::{shorten, Reject};
use crate::source::mysql_convert::{display, hex, Converter};
use crate::source::{ChunkRead, ReadStats};

/// A source session inside one consistent-snapshot transaction.
pub struct MyReader {
    conn: Conn,
    policies: Policies,
}

impl MyReader {
    /// Opens a session and starts `START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY`
    /// (InnoDB tables are then read as of this moment, whatever the chunk).
    pub async fn open(url: &MyUrl, policies: Policies) -> Result<Self> {
        let mut conn = connect_mysql(url).await?;
        conn.query_drop(
            "SET SESSION TRANSACTION ISOLATION LEVEL REPEATABLE READ; \
             START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY",
        )
        .await
        .map_err(|e| my_error("starting the snapshot transaction on the source", &e))?;
        Ok(MyReader { conn, policies })
    }

    /// Streams one chunk into `tx` as batches of about `batch_bytes` of PostgreSQL tuples.
    /// Returns early (without error) when the receiver is gone.
    pub async fn read_chunk(
        &mut self,
        req: &ChunkRead<'_>,
        plan: &MyTablePlan,
        tx: mpsc::Sender<Piece>,
        metrics: &ChunkMetrics,
    ) -> Result<ReadStats> {
        let (table, range, batch_bytes) = (req.table, req.range, req.batch_bytes);
        let fail = |e: &mysql_async::Error| Error::Copy {
            table: table.name.clone(),
            chunk: range.to_string(),
            stage: "reading the source",
            reason: e.to_string(),
            transient: my_transient(e),
        };
        let converters: Vec<Converter> = plan
            .columns
            .iter()
            .map(|c| Converter::new(c, &self.policies))
            .collect::<std::result::Result<_, String>>()
            .map_err(|reason| Error::Copy {
                table: table.name.clone(),
                chunk: range.to_string(),
                stage: "preparing the conversion",
                reason,
                transient: false,
            })?;
        let key_at: Vec<usize> = plan
            .key
            .iter()
            .flatten()
            .filter_map(|k| plan.columns.iter().position(|c| c.name == k.name))
            .collect();
        let key_kinds: Vec<KeyKind> = plan.key.iter().flatten().map(|k| k.kind).collect();
        let (sql, params) = chunk_query(plan, range, req.resume_after);
        let mut result = self
            .conn
            .exec_iter(sql, params)
            .await
            .map_err(|e| fail(&e))?;
        let mut stats = ReadStats::default();
        let fields = plan.columns.len() as i16;
        let mut out = Batcher::new(batch_bytes);
        let mut last: Option<Row> = None;
        let mut position = 0u64;
        while let Some(row) = result.next().await.map_err(|e| fail(&e))? {
            position += 1;
            let start = out.buf.len();
            out.buf.extend_from_slice(&fields.to_be_bytes());
            let mut failed = None;
            for (i, conv) in converters.iter().enumerate() {
                let value = row.as_ref(i).unwrap_or(&Value::NULL);
                if let Err(reason) = conv.put(&mut out.buf, value) {
                    failed = Some((i, reason));
                    break;
                }
            }
            match failed {
                None => {
                    out.rows += 1;
                    out.last_start = start;
                }
                Some((i, reason)) => {
                    out.buf.truncate(start);
                    out.rejects.push(Reject {
                        key: describe_key(&row, plan, &key_at)
                            .unwrap_or_else(|| format!("row {position} of the chunk")),
                        column: plan.columns[i].name.clone(),
                        value: shorten(&display(row.as_ref(i).unwrap_or(&Value::NULL))),
                        reason,
                    });
                }
            }
            last = Some(row);
            if out.buf.len() >= batch_bytes {
                let key = last.as_ref().and_then(|r| key_text(r, &key_at, &key_kinds));
                let batch = out.take(key);
                if !send(batch, &tx, &mut stats, metrics).await {
                    return Ok(stats);
                }
            }
        }
        drop(result);
        if out.rows > 0 || !out.rejects.is_empty() {
            let key = last.as_ref().and_then(|r| key_text(r, &key_at, &key_kinds));
            let batch = out.take(key);
            send(batch, &tx, &mut stats, metrics).await;
        }
        Ok(stats)
    }
}

/// Sends a batch; `false` when the writer is gone.
async fn send(
    batch: Batch,
    tx: &mpsc::Sender<Piece>,
    stats: &mut ReadStats,
    metrics: &ChunkMetrics,
) -> bool {
    stats.rows += batch.rows;
    stats.bytes += batch.data.len() as u64;
    stats.rejected += batch.rejects.len() as u64;
    metrics.table.read.add(
        batch.rows + batch.rejects.len() as u64,
        batch.data.len() as u64,
    );
    let waited = std::time::Instant::now();
    if tx.send(Piece::Rows(batch)).await.is_err() {
        return false;
    }
    metrics.queued(waited.elapsed());
    true
}

/// Tuples of a batch under construction.
struct Batcher {
    buf: Vec<u8>,
    rows: u64,
    last_start: usize,
    rejects: Vec<Reject>,
    size: usize,
}

impl Batcher {
    fn new(size: usize) -> Self {
        Batcher {
            buf: Vec::with_capacity(size + size / 4),
            rows: 0,
            last_start: 0,
            rejects: Vec::new(),
            size,
        }
    }

    fn take(&mut self, last_key: Option<Vec<String>>) -> Batch {
        let buf = std::mem::replace(&mut self.buf, Vec::with_capacity(self.size + self.size / 4));
        let batch = Batch {
            data: Bytes::from(buf),
            rows: self.rows,
            last_tuple_start: self.last_start,
            rejects: std::mem::take(&mut self.rejects),
            last_key,
            last_raw_key: None,
        };
        self.rows = 0;
        self.last_start = 0;
        batch
    }
}

/// The key of a row as the text the state stores and a resume binds.
fn key_text(row: &Row, key_at: &[usize], kinds: &[KeyKind]) -> Option<Vec<String>> {
    if key_at.is_empty() {
        return None;
    }
    key_at
        .iter()
        .zip(kinds)
        .map(|(&i, kind)| match row.as_ref(i)? {
            Value::Int(n) => Some(n.to_string()),
            Value::UInt(n) => Some(n.to_string()),
            // A binary key is bound back through UNHEX(?): always hex, even when its bytes
            // happen to be valid UTF-8.
            Value::Bytes(b) if *kind == KeyKind::Binary => Some(hex(b)),
            Value::Bytes(b) => Some(match std::str::from_utf8(b) {
                Ok(s) => s.to_string(),
                Err(_) => hex(b),
            }),
            Value::Date(y, mo, d, h, mi, s, us) => Some(format!(
                "{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{us:06}"
            )),
            other => Some(display(other)),
        })
        .collect()
}

/// `id=42, line=3` for a reject record.
fn describe_key(row: &Row, plan: &MyTablePlan, key_at: &[usize]) -> Option<String> {
    let kinds: Vec<KeyKind> = plan.key.iter().flatten().map(|k| k.kind).collect();
    let values = key_text(row, key_at, &kinds)?;
    Some(
        plan.key
            .iter()
            .flatten()
            .zip(values)
            .map(|(k, v)| format!("{}={v}", k.name))
            .collect::<Vec<_>>()
            .join(", "),
    )
}
