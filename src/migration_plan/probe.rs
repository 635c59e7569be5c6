//! Cheap, bounded probes of the source: problem values per column, and a short read to
//! measure throughput. Each runs on a session of its own with a row limit and a time limit,
//! and a probe that fails or times out is reported, never fatal to the plan.

use std::time::{Duration, Instant};

use futures_util::StreamExt;
use mysql_async::prelude::Queryable;
use mysql_async::{Row, Value};

use super::model::{Probe, Throughput};
use crate::catalog::mysql::{MyColumn, MySchema};
use crate::catalog::{quote_ident, quote_literal, Catalog};
use crate::chunking::mysql::MysqlPlan;
use crate::chunking::mysql_read::quote_my;
use crate::chunking::ChunkRange;
use crate::config::CopySettings;
use crate::config::{NulBytes, Policies, ZeroDates};
use crate::connect::{connect, Side};
use crate::conninfo::mysql::MyUrl;
use crate::conninfo::{PgUrl, SslMode};
use crate::error::db_reason;
use crate::mapping::TableMapping;
use crate::source::mysql::MyReader;
use crate::typemap::mysql::Convert;

/// Rows a value probe reads per table at most.
pub const PROBE_ROWS: u64 = 1_000_000;
/// Seconds a value probe may run per table.
pub const PROBE_SECS: u64 = 10;
/// The throughput probe stops after this long...
pub const THROUGHPUT_SECS: f64 = 2.0;
/// ...or after this many bytes of tuples.
pub const THROUGHPUT_BYTES: u64 = 64 << 20;
/// Hard limit on the throughput probe, first row included.
const THROUGHPUT_HARD_SECS: u64 = 10;

/// What the PostgreSQL value probes do.
pub const PG_METHOD: &str = "for tables with a column mapping: NULLs in columns the mapping gives a default, and (PostgreSQL 16 and later, \
     text-like source columns) values that pg_input_is_valid says the target type does not accept; one query per table on a session \
     of its own, over the first 1,000,000 rows in storage order (LIMIT, no ORDER BY), with statement_timeout = 10 s. \
     A PostgreSQL-to-PostgreSQL copy of unmapped columns passes values through unchanged, so they are not probed";

/// One probe expression over a table sample.
struct Expr {
    column: String,
    check: &'static str,
    sql: String,
    consequence: String,
}

fn probe_of(table: &str, e: &Expr, rows: u64, limit: u64, count: Option<u64>) -> Probe {
    Probe {
        table: table.to_string(),
        column: Some(e.column.clone()),
        check: e.check.into(),
        count,
        rows_examined: rows,
        sampled: rows >= limit,
        consequence: e.consequence.clone(),
        error: None,
    }
}

fn failed(table: &str, exprs: &[Expr], error: String) -> Vec<Probe> {
    exprs
        .iter()
        .map(|e| Probe {
            error: Some(error.clone()),
            ..probe_of(table, e, 0, PROBE_ROWS, None)
        })
        .collect()
}

/// The range of a MySQL integer type.
fn int_range(col: &MyColumn) -> Option<(i128, i128)> {
    let bits = match col.data_type.as_str() {
        "tinyint" => 8,
        "smallint" => 16,
        "mediumint" => 24,
        "int" | "integer" => 32,
        "bigint" => 64,
        _ => return None,
    };
    Some(if col.unsigned() {
        (0, (1i128 << bits) - 1)
    } else {
        (-(1i128 << (bits - 1)), (1i128 << (bits - 1)) - 1)
    })
}

