//! The job file (TOML) and the validated settings a command runs with.
//!
//! Precedence: file < environment (`HOWDAH_SOURCE`/`HOWDAH_TARGET`) < flags.

pub mod filter;
mod names;

pub use filter::TableFilter;

use std::path::{Path, PathBuf};

use serde::Deserialize;

use crate::conninfo::mysql::MyUrl;
use crate::conninfo::{redact, Env, PgUrl};
use crate::error::{Error, Result};
use crate::reject::MaxRejects;
use crate::schema::SchemaMode;

/// The whole job file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// Where rows come from.
    #[serde(default)]
    pub source: Endpoint,
    /// Where rows go.
    #[serde(default)]
    pub target: Endpoint,
    /// How the copy runs.
    #[serde(default)]
    pub copy: CopySection,
    /// The Prometheus endpoint.
    #[serde(default)]
    pub metrics: MetricsSection,
    /// MySQL/MariaDB sources: value policies, names, type rules.
    #[serde(default)]
    pub mysql: MysqlSection,
    /// Per-table mappings: rename, columns, casts, defaults, clean-ups, filter.
    #[serde(default)]
    pub table: Vec<crate::mapping::TableRule>,
    /// Type-wide casts (PostgreSQL type names); per-column rules win.
    #[serde(default)]
    pub cast: Vec<crate::mapping::TypeRule>,
}

/// `[mysql]`: how a MySQL or MariaDB source is converted.
#[derive(Debug, Default, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MysqlSection {
    /// Zero dates (`0000-00-00`, `2020-00-15`): "null" (default), "reject", or a date to use.
    pub zero_dates: Option<ZeroDates>,
    /// NUL bytes in text: "reject" (default) or "strip".
    pub nul_bytes: Option<NulBytes>,
    /// Target schema for the tables (default "public").
    pub schema: Option<String>,
    /// How MySQL identifiers (schema, tables, columns, indexes, constraints, enum types)
    /// are named on the target: "lowercase" (default), "snake_case" or "preserve".
    /// `names` is the key's former spelling, still read.
    #[serde(alias = "names")]
    pub identifiers: Option<NameCase>,
    /// Type rules, by MySQL type or by column; later rules win, column rules over type rules.
    #[serde(default)]
    pub cast: Vec<crate::typemap::mysql::CastRule>,
}

/// How MySQL names become PostgreSQL names.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NameCase {
    /// Lower-case names, so queries need no quotes (names that collide are an error).
    #[default]
    Lowercase,
    /// Words split at case changes and lower-cased: `InvoiceLine` -> `invoice_line`.
    #[serde(rename = "snake_case")]
    SnakeCase,
    /// Keep names as they are (quoted where needed).
    Preserve,
}

/// `[metrics]`: the Prometheus scrape endpoint (off unless an address is given).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MetricsSection {
    /// `host:port` to serve metrics on, e.g. "127.0.0.1:9187" (default: no endpoint).
    pub addr: Option<String>,
    /// Seconds to keep serving after the run ends, so the last values get scraped (default 0).
    pub linger_secs: Option<u64>,
}

/// A database endpoint.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Endpoint {
    /// Connection URL; `${VAR}` is replaced from the environment.
    pub url: Option<String>,
}

