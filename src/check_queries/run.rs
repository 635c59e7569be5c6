//! Running one query on one side: in a `READ ONLY` transaction with a statement timeout (the
//! second guard, after `guard.rs`), rows streamed into an [`AnswerHasher`], the wall time from
//! sending the query to its last row measured.
//!
//! Sessions start from howdah's connection settings (UTC, ISO dates, `extra_float_digits = 3`,
//! so both sides print values alike), and the copy's source/target tuning (`jit = off`,
//! `row_security = off`, `synchronous_commit = off`, lock timeouts) is reset to the server's
//! defaults: a query is timed as the application's session would run it. The transaction is
//! rolled back after each run, whatever happened.
//!
//! Invariant: nothing is kept per row; a run costs the result's bytes in flight only.

use std::time::{Duration, Instant};

use futures_util::TryStreamExt;
use mysql_async::prelude::Queryable;
use tokio_postgres::{Client, SimpleQueryMessage};

use super::answer::{Answer, AnswerHasher, RowSink};
use super::normalize::{self, ColumnKind, MyColumn};
use crate::connect::{connect, connect_mysql, Side};
use crate::conninfo::mysql::MyUrl;
use crate::conninfo::PgUrl;
use crate::error::{db_reason, Result};

/// Marks the statements `check-queries` runs for itself (plans, sampled values), so that a
/// later `--from-stats` passes over them.
pub const OWN_MARK: &str = "/* howdah check-queries */";

/// One side's session.
pub enum Session {
    /// A PostgreSQL source or the target.
    Pg(Client),
    /// A MySQL/MariaDB source.
    My(mysql_async::Conn),
}

/// One timed run's result: the answer and the time it took.
#[derive(Debug, Clone)]
pub struct RunResult {
    /// What came back.
    pub answer: Answer,
    /// From sending the query to its last row.
    pub elapsed: Duration,
}

/// Opens a PostgreSQL session for running application queries.
pub async fn open_pg(url: &PgUrl, side: Side) -> Result<Client> {
    let client = connect(url, side).await?;
    // Back to the server's (and so the application's) defaults for what changes plans and times.
    client
        .batch_execute(
            "RESET jit; RESET row_security; RESET lock_timeout; RESET synchronous_commit; \
             RESET statement_timeout",
        )
        .await
        .map_err(|e| crate::error::query_error("resetting the session for queries", &e))?;
    Ok(client)
}

/// Opens a MySQL/MariaDB session whose statements stop after `timeout`.
pub async fn open_mysql(url: &MyUrl, timeout: Duration) -> Result<mysql_async::Conn> {
    let mut conn = connect_mysql(url).await?;
    // MariaDB: max_statement_time (seconds, any statement); MySQL: max_execution_time
    // (milliseconds, SELECT only). Each server knows one of them.
    let secs = timeout.as_secs_f64();
    if conn
        .query_drop(format!("SET SESSION max_statement_time = {secs}"))
        .await
        .is_err()
    {
        let _ = conn
            .query_drop(format!(
                "SET SESSION max_execution_time = {}",
                timeout.as_millis()
            ))
            .await;
    }
    Ok(conn)
}

impl Session {
    /// Runs `sql` once; `kinds` (MySQL checks only) gives the canonical form of each column.
    /// The error is the server's message.
    pub async fn run(
        &mut self,
        sql: &str,
        timeout: Duration,
        kinds: Option<&[ColumnKind]>,
    ) -> std::result::Result<RunResult, String> {
        let mut hasher = AnswerHasher::default();
        let (elapsed, columns) = self.stream(sql, timeout, kinds, &mut hasher).await?;
        Ok(RunResult {
            elapsed,
            answer: hasher.finish(columns),
        })
    }

    /// Runs `sql` once, feeding each value to `sink`; the time it took and the columns.
    pub async fn stream(
        &mut self,
        sql: &str,
        timeout: Duration,
        kinds: Option<&[ColumnKind]>,
        sink: &mut impl RowSink,
    ) -> std::result::Result<(Duration, usize), String> {
        match self {
            Session::Pg(client) => run_pg(client, sql, timeout, kinds, sink).await,
            Session::My(conn) => run_my(conn, sql, kinds.unwrap_or(&[]), sink).await,
        }
    }
}

/// Opens a `READ ONLY` transaction whose statements stop after `timeout`; the caller rolls
/// it back. Every statement of `check-queries` that reads a side's data runs in one.
pub async fn begin_read_only(
    client: &Client,
    timeout: Duration,
) -> std::result::Result<(), String> {
    client
        .batch_execute(&format!(
            "BEGIN TRANSACTION READ ONLY; SET LOCAL statement_timeout = {}",
            timeout.as_millis().max(1)
        ))
        .await
        .map_err(|e| db_reason(&e))
}

