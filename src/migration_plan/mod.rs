//! `howdah plan`: introspects source and target and writes a migration plan, read-only.
//!
//! [`build`] is the sequence: open the source as `copy` does, read the target's facts, the
//! source's facts (`facts/`, one file per source kind), size and cut each table, probe values
//! and read speed (`probe.rs`), run the pre-flight checks and name the risks (`preflight.rs`,
//! `risks.rs`), then fill the sections (`changes.rs`, `strategy.rs`, `execution.rs`). The
//! result is one [`MigrationPlan`] (`model.rs`, the JSON contract documented in `docs/plan.md`
//! and `docs/plan.schema.json`), rendered as Markdown by `markdown.rs` or as JSON by serde.
//!
//! The plan writes nothing anywhere: it opens the source the way `copy` does ([`prepare`]),
//! so it sees the job file's mappings exactly as a copy would, and it only reads the target,
//! in a read-only session.

mod changes;
pub mod execution;
mod facts;
pub mod markdown;
mod model;
pub mod preflight;
pub mod probe;
mod risks;
mod strategy;

use std::path::PathBuf;

use tokio_postgres::Client;

use crate::catalog::{postgres as pgcat, Catalog, TargetFacts};
use crate::config::CopySettings;
use crate::connect::{connect, Side};
use crate::error::{query_failed, Error, Result};
use crate::mapping::TableMapping;
use crate::prepare::{prepare, Prepared};
use facts::SourceFacts;
pub use model::*;

/// How the plan was asked for, to repeat it in the commands it prints.
#[derive(Debug, Clone, Default)]
pub struct CommandLine {
    /// `--config`.
    pub config: Option<PathBuf>,
    /// `--tables`.
    pub tables: Vec<String>,
    /// `--exclude`.
    pub exclude: Vec<String>,
}

/// Builds the plan. Reads the source and the target; writes nothing.
pub async fn build(settings: &CopySettings, cmd: &CommandLine) -> Result<MigrationPlan> {
    let target = connect(&settings.target, Side::Target).await?;
    // Nothing the plan runs may write: a read-only transaction makes that a guarantee.
    target
        .batch_execute("SET default_transaction_read_only = on")
        .await
        .map_err(query_failed("making the target session read-only"))?;
    let Prepared {
        mut origin,
        mut catalog,
        maps,
        ..
    } = prepare(settings, &target, &Default::default()).await?;
    catalog.place_tablespaces(&settings.tablespaces);
    if catalog.tables.is_empty() {
        return Err(Error::Config(format!(
            "no table of the source {} matched the table patterns ({}); nothing to plan",
            settings.source,
            settings.filter.describe()
        )));
    }
    let facts = pgcat::target_facts(&target).await?;
    let target_info = preflight::target_info(&target).await?;
    let mut src = facts::collect(&mut origin, &catalog, &maps, &facts, settings).await?;
    let tables = table_plans(&target, &catalog, &maps, &facts, &src).await?;
    // Probes run on sessions of their own, each bounded in rows and time.
    let probes = facts::probe(&origin, &catalog, &maps, &mut src, settings).await;
    drop(origin);

    let total_bytes: i64 =
        tables.iter().map(|t| t.table_bytes).sum::<i64>() + src.index_bytes.iter().sum::<i64>();
    let inputs = preflight::Inputs {
        settings,
        catalog: &catalog,
        facts: &facts,
        target: &target_info,
        total_bytes,
    };
    let (mut checks, risks) =
        risks::checks_and_risks(&target, &inputs, &tables, &src, &probes.probes).await;
    let strategy = strategy::strategy(
        settings,
        &catalog,
        &facts,
        &tables,
        probes.throughput.clone(),
    );
    let data_seconds = strategy.estimate.as_ref().map(|e| e.data_seconds);
    checks.push(snapshot_check(settings, data_seconds).await);
    let copy_seconds = strategy.estimate.as_ref().map(|e| e.total_seconds);
    let filtered: Vec<String> = tables
        .iter()
        .filter(|t| t.filter.is_some())
        .map(|t| t.source.clone())
        .collect();
    follow_checks(settings, &catalog, &mut checks, copy_seconds, &filtered).await;
    let schema = changes::schema_changes(settings, &catalog, &facts, &mut src);
    let data = changes::data_changes(&catalog, &maps, &src, probes);
    let execution = execution::execution(settings, cmd, &strategy.rollback_points);
    let overview = overview(settings, &src, &target_info, &tables, total_bytes);
    Ok(MigrationPlan {
        format: FORMAT.into(),
        generated_at: jiff::Timestamp::now()
            .round(jiff::Unit::Second)
            .map_or_else(|_| jiff::Timestamp::now().to_string(), |t| t.to_string()),
        overview,
        tables,
        schema,
        data,
        strategy,
        risks,
        checks,
        execution,
    })
}

