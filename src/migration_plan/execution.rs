//! Section 6 and the rollback points of section 4: the exact commands, where to watch the
//! copy, how to verify it, and the SQL that removes what a copy left on the target.
//!
//! Invariants: a printed command never holds a password (URLs keep only the TLS parameters
//! they need, and a note says when one was left out); rollback SQL names only the selected
//! tables, the objects the copy creates and the job's own state.

use super::model::{ExecStep, Execution, RollbackPoint};
use super::CommandLine;
use crate::catalog::{quote_ident, quote_literal, Catalog, QualifiedName, TargetFacts};
use crate::config::{CopySettings, SourceUrl};
use crate::conninfo::mysql::{MySslMode, MyUrl};
use crate::conninfo::{PgUrl, SslMode};
use crate::schema::SchemaMode;

/// Metrics address the plan proposes when the job file sets none.
pub const DEFAULT_METRICS_ADDR: &str = "127.0.0.1:9187";

/// Quotes a shell word when it needs it.
fn sh(word: &str) -> String {
    let safe = |c: char| c.is_ascii_alphanumeric() || "@%+=:,./_-".contains(c);
    if !word.is_empty() && word.chars().all(safe) {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// `url`, with `params` as its query string when there are any.
fn with_params(url: &str, params: &[String]) -> String {
    if params.is_empty() {
        url.to_string()
    } else {
        format!("{url}?{}", params.join("&"))
    }
}

/// A PostgreSQL URL for a command line: no password, but the TLS parameters it needs.
pub fn command_url_pg(url: &PgUrl) -> String {
    let mut params = Vec::new();
    let mode = match url.sslmode {
        SslMode::Disable => Some("disable"),
        SslMode::Allow => Some("allow"),
        SslMode::Prefer => None,
        SslMode::Require => Some("require"),
        SslMode::VerifyCa => Some("verify-ca"),
        SslMode::VerifyFull => Some("verify-full"),
    };
    if let Some(m) = mode {
        params.push(format!("sslmode={m}"));
    }
    if let Some(ca) = &url.sslrootcert {
        params.push(format!("sslrootcert={}", ca.display()));
    }
    with_params(&url.to_string(), &params)
}

fn command_url_my(url: &MyUrl) -> String {
    let mut params = Vec::new();
    match url.ssl_mode {
        MySslMode::Disabled => {}
        MySslMode::Required => params.push("ssl-mode=required".to_string()),
        MySslMode::VerifyCa => params.push("ssl-mode=verify_ca".to_string()),
        MySslMode::VerifyIdentity => params.push("ssl-mode=verify_identity".to_string()),
    }
    if let Some(ca) = &url.ssl_ca {
        params.push(format!("ssl-ca={}", ca.display()));
    }
    with_params(&url.to_string(), &params)
}

/// The source URL for a command line (no password).
pub fn command_url_source(url: &SourceUrl) -> String {
    match url {
        SourceUrl::Postgres(u) => command_url_pg(u),
        SourceUrl::Mysql(u) => command_url_my(u),
    }
}

fn selection_flags(cmd: &CommandLine) -> String {
    let mut out = String::new();
    if let Some(c) = &cmd.config {
        out.push_str(&format!(" --config {}", sh(&c.display().to_string())));
    }
    for t in &cmd.tables {
        out.push_str(&format!(" --tables {}", sh(t)));
    }
    for t in &cmd.exclude {
        out.push_str(&format!(" --exclude {}", sh(t)));
    }
    out
}

/// The run book: commands with this plan's settings.
pub fn execution(
    settings: &CopySettings,
    cmd: &CommandLine,
    rollback: &[RollbackPoint],
) -> Execution {
    let src = sh(&command_url_source(&settings.source));
    let tgt = sh(&command_url_pg(&settings.target));
    let sel = selection_flags(cmd);
    let job = if settings.job == "default" {
        String::new()
    } else {
        format!(" --job {}", sh(&settings.job))
    };
    let metrics = settings
        .metrics_addr
        .map_or_else(|| DEFAULT_METRICS_ADDR.to_string(), |a| a.to_string());
    let index_jobs = if settings.index_jobs == settings.jobs {
        String::new()
    } else {
        format!(" --index-jobs {}", settings.index_jobs)
    };
    let copy_command = format!(
        "howdah copy --source {src} --target {tgt}{sel} --jobs {}{index_jobs}{job} --metrics-addr {metrics}",
        settings.jobs
    );
    let status_command = format!("howdah status --target {tgt} --job {}", sh(&settings.job));
    // verify reads the job's recorded default_sql/value_sql values under its name.
    let verify_command = format!("howdah verify --source {src} --target {tgt}{sel}{job}");
    // The application's own queries, same answers and no slower: the last check before a cutover.
    let (stats, stats_note) = match &settings.source {
        SourceUrl::Postgres(_) => (
            " --from-stats 20",
            " and the source's 20 top read queries of pg_stat_statements (when the extension is installed)",
        ),
        SourceUrl::Mysql(_) => ("", " (a MySQL text and a PostgreSQL text per query)"),
    };
    let check_queries_command =
        format!("howdah check-queries --source {src} --target {tgt} --queries queries.toml{stats}");
    let metrics_url = format!("http://{metrics}/metrics");
    let dashboard = "Grafana dashboard configs/grafana/dashboards/howdah.json (throughput by table, progress and ETA, chunks, \
        rejects, retries, backpressure, post-data steps) over a Prometheus that scrapes the endpoint (configs/prometheus.yml; \
        replace its targets with the metrics address); `docker-compose up` runs both (docs/docker.md)"
        .to_string();
    let rollback_sql = rollback.first().map(|r| r.undo.clone()).unwrap_or_default();
    let dry_run = format!("howdah copy --source {src} --target {tgt}{sel} --dry-run");
    let password_note = (settings.target.has_password() || source_has_password(&settings.source)).then(|| {
        "the commands leave passwords out: give them through PGPASSWORD or ~/.pgpass (PostgreSQL), MYSQL_PWD (MySQL), or \
         the whole URLs through HOWDAH_SOURCE / HOWDAH_TARGET or the job file's ${VAR} interpolation"
            .to_string()
    });
    let steps = vec![
        ExecStep {
            title: "Fix the blockers and warnings of section 5, then check the mappings".into(),
            command: Some(dry_run),
            note: "reads both catalogs and prints every table and the resolved mapping of every column; writes nothing".into(),
        },
        ExecStep {
            title: "Copy".into(),
            command: Some(copy_command.clone()),
            note: "exit 0: done; 1: failed chunks listed (fix and run the same command again); 2: flags or job file; 3: \
                   connection; 4: interrupted (run again to resume); 5: too many rejected rows"
                .into(),
        },
        ExecStep {
            title: "Watch progress".into(),
            command: Some(status_command.clone()),
            note: format!(
                "per table chunks done/running/pending, rows, rate, ETA and the last error; metrics at {metrics_url}"
            ),
        },
        ExecStep {
            title: "Resume after a crash, kill or Ctrl-C".into(),
            command: Some(copy_command.clone()),
            note: "the same command resumes each chunk after its last committed key; --restart forgets the job".into(),
        },
        ExecStep {
            title: "Verify".into(),
            command: Some(verify_command.clone()),
            note: "compares source and target after the mappings; also look at the rejected rows: \
                   SELECT * FROM howdah.rejects (or --rejects-file on the copy)"
                .into(),
        },
        ExecStep {
            title: "Check the application's queries before switching it over".into(),
            command: Some(check_queries_command),
            note: format!(
                "runs the read queries of queries.toml (format: configs/queries.toml){stats_note} on both sides, \
                 read-only: exit 1 when an answer differs or a query is over 2x slower on the target, with both plans \
                 and the index or statistics the target lacks"
            ),
        },
        ExecStep {
            title: "Roll back (only if the migration is abandoned)".into(),
            command: None,
            note: "run the rollback SQL of section 4 on the target".into(),
        },
    ];
    Execution {
        steps,
        copy_command,
        status_command,
        verify_command,
        metrics_url,
        dashboard,
        rollback_sql,
        password_note,
    }
}

fn source_has_password(url: &SourceUrl) -> bool {
    match url {
        SourceUrl::Postgres(u) => u.has_password(),
        SourceUrl::Mysql(u) => u.has_password(),
    }
}

/// `DROP ROUTINE` needs the name quoted and the argument list as it is.
fn routine_name(name: &QualifiedName) -> String {
    crate::schema::ddl::routine_signature(name)
}

/// SQL that drops what a `create` copy adds to the target: only objects absent now.
fn drop_sql(settings: &CopySettings, catalog: &Catalog, facts: &TargetFacts) -> String {
    let mut sql = vec!["BEGIN;".to_string()];
    // Foreign keys first: tables are then dropped one by one, dependents before what they
    // need (the reverse of the order the copy creates them in).
    for t in catalog
        .tables
        .iter()
        .filter(|t| !facts.tables.contains(&t.name))
    {
        for fk in &t.foreign_keys {
            sql.push(format!(
                "ALTER TABLE IF EXISTS {} DROP CONSTRAINT IF EXISTS {};",
                t.name.quoted(),
                quote_ident(&fk.name)
            ));
        }
    }
    for (kind, name) in crate::schema::ddl::created_objects(catalog)
        .into_iter()
        .rev()
    {
        use crate::schema::ddl::ObjectKind as K;
        let exists = match kind {
            K::Collation => facts.collations.contains(&name),
            K::Type => facts.types.contains(&name),
            K::Function => facts.functions.contains(&name),
            K::Table | K::Default(_) => facts.tables.contains(&name),
            K::Sequence | K::View | K::MaterializedView => facts.relations.contains(&name),
        };
        if exists {
            continue;
        }
        // A table's keys, indexes, constraints, triggers and owned sequences go with it.
        sql.push(match &kind {
            K::Function => format!("DROP ROUTINE IF EXISTS {};", routine_name(&name)),
            K::Default(column) => format!(
                "ALTER TABLE IF EXISTS {} ALTER COLUMN {} DROP DEFAULT;",
                name.quoted(),
                quote_ident(column)
            ),
            _ => format!("DROP {} IF EXISTS {};", kind.sql(), name.quoted()),
        });
    }
    let mut schemas: Vec<&str> = catalog
        .schemas
        .iter()
        .map(|s| s.name.as_str())
        .filter(|s| !facts.schemas.contains(*s))
        .collect();
    schemas.dedup();
    for s in schemas.iter().rev() {
        sql.push(format!("DROP SCHEMA IF EXISTS {};", quote_ident(s)));
    }
    for e in &catalog.extensions {
        if !facts.extensions.contains(&e.name) {
            sql.push(format!(
                "DROP EXTENSION IF EXISTS {};",
                quote_ident(&e.name)
            ));
        }
    }
    sql.push(state_cleanup(settings, facts));
    sql.push("COMMIT;".into());
    sql.join("\n")
}

/// Removes the job's state: the whole state schema when the copy creates it, else the job.
fn state_cleanup(settings: &CopySettings, facts: &TargetFacts) -> String {
    if facts.schemas.contains(&settings.state_schema) {
        format!(
            "DELETE FROM {}.jobs WHERE name = {};  -- the job's chunks, steps, workers and rejects go with it",
            quote_ident(&settings.state_schema),
            quote_literal(&settings.job)
        )
    } else {
        format!(
            "DROP SCHEMA IF EXISTS {} CASCADE;  -- howdah's state: jobs, chunks, steps, workers, rejects",
            quote_ident(&settings.state_schema)
        )
    }
}

/// What the target holds after each phase of the copy, and how to take it away.
pub fn rollback_points(
    settings: &CopySettings,
    catalog: &Catalog,
    facts: &TargetFacts,
) -> Vec<RollbackPoint> {
    let n = catalog.tables.len();
    match settings.schema {
        SchemaMode::Existing => {
            let undo = format!(
                "BEGIN;\nTRUNCATE ONLY {};\n{}\nCOMMIT;",
                catalog.storage_tables_sql(),
                state_cleanup(settings, facts)
            );
            vec![
                RollbackPoint {
                    after: "schema".into(),
                    left_on_target: format!(
                        "nothing is created (--schema existing){}; the job and its chunk plan in schema {}",
                        if settings.truncate { ", but the selected tables were emptied (--truncate)" } else { "" },
                        settings.state_schema
                    ),
                    undo: state_cleanup(settings, facts),
                },
                RollbackPoint {
                    after: "data".into(),
                    left_on_target: format!("rows copied so far in the {n} existing tables; rejected rows in {}.rejects", settings.state_schema),
                    undo: undo.clone(),
                },
                RollbackPoint {
                    after: "post_data".into(),
                    left_on_target: "every row copied, tables analyzed, sequences set (no keys or indexes are built in this mode)".into(),
                    undo,
                },
            ]
        }
        SchemaMode::Create | SchemaMode::Recreate => {
            let undo = drop_sql(settings, catalog, facts);
            let recreate = if settings.schema == SchemaMode::Recreate {
                " (--schema recreate dropped the previous tables of these names first: only a backup brings them back)"
            } else {
                ""
            };
            vec![
                RollbackPoint {
                    after: "schema".into(),
                    left_on_target: format!(
                        "schemas, collations, types, functions, sequences, the {n} tables (empty, without keys or indexes) and views, created in one \
                         transaction with the job and its chunk plan in schema {}{recreate}",
                        settings.state_schema
                    ),
                    undo: undo.clone(),
                },
                RollbackPoint {
                    after: "data".into(),
                    left_on_target: format!(
                        "the same, with the rows copied so far (each chunk commits with its checkpoint); tables whose data is in \
                         already have their keys and indexes; rejected rows in {}.rejects. Running the same copy command resumes instead",
                        settings.state_schema
                    ),
                    undo: undo.clone(),
                },
                RollbackPoint {
                    after: "post_data".into(),
                    left_on_target: "everything: keys, indexes, constraints, foreign keys, triggers, refreshed materialized views, \
                                     sequences set; the job marked done"
                        .into(),
                    undo,
                },
            ]
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(sh("postgres://u@h:5432/db"), "postgres://u@h:5432/db");
        assert_eq!(
            sh("postgres://u@h/db?sslmode=disable"),
            "'postgres://u@h/db?sslmode=disable'"
        );
        assert_eq!(sh("public.*"), "'public.*'");
        assert_eq!(sh("it's"), r"'it'\''s'");
        assert_eq!(sh(""), "''");
    }

    #[test]
    fn routines_are_dropped_by_signature() {
        let f = QualifiedName::new("my schema", "f(integer, text)");
        assert_eq!(routine_name(&f), "\"my schema\".\"f\"(integer, text)");
    }
}
