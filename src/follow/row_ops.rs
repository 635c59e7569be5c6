//! Binary row changes (the MySQL converter's and a mapped table's): the target table they
//! go to, the statements that apply them, and how a run of them is grouped into multi-row
//! statements before it is sent.
//!
//! Why grouping: one statement per row change costs the target a round of parse, plan and
//! executor start-up per row, which held the MySQL follow to about 8,500 changes/s. A run of
//! changes between two text statements is sent as a few multi-row statements per table:
//! `INSERT .. VALUES (..), (..) ON CONFLICT (key) DO UPDATE` and
//! `DELETE .. WHERE (key) IN (VALUES (..), (..))`.
//!
//! Invariants, which make the grouping give the same target as applying the changes one by
//! one in order:
//! - only the last change of a key in the run is applied: each change carries the whole new
//!   row (or is a delete by key), so the last one decides what the target holds;
//! - a table's changes are grouped only when it is *reorderable* on the live target: it has a
//!   key and no other unique index or exclusion constraint (a swap of a unique value between
//!   two rows must keep its order), no trigger that fires in the session, and no foreign key
//!   in either direction unless the session runs with `session_replication_role = replica`
//!   (which leaves them unchecked, so the order between tables does not matter);
//! - every other change is sent on its own, in order;
//! - a barrier (a cascade the MySQL follow replays) splits the run: what was folded before it
//!   is sent before it, what comes after it is folded after it;
//! - two rows in one multi-row upsert never share a key (the server refuses a statement that
//!   changes a row twice), which holds because keys are compared by their binary fields and
//!   the target's key equality is the source's (the bulk copy loaded the same keys).
//!
//! Statement shapes: the last change of a key is an upsert unless the change says what the
//! target held before the key's first change in the run ([`Prior`]): then a plain `INSERT`
//! for a key the target did not hold, an `UPDATE .. FROM (VALUES ..)` for one it held. Both
//! cost the target less than the upsert (BENCHMARKS.md, "statement shapes"), and both fail
//! loudly when the target disagrees: an `INSERT` on a unique violation, an `UPDATE` that
//! changed fewer rows than it carried (`apply.rs` turns both into a restart that applies the
//! changes again as upserts). Only the MySQL follower knows a prior, and only where the
//! target equals the source (past the overlap and past what a restart may replay).

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::Arc;

use crate::catalog::quote_ident;
use crate::error::{Error, Result};

/// A target table whose changes arrive as fields in PostgreSQL's binary format, one per
/// target column: what the transform of a mapped table and the MySQL converter make for COPY.
/// Such fields go to the server as binary statement parameters, so they never pass through
/// text.
#[derive(Debug, Clone)]
pub struct TargetTable {
    /// Quoted, qualified name.
    pub name: String,
    /// Column names, in the order of the fields.
    pub columns: Vec<String>,
    /// Column types (`format_type`), in the same order.
    pub types: Vec<String>,
    /// Positions of the key columns; empty: keyless (a row is found by all its values).
    pub key: Vec<usize>,
}

impl TargetTable {
    /// The table from the (target) catalog: its copy columns, in the order COPY loads them.
    pub fn from_catalog(t: &crate::catalog::Table) -> Self {
        let cols: Vec<&crate::catalog::Column> = t.copy_columns().collect();
        let key = t
            .key_names()
            .iter()
            .filter_map(|k| cols.iter().position(|c| c.name == *k))
            .collect();
        TargetTable {
            name: t.name.quoted(),
            columns: cols.iter().map(|c| c.name.clone()).collect(),
            types: cols.iter().map(|c| c.type_sql.clone()).collect(),
            key,
        }
    }

    /// `INSERT .. VALUES (..) x rows`, an upsert by key (keyless: a plain insert).
    pub(crate) fn upsert_sql(&self, rows: usize) -> String {
        let mut out = self.insert_sql(rows);
        if self.key.is_empty() {
            return out;
        }
        out.push_str(" ON CONFLICT (");
        let keys: Vec<String> = self
            .key
            .iter()
            .map(|&k| quote_ident(&self.columns[k]))
            .collect();
        out.push_str(&keys.join(", "));
        let rest: Vec<String> = (0..self.columns.len())
            .filter(|i| !self.key.contains(i))
            .map(|i| {
                let q = quote_ident(&self.columns[i]);
                format!("{q} = EXCLUDED.{q}")
            })
            .collect();
        if rest.is_empty() {
            out.push_str(") DO NOTHING");
        } else {
            write!(out, ") DO UPDATE SET {}", rest.join(", ")).ok();
        }
        out
    }

