//! Command-line definitions (clap). Raw flags only; [`howdah::config`] turns them into settings.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use howdah::config::CopyOverrides;
use howdah::schema::SchemaMode;

/// howdah: a streaming data-copy engine into PostgreSQL.
#[derive(Debug, Parser)]
#[command(name = "howdah", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Copy tables (schema, data, indexes, constraints, sequences) from the source to the target.
    Copy(Box<CopyArgs>),
    /// Show the progress of copy jobs recorded in the target (chunks, rows, rate, ETA, errors).
    Status(StatusArgs),
    /// Compare source and target chunk by chunk (row counts and checksums, after mappings).
    /// Exit 0 when equal, 1 when not, 2 on error.
    Verify(Box<VerifyArgs>),
    /// Build a demo shop database on a local server, copy it with progress and metrics, check it.
    Demo(DemoArgs),
    /// Write a migration plan (sizes, schema and type changes, probes, risks, commands); read-only.
    Plan(PlanArgs),
    /// End a `copy --follow`: wait until every source change up to now is applied, set the
    /// sequences, drop the slot and publication (stop the application's writes first).
    Cutover(CutoverArgs),
    /// Stop following without cutting over: drop the job's slot and publication on the source.
    Abort(CutoverArgs),
    /// Run the application's read queries on source and target: same answers, no slower.
    /// Exit 0 when every answer is the same and none is slower, 1 when not, 2 on bad input.
    CheckQueries(Box<CheckQueriesArgs>),
    /// Print a shell completion script for bash, zsh, fish, elvish or powershell
    /// (e.g. `howdah completions bash > /etc/bash_completion.d/howdah`).
    Completions(CompletionsArgs),
    /// Print the man page (roff) of howdah, or with --dir write one page per subcommand.
    #[command(hide = true)]
    Man(ManArgs),
}

/// Flags of `howdah completions`.
#[derive(Debug, Args)]
pub struct CompletionsArgs {
    /// The shell to complete for.
    #[arg(value_enum)]
    pub shell: clap_complete::Shell,
}

/// Flags of the hidden `howdah man`.
#[derive(Debug, Args)]
pub struct ManArgs {
    /// Write howdah.1 and howdah-SUBCOMMAND.1 into this directory instead of printing howdah.1.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
}

/// Flags of `howdah check-queries`.
#[derive(Debug, Args)]
pub struct CheckQueriesArgs {
    /// Source database URL (postgres://, or mysql:// / mariadb://).
    #[arg(long, env = "HOWDAH_SOURCE", hide_env_values = true)]
    pub source: Option<String>,
    /// Target database URL.
    #[arg(long, env = "HOWDAH_TARGET", hide_env_values = true)]
    pub target: Option<String>,
    /// Job file (TOML) for the URLs; flags win over it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// The query file (TOML, one [[query]] per query; see configs/queries.toml).
    #[arg(long, value_name = "FILE")]
    pub queries: Option<PathBuf>,
    /// Also check the top N read queries of the source's pg_stat_statements (PostgreSQL),
    /// by total time, their parameters filled from real values.
    #[arg(long, value_name = "N")]
    pub from_stats: Option<usize>,
    /// Timed runs per query and side, after one warm-up run on each [default: the query
    /// file's `runs`, else 5].
    #[arg(long)]
    pub runs: Option<usize>,
    /// A query is slower when its target median exceeds the source's this many times
    /// [default: the query file's `max_slowdown`, else 2].
    #[arg(long)]
    pub max_slowdown: Option<f64>,
    /// ... and by at least this many milliseconds [default: the query file's
    /// `min_slowdown_ms`, else 2].
    #[arg(long, value_name = "MS")]
    pub min_slowdown_ms: Option<f64>,
    /// Statement timeout of every run, in seconds [default: the query file's
    /// `statement_timeout`, else 60].
    #[arg(long, value_name = "SECS")]
    pub statement_timeout: Option<u64>,
    /// Print JSON instead of Markdown.
    #[arg(long)]
    pub json: bool,
}

impl CheckQueriesArgs {
    /// The values that override the job file.
    pub fn overrides(&self) -> CopyOverrides {
        CopyOverrides {
            source: self.source.clone(),
            target: self.target.clone(),
            config: self.config.clone(),
            ..CopyOverrides::default()
        }
    }
}

