//! A copy lane: claims chunks from the job's state and copies them, source to target.
//!
//! A lane owns a source reader (on the run's snapshot) and a target writer; per chunk it joins
//! them through a bounded channel, so at most `channel_batches` batches of `batch_bytes` are in
//! memory per lane, whatever the table size. A chunk that fails on a transient error (see
//! [`crate::error::is_transient`]) is retried on new connections from its last committed
//! checkpoint, with backoff, as long as this worker still owns it.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::flow::ChunkFlow;
use super::{backoff, Event, Shared, MAX_ATTEMPTS};
use crate::connect::{connect, Side};
use crate::error::{Error, Result};
use crate::metrics::ChunkMetrics;
use crate::sink::postgres::{Checkpoint, ChunkTarget, LoadMode, PgWriter, WriteStats};
use crate::source::{ChunkRead, Reader};
use crate::state;

/// How long a lane with nothing to claim waits before it looks again (chunks running under
/// other workers may yet be handed back or taken over).
const IDLE_POLL: Duration = Duration::from_millis(500);

/// A lane's two connections.
struct Conns {
    reader: Reader,
    writer: PgWriter,
}

async fn open_conns(shared: &Shared) -> Result<Conns> {
    let settings = &shared.settings;
    let reader = Reader::open(&shared.source).await?;
    let quiet_triggers = settings.schema == crate::schema::SchemaMode::Existing;
    let writer = PgWriter::open(&settings.target, quiet_triggers, settings.lease_secs).await?;
    Ok(Conns { reader, writer })
}

/// Runs one lane until no chunk of the job is pending or running, or the user asks to stop.
pub(super) async fn run(shared: &Shared, events: &mpsc::Sender<Event>) -> Result<()> {
    let mut conns: Option<Conns> = None;
    let mut failures = 0u32;
    loop {
        if shared.stop.load(Ordering::Relaxed) {
            return Err(Error::Interrupted);
        }
        let c = match conns.as_mut() {
            Some(c) => c,
            None => match open_conns(shared).await {
                Ok(c) => conns.insert(c),
                Err(e) => {
                    wait_or_fail(e, &mut failures).await?;
                    continue;
                }
            },
        };
        // Claims are serialized within the process, so that a chunk another lane has just
        // claimed is in `busy` before this lane looks for chunks nobody here is on.
        let claimed = {
            let mut busy = shared.busy.lock().await;
            let list: Vec<(i32, i32)> = busy.iter().copied().collect();
            let claimed = state::claim_chunk(
                c.writer.client(),
                &shared.state,
                shared.worker,
                shared.settings.lease_secs,
                &list,
            )
            .await;
            if let Ok(Some(claim)) = &claimed {
                let key = (claim.chunk.table as i32, claim.chunk.ordinal as i32);
                if claim.token > 1 && claim.owner_before == Some(shared.worker) {
                    tracing::warn!(
                        "{} {} was left running by a lane of this worker; taking it up again from its last checkpoint",
                        shared.tables[claim.chunk.table].job.table.name,
                        claim.chunk.range
                    );
                }
                busy.insert(key);
            }
            claimed
        };
        let claim = match claimed {
            Ok(Some(claim)) => claim,
            Ok(None) => match state::open_chunks(c.writer.client(), &shared.state).await {
                Ok(0) => {
                    let _ = events.send(Event::LaneDone).await;
                    return Ok(());
                }
                Ok(_) => {
                    tokio::time::sleep(IDLE_POLL).await;
                    continue;
                }
                Err(e) => {
                    conns = None;
                    wait_or_fail(e, &mut failures).await?;
                    continue;
                }
            },
            Err(e) => {
                conns = None;
                wait_or_fail(e, &mut failures).await?;
                continue;
            }
        };
        failures = 0;
        shared.run_metrics.lanes_active.increment(1.0);
        let key = (claim.chunk.table as i32, claim.chunk.ordinal as i32);
        let copied = copy_claimed(shared, &mut conns, claim, events).await;
        shared.busy.lock().await.remove(&key);
        shared.run_metrics.lanes_active.decrement(1.0);
        copied?;
    }
}

