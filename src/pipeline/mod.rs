//! The running copy: lanes that move chunks, builders that finish tables, and one event loop
//! that decides what may start when.
//!
//! Lanes claim chunks from the job's state in the target (see [`crate::state::chunks`]), so
//! several `howdah copy` processes can work on one job. The event loop reads the job's progress
//! from the same state: when every chunk of a table is in, whoever copied them, the table's
//! post-data steps (index builds in parallel, then constraints and `ANALYZE`) go to the
//! builders while lanes go on with other tables. A partitioned parent is finished after all
//! its partitions; the final phases (foreign keys, triggers, sequences) run once every table
//! is finished. Every step runs once per job, whichever worker gets to it first.

mod blocks;
mod builder;
pub mod flow;
mod lane;
pub mod large_objects;
pub mod post;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_postgres::Client;

use crate::catalog::Table;
use crate::config::CopySettings;
use crate::connect::{connect, Side};
use crate::error::{Error, Result};
use crate::metrics::{RunMetrics, TableMetrics};
use crate::progress::{Progress, TableState, Terminal};
use crate::schema::{Phases, Step};
use crate::sink::postgres::LoadMode;
use crate::source::{Source, TableRead};
use crate::state::{self, StateRef, TableCheckpoint, TableProgress};
use post::PostTracker;

/// Aborts a task when dropped (the terminal reporter ends with the run, however it ends).
struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

/// One table of the job as the pipeline runs it. Its position in [`RunPlan::tables`] is its
/// table number, the number its chunks and steps carry in the job's state.
#[derive(Debug)]
pub struct TableJob {
    /// The table as the target holds it.
    pub table: Table,
    /// How the source reads it (`None`: it has no rows to read).
    pub read: Option<TableRead>,
    /// The transform from the rows read to the target's rows (`None`: as read).
    pub transform: Option<Arc<crate::transform::TableTransform>>,
    /// How its chunks are loaded.
    pub load_mode: LoadMode,
    /// How its writer records checkpoints.
    pub checkpoint: TableCheckpoint,
    /// Post-data phases, run once its data (and its partitions) are in.
    pub post: Phases,
    /// The partitioned table it is a partition of, by table number.
    pub parent: Option<usize>,
    /// Size on the source of the indexes its post-data steps build, for the ETA.
    pub index_bytes: i64,
}

/// Everything the pipeline needs to run, decided by the planner.
#[derive(Debug)]
pub struct RunPlan {
    /// The job's tables, by table number.
    pub tables: Vec<TableJob>,
    /// Where the job's state lives.
    pub state: StateRef,
    /// This process's worker number in the job (the owner of the chunks it claims).
    pub worker: i32,
    /// Where rows come from (with the snapshots readers import, or the value policies).
    pub source: Source,
    /// After every table is finished: phases run one after another; the jobs of a phase run in
    /// parallel, the steps of a job in order.
    pub final_phases: Phases,
    /// Told once every table's rows are in (none stuck on failed chunks), while index builds
    /// and final phases may still run: the caller copies the large objects then and lets the
    /// source snapshot go. Dropped unsent when the run fails first.
    pub rows_in: Option<tokio::sync::oneshot::Sender<()>>,
    /// Source bytes of the tables whose foreign keys are still to be checked, for the ETA
    /// (see [`crate::eta`]); counted until the final phases are through.
    pub check_bytes: i64,
}

/// A table while the pipeline runs: its job and its metrics.
struct Running {
    job: TableJob,
    metrics: TableMetrics,
}

/// Everything lanes and builders share.
struct Shared {
    settings: CopySettings,
    source: Source,
    tables: Vec<Running>,
    state: StateRef,
    tally: Arc<crate::reject::Tally>,
    /// `(table, chunk)` numbers of the chunks this process's lanes hold.
    busy: tokio::sync::Mutex<std::collections::HashSet<(i32, i32)>>,
    worker: i32,
    stop: Arc<AtomicBool>,
    run_metrics: RunMetrics,
    /// The process's share of the job's `--max-rate`, taken by every lane's writer.
    throttle: Arc<crate::rate::Throttle>,
}