    /// `INSERT .. VALUES (..) x rows` without a conflict clause: rows the target does not
    /// hold (a key it holds fails the statement).
    pub(crate) fn insert_sql(&self, rows: usize) -> String {
        let mut out = format!("INSERT INTO {} (", self.name);
        for (i, c) in self.columns.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            out.push_str(&quote_ident(c));
        }
        out.push_str(") VALUES ");
        let width = self.columns.len();
        for r in 0..rows {
            out.push_str(if r > 0 { ", (" } else { "(" });
            for i in 0..width {
                if i > 0 {
                    out.push_str(", ");
                }
                // The INSERT types each parameter as its column (no cast: a cast to
                // `varchar(n)` would cut a value short instead of refusing it).
                write!(out, "${}", r * width + i + 1).ok();
            }
            out.push(')');
        }
        out
    }

    /// `UPDATE .. SET every non-key column FROM (VALUES (..) x rows) WHERE key = the row's`:
    /// rows the target holds, whole (parameters as for the upsert). Each parameter is cast to
    /// its column's type without its modifier (`base_types`): `varchar(n)` would cut a value
    /// short where the assignment to the column refuses it, as the insert does.
    pub(crate) fn update_sql(&self, rows: usize, base_types: &[String]) -> String {
        let width = self.columns.len();
        let alias: Vec<String> = (0..width).map(|i| format!("c{i}")).collect();
        let sets: Vec<String> = (0..width)
            .filter(|i| !self.key.contains(i))
            .map(|i| format!("{} = v.{}", quote_ident(&self.columns[i]), alias[i]))
            .collect();
        let mut out = format!(
            "UPDATE {} AS t SET {} FROM (VALUES ",
            self.name,
            sets.join(", ")
        );
        for r in 0..rows {
            out.push_str(if r > 0 { ", (" } else { "(" });
            for (i, ty) in base_types.iter().enumerate().take(width) {
                if i > 0 {
                    out.push_str(", ");
                }
                write!(out, "${}::{ty}", r * width + i + 1).ok();
            }
            out.push(')');
        }
        let keys: Vec<String> = self
            .key
            .iter()
            .map(|&k| format!("t.{} = v.{}", quote_ident(&self.columns[k]), alias[k]))
            .collect();
        write!(
            out,
            ") AS v ({}) WHERE {}",
            alias.join(", "),
            keys.join(" AND ")
        )
        .ok();
        out
    }

    /// The key (`$1..`: its fields) as text, when the table holds no row of it (to name a
    /// row an `UPDATE` did not find).
    pub(crate) fn missing_key_sql(&self) -> String {
        let texts: Vec<String> = self
            .key
            .iter()
            .enumerate()
            .map(|(j, &k)| format!("${}::{}::text", j + 1, self.types[k]))
            .collect();
        format!(
            "SELECT ARRAY[{}] WHERE NOT EXISTS (SELECT 1 FROM {} WHERE {})",
            texts.join(", "),
            self.name,
            self.key_where(1)
        )
    }

    /// The delete of `rows` keys (parameters: the key fields of each, in key order); a
    /// keyless table deletes one row equal in every column (`rows` must be 1).
    pub(crate) fn delete_sql(&self, rows: usize) -> String {
        if self.key.is_empty() {
            return format!("DELETE FROM {} WHERE {}", self.name, self.row_where());
        }
        let cast = |n: usize, k: usize| format!("${}::{}", n, self.types[k]);
        if rows == 1 {
            return format!("DELETE FROM {} WHERE {}", self.name, self.key_where(1));
        }
        let cols: Vec<String> = self
            .key
            .iter()
            .map(|&k| quote_ident(&self.columns[k]))
            .collect();
        let mut out = format!(
            "DELETE FROM {} WHERE ({}) IN (VALUES ",
            self.name,
            cols.join(", ")
        );
        let width = self.key.len();
        for r in 0..rows {
            out.push_str(if r > 0 { ", (" } else { "(" });
            for (n, &k) in self.key.iter().enumerate() {
                if n > 0 {
                    out.push_str(", ");
                }
                out.push_str(&cast(r * width + n + 1, k));
            }
            out.push(')');
        }
        out.push(')');
        out
    }

    /// `UPDATE .. SET every column WHERE key = old key`: parameters `$1..$n` the new row,
    /// then the old key's fields.
    pub(crate) fn rekey_sql(&self) -> String {
        let n = self.columns.len();
        let sets: Vec<String> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{} = ${}::{}", quote_ident(c), i + 1, self.types[i]))
            .collect();
        format!(
            "UPDATE {} SET {} WHERE {}",
            self.name,
            sets.join(", "),
            self.key_where(n + 1)
        )
    }

    /// `UPDATE .. SET key = NULL WHERE key = (one row's key)`: the rows holding a key lose it.
    pub(crate) fn detach_sql(&self) -> String {
        let sets: Vec<String> = self
            .key
            .iter()
            .map(|&k| format!("{} = NULL", quote_ident(&self.columns[k])))
            .collect();
        format!(
            "UPDATE {} SET {} WHERE {}",
            self.name,
            sets.join(", "),
            self.key_where(1)
        )
    }

    /// `key = one key`: the key columns equal parameters `$first..`, each cast to its type.
    fn key_where(&self, first: usize) -> String {
        let preds: Vec<String> = self
            .key
            .iter()
            .enumerate()
            .map(|(j, &k)| {
                format!(
                    "{} = ${}::{}",
                    quote_ident(&self.columns[k]),
                    first + j,
                    self.types[k]
                )
            })
            .collect();
        preds.join(" AND ")
    }

    /// One row equal to parameters `$1..$n` in every column (compared as text, which every
    /// type has; NULL equals NULL).
    fn row_where(&self) -> String {
        let preds: Vec<String> = self
            .columns
            .iter()
            .enumerate()
            .map(|(i, c)| {
                format!(
                    "{}::text IS NOT DISTINCT FROM (${}::{})::text",
                    quote_ident(c),
                    i + 1,
                    self.types[i]
                )
            })
            .collect();
        format!(
            "ctid = (SELECT ctid FROM {} WHERE {} LIMIT 1)",
            self.name,
            if preds.is_empty() {
                "true".to_string()
            } else {
                preds.join(" AND ")
            }
        )
    }

    /// Fields a change of this kind carries: every column for an upsert (and for a keyless
    /// delete), the key columns for a keyed delete.
    pub(crate) fn width(&self, kind: RowKind) -> usize {
        match kind {
            RowKind::Delete | RowKind::Detach if !self.key.is_empty() => self.key.len(),
            RowKind::Rekey => self.columns.len() + self.key.len(),
            RowKind::Upsert
            | RowKind::Insert
            | RowKind::Update
            | RowKind::Delete
            | RowKind::Detach => self.columns.len(),
        }
    }

    /// Rows per statement, largest first: the sizes a run is cut into (prepared once each),
    /// within the protocol's 65,535 parameters.
    pub(crate) fn batch_sizes(&self, kind: RowKind) -> impl Iterator<Item = usize> {
        let width = self.width(kind).max(1);
        [512usize, 64, 8]
            .into_iter()
            .filter(move |n| n * width <= u16::MAX as usize)
    }
}

