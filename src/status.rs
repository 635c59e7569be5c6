//! `howdah status`: what the checkpoint state in the target says about a job.

use std::fmt::Write as _;

use serde::Serialize;
use tokio_postgres::Client;

use crate::error::{db_reason, Error, Result};
use crate::state::StateRef;

/// One table of a job.
#[derive(Debug, Clone, Serialize)]
pub struct TableStatus {
    /// `schema.table`.
    pub table: String,
    /// Chunks fully copied.
    pub chunks_done: i64,
    /// Chunks with some rows committed.
    pub chunks_running: i64,
    /// Chunks not started.
    pub chunks_pending: i64,
    /// Chunks whose last attempt failed (a resume retries them).
    pub chunks_failed: i64,
    /// Rows committed.
    pub rows: i64,
    /// Tuple bytes committed.
    pub bytes: i64,
    /// Rows the source's statistics estimated when the job was planned.
    pub estimated_rows: i64,
    /// Errors of its chunks' failed attempts.
    pub last_error: Option<String>,
}

/// One job.
#[derive(Debug, Clone, Serialize)]
pub struct JobStatus {
    /// Job name.
    pub job: String,
    /// `data` (copying or interrupted) or `done`.
    pub phase: String,
    /// When the job was created (RFC 3339).
    pub started_at: String,
    /// Last progress (RFC 3339).
    pub updated_at: String,
    /// Rows committed over the job's whole life.
    pub rows: i64,
    /// Bytes committed.
    pub bytes: i64,
    /// Rows estimated for the whole job.
    pub estimated_rows: i64,
    /// Rows per second between the job's start and its last progress.
    pub rows_per_second: f64,
    /// Bytes per second over the same time.
    pub bytes_per_second: f64,
    /// The job's `--max-rate`, shared by its workers (`None`: no cap).
    pub max_rate: Option<crate::rate::RateCap>,
    /// What the job is doing: `data`, `indexes`, `constraints` or `done` (see
    /// [`crate::eta::Stage`]).
    pub stage: crate::eta::Stage,
    /// Seconds until the job is done: the data left at the job's rate so far plus the index
    /// builds left (see [`crate::eta`]); `None` when done or before any rate is known.
    pub eta_seconds: Option<f64>,
    /// Seconds until the data is in, at the job's rate so far (0 once it is).
    pub data_eta_seconds: Option<f64>,
    /// Size on the source of the job's indexes (PostgreSQL sources), and of those built.
    pub index_bytes: i64,
    /// See `index_bytes`.
    pub index_bytes_done: i64,
    /// Source bytes of the tables whose foreign keys are still to be checked.
    pub check_bytes_left: i64,
    /// Post-data and final steps finished.
    pub steps_done: i64,
    /// The error that stopped the last run, if any.
    pub last_error: Option<String>,
    /// Per table.
    pub tables: Vec<TableStatus>,
    /// Processes that worked on the job.
    pub workers: Vec<WorkerStatus>,
    /// Foreign keys the copy added `NOT VALID` because the copied rows violate them (orphan
    /// counts as of the last run).
    pub invalid_foreign_keys: Vec<crate::state::invalid_keys::InvalidKey>,
    /// `copy --follow`: the slot, the applied position, lag, retained WAL and phase.
    pub follow: Option<crate::state::follow::FollowRow>,
    /// The job's large objects, when it copies any.
    pub large_objects: Option<crate::state::large_objects::LoStatus>,
    /// With `status --source`: what the job's snapshot holds back on the source now.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub source_snapshot: Option<crate::snapshot_hold::SnapshotHold>,
}