/// `[copy]`: every key optional, defaults in [`CopySettings::default`].
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CopySection {
    /// Glob patterns over `schema.table` to include (default: every table).
    pub tables: Option<Vec<String>>,
    /// Glob patterns over `schema.table` to leave out.
    pub exclude: Option<Vec<String>>,
    /// Parallel copy lanes (each a source and a target connection).
    pub jobs: Option<usize>,
    /// Parallel index/constraint builders on the target.
    pub index_jobs: Option<usize>,
    /// Approximate rows per chunk.
    pub chunk_rows: Option<u64>,
    /// Bytes of tuples per batch handed from reader to writer.
    pub batch_bytes: Option<usize>,
    /// Batches buffered per lane between reader and writer.
    pub channel_batches: Option<usize>,
    /// `create`, `existing` or `recreate`.
    pub schema: Option<SchemaMode>,
    /// With `schema = "existing"`: empty the target tables first.
    pub truncate: Option<bool>,
    /// Reproduce table owners (`ALTER ... OWNER TO`).
    pub owners: Option<bool>,
    /// Reproduce grants.
    pub grants: Option<bool>,
    /// Create user mappings with their `password` option (default false: left out).
    pub user_mapping_passwords: Option<bool>,
    /// `"old=new"` tablespace mappings (`"*=new"` for all, `"old=old"` to keep one); default
    /// none: every relation goes to the target's default tablespace.
    pub tablespaces: Option<Vec<String>>,
    /// `maintenance_work_mem` for index builds on the target, e.g. "512MB".
    pub maintenance_work_mem: Option<String>,
    /// Rows per checkpoint commit within a chunk.
    pub commit_rows: Option<u64>,
    /// Bytes per checkpoint commit within a chunk.
    pub commit_bytes: Option<u64>,
    /// Job name for the checkpoint state (resume uses the same name).
    pub job: Option<String>,
    /// Schema of the checkpoint state tables on the target.
    pub state_schema: Option<String>,
    /// Stop at the first failed chunk.
    pub fail_fast: Option<bool>,
    /// Seconds a worker's claim on a chunk lasts without a checkpoint or heartbeat.
    pub lease_secs: Option<u32>,
    /// Stop the copy when more rows than this are rejected: a count ("1000") or a percent of
    /// the rows read ("0.5%").
    pub max_rejects: Option<String>,
    /// `copy --follow`: stop and drop the replication slot when it retains more WAL on the
    /// source than this, e.g. "50GB" (default: no limit).
    pub max_retained_wal: Option<String>,
    /// `copy --follow` from MySQL/MariaDB: target sessions that apply changes (default 2).
    pub apply_lanes: Option<usize>,
    /// The job's rate cap, shared by all its workers: "50MB" (per second, MB = 10^6 bytes),
    /// "20000rows", or "off" (default: no cap). Changeable while the job runs with
    /// `howdah status --job NAME --set-max-rate`.
    pub max_rate: Option<String>,
}

/// The source database: PostgreSQL, or MySQL/MariaDB.
#[derive(Debug, Clone)]
pub enum SourceUrl {
    /// `postgres://`.
    Postgres(PgUrl),
    /// `mysql://` or `mariadb://`.
    Mysql(MyUrl),
}

impl std::fmt::Display for SourceUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SourceUrl::Postgres(u) => u.fmt(f),
            SourceUrl::Mysql(u) => u.fmt(f),
        }
    }
}

/// Validated settings of a `copy` run.
#[derive(Debug, Clone)]
pub struct CopySettings {
    /// Source database.
    pub source: SourceUrl,
    /// Target database.
    pub target: PgUrl,
    /// Which tables.
    pub filter: TableFilter,
    /// Copy lanes.
    pub jobs: usize,
    /// Index builders.
    pub index_jobs: usize,
    /// Rows per chunk; `None` is automatic (see [`crate::chunking::order::auto_chunk_rows`]).
    pub chunk_rows: Option<u64>,
    /// Bytes per batch.
    pub batch_bytes: usize,
    /// Batches in flight per lane.
    pub channel_batches: usize,
    /// Target schema handling.
    pub schema: SchemaMode,
    /// Truncate existing target tables.
    pub truncate: bool,
    /// Reproduce owners.
    pub owners: bool,
    /// Reproduce grants.
    pub grants: bool,
    /// Create user mappings with their `password` option.
    pub user_mapping_passwords: bool,
    /// Source tablespace -> target tablespace (`*` for any); empty: the target's default.
    pub tablespaces: Vec<(String, String)>,
    /// `maintenance_work_mem` for index builds.
    pub maintenance_work_mem: String,
    /// Commit a checkpoint after this many rows of a chunk.
    pub commit_rows: u64,
    /// Commit a checkpoint after this many bytes of a chunk.
    pub commit_bytes: u64,
    /// Job name in the state tables.
    pub job: String,
    /// Schema of the state tables on the target.
    pub state_schema: String,
    /// Forget the job's progress and start over.
    pub restart: bool,
    /// Stop the run at the first chunk that fails (instead of copying the others first).
    pub fail_fast: bool,
    /// Seconds a claim on a chunk lasts without renewal; then another worker may take it over.
    pub lease_secs: u32,
    /// Where to serve Prometheus metrics; `None` serves none.
    pub metrics_addr: Option<std::net::SocketAddr>,
    /// Seconds to keep serving metrics after the run.
    pub metrics_linger_secs: u64,
    /// MySQL source settings (ignored for a PostgreSQL source).
    pub mysql: MysqlSection,
    /// Column mappings and type-wide casts.
    pub rules: crate::mapping::Rules,
    /// Limit on rejected rows.
    pub max_rejects: Option<MaxRejects>,
    /// Show the resolved plan and mappings, copy nothing.
    pub dry_run: bool,
    /// Also write the job's rejected rows to this file (JSON lines) at the end of the run.
    pub rejects_file: Option<PathBuf>,
    /// `copy --follow`: follow the source after the copy until `cutover` or `abort`.
    pub follow: Option<FollowSettings>,
    /// A snapshot the copy reads in instead of exporting its own (set by `--follow`: the
    /// replication slot's, so the stream starts exactly where the copy's image ends).
    pub source_snapshot: Option<String>,
    /// `--max-rate`: `None` keeps the job's recorded cap; `Some(None)` removes it.
    pub max_rate: Option<Option<crate::rate::RateCap>>,
}

