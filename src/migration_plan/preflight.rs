//! Pre-flight checks: connections, disk, WAL settings, encodings, privileges, the job's state
//! on the target. Every query here reads; a check that cannot be made says `unknown`.

use mysql_async::prelude::Queryable;
use tokio_postgres::Client;

use super::model::risk;
use super::model::{Check, Risk, TablePlan};
use crate::catalog::{quote_literal, Catalog, TargetFacts};
use crate::config::{CopySettings, SourceUrl};
use crate::connect::{connect, Side};
use crate::conninfo::mysql::MyUrl;
use crate::conninfo::PgUrl;
use crate::error::{db_reason, query_failed as q, Result};
use crate::schema::SchemaMode;

/// What the target server says about itself.
#[derive(Debug, Clone, Default)]
pub struct TargetInfo {
    /// `server_version`.
    pub version: String,
    /// Database encoding, e.g. `UTF8`.
    pub encoding: String,
    /// `datcollate`.
    pub collate: String,
    /// `max_connections`.
    pub max_connections: i64,
    /// `superuser_reserved_connections`.
    pub reserved: i64,
    /// Client sessions now (this one included).
    pub in_use: i64,
    /// `wal_level`.
    pub wal_level: String,
    /// `max_wal_size` in bytes.
    pub max_wal_size: i64,
    /// `archive_mode`.
    pub archive_mode: String,
    /// `data_directory`, when the role may read it.
    pub data_directory: Option<String>,
    /// `pg_database_size` of the target database.
    pub database_bytes: i64,
    /// The login role is a superuser.
    pub superuser: bool,
}

/// Reads the target's version, settings, size and role.
pub async fn target_info(target: &Client) -> Result<TargetInfo> {
    let what = "reading the target's settings";
    let r = target
        .query_one(
            "SELECT current_setting('server_version'), pg_encoding_to_char(d.encoding)::text, d.datcollate::text, \
               current_setting('max_connections')::int8, current_setting('superuser_reserved_connections')::int8, \
               (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'), \
               current_setting('wal_level'), pg_size_bytes(current_setting('max_wal_size')), \
               current_setting('archive_mode'), \
               (SELECT setting FROM pg_settings WHERE name = 'data_directory'), \
               pg_database_size(current_database()), \
               coalesce((SELECT rolsuper FROM pg_roles WHERE rolname = current_user), false) \
             FROM pg_database d WHERE d.datname = current_database()",
            &[],
        )
        .await
        .map_err(q(what))?;
    Ok(TargetInfo {
        version: r.try_get(0).map_err(q(what))?,
        encoding: r.try_get(1).map_err(q(what))?,
        collate: r.try_get(2).map_err(q(what))?,
        max_connections: r.try_get(3).map_err(q(what))?,
        reserved: r.try_get(4).map_err(q(what))?,
        in_use: r.try_get(5).map_err(q(what))?,
        wal_level: r.try_get(6).map_err(q(what))?,
        max_wal_size: r.try_get(7).map_err(q(what))?,
        archive_mode: r.try_get(8).map_err(q(what))?,
        data_directory: r.try_get(9).map_err(q(what))?,
        database_bytes: r.try_get(10).map_err(q(what))?,
        superuser: r.try_get(11).map_err(q(what))?,
    })
}

/// What the target-side checks look at.
pub struct Inputs<'a> {
    /// The run's settings.
    pub settings: &'a CopySettings,
    /// Selected tables in target terms.
    pub catalog: &'a Catalog,
    /// What exists on the target.
    pub facts: &'a TargetFacts,
    /// Target settings.
    pub target: &'a TargetInfo,
    /// Source table and index bytes.
    pub total_bytes: i64,
}

fn check(name: &str, status: &str, detail: impl Into<String>) -> Check {
    Check {
        name: name.into(),
        status: status.into(),
        detail: detail.into(),
    }
}

/// The sessions a copy opens on one server against those it has free.
struct Sessions<'a> {
    /// The check's name (`connections_source`, `connections_target`).
    check: &'a str,
    /// The risk's subject when too few are free.
    subject: &'a str,
    /// Sessions the copy opens at most.
    need: i64,
    /// Sessions free now.
    free: i64,
    /// What was counted, for the check and the risk.
    detail: String,
    /// Appended to the risk's detail: what to do.
    advice: &'a str,
}

