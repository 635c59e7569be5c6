//! The binary log apply loop: reads the source's binary log as a replica does (a
//! `COM_BINLOG_DUMP` stream through `mysql_async`'s binlog feature) from the applied position,
//! turns each row event of a followed table into target rows through the bulk converter,
//! folds many source transactions into one target transaction, and commits it with the
//! position after the last whole transaction (the follow commit point).
//!
//! Invariants: the stream starts at a transaction boundary and the position committed is
//! always the end of a commit event (XID, or a `COMMIT` query, or a standalone statement), so
//! a restart at any moment neither loses nor repeats a transaction; a transaction is never
//! split over two target transactions; DDL naming a followed table stops the loop (after the
//! whole transactions before it are committed) with the statement in the message, while
//! `TRUNCATE` is applied; between transactions the loop reads the job's follow row (cutover
//! requested, job ended elsewhere) and measures lag on the source.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use mysql_async::binlog::events::{EventData, RowsEventData};
use mysql_async::prelude::Queryable;
use mysql_async::{BinlogStream, BinlogStreamRequest, Conn};

use crate::conninfo::mysql::MyUrl;
use crate::error::{db_reason, my_error, Error, Result};
use crate::follow::apply::{Applier, Prior};
use crate::follow::binlog::position::{self, BinlogPos};
use crate::follow::binlog::rows;
use crate::follow::binlog::tables::{BinlogTable, Converted, Scratch};
use crate::state::follow as fstate;
use crate::state::StateRef;

/// Commit the target transaction after this long since its first change...
const BATCH_TIME: Duration = Duration::from_millis(200);
/// ...or after this many changes, at the next source commit.
const BATCH_CHANGES: u64 = 50_000;
/// How often the loop looks at the follow row.
const TICK: Duration = Duration::from_millis(250);
/// How often the source's position is measured.
const SOURCE_CHECK: Duration = Duration::from_secs(2);

/// MariaDB event types the row-based stream carries beyond MySQL's.
mod mariadb {
    pub const GTID: u8 = 162;
    pub const QUERY_COMPRESSED: u8 = 165;
    pub const DELETE_ROWS_COMPRESSED_V1: u8 = 171;
}

/// What the loop needs.
pub struct Loop<'a> {
    /// The source.
    pub url: &'a MyUrl,
    /// The job's state.
    pub st: &'a StateRef,
    /// The followed tables.
    pub tables: &'a [BinlogTable],
    /// The server id the stream registers with (unique among the source's replicas).
    pub server_id: u32,
    /// Set by Ctrl-C / SIGTERM.
    pub stop: Arc<AtomicBool>,
    /// Where the stream stops overlapping the copy: from there on the target's foreign keys
    /// act on applied changes (`None`: they always do).
    pub keys_from: Option<&'a BinlogPos>,
    /// The cascades replayed in the overlap (`overlap.rs`).
    pub cascades: &'a crate::follow::binlog::overlap::Cascades,
    /// How far the last follower's changes may have reached (`state/follow.rs`
    /// `replay_through`): changes read up to it are applied as upserts.
    pub replay_through: Option<&'a BinlogPos>,
    /// Tables (by reject name) whose rejects mean the target lacks rows the source holds:
    /// their changes are applied as upserts.
    pub with_rejects: &'a std::collections::HashSet<String>,
}

/// How the loop ended.
#[derive(Debug, PartialEq)]
pub enum Ended {
    /// A cutover was requested and everything up to its position is applied.
    CutoverReached(BinlogPos),
    /// The job was cut over or aborted by another process.
    EndedElsewhere(String),
    /// Stopped by a signal; everything committed is kept.
    Interrupted,
}

struct Progress {
    applied: BinlogPos,
    /// Position after the last whole transaction in the open target transaction.
    pending_end: Option<BinlogPos>,
    pending_time: Option<u32>,
    last_commit_time: Option<u32>,
    batch_started: Option<Instant>,
    /// The file being read and the end of the last event read.
    file: String,
    seen: u64,
    /// GTID state: domain -> `domain-server-seq`.
    gtids: Vec<(u32, String)>,
    source_end: BinlogPos,
    lag_bytes: u64,
    cutover: Option<BinlogPos>,
}

impl Progress {
    fn gtid_text(&self) -> Option<String> {
        if self.gtids.is_empty() {
            return None;
        }
        Some(
            self.gtids
                .iter()
                .map(|(_, g)| g.as_str())
                .collect::<Vec<_>>()
                .join(","),
        )
    }

