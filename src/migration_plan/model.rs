//! The plan as data: the serde model that `docs/plan.schema.json` describes and
//! `docs/plan.md` explains, one struct per object of the JSON document.
//!
//! Invariants: this file is the JSON contract. A field added here is added to the schema and
//! the docs in the same commit; a field that changes meaning or disappears bumps [`FORMAT`].
//! Nothing here computes: the sections are filled by the other files of the module.

use serde::Serialize;

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
    pub execution: Execution,
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
    pub probes: Vec<Probe>,
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
    pub throughput: Option<Throughput>,
    /// The duration estimate; `null` without a throughput figure.
    pub estimate: Option<Estimate>,
    /// What is left on the target after each phase, and how to remove it.
    pub rollback_points: Vec<RollbackPoint>,
}

/// A rough duration estimate.
#[derive(Debug, Clone, Serialize)]
pub struct Estimate {
    /// The `--max-rate` the estimate assumes (`50.0 MB/s`, `20000 rows/s`); `null`: none.
    pub max_rate: Option<String>,
    /// Seconds to copy the data (under the cap, when one is set).
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

/// One problem-value count.
#[derive(Debug, Clone, Serialize)]
pub struct Probe {
    /// Source table.
    pub table: String,
    /// Source column (`null` for a whole-table probe).
    pub column: Option<String>,
    /// `zero_dates`, `year_zero`, `out_of_range`, `lossy_boolean`, `invalid_enum`, `time_out_of_range`,
    /// `nul_bytes`, `invalid_utf8`, `nulls_given_default`, `cast_failures`.
    pub check: String,
    /// Values found; `null` when the probe did not finish.
    pub count: Option<u64>,
    /// Rows the probe read.
    pub rows_examined: u64,
    /// The probe stopped at its row limit: the count covers the first rows only.
    pub sampled: bool,
    /// What the copy does with such values.
    pub consequence: String,
    /// Why the probe did not finish.
    pub error: Option<String>,
}

/// The read-throughput probe.
#[derive(Debug, Clone, Serialize)]
pub struct Throughput {
    /// The table read (the largest one).
    pub table: String,
    /// Rows read.
    pub rows: u64,
    /// Bytes of PostgreSQL COPY tuples produced.
    pub bytes: u64,
    /// Seconds from the query to the last row read.
    pub seconds: f64,
    /// Rows per second.
    pub rows_per_sec: f64,
    /// Source storage bytes per second: the share of the table's rows read times its size,
    /// per second (comparable with the table sizes of the overview).
    pub storage_bytes_per_sec: f64,
    /// `time`, `bytes` or `end of table`.
    pub stopped_by: String,
    /// How the probe read.
    pub method: String,
}

/// What to run, watch and check.
#[derive(Debug, Clone, Serialize)]
pub struct Execution {
    /// Steps in order.
    pub steps: Vec<ExecStep>,
    /// The copy command.
    pub copy_command: String,
    /// The progress command.
    pub status_command: String,
    /// The verification command.
    pub verify_command: String,
    /// Prometheus endpoint of the copy.
    pub metrics_url: String,
    /// Grafana dashboard and how to run it.
    pub dashboard: String,
    /// SQL that removes everything the copy creates on the target.
    pub rollback_sql: String,
    /// Said when a URL had a password that the printed commands leave out.
    pub password_note: Option<String>,
}

/// One step of the run book.
#[derive(Debug, Clone, Serialize)]
pub struct ExecStep {
    /// What to do.
    pub title: String,
    /// The command, when there is one.
    pub command: Option<String>,
    /// What to look at.
    pub note: String,
}

/// A phase boundary of the copy: what the target holds then, and how to remove it.
#[derive(Debug, Clone, Serialize)]
pub struct RollbackPoint {
    /// `schema`, `data` or `post_data`.
    pub after: String,
    /// What is on the target at that point.
    pub left_on_target: String,
    /// How to undo it (SQL, or the command to resume instead).
    pub undo: String,
}

/// A risk.
pub(super) fn risk(
    kind: &str,
    severity: &str,
    subject: impl Into<String>,
    detail: impl Into<String>,
) -> Risk {
    Risk {
        kind: kind.into(),
        severity: severity.into(),
        subject: subject.into(),
        detail: detail.into(),
    }
}