/// A field in PostgreSQL's binary format, passed to the server as it is (`None`: NULL).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Field(pub Option<bytes::Bytes>);

impl tokio_postgres::types::ToSql for Field {
    fn to_sql(
        &self,
        _ty: &tokio_postgres::types::Type,
        out: &mut bytes::BytesMut,
    ) -> std::result::Result<tokio_postgres::types::IsNull, Box<dyn std::error::Error + Sync + Send>>
    {
        match &self.0 {
            Some(b) => {
                out.extend_from_slice(b);
                Ok(tokio_postgres::types::IsNull::No)
            }
            None => Ok(tokio_postgres::types::IsNull::Yes),
        }
    }

    fn accepts(_ty: &tokio_postgres::types::Type) -> bool {
        // The fields were encoded for the column's own type by the transform or converter.
        true
    }

    tokio_postgres::types::to_sql_checked!();
}

/// What a binary row change does.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum RowKind {
    /// Insert, or update by key, the whole row.
    Upsert,
    /// Delete by key (keyless: one row equal in every column).
    Delete,
    /// Set the key columns to NULL in the rows that hold the key (a foreign key's `ON DELETE
    /// SET NULL`, run by the MySQL follow: `binlog/overlap.rs`).
    Detach,
    /// Update the row of the old key (the last fields) to the new row (the first fields): a
    /// key change the target's foreign keys must see as an update, not a delete.
    Rekey,
    /// Insert a row the target does not hold (a statement shape of folded upserts, never a
    /// change's own kind: see [`Prior`]).
    Insert,
    /// Update, whole, a row the target holds (as [`RowKind::Insert`]).
    Update,
}

/// What the target held at a change's key before the change, as far as the source tells:
/// a MySQL insert was of a key the source did not hold, an update or a delete of one it
/// held. It is the target's state only where the target equals the source, which the
/// follower judges (`binlog/stream.rs`); elsewhere a change is [`Prior::Unknown`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Prior {
    /// Either: applied as an upsert.
    #[default]
    Unknown,
    /// The target did not hold the key.
    Absent,
    /// The target held the key.
    Present,
}