/// An `ok` check when the server has the sessions free, else a `problem` check and a warning.
fn sessions(checks: &mut Vec<Check>, risks: &mut Vec<Risk>, s: &Sessions<'_>) {
    if s.free >= s.need {
        checks.push(check(s.check, "ok", s.detail.clone()));
    } else {
        checks.push(check(s.check, "problem", s.detail.clone()));
        risks.push(risk(
            "connections",
            "warning",
            s.subject,
            format!("{}{}", s.detail, s.advice),
        ));
    }
}

/// Human bytes in binary units: `1.5 GiB`.
pub fn bytes(n: i64) -> String {
    let n = n.max(0) as f64;
    let k = 1024.0;
    if n >= k * k * k * k {
        format!("{:.1} TiB", n / (k * k * k * k))
    } else if n >= k * k * k {
        format!("{:.1} GiB", n / (k * k * k))
    } else if n >= k * k {
        format!("{:.1} MiB", n / (k * k))
    } else if n >= k {
        format!("{:.1} KiB", n / k)
    } else {
        format!("{n} B")
    }
}

/// Free bytes of the file system holding `dir`, from `df` (a local check).
fn local_free_bytes(dir: &str) -> Option<i64> {
    let out = std::process::Command::new("df")
        .args(["-Pk", dir])
        .output()
        .ok()?;
    if !out.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().nth(1)?;
    let avail: i64 = line.split_whitespace().nth(3)?.parse().ok()?;
    Some(avail * 1024)
}

/// Connections, disk, WAL settings and encoding of the target.
pub fn checks(checks: &mut Vec<Check>, risks: &mut Vec<Risk>, inp: &Inputs<'_>) {
    target_sessions(checks, risks, inp);
    disk_space(checks, risks, inp);
    wal(checks, risks, inp);
    target_settings(checks, risks, inp);
}

/// The target sessions the copy opens against those free.
fn target_sessions(checks: &mut Vec<Check>, risks: &mut Vec<Risk>, inp: &Inputs<'_>) {
    let t = inp.target;
    let s = inp.settings;
    // Writers, index builders, the coordinator, the worker's liveness session and its
    // step runner.
    let need = (s.jobs + s.index_jobs + 3) as i64;
    let free = t.max_connections - if t.superuser { 0 } else { t.reserved } - (t.in_use - 1);
    let detail = format!(
        "the copy opens up to {need} target sessions (--jobs {} writers + --index-jobs {} builders + 3); max_connections = {}, \
         {} reserved for superusers, {} client session(s) besides this plan's in use: {free} free",
        s.jobs,
        s.index_jobs,
        t.max_connections,
        t.reserved,
        (t.in_use - 1).max(0)
    );
    sessions(
        checks,
        risks,
        &Sessions {
            check: "connections_target",
            subject: "target max_connections",
            need,
            free,
            detail,
            advice: "; lower --jobs/--index-jobs or raise max_connections (restart)",
        },
    );
}

/// Free disk on a local target (`df` on its data directory) against the data and WAL to come.
fn disk_space(checks: &mut Vec<Check>, risks: &mut Vec<Risk>, inp: &Inputs<'_>) {
    let t = inp.target;
    let s = inp.settings;
    let need_bytes = inp.total_bytes.max(0) + t.max_wal_size.max(0);
    let local = {
        let h = s.target.host.as_str();
        h == "localhost" || h == "127.0.0.1" || h == "::1" || h.starts_with('/')
    };
    let free_disk = if local {
        t.data_directory.as_deref().and_then(local_free_bytes)
    } else {
        None
    };
    match free_disk {
        Some(f) => {
            let detail = format!(
                "local check (df on the data directory {}): {} free; the copy needs about {} (the source's {} of tables and indexes, \
                 plus WAL up to max_wal_size {}); the target database holds {} now. Tablespaces other than the default are not checked",
                t.data_directory.as_deref().unwrap_or("?"),
                bytes(f),
                bytes(need_bytes),
                bytes(inp.total_bytes),
                bytes(t.max_wal_size),
                bytes(t.database_bytes)
            );
            let status = if f as f64 >= need_bytes as f64 * 1.2 {
                "ok"
            } else if f >= need_bytes {
                "warning"
            } else {
                "problem"
            };
            if status != "ok" {
                risks.push(risk(
                    "disk_space",
                    if status == "problem" { "blocker" } else { "warning" },
                    "target disk",
                    detail.clone(),
                ));
            }
            checks.push(check("disk_space", status, detail));
        }
        None => checks.push(check(
            "disk_space",
            "unknown",
            format!(
                "PostgreSQL reports no free disk space without an extension{}; make sure the target has room for about {} \
                 (the source's {} of tables and indexes, plus WAL up to max_wal_size {}); the target database holds {} now",
                if local {
                    " and the data directory could not be read here"
                } else {
                    " (the target is not on this machine)"
                },
                bytes(need_bytes),
                bytes(inp.total_bytes),
                bytes(t.max_wal_size),
                bytes(t.database_bytes)
            ),
        )),
    }
}