/// What happened to one table.
#[derive(Debug, Clone, Default)]
pub struct TableReport {
    /// Rows copied (by every worker of the job).
    pub rows: u64,
    /// Tuple bytes copied (by every worker of the job).
    pub bytes: u64,
    /// Chunks of the table.
    pub chunks: usize,
    /// Chunks this process copied.
    pub own_chunks: usize,
    /// From this run's start (or its first chunk of the table) until its data was all in.
    pub data_time: Duration,
    /// Time of its post-data steps.
    pub post_time: Duration,
    /// Rows rejected (bad values kept out of the target); PostgreSQL sources pass every
    /// value through unchanged, so only mapped columns can reject.
    pub rejected: u64,
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
        started: Instant,
        retries: u32,
    },
    /// A builder finished a job: of a table's post-data, or of the final phases (`None`).
    JobDone {
        table: Option<usize>,
    },
    /// A chunk failed with an error a retry cannot fix (recorded in the state); the lane went on.
    ChunkFailed,
    /// A lane found no chunk left and ended.
    LaneDone,
    Failed(Error),
}

/// What the event loop reads from the job's state after an event.
enum Look {
    /// Nothing.
    Nothing,
    /// Every table's progress (a periodic look, a lane that ended, a failed chunk).
    All,
    /// One table's progress: a chunk of it was copied by this process. Reading only its
    /// chunks keeps the cost per chunk flat however many tables the job has; chunks other
    /// workers copy are seen by the periodic look.
    Table(usize),
}

/// Why the event loop woke up.
enum Wake {
    Event(Event),
    /// Every lane and builder is gone.
    Closed,
    /// Time to read the job's progress from the state.
    Look,
}

struct Job {
    table: Option<usize>,
    steps: Vec<Step>,
}

/// Attempts per chunk (or step) before a transient error fails it.
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

/// The event loop's view of the job's data: which tables are all in, which are stuck on
/// failed chunks. Read from the state, so chunks copied by other workers count.
struct DataWatch {
    client: Option<Client>,
    data_in: Vec<bool>,
    stuck: Vec<bool>,
    progress: Vec<TableProgress>,
}

impl DataWatch {
    /// Reads the job's progress; returns tables whose data just became complete, and tables
    /// that just became stuck.
    async fn poll(
        &mut self,
        settings: &CopySettings,
        st: &StateRef,
        tables: &[&Table],
    ) -> Result<(Vec<usize>, Vec<usize>)> {
        if self.client.is_none() {
            self.client = Some(connect(&settings.target, Side::Target).await?);
        }
        let Some(client) = self.client.as_ref() else {
            return Ok((Vec::new(), Vec::new()));
        };
        let progress = match state::table_progress(client, st, tables.len()).await {
            Ok(p) => p,
            Err(e) => {
                self.client = None;
                return Err(e);
            }
        };
        let (mut complete, mut stuck) = (Vec::new(), Vec::new());
        for (t, p) in progress.iter().enumerate() {
            self.classify(t, p, tables, &mut complete, &mut stuck);
        }
        self.progress = progress;
        Ok((complete, stuck))
    }

    /// Reads the progress of table `t` alone (a chunk of it was just copied here), like
    /// [`DataWatch::poll`] for that table: a query on its chunks, whatever the job's size.
    async fn poll_table(
        &mut self,
        settings: &CopySettings,
        st: &StateRef,
        tables: &[&Table],
        t: usize,
    ) -> Result<(Vec<usize>, Vec<usize>)> {
        if self.client.is_none() {
            self.client = Some(connect(&settings.target, Side::Target).await?);
        }
        let Some(client) = self.client.as_ref() else {
            return Ok((Vec::new(), Vec::new()));
        };
        let p = match state::one_table_progress(client, st, t as i32).await {
            Ok(p) => p,
            Err(e) => {
                self.client = None;
                return Err(e);
            }
        };
        let (mut complete, mut stuck) = (Vec::new(), Vec::new());
        self.classify(t, &p, tables, &mut complete, &mut stuck);
        if let Some(slot) = self.progress.get_mut(t) {
            *slot = p;
        }
        Ok((complete, stuck))
    }

