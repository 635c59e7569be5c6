//! `--from-stats N`: a PostgreSQL source's top read queries by total execution time, from
//! `pg_stat_statements`, with their parameters filled from real values.
//!
//! The extension records statements with their constants replaced by `$1`, `$2`, ... Each
//! parameter is filled by what the text around it says:
//! - `column <op> $n`, `$n <op> column`, `column IN ($n, ...)`, `column BETWEEN $n AND $m`
//!   (`op` one of `= <> != < <= > >= LIKE ILIKE`): a non-NULL value of that column, read from
//!   its table on the source (the table named by the column's qualifier, else the first table
//!   of the `FROM`/`JOIN` list that has such a column);
//! - `LIMIT $n`: 100, `OFFSET $n`: 0;
//! - anything else (a parameter in the select list, in a function's arguments): the query
//!   is skipped, with the reason.
//!
//! Statements are taken in the order of `total_exec_time` until N are runnable; those passed
//! over on the way are reported as skipped with their reason: writes and utility statements
//! (the guard refuses them), queries of the system catalogs (tools', not the application's),
//! texts the role may not read (`<insufficient privilege>`: grant it `pg_read_all_stats`).
//!
//! Invariant: filled texts pass the same read-only guard as the query file's, and every
//! lookup of a value runs in a `READ ONLY` transaction.

use std::time::Duration;

use tokio_postgres::Client;

use super::file::{quote, Query};
use super::guard::{self, Dialect, Kind, Token};
use super::report::{one_line as short, Skipped};
use super::run::OWN_MARK;
use crate::catalog::quote_ident;
use crate::error::{db_reason, Error, Result};

/// Statements read from `pg_stat_statements` at most, however few are runnable.
const SCAN_LIMIT: i64 = 500;

/// The top `n` runnable queries and the statements passed over on the way.
pub async fn top_queries(
    client: &Client,
    n: usize,
    timeout: Duration,
) -> Result<(Vec<Query>, Vec<Skipped>)> {
    let schema: Option<String> = client
        .query_opt(
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace \
             WHERE e.extname = 'pg_stat_statements'",
            &[],
        )
        .await
        .map_err(|e| crate::error::query_error("looking for pg_stat_statements", &e))?
        .and_then(|r| r.try_get(0).ok());
    let Some(schema) = schema else {
        return Err(Error::Config(
            "--from-stats: the source database has no pg_stat_statements extension: run \
             CREATE EXTENSION pg_stat_statements there (the server needs shared_preload_libraries = 'pg_stat_statements')"
                .into(),
        ));
    };
    let sql = format!(
        "SELECT query, calls, total_exec_time FROM {}.pg_stat_statements \
         WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) \
         ORDER BY total_exec_time DESC LIMIT {SCAN_LIMIT}",
        quote_ident(&schema)
    );
    let rows = client
        .query(&sql, &[])
        .await
        .map_err(|e| crate::error::query_error("reading pg_stat_statements", &e))?;
    let mut queries = Vec::new();
    let mut skipped = Vec::new();
    for row in rows {
        if queries.len() >= n {
            break;
        }
        let text: Option<String> = row.try_get(0).ok().flatten();
        let calls: i64 = row.try_get(1).unwrap_or(0);
        let total: f64 = row.try_get(2).unwrap_or(0.0);
        let Some(text) = text else { continue };
        if housekeeping(&text) {
            continue;
        }
        match prepare(client, &text, timeout).await {
            Ok((sql, filled)) => {
                let rank = queries.len() + 1;
                let mut origin = format!("pg_stat_statements: {calls} calls, {total:.1} ms in all");
                if !filled.is_empty() {
                    origin.push_str("; ");
                    origin.push_str(&filled.join(", "));
                }
                queries.push(Query {
                    name: format!("top {rank}: {}", short(&text, 60)),
                    ordered: guard::has_top_level_order_by(
                        &guard::lex(&sql, Dialect::Postgres).unwrap_or_default(),
                    ),
                    source_sql: sql.clone(),
                    target_sql: sql,
                    origin,
                });
            }
            Err(reason) => skipped.push(Skipped {
                query: text,
                reason,
            }),
        }
    }
    Ok((queries, skipped))
}

