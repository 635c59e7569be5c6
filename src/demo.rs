//! `howdah demo`: builds a demo shop database on a local server, copies it into a second one
//! with progress and metrics, and checks the row counts table by table.
//!
//! The two databases are `<prefix>_src` and `<prefix>_dst`. They are dropped and created
//! again on every run, but only if an earlier demo created them (their comment says so), so
//! the demo never drops a database it does not own.

use std::fmt::Write as _;
use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use tokio_postgres::Client;

use crate::catalog::{quote_ident, quote_literal};
use crate::config::CopySettings;
use crate::connect::{connect, Side};
use crate::conninfo::PgUrl;
use crate::copy::CopyOutcome;
use crate::error::{db_reason, Error, Result};
use crate::progress::Terminal;

/// The demo shop: an enum, three tables (one without a key), indexes, a foreign key, a view.
pub const DEMO_SQL: &str = include_str!("../configs/demo/source.sql");

/// Marks the databases a demo created, so a later demo may drop them.
const MARK: &str = "created by howdah demo";

/// What a demo did.
pub struct DemoOutcome {
    /// The copy.
    pub copy: CopyOutcome,
    /// Per table: name, source rows, target rows.
    pub counts: Vec<(String, i64, i64)>,
    /// The source and target URLs (without password).
    pub source: PgUrl,
    /// The target.
    pub target: PgUrl,
}

impl DemoOutcome {
    /// Whether every table holds as many rows on the target as on the source.
    pub fn counts_match(&self) -> bool {
        self.counts.iter().all(|(_, a, b)| a == b)
    }
}

/// Creates the demo databases through `server` (any database of the server, for the admin
/// statements), loads the shop, copies it with `settings`, and counts rows on both sides.
/// `settings` come from the `copy` flags; their source and target are replaced.
pub async fn run(
    server: &PgUrl,
    prefix: &str,
    mut settings: CopySettings,
    stop: Arc<AtomicBool>,
    terminal: Terminal,
) -> Result<DemoOutcome> {
    let (src, dst) = (format!("{prefix}_src"), format!("{prefix}_dst"));
    let admin = connect(server, Side::Target).await?;
    for db in [&src, &dst] {
        recreate(&admin, db).await?;
    }
    let source = server.with_dbname(&src);
    let target = server.with_dbname(&dst);
    let load = connect(&source, Side::Target).await?;
    load.batch_execute(DEMO_SQL)
        .await
        .map_err(|e| Error::Query {
            what: format!("loading the demo shop into {src}"),
            reason: db_reason(&e),
        })?;
    drop(load);
    tracing::info!("demo shop loaded into {source}; copying it into {target}");
    let app = settings.target.application_name.clone();
    let mut src_url = source.clone();
    src_url.application_name = app.clone();
    settings.source = crate::config::SourceUrl::Postgres(src_url);
    settings.target = target.clone();
    settings.target.application_name = app;
    let copy = crate::copy::run(&settings, stop, terminal).await?;

    let (a, b) = (
        connect(&source, Side::Source).await?,
        connect(&target, Side::Target).await?,
    );
    let mut counts = Vec::new();
    for t in &copy.tables {
        let sql = format!("SELECT count(*) FROM {}", t.quoted());
        counts.push((
            t.to_string(),
            count_rows(&a, &sql, &format!("counting rows of {t} on the source")).await?,
            count_rows(&b, &sql, &format!("counting rows of {t} on the target")).await?,
        ));
    }
    Ok(DemoOutcome {
        copy,
        counts,
        source,
        target,
    })
}

async fn count_rows(client: &Client, sql: &str, what: &str) -> Result<i64> {
    client
        .query_one(sql, &[])
        .await
        .map(|r| r.get::<_, i64>(0))
        .map_err(|e| Error::Query {
            what: what.to_string(),
            reason: db_reason(&e),
        })
}

/// Drops `db` if an earlier demo created it, then creates it with the demo's mark.
async fn recreate(admin: &Client, db: &str) -> Result<()> {
    let fail = |what: String| {
        move |e: tokio_postgres::Error| Error::Query {
            what: what.clone(),
            reason: db_reason(&e),
        }
    };
    let row = admin
        .query_opt(
            "SELECT coalesce(shobj_description(oid, 'pg_database'), '') FROM pg_database WHERE datname = $1",
            &[&db],
        )
        .await
        .map_err(fail(format!("looking for database {db}")))?;
    if let Some(row) = row {
        let comment: String = row.get(0);
        if comment != MARK {
            return Err(Error::Config(format!(
                "database {db} exists and was not created by howdah demo; the demo drops and \
                 re-creates its databases, so pick another --prefix"
            )));
        }
        admin
            .batch_execute(&format!("DROP DATABASE {} WITH (FORCE)", quote_ident(db)))
            .await
            .map_err(fail(format!("dropping the earlier demo database {db}")))?;
    }
    // CREATE DATABASE cannot share a (implicit) transaction with another statement.
    admin
        .batch_execute(&format!("CREATE DATABASE {}", quote_ident(db)))
        .await
        .map_err(fail(format!("creating database {db}")))?;
    admin
        .batch_execute(&format!(
            "COMMENT ON DATABASE {} IS {}",
            quote_ident(db),
            quote_literal(MARK)
        ))
        .await
        .map_err(fail(format!("marking database {db} as the demo's")))?;
    Ok(())
}

/// The demo's report: the copy summary, the row counts, and where to look next.
pub fn report(outcome: &DemoOutcome, settings: &CopySettings) -> String {
    let mut out = crate::copy::summary(&outcome.copy);
    out.push_str("\n\nrow counts, source against target:\n");
    for (t, a, b) in &outcome.counts {
        let verdict = if a == b { "ok  " } else { "DIFF" };
        let _ = writeln!(out, "  {verdict} {t}: {a} / {b}");
    }
    let _ = writeln!(
        out,
        "{}",
        if outcome.counts_match() {
            "row counts match on every table."
        } else {
            "ROW COUNTS DIFFER."
        }
    );
    out.push_str("\nwhere to look:\n");
    let _ = writeln!(
        out,
        "  the copy:  psql '{}' -c '\\d+ orders'",
        outcome.target
    );
    let _ = writeln!(
        out,
        "  its state: howdah status --target '{}'",
        outcome.target
    );
    match settings.metrics_addr {
        Some(addr) if settings.metrics_linger_secs > 0 => {
            let _ = writeln!(
                out,
                "  metrics:   http://{addr}/metrics (served for {} s more; configs/prometheus.yml and \
                 configs/grafana/ show them in Grafana)",
                settings.metrics_linger_secs
            );
        }
        Some(addr) => {
            let _ = writeln!(
                out,
                "  metrics:   were served on http://{addr}/metrics during the copy; add \
                 --metrics-linger-secs 600 to keep them up for Prometheus (configs/prometheus.yml) \
                 and Grafana (configs/grafana/), or run docker-compose up for all of it"
            );
        }
        None => {}
    }
    out.trim_end().to_string()
}
