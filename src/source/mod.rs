//! Readers that stream table chunks out of a source database: PostgreSQL (binary COPY, tuples
//! passed through) or MySQL/MariaDB (rows converted to PostgreSQL tuples).

pub mod mysql;
pub mod mysql_convert;
pub mod postgres;

use std::sync::Arc;

use tokio::sync::mpsc;

use crate::batch::Piece;
use crate::catalog::Table;
use crate::chunking::mysql_read::MyTablePlan;
use crate::chunking::ChunkRange;
use crate::config::Policies;
use crate::conninfo::mysql::MyUrl;
use crate::conninfo::PgUrl;
use crate::error::{Error, Result};
use crate::metrics::ChunkMetrics;
use mysql::MyReader;
use postgres::PgReader;

/// Where rows come from, with what a lane needs to open a reader.
#[derive(Debug, Clone)]
pub enum Source {
    /// A PostgreSQL database.
    Postgres {
        /// Connection.
        url: PgUrl,
        /// Snapshots readers try to import, in order.
        snapshots: Vec<String>,
        /// How mapped tables are read, by table number (`None`: as the target table).
        reads: Arc<Vec<Option<postgres::PgRead>>>,
    },
    /// A MySQL or MariaDB database.
    Mysql {
        /// Connection.
        url: MyUrl,
        /// Zero dates and NUL bytes.
        policies: Policies,
        /// How to read each table of the plan (by table number).
        tables: Arc<Vec<Option<MyTablePlan>>>,
    },
}

/// A reader of either kind.
pub enum Reader {
    /// PostgreSQL.
    Pg(PgReader),
    /// MySQL/MariaDB.
    My(MyReader),
}

impl Reader {
    /// The snapshot a PostgreSQL reader reads in (see [`PgReader::snapshot`]).
    pub fn snapshot(&self) -> Option<&str> {
        match self {
            Reader::Pg(r) => Some(r.snapshot()),
            Reader::My(_) => None,
        }
    }

    /// Opens a source session ready to read chunks (in the run's snapshot).
    pub async fn open(source: &Source) -> Result<Self> {
        Ok(match source {
            Source::Postgres { url, snapshots, .. } => {
                Reader::Pg(PgReader::open(url, snapshots).await?)
            }
            Source::Mysql { url, policies, .. } => {
                Reader::My(MyReader::open(url, policies.clone()).await?)
            }
        })
    }

    /// Streams chunk `range` of table number `t` into `tx`, after `resume_after` if given.
    #[allow(clippy::too_many_arguments)]
    pub async fn read_chunk(
        &mut self,
        source: &Source,
        t: usize,
        table: &Table,
        range: &ChunkRange,
        resume_after: Option<&[String]>,
        batch_bytes: usize,
        tx: mpsc::Sender<Piece>,
        metrics: &ChunkMetrics,
    ) -> Result<ReadStats> {
        match (self, source) {
            (Reader::Pg(r), source) => {
                let read = match source {
                    Source::Postgres { reads, .. } => reads.get(t).and_then(Option::as_ref),
                    Source::Mysql { .. } => None,
                };
                r.read_chunk(table, read, range, resume_after, batch_bytes, tx, metrics)
                    .await
            }
            (Reader::My(r), Source::Mysql { tables, .. }) => {
                let plan = tables
                    .get(t)
                    .and_then(Option::as_ref)
                    .ok_or_else(|| Error::Internal(format!("no read plan for {}", table.name)))?;
                r.read_chunk(plan, table, range, resume_after, batch_bytes, tx, metrics)
                    .await
            }
            (Reader::My(_), _) => Err(Error::Internal(
                "a MySQL reader for a PostgreSQL source".into(),
            )),
        }
    }
}

/// What reading one chunk produced.
#[derive(Debug, Clone, Copy, Default)]
pub struct ReadStats {
    /// Tuples read.
    pub rows: u64,
    /// Bytes of tuple data read (without COPY header and trailer).
    pub bytes: u64,
    /// Source rows kept out of the batches (a value could not be converted).
    pub rejected: u64,
}