/// One `howdah copy` process that joined a job.
#[derive(Debug, Clone, Serialize)]
pub struct WorkerStatus {
    /// Worker number (the owner recorded on chunks).
    pub worker: i32,
    /// Host name of the machine it runs on.
    pub host: String,
    /// Process id on that host.
    pub pid: i32,
    /// When it joined (RFC 3339).
    pub started_at: String,
    /// Its last heartbeat (RFC 3339).
    pub heartbeat_at: String,
    /// Whether it still holds its liveness lock (its process runs).
    pub alive: bool,
    /// Chunks it finished.
    pub chunks_done: i64,
    /// Chunks it is copying now.
    pub chunks_running: i64,
}

fn err(what: &str) -> impl Fn(tokio_postgres::Error) -> Error + '_ {
    move |e| Error::Query {
        what: what.to_string(),
        reason: db_reason(&e),
    }
}

/// Reads the status of one job, or of every job when `job` is `None`.
pub async fn read(client: &Client, schema: &str, job: Option<&str>) -> Result<Vec<JobStatus>> {
    let exists: bool = client
        .query_one(
            "SELECT to_regclass(format('%I.jobs', $1::text)) IS NOT NULL",
            &[&schema],
        )
        .await
        .map_err(err("looking for the state tables"))?
        .get(0);
    if !exists {
        if let Some(message) = crate::state::state_elsewhere_message(client, schema).await? {
            return Err(Error::Config(message));
        }
        return Err(Error::Config(format!(
            "the target has no howdah state (no table {schema}.jobs): no copy has run against it"
        )));
    }
    let st = StateRef {
        schema: schema.to_string(),
        job: String::new(),
    };
    let jobs = client
        .query(
            &format!(
                "SELECT name, phase, to_char(created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), \
                 to_char(updated_at AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"'), last_error, \
                 (SELECT count(*) FROM {steps} s WHERE s.job = j.name), \
                 greatest(extract(epoch FROM (SELECT max(c.updated_at) FROM {chunks} c WHERE c.job = j.name) - j.created_at), 0)::float8 \
                 FROM {jobs} j WHERE $1::text IS NULL OR name = $1 ORDER BY name",
                steps = st.table("steps"),
                chunks = st.table("chunks"),
                jobs = st.table("jobs")
            ),
            &[&job],
        )
        .await
        .map_err(err("reading jobs"))?;
    if jobs.is_empty() {
        return Err(Error::Config(match job {
            Some(j) => format!("the target has no job named \"{j}\""),
            None => "the target's state holds no job".to_string(),
        }));
    }
    let mut out = Vec::new();
    for j in jobs {
        let name: String = j.get(0);
        let rows = client
            .query(
                &format!(
                    "SELECT table_name, count(*) FILTER (WHERE status = 'done'), \
                     count(*) FILTER (WHERE status = 'running'), count(*) FILTER (WHERE status = 'pending'), \
                     sum(rows_done)::int8, sum(bytes_done)::int8, sum(estimated_rows)::int8, \
                     count(*) FILTER (WHERE status = 'failed'), string_agg(DISTINCT last_error, ' | ') \
                     FROM {} WHERE job = $1 GROUP BY table_no, table_name ORDER BY table_no",
                    st.table("chunks")
                ),
                &[&name],
            )
            .await
            .map_err(err("reading chunks"))?;
        let tables: Vec<TableStatus> = rows
            .iter()
            .map(|r| TableStatus {
                table: r.get(0),
                chunks_done: r.get(1),
                chunks_running: r.get(2),
                chunks_pending: r.get(3),
                rows: r.get::<_, Option<i64>>(4).unwrap_or(0),
                bytes: r.get::<_, Option<i64>>(5).unwrap_or(0),
                estimated_rows: r.get::<_, Option<i64>>(6).unwrap_or(0),
                chunks_failed: r.get(7),
                last_error: r.get(8),
            })
            .collect();
        let workers = read_workers(client, &st, &name).await?;
        let invalid_foreign_keys = crate::state::invalid_keys::read(
            client,
            &StateRef {
                schema: schema.to_string(),
                job: name.clone(),
            },
        )
        .await?;
        let follow = crate::state::follow::load(
            client,
            &StateRef {
                schema: schema.to_string(),
                job: name.clone(),
            },
        )
        .await?;
        let large_objects = crate::state::large_objects::status(
            client,
            &StateRef {
                schema: schema.to_string(),
                job: name.clone(),
            },
        )
        .await?;
        let max_rate = crate::state::rate::get(
            client,
            &StateRef {
                schema: schema.to_string(),
                job: name.clone(),
            },
        )
        .await?;
        let phase: String = j.get(1);
        let total_rows: i64 = tables.iter().map(|t| t.rows).sum();
        let estimated: i64 = tables.iter().map(|t| t.estimated_rows).sum();
        let elapsed: Option<f64> = j.get(6);
        let rate = match elapsed {
            Some(secs) if secs > 0.0 => total_rows as f64 / secs,
            _ => 0.0,
        };
        let total_bytes: i64 = tables.iter().map(|t| t.bytes).sum();
        let bytes_rate = match elapsed {
            Some(secs) if secs > 0.0 => total_bytes as f64 / secs,
            _ => 0.0,
        };
        let builds = crate::state::builds::by_table(
            client,
            &StateRef {
                schema: schema.to_string(),
                job: name.clone(),
            },
        )
        .await?;
        let rows_in = |table: &str| {
            tables
                .iter()
                .find(|t| t.table == table)
                .is_none_or(|t| t.chunks_running + t.chunks_pending + t.chunks_failed == 0)
        };
        let mut left = crate::eta::Left::default();
        for b in &builds {
            match rows_in(&b.table) {
                true => left.ready_index_bytes += b.index_bytes_left,
                false => left.later_index_bytes += b.index_bytes_left,
            }
            left.check_bytes += b.check_bytes_left;
        }
        // Lanes take the longest copy first: the smallest table not in comes in last.
        let last = tables
            .iter()
            .filter(|t| !rows_in(&t.table))
            .min_by_key(|t| t.estimated_rows);
        left.last_index_bytes = last
            .and_then(|l| builds.iter().find(|b| b.table == l.table))
            .map_or(0, |b| b.index_bytes_left);
        let index_bytes: i64 = builds.iter().map(|b| b.index_bytes).sum();
        let index_bytes_left = left.ready_index_bytes + left.later_index_bytes;
        let data_left = tables
            .iter()
            .any(|t| t.chunks_running + t.chunks_pending + t.chunks_failed > 0)
            || large_objects
                .as_ref()
                .is_some_and(|lo| lo.chunks_done < lo.chunks);
        let stage = crate::eta::Stage::of(phase == "done", data_left, index_bytes_left > 0);
        let data_eta = match stage {
            crate::eta::Stage::Data => {
                (rate > 0.0).then(|| (estimated - total_rows).max(0) as f64 / rate)
            }
            crate::eta::Stage::Done => None,
            _ => Some(0.0),
        };
        left.data_seconds = data_eta;
        let eta = crate::eta::total_seconds(stage, left);
        let index_bytes_done = index_bytes - index_bytes_left;
        let check_bytes_left = left.check_bytes;
        out.push(JobStatus {
            job: name,
            phase,
            started_at: j.get(2),
            updated_at: j.get(3),
            rows: total_rows,
            bytes: total_bytes,
            estimated_rows: estimated,
            rows_per_second: rate,
            bytes_per_second: bytes_rate,
            max_rate,
            stage,
            eta_seconds: eta,
            data_eta_seconds: data_eta,
            index_bytes,
            index_bytes_done,
            check_bytes_left,
            steps_done: j.get(5),
            last_error: j.get(4),
            tables,
            workers,
            invalid_foreign_keys,
            follow,
            large_objects,
            source_snapshot: None,
        });
    }
    Ok(out)
}

