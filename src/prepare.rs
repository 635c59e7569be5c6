//! Opening a copy's source: its snapshot (PostgreSQL) or read plan (MySQL), its catalog in
//! target terms, and the job file's column mappings applied to both. `copy`, `verify` and
//! `plan` start here.

use std::collections::HashMap;

use tokio_postgres::Client;

use crate::catalog::{postgres as pgcat, Catalog, QualifiedName, Table};
use crate::chunking::mysql::MysqlPlan;
use crate::chunking::mysql_read::MyTablePlan;
use crate::config::{CopySettings, SourceUrl};
use crate::connect::{connect, Side};
use crate::conninfo::mysql::MyUrl;
use crate::conninfo::PgUrl;
use crate::error::{db_reason, Error, Result};
use crate::mapping::TableMapping;
use crate::state::values::SqlValues;

/// A source opened for a run: the session that planning uses, the catalog in target terms
/// (names and types after mappings) and how each table is read and transformed.
pub struct Prepared {
    /// The planning session.
    pub origin: Origin,
    /// Selected tables and the objects they need, as the target will hold them.
    pub catalog: Catalog,
    /// Per table (by number): its mapping, `None` when copied as it is.
    pub maps: Vec<Option<TableMapping>>,
    /// The value of every `default_sql`/`value_sql` expression the mappings use.
    pub sql_values: SqlValues,
}

/// Opens the source, reads its catalog (PostgreSQL: in a new exported snapshot), and applies
/// the job file's mappings; `target` is asked for PostGIS and evaluates the `default_sql` and
/// `value_sql` expressions that `recorded` (the job's values) does not hold.
pub async fn prepare(
    settings: &CopySettings,
    target: &Client,
    recorded: &SqlValues,
) -> Result<Prepared> {
    let (mut origin, mut catalog) = match &settings.source {
        SourceUrl::Postgres(url) => open_postgres(settings, url).await?,
        SourceUrl::Mysql(url) => open_mysql(settings, url, target).await?,
    };
    let (maps, sql_values) =
        map_tables(settings, &mut catalog, &mut origin, target, recorded).await?;
    Ok(Prepared {
        origin,
        catalog,
        maps,
        sql_values,
    })
}

/// Applies the job file's `[[table]]` and `[[cast]]` rules to the catalog (target names and
/// types) and to the MySQL read plans; returns how each table is read and transformed.
async fn map_tables(
    settings: &CopySettings,
    catalog: &mut Catalog,
    origin: &mut Origin,
    target: &Client,
    recorded: &SqlValues,
) -> Result<(Vec<Option<TableMapping>>, SqlValues)> {
    let n = catalog.tables.len();
    if settings.rules.is_empty() {
        return Ok((vec![None; n], SqlValues::new()));
    }
    // Per-run values (`default_sql`, `value_sql`) are the job's, else evaluated on the target.
    let mut sql_values = HashMap::new();
    for (expr, ty) in crate::mapping::sql_expressions(&settings.rules, catalog) {
        if let Some(v) = recorded.get(&(expr.clone(), ty.clone())) {
            sql_values.insert((expr, ty), v.clone());
            continue;
        }
        let sql = format!("SELECT (({expr})::{ty})::text");
        let row = target.query_one(&sql, &[]).await.map_err(|e| {
            Error::Config(format!(
                "{}: evaluating \"{expr}\" as {ty} on the target: {}",
                settings.rules.file,
                db_reason(&e)
            ))
        })?;
        let v: Option<String> = row.get(0);
        sql_values.insert((expr, ty), v.unwrap_or_default());
    }
    let source_names: Vec<QualifiedName> = match &*origin {
        Origin::Pg { .. } => catalog.tables.iter().map(|t| t.name.clone()).collect(),
        Origin::My { url, plan, .. } => (0..n)
            .map(|i| match plan.reads.get(i).and_then(Option::as_ref) {
                Some(r) => QualifiedName::new(url.database.as_str(), r.source.as_str()),
                None => catalog.tables[i].name.clone(),
            })
            .collect(),
    };
    let natural = catalog.tables.clone();
    let ctx = crate::mapping::Context {
        postgres_source: matches!(origin, Origin::Pg { .. }),
        job: &settings.job,
        source_names,
        sql_values: sql_values.clone(),
    };
    let maps = crate::mapping::apply(&settings.rules, catalog, &ctx)?;
    if let Origin::My { plan, .. } = origin {
        for (i, m) in maps.iter().enumerate() {
            let (Some(m), Some(Some(read))) = (m, plan.reads.get_mut(i)) else {
                continue;
            };
            let nat: Vec<&crate::catalog::Column> = natural[i].copy_columns().collect();
            let kept: Vec<String> = m.read.copy_columns().map(|c| c.name.clone()).collect();
            let mut cols = Vec::new();
            for (pos, col) in read.columns.iter().enumerate() {
                let Some(nc) = nat.get(pos) else { continue };
                let Some(at) = kept.iter().position(|k| *k == nc.name) else {
                    continue;
                };
                let mut col = col.clone();
                if matches!(m.read_as.get(at), Some(crate::mapping::ReadAs::Text(_))) {
                    use crate::typemap::mysql::Convert;
                    let zone = match &col.convert {
                        Convert::TimestampInZone { zone } => Some(zone.clone()),
                        Convert::TimestampTz => Some("UTC".to_string()),
                        _ => None,
                    };
                    col.convert = Convert::AsText {
                        date: nc.type_sql == "date",
                        boolean: col.convert == Convert::Bool,
                        zone,
                    };
                    // The transform decides what a NULL becomes.
                    col.not_null = false;
                }
                cols.push(col);
            }
            read.columns = cols;
            read.filter = m.filter.clone();
        }
    }
    Ok((maps, sql_values))
}

