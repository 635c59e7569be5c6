//! Prometheus metrics: every name, unit, label and description in one place, the exporter, and
//! the per-table handles the pipeline updates once per batch (never per row).
//!
//! Naming follows Prometheus: base units (`_seconds`, `_bytes`), `_total` for counters. Labels
//! take a small fixed set of values: `table` (the selected tables), `stage`, `state`, `kind`;
//! never keys, chunk numbers or URLs. Without `--metrics-addr` no recorder is installed and
//! every update is a no-op.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Arc;

use metrics::{
    describe_counter, describe_gauge, describe_histogram, Counter, Gauge, Histogram, Unit,
};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder};

use crate::error::{Error, Result};

/// Rows per table and stage: `read` from the source, `written` into a target COPY, `committed`
/// with a checkpoint (a retried batch is read and written again, committed once).
pub const ROWS: &str = "howdah_rows_total";
/// Tuple bytes per table and stage (same stages as [`ROWS`]).
pub const BYTES: &str = "howdah_bytes_total";
/// Rows rejected per table (bad values sent to the rejects table instead of the target).
pub const ROWS_REJECTED: &str = "howdah_rows_rejected_total";
/// Chunks per table and state: `pending`, `running`, `done`, `failed` (the whole job, all workers).
pub const CHUNKS: &str = "howdah_chunks";
/// Seconds from a chunk's claim to its last commit, per table (histogram).
pub const CHUNK_DURATION: &str = "howdah_chunk_duration_seconds";
/// Chunk attempts retried after a transient error, per table.
pub const RETRIES: &str = "howdah_retries_total";
/// Errors by kind: `transient` (retried), `permanent` (chunk failed), `lease_lost` (chunk taken
/// over by another worker), `step` (a schema step failed).
pub const ERRORS: &str = "howdah_errors_total";
/// Lanes copying a chunk right now.
pub const LANES_ACTIVE: &str = "howdah_lanes_active";
/// Lanes of this process (`--jobs`).
pub const LANES: &str = "howdah_lanes";
/// Batches waiting between readers and writers, summed over lanes: near capacity, the target
/// is the bottleneck; near zero, the source is.
pub const QUEUED_BATCHES: &str = "howdah_queued_batches";
/// Room between readers and writers, in batches, summed over lanes.
pub const QUEUE_CAPACITY: &str = "howdah_queue_capacity_batches";
/// Seconds a batch waited, by stage: `read` (a reader waiting for room: backpressure from the
/// target), `write` (a writer waiting for rows: the source is slower). A histogram: the rate of
/// its `_sum` is the share of lane time spent waiting.
pub const BATCH_WAIT: &str = "howdah_batch_wait_seconds";
/// Rows the source's statistics estimated, per table.
pub const TABLE_ROWS_ESTIMATED: &str = "howdah_table_rows_estimated";
/// Tables by state: `waiting`, `copying`, `building` (keys, indexes, ANALYZE), `done`, `failed`.
pub const TABLES: &str = "howdah_tables";
/// How much of the job's data is in, 0 to 1: each table's committed rows over its estimate,
/// weighted by the table's size.
pub const PROGRESS: &str = "howdah_progress_ratio";
/// Seconds until the data is all in, at the job's rate so far (absent until measurable).
pub const ETA: &str = "howdah_eta_seconds";
/// Post-data and final steps by kind: `ran`, or `skipped` (done by an earlier run or another
/// worker).
pub const STEPS: &str = "howdah_steps_total";
/// Seconds per post-data or final step (histogram).
pub const STEP_DURATION: &str = "howdah_step_duration_seconds";
/// Always 1, labelled with the howdah `version`.
pub const BUILD_INFO: &str = "howdah_build_info";
/// The job's `--max-rate`, per second, in its `unit` (`bytes` or `rows`); 0 for the unit not
/// capped (both 0: no cap).
pub const RATE_LIMIT: &str = "howdah_rate_limit_per_second";
/// What this process achieved over the last 2 s, per second, by `unit` (`bytes`, `rows`).
pub const RATE: &str = "howdah_rate_per_second";
/// Units of [`RATE_LIMIT`] and [`RATE`].
pub const RATE_UNITS: [&str; 2] = ["bytes", "rows"];