/// The probe expressions of one MySQL column, chosen from its type and conversion.
fn my_exprs(
    col: &MyColumn,
    convert: &Convert,
    target_not_null: bool,
    settings: &CopySettings,
) -> Vec<Expr> {
    let c = quote_my(&col.name);
    let mut out = Vec::new();
    let mut push = |check: &'static str, sql: String, consequence: String| {
        out.push(Expr {
            column: col.name.clone(),
            check,
            sql,
            consequence,
        })
    };
    let dt = col.data_type.as_str();
    if matches!(dt, "date" | "datetime" | "timestamp") {
        let consequence = match settings.mysql.zero_dates.clone().unwrap_or_default() {
            // A key column, or a column of an existing target table.
            ZeroDates::Null if target_not_null => {
                "the rows are rejected (the target column is NOT NULL: a key, or --schema existing); set [mysql] zero_dates to a date to keep them".to_string()
            }
            ZeroDates::Null if col.not_null => {
                "loaded as NULL (zero_dates = \"null\"): the column is NOT NULL on the source and is created nullable; NOT NULL is set again after the data if no zero date arrives".to_string()
            }
            ZeroDates::Null => "loaded as NULL (zero_dates = \"null\")".to_string(),
            ZeroDates::Reject => "the rows are rejected (zero_dates = \"reject\")".to_string(),
            ZeroDates::Value(v) => format!("loaded as {v} (zero_dates)"),
        };
        push(
            "zero_dates",
            format!("SUM(MONTH({c}) = 0 OR DAYOFMONTH({c}) = 0)"),
            consequence,
        );
        push(
            "year_zero",
            format!("SUM(YEAR({c}) = 0 AND MONTH({c}) <> 0 AND DAYOFMONTH({c}) <> 0)"),
            "loaded as the same month and day in 1 BC (MySQL's year 0000 is the year before 0001, which PostgreSQL writes 0001 BC)".into(),
        );
    }
    let target = match convert {
        Convert::Int2 => Some(("smallint", i16::MIN as i128, i16::MAX as i128)),
        Convert::Int4 => Some(("integer", i32::MIN as i128, i32::MAX as i128)),
        Convert::Int8 => Some(("bigint", i64::MIN as i128, i64::MAX as i128)),
        _ => None,
    };
    if let (Some((ty, lo, hi)), Some((slo, shi))) = (target, int_range(col)) {
        // Only a source range wider than the target's can hold values that do not fit.
        if slo < lo || shi > hi {
            push(
                "out_of_range",
                format!("SUM({c} < {lo} OR {c} > {hi})"),
                format!("the rows are rejected: the values do not fit {ty}"),
            );
        }
    }
    if *convert == Convert::Bool && dt != "bit" {
        push(
            "lossy_boolean",
            format!("SUM({c} NOT IN (0, 1))"),
            "loaded as true (tinyint(1) becomes boolean); map the column to smallint with [[mysql.cast]] to keep the values"
                .into(),
        );
    }
    if matches!(convert, Convert::Enum { .. } | Convert::EnumText { .. }) {
        push(
            "invalid_enum",
            format!("SUM({c} + 0 = 0)"),
            "the rows are rejected: '' is not a label (stored by INSERT IGNORE or a non-strict sql_mode)".into(),
        );
    }
    if *convert == Convert::Time {
        push(
            "time_out_of_range",
            format!("SUM({c} < '00:00:00' OR {c} >= '24:00:00')"),
            "the rows are rejected: PostgreSQL's time holds 00:00:00 to 24:00:00; cast the column to interval to keep them"
                .into(),
        );
    }
    if *convert == Convert::Text {
        push(
            "nul_bytes",
            format!("SUM(INSTR({c}, CHAR(0)) > 0)"),
            match settings.mysql.nul_bytes.unwrap_or_default() {
                NulBytes::Reject => {
                    "the rows are rejected (nul_bytes = \"reject\"); set [mysql] nul_bytes = \"strip\" to remove the NUL bytes"
                }
                NulBytes::Strip => "the NUL bytes are removed (nul_bytes = \"strip\")",
            }
            .into(),
        );
        let utf8 = col
            .charset
            .as_deref()
            .is_some_and(|cs| cs.to_ascii_lowercase().starts_with("utf8"));
        if utf8 {
            push(
                "invalid_utf8",
                format!(
                    "SUM(CAST({c} AS BINARY) <> CAST(CONVERT(CAST({c} AS BINARY) USING utf8mb4) AS BINARY))"
                ),
                "the rows are rejected: the stored bytes are not valid UTF-8".into(),
            );
        }
    }
    out
}

/// The select list and source of a value probe: the row count and every expression over the
/// first [`PROBE_ROWS`] rows of `from` (in storage order, `filter` applied), reading only the
/// probed columns, quoted by `quote` in the source's dialect.
fn bounded(exprs: &[Expr], quote: fn(&str) -> String, from: &str, filter: Option<&str>) -> String {
    let mut cols: Vec<String> = exprs.iter().map(|e| quote(&e.column)).collect();
    cols.dedup();
    let filter = filter.map(|f| format!(" WHERE ({f})")).unwrap_or_default();
    let counts: Vec<&str> = exprs.iter().map(|e| e.sql.as_str()).collect();
    format!(
        "count(*), {} FROM (SELECT {} FROM {from}{filter} LIMIT {PROBE_ROWS}) AS s",
        counts.join(", "),
        cols.join(", ")
    )
}