/// The source session that planning uses, by kind.
pub enum Origin {
    /// PostgreSQL: the session holding the exported snapshot (and the ACCESS SHARE locks).
    Pg {
        client: Client,
        url: PgUrl,
        snapshot: String,
    },
    /// MySQL/MariaDB: a planning session and the plan.
    My {
        conn: mysql_async::Conn,
        url: MyUrl,
        plan: Box<MysqlPlan>,
    },
}

impl Origin {
    /// The snapshot other workers of the job can import (PostgreSQL only).
    pub fn snapshot(&self) -> Option<&str> {
        match self {
            Origin::Pg { snapshot, .. } => Some(snapshot),
            Origin::My { .. } => None,
        }
    }

    /// What changes on the way or stays behind, one warning each (MySQL sources).
    pub fn notes(&self) -> Vec<String> {
        match self {
            Origin::My { plan, .. } => plan.notes.clone(),
            Origin::Pg { .. } => Vec::new(),
        }
    }

    /// Whether readers give each batch's last key as text (MySQL) rather than in the tuple.
    pub fn text_keys(&self) -> bool {
        matches!(self, Origin::My { .. })
    }

    /// Ends the session that holds the exported snapshot (and the source tables' ACCESS SHARE
    /// locks), once nothing of this run reads in it any more: the source's vacuum may then
    /// clean up behind it. `held` is how long the run has held it, for the log. A failed
    /// `ROLLBACK` does not matter: the session ends with the client either way.
    pub async fn release(self, held: std::time::Duration) {
        match self {
            Origin::Pg { client, .. } => {
                let _ = client.batch_execute("ROLLBACK").await;
                tracing::info!(
                    "source snapshot released after {:.1} s: every table's rows and the large \
                     objects are in (index builds and constraints go on without it)",
                    held.as_secs_f64()
                );
            }
            Origin::My { conn, .. } => {
                let _ = conn.disconnect().await;
            }
        }
    }

