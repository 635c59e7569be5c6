//! The row hash that `verify` sums in the servers for unmapped PostgreSQL tables.
//!
//! A chunk's checksum is `count(*)` and the sum of its rows' 64-bit hashes. The row hash must
//! change whenever a user would call the row different, and the sum must not let changes in
//! different rows cancel:
//! - **A non-linear finaliser per row.** `hash_record_extended` combines column hashes
//!   linearly (`h = 31 * h + hash(column)`), so a plain sum of it depends only on each
//!   column's multiset of values: balances swapped between accounts, or a payload attached to
//!   another key, sum alike. Each record hash is therefore mixed once more,
//!   `hashint8extended(h, h)` (the record hash as key and as seed: all 64 bits go through the
//!   mixing), inside an `OFFSET 0` subquery so the server computes `h` once per row.
//! - **Identity, not equality.** A type's hash function hashes alike what its equality calls
//!   equal: float `-0` and `0`, interval `'1 day'` and `'24 hours'`, arrays of another shape or
//!   bounds, unconstrained `numeric` 1.5 and 1.50, numeric `NaN` and `Infinity`, and enum
//!   labels by the OID each database gave them. Only the types whose hash sees every bit of
//!   the value ([`HASH_EXACT`]) are hashed by it (text under `COLLATE "C"`, so a
//!   nondeterministic collation cannot fold case); every other column is hashed through its
//!   binary send function (the bytes binary COPY carries, so exactly what the copy moved), or
//!   through its text where those bytes name type OIDs, which differ between databases
//!   (composites, arrays and ranges of user-defined types).
//! - **Seeds.** Inside a record a NULL hashes as 0, float zero and numeric `NaN` hash to the
//!   seed and numeric zero to the seed minus one: the seed is never 0 or 1. Each side's seed
//!   also folds in its column types, so a target column of another type whose hash happens
//!   to agree (`integer` -1 and `oid` 4294967295) still differs.
//!
//! Invariant: the method of each column is chosen from both sides' types together, so equal
//! types give the same expression on both sides, and equal values the same hash.

use tokio_postgres::Client;

use crate::catalog::{quote_ident, Table};
use crate::error::{db_reason, Error, Result};

/// Base types whose extended hash function sees every bit of the value (with `numeric`
/// only under a type modifier, which fixes the scale): bool, bytea, "char", name, int8, int2,
/// int4, text, oid, cidr, macaddr8, macaddr, inet, varchar, date, time, timestamp,
/// timestamptz, timetz, numeric, uuid, pg_lsn, jsonb. `jsonb` is the one approximation: its
/// hash sees numbers by value, so `1.0` and `1.00` inside a document hash alike (its send
/// function renders the whole document as text, which costs about a quarter more verify time
/// on the benchmark's jsonb table).
const HASH_EXACT: [u32; 23] = [
    16, 17, 18, 19, 20, 21, 23, 25, 26, 650, 774, 829, 869, 1043, 1082, 1083, 1114, 1184, 1266,
    1700, 2950, 3220, 3802,
];
const NUMERIC: u32 = 1700;
/// Types with a smaller OID come with the server: the same OID in every database.
const FIRST_USER_OID: u32 = 16384;

/// One column's type on one side, as the row hash needs it.
#[derive(Debug, Clone)]
pub struct ColumnType {
    /// Column name.
    pub name: String,
    /// Base type (domains resolved) as `schema.name`, for the seed.
    base_name: String,
    /// Base type OID.
    base: u32,
    /// Base type with its modifier (`numeric(12,2)`), to cast a domain value to it.
    base_sql: String,
    /// Declared through a domain.
    domain: bool,
    /// Type modifier in effect (-1 when none).
    typmod: i32,
    /// `c`: composite.
    composite: bool,
    /// Collatable.
    collatable: bool,
    /// Element type of an array, subtype of a range or multirange.
    inner: Option<u32>,
    /// The send function, schema-qualified, and its bare name.
    send: Option<(String, String)>,
}

/// How one column enters the row hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum How {
    /// The type's own hash function.
    Hash,
    /// Its binary send function's bytes.
    Send,
    /// Its text output.
    Text,
}

impl ColumnType {
    fn hash_exact(&self) -> bool {
        HASH_EXACT.contains(&self.base) && (self.base != NUMERIC || self.typmod >= 0)
    }