/// The workers of a job, with their liveness from `pg_locks` (absent before state layout 2).
async fn read_workers(client: &Client, st: &StateRef, job: &str) -> Result<Vec<WorkerStatus>> {
    let has_workers: bool = client
        .query_one(
            "SELECT to_regclass(format('%I.workers', $1::text)) IS NOT NULL",
            &[&st.schema],
        )
        .await
        .map_err(err("looking for the workers table"))?
        .get(0);
    if !has_workers {
        return Ok(Vec::new());
    }
    let key = StateRef {
        schema: st.schema.clone(),
        job: job.to_string(),
    }
    .lock_key();
    let ts = |c: &str| format!("to_char({c} AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS\"Z\"')");
    let rows = client
        .query(
            &format!(
                "SELECT w.worker_no, w.host, w.pid, {}, {}, EXISTS (SELECT 1 FROM pg_locks l \
                   WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 2 \
                   AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database()) \
                   AND l.classid = {key}::oid AND l.objid = w.worker_no::oid), \
                 (SELECT count(*) FROM {chunks} c WHERE c.job = w.job AND c.owner = w.worker_no AND c.status = 'done'), \
                 (SELECT count(*) FROM {chunks} c WHERE c.job = w.job AND c.owner = w.worker_no AND c.status = 'running') \
                 FROM {workers} w WHERE w.job = $1 ORDER BY w.worker_no",
                ts("w.started_at"),
                ts("w.heartbeat_at"),
                chunks = st.table("chunks"),
                workers = st.table("workers"),
            ),
            &[&job],
        )
        .await
        .map_err(err("reading workers"))?;
    Ok(rows
        .iter()
        .map(|r| WorkerStatus {
            worker: r.get(0),
            host: r.get(1),
            pid: r.get(2),
            started_at: r.get(3),
            heartbeat_at: r.get(4),
            alive: r.get(5),
            chunks_done: r.get(6),
            chunks_running: r.get(7),
        })
        .collect())
}