/// Statements that are neither the application's reads nor its writes, passed over without a
/// word: this command's own, and session or transaction control (`BEGIN`, `SET`, ...).
fn housekeeping(text: &str) -> bool {
    if text.contains(OWN_MARK) {
        return true;
    }
    let first = text
        .trim_start()
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or("")
        .to_ascii_lowercase();
    matches!(
        first.as_str(),
        "begin"
            | "start"
            | "commit"
            | "rollback"
            | "end"
            | "abort"
            | "set"
            | "reset"
            | "show"
            | "discard"
            | "deallocate"
            | "savepoint"
            | "release"
    )
}

/// The statement with its parameters filled, and how each was filled; or why it is skipped.
async fn prepare(
    client: &Client,
    text: &str,
    timeout: Duration,
) -> std::result::Result<(String, Vec<String>), String> {
    if text == "<insufficient privilege>" {
        return Err(
            "the role may not read this statement's text (grant it pg_read_all_stats)".into(),
        );
    }
    let tokens = guard::check_read_only(text, Dialect::Postgres)
        .map_err(|r| format!("not a read-only query: {}", r.0))?;
    let tables = from_list(&tokens);
    if tables.iter().any(|t| {
        t.name.starts_with("pg_")
            || t.schema
                .as_deref()
                .is_some_and(|s| s == "pg_catalog" || s == "information_schema")
    }) {
        return Err("reads the system catalogs (a tool's query, not the application's)".into());
    }
    let count = guard::param_count(&tokens);
    let mut values = Vec::with_capacity(count);
    let mut filled = Vec::with_capacity(count);
    for k in 1..=count {
        let Some(at) = tokens.iter().position(|t| t.kind == Kind::Param(k)) else {
            values.push("NULL".to_string());
            continue;
        };
        match context(&tokens, at) {
            Context::Limit => {
                values.push("100".into());
                filled.push(format!("${k} = 100 (LIMIT)"));
            }
            Context::Offset => {
                values.push("0".into());
                filled.push(format!("${k} = 0 (OFFSET)"));
            }
            Context::Column { qualifier, column } => {
                let (table, value) =
                    sample(client, &tables, qualifier.as_deref(), &column, timeout).await?;
                filled.push(format!("${k} = {} (a value of {table}.{column})", short(&value, 40)));
                values.push(quote(&value, Dialect::Postgres));
            }
            Context::Unknown => {
                return Err(format!(
                    "cannot tell a value for ${k}: it is not compared with a column, nor a LIMIT or OFFSET"
                ))
            }
        }
    }
    let sql = guard::fill_params(text, &tokens, &values).map_err(|r| r.0)?;
    Ok((sql, filled))
}

/// A table of the `FROM`/`JOIN` list.
#[derive(Debug, Clone, PartialEq, Eq)]
struct TableRef {
    schema: Option<String>,
    name: String,
    alias: Option<String>,
}

/// What a parameter is compared with.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Context {
    Column {
        qualifier: Option<String>,
        column: String,
    },
    Limit,
    Offset,
    Unknown,
}

fn name_of(t: &Token) -> Option<String> {
    match &t.kind {
        Kind::Word(w) | Kind::Ident(w) => Some(w.clone()),
        _ => None,
    }
}

/// SQL words that cannot be a column or table name where we look for one.
const KEYWORDS: &[&str] = &[
    "select",
    "from",
    "where",
    "and",
    "or",
    "not",
    "in",
    "like",
    "ilike",
    "between",
    "join",
    "on",
    "as",
    "limit",
    "offset",
    "order",
    "by",
    "group",
    "having",
    "any",
    "all",
    "is",
    "null",
    "case",
    "when",
    "then",
    "else",
    "end",
    "inner",
    "left",
    "right",
    "full",
    "outer",
    "cross",
    "lateral",
    "union",
    "except",
    "intersect",
    "with",
    "values",
    "distinct",
    "using",
    "natural",
];

fn is_keyword(t: &Token) -> bool {
    matches!(&t.kind, Kind::Word(w) if KEYWORDS.contains(&w.as_str()))
}