/// Flags of `howdah plan`.
#[derive(Debug, Args)]
pub struct PlanArgs {
    /// Source, target, job file and table selection.
    #[command(flatten)]
    pub ends: Endpoints,
    /// Parallel copy lanes the plan assumes [default: 4].
    #[arg(long, short = 'j')]
    pub jobs: Option<usize>,
    /// Write the plan to this file instead of stdout.
    #[arg(long, short = 'o', value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Markdown (default) or JSON (shape: docs/plan.md).
    #[arg(long, value_enum, default_value = "markdown")]
    pub format: PlanFormat,
    /// Estimate the duration under this rate cap (as `copy --max-rate`: 50MB, 20000rows).
    #[arg(long, value_name = "RATE")]
    pub max_rate: Option<String>,
}

/// Output format of `howdah plan`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum PlanFormat {
    /// A Markdown document.
    Markdown,
    /// One JSON object.
    Json,
}

impl PlanArgs {
    /// The values that override the job file.
    pub fn overrides(&self) -> CopyOverrides {
        CopyOverrides {
            jobs: self.jobs,
            max_rate: self.max_rate.clone(),
            ..self.ends.overrides()
        }
    }
}

/// Flags of `howdah demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Server to build the demo on (any database of it; the demo creates its own two).
    #[arg(
        long,
        default_value = "postgres://postgres@127.0.0.1:5432/postgres",
        hide_default_value = false
    )]
    pub server: String,
    /// The demo databases are PREFIX_src and PREFIX_dst (dropped and re-created on each run,
    /// only if an earlier demo created them).
    #[arg(long, default_value = "howdah_demo")]
    pub prefix: String,
    /// Parallel copy lanes.
    #[arg(long, short = 'j', default_value_t = 2)]
    pub jobs: usize,
    /// Serve Prometheus metrics on this address during the copy.
    #[arg(long, value_name = "HOST:PORT", default_value = "127.0.0.1:9187")]
    pub metrics_addr: String,
    /// Serve no metrics.
    #[arg(long)]
    pub no_metrics: bool,
    /// Keep serving metrics this many seconds after the demo [default: 0].
    #[arg(long, value_name = "SECS")]
    pub metrics_linger_secs: Option<u64>,
    /// Print only errors and the final report.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Log format on stderr.
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

impl DemoArgs {
    /// The copy settings of the demo (source and target are set by the demo itself).
    pub fn overrides(&self) -> CopyOverrides {
        CopyOverrides {
            source: Some(self.server.clone()),
            target: Some(self.server.clone()),
            jobs: Some(self.jobs),
            chunk_rows: Some(50_000),
            job: Some("demo".into()),
            metrics_addr: (!self.no_metrics).then(|| self.metrics_addr.clone()),
            metrics_linger_secs: self.metrics_linger_secs,
            ..CopyOverrides::default()
        }
    }
}

/// Flags of `howdah verify`.
#[derive(Debug, Args)]
pub struct VerifyArgs {
    /// Source, target, job file and table selection.
    #[command(flatten)]
    pub ends: Endpoints,
    /// Chunks checked in parallel (each a source and a target connection).
    #[arg(long, short = 'j')]
    pub jobs: Option<usize>,
    /// Rows per checked chunk.
    #[arg(long, default_value_t = 250_000)]
    pub chunk_rows: u64,
    /// Check only this percent of each table's chunks (the same ones on every run).
    #[arg(long, value_name = "PCT")]
    pub sample: Option<f64>,
    /// Name the keys that are missing, extra or different in mismatched chunks.
    #[arg(long)]
    pub drill_down: bool,
    /// Re-copy every mismatched range from the source (delete and copy it in one target
    /// transaction), then check it again.
    #[arg(long)]
    pub repair: bool,
    /// The copy's job name, whose recorded default_sql/value_sql values are compared
    /// [default: the job file's, else default].
    #[arg(long)]
    pub job: Option<String>,
    /// Print JSON instead of a report.
    #[arg(long)]
    pub json: bool,
}

impl VerifyArgs {
    /// The values that override the job file.
    pub fn overrides(&self) -> CopyOverrides {
        CopyOverrides {
            jobs: self.jobs,
            job: self.job.clone(),
            ..self.ends.overrides()
        }
    }
}

/// The source, target, job file and table selection, shared by `copy`, `verify` and `plan`.
#[derive(Debug, Args)]
pub struct Endpoints {
    /// Source database URL (postgres://user@host:port/db?sslmode=..., or mysql://, mariadb://).
    #[arg(long, env = "HOWDAH_SOURCE", hide_env_values = true)]
    pub source: Option<String>,
    /// Target database URL.
    #[arg(long, env = "HOWDAH_TARGET", hide_env_values = true)]
    pub target: Option<String>,
    /// Job file (TOML): settings and column mappings; flags win over it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Only tables matching this glob over schema.table (repeatable).
    #[arg(long = "tables", value_name = "PATTERN")]
    pub tables: Vec<String>,
    /// Leave out tables matching this glob over schema.table (repeatable).
    #[arg(long = "exclude", value_name = "PATTERN")]
    pub exclude: Vec<String>,
}