/// Waits before the next try after a transient error outside a chunk; fails on any other
/// error, or after too many tries in a row.
async fn wait_or_fail(e: Error, failures: &mut u32) -> Result<()> {
    *failures += 1;
    if !e.is_transient() || *failures >= MAX_ATTEMPTS {
        return Err(e);
    }
    let wait = backoff(*failures);
    tracing::warn!("{e}; trying again in {:.1} s", wait.as_secs_f64());
    tokio::time::sleep(wait).await;
    Ok(())
}

/// Copies a claimed chunk to its end, with retries; reports it done or failed. Returns an
/// error only when the run must stop (Ctrl-C, `--fail-fast`, the coordinator gone).
async fn copy_claimed(
    shared: &Shared,
    conns: &mut Option<Conns>,
    mut claim: state::Claim,
    events: &mpsc::Sender<Event>,
) -> Result<()> {
    let started = Instant::now();
    let mut attempt = 0u32;
    loop {
        let result = match conns.as_mut() {
            Some(c) => copy_chunk(shared, c, &claim).await,
            None => match open_conns(shared).await {
                Ok(c) => {
                    let c = conns.insert(c);
                    // Where the failed attempt's last commit left the chunk, if it is still ours.
                    match state::resume_point(
                        c.writer.client(),
                        &shared.state,
                        &claim,
                        shared.worker,
                    )
                    .await
                    {
                        Ok(Some(last_key)) => {
                            claim.chunk.resume_after = last_key;
                            copy_chunk(shared, c, &claim).await
                        }
                        Ok(None) => {
                            tracing::warn!(
                                "{} {} was taken over by another lane or worker while this one retried",
                                shared.tables[claim.chunk.table].job.table.name,
                                claim.chunk.range
                            );
                            return Ok(());
                        }
                        Err(e) => Err(e),
                    }
                }
                Err(e) => Err(e),
            },
        };
        match result {
            Ok(_) => {
                shared.tables[claim.chunk.table]
                    .metrics
                    .chunk_duration
                    .record(started.elapsed().as_secs_f64());
                let done = Event::ChunkDone {
                    table: claim.chunk.table,
                    started,
                    retries: attempt,
                };
                let _ = events.send(done).await;
                return Ok(());
            }
            Err(e @ Error::LeaseLost { .. }) => {
                // Our open transaction holds rows the new owner copies too: drop it unsent.
                *conns = None;
                crate::metrics::error("lease_lost");
                tracing::warn!("{e}: its uncommitted rows here were rolled back");
                return Ok(());
            }
            Err(e)
                if e.is_transient()
                    && attempt + 1 < MAX_ATTEMPTS
                    && !shared.stop.load(Ordering::Relaxed) =>
            {
                attempt += 1;
                *conns = None;
                crate::metrics::error("transient");
                shared.tables[claim.chunk.table]
                    .metrics
                    .retries
                    .increment(1);
                let wait = backoff(attempt);
                tracing::warn!(
                    "{e}; retrying from the last checkpoint in {:.1} s (attempt {} of {MAX_ATTEMPTS})",
                    wait.as_secs_f64(),
                    attempt + 1
                );
                record_attempt(shared, &claim, &e.to_string(), false).await;
                tokio::time::sleep(wait).await;
            }
            Err(e)
                if matches!(e, Error::Interrupted | Error::TooManyRejects { .. })
                    || shared.settings.fail_fast =>
            {
                return Err(e)
            }
            Err(e) => {
                *conns = None;
                // A worker that was frozen past its lease may fail on what the new owner did
                // meanwhile (its rows, a key built since): that is a takeover, not a failure.
                if !still_ours(shared, &claim).await {
                    crate::metrics::error("lease_lost");
                    tracing::warn!(
                        "{} {} was taken over by another worker; this worker's uncommitted rows of it were rolled back ({e})",
                        shared.tables[claim.chunk.table].job.table.name,
                        claim.chunk.range
                    );
                    return Ok(());
                }
                // Record the failure and go on with other chunks; a rerun retries it.
                crate::metrics::error("permanent");
                let what = e.to_string();
                tracing::error!("{what}");
                record_attempt(shared, &claim, &what, true).await;
                let _ = events.send(Event::ChunkFailed).await;
                return Ok(());
            }
        }
    }
}

