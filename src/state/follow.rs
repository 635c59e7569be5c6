//! The follow state of a job (table `follow` in the state schema): the source slot and
//! publication, the last source position applied, the phase, and a cutover request.
//!
//! THE FOLLOW COMMIT POINT: [`applied_sql`] runs in the same target transaction as the changes
//! it covers, so `applied_lsn` never differs from what the target holds; the source learns
//! that position (the slot's flush) only after that transaction committed.

use tokio_postgres::Client;

use crate::catalog::quote_literal;
use crate::error::{db_reason, Error, Result};
use crate::state::StateRef;

/// Phases of a followed job.
pub mod phase {
    /// The bulk copy runs (or was interrupted).
    pub const COPY: &str = "copy";
    /// Changes are being applied.
    pub const FOLLOW: &str = "follow";
    /// Cut over: slot and publication dropped, the target took over.
    pub const CUT_OVER: &str = "cut over";
    /// Aborted: slot and publication dropped without cutting over.
    pub const ABORTED: &str = "aborted";
}

/// The table, created when missing (older layout-3 state schemas gain it without migration).
pub fn create_sql(st: &StateRef) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {t} (
            job text PRIMARY KEY,
            slot text NOT NULL,
            publication text NOT NULL,
            start_lsn pg_lsn NOT NULL,
            applied_lsn pg_lsn NOT NULL,
            applied_at timestamptz,
            applied_commit_time timestamptz,
            source_lsn pg_lsn,
            retained_bytes bigint,
            changes bigint NOT NULL DEFAULT 0,
            phase text NOT NULL,
            cutover_lsn pg_lsn,
            error text,
            updated_at timestamptz NOT NULL DEFAULT now()
        );
        ALTER TABLE {t} ADD COLUMN IF NOT EXISTS start_pos text,
            ADD COLUMN IF NOT EXISTS applied_pos text, ADD COLUMN IF NOT EXISTS source_pos text,
            ADD COLUMN IF NOT EXISTS cutover_pos text, ADD COLUMN IF NOT EXISTS lag_bytes bigint,
            ADD COLUMN IF NOT EXISTS keys_from_pos text,
            ADD COLUMN IF NOT EXISTS keys_act boolean NOT NULL DEFAULT false,
            ADD COLUMN IF NOT EXISTS replay_through text",
        t = st.table("follow")
    )
}

fn q(what: &'static str) -> impl Fn(tokio_postgres::Error) -> Error {
    move |e| Error::Query {
        what: what.into(),
        reason: db_reason(&e),
    }
}

/// Creates the table if needed.
pub async fn ensure(target: &Client, st: &StateRef) -> Result<()> {
    target
        .batch_execute(&format!(
            "CREATE SCHEMA IF NOT EXISTS {}; {}",
            crate::catalog::quote_ident(&st.schema),
            create_sql(st)
        ))
        .await
        .map_err(q("creating the follow state table on the target"))
}

/// A job's follow row.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FollowRow {
    /// Source slot.
    pub slot: String,
    /// Source publication.
    pub publication: String,
    /// Where the stream started (the slot's consistent point).
    pub start_lsn: String,
    /// The end of the last source transaction applied.
    pub applied_lsn: String,
    /// Source end of WAL last seen.
    pub source_lsn: Option<String>,
    /// Bytes of source WAL behind the applied position (source end of WAL last seen minus
    /// applied).
    pub lag_bytes: Option<i64>,
    /// Seconds between the last applied commit on the source and its apply (0 when caught up).
    pub lag_seconds: Option<f64>,
    /// WAL the slot retained on the source, last measured.
    pub retained_bytes: Option<i64>,
    /// Changes applied so far.
    pub changes: i64,
    /// Phase (see [`phase`]).
    pub phase: String,
    /// A cutover was requested at this source LSN.
    pub cutover_lsn: Option<String>,
    /// Why the follower stopped, if it failed.
    pub error: Option<String>,
    /// Seconds since the follower last wrote this row.
    pub idle_seconds: f64,
}

