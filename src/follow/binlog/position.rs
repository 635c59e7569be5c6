//! Binary log positions: the text the follow state stores (`binlog.000012:4711`, then the
//! GTID state when the server has one: `binlog.000012:4711 gtid 0-1-73`), how two compare,
//! where a consistent snapshot starts on MariaDB and MySQL 8, the source's current end, and
//! whether the files holding a position are still on the server.
//!
//! Invariant: a position stored in the state is a transaction boundary (the end of a commit
//! event, or a snapshot's position): streaming from it starts with the next whole transaction.

use std::cmp::Ordering;

use mysql_async::prelude::Queryable;
use mysql_async::{Conn, Row};

use crate::error::{my_error, Error, Result};

/// A position in the source's binary log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BinlogPos {
    /// Binary log file name (`binlog.000012`).
    pub file: String,
    /// Byte offset in the file.
    pub pos: u64,
    /// The GTID state at this position (MariaDB `gtid_binlog_pos`, MySQL `gtid_executed`), if any.
    pub gtid: Option<String>,
}

impl BinlogPos {
    /// `file:pos`, then ` gtid <state>` when known.
    pub fn text(&self) -> String {
        match &self.gtid {
            Some(g) if !g.is_empty() => format!("{}:{} gtid {g}", self.file, self.pos),
            _ => format!("{}:{}", self.file, self.pos),
        }
    }

    /// Reads [`BinlogPos::text`] back.
    pub fn parse(text: &str) -> Option<BinlogPos> {
        let (at, gtid) = match text.split_once(" gtid ") {
            Some((a, g)) => (a, Some(g.trim().to_string())),
            None => (text.trim(), None),
        };
        let (file, pos) = at.rsplit_once(':')?;
        Some(BinlogPos {
            file: file.to_string(),
            pos: pos.parse().ok()?,
            gtid,
        })
    }

    /// Orders positions by file sequence number, then offset (the GTID is not compared).
    pub fn order(&self, other: &BinlogPos) -> Ordering {
        compare(&self.file, self.pos, &other.file, other.pos)
    }

    /// Whether this position is at or past `other`.
    pub fn reached(&self, other: &BinlogPos) -> bool {
        self.order(other) != Ordering::Less
    }
}

/// [`BinlogPos::order`] of offset `a` in file `fa` and offset `b` in file `fb`, for callers
/// that hold the parts (the stream checks its place after every event).
pub fn compare(fa: &str, a: u64, fb: &str, b: u64) -> Ordering {
    file_seq(fa)
        .cmp(&file_seq(fb))
        .then(fa.cmp(fb))
        .then(a.cmp(&b))
}

/// The numeric suffix of a binary log file name (`binlog.000012` -> 12).
pub fn file_seq(file: &str) -> u64 {
    file.rsplit_once('.')
        .and_then(|(_, n)| n.parse().ok())
        .unwrap_or(0)
}

fn text_of(row: &Row, i: usize) -> Option<String> {
    match row.as_ref(i)? {
        mysql_async::Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        mysql_async::Value::Int(n) => Some(n.to_string()),
        mysql_async::Value::UInt(n) => Some(n.to_string()),
        _ => None,
    }
}

/// One server variable (`SELECT @@name`) as text; `None` when the server has no such variable.
pub async fn variable(conn: &mut Conn, name: &str) -> Option<String> {
    let row: Option<Row> = conn
        .query_first(format!("SELECT @@{name}"))
        .await
        .ok()
        .flatten();
    row.and_then(|r| text_of(&r, 0))
}

/// Whether the server is MariaDB.
pub async fn is_mariadb(conn: &mut Conn) -> bool {
    variable(conn, "version")
        .await
        .is_some_and(|v| v.to_ascii_lowercase().contains("mariadb"))
}

/// The binary log position of a consistent snapshot taken now, without a global read lock
/// on MariaDB; every snapshot a reader opens afterwards sees at least what this position
/// holds, so streaming from it (and applying idempotently) converges on the source.
///
/// MariaDB: `START TRANSACTION WITH CONSISTENT SNAPSHOT`, then the `binlog_snapshot_file`
/// and `binlog_snapshot_position` status variables (the position of exactly that snapshot)
/// and `gtid_binlog_pos`. MySQL 8: `performance_schema.log_status` under `LOCK INSTANCE FOR
/// BACKUP` (which blocks DDL, not writes; log_status reads the position consistently).
pub async fn snapshot_position(conn: &mut Conn) -> Result<BinlogPos> {
    if is_mariadb(conn).await {
        conn.query_drop("START TRANSACTION WITH CONSISTENT SNAPSHOT")
            .await
            .map_err(|e| my_error("opening a consistent snapshot on the source", &e))?;
        let rows: Vec<Row> = conn
            .query("SHOW STATUS LIKE 'binlog_snapshot_%'")
            .await
            .map_err(|e| my_error("reading the snapshot's binary log position", &e))?;
        let gtid = variable(conn, "gtid_binlog_pos").await;
        conn.query_drop("COMMIT")
            .await
            .map_err(|e| my_error("ending the snapshot transaction", &e))?;
        let mut file = None;
        let mut pos = None;
        for r in &rows {
            match text_of(r, 0).as_deref() {
                Some("Binlog_snapshot_file") => file = text_of(r, 1),
                Some("Binlog_snapshot_position") => pos = text_of(r, 1),
                _ => {}
            }
        }
        return match (file, pos.and_then(|p| p.parse().ok())) {
            (Some(file), Some(pos)) if !file.is_empty() => Ok(BinlogPos { file, pos, gtid }),
            _ => Err(Error::Config(
                "the source has no binary log position (log_bin is off): start it with \
                 --log-bin --binlog-format=ROW to follow it"
                    .into(),
            )),
        };
    }
    mysql8_snapshot_position(conn).await
}

