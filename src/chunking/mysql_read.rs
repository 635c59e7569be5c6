//! How a MySQL/MariaDB table is read: its columns and their conversions, its chunking key, and
//! the keyset SQL of a chunk. Planning (the planner, verify and the plan report) and reading
//! (the reader) share these; the reader runs them, nothing here talks to a server.
//!
//! Invariant: a chunk's query reads `lower < key <= upper` (after a resume key, if any) in key
//! order, with every key value bound as a parameter cast to the key's own type, so MySQL
//! compares keys as its index orders them and the last key read is an exact resume offset.

use mysql_async::Value;

use crate::chunking::ChunkRange;
use crate::typemap::mysql::Convert;

/// How a key column is compared and rendered in the keyset predicate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// Signed integer.
    Signed,
    /// Unsigned integer.
    Unsigned,
    /// DECIMAL(p,s).
    Decimal(u64, u64),
    /// DATE.
    Date,
    /// DATETIME or TIMESTAMP (compared as DATETIME(6); TIMESTAMP in the session's UTC).
    DateTime,
    /// A string compared in the column's collation.
    Text,
    /// Bytes, carried as hex.
    Binary,
}

impl KeyKind {
    /// The placeholder for one key value, cast so MySQL compares it in the key's own type
    /// (a string against a BIGINT would otherwise be compared as a double).
    fn placeholder(self) -> String {
        match self {
            KeyKind::Signed => "CAST(? AS SIGNED)".into(),
            KeyKind::Unsigned => "CAST(? AS UNSIGNED)".into(),
            KeyKind::Decimal(p, s) => format!("CAST(? AS DECIMAL({p},{s}))"),
            KeyKind::Date => "CAST(? AS DATE)".into(),
            KeyKind::DateTime => "CAST(? AS DATETIME(6))".into(),
            KeyKind::Text => "?".into(),
            KeyKind::Binary => "UNHEX(?)".into(),
        }
    }
}

/// One column of a chunking key.
#[derive(Debug, Clone)]
pub struct MyKeyColumn {
    /// Source column name.
    pub name: String,
    /// How to compare it.
    pub kind: KeyKind,
}

/// One copied column.
#[derive(Debug, Clone)]
pub struct MyReadColumn {
    /// Source column name.
    pub name: String,
    /// Value conversion.
    pub convert: Convert,
    /// The target column is NOT NULL (a value that would become NULL rejects the row).
    pub not_null: bool,
}

/// How to read one table.
#[derive(Debug, Clone)]
pub struct MyTablePlan {
    /// Source table name.
    pub source: String,
    /// Copied columns, in target column order.
    pub columns: Vec<MyReadColumn>,
    /// Source-side filter from a `[[table]]` rule (`where`).
    pub filter: Option<String>,
    /// Chunking key (`None`: the table is read as one chunk, in no order).
    pub key: Option<Vec<MyKeyColumn>>,
    /// Read at most this many rows (`howdah plan`'s throughput probe); `None` for copies.
    pub limit: Option<u64>,
}

/// Quotes a MySQL identifier.
pub fn quote_my(ident: &str) -> String {
    format!("`{}`", ident.replace('`', "``"))
}

/// The `WHERE` part for a keyset range (`lower < key <= upper`, after `resume_after`) and its
/// parameters.
pub fn keyset_predicate(
    key: &[MyKeyColumn],
    range: &ChunkRange,
    resume_after: Option<&[String]>,
) -> (String, Vec<Value>) {
    let cols = format!(
        "({})",
        key.iter()
            .map(|k| quote_my(&k.name))
            .collect::<Vec<_>>()
            .join(", ")
    );
    let row = || {
        format!(
            "({})",
            key.iter()
                .map(|k| k.kind.placeholder())
                .collect::<Vec<_>>()
                .join(", ")
        )
    };
    let mut preds = Vec::new();
    let mut params = Vec::new();
    let mut bind = |values: &[String]| {
        params.extend(values.iter().map(|s| Value::Bytes(s.as_bytes().to_vec())))
    };
    if let ChunkRange::Keyset { lower, upper } = range {
        if let Some(l) = lower {
            preds.push(format!("{cols} > {}", row()));
            bind(l);
        }
        if let Some(u) = upper {
            preds.push(format!("{cols} <= {}", row()));
            bind(u);
        }
    }
    if let Some(after) = resume_after {
        preds.push(format!("{cols} > {}", row()));
        bind(after);
    }
    (preds.join(" AND "), params)
}

/// The chunk's query and parameters.
pub fn chunk_query(
    plan: &MyTablePlan,
    range: &ChunkRange,
    resume_after: Option<&[String]>,
) -> (String, Vec<Value>) {
    let cols = plan
        .columns
        .iter()
        .map(|c| quote_my(&c.name))
        .collect::<Vec<_>>()
        .join(", ");
    let mut sql = format!("SELECT {cols} FROM {}", quote_my(&plan.source));
    let mut params = Vec::new();
    let mut preds: Vec<String> = plan.filter.iter().map(|f| format!("({f})")).collect();
    if plan.key.is_none() && !preds.is_empty() {
        sql.push_str(" WHERE ");
        sql.push_str(&preds.join(" AND "));
    }
    if let Some(key) = &plan.key {
        let (pred, p) = keyset_predicate(key, range, resume_after);
        if !pred.is_empty() {
            preds.push(pred);
        }
        if !preds.is_empty() {
            sql.push_str(" WHERE ");
            sql.push_str(&preds.join(" AND "));
        }
        params = p;
        sql.push_str(" ORDER BY ");
        sql.push_str(
            &key.iter()
                .map(|k| quote_my(&k.name))
                .collect::<Vec<_>>()
                .join(", "),
        );
    }
    if let Some(n) = plan.limit {
        sql.push_str(&format!(" LIMIT {n}"));
    }
    (sql, params)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keyset_predicates_cast_placeholders() {
        let key = vec![
            MyKeyColumn {
                name: "a".into(),
                kind: KeyKind::Unsigned,
            },
            MyKeyColumn {
                name: "b".into(),
                kind: KeyKind::Text,
            },
        ];
        let range = ChunkRange::Keyset {
            lower: Some(vec!["1".into(), "x".into()]),
            upper: None,
        };
        let (pred, params) = keyset_predicate(&key, &range, Some(&["5".into(), "y".into()]));
        assert_eq!(
            pred,
            "(`a`, `b`) > (CAST(? AS UNSIGNED), ?) AND (`a`, `b`) > (CAST(? AS UNSIGNED), ?)"
        );
        assert_eq!(params.len(), 4);
    }
}