    /// The send function, when its bytes hold no type OID.
    fn send_fn(&self) -> Option<&str> {
        let (qualified, bare) = self.send.as_ref()?;
        let user_inner = self.inner.is_some_and(|t| t >= FIRST_USER_OID);
        let names_oids = match bare.as_str() {
            "record_send" => true,
            "array_send" | "range_send" | "multirange_send" => user_inner,
            _ => false,
        };
        (!self.composite && !names_oids).then_some(qualified.as_str())
    }

    fn sql(&self, how: How) -> String {
        let id = quote_ident(&self.name);
        let typed = if self.domain {
            format!("{id}::{}", self.base_sql)
        } else {
            id.clone()
        };
        match (how, self.send_fn()) {
            (How::Hash, _) if self.collatable => format!("{typed} COLLATE \"C\""),
            (How::Hash, _) => typed,
            (How::Send, Some(f)) => format!("{f}({typed})"),
            _ => format!("{id}::text"),
        }
    }
}

/// The types of `table`'s copied columns on the server behind `client`, in the table's column
/// order. A read of the catalog only (it cannot fail on an unusual type and so abort the
/// session's transaction); a column missing on that side is an error naming it.
pub async fn column_types(client: &Client, table: &Table, side: &str) -> Result<Vec<ColumnType>> {
    let names: Vec<String> = table.copy_columns().map(|c| c.name.clone()).collect();
    let fail = |e: &tokio_postgres::Error| Error::Query {
        what: format!("reading the column types of {} on the {side}", table.name),
        reason: db_reason(e),
    };
    let rows = client
        .query(COLUMN_TYPES_SQL, &[&table.name.quoted(), &names])
        .await
        .map_err(|e| fail(&e))?;
    names
        .iter()
        .map(|name| {
            let what = format!("reading the column types of {} on the {side}", table.name);
            let r = super::row_named(&rows, name, "column", what)?;
            let send: Option<String> = r.get(9);
            let bare: Option<String> = r.get(10);
            Ok(ColumnType {
                name: name.clone(),
                base_name: r.get(1),
                base: r.get(2),
                base_sql: r.get(3),
                domain: r.get(4),
                typmod: r.get(5),
                composite: r.get(6),
                collatable: r.get(7),
                inner: r.get(8),
                send: send.zip(bare),
            })
        })
        .collect()
}

/// Per copied column (by name): its base type after resolving domains (the modifier of the
/// nearest level that has one), whether it is composite or collatable, the element type of
/// an array or subtype of a range/multirange (multiranges exist from PostgreSQL 14 on, hence
/// the JSON lookup), and the send function.
const COLUMN_TYPES_SQL: &str = "
WITH RECURSIVE chain AS (
  SELECT a.attname::text AS name, a.atttypid AS typ, a.atttypmod AS typmod, 0 AS depth
  FROM pg_attribute a
  WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped
    AND a.attname = ANY ($2::text[])
  UNION ALL
  SELECT c.name, t.typbasetype, CASE WHEN c.typmod >= 0 THEN c.typmod ELSE t.typtypmod END,
         c.depth + 1
  FROM chain c JOIN pg_type t ON t.oid = c.typ
  WHERE t.typtype = 'd'
), base AS (
  SELECT DISTINCT ON (name) name, typ, typmod, depth FROM chain ORDER BY name, depth DESC
)
SELECT b.name, format('%s.%s', n.nspname, t.typname), t.oid, format_type(t.oid, b.typmod),
       b.depth > 0, b.typmod, t.typtype = 'c', t.typcollation <> 0,
       coalesce(CASE WHEN t.typlen = -1 AND t.typelem <> 0 THEN t.typelem END,
                (SELECT r.rngsubtype FROM pg_range r
                 WHERE r.rngtypid = t.oid OR to_jsonb(r) ->> 'rngmultitypid' = t.oid::text
                 LIMIT 1)),
       (SELECT format('%I.%I', pn.nspname, p.proname) FROM pg_proc p
        JOIN pg_namespace pn ON pn.oid = p.pronamespace WHERE p.oid = t.typsend),
       (SELECT p.proname::text FROM pg_proc p WHERE p.oid = t.typsend)
FROM base b JOIN pg_type t ON t.oid = b.typ JOIN pg_namespace n ON n.oid = t.typnamespace";