/// Seconds without news from a follower after which its slot is reported as left behind.
const FOLLOWER_SILENT_SECS: f64 = 60.0;

fn render_follow(s: &mut String, f: &crate::state::follow::FollowRow) {
    let mb = |b: Option<i64>| {
        b.map(|b| format!("{:.1} MB", b as f64 / 1e6))
            .unwrap_or_else(|| "unknown".into())
    };
    // A MySQL/MariaDB follow reads the binary log (its "slot" names the reader's server id).
    let binlog = f.slot.starts_with("binlog ");
    let (reader, kept) = if binlog {
        ("", "source binary log since the applied file")
    } else {
        ("slot ", "source WAL retained by the slot")
    };
    let _ = writeln!(
        s,
        "  follow: {} ({reader}{}), applied up to {}, lag {} / {:.1} s, {} change(s) applied, {kept} {}",
        f.phase,
        f.slot,
        f.applied_lsn,
        mb(f.lag_bytes),
        f.lag_seconds.unwrap_or(0.0),
        f.changes,
        mb(f.retained_bytes)
    );
    if let Some(c) = &f.cutover_lsn {
        let _ = writeln!(s, "  cutover requested at source position {c}");
    }
    if let Some(e) = &f.error {
        let _ = writeln!(s, "  follow error: {e}");
    }
    let live = f.phase == crate::state::follow::phase::COPY
        || f.phase == crate::state::follow::phase::FOLLOW;
    if live && binlog && f.idle_seconds > FOLLOWER_SILENT_SECS {
        let _ = writeln!(
            s,
            "  warning: no follower has reported for {:.0} s: resume the job (`howdah copy --follow` \
             again) before the source's binary logs from {} expire",
            f.idle_seconds, f.applied_lsn
        );
    } else if live && f.idle_seconds > FOLLOWER_SILENT_SECS {
        let _ = writeln!(
            s,
            "  warning: no follower has reported for {:.0} s: the slot {} keeps source WAL ({} when last measured) \
             until the job resumes (`howdah copy --follow` again) or is dropped (`howdah abort`)",
            f.idle_seconds,
            f.slot,
            mb(f.retained_bytes)
        );
    }
}

