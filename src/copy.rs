//! The `copy` command: snapshot, catalog, target checks, schema, chunk plan, pipeline, report.

use std::collections::HashMap;
use std::fmt::Write as _;

use tokio_postgres::Client;

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use crate::catalog::{postgres as pgcat, Catalog, QualifiedName};
use crate::config::{CopySettings, SourceUrl};
use crate::connect::{connect, Side};
use crate::error::{db_reason, Error, Result};
use crate::pipeline::{self, RunPlan, RunReport, TableJob};
use crate::prepare::{prepare, Origin, Prepared};
use crate::progress::Terminal;
use crate::schema::{ddl, Phases, SchemaMode, Step};
use crate::sink::postgres::LoadMode;
use crate::state::invalid_keys::InvalidKey;
use crate::state::job::JobStart;
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
    /// The job's large objects (`None`: the source has none, or the copy is narrowed by
    /// `--tables`).
    pub large_objects: Option<pipeline::large_objects::LoReport>,
}

impl CopyOutcome {
    /// An outcome with no table copied (a dry run, a rerun of a finished job).
    fn nothing(prepare_time: std::time::Duration) -> Self {
        CopyOutcome {
            tables: Vec::new(),
            report: RunReport::default(),
            prepare_time,
            notes: Vec::new(),
            dry_run: None,
            invalid_keys: Vec::new(),
            message: None,
            zero_dates: Vec::new(),
            large_objects: None,
        }
    }

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
    let recorded = match settings.restart {
        true => state::values::SqlValues::new(),
        false => state::values::load(&target, &st, false).await?,
    };
    // --follow: a new job's slot is made first; the copy reads in the snapshot it exports.
    let follow_start = match &settings.follow {
        Some(_) if !settings.dry_run => {
            crate::follow::run::prepare_start(settings, &target).await?
        }
        _ => None,
    };
    let mut with_slot = settings.clone();
    if let Some(start) = &follow_start {
        with_slot.source_snapshot = Some(start.slot.snapshot.clone());
    }
    let settings = &with_slot;
    let Prepared {
        mut origin,
        mut catalog,
        mut maps,
        sql_values,
    } = prepare(settings, &target, &recorded).await?;
    if let Some(start) = follow_start {
        crate::follow::run::record_start(settings, &target, start).await?;
    }
    if let Some(outcome) = nothing_to_copy(settings, &catalog, &maps, &origin, started)? {
        return Ok(outcome);
    }
    let config = config_summary(settings, &catalog);
    let recreate = settings.schema == SchemaMode::Recreate;
    let job = match state::job::open(&target, &st, &config, settings.restart, recreate).await? {
        JobStart::New => None,
        JobStart::Resume(job) => Some(job),
        JobStart::Revalidated {
            message,
            still_invalid,
        } => {
            return Ok(CopyOutcome {
                invalid_keys: still_invalid,
                message: Some(message),
                ..CopyOutcome::nothing(started.elapsed())
            })
        }
    };
    let resuming = job.is_some();
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
    // Relations of unmapped tablespaces go to the target's default one.
    let tablespaces_left = catalog.place_tablespaces(&settings.tablespaces);
    let facts = pgcat::target_facts(&target).await?;
    let single_chunk = if resuming {
        resume_job(settings, &catalog, &target, &st).await?
    } else {
        let new = NewJob {
            config: &config,
            sql_values: &sql_values,
            facts: &facts,
        };
        start_new_job(settings, &catalog, &maps, &mut origin, &target, &st, &new).await?
    };
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
    let source = origin
        .reading(settings, job.and_then(|j| j.snapshot), worker.no)
        .await?;

    let setvals = setval_steps(settings, &origin, &catalog, &maps, resuming, &facts).await?;
    let done_steps = state::done_steps(&target, &st).await?;
    let steps = Steps {
        build_schema: settings.schema != SchemaMode::Existing,
        done: &done_steps,
        ddl_opts: ddl_options(settings),
    };
    let final_phases = steps.final_phases(&catalog, &st, setvals);