    /// The hint added when no table matched the patterns.
    pub fn pattern_hint(&self) -> &'static str {
        match self {
            Origin::My { .. } => " (for MySQL: database.table)",
            Origin::Pg { .. } => "",
        }
    }

    /// Cuts every table with storage into chunks (keyset ranges, block ranges or one whole
    /// chunk) of about `chunk_rows` rows, or the size that spreads the run over `jobs` lanes.
    pub async fn plan_chunks(
        &mut self,
        catalog: &Catalog,
        maps: &[Option<TableMapping>],
        chunk_rows: Option<u64>,
        jobs: usize,
    ) -> Result<Vec<crate::chunking::Chunk>> {
        use crate::chunking::order;
        let mut chunks = Vec::new();
        let lane_share = order::lane_share(&catalog.tables, jobs);
        for (i, table) in catalog.tables.iter().enumerate() {
            if !table.has_storage() {
                continue;
            }
            let rows = chunk_rows.unwrap_or_else(|| order::auto_chunk_rows(table, lane_share));
            let read = maps[i].as_ref().map_or(table, |m| &m.read);
            let planned = self
                .plan_table(i, read, table, rows, catalog.server_version_num)
                .await?;
            chunks.extend(planned);
        }
        Ok(chunks)
    }

    /// Cuts table `i` (read from the source as `read`, `table` on the target) into chunks of
    /// about `chunk_rows` rows; a MySQL table without a read plan has none.
    pub async fn plan_table(
        &mut self,
        i: usize,
        read: &Table,
        table: &Table,
        chunk_rows: u64,
        server_version_num: i32,
    ) -> Result<Vec<crate::chunking::Chunk>> {
        match self {
            Origin::Pg { client, .. } => {
                crate::chunking::chunks::plan_table(client, read, i, chunk_rows, server_version_num)
                    .await
            }
            Origin::My { conn, plan, .. } => match plan.reads.get(i).and_then(Option::as_ref) {
                Some(r) => crate::chunking::mysql::plan_chunks(conn, r, table, i, chunk_rows).await,
                None => Ok(Vec::new()),
            },
        }
    }

    /// The planning session when the source is a PostgreSQL server, for what only one can
    /// answer in its own terms (hashing rows in the server, its collations).
    pub fn postgres(&self) -> Option<&Client> {
        match self {
            Origin::Pg { client, .. } => Some(client),
            Origin::My { .. } => None,
        }
    }

    /// Table `i`'s MySQL read plan (`None` for PostgreSQL sources and tables without rows).
    pub fn mysql_read(&self, i: usize) -> Option<&MyTablePlan> {
        match self {
            Origin::My { plan, .. } => plan.reads.get(i).and_then(Option::as_ref),
            Origin::Pg { .. } => None,
        }
    }

    /// The steps that set sequences (PostgreSQL: to the source's values, for those `ours`
    /// accepts) or identities (MySQL: past the copied rows and `AUTO_INCREMENT`) after the data.
    pub async fn sequence_steps(
        &self,
        catalog: &Catalog,
        maps: &[Option<TableMapping>],
        ours: impl Fn(&crate::catalog::Sequence) -> bool,
    ) -> Result<Vec<crate::schema::Step>> {
        Ok(match self {
            Origin::Pg { client, .. } => {
                let own: Vec<_> = catalog
                    .sequences
                    .iter()
                    .filter(|s| ours(s))
                    .cloned()
                    .collect();
                pgcat::sequence_values(client, &own)
                    .await?
                    .iter()
                    .map(|(n, v, called)| crate::schema::ddl::setval(n, *v, *called))
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
        })
    }

    /// Where lanes read from: a PostgreSQL source's readers adopt the job's snapshot
    /// (`job_snapshot`) while the worker that exported it still runs (several workers then
    /// copy one image), else this run's own; sessions carry the worker's number.
    pub async fn reading(
        &self,
        settings: &CopySettings,
        job_snapshot: Option<String>,
        worker: i32,
    ) -> Result<crate::source::Source> {
        let mut snapshots = Vec::new();
        if let Origin::Pg { url, snapshot, .. } = self {
            if let Some(shared) = job_snapshot.filter(|s| s != snapshot) {
                if crate::source::postgres::PgReader::snapshot_alive(url, &shared).await? {
                    tracing::info!("joining the job's running copy: reading its snapshot {shared}");
                    snapshots.push(shared);
                } else {
                    tracing::info!(
                        "the job's first snapshot is gone (its worker ended): rows not yet copied are \
                         read in this worker's own snapshot"
                    );
                }
            }
        }
        let mut source = reading_source(self, settings, snapshots);
        if let crate::source::Source::Postgres { url, .. } = &mut source {
            url.application_name = format!("{}/{}", url.application_name, worker);
        }
        Ok(source)
    }
}