/// Renders jobs as a human-readable report.
pub fn render_text(jobs: &[JobStatus]) -> String {
    let mut s = String::new();
    for j in jobs {
        let _ =
            writeln!(
            s,
            "job {}: {} (started {}, last progress {}), {} of ~{} rows, {:.1} MB, {:.0} rows/s{}",
            j.job,
            match j.stage {
                crate::eta::Stage::Done => "done".to_string(),
                stage => format!("not finished, stage {}", stage.name()),
            },
            j.started_at,
            j.updated_at,
            j.rows,
            j.estimated_rows,
            j.bytes as f64 / 1e6,
            j.rows_per_second,
            j.eta_seconds.map(|e| format!(", ETA {e:.0} s")).unwrap_or_default()
        );
        if let Some(cap) = &j.max_rate {
            let _ = writeln!(
                s,
                "  max rate: {} shared by its workers (achieved on average: {:.1} MB/s, {:.0} rows/s)",
                cap.describe(),
                j.bytes_per_second / 1e6,
                j.rows_per_second
            );
        }
        if (j.index_bytes > 0 || j.check_bytes_left > 0) && j.stage != crate::eta::Stage::Done {
            let _ = writeln!(
                s,
                "  indexes: {:.1} of {:.1} MB built; foreign keys over {:.1} MB of tables to check \
                 (sizes on the source; the ETA counts {:.0} MB/s of indexes and {:.0} MB/s of checks)",
                j.index_bytes_done as f64 / 1e6,
                j.index_bytes as f64 / 1e6,
                j.check_bytes_left as f64 / 1e6,
                crate::eta::INDEX_BYTES_PER_SECOND / 1e6,
                crate::eta::CHECK_BYTES_PER_SECOND / 1e6,
            );
        }
        if let Some(e) = &j.last_error {
            let _ = writeln!(s, "  last error: {e}");
        }
        let _ = writeln!(
            s,
            "  {:<40} {:>6} {:>8} {:>8} {:>7} {:>12} {:>10}",
            "table", "done", "running", "pending", "failed", "rows", "MB"
        );
        for t in &j.tables {
            let _ = writeln!(
                s,
                "  {:<40} {:>6} {:>8} {:>8} {:>7} {:>12} {:>10.1}",
                t.table,
                t.chunks_done,
                t.chunks_running,
                t.chunks_pending,
                t.chunks_failed,
                t.rows,
                t.bytes as f64 / 1e6
            );
            if let Some(e) = &t.last_error {
                let _ = writeln!(s, "    error: {e}");
            }
        }
        if let Some(lo) = &j.large_objects {
            let _ = writeln!(
                s,
                "  large objects: {} of {} chunks done, {} of {} objects, {:.1} MB",
                lo.chunks_done,
                lo.chunks,
                lo.objects_done,
                lo.objects,
                lo.bytes_done as f64 / 1e6
            );
        }
        let _ = writeln!(s, "  post-data and final steps done: {}", j.steps_done);
        for k in &j.invalid_foreign_keys {
            let _ = writeln!(s, "  {k}");
        }
        if let Some(f) = &j.follow {
            render_follow(&mut s, f);
        }
        for line in j.source_snapshot.iter().flat_map(|h| h.describe()) {
            let _ = writeln!(s, "  source: {line}");
        }
        for w in &j.workers {
            let _ = writeln!(
                s,
                "  worker {} on {} (pid {}): {}, {} chunks done, {} running, last heartbeat {}",
                w.worker,
                w.host,
                w.pid,
                if w.alive { "running" } else { "gone" },
                w.chunks_done,
                w.chunks_running,
                w.heartbeat_at
            );
        }
    }
    s.trim_end().to_string()
}