impl RowKind {
    pub(crate) fn verb(self) -> &'static str {
        match self {
            RowKind::Upsert => "insert",
            RowKind::Delete => "delete",
            RowKind::Detach => "detach",
            RowKind::Rekey => "key change",
            RowKind::Insert => "plain insert",
            RowKind::Update => "update",
        }
    }
}

/// A table as the applier knows it: its description and its statements, each prepared once
/// (by kind and rows per statement).
pub(crate) struct RowTable {
    pub table: TargetTable,
    /// Changes of different keys may be applied in any order (see [`REORDERABLE_SQL`]).
    pub reorderable: bool,
    /// Its changes must not move past any other change, nor any other change past them (a
    /// replayed cascade, which acts on rows other tables' changes touch).
    pub barrier: bool,
    /// Its changes may be spread over apply lanes by their key's bytes: reorderable, and
    /// two keys are the same row exactly when their bytes are equal ([`BYTE_EQUAL_KEY_SQL`]).
    pub spreadable: bool,
    /// The types of its columns without their modifiers, read from the target: set when its
    /// folded upserts may take the [`RowKind::Insert`] and [`RowKind::Update`] shapes (a
    /// reorderable table with a column besides its key, followed where priors are known).
    pub base_types: Option<Vec<String>>,
    pub statements: std::sync::Mutex<HashMap<(RowKind, usize), tokio_postgres::Statement>>,
}

impl RowTable {
    pub(crate) fn new(table: TargetTable, reorderable: bool) -> Self {
        RowTable {
            table,
            reorderable,
            barrier: false,
            spreadable: false,
            base_types: None,
            statements: std::sync::Mutex::new(HashMap::new()),
        }
    }

    /// A table whose changes keep their place among all others (see [`RowTable::barrier`]).
    pub(crate) fn barrier(table: TargetTable) -> Self {
        RowTable {
            barrier: true,
            ..RowTable::new(table, false)
        }
    }

    /// The prepared statement for `rows` changes of `kind`, if prepared yet.
    pub(crate) fn statement(
        &self,
        kind: RowKind,
        rows: usize,
    ) -> Option<tokio_postgres::Statement> {
        self.statements
            .lock()
            .ok()
            .and_then(|m| m.get(&(kind, rows)).cloned())
    }

    pub(crate) fn keep(&self, kind: RowKind, rows: usize, stmt: tokio_postgres::Statement) {
        if let Ok(mut m) = self.statements.lock() {
            m.insert((kind, rows), stmt);
        }
    }

    pub(crate) fn sql(&self, kind: RowKind, rows: usize) -> String {
        match kind {
            RowKind::Upsert => self.table.upsert_sql(rows),
            RowKind::Delete => self.table.delete_sql(rows),
            RowKind::Detach => self.table.detach_sql(),
            RowKind::Rekey => self.table.rekey_sql(),
            RowKind::Insert => self.table.insert_sql(rows),
            RowKind::Update => self
                .table
                .update_sql(rows, self.base_types.as_deref().unwrap_or_default()),
        }
    }
}

/// One queued binary change.
pub(crate) struct RowOp {
    pub table: Arc<RowTable>,
    pub kind: RowKind,
    pub params: Vec<Field>,
    /// A hash of its key fields ([`RowOp::new`]), taken while they are in the cache: the
    /// folding and the lanes use it long after, when reading the fields again cost the
    /// follower 10% of its CPU in cache misses (`perf`, BENCHMARKS.md "apply lanes").
    pub key_hash: u64,
    /// What the target held at its key before it (see [`Prior`]).
    pub prior: Prior,
}

impl RowOp {
    /// A change, its key hashed with `seed` (random per applier: the keys come from the
    /// source, and a fixed seed would let them be chosen to collide) when its table is
    /// reorderable: only such changes are folded or spread over lanes (0 for the others).
    pub(crate) fn new(
        table: Arc<RowTable>,
        kind: RowKind,
        params: Vec<Field>,
        seed: &foldhash::fast::RandomState,
    ) -> RowOp {
        use std::hash::{BuildHasher, Hash, Hasher};
        let mut op = RowOp {
            table,
            kind,
            params,
            key_hash: 0,
            prior: Prior::Unknown,
        };
        if op.table.reorderable {
            let mut h = seed.build_hasher();
            for f in op.key_fields() {
                f.0.as_deref().hash(&mut h);
            }
            op.key_hash = h.finish();
        }
        op
    }

