//! Plan facts of a MySQL/MariaDB source: its catalog as read (declared types, index sizes,
//! views, triggers, routines and events the copy leaves out), the read planner's notes attached
//! to their columns, the value policies, and the chunks the copy would cut.
//!
//! Invariants: read-only, in the planning session; per-table vectors are indexed by table
//! number like the catalog. Integer keys are cut as `copy` cuts them; other keys would need a
//! pass over their index, so their chunk count is estimated from the row count (and says so).

use super::{Chunking, SourceFacts};
use crate::catalog::mysql::{MyColumn, MySchema, MyTable};
use crate::catalog::{Catalog, Table};
use crate::chunking::mysql::MysqlPlan;
use crate::chunking::mysql_read::{KeyKind, MyTablePlan};
use crate::config::{CopySettings, NulBytes, ZeroDates};
use crate::error::Result;
use crate::mapping::TableMapping;
use crate::migration_plan::model::{ColumnPlan, Object};

/// Everything the plan learns from a MySQL source.
pub(in crate::migration_plan) async fn facts(
    conn: &mut mysql_async::Conn,
    database: &str,
    plan: &MysqlPlan,
    catalog: &Catalog,
    maps: &[Option<TableMapping>],
    settings: &CopySettings,
) -> Result<SourceFacts> {
    let schema = crate::catalog::mysql::load(conn, database).await?;
    let product = if schema.is_mariadb() {
        "MariaDB"
    } else {
        "MySQL"
    };
    let source_names: Vec<String> = (0..catalog.tables.len())
        .map(|i| match my_table(&schema, plan, i) {
            Some(t) => format!("{database}.{}", t.name),
            None => catalog.tables[i].name.to_string(),
        })
        .collect();
    let index_bytes = (0..catalog.tables.len())
        .map(|i| my_table(&schema, plan, i).map_or(0, |t| t.index_bytes.max(0)))
        .collect();
    Ok(SourceFacts {
        product: product.into(),
        version: schema.version.clone(),
        source_names,
        index_bytes,
        out_of_scope: out_of_scope(&schema, plan, database),
        also_created: also_created(catalog),
        columns: column_lines(&schema, plan, catalog, maps, settings, database),
        notes: plan.notes.clone(),
        chunking: Vec::new(),
        size_method: "information_schema.TABLES: DATA_LENGTH (with InnoDB's clustered primary key), INDEX_LENGTH and TABLE_ROWS, which InnoDB estimates (run ANALYZE TABLE for fresher figures)",
        policies: policies(settings),
        my_schema: Some(schema),
    })
}

/// The MySQL table that catalog table `i` is read from.
fn my_table<'s>(schema: &'s MySchema, plan: &MysqlPlan, i: usize) -> Option<&'s MyTable> {
    let read = plan.reads.get(i)?.as_ref()?;
    schema.tables.iter().find(|t| t.name == read.source)
}

/// Views, triggers, routines and events, then the planner's other "not migrated" notes.
fn out_of_scope(schema: &MySchema, plan: &MysqlPlan, database: &str) -> Vec<Object> {
    let mut out_of_scope = Vec::new();
    for (kind, name) in schema.not_migrated() {
        out_of_scope.push(Object {
            kind: kind.into(),
            name: format!("{database}.{name}"),
            note: Some(format!(
                "{kind} not migrated: rewrite it for PostgreSQL and create it after the copy"
            )),
        });
    }
    // The planner's other "not migrated" notes: FULLTEXT/SPATIAL and expression indexes, CHECK
    // constraints, defaults, ON UPDATE clauses, foreign keys to tables left out.
    for note in &plan.notes {
        let listed = ["view ", "trigger ", "routine ", "event "]
            .iter()
            .any(|p| note.starts_with(p));
        if !listed && (note.contains("not migrated") || note.contains("dropped")) {
            let (subject, what) = note.split_once(": ").unwrap_or((note.as_str(), ""));
            out_of_scope.push(Object {
                kind: "schema detail".into(),
                name: subject.to_string(),
                note: Some(what.to_string()),
            });
        }
    }
    out_of_scope
}

/// The enum types and schemas the copy creates besides tables.
fn also_created(catalog: &Catalog) -> Vec<Object> {
    let enums = catalog.types.iter().map(|t| Object {
        kind: "enum type".into(),
        name: t.name.to_string(),
        note: None,
    });
    let schemas = catalog.schemas.iter().map(|s| Object {
        kind: "schema".into(),
        name: s.name.clone(),
        note: None,
    });
    enums.chain(schemas).collect()
}