async fn run_pg(
    client: &Client,
    sql: &str,
    timeout: Duration,
    kinds: Option<&[ColumnKind]>,
    sink: &mut impl RowSink,
) -> std::result::Result<(Duration, usize), String> {
    begin_read_only(client, timeout).await?;
    let result = stream_pg(client, sql, kinds, sink).await;
    let _ = client.batch_execute("ROLLBACK").await;
    result
}

async fn stream_pg(
    client: &Client,
    sql: &str,
    kinds: Option<&[ColumnKind]>,
    hasher: &mut impl RowSink,
) -> std::result::Result<(Duration, usize), String> {
    let started = Instant::now();
    let stream = client
        .simple_query_raw(sql)
        .await
        .map_err(|e| db_reason(&e))?;
    futures_util::pin_mut!(stream);
    let mut columns = 0;
    while let Some(message) = stream.try_next().await.map_err(|e| db_reason(&e))? {
        match message {
            SimpleQueryMessage::RowDescription(cols) => columns = cols.len(),
            SimpleQueryMessage::Row(row) => {
                for i in 0..row.len() {
                    let text = row.get(i);
                    match kinds {
                        None => hasher.value(text.map(str::as_bytes)),
                        Some(kinds) => {
                            let kind = kinds.get(i).copied().unwrap_or(ColumnKind::Text);
                            let v = text.and_then(|t| normalize::pg_value(kind, t));
                            hasher.value(v.as_deref());
                        }
                    }
                }
                hasher.end_row();
            }
            _ => {}
        }
    }
    Ok((started.elapsed(), columns))
}

async fn run_my(
    conn: &mut mysql_async::Conn,
    sql: &str,
    kinds: &[ColumnKind],
    sink: &mut impl RowSink,
) -> std::result::Result<(Duration, usize), String> {
    conn.query_drop("START TRANSACTION READ ONLY")
        .await
        .map_err(|e| e.to_string())?;
    let result = stream_my(conn, sql, kinds, sink).await;
    let _ = conn.query_drop("ROLLBACK").await;
    result
}

async fn stream_my(
    conn: &mut mysql_async::Conn,
    sql: &str,
    kinds: &[ColumnKind],
    hasher: &mut impl RowSink,
) -> std::result::Result<(Duration, usize), String> {
    let started = Instant::now();
    let mut result = conn.query_iter(sql).await.map_err(|e| e.to_string())?;
    let cols: Vec<MyColumn> = result
        .columns()
        .map(|c| {
            c.iter()
                .map(|c| MyColumn {
                    bit: c.column_type() == mysql_async::consts::ColumnType::MYSQL_TYPE_BIT,
                    length: c.column_length(),
                })
                .collect()
        })
        .unwrap_or_default();
    while let Some(row) = result.next().await.map_err(|e| e.to_string())? {
        for (i, col) in cols.iter().enumerate() {
            let kind = kinds.get(i).copied().unwrap_or(ColumnKind::Text);
            match row.as_ref(i) {
                None | Some(mysql_async::Value::NULL) => hasher.value(None),
                Some(mysql_async::Value::Bytes(b)) => {
                    let v = normalize::my_value(kind, *col, b);
                    hasher.value(v.as_deref());
                }
                // The text protocol sends every value as bytes; anything else is printed.
                Some(other) => {
                    let text = other.as_sql(true);
                    let v = normalize::my_value(kind, *col, text.trim_matches('\'').as_bytes());
                    hasher.value(v.as_deref());
                }
            }
        }
        hasher.end_row();
    }
    // Drain any further result set so the session is ready for the next statement.
    drop(result);
    Ok((started.elapsed(), cols.len()))
}

/// The target's result column types, by preparing its text (nothing runs).
pub async fn column_kinds(
    client: &Client,
    sql: &str,
) -> std::result::Result<Vec<ColumnKind>, String> {
    let stmt = client.prepare(sql).await.map_err(|e| db_reason(&e))?;
    Ok(stmt
        .columns()
        .iter()
        .map(|c| ColumnKind::of_pg_type(c.type_().name()))
        .collect())
}

/// The median of some durations, in milliseconds.
pub fn median_ms(times: &mut [Duration]) -> f64 {
    if times.is_empty() {
        return 0.0;
    }
    times.sort();
    let n = times.len();
    let mid = if n % 2 == 1 {
        times[n / 2]
    } else {
        (times[n / 2 - 1] + times[n / 2]) / 2
    };
    mid.as_secs_f64() * 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        let ms = Duration::from_millis;
        assert_eq!(median_ms(&mut [ms(5), ms(1), ms(3)]), 3.0);
        assert_eq!(median_ms(&mut [ms(4), ms(1), ms(2), ms(100)]), 3.0);
        assert_eq!(median_ms(&mut []), 0.0);
    }
}