    /// The key fields of the change (its params for a keyed delete), borrowed.
    pub(crate) fn key_fields(&self) -> impl Iterator<Item = &Field> {
        let (all, at): (&[Field], &[usize]) = match self.kind {
            RowKind::Delete | RowKind::Detach => (&self.params, &[]),
            RowKind::Upsert | RowKind::Rekey | RowKind::Insert | RowKind::Update => {
                (&[], &self.table.table.key)
            }
        };
        all.iter()
            .chain(at.iter().filter_map(|&k| self.params.get(k)))
    }
}

/// A change seen as its key, for folding: hashed by the hash of its key fields taken when
/// it was made, compared by the fields themselves, without copying them (copies and SipHash
/// were 10% of the MySQL follower's CPU, then the cache misses of hashing late as much).
struct KeyOf<'a>(&'a RowOp);

impl std::hash::Hash for KeyOf<'_> {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        h.write_u64(self.0.key_hash);
    }
}

impl PartialEq for KeyOf<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.0
            .key_fields()
            .map(|f| f.0.as_deref())
            .eq(other.0.key_fields().map(|f| f.0.as_deref()))
    }
}

impl Eq for KeyOf<'_> {}

/// What a run of changes is sent as.
pub(crate) enum Batch<'a> {
    /// One change on its own.
    One(&'a RowOp),
    /// Changes of one kind on one reorderable table, at most one per key.
    Many {
        table: &'a Arc<RowTable>,
        kind: RowKind,
        rows: Vec<&'a RowOp>,
    },
}

/// Per key (its binary fields): the position of its last change in the run, and the prior
/// of its first (what the target held before the run touched the key).
type LastOfKey<'a> = HashMap<KeyOf<'a>, (usize, Prior), foldhash::fast::RandomState>;

/// What the live target says about a table (`$1`: its quoted name; `$2`: whether the
/// session runs with `session_replication_role = replica`): its unique indexes, whether it
/// has an exclusion constraint, a foreign key in either direction, and a trigger that fires
/// in this session, over the table and its partitions (a partition may have a unique index,
/// a trigger or a key of its own; `pg_partition_tree` lists nothing for a plain table, so the
/// table itself is added). Read from the target, not the source's catalog: a target
/// made with `--schema existing` may have more.
pub(crate) const REORDERABLE_SQL: &str = "WITH t AS (SELECT $1::text::regclass::oid AS relid \
      UNION SELECT relid FROM pg_partition_tree($1::text::regclass)) SELECT \
      (SELECT count(*) FROM pg_index i WHERE i.indrelid IN (SELECT relid FROM t) \
         AND i.indisunique AND (i.indrelid = $1::text::regclass \
           OR NOT EXISTS (SELECT 1 FROM pg_inherits h WHERE h.inhrelid = i.indexrelid)))::int4, \
      EXISTS (SELECT 1 FROM pg_constraint x WHERE x.conrelid IN (SELECT relid FROM t) \
              AND x.contype = 'x'), \
      EXISTS (SELECT 1 FROM pg_constraint f WHERE f.contype = 'f' \
              AND (f.conrelid IN (SELECT relid FROM t) OR f.confrelid IN (SELECT relid FROM t))), \
      EXISTS (SELECT 1 FROM pg_trigger g WHERE g.tgrelid IN (SELECT relid FROM t) \
              AND NOT g.tgisinternal \
              AND g.tgenabled = ANY (CASE WHEN $2 THEN ARRAY['A', 'R']::\"char\"[] \
                                     ELSE ARRAY['O', 'A']::\"char\"[] END))";

/// Whether the key columns of a table (`$1`: its quoted name, `$2`: the key columns' names)
/// are all of types whose equal values have equal binary forms as the MySQL converter writes
/// them, with deterministic collations: then the bytes of a key name its row, and apply lanes
/// may route changes by them. Not so for `citext`, a nondeterministic collation, floats (0
/// and -0) or `char(n)` (trailing spaces): two lanes would each hold "the same" row.
/// `numeric` is in: the converter writes a column's values at the source column's one scale
/// (DECIMAL(p,s), unsigned BIGINT), so equal values have equal bytes.
pub(crate) const BYTE_EQUAL_KEY_SQL: &str = "SELECT count(*) = cardinality($2::text[]) \
      AND coalesce(bool_and(a.atttypid::regtype = ANY (ARRAY['int2', 'int4', 'int8', 'numeric', \
        'text', 'varchar', 'bytea', 'uuid', 'date', 'timestamp', 'timestamptz', 'bool']::regtype[]) \
        AND coalesce((SELECT c.collisdeterministic FROM pg_collation c \
                      WHERE c.oid = a.attcollation), true)), false) \
      FROM pg_attribute a WHERE a.attrelid = $1::text::regclass AND a.attname = ANY ($2::text[]) \
        AND NOT a.attisdropped";