    /// Notes table `t`'s data as in (`complete`) or stuck on failed chunks (`stuck`) the first
    /// time its progress `p` says so.
    fn classify(
        &mut self,
        t: usize,
        p: &TableProgress,
        tables: &[&Table],
        complete: &mut Vec<usize>,
        stuck: &mut Vec<usize>,
    ) {
        if !tables[t].has_storage() || self.data_in[t] {
            return;
        }
        if p.complete() {
            self.data_in[t] = true;
            complete.push(t);
        } else if p.stuck() && !self.stuck[t] {
            self.stuck[t] = true;
            stuck.push(t);
        }
    }

    /// Passes the last poll on to the terminal display and the metrics.
    fn publish(&self, tables: &[&Table], progress: &Progress) {
        let mut chunks = Vec::with_capacity(self.progress.len());
        for (t, p) in self.progress.iter().enumerate() {
            progress.set_committed(t, p.rows.max(0) as u64);
            if progress.state(t) == TableState::Waiting && (p.running > 0 || p.done > 0) {
                progress.set_state(t, TableState::Copying);
            }
            if tables[t].has_storage() {
                let pending = (p.chunks - p.done - p.failed - p.running).max(0);
                chunks.push((
                    tables[t].name.to_string(),
                    [pending, p.running, p.done, p.failed],
                ));
            }
        }
        crate::metrics::job_progress(
            &chunks,
            progress.table_states(),
            progress.ratio(),
            progress.total_eta(),
        );
    }

    /// Tables with storage whose data is neither in nor stuck.
    fn open(&self, tables: &[&Table]) -> usize {
        (0..tables.len())
            .filter(|&t| tables[t].has_storage() && !self.data_in[t] && !self.stuck[t])
            .count()
    }
}

