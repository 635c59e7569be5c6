//! The `copy` command: snapshot, catalog, target checks, schema, chunk plan, pipeline, report.

use std::collections::HashMap;
use std::fmt::Write as _;

use tokio_postgres::Client;

use crate::catalog::{postgres as pgcat, Catalog, QualifiedName};
use crate::config::CopySettings;
use crate::connect::{connect, Side};
use crate::error::{db_reason, Error, Result};
use crate::pipeline::{self, RunPlan, RunReport};
use crate::plan::chunks::plan_table;
use crate::schema::{ddl, SchemaMode, Step};
use crate::sink::postgres::LoadMode;

/// What a finished copy reports.
#[derive(Debug)]
pub struct CopyOutcome {
    /// Tables copied, in plan order.
    pub tables: Vec<QualifiedName>,
    /// Per-table figures and phase timings.
    pub report: RunReport,
    /// Time spent before the first chunk: catalog, checks, schema creation, planning.
    pub prepare_time: std::time::Duration,
}

/// Copies the selected tables of the source into the target, schema included.
pub async fn run(settings: &CopySettings) -> Result<CopyOutcome> {
    let started = std::time::Instant::now();
    let source = connect(&settings.source, Side::Source).await?;
    let target = connect(&settings.target, Side::Target).await?;

    // The exporting transaction stays open until every lane has imported its snapshot, which
    // happens when lanes connect at the start of the pipeline; it is closed when `source` drops.
    let snapshot = export_snapshot(&source).await?;

    check_source_version(&source).await?;
    let mut catalog = pgcat::load(&source).await?;
    let all_tables: Vec<QualifiedName> = catalog.tables.iter().map(|t| t.name.clone()).collect();
    catalog.select(|name| settings.filter.matches(name));
    for pattern in settings.filter.unmatched_includes(&all_tables) {
        tracing::warn!("table pattern \"{pattern}\" matched no table of the source");
    }
    if catalog.tables.is_empty() {
        return Err(Error::Config(format!(
            "no table of the source {} matched the table patterns ({}); patterns are globs over schema.table",
            settings.source,
            settings.filter.describe()
        )));
    }

    lock_source_tables(&source, &catalog).await?;

    let facts = pgcat::target_facts(&target).await?;
    check_target(settings, &catalog, &facts, &target).await?;
    let ddl_opts = ddl::DdlOptions {
        owners: settings.owners,
        grants: settings.grants,
    };
    let mut pre = Vec::new();
    match settings.schema {
        SchemaMode::Create => pre.extend(ddl::pre_data(&catalog, &facts, &ddl_opts)),
        SchemaMode::Recreate => {
            run_steps(&target, &ddl::drop_for_recreate(&catalog)).await?;
            // Read again: dropping tables also dropped their owned sequences and dependent views.
            let facts = pgcat::target_facts(&target).await?;
            pre.extend(ddl::pre_data(&catalog, &facts, &ddl_opts));
        }
        SchemaMode::Existing if settings.truncate => {
            let names: Vec<String> = catalog
                .tables
                .iter()
                .filter(|t| t.has_storage())
                .map(|t| t.name.quoted())
                .collect();
            pre.push(Step {
                what: "truncate the selected target tables".into(),
                sql: format!("TRUNCATE ONLY {}", names.join(", ")),
            });
        }
        SchemaMode::Existing => {}
    }
    let touched = !pre.is_empty();
    let incomplete = |e: Error, done: &str| {
        if touched {
            Error::Incomplete {
                source: Box::new(e),
                done: done.to_string(),
            }
        } else {
            e
        }
    };
    run_steps(&target, &pre)
        .await
        .map_err(|e| incomplete(e, "schema partly created"))?;

    let mut chunks = Vec::new();
    let lane_share = crate::plan::order::lane_share(&catalog.tables, settings.jobs);
    for (i, table) in catalog.tables.iter().enumerate() {
        if table.has_storage() {
            let rows = settings
                .chunk_rows
                .unwrap_or_else(|| crate::plan::order::auto_chunk_rows(table, lane_share));
            let planned = plan_table(&source, table, i, rows, catalog.server_version_num).await;
            chunks.extend(planned.map_err(|e| incomplete(e, "schema created, no rows copied"))?);
        }
    }
    let chunk_count: HashMap<usize, usize> = chunks.iter().fold(HashMap::new(), |mut m, c| {
        *m.entry(c.table).or_default() += 1;
        m
    });
    let load_modes = catalog
        .tables
        .iter()
        .enumerate()
        .map(|(i, _)| {
            let single = chunk_count.get(&i).copied().unwrap_or(0) == 1;
            if single && settings.schema != SchemaMode::Existing {
                LoadMode::TruncateFreeze
            } else {
                LoadMode::Append
            }
        })
        .collect();

    // A standalone sequence that was already on the target before a create/recreate run is
    // not ours to move; one owned by a selected table, or one we created, follows the source.
    let own_sequences: Vec<_> = catalog
        .sequences
        .iter()
        .filter(|s| {
            let ours = settings.schema == SchemaMode::Existing
                || s.owner_table.is_some()
                || !facts.relations.contains(&s.name);
            if !ours {
                tracing::warn!(
                    "sequence {} already existed on the target: its value is left as it is",
                    s.name
                );
            }
            ours
        })
        .cloned()
        .collect();
    let sequences = pgcat::sequence_values(&source, &own_sequences)
        .await
        .map_err(|e| incomplete(e.into(), "schema created, no rows copied"))?;
    let index_of: HashMap<&QualifiedName, usize> = catalog
        .tables
        .iter()
        .enumerate()
        .map(|(i, t)| (&t.name, i))
        .collect();
    let parent = catalog
        .tables
        .iter()
        .map(|t| {
            t.partition_of
                .as_ref()
                .and_then(|(p, _)| index_of.get(p).copied())
        })
        .collect();
    let build_schema = settings.schema != SchemaMode::Existing;
    let post_steps = catalog
        .tables
        .iter()
        .map(|t| {
            let mut steps = if build_schema {
                ddl::table_post_data(t)
            } else {
                Vec::new()
            };
            if t.has_storage() {
                steps.push(ddl::analyze(t));
            }
            steps
        })
        .collect();
    let mut final_phases = Vec::new();
    if build_schema {
        final_phases.extend(ddl::final_phases(&catalog));
    }
    let mut last: Vec<Step> = sequences
        .iter()
        .map(|(n, v, called)| ddl::setval(n, *v, *called))
        .collect();
    // Lanes commit with synchronous_commit off; one synchronous commit that writes a record
    // flushes all WAL before it, so exit 0 means every copied row is durable on the target.
    last.push(Step {
        what: "flush the target's WAL".into(),
        sql: "SET synchronous_commit = on; BEGIN; SELECT txid_current(); COMMIT;".into(),
    });
    final_phases.push(vec![last]);

    let tables: Vec<QualifiedName> = catalog.tables.iter().map(|t| t.name.clone()).collect();
    let order = crate::plan::order::copy_order(&catalog.tables);
    let plan = RunPlan {
        tables: catalog.tables,
        chunks,
        order,
        load_modes,
        post_steps,
        parent,
        final_phases,
    };
    let prepare_time = started.elapsed();
    let report = pipeline::run(settings, Some(snapshot), plan).await?;
    drop(source);
    Ok(CopyOutcome {
        tables,
        report,
        prepare_time,
    })
}