    fn here(&self) -> BinlogPos {
        BinlogPos {
            file: self.file.clone(),
            pos: self.seen,
            gtid: self.gtid_text(),
        }
    }

    fn set_gtid(&mut self, domain: u32, server: u32, seq: u64) {
        let text = format!("{domain}-{server}-{seq}");
        match self.gtids.iter_mut().find(|(d, _)| *d == domain) {
            Some(slot) => slot.1 = text,
            None => self.gtids.push((domain, text)),
        }
    }
}

fn parse_gtids(text: Option<&str>) -> Vec<(u32, String)> {
    text.unwrap_or("")
        .split(',')
        .filter_map(|g| {
            let g = g.trim();
            let domain = g.split('-').next()?.parse().ok()?;
            Some((domain, g.to_string()))
        })
        .collect()
}

/// Opens the binary log stream at `from` on a new connection.
pub async fn open_stream(url: &MyUrl, server_id: u32, from: &BinlogPos) -> Result<BinlogStream> {
    let mut conn: Conn = crate::connect::connect_mysql(url).await?;
    // GTID events as MariaDB writes them (capability 4), and a heartbeat each second so an
    // idle stream still shows the loop it is alive.
    conn.query_drop("SET @mariadb_slave_capability = 4, @master_heartbeat_period = 1000000000")
        .await
        .map_err(|e| my_error("setting up the binary log stream", &e))?;
    conn.get_binlog_stream(
        BinlogStreamRequest::new(server_id)
            .with_filename(from.file.as_bytes())
            .with_pos(from.pos),
    )
    .await
    .map_err(|e| stream_error(&e, from))
}

/// A stream failure: a purged file is final (reported with the position), the rest transient.
fn stream_error(e: &mysql_async::Error, from: &BinlogPos) -> Error {
    if let mysql_async::Error::Server(s) = e {
        if s.code == 1236 {
            return Error::Follow(format!(
                "the source cannot send its binary log from {} ({}): the file was purged before \
                 the follow read it, or the position is not in it; the changes after it cannot \
                 be applied. Start the job over with `howdah copy --follow --restart --schema \
                 recreate` (and raise binlog_expire_logs_seconds)",
                from.text(),
                s.message
            ));
        }
    }
    Error::Transient {
        what: "reading the source's binary log".into(),
        reason: e.to_string(),
    }
}