/// Runs the data and post-data phases of a plan as one worker of the job.
///
/// `stop` set (Ctrl-C) makes lanes commit at their next checkpoint and end; the run then
/// returns [`Error::Interrupted`] with everything committed kept for a resume.
pub async fn run(
    settings: &CopySettings,
    plan: RunPlan,
    stop: Arc<AtomicBool>,
    terminal: Terminal,
) -> Result<RunReport> {
    let n = plan.tables.len();
    let started = Instant::now();
    let names: Vec<(String, i64, i64)> = plan
        .tables
        .iter()
        .map(|j| {
            let t = &j.table;
            let size = if t.has_storage() { t.size_bytes } else { 0 };
            (
                t.name.to_string(),
                crate::chunking::chunks::estimated_rows(t),
                size,
            )
        })
        .collect();
    let progress = Progress::new(&names);
    for (t, job) in plan.tables.iter().enumerate() {
        progress.set_index_bytes(t, job.index_bytes);
    }
    progress.set_check_bytes(plan.check_bytes);
    let mut post_steps = Vec::with_capacity(n);
    let mut parent = Vec::with_capacity(n);
    let running = plan
        .tables
        .into_iter()
        .zip(&names)
        .enumerate()
        .map(|(t, (mut job, (name, est, _)))| {
            post_steps.push(std::mem::take(&mut job.post));
            parent.push(job.parent);
            Running {
                job,
                metrics: TableMetrics::new(name, *est, progress.live(t)),
            }
        })
        .collect();
    let reporter = tokio::spawn(crate::progress::report(progress.clone(), terminal));
    let _stop_reporter = AbortOnDrop(reporter);
    let throttle = start_rate_cap(settings, &plan.state).await?;
    let _stop_rate = AbortOnDrop(tokio::spawn(crate::state::rate::follow(
        settings.target.clone(),
        plan.state.clone(),
        throttle.clone(),
        plan.worker,
    )));
    // How long the run's source snapshot has been held, for the metrics and a warning per hour.
    let _stop_hold = AbortOnDrop(tokio::spawn(crate::snapshot_hold::sample(
        settings.source.clone(),
        settings.job.clone(),
    )));
    let shared = Arc::new(Shared {
        run_metrics: RunMetrics::new(settings.jobs, settings.channel_batches),
        settings: settings.clone(),
        source: plan.source,
        tables: running,
        tally: Arc::default(),
        busy: tokio::sync::Mutex::default(),
        state: plan.state,
        worker: plan.worker,
        stop,
        throttle,
    });
    let tables: Vec<&Table> = shared.tables.iter().map(|r| &r.job.table).collect();
    let (events_tx, mut events) = mpsc::channel::<Event>(256);
    let mut lanes = JoinSet::new();
    for _ in 0..settings.jobs {
        let (shared, events_tx) = (shared.clone(), events_tx.clone());
        lanes.spawn(async move {
            if let Err(e) = lane::run(&shared, &events_tx).await {
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
            if let Err(e) =
                builder::run(&shared.settings, &shared.state, &jobs_rx, &events_tx).await
            {
                let _ = events_tx.send(Event::Failed(e)).await;
            }
        });
    }
    drop(events_tx);

    // A table may be finished once its own data is in and each of its partitions is finished.
    let mut waiting: Vec<usize> = tables
        .iter()
        .map(|t| usize::from(t.has_storage()))
        .collect();
    for p in parent.iter().flatten() {
        waiting[*p] += 1;
    }
    let mut run = Coordinator {
        shared: &shared,
        tables: &tables,
        progress: &progress,
        started,
        jobs_tx,
        post: PostTracker::new(post_steps, waiting, parent),
        report: RunReport {
            tables: vec![TableReport::default(); n],
            ..Default::default()
        },
        first_chunk: vec![None; n],
        watch: DataWatch {
            client: None,
            data_in: vec![false; n],
            stuck: vec![false; n],
            progress: Vec::new(),
        },
        phases: plan.final_phases.into_iter(),
        phase_jobs_left: 0,
        data_done: false,
        rows_in: plan.rows_in,
        lanes_alive: settings.jobs,
    };
    let outcome = run.drive(&mut events).await;
    let Coordinator {
        mut report,
        post,
        watch,
        jobs_tx,
        ..
    } = run;
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
        let chunks_done: usize = report.tables.iter().map(|t| t.own_chunks).sum();
        let done = format!(
            "{} of {n} tables finished, {chunks_done} chunks committed by this run",
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
    watch.publish(&tables, &progress);
    Ok(report)
}

/// The run's event loop and what it knows: which tables' data is in, which post-data jobs
/// are out, the final phases still to run, and the report being filled in.
struct Coordinator<'a> {
    shared: &'a Shared,
    tables: &'a [&'a Table],
    progress: &'a Progress,
    started: Instant,
    /// To the index builders.
    jobs_tx: mpsc::UnboundedSender<Job>,
    post: PostTracker,
    report: RunReport,
    /// When this worker's first chunk of each table started.
    first_chunk: Vec<Option<Instant>>,
    watch: DataWatch,
    phases: std::vec::IntoIter<Vec<Vec<Step>>>,
    phase_jobs_left: usize,
    /// Every table's data is in (or stuck).
    data_done: bool,
    /// See [`RunPlan::rows_in`]; taken when sent.
    rows_in: Option<tokio::sync::oneshot::Sender<()>>,
    lanes_alive: usize,
}