/// Refuses sources whose catalogs the introspection queries do not know (before 13).
async fn check_source_version(source: &Client) -> Result<()> {
    let what = || "reading the source server version".to_string();
    let row = source
        .query_one(
            "SELECT current_setting('server_version_num')::int, current_setting('server_version')",
            &[],
        )
        .await
        .map_err(|e| Error::Query {
            what: what(),
            reason: db_reason(&e),
        })?;
    let num: i32 = row.try_get(0).map_err(|e| Error::Query {
        what: what(),
        reason: db_reason(&e),
    })?;
    let text: String = row.try_get(1).map_err(|e| Error::Query {
        what: what(),
        reason: db_reason(&e),
    })?;
    if num < 130000 {
        return Err(Error::Query {
            what: "checking the source server version".into(),
            reason: format!(
                "the source runs PostgreSQL {text}; sluice reads PostgreSQL 13 or later"
            ),
        });
    }
    Ok(())
}

/// Takes ACCESS SHARE locks on the selected tables in the exporting transaction, as pg_dump
/// does: until the copy ends, no TRUNCATE, ALTER TABLE or VACUUM FULL can change what the
/// snapshot promises the readers. Waits at most the session's lock_timeout.
async fn lock_source_tables(source: &Client, catalog: &Catalog) -> Result<()> {
    let names: Vec<String> = catalog
        .tables
        .iter()
        .map(|t| format!("ONLY {}", t.name.quoted()))
        .collect();
    if names.is_empty() {
        return Ok(());
    }
    source
        .batch_execute(&format!("LOCK TABLE {} IN ACCESS SHARE MODE", names.join(", ")))
        .await
        .map_err(|e| Error::Query {
            what: "locking the selected tables on the source (ACCESS SHARE, so that no TRUNCATE or \
                   ALTER TABLE changes them during the copy); another session holds or waits for an \
                   exclusive lock"
                .into(),
            reason: db_reason(&e),
        })
}