    let mut notes = origin.notes();
    notes.extend(left_for_hand(&catalog, settings));
    notes.extend(tablespaces_left.iter().map(|(ts, n)| {
        format!(
            "{n} relation(s) of source tablespace {ts} created in the target's default tablespace (--tablespace {ts}=NEW places them)"
        )
    }));
    let tables: Vec<QualifiedName> = catalog.tables.iter().map(|t| t.name.clone()).collect();
    let zero_date_columns = zero_date_columns(&catalog);
    let reads = crate::prepare::table_reads(&origin, &maps);
    let builds = state::builds::by_table(&target, &st).await?;
    let index_bytes: HashMap<String, i64> = builds
        .iter()
        .map(|b| (b.table.clone(), b.index_bytes_left))
        .collect();
    let layout = JobLayout {
        st: &st,
        worker: worker.no,
        text_keys: origin.text_keys(),
        single_chunk: &single_chunk,
        steps: &steps,
        index_bytes: &index_bytes,
    };
    let lo_source = source.clone();
    let (rows_in_tx, rows_in) = tokio::sync::oneshot::channel();
    let plan = RunPlan {
        tables: layout.table_jobs(settings, catalog.tables, maps, reads),
        final_phases,
        state: st.clone(),
        worker: worker.no,
        source,
        rows_in: Some(rows_in_tx),
        check_bytes: builds.iter().map(|b| b.check_bytes_left).sum(),
    };
    let prepare_time = started.elapsed();
    // Once every table's rows are in, the large objects are read in the same snapshot while
    // the index builds go on; then the snapshot is let go, so that the source's vacuum is
    // not held back through the post-data steps, which read nothing from the source.
    let (lo_settings, lo_st, lo_stop) = (settings, &st, stop.clone());
    let lo_source = &lo_source;
    let after_rows = async move {
        if rows_in.await.is_err() {
            // The pipeline ended before the rows were in (its error is the one to report).
            return Ok(None);
        }
        let lo = pipeline::large_objects::run(lo_settings, lo_source, lo_st, lo_stop).await?;
        origin.release(started.elapsed()).await;
        Ok(Some(lo))
    };
    let data_and_builds = async {
        let report = pipeline::run(settings, plan, stop.clone(), terminal).await;
        if report.is_err() {
            // Large-object lanes stop at their next chunk, everything committed kept.
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
        }
        report
    };
    let (report, after_rows) = tokio::join!(data_and_builds, after_rows);
    let (report, large_objects) = match (report, after_rows) {
        (Ok(r), Ok(Some(lo))) => (r, lo),
        // Not reached (a run that succeeds has told that its rows are in); kept so that the
        // large objects can never be skipped: copy them now (readers fall back to a fresh
        // snapshot, with a warning, if the run's is gone).
        (Ok(r), Ok(None)) => {
            match pipeline::large_objects::run(settings, lo_source, &st, stop.clone()).await {
                Ok(lo) => (r, lo),
                Err(e) => return Err(record_failure(settings, &target, &st, worker, e).await),
            }
        }
        // A large-object lane that fails stops the run's lanes and builders (the shared
        // `stop`), which the pipeline reports as an interruption: the lane's error says why.
        (Err(Error::Interrupted), Err(e)) | (Ok(_), Err(e)) | (Err(e), _) => {
            return Err(record_failure(settings, &target, &st, worker, e).await)
        }
    };
    let (invalid_keys, zero_dates) =
        close_job(settings, &target, &st, worker, &report, &zero_date_columns).await?;
    Ok(CopyOutcome {
        tables,
        report,
        prepare_time,
        notes,
        dry_run: None,
        invalid_keys,
        message: None,
        zero_dates,
        large_objects,
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

/// The `--dry-run` report: tables, their target names and every column's resolved mapping;
/// for a MySQL source, the MySQL names that `[mysql] identifiers` changes.
fn dry_run_text(
    catalog: &Catalog,
    maps: &[Option<crate::mapping::TableMapping>],
    origin: &Origin,
    settings: &CopySettings,
) -> String {
    let mut text = format!(
        "dry run: nothing was written; {} table(s) would be copied\n{}",
        catalog.tables.len(),
        crate::mapping::describe(catalog, maps)
    );
    let rule = settings.mysql.identifiers.unwrap_or_default();
    for i in 0..catalog.tables.len() {
        let Some(read) = origin.mysql_read(i) else {
            continue;
        };
        let renamed: Vec<String> = std::iter::once(&read.source)
            .chain(read.columns.iter().map(|c| &c.name))
            .filter(|n| rule.apply(n) != **n)
            .map(|n| format!("{n} -> {}", rule.apply(n)))
            .collect();
        if !renamed.is_empty() {
            let _ = writeln!(
                text,
                "identifiers ({}): {}: {}",
                rule.key(),
                read.source,
                renamed.join(", ")
            );
        }
    }
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
            settings.mysql.identifiers,
            settings.mysql.cast
        ),
        settings.mappings_summary(),
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

/// What a new job starts from besides the catalog.
struct NewJob<'a> {
    /// The settings summary a resume must agree with.
    config: &'a str,
    /// The `default_sql`/`value_sql` values its rows get.
    sql_values: &'a state::values::SqlValues,
    /// What the target holds now.
    facts: &'a crate::catalog::TargetFacts,
}

/// The outcome of a run that copies nothing: a `--dry-run` report. Fails when no table
/// matched the patterns (a database of large objects alone is still worth a copy).
fn nothing_to_copy(
    settings: &CopySettings,
    catalog: &Catalog,
    maps: &[Option<crate::mapping::TableMapping>],
    origin: &Origin,
    started: std::time::Instant,
) -> Result<Option<CopyOutcome>> {
    if settings.dry_run {
        return Ok(Some(CopyOutcome {
            tables: catalog.tables.iter().map(|t| t.name.clone()).collect(),
            dry_run: Some(dry_run_text(catalog, maps, origin, settings)),
            ..CopyOutcome::nothing(started.elapsed())
        }));
    }
    let only_large_objects = settings.filter.whole_database() && catalog.large_objects > 0;
    if catalog.tables.is_empty() && !only_large_objects {
        return Err(Error::Config(format!(
            "no table of the source {} matched the table patterns ({}); patterns are globs over schema.table{}",
            settings.source,
            settings.filter.describe(),
            origin.pattern_hint()
        )));
    }
    Ok(None)
}

/// The steps that set sequences after the data. A standalone sequence that was already on the
/// target before a create/recreate run is not ours to move; one owned by a selected table, or
/// one we created, follows the source.
async fn setval_steps(
    settings: &CopySettings,
    origin: &crate::prepare::Origin,
    catalog: &Catalog,
    maps: &[Option<crate::mapping::TableMapping>],
    resuming: bool,
    facts: &crate::catalog::TargetFacts,
) -> Result<Vec<Step>> {
    origin
        .sequence_steps(catalog, maps, |s| {
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
        .await
}

/// An unfinished job: finishes its schema if a run died while creating it, then retries its
/// failed chunks. No table is copied in a single chunk (`COPY FREEZE` is for new jobs).
async fn resume_job(
    settings: &CopySettings,
    catalog: &Catalog,
    target: &Client,
    st: &StateRef,
) -> Result<Vec<bool>> {
    if state::steps::schema_pending(target, st).await? {
        tracing::info!(
            "job \"{}\": the schema was not complete; creating the rest",
            st.job
        );
        create_schema(settings, catalog, target, st).await?;
    }
    state::job::resume(target, st).await?;
    Ok(vec![false; catalog.tables.len()])
}

/// A new job: checks the target, cuts the tables into chunks, and creates the schema and the
/// job with its chunk plan in one target transaction. Returns, per table, whether it is copied
/// in a single chunk.
async fn start_new_job(
    settings: &CopySettings,
    catalog: &Catalog,
    maps: &[Option<crate::mapping::TableMapping>],
    origin: &mut crate::prepare::Origin,
    target: &Client,
    st: &StateRef,
    new: &NewJob<'_>,
) -> Result<Vec<bool>> {
    check_target(settings, catalog, new.facts, target).await?;
    if settings.schema == SchemaMode::Existing {
        check_existing_columns(catalog, target).await?;
    }
    let chunks = origin
        .plan_chunks(catalog, maps, settings.chunk_rows, settings.jobs)
        .await?;
    let mut per_table = vec![0usize; catalog.tables.len()];
    for c in &chunks {
        per_table[c.table] += 1;
    }
    let mut priority = vec![0i32; catalog.tables.len()];
    for (rank, t) in crate::chunking::order::copy_order(&catalog.tables)
        .into_iter()
        .enumerate()
    {
        priority[t] = rank as i32;
    }
    // Large objects belong to the whole database: a copy narrowed by --tables leaves them, as
    // pg_dump -t does.
    let large_objects = match origin.postgres() {
        Some(client) if settings.filter.whole_database() => {
            let oids = crate::source::large_objects::list(client).await?;
            let per = pipeline::large_objects::objects_per_chunk(oids.len(), settings.jobs);
            state::large_objects::plan(&oids, per)
        }
        _ => Vec::new(),
    };
    let builds = match origin.postgres() {
        Some(client) if settings.schema != SchemaMode::Existing => {
            index_builds(client, catalog).await?
        }
        _ => Vec::new(),
    };
    let plan = JobPlan {
        config: new.config,
        snapshot: origin.snapshot(),
        chunks: &chunks,
        large_objects: &large_objects,
        builds: &builds,
        priority: &priority,
        sql_values: new.sql_values,
    };
    create_schema_and_job(settings, catalog, target, st, &plan).await?;
    Ok(per_table.into_iter().map(|n| n == 1).collect())
}

/// The job's index builds with the size of each index on the source (one catalog query), and
/// its foreign key checks with the size of each referencing table, for the ETA of the
/// post-data steps. An index the query does not find counts 0 bytes.
async fn index_builds(source: &Client, catalog: &Catalog) -> Result<Vec<state::builds::Build>> {
    let rows = source
        .query(
            "SELECT n.nspname::text, c.relname::text, pg_relation_size(c.oid)::int8 \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind IN ('i', 'I') AND n.nspname <> 'information_schema' \
               AND n.nspname !~ '^pg_'",
            &[],
        )
        .await
        .map_err(|e| crate::error::query_error("reading the sizes of the source's indexes", &e))?;
    let sizes: HashMap<(String, String), i64> = rows
        .iter()
        .map(|r| ((r.get(0), r.get(1)), r.get(2)))
        .collect();
    let mut builds = Vec::new();
    for t in &catalog.tables {
        for (step, index) in ddl::index_builds(t) {
            let key = (t.name.schema.clone(), index);
            builds.push(state::builds::Build {
                step,
                kind: state::builds::INDEX,
                table: t.name.to_string(),
                bytes: sizes.get(&key).copied().unwrap_or(0),
            });
        }
        for step in ddl::foreign_key_steps(t) {
            builds.push(state::builds::Build {
                step,
                kind: state::builds::FOREIGN_KEY,
                table: t.name.to_string(),
                bytes: t.size_bytes.max(0),
            });
        }
    }
    Ok(builds)
}

/// What a new job records besides its schema.
struct JobPlan<'a> {
    config: &'a str,
    snapshot: Option<&'a str>,
    chunks: &'a [crate::chunking::Chunk],
    /// The source's large objects in chunks (empty: none to copy).
    large_objects: &'a [state::large_objects::LoChunk],
    /// The index builds and their sizes on the source (empty: none, or a MySQL source).
    builds: &'a [state::builds::Build],
    priority: &'a [i32],
    /// The default_sql/value_sql values this job's rows get.
    sql_values: &'a state::values::SqlValues,
}

/// Records the job with its chunk plan in one target transaction, marked "schema pending",
/// then creates the schema in bounded transactions ([`create_schema`]). A crash before the
/// first commit leaves nothing; after it, the next run resumes the job and finishes the schema.
async fn create_schema_and_job(
    settings: &CopySettings,
    catalog: &Catalog,
    target: &Client,
    st: &StateRef,
    plan: &JobPlan<'_>,
) -> Result<()> {
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
    let lo_sql = state::large_objects::insert_sql(st, plan.large_objects);
    let builds_sql = state::builds::insert_sql(st, plan.builds);
    let pending = state::steps::schema_pending_sql(st);
    target
        .batch_execute(&format!(
            "BEGIN; {job_sql} {values_sql} {lo_sql} {builds_sql} {pending}; COMMIT"
        ))
        .await
        .map_err(|e| Error::Query {
            what: "recording the job in the state tables".into(),
            reason: db_reason(&e),
        })?;
    create_schema(settings, catalog, target, st).await
}

/// Creates the job's schema (per the schema mode) in transactions of a bounded number of
/// steps, each committing with its steps' done marks, so that thousands of tables fit in the
/// target's lock table (`max_locks_per_transaction`) and a resumed run skips what is done;
/// then clears the job's "schema pending" mark. Runs under the job's setup lock: no lane of
/// any worker starts before the schema is complete.
async fn create_schema(
    settings: &CopySettings,
    catalog: &Catalog,
    target: &Client,
    st: &StateRef,
) -> Result<()> {
    let ddl_opts = ddl_options(settings);
    let per_transaction = pgcat::steps_per_transaction(target).await?;
    let done = state::done_steps(target, st).await?;
    let batched = |steps: Vec<Step>| run_batched(target, st, steps, &done, per_transaction);
    match settings.schema {
        SchemaMode::Create => {
            let facts = pgcat::target_facts(target).await?;
            batched(ddl::pre_data(catalog, &facts, &ddl_opts)).await?;
        }
        SchemaMode::Recreate => {
            batched(ddl::drop_for_recreate(catalog)).await?;
            // Read again: dropping tables also dropped their owned sequences and views.
            let facts = pgcat::target_facts(target).await?;
            batched(ddl::pre_data(catalog, &facts, &ddl_opts)).await?;
        }
        SchemaMode::Existing if settings.truncate => {
            let names: Vec<String> = catalog
                .tables
                .iter()
                .filter(|t| t.has_storage())
                .map(|t| t.name.quoted())
                .collect();
            let steps = names
                .chunks(TRUNCATE_TABLES)
                .map(|group| Step {
                    what: format!(
                        "truncate target tables {} to {}",
                        group[0],
                        group[group.len() - 1]
                    ),
                    sql: format!("TRUNCATE ONLY {}", group.join(", ")),
                })
                .collect();
            batched(steps).await?;
        }
        SchemaMode::Existing => {}
    }
    target
        .batch_execute(&state::steps::schema_done_sql(st))
        .await
        .map_err(|e| Error::Query {
            what: "recording the schema as created".into(),
            reason: db_reason(&e),
        })
}

/// Tables one `TRUNCATE` takes (each with its indexes and TOAST table locked).
const TRUNCATE_TABLES: usize = 100;

/// Runs `steps` not yet in `done` in order, `per_transaction` to a transaction that commits
/// with their done marks.
async fn run_batched(
    target: &Client,
    st: &StateRef,
    steps: Vec<Step>,
    done: &std::collections::HashSet<String>,
    per_transaction: usize,
) -> Result<()> {
    let todo: Vec<(Step, String)> = steps
        .into_iter()
        .map(|s| {
            let mark = state::steps::schema_step_mark(&s);
            (s, mark)
        })
        .filter(|(_, mark)| !done.contains(mark))
        .collect();
    for batch in todo.chunks(per_transaction) {
        let begin = target.batch_execute("BEGIN").await;
        begin.map_err(|e| Error::Query {
            what: "starting a schema transaction".into(),
            reason: db_reason(&e),
        })?;
        let steps: Vec<Step> = batch.iter().map(|(s, _)| s.clone()).collect();
        if let Err(e) = run_steps(target, &steps).await {
            // The transaction is aborted; a broken connection needs nothing.
            let _ = target.batch_execute("ROLLBACK").await;
            return Err(e);
        }
        let marks: Vec<String> = batch
            .iter()
            .map(|(_, mark)| state::steps::step_done_sql(st, mark))
            .collect();
        target
            .batch_execute(&format!("{}; COMMIT", marks.join(";\n")))
            .await
            .map_err(|e| Error::Query {
                what: "committing schema steps with their done marks".into(),
                reason: db_reason(&e),
            })?;
    }
    Ok(())
}

/// What the copy did not create and says so: publications and subscriptions with the SQL that
/// creates them, user mappings created without their password.
fn left_for_hand(catalog: &Catalog, settings: &CopySettings) -> Vec<String> {
    let mut notes: Vec<String> = catalog
        .not_created
        .iter()
        .map(|m| {
            format!(
                "{} {} not created (a copy's target does not publish or subscribe by itself); to create it by hand: {}",
                m.kind, m.name, m.sql
            )
        })
        .collect();
    if !settings.user_mapping_passwords {
        notes.extend(
            catalog
                .others
                .iter()
                .filter(|o| o.with_password.is_some())
                .map(|o| {
                    format!(
                        "user mapping {} created without its password option (--user-mapping-passwords copies it)",
                        o.name
                    )
                }),
        );
    }
    if settings.schema == SchemaMode::Existing && !catalog.others.is_empty() {
        notes.push(
            "--schema existing: operators, casts, text search objects, statistics, rules, event triggers and the other objects of the source's schema were not created".into(),
        );
    }
    notes
}

/// Which optional parts of the schema the copy reproduces.
fn ddl_options(settings: &CopySettings) -> ddl::DdlOptions {
    ddl::DdlOptions {
        owners: settings.owners,
        grants: settings.grants,
        user_mapping_passwords: settings.user_mapping_passwords,
    }
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
    if let Some(lo) = &outcome.large_objects {
        let _ = writeln!(
            out,
            "large objects: {} ({:.1} MB) in {} chunks, {} of them by this run in {:.1} s",
            lo.objects,
            lo.bytes as f64 / 1e6,
            lo.chunks,
            lo.own_chunks,
            lo.time.as_secs_f64()
        );
    }
    for note in &outcome.notes {
        let _ = writeln!(out, "note: {note}");
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

/// What every table job of a run shares.
struct JobLayout<'a> {
    st: &'a StateRef,
    worker: i32,
    /// Readers give each batch's last key as text (MySQL).
    text_keys: bool,
    /// Per table: copied in one chunk.
    single_chunk: &'a [bool],
    steps: &'a Steps<'a>,
    /// Source bytes of the indexes not built yet, by table (`schema.table`).
    index_bytes: &'a HashMap<String, i64>,
}

impl JobLayout<'_> {
    /// One [`TableJob`] per table, by table number.
    fn table_jobs(
        &self,
        settings: &CopySettings,
        tables: Vec<crate::catalog::Table>,
        maps: Vec<Option<crate::mapping::TableMapping>>,
        reads: Vec<Option<crate::source::TableRead>>,
    ) -> Vec<TableJob> {
        let index_of: HashMap<QualifiedName, usize> = tables
            .iter()
            .enumerate()
            .map(|(i, t)| (t.name.clone(), i))
            .collect();
        tables
            .into_iter()
            .zip(maps)
            .zip(reads)
            .enumerate()
            .map(|(i, ((table, map), read))| {
                // A single-chunk table howdah created is loaded with TRUNCATE + COPY FREEZE
                // (its first commit, for a keyed table; all of it, for a keyless one).
                let freeze = self.single_chunk.get(i).copied().unwrap_or(false)
                    && settings.schema != SchemaMode::Existing
                    && table.has_storage();
                TableJob {
                    read,
                    transform: map.and_then(|m| m.transform).map(Arc::new),
                    load_mode: if freeze {
                        LoadMode::TruncateFreeze
                    } else {
                        LoadMode::Append
                    },
                    checkpoint: state::TableCheckpoint::for_table(
                        &table,
                        self.st,
                        self.worker,
                        settings.lease_secs,
                        self.text_keys,
                    ),
                    post: self.steps.table(&table),
                    index_bytes: self
                        .index_bytes
                        .get(&table.name.to_string())
                        .copied()
                        .unwrap_or(0),
                    parent: table
                        .partition_of
                        .as_ref()
                        .and_then(|(p, _)| index_of.get(p).copied()),
                    table,
                }
            })
            .collect()
    }
}

/// Per table with columns created nullable for MySQL zero dates: those columns.
fn zero_date_columns(catalog: &Catalog) -> Vec<(QualifiedName, Vec<String>)> {
    catalog
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
        .collect()
}

/// After a failed or interrupted run: hands an interrupted run's chunks back at once (for
/// another worker or the next run), ends the worker, and keeps the error in the job for
/// `status`. Best effort: the run's own error is what is returned.
async fn record_failure(
    settings: &CopySettings,
    target: &Client,
    st: &StateRef,
    worker: WorkerSession,
    e: Error,
) -> Error {
    if matches!(e, Error::Interrupted) {
        if let Ok(fresh) = connect(&settings.target, Side::Target).await {
            let _ = state::release_chunks(&fresh, st, worker.no).await;
        }
    }
    worker.end(&settings.target, st).await;
    if state::set_phase(target, st, "data", Some(&e.to_string()))
        .await
        .is_err()
    {
        if let Ok(fresh) = connect(&settings.target, Side::Target).await {
            let _ = state::set_phase(&fresh, st, "data", Some(&e.to_string())).await;
        }
    }
    e
}

/// After a run whose data and steps are all in: exports the rejects (`--rejects-file`),
/// judges a percent `--max-rejects` over the whole run, marks the job done, and reads the
/// foreign keys left `NOT VALID` and the zero dates loaded as NULL, for the summary.
async fn close_job(
    settings: &CopySettings,
    target: &Client,
    st: &StateRef,
    worker: WorkerSession,
    report: &RunReport,
    tables_with_zero_dates: &[(QualifiedName, Vec<String>)],
) -> Result<(Vec<InvalidKey>, Vec<(QualifiedName, String, i64)>)> {
    if let Some(path) = &settings.rejects_file {
        let fresh = connect(&settings.target, Side::Target).await?;
        let n = state::rejects::export(&fresh, st, path).await?;
        tracing::info!(
            "{n} rejected row(s) of job \"{}\" written to {}",
            st.job,
            path.display()
        );
    }
    if let Some(limit) = settings.max_rejects {
        let rejected: u64 = report.tables.iter().map(|t| t.rejected).sum();
        let read: u64 = report.tables.iter().map(|t| t.rows + t.rejected).sum();
        if limit.exceeded(rejected, read, true) {
            worker.end(&settings.target, st).await;
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
    let invalid_keys = if state::set_phase(target, st, "done", None).await.is_err() {
        let fresh = connect(&settings.target, Side::Target).await?;
        state::set_phase(&fresh, st, "done", None).await?;
        state::invalid_keys::read(&fresh, st).await?
    } else {
        state::invalid_keys::read(target, st).await?
    };
    for key in &invalid_keys {
        tracing::warn!("{key}");
    }
    let zero_dates = if tables_with_zero_dates.is_empty() {
        Vec::new()
    } else {
        let fresh = connect(&settings.target, Side::Target).await?;
        zero_dates_nulled(&fresh, tables_with_zero_dates).await?
    };
    worker.end(&settings.target, st).await;
    Ok((invalid_keys, zero_dates))
}

/// The post-data and final steps of a run, without those an earlier run (or another worker)
/// has done: jobs and phases left empty drop out.
struct Steps<'a> {
    /// Keys, indexes, constraints and foreign keys are built (not with `--schema existing`).
    build_schema: bool,
    /// The `what` of the steps done.
    done: &'a std::collections::HashSet<String>,
    /// Owners, grants, user mapping passwords.
    ddl_opts: ddl::DdlOptions,
}

impl Steps<'_> {
    fn not_done(&self, phases: Phases) -> Phases {
        phases
            .into_iter()
            .map(|jobs| {
                jobs.into_iter()
                    .map(|steps| {
                        steps
                            .into_iter()
                            .filter(|s| !self.done.contains(&s.what))
                            .collect::<Vec<_>>()
                    })
                    .filter(|j| !j.is_empty())
                    .collect::<Vec<_>>()
            })
            .filter(|p| !p.is_empty())
            .collect()
    }

    /// A table's post-data phases: its keys, indexes and constraints, then `ANALYZE`.
    fn table(&self, t: &crate::catalog::Table) -> Phases {
        let mut phases = if self.build_schema {
            ddl::table_post_data(t)
        } else {
            Vec::new()
        };
        if t.has_storage() {
            phases.push(vec![vec![ddl::analyze(t)]]);
        }
        self.not_done(phases)
    }

    /// The phases after every table: partition attachments, foreign keys (left `NOT VALID`
    /// and recorded when the rows violate them), triggers, materialized views, then the
    /// sequences (`setvals`) and one synchronous commit.
    fn final_phases(&self, catalog: &Catalog, st: &StateRef, setvals: Vec<Step>) -> Phases {
        let mut phases: Phases = Vec::new();
        if self.build_schema {
            let log_table = st.table("invalid_keys");
            let log = ddl::NotValidLog {
                table: &log_table,
                job: &st.job,
            };
            phases.extend(ddl::final_phases_with(catalog, Some(&log)));
            phases.push(vec![ddl::final_objects(catalog, &self.ddl_opts)]);
        }
        let mut last = setvals;
        // Lanes commit with synchronous_commit off; one synchronous commit that writes a
        // record flushes all WAL before it, so exit 0 means every copied row is durable.
        last.push(Step {
            what: "flush the target's WAL".into(),
            sql: "SET synchronous_commit = on; SELECT txid_current()".into(),
        });
        phases.push(vec![last]);
        self.not_done(phases)
    }
}
