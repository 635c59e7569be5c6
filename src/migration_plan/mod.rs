//! `howdah plan`: introspects source and target and writes a migration plan, read-only.
//!
//! Collection happens here and in `probe.rs` (values, throughput), `preflight.rs` (target
//! and connection checks) and `execution.rs` (commands, rollback SQL); the result is one
//! [`MigrationPlan`] value, rendered as Markdown by `markdown.rs` or as JSON by serde (its
//! shape is documented in `docs/plan.md` and `docs/plan.schema.json`).
//!
//! The plan writes nothing anywhere: it opens the source the way `copy` does ([`prepare`]),
//! so it sees the job file's mappings exactly as a copy would, and it only reads the target.

pub mod execution;
pub mod markdown;
pub mod preflight;
pub mod probe;

use std::collections::HashMap;
use std::path::PathBuf;

use serde::Serialize;
use tokio_postgres::Client;

use crate::catalog::mysql::{MySchema, MyTable};
use crate::catalog::{postgres as pgcat, Catalog, TargetFacts};
use crate::chunking::mysql::MysqlPlan;
use crate::chunking::mysql_read::KeyKind;
use crate::config::{CopySettings, SourceUrl};
use crate::connect::{connect, Side};
use crate::error::{db_reason, Error, Result};
use crate::mapping::TableMapping;
use crate::prepare::{prepare, Origin, Prepared};
use crate::schema::{ddl, SchemaMode};

/// Identifies the JSON shape; bumped when a field changes meaning or disappears.
pub const FORMAT: &str = "howdah-plan/1";

/// The whole plan, in the order of its six sections.
#[derive(Debug, Clone, Serialize)]
pub struct MigrationPlan {
    /// [`FORMAT`].
    pub format: String,
    /// When the plan was made (UTC, RFC 3339).
    pub generated_at: String,
    /// 1. Products, versions, sizes, what is out of scope.
    pub overview: Overview,
    /// Every selected table with its size, key, chunks and state on the target.
    pub tables: Vec<TablePlan>,
    /// 2. DDL, column types, enums, defaults, sequences, post-load steps.
    pub schema: SchemaChanges,
    /// 3. Column mappings, value policies and the problem values the probes found.
    pub data: DataChanges,
    /// 4. Chunks, parallelism, throughput probe, duration estimate, rollback points.
    pub strategy: Strategy,
    /// 5. Named risks, most severe first.
    pub risks: Vec<Risk>,
    /// 5. Pre-flight checks and their outcome.
    pub checks: Vec<Check>,
    /// 6. Commands to run, monitoring, verification and rollback.
    pub execution: execution::Execution,
}

/// One database of the migration.
#[derive(Debug, Clone, Serialize)]
pub struct Endpoint {
    /// The URL without its password or parameters.
    pub url: String,
    /// `PostgreSQL`, `MySQL` or `MariaDB`.
    pub product: String,
    /// The server's version string.
    pub version: String,
}

/// Section 1.
#[derive(Debug, Clone, Serialize)]
pub struct Overview {
    /// The source database.
    pub source: Endpoint,
    /// The target database.
    pub target: Endpoint,
    /// Selected tables (partitioned parents and partitions each count).
    pub table_count: usize,
    /// Sum of the tables' row estimates.
    pub estimated_rows: i64,
    /// Table data bytes on the source (PostgreSQL: heap, TOAST and maps; MySQL: `DATA_LENGTH`).
    pub table_bytes: i64,
    /// Index bytes on the source (PostgreSQL: `pg_indexes_size`; MySQL: `INDEX_LENGTH`).
    pub index_bytes: i64,
    /// `table_bytes + index_bytes`.
    pub total_bytes: i64,
    /// Where the sizes and row counts come from.
    pub size_method: String,
    /// Up to five tables with the most bytes (table + index), largest first.
    pub largest_tables: Vec<String>,
    /// Source objects the copy does not migrate.
    pub out_of_scope: Vec<Object>,
    /// Objects created on the target besides tables (views, functions, triggers, types...).
    pub also_created: Vec<Object>,
}