/// `wal_level`, `max_wal_size` and `archive_mode` for a bulk load.
fn wal(checks: &mut Vec<Check>, risks: &mut Vec<Risk>, inp: &Inputs<'_>) {
    let t = inp.target;
    let wal = if t.wal_level == "minimal" {
        "wal_level = minimal: tables copied in one chunk are loaded with COPY FREEZE in the transaction that truncates them, \
         which writes almost no WAL"
            .to_string()
    } else {
        format!(
            "wal_level = {}: every loaded row is also written to WAL. If the target has no replica or WAL archive to keep \
             during the load, wal_level = minimal with max_wal_senders = 0 (restart; set back afterwards, then take a new \
             base backup) skips most WAL for tables copied in one chunk",
            t.wal_level
        )
    };
    checks.push(check("wal_level", "ok", wal));
    let big = inp.total_bytes > 1_000_000_000;
    let small_wal = t.max_wal_size < 4 << 30;
    let detail = format!(
        "max_wal_size = {}: {}",
        bytes(t.max_wal_size),
        if small_wal && big {
            "a bulk load fills it quickly and forces a checkpoint (and full-page images) each time; raise it for the load, \
             e.g. ALTER SYSTEM SET max_wal_size = '16GB'; SELECT pg_reload_conf(); (no restart), and set it back afterwards"
        } else if small_wal {
            "small, but so is this copy; raise it (ALTER SYSTEM SET max_wal_size = '16GB'; SELECT pg_reload_conf();) for big loads"
        } else {
            "large enough for a bulk load"
        }
    );
    checks.push(check(
        "max_wal_size",
        if small_wal && big { "warning" } else { "ok" },
        detail.clone(),
    ));
    if small_wal && big {
        risks.push(risk("max_wal_size", "info", "target max_wal_size", detail));
    }
    if t.archive_mode != "off" {
        let detail = format!(
            "archive_mode = {}: every WAL segment of the load is archived; the archive needs room for about the data size ({})",
            t.archive_mode,
            bytes(inp.total_bytes)
        );
        checks.push(check("archive_mode", "warning", detail.clone()));
        risks.push(risk("wal_archive", "info", "target archive_mode", detail));
    }
}

/// The target's encoding for MySQL text, and what its role may not do (triggers under
/// `--schema existing`, new extensions).
fn target_settings(checks: &mut Vec<Check>, risks: &mut Vec<Risk>, inp: &Inputs<'_>) {
    let t = inp.target;
    let s = inp.settings;
    if matches!(s.source, crate::config::SourceUrl::Mysql(_)) && t.encoding != "UTF8" {
        let detail = format!(
            "the target database's encoding is {}: text from MySQL arrives as UTF-8 and characters {} cannot hold fail their rows",
            t.encoding, t.encoding
        );
        checks.push(check("encoding", "warning", detail.clone()));
        risks.push(risk("encoding", "warning", "target encoding", detail));
    }
    if s.schema == SchemaMode::Existing && !t.superuser {
        risks.push(risk(
            "existing_mode_triggers",
            "warning",
            "target role",
            "--schema existing loads with session_replication_role = replica only as a superuser; as this role the target's \
             triggers and foreign-key checks fire on copied rows",
        ));
    }
    let new_extensions: Vec<&str> = inp
        .catalog
        .extensions
        .iter()
        .filter(|e| !inp.facts.extensions.contains(&e.name))
        .map(|e| e.name.as_str())
        .collect();
    if !new_extensions.is_empty() && s.schema != SchemaMode::Existing && !t.superuser {
        risks.push(risk(
            "privileges",
            "warning",
            "target extensions",
            format!(
                "the copy creates extension(s) {}; most need a superuser (or a trusted extension and CREATE on the database), \
                 and the packages must be installed on the target server",
                new_extensions.join(", ")
            ),
        ));
    }
}

