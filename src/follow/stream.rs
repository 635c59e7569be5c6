//! The apply loop: reads the slot's stream at the pace of applying (one task: a message is
//! read only when the previous one is in the target's buffer), folds many source transactions
//! into one target transaction, and commits it with the applied position (the follow commit
//! point); the source hears of that position only after the commit.
//!
//! Invariants: a source transaction whose commit precedes the applied position is skipped,
//! whatever the server resends after a restart; a transaction is never split over two target
//! transactions; a relation whose columns differ from the target table stops the loop before
//! any of its changes is applied; between transactions the loop reads the job's follow row
//! (cutover requested, job ended elsewhere) and measures lag and retained WAL on the source.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_postgres::Client;

use crate::catalog::{quote_ident, quote_literal};
use crate::conninfo::PgUrl;
use crate::error::{db_reason, Error, Result};
use crate::follow::apply::{self, Applier, FollowedTable};
use crate::follow::mapped::{self, MappedTable};
use crate::follow::pgoutput::{self, lsn_text, parse_lsn, Lsn, Message, StreamMessage};
use crate::follow::wire::ReplConn;
use crate::state::follow as fstate;
use crate::state::StateRef;

/// Commit the target transaction after this long since its first change...
const BATCH_TIME: Duration = Duration::from_millis(200);
/// ...or after this many changes, at the next source commit.
const BATCH_CHANGES: u64 = 50_000;
/// How often the loop looks at the follow row and answers the server.
const TICK: Duration = Duration::from_millis(250);
/// How often the source's WAL position and the slot's retained WAL are measured.
const SOURCE_CHECK: Duration = Duration::from_secs(2);

/// What the loop needs.
pub struct Loop<'a> {
    /// The source (replication and side connections).
    pub source_url: &'a PgUrl,
    /// A plain source session for measurements.
    pub source: &'a Client,
    /// The job's state.
    pub st: &'a StateRef,
    /// Slot name.
    pub slot: &'a str,
    /// Publication name.
    pub publication: &'a str,
    /// The followed tables, as the stream sends them.
    pub tables: &'a [FollowedTable],
    /// Per followed table, its mapping (`None`: applied as sent).
    pub mapped: &'a [Option<MappedTable>],
    /// Drop the slot past this much retained WAL.
    pub max_retained_wal: Option<u64>,
    /// Set by Ctrl-C / SIGTERM.
    pub stop: Arc<AtomicBool>,
}

/// How the loop ended.
#[derive(Debug, PartialEq)]
pub enum Ended {
    /// A cutover was requested and everything up to its position is applied.
    CutoverReached {
        /// The applied position.
        applied: Lsn,
    },
    /// The job was cut over or aborted by another process.
    EndedElsewhere(String),
    /// Stopped by a signal; everything committed is kept.
    Interrupted,
}

struct Progress {
    applied: Lsn,
    /// End of the last whole transaction in the open target transaction.
    pending_end: Option<Lsn>,
    pending_time: Option<i64>,
    last_commit_time: Option<i64>,
    batch_started: Option<Instant>,
    keepalive_end: Lsn,
    source_end: Lsn,
    cutover: Option<Lsn>,
    /// Changes of mapped tables waiting to be read on the source.
    queue: mapped::Queue,
}