/// The tables named after `FROM` (comma-separated) and `JOIN`, with their aliases.
fn from_list(tokens: &[Token]) -> Vec<TableRef> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < tokens.len() {
        let starts = matches!(&tokens[i].kind, Kind::Word(w) if w == "from" || w == "join");
        i += 1;
        if !starts {
            continue;
        }
        while let Some(first) = tokens.get(i).filter(|t| !is_keyword(t)).and_then(name_of) {
            i += 1;
            let (schema, name) = if tokens.get(i).map(|t| &t.kind) == Some(&Kind::Punct('.')) {
                match tokens.get(i + 1).and_then(name_of) {
                    Some(n) => {
                        i += 2;
                        (Some(first), n)
                    }
                    None => (None, first),
                }
            } else {
                (None, first)
            };
            if matches!(tokens.get(i).map(|t| &t.kind), Some(Kind::Word(w)) if w == "as") {
                i += 1;
            }
            let alias = tokens.get(i).filter(|t| !is_keyword(t)).and_then(name_of);
            if alias.is_some() {
                i += 1;
            }
            out.push(TableRef {
                schema,
                name,
                alias,
            });
            if tokens.get(i).map(|t| &t.kind) == Some(&Kind::Punct(',')) {
                i += 1;
                continue;
            }
            break;
        }
    }
    out
}

/// What the parameter at `at` is compared with.
fn context(tokens: &[Token], at: usize) -> Context {
    let skippable = |t: &Token| match &t.kind {
        Kind::Punct(c) => "=<>!(,".contains(*c),
        Kind::Param(_) => true,
        Kind::Word(w) => matches!(
            w.as_str(),
            "like" | "ilike" | "in" | "between" | "and" | "any" | "not"
        ),
        _ => false,
    };
    // Before: `[q.]column <op> $n`, `column IN ($1, $n)`, `column BETWEEN $1 AND $n`.
    let mut j = at;
    while j > 0 {
        j -= 1;
        let t = &tokens[j];
        if let Kind::Word(w) = &t.kind {
            match w.as_str() {
                "limit" if j + 1 == at => return Context::Limit,
                "offset" if j + 1 == at => return Context::Offset,
                _ => {}
            }
        }
        if skippable(t) {
            continue;
        }
        let call = tokens.get(j + 1).map(|t| &t.kind) == Some(&Kind::Punct('('))
            && !matches!(&t.kind, Kind::Word(w) if w == "in");
        if !is_keyword(t) && !call {
            if let Some(column) = name_of(t) {
                let qualifier = (j >= 2 && tokens[j - 1].kind == Kind::Punct('.'))
                    .then(|| name_of(&tokens[j - 2]))
                    .flatten();
                return Context::Column { qualifier, column };
            }
        }
        break;
    }
    // After: `$n <op> [q.]column`.
    let mut j = at + 1;
    let mut saw_op = false;
    while let Some(t) = tokens.get(j) {
        match &t.kind {
            Kind::Punct(c) if "=<>!".contains(*c) => saw_op = true,
            _ if saw_op && !is_keyword(t) => {
                if let Some(first) = name_of(t) {
                    if tokens.get(j + 1).map(|t| &t.kind) == Some(&Kind::Punct('.')) {
                        if let Some(column) = tokens.get(j + 2).and_then(name_of) {
                            return Context::Column {
                                qualifier: Some(first),
                                column,
                            };
                        }
                    }
                    return Context::Column {
                        qualifier: None,
                        column: first,
                    };
                }
                break;
            }
            _ => break,
        }
        j += 1;
    }
    Context::Unknown
}