/// Settings of following a source after the copy.
#[derive(Debug, Clone, Default)]
pub struct FollowSettings {
    /// Drop the slot and stop when it retains more WAL than this many bytes.
    pub max_retained_wal: Option<u64>,
    /// Target sessions that apply a MySQL/MariaDB source's changes (`--apply-lanes`; unset:
    /// [`FollowSettings::DEFAULT_APPLY_LANES`]).
    pub apply_lanes: Option<usize>,
}

impl FollowSettings {
    /// Apply lanes of a MySQL/MariaDB follow when none are asked for: two sessions beat one
    /// even on the 2-core bench machine, where the source and the target share the cores
    /// (BENCHMARKS.md, "apply lanes").
    pub const DEFAULT_APPLY_LANES: usize = 2;

    /// The apply lanes of a MySQL/MariaDB follow.
    pub fn apply_lanes(&self) -> usize {
        self.apply_lanes.unwrap_or(Self::DEFAULT_APPLY_LANES)
    }
}

/// Parses a size such as `512MB`, `50GB`, `1TB` or a number of bytes (units of 1024).
pub fn parse_size(text: &str) -> Result<u64> {
    let t = text.trim();
    let split = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: u64 = num.parse().map_err(|_| {
        Error::Config(format!(
            "size \"{text}\" is not a number with a unit such as 50GB"
        ))
    })?;
    let mult: u64 = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1,
        "KB" | "K" | "KIB" => 1 << 10,
        "MB" | "M" | "MIB" => 1 << 20,
        "GB" | "G" | "GIB" => 1 << 30,
        "TB" | "T" | "TIB" => 1 << 40,
        other => {
            return Err(Error::Config(format!(
                "size \"{text}\": unknown unit \"{other}\" (use B, KB, MB, GB or TB)"
            )))
        }
    };
    n.checked_mul(mult)
        .ok_or_else(|| Error::Config(format!("size \"{text}\" is too large")))
}

/// Values given on the command line or in the environment, which win over the file.
#[derive(Debug, Default, Clone)]
pub struct CopyOverrides {
    /// `--source` / `HOWDAH_SOURCE`.
    pub source: Option<String>,
    /// `--target` / `HOWDAH_TARGET`.
    pub target: Option<String>,
    /// `--config`.
    pub config: Option<PathBuf>,
    /// `--tables`.
    pub tables: Vec<String>,
    /// `--exclude`.
    pub exclude: Vec<String>,
    /// `--jobs`.
    pub jobs: Option<usize>,
    /// `--index-jobs`.
    pub index_jobs: Option<usize>,
    /// `--chunk-rows`.
    pub chunk_rows: Option<u64>,
    /// `--schema`.
    pub schema: Option<SchemaMode>,
    /// `--truncate`.
    pub truncate: bool,
    /// `--owners`.
    pub owners: bool,
    /// `--grants`.
    pub grants: bool,
    /// `--user-mapping-passwords`.
    pub user_mapping_passwords: bool,
    /// `--tablespace OLD=NEW`.
    pub tablespaces: Vec<String>,
    /// `--job`.
    pub job: Option<String>,
    /// `--restart`.
    pub restart: bool,
    /// `--commit-rows`.
    pub commit_rows: Option<u64>,
    /// `--fail-fast`.
    pub fail_fast: bool,
    /// `--lease-secs`.
    pub lease_secs: Option<u32>,
    /// `--metrics-addr`.
    pub metrics_addr: Option<String>,
    /// `--metrics-linger-secs`.
    pub metrics_linger_secs: Option<u64>,
    /// `--max-rejects`.
    pub max_rejects: Option<String>,
    /// `--dry-run`.
    pub dry_run: bool,
    /// `--rejects-file`.
    pub rejects_file: Option<PathBuf>,
    /// `--follow`.
    pub follow: bool,
    /// `--max-retained-wal`.
    pub max_retained_wal: Option<String>,
    /// `--apply-lanes`.
    pub apply_lanes: Option<usize>,
    /// `--max-rate`.
    pub max_rate: Option<String>,
}

