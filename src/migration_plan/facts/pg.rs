//! Plan facts of a PostgreSQL source: index sizes, what the copy leaves out or creates
//! besides tables, every column's line, and the chunks the copy would cut.
//!
//! Invariants: read-only, in the planning session (the copy's snapshot); per-table vectors are
//! indexed by table number like the catalog. Chunks are planned exactly as `copy` plans them,
//! so the counts are the copy's own.

use std::collections::HashMap;

use tokio_postgres::Client;

use super::{Chunking, SourceFacts};
use crate::catalog::{Catalog, Table, TargetFacts};
use crate::chunking::ChunkRange;
use crate::error::{query_failed as q, Result};
use crate::mapping::TableMapping;
use crate::migration_plan::model::{ColumnPlan, Object};

/// Everything the plan learns from a PostgreSQL source.
pub(in crate::migration_plan) async fn facts(
    client: &Client,
    catalog: &Catalog,
    maps: &[Option<TableMapping>],
    facts: &TargetFacts,
) -> Result<SourceFacts> {
    let source_names: Vec<String> = catalog
        .tables
        .iter()
        .zip(maps)
        .map(|(t, m)| m.as_ref().map_or(&t.name, |m| &m.read.name).to_string())
        .collect();
    let oids: Vec<u32> = catalog.tables.iter().map(|t| t.oid).collect();
    Ok(SourceFacts {
        product: "PostgreSQL".into(),
        version: catalog.server_version.clone(),
        source_names,
        index_bytes: index_bytes(client, &oids).await?,
        out_of_scope: out_of_scope(client, catalog, &oids).await?,
        also_created: also_created(catalog, facts),
        columns: column_lines(catalog, maps),
        notes: Vec::new(),
        chunking: Vec::new(),
        size_method: "pg_table_size (heap, TOAST, free-space and visibility maps) and pg_indexes_size per table; rows from pg_class.reltuples (blocks x 60 for a never-analyzed table)",
        policies: Vec::new(),
        my_schema: None,
    })
}

/// `pg_indexes_size` of each table (by table number).
async fn index_bytes(client: &Client, oids: &[u32]) -> Result<Vec<i64>> {
    let mut index_of: HashMap<u32, i64> = HashMap::new();
    for r in client
        .query(
            "SELECT c.oid, pg_indexes_size(c.oid) FROM pg_class c WHERE c.oid = ANY($1)",
            &[&oids],
        )
        .await
        .map_err(q("reading index sizes on the source"))?
    {
        let oid: u32 = r
            .try_get(0)
            .map_err(q("reading index sizes on the source"))?;
        let size: i64 = r
            .try_get(1)
            .map_err(q("reading index sizes on the source"))?;
        index_of.insert(oid, size);
    }
    Ok(oids
        .iter()
        .map(|o| index_of.get(o).copied().unwrap_or(0))
        .collect())
}

/// Source objects the copy does not migrate: publications and subscriptions (with the SQL
/// that creates them by hand), tablespaces, and the views and triggers it leaves out.
async fn out_of_scope(client: &Client, catalog: &Catalog, oids: &[u32]) -> Result<Vec<Object>> {
    let mut out_of_scope = Vec::new();
    for m in &catalog.not_created {
        out_of_scope.push(Object {
            kind: m.kind.into(),
            name: m.name.clone(),
            note: Some(format!("not created; to create it by hand: {}", m.sql)),
        });
    }
    let what = "listing source objects howdah does not copy";
    for r in client
        .query(
            "SELECT 'tablespace', format('%s (%s relation(s))', t.spcname, count(*)) \
             FROM pg_class c JOIN pg_tablespace t ON t.oid = c.reltablespace \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE n.nspname NOT IN ('pg_catalog', 'information_schema', 'howdah') AND n.nspname !~ '^pg_' \
             GROUP BY t.spcname ORDER BY 2",
            &[],
        )
        .await
        .map_err(q(what))?
    {
        out_of_scope.push(Object {
            kind: r.try_get(0).map_err(q(what))?,
            name: r.try_get(1).map_err(q(what))?,
            note: Some(
                "tables and indexes go to the target's default tablespace unless --tablespace OLD=NEW maps it"
                    .into(),
            ),
        });
    }
    // Views and triggers the copy leaves out: over tables not selected, or over tables and
    // columns a [[table]] rule renames (their SQL names the old ones).
    let kept_views: std::collections::HashSet<String> =
        catalog.views.iter().map(|v| v.name.to_string()).collect();
    let what = "listing the source's views";
    for r in client
        .query(
            "SELECT format('%s.%s', n.nspname, c.relname), c.relkind = 'm' FROM pg_class c \
             JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('v', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'howdah') \
               AND n.nspname !~ '^pg_' AND NOT EXISTS (SELECT 1 FROM pg_depend d \
                 WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e') \
             ORDER BY 1",
            &[],
        )
        .await
        .map_err(q(what))?
    {
        let name: String = r.try_get(0).map_err(q(what))?;
        let materialized: bool = r.try_get(1).map_err(q(what))?;
        if !kept_views.contains(&name) {
            out_of_scope.push(Object {
                kind: if materialized { "materialized view" } else { "view" }.into(),
                name,
                note: Some(
                    "not created: it reads a table that is not selected, or one that a [[table]] rule renames"
                        .into(),
                ),
            });
        }
    }
    let what = "listing the source's triggers";
    for r in client
        .query(
            "SELECT t.tgrelid, t.tgname::text FROM pg_trigger t WHERE NOT t.tgisinternal AND t.tgrelid = ANY($1) \
             ORDER BY 1, 2",
            &[&oids],
        )
        .await
        .map_err(q(what))?
    {
        let oid: u32 = r.try_get(0).map_err(q(what))?;
        let name: String = r.try_get(1).map_err(q(what))?;
        let Some(t) = catalog.tables.iter().find(|t| t.oid == oid) else {
            continue;
        };
        if !t.triggers.iter().any(|tr| tr.name.name == name) {
            out_of_scope.push(Object {
                kind: "trigger".into(),
                name: format!("{name} on {}", t.name),
                note: Some(
                    "not created: its table or a column it names is renamed by a [[table]] rule".into(),
                ),
            });
        }
    }
    out_of_scope.push(Object {
        kind: "roles and grants".into(),
        name: "(all)".into(),
        note: Some(
            "roles are not created; owners and table grants are reproduced only with --owners/--grants, for roles that exist on the target".into(),
        ),
    });
    Ok(out_of_scope)
}