/// The SQL of each side's 64-bit record hash `h` (before the finaliser [`finalise`]), from
/// both sides' column types in the same order. `record`: both servers have
/// `hash_record_extended` (PostgreSQL 14+); else the record's text is hashed.
pub fn record_hashes(
    source: &[ColumnType],
    target: &[ColumnType],
    record: bool,
) -> (String, String) {
    let hows: Vec<How> = source
        .iter()
        .zip(target)
        .map(|(s, t)| {
            if s.hash_exact() && t.hash_exact() {
                How::Hash
            } else if s.send_fn().is_some() && t.send_fn().is_some() {
                How::Send
            } else {
                How::Text
            }
        })
        .collect();
    let side = |cols: &[ColumnType]| {
        let fields: Vec<String> = cols.iter().zip(&hows).map(|(c, &h)| c.sql(h)).collect();
        let seed = seed(cols);
        if record {
            format!("hash_record_extended(ROW({}), {seed})", fields.join(", "))
        } else {
            format!("hashtextextended(ROW({})::text, {seed})", fields.join(", "))
        }
    };
    (side(source), side(target))
}

/// The seed of one side: its base types folded in, never 0 or 1.
fn seed(cols: &[ColumnType]) -> i64 {
    let parts: Vec<&[u8]> = cols
        .iter()
        .flat_map(|c| [c.base_name.as_bytes(), b","])
        .collect();
    let s = crate::state::fnv1a(&parts) as i64;
    if s == 0 || s == 1 {
        s + 2
    } else {
        s
    }
}

/// The finalised row hash over a subquery column `h` holding the record hash.
pub fn finalise(h: &str) -> String {
    format!("hashint8extended({h}, {h})")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(name: &str, base: u32, typmod: i32, send: &str) -> ColumnType {
        ColumnType {
            name: name.into(),
            base_name: format!("pg_catalog.t{base}"),
            base,
            base_sql: format!("t{base}"),
            domain: false,
            typmod,
            composite: false,
            collatable: base == 25,
            inner: None,
            send: Some((format!("pg_catalog.{send}"), send.into())),
        }
    }

    #[test]
    fn exact_hashes_are_used_only_when_both_sides_have_them() {
        let src = vec![
            col("id", 23, -1, "int4send"),
            col("t", 25, -1, "textsend"),
            col("f", 701, -1, "float8send"),
            col("n", NUMERIC, -1, "numeric_send"),
            col("m", NUMERIC, 655366, "numeric_send"),
        ];
        let (a, b) = record_hashes(&src, &src, true);
        assert_eq!(a, b);
        assert!(a.contains("\"t\" COLLATE \"C\""), "{a}");
        assert!(a.contains("pg_catalog.float8send(\"f\")"), "{a}");
        assert!(a.contains("pg_catalog.numeric_send(\"n\")"), "{a}");
        assert!(a.contains(", \"m\")"), "{a}");
        // numeric(10,2) on one side, numeric on the other: both send their bytes.
        let mut tgt = src.clone();
        tgt[4].typmod = -1;
        let (a, b) = record_hashes(&src, &tgt, true);
        assert!(
            a.contains("numeric_send(\"m\")") && b.contains("numeric_send(\"m\")"),
            "{a}"
        );
        // Another type on one side changes the seed.
        tgt[0] = col("id", 26, -1, "oidsend");
        let (a, b) = record_hashes(&src, &tgt, true);
        assert_ne!(a.rsplit(", ").next(), b.rsplit(", ").next());
    }

    #[test]
    fn bytes_naming_user_type_oids_are_hashed_as_text() {
        let mut enum_array = col("e", 20000, -1, "array_send");
        enum_array.inner = Some(20001);
        let mut int_array = col("a", 1007, -1, "array_send");
        int_array.inner = Some(23);
        let mut comp = col("c", 20002, -1, "record_send");
        comp.composite = true;
        let cols = vec![enum_array, int_array, comp];
        let (a, _) = record_hashes(&cols, &cols, true);
        assert!(a.contains("\"e\"::text"), "{a}");
        assert!(a.contains("pg_catalog.array_send(\"a\")"), "{a}");
        assert!(a.contains("\"c\"::text"), "{a}");
    }

    #[test]
    fn seeds_avoid_zero_and_one() {
        for cols in [vec![], vec![col("x", 23, -1, "int4send")]] {
            let s = seed(&cols);
            assert!(s != 0 && s != 1);
        }
    }
}