/// Whether this worker still holds `claim` (checked on a fresh target connection; when the
/// target cannot be asked, it is assumed to).
async fn still_ours(shared: &Shared, claim: &state::Claim) -> bool {
    match connect(&shared.settings.target, Side::Target).await {
        Ok(client) => !matches!(
            state::resume_point(&client, &shared.state, claim, shared.worker).await,
            Ok(None)
        ),
        Err(_) => true,
    }
}

/// Best effort: notes a failed attempt on the chunk (for `status`) on a fresh target
/// connection, since the lane's own may be the one that broke.
async fn record_attempt(shared: &Shared, claim: &state::Claim, error: &str, failed: bool) {
    if let Ok(client) = connect(&shared.settings.target, Side::Target).await {
        let _ = state::record_attempt(&client, &shared.state, claim, shared.worker, error, failed)
            .await;
    }
}

/// Copies one chunk (from its resume offset) on a lane's connections and commits it.
async fn copy_chunk(
    shared: &Shared,
    conns: &mut Conns,
    claim: &state::Claim,
) -> Result<WriteStats> {
    let chunk = &claim.chunk;
    let settings = &shared.settings;
    let running = &shared.tables[chunk.table];
    let table = &running.job.table;
    let label = chunk.range.to_string();
    if matches!(chunk.range, crate::chunking::ChunkRange::Ctid { .. }) {
        super::blocks::align(shared, &mut conns.reader, conns.writer.client(), claim).await?;
    }
    let tc = &running.job.checkpoint;
    let checkpoint = Checkpoint {
        with_key: tc.with_key.clone(),
        without_key: tc.without_key.clone(),
        text_keys: tc.text_keys,
        rejects_sql: tc.rejects_sql.clone(),
        table_name: table.name.to_string(),
        job: shared.state.job.clone(),
        table_no: chunk.table as i32,
        chunk_no: chunk.ordinal as i32,
        claim: claim.token,
        key_positions: tc.key_positions.clone(),
        commit_rows: settings.commit_rows,
        commit_bytes: settings.commit_bytes,
        stop: shared.stop.clone(),
        tally: shared.tally.clone(),
        max_rejects: settings.max_rejects,
        throttle: shared.throttle.clone(),
    };
    // A chunk resumed part-way must not truncate what earlier attempts committed.
    let mode = if chunk.resume_after.is_some() {
        LoadMode::Append
    } else {
        running.job.load_mode
    };
    // A mapped table's rows go through the transform on a thread of their own, between two
    // bounded channels, so casts use a core without holding up the reader or the writer.
    let mut flow = ChunkFlow::new(settings.channel_batches, running.job.transform.clone());
    let metrics = ChunkMetrics::new(&running.metrics, &shared.run_metrics);
    let read =
        running.job.read.as_ref().ok_or_else(|| {
            Error::Internal(format!("{} has chunks but no read plan", table.name))
        })?;
    let req = ChunkRead {
        table,
        read,
        range: &chunk.range,
        resume_after: chunk.resume_after.as_deref(),
        batch_bytes: settings.batch_bytes,
    };
    let read = conns.reader.read_chunk(&req, flow.input(), &metrics);
    let into = ChunkTarget {
        table,
        label: &label,
        mode,
    };
    let write = conns
        .writer
        .write_chunk(&into, &checkpoint, flow.output(), &metrics);
    flow.run(read, write).await
}