/// CREATE on the database and the target schemas; INSERT/TRUNCATE for `existing`.
pub async fn target_privileges(
    target: &Client,
    catalog: &Catalog,
    facts: &TargetFacts,
    settings: &CopySettings,
    checks: &mut Vec<Check>,
    risks: &mut Vec<Risk>,
) {
    let mut problems = Vec::new();
    let mut ok = Vec::new();
    let state_exists = facts.schemas.contains(&settings.state_schema);
    let new_schemas: Vec<&str> = catalog
        .schemas
        .iter()
        .map(|s| s.name.as_str())
        .chain(catalog.tables.iter().map(|t| t.name.schema.as_str()))
        .filter(|s| !facts.schemas.contains(*s))
        .collect();
    let db_create = granted(
        target,
        "SELECT has_database_privilege(current_database(), 'CREATE')",
    )
    .await;
    match db_create {
        Some(true) => ok.push("CREATE on the database".to_string()),
        Some(false) if !state_exists || !new_schemas.is_empty() => problems.push(format!(
            "no CREATE on the target database, needed to create schema(s) {}",
            if state_exists {
                String::new()
            } else {
                format!("{} (the copy's state)", settings.state_schema)
            } + &new_schemas.join(", ")
        )),
        Some(false) => {
            ok.push("no CREATE on the database (not needed: every schema exists)".into())
        }
        None => problems.push("could not read the database privileges".into()),
    }
    let mut schemas: Vec<&str> = catalog
        .tables
        .iter()
        .map(|t| t.name.schema.as_str())
        .filter(|s| facts.schemas.contains(*s))
        .collect();
    schemas.sort_unstable();
    schemas.dedup();
    if settings.schema != SchemaMode::Existing {
        for s in schemas {
            let sql = format!(
                "SELECT has_schema_privilege({}, 'CREATE')",
                quote_literal(s)
            );
            match granted(target, &sql).await {
                Some(true) => ok.push(format!("CREATE on schema {s}")),
                _ => problems.push(format!(
                    "no CREATE on target schema {s}, where tables are created"
                )),
            }
        }
    } else {
        let wanted = if settings.truncate {
            "INSERT, TRUNCATE"
        } else {
            "INSERT"
        };
        for t in catalog
            .tables
            .iter()
            .filter(|t| facts.tables.contains(&t.name))
        {
            let sql = format!(
                "SELECT has_table_privilege({}, {})",
                quote_literal(&t.name.quoted()),
                quote_literal(wanted)
            );
            match granted(target, &sql).await {
                Some(true) => {}
                _ => problems.push(format!("no {wanted} on target table {}", t.name)),
            }
        }
    }
    if problems.is_empty() {
        checks.push(check("privileges_target", "ok", ok.join("; ")));
    } else {
        let detail = problems.join("; ");
        checks.push(check("privileges_target", "problem", detail.clone()));
        risks.push(risk("privileges", "blocker", "target role", detail));
    }
}

/// The answer of a privilege query (one boolean), `None` when it could not be read.
async fn granted(target: &Client, sql: &str) -> Option<bool> {
    target
        .query_one(sql, &[])
        .await
        .ok()
        .and_then(|r| r.try_get::<_, bool>(0).ok())
}

/// Whether a job of this name already exists in the state schema (resume or refusal).
pub async fn job_state(target: &Client, settings: &CopySettings, risks: &mut Vec<Risk>) {
    let st = crate::state::StateRef {
        schema: settings.state_schema.clone(),
        job: settings.job.clone(),
    };
    let exists = target
        .query_one(
            "SELECT to_regclass(format('%I.jobs', $1::text)) IS NOT NULL",
            &[&settings.state_schema],
        )
        .await
        .ok()
        .and_then(|r| r.try_get::<_, bool>(0).ok())
        .unwrap_or(false);
    if !exists {
        return;
    }
    match crate::state::load_job(target, &st).await {
        Ok(Some(job)) if job.phase == "done" => risks.push(risk(
            "job_exists",
            "blocker",
            format!("job {}", settings.job),
            format!(
                "job \"{}\" already finished on this target: the same `copy` command stops with \"already finished\"; add \
                 --restart (with --schema recreate) or use another --job",
                settings.job
            ),
        )),
        Ok(Some(job)) => risks.push(risk(
            "job_exists",
            "warning",
            format!("job {}", settings.job),
            format!(
                "job \"{}\" exists on this target (phase {}): `copy` with the same settings resumes it; other settings are \
                 refused unless --restart",
                settings.job, job.phase
            ),
        )),
        _ => {}
    }
}