/// Every metric: name, type, labels. The README's metrics reference and the tests follow it.
pub const ALL: &[(&str, &str, &[&str])] = &[
    (ROWS, "counter", &["table", "stage"]),
    (BYTES, "counter", &["table", "stage"]),
    (ROWS_REJECTED, "counter", &["table"]),
    (CHUNKS, "gauge", &["table", "state"]),
    (CHUNK_DURATION, "histogram", &["table"]),
    (RETRIES, "counter", &["table"]),
    (ERRORS, "counter", &["kind"]),
    (LANES_ACTIVE, "gauge", &[]),
    (LANES, "gauge", &[]),
    (QUEUED_BATCHES, "gauge", &[]),
    (QUEUE_CAPACITY, "gauge", &[]),
    (BATCH_WAIT, "histogram", &["stage"]),
    (TABLE_ROWS_ESTIMATED, "gauge", &["table"]),
    (TABLES, "gauge", &["state"]),
    (PROGRESS, "gauge", &[]),
    (ETA, "gauge", &[]),
    (STEPS, "counter", &["kind"]),
    (STEP_DURATION, "histogram", &[]),
    (BUILD_INFO, "gauge", &["version"]),
    (RATE_LIMIT, "gauge", &["unit"]),
    (RATE, "gauge", &["unit"]),
];

/// Publishes the job's cap (`None`: no cap, both units 0).
pub fn rate_cap(cap: Option<crate::rate::RateCap>) {
    for unit in RATE_UNITS {
        let v = match cap {
            Some(c) if unit == "rows" && c.unit == crate::rate::RateUnit::Rows => c.per_sec as f64,
            Some(c) if unit == "bytes" && c.unit == crate::rate::RateUnit::Bytes => {
                c.per_sec as f64
            }
            _ => 0.0,
        };
        metrics::gauge!(RATE_LIMIT, "unit" => unit).set(v);
    }
}

/// Publishes the rate this process achieved (rows and bytes per second).
pub fn rate_achieved(rows: f64, bytes: f64) {
    metrics::gauge!(RATE, "unit" => "rows").set(rows);
    metrics::gauge!(RATE, "unit" => "bytes").set(bytes);
}

/// `copy --follow`: bytes of source WAL not yet applied (source end of WAL minus the applied
/// position), measured every 2 s.
pub const FOLLOW_LAG_BYTES: &str = "howdah_follow_lag_bytes";
/// `copy --follow`: seconds between the last applied source commit and now, while behind
/// (0 once caught up).
pub const FOLLOW_LAG_SECONDS: &str = "howdah_follow_lag_seconds";
/// `copy --follow`: source changes applied (rows inserted, updated or deleted; truncates).
pub const FOLLOW_CHANGES: &str = "howdah_follow_changes_total";
/// `copy --follow`: WAL the job's replication slot keeps on the source.
pub const FOLLOW_RETAINED_WAL: &str = "howdah_follow_retained_wal_bytes";
/// `copy --follow`: 1 for the phase the job is in (`copy`, `follow`, `cut over`), else 0.
pub const FOLLOW_PHASE: &str = "howdah_follow_phase";
/// `copy --follow --apply-lanes N` (MySQL/MariaDB): row changes spread by key over the apply
/// sessions, per `lane` (0 is the session that commits the position), counted once committed.
pub const FOLLOW_LANE_CHANGES: &str = "howdah_follow_lane_changes_total";
/// `copy --follow`: times the follower started over from its committed position after a
/// transient failure (a cut connection, a lock timeout, the target disagreeing with a change);
/// the log says why.
pub const FOLLOW_RESTARTS: &str = "howdah_follow_restarts_total";

/// The metrics of `copy --follow`, present only while a job follows (same shape as [`ALL`]).
pub const FOLLOW_ALL: &[(&str, &str, &[&str])] = &[
    (FOLLOW_LAG_BYTES, "gauge", &[]),
    (FOLLOW_LAG_SECONDS, "gauge", &[]),
    (FOLLOW_CHANGES, "counter", &[]),
    (FOLLOW_RETAINED_WAL, "gauge", &[]),
    (FOLLOW_PHASE, "gauge", &["phase"]),
    (FOLLOW_RESTARTS, "counter", &[]),
];

/// Phases of [`FOLLOW_PHASE`].
pub const FOLLOW_PHASES: [&str; 3] = ["copy", "follow", "cut over"];