/// Whether a PostgreSQL source can be followed after the copy (`copy --follow`): a warning
/// each for what it lacks, since following is optional.
async fn follow_checks(
    settings: &CopySettings,
    catalog: &Catalog,
    checks: &mut Vec<Check>,
    copy_seconds: Option<f64>,
    filtered: &[String],
) {
    let url = match &settings.source {
        crate::config::SourceUrl::Postgres(url) => url,
        crate::config::SourceUrl::Mysql(my) => {
            let found = crate::follow::binlog::run::readiness(my, copy_seconds, filtered).await;
            checks.extend(found.into_iter().map(|r| Check {
                name: r.name.into(),
                status: if r.ok { "ok" } else { "warning" }.into(),
                detail: format!("copy --follow: {}", r.detail),
            }));
            return;
        }
    };
    let tables: Vec<crate::catalog::QualifiedName> = catalog
        .tables
        .iter()
        .filter(|t| t.has_storage())
        .map(|t| t.name.clone())
        .collect();
    let found = match connect(url, Side::Source).await {
        Ok(c) => crate::follow::slot::readiness(&c, &tables).await,
        Err(e) => Err(e),
    };
    match found {
        Ok(list) => checks.extend(list.into_iter().map(|r| Check {
            name: r.name.into(),
            status: if r.ok { "ok" } else { "warning" }.into(),
            detail: format!("copy --follow: {}", r.detail),
        })),
        Err(e) => checks.push(Check {
            name: "follow_wal_level".into(),
            status: "unknown".into(),
            detail: format!("copy --follow: could not check the source: {e}"),
        }),
    }
}

/// What the copy's snapshot will hold back on the source, and what the source holds back
/// already (an old xmin or transaction: vacuum or purge is behind before the copy starts).
async fn snapshot_check(settings: &CopySettings, data_seconds: Option<f64>) -> Check {
    let hold = match crate::snapshot_hold::probe(&settings.source, &settings.job).await {
        Ok(h) => h,
        Err(e) => {
            return Check {
                name: "source_snapshot".into(),
                status: "unknown".into(),
                detail: format!("could not read the source's oldest transaction: {e}"),
            }
        }
    };
    let mut detail = hold.describe().join("; ");
    if let Some(secs) = data_seconds {
        detail.push_str(&format!(
            "; the copy will hold one source snapshot for about {:.0} min (the data estimate): \
             vacuum (PostgreSQL) or purge (InnoDB) cannot clean up behind it meanwhile",
            secs / 60.0
        ));
    }
    // An hour-old transaction already holds vacuum or purge back, before the copy adds its own.
    let old = hold.oldest_transaction_age_seconds.unwrap_or(0.0) > 3600.0
        || hold.oldest_xmin_age.unwrap_or(0) > 100_000_000;
    Check {
        name: "source_snapshot".into(),
        status: if old { "warning" } else { "ok" }.into(),
        detail,
    }
}

/// Every selected table: its size, key and chunks, and whether the target has it now.
async fn table_plans(
    target: &Client,
    catalog: &Catalog,
    maps: &[Option<TableMapping>],
    facts: &TargetFacts,
    src: &SourceFacts,
) -> Result<Vec<TablePlan>> {
    let mut tables = Vec::with_capacity(catalog.tables.len());
    for (i, t) in catalog.tables.iter().enumerate() {
        let on_target = if !facts.tables.contains(&t.name) {
            "absent"
        } else if t.has_storage() && pgcat::table_has_rows(target, &t.name).await? {
            "has_rows"
        } else {
            "empty"
        };
        let chunking = src.chunking[i];
        tables.push(TablePlan {
            source: src.source_names[i].clone(),
            target: t.name.to_string(),
            estimated_rows: crate::chunking::chunks::estimated_rows(t).max(0),
            table_bytes: t.size_bytes.max(0),
            index_bytes: src.index_bytes[i],
            key: t
                .chunk_key
                .as_ref()
                .map(|k| k.iter().map(|c| c.name.clone()).collect()),
            chunking: chunking.kind.into(),
            chunks: chunking.chunks,
            chunks_estimated: chunking.estimated,
            on_target: on_target.into(),
            filter: maps[i].as_ref().and_then(|m| m.filter.clone()),
        });
    }
    Ok(tables)
}

/// Section 1: the two servers, sizes, the largest tables and what is left out or created.
fn overview(
    settings: &CopySettings,
    src: &SourceFacts,
    target_info: &preflight::TargetInfo,
    tables: &[TablePlan],
    total_bytes: i64,
) -> Overview {
    let mut by_size: Vec<&TablePlan> = tables.iter().collect();
    by_size.sort_by_key(|t| std::cmp::Reverse(t.table_bytes + t.index_bytes));
    Overview {
        source: Endpoint {
            url: execution::command_url_source(&settings.source),
            product: src.product.clone(),
            version: src.version.clone(),
        },
        target: Endpoint {
            url: execution::command_url_pg(&settings.target),
            product: "PostgreSQL".into(),
            version: target_info.version.clone(),
        },
        table_count: tables.len(),
        estimated_rows: tables.iter().map(|t| t.estimated_rows).sum(),
        table_bytes: tables.iter().map(|t| t.table_bytes).sum(),
        index_bytes: src.index_bytes.iter().sum(),
        total_bytes,
        size_method: src.size_method.into(),
        largest_tables: by_size.iter().take(5).map(|t| t.source.clone()).collect(),
        out_of_scope: src.out_of_scope.clone(),
        also_created: src.also_created.clone(),
    }
}

/// Writes the plan in `format` to `output` (stdout when `None`).
pub fn write(plan: &MigrationPlan, json: bool, output: Option<&std::path::Path>) -> Result<()> {
    let text = if json {
        let mut s = serde_json::to_string_pretty(plan)
            .map_err(|e| Error::Internal(format!("rendering the plan as JSON: {e}")))?;
        s.push('\n');
        s
    } else {
        markdown::render(plan)
    };
    match output {
        Some(path) => std::fs::write(path, text).map_err(|e| {
            Error::Config(format!("cannot write the plan to {}: {e}", path.display()))
        }),
        None => {
            use std::io::Write as _;
            let mut out = std::io::stdout().lock();
            out.write_all(text.as_bytes())
                .and_then(|()| out.flush())
                .map_err(|e| Error::Internal(format!("writing the plan to stdout: {e}")))
        }
    }
}