/// The source's checks, by its kind.
pub async fn source(
    inp: &Inputs<'_>,
    tables: &[TablePlan],
    checks: &mut Vec<Check>,
    risks: &mut Vec<Risk>,
) {
    match &inp.settings.source {
        SourceUrl::Postgres(url) => {
            pg_source(url, inp.catalog, inp.settings, inp.target, checks, risks).await
        }
        SourceUrl::Mysql(url) => my_source(url, inp.settings, tables, checks, risks).await,
    }
}

/// Source PostgreSQL: connections, encodings, collation, SELECT privileges, row-level security.
async fn pg_source(
    url: &PgUrl,
    catalog: &Catalog,
    settings: &CopySettings,
    target: &TargetInfo,
    checks: &mut Vec<Check>,
    risks: &mut Vec<Risk>,
) {
    let client = match connect(url, Side::Source).await {
        Ok(c) => c,
        Err(e) => {
            checks.push(check("source", "unknown", e.to_string()));
            return;
        }
    };
    let row = client
        .query_one(
            "SELECT current_setting('max_connections')::int8, current_setting('superuser_reserved_connections')::int8, \
               (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'), \
               pg_encoding_to_char(d.encoding)::text, d.datcollate::text, \
               coalesce((SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = current_user), false), \
               coalesce((SELECT rolsuper FROM pg_roles WHERE rolname = current_user), false) \
             FROM pg_database d WHERE d.datname = current_database()",
            &[],
        )
        .await;
    let row = match row {
        Ok(r) => r,
        Err(e) => {
            checks.push(check("source", "unknown", db_reason(&e)));
            return;
        }
    };
    let get_i = |i: usize| row.try_get::<_, i64>(i).unwrap_or(0);
    let get_s = |i: usize| row.try_get::<_, String>(i).unwrap_or_default();
    let (max, reserved, in_use) = (get_i(0), get_i(1), get_i(2));
    let (encoding, collate) = (get_s(3), get_s(4));
    let bypass_rls = row.try_get::<_, bool>(5).unwrap_or(false);
    let superuser = row.try_get::<_, bool>(6).unwrap_or(false);
    // Readers, the session holding the exported snapshot, and the one checking it.
    let need = settings.jobs as i64 + 2;
    // This plan holds two source sessions now (planning and this check).
    let free = max - if superuser { 0 } else { reserved } - (in_use - 2).max(0);
    let detail = format!(
        "the copy opens up to {need} source sessions (--jobs {} readers + 2); max_connections = {max}, {reserved} reserved \
         for superusers, {} in use besides this plan's: {free} free",
        settings.jobs,
        (in_use - 2).max(0)
    );
    sessions(
        checks,
        risks,
        &Sessions {
            check: "connections_source",
            subject: "source max_connections",
            need,
            free,
            detail,
            advice: "",
        },
    );
    if encoding != target.encoding {
        let detail = format!(
            "source encoding {encoding}, target {}: text is converted through the client encoding{}",
            target.encoding,
            if encoding == "SQL_ASCII" {
                "; SQL_ASCII stores unchecked bytes, and any that are not valid in the target's encoding fail their chunk"
            } else {
                "; characters the target's encoding cannot hold fail their chunk"
            }
        );
        checks.push(check("encoding", "warning", detail.clone()));
        risks.push(risk("encoding", "warning", "database encoding", detail));
    } else {
        checks.push(check(
            "encoding",
            "ok",
            format!("source and target are both {encoding}"),
        ));
    }
    if collate != target.collate {
        risks.push(risk(
            "collation",
            "info",
            "database collation",
            format!(
                "source collation {collate}, target {}: text sorts differently (ORDER BY, range queries); indexes are built \
                 on the target, so they are consistent there",
                target.collate
            ),
        ));
    }
    source_privileges(&client, catalog, bypass_rls, checks, risks).await;
    risks.push(risk(
        "source_snapshot",
        "info",
        "source",
        "the copy holds one snapshot (and ACCESS SHARE locks) on the source for its whole run: VACUUM cannot remove rows \
         deleted meanwhile, and ALTER/TRUNCATE of the selected tables wait for the copy",
    ));
}