impl Coordinator<'_> {
    /// Runs until every table and final phase is done, or the run fails or is interrupted.
    async fn drive(&mut self, events: &mut mpsc::Receiver<Event>) -> Result<()> {
        let mut jobs = Vec::new();
        let finished = self.post.start_ready(&mut jobs);
        self.dispatch(jobs, finished)?;
        self.look().await?;
        let mut ticks = 0u64;
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        tick.tick().await;
        loop {
            if self.post.tables_left() == 0 && self.phase_jobs_left == 0 {
                match self.phases.next() {
                    Some(jobs) => {
                        for steps in jobs.into_iter().filter(|s| !s.is_empty()) {
                            self.phase_jobs_left += 1;
                            let job = Job { table: None, steps };
                            if self.jobs_tx.send(job).is_err() {
                                break;
                            }
                        }
                        continue;
                    }
                    None => {
                        self.progress.set_check_bytes(0);
                        return Ok(());
                    }
                }
            }
            let event = tokio::select! {
                e = events.recv() => match e {
                    Some(e) => Wake::Event(e),
                    None => Wake::Closed,
                },
                _ = tick.tick() => {
                    // Ctrl-C while only index builds run: stop now, they roll back and redo
                    // on resume.
                    if self.shared.stop.load(Ordering::Relaxed) {
                        return Err(Error::Interrupted);
                    }
                    ticks += 1;
                    if ticks % 4 != 0 {
                        continue;
                    }
                    // Other workers' chunks complete tables too: look at the state now and
                    // then (the look publishes what it read).
                    if self.data_done {
                        self.watch.publish(self.tables, self.progress);
                        continue;
                    }
                    Wake::Look
                }
            };
            let look = self.handle(event)?;
            if !self.data_done {
                let looked = match look {
                    Look::Nothing => Ok(()),
                    Look::All => self.look().await,
                    Look::Table(t) => self.look_table(t).await,
                };
                match looked {
                    Err(e) if e.is_transient() => tracing::warn!("{e}; will look again"),
                    other => other?,
                }
            }
            let stuck = self.watch.stuck.iter().any(|&s| s);
            if stuck && self.lanes_alive == 0 && self.post.in_flight() == 0 {
                return Err(self.stuck_error().await);
            }
        }
    }

    /// Takes in one wake-up; what of the job's progress is worth reading now.
    fn handle(&mut self, wake: Wake) -> Result<Look> {
        Ok(match wake {
            Wake::Closed => {
                return Err(Error::Internal(
                    "every worker stopped before the copy finished".into(),
                ))
            }
            Wake::Look => Look::All,
            Wake::Event(Event::Failed(e)) => return Err(e),
            Wake::Event(Event::ChunkDone {
                table,
                started,
                retries,
            }) => {
                self.report.retries += u64::from(retries);
                self.report.tables[table].own_chunks += 1;
                self.first_chunk[table].get_or_insert(started);
                Look::Table(table)
            }
            Wake::Event(Event::JobDone { table: Some(t) }) => {
                let mut jobs = Vec::new();
                let finished = self.post.job_done(t, &mut jobs);
                self.dispatch(jobs, finished)?;
                Look::Nothing
            }
            Wake::Event(Event::JobDone { table: None }) => {
                self.phase_jobs_left -= 1;
                Look::Nothing
            }
            Wake::Event(Event::ChunkFailed) => Look::All,
            Wake::Event(Event::LaneDone) => {
                self.lanes_alive -= 1;
                Look::All
            }
        })
    }

    /// Reads the job's progress from the state: tables whose data is all in start their
    /// post-data; tables stuck on failed chunks (and their partitioned parents) will not finish.
    async fn look(&mut self) -> Result<()> {
        let st = &self.shared.state;
        let (complete, stuck) = self
            .watch
            .poll(&self.shared.settings, st, self.tables)
            .await?;
        self.watch.publish(self.tables, self.progress);
        self.take_in(complete, stuck)
    }

    /// [`Coordinator::look`] at table `t` alone; the display and metrics are refreshed by the
    /// next periodic look (publishing reads every table).
    async fn look_table(&mut self, t: usize) -> Result<()> {
        let st = &self.shared.state;
        let (complete, stuck) = self
            .watch
            .poll_table(&self.shared.settings, st, self.tables, t)
            .await?;
        self.take_in(complete, stuck)
    }

    /// Starts the post-data of the tables whose data is all in, gives up on the stuck ones,
    /// and notes the end of the data phase.
    fn take_in(&mut self, complete: Vec<usize>, stuck: Vec<usize>) -> Result<()> {
        let mut jobs = Vec::new();
        let mut finished = Vec::new();
        for t in complete {
            let p = self.watch.progress.get(t).copied().unwrap_or_default();
            let r = &mut self.report.tables[t];
            r.rows = p.rows.max(0) as u64;
            r.bytes = p.bytes.max(0) as u64;
            r.chunks = p.chunks.max(0) as usize;
            r.rejected = p.rejected.max(0) as u64;
            r.data_time = self.first_chunk[t].unwrap_or(self.started).elapsed();
            tracing::info!(
                "copied {}: {} rows, {:.1} MB",
                self.tables[t].name,
                r.rows,
                r.bytes as f64 / 1e6
            );
            finished.extend(self.post.input_done(t, &mut jobs));
        }
        for t in stuck {
            self.post.fail(t);
            self.progress.set_state(t, TableState::Failed);
        }
        self.dispatch(jobs, finished)?;
        if !self.data_done && self.watch.open(self.tables) == 0 {
            self.data_done = true;
            self.report.data_time = self.started.elapsed();
            tracing::info!(
                "data phase done in {:.1} s",
                self.report.data_time.as_secs_f64()
            );
            // Stuck tables end the run with an error; only a complete data phase lets the
            // caller move on to what follows the rows (large objects, then the snapshot).
            if !self.watch.stuck.iter().any(|&s| s) {
                if let Some(tx) = self.rows_in.take() {
                    let _ = tx.send(());
                }
            }
        }
        Ok(())
    }

    /// Sends the jobs a tracker call released and records the tables it finished.
    fn dispatch(
        &mut self,
        jobs: Vec<post::TableJob>,
        finished: Vec<(usize, Duration)>,
    ) -> Result<()> {
        for (t, took) in finished {
            self.report.tables[t].post_time = took;
            self.progress.set_state(t, TableState::Done);
        }
        for (t, steps) in jobs {
            if self.progress.state(t) != TableState::Building {
                self.progress.set_state(t, TableState::Building);
            }
            self.jobs_tx
                .send(Job {
                    table: Some(t),
                    steps,
                })
                .map_err(|_| Error::Internal("index builders stopped".into()))?;
        }
        Ok(())
    }

    /// The error of a run whose remaining tables are stuck on failed chunks.
    async fn stuck_error(&self) -> Error {
        let failed = match self.watch.client.as_ref() {
            Some(c) => state::failed_chunks(c, &self.shared.state)
                .await
                .unwrap_or_default(),
            None => Vec::new(),
        };
        let failed = if failed.is_empty() {
            vec!["see `howdah status` for the failed chunks".to_string()]
        } else {
            failed
        };
        Error::ChunksFailed { failed }
    }
}

/// Records `--max-rate` for the job when given (a cap set by `status --set-max-rate` stays
/// otherwise), and starts the process's throttle at its share of the job's cap.
async fn start_rate_cap(
    settings: &CopySettings,
    st: &StateRef,
) -> Result<Arc<crate::rate::Throttle>> {
    let client = crate::connect::connect(&settings.target, crate::connect::Side::Target).await?;
    if let Some(cap) = settings.max_rate {
        crate::state::rate::set(&client, st, cap).await?;
    }
    let cap = crate::state::rate::get(&client, st).await?;
    if let Some(c) = cap {
        tracing::info!(
            "max rate of job \"{}\": {} (change it while it runs: howdah status --job {} --set-max-rate RATE)",
            st.job,
            c.describe(),
            st.job
        );
    }
    crate::metrics::rate_cap(cap);
    crate::metrics::rate_achieved(0.0, 0.0);
    let throttle = crate::rate::Throttle::new(None);
    if cap.is_some() {
        let workers = crate::state::rate::live_workers(&client, st, settings.lease_secs).await?;
        throttle.set(cap, workers);
    }
    Ok(Arc::new(throttle))
}
