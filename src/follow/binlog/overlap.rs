//! The end of a MySQL follow's overlap with the copy: where the target's foreign keys start
//! to act on applied changes, and the cascades the binary log never carried.
//!
//! The stream starts before every snapshot the copy read in, so at first it replays changes
//! whose outcome the target may already hold; with the target's keys acting, such a replay
//! can be refused (a child inserted, then deleted with its parent, before the copy read
//! either). The overlap therefore applies with `session_replication_role = replica`. But
//! InnoDB's `ON DELETE CASCADE` / `SET NULL` are not in the binary log: a parent deleted in
//! the overlap (or replaced: `REPLACE INTO` deletes, cascading, then inserts) would leave on
//! the target the children the copy read before the delete, or that the replay inserted.
//! So, in the overlap, each replayed delete of a parent row is followed, in stream order,
//! by the delete (or nulling) of the rows of followed tables that name it through such a key
//! ([`Cascades`], `Applier::cascade`): every other change of those
//! rows is in the binary log, so replaying the cascades where InnoDB ran them gives what the
//! source holds. One level deep: a cascade's own cascades leave orphans, which the end of
//! the overlap removes (unless a row of the same key was inserted again in the overlap).
//! Leaving the overlap runs the cascades once more, set-based: for each
//! valid foreign key between followed tables that cascades or nulls on delete and cannot change
//! by a parent's key update (`ON UPDATE` RESTRICT / NO ACTION, so an orphan can only come
//! from a delete), the orphans are deleted or nulled. Orphans of keys that also act on
//! update are ambiguous (the parent may have moved, not left), and those of keys left `NOT
//! VALID` may be the source's own: they are counted and named in a warning, never guessed at.
//! Keys are the target's: with `--schema existing`, a key only the target has is taken for
//! the source's. A parent key changed by `ON UPDATE CASCADE` inside the overlap is not
//! replayed (its children are counted as orphans at the end).
//!
//! Invariant: the repair, the switch of the session to `origin` and the flag that the
//! overlap is over (`keys_act` in `howdah.follow`) commit in one transaction, so a follower
//! killed on the way does it again, never twice and never half.

use std::collections::HashMap;

use tokio_postgres::Client;

use crate::catalog::quote_ident;
use crate::error::{query_error, Result};
use crate::follow::row_ops::{RowKind, TargetTable};

/// A foreign key's `ON DELETE CASCADE` or `SET NULL` between two followed tables, as the
/// MySQL follow replays it in the overlap.
pub struct Cascade {
    /// The constraint's name (for the applier's statement cache).
    pub(crate) name: String,
    /// The child table seen through the key: its key columns only, typed as the parent's
    /// referenced columns (the statement's parameters are the parent's fields).
    pub(crate) view: TargetTable,
    /// Positions, in the parent's target columns, of the referenced columns.
    pub(crate) parent_columns: Vec<usize>,
    /// Delete the children (`CASCADE`) or null their key (`SET NULL`).
    pub(crate) kind: RowKind,
}

/// The target's foreign keys between followed tables that act on a parent's change, read
/// once when the follower starts: the cascades replayed in the overlap, the tables whose key
/// changes must reach the target as updates, and the keys the end of the overlap sweeps.
#[derive(Default)]
pub struct Cascades {
    on_delete: HashMap<String, Vec<Cascade>>,
    on_update: std::collections::HashSet<String>,
    keys: Vec<CascadingKey>,
}

impl Cascades {
    /// The cascades a delete of a row of `parent` (its target name) runs.
    pub fn of(&self, parent: &str) -> &[Cascade] {
        self.on_delete.get(parent).map_or(&[], Vec::as_slice)
    }

    /// Whether a key change of a row of `parent` must reach the target as an `UPDATE`: a
    /// key to it acts on update (`CASCADE`, `SET NULL`, `SET DEFAULT`), which a delete and an
    /// insert would turn into the key's `ON DELETE` action. InnoDB ran the update's action,
    /// and the binary log does not carry it.
    pub fn updates_key(&self, parent: &str) -> bool {
        self.on_update.contains(parent)
    }
}