/// Reads and parses a job file.
pub fn load_file(path: &Path) -> Result<FileConfig> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| Error::Config(format!("cannot read config file {}: {e}", path.display())))?;
    parse_file(&text).map_err(|e| match e {
        Error::Config(msg) => Error::Config(format!("config file {}: {msg}", path.display())),
        other => other,
    })
}

/// Parses job-file text.
pub fn parse_file(text: &str) -> Result<FileConfig> {
    // toml's messages quote the offending line, which may hold a password: keep only the
    // first line of the message, which names the key and position.
    toml::from_str(text).map_err(|e| {
        let msg = e.message().to_string();
        let at = e
            .span()
            .map(|s| line_of(text, s.start))
            .map(|l| format!(" (line {l})"))
            .unwrap_or_default();
        Error::Config(format!("{msg}{at}"))
    })
}

fn line_of(text: &str, offset: usize) -> usize {
    text[..offset.min(text.len())].matches('\n').count() + 1
}

/// Replaces `${NAME}` with the environment variable `NAME`; an unset variable is an error.
pub fn interpolate(value: &str, what: &str) -> Result<String> {
    let mut out = String::with_capacity(value.len());
    let mut rest = value;
    while let Some(start) = rest.find("${") {
        out.push_str(&rest[..start]);
        let after = &rest[start + 2..];
        let end = after
            .find('}')
            .ok_or_else(|| Error::Config(format!("{what}: unclosed ${{ in {}", redact(value))))?;
        let name = &after[..end];
        let v = std::env::var(name).map_err(|_| {
            Error::Config(format!("{what}: environment variable {name} is not set"))
        })?;
        out.push_str(&v);
        rest = &after[end + 1..];
    }
    out.push_str(rest);
    Ok(out)
}

/// Parses `OLD=NEW` tablespace mappings.
fn tablespace_map(items: &[String]) -> Result<Vec<(String, String)>> {
    items
        .iter()
        .map(|m| match m.split_once('=') {
            Some((from, to)) if !from.is_empty() && !to.is_empty() => {
                Ok((from.to_string(), to.to_string()))
            }
            _ => Err(Error::Config(format!(
                "tablespace mapping \"{m}\": give OLD=NEW (a source and a target tablespace; *=NEW for all)"
            ))),
        })
        .collect()
}

/// A source URL: `mysql://` or `mariadb://` (password also from MYSQL_PWD), else PostgreSQL
/// (password also from PGPASSWORD or the password file).
pub fn parse_source_url(raw: &str) -> Result<SourceUrl> {
    Ok(
        if raw.starts_with("mysql://") || raw.starts_with("mariadb://") {
            let pwd = std::env::var("MYSQL_PWD").ok();
            SourceUrl::Mysql(MyUrl::parse(raw, pwd.as_deref())?)
        } else {
            SourceUrl::Postgres(PgUrl::parse(raw, &Env::from_process())?)
        },
    )
}

impl CopySettings {
    /// The job file's mappings as the job records them (a line of its configuration): a
    /// follower compares it with the job's, so that it never applies changes with other rules
    /// than the copy's.
    pub fn mappings_summary(&self) -> String {
        format!("{}{:?}", self.rules_summary(), self.max_rejects)
    }

    /// The start of [`CopySettings::mappings_summary`]: the rules alone.
    pub fn rules_summary(&self) -> String {
        format!("mappings = {:?} {:?} ", self.rules.tables, self.rules.casts)
    }