/// Reads a job's follow row; `None` when the job does not follow (or the table is missing).
pub async fn load(target: &Client, st: &StateRef) -> Result<Option<FollowRow>> {
    let exists: bool = target
        .query_one("SELECT to_regclass($1) IS NOT NULL", &[&st.table("follow")])
        .await
        .map_err(q("reading the follow state"))?
        .get(0);
    if !exists {
        return Ok(None);
    }
    let row = target
        .query_opt(
            &format!(
                "SELECT slot, publication, coalesce(start_pos, start_lsn::text), \
                   coalesce(applied_pos, applied_lsn::text), coalesce(source_pos, source_lsn::text), \
                   CASE WHEN applied_pos IS NULL THEN pg_wal_lsn_diff(source_lsn, applied_lsn)::bigint \
                     ELSE lag_bytes END, \
                   extract(epoch FROM applied_at - applied_commit_time)::float8, \
                   retained_bytes, changes, phase, coalesce(cutover_pos, cutover_lsn::text), error, \
                   extract(epoch FROM now() - updated_at)::float8 \
                 FROM {} WHERE job = $1",
                st.table("follow")
            ),
            &[&st.job],
        )
        .await
        .map_err(q("reading the follow state"))?;
    Ok(row.map(|r| FollowRow {
        slot: r.get(0),
        publication: r.get(1),
        start_lsn: r.get(2),
        applied_lsn: r.get(3),
        source_lsn: r.get(4),
        lag_bytes: r.get::<_, Option<i64>>(5).map(|b| b.max(0)),
        lag_seconds: r.get::<_, Option<f64>>(6).map(|s| s.max(0.0)),
        retained_bytes: r.get(7),
        changes: r.get(8),
        phase: r.get(9),
        cutover_lsn: r.get(10),
        error: r.get(11),
        idle_seconds: r.get::<_, Option<f64>>(12).unwrap_or(0.0),
    }))
}

/// Records a new follow start (replacing an earlier one of the job).
pub async fn record_start(
    target: &Client,
    st: &StateRef,
    slot: &str,
    publication: &str,
    start_lsn: &str,
) -> Result<()> {
    target
        .execute(
            &format!(
                "INSERT INTO {} (job, slot, publication, start_lsn, applied_lsn, phase) \
                 VALUES ($1, $2, $3, $4::text::pg_lsn, $4::text::pg_lsn, 'copy') \
                 ON CONFLICT (job) DO UPDATE SET slot = EXCLUDED.slot, \
                   publication = EXCLUDED.publication, start_lsn = EXCLUDED.start_lsn, \
                   applied_lsn = EXCLUDED.applied_lsn, phase = 'copy', cutover_lsn = NULL, \
                   error = NULL, changes = 0, source_lsn = NULL, applied_at = NULL, \
                   applied_commit_time = NULL, retained_bytes = NULL, updated_at = now()",
                st.table("follow")
            ),
            &[&st.job, &slot, &publication, &start_lsn],
        )
        .await
        .map(|_| ())
        .map_err(q("recording the follow start"))
}

/// Sets the phase (and the error, cleared when `None`).
pub async fn set_phase(
    target: &Client,
    st: &StateRef,
    phase: &str,
    error: Option<&str>,
) -> Result<()> {
    target
        .execute(
            &format!(
                "UPDATE {} SET phase = $2, error = $3, updated_at = now() WHERE job = $1",
                st.table("follow")
            ),
            &[&st.job, &phase, &error],
        )
        .await
        .map(|_| ())
        .map_err(q("recording the follow phase"))
}

/// Records a cutover request at source position `lsn`.
pub async fn request_cutover(target: &Client, st: &StateRef, lsn: &str) -> Result<()> {
    target
        .execute(
            &format!(
                "UPDATE {} SET cutover_lsn = $2::text::pg_lsn WHERE job = $1",
                st.table("follow")
            ),
            &[&st.job, &lsn],
        )
        .await
        .map(|_| ())
        .map_err(q("recording the cutover request"))
}

