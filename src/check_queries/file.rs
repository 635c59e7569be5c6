//! The query file of `check-queries` (`--queries FILE`): TOML, one `[[query]]` per query,
//! read and checked whole before anything runs.
//!
//! ```toml
//! [[query]]
//! name = "orders of a customer"          # optional; default "query N"
//! sql = "SELECT * FROM orders WHERE customer_id = $1 ORDER BY id"
//! params = [42]                          # optional: $1, $2, ... (MySQL text: ?, ?, ...)
//!
//! [[query]]                              # a MySQL/MariaDB source: one text per side
//! name = "top products"
//! mysql = "SELECT name, SUM(qty) FROM lines GROUP BY name ORDER BY 2 DESC LIMIT ?"
//! postgres = "SELECT name, SUM(qty) FROM lines GROUP BY name ORDER BY 2 DESC LIMIT $1"
//! params = [10]
//! ```
//!
//! Invariants: every query of the file passes the read-only guard in the dialect of each side
//! it runs on, and has a value for each of its parameters, or the file is refused (exit 2)
//! naming the query and the reason; nothing has run by then. Parameters become SQL literals
//! in the text (strings quoted for the dialect), so each side plans the query with the values,
//! as an application's unprepared query is planned.

use std::path::Path;

use serde::Deserialize;

use super::guard::{self, Dialect};
use crate::error::{Error, Result};

/// The file as written.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct QueryFile {
    /// Timed runs per query and side (`--runs` wins).
    runs: Option<usize>,
    /// The slowdown threshold (`--max-slowdown` wins).
    max_slowdown: Option<f64>,
    /// The least difference in ms that counts as slower (`--min-slowdown-ms` wins).
    min_slowdown_ms: Option<f64>,
    /// Statement timeout in seconds (`--statement-timeout` wins).
    statement_timeout: Option<u64>,
    /// The queries, in order.
    #[serde(default)]
    query: Vec<RawQuery>,
}

/// The thresholds a query file sets for itself (flags win over them).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FileLimits {
    /// Timed runs per query and side.
    pub runs: Option<usize>,
    /// The slowdown threshold.
    pub max_slowdown: Option<f64>,
    /// The least difference in ms that counts as slower.
    pub min_slowdown_ms: Option<f64>,
    /// Statement timeout in seconds.
    pub statement_timeout: Option<u64>,
}

/// One `[[query]]` entry.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQuery {
    /// Name in the report.
    name: Option<String>,
    /// One text for both sides.
    sql: Option<String>,
    /// The source's text when the source is MySQL/MariaDB.
    mysql: Option<String>,
    /// The target's text (and a PostgreSQL source's) when it differs from `sql`.
    postgres: Option<String>,
    /// Values of the parameters, in order.
    #[serde(default)]
    params: Vec<toml::Value>,
}

/// A query ready to run: its text on each side, parameters filled in.
#[derive(Debug, Clone)]
pub struct Query {
    /// Name in the report.
    pub name: String,
    /// Text run on the source.
    pub source_sql: String,
    /// Text run on the target.
    pub target_sql: String,
    /// Whether the answer is ordered (a top-level `ORDER BY` in the target's text).
    pub ordered: bool,
    /// Where the query came from and how its parameters were filled, for the report.
    pub origin: String,
}

/// Reads and checks the query file for a source in `source` dialect.
pub fn load(path: &Path, source: Dialect) -> Result<(Vec<Query>, FileLimits)> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::Config(format!(
            "cannot read the query file {}: {e}",
            path.display()
        ))
    })?;
    parse(&text, source).map_err(|e| match e {
        Error::Config(m) => Error::Config(format!("query file {}: {m}", path.display())),
        other => other,
    })
}

/// Parses and checks a query file's text.
pub fn parse(text: &str, source: Dialect) -> Result<(Vec<Query>, FileLimits)> {
    let mut file: QueryFile = toml::from_str(text).map_err(|e| Error::Config(e.to_string()))?;
    if file.query.is_empty() {
        return Err(Error::Config("it holds no [[query]]".into()));
    }
    let mut out = Vec::with_capacity(file.query.len());
    for (i, raw) in std::mem::take(&mut file.query).into_iter().enumerate() {
        let name = raw
            .name
            .clone()
            .unwrap_or_else(|| format!("query {}", i + 1));
        let q = resolve(raw, &name, source)
            .map_err(|m| Error::Config(format!("[[query]] {} (\"{name}\"): {m}", i + 1)))?;
        out.push(q);
    }
    let limits = FileLimits {
        runs: file.runs,
        max_slowdown: file.max_slowdown,
        min_slowdown_ms: file.min_slowdown_ms,
        statement_timeout: file.statement_timeout,
    };
    Ok((out, limits))
}

fn resolve(raw: RawQuery, name: &str, source: Dialect) -> std::result::Result<Query, String> {
    let target_text = raw
        .postgres
        .clone()
        .or_else(|| raw.sql.clone())
        .ok_or("give `sql` (or `postgres`, with `mysql` for a MySQL source)")?;
    let source_text = match source {
        Dialect::Postgres => target_text.clone(),
        Dialect::Mysql => raw.mysql.clone().or_else(|| raw.sql.clone()).ok_or(
            "the source is MySQL/MariaDB: give its text as `mysql` (or one `sql` for both)",
        )?,
    };
    let target = fill(
        &target_text,
        Dialect::Postgres,
        &raw.params,
        "the PostgreSQL text",
    )?;
    let source_sql = match source {
        Dialect::Postgres => target.0.clone(),
        Dialect::Mysql => fill(&source_text, Dialect::Mysql, &raw.params, "the MySQL text")?.0,
    };
    Ok(Query {
        name: name.to_string(),
        source_sql,
        target_sql: target.0,
        ordered: target.1,
        origin: "query file".into(),
    })
}