    /// Merges file and overrides into validated settings.
    pub fn resolve(over: CopyOverrides) -> Result<Self> {
        let file = match &over.config {
            Some(path) => load_file(path)?,
            None => FileConfig::default(),
        };
        let env = Env::from_process();
        let raw_url = |flag: Option<String>, file: Option<String>, side: &str| -> Result<String> {
            Ok(match flag {
                Some(u) => u,
                None => interpolate(
                    &file.ok_or_else(|| {
                        Error::Config(format!(
                            "no {side} database: pass --{side} URL, set HOWDAH_{}, or set [{side}] url in the config file",
                            side.to_uppercase()
                        ))
                    })?,
                    &format!("[{side}] url"),
                )?,
            })
        };
        let raw_source = raw_url(over.source, file.source.url, "source")?;
        let source = parse_source_url(&raw_source)?;
        let raw_target = raw_url(over.target, file.target.url, "target")?;
        if raw_target.starts_with("mysql://") || raw_target.starts_with("mariadb://") {
            return Err(Error::Config(format!(
                "target {}: howdah writes into PostgreSQL; MySQL/MariaDB can only be a source",
                redact(&raw_target)
            )));
        }
        let target = PgUrl::parse(&raw_target, &env)?;
        let c = file.copy;
        let metrics_addr = match over.metrics_addr.or(file.metrics.addr) {
            None => None,
            Some(a) => Some(a.parse::<std::net::SocketAddr>().map_err(|_| {
                Error::Config(format!(
                    "metrics address \"{a}\" is not host:port with a numeric host, e.g. 127.0.0.1:9187"
                ))
            })?),
        };
        let metrics_linger_secs = over
            .metrics_linger_secs
            .or(file.metrics.linger_secs)
            .unwrap_or(0);
        let pick = |flag: Vec<String>, file: Option<Vec<String>>| {
            if flag.is_empty() {
                file.unwrap_or_default()
            } else {
                flag
            }
        };
        let filter =
            TableFilter::new(&pick(over.tables, c.tables), &pick(over.exclude, c.exclude))?;
        let jobs = over.jobs.or(c.jobs).unwrap_or(4);
        let settings = CopySettings {
            source,
            target,
            filter,
            jobs,
            index_jobs: over.index_jobs.or(c.index_jobs).unwrap_or(jobs),
            chunk_rows: over.chunk_rows.or(c.chunk_rows),
            batch_bytes: c.batch_bytes.unwrap_or(1 << 20),
            channel_batches: c.channel_batches.unwrap_or(4),
            schema: over.schema.or(c.schema).unwrap_or_default(),
            truncate: over.truncate || c.truncate.unwrap_or(false),
            owners: over.owners || c.owners.unwrap_or(false),
            grants: over.grants || c.grants.unwrap_or(false),
            user_mapping_passwords: over.user_mapping_passwords
                || c.user_mapping_passwords.unwrap_or(false),
            tablespaces: tablespace_map(&pick(over.tablespaces, c.tablespaces))?,
            maintenance_work_mem: c.maintenance_work_mem.unwrap_or_else(|| "256MB".into()),
            commit_rows: over.commit_rows.or(c.commit_rows).unwrap_or(200_000),
            commit_bytes: c.commit_bytes.unwrap_or(128 << 20),
            job: over.job.or(c.job).unwrap_or_else(|| "default".into()),
            state_schema: c.state_schema.unwrap_or_else(|| "howdah".into()),
            restart: over.restart,
            fail_fast: over.fail_fast || c.fail_fast.unwrap_or(false),
            lease_secs: over.lease_secs.or(c.lease_secs).unwrap_or(60),
            metrics_addr,
            metrics_linger_secs,
            mysql: file.mysql,
            rules: crate::mapping::Rules {
                tables: file.table,
                casts: file.cast,
                file: over.config.as_ref().map_or_else(
                    || "config".to_string(),
                    |p| format!("config file {}", p.display()),
                ),
            },
            max_rejects: match over.max_rejects.or(c.max_rejects) {
                Some(m) => Some(MaxRejects::parse(&m)?),
                None => None,
            },
            dry_run: over.dry_run,
            rejects_file: over.rejects_file,
            follow: match over.follow {
                false => None,
                true => Some(FollowSettings {
                    max_retained_wal: match over.max_retained_wal.or(c.max_retained_wal) {
                        Some(s) => Some(parse_size(&s)?),
                        None => None,
                    },
                    apply_lanes: over.apply_lanes.or(c.apply_lanes),
                }),
            },
            source_snapshot: None,
            max_rate: match over.max_rate.or(c.max_rate) {
                Some(r) => Some(crate::rate::RateCap::parse(&r)?),
                None => None,
            },
        };
        settings.validate()?;
        let mut settings = settings;
        // Sessions carry the job's name (and, once registered, the worker's number), so a DBA
        // can tell which sessions belong to which job.
        let app = format!("howdah/{}", settings.job);
        if let SourceUrl::Postgres(url) = &mut settings.source {
            if url.application_name == "howdah" {
                url.application_name = app.clone();
            }
        }
        if settings.target.application_name == "howdah" {
            settings.target.application_name = app;
        }
        Ok(settings)
    }