/// Runs the loop from `start` (the applied position recorded in the state) with `applier`
/// (whose session holds the follower lock).
pub async fn run(l: &Loop<'_>, applier: &mut Applier, start: Lsn) -> Result<Ended> {
    let mut repl = ReplConn::connect(l.source_url).await?;
    repl.start_copy_both(&format!(
        "START_REPLICATION SLOT {} LOGICAL {} (proto_version '1', publication_names {})",
        quote_ident(l.slot),
        lsn_text(start),
        quote_literal(&quote_ident(l.publication))
    ))
    .await?;
    tracing::info!(
        "following the source from {} (slot {})",
        lsn_text(start),
        l.slot
    );
    let by_name: HashMap<(String, String), usize> = l
        .tables
        .iter()
        .enumerate()
        .map(|(i, t)| ((t.source.schema.clone(), t.source.name.clone()), i))
        .collect();
    let mut rels: HashMap<u32, usize> = HashMap::new();
    let mut p = Progress {
        applied: start,
        pending_end: None,
        pending_time: None,
        last_commit_time: None,
        batch_started: None,
        keepalive_end: start,
        source_end: start,
        cutover: None,
        queue: mapped::Queue::default(),
    };
    let mut in_txn = false;
    let mut skip = false;
    let mut last_tick = Instant::now();
    let mut clocks = Clocks {
        last_check: Instant::now() - SOURCE_CHECK,
        last_idle_commit: Instant::now(),
    };
    loop {
        let wait = match p.batch_started {
            Some(t) if !in_txn => BATCH_TIME.saturating_sub(t.elapsed()),
            _ => TICK.saturating_sub(last_tick.elapsed()),
        };
        let next = tokio::time::timeout(wait, repl.next_copy_data()).await;
        match next {
            Ok(Ok(Some(payload))) => {
                let msg = pgoutput::decode_stream(payload).map_err(decode_err)?;
                match msg {
                    StreamMessage::Keepalive { wal_end, reply } => {
                        p.keepalive_end = p.keepalive_end.max(wal_end);
                        if reply {
                            send_status(&mut repl, &p, false).await?;
                        }
                    }
                    StreamMessage::XLogData { data, .. } => {
                        let m = pgoutput::decode(data).map_err(decode_err)?;
                        match m {
                            Message::Begin { final_lsn, xid, .. } => {
                                in_txn = true;
                                applier.mark();
                                p.queue.begin(xid);
                                skip =
                                    final_lsn < p.pending_end.unwrap_or(p.applied).max(p.applied);
                            }
                            Message::Commit {
                                end_lsn,
                                commit_time,
                                ..
                            } => {
                                in_txn = false;
                                if !skip {
                                    p.pending_end = Some(end_lsn);
                                    p.pending_time = Some(commit_time);
                                    p.batch_started.get_or_insert_with(Instant::now);
                                }
                                skip = false;
                            }
                            Message::Relation {
                                oid,
                                schema,
                                name,
                                columns,
                                ..
                            } => {
                                if let Some(&i) = by_name.get(&(schema, name)) {
                                    if let Err(e) = check_relation(&l.tables[i], &columns) {
                                        // Keep the whole transactions before the change.
                                        flush_mapped(l, applier, &mut p).await?;
                                        if applier.rewind() {
                                            commit(l, applier, &mut p, &mut repl).await?;
                                        }
                                        return Err(e);
                                    }
                                    rels.insert(oid, i);
                                }
                            }
                            change if !skip => {
                                apply_change(l, applier, &mut p, &rels, change).await?
                            }
                            _ => {}
                        }
                    }
                }
            }
            Ok(Ok(None)) => {
                return Err(Error::Transient {
                    what: "following the source".into(),
                    reason: "the server ended the replication stream".into(),
                })
            }
            Ok(Err(e)) => return Err(e),
            Err(_) => {}
        }
        if !in_txn {
            if let (Some(_), Some(started)) = (p.pending_end, p.batch_started) {
                if started.elapsed() >= BATCH_TIME || applier.pending_changes >= BATCH_CHANGES {
                    commit(l, applier, &mut p, &mut repl).await?;
                }
            }
        }
        if last_tick.elapsed() < TICK {
            continue;
        }
        last_tick = Instant::now();
        if l.stop.load(Ordering::Relaxed) {
            if !in_txn && p.pending_end.is_some() {
                commit(l, applier, &mut p, &mut repl).await?;
            }
            return Ok(Ended::Interrupted);
        }
        if in_txn || p.pending_end.is_some() {
            // Between transactions only: the session's transaction is open.
            continue;
        }
        match idle_tick(l, applier, &mut p, &mut repl, &mut clocks).await? {
            Tick::Go => {}
            Tick::End(ended) => return Ok(ended),
            Tick::OverLimit(retained) => {
                // The slot cannot be dropped while this session streams from it.
                drop(repl);
                return Err(over_limit(l, applier, &p, retained).await);
            }
        }
    }
}

/// Measures the source's WAL position and the slot's retained WAL (metrics, follow row);
/// returns the retained bytes when they pass `--max-retained-wal`.
async fn check_source(
    l: &Loop<'_>,
    applier: &mut Applier,
    p: &mut Progress,
) -> Result<Option<u64>> {
    let row = l
        .source
        .query_one(
            "SELECT pg_current_wal_lsn()::text, \
             (SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn)::bigint \
              FROM pg_replication_slots WHERE slot_name = $1)",
            &[&l.slot],
        )
        .await
        .map_err(|e| Error::Transient {
            what: "measuring the source's WAL position".into(),
            reason: db_reason(&e),
        })?;
    let end: String = row.get(0);
    let retained: Option<i64> = row.get(1);
    p.source_end = parse_lsn(&end).unwrap_or(p.source_end);
    let lag_bytes = p.source_end.saturating_sub(p.applied);
    let lag_secs = match p.last_commit_time {
        Some(t) if lag_bytes > 0 => ((pgoutput::pg_now_micros() - t) as f64 / 1e6).max(0.0),
        _ => 0.0,
    };
    let retained = retained.unwrap_or(0).max(0) as u64;
    crate::metrics::follow_measured(lag_bytes, lag_secs, retained);
    let _ =
        fstate::record_source(applier.session().await?, l.st, &end, Some(retained as i64)).await;
    Ok(l.max_retained_wal
        .filter(|limit| retained > *limit)
        .map(|_| retained))
}