impl Endpoints {
    /// These values as overrides of the job file (every other one unset).
    pub fn overrides(&self) -> CopyOverrides {
        CopyOverrides {
            source: self.source.clone(),
            target: self.target.clone(),
            config: self.config.clone(),
            tables: self.tables.clone(),
            exclude: self.exclude.clone(),
            ..CopyOverrides::default()
        }
    }
}

/// Flags of `howdah status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Target database URL (where the job's state lives).
    #[arg(long, env = "HOWDAH_TARGET", hide_env_values = true)]
    pub target: Option<String>,
    /// Only this job [default: every job].
    #[arg(long)]
    pub job: Option<String>,
    /// Print JSON instead of a report.
    #[arg(long)]
    pub json: bool,
    /// Schema of the state tables [default: howdah].
    #[arg(long, default_value = "howdah")]
    pub state_schema: String,
    /// Set the max rate of job --job (all its workers, within a few seconds): 50MB (per
    /// second), 20000rows, or off.
    #[arg(long, value_name = "RATE", requires = "job")]
    pub set_max_rate: Option<String>,
    /// Source database URL: also show what each job's snapshot holds back on it (snapshot
    /// age, oldest xmin or transaction, InnoDB history list length).
    #[arg(long, env = "HOWDAH_SOURCE", hide_env_values = true)]
    pub source: Option<String>,
}

/// Flags of `howdah copy`.
#[derive(Debug, Args)]
pub struct CopyArgs {
    /// Source, target, job file and table selection.
    #[command(flatten)]
    pub ends: Endpoints,
    /// Parallel copy lanes [default: 4].
    #[arg(long, short = 'j')]
    pub jobs: Option<usize>,
    /// Parallel index and constraint builders [default: --jobs].
    #[arg(long)]
    pub index_jobs: Option<usize>,
    /// Approximate rows per chunk [default: 500000].
    #[arg(long)]
    pub chunk_rows: Option<u64>,
    /// Target schema handling [default: create].
    #[arg(long, value_enum)]
    pub schema: Option<SchemaArg>,
    /// With --schema existing: empty the selected target tables first.
    #[arg(long)]
    pub truncate: bool,
    /// Reproduce table owners on the target.
    #[arg(long)]
    pub owners: bool,
    /// Reproduce grants on the target.
    #[arg(long)]
    pub grants: bool,
    /// Create user mappings with their password option (left out otherwise).
    #[arg(long)]
    pub user_mapping_passwords: bool,
    /// Put relations of source tablespace OLD in target tablespace NEW (`*=NEW` for every
    /// tablespace, `OLD=OLD` to keep one); repeatable. Without it: the target's default.
    #[arg(long = "tablespace", value_name = "OLD=NEW")]
    pub tablespaces: Vec<String>,
    /// Job name: a rerun with the same name resumes where the last run stopped [default: default].
    #[arg(long)]
    pub job: Option<String>,
    /// Forget the job's recorded progress and start over (combine with --schema recreate).
    #[arg(long)]
    pub restart: bool,
    /// Commit a checkpoint after this many rows of a chunk [default: 200000].
    #[arg(long)]
    pub commit_rows: Option<u64>,
    /// Stop at the first chunk that fails, instead of copying every other chunk first.
    #[arg(long)]
    pub fail_fast: bool,
    /// Seconds a worker's claim on a chunk lasts without renewal; a worker that stops renewing
    /// (frozen, cut off) loses its chunks to the other workers after this [default: 60].
    #[arg(long)]
    pub lease_secs: Option<u32>,
    /// Serve Prometheus metrics on this address, e.g. 127.0.0.1:9187 [default: off].
    #[arg(long, value_name = "HOST:PORT")]
    pub metrics_addr: Option<String>,
    /// Keep serving metrics this many seconds after the run, for a last scrape [default: 0].
    #[arg(long, value_name = "SECS")]
    pub metrics_linger_secs: Option<u64>,
    /// Stop when more rows than this are rejected: a count (1000) or a percent of rows read (0.5%).
    #[arg(long, value_name = "N|PCT%")]
    pub max_rejects: Option<String>,
    /// Show the tables and the resolved mapping of every column, then stop (nothing is written).
    #[arg(long)]
    pub dry_run: bool,
    /// At the end, also write the job's rejected rows to this file (JSON lines).
    #[arg(long, value_name = "PATH")]
    pub rejects_file: Option<PathBuf>,
    /// After the copy, apply the source's changes until `howdah cutover` or `howdah abort`
    /// (PostgreSQL sources with wal_level = logical).
    #[arg(long)]
    pub follow: bool,
    /// With --follow: drop the replication slot and stop when it retains more WAL on the
    /// source than this, e.g. 50GB [default: no limit].
    #[arg(long, value_name = "SIZE", requires = "follow")]
    pub max_retained_wal: Option<String>,
    /// With --follow from MySQL/MariaDB: target sessions that apply the changes, each taking
    /// the rows of simple tables (key the only unique index, no foreign key, no trigger)
    /// whose key hashes to it [default: 2].
    #[arg(long, value_name = "N", requires = "follow")]
    pub apply_lanes: Option<usize>,
    /// Cap the job's rate, shared by all its workers: 50MB (per second; MB = 10^6 bytes),
    /// 20000rows, or off [default: the job's recorded cap, else none]. Change it while the job
    /// runs with `howdah status --job NAME --set-max-rate RATE`.
    #[arg(long, value_name = "RATE")]
    pub max_rate: Option<String>,
    /// Print only errors and the final summary.
    #[arg(long, short = 'q')]
    pub quiet: bool,
    /// Log format on stderr: text (with progress bars on a terminal) or json (one object a line).
    #[arg(long, value_enum, default_value = "text")]
    pub log_format: LogFormat,
}

