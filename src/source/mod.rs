//! Readers that stream table chunks out of a source database: PostgreSQL (binary COPY, tuples
//! passed through) or MySQL/MariaDB (rows converted to PostgreSQL tuples).

pub mod large_objects;
pub mod mysql;
pub mod mysql_convert;
pub mod postgres;

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

/// How one table is read, by source kind.
#[derive(Debug, Clone)]
pub enum TableRead {
    /// PostgreSQL: as the target table (`None`), or in a mapping's read shape.
    Postgres(Option<Box<postgres::PgRead>>),
    /// MySQL/MariaDB: the table's read plan.
    Mysql(MyTablePlan),
}

/// One chunk to read.
#[derive(Debug, Clone, Copy)]
pub struct ChunkRead<'a> {
    /// The table as the target holds it.
    pub table: &'a Table,
    /// How the source reads it.
    pub read: &'a TableRead,
    /// The chunk.
    pub range: &'a ChunkRange,
    /// Resume after this key (the chunk's last committed one).
    pub resume_after: Option<&'a [String]>,
    /// Tuple bytes per batch.
    pub batch_bytes: usize,
}

/// Where rows come from, with what a lane needs to open a reader.
#[derive(Debug, Clone)]
pub enum Source {
    /// A PostgreSQL database.
    Postgres {
        /// Connection.
        url: PgUrl,
        /// Snapshots readers try to import, in order.
        snapshots: Vec<String>,
    },
    /// A MySQL or MariaDB database.
    Mysql {
        /// Connection.
        url: MyUrl,
        /// Zero dates and NUL bytes.
        policies: Policies,
    },
}

/// A source to read from and how each of its tables (by number) is read, for code that reads
/// tables outside a copy's lanes (`verify`).
#[derive(Debug, Clone)]
pub struct Reading {
    /// The source.
    pub source: Source,
    /// Per table: how it is read (`None`: it has nothing to read).
    pub reads: Vec<Option<TableRead>>,
}

impl Reading {
    /// How table `t` is read.
    pub fn read(&self, t: usize, table: &Table) -> Result<&TableRead> {
        self.reads
            .get(t)
            .and_then(Option::as_ref)
            .ok_or_else(|| Error::Internal(format!("no read plan for {}", table.name)))
    }
}

/// A reader of either kind.
pub enum Reader {
    /// PostgreSQL.
    Pg(PgReader),
    /// MySQL/MariaDB.
    My(MyReader),
}

impl Reader {
    /// Opens a source session ready to read chunks (in the run's snapshot).
    pub async fn open(source: &Source) -> Result<Self> {
        Ok(match source {
            Source::Postgres { url, snapshots } => {
                Reader::Pg(PgReader::open(url, snapshots).await?)
            }
            Source::Mysql { url, policies } => {
                Reader::My(MyReader::open(url, policies.clone()).await?)
            }
        })
    }

    /// The snapshot a PostgreSQL reader reads in (see [`PgReader::snapshot`]).
    pub fn snapshot(&self) -> Option<&str> {
        match self {
            Reader::Pg(r) => Some(r.snapshot()),
            Reader::My(_) => None,
        }
    }

    /// Streams a chunk into `tx` (see the readers' `read_chunk`).
    pub async fn read_chunk(
        &mut self,
        req: &ChunkRead<'_>,
        tx: mpsc::Sender<Piece>,
        metrics: &ChunkMetrics,
    ) -> Result<ReadStats> {
        match (self, req.read) {
            (Reader::Pg(r), TableRead::Postgres(read)) => {
                r.read_chunk(req, read.as_deref(), tx, metrics).await
            }
            (Reader::My(r), TableRead::Mysql(plan)) => r.read_chunk(req, plan, tx, metrics).await,
            _ => Err(Error::Internal(format!(
                "{}: a read plan of another source kind than the reader",
                req.table.name
            ))),
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
