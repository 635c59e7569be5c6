//! The running copy: lanes that move chunks, builders that finish tables, and one event loop
//! that decides what may start when.
//!
//! A lane owns a source reader (on the run's snapshot) and a target writer; per chunk it joins
//! the reader and writer through a bounded channel, so at most `channel_batches` batches of
//! `batch_bytes` are in memory per lane, whatever the table size. When a table's last chunk is
//! in, its post-data steps (keys, indexes, ANALYZE) go to the builders while lanes go on with
//! other tables. A partitioned parent is finished after all its partitions.

pub mod post;
pub mod scheduler;

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinSet;

use crate::catalog::Table;
use crate::config::CopySettings;
use crate::connect::{connect, Side};
use crate::error::{db_reason, Error, Result};
use crate::plan::Chunk;
use crate::schema::{Phases, Step};
use crate::sink::postgres::{Checkpoint, LoadMode, PgWriter};
use crate::source::postgres::PgReader;
use crate::state::StateRef;
use crate::transform::Passthrough;
use post::PostTracker;
use scheduler::Scheduler;
use std::sync::atomic::{AtomicBool, Ordering};

/// Everything the pipeline needs to run, decided by the planner.
#[derive(Debug)]
pub struct RunPlan {
    /// Selected tables.
    pub tables: Vec<Table>,
    /// Every chunk of every table with storage.
    pub chunks: Vec<Chunk>,
    /// Table indexes in the order lanes take them.
    pub order: Vec<usize>,
    /// How each table is loaded.
    pub load_modes: Vec<LoadMode>,
    /// Per table: post-data phases, run once its data (and its partitions) are in.
    pub post_steps: Vec<Phases>,
    /// Per table: index of the partitioned parent it belongs to.
    pub parent: Vec<Option<usize>>,
    /// Per table: how its writer records checkpoints.
    pub checkpoints: Vec<TableCheckpoint>,
    /// Where the job's state lives.
    pub state: StateRef,
    /// After every table is finished: phases run one after another; the jobs of a phase run in
    /// parallel, the steps of a job in order.
    pub final_phases: Phases,
}

/// Per-table checkpoint statements and key positions (see [`crate::sink::postgres::Checkpoint`]).
#[derive(Debug, Clone, Default)]
pub struct TableCheckpoint {
    /// Positions of the key columns among the copied columns; empty for keyless tables.
    pub key_positions: Vec<usize>,
    /// Progress statement that also records the last key.
    pub with_key: String,
    /// Progress statement that leaves the key as it is.
    pub without_key: String,
}

/// Everything lanes and builders share.
struct Shared {
    settings: CopySettings,
    snapshot: Option<String>,
    tables: Vec<Table>,
    load_modes: Vec<LoadMode>,
    checkpoints: Vec<TableCheckpoint>,
    state: StateRef,
    sched: Mutex<Scheduler>,
    stop: Arc<AtomicBool>,
}

/// What happened to one table.
#[derive(Debug, Clone, Default)]
pub struct TableReport {
    /// Rows copied.
    pub rows: u64,
    /// Tuple bytes copied.
    pub bytes: u64,
    /// Chunks copied.
    pub chunks: usize,
    /// From its first chunk's start to its last chunk's commit.
    pub data_time: Duration,
    /// Time of its post-data steps.
    pub post_time: Duration,
}

/// Timings and per-table results of a run.
#[derive(Debug, Clone, Default)]
pub struct RunReport {
    /// One entry per table of the plan.
    pub tables: Vec<TableReport>,
    /// From the first chunk to the last chunk's commit.
    pub data_time: Duration,
    /// From the first chunk to the end of the final phase.
    pub total_time: Duration,
    /// Chunk attempts retried after transient errors.
    pub retries: u64,
}

enum Event {
    ChunkDone {
        table: usize,
        rows: u64,
        bytes: u64,
        started: Instant,
        retries: u32,
    },
    /// A builder finished a job: of a table's post-data, or of the final phases (`None`).
    JobDone {
        table: Option<usize>,
    },
    /// A chunk failed with an error a retry cannot fix; the lane went on.
    ChunkFailed {
        table: usize,
        what: String,
    },
    /// A lane found no chunk left and ended.
    LaneDone,
    Failed(Error),
}

struct Job {
    table: Option<usize>,
    steps: Vec<Step>,
}

