//! The target table of one mapped table: its planned columns put in, and the DDL the source
//! server rendered (keys, constraints, indexes, foreign keys, generated expressions, the chunk
//! key) rewritten to follow the renames.
//!
//! Invariants: nothing is created wrong rather than left out: an object that uses a column the
//! rule leaves out is dropped with a warning, and so are triggers of a renamed table or of a
//! table with renamed columns (their bodies are text this code cannot follow). Foreign keys
//! keep their referenced side here; the tables they point at are renamed by the caller, once
//! every table is mapped.

use std::collections::HashMap;

use super::rename;
use crate::catalog::{Column, QualifiedName, Table};

/// The old and new name of a table and its column renames, for the tables that refer to it.
pub(super) type Renames = (QualifiedName, QualifiedName, HashMap<String, String>);

/// Turns `table` into its target: `target_cols` (then its generated columns), named
/// `target_name`, with `renames` (source column -> target column) applied to its DDL and what
/// uses a `dropped` column left out. Returns the renames when the table or a column is renamed.
pub(super) fn rewrite_table_ddl(
    table: &mut Table,
    target_cols: Vec<Column>,
    renames: HashMap<String, String>,
    target_name: QualifiedName,
    dropped: &[&str],
) -> Option<Renames> {
    let tname = table.name.to_string();
    let uses_dropped = |sql: &str| dropped.iter().any(|d| rename::mentions(sql, d));
    let old_name = table.name.clone();
    let mut new = table.clone();
    let generated: Vec<Column> = table
        .columns
        .iter()
        .filter(|c| c.generated.is_some())
        .cloned()
        .collect();
    new.columns = target_cols;
    new.columns.extend(generated);
    new.name = target_name.clone();
    for c in &mut new.columns {
        if let Some(g) = &mut c.generated {
            *g = rename::rename_columns(g, &renames);
        }
    }
    let fix = |sql: &str| {
        rename::rename_table(
            &rename::rename_columns(sql, &renames),
            &old_name,
            &target_name,
        )
    };
    if let Some(pk) = &mut new.primary_key {
        pk.definition = fix(&pk.definition);
        pk.index_definition = pk.index_definition.as_deref().map(fix);
    }
    // What uses a column left out is not created (a warning says so).
    let keep = |what: &str, name: &str, sql: &str| {
        let uses = uses_dropped(sql);
        if uses {
            tracing::warn!("{what} {name} of {tname} is not created: it uses a column that a [[table]] rule leaves out");
        }
        !uses
    };
    new.constraints
        .retain(|c| keep("constraint", &c.name, &c.definition));
    for c in &mut new.constraints {
        c.definition = fix(&c.definition);
        c.index_definition = c.index_definition.as_deref().map(fix);
    }
    new.indexes
        .retain(|x| keep("index", &x.name, &x.definition));
    for x in &mut new.indexes {
        x.definition = fix(&x.definition);
    }
    // Only a foreign key's own columns (before REFERENCES) are this table's.
    new.foreign_keys.retain(|fk| {
        let own = fk.definition.split("REFERENCES").next().unwrap_or("");
        keep("foreign key", &fk.name, own)
    });
    for fk in &mut new.foreign_keys {
        fk.definition = rename::rename_columns(&fk.definition, &renames);
    }
    // Row security follows the renamed columns; a policy naming a column left out fails
    // loudly when it is created, rather than being left out.
    for p in &mut new.row_security.policies {
        p.clauses = rename::rename_columns(&p.clauses, &renames);
    }
    if let Some(key) = &mut new.chunk_key {
        for k in key {
            if let Some(n) = renames.get(&k.name) {
                k.name = n.clone();
            }
        }
    }
    if !renames.is_empty() || target_name != old_name {
        for trig in &new.triggers {
            tracing::warn!(
                "trigger {} of {tname} is not created: its table or columns are renamed; create it yourself",
                trig.name
            );
        }
        new.triggers.clear();
    }
    *table = new;
    (target_name != old_name || !renames.is_empty()).then_some((old_name, target_name, renames))
}

#[cfg(test)]
mod tests {
    use super::super::fixture::{col, table};
    use super::*;
    use crate::catalog::{Constraint, DdlObject, Index};

