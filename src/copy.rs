//! The `copy` command: snapshot, catalog, target checks, schema, chunk plan, pipeline, report.

use std::collections::HashMap;
use std::fmt::Write as _;

use tokio_postgres::Client;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::catalog::{postgres as pgcat, Catalog, QualifiedName};
use crate::chunking::chunks::plan_table;
use crate::config::{CopySettings, SourceUrl};
use crate::connect::{connect, Side};
use crate::error::{db_reason, Error, Result};
use crate::pipeline::{self, RunPlan, RunReport, TableJob};
use crate::prepare::{prepare, reading_source, Origin, Prepared};
use crate::progress::Terminal;
use crate::schema::{ddl, Phases, SchemaMode, Step};
use crate::sink::postgres::LoadMode;
use crate::source::postgres::PgReader;
use crate::source::Source;
use crate::state::invalid_keys::InvalidKey;
use crate::state::worker::WorkerSession;
use crate::state::{self, StateRef};

/// What a finished copy reports.
#[derive(Debug)]
pub struct CopyOutcome {
    /// Tables copied, in plan order.
    pub tables: Vec<QualifiedName>,
    /// Per-table figures and phase timings.
    pub report: RunReport,
    /// Time spent before the first chunk: catalog, checks, schema creation, planning.
    pub prepare_time: std::time::Duration,
    /// What the copy changed on the way or left behind (MySQL sources), one line each.
    pub notes: Vec<String>,
    /// With `--dry-run`: the resolved tables and column mappings (nothing was copied).
    pub dry_run: Option<String>,
    /// Foreign keys left `NOT VALID` because the copied rows violate them: the copy is
    /// otherwise complete, and [`CopyOutcome::finished`] reports them as an error.
    pub invalid_keys: Vec<InvalidKey>,
    /// A rerun of a finished job: what it found (no table was copied again).
    pub message: Option<String>,
    /// MySQL zero dates loaded as NULL into columns that are NOT NULL on the source: table,
    /// column and rows (only columns that received some; they stay nullable).
    pub zero_dates: Vec<(QualifiedName, String, i64)>,
}

impl CopyOutcome {
    /// `Err(ForeignKeysNotValid)` when foreign keys were left `NOT VALID` (exit code 6).
    pub fn finished(&self) -> Result<()> {
        if self.invalid_keys.is_empty() {
            return Ok(());
        }
        Err(Error::ForeignKeysNotValid {
            keys: self.invalid_keys.iter().map(|k| k.to_string()).collect(),
        })
    }
}