/// A named database object.
#[derive(Debug, Clone, Serialize)]
pub struct Object {
    /// `view`, `trigger`, `function`, `routine`, `event`, `policy`, ...
    pub kind: String,
    /// Qualified name (for triggers `table.trigger` or the trigger's name).
    pub name: String,
    /// What happens to it, when there is more to say.
    pub note: Option<String>,
}

/// One selected table.
#[derive(Debug, Clone, Serialize)]
pub struct TablePlan {
    /// Source name (`schema.table`, MySQL `database.table`).
    pub source: String,
    /// Target name.
    pub target: String,
    /// Row estimate from the source's statistics.
    pub estimated_rows: i64,
    /// Data bytes on the source.
    pub table_bytes: i64,
    /// Index bytes on the source.
    pub index_bytes: i64,
    /// Chunking key columns (target names); `null` when the table has no usable key.
    pub key: Option<Vec<String>>,
    /// `keyset`, `ctid` (PostgreSQL block ranges), `whole` (one chunk), `none` (no storage).
    pub chunking: String,
    /// Chunks the copy would cut the table into.
    pub chunks: usize,
    /// The chunk count is computed from the row estimate, not from the key's values.
    pub chunks_estimated: bool,
    /// On the target now: `absent`, `empty` or `has_rows`.
    pub on_target: String,
    /// Source-side filter of a `[[table]]` rule.
    pub filter: Option<String>,
}

/// Section 2.
#[derive(Debug, Clone, Serialize)]
pub struct SchemaChanges {
    /// `create`, `existing` or `recreate`.
    pub mode: String,
    /// Statements run before the data, in order (empty with `existing`).
    pub pre_data: Vec<Statement>,
    /// Every target column with its source, type mapping and risk.
    pub columns: Vec<ColumnPlan>,
    /// Enum types created on the target.
    pub enums: Vec<Statement>,
    /// Column defaults on the target.
    pub defaults: Vec<ColumnDefault>,
    /// Sequences and identity columns, and how their values are set after the load.
    pub sequences: Vec<Object>,
    /// Keys, constraints, indexes, `ANALYZE`, foreign keys and triggers built after the load.
    pub post_data: Vec<Statement>,
    /// What the conversion changes or leaves behind, as the copy logs it (MySQL sources).
    pub notes: Vec<String>,
}

/// One DDL statement.
#[derive(Debug, Clone, Serialize)]
pub struct Statement {
    /// What it does.
    pub what: String,
    /// The SQL.
    pub sql: String,
}

/// The type mapping of one target column.
#[derive(Debug, Clone, Serialize)]
pub struct ColumnPlan {
    /// Target table.
    pub table: String,
    /// Source column (`null` for an added column).
    pub source_column: Option<String>,
    /// Source type as the source declares it (`null` for an added column).
    pub source_type: Option<String>,
    /// Target column.
    pub target_column: String,
    /// Target type.
    pub target_type: String,
    /// What happens to values on the way.
    pub how: String,
    /// Why the conversion is lossy or risky; `null` when it is exact.
    pub risk: Option<String>,
}

/// A column default on the target.
#[derive(Debug, Clone, Serialize)]
pub struct ColumnDefault {
    /// Target table.
    pub table: String,
    /// Column.
    pub column: String,
    /// Default expression.
    pub default: String,
}

/// Section 3.
#[derive(Debug, Clone, Serialize)]
pub struct DataChanges {
    /// Tables with a `[[table]]`/`[[cast]]` mapping: their filter and every column's mapping.
    pub mappings: Vec<TableMappingPlan>,
    /// Value policies in force (MySQL zero dates and NUL bytes).
    pub policies: Vec<String>,
    /// Problem-value probes, one per check and column (zero counts included).
    pub probes: Vec<probe::Probe>,
    /// What the probes read and how they were bounded.
    pub probe_method: String,
}

/// The mapping of one table.
#[derive(Debug, Clone, Serialize)]
pub struct TableMappingPlan {
    /// Target table.
    pub table: String,
    /// Source table.
    pub source: String,
    /// Source-side filter.
    pub filter: Option<String>,
    /// Column lines.
    pub columns: Vec<ColumnPlan>,
}