/// Runs the loop from `start` (the applied position recorded in the state) with `applier`
/// (whose session holds the follower lock).
pub async fn run(l: &Loop<'_>, applier: &mut Applier, start: BinlogPos) -> Result<Ended> {
    let mut side = crate::connect::connect_mysql(l.url).await?;
    let logs = position::binary_logs(&mut side).await?;
    position::check_not_purged(&logs, &start, &l.st.job)?;
    let mut stream = open_stream(l.url, l.server_id, &start).await?;
    tracing::info!("following the source's binary log from {}", start.text());
    let by_name: HashMap<&str, usize> = l
        .tables
        .iter()
        .enumerate()
        .map(|(i, t)| (t.source.as_str(), i))
        .collect();
    let mut maps: HashMap<u64, usize> = HashMap::new();
    let mut scratch = Scratch::default();
    let mut p = Progress {
        gtids: parse_gtids(start.gtid.as_deref()),
        file: start.file.clone(),
        seen: start.pos,
        applied: start.clone(),
        pending_end: None,
        pending_time: None,
        last_commit_time: None,
        batch_started: None,
        source_end: start.clone(),
        lag_bytes: 0,
        cutover: None,
    };
    // Where changes say what the target holds at their key (`row_ops.rs`, `Prior`): past
    // what the last follower may have applied, in tables without rejects.
    // Both checked per rows event, so kept as flags: positions only grow, and a table's
    // rejects are looked up by index, not by hashing its name.
    let mut past_replay = l.replay_through.is_none();
    let mut past_overlap = l.keys_from.is_none();
    let mut with_rejects = Vec::with_capacity(l.tables.len());
    for t in l.tables {
        let rejects = l.with_rejects.contains(&t.reject_name);
        if rejects {
            tracing::info!(
                "{}: its changes are upserted: the job has rejects of it, rows the target lacks",
                t.reject_name
            );
        }
        with_rejects.push(rejects);
    }
    let mut in_txn = false;
    let mut last_tick = Instant::now();
    let mut last_check = Instant::now() - SOURCE_CHECK;
    let mut last_idle_commit = Instant::now();
    loop {
        let wait = match p.batch_started {
            Some(t) if !in_txn => BATCH_TIME.saturating_sub(t.elapsed()),
            _ => TICK.saturating_sub(last_tick.elapsed()),
        };
        match tokio::time::timeout(wait, stream.next()).await {
            Ok(Some(Ok(ev))) => {
                if !in_txn {
                    leave_overlap(l, applier, &mut p).await?;
                }
                let h = ev.header();
                let raw = h.event_type_raw();
                if (mariadb::QUERY_COMPRESSED..=mariadb::DELETE_ROWS_COMPRESSED_V1).contains(&raw) {
                    return Err(Error::Follow(
                        "the source compresses its binary log events (log_bin_compress = ON), \
                         which the follow cannot read; set log_bin_compress = OFF"
                            .into(),
                    ));
                }
                if raw == mariadb::GTID {
                    let d = ev.data();
                    if d.len() >= 13 {
                        let seq = u64::from_le_bytes(d[0..8].try_into().unwrap_or([0; 8]));
                        let domain = u32::from_le_bytes(d[8..12].try_into().unwrap_or([0; 4]));
                        p.set_gtid(domain, h.server_id(), seq);
                        // Not standalone: a transaction (BEGIN .. XID/COMMIT) follows.
                        if d[12] & 1 == 0 {
                            in_txn = true;
                            applier.mark();
                        }
                    }
                } else {
                    let data = ev.read_data().map_err(|e| Error::Transient {
                        what: "decoding the source's binary log".into(),
                        reason: e.to_string(),
                    })?;
                    match data {
                        Some(EventData::RotateEvent(r)) => {
                            let name = r.name().into_owned();
                            // The rotate the server sends first (position 0) comes before
                            // the format description says there are checksums, so its name
                            // may carry the 4 checksum bytes: it names the file asked for.
                            if h.log_pos() != 0 || !name.starts_with(&p.file) {
                                p.file = clean_file_name(&name);
                            }
                            p.seen = r.position();
                        }
                        Some(EventData::TableMapEvent(t)) => {
                            // A table id may be reused for another table: the latest map wins.
                            maps.remove(&t.table_id());
                            let ours = (t.database_name() == l.url.database.as_str())
                                .then(|| by_name.get(t.table_name().as_ref()))
                                .flatten();
                            if let Some(&i) = ours {
                                maps.insert(t.table_id(), i);
                            }
                        }
                        Some(EventData::RowsEvent(rows)) => {
                            if let Some(&i) = maps.get(&rows.table_id()) {
                                let end = u64::from(h.log_pos());
                                if !past_replay {
                                    past_replay = l.replay_through.is_none_or(|r| {
                                        position::compare(&p.file, end, &r.file, r.pos)
                                            == std::cmp::Ordering::Greater
                                    });
                                    if past_replay {
                                        tracing::info!(
                                            "past the changes the last follower may have \
                                             applied ({}:{end}): new rows are inserted and \
                                             changed rows updated, no longer upserted",
                                            p.file
                                        );
                                    }
                                }
                                // Past the overlap by position, not by `quiet`: a session
                                // that may not set session_replication_role is never quiet.
                                if !past_overlap {
                                    past_overlap = l.keys_from.is_none_or(|k| {
                                        position::compare(&p.file, end, &k.file, k.pos)
                                            == std::cmp::Ordering::Greater
                                    });
                                }
                                // Marks start past the last follower's: they must never
                                // fall below what it may have applied.
                                if past_replay && past_overlap {
                                    applier.note_position(&p.file, end);
                                }
                                let t = &l.tables[i];
                                let known = past_replay
                                    && past_overlap
                                    && !applier.quiet()
                                    && !with_rejects[i];
                                let ev = RowsEvent {
                                    t,
                                    rows: &rows,
                                    known,
                                };
                                if apply_rows(l, applier, &mut side, &stream, &mut scratch, ev)
                                    .await?
                                {
                                    with_rejects[i] = true;
                                }
                            }
                        }
                        Some(EventData::XidEvent(_)) => {
                            in_txn = false;
                            p.seen = u64::from(h.log_pos());
                            pending(&mut p, h.timestamp());
                        }
                        Some(EventData::QueryEvent(q)) => {
                            let sql = q.query();
                            let word = first_word(&sql);
                            if word == "BEGIN" {
                                in_txn = true;
                                applier.mark();
                            } else if word == "COMMIT" || word == "ROLLBACK" || word == "XA" {
                                in_txn = false;
                                p.seen = u64::from(h.log_pos());
                                pending(&mut p, h.timestamp());
                            } else if !in_txn {
                                // A statement of its own (DDL): its end is a commit point.
                                let mut truncated = false;
                                match ddl(l, &q.schema(), &sql) {
                                    Ddl::Other => {}
                                    Ddl::Truncate(i) => {
                                        // Rows queued for apply lanes must land before the
                                        // TRUNCATE, and in one send they would run beside it
                                        // (and wait for its lock while it waits for them):
                                        // everything commits first.
                                        if applier.lanes() > 1 {
                                            commit(l, applier, &mut p, true).await?;
                                        }
                                        applier.mark();
                                        truncate(applier, &l.tables[i]).await?;
                                        truncated = true;
                                    }
                                    Ddl::Stops(table) => {
                                        commit(l, applier, &mut p, true).await?;
                                        return Err(Error::SchemaChanged {
                                            table: crate::catalog::QualifiedName::new(
                                                l.url.database.as_str(),
                                                table.as_str(),
                                            ),
                                            change: format!(
                                                "the source ran `{}` at binary log position {}:{}; \
                                                 the follow stopped before it (everything before \
                                                 is applied). Apply the same change to the target \
                                                 table, or start over with `howdah copy --follow \
                                                 --restart --schema recreate`",
                                                shorten_sql(&sql),
                                                p.file,
                                                h.log_pos()
                                            ),
                                        });
                                    }
                                }
                                p.seen = u64::from(h.log_pos());
                                pending(&mut p, h.timestamp());
                                // ...and the TRUNCATE commits before lanes write to the table
                                // again (they would wait for its lock).
                                if truncated && applier.lanes() > 1 {
                                    commit(l, applier, &mut p, true).await?;
                                }
                            }
                        }
                        _ => {}
                    }
                }
                // A rotate's own position is in the file it ends: the next file starts at
                // the position it names (set above).
                let rotate = raw == mysql_async::binlog::EventType::ROTATE_EVENT as u8;
                if !in_txn && h.log_pos() != 0 && raw != mariadb::GTID && !rotate {
                    p.seen = p.seen.max(u64::from(h.log_pos()));
                }
            }
            Ok(Some(Err(e))) => return Err(stream_error(&e, &p.applied)),
            Ok(None) => {
                return Err(Error::Transient {
                    what: "following the source's binary log".into(),
                    reason: "the server ended the binary log stream".into(),
                })
            }
            Err(_) => {}
        }
        if !in_txn {
            if let (Some(_), Some(started)) = (&p.pending_end, p.batch_started) {
                if started.elapsed() >= BATCH_TIME || applier.pending_changes >= BATCH_CHANGES {
                    commit(l, applier, &mut p, false).await?;
                }
            }
        }
        if last_tick.elapsed() < TICK {
            continue;
        }
        last_tick = Instant::now();
        if l.stop.load(Ordering::Relaxed) {
            if !in_txn && p.pending_end.is_some() {
                commit(l, applier, &mut p, true).await?;
            }
            // An earlier batch commit may still be in flight: it lands before the stop.
            applier.session().await?;
            return Ok(Ended::Interrupted);
        }
        if in_txn || p.pending_end.is_some() {
            continue;
        }
        leave_overlap(l, applier, &mut p).await?;
        // Idle between transactions: every event up to `seen` is applied or not ours, so
        // the applied position moves there.
        let here = p.here();
        if !p.applied.reached(&here)
            && (last_idle_commit.elapsed() >= Duration::from_secs(1) || p.cutover.is_some())
        {
            let sql = fstate::applied_pos_sql(
                l.st,
                &here.text(),
                &p.source_end.text(),
                Some(p.lag_bytes_after(&here) as i64),
                None,
                0,
            );
            applier.commit(&sql).await?;
            p.applied = here;
            p.last_commit_time = None;
            last_idle_commit = Instant::now();
        }
        let row = applier
            .session()
            .await?
            .query_opt(
                &format!(
                    "SELECT phase, cutover_pos FROM {} WHERE job = $1",
                    l.st.table("follow")
                ),
                &[&l.st.job],
            )
            .await
            .map_err(|e| Error::Query {
                what: "reading the follow state".into(),
                reason: db_reason(&e),
            })?;
        let Some(row) = row else {
            return Ok(Ended::EndedElsewhere("forgotten".into()));
        };
        let phase: String = row.get(0);
        if phase == fstate::phase::CUT_OVER || phase == fstate::phase::ABORTED {
            return Ok(Ended::EndedElsewhere(phase));
        }
        p.cutover = row
            .get::<_, Option<String>>(1)
            .as_deref()
            .and_then(BinlogPos::parse);
        if let Some(c) = &p.cutover {
            if p.applied.reached(c) {
                return Ok(Ended::CutoverReached(p.applied.clone()));
            }
        }
        if last_check.elapsed() >= SOURCE_CHECK {
            last_check = Instant::now();
            check_source(l, applier, &mut p, &mut side).await?;
        }
    }
}