/// Runs the data and post-data phases of a plan.
///
/// `stop` set (Ctrl-C) makes lanes commit at their next checkpoint and end; the run then
/// returns [`Error::Interrupted`] with everything committed kept for a resume.
pub async fn run(
    settings: &CopySettings,
    snapshot: Option<String>,
    plan: RunPlan,
    stop: Arc<AtomicBool>,
) -> Result<RunReport> {
    let n = plan.tables.len();
    let started = Instant::now();
    let mut chunks_left = vec![0usize; n];
    for c in &plan.chunks {
        chunks_left[c.table] += 1;
    }
    let shared = Arc::new(Shared {
        settings: settings.clone(),
        snapshot,
        tables: plan.tables,
        load_modes: plan.load_modes,
        checkpoints: plan.checkpoints,
        state: plan.state,
        sched: Mutex::new(Scheduler::new(n, plan.order, plan.chunks)),
        stop,
    });
    let tables = &shared.tables;
    let (events_tx, mut events) = mpsc::channel::<Event>(256);

    let mut lanes = JoinSet::new();
    for _ in 0..settings.jobs {
        let (shared, events_tx) = (shared.clone(), events_tx.clone());
        lanes.spawn(async move {
            if let Err(e) = lane(&shared, &events_tx).await {
                let _ = events_tx.send(Event::Failed(e)).await;
            }
        });
    }

    let (jobs_tx, jobs_rx) = mpsc::unbounded_channel::<Job>();
    let jobs_rx = Arc::new(tokio::sync::Mutex::new(jobs_rx));
    let mut builders = JoinSet::new();
    for _ in 0..settings.index_jobs {
        let (shared, jobs_rx, events_tx) = (shared.clone(), jobs_rx.clone(), events_tx.clone());
        builders.spawn(async move {
            if let Err(e) = builder(&shared.settings, &shared.state, &jobs_rx, &events_tx).await {
                let _ = events_tx.send(Event::Failed(e)).await;
            }
        });
    }
    drop(events_tx);

    // A table may be finished once its own data is in and each of its partitions is finished.
    let mut waiting: Vec<usize> = tables
        .iter()
        .enumerate()
        .map(|(t, table)| usize::from(table.has_storage() && chunks_left[t] > 0))
        .collect();
    for p in plan.parent.iter().flatten() {
        waiting[*p] += 1;
    }
    let mut post = PostTracker::new(plan.post_steps, waiting, plan.parent.clone());
    let mut report = RunReport {
        tables: vec![TableReport::default(); n],
        ..Default::default()
    };
    let mut first_chunk: Vec<Option<Instant>> = vec![None; n];
    let mut data_left: usize = chunks_left.iter().filter(|&&c| c > 0).count();
    let mut phases = plan.final_phases.into_iter();
    let mut phase_jobs_left = 0usize;

    // Sends the jobs a tracker call released and records the tables it finished.
    let dispatch = |jobs: Vec<post::TableJob>,
                    finished: Vec<(usize, Duration)>,
                    report: &mut RunReport|
     -> Result<()> {
        for (t, took) in finished {
            report.tables[t].post_time = took;
        }
        for (t, steps) in jobs {
            jobs_tx
                .send(Job {
                    table: Some(t),
                    steps,
                })
                .map_err(|_| Error::Internal("index builders stopped".into()))?;
        }
        Ok(())
    };
    // Failed chunks: their tables (and partitioned parents) are not finished; the run ends
    // with the list once every lane is out of chunks and no build is running.
    let mut failures: Vec<String> = Vec::new();
    let mut lanes_alive = settings.jobs;
    let mut jobs = Vec::new();
    let finished = post.start_ready(&mut jobs);
    dispatch(std::mem::take(&mut jobs), finished, &mut report)?;
    if data_left == 0 {
        report.data_time = started.elapsed();
    }
    let mut ticks = 0u64;
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    tick.tick().await;
    let (mut rows_total, mut bytes_total) = (0u64, 0u64);

    let outcome: Result<()> = loop {
        if post.tables_left() == 0 && phase_jobs_left == 0 {
            match phases.next() {
                Some(jobs) => {
                    for steps in jobs.into_iter().filter(|s| !s.is_empty()) {
                        phase_jobs_left += 1;
                        let job = Job { table: None, steps };
                        if jobs_tx.send(job).is_err() {
                            break;
                        }
                    }
                    continue;
                }
                None => break Ok(()),
            }
        }
        let event = tokio::select! {
            e = events.recv() => e,
            _ = tick.tick() => {
                // Ctrl-C while only index builds run: stop now, they roll back and redo on resume.
                if shared.stop.load(Ordering::Relaxed) {
                    break Err(Error::Interrupted);
                }
                ticks += 1;
                if ticks % 40 != 0 {
                    continue;
                }
                let secs = started.elapsed().as_secs_f64().max(0.001);
                tracing::info!(
                    "progress: {rows_total} rows, {:.1} MB in {secs:.0} s ({:.0} rows/s, {:.1} MB/s); {} tables to finish",
                    bytes_total as f64 / 1e6, rows_total as f64 / secs, bytes_total as f64 / 1e6 / secs, post.tables_left()
                );
                continue;
            }
        };
        let Some(event) = event else {
            break Err(Error::Internal(
                "every worker stopped before the copy finished".into(),
            ));
        };
        match event {
            Event::Failed(e) => break Err(e),
            Event::ChunkDone {
                table,
                rows,
                bytes,
                started: chunk_started,
                retries,
            } => {
                report.retries += u64::from(retries);
                rows_total += rows;
                bytes_total += bytes;
                let r = &mut report.tables[table];
                r.rows += rows;
                r.bytes += bytes;
                r.chunks += 1;
                let first = *first_chunk[table].get_or_insert(chunk_started);
                chunks_left[table] -= 1;
                if chunks_left[table] == 0 {
                    r.data_time = first.elapsed();
                    let t = &tables[table];
                    tracing::info!(
                        "copied {}: {} rows, {:.1} MB in {:.1} s",
                        t.name,
                        r.rows,
                        r.bytes as f64 / 1e6,
                        r.data_time.as_secs_f64()
                    );
                    data_left -= 1;
                    if data_left == 0 {
                        report.data_time = started.elapsed();
                        tracing::info!(
                            "data phase done in {:.1} s",
                            report.data_time.as_secs_f64()
                        );
                    }
                    let finished = post.input_done(table, &mut jobs);
                    if let Err(e) = dispatch(std::mem::take(&mut jobs), finished, &mut report) {
                        break Err(e);
                    }
                }
            }
            Event::JobDone { table: Some(t) } => {
                let finished = post.job_done(t, &mut jobs);
                if let Err(e) = dispatch(std::mem::take(&mut jobs), finished, &mut report) {
                    break Err(e);
                }
            }
            Event::JobDone { table: None } => phase_jobs_left -= 1,
            Event::ChunkFailed { table, what } => {
                failures.push(what);
                post.fail(table);
                chunks_left[table] -= 1;
                if chunks_left[table] == 0 {
                    data_left -= 1;
                }
            }
            Event::LaneDone => lanes_alive -= 1,
        }
        if !failures.is_empty() && lanes_alive == 0 && post.in_flight() == 0 {
            break Err(Error::ChunksFailed {
                failed: std::mem::take(&mut failures),
            });
        }
    };
    drop(jobs_tx);
    if let Err(e) = outcome {
        if matches!(e, Error::Interrupted) {
            // Drain: every lane commits at its next checkpoint (or rolls back a keyless chunk)
            // and ends; index builds roll back and are redone on resume.
            builders.abort_all();
            while lanes.join_next().await.is_some() {}
            return Err(Error::Interrupted);
        }
        lanes.abort_all();
        builders.abort_all();
        let chunks_done: usize = report.tables.iter().map(|t| t.chunks).sum();
        let done = format!(
            "{} of {n} tables finished, {chunks_done} chunks committed",
            n - post.tables_left()
        );
        return Err(Error::Incomplete {
            source: Box::new(e),
            done,
        });
    }
    while let Some(res) = lanes.join_next().await {
        res.map_err(|e| Error::Internal(format!("copy lane failed: {e}")))?;
    }
    while let Some(res) = builders.join_next().await {
        res.map_err(|e| Error::Internal(format!("index builder failed: {e}")))?;
    }
    report.total_time = started.elapsed();
    Ok(report)
}