/// Section 4.
#[derive(Debug, Clone, Serialize)]
pub struct Strategy {
    /// Copy lanes (`--jobs`).
    pub jobs: usize,
    /// Index builders (`--index-jobs`).
    pub index_jobs: usize,
    /// Rows per chunk; `null` is automatic.
    pub chunk_rows: Option<u64>,
    /// Chunks of all tables.
    pub total_chunks: usize,
    /// The read-throughput probe; `null` when nothing could be read.
    pub throughput: Option<probe::Throughput>,
    /// The duration estimate; `null` without a throughput figure.
    pub estimate: Option<Estimate>,
    /// What is left on the target after each phase, and how to remove it.
    pub rollback_points: Vec<execution::RollbackPoint>,
}

/// A rough duration estimate.
#[derive(Debug, Clone, Serialize)]
pub struct Estimate {
    /// Seconds to copy the data.
    pub data_seconds: f64,
    /// Seconds of index and constraint builds after the data (from howdah's benchmark).
    pub post_data_seconds: f64,
    /// Sum of both.
    pub total_seconds: f64,
    /// How the figures were computed.
    pub method: String,
}

/// Something that can go wrong.
#[derive(Debug, Clone, Serialize)]
pub struct Risk {
    /// Stable identifier, e.g. `keyless_table`, `target_table_not_empty`, `zero_dates`.
    pub kind: String,
    /// `blocker` (the copy would refuse or fail), `warning`, `info`.
    pub severity: String,
    /// The table, column or setting concerned.
    pub subject: String,
    /// What happens and what to do.
    pub detail: String,
}

/// A pre-flight check.
#[derive(Debug, Clone, Serialize)]
pub struct Check {
    /// Stable identifier, e.g. `connections_target`, `disk_space`, `wal_level`.
    pub name: String,
    /// `ok`, `warning`, `problem` or `unknown`.
    pub status: String,
    /// What was found.
    pub detail: String,
}

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

/// Per-source facts the sections share.
struct SourceFacts {
    product: String,
    version: String,
    source_names: Vec<String>,
    index_bytes: Vec<i64>,
    out_of_scope: Vec<Object>,
    also_created: Vec<Object>,
    columns: Vec<Vec<ColumnPlan>>,
    notes: Vec<String>,
    /// The MySQL catalog as read (MySQL sources only).
    my_schema: Option<MySchema>,
}

fn risk(kind: &str, severity: &str, subject: impl Into<String>, detail: impl Into<String>) -> Risk {
    Risk {
        kind: kind.into(),
        severity: severity.into(),
        subject: subject.into(),
        detail: detail.into(),
    }
}

fn q(what: &str) -> impl Fn(tokio_postgres::Error) -> Error + '_ {
    move |e| Error::Query {
        what: what.to_string(),
        reason: db_reason(&e),
    }
}