/// Drops the slot and publication whose retained WAL passed the limit, records why, and
/// returns the error that stops the follow.
async fn over_limit(l: &Loop<'_>, applier: &mut Applier, p: &Progress, retained: u64) -> Error {
    let limit = l.max_retained_wal.unwrap_or(0);
    let msg = format!(
        "the replication slot {} retained {} of WAL on the source, over --max-retained-wal {}: \
         the slot and publication were dropped so the source's disk cannot fill; the target \
         holds the changes up to {}; start over with `howdah copy --follow --restart`",
        l.slot,
        crate::follow::lag::human_bytes(retained),
        crate::follow::lag::human_bytes(limit),
        lsn_text(p.applied)
    );
    let _ = crate::follow::slot::drop_slot(l.source, l.slot).await;
    let _ = crate::follow::slot::drop_publication(l.source, l.publication).await;
    if let Ok(session) = applier.session().await {
        let _ = fstate::set_phase(session, l.st, fstate::phase::ABORTED, Some(&msg)).await;
    }
    Error::Follow(msg)
}

/// Commits the open target transaction with the applied position, then tells the source.
async fn commit(
    l: &Loop<'_>,
    applier: &mut Applier,
    p: &mut Progress,
    repl: &mut ReplConn,
) -> Result<()> {
    let Some(end) = p.pending_end else {
        return Ok(());
    };
    flush_mapped(l, applier, p).await?;
    let changes = applier.pending_changes;
    let sql = fstate::applied_sql(
        l.st,
        &lsn_text(end),
        &lsn_text(p.source_end.max(end)),
        p.pending_time,
        changes,
    );
    applier.commit(&sql).await?;
    p.applied = end;
    p.last_commit_time = p.pending_time;
    p.pending_end = None;
    p.pending_time = None;
    p.batch_started = None;
    // `howdah_follow_changes_total` is counted by the applier once the commit landed.
    send_status(repl, p, false).await
}

async fn send_status(repl: &mut ReplConn, p: &Progress, reply: bool) -> Result<()> {
    let received = p.keepalive_end.max(p.applied);
    repl.send_copy_data(&pgoutput::status_update(received, p.applied, reply))
        .await
}

/// Stops when the stream's columns of a table differ from the target table's.
fn check_relation(t: &FollowedTable, cols: &[pgoutput::RelColumn]) -> Result<()> {
    let names: Vec<&str> = cols.iter().map(|c| c.name.as_str()).collect();
    let ours: Vec<&str> = t.columns.iter().map(String::as_str).collect();
    let change = if names != ours {
        let added: Vec<&str> = names
            .iter()
            .filter(|n| !ours.contains(n))
            .copied()
            .collect();
        let dropped: Vec<&str> = ours
            .iter()
            .filter(|n| !names.contains(n))
            .copied()
            .collect();
        let mut parts = Vec::new();
        if !added.is_empty() {
            parts.push(format!("column(s) {} added or renamed", added.join(", ")));
        }
        if !dropped.is_empty() {
            parts.push(format!(
                "column(s) {} dropped or renamed",
                dropped.join(", ")
            ));
        }
        if parts.is_empty() {
            parts.push("columns reordered".into());
        }
        Some(parts.join("; "))
    } else {
        // Built-in types have the same OID everywhere; user types are compared by name only.
        cols.iter()
            .zip(&t.type_oids)
            .find(|(c, &ours)| c.type_oid < 16384 && ours < 16384 && c.type_oid != ours)
            .map(|(c, _)| format!("column {} changed type", c.name))
    };
    match change {
        Some(change) => Err(Error::SchemaChanged {
            table: t.source.clone(),
            change,
        }),
        None => Ok(()),
    }
}

fn decode_err(e: pgoutput::DecodeError) -> Error {
    Error::Query {
        what: "decoding the replication stream".into(),
        reason: e.to_string(),
    }
}

/// What an idle tick of the loop found.
enum Tick {
    /// Keep streaming.
    Go,
    /// Stop with this outcome.
    End(Ended),
    /// The slot retains more WAL than allowed (bytes): drop it and stop.
    OverLimit(u64),
}

/// When the loop last did its periodic work.
struct Clocks {
    /// Last look at the source (retained WAL).
    last_check: Instant,
    /// Last commit of an idle position.
    last_idle_commit: Instant,
}