/// Opens a PostgreSQL source: exports the run's snapshot, reads and filters the catalog in it,
/// and locks the selected tables.
async fn open_postgres(settings: &CopySettings, url: &PgUrl) -> Result<(Origin, Catalog)> {
    let client = connect(url, Side::Source).await?;
    // The exporting transaction stays open until every lane has imported its snapshot, which
    // happens when lanes connect at the start of the pipeline; it is closed when `client` drops.
    let snapshot = export_snapshot(&client, settings.source_snapshot.as_deref()).await?;
    check_source_version(&client).await?;
    let mut catalog = pgcat::load(&client).await?;
    let all_tables: Vec<QualifiedName> = catalog.tables.iter().map(|t| t.name.clone()).collect();
    catalog.select(|name| settings.filter.matches(name));
    for pattern in settings.filter.unmatched_includes(&all_tables) {
        tracing::warn!("table pattern \"{pattern}\" matched no table of the source");
    }
    if !catalog.tables.is_empty() {
        lock_source_tables(&client, &catalog).await?;
    }
    Ok((
        Origin::Pg {
            client,
            url: url.clone(),
            snapshot,
        },
        catalog,
    ))
}

/// Opens a MySQL/MariaDB source: reads its catalog, maps it to PostgreSQL, and says what
/// changes on the way.
async fn open_mysql(
    settings: &CopySettings,
    url: &MyUrl,
    target: &Client,
) -> Result<(Origin, Catalog)> {
    let mut conn = crate::connect::connect_mysql(url).await?;
    // Spatial columns become PostGIS geometry when the target has the extension.
    let geometry: Option<String> = target
        .query_opt(
            "SELECT format('%I.geometry', n.nspname) FROM pg_extension e \
             JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'postgis'",
            &[],
        )
        .await
        .map_err(|e| Error::Query {
            what: "looking for PostGIS on the target".into(),
            reason: db_reason(&e),
        })?
        .map(|r| r.get(0));
    let schema = crate::catalog::mysql::load(&mut conn, &url.database).await?;
    let all: Vec<QualifiedName> = schema
        .tables
        .iter()
        .map(|t| QualifiedName::new(url.database.as_str(), t.name.as_str()))
        .collect();
    for pattern in settings.filter.unmatched_includes(&all) {
        tracing::warn!("table pattern \"{pattern}\" matched no table of the source");
    }
    let plan = crate::chunking::mysql::build(
        &schema,
        &settings.mysql,
        &settings.filter,
        geometry.as_deref(),
        settings.schema != crate::schema::SchemaMode::Existing,
    )?;
    tracing::info!(
        "MySQL source {} ({}): {} tables selected",
        url,
        schema.version,
        plan.catalog.tables.len()
    );
    for note in &plan.notes {
        tracing::warn!("{note}");
    }
    let catalog = plan.catalog.clone();
    Ok((
        Origin::My {
            conn,
            url: url.clone(),
            plan: Box::new(plan),
        },
        catalog,
    ))
}

/// Refuses sources whose catalogs the introspection queries do not know (before 13).
async fn check_source_version(source: &Client) -> Result<()> {
    let what = || "reading the source server version".to_string();
    let row = source
        .query_one(
            "SELECT current_setting('server_version_num')::int, current_setting('server_version')",
            &[],
        )
        .await
        .map_err(|e| Error::Query {
            what: what(),
            reason: db_reason(&e),
        })?;
    let num: i32 = row.try_get(0).map_err(|e| Error::Query {
        what: what(),
        reason: db_reason(&e),
    })?;
    let text: String = row.try_get(1).map_err(|e| Error::Query {
        what: what(),
        reason: db_reason(&e),
    })?;
    if num < 130000 {
        return Err(Error::Query {
            what: "checking the source server version".into(),
            reason: format!(
                "the source runs PostgreSQL {text}; howdah reads PostgreSQL 13 or later"
            ),
        });
    }
    Ok(())
}

