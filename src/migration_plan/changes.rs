//! Sections 2 and 3: the schema changes (DDL before and after the data, every column's type
//! mapping, enums, defaults, sequences) and the data changes (column mappings, value
//! policies, the probes' findings).
//!
//! Invariants: the DDL is the copy's own (`schema::ddl`), built from the catalog as the target
//! will hold it and the target's facts, so the plan shows what the copy would run.

use super::facts::{Probes, SourceFacts};
use super::model::{
    ColumnDefault, DataChanges, Object, SchemaChanges, Statement, TableMappingPlan,
};
use crate::catalog::{Catalog, TargetFacts};
use crate::config::CopySettings;
use crate::mapping::TableMapping;
use crate::schema::{ddl, SchemaMode};

/// Section 2 from the catalog as the target will hold it.
pub(super) fn schema_changes(
    settings: &CopySettings,
    catalog: &Catalog,
    facts: &TargetFacts,
    src: &mut SourceFacts,
) -> SchemaChanges {
    let opts = ddl::DdlOptions {
        owners: settings.owners,
        grants: settings.grants,
        // The plan is printed: never with a password in it.
        user_mapping_passwords: false,
    };
    let stmt = |s: crate::schema::Step| Statement {
        what: s.what,
        sql: s.sql,
    };
    let pre_data: Vec<Statement> = match settings.schema {
        SchemaMode::Existing => Vec::new(),
        SchemaMode::Create => ddl::pre_data(catalog, facts, &opts)
            .into_iter()
            .map(stmt)
            .collect(),
        SchemaMode::Recreate => {
            // Recreate drops the selected tables first; what it then creates does not skip them.
            let mut after = facts.clone();
            for t in &catalog.tables {
                after.tables.remove(&t.name);
            }
            for v in &catalog.views {
                after.relations.remove(&v.name);
            }
            ddl::drop_for_recreate(catalog)
                .into_iter()
                .chain(ddl::pre_data(catalog, &after, &opts))
                .map(stmt)
                .collect()
        }
    };
    let mut post_data = Vec::new();
    for t in &catalog.tables {
        if settings.schema != SchemaMode::Existing {
            post_data.extend(
                crate::schema::serial(ddl::table_post_data(t))
                    .into_iter()
                    .map(stmt),
            );
        }
        if t.has_storage() {
            post_data.push(stmt(ddl::analyze(t)));
        }
    }
    if settings.schema != SchemaMode::Existing {
        post_data.extend(ddl::final_steps(catalog).into_iter().map(stmt));
        post_data.extend(ddl::final_objects(catalog, &opts).into_iter().map(stmt));
    }
    let enums = catalog
        .types
        .iter()
        .filter(|t| t.ddl.contains("AS ENUM"))
        .map(|t| Statement {
            what: format!("enum type {}", t.name),
            sql: t.ddl.trim_end().to_string(),
        })
        .collect();
    let defaults = catalog
        .tables
        .iter()
        .flat_map(|t| {
            t.columns.iter().filter_map(move |c| {
                c.default.as_ref().map(|d| ColumnDefault {
                    table: t.name.to_string(),
                    column: c.name.clone(),
                    default: d.clone(),
                })
            })
        })
        .collect();
    let mut sequences: Vec<Object> = Vec::new();
    for s in &catalog.sequences {
        sequences.push(Object {
            kind: if s.identity {
                "identity sequence"
            } else if s.owner_table.is_some() {
                "owned sequence"
            } else {
                "sequence"
            }
            .into(),
            name: s.name.to_string(),
            note: Some("set to the source's last value after the load".into()),
        });
    }
    for t in &catalog.tables {
        for c in &t.columns {
            if c.identity.is_some()
                && !catalog
                    .sequences
                    .iter()
                    .any(|s| s.owner_table.as_ref() == Some(&t.name))
            {
                sequences.push(Object {
                    kind: "identity column".into(),
                    name: format!("{}.{}", t.name, c.name),
                    note: Some(
                        "set past the copied maximum (or MySQL's AUTO_INCREMENT, whichever is higher) after the load".into(),
                    ),
                });
            }
        }
    }
    let columns = src.columns.iter().flatten().cloned().collect();
    SchemaChanges {
        mode: format!("{:?}", settings.schema).to_lowercase(),
        pre_data,
        columns,
        enums,
        defaults,
        sequences,
        post_data,
        notes: std::mem::take(&mut src.notes),
    }
}

/// Section 3 from the mappings, the source's policies and the probes.
pub(super) fn data_changes(
    catalog: &Catalog,
    maps: &[Option<TableMapping>],
    src: &SourceFacts,
    probes: Probes,
) -> DataChanges {
    let mappings = catalog
        .tables
        .iter()
        .enumerate()
        .filter(|(i, _)| maps[*i].is_some())
        .map(|(i, t)| TableMappingPlan {
            table: t.name.to_string(),
            source: src.source_names[i].clone(),
            filter: maps[i].as_ref().and_then(|m| m.filter.clone()),
            columns: src.columns[i].clone(),
        })
        .collect();
    DataChanges {
        mappings,
        policies: src.policies.clone(),
        probes: probes.probes,
        probe_method: probes.method,
    }
}