fn my_count(v: Option<&Value>) -> u64 {
    match v {
        Some(Value::Int(n)) => u64::try_from(*n).unwrap_or(0),
        Some(Value::UInt(n)) => *n,
        Some(Value::Bytes(b)) => std::str::from_utf8(b)
            .ok()
            .and_then(|s| s.trim().split('.').next().and_then(|s| s.parse().ok()))
            .unwrap_or(0),
        _ => 0,
    }
}

/// What the MySQL value probes do.
pub fn my_method(schema: &MySchema) -> String {
    format!(
        "one query per table on a session of its own, over the first {PROBE_ROWS} rows in storage order (LIMIT, no ORDER BY), \
         stopped after {PROBE_SECS} s ({}). Checks: zero dates (month or day 0) and dates in year 0000 in date, datetime and timestamp columns; \
         integers beyond the mapped type; tinyint(1) values other than 0 and 1 (boolean); '' in enum columns; time values \
         outside 0 to 24 h; NUL bytes in text; invalid UTF-8 in utf8/utf8mb3/utf8mb4 columns (a round trip through \
         CONVERT ... USING utf8mb4: the server checks text on write, so this rarely finds any). Columns in other character \
         sets (latin1, which MySQL reads as cp1252, and others) are decoded to UTF-8 by the server and not probed",
        if schema.is_mariadb() {
            "SET STATEMENT max_statement_time"
        } else {
            "MAX_EXECUTION_TIME hint"
        }
    )
}

/// Counts problem values in every selected MySQL table.
pub async fn my_values(
    url: &MyUrl,
    schema: &MySchema,
    plan: &MysqlPlan,
    settings: &CopySettings,
) -> Vec<Probe> {
    let mut probes = Vec::new();
    let mut conn = match crate::connect::connect_mysql(url).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("value probes skipped: {e}");
            return probes;
        }
    };
    for (i, read) in plan.reads.iter().enumerate() {
        let Some(read) = read else { continue };
        let Some(mt) = schema.tables.iter().find(|t| t.name == read.source) else {
            continue;
        };
        let target = plan.catalog.tables.get(i);
        let mut exprs = Vec::new();
        for (pos, rc) in read.columns.iter().enumerate() {
            let Some(col) = mt.columns.iter().find(|c| c.name == rc.name) else {
                continue;
            };
            let not_null = target
                .and_then(|t| t.columns.get(pos))
                .is_some_and(|c| c.not_null);
            exprs.extend(my_exprs(col, &rc.convert, not_null, settings));
        }
        if exprs.is_empty() {
            continue;
        }
        let table = format!("{}.{}", schema.database, mt.name);
        let select = bounded(
            &exprs,
            quote_my,
            &quote_my(&mt.name),
            read.filter.as_deref(),
        );
        let sql = if schema.is_mariadb() {
            format!("SET STATEMENT max_statement_time = {PROBE_SECS} FOR SELECT {select}")
        } else {
            format!(
                "SELECT /*+ MAX_EXECUTION_TIME({}) */ {select}",
                PROBE_SECS * 1000
            )
        };
        match conn.query_first::<Row, _>(sql).await {
            Ok(Some(row)) => {
                let rows = my_count(row.as_ref(0));
                for (k, e) in exprs.iter().enumerate() {
                    let count = my_count(row.as_ref(k + 1));
                    probes.push(probe_of(&table, e, rows, PROBE_ROWS, Some(count)));
                }
            }
            Ok(None) => probes.extend(failed(&table, &exprs, "no result row".into())),
            Err(e) => probes.extend(failed(&table, &exprs, e.to_string())),
        }
    }
    probes
}