impl Progress {
    fn lag_bytes_after(&self, at: &BinlogPos) -> u64 {
        if at.reached(&self.source_end) {
            0
        } else {
            self.lag_bytes
        }
    }
}

/// Past the overlap with the copy (between transactions): commits what the overlap queued
/// as it was, then lets the target's foreign keys act and runs the cascades the binary log
/// left out (`overlap.rs`).
async fn leave_overlap(l: &Loop<'_>, applier: &mut Applier, p: &mut Progress) -> Result<()> {
    // Checked between every two transactions of the overlap: from the parts, without
    // building the position's text.
    let past = |k: &BinlogPos| {
        position::compare(&p.file, p.seen, &k.file, k.pos) != std::cmp::Ordering::Less
    };
    if !applier.quiet() || !l.keys_from.is_some_and(past) {
        return Ok(());
    }
    commit(l, applier, p, true).await?;
    crate::follow::binlog::overlap::leave(
        applier.session().await?,
        l.cascades,
        &fstate::keys_act_sql(l.st),
    )
    .await?;
    applier.keys_act();
    tracing::info!(
        "the follow is past its overlap with the copy at {}: the target's foreign keys act on \
         the changes from here on",
        p.here().text()
    );
    Ok(())
}

/// Marks the end of a whole source transaction at the current position.
fn pending(p: &mut Progress, timestamp: u32) {
    p.pending_end = Some(p.here());
    p.pending_time = Some(timestamp);
    p.batch_started.get_or_insert_with(Instant::now);
}