/// Builds the plan. Reads the source and the target; writes nothing.
pub async fn build(settings: &CopySettings, cmd: &CommandLine) -> Result<MigrationPlan> {
    let target = connect(&settings.target, Side::Target).await?;
    // Nothing the plan runs may write: a read-only transaction makes that a guarantee.
    target
        .batch_execute("SET default_transaction_read_only = on")
        .await
        .map_err(q("making the target session read-only"))?;
    let Prepared {
        mut origin,
        catalog,
        maps,
        ..
    } = prepare(settings, &target, &Default::default()).await?;
    if catalog.tables.is_empty() {
        return Err(Error::Config(format!(
            "no table of the source {} matched the table patterns ({}); nothing to plan",
            settings.source,
            settings.filter.describe()
        )));
    }
    let facts = pgcat::target_facts(&target).await?;
    let target_info = preflight::target_info(&target).await?;

    let mut src = match &mut origin {
        Origin::Pg { client, .. } => pg_facts(client, &catalog, &maps, &facts).await?,
        Origin::My { conn, url, plan } => {
            my_facts(conn, &url.database, plan, &catalog, &maps, settings).await?
        }
    };
    let n = catalog.tables.len();
    let table_bytes: Vec<i64> = catalog.tables.iter().map(|t| t.size_bytes.max(0)).collect();

    // Chunks, as copy would cut them.
    let lane_share = crate::chunking::order::lane_share(&catalog.tables, settings.jobs);
    let mut tables = Vec::with_capacity(n);
    for (i, t) in catalog.tables.iter().enumerate() {
        let rows = crate::chunking::chunks::estimated_rows(t).max(0);
        let chunk_rows = settings
            .chunk_rows
            .unwrap_or_else(|| crate::chunking::order::auto_chunk_rows(t, lane_share));
        let (chunks, estimated, chunking) = if !t.has_storage() {
            (0, false, "none")
        } else {
            match &mut origin {
                Origin::Pg { client, .. } => {
                    let read = maps[i].as_ref().map_or(t, |m| &m.read);
                    let planned = crate::chunking::chunks::plan_table(
                        client,
                        read,
                        i,
                        chunk_rows,
                        catalog.server_version_num,
                    )
                    .await?;
                    let kind = match planned.first().map(|c| &c.range) {
                        Some(crate::chunking::ChunkRange::Ctid { .. }) => "ctid",
                        Some(crate::chunking::ChunkRange::Keyset { .. }) => "keyset",
                        _ if t.chunk_key.is_some() => "keyset",
                        _ => "whole",
                    };
                    (planned.len(), false, kind)
                }
                Origin::My { conn, plan, .. } => match plan.reads.get(i).and_then(Option::as_ref) {
                    None => (0, false, "none"),
                    Some(read) => {
                        let integer = read.key.as_ref().is_some_and(|k| {
                            k.len() == 1 && matches!(k[0].kind, KeyKind::Signed | KeyKind::Unsigned)
                        });
                        let wanted = (rows as u64).div_ceil(chunk_rows.max(1)).max(1) as usize;
                        if read.key.is_none() {
                            (1, false, "whole")
                        } else if integer || wanted <= 1 {
                            // MIN/MAX of an integer key: as cheap as the copy's own planning.
                            let planned =
                                crate::chunking::mysql::plan_chunks(conn, read, t, i, chunk_rows)
                                    .await?;
                            (planned.len(), false, "keyset")
                        } else {
                            // Other keys are cut by one pass over the key's index: too long
                            // for a plan, so the count comes from the row estimate.
                            (wanted, true, "keyset")
                        }
                    }
                },
            }
        };
        let on_target = if !facts.tables.contains(&t.name) {
            "absent"
        } else if t.has_storage() && pgcat::table_has_rows(&target, &t.name).await? {
            "has_rows"
        } else {
            "empty"
        };
        tables.push(TablePlan {
            source: src.source_names[i].clone(),
            target: t.name.to_string(),
            estimated_rows: rows,
            table_bytes: table_bytes[i],
            index_bytes: src.index_bytes[i],
            key: t
                .chunk_key
                .as_ref()
                .map(|k| k.iter().map(|c| c.name.clone()).collect()),
            chunking: chunking.into(),
            chunks,
            chunks_estimated: estimated,
            on_target: on_target.into(),
            filter: maps[i].as_ref().and_then(|m| m.filter.clone()),
        });
    }

    // Probes run on sessions of their own, each bounded in rows and time.
    let (probes, probe_method, throughput) = match &origin {
        Origin::Pg { url, .. } => {
            let probes = probe::pg_values(url, &catalog, &maps).await;
            let throughput = probe::pg_throughput(url, &catalog, &maps).await;
            (probes, probe::PG_METHOD.to_string(), throughput)
        }
        Origin::My { url, plan, .. } => {
            let schema = src.my_schema.take().unwrap_or_default();
            let probes = probe::my_values(url, &schema, plan, settings).await;
            let throughput = probe::my_throughput(url, &catalog, plan, settings).await;
            (probes, probe::my_method(&schema), throughput)
        }
    };
    drop(origin);

    let mut risks = Vec::new();
    let mut checks = Vec::new();
    let total_bytes: i64 = table_bytes.iter().sum::<i64>() + src.index_bytes.iter().sum::<i64>();
    preflight::checks(
        &mut checks,
        &mut risks,
        &preflight::Inputs {
            settings,
            catalog: &catalog,
            facts: &facts,
            target: &target_info,
            total_bytes,
        },
    );
    preflight::target_privileges(&target, &catalog, &facts, settings, &mut checks, &mut risks)
        .await;
    preflight::job_state(&target, settings, &mut risks).await;
    match &settings.source {
        SourceUrl::Postgres(url) => {
            preflight::pg_source(
                url,
                &catalog,
                settings,
                &target_info,
                &mut checks,
                &mut risks,
            )
            .await
        }
        SourceUrl::Mysql(url) => {
            preflight::my_source(url, settings, &tables, &mut checks, &mut risks).await
        }
    }
    table_risks(&tables, &catalog, settings, &mut risks);
    column_risks(&src.columns, &mut risks);
    probe_risks(&probes, &mut risks);
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

    let estimate = throughput
        .as_ref()
        .and_then(|t| estimate(t, &catalog, &tables, settings));
    let schema = schema_changes(settings, &catalog, &facts, &mut src);
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
    let policies = match &settings.source {
        SourceUrl::Mysql(_) => vec![
            format!(
                "zero dates: {}",
                match settings.mysql.zero_dates.clone().unwrap_or_default() {
                    crate::config::ZeroDates::Null =>
                        "NULL (a NOT NULL column rejects the row)".to_string(),
                    crate::config::ZeroDates::Reject => "the row is rejected".to_string(),
                    crate::config::ZeroDates::Value(v) => format!("replaced by {v}"),
                }
            ),
            format!(
                "NUL bytes in text: {}",
                match settings.mysql.nul_bytes.unwrap_or_default() {
                    crate::config::NulBytes::Reject => "the row is rejected",
                    crate::config::NulBytes::Strip => "removed",
                }
            ),
        ],
        SourceUrl::Postgres(_) => Vec::new(),
    };
    let total_chunks = tables.iter().map(|t| t.chunks).sum();
    let rollback_points = execution::rollback_points(settings, &catalog, &facts);
    let exec = execution::execution(settings, cmd, &rollback_points);

    let mut by_size: Vec<&TablePlan> = tables.iter().collect();
    by_size.sort_by_key(|t| std::cmp::Reverse(t.table_bytes + t.index_bytes));
    let overview = Overview {
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
        table_bytes: table_bytes.iter().sum(),
        index_bytes: src.index_bytes.iter().sum(),
        total_bytes,
        size_method: match &settings.source {
            SourceUrl::Postgres(_) => "pg_table_size (heap, TOAST, free-space and visibility maps) and pg_indexes_size per table; rows from pg_class.reltuples (blocks x 60 for a never-analyzed table)".into(),
            SourceUrl::Mysql(_) => "information_schema.TABLES: DATA_LENGTH (with InnoDB's clustered primary key), INDEX_LENGTH and TABLE_ROWS, which InnoDB estimates (run ANALYZE TABLE for fresher figures)".into(),
        },
        largest_tables: by_size.iter().take(5).map(|t| t.source.clone()).collect(),
        out_of_scope: src.out_of_scope.clone(),
        also_created: src.also_created.clone(),
    };
    Ok(MigrationPlan {
        format: FORMAT.into(),
        generated_at: jiff::Timestamp::now()
            .round(jiff::Unit::Second)
            .map_or_else(|_| jiff::Timestamp::now().to_string(), |t| t.to_string()),
        overview,
        tables,
        schema,
        data: DataChanges {
            mappings,
            policies,
            probes,
            probe_method,
        },
        strategy: Strategy {
            jobs: settings.jobs,
            index_jobs: settings.index_jobs,
            chunk_rows: settings.chunk_rows,
            total_chunks,
            throughput,
            estimate,
            rollback_points,
        },
        risks,
        checks,
        execution: exec,
    })
}