/// Flags of `howdah cutover` and `howdah abort`.
#[derive(Debug, Args)]
pub struct CutoverArgs {
    /// Source, target, job file and table selection (those of the copy).
    #[command(flatten)]
    pub ends: Endpoints,
    /// The copy's job name [default: the job file's, else default].
    #[arg(long)]
    pub job: Option<String>,
    /// Give up after this many seconds [default: 600].
    #[arg(long, value_name = "SECS", default_value_t = 600)]
    pub timeout: u64,
    /// cutover only: after cutting over, compare source and target (as `howdah verify`).
    #[arg(long)]
    pub verify: bool,
    /// cutover only: after cutting over, run the application's queries of FILE on both sides
    /// (as `howdah check-queries --queries FILE`): exit 1 when an answer differs or one is slower.
    #[arg(long, value_name = "FILE")]
    pub check_queries: Option<PathBuf>,
}

impl CutoverArgs {
    /// The values that override the job file.
    pub fn overrides(&self) -> CopyOverrides {
        CopyOverrides {
            job: self.job.clone(),
            follow: true,
            ..self.ends.overrides()
        }
    }
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

impl CopyArgs {
    /// The values that override the job file.
    pub fn overrides(&self) -> CopyOverrides {
        CopyOverrides {
            jobs: self.jobs,
            index_jobs: self.index_jobs,
            chunk_rows: self.chunk_rows,
            schema: self.schema.map(SchemaMode::from),
            truncate: self.truncate,
            owners: self.owners,
            grants: self.grants,
            user_mapping_passwords: self.user_mapping_passwords,
            tablespaces: self.tablespaces.clone(),
            job: self.job.clone(),
            restart: self.restart,
            commit_rows: self.commit_rows,
            fail_fast: self.fail_fast,
            lease_secs: self.lease_secs,
            metrics_addr: self.metrics_addr.clone(),
            metrics_linger_secs: self.metrics_linger_secs,
            max_rejects: self.max_rejects.clone(),
            dry_run: self.dry_run,
            rejects_file: self.rejects_file.clone(),
            follow: self.follow,
            max_retained_wal: self.max_retained_wal.clone(),
            apply_lanes: self.apply_lanes,
            max_rate: self.max_rate.clone(),
            ..self.ends.overrides()
        }
    }
}

/// `--schema`: the flag's spelling of [`SchemaMode`] (the library knows no clap types).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum SchemaArg {
    /// Create every object; refuse when a selected table already exists.
    Create,
    /// Load into tables that already exist; create nothing, build no indexes.
    Existing,
    /// Drop the selected tables (and views over them) on the target, then create them.
    Recreate,
}

impl From<SchemaArg> for SchemaMode {
    fn from(a: SchemaArg) -> Self {
        match a {
            SchemaArg::Create => SchemaMode::Create,
            SchemaArg::Existing => SchemaMode::Existing,
            SchemaArg::Recreate => SchemaMode::Recreate,
        }
    }
}