/// SELECT on every selected PostgreSQL table and its sequences, and row-level security that
/// would filter what the copy reads (unless the role bypasses it).
async fn source_privileges(
    client: &Client,
    catalog: &Catalog,
    bypass_rls: bool,
    checks: &mut Vec<Check>,
    risks: &mut Vec<Risk>,
) {
    let oids: Vec<u32> = catalog.tables.iter().map(|t| t.oid).collect();
    let denied: Vec<String> = client
        .query(
            "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.oid = ANY($1) AND NOT has_table_privilege(c.oid, 'SELECT') \
             UNION ALL SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             JOIN pg_depend d ON d.objid = c.oid AND d.classid = 'pg_class'::regclass AND d.refobjid = ANY($1) \
             WHERE c.relkind = 'S' AND NOT has_sequence_privilege(c.oid, 'SELECT')",
            &[&oids],
        )
        .await
        .map(|rows| rows.iter().filter_map(|r| r.try_get(0).ok()).collect())
        .unwrap_or_default();
    if denied.is_empty() {
        checks.push(check(
            "privileges_source",
            "ok",
            "SELECT on every selected table and its sequences",
        ));
    } else {
        let detail = format!("no SELECT on {}", denied.join(", "));
        checks.push(check("privileges_source", "problem", detail.clone()));
        risks.push(risk("privileges", "blocker", "source role", detail));
    }
    if !bypass_rls {
        let rls: Vec<String> = client
            .query(
                "SELECT format('%I.%I', n.nspname, c.relname) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                 WHERE c.oid = ANY($1) AND c.relrowsecurity \
                   AND (c.relforcerowsecurity OR NOT pg_has_role(c.relowner, 'USAGE'))",
                &[&oids],
            )
            .await
            .map(|rows| rows.iter().filter_map(|r| r.try_get(0).ok()).collect())
            .unwrap_or_default();
        for t in rls {
            risks.push(risk(
                "row_level_security",
                "blocker",
                t,
                "row-level security applies to this role: the copy reads with row_security = off and fails rather than copy \
                 a filtered table; copy as the owner, a superuser or a BYPASSRLS role",
            ));
        }
    }
}

/// Source MySQL: connections and SELECT on every table.
async fn my_source(
    url: &MyUrl,
    settings: &CopySettings,
    tables: &[TablePlan],
    checks: &mut Vec<Check>,
    risks: &mut Vec<Risk>,
) {
    let mut conn = match crate::connect::connect_mysql(url).await {
        Ok(c) => c,
        Err(e) => {
            checks.push(check("source", "unknown", e.to_string()));
            return;
        }
    };
    let max: Option<u64> = conn
        .query_first("SELECT @@max_connections")
        .await
        .ok()
        .flatten();
    let used: Option<(String, u64)> = conn
        .query_first("SHOW GLOBAL STATUS LIKE 'Threads_connected'")
        .await
        .ok()
        .flatten();
    let need = settings.jobs as u64 + 1;
    match (max, used) {
        (Some(max), Some((_, used))) => {
            // This plan holds two sessions now (planning and this check).
            let others = used.saturating_sub(2);
            let free = max.saturating_sub(others);
            let detail = format!(
                "the copy opens up to {need} source sessions (--jobs {} readers + 1 planning session); max_connections = {max}, \
                 {others} in use besides this plan's: {free} free",
                settings.jobs
            );
            sessions(
                checks,
                risks,
                &Sessions {
                    check: "connections_source",
                    subject: "source max_connections",
                    need: i64::try_from(need).unwrap_or(i64::MAX),
                    free: i64::try_from(free).unwrap_or(i64::MAX),
                    detail,
                    advice: "",
                },
            );
        }
        _ => checks.push(check(
            "connections_source",
            "unknown",
            "could not read max_connections and Threads_connected",
        )),
    }
    let mut denied = Vec::new();
    for t in tables {
        let name = t
            .source
            .rsplit_once('.')
            .map_or(t.source.as_str(), |(_, n)| n);
        let sql = format!(
            "SELECT * FROM {} LIMIT 0",
            crate::chunking::mysql_read::quote_my(name)
        );
        if let Err(e) = conn.query_drop(sql).await {
            denied.push(format!("{}: {e}", t.source));
        }
    }
    if denied.is_empty() {
        checks.push(check(
            "privileges_source",
            "ok",
            "SELECT on every selected table (each read with LIMIT 0)",
        ));
    } else {
        let detail = denied.join("; ");
        checks.push(check("privileges_source", "problem", detail.clone()));
        risks.push(risk("privileges", "blocker", "source user", detail));
    }
}