    fn orders() -> Table {
        let mut total = col("total", "numeric");
        total.generated = Some("(qty * 2)".into());
        let mut t = table(
            "orders",
            vec![
                col("id", "integer"),
                col("qty", "integer"),
                col("memo", "text"),
                total,
            ],
            &["id"],
        );
        t.primary_key = Some(Constraint {
            name: "orders_pkey".into(),
            definition: "PRIMARY KEY (id)".into(),
            index_definition: Some(
                "CREATE UNIQUE INDEX orders_pkey ON public.orders USING btree (id)".into(),
            ),
            ..Constraint::default()
        });
        t.constraints.push(Constraint {
            name: "memo_short".into(),
            definition: "CHECK ((length(memo) < 10))".into(),
            ..Constraint::default()
        });
        t.indexes.push(Index {
            name: "orders_qty".into(),
            definition: "CREATE INDEX orders_qty ON public.orders USING btree (qty)".into(),
            ..Index::default()
        });
        t.foreign_keys.push(Constraint {
            name: "orders_memo_fkey".into(),
            definition: "FOREIGN KEY (memo) REFERENCES public.memos(qty)".into(),
            ..Constraint::default()
        });
        t.triggers.push(DdlObject {
            name: QualifiedName::new("public", "audit"),
            ..DdlObject::default()
        });
        t
    }

    fn target_cols(t: &Table, renames: &HashMap<String, String>) -> Vec<Column> {
        t.copy_columns()
            .map(|c| Column {
                name: renames.get(&c.name).unwrap_or(&c.name).clone(),
                ..c.clone()
            })
            .collect()
    }

    #[test]
    fn renames_follow_into_keys_indexes_and_generated_columns() {
        let mut t = orders();
        let renames: HashMap<String, String> = [
            ("id".to_string(), "order_id".to_string()),
            ("qty".to_string(), "quantity".to_string()),
        ]
        .into();
        let new_name = QualifiedName::new("sales", "orders");
        let cols = target_cols(&t, &renames);
        let r = rewrite_table_ddl(&mut t, cols, renames, new_name.clone(), &[]);
        let (old, new, cols) = r.expect("a renamed table");
        assert_eq!(
            (old, new.clone()),
            (QualifiedName::new("public", "orders"), new_name)
        );
        assert_eq!(cols.len(), 2);
        assert_eq!(t.name, new);
        let names: Vec<&str> = t.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["order_id", "quantity", "memo", "total"]);
        assert_eq!(t.columns[3].generated.as_deref(), Some("(quantity * 2)"));
        let pk = t.primary_key.as_ref().expect("the key stays");
        assert_eq!(pk.definition, "PRIMARY KEY (order_id)");
        assert_eq!(
            pk.index_definition.as_deref(),
            Some("CREATE UNIQUE INDEX orders_pkey ON sales.orders USING btree (order_id)")
        );
        assert_eq!(
            t.indexes[0].definition,
            "CREATE INDEX orders_qty ON sales.orders USING btree (quantity)"
        );
        // A foreign key's own columns follow; its referenced side is the other table's.
        assert_eq!(
            t.foreign_keys[0].definition,
            "FOREIGN KEY (memo) REFERENCES public.memos(qty)"
        );
        assert_eq!(
            t.chunk_key.as_ref().map(|k| k[0].name.as_str()),
            Some("order_id")
        );
        assert!(
            t.triggers.is_empty(),
            "a renamed table's triggers are left out"
        );
    }

    #[test]
    fn what_uses_a_column_left_out_is_left_out() {
        let mut t = orders();
        let cols: Vec<Column> = t
            .copy_columns()
            .filter(|c| c.name != "memo")
            .cloned()
            .collect();
        let name = t.name.clone();
        let r = rewrite_table_ddl(&mut t, cols, HashMap::new(), name, &["memo"]);
        assert!(r.is_none(), "nothing renamed");
        assert!(t.constraints.is_empty());
        assert!(t.foreign_keys.is_empty());
        assert_eq!(t.indexes.len(), 1);
        assert_eq!(t.triggers.len(), 1, "triggers of an unrenamed table stay");
        let names: Vec<&str> = t.columns.iter().map(|c| c.name.as_str()).collect();
        assert_eq!(names, ["id", "qty", "total"]);
    }
}