/// Records a measurement of the follow's lag and the slot's retained WAL.
pub fn follow_measured(lag_bytes: u64, lag_seconds: f64, retained: u64) {
    metrics::gauge!(FOLLOW_LAG_BYTES).set(lag_bytes as f64);
    metrics::gauge!(FOLLOW_LAG_SECONDS).set(lag_seconds);
    metrics::gauge!(FOLLOW_RETAINED_WAL).set(retained as f64);
}

/// Counts changes committed to the target.
pub fn follow_applied(changes: u64) {
    metrics::counter!(FOLLOW_CHANGES).increment(changes);
}

/// Counts `n` restarts of the follower (0 at its start, so the series exists from then on).
pub fn follow_restarts(n: u64) {
    metrics::counter!(FOLLOW_RESTARTS).increment(n);
}

/// Counts row changes sent through apply lane `lane` (`--apply-lanes`).
pub fn follow_lane_changes(lane: usize, changes: u64) {
    // Lanes are few (at most 16): the label is a small fixed set.
    metrics::counter!(FOLLOW_LANE_CHANGES, "lane" => lane.to_string()).increment(changes);
}

/// Sets the follow phase gauge.
pub fn follow_phase(phase: &str) {
    for p in FOLLOW_PHASES {
        metrics::gauge!(FOLLOW_PHASE, "phase" => p).set(if p == phase { 1.0 } else { 0.0 });
    }
}

/// Seconds the job's oldest open source transaction has run (its snapshot's age; 0: none).
pub const SNAPSHOT_AGE: &str = "howdah_source_snapshot_age_seconds";
/// PostgreSQL: age in transactions of the xmin of the job's sessions (`scope="job"`) and of
/// the oldest xmin on the source server (`scope="server"`).
pub const XMIN_AGE: &str = "howdah_source_xmin_age";
/// Seconds the source server's oldest open transaction (any session) has run.
pub const OLDEST_XACT_AGE: &str = "howdah_source_oldest_transaction_age_seconds";
/// MySQL/MariaDB: InnoDB's history list length (undo records purge has not removed).
pub const HISTORY_LIST: &str = "howdah_source_history_list_length";

/// What the copy holds back on its source, sampled every 10 s (src/snapshot_hold.rs); same
/// shape as [`ALL`]. `XMIN_AGE` is PostgreSQL's, `HISTORY_LIST` MySQL's.
pub const SNAPSHOT_ALL: &[(&str, &str, &[&str])] = &[
    (SNAPSHOT_AGE, "gauge", &[]),
    (XMIN_AGE, "gauge", &["scope"]),
    (OLDEST_XACT_AGE, "gauge", &[]),
    (HISTORY_LIST, "gauge", &[]),
];

/// Records a sample of the source's snapshot hold.
pub fn snapshot_hold(
    snapshot_age: f64,
    job_xmin_age: Option<i64>,
    server_xmin_age: Option<i64>,
    oldest_xact_age: f64,
    history_list: Option<i64>,
) {
    metrics::gauge!(SNAPSHOT_AGE).set(snapshot_age);
    for (scope, v) in [("job", job_xmin_age), ("server", server_xmin_age)] {
        if let Some(v) = v {
            metrics::gauge!(XMIN_AGE, "scope" => scope).set(v as f64);
        }
    }
    metrics::gauge!(OLDEST_XACT_AGE).set(oldest_xact_age);
    if let Some(h) = history_list {
        metrics::gauge!(HISTORY_LIST).set(h as f64);
    }
}

/// Row stages of [`ROWS`] and [`BYTES`].
pub const STAGES: [&str; 3] = ["read", "written", "committed"];
/// Chunk states of [`CHUNKS`].
pub const CHUNK_STATES: [&str; 4] = ["pending", "running", "done", "failed"];
/// Table states of [`TABLES`].
pub const TABLE_STATES: [&str; 5] = ["waiting", "copying", "building", "done", "failed"];
/// Error kinds of [`ERRORS`].
pub const ERROR_KINDS: [&str; 4] = ["transient", "permanent", "lease_lost", "step"];

/// Buckets of the batch wait histogram, in seconds.
const WAIT_BUCKETS: [f64; 8] = [0.0001, 0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 2.0];

/// Buckets of the duration histograms, in seconds: from a tenth of a second to two hours.
const DURATION_BUCKETS: [f64; 14] = [
    0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0, 1800.0, 7200.0,
];

