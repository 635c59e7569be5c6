//! Copying a PostgreSQL source's large objects on the lanes, chunk by chunk.
//!
//! Each lane holds a source reader in the job's snapshot and a target writer, claims an open
//! chunk of objects (see [`crate::state::large_objects`]), and joins a reader that streams the
//! chunk's objects in pieces to the writer through a channel of [`CHANNEL_PIECES`] pieces: at
//! most that many pieces of [`lo_source::PIECE_BYTES`] are in memory per lane, whatever an object's size.
//! A chunk commits with its done mark ([`LoWriter::commit_chunk`]); a rerun copies the chunks
//! that are not done, and never a done one again.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::config::CopySettings;
use crate::connect::{connect, Side};
use crate::error::{Error, Result};
use crate::sink::large_objects::{LoOptions, LoWriter};
use crate::sink::postgres::PgWriter;
use crate::source::large_objects as lo_source;
use crate::source::postgres::PgReader;
use crate::source::Source;
use crate::state::large_objects as lo_state;
use crate::state::StateRef;

/// Pieces in flight between a lane's reader and writer.
pub const CHANNEL_PIECES: usize = 4;

/// What the job's large objects came to.
#[derive(Debug, Clone, Default)]
pub struct LoReport {
    /// Chunks of objects in the job.
    pub chunks: i64,
    /// Objects copied (by every worker and run of the job).
    pub objects: i64,
    /// Bytes copied (by every worker and run of the job).
    pub bytes: i64,
    /// Chunks this run copied.
    pub own_chunks: i64,
    /// This run's time on them.
    pub time: Duration,
}

/// How many objects a chunk holds: enough chunks for every lane to have several (so a few
/// huge objects do not leave lanes idle), at most 1,000 objects (so a resume redoes little).
pub fn objects_per_chunk(objects: usize, lanes: usize) -> usize {
    (objects / (lanes.max(1) * 8)).clamp(1, 1000)
}

/// Copies every open chunk of large objects of the job on up to `settings.jobs` lanes;
/// `None` when the job has none. Stops between chunks when `stop` is set
/// ([`Error::Interrupted`], every finished chunk kept).
pub async fn run(
    settings: &CopySettings,
    source: &Source,
    st: &StateRef,
    stop: Arc<AtomicBool>,
) -> Result<Option<LoReport>> {
    let Source::Postgres { url, snapshots } = source else {
        return Ok(None);
    };
    let target = connect(&settings.target, Side::Target).await?;
    let (open, all) = lo_state::counts(&target, st).await?;
    if all == 0 {
        return Ok(None);
    }
    let started = Instant::now();
    let opts = LoOptions {
        owners: settings.owners,
        grants: settings.grants,
        replace: settings.schema == crate::schema::SchemaMode::Recreate,
    };
    let mut open = open;
    let mut own_chunks = 0;
    // Chunks another worker holds are locked by its transaction: wait for them, and take
    // over any whose worker dies (its lock goes with its connection).
    while open > 0 {
        own_chunks += lanes_once(settings, url, snapshots, st, opts, &stop, open).await?;
        open = lo_state::counts(&target, st).await?.0;
        if open > 0 {
            if stop.load(Ordering::Relaxed) {
                return Err(Error::Interrupted);
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }
    let (chunks, objects, bytes) = lo_state::done_totals(&target, st).await?;
    Ok(Some(LoReport {
        chunks,
        objects,
        bytes,
        own_chunks,
        time: started.elapsed(),
    }))
}

/// Runs up to `settings.jobs` lanes (no more than `open` chunks) until none finds a chunk to
/// claim; returns the chunks they copied. The first failure stops the others at their next
/// chunk and is returned, everything committed kept.
async fn lanes_once(
    settings: &CopySettings,
    url: &crate::conninfo::PgUrl,
    snapshots: &[String],
    st: &StateRef,
    opts: LoOptions,
    stop: &Arc<AtomicBool>,
    open: i64,
) -> Result<i64> {
    let lanes = (settings.jobs as i64).clamp(1, open.max(1)) as usize;
    let mut set = JoinSet::new();
    for _ in 0..lanes {
        let (settings, url, snapshots, st, stop) = (
            settings.clone(),
            url.clone(),
            snapshots.to_vec(),
            st.clone(),
            stop.clone(),
        );
        set.spawn(async move {
            let reader = PgReader::open(&url, &snapshots).await?;
            let writer = PgWriter::open(&settings.target, false, settings.lease_secs).await?;
            lane(&reader, &LoWriter::new(writer.client()), &st, opts, &stop).await
        });
    }
    let mut copied = 0;
    let mut failure: Option<Error> = None;
    while let Some(joined) = set.join_next().await {
        match joined {
            Ok(Ok(n)) => copied += n,
            Ok(Err(e)) => {
                stop.store(true, Ordering::Relaxed);
                failure.get_or_insert(e);
            }
            Err(e) => {
                stop.store(true, Ordering::Relaxed);
                failure.get_or_insert(Error::Internal(format!("a large-object lane: {e}")));
            }
        }
    }
    match failure {
        Some(e) => Err(e),
        None => Ok(copied),
    }
}

/// One lane: chunks until none is left or the user asks to stop; returns the chunks it copied.
async fn lane(
    reader: &PgReader,
    writer: &LoWriter<'_>,
    st: &StateRef,
    opts: LoOptions,
    stop: &AtomicBool,
) -> Result<i64> {
    let mut copied = 0;
    while !stop.load(Ordering::Relaxed) {
        let Some(chunk) = writer.begin(st).await? else {
            break;
        };
        let result = async {
            let objects = lo_source::metadata(reader.client(), &chunk).await?;
            let (tx, rx) = mpsc::channel(CHANNEL_PIECES);
            let (read, written) = tokio::join!(
                lo_source::read(reader.client(), &objects, tx),
                writer.write(&chunk, &objects, rx, opts)
            );
            // The reader's error explains a cut stream better than the writer's.
            read?;
            let written = written?;
            writer.commit_chunk(st, &chunk, written).await
        }
        .await;
        if let Err(e) = result {
            writer.rollback().await;
            return Err(e);
        }
        copied += 1;
    }
    Ok(copied)
}