/// Attempts per chunk before a transient error fails the run.
const MAX_ATTEMPTS: u32 = 6;

/// Capped exponential backoff with jitter: 0.5 s, 1 s, 2 s ... up to 30 s, times 0.5-1.0.
fn backoff(attempt: u32) -> Duration {
    let base = Duration::from_millis(500)
        .saturating_mul(1u32 << attempt.min(6))
        .min(Duration::from_secs(30));
    // Jitter from the clock: lanes that failed together do not retry together.
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or(0);
    base.mul_f64(0.5 + f64::from(nanos % 1000) / 2000.0)
}

/// A lane's two connections.
struct Conns {
    reader: PgReader,
    writer: PgWriter,
}

async fn open_conns(shared: &Shared) -> Result<Conns> {
    let settings = &shared.settings;
    let reader = PgReader::open(&settings.source, shared.snapshot.as_deref()).await?;
    let quiet_triggers = settings.schema == crate::schema::SchemaMode::Existing;
    let writer = PgWriter::open(&settings.target, quiet_triggers).await?;
    Ok(Conns { reader, writer })
}

/// One copy lane: takes chunks until none are left (or the user asks to stop). A chunk that
/// fails on a transient error (see [`crate::error::is_transient`]) is retried on new
/// connections from its last committed checkpoint, with backoff.
async fn lane(shared: &Shared, events: &mpsc::Sender<Event>) -> Result<()> {
    let mut conns: Option<Conns> = None;
    loop {
        if shared.stop.load(Ordering::Relaxed) {
            return Err(Error::Interrupted);
        }
        let next = shared
            .sched
            .lock()
            .map_err(|_| Error::Internal("scheduler lock poisoned".into()))?
            .take_next();
        let Some(mut chunk) = next else {
            let _ = events.send(Event::LaneDone).await;
            return Ok(());
        };
        let started = Instant::now();
        let mut attempt = 0u32;
        let write = loop {
            let result = match conns.as_mut() {
                Some(c) => copy_chunk(shared, c, &chunk).await,
                None => match open_conns(shared).await {
                    Ok(c) => {
                        let c = conns.insert(c);
                        if attempt > 0 {
                            // Where the failed attempt's last commit left the chunk.
                            chunk.resume_after = crate::state::chunk_last_key(
                                c.writer.client(),
                                &shared.state,
                                chunk.table as i32,
                                chunk.ordinal as i32,
                            )
                            .await?;
                        }
                        copy_chunk(shared, c, &chunk).await
                    }
                    Err(e) => Err(e),
                },
            };
            match result {
                Ok(write) => break Some(write),
                Err(e)
                    if e.is_transient()
                        && attempt + 1 < MAX_ATTEMPTS
                        && !shared.stop.load(Ordering::Relaxed) =>
                {
                    attempt += 1;
                    conns = None;
                    let wait = backoff(attempt);
                    tracing::warn!(
                        "{e}; retrying from the last checkpoint in {:.1} s (attempt {} of {MAX_ATTEMPTS})",
                        wait.as_secs_f64(),
                        attempt + 1
                    );
                    record_attempt(shared, &chunk, &e.to_string(), false).await;
                    tokio::time::sleep(wait).await;
                }
                Err(e) if matches!(e, Error::Interrupted) || shared.settings.fail_fast => {
                    return Err(e)
                }
                Err(e) => {
                    // Record the failure and go on with other chunks; a resume retries it.
                    conns = None;
                    let what = e.to_string();
                    tracing::error!("{what}");
                    record_attempt(shared, &chunk, &what, true).await;
                    if events
                        .send(Event::ChunkFailed {
                            table: chunk.table,
                            what,
                        })
                        .await
                        .is_err()
                    {
                        return Ok(());
                    }
                    break None;
                }
            }
        };
        let Some(write) = write else { continue };
        let done = Event::ChunkDone {
            table: chunk.table,
            rows: write.rows,
            bytes: write.bytes,
            started,
            retries: attempt,
        };
        if events.send(done).await.is_err() {
            return Ok(());
        }
    }
}