/// Measures the source's end of binary log and the lag behind it (metrics, follow row).
async fn check_source(
    l: &Loop<'_>,
    applier: &mut Applier,
    p: &mut Progress,
    side: &mut Conn,
) -> Result<()> {
    let end = position::current_position(side)
        .await
        .map_err(|e| Error::Transient {
            what: "measuring the source's binary log position".into(),
            reason: e.to_string(),
        })?;
    let logs = position::binary_logs(side).await.unwrap_or_default();
    p.lag_bytes = position::bytes_between(&logs, &p.applied, &end);
    p.source_end = end;
    let retained = position::bytes_between(
        &logs,
        &BinlogPos {
            file: p.applied.file.clone(),
            pos: 0,
            gtid: None,
        },
        &p.source_end,
    );
    let lag_secs = match p.last_commit_time {
        Some(t) if p.lag_bytes > 0 => {
            (jiff::Timestamp::now().as_second() - i64::from(t)).max(0) as f64
        }
        _ => 0.0,
    };
    crate::metrics::follow_measured(p.lag_bytes, lag_secs, retained);
    let _ = fstate::record_source_pos(
        applier.session().await?,
        l.st,
        &p.source_end.text(),
        p.lag_bytes as i64,
        Some(retained as i64),
    )
    .await;
    Ok(())
}

/// Commits the open target transaction with the applied position; with `wait`, returns
/// once it is committed, else once it is sent (`Applier::commit_later`: `p.applied` and the
/// changes counted then run one commit ahead of the target while it commits).
async fn commit(l: &Loop<'_>, applier: &mut Applier, p: &mut Progress, wait: bool) -> Result<()> {
    let Some(end) = p.pending_end.take() else {
        return Ok(());
    };
    let changes = applier.pending_changes;
    let lag = p.lag_bytes_after(&end);
    let sql = fstate::applied_pos_sql(
        l.st,
        &end.text(),
        &p.source_end.text(),
        Some(lag as i64),
        p.pending_time,
        changes,
    );
    if wait {
        applier.commit(&sql).await?;
    } else {
        applier.commit_later(&sql).await?;
    }
    p.applied = end;
    p.last_commit_time = p.pending_time.take();
    p.batch_started = None;
    // `howdah_follow_changes_total` is counted by the applier once the commit landed.
    Ok(())
}

/// A rows event of a followed table.
struct RowsEvent<'e> {
    t: &'e BinlogTable,
    rows: &'e RowsEventData<'e>,
    /// The target equals the source before the event (past the overlap and what a restart
    /// replays, a table without rejects): the changes tell what the target holds at their
    /// key (`Prior`), where a `where` filter does not hide it.
    known: bool,
}