/// Copies the selected tables of the source into the target, schema included.
///
/// The job's progress is kept in the target (schema `howdah`): a rerun with the same job name
/// and settings resumes after the last committed checkpoint of every chunk.
pub async fn run(
    settings: &CopySettings,
    stop: Arc<AtomicBool>,
    terminal: Terminal,
) -> Result<CopyOutcome> {
    let started = std::time::Instant::now();
    let target = connect(&settings.target, Side::Target).await?;
    let st = StateRef {
        schema: settings.state_schema.clone(),
        job: settings.job.clone(),
    };
    // A job's default_sql/value_sql values are evaluated when it starts; its later runs use
    // the recorded ones.
    let recorded = if settings.restart {
        state::values::SqlValues::new()
    } else {
        state::values::load(&target, &st, false).await?
    };
    let Prepared {
        mut origin,
        mut catalog,
        mut maps,
        sql_values,
    } = prepare(settings, &target, &recorded).await?;
    if settings.dry_run {
        return Ok(CopyOutcome {
            tables: catalog.tables.iter().map(|t| t.name.clone()).collect(),
            report: RunReport::default(),
            prepare_time: started.elapsed(),
            notes: Vec::new(),
            dry_run: Some(dry_run_text(&catalog, &maps)),
            invalid_keys: Vec::new(),
            message: None,
            zero_dates: Vec::new(),
        });
    }
    if catalog.tables.is_empty() {
        return Err(Error::Config(format!(
            "no table of the source {} matched the table patterns ({}); patterns are globs over schema.table{}",
            settings.source,
            settings.filter.describe(),
            if matches!(origin, Origin::My { .. }) {
                " (for MySQL: database.table)"
            } else {
                ""
            }
        )));
    }

    state::ensure(&target, &st).await?;
    // One process at a time decides whether the job is new, creates it, or joins it; a run
    // killed during its setup holds the lock until the server has rolled it back.
    state::lock_setup(&target, &st).await?;
    if settings.restart {
        state::delete_job(&target, &st).await?;
    }
    let config = config_summary(settings, &catalog);
    let job = state::load_job(&target, &st).await?;
    let resuming = match &job {
        None => false,
        Some(job)
            if job.phase == "done"
                && settings.schema != SchemaMode::Recreate
                && state::config_changes(&job.config, &config).is_empty() =>
        {
            if !state::invalid_keys::read(&target, &st).await?.is_empty() {
                // The job finished with foreign keys left NOT VALID: validate them again
                // (their orphans may have been fixed since), copy nothing.
                let still = state::invalid_keys::revalidate(&target, &st).await?;
                let message = if still.is_empty() {
                    format!(
                        "job \"{}\" had finished with foreign keys left NOT VALID; they validate now: the copy is complete",
                        st.job
                    )
                } else {
                    format!(
                        "job \"{}\" had finished; nothing was copied again; {} foreign key(s) still NOT VALID",
                        st.job,
                        still.len()
                    )
                };
                return Ok(CopyOutcome {
                    tables: Vec::new(),
                    report: RunReport::default(),
                    prepare_time: started.elapsed(),
                    notes: Vec::new(),
                    dry_run: None,
                    invalid_keys: still,
                    message: Some(message),
                    zero_dates: Vec::new(),
                });
            }
            return Err(Error::Config(format!(
                "job \"{}\" already finished; add --restart (with --schema recreate) to copy again, or use another --job name",
                st.job
            )));
        }
        Some(job) if job.phase == "done" => {
            // A finished job is history, not something to resume: new settings (or recreate,
            // which means "start over") start a new job.
            tracing::info!(
                "job \"{}\" had finished; starting a new copy with the new settings",
                st.job
            );
            state::delete_job(&target, &st).await?;
            false
        }
        Some(job) => {
            let changes = state::config_changes(&job.config, &config);
            if !changes.is_empty() {
                return Err(Error::Config(format!(
                    "job \"{}\" was started with another configuration ({}); rerun with the same settings to resume it, \
                     or add --restart (with --schema recreate) to start over",
                    st.job,
                    changes.join("; ")
                )));
            }
            true
        }
    };
    if resuming {
        // A worker that created the job between this run's reading of its values and the
        // setup lock evaluated its own: the job's win, so every row gets the same value.
        let stored = state::values::load(&target, &st, false).await?;
        if sql_values
            .iter()
            .any(|(k, v)| stored.get(k).is_some_and(|s| s != v))
        {
            let again = prepare(settings, &target, &stored).await?;
            (origin, catalog, maps) = (again.origin, again.catalog, again.maps);
        }
    }
    let facts = pgcat::target_facts(&target).await?;
    let copy_order = crate::chunking::order::copy_order(&catalog.tables);

    let mut single_chunk = vec![false; catalog.tables.len()];
    if resuming {
        let (total, done) = state::chunk_counts(&target, &st).await?;
        let retried = state::retry_failed(&target, &st).await?;
        tracing::info!(
            "resuming job \"{}\": {done} of {total} chunks already copied{}",
            st.job,
            if retried > 0 {
                format!(", {retried} failed chunk(s) retried")
            } else {
                String::new()
            }
        );
    } else {
        check_target(settings, &catalog, &facts, &target).await?;
        if settings.schema == SchemaMode::Existing {
            check_existing_columns(&catalog, &target).await?;
        }
        let mut chunks = Vec::new();
        let lane_share = crate::chunking::order::lane_share(&catalog.tables, settings.jobs);
        for (i, table) in catalog.tables.iter().enumerate() {
            if table.has_storage() {
                let rows = settings
                    .chunk_rows
                    .unwrap_or_else(|| crate::chunking::order::auto_chunk_rows(table, lane_share));
                let planned = match &mut origin {
                    Origin::Pg { client, .. } => {
                        let read = maps[i].as_ref().map_or(table, |m| &m.read);
                        plan_table(client, read, i, rows, catalog.server_version_num).await?
                    }
                    Origin::My { conn, plan, .. } => {
                        match plan.reads.get(i).and_then(Option::as_ref) {
                            Some(read) => {
                                crate::chunking::mysql::plan_chunks(conn, read, table, i, rows)
                                    .await?
                            }
                            None => Vec::new(),
                        }
                    }
                };
                single_chunk[i] = planned.len() == 1;
                chunks.extend(planned);
            }
        }
        let mut priority = vec![0i32; catalog.tables.len()];
        for (rank, &t) in copy_order.iter().enumerate() {
            priority[t] = rank as i32;
        }
        let plan = JobPlan {
            config: &config,
            snapshot: origin.snapshot(),
            chunks: &chunks,
            priority: &priority,
            sql_values: &sql_values,
        };
        create_schema_and_job(settings, &catalog, &target, &st, &plan).await?;
    }
    let worker = WorkerSession::start(&settings.target, &st, settings.lease_secs).await?;
    state::unlock_setup(&target, &st).await?;
    // Sessions carry the worker's number, so a DBA can tell the workers of a job apart.
    let mut settings = settings.clone();
    settings.target.application_name =
        format!("{}/{}", settings.target.application_name, worker.no);
    if let SourceUrl::Postgres(url) = &mut settings.source {
        url.application_name = format!("{}/{}", url.application_name, worker.no);
    }
    let settings = &settings;
    // Readers adopt the job's snapshot while the worker that exported it still runs (several
    // workers then copy one image), else this run's own.
    let mut snapshots = Vec::new();
    if let Origin::Pg { url, snapshot, .. } = &origin {
        if let Some(shared) = job.and_then(|j| j.snapshot).filter(|s| s != snapshot) {
            if PgReader::snapshot_alive(url, &shared).await? {
                tracing::info!("joining the job's running copy: reading its snapshot {shared}");
                snapshots.push(shared);
            } else {
                tracing::info!(
                    "the job's first snapshot is gone (its worker ended): rows not yet copied are read \
                     in this worker's own snapshot"
                );
            }
        }
    }
    let mut source = reading_source(&origin, settings, snapshots);
    if let Source::Postgres { url, .. } = &mut source {
        url.application_name = format!("{}/{}", url.application_name, worker.no);
    }

    // A single-chunk table howdah created is loaded with TRUNCATE + COPY FREEZE (its first
    // commit, for a keyed table; all of it, for a keyless one).
    let load_mode = |i: usize, t: &crate::catalog::Table| {
        if single_chunk[i] && settings.schema != SchemaMode::Existing && t.has_storage() {
            LoadMode::TruncateFreeze
        } else {
            LoadMode::Append
        }
    };

    let setvals: Vec<Step> = match &origin {
        Origin::Pg { client, .. } => {
            // A standalone sequence that was already on the target before a create/recreate
            // run is not ours to move; one owned by a selected table, or one we created,
            // follows the source.
            let own_sequences: Vec<_> = catalog
                .sequences
                .iter()
                .filter(|s| {
                    let ours = resuming
                        || settings.schema == SchemaMode::Existing
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
            pgcat::sequence_values(client, &own_sequences)
                .await?
                .iter()
                .map(|(n, v, called)| ddl::setval(n, *v, *called))
                .collect()
        }
        Origin::My { plan, .. } => plan
            .auto_increments
            .iter()
            .filter_map(|a| {
                // The column under its target name; a column a mapping leaves out has no
                // identity to set.
                let column = match &maps[a.table] {
                    None => a.column.clone(),
                    Some(m) => m
                        .lines
                        .iter()
                        .find(|l| l.source.as_ref().is_some_and(|(s, _)| *s == a.column))?
                        .target
                        .clone(),
                };
                let table = &catalog.tables.get(a.table)?.name;
                Some(crate::chunking::mysql::identity_step(
                    table, &column, a.next,
                ))
            })
            .collect(),
    };
    let index_of: HashMap<&QualifiedName, usize> = catalog
        .tables
        .iter()
        .enumerate()
        .map(|(i, t)| (&t.name, i))
        .collect();
    let parent: Vec<Option<usize>> = catalog
        .tables
        .iter()
        .map(|t| {
            t.partition_of
                .as_ref()
                .and_then(|(p, _)| index_of.get(p).copied())
        })
        .collect();
    let done_steps = state::done_steps(&target, &st).await?;
    // Steps already done (by an earlier run) drop out; so do jobs and phases left empty.
    let not_done = |phases: Phases| -> Phases {
        phases
            .into_iter()
            .map(|jobs| {
                jobs.into_iter()
                    .map(|steps| {
                        steps
                            .into_iter()
                            .filter(|s| !done_steps.contains(&s.what))
                            .collect::<Vec<_>>()
                    })
                    .filter(|j| !j.is_empty())
                    .collect::<Vec<_>>()
            })
            .filter(|p| !p.is_empty())
            .collect()
    };
    let build_schema = settings.schema != SchemaMode::Existing;
    let post_steps = |t: &crate::catalog::Table| {
        let mut phases = if build_schema {
            ddl::table_post_data(t)
        } else {
            Vec::new()
        };
        if t.has_storage() {
            phases.push(vec![vec![ddl::analyze(t)]]);
        }
        not_done(phases)
    };
    let mut final_phases: Phases = Vec::new();
    if build_schema {
        let log_table = st.table("invalid_keys");
        let log = ddl::NotValidLog {
            table: &log_table,
            job: &st.job,
        };
        final_phases.extend(ddl::final_phases_with(&catalog, Some(&log)));
    }
    let mut last: Vec<Step> = setvals;
    // Lanes commit with synchronous_commit off; one synchronous commit that writes a record
    // flushes all WAL before it, so exit 0 means every copied row is durable on the target.
    last.push(Step {
        what: "flush the target's WAL".into(),
        sql: "SET synchronous_commit = on; SELECT txid_current()".into(),
    });
    final_phases.push(vec![last]);
    let final_phases = not_done(final_phases);

    let notes = match &origin {
        Origin::My { plan, .. } => plan.notes.clone(),
        Origin::Pg { .. } => Vec::new(),
    };
    let tables: Vec<QualifiedName> = catalog.tables.iter().map(|t| t.name.clone()).collect();
    let tables_with_zero_dates: Vec<(QualifiedName, Vec<String>)> = catalog
        .tables
        .iter()
        .filter_map(|t| {
            let cols: Vec<String> = t
                .columns
                .iter()
                .filter(|c| c.nullable_for_zero_dates)
                .map(|c| c.name.clone())
                .collect();
            (!cols.is_empty()).then(|| (t.name.clone(), cols))
        })
        .collect();
    let text_keys = matches!(origin, Origin::My { .. });
    let reads = crate::prepare::table_reads(&origin, &maps);
    let jobs = catalog
        .tables
        .into_iter()
        .zip(maps)
        .zip(reads)
        .enumerate()
        .map(|(i, ((table, map), read))| TableJob {
            read,
            transform: map.and_then(|m| m.transform).map(Arc::new),
            load_mode: load_mode(i, &table),
            checkpoint: state::TableCheckpoint::for_table(
                &table,
                &st,
                worker.no,
                settings.lease_secs,
                text_keys,
            ),
            post: post_steps(&table),
            parent: parent[i],
            table,
        })
        .collect();
    let plan = RunPlan {
        tables: jobs,
        final_phases,
        state: st.clone(),
        worker: worker.no,
        source,
    };
    let prepare_time = started.elapsed();
    let report = match pipeline::run(settings, plan, stop, terminal).await {
        Ok(r) => r,
        Err(e) => {
            if matches!(e, Error::Interrupted) {
                // Hand the chunks in flight back at once, for another worker or the next run.
                if let Ok(fresh) = connect(&settings.target, Side::Target).await {
                    let _ = state::release_chunks(&fresh, &st, worker.no).await;
                }
            }
            worker.end(&settings.target, &st).await;
            // Best effort: the job keeps its last error for `status`; the run's error wins.
            if state::set_phase(&target, &st, "data", Some(&e.to_string()))
                .await
                .is_err()
            {
                if let Ok(fresh) = connect(&settings.target, Side::Target).await {
                    let _ = state::set_phase(&fresh, &st, "data", Some(&e.to_string())).await;
                }
            }
            return Err(e);
        }
    };
    if let Some(path) = &settings.rejects_file {
        let fresh = connect(&settings.target, Side::Target).await?;
        let n = state::rejects::export(&fresh, &st, path).await?;
        tracing::info!(
            "{n} rejected row(s) of job \"{}\" written to {}",
            st.job,
            path.display()
        );
    }
    // A percent limit is judged on the whole run once it is over.
    if let Some(limit) = settings.max_rejects {
        let rejected: u64 = report.tables.iter().map(|t| t.rejected).sum();
        let read: u64 = report.tables.iter().map(|t| t.rows + t.rejected).sum();
        if limit.exceeded(rejected, read, true) {
            worker.end(&settings.target, &st).await;
            return Err(Error::TooManyRejects {
                rejected,
                read,
                limit: limit.to_string(),
                last: "over the whole run; every table was copied".into(),
            });
        }
    }
    // The coordinator's connection may have broken during a long run; lanes reconnect, so
    // do these last statements.
    let invalid_keys = if state::set_phase(&target, &st, "done", None).await.is_err() {
        let fresh = connect(&settings.target, Side::Target).await?;
        state::set_phase(&fresh, &st, "done", None).await?;
        state::invalid_keys::read(&fresh, &st).await?
    } else {
        state::invalid_keys::read(&target, &st).await?
    };
    for key in &invalid_keys {
        tracing::warn!("{key}");
    }
    let zero_dates = if tables_with_zero_dates.is_empty() {
        Vec::new()
    } else {
        let fresh = connect(&settings.target, Side::Target).await?;
        zero_dates_nulled(&fresh, &tables_with_zero_dates).await?
    };
    worker.end(&settings.target, &st).await;
    drop(origin);
    Ok(CopyOutcome {
        tables,
        report,
        prepare_time,
        notes,
        dry_run: None,
        invalid_keys,
        message: None,
        zero_dates,
    })
}

/// Per column created nullable for zero dates and still nullable after the data (some zero
/// date arrived, so NOT NULL was not restored): how many rows hold NULL there, each a zero
/// date, since the source column is NOT NULL.
async fn zero_dates_nulled(
    target: &Client,
    tables: &[(QualifiedName, Vec<String>)],
) -> Result<Vec<(QualifiedName, String, i64)>> {
    let mut out = Vec::new();
    for (table, columns) in tables {
        let what = format!("counting the zero dates loaded as NULL into {table}");
        let nullable: Vec<String> = target
            .query(
                "SELECT a.attname::text FROM pg_attribute a WHERE a.attrelid = $1::text::regclass \
                 AND a.attname = ANY($2) AND NOT a.attnotnull ORDER BY a.attnum",
                &[&table.quoted(), columns],
            )
            .await
            .map_err(|e| crate::error::query_error(&what, &e))?
            .iter()
            .map(|r| r.get(0))
            .collect();
        if nullable.is_empty() {
            continue;
        }
        let counts: Vec<String> = nullable
            .iter()
            .map(|c| {
                format!(
                    "count(*) FILTER (WHERE {} IS NULL)",
                    crate::catalog::quote_ident(c)
                )
            })
            .collect();
        let row = target
            .query_one(
                &format!("SELECT {} FROM ONLY {}", counts.join(", "), table.quoted()),
                &[],
            )
            .await
            .map_err(|e| crate::error::query_error(&what, &e))?;
        for (i, c) in nullable.into_iter().enumerate() {
            out.push((table.clone(), c, row.get::<_, i64>(i)));
        }
    }
    Ok(out)
}

/// The `--dry-run` report: tables, their target names and every column's resolved mapping.
fn dry_run_text(catalog: &Catalog, maps: &[Option<crate::mapping::TableMapping>]) -> String {
    let mut text = format!(
        "dry run: nothing was written; {} table(s) would be copied\n{}",
        catalog.tables.len(),
        crate::mapping::describe(catalog, maps)
    );
    for t in &catalog.tables {
        for c in t.columns.iter().filter(|c| c.nullable_for_zero_dates) {
            let _ = writeln!(
                text,
                "zero dates: {}.{} is NOT NULL on the source: created nullable, its zero dates become NULL \
                 (NOT NULL is set again after the data if none arrives)",
                t.name, c.name
            );
        }
    }
    text
}

/// Everything a resume must agree with, as `key = value` lines (no secrets).
fn config_summary(settings: &CopySettings, catalog: &Catalog) -> String {
    let mut lines = vec![
        format!("source = {}", settings.source),
        format!("target = {}", settings.target),
        format!("schema mode = {:?}", settings.schema),
        format!("truncate = {}", settings.truncate),
        format!("chunk rows = {:?}", settings.chunk_rows),
        format!(
            "mysql = zero_dates {:?}, nul_bytes {:?}, schema {:?}, names {:?}, casts {:?}",
            settings.mysql.zero_dates,
            settings.mysql.nul_bytes,
            settings.mysql.schema,
            settings.mysql.names,
            settings.mysql.cast
        ),
        format!(
            "mappings = {:?} {:?} {:?}",
            settings.rules.tables, settings.rules.casts, settings.max_rejects
        ),
        format!(
            "tables = {}",
            catalog
                .tables
                .iter()
                .map(|t| t.name.to_string())
                .collect::<Vec<_>>()
                .join(",")
        ),
    ];
    for t in &catalog.tables {
        let key = t.chunk_key.as_ref().map(|k| {
            k.iter()
                .map(|c| match &c.collation {
                    Some(coll) => format!("{} {} collate {coll}", c.name, c.type_sql),
                    None => format!("{} {}", c.name, c.type_sql),
                })
                .collect::<Vec<_>>()
                .join(",")
        });
        let cols = t
            .copy_columns()
            .map(|c| format!("{} {}", c.name, c.type_sql))
            .collect::<Vec<_>>()
            .join(",");
        lines.push(format!(
            "key {} = {}",
            t.name,
            key.unwrap_or_else(|| "(none)".into())
        ));
        lines.push(format!("columns {} = {cols}", t.name));
    }
    lines.join("\n")
}

/// What a new job records besides its schema.
struct JobPlan<'a> {
    config: &'a str,
    snapshot: Option<&'a str>,
    chunks: &'a [crate::chunking::Chunk],
    priority: &'a [i32],
    /// The default_sql/value_sql values this job's rows get.
    sql_values: &'a state::values::SqlValues,
}

/// One target transaction: the schema (per the schema mode) and the job with its chunk plan.
/// A crash anywhere in it leaves neither, so the next run starts clean.
async fn create_schema_and_job(
    settings: &CopySettings,
    catalog: &Catalog,
    target: &Client,
    st: &StateRef,
    plan: &JobPlan<'_>,
) -> Result<()> {
    let ddl_opts = ddl::DdlOptions {
        owners: settings.owners,
        grants: settings.grants,
    };
    target
        .batch_execute("BEGIN")
        .await
        .map_err(|e| Error::Query {
            what: "starting the schema transaction".into(),
            reason: db_reason(&e),
        })?;
    match settings.schema {
        SchemaMode::Create => {
            let facts = pgcat::target_facts(target).await?;
            run_steps(target, &ddl::pre_data(catalog, &facts, &ddl_opts)).await?;
        }
        SchemaMode::Recreate => {
            run_steps(target, &ddl::drop_for_recreate(catalog)).await?;
            // Read again: dropping tables also dropped their owned sequences and views.
            let facts = pgcat::target_facts(target).await?;
            run_steps(target, &ddl::pre_data(catalog, &facts, &ddl_opts)).await?;
        }
        SchemaMode::Existing if settings.truncate => {
            let names: Vec<String> = catalog
                .tables
                .iter()
                .filter(|t| t.has_storage())
                .map(|t| t.name.quoted())
                .collect();
            run_steps(
                target,
                &[Step {
                    what: "truncate the selected target tables".into(),
                    sql: format!("TRUNCATE ONLY {}", names.join(", ")),
                }],
            )
            .await?;
        }
        SchemaMode::Existing => {}
    }
    let names: Vec<String> = catalog.tables.iter().map(|t| t.name.to_string()).collect();
    let job_sql = state::insert_job_sql(
        st,
        plan.config,
        plan.snapshot,
        plan.chunks,
        &names,
        plan.priority,
    );
    let values_sql = state::values::insert_sql(st, plan.sql_values);
    target
        .batch_execute(&format!("{job_sql} {values_sql} COMMIT"))
        .await
        .map_err(|e| Error::Query {
            what: "recording the job in the state tables".into(),
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

/// With `--schema existing`: every column the copy sends must exist on the target with the
/// type it sends (see [`crate::typemap::compat`]). Binary COPY does not convert: another type
/// of the same width would load its bytes with another meaning, another width fails the whole
/// chunk, a narrower `numeric(p,s)` rounds silently.
async fn check_existing_columns(catalog: &Catalog, target: &Client) -> Result<()> {
    use crate::typemap::compat::receives;
    // Types render schema-qualified, as the source catalog's do (read with an empty path).
    target
        .batch_execute("BEGIN; SET LOCAL search_path = ''")
        .await
        .map_err(|e| crate::error::query_error("reading the target's columns", &e))?;
    let mut problems = Vec::new();
    let mut fixes = Vec::new();
    for t in catalog.tables.iter().filter(|t| t.has_storage()) {
        let rows = target
            .query(
                "SELECT a.attname::text, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a \
                 WHERE a.attrelid = $1::text::regclass AND a.attnum > 0 AND NOT a.attisdropped",
                &[&t.name.quoted()],
            )
            .await
            .map_err(|e| crate::error::query_error("reading the target's columns", &e))?;
        let on_target: HashMap<String, String> =
            rows.iter().map(|r| (r.get(0), r.get(1))).collect();
        for c in t.copy_columns() {
            let Some(ty) = on_target.get(&c.name) else {
                problems.push(format!("{}.{} is missing on the target", t.name, c.name));
                continue;
            };
            if !receives(&c.type_sql, ty) {
                problems.push(format!(
                    "{}.{} is {ty} on the target but {} from the source",
                    t.name, c.name, c.type_sql
                ));
                fixes.push(format!(
                    "ALTER TABLE {} ALTER COLUMN {} TYPE {}",
                    t.name.quoted(),
                    crate::catalog::quote_ident(&c.name),
                    c.type_sql
                ));
            }
        }
    }
    target
        .batch_execute("COMMIT")
        .await
        .map_err(|e| crate::error::query_error("reading the target's columns", &e))?;
    if problems.is_empty() {
        return Ok(());
    }
    let more = if problems.len() > 5 {
        format!(" (and {} more)", problems.len() - 5)
    } else {
        String::new()
    };
    problems.truncate(5);
    fixes.truncate(5);
    let alter = if fixes.is_empty() {
        String::new()
    } else {
        format!(" (`{};`)", fixes.join("; "))
    };
    Err(Error::Config(format!(
        "--schema existing: {}{more}; nothing was written: binary COPY would hand those values' \
         bytes to the target's type, which reads them with another meaning or fails. Give the \
         target columns the source's types{alter}, or add a [[table.column]] rule with the \
         target's type where howdah can cast to it (values that do not fit are then rejected \
         with their key)",
        problems.join("; ")
    )))
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

/// Formats the end-of-run summary table (for a rerun of a finished job, what it found).
pub fn summary(outcome: &CopyOutcome) -> String {
    let mut out = String::new();
    if let Some(message) = &outcome.message {
        out.push_str(message);
        for key in &outcome.invalid_keys {
            let _ = write!(out, "\n{key}");
        }
        return out;
    }
    let _ = writeln!(
        out,
        "{:<40} {:>12} {:>10} {:>7} {:>9} {:>11} {:>8} {:>9}",
        "table", "rows", "MB", "chunks", "data s", "rows/s", "post s", "rejected"
    );
    let (mut rows, mut bytes) = (0u64, 0u64);
    for (name, r) in outcome.tables.iter().zip(&outcome.report.tables) {
        rows += r.rows;
        bytes += r.bytes;
        let secs = r.data_time.as_secs_f64();
        let rate = if secs > 0.0 {
            r.rows as f64 / secs
        } else {
            0.0
        };
        let _ = writeln!(
            out,
            "{:<40} {:>12} {:>10.1} {:>7} {:>9.1} {:>11.0} {:>8.1} {:>9}",
            name.to_string(),
            r.rows,
            r.bytes as f64 / 1e6,
            r.chunks,
            secs,
            rate,
            r.post_time.as_secs_f64(),
            r.rejected
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
    let own: usize = outcome.report.tables.iter().map(|t| t.own_chunks).sum();
    let all: usize = outcome.report.tables.iter().map(|t| t.chunks).sum();
    let _ = writeln!(out, "chunks copied by this worker: {own} of {all}");
    let _ = writeln!(out, "retried chunk attempts: {}", outcome.report.retries);
    for (table, column, rows) in &outcome.zero_dates {
        let _ = writeln!(
            out,
            "zero dates loaded as NULL: {table}.{column}: {rows} row(s) (NOT NULL on the source; the column stays nullable)"
        );
    }
    for key in &outcome.invalid_keys {
        let _ = writeln!(out, "{key}");
    }
    let _ = write!(
        out,
        "total: {:.1} s",
        (outcome.prepare_time + outcome.report.total_time).as_secs_f64()
    );
    out
}