/// Starts the exporter's HTTP listener on `addr` (scrape any path, e.g. `/metrics`) and
/// describes every metric. Needs a running tokio runtime.
pub fn install(addr: SocketAddr) -> Result<()> {
    let fail =
        |e: &dyn std::fmt::Display| Error::Config(format!("cannot serve metrics on {addr}: {e}"));
    PrometheusBuilder::new()
        .with_http_listener(addr)
        .set_buckets_for_metric(
            Matcher::Suffix("_duration_seconds".into()),
            &DURATION_BUCKETS,
        )
        .map_err(|e| fail(&e))?
        .set_buckets_for_metric(Matcher::Full(BATCH_WAIT.into()), &WAIT_BUCKETS)
        .map_err(|e| fail(&e))?
        .install()
        .map_err(|e| fail(&e))?;
    describe();
    Ok(())
}

/// Registers the description and unit of every metric.
fn describe() {
    describe_counter!(
        ROWS,
        Unit::Count,
        "Rows per table and stage (read, written, committed)."
    );
    describe_counter!(
        BYTES,
        Unit::Bytes,
        "Tuple bytes per table and stage (read, written, committed)."
    );
    describe_counter!(ROWS_REJECTED, Unit::Count, "Rows rejected per table.");
    describe_gauge!(
        CHUNKS,
        Unit::Count,
        "Chunks of the job per table and state (pending, running, done, failed)."
    );
    describe_histogram!(
        CHUNK_DURATION,
        Unit::Seconds,
        "Seconds from a chunk's claim to its last commit."
    );
    describe_counter!(
        RETRIES,
        Unit::Count,
        "Chunk attempts retried after a transient error."
    );
    describe_counter!(
        ERRORS,
        Unit::Count,
        "Errors by kind (transient, permanent, lease_lost, step)."
    );
    describe_gauge!(LANES_ACTIVE, Unit::Count, "Lanes copying a chunk now.");
    describe_gauge!(LANES, Unit::Count, "Copy lanes of this process.");
    describe_gauge!(
        QUEUED_BATCHES,
        Unit::Count,
        "Batches waiting between readers and writers (all lanes)."
    );
    describe_gauge!(
        QUEUE_CAPACITY,
        Unit::Count,
        "Room between readers and writers in batches (all lanes)."
    );
    describe_histogram!(
        BATCH_WAIT,
        Unit::Seconds,
        "Seconds a batch waited: readers for room (read), writers for rows (write)."
    );
    describe_gauge!(
        TABLE_ROWS_ESTIMATED,
        Unit::Count,
        "Rows per table estimated from the source's statistics."
    );
    describe_gauge!(
        TABLES,
        Unit::Count,
        "Tables by state (waiting, copying, building, done, failed)."
    );
    describe_gauge!(
        PROGRESS,
        Unit::Count,
        "Committed rows over estimated rows of the job."
    );
    describe_gauge!(
        ETA,
        Unit::Seconds,
        "Seconds until the job is done: the data at the job's rate so far, its index builds and foreign key checks."
    );
    describe_counter!(
        STEPS,
        Unit::Count,
        "Post-data and final steps run or skipped (done elsewhere)."
    );
    describe_histogram!(
        STEP_DURATION,
        Unit::Seconds,
        "Seconds per post-data or final step."
    );
    describe_gauge!(
        SNAPSHOT_AGE,
        Unit::Seconds,
        "Seconds the job's oldest open source transaction (its snapshot) has run."
    );
    describe_gauge!(
        XMIN_AGE,
        Unit::Count,
        "PostgreSQL source: age in transactions of the job's xmin and of the server's oldest."
    );
    describe_gauge!(
        OLDEST_XACT_AGE,
        Unit::Seconds,
        "Seconds the source server's oldest open transaction has run."
    );
    describe_gauge!(
        HISTORY_LIST,
        Unit::Count,
        "MySQL/MariaDB source: InnoDB history list length (undo not yet purged)."
    );
    describe_gauge!(
        FOLLOW_LAG_BYTES,
        Unit::Bytes,
        "Source WAL not yet applied by the follow (source end of WAL minus applied position)."
    );
    describe_gauge!(
        FOLLOW_LAG_SECONDS,
        Unit::Seconds,
        "Seconds since the last applied source commit, while the follow is behind."
    );
    describe_counter!(
        FOLLOW_CHANGES,
        Unit::Count,
        "Source changes applied to the target by the follow."
    );
    describe_gauge!(
        FOLLOW_RETAINED_WAL,
        Unit::Bytes,
        "WAL the job's replication slot keeps on the source."
    );
    describe_gauge!(
        FOLLOW_PHASE,
        Unit::Count,
        "1 for the follow phase the job is in (copy, follow, cut over)."
    );
    describe_counter!(
        FOLLOW_LANE_CHANGES,
        Unit::Count,
        "Row changes spread by key over the follow's apply sessions, per lane, once committed."
    );
    describe_counter!(
        FOLLOW_RESTARTS,
        Unit::Count,
        "Times the follower started over from its committed position after a transient failure."
    );
    describe_gauge!(
        RATE_LIMIT,
        Unit::Count,
        "The job's --max-rate per second in its unit (bytes or rows); 0: that unit is not capped."
    );
    describe_gauge!(
        RATE,
        Unit::Count,
        "Rows or bytes per second this process sent to the target over the last 2 s."
    );
    describe_gauge!(
        BUILD_INFO,
        Unit::Count,
        "Always 1; the version label says which howdah runs."
    );
}

