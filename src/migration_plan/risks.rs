//! Section 5: the pre-flight checks (run by `preflight.rs`) and the named risks of the
//! tables, columns, probes and objects the copy leaves out, most severe first.
//!
//! Invariants: checks only read; a risk's `kind` is a stable identifier (docs/plan.md lists
//! them) and its detail says what happens and what to do; the order is blockers, warnings,
//! then the rest, each group in the order found.

use tokio_postgres::Client;

use super::facts::SourceFacts;
use super::model::{risk, Check, ColumnPlan, Probe, Risk, TablePlan};
use super::preflight;
use crate::catalog::Catalog;
use crate::config::{CopySettings, SourceUrl};
use crate::schema::SchemaMode;

/// Runs the pre-flight checks, then names the risks of the tables, the columns, the probes'
/// findings and the objects left out; sorted most severe first.
pub(super) async fn checks_and_risks(
    target: &Client,
    inputs: &preflight::Inputs<'_>,
    tables: &[TablePlan],
    src: &SourceFacts,
    probes: &[Probe],
) -> (Vec<Check>, Vec<Risk>) {
    let mut risks = Vec::new();
    let mut checks = Vec::new();
    let settings = inputs.settings;
    preflight::checks(&mut checks, &mut risks, inputs);
    preflight::target_privileges(
        target,
        inputs.catalog,
        inputs.facts,
        settings,
        &mut checks,
        &mut risks,
    )
    .await;
    preflight::job_state(target, settings, &mut risks).await;
    preflight::source(inputs, tables, &mut checks, &mut risks).await;
    table_risks(tables, inputs.catalog, settings, &mut risks);
    column_risks(&src.columns, &mut risks);
    probe_risks(probes, &mut risks);
    for o in &src.out_of_scope {
        risks.push(risk(
            "not_migrated",
            "info",
            format!("{} {}", o.kind, o.name),
            o.note
                .clone()
                .unwrap_or_else(|| "not migrated: recreate it on the target by hand".into()),
        ));
    }
    let order = |s: &str| match s {
        "blocker" => 0,
        "warning" => 1,
        _ => 2,
    };
    risks.sort_by_key(|r| order(&r.severity));
    (checks, risks)
}

/// Tables without keys, and target tables in the way of the schema mode.
fn table_risks(
    tables: &[TablePlan],
    catalog: &Catalog,
    settings: &CopySettings,
    risks: &mut Vec<Risk>,
) {
    let mysql = matches!(settings.source, SourceUrl::Mysql(_));
    for (t, ct) in tables.iter().zip(&catalog.tables) {
        if ct.has_storage() && t.key.is_none() {
            let detail = if mysql {
                "no primary key or unique NOT NULL key howdah can order by: the table is one chunk, read in no \
                 particular order on one lane and committed once at its end; a resume after a crash redoes it whole. \
                 Add a primary key on the source to split it and checkpoint it"
            } else {
                "no primary key or unique NOT NULL key: the table is cut into ctid block ranges, each committed \
                 once at its end (no checkpoints inside a chunk); a resume redoes an unfinished chunk whole. Add a \
                 primary key on the source to get keyset chunks with checkpoints"
            };
            risks.push(risk("keyless_table", "warning", &t.source, detail));
        }
        match (settings.schema, t.on_target.as_str()) {
            (SchemaMode::Create, "has_rows") => risks.push(risk(
                "target_table_not_empty",
                "blocker",
                &t.target,
                "the table already exists on the target and holds rows: `copy` (schema create) refuses to start; \
                 drop it, or use --schema recreate (drops it and its rows) or --schema existing --truncate",
            )),
            (SchemaMode::Create, "empty") => risks.push(risk(
                "target_table_exists",
                "blocker",
                &t.target,
                "the table already exists on the target (empty): `copy` (schema create) refuses to start; use \
                 --schema existing to load into it, or --schema recreate",
            )),
            (SchemaMode::Existing, "absent") => risks.push(risk(
                "target_table_missing",
                "blocker",
                &t.target,
                "--schema existing needs the table on the target; create it first or use --schema create",
            )),
            (SchemaMode::Existing, "has_rows") if !settings.truncate => risks.push(risk(
                "target_table_not_empty",
                "blocker",
                &t.target,
                "the table on the target holds rows: `copy --schema existing` refuses it without --truncate",
            )),
            (SchemaMode::Existing, "has_rows") => risks.push(risk(
                "target_table_truncated",
                "warning",
                &t.target,
                "--truncate empties this non-empty target table before the load",
            )),
            (SchemaMode::Recreate, "has_rows") => risks.push(risk(
                "target_table_dropped",
                "warning",
                &t.target,
                "--schema recreate drops this table and its rows on the target; take a backup if they matter",
            )),
            _ => {}
        }
    }
}

/// Columns whose conversion the type table marks as lossy or risky.
fn column_risks(columns: &[Vec<ColumnPlan>], risks: &mut Vec<Risk>) {
    for c in columns.iter().flatten() {
        if let Some(r) = &c.risk {
            risks.push(risk(
                "lossy_conversion",
                "warning",
                format!(
                    "{}.{}",
                    c.table,
                    c.source_column.as_deref().unwrap_or(&c.target_column)
                ),
                format!(
                    "{} -> {}: {r}",
                    c.source_type.as_deref().unwrap_or("(added)"),
                    c.target_type
                ),
            ));
        }
    }
}

/// Probes that found problem values.
fn probe_risks(probes: &[Probe], risks: &mut Vec<Risk>) {
    for p in probes {
        if let Some(n) = p.count.filter(|n| *n > 0) {
            let subject = match &p.column {
                Some(c) => format!("{}.{c}", p.table),
                None => p.table.clone(),
            };
            risks.push(risk(
                &p.check,
                "warning",
                subject,
                format!(
                    "{n} value(s){} found: {}",
                    if p.sampled {
                        format!(" in the first {} rows", p.rows_examined)
                    } else {
                        String::new()
                    },
                    p.consequence
                ),
            ));
        }
        if let Some(e) = &p.error {
            risks.push(risk(
                "probe_failed",
                "info",
                &p.table,
                format!("the {} probe did not finish: {e}", p.check),
            ));
        }
    }
}