/// PostgreSQL source: index sizes, what is and is not migrated, column lines.
async fn pg_facts(
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
    let index_bytes = oids
        .iter()
        .map(|o| index_of.get(o).copied().unwrap_or(0))
        .collect();

    let mut out_of_scope = Vec::new();
    let what = "listing source objects howdah does not copy";
    for r in client
        .query(
            "SELECT kind, name FROM ( \
               SELECT 1 AS o, 'row-level security policy' AS kind, format('%s.%s: %s', n.nspname, c.relname, p.polname) AS name \
                 FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid JOIN pg_namespace n ON n.oid = c.relnamespace \
               UNION ALL SELECT 2, 'rule', format('%s.%s: %s', n.nspname, c.relname, r.rulename) \
                 FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class JOIN pg_namespace n ON n.oid = c.relnamespace \
                WHERE r.rulename <> '_RETURN' AND n.nspname NOT IN ('pg_catalog', 'information_schema') \
               UNION ALL SELECT 3, 'statistics object', format('%s.%s', n.nspname, s.stxname) \
                 FROM pg_statistic_ext s JOIN pg_namespace n ON n.oid = s.stxnamespace \
               UNION ALL SELECT 4, 'event trigger', evtname::text FROM pg_event_trigger \
               UNION ALL SELECT 5, 'publication', pubname::text FROM pg_publication \
               UNION ALL SELECT 6, 'foreign table', format('%s.%s', n.nspname, c.relname) \
                 FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE c.relkind = 'f' \
               UNION ALL SELECT 7, 'large objects', count(*) || ' large object(s)' FROM pg_largeobject_metadata \
                 HAVING count(*) > 0 \
             ) x ORDER BY o, name LIMIT 500",
            &[],
        )
        .await
        .map_err(q(what))?
    {
        out_of_scope.push(Object {
            kind: r.try_get(0).map_err(q(what))?,
            name: r.try_get(1).map_err(q(what))?,
            note: None,
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

    let mut also_created = Vec::new();
    let mut add = |kind: &str, name: String| {
        also_created.push(Object {
            kind: kind.into(),
            name,
            note: None,
        })
    };
    // Objects the target already has are skipped by the copy, so not listed.
    for s in catalog
        .schemas
        .iter()
        .filter(|s| !facts.schemas.contains(&s.name))
    {
        add("schema", s.name.clone());
    }
    for e in catalog
        .extensions
        .iter()
        .filter(|e| !facts.extensions.contains(&e.name))
    {
        add("extension", format!("{} {}", e.name, e.version));
    }
    for c in catalog
        .collations
        .iter()
        .filter(|c| !facts.collations.contains(&c.name))
    {
        add("collation", c.name.to_string());
    }
    for t in catalog
        .types
        .iter()
        .filter(|t| !facts.types.contains(&t.name))
    {
        add("type", t.name.to_string());
    }
    for f in catalog
        .functions
        .iter()
        .filter(|f| !facts.functions.contains(&f.name))
    {
        add("function", f.name.to_string());
    }
    for s in catalog
        .sequences
        .iter()
        .filter(|s| s.owner_table.is_none() && !facts.relations.contains(&s.name))
    {
        add("sequence", s.name.to_string());
    }
    for v in catalog
        .views
        .iter()
        .filter(|v| !facts.relations.contains(&v.name))
    {
        add(
            if v.materialized {
                "materialized view"
            } else {
                "view"
            },
            v.name.to_string(),
        );
    }
    for t in &catalog.tables {
        for tr in &t.triggers {
            add("trigger", format!("{} on {}", tr.name.name, t.name));
        }
    }

    let columns = catalog
        .tables
        .iter()
        .zip(maps)
        .map(|(t, m)| match m {
            Some(m) => mapped_lines(t, m, |_, ty| ty.to_string(), |_| None),
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
        .collect();
    Ok(SourceFacts {
        product: "PostgreSQL".into(),
        version: catalog.server_version.clone(),
        source_names,
        index_bytes,
        out_of_scope,
        also_created,
        columns,
        notes: Vec::new(),
        my_schema: None,
    })
}

/// The column lines of a mapped table; `source_type` renders a source column's type and
/// `risk_of` adds a column's conversion risk (by source column name).
fn mapped_lines(
    t: &crate::catalog::Table,
    m: &TableMapping,
    source_type: impl Fn(&str, &str) -> String,
    risk_of: impl Fn(&str) -> Option<String>,
) -> Vec<ColumnPlan> {
    m.lines
        .iter()
        .map(|l| {
            let cast = l.how.contains("cast ");
            let mut risk = l.source.as_ref().and_then(|(n, _)| risk_of(n));
            if cast {
                let why = format!(
                    "cast: a value that does not convert is handled per on_error ({})",
                    l.how.rsplit("on error: ").next().unwrap_or("reject row")
                );
                risk = Some(match risk {
                    Some(r) => format!("{r}; {why}"),
                    None => why,
                });
            }
            ColumnPlan {
                table: t.name.to_string(),
                source_column: l.source.as_ref().map(|(n, _)| n.clone()),
                source_type: l.source.as_ref().map(|(n, ty)| source_type(n, ty)),
                target_column: l.target.clone(),
                target_type: l.target_type.clone(),
                how: l.how.clone(),
                risk,
            }
        })
        .collect()
}

/// MySQL source: the catalog as read (out of scope objects, index sizes, declared types) and
/// the planner's notes attached to their columns.
async fn my_facts(
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
    let my_table = |i: usize| -> Option<&MyTable> {
        let read = plan.reads.get(i)?.as_ref()?;
        schema.tables.iter().find(|t| t.name == read.source)
    };
    let source_names: Vec<String> = (0..catalog.tables.len())
        .map(|i| match my_table(i) {
            Some(t) => format!("{database}.{}", t.name),
            None => catalog.tables[i].name.to_string(),
        })
        .collect();
    let index_bytes = (0..catalog.tables.len())
        .map(|i| my_table(i).map_or(0, |t| t.index_bytes.max(0)))
        .collect();
    let mut out_of_scope = Vec::new();
    for (kind, list) in [
        ("view", &schema.views),
        ("trigger", &schema.triggers),
        ("routine", &schema.routines),
        ("event", &schema.events),
    ] {
        for name in list {
            out_of_scope.push(Object {
                kind: kind.into(),
                name: format!("{database}.{name}"),
                note: Some(format!(
                    "{kind} not migrated: rewrite it for PostgreSQL and create it after the copy"
                )),
            });
        }
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
    let mut also_created = Vec::new();
    for t in &catalog.types {
        also_created.push(Object {
            kind: "enum type".into(),
            name: t.name.to_string(),
            note: None,
        });
    }
    for s in &catalog.schemas {
        also_created.push(Object {
            kind: "schema".into(),
            name: s.name.clone(),
            note: None,
        });
    }
    let note_of = |table: &str, column: &str| -> Option<String> {
        let prefix = format!("{database}.{table}.{column}: ");
        let found: Vec<&str> = plan
            .notes
            .iter()
            .filter_map(|n| n.strip_prefix(&prefix))
            .collect();
        (!found.is_empty()).then(|| found.join("; "))
    };
    let names_lower = !matches!(
        settings.mysql.names,
        Some(crate::config::NameCase::Preserve)
    );
    let mut columns = Vec::new();
    for (i, t) in catalog.tables.iter().enumerate() {
        let Some(mt) = my_table(i) else {
            columns.push(Vec::new());
            continue;
        };
        // Natural (unmapped) target column name of a MySQL column.
        let natural = |c: &str| {
            if names_lower {
                c.to_lowercase()
            } else {
                c.to_string()
            }
        };
        let by_natural = |n: &str| mt.columns.iter().find(|c| natural(&c.name) == n);
        let lines = match &maps[i] {
            Some(m) => mapped_lines(
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
    Ok(SourceFacts {
        product: product.into(),
        version: schema.version.clone(),
        source_names,
        index_bytes,
        out_of_scope,
        also_created,
        columns,
        notes: plan.notes.clone(),
        my_schema: Some(schema),
    })
}

/// How a MySQL value is converted, in a few words.
fn convert_how(
    col: &crate::catalog::mysql::MyColumn,
    read: Option<&crate::chunking::mysql_read::MyTablePlan>,
) -> String {
    use crate::typemap::mysql::Convert as C;
    let Some(convert) = read.and_then(|r| {
        r.columns
            .iter()
            .find(|c| c.name == col.name)
            .map(|c| &c.convert)
    }) else {
        return "converted".into();
    };
    match convert {
        C::Bool => "0 -> false, other values -> true",
        C::Int2 | C::Int4 | C::Int8 => "integer, range-checked",
        C::NumericInt | C::Numeric => "exact",
        C::Float4 | C::Float8 => "bit-exact",
        C::Text => "decoded to UTF-8, NUL bytes per policy",
        C::Enum { .. } => "enum label; '' rejected",
        C::EnumText { .. } => "enum label as text, CHECK on the labels",
        C::SetArray => "set -> text[]",
        C::Jsonb | C::JsonText => "JSON checked as PostgreSQL reads it",
        C::Bytea => "bytes",
        C::UuidBinary | C::UuidText => "uuid",
        C::Date | C::Timestamp => "zero dates per policy",
        C::TimestampTz => "read in UTC",
        C::TimestampInZone { .. } => "read in the given zone",
        C::Time => "0 to 24 h, others rejected",
        C::Interval => "interval, sign kept",
        C::Year => "year",
        C::VarBit { .. } => "bits",
        C::GeometryWkb => "WKB, SRID dropped",
        C::GeometryEwkb => "EWKB with SRID",
        C::AsText { .. } => "as text, then the column mapping",
    }
    .to_string()
}

/// Section 2 from the catalog as the target will hold it.
fn schema_changes(
    settings: &CopySettings,
    catalog: &Catalog,
    facts: &TargetFacts,
    src: &mut SourceFacts,
) -> SchemaChanges {
    let opts = ddl::DdlOptions {
        owners: settings.owners,
        grants: settings.grants,
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
fn probe_risks(probes: &[probe::Probe], risks: &mut Vec<Risk>) {
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

/// Data time from the probe's rate, post-data time from howdah's benchmark constants.
fn estimate(
    tp: &probe::Throughput,
    catalog: &Catalog,
    tables: &[TablePlan],
    settings: &CopySettings,
) -> Option<Estimate> {
    let rate = tp.storage_bytes_per_sec;
    if !(rate.is_finite() && rate > 0.0) {
        return None;
    }
    let total: f64 = tables.iter().map(|t| t.table_bytes as f64).sum();
    let chunks: usize = tables.iter().map(|t| t.chunks).sum();
    let lanes = settings.jobs.min(chunks.max(1)) as f64;
    // No lane can finish before its largest chunk: a big unsplit table sets a floor.
    let largest_chunk = tables
        .iter()
        .filter(|t| t.chunks > 0)
        .map(|t| t.table_bytes as f64 / t.chunks as f64)
        .fold(0.0, f64::max);
    let data = (total / (rate * lanes)).max(largest_chunk / rate);
    let post: f64 = catalog
        .tables
        .iter()
        .map(crate::chunking::order::build_cost)
        .sum::<f64>()
        / settings.index_jobs.max(1) as f64;
    Some(Estimate {
        data_seconds: data,
        post_data_seconds: post,
        total_seconds: data + post,
        method: format!(
            "rough: the probe read {}/s of source storage from {} (one session, source side only); \
             data time = {} of table data / ({}/s x {} lanes), at least the largest chunk / the probe rate; \
             post-data time = {} index entries x 0.32 us per build (howdah's benchmark) / {} builders. \
             It assumes the target keeps up (its COPY costs about twice the source's CPU), that lanes scale linearly, \
             and that the probed table is typical; the first copy's own summary gives the real rate",
            preflight::bytes(rate as i64),
            tp.table,
            preflight::bytes(total as i64),
            preflight::bytes(rate as i64),
            lanes,
            catalog
                .tables
                .iter()
                .map(|t| {
                    let builds = t.indexes.len()
                        + t.constraints.len()
                        + usize::from(t.primary_key.is_some());
                    crate::chunking::chunks::estimated_rows(t).max(0) as u64 * builds as u64
                })
                .sum::<u64>(),
            settings.index_jobs
        ),
    })
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