/// Applies the rows of one rows event of a followed table; whether it rejected a row.
async fn apply_rows(
    l: &Loop<'_>,
    applier: &mut Applier,
    side: &mut Conn,
    stream: &BinlogStream,
    scratch: &mut Scratch,
    ev: RowsEvent<'_>,
) -> Result<bool> {
    let RowsEvent { t, rows, known } = ev;
    let tme = stream
        .get_tme(rows.table_id())
        .ok_or_else(|| Error::Transient {
            what: format!("reading the binary log rows of {}", t.source),
            reason: "a rows event without its table map".into(),
        })?;
    if tme.columns_count() as usize != t.width() {
        return Err(Error::SchemaChanged {
            table: crate::catalog::QualifiedName::new(l.url.database.as_str(), t.source.as_str()),
            change: format!(
                "the binary log carries {} columns, the followed table had {} when the follow \
                 started",
                tme.columns_count(),
                t.width()
            ),
        });
    }
    let kind =
        match rows {
            RowsEventData::WriteRowsEvent(_) | RowsEventData::WriteRowsEventV1(_) => Kind::Insert,
            RowsEventData::UpdateRowsEvent(_) | RowsEventData::UpdateRowsEventV1(_) => Kind::Update,
            RowsEventData::DeleteRowsEvent(_) | RowsEventData::DeleteRowsEventV1(_) => Kind::Delete,
            RowsEventData::PartialUpdateRowsEvent(_) => return Err(Error::Follow(
                "the source logs partial JSON updates (binlog_row_value_options = PARTIAL_JSON); \
                 set it to '' to follow it"
                    .into(),
            )),
        };
    let keyed = !t.target.key.is_empty();
    let replays_cascades = matches!(kind, Kind::Delete)
        && applier.quiet()
        && !l.cascades.of(&t.target.name).is_empty();
    // Of an old row, only the key is read (see `old` below).
    let old_columns = (keyed && !replays_cascades).then(|| t.key_columns());
    let decoded = rows::decode(rows, tme, old_columns).map_err(|e| Error::Transient {
        what: format!("decoding a binary log row of {}", t.source),
        reason: e.to_string(),
    })?;
    // A mapped table's `where`: which new rows the source keeps now.
    let passing = match (t.filter(), kind) {
        (Some(_), Kind::Insert | Kind::Update) => Some(filter_passing(l, side, t, &decoded).await?),
        _ => None,
    };
    // The source held the old row's key and not the new row's (its key is unique); the
    // target holds the source's rows unless a filter left the old row out.
    let (held, not_held) = match (known, t.filter().is_some()) {
        (true, false) => (Prior::Present, Prior::Absent),
        (true, true) => (Prior::Unknown, Prior::Absent),
        (false, _) => (Prior::Unknown, Prior::Unknown),
    };
    let mut rejected = false;
    for (n, (before, after)) in decoded.into_iter().enumerate() {
        // An update that keeps its key: the same values in both images of the binary log.
        let same_key = keyed
            && matches!(kind, Kind::Update)
            && match (&before, &after) {
                (Some(b), Some(a)) => b.same_in(a, t.key_columns()),
                _ => false,
            };
        let new = match kind {
            Kind::Delete => None,
            _ => after.map(|row| t.convert(row, scratch)),
        };
        // A row the filter leaves out is deleted by its key, like a row moved out of it; it
        // is no reject either, even when it would not convert (the copy never reads it). A
        // row the filter could not be checked on is a reject: never taken for one it leaves
        // out, which would delete it without a word.
        let new = match (new, &passing) {
            (Some(c), Some(p)) => match p.get(&n) {
                Some(Checked::Passes) => Some(c),
                Some(Checked::Unknown(reject)) => Some(Converted::Rejected {
                    reject: reject.clone(),
                    key: c.key_fields().cloned(),
                }),
                None => {
                    if let (true, Some(k)) = (keyed, c.key_fields()) {
                        applier
                            .delete_row(&t.target, k.clone(), Prior::Unknown)
                            .await?;
                    }
                    None
                }
            },
            (new, _) => new,
        };
        // The old version's fields (`None`: what is needed of them does not convert): every
        // field when keyless; when keyed its key's alone, except for a delete whose
        // cascades are replayed (in the overlap): they may name other columns of it (a
        // foreign key may reference a unique column besides the key). A row whose other
        // columns do not convert is still deleted by its key.
        // A new version that converted replaces an old one of the same key: the old key
        // is then not converted at all (for the bench's updates, a sixth of the follower's
        // converting).
        let kept_key = same_key && matches!(new, Some(Converted::Row(_)));
        let old = before.map(|row| {
            if kept_key {
                None
            } else if !keyed {
                t.convert(row, scratch).into_key_fields()
            } else if replays_cascades {
                t.convert(row.clone(), scratch)
                    .into_key_fields()
                    .or_else(|| t.convert_key(row, scratch))
            } else {
                t.convert_key(row, scratch)
            }
        });
        // What the target held at the new row's key: an insert's was not held; an update's
        // was if the key stayed, and was not once the old key's row is deleted below (not so
        // for a rekey, which moves the old row there).
        let mut prior = match kind {
            Kind::Insert => not_held,
            _ => Prior::Unknown,
        };
        // The old row goes first when the new one does not replace it: a delete, a keyless
        // update, a key change, or a new version the converter refuses.
        if let Some(old) = &old {
            let replaced = kept_key
                || keyed
                    && match (old, new.as_ref()) {
                        (Some(o), Some(Converted::Row(n))) => {
                            t.target.key.iter().all(|&k| o[k] == n[k])
                        }
                        _ => false,
                    };
            if replaced {
                prior = held;
            }
            let fields = old.as_ref();
            // A key change of a parent whose keys act on update, with the target's keys
            // acting: an UPDATE, so the target runs the update's action as InnoDB did.
            let rekey = match (&new, fields) {
                (Some(Converted::Row(n)), Some(f))
                    if !replaced
                        && keyed
                        && matches!(kind, Kind::Update)
                        && !applier.quiet()
                        && l.cascades.updates_key(&t.target.name) =>
                {
                    Some((f, n))
                }
                _ => None,
            };
            if let Some((f, n)) = rekey {
                applier.rekey(&t.target, f, n).await?;
            } else if let (false, Some(f)) = (replaced, fields) {
                applier.delete_row(&t.target, f.clone(), held).await?;
                prior = not_held;
                // In the overlap the target's keys are off: what InnoDB cascaded from this
                // delete (not in the binary log) is replayed here, in stream order.
                if matches!(kind, Kind::Delete) && applier.quiet() {
                    for c in l.cascades.of(&t.target.name) {
                        applier
                            .cascade(&c.name, &c.view, c.kind, &c.parent_columns, f)
                            .await?;
                    }
                }
            }
        }
        match new {
            Some(Converted::Row(fields)) => applier.upsert_row(&t.target, fields, prior).await?,
            Some(Converted::Rejected { reject, key }) => {
                // The bulk path would not have loaded this row: the target must not hold
                // it either (an earlier version of it may be there).
                if let Some(k) = key {
                    applier.delete_row(&t.target, k, Prior::Unknown).await?;
                }
                rejected = true;
                tracing::debug!(
                    "{}: change rejected ({}: {})",
                    t.reject_name,
                    reject.column,
                    reject.reason
                );
                applier.record_reject(l.st, &t.reject_name, &reject);
            }
            None => {}
        }
    }
    Ok(rejected)
}

