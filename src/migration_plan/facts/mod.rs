//! What the plan learns from the source, one file per source kind (`pg.rs`, `mysql.rs`):
//! names, sizes, what is left out or created besides tables, every column's line, value
//! policies and chunk counts; then the bounded probes of its values and read speed.
//!
//! Invariants: this is where the plan reads the source by its kind (elsewhere the kind only
//! picks a pre-flight check, a risk's wording or a command's URL); everything here reads,
//! never writes; per-table vectors are indexed by table number like the catalog.

mod mysql;
mod pg;

use super::model::{ColumnPlan, Object, Probe, Throughput};
use super::probe;
use crate::catalog::mysql::MySchema;
use crate::catalog::{Catalog, Table, TargetFacts};
use crate::config::CopySettings;
use crate::error::Result;
use crate::mapping::TableMapping;
use crate::prepare::Origin;

/// Per-source facts the sections share.
pub(super) struct SourceFacts {
    /// `PostgreSQL`, `MySQL` or `MariaDB`.
    pub product: String,
    /// The server's version string.
    pub version: String,
    /// Per table: its name on the source.
    pub source_names: Vec<String>,
    /// Per table: its index bytes on the source.
    pub index_bytes: Vec<i64>,
    /// Source objects the copy does not migrate.
    pub out_of_scope: Vec<Object>,
    /// Objects created on the target besides tables.
    pub also_created: Vec<Object>,
    /// Per table: its column lines.
    pub columns: Vec<Vec<ColumnPlan>>,
    /// What the conversion changes or leaves behind (MySQL sources).
    pub notes: Vec<String>,
    /// Per table: the chunks the copy would cut.
    pub chunking: Vec<Chunking>,
    /// Where the sizes and row counts come from.
    pub size_method: &'static str,
    /// Value policies in force (MySQL sources).
    pub policies: Vec<String>,
    /// The MySQL catalog as read (MySQL sources only), for the value probes.
    pub my_schema: Option<MySchema>,
}

/// How the copy would cut one table.
#[derive(Debug, Clone, Copy)]
pub(super) struct Chunking {
    /// Chunks.
    pub chunks: usize,
    /// The count comes from the row estimate, not from the key's values.
    pub estimated: bool,
    /// `keyset`, `ctid`, `whole` or `none`.
    pub kind: &'static str,
}

impl Chunking {
    /// A table with no storage of its own (or no read plan): nothing to copy.
    const NONE: Chunking = Chunking {
        chunks: 0,
        estimated: false,
        kind: "none",
    };
}

/// Reads the facts of the source in `origin`, in its planning session.
pub(super) async fn collect(
    origin: &mut Origin,
    catalog: &Catalog,
    maps: &[Option<TableMapping>],
    facts: &TargetFacts,
    settings: &CopySettings,
) -> Result<SourceFacts> {
    let mut src = match origin {
        Origin::Pg { client, .. } => pg::facts(client, catalog, maps, facts).await?,
        Origin::My { conn, url, plan } => {
            mysql::facts(conn, &url.database, plan, catalog, maps, settings).await?
        }
    };
    // The chunks each table would be cut into, as `copy` cuts them.
    let lane_share = crate::chunking::order::lane_share(&catalog.tables, settings.jobs);
    for (i, t) in catalog.tables.iter().enumerate() {
        let chunk_rows = settings
            .chunk_rows
            .unwrap_or_else(|| crate::chunking::order::auto_chunk_rows(t, lane_share));
        let chunking = match origin {
            _ if !t.has_storage() => Chunking::NONE,
            Origin::Pg { client, .. } => {
                let read = maps[i].as_ref().map_or(t, |m| &m.read);
                pg::chunking(client, t, i, read, chunk_rows, catalog.server_version_num).await?
            }
            Origin::My { conn, plan, .. } => mysql::chunking(conn, plan, t, i, chunk_rows).await?,
        };
        src.chunking.push(chunking);
    }
    Ok(src)
}

/// What the probes found.
pub(super) struct Probes {
    /// Problem-value counts.
    pub probes: Vec<Probe>,
    /// What the value probes read and how they were bounded.
    pub method: String,
    /// The read-throughput probe, when anything could be read.
    pub throughput: Option<Throughput>,
}

/// Runs the value and throughput probes, each on a session of its own and bounded in rows
/// and time; a probe that fails is reported in its result, never an error.
pub(super) async fn probe(
    origin: &Origin,
    catalog: &Catalog,
    maps: &[Option<TableMapping>],
    src: &mut SourceFacts,
    settings: &CopySettings,
) -> Probes {
    match origin {
        Origin::Pg { url, .. } => Probes {
            probes: probe::pg_values(url, catalog, maps).await,
            method: probe::PG_METHOD.to_string(),
            throughput: probe::pg_throughput(url, catalog, maps).await,
        },
        Origin::My { url, plan, .. } => {
            let schema = src.my_schema.take().unwrap_or_default();
            Probes {
                probes: probe::my_values(url, &schema, plan, settings).await,
                method: probe::my_method(&schema),
                throughput: probe::my_throughput(url, catalog, plan, settings).await,
            }
        }
    }
}

/// The column lines of a mapped table; `source_type` renders a source column's type and
/// `risk_of` adds a column's conversion risk (by source column name).
pub(super) fn mapped_lines(
    t: &Table,
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