/// What the copy creates on the target besides tables (what the target has is skipped).
fn also_created(catalog: &Catalog, facts: &TargetFacts) -> Vec<Object> {
    let mut also_created = Vec::new();
    // Objects the target already has are skipped by the copy, so not listed.
    let mut add = |kind: &str, name: String, on_target: bool| {
        if !on_target {
            also_created.push(Object {
                kind: kind.into(),
                name,
                note: None,
            });
        }
    };
    for s in &catalog.schemas {
        add("schema", s.name.clone(), facts.schemas.contains(&s.name));
    }
    for e in &catalog.extensions {
        let name = format!("{} {}", e.name, e.version);
        add("extension", name, facts.extensions.contains(&e.name));
    }
    for c in &catalog.collations {
        add(
            "collation",
            c.name.to_string(),
            facts.collations.contains(&c.name),
        );
    }
    for t in &catalog.types {
        add("type", t.name.to_string(), facts.types.contains(&t.name));
    }
    for f in &catalog.functions {
        add(
            "function",
            f.name.to_string(),
            facts.functions.contains(&f.name),
        );
    }
    for s in catalog.sequences.iter().filter(|s| s.owner_table.is_none()) {
        add(
            "sequence",
            s.name.to_string(),
            facts.relations.contains(&s.name),
        );
    }
    for v in &catalog.views {
        let kind = if v.materialized {
            "materialized view"
        } else {
            "view"
        };
        add(kind, v.name.to_string(), facts.relations.contains(&v.name));
    }
    for t in &catalog.tables {
        for tr in &t.triggers {
            add("trigger", format!("{} on {}", tr.name.name, t.name), false);
        }
        if t.row_security.enabled {
            add(
                "row-level security",
                format!("{} ({} policies)", t.name, t.row_security.policies.len()),
                false,
            );
        }
    }
    for o in catalog.others.iter().filter(|o| !o.ddl.is_empty()) {
        add(o.kind, o.name.clone(), false);
    }
    if catalog.large_objects > 0 {
        add(
            "large objects",
            format!(
                "{} (not when --tables narrows the copy)",
                catalog.large_objects
            ),
            false,
        );
    }
    also_created
}

/// Every column's line, per table: mapped tables from their mapping, others as they are.
fn column_lines(catalog: &Catalog, maps: &[Option<TableMapping>]) -> Vec<Vec<ColumnPlan>> {
    catalog
        .tables
        .iter()
        .zip(maps)
        .map(|(t, m)| match m {
            Some(m) => super::mapped_lines(t, m, |_, ty| ty.to_string(), |_| None),
            None => t
                .columns
                .iter()
                .map(|c| ColumnPlan {
                    table: t.name.to_string(),
                    source_column: Some(c.name.clone()),
                    source_type: Some(c.type_sql.clone()),
                    target_column: c.name.clone(),
                    target_type: c.type_sql.clone(),
                    how: if c.generated.is_some() {
                        "generated on the target (not copied)".into()
                    } else {
                        "passthrough".into()
                    },
                    risk: None,
                })
                .collect(),
        })
        .collect()
}

/// The chunks `copy` would cut table `i` (with storage) into, planned as it plans them.
pub(super) async fn chunking(
    client: &Client,
    t: &Table,
    i: usize,
    read: &Table,
    chunk_rows: u64,
    server_version_num: i32,
) -> Result<Chunking> {
    let planned =
        crate::chunking::chunks::plan_table(client, read, i, chunk_rows, server_version_num)
            .await?;
    let kind = match planned.first().map(|c| &c.range) {
        Some(ChunkRange::Ctid { .. }) => "ctid",
        Some(ChunkRange::Keyset { .. }) => "keyset",
        _ if t.chunk_key.is_some() => "keyset",
        _ => "whole",
    };
    Ok(Chunking {
        chunks: planned.len(),
        estimated: false,
        kind,
    })
}