/// What the filter check says of a row image.
enum Checked {
    /// The `where` keeps it.
    Passes,
    /// A value did not decode: the `where` cannot be evaluated (the row is a reject).
    Unknown(crate::reject::Reject),
}

/// Rows of `decoded` (by number) whose new version passes the table's `where` or could not
/// be checked (absent: the filter leaves them out), evaluated by the source server over the
/// row images themselves (as the PostgreSQL follow does): a temporary table of the source
/// table's shape, under its name, in the side session, so the check reads no row of the
/// real table, takes no lock the source's writers could wait on, and sees the version the
/// event carries, not whatever is visible when it runs.
async fn filter_passing(
    l: &Loop<'_>,
    side: &mut Conn,
    t: &BinlogTable,
    decoded: &[rows::RowChange<'_>],
) -> Result<HashMap<usize, Checked>> {
    let f = t.filter_sql(l.url.database.as_str());
    let what = || format!("checking the filter of {} on the source", t.source);
    let run = |e: mysql_async::Error| my_error(&what(), &e);
    side.query_drop(&f.create).await.map_err(run)?;
    let per_query = (u16::MAX as usize / f.width).clamp(1, 500);
    let mut out = HashMap::new();
    let mut images: Vec<(usize, Vec<mysql_async::Value>)> = Vec::new();
    for (n, (_, after)) in decoded.iter().enumerate() {
        let Some(after) = after else { continue };
        match t.all_values(after) {
            Ok(v) => images.push((n, v)),
            Err(reject) => {
                out.insert(n, Checked::Unknown(reject));
            }
        }
    }
    for part in images.chunks(per_query) {
        side.query_drop(&f.empty).await.map_err(run)?;
        let sql = format!(
            "{}{}",
            f.insert,
            vec![f.row.as_str(); part.len()].join(", ")
        );
        let params: Vec<mysql_async::Value> = part
            .iter()
            .flat_map(|(n, v)| {
                std::iter::once(mysql_async::Value::from(*n as u64)).chain(v.iter().cloned())
            })
            .collect();
        side.exec_drop(sql, params).await.map_err(run)?;
        let found: Vec<u64> = side.query(&f.select).await.map_err(run)?;
        out.extend(found.into_iter().map(|n| (n as usize, Checked::Passes)));
    }
    Ok(out)
}

#[derive(Clone, Copy)]
enum Kind {
    Insert,
    Update,
    Delete,
}

async fn truncate(applier: &mut Applier, t: &BinlogTable) -> Result<()> {
    applier
        .buffer()
        .push_str(&format!("TRUNCATE ONLY {};\n", t.target.name));
    applier.added().await
}

/// What a statement of its own means for the follow.
enum Ddl {
    /// Not about a followed table.
    Other,
    /// `TRUNCATE` of followed table number n.
    Truncate(usize),
    /// DDL naming this followed table.
    Stops(String),
}

fn first_word(sql: &str) -> String {
    sql.trim_start()
        .split(|c: char| !c.is_ascii_alphabetic())
        .next()
        .unwrap_or("")
        .to_ascii_uppercase()
}

/// Identifiers of a statement (backquotes removed), with the database each is qualified by.
fn identifiers(sql: &str) -> Vec<(Option<String>, String)> {
    let mut out: Vec<(Option<String>, String)> = Vec::new();
    let mut chars = sql.chars().peekable();
    let mut qualify = false;
    while let Some(c) = chars.next() {
        let word = if c == '`' {
            let mut w = String::new();
            while let Some(c) = chars.next() {
                if c == '`' {
                    if chars.peek() == Some(&'`') {
                        chars.next();
                        w.push('`');
                        continue;
                    }
                    break;
                }
                w.push(c);
            }
            w
        } else if c.is_alphanumeric() || c == '_' || c == '$' {
            let mut w = c.to_string();
            while let Some(&c) = chars.peek() {
                if c.is_alphanumeric() || c == '_' || c == '$' {
                    w.push(c);
                    chars.next();
                } else {
                    break;
                }
            }
            w
        } else {
            qualify = c == '.' && !out.is_empty();
            continue;
        };
        if qualify {
            let db = out.pop().map(|(_, w)| w);
            out.push((db, word));
            qualify = false;
        } else {
            out.push((None, word));
        }
    }
    out
}

/// Classifies a standalone statement run in database `schema`.
fn ddl(l: &Loop<'_>, schema: &str, sql: &str) -> Ddl {
    let word = first_word(sql);
    if !matches!(
        word.as_str(),
        "ALTER" | "DROP" | "RENAME" | "CREATE" | "TRUNCATE"
    ) {
        return Ddl::Other;
    }
    let db = l.url.database.as_str();
    for (qual, name) in identifiers(sql).into_iter().skip(1) {
        let in_db = match &qual {
            Some(q) => q == db,
            None => schema == db,
        };
        if !in_db {
            continue;
        }
        if let Some(i) = l.tables.iter().position(|t| t.source == name) {
            return if word == "TRUNCATE" {
                Ddl::Truncate(i)
            } else {
                Ddl::Stops(l.tables[i].source.clone())
            };
        }
    }
    Ddl::Other
}

/// A binary log file name without trailing bytes that cannot be part of one.
fn clean_file_name(name: &str) -> String {
    name.chars().take_while(|c| c.is_ascii_graphic()).collect()
}

fn shorten_sql(sql: &str) -> String {
    let one_line = sql.split_whitespace().collect::<Vec<_>>().join(" ");
    if one_line.chars().count() > 200 {
        format!("{}...", one_line.chars().take(200).collect::<String>())
    } else {
        one_line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers_keep_their_qualifier() {
        assert_eq!(
            identifiers("ALTER TABLE `my db`.`t``x` ADD c int"),
            vec![
                (None, "ALTER".to_string()),
                (None, "TABLE".to_string()),
                (Some("my db".to_string()), "t`x".to_string()),
                (None, "ADD".to_string()),
                (None, "c".to_string()),
                (None, "int".to_string()),
            ]
        );
        assert_eq!(first_word("  truncate table t"), "TRUNCATE");
    }
}