/// The types of columns `$2` of table `$1` (its quoted name) without their modifiers, in the
/// order named (`character varying`, not `character varying(20)`): what the `UPDATE` shape
/// casts its parameters to.
pub(crate) const BASE_TYPES_SQL: &str = "SELECT coalesce(array_agg(format_type(a.atttypid, NULL) \
        ORDER BY array_position($2::text[], a.attname::text)), '{}') \
      FROM pg_attribute a WHERE a.attrelid = $1::text::regclass AND a.attname = ANY ($2::text[]) \
        AND a.attnum > 0 AND NOT a.attisdropped";

/// Whether a table's changes may be folded, from [`REORDERABLE_SQL`]'s answer: keyed, its key
/// its only unique index, no exclusion constraint, no trigger that would see the changes in
/// another order, and no foreign key unless the session leaves them unchecked.
pub(crate) fn reorderable(
    table: &TargetTable,
    uniques: i32,
    exclusion: bool,
    foreign_key: bool,
    trigger: bool,
    replica: bool,
) -> bool {
    !table.key.is_empty() && uniques == 1 && !exclusion && !trigger && (replica || !foreign_key)
}

/// Groups a run of changes (see the module's invariants).
pub(crate) fn group(run: &[RowOp]) -> Vec<Batch<'_>> {
    let mut out = Vec::new();
    // Per reorderable table (in order of first appearance): the last change of each key.
    let mut tables: Vec<(&Arc<RowTable>, LastOfKey<'_>)> = Vec::new();
    let mut table_at: HashMap<*const RowTable, usize, foldhash::fast::RandomState> =
        HashMap::default();
    for (i, op) in run.iter().enumerate() {
        if op.table.barrier {
            // What was folded before it goes before it, in full.
            fold(run, std::mem::take(&mut tables), &mut out);
            table_at.clear();
            out.push(Batch::One(op));
            continue;
        }
        if !op.table.reorderable {
            out.push(Batch::One(op));
            continue;
        }
        let t = *table_at.entry(Arc::as_ptr(&op.table)).or_insert_with(|| {
            tables.push((&op.table, LastOfKey::default()));
            tables.len() - 1
        });
        tables[t]
            .1
            .entry(KeyOf(op))
            .and_modify(|(last, _)| *last = i)
            .or_insert((i, op.prior));
    }
    fold(run, tables, &mut out);
    out
}

/// Appends the folded changes of `tables` (the last change of each key, by table).
fn fold<'a>(
    run: &'a [RowOp],
    tables: Vec<(&'a Arc<RowTable>, LastOfKey<'a>)>,
    out: &mut Vec<Batch<'a>>,
) {
    for (table, last) in tables {
        let mut at: Vec<(usize, Prior)> = last.into_values().collect();
        at.sort_unstable_by_key(|&(i, _)| i);
        let shaped = table.base_types.is_some();
        // The statement an upsert is sent as: by what the target held before the key's
        // first change in the run (see [`Prior`]).
        let shape = |op: &RowOp, first: Prior| match (op.kind, first) {
            (RowKind::Upsert, Prior::Absent) if shaped => RowKind::Insert,
            (RowKind::Upsert, Prior::Present) if shaped => RowKind::Update,
            (kind, _) => kind,
        };
        // Deletes first, then the rest: no key is in two of them, so the order is free;
        // this one keeps the server's work on a key in the order the source did it.
        for kind in [
            RowKind::Delete,
            RowKind::Upsert,
            RowKind::Insert,
            RowKind::Update,
        ] {
            let rows: Vec<&RowOp> = at
                .iter()
                .map(|&(i, first)| (&run[i], first))
                .filter(|&(op, first)| shape(op, first) == kind)
                .map(|(op, _)| op)
                .collect();
            match rows.len() {
                0 => {}
                1 if kind == rows[0].kind => out.push(Batch::One(rows[0])),
                _ => out.push(Batch::Many { table, kind, rows }),
            }
        }
    }
}