    fn validate(&self) -> Result<()> {
        let check = |ok: bool, msg: &str| {
            if ok {
                Ok(())
            } else {
                Err(Error::Config(msg.to_string()))
            }
        };
        check(
            (1..=256).contains(&self.jobs),
            "jobs must be between 1 and 256",
        )?;
        check(
            (1..=256).contains(&self.index_jobs),
            "index_jobs must be between 1 and 256",
        )?;
        check(
            self.chunk_rows.is_none_or(|r| r >= 1000),
            "chunk_rows must be at least 1000",
        )?;
        check(
            (64 * 1024..=256 * 1024 * 1024).contains(&self.batch_bytes),
            "batch_bytes must be between 65536 and 268435456",
        )?;
        check(
            (1..=1024).contains(&self.channel_batches),
            "channel_batches must be between 1 and 1024",
        )?;
        check(
            self.follow
                .as_ref()
                .is_none_or(|f| (1..=16).contains(&f.apply_lanes())),
            "apply_lanes must be between 1 and 16",
        )?;
        check(
            !self.maintenance_work_mem.is_empty()
                && self
                    .maintenance_work_mem
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric()),
            "maintenance_work_mem must look like \"256MB\"",
        )?;
        check(
            self.commit_rows >= 1000,
            "commit_rows must be at least 1000",
        )?;
        check(
            (3..=86_400).contains(&self.lease_secs),
            "lease_secs must be between 3 and 86400",
        )?;
        check(
            self.commit_bytes >= 1 << 20,
            "commit_bytes must be at least 1048576",
        )?;
        let name_ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 63
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
        };
        check(
            name_ok(&self.job),
            "job names are 1-63 characters of letters, digits, '_' and '-'",
        )?;
        check(
            name_ok(&self.state_schema),
            "state_schema is 1-63 characters of letters, digits, '_' and '-'",
        )?;
        check(
            !(self.truncate && self.schema != SchemaMode::Existing),
            "truncate only applies with schema = \"existing\" (create refuses existing tables, recreate drops them)",
        )
    }
}

/// What to do with zero and partial-zero dates (`0000-00-00`, `2020-00-15`).
#[derive(Debug, Clone, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ZeroDates {
    /// NULL. A NOT NULL column the copy creates is created nullable for them (see
    /// `Column::nullable_for_zero_dates`); a key column, or an existing NOT NULL target
    /// column, rejects the row instead.
    #[default]
    Null,
    /// Reject the row.
    Reject,
    /// Put this date (or timestamp) instead, e.g. `1970-01-01`.
    #[serde(untagged)]
    Value(String),
}

/// What to do with NUL bytes in text, which PostgreSQL text cannot hold.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum NulBytes {
    /// Reject the row.
    #[default]
    Reject,
    /// Remove the NUL bytes from the value.
    Strip,
}

/// Value policies of a MySQL copy.
#[derive(Debug, Clone, Default)]
pub struct Policies {
    /// Zero dates.
    pub zero_dates: ZeroDates,
    /// NUL bytes in text.
    pub nul_bytes: NulBytes,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_keys_are_named() {
        let err = parse_file("[copy]\njobz = 3\n")
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default();
        assert!(err.contains("jobz") && err.contains("line 2"), "{err}");
    }

    #[test]
    fn example_config_parses() -> Result<()> {
        let text = include_str!("../../configs/example.toml");
        let cfg = parse_file(text)?;
        assert_eq!(cfg.copy.jobs, Some(4));
        assert_eq!(cfg.copy.schema, Some(SchemaMode::Create));
        Ok(())
    }

    #[test]
    fn interpolates_environment() -> Result<()> {
        std::env::set_var("HOWDAH_TEST_INTERP", "pw");
        assert_eq!(
            interpolate("postgres://u:${HOWDAH_TEST_INTERP}@h/db", "x")?,
            "postgres://u:pw@h/db"
        );
        assert!(interpolate("${HOWDAH_TEST_UNSET_VAR}", "x").is_err());
        Ok(())
    }
}