/// Counts NULLs given a default and failing casts in mapped PostgreSQL tables.
pub async fn pg_values(
    url: &PgUrl,
    catalog: &Catalog,
    maps: &[Option<TableMapping>],
) -> Vec<Probe> {
    let mut probes = Vec::new();
    if maps.iter().all(Option::is_none) {
        return probes;
    }
    let client = match connect(url, Side::Source).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!("value probes skipped: {e}");
            return probes;
        }
    };
    if let Err(e) = client
        .batch_execute(&format!(
            "SET statement_timeout = '{PROBE_SECS}s'; SET default_transaction_read_only = on"
        ))
        .await
    {
        tracing::warn!("value probes skipped: {}", db_reason(&e));
        return probes;
    }
    let text_like = |ty: &str| {
        ty == "text"
            || ty.starts_with("character varying")
            || ty.starts_with("character(")
            || ty == "character"
            || ty.starts_with("varchar")
    };
    for m in maps.iter().flatten() {
        let mut exprs = Vec::new();
        for l in &m.lines {
            let Some((name, ty)) = &l.source else {
                continue;
            };
            let c = quote_ident(name);
            if l.how.contains("NULL -> ") {
                exprs.push(Expr {
                    column: name.clone(),
                    check: "nulls_given_default",
                    sql: format!("count(*) FILTER (WHERE {c} IS NULL)"),
                    consequence: "loaded with the mapping's default".into(),
                });
            }
            if l.how.contains("cast ") && text_like(ty) && catalog.server_version_num >= 160000 {
                let on_error = l.how.rsplit("on error: ").next().unwrap_or("reject row");
                exprs.push(Expr {
                    column: name.clone(),
                    check: "cast_failures",
                    sql: format!(
                        "count(*) FILTER (WHERE {c} IS NOT NULL AND NOT pg_input_is_valid({c}::text, {}))",
                        quote_literal(&l.target_type)
                    ),
                    consequence: format!("the value does not convert to {}: on error: {on_error}", l.target_type),
                });
            }
        }
        if exprs.is_empty() {
            continue;
        }
        let table = m.read.name.to_string();
        let from = format!("ONLY {}", m.read.name.quoted());
        let sql = format!(
            "SELECT {}",
            bounded(&exprs, quote_ident, &from, m.filter.as_deref())
        );
        match client.query_one(&sql, &[]).await {
            Ok(row) => {
                let get = |k: usize| row.try_get::<_, i64>(k).ok().map(|n| n.max(0) as u64);
                let rows = get(0).unwrap_or(0);
                for (k, e) in exprs.iter().enumerate() {
                    probes.push(probe_of(&table, e, rows, PROBE_ROWS, get(k + 1)));
                }
            }
            Err(e) => probes.extend(failed(&table, &exprs, db_reason(&e))),
        }
    }
    probes
}

/// The table the throughput probe reads: the one with the most data.
fn largest(catalog: &Catalog) -> Option<usize> {
    catalog
        .tables
        .iter()
        .enumerate()
        .filter(|(_, t)| t.has_storage())
        .max_by_key(|(_, t)| t.size_bytes)
        .map(|(i, _)| i)
}

fn throughput(
    name: String,
    t: &crate::catalog::Table,
    rows: u64,
    bytes: u64,
    seconds: f64,
    stopped_by: &str,
    method: String,
) -> Option<Throughput> {
    if rows == 0 || seconds <= 0.0 {
        return None;
    }
    let (estimated_rows, size_bytes) = (crate::chunking::chunks::estimated_rows(t), t.size_bytes);
    let share = if stopped_by == "end of table" || estimated_rows <= 0 {
        1.0
    } else {
        (rows as f64 / estimated_rows as f64).min(1.0)
    };
    Some(Throughput {
        table: name,
        rows,
        bytes,
        seconds,
        rows_per_sec: rows as f64 / seconds,
        storage_bytes_per_sec: share * size_bytes.max(0) as f64 / seconds,
        stopped_by: stopped_by.into(),
        method,
    })
}