/// Takes ACCESS SHARE locks on the selected tables in the exporting transaction, as pg_dump
/// does: until the copy ends, no TRUNCATE, ALTER TABLE or VACUUM FULL can change what the
/// snapshot promises the readers. Waits at most the session's lock_timeout.
///
/// The server's lock table is shared by all sessions (`max_locks_per_transaction` x
/// connections): one transaction may take a quarter of it. Beyond that, the largest tables
/// are locked (they are read longest) and the log names how many are not: DDL on those during
/// the copy would not wait for it.
async fn lock_source_tables(source: &Client, catalog: &Catalog) -> Result<()> {
    let budget = lock_budget(source).await?;
    let mut tables: Vec<&Table> = catalog.tables.iter().collect();
    if tables.len() > budget {
        tables.sort_by_key(|t| std::cmp::Reverse(t.size_bytes));
        tracing::warn!(
            "{} of the {} selected tables are not locked on the source: its lock table holds \
             {} locks per session's share (max_locks_per_transaction x connections / 4); a \
             TRUNCATE or ALTER TABLE on them during the copy would not wait for it (raise \
             max_locks_per_transaction on the source to lock every table)",
            tables.len() - budget,
            tables.len(),
            budget
        );
        tables.truncate(budget);
    }
    let names: Vec<String> = tables
        .iter()
        .map(|t| format!("ONLY {}", t.name.quoted()))
        .collect();
    if names.is_empty() {
        return Ok(());
    }
    source
        .batch_execute(&format!("LOCK TABLE {} IN ACCESS SHARE MODE", names.join(", ")))
        .await
        .map_err(|e| Error::Query {
            what: "locking the selected tables on the source (ACCESS SHARE, so that no TRUNCATE or \
                   ALTER TABLE changes them during the copy); another session holds or waits for an \
                   exclusive lock"
                .into(),
            reason: db_reason(&e),
        })
}

/// How many tables one transaction may lock on `source`: a quarter of its lock table.
async fn lock_budget(source: &Client) -> Result<usize> {
    let slots = pgcat::lock_slots(source).await?;
    Ok((slots / 4).max(1) as usize)
}

async fn export_snapshot(source: &Client, import: Option<&str>) -> Result<String> {
    let what = || "exporting a snapshot on the source (pg_export_snapshot)".to_string();
    let mut begin = String::from("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY");
    if let Some(s) = import {
        begin.push_str(&format!(
            "; SET TRANSACTION SNAPSHOT {}",
            crate::catalog::quote_literal(s)
        ));
    }
    source
        .batch_execute(&begin)
        .await
        .map_err(|e| Error::Query {
            what: what(),
            reason: db_reason(&e),
        })?;
    let row = source
        .query_one("SELECT pg_export_snapshot()", &[])
        .await
        .map_err(|e| Error::Query {
            what: what(),
            reason: db_reason(&e),
        })?;
    row.try_get(0).map_err(|e| Error::Query {
        what: what(),
        reason: db_reason(&e),
    })
}

/// What lanes read from: the source with its snapshots (PostgreSQL: `snapshots` first, then
/// the one `prepared` exported) or its value policies (MySQL).
pub fn reading_source(
    origin: &Origin,
    settings: &CopySettings,
    mut snapshots: Vec<String>,
) -> crate::source::Source {
    use crate::source::Source;
    match origin {
        Origin::Pg { url, snapshot, .. } => {
            snapshots.push(snapshot.clone());
            snapshots.dedup();
            Source::Postgres {
                url: url.clone(),
                snapshots,
            }
        }
        Origin::My { url, .. } => Source::Mysql {
            url: url.clone(),
            policies: crate::config::Policies {
                zero_dates: settings.mysql.zero_dates.clone().unwrap_or_default(),
                nul_bytes: settings.mysql.nul_bytes.unwrap_or_default(),
            },
        },
    }
}

/// How each table (by number) is read: a PostgreSQL table as the target table or in its
/// mapping's read shape; a MySQL table by its read plan (`None`: it has no rows to read).
pub fn table_reads(
    origin: &Origin,
    maps: &[Option<TableMapping>],
) -> Vec<Option<crate::source::TableRead>> {
    use crate::source::TableRead;
    match origin {
        Origin::Pg { .. } => maps
            .iter()
            .map(|m| {
                Some(TableRead::Postgres(m.as_ref().map(|m| {
                    Box::new(crate::source::postgres::PgRead {
                        table: m.read.clone(),
                        read_as: m.read_as.clone(),
                        filter: m.filter.clone(),
                    })
                })))
            })
            .collect(),
        Origin::My { plan, .. } => (0..maps.len())
            .map(|i| plan.reads.get(i).cloned().flatten().map(TableRead::Mysql))
            .collect(),
    }
}