/// A non-NULL value of `column`, from the table it belongs to: `(schema.table, value)`.
async fn sample(
    client: &Client,
    tables: &[TableRef],
    qualifier: Option<&str>,
    column: &str,
    timeout: Duration,
) -> std::result::Result<(String, String), String> {
    let candidates: Vec<&TableRef> = match qualifier {
        Some(q) => tables
            .iter()
            .filter(|t| t.alias.as_deref() == Some(q) || t.alias.is_none() && t.name == q)
            .collect(),
        None => tables.iter().collect(),
    };
    for t in candidates {
        let regclass = match &t.schema {
            Some(s) => format!("{}.{}", quote_ident(s), quote_ident(&t.name)),
            None => quote_ident(&t.name),
        };
        // Does it exist and have such a column? (The name as PostgreSQL resolves it.)
        let found = client
            .query_opt(
                "SELECT n.nspname, c.relname FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid \
                 JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE a.attrelid = to_regclass($1) AND a.attname = $2 AND NOT a.attisdropped",
                &[&regclass, &column],
            )
            .await
            .map_err(|e| db_reason(&e))?;
        let Some(row) = found else { continue };
        let (schema, name): (String, String) = (
            row.try_get(0).map_err(|e| e.to_string())?,
            row.try_get(1).map_err(|e| e.to_string())?,
        );
        let qualified = format!("{}.{}", quote_ident(&schema), quote_ident(&name));
        let col = quote_ident(column);
        super::run::begin_read_only(client, timeout).await?;
        let value = client
            .query_opt(
                &format!(
                    "{OWN_MARK} SELECT {col}::text FROM {qualified} WHERE {col} IS NOT NULL LIMIT 1"
                ),
                &[],
            )
            .await;
        let _ = client.batch_execute("ROLLBACK").await;
        return match value.map_err(|e| db_reason(&e))? {
            Some(r) => Ok((
                format!("{schema}.{name}"),
                r.try_get(0).map_err(|e| e.to_string())?,
            )),
            None => Err(format!(
                "{schema}.{name}.{column} holds no value to fill a parameter with"
            )),
        };
    }
    Err(format!(
        "cannot tell which table column {}{column} belongs to",
        qualifier.map(|q| format!("{q}.")).unwrap_or_default()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ctx(sql: &str, k: usize) -> Context {
        let tokens = guard::lex(sql, Dialect::Postgres).unwrap_or_default();
        let at = tokens
            .iter()
            .position(|t| t.kind == Kind::Param(k))
            .unwrap_or(0);
        context(&tokens, at)
    }
    fn col(q: Option<&str>, c: &str) -> Context {
        Context::Column {
            qualifier: q.map(String::from),
            column: c.into(),
        }
    }

    #[test]
    fn housekeeping_is_passed_over_silently() {
        assert!(housekeeping("BEGIN TRANSACTION READ ONLY"));
        assert!(housekeeping("SET LOCAL statement_timeout = $1"));
        assert!(housekeeping(&format!(
            "{OWN_MARK} SELECT a FROM t LIMIT $1"
        )));
        assert!(!housekeeping("SELECT a FROM t"));
        assert!(!housekeeping("UPDATE t SET a = $1"));
    }

    #[test]
    fn parameters_are_tied_to_their_columns() {
        let sql = "SELECT o.id FROM orders o JOIN customers AS c ON c.id = o.customer_id \
                   WHERE o.total >= $1 AND c.city IN ($2, $3) AND $4 = o.note AND o.at BETWEEN $5 AND $6 \
                   ORDER BY o.id LIMIT $7 OFFSET $8";
        assert_eq!(ctx(sql, 1), col(Some("o"), "total"));
        assert_eq!(ctx(sql, 2), col(Some("c"), "city"));
        assert_eq!(ctx(sql, 3), col(Some("c"), "city"));
        assert_eq!(ctx(sql, 4), col(Some("o"), "note"));
        assert_eq!(ctx(sql, 5), col(Some("o"), "at"));
        assert_eq!(ctx(sql, 6), col(Some("o"), "at"));
        assert_eq!(ctx(sql, 7), Context::Limit);
        assert_eq!(ctx(sql, 8), Context::Offset);
        assert_eq!(ctx("SELECT $1, a FROM t", 1), Context::Unknown);
        assert_eq!(
            ctx("SELECT a FROM t WHERE b = lower($1)", 1),
            Context::Unknown
        );

        let tokens = guard::lex(sql, Dialect::Postgres).unwrap_or_default();
        let tables = from_list(&tokens);
        assert_eq!(tables.len(), 2);
        assert_eq!(tables[0].name, "orders");
        assert_eq!(tables[0].alias.as_deref(), Some("o"));
        assert_eq!(tables[1].alias.as_deref(), Some("c"));
        let tokens = guard::lex("SELECT * FROM shop.a, \"B\" WHERE x = 1", Dialect::Postgres)
            .unwrap_or_default();
        let tables = from_list(&tokens);
        assert_eq!(tables[0].schema.as_deref(), Some("shop"));
        assert_eq!(tables[1].name, "B");
        assert_eq!(tables[1].alias, None);
    }
}