/// Every column's line, per table, with the source's declared type and the planner's notes
/// on that column as its risk.
fn column_lines(
    schema: &MySchema,
    plan: &MysqlPlan,
    catalog: &Catalog,
    maps: &[Option<TableMapping>],
    settings: &CopySettings,
    database: &str,
) -> Vec<Vec<ColumnPlan>> {
    let note_of = |table: &str, column: &str| -> Option<String> {
        let prefix = format!("{database}.{table}.{column}: ");
        let found: Vec<&str> = plan
            .notes
            .iter()
            .filter_map(|n| n.strip_prefix(&prefix))
            .collect();
        (!found.is_empty()).then(|| found.join("; "))
    };
    let rule = settings.mysql.identifiers.unwrap_or_default();
    let mut columns = Vec::new();
    for (i, t) in catalog.tables.iter().enumerate() {
        let Some(mt) = my_table(schema, plan, i) else {
            columns.push(Vec::new());
            continue;
        };
        // Natural (unmapped) target column name of a MySQL column.
        let natural = |c: &str| rule.apply(c);
        let by_natural = |n: &str| mt.columns.iter().find(|c| natural(&c.name) == n);
        let lines = match &maps[i] {
            Some(m) => super::mapped_lines(
                t,
                m,
                |n, ty| by_natural(n).map_or_else(|| ty.to_string(), |c| c.column_type.clone()),
                |n| by_natural(n).and_then(|c| note_of(&mt.name, &c.name)),
            ),
            None => t
                .columns
                .iter()
                .zip(&mt.columns)
                .map(|(tc, mc)| ColumnPlan {
                    table: t.name.to_string(),
                    source_column: Some(mc.name.clone()),
                    source_type: Some(mc.column_type.clone()),
                    target_column: tc.name.clone(),
                    target_type: tc.type_sql.clone(),
                    how: if tc.nullable_for_zero_dates {
                        "zero dates -> NULL: created nullable (NOT NULL on the source, set again \
                         after the data if no zero date arrives)"
                            .into()
                    } else {
                        convert_how(mc, plan.reads.get(i).and_then(Option::as_ref))
                    },
                    risk: note_of(&mt.name, &mc.name),
                })
                .collect(),
        };
        columns.push(lines);
    }
    columns
}

/// How a MySQL value is converted, in a few words.
fn convert_how(col: &MyColumn, read: Option<&MyTablePlan>) -> String {
    let Some(convert) = read.and_then(|r| {
        r.columns
            .iter()
            .find(|c| c.name == col.name)
            .map(|c| &c.convert)
    }) else {
        return "converted".into();
    };
    convert.describe().to_string()
}

/// The value policies in force: zero dates and NUL bytes.
fn policies(settings: &CopySettings) -> Vec<String> {
    vec![
        format!(
            "zero dates: {}",
            match settings.mysql.zero_dates.clone().unwrap_or_default() {
                ZeroDates::Null => "NULL (a NOT NULL column rejects the row)".to_string(),
                ZeroDates::Reject => "the row is rejected".to_string(),
                ZeroDates::Value(v) => format!("replaced by {v}"),
            }
        ),
        format!(
            "NUL bytes in text: {}",
            match settings.mysql.nul_bytes.unwrap_or_default() {
                NulBytes::Reject => "the row is rejected",
                NulBytes::Strip => "removed",
            }
        ),
    ]
}

/// The chunks `copy` would cut table `i` (with storage) into: an integer key (or a table of
/// one chunk) is planned as `copy` plans it, another key estimated from the row count.
pub(super) async fn chunking(
    conn: &mut mysql_async::Conn,
    plan: &MysqlPlan,
    t: &Table,
    i: usize,
    chunk_rows: u64,
) -> Result<Chunking> {
    let Some(read) = plan.reads.get(i).and_then(Option::as_ref) else {
        return Ok(Chunking::NONE);
    };
    let rows = crate::chunking::chunks::estimated_rows(t).max(0);
    let integer = read
        .key
        .as_ref()
        .is_some_and(|k| k.len() == 1 && matches!(k[0].kind, KeyKind::Signed | KeyKind::Unsigned));
    let wanted = (rows as u64).div_ceil(chunk_rows.max(1)).max(1) as usize;
    Ok(if read.key.is_none() {
        Chunking {
            chunks: 1,
            estimated: false,
            kind: "whole",
        }
    } else if integer || wanted <= 1 {
        // MIN/MAX of an integer key: as cheap as the copy's own planning.
        let planned = crate::chunking::mysql::plan_chunks(conn, read, t, i, chunk_rows).await?;
        Chunking {
            chunks: planned.len(),
            estimated: false,
            kind: "keyset",
        }
    } else {
        // Other keys are cut by one pass over the key's index: too long for a plan, so the
        // count comes from the row estimate.
        Chunking {
            chunks: wanted,
            estimated: true,
            kind: "keyset",
        }
    })
}