/// Reads the largest table through the copy's own `COPY ... TO STDOUT (FORMAT binary)`
/// statement for up to 2 s or 64 MiB, then cancels the query.
pub async fn pg_throughput(
    url: &PgUrl,
    catalog: &Catalog,
    maps: &[Option<TableMapping>],
) -> Option<Throughput> {
    let i = largest(catalog)?;
    let t = &catalog.tables[i];
    let read = maps[i].as_ref().map(|m| crate::source::postgres::PgRead {
        table: m.read.clone(),
        read_as: m.read_as.clone(),
        filter: m.filter.clone(),
    });
    let table = read.as_ref().map_or(t, |r| &r.table);
    let sql = crate::source::postgres::copy_out_sql(table, read.as_ref(), &ChunkRange::Whole, None);
    let client = connect(url, Side::Source).await.ok()?;
    client
        .batch_execute(&format!(
            "SET statement_timeout = '{THROUGHPUT_HARD_SECS}s'"
        ))
        .await
        .ok()?;
    let started = Instant::now();
    let hard = started + Duration::from_secs(THROUGHPUT_HARD_SECS);
    let stream = match client.copy_out(&sql).await {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!(
                "throughput probe of {} failed: {}",
                table.name,
                db_reason(&e)
            );
            return None;
        }
    };
    futures_util::pin_mut!(stream);
    let mut splitter = crate::pgcopy::TupleSplitter::new(table.copy_columns().count(), 1 << 20);
    let (mut rows, mut bytes) = (0u64, 0u64);
    let mut stopped_by = "time";
    loop {
        let piece = match tokio::time::timeout_at(hard.into(), stream.next()).await {
            Ok(Some(Ok(p))) => p,
            Ok(Some(Err(e))) => {
                tracing::warn!(
                    "throughput probe of {} failed: {}",
                    table.name,
                    db_reason(&e)
                );
                return None;
            }
            Ok(None) => {
                if let Ok(Some(b)) = splitter.finish() {
                    rows += b.rows;
                    bytes += b.data.len() as u64;
                }
                stopped_by = "end of table";
                break;
            }
            Err(_) => break,
        };
        if splitter.push(&piece).is_err() {
            return None;
        }
        while let Some(b) = splitter.take_full() {
            rows += b.rows;
            bytes += b.data.len() as u64;
        }
        if bytes >= THROUGHPUT_BYTES {
            stopped_by = "bytes";
            break;
        }
        if started.elapsed().as_secs_f64() >= THROUGHPUT_SECS && rows > 0 {
            break;
        }
    }
    let seconds = started.elapsed().as_secs_f64();
    if stopped_by != "end of table" {
        // Without a cancel the connection would page through the rest of the table.
        let token = client.cancel_token();
        let cancelled = if url.sslmode == SslMode::Disable || url.host.starts_with('/') {
            token.cancel_query(tokio_postgres::NoTls).await
        } else {
            match url.tls_connector() {
                Ok(tls) => token.cancel_query(tls).await,
                Err(_) => Ok(()),
            }
        };
        if let Err(e) = cancelled {
            tracing::debug!("cancelling the throughput probe: {e}");
        }
    }
    throughput(
        table.name.to_string(),
        t,
        rows,
        bytes,
        seconds,
        stopped_by,
        format!(
            "the copy's own COPY ... TO STDOUT (FORMAT binary) statement for {} on one source session, stopped after \
             {THROUGHPUT_SECS} s or {} MiB of tuples (then cancelled)",
            table.name,
            THROUGHPUT_BYTES >> 20
        ),
    )
}