/// Checks a change carries one field per column.
pub(crate) fn check_fields(table: &TargetTable, n: usize) -> Result<()> {
    if n != table.columns.len() {
        return Err(Error::Internal(format!(
            "a change of {} carries {n} fields, the table has {} columns",
            table.name,
            table.columns.len()
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table(key: Vec<usize>) -> TargetTable {
        TargetTable {
            name: "\"public\".\"t\"".into(),
            columns: vec!["id".into(), "v".into()],
            types: vec!["integer".into(), "text".into()],
            key,
        }
    }

    #[test]
    fn a_detach_nulls_the_key_of_the_rows_that_hold_it() {
        let t = TargetTable {
            name: "\"public\".\"child\"".into(),
            columns: vec!["tenant".into(), "parent_id".into()],
            types: vec!["integer".into(), "bigint".into()],
            key: vec![0, 1],
        };
        assert_eq!(
            t.detach_sql(),
            "UPDATE \"public\".\"child\" SET \"tenant\" = NULL, \"parent_id\" = NULL \
             WHERE \"tenant\" = $1::integer AND \"parent_id\" = $2::bigint"
        );
    }

    #[test]
    fn multi_row_statements_number_their_parameters_row_by_row() {
        let t = table(vec![0]);
        assert_eq!(
            t.upsert_sql(2),
            "INSERT INTO \"public\".\"t\" (\"id\", \"v\") VALUES ($1, $2), ($3, $4) \
             ON CONFLICT (\"id\") DO UPDATE SET \"v\" = EXCLUDED.\"v\""
        );
        assert_eq!(
            t.delete_sql(3),
            "DELETE FROM \"public\".\"t\" WHERE (\"id\") IN (VALUES ($1::integer), ($2::integer), \
             ($3::integer))"
        );
        assert_eq!(
            t.delete_sql(1),
            "DELETE FROM \"public\".\"t\" WHERE \"id\" = $1::integer"
        );
    }

    fn op(t: &Arc<RowTable>, kind: RowKind, id: u8, v: &str) -> RowOp {
        let id = Field(Some(bytes::Bytes::copy_from_slice(&[0, 0, 0, id])));
        let params = match kind {
            RowKind::Upsert | RowKind::Insert | RowKind::Update => {
                vec![id, Field(Some(bytes::Bytes::copy_from_slice(v.as_bytes())))]
            }
            RowKind::Delete | RowKind::Detach | RowKind::Rekey => vec![id],
        };
        // One seed for every change, as one applier has: equal keys hash equal.
        static SEED: std::sync::OnceLock<foldhash::fast::RandomState> = std::sync::OnceLock::new();
        RowOp::new(t.clone(), kind, params, SEED.get_or_init(Default::default))
    }

    fn shape(batches: &[Batch<'_>]) -> Vec<String> {
        batches
            .iter()
            .map(|b| match b {
                Batch::One(op) => format!("one {} {}", op.table.table.name, op.kind.verb()),
                Batch::Many { table, kind, rows } => {
                    let vals: Vec<String> = rows
                        .iter()
                        .map(|r| {
                            r.params
                                .iter()
                                .map(|f| format!("{:?}", f.0.as_deref().unwrap_or_default()))
                                .collect::<Vec<_>>()
                                .join("/")
                        })
                        .collect();
                    format!(
                        "many {} {} {}",
                        table.table.name,
                        kind.verb(),
                        vals.join(" ")
                    )
                }
            })
            .collect()
    }

    #[test]
    fn the_last_change_of_each_key_is_applied() {
        let a = Arc::new(RowTable::new(table(vec![0]), true));
        let run = vec![
            op(&a, RowKind::Upsert, 1, "x"),
            op(&a, RowKind::Upsert, 2, "y"),
            op(&a, RowKind::Delete, 1, ""),
            op(&a, RowKind::Upsert, 3, "z"),
            op(&a, RowKind::Upsert, 2, "y2"),
            op(&a, RowKind::Delete, 4, ""),
        ];
        let got = shape(&group(&run));
        assert_eq!(
            got,
            [
                "many \"public\".\"t\" delete [0, 0, 0, 1] [0, 0, 0, 4]",
                "many \"public\".\"t\" insert [0, 0, 0, 3]/[122] [0, 0, 0, 2]/[121, 50]",
            ],
        );
    }

    #[test]
    fn unreorderable_tables_and_sessions_keep_every_change_in_order() {
        let a = Arc::new(RowTable::new(table(vec![0]), false));
        let run = vec![
            op(&a, RowKind::Upsert, 1, "x"),
            op(&a, RowKind::Upsert, 1, "y"),
        ];
        assert_eq!(shape(&group(&run)).len(), 2);
        let b = Arc::new(RowTable::new(table(vec![0]), true));
        let run = vec![
            op(&b, RowKind::Upsert, 1, "x"),
            op(&b, RowKind::Upsert, 2, "y"),
        ];
        assert_eq!(shape(&group(&run)).len(), 1);
        let t = table(vec![0]);
        assert!(reorderable(&t, 1, false, true, false, true));
        assert!(
            !reorderable(&t, 1, false, true, false, false),
            "foreign keys checked"
        );
        assert!(
            !reorderable(&t, 2, false, false, false, true),
            "a second unique index"
        );
        assert!(
            !reorderable(&t, 1, false, false, true, true),
            "a trigger fires"
        );
        assert!(
            !reorderable(&table(vec![]), 0, false, false, false, true),
            "keyless"
        );
    }

    #[test]
    fn a_barrier_keeps_its_place_among_folded_changes() {
        let a = Arc::new(RowTable::new(table(vec![0]), true));
        let cascade = Arc::new(RowTable::barrier(table(vec![0])));
        let run = vec![
            op(&a, RowKind::Upsert, 1, "x"),
            op(&a, RowKind::Upsert, 2, "y"),
            op(&cascade, RowKind::Delete, 7, ""),
            op(&a, RowKind::Upsert, 1, "z"),
        ];
        let got = shape(&group(&run));
        assert_eq!(got.len(), 3, "{got:?}");
        // The folded upserts of keys 1 and 2, the barrier, then key 1's later version.
        assert!(
            got[0].starts_with("many \"public\".\"t\" insert [0, 0, 0, 1]/[120]"),
            "{got:?}"
        );
        assert_eq!(got[1], "one \"public\".\"t\" delete", "{got:?}");
        assert_eq!(got[2], "one \"public\".\"t\" insert", "{got:?}");
    }

    #[test]
    fn new_and_existing_rows_take_the_insert_and_update_shapes() {
        let t = table(vec![0]);
        assert_eq!(
            t.insert_sql(2),
            "INSERT INTO \"public\".\"t\" (\"id\", \"v\") VALUES ($1, $2), ($3, $4)"
        );
        // Cast to the types without modifiers: the assignment refuses what does not fit.
        assert_eq!(
            t.update_sql(2, &["integer".into(), "character varying".into()]),
            "UPDATE \"public\".\"t\" AS t SET \"v\" = v.c1 FROM (VALUES \
             ($1::integer, $2::character varying), ($3::integer, $4::character varying)) \
             AS v (c0, c1) WHERE t.\"id\" = v.c0"
        );
    }

    /// An upsert is sent by what the target held before the key's first change in the run:
    /// the first change's prior, whatever came between.
    #[test]
    fn a_keys_first_prior_decides_its_statement() {
        let mut shaped = RowTable::new(table(vec![0]), true);
        shaped.base_types = Some(vec!["integer".into(), "text".into()]);
        let a = Arc::new(shaped);
        let with = |kind, id, v, prior| {
            let mut o = op(&a, kind, id, v);
            o.prior = prior;
            o
        };
        let run = vec![
            // New, changed, then deleted and inserted again: still new to the target.
            with(RowKind::Upsert, 1, "a", Prior::Absent),
            with(RowKind::Upsert, 1, "b", Prior::Present),
            with(RowKind::Delete, 1, "", Prior::Present),
            with(RowKind::Upsert, 1, "c", Prior::Absent),
            // Held, deleted, inserted again: held.
            with(RowKind::Delete, 2, "", Prior::Present),
            with(RowKind::Upsert, 2, "d", Prior::Absent),
            // Held and changed.
            with(RowKind::Upsert, 3, "e", Prior::Present),
            // Not known.
            with(RowKind::Upsert, 4, "f", Prior::Unknown),
            with(RowKind::Upsert, 5, "g", Prior::Unknown),
            // New, then deleted: the delete stays (the target decides, not the prior).
            with(RowKind::Upsert, 6, "h", Prior::Absent),
            with(RowKind::Delete, 6, "", Prior::Present),
        ];
        assert_eq!(
            shape(&group(&run)),
            [
                "one \"public\".\"t\" delete",
                "many \"public\".\"t\" insert [0, 0, 0, 4]/[102] [0, 0, 0, 5]/[103]",
                "many \"public\".\"t\" plain insert [0, 0, 0, 1]/[99]",
                "many \"public\".\"t\" update [0, 0, 0, 2]/[100] [0, 0, 0, 3]/[101]",
            ],
        );
        // A table without the shapes (no base types): every upsert stays one.
        let plain = Arc::new(RowTable::new(table(vec![0]), true));
        let mut o = op(&plain, RowKind::Upsert, 1, "a");
        o.prior = Prior::Absent;
        assert_eq!(shape(&group(&[o])), ["one \"public\".\"t\" insert"]);
    }

    #[test]
    fn batch_sizes_stay_within_the_parameter_limit() {
        let mut t = table(vec![0]);
        t.columns = (0..300).map(|i| format!("c{i}")).collect();
        assert_eq!(
            t.batch_sizes(RowKind::Upsert).collect::<Vec<_>>(),
            vec![64, 8]
        );
        assert_eq!(
            t.batch_sizes(RowKind::Delete).collect::<Vec<_>>(),
            vec![512, 64, 8]
        );
    }
}