/// The text with its parameters filled, and whether it is ordered; refused texts say why.
fn fill(
    sql: &str,
    dialect: Dialect,
    params: &[toml::Value],
    what: &str,
) -> std::result::Result<(String, bool), String> {
    let tokens =
        guard::check_read_only(sql, dialect).map_err(|r| format!("{what} is refused: {}", r.0))?;
    let wanted = guard::param_count(&tokens);
    if wanted > params.len() {
        return Err(format!(
            "{what} has {wanted} parameter(s) but params gives {}",
            params.len()
        ));
    }
    let literals = params
        .iter()
        .map(|v| literal(v, dialect))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    let filled = guard::fill_params(sql, &tokens, &literals).map_err(|r| r.0)?;
    Ok((filled, guard::has_top_level_order_by(&tokens)))
}

/// A parameter value as an SQL literal of the dialect.
fn literal(v: &toml::Value, dialect: Dialect) -> std::result::Result<String, String> {
    Ok(match v {
        toml::Value::String(s) => quote(s, dialect),
        toml::Value::Integer(i) => i.to_string(),
        toml::Value::Float(f) if f.is_finite() => f.to_string(),
        toml::Value::Boolean(b) => b.to_string().to_uppercase(),
        toml::Value::Datetime(d) => quote(&d.to_string(), dialect),
        other => {
            return Err(format!(
                "parameter value {} is not a string, number, boolean or date",
                other.type_str()
            ))
        }
    })
}

/// A string literal: quotes doubled; for MySQL also backslashes (its default `sql_mode`
/// reads them as escapes).
pub fn quote(s: &str, dialect: Dialect) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    for c in s.chars() {
        match c {
            '\'' => out.push_str("''"),
            '\\' if dialect == Dialect::Mysql => out.push_str("\\\\"),
            c => out.push(c),
        }
    }
    out.push('\'');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_file_is_read_whole_and_checked() {
        let text = r#"
[[query]]
name = "one"
sql = "SELECT * FROM t WHERE a = $1 AND b = $2 ORDER BY a"
params = [42, "it's"]

[[query]]
sql = "SELECT count(*) FROM t"
"#;
        let (q, limits) = parse(text, Dialect::Postgres).unwrap_or_default();
        assert_eq!(limits, FileLimits::default());
        assert_eq!(q.len(), 2);
        assert_eq!(
            q[0].target_sql,
            "SELECT * FROM t WHERE a = 42 AND b = 'it''s' ORDER BY a"
        );
        assert!(q[0].ordered);
        assert_eq!(q[1].name, "query 2");
        assert!(!q[1].ordered);

        let bad = "[[query]]\nname = \"w\"\nsql = \"DELETE FROM t\"\n";
        let e = match parse(bad, Dialect::Postgres) {
            Ok(_) => String::new(),
            Err(e) => e.to_string(),
        };
        assert!(e.contains("\"w\"") && e.contains("DELETE"), "{e}");
        let missing = "[[query]]\nsql = \"SELECT $2\"\nparams = [1]\n";
        assert!(parse(missing, Dialect::Postgres).is_err());
        assert!(parse("[[query]]\nsq = \"SELECT 1\"\n", Dialect::Postgres).is_err());
    }

    #[test]
    fn the_example_file_parses_for_both_sources() {
        let text = include_str!("../../configs/queries.toml");
        let (my, limits) = parse(text, Dialect::Mysql).unwrap_or_default();
        assert_eq!(limits.max_slowdown, Some(2.0));
        assert_eq!(my.len(), 4);
        assert!(my[2].source_sql.contains("c.city = 'Lyon'"));
        assert!(my[3].source_sql.contains("IFNULL"));
        // For a PostgreSQL source the PostgreSQL texts run on both sides.
        let (pg, _) = parse(text, Dialect::Postgres).unwrap_or_default();
        assert_eq!(pg.len(), 4);
        assert!(pg[3].source_sql.contains("COALESCE"));
        assert!(pg[1].target_sql.contains(">= '2024-01-01'"));
    }

    #[test]
    fn mysql_pairs_fill_each_dialect() {
        let text = r#"
[[query]]
mysql = "SELECT a FROM t WHERE b = ?"
postgres = "SELECT a FROM t WHERE b = $1"
params = ["back\\slash"]
"#;
        let (q, _) = parse(text, Dialect::Mysql).unwrap_or_default();
        assert_eq!(q[0].source_sql, "SELECT a FROM t WHERE b = 'back\\\\slash'");
        assert_eq!(q[0].target_sql, "SELECT a FROM t WHERE b = 'back\\slash'");
        let only_pg = "[[query]]\npostgres = \"SELECT 1\"\n";
        assert!(parse(only_pg, Dialect::Mysql).is_err());
    }
}