/// Reads the largest table through the copy's MySQL reader (rows converted to PostgreSQL
/// tuples) for up to 2 s or about 64 MiB of source data (a LIMIT bounds the query itself).
pub async fn my_throughput(
    url: &MyUrl,
    catalog: &Catalog,
    plan: &MysqlPlan,
    settings: &CopySettings,
) -> Option<Throughput> {
    let i = largest(catalog)?;
    let t = &catalog.tables[i];
    let mut read = plan.reads.get(i)?.clone()?;
    let est = crate::chunking::chunks::estimated_rows(t).max(1) as u64;
    let per_row = (t.size_bytes.max(0) as u64 / est).max(1);
    read.limit = Some((THROUGHPUT_BYTES / per_row).clamp(1000, 10_000_000));
    let range = if read.key.is_some() {
        ChunkRange::Keyset {
            lower: None,
            upper: None,
        }
    } else {
        ChunkRange::Whole
    };
    let policies = Policies {
        zero_dates: settings.mysql.zero_dates.clone().unwrap_or_default(),
        nul_bytes: settings.mysql.nul_bytes.unwrap_or_default(),
    };
    let mut reader = MyReader::open(url, policies).await.ok()?;
    let (tx, mut rx) = tokio::sync::mpsc::channel(4);
    let metrics = crate::metrics::ChunkMetrics::noop();
    let started = Instant::now();
    let read_plan = &read;
    let table_read = crate::source::TableRead::Mysql(read.clone());
    let req = crate::source::ChunkRead {
        table: t,
        read: &table_read,
        range: &range,
        resume_after: None,
        batch_bytes: 1 << 20,
    };
    let reading = reader.read_chunk(&req, &read, tx, &metrics);
    let consuming = async {
        let (mut rows, mut bytes) = (0u64, 0u64);
        let mut stopped_by = "end of table";
        let deadline = started + Duration::from_secs_f64(THROUGHPUT_SECS);
        loop {
            match tokio::time::timeout_at(deadline.into(), rx.recv()).await {
                Ok(Some(crate::batch::Piece::Rows(b))) => {
                    rows += b.rows;
                    bytes += b.data.len() as u64;
                    if bytes >= THROUGHPUT_BYTES {
                        stopped_by = "bytes";
                        break;
                    }
                }
                Ok(Some(crate::batch::Piece::End(_)) | None) => break,
                Err(_) => {
                    stopped_by = "time";
                    break;
                }
            }
        }
        // Dropping the receiver makes the reader stop at its next batch.
        drop(rx);
        (rows, bytes, stopped_by, started.elapsed().as_secs_f64())
    };
    let joined = tokio::time::timeout(Duration::from_secs(THROUGHPUT_HARD_SECS), async {
        tokio::join!(reading, consuming)
    })
    .await
    .ok()?;
    let (result, (rows, bytes, mut stopped_by, seconds)) = joined;
    let stats = match result {
        Ok(s) => s,
        Err(e) => {
            tracing::warn!("throughput probe of {} failed: {e}", read_plan.source);
            return None;
        }
    };
    if stopped_by == "end of table"
        && read_plan
            .limit
            .is_some_and(|l| stats.rows + stats.rejected >= l)
    {
        // The LIMIT ended the read, not the table.
        stopped_by = "bytes";
    }
    throughput(
        format!("{}.{}", url.database, read_plan.source),
        t,
        rows,
        bytes,
        seconds,
        stopped_by,
        format!(
            "the copy's MySQL reader (a streamed prepared statement, rows converted to PostgreSQL tuples) on \
             {}.{}, one session, at most {} rows, stopped after {THROUGHPUT_SECS} s or {} MiB of tuples",
            url.database,
            read_plan.source,
            read_plan.limit.unwrap_or(0),
            THROUGHPUT_BYTES >> 20
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Column `c` of this declared type (`int(10) unsigned`).
    fn col(column_type: &str) -> MyColumn {
        let data_type = column_type.split(['(', ' ']).next().unwrap_or(column_type);
        MyColumn {
            name: "c".into(),
            data_type: data_type.into(),
            column_type: column_type.into(),
            ..Default::default()
        }
    }

    fn checks(c: &MyColumn, convert: Convert) -> Vec<&'static str> {
        let settings = crate::config::CopySettings::resolve(crate::config::CopyOverrides {
            source: Some("postgres://u@h/db".into()),
            target: Some("postgres://u@h/db2".into()),
            ..Default::default()
        });
        match settings {
            Ok(s) => my_exprs(c, &convert, false, &s)
                .iter()
                .map(|e| e.check)
                .collect(),
            Err(e) => panic!("{e}"),
        }
    }

    #[test]
    fn range_probes_only_where_the_source_is_wider() {
        // int unsigned fits bigint (the default): nothing to probe.
        assert!(checks(&col("int(10) unsigned"), Convert::Int8).is_empty());
        // bigint unsigned as a bigint identity, or int unsigned cast to integer, may not fit.
        assert_eq!(
            checks(&col("bigint(20) unsigned"), Convert::Int8),
            vec!["out_of_range"]
        );
        assert_eq!(
            checks(&col("int(10) unsigned"), Convert::Int4),
            vec!["out_of_range"]
        );
        assert_eq!(
            checks(&col("tinyint(1)"), Convert::Bool),
            vec!["lossy_boolean"]
        );
        assert_eq!(
            checks(&col("date"), Convert::Date),
            vec!["zero_dates", "year_zero"]
        );
    }
}