/// Best effort: notes a failed attempt on the chunk (for `status`) on a fresh target
/// connection, since the lane's own may be the one that broke.
async fn record_attempt(shared: &Shared, chunk: &Chunk, error: &str, failed: bool) {
    if let Ok(client) = connect(&shared.settings.target, Side::Target).await {
        let (table, ordinal) = (chunk.table as i32, chunk.ordinal as i32);
        let _ = crate::state::record_attempt(&client, &shared.state, table, ordinal, error, failed)
            .await;
    }
}

/// Copies one chunk (from its resume offset) on a lane's connections and commits it.
async fn copy_chunk(
    shared: &Shared,
    conns: &mut Conns,
    chunk: &Chunk,
) -> Result<crate::sink::postgres::WriteStats> {
    let settings = &shared.settings;
    let table = &shared.tables[chunk.table];
    let label = chunk.range.to_string();
    let tc = &shared.checkpoints[chunk.table];
    let checkpoint = Checkpoint {
        with_key: tc.with_key.clone(),
        without_key: tc.without_key.clone(),
        job: shared.state.job.clone(),
        table_no: chunk.table as i32,
        chunk_no: chunk.ordinal as i32,
        key_positions: tc.key_positions.clone(),
        commit_rows: settings.commit_rows,
        commit_bytes: settings.commit_bytes,
        stop: shared.stop.clone(),
    };
    // A chunk resumed part-way must not truncate what earlier attempts committed.
    let mode = if chunk.resume_after.is_some() {
        LoadMode::Append
    } else {
        shared.load_modes[chunk.table]
    };
    let (tx, rx) = mpsc::channel(settings.channel_batches);
    let read = conns.reader.read_chunk(
        table,
        &chunk.range,
        chunk.resume_after.as_deref(),
        settings.batch_bytes,
        tx,
    );
    let write = conns
        .writer
        .write_chunk(table, &label, mode, &Passthrough, &checkpoint, rx);
    let (read, write) = tokio::join!(read, write);
    // The writer's error explains a reader that stopped early, and vice versa a reader's
    // error explains a writer that saw the stream end short.
    let write = match (read, write) {
        (_, Err(e)) => return Err(e),
        (Err(e), _) => return Err(e),
        (Ok(read), Ok(write)) if read.rows != write.rows => {
            return Err(Error::Copy {
                table: table.name.clone(),
                chunk: label,
                stage: "checking the row count",
                reason: format!("read {} rows but wrote {}", read.rows, write.rows),
                transient: false,
            })
        }
        (Ok(_), Ok(write)) => write,
    };
    conns.writer.commit(table, &label).await?;
    Ok(write)
}

