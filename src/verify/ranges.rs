//! Whether the key ranges that verify cuts on the source select the same rows on the target.
//!
//! A range is a pair of key values rendered as text on the source and compared on each side
//! in that side's terms. `--repair` deletes the target's rows in a range and copies the
//! source's rows of it back: if the two sides' ranges hold different rows, rows that belong
//! to another range are deleted and never copied back. So a table is cut only when every key
//! column compares alike on both sides; otherwise it is one range.
//!
//! - PostgreSQL: a collatable key column compares alike only under the same collation on
//!   both sides: the same provider, locale, ICU locale and rules, determinism and collation
//!   version, for the column's own collation or, when that is the default, the database's
//!   (an ICU default on a PostgreSQL 15+ target can keep the source's `datcollate` string).
//! - MySQL: integers, decimals and dates whose value the copy keeps as it is. A key the copy
//!   converts (strings and binary compared in MySQL's terms, a DATETIME read in a zone, a
//!   zero date replaced by a fixed one, any `[[mysql.cast]]`) is not cut; nor is a table one
//!   of whose bounds is a zero date, which PostgreSQL cannot read.

use std::collections::BTreeMap;

use tokio_postgres::Client;

use crate::catalog::{KeyColumn, Table};
use crate::chunking::mysql_read::{KeyKind, MyTablePlan};
use crate::chunking::{Chunk, ChunkRange};
use crate::config::ZeroDates;
use crate::error::{db_reason, Error, Result};
use crate::prepare::Origin;
use crate::typemap::mysql::Convert;

/// How a server sorts text: the settings that decide an order, by a common name.
pub type Collation = BTreeMap<String, String>;

/// Settings of `pg_collation` and `pg_database` that decide how text sorts, by common name
/// (absent columns of older servers are absent here too).
const SORT_SETTINGS: [(&str, &str); 14] = [
    ("collprovider", "provider"),
    ("datlocprovider", "provider"),
    ("collcollate", "collate"),
    ("datcollate", "collate"),
    ("collctype", "ctype"),
    ("datctype", "ctype"),
    ("colliculocale", "locale"),
    ("colllocale", "locale"),
    ("daticulocale", "locale"),
    ("datlocale", "locale"),
    ("collicurules", "rules"),
    ("daticurules", "rules"),
    ("collversion", "version"),
    ("datcollversion", "version"),
];

fn sort_settings(row: &serde_json::Value) -> Collation {
    let mut out = Collation::new();
    for (column, name) in SORT_SETTINGS {
        if let Some(v) = row.get(column).filter(|v| !v.is_null()) {
            let text = v.as_str().map_or_else(|| v.to_string(), str::to_string);
            out.insert(name.to_string(), text);
        }
    }
    let deterministic = row
        .get("collisdeterministic")
        .and_then(serde_json::Value::as_bool)
        .unwrap_or(true);
    out.insert("deterministic".into(), deterministic.to_string());
    // Before PostgreSQL 15 every database sorted with libc.
    out.entry("provider".into()).or_insert_with(|| "c".into());
    out
}

/// The database's default collation.
async fn database_collation(client: &Client, side: &str) -> Result<Collation> {
    let row = client
        .query_one(
            "SELECT to_jsonb(d)::text FROM pg_database d WHERE datname = current_database()",
            &[],
        )
        .await
        .map_err(|e| crate::error::query_error(format!("reading the {side}'s collation"), &e))?;
    let text: String = row.get(0);
    Ok(sort_settings(
        &serde_json::from_str(&text).unwrap_or(serde_json::Value::Null),
    ))
}