/// In-process counts of one table, read by the terminal display.
#[derive(Debug, Default)]
pub struct Live {
    /// Rows.
    pub rows: AtomicU64,
    /// Tuple bytes.
    pub bytes: AtomicU64,
}

/// Handles for one stage of one table, bumped once per batch.
#[derive(Clone)]
pub struct StageCounters {
    rows: Counter,
    bytes: Counter,
    live: Option<Arc<Live>>,
}

impl StageCounters {
    /// Counts one batch.
    pub fn add(&self, rows: u64, bytes: u64) {
        self.rows.increment(rows);
        self.bytes.increment(bytes);
        if let Some(live) = &self.live {
            live.rows.fetch_add(rows, Ordering::Relaxed);
            live.bytes.fetch_add(bytes, Ordering::Relaxed);
        }
    }

    /// Handles that count nothing (tests, tools).
    pub fn noop() -> Self {
        StageCounters {
            rows: Counter::noop(),
            bytes: Counter::noop(),
            live: None,
        }
    }
}

/// Handles of one table.
#[derive(Clone)]
pub struct TableMetrics {
    /// Rows and bytes read from the source.
    pub read: StageCounters,
    /// Rows and bytes sent into a target COPY.
    pub written: StageCounters,
    /// Rows and bytes committed with a checkpoint.
    pub committed: StageCounters,
    /// Chunk durations.
    pub chunk_duration: Histogram,
    /// Retried attempts.
    pub retries: Counter,
    /// Rejected rows.
    pub rejected: Counter,
}

impl TableMetrics {
    /// Creates (and so exports, at zero) every series of table `name`; rows written also
    /// count in `live`, for the terminal.
    pub fn new(name: &str, estimated_rows: i64, live: Arc<Live>) -> Self {
        let stage = |s: &'static str, live: Option<Arc<Live>>| StageCounters {
            rows: metrics::counter!(ROWS, "table" => name.to_string(), "stage" => s),
            bytes: metrics::counter!(BYTES, "table" => name.to_string(), "stage" => s),
            live,
        };
        metrics::gauge!(TABLE_ROWS_ESTIMATED, "table" => name.to_string())
            .set(estimated_rows.max(0) as f64);
        let m = TableMetrics {
            read: stage("read", None),
            written: stage("written", Some(live)),
            committed: stage("committed", None),
            chunk_duration: metrics::histogram!(CHUNK_DURATION, "table" => name.to_string()),
            retries: metrics::counter!(RETRIES, "table" => name.to_string()),
            rejected: metrics::counter!(ROWS_REJECTED, "table" => name.to_string()),
        };
        for s in [&m.read, &m.written, &m.committed] {
            s.add(0, 0);
        }
        m.retries.increment(0);
        m.rejected.increment(0);
        m
    }

    /// Handles that count nothing.
    pub fn noop() -> Self {
        TableMetrics {
            read: StageCounters::noop(),
            written: StageCounters::noop(),
            committed: StageCounters::noop(),
            chunk_duration: Histogram::noop(),
            retries: Counter::noop(),
            rejected: Counter::noop(),
        }
    }
}

/// Process-wide handles.
#[derive(Clone)]
pub struct RunMetrics {
    /// Lanes copying now.
    pub lanes_active: Gauge,
    /// Batches queued between readers and writers.
    pub queued: Gauge,
    /// Reader wait per batch (backpressure).
    pub read_wait: Histogram,
    /// Writer wait per batch (slow source).
    pub write_wait: Histogram,
}