/// The statement that moves the applied position, run in the transaction of the changes it
/// covers. `commit_time` is the last applied source commit (microseconds since 2000-01-01).
pub fn applied_sql(
    st: &StateRef,
    applied_lsn: &str,
    source_lsn: &str,
    commit_time: Option<i64>,
    changes: u64,
) -> String {
    let commit = match commit_time {
        Some(us) => format!("timestamptz '2000-01-01 00:00:00+00' + interval '{us} microseconds'"),
        None => "now()".into(),
    };
    format!(
        "UPDATE {t} SET applied_lsn = {a}::pg_lsn, source_lsn = greatest(source_lsn, {s}::pg_lsn), \
         applied_at = now(), applied_commit_time = {commit}, changes = changes + {changes}, \
         updated_at = now() WHERE job = {job};",
        t = st.table("follow"),
        a = quote_literal(applied_lsn),
        s = quote_literal(source_lsn),
        job = quote_literal(&st.job),
    )
}

/// Records the source's end of WAL and the slot's retained WAL (outside any apply).
pub async fn record_source(
    target: &Client,
    st: &StateRef,
    source_lsn: &str,
    retained: Option<i64>,
) -> Result<()> {
    target
        .execute(
            &format!(
                "UPDATE {} SET source_lsn = greatest(source_lsn, $2::text::pg_lsn), \
                 retained_bytes = coalesce($3, retained_bytes), updated_at = now() WHERE job = $1",
                st.table("follow")
            ),
            &[&st.job, &source_lsn, &retained],
        )
        .await
        .map(|_| ())
        .map_err(q("recording the source position"))
}

/// How long a follower waits for the job's lock before it says another process holds it.
pub const LOCK_WAIT: std::time::Duration = std::time::Duration::from_secs(20);