const KEYS_SQL: &str = "WITH f AS (SELECT u.n, u.name::regclass AS rel \
      FROM unnest($1::text[]) WITH ORDINALITY u(name, n)) \
    SELECT c.conname::text, fc.n::int4, fp.n::int4, c.confdeltype::text, c.confupdtype::text, \
      ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(att, n) \
            JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.att ORDER BY k.n), \
      ARRAY(SELECT a.attname::text FROM unnest(c.confkey) WITH ORDINALITY k(att, n) \
            JOIN pg_attribute a ON a.attrelid = c.confrelid AND a.attnum = k.att ORDER BY k.n), \
      ARRAY(SELECT format_type(a.atttypid, a.atttypmod) FROM unnest(c.confkey) \
            WITH ORDINALITY k(att, n) JOIN pg_attribute a ON a.attrelid = c.confrelid \
            AND a.attnum = k.att ORDER BY k.n), \
      c.convalidated \
    FROM pg_constraint c JOIN f fc ON fc.rel = c.conrelid JOIN f fp ON fp.rel = c.confrelid \
    WHERE c.contype = 'f' AND c.conparentid = 0 \
      AND (c.confdeltype IN ('c', 'n', 'd') OR c.confupdtype IN ('c', 'n', 'd')) \
    ORDER BY 2, 1";

/// Reads the target's keys between the followed `tables` that act on a parent's delete or
/// key change.
pub async fn cascades(client: &Client, tables: &[&TargetTable]) -> Result<Cascades> {
    let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
    let rows = client
        .query(KEYS_SQL, &[&names])
        .await
        .map_err(|e| query_error("reading the target's cascading foreign keys", &e))?;
    let mut out = Cascades::default();
    for r in rows {
        let name: String = r.get(0);
        let child = tables[(r.get::<_, i32>(1) - 1) as usize];
        let parent = tables[(r.get::<_, i32>(2) - 1) as usize];
        let on_delete = r.get::<_, String>(3).chars().next().unwrap_or('a');
        let on_update = r.get::<_, String>(4).chars().next().unwrap_or('a');
        let child_columns: Vec<String> = r.get(5);
        let referenced: Vec<String> = r.get(6);
        let types: Vec<String> = r.get(7);
        out.keys.push(CascadingKey {
            name: name.clone(),
            child: child.name.clone(),
            parent: parent.name.clone(),
            on_delete,
            on_update,
            child_columns: child_columns.iter().map(|c| quote_ident(c)).collect(),
            parent_columns: referenced.iter().map(|c| quote_ident(c)).collect(),
            valid: r.get(8),
        });
        if matches!(on_update, 'c' | 'n' | 'd') {
            out.on_update.insert(parent.name.clone());
        }
        let kind = match on_delete {
            'c' => RowKind::Delete,
            'n' => RowKind::Detach,
            _ => continue,
        };
        let Some(parent_columns) = referenced
            .iter()
            .map(|c| parent.columns.iter().position(|p| p == c))
            .collect::<Option<Vec<usize>>>()
        else {
            // A referenced column the follow does not carry (not copied): nothing to key on.
            continue;
        };
        let width = child_columns.len();
        out.on_delete
            .entry(parent.name.clone())
            .or_default()
            .push(Cascade {
                name: format!("{} {name}", child.name),
                view: TargetTable {
                    name: child.name.clone(),
                    columns: child_columns,
                    types,
                    key: (0..width).collect(),
                },
                parent_columns,
                kind,
            });
    }
    Ok(out)
}

/// A foreign key between followed tables whose parent's changes cascade (names quoted).
struct CascadingKey {
    name: String,
    child: String,
    parent: String,
    on_delete: char,
    on_update: char,
    child_columns: Vec<String>,
    parent_columns: Vec<String>,
    /// Not `NOT VALID`: the copied rows kept it, so an orphan now is the overlap's.
    valid: bool,
}

