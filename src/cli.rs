//! Command-line definitions (clap). Raw flags only; [`crate::config`] turns them into settings.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand};

use crate::config::CopyOverrides;
use crate::schema::SchemaMode;

/// sluice: a streaming data-copy engine into PostgreSQL.
#[derive(Debug, Parser)]
#[command(name = "sluice", version, about, long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Copy tables (schema, data, indexes, constraints, sequences) from the source to the target.
    Copy(CopyArgs),
    /// Show the progress of copy jobs recorded in the target (chunks, rows, rate, ETA, errors).
    Status(StatusArgs),
}

/// Flags of `sluice status`.
#[derive(Debug, Args)]
pub struct StatusArgs {
    /// Target database URL (where the job's state lives).
    #[arg(long, env = "SLUICE_TARGET", hide_env_values = true)]
    pub target: Option<String>,
    /// Only this job [default: every job].
    #[arg(long)]
    pub job: Option<String>,
    /// Print JSON instead of a report.
    #[arg(long)]
    pub json: bool,
    /// Schema of the state tables [default: sluice].
    #[arg(long, default_value = "sluice")]
    pub state_schema: String,
}

/// Flags of `sluice copy`.
#[derive(Debug, Args)]
pub struct CopyArgs {
    /// Source database URL (postgres://user@host:port/db?sslmode=...).
    #[arg(long, env = "SLUICE_SOURCE", hide_env_values = true)]
    pub source: Option<String>,
    /// Target database URL.
    #[arg(long, env = "SLUICE_TARGET", hide_env_values = true)]
    pub target: Option<String>,
    /// Job file (TOML); flags win over it.
    #[arg(long)]
    pub config: Option<PathBuf>,
    /// Copy only tables matching this glob over schema.table (repeatable).
    #[arg(long = "tables", value_name = "PATTERN")]
    pub tables: Vec<String>,
    /// Leave out tables matching this glob over schema.table (repeatable).
    #[arg(long = "exclude", value_name = "PATTERN")]
    pub exclude: Vec<String>,
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
    pub schema: Option<SchemaMode>,
    /// With --schema existing: empty the selected target tables first.
    #[arg(long)]
    pub truncate: bool,
    /// Reproduce table owners on the target.
    #[arg(long)]
    pub owners: bool,
    /// Reproduce grants on the target.
    #[arg(long)]
    pub grants: bool,
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
    /// Print only errors and the final summary.
    #[arg(long, short = 'q')]
    pub quiet: bool,
}

impl CopyArgs {
    /// The values that override the job file.
    pub fn overrides(&self) -> CopyOverrides {
        CopyOverrides {
            source: self.source.clone(),
            target: self.target.clone(),
            config: self.config.clone(),
            tables: self.tables.clone(),
            exclude: self.exclude.clone(),
            jobs: self.jobs,
            index_jobs: self.index_jobs,
            chunk_rows: self.chunk_rows,
            schema: self.schema,
            truncate: self.truncate,
            owners: self.owners,
            grants: self.grants,
            job: self.job.clone(),
            restart: self.restart,
            commit_rows: self.commit_rows,
            fail_fast: self.fail_fast,
            lease_secs: self.lease_secs,
        }
    }
}