/// Takes the job's follower lock in `session`; whether it got it. Waits up to [`LOCK_WAIT`]:
/// a follower that has just stopped (Ctrl-C, a cut connection, this process's previous
/// attempt) holds the lock until its server session notices it is gone, and the same
/// command run again at once must not fail for that.
pub async fn take_lock(session: &Client, st: &StateRef) -> Result<bool> {
    let sql = lock_sql(st, "pg_try_advisory_lock");
    let waited = std::time::Instant::now();
    loop {
        let locked: bool = session
            .query_one(&sql, &[])
            .await
            .map_err(|e| crate::error::query_error("taking the job's follower lock", &e))?
            .get(0);
        if locked || waited.elapsed() >= LOCK_WAIT {
            return Ok(locked);
        }
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
}

/// The advisory lock a follower of the job holds: a single 64-bit key of its own, apart from
/// the workers' two-key locks that count live workers.
pub fn lock_sql(st: &StateRef, fun: &str) -> String {
    let key = crate::state::fnv1a(&[
        b"howdah follow ",
        st.schema.as_bytes(),
        b"/",
        st.job.as_bytes(),
    ]) as i64;
    format!("SELECT {fun}({key})")
}

// Binary log positions (MySQL/MariaDB sources). The LSN columns stay at 0/0 for such a job;
// its positions are text (`binlog.000012:4711 gtid 0-1-73`, see `follow/binlog/position.rs`)
// in the `*_pos` columns, which `load` reads in place of the LSNs, and its lag in bytes is
// measured by the follower (`lag_bytes`).

/// Records a new follow start from a binary log position (replacing an earlier one).
pub async fn record_start_pos(
    target: &Client,
    st: &StateRef,
    slot: &str,
    position: &str,
) -> Result<()> {
    target
        .execute(
            &format!(
                "INSERT INTO {} (job, slot, publication, start_lsn, applied_lsn, start_pos, \
                   applied_pos, phase) VALUES ($1, $2, $2, '0/0', '0/0', $3, $3, 'copy') \
                 ON CONFLICT (job) DO UPDATE SET slot = EXCLUDED.slot, \
                   publication = EXCLUDED.publication, start_lsn = '0/0', applied_lsn = '0/0', \
                   start_pos = EXCLUDED.start_pos, applied_pos = EXCLUDED.applied_pos, \
                   phase = 'copy', cutover_lsn = NULL, cutover_pos = NULL, error = NULL, \
                   keys_from_pos = NULL, keys_act = false, replay_through = NULL, \
                   changes = 0, source_lsn = NULL, source_pos = NULL, lag_bytes = NULL, \
                   applied_at = NULL, applied_commit_time = NULL, retained_bytes = NULL, \
                   updated_at = now()",
                st.table("follow")
            ),
            &[&st.job, &slot, &position],
        )
        .await
        .map(|_| ())
        .map_err(q("recording the follow start"))
}

/// The binary log position where the follow stops overlapping the copy
/// (`follow/binlog/overlap.rs`): the source's position `now` when the follow first started
/// after the copy, which every snapshot the copy read in precedes. Recorded once (later calls
/// return the recorded one). `None`: the overlap is over (the target's foreign keys act), or
/// the follow was recorded before this existed.
pub async fn keys_from_pos(
    target: &Client,
    st: &StateRef,
    now: Option<&str>,
) -> Result<Option<String>> {
    let row = target
        .query_opt(
            &format!(
                "UPDATE {} SET keys_from_pos = coalesce(keys_from_pos, $2) WHERE job = $1 \
                 RETURNING CASE WHEN keys_act THEN NULL ELSE keys_from_pos END",
                st.table("follow")
            ),
            &[&st.job, &now],
        )
        .await
        .map_err(q("recording where the follow stops overlapping the copy"))?;
    Ok(row.and_then(|r| r.get(0)))
}

/// The statement that marks the overlap with the copy over (run in the transaction that
/// lets the target's foreign keys act).
pub fn keys_act_sql(st: &StateRef) -> String {
    format!(
        "UPDATE {} SET keys_act = true WHERE job = {};",
        st.table("follow"),
        quote_literal(&st.job)
    )
}

/// How far the changes a MySQL follower sent may reach (`replay_through`, recorded before
/// each send by a session of its own: `follow/apply.rs`, `ReplayMark`): a restart applies
/// the changes up to it as upserts.
pub async fn replay_through(target: &Client, st: &StateRef) -> Result<Option<String>> {
    let row = target
        .query_opt(
            &format!(
                "SELECT replay_through FROM {} WHERE job = $1",
                st.table("follow")
            ),
            &[&st.job],
        )
        .await
        .map_err(q("reading how far the last follower's changes reached"))?;
    Ok(row.and_then(|r| r.get(0)))
}

/// The statement recording `replay_through` = `position`.
pub fn replay_through_sql(st: &StateRef, position: &str) -> String {
    format!(
        "UPDATE {} SET replay_through = {} WHERE job = {}",
        st.table("follow"),
        quote_literal(position),
        quote_literal(&st.job)
    )
}

/// Records a cutover request at binary log position `position`.
pub async fn request_cutover_pos(target: &Client, st: &StateRef, position: &str) -> Result<()> {
    target
        .execute(
            &format!(
                "UPDATE {} SET cutover_pos = $2 WHERE job = $1",
                st.table("follow")
            ),
            &[&st.job, &position],
        )
        .await
        .map(|_| ())
        .map_err(q("recording the cutover request"))
}

/// The statement that moves the applied binary log position, run in the transaction of the
/// changes it covers. `commit_time` is the last applied source commit (seconds since the
/// epoch, as the binary log stamps events).
pub fn applied_pos_sql(
    st: &StateRef,
    applied: &str,
    source: &str,
    lag_bytes: Option<i64>,
    commit_time: Option<u32>,
    changes: u64,
) -> String {
    let commit = match commit_time {
        Some(s) => format!("to_timestamp({s})"),
        None => "now()".into(),
    };
    format!(
        "UPDATE {t} SET applied_pos = {a}, source_pos = {s}, \
         lag_bytes = {lag}, applied_at = now(), applied_commit_time = {commit}, \
         changes = changes + {changes}, updated_at = now() WHERE job = {job};",
        t = st.table("follow"),
        a = quote_literal(applied),
        s = quote_literal(source),
        lag = lag_bytes.map_or("lag_bytes".to_string(), |l| l.to_string()),
        job = quote_literal(&st.job),
    )
}

/// Records the source's end of binary log, the lag behind it and the binary log the source
/// keeps for the follow (outside any apply).
pub async fn record_source_pos(
    target: &Client,
    st: &StateRef,
    source: &str,
    lag_bytes: i64,
    retained: Option<i64>,
) -> Result<()> {
    target
        .execute(
            &format!(
                "UPDATE {} SET source_pos = $2, lag_bytes = $3, \
                 retained_bytes = coalesce($4, retained_bytes), updated_at = now() WHERE job = $1",
                st.table("follow")
            ),
            &[&st.job, &source, &lag_bytes, &retained],
        )
        .await
        .map(|_| ())
        .map_err(q("recording the source position"))
}