/// MySQL 8: `performance_schema.log_status` read under the backup lock.
async fn mysql8_snapshot_position(conn: &mut Conn) -> Result<BinlogPos> {
    conn.query_drop("LOCK INSTANCE FOR BACKUP")
        .await
        .map_err(|e| my_error("taking the backup lock (LOCK INSTANCE FOR BACKUP needs the BACKUP_ADMIN privilege)", &e))?;
    let row: Option<Row> = conn
        .query_first(
            "SELECT JSON_UNQUOTE(JSON_EXTRACT(LOCAL, '$.binary_log_file')), \
                    JSON_EXTRACT(LOCAL, '$.binary_log_position'), \
                    JSON_UNQUOTE(JSON_EXTRACT(LOCAL, '$.gtid_executed')) \
             FROM performance_schema.log_status",
        )
        .await
        .map_err(|e| my_error("reading performance_schema.log_status", &e))?;
    let _ = conn.query_drop("UNLOCK INSTANCE").await;
    let row = row.ok_or_else(|| {
        Error::Config("performance_schema.log_status is empty (is log_bin on?)".into())
    })?;
    let file = text_of(&row, 0).unwrap_or_default();
    let pos = text_of(&row, 1).and_then(|p| p.parse().ok());
    match pos {
        Some(pos) if !file.is_empty() => Ok(BinlogPos {
            file,
            pos,
            gtid: text_of(&row, 2).map(|g| g.replace('\n', "")),
        }),
        _ => Err(Error::Config(
            "the source has no binary log position (log_bin is off)".into(),
        )),
    }
}

/// The source's current end of binary log (`SHOW MASTER STATUS`; MySQL 8.4:
/// `SHOW BINARY LOG STATUS`).
pub async fn current_position(conn: &mut Conn) -> Result<BinlogPos> {
    let row: Option<Row> = match conn.query_first("SHOW MASTER STATUS").await {
        Ok(r) => r,
        Err(_) => conn
            .query_first("SHOW BINARY LOG STATUS")
            .await
            .map_err(|e| my_error("reading the source's binary log position", &e))?,
    };
    let row =
        row.ok_or_else(|| Error::Follow("the source has no binary log (log_bin is off)".into()))?;
    let file = text_of(&row, 0).unwrap_or_default();
    let pos = text_of(&row, 1).and_then(|p| p.parse().ok()).unwrap_or(0);
    let gtid = if is_mariadb(conn).await {
        variable(conn, "gtid_binlog_pos").await
    } else {
        text_of(&row, 4)
    };
    Ok(BinlogPos { file, pos, gtid })
}

/// The binary log files on the server with their sizes, oldest first (`SHOW BINARY LOGS`).
pub async fn binary_logs(conn: &mut Conn) -> Result<Vec<(String, u64)>> {
    let rows: Vec<Row> = conn
        .query("SHOW BINARY LOGS")
        .await
        .map_err(|e| my_error("listing the source's binary logs", &e))?;
    Ok(rows
        .iter()
        .filter_map(|r| {
            Some((
                text_of(r, 0)?,
                text_of(r, 1).and_then(|s| s.parse().ok()).unwrap_or(0),
            ))
        })
        .collect())
}

/// Bytes of binary log between `from` and `to` (`logs`: the server's files and sizes).
pub fn bytes_between(logs: &[(String, u64)], from: &BinlogPos, to: &BinlogPos) -> u64 {
    if from.reached(to) {
        return 0;
    }
    if from.file == to.file {
        return to.pos - from.pos;
    }
    let mut total = 0u64;
    for (file, size) in logs {
        let seq = file_seq(file);
        if seq == file_seq(&from.file) {
            total += size.saturating_sub(from.pos);
        } else if seq > file_seq(&from.file) && seq < file_seq(&to.file) {
            total += size;
        } else if seq == file_seq(&to.file) {
            total += to.pos;
        }
    }
    total
}

/// Refuses a start position whose file the server no longer has (purged, or expired by
/// `binlog_expire_logs_seconds`): the changes in it are lost to the follow, never skipped.
pub fn check_not_purged(logs: &[(String, u64)], from: &BinlogPos, job: &str) -> Result<()> {
    if logs.iter().any(|(f, _)| *f == from.file) {
        return Ok(());
    }
    Err(Error::Follow(format!(
        "the source's binary log {} (applied position {}) is gone: it was purged before the \
         follow read it (oldest left: {}); the changes in it cannot be applied. Raise the binlog \
         retention (binlog_expire_logs_seconds / expire_logs_days) and start job \"{job}\" over \
         with `howdah copy --follow --restart --schema recreate`",
        from.file,
        from.text(),
        logs.first().map(|(f, _)| f.as_str()).unwrap_or("none")
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_read_back_and_order_by_file_then_offset() {
        let p = BinlogPos {
            file: "binlog.000009".into(),
            pos: 4711,
            gtid: Some("0-1-73".into()),
        };
        assert_eq!(p.text(), "binlog.000009:4711 gtid 0-1-73");
        assert_eq!(BinlogPos::parse(&p.text()), Some(p.clone()));
        let q = BinlogPos::parse("binlog.000010:4").unwrap_or_else(|| p.clone());
        assert!(q.reached(&p));
        assert!(!p.reached(&q));
        let logs = vec![
            ("binlog.000009".to_string(), 5000),
            ("binlog.000010".to_string(), 100),
        ];
        assert_eq!(bytes_between(&logs, &p, &q), 289 + 4);
        assert!(check_not_purged(&logs[1..], &p, "j").is_err());
    }
}