impl CascadingKey {
    /// Rows of the child (`o`) whose key is set but names no parent row.
    fn orphans(&self) -> String {
        let set = self
            .child_columns
            .iter()
            .map(|c| format!("o.{c} IS NOT NULL"))
            .collect::<Vec<_>>()
            .join(" AND ");
        let matches = self
            .child_columns
            .iter()
            .zip(&self.parent_columns)
            .map(|(c, p)| format!("p.{p} = o.{c}"))
            .collect::<Vec<_>>()
            .join(" AND ");
        format!(
            "{set} AND NOT EXISTS (SELECT 1 FROM {} p WHERE {matches})",
            self.parent
        )
    }

    /// The statement that runs the cascade the binary log left out, when it is certain.
    fn repair(&self) -> Option<String> {
        if !self.valid || !matches!(self.on_update, 'a' | 'r') {
            return None;
        }
        match self.on_delete {
            'c' => Some(format!(
                "DELETE FROM {} o WHERE {}",
                self.child,
                self.orphans()
            )),
            'n' => Some(format!(
                "UPDATE {} o SET {} WHERE {}",
                self.child,
                self.child_columns
                    .iter()
                    .map(|c| format!("{c} = NULL"))
                    .collect::<Vec<_>>()
                    .join(", "),
                self.orphans()
            )),
            _ => None,
        }
    }
}

/// Ends the overlap on `client` (between transactions, nothing queued): in one transaction,
/// the session's foreign keys and triggers start to act, the cascades the overlap missed are
/// run over the keys of `cascades` (read when the follower started), and `done_sql`
/// (marking the overlap over in the state) runs.
pub async fn leave(client: &Client, cascades: &Cascades, done_sql: &str) -> Result<()> {
    let fail = |what: &'static str| move |e: tokio_postgres::Error| query_error(what, &e);
    let keys = &cascades.keys;
    client
        .batch_execute("BEGIN; SET session_replication_role = origin")
        .await
        .map_err(fail("letting the target's foreign keys act"))?;
    let r = async {
        // One pass: the session's keys act, so a repair's deletes cascade further on their
        // own.
        for k in keys {
            let Some(sql) = k.repair() else { continue };
            let n = client
                .execute(&sql, &[])
                .await
                .map_err(fail("running the cascades the binary log left out"))?;
            if n > 0 {
                tracing::info!(
                    "foreign key {} of {}: {n} row(s) whose parent the source deleted during \
                     the copy {} (InnoDB's cascade, which the binary log does not carry)",
                    k.name,
                    k.child,
                    if k.on_delete == 'c' {
                        "deleted"
                    } else {
                        "set to NULL"
                    }
                );
            }
        }
        for k in keys.iter().filter(|k| k.repair().is_none()) {
            let n: i64 = client
                .query_one(
                    &format!("SELECT count(*) FROM {} o WHERE {}", k.child, k.orphans()),
                    &[],
                )
                .await
                .map_err(fail("counting rows without their parent"))?
                .get(0);
            if n > 0 && k.valid {
                tracing::warn!(
                    "foreign key {} of {}: {n} row(s) name no row of {}: the source \
                     cascaded a parent's change during the copy, which the binary log \
                     does not carry, and the key acts on updates too, so howdah cannot \
                     tell a moved parent from a deleted one. `howdah verify` lists them; \
                     `howdah verify --repair` copies them again",
                    k.name,
                    k.child,
                    k.parent
                );
            } else if n > 0 {
                tracing::warn!(
                    "foreign key {} of {} is NOT VALID: {n} row(s) name no row of {}, \
                     orphans the source holds, or rows whose parent the source deleted \
                     during the copy (a cascade the binary log does not carry). `howdah \
                     verify` tells them apart; `howdah verify --repair` fixes the second",
                    k.name,
                    k.child,
                    k.parent
                );
            }
        }
        client
            .batch_execute(&format!("{done_sql}\nCOMMIT"))
            .await
            .map_err(fail("marking the overlap with the copy over"))
    }
    .await;
    if r.is_err() {
        let _ = client.batch_execute("ROLLBACK").await;
    }
    r
}