/// Between transactions, with nothing pending: moves the applied position over idle WAL,
/// reads the job's phase and cutover position, answers the server, and now and then checks
/// the WAL the slot retains.
async fn idle_tick(
    l: &Loop<'_>,
    applier: &mut Applier,
    p: &mut Progress,
    repl: &mut ReplConn,
    clocks: &mut Clocks,
) -> Result<Tick> {
    // Idle: every transaction committed before the server's last keepalive position has
    // been applied, so the position moves there (the slot then releases that WAL).
    if p.keepalive_end > p.applied
        && (clocks.last_idle_commit.elapsed() >= Duration::from_secs(1) || p.cutover.is_some())
    {
        let sql = fstate::applied_sql(
            l.st,
            &lsn_text(p.keepalive_end),
            &lsn_text(p.source_end.max(p.keepalive_end)),
            None,
            0,
        );
        applier.commit(&sql).await?;
        p.applied = p.keepalive_end;
        p.last_commit_time = None;
        clocks.last_idle_commit = Instant::now();
    }
    let row = applier
        .session()
        .await?
        .query_opt(
            &format!(
                "SELECT phase, cutover_lsn::text FROM {} WHERE job = $1",
                l.st.table("follow")
            ),
            &[&l.st.job],
        )
        .await
        .map_err(|e| crate::error::query_error("reading the follow state", &e))?;
    let Some(row) = row else {
        return Ok(Tick::End(Ended::EndedElsewhere("forgotten".into())));
    };
    let phase: String = row.get(0);
    if phase == fstate::phase::CUT_OVER || phase == fstate::phase::ABORTED {
        return Ok(Tick::End(Ended::EndedElsewhere(phase)));
    }
    p.cutover = row
        .get::<_, Option<String>>(1)
        .as_deref()
        .and_then(parse_lsn);
    if let Some(c) = p.cutover {
        if p.applied >= c {
            return Ok(Tick::End(Ended::CutoverReached { applied: p.applied }));
        }
    }
    // Ask for a keepalive when waiting for a cutover position, so the idle position moves.
    send_status(repl, p, p.cutover.is_some()).await?;
    if clocks.last_check.elapsed() >= SOURCE_CHECK {
        clocks.last_check = Instant::now();
        if let Some(retained) = check_source(l, applier, p).await? {
            return Ok(Tick::OverLimit(retained));
        }
    }
    Ok(Tick::Go)
}

/// Hands the queued changes of mapped tables to the applier (before anything else reaches it,
/// so that changes keep their order).
async fn flush_mapped(l: &Loop<'_>, applier: &mut Applier, p: &mut Progress) -> Result<()> {
    p.queue
        .flush(l.source, l.tables, l.mapped, applier, l.st)
        .await
}

/// Adds one data change of a followed table (`rels`: relation OID -> table) to the batch; a
/// mapped table's change waits in the queue, to be read on the source with others.
async fn apply_change(
    l: &Loop<'_>,
    applier: &mut Applier,
    p: &mut Progress,
    rels: &HashMap<u32, usize>,
    change: Message,
) -> Result<()> {
    let table = match &change {
        Message::Insert { oid, .. } | Message::Update { oid, .. } | Message::Delete { oid, .. } => {
            match rels.get(oid) {
                Some(&i) => i,
                None => return Ok(()),
            }
        }
        Message::Truncate { .. } => usize::MAX,
        _ => return Ok(()),
    };
    if l.mapped.get(table).is_some_and(Option::is_some) {
        let queued = match change {
            Message::Insert { new, .. } => mapped::Change::Insert(new),
            Message::Update { old, new, .. } => mapped::Change::Update(old, new),
            Message::Delete { old, .. } => mapped::Change::Delete(old),
            _ => return Ok(()),
        };
        p.queue.push(table, queued);
        if p.queue.is_full() {
            flush_mapped(l, applier, p).await?;
        }
        return Ok(());
    }
    flush_mapped(l, applier, p).await?;
    match change {
        Message::Insert { new, .. } => {
            apply::insert(applier.buffer(), &l.tables[table], &new)?;
            applier.added().await?;
        }
        Message::Update { old, new, .. } => {
            apply::update(applier.buffer(), &l.tables[table], old.as_deref(), &new)?;
            applier.added().await?;
        }
        Message::Delete { old, .. } => {
            apply::delete(applier.buffer(), &l.tables[table], &old)?;
            applier.added().await?;
        }
        Message::Truncate {
            restart_identity,
            oids,
        } => {
            let ts: Vec<&FollowedTable> = oids
                .iter()
                .filter_map(|o| rels.get(o))
                .map(|&i| &l.tables[i])
                .collect();
            if !ts.is_empty() {
                apply::truncate(applier.buffer(), &ts, restart_identity);
                applier.added().await?;
            }
        }
        _ => {}
    }
    Ok(())
}