/// One post-data builder: runs jobs of steps on its own target connection.
///
/// Each step commits together with its "done" mark in the state tables, so a resumed job runs
/// every step exactly once (a step interrupted half-way rolled back and runs again).
async fn builder(
    settings: &CopySettings,
    state: &StateRef,
    jobs: &tokio::sync::Mutex<mpsc::UnboundedReceiver<Job>>,
    events: &mpsc::Sender<Event>,
) -> Result<()> {
    let mut client = builder_conn(settings).await?;
    loop {
        let job = jobs.lock().await.recv().await;
        let Some(job) = job else { return Ok(()) };
        for step in &job.steps {
            tracing::debug!("{}", step.what);
            let sql = format!(
                "BEGIN; {}; {}; COMMIT",
                step.sql,
                crate::state::step_done_sql(state, &step.what)
            );
            let mut attempt = 0u32;
            loop {
                let err = match client.batch_execute(&sql).await {
                    Ok(()) => break,
                    Err(e) => e,
                };
                if !crate::error::is_transient(&err) || attempt + 1 >= MAX_ATTEMPTS {
                    return Err(Error::Schema {
                        what: step.what.clone(),
                        reason: db_reason(&err),
                    });
                }
                attempt += 1;
                let wait = backoff(attempt);
                tracing::warn!(
                    "{} failed: {}; retrying in {:.1} s (attempt {} of {MAX_ATTEMPTS})",
                    step.what,
                    db_reason(&err),
                    wait.as_secs_f64(),
                    attempt + 1
                );
                tokio::time::sleep(wait).await;
                client = match builder_conn(settings).await {
                    Ok(c) => c,
                    Err(e) if attempt + 1 < MAX_ATTEMPTS => {
                        tracing::warn!("{e}");
                        continue;
                    }
                    Err(e) => return Err(e),
                };
                // The cut session may still be running the step; once it is gone, the step
                // either committed (with its done mark) or rolled back.
                crate::state::wait_for_statement_to_end(&client, &sql).await?;
                if crate::state::step_is_done(&client, state, &step.what).await? {
                    break;
                }
            }
        }
        if events
            .send(Event::JobDone { table: job.table })
            .await
            .is_err()
        {
            return Ok(());
        }
    }
}

async fn builder_conn(settings: &CopySettings) -> Result<tokio_postgres::Client> {
    let client = connect(&settings.target, Side::Target).await?;
    client
        .batch_execute(&format!(
            "SET maintenance_work_mem = '{}'",
            settings.maintenance_work_mem
        ))
        .await
        .map_err(|e| Error::Schema {
            what: "setting maintenance_work_mem".into(),
            reason: db_reason(&e),
        })?;
    Ok(client)
}