impl RunMetrics {
    /// Handles that count nothing.
    pub fn noop() -> Self {
        RunMetrics {
            lanes_active: Gauge::noop(),
            queued: Gauge::noop(),
            read_wait: Histogram::noop(),
            write_wait: Histogram::noop(),
        }
    }

    /// Creates the process-wide series: lanes, queue capacity, build info, zeroed counters.
    pub fn new(lanes: usize, channel_batches: usize) -> Self {
        metrics::gauge!(LANES).set(lanes as f64);
        metrics::gauge!(QUEUE_CAPACITY).set((lanes * channel_batches) as f64);
        metrics::gauge!(BUILD_INFO, "version" => env!("CARGO_PKG_VERSION")).set(1.0);
        for kind in ERROR_KINDS {
            metrics::counter!(ERRORS, "kind" => kind).increment(0);
        }
        for kind in ["ran", "skipped"] {
            metrics::counter!(STEPS, "kind" => kind).increment(0);
        }
        RunMetrics {
            lanes_active: metrics::gauge!(LANES_ACTIVE),
            queued: metrics::gauge!(QUEUED_BATCHES),
            read_wait: metrics::histogram!(BATCH_WAIT, "stage" => "read"),
            write_wait: metrics::histogram!(BATCH_WAIT, "stage" => "write"),
        }
    }
}

/// Handles for one chunk's reader and writer; batches still queued when it is dropped (after a
/// failure) leave the queue gauge.
pub struct ChunkMetrics {
    /// The table's handles.
    pub table: TableMetrics,
    read_wait: Histogram,
    write_wait: Histogram,
    queued: Gauge,
    net: AtomicI64,
}

impl ChunkMetrics {
    /// Handles for a chunk of `table`.
    pub fn new(table: &TableMetrics, run: &RunMetrics) -> Self {
        ChunkMetrics {
            table: table.clone(),
            read_wait: run.read_wait.clone(),
            write_wait: run.write_wait.clone(),
            queued: run.queued.clone(),
            net: AtomicI64::new(0),
        }
    }

    /// Handles that count nothing.
    pub fn noop() -> Self {
        ChunkMetrics::new(&TableMetrics::noop(), &RunMetrics::noop())
    }

    /// A reader queued a batch after waiting `waited` for room.
    pub fn queued(&self, waited: std::time::Duration) {
        self.read_wait.record(waited.as_secs_f64());
        self.queued.increment(1.0);
        self.net.fetch_add(1, Ordering::Relaxed);
    }

    /// A writer took a batch after waiting `waited` for it.
    pub fn dequeued(&self, waited: std::time::Duration) {
        self.write_wait.record(waited.as_secs_f64());
        self.queued.decrement(1.0);
        self.net.fetch_sub(1, Ordering::Relaxed);
    }
}

impl Drop for ChunkMetrics {
    fn drop(&mut self) {
        self.queued
            .decrement(self.net.load(Ordering::Relaxed) as f64);
    }
}

/// Counts an error of `kind` (one of [`ERROR_KINDS`]).
pub fn error(kind: &'static str) {
    metrics::counter!(ERRORS, "kind" => kind).increment(1);
}

/// Counts a step that ran (`true`) or was skipped, with its duration.
pub fn step(ran: bool, seconds: f64) {
    metrics::counter!(STEPS, "kind" => if ran { "ran" } else { "skipped" }).increment(1);
    if ran {
        metrics::histogram!(STEP_DURATION).record(seconds);
    }
}

/// Sets the job-wide gauges from a progress poll: chunks by state per table, tables by state,
/// progress ratio and ETA.
pub fn job_progress(
    chunks: &[(String, [i64; 4])],
    tables: [usize; 5],
    ratio: f64,
    eta: Option<f64>,
) {
    for (table, counts) in chunks {
        for (state, n) in CHUNK_STATES.iter().zip(counts) {
            metrics::gauge!(CHUNKS, "table" => table.clone(), "state" => *state).set(*n as f64);
        }
    }
    for (state, n) in TABLE_STATES.iter().zip(tables) {
        metrics::gauge!(TABLES, "state" => *state).set(n as f64);
    }
    metrics::gauge!(PROGRESS).set(ratio);
    if let Some(eta) = eta {
        metrics::gauge!(ETA).set(eta);
    }
}