async fn export_snapshot(source: &Client) -> Result<String> {
    let what = || "exporting a snapshot on the source (pg_export_snapshot)".to_string();
    source
        .batch_execute("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        .await
        .map_err(|e| Error::Query {
            what: what(),
            reason: db_reason(&e),
        })?;
    let row = source
        .query_one("SELECT pg_export_snapshot()", &[])
        .await
        .map_err(|e| Error::Query {
            what: what(),
            reason: db_reason(&e),
        })?;
    row.try_get(0).map_err(|e| Error::Query {
        what: what(),
        reason: db_reason(&e),
    })
}

/// Refuses to touch target tables the chosen schema mode must not overwrite.
async fn check_target(
    settings: &CopySettings,
    catalog: &Catalog,
    facts: &crate::catalog::TargetFacts,
    target: &Client,
) -> Result<()> {
    let mut problems = Vec::new();
    for t in catalog.tables.iter() {
        let exists = facts.tables.contains(&t.name);
        match settings.schema {
            SchemaMode::Create if exists => {
                let rows = if t.has_storage() && pgcat::table_has_rows(target, &t.name).await? {
                    "holds rows"
                } else {
                    "is empty"
                };
                problems.push(format!(
                    "table {} already exists on the target and {rows}",
                    t.name
                ));
            }
            SchemaMode::Existing if !exists => {
                problems.push(format!("table {} does not exist on the target", t.name));
            }
            SchemaMode::Existing
                if !settings.truncate
                    && t.has_storage()
                    && pgcat::table_has_rows(target, &t.name).await? =>
            {
                problems.push(format!("table {} on the target is not empty", t.name));
            }
            _ => {}
        }
    }
    if problems.is_empty() {
        return Ok(());
    }
    let advice = match settings.schema {
        SchemaMode::Create => "use --schema existing to load into existing tables, or --schema recreate to drop and re-create them",
        _ => "use --truncate to empty them first, or --schema recreate to drop and re-create them",
    };
    let shown: Vec<&String> = problems.iter().take(5).collect();
    let more = if problems.len() > 5 {
        format!(" (and {} more)", problems.len() - 5)
    } else {
        String::new()
    };
    let mut msg = String::new();
    let _ = write!(
        msg,
        "{}{more}; nothing was written: {advice}",
        shown
            .iter()
            .map(|s| s.as_str())
            .collect::<Vec<_>>()
            .join("; ")
    );
    Err(Error::TargetNotEmpty(msg))
}

/// Runs schema steps in order on one connection.
async fn run_steps(target: &Client, steps: &[Step]) -> Result<()> {
    for step in steps {
        tracing::debug!("{}", step.what);
        target
            .batch_execute(&step.sql)
            .await
            .map_err(|e| Error::Schema {
                what: step.what.clone(),
                reason: db_reason(&e),
            })?;
    }
    Ok(())
}

/// Formats the end-of-run summary table.
pub fn summary(outcome: &CopyOutcome) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{:<40} {:>12} {:>10} {:>7} {:>9} {:>8}",
        "table", "rows", "MB", "chunks", "data s", "post s"
    );
    let (mut rows, mut bytes) = (0u64, 0u64);
    for (name, r) in outcome.tables.iter().zip(&outcome.report.tables) {
        rows += r.rows;
        bytes += r.bytes;
        let _ = writeln!(
            out,
            "{:<40} {:>12} {:>10.1} {:>7} {:>9.1} {:>8.1}",
            name.to_string(),
            r.rows,
            r.bytes as f64 / 1e6,
            r.chunks,
            r.data_time.as_secs_f64(),
            r.post_time.as_secs_f64()
        );
    }
    let data = outcome.report.data_time.as_secs_f64().max(0.001);
    let _ = writeln!(out, "total: {rows} rows, {:.1} MB", bytes as f64 / 1e6);
    let _ = writeln!(
        out,
        "prepare (catalog, schema, plan): {:.1} s",
        outcome.prepare_time.as_secs_f64()
    );
    let _ = writeln!(
        out,
        "data phase: {data:.1} s ({:.0} rows/s, {:.1} MB/s)",
        rows as f64 / data,
        bytes as f64 / 1e6 / data
    );
    let _ = writeln!(
        out,
        "data + post-data: {:.1} s",
        outcome.report.total_time.as_secs_f64()
    );
    let _ = write!(
        out,
        "total: {:.1} s",
        (outcome.prepare_time + outcome.report.total_time).as_secs_f64()
    );
    out
}