/// Per key column of `table` (in key order): how it sorts on this side, `None` when its type
/// is not collatable.
async fn key_collations(
    client: &Client,
    table: &Table,
    key: &[KeyColumn],
    database: &Collation,
    side: &str,
) -> Result<Vec<Option<Collation>>> {
    let names: Vec<String> = key.iter().map(|k| k.name.clone()).collect();
    let rows = client
        .query(
            "SELECT a.attname::text, a.attcollation <> 0,
                    (SELECT to_jsonb(c)::text FROM pg_collation c
                     WHERE c.oid = a.attcollation AND c.collprovider <> 'd')
             FROM pg_attribute a
             WHERE a.attrelid = $1::text::regclass AND a.attname = ANY ($2::text[])",
            &[&table.name.quoted(), &names],
        )
        .await
        .map_err(|e| Error::Query {
            what: format!("reading the key collations of {} on the {side}", table.name),
            reason: db_reason(&e),
        })?;
    let mut found = names
        .iter()
        .map(|name| {
            let what = format!("reading the key collations of {} on the {side}", table.name);
            let r = super::row_named(&rows, name, "key column", what)?;
            let collatable: bool = r.get(1);
            let own: Option<String> = r.get(2);
            Ok(collatable.then(|| match own {
                Some(text) => {
                    sort_settings(&serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
                }
                // The database's default collation.
                None => database.clone(),
            }))
        })
        .collect::<Result<Vec<_>>>()?;
    // A key whose unique index compares it in another collation (`name COLLATE "C"`) is cut
    // and compared in that one (see `KeyColumn::collation`): that is the collation that must
    // sort alike on both sides.
    for (k, slot) in key.iter().zip(found.iter_mut()) {
        let Some(name) = &k.collation else { continue };
        let row = client
            .query_opt(
                "SELECT to_jsonb(c)::text FROM pg_collation c WHERE c.oid = $1::text::regcollation",
                &[name],
            )
            .await
            .map_err(|e| Error::Query {
                what: format!(
                    "reading the collation {name} of {}'s key on the {side}",
                    table.name
                ),
                reason: db_reason(&e),
            })?;
        let text: Option<String> = row.map(|r| r.get(0));
        *slot = Some(match text {
            Some(text) => {
                sort_settings(&serde_json::from_str(&text).unwrap_or(serde_json::Value::Null))
            }
            None => database.clone(),
        });
    }
    Ok(found)
}

/// How each side sorts text by default: known for PostgreSQL sources, whose ranges agree with
/// the target's only under the same collations.
pub struct Collations(Option<(Collation, Collation)>);

impl Collations {
    /// Reads both databases' default collations (PostgreSQL sources only).
    pub async fn read(origin: &Origin, target: &Client) -> Result<Collations> {
        Ok(Collations(match origin.postgres() {
            Some(client) => Some((
                database_collation(client, "source").await?,
                database_collation(target, "target").await?,
            )),
            None => None,
        }))
    }

    /// Whether a key range of table `i` cut on the source (read as `read`; `table` on the
    /// target) selects the same rows on the target: the rules in the module comment.
    pub async fn agree(
        &self,
        origin: &Origin,
        target: &Client,
        i: usize,
        read: &Table,
        table: &Table,
        zero_dates: &ZeroDates,
    ) -> Result<bool> {
        let Some(client) = origin.postgres() else {
            return Ok(origin
                .mysql_read(i)
                .is_none_or(|r| mysql_key_kept(r, zero_dates)));
        };
        let (Some((source_db, target_db)), Some(sk), Some(tk)) =
            (&self.0, &read.chunk_key, &table.chunk_key)
        else {
            return Ok(false);
        };
        let a = key_collations(client, read, sk, source_db, "source").await?;
        let b = key_collations(target, table, tk, target_db, "target").await?;
        Ok(a == b)
    }
}

/// Whether a bound of `chunks` of table `i` is a value the target cannot read back (a MySQL
/// zero date).
pub fn unreadable_bound(origin: &Origin, i: usize, chunks: &[Chunk]) -> bool {
    origin
        .mysql_read(i)
        .is_some_and(|r| zero_date_bound(r, chunks))
}

/// Whether a MySQL table's key keeps its values on the way: integers, decimals, and dates or
/// datetimes read as they are (in UTC for TIMESTAMP), zero dates never replaced by a value.
fn mysql_key_kept(read: &MyTablePlan, zero_dates: &ZeroDates) -> bool {
    let Some(key) = &read.key else { return true };
    key.iter().all(|k| {
        let convert = read
            .columns
            .iter()
            .find(|c| c.name == k.name)
            .map(|c| &c.convert);
        let zeros_dropped = matches!(zero_dates, ZeroDates::Null | ZeroDates::Reject);
        match (k.kind, convert) {
            (
                KeyKind::Signed | KeyKind::Unsigned,
                Some(Convert::Int2 | Convert::Int4 | Convert::Int8 | Convert::NumericInt),
            ) => true,
            (KeyKind::Decimal(..), Some(Convert::Numeric)) => true,
            (KeyKind::Date, Some(Convert::Date)) => zeros_dropped,
            (KeyKind::DateTime, Some(Convert::Timestamp | Convert::TimestampTz)) => zeros_dropped,
            _ => false,
        }
    })
}

/// Whether a bound of `chunks` holds a zero or partial-zero date (`0000-00-00`, `2016-07-00`)
/// in a date key column, which the target cannot read back.
fn zero_date_bound(read: &MyTablePlan, chunks: &[Chunk]) -> bool {
    let dates: Vec<bool> = read
        .key
        .iter()
        .flatten()
        .map(|k| matches!(k.kind, KeyKind::Date | KeyKind::DateTime))
        .collect();
    let zero = |v: &String| {
        let date = v.get(..10).unwrap_or("");
        date.starts_with("0000-") || date.get(4..8) == Some("-00-") || date.ends_with("-00")
    };
    let any_zero = |bound: &Option<Vec<String>>| {
        bound
            .iter()
            .flatten()
            .zip(&dates)
            .any(|(v, &date)| date && zero(v))
    };
    chunks.iter().any(|c| match &c.range {
        ChunkRange::Keyset { lower, upper } => any_zero(lower) || any_zero(upper),
        _ => false,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_icu_default_differs_from_libc_with_the_same_datcollate() {
        let libc = sort_settings(&serde_json::json!({
            "datname": "a", "datcollate": "C.UTF-8", "datctype": "C.UTF-8", "datlocprovider": "c",
            "daticulocale": null, "datcollversion": null
        }));
        let icu = sort_settings(&serde_json::json!({
            "datname": "b", "datcollate": "C.UTF-8", "datctype": "C.UTF-8", "datlocprovider": "i",
            "daticulocale": "en-US", "datcollversion": "153.120"
        }));
        let old = sort_settings(&serde_json::json!({
            "datname": "c", "datcollate": "C.UTF-8", "datctype": "C.UTF-8"
        }));
        assert_ne!(libc, icu);
        assert_eq!(libc, old);
    }

    #[test]
    fn zero_date_bounds_are_found() {
        let read = MyTablePlan {
            source: "t".into(),
            columns: Vec::new(),
            filter: None,
            key: Some(vec![crate::chunking::mysql_read::MyKeyColumn {
                name: "at".into(),
                kind: KeyKind::DateTime,
            }]),
            limit: None,
        };
        let mut int_key = read.clone();
        if let Some(k) = int_key.key.as_mut() {
            k[0].kind = KeyKind::Signed;
        }
        let chunk = |v: &str| Chunk {
            table: 0,
            ordinal: 0,
            range: ChunkRange::Keyset {
                lower: Some(vec![v.to_string()]),
                upper: None,
            },
            estimated_rows: 0,
            estimated_bytes: 0,
            resume_after: None,
        };
        assert!(zero_date_bound(
            &read,
            &[chunk("0000-00-00 00:00:00.000000")]
        ));
        assert!(zero_date_bound(&read, &[chunk("2016-07-00")]));
        assert!(zero_date_bound(&read, &[chunk("2016-00-10 10:00:00")]));
        assert!(!zero_date_bound(
            &read,
            &[chunk("2016-07-10 00:00:00.000000")]
        ));
        assert!(!zero_date_bound(&int_key, &[chunk("2016-07-00")]));
    }
}
