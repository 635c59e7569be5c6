//! Applying decoded changes to the target: each change becomes one SQL statement with its
//! values as literals (pgoutput sends every value in its type's text output, which the
//! target's input function reads back), buffered and sent in large multi-statement batches
//! inside one open target transaction; [`Applier::commit`] ends that transaction with the
//! applied position in it (the follow commit point, see `state/follow.rs`). Changes that
//! arrive as binary fields are queued in order with the text and sent as the groups of
//! `row_ops.rs`.
//!
//! Invariants: every statement is idempotent over the overlap a resumed bulk copy creates
//! (an insert is an insert-or-update by key, a delete by key deletes what is there); an update
//! that leaves TOASTed columns unchanged sets only the columns it sent; a table without a key
//! (replica identity full) has one matching row changed per change, found by all its values;
//! memory is bounded by two batch buffers (one queued, one in flight), whatever the size of a
//! source transaction; batches reach the server in the order queued (a send starts only after
//! the previous one finished), and the commit returns only once everything before it applied.
//! With apply lanes ([`Applier::add_lanes`]) the changes of a reorderable table whose key
//! hashes to lane k go through lane k's own session: every change of one key goes through one
//! lane, in order; the lanes commit before the session that commits the position, so a crash
//! between those commits replays the lanes' changes, which converges (whole rows and deletes
//! by key, of rows nothing else touches).

use std::fmt::Write as _;

use tokio_postgres::Client;

use crate::catalog::{quote_ident, QualifiedName};
use crate::error::{db_reason, Error, Result};
use crate::follow::pgoutput::Value;
pub(crate) use crate::follow::row_ops::Prior;
pub use crate::follow::row_ops::TargetTable;
use crate::follow::row_ops::{
    check_fields, group, reorderable, Batch, Field, RowKind, RowOp, RowTable, BASE_TYPES_SQL,
    BYTE_EQUAL_KEY_SQL, REORDERABLE_SQL,
};
use crate::reject::Reject;

/// A followed table as the target holds it.
#[derive(Debug, Clone)]
pub struct FollowedTable {
    /// Source name (the stream names tables by it).
    pub source: QualifiedName,
    /// Target name, quoted and qualified.
    pub target: String,
    /// Column names in the stream's order (the table's non-generated columns).
    pub columns: Vec<String>,
    /// Column type OIDs, in the same order.
    pub type_oids: Vec<u32>,
    /// Positions of the key columns; empty: keyless (replica identity full).
    pub key: Vec<usize>,
}

impl FollowedTable {
    /// The table from the catalog: its copy columns and its chunking key.
    pub fn from_catalog(t: &crate::catalog::Table) -> Self {
        let cols: Vec<&crate::catalog::Column> = t.copy_columns().collect();
        let key = t
            .key_names()
            .iter()
            .filter_map(|k| cols.iter().position(|c| c.name == *k))
            .collect();
        FollowedTable {
            source: t.name.clone(),
            target: t.name.quoted(),
            columns: cols.iter().map(|c| c.name.clone()).collect(),
            type_oids: cols.iter().map(|c| c.type_oid).collect(),
            key,
        }
    }
}

/// Appends `value` as an SQL literal (or NULL).
pub(crate) fn literal(out: &mut String, table: &FollowedTable, value: &Value) -> Result<()> {
    match value {
        Value::Null => out.push_str("NULL"),
        Value::Unchanged => {
            return Err(Error::Internal(format!(
                "an unchanged TOAST value of {} reached a statement",
                table.source
            )))
        }
        Value::Text(b) => {
            let s = std::str::from_utf8(b).map_err(|_| Error::Query {
                what: format!("applying a change of {}", table.source),
                reason: "a value is not valid UTF-8".into(),
            })?;
            out.push('\'');
            for ch in s.chars() {
                if ch == '\'' {
                    out.push('\'');
                }
                out.push(ch);
            }
            out.push('\'');
        }
    }
    Ok(())
}

fn check_width(table: &FollowedTable, values: &[Value]) -> Result<()> {
    if values.len() != table.columns.len() {
        return Err(Error::SchemaChanged {
            table: table.source.clone(),
            change: format!(
                "a change carries {} columns, the followed table has {}",
                values.len(),
                table.columns.len()
            ),
        });
    }
    Ok(())
}

/// `k1 = 'v' AND k2 = 'w'` over the key values found in `values`.
fn key_match(out: &mut String, table: &FollowedTable, values: &[Value]) -> Result<()> {
    for (n, &k) in table.key.iter().enumerate() {
        if n > 0 {
            out.push_str(" AND ");
        }
        let v = &values[k];
        if !matches!(v, Value::Text(_)) {
            return Err(Error::Query {
                what: format!("applying a change of {}", table.source),
                reason: format!("the change does not carry key column {}", table.columns[k]),
            });
        }
        out.push_str(&quote_ident(&table.columns[k]));
        out.push_str(" = ");
        literal(out, table, v)?;
    }
    Ok(())
}

/// `ctid = (SELECT ctid FROM t WHERE <every column as in values> LIMIT 1)`: one row of a
/// keyless table equal to `values` (compared as text, which every type has).
fn row_match(out: &mut String, table: &FollowedTable, values: &[Value]) -> Result<()> {
    write!(out, "ctid = (SELECT ctid FROM {} WHERE ", table.target).ok();
    let mut first = true;
    for (c, v) in table.columns.iter().zip(values) {
        if matches!(v, Value::Unchanged) {
            continue;
        }
        if !first {
            out.push_str(" AND ");
        }
        first = false;
        match v {
            Value::Null => write!(out, "{} IS NULL", quote_ident(c)).ok(),
            _ => {
                write!(out, "{}::text = ", quote_ident(c)).ok();
                literal(out, table, v)?;
                Some(())
            }
        };
    }
    if first {
        out.push_str("true");
    }
    out.push_str(" LIMIT 1)");
    Ok(())
}

/// Appends the statement(s) of an insert.
pub fn insert(out: &mut String, table: &FollowedTable, new: &[Value]) -> Result<()> {
    check_width(table, new)?;
    write!(out, "INSERT INTO {} (", table.target).ok();
    for (i, c) in table.columns.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        out.push_str(&quote_ident(c));
    }
    out.push_str(") VALUES (");
    for (i, v) in new.iter().enumerate() {
        if i > 0 {
            out.push_str(", ");
        }
        literal(out, table, v)?;
    }
    out.push(')');
    if !table.key.is_empty() {
        out.push_str(" ON CONFLICT (");
        for (n, &k) in table.key.iter().enumerate() {
            if n > 0 {
                out.push_str(", ");
            }
            out.push_str(&quote_ident(&table.columns[k]));
        }
        let rest: Vec<&String> = (0..table.columns.len())
            .filter(|i| !table.key.contains(i))
            .map(|i| &table.columns[i])
            .collect();
        if rest.is_empty() {
            out.push_str(") DO NOTHING");
        } else {
            out.push_str(") DO UPDATE SET ");
            for (n, c) in rest.iter().enumerate() {
                if n > 0 {
                    out.push_str(", ");
                }
                let q = quote_ident(c);
                write!(out, "{q} = EXCLUDED.{q}").ok();
            }
        }
    }
    out.push_str(";\n");
    Ok(())
}

/// Appends the statement(s) of an update: `old` is the old key or row when the stream sent it.
pub fn update(
    out: &mut String,
    table: &FollowedTable,
    old: Option<&[Value]>,
    new: &[Value],
) -> Result<()> {
    check_width(table, new)?;
    if let Some(old) = old {
        check_width(table, old)?;
    }
    let unchanged = new.iter().any(|v| matches!(v, Value::Unchanged));
    if table.key.is_empty() {
        let old = old.ok_or_else(|| Error::Query {
            what: format!("applying an update of {}", table.source),
            reason: "the stream sent no old row (the table needs REPLICA IDENTITY FULL)".into(),
        })?;
        write!(out, "UPDATE {} SET ", table.target).ok();
        set_list(out, table, new, Some(old))?;
        out.push_str(" WHERE ");
        row_match(out, table, old)?;
        out.push_str(";\n");
        return Ok(());
    }
    let key_changed = old.is_some_and(|o| table.key.iter().any(|&k| o[k] != new[k]));
    if !unchanged {
        if key_changed {
            if let Some(o) = old {
                delete(out, table, o)?;
            }
        }
        return insert(out, table, new);
    }
    // Some TOASTed columns were left as they were: set only what was sent, on the row
    // found by its old key.
    write!(out, "UPDATE {} SET ", table.target).ok();
    set_list(out, table, new, None)?;
    out.push_str(" WHERE ");
    key_match(out, table, old.filter(|_| key_changed).unwrap_or(new))?;
    out.push_str(";\n");
    Ok(())
}

/// `c = v, ...` for every column sent (an unchanged one takes `fallback`'s value, if any).
fn set_list(
    out: &mut String,
    table: &FollowedTable,
    new: &[Value],
    fallback: Option<&[Value]>,
) -> Result<()> {
    let mut first = true;
    for (i, c) in table.columns.iter().enumerate() {
        let v = match (&new[i], fallback) {
            (Value::Unchanged, Some(old)) if !matches!(old[i], Value::Unchanged) => &old[i],
            (Value::Unchanged, _) => continue,
            (v, _) => v,
        };
        if !first {
            out.push_str(", ");
        }
        first = false;
        write!(out, "{} = ", quote_ident(c)).ok();
        literal(out, table, v)?;
    }
    if first {
        // Nothing sent but unchanged values: a no-op that still finds the row.
        let c = quote_ident(&table.columns[0]);
        write!(out, "{c} = {c}").ok();
    }
    Ok(())
}

/// Appends the statement of a delete.
pub fn delete(out: &mut String, table: &FollowedTable, old: &[Value]) -> Result<()> {
    check_width(table, old)?;
    write!(out, "DELETE FROM {} WHERE ", table.target).ok();
    if table.key.is_empty() {
        row_match(out, table, old)?;
    } else {
        key_match(out, table, old)?;
    }
    out.push_str(";\n");
    Ok(())
}

/// Appends the statement of a truncate.
pub fn truncate(out: &mut String, tables: &[&FollowedTable], restart_identity: bool) {
    let names: Vec<&str> = tables.iter().map(|t| t.target.as_str()).collect();
    writeln!(
        out,
        "TRUNCATE ONLY {}{};",
        names.join(", "),
        if restart_identity {
            " RESTART IDENTITY"
        } else {
            ""
        }
    )
    .ok();
}

/// One queued statement: SQL text (many statements, sent in one round trip), or a prepared
/// statement with binary fields (sent pipelined with its neighbours).
enum Op {
    Sql(String),
    Row(RowOp),
}

/// Sends statements to the target in one open transaction, in order, in batches of about
/// [`Applier::FLUSH_BYTES`]; one batch is in flight while the next is queued.
pub struct Applier {
    /// Shared with the send in flight.
    client: std::sync::Arc<Client>,
    /// The text statements after the last queued binary row.
    sql: String,
    /// What was queued before `sql`, in order.
    ops: Vec<Op>,
    /// Bytes queued in `ops`.
    queued: usize,
    open: bool,
    /// Queue position and change count where the current source transaction began, while
    /// none of it has been sent.
    mark: Option<(usize, usize, u64)>,
    /// Tables of binary rows, by their target name.
    tables: Handles,
    /// Tables of changes that keep their place (cascades replayed by the MySQL follow, key
    /// changes of parents), by name.
    in_place: Handles,
    /// The session runs with `session_replication_role = replica` (triggers and foreign keys
    /// off), which lets tables with foreign keys have their rows grouped (`row_ops.rs`).
    replica: bool,
    /// Changes in the open transaction.
    pub pending_changes: u64,
    /// The send in flight (see [`Applier::send`]).
    inflight: Option<tokio::task::JoinHandle<Result<()>>>,
    /// The sessions beside this one that take reorderable tables' changes by key hash
    /// (empty: one session applies everything).
    lanes: Vec<Lane>,
    /// Changes spread by key to lane 0 (this session) and to each lane since the last send,
    /// for the metric.
    spread: Vec<u64>,
    /// What the send in flight lands, for the metrics, counted once it did (a send that
    /// fails counts nothing: its changes are applied again after the restart): changes whose
    /// position it commits, and changes per lane.
    landing: u64,
    landing_lanes: Vec<u64>,
    /// Changes spread to lane 0 (this session) in the open transaction: they land with the
    /// position's commit, not with the send that carried them.
    open_lane0: u64,
    /// The seed of [`lane_of`], random per applier (every change of a key in this process goes
    /// to one lane; the keys come from the source, so a fixed seed could be gamed).
    lane_seed: foldhash::fast::RandomState,
    /// Where the changes sent may reach, recorded before they are (see
    /// [`Applier::record_replay`]); `None`: changes are applied as upserts only.
    replay: Option<ReplayMark>,
}

/// The position the changes queued so far were read up to, and where the follower records
/// it before a send applies them: on a restart, changes up to it may already be on the
/// target (an apply lane commits ahead of the position) or may be why the last run failed
/// (an `INSERT` of a key the target held), so they are applied as upserts
/// (`binlog/stream.rs`). Recorded outside the apply transactions, by a session of its own,
/// so it holds even when they roll back.
struct ReplayMark {
    client: std::sync::Arc<Client>,
    /// The job whose follow state holds it.
    st: crate::state::StateRef,
    file: String,
    pos: u64,
    /// Noted since it was last recorded.
    moved: bool,
}

/// A target session beside the applier's own that applies the changes of reorderable tables
/// whose key hashes to it (see [`Applier::add_lanes`]).
struct Lane {
    client: std::sync::Arc<Client>,
    /// Queued changes, in order; all of reorderable tables.
    ops: Vec<RowOp>,
    /// The queue's length at the applier's mark.
    mark: usize,
    /// Its handles of tables: prepared statements belong to one session.
    tables: Handles,
}

/// What one send hands a lane: its changes, applied and committed in one transaction. A lane
/// holds no transaction open between sends, so no lock of its waits idle while another
/// session of the follower waits behind it (DDL of another session queued on a table the
/// lane holds would make the first session's next statement on it queue too).
struct LaneBatch {
    client: std::sync::Arc<Client>,
    ops: Vec<RowOp>,
}

impl LaneBatch {
    async fn run(&self) -> Result<()> {
        let exec = |sql: &'static str| async move {
            self.client
                .batch_execute(sql)
                .await
                .map_err(|e| apply_error("applying source changes in an apply lane", &e))
        };
        exec("BEGIN").await?;
        send_rows(&self.client, &self.ops).await?;
        exec("COMMIT").await
    }
}

impl Applier {
    /// Buffered SQL sent to the server once it passes this size.
    pub const FLUSH_BYTES: usize = 1 << 20;

    /// An applier over a target session. With `quiet` triggers and foreign-key checks stay
    /// off in it when the role may set `session_replication_role`: the changes are replayed
    /// as the source made them. A PostgreSQL stream carries what its foreign keys cascaded,
    /// so its applier stays quiet throughout; a MySQL binary log leaves out what InnoDB's
    /// foreign keys cascade, so its applier is quiet only while the stream overlaps the
    /// copy (where the target may be ahead of the change replayed) and then lets the
    /// target's keys act ([`Applier::keys_act`]).
    pub async fn new(client: Client, quiet: bool) -> Result<Self> {
        let role = if quiet {
            let r = client
                .batch_execute("SET session_replication_role = replica")
                .await;
            if let Err(e) = &r {
                tracing::warn!(
                    "triggers and foreign keys of the target stay active while changes are \
                     applied (SET session_replication_role = replica failed: {}): from a \
                     PostgreSQL source a cascade may then run twice, harmlessly; from a MySQL \
                     source, replaying the changes the copy overlaps may stop on a foreign key. \
                     Follow as a role that may set session_replication_role (a superuser, or \
                     GRANT SET ON PARAMETER session_replication_role on PostgreSQL 15+)",
                    db_reason(e)
                );
            }
            r.is_ok()
        } else {
            false
        };
        Ok(Applier {
            client: std::sync::Arc::new(client),
            sql: String::with_capacity(Self::FLUSH_BYTES + 64 * 1024),
            ops: Vec::new(),
            queued: 0,
            open: false,
            mark: None,
            tables: Handles::default(),
            in_place: Handles::default(),
            replica: role,
            pending_changes: 0,
            inflight: None,
            lanes: Vec::new(),
            spread: Vec::new(),
            landing: 0,
            landing_lanes: Vec::new(),
            open_lane0: 0,
            lane_seed: foldhash::fast::RandomState::default(),
            replay: None,
        })
    }

    /// Lets folded upserts take the `INSERT` and `UPDATE` shapes (`row_ops.rs`, [`Prior`]),
    /// once the session's keys act: before each send, `client` (a target session of its
    /// own) records the position last noted ([`Applier::note_position`]) in job `st`'s follow
    /// state (`replay_through`).
    pub async fn record_replay(
        &mut self,
        client: Client,
        st: crate::state::StateRef,
    ) -> Result<()> {
        // Durable with the position's commit, which flushes the WAL up to it: a crash of
        // the target that loses it loses every commit it covers too.
        client
            .batch_execute("SET synchronous_commit = off")
            .await
            .map_err(|e| crate::error::query_error("setting up the replay mark session", &e))?;
        self.replay = Some(ReplayMark {
            client: std::sync::Arc::new(client),
            st,
            file: String::new(),
            pos: 0,
            moved: false,
        });
        self.tables.clear();
        Ok(())
    }

    /// Notes that the changes queued from now on were read up to binary log file `file`,
    /// offset `pos` (the end of the event that carries them). Nothing is recorded before the
    /// first note: the caller notes only past the mark the last follower left, which covers
    /// what comes before.
    pub fn note_position(&mut self, file: &str, pos: u64) {
        if let Some(m) = &mut self.replay {
            if m.file != file {
                m.file = file.to_string();
            }
            m.pos = pos;
            m.moved = true;
        }
    }

    /// Adds apply lanes: each of `clients` (target sessions of the same job) takes the
    /// changes of reorderable tables whose key hashes to it, once the target's keys act (a
    /// reorderable table then has no foreign key either way, no trigger, and its key as its
    /// only unique index, so its rows are touched by no other change). With n lanes in all,
    /// this session keeps one n-th of those changes and everything else. Lanes commit before
    /// this session commits the position, with `synchronous_commit = off`: the position's
    /// commit, durable, flushes the WAL up to it, lanes' commits included. Not for a quiet
    /// applier that will stay quiet (a PostgreSQL follow): lanes take nothing while quiet.
    /// A lane that waits for a lock behind the follower's own first session (another
    /// session's DDL queued between them) would hang the follower for good: the server sees
    /// no deadlock, the wait that closes the circle is in the follower. So a lane gives up a
    /// lock wait after a minute, and the follower starts over from its committed position
    /// ([`apply_error`]), which releases the first session's locks.
    pub async fn add_lanes(&mut self, clients: Vec<Client>) -> Result<()> {
        for client in clients {
            client
                .batch_execute("SET synchronous_commit = off; SET lock_timeout = '1min'")
                .await
                .map_err(|e| crate::error::query_error("setting up an apply lane", &e))?;
            self.lanes.push(Lane {
                client: std::sync::Arc::new(client),
                ops: Vec::new(),
                mark: 0,
                tables: Handles::default(),
            });
        }
        self.spread = vec![0; self.lanes.len() + 1];
        self.landing_lanes = vec![0; self.lanes.len() + 1];
        Ok(())
    }

    /// Sessions that apply changes (1 + the lanes).
    pub fn lanes(&self) -> usize {
        1 + self.lanes.len()
    }

    /// Whether triggers and foreign-key checks are off in the session.
    pub fn quiet(&self) -> bool {
        self.replica
    }

    /// Records that the session's triggers and foreign keys act from now on (the session
    /// was switched by `binlog/overlap.rs`). Tables' grouping is decided again, since rows
    /// of a table with foreign keys may no longer be reordered.
    pub fn keys_act(&mut self) {
        self.replica = false;
        self.tables.clear();
    }

    /// The buffer statements are appended to; call [`Applier::added`] after each change.
    pub fn buffer(&mut self) -> &mut String {
        &mut self.sql
    }

    /// Counts one change and sends the buffer once it is large.
    pub async fn added(&mut self) -> Result<()> {
        self.pending_changes += 1;
        self.send_if_full().await
    }

    /// Sends what is queued once it passes [`Applier::FLUSH_BYTES`].
    async fn send_if_full(&mut self) -> Result<()> {
        if self.sql.len() + self.queued >= Self::FLUSH_BYTES {
            self.send(None).await?;
        }
        Ok(())
    }

    /// Marks where a source transaction begins.
    pub fn mark(&mut self) {
        self.mark = Some((self.ops.len(), self.sql.len(), self.pending_changes));
        for lane in &mut self.lanes {
            lane.mark = lane.ops.len();
        }
    }

    /// Moves the mark to here, if one is set: what was added since the mark belongs to
    /// earlier source transactions (changes of mapped tables, queued until now).
    pub fn remark(&mut self) {
        if self.mark.is_some() {
            self.mark();
        }
    }

    /// Drops what the current source transaction added, if none of it was sent yet; whether
    /// it could.
    pub fn rewind(&mut self) -> bool {
        match self.mark.take() {
            Some((ops, len, changes)) => {
                if self.ops.len() > ops {
                    // The text at the mark moved into the queue when a row followed it.
                    let head = match self.ops.get_mut(ops) {
                        Some(Op::Sql(s)) => {
                            s.truncate(len);
                            std::mem::take(s)
                        }
                        _ => String::new(),
                    };
                    self.ops.truncate(ops);
                    self.sql = head;
                } else {
                    self.sql.truncate(len);
                }
                for lane in &mut self.lanes {
                    lane.ops.truncate(lane.mark);
                }
                self.queued = self.ops.iter().map(op_size).sum::<usize>()
                    + self
                        .lanes
                        .iter()
                        .flat_map(|l| &l.ops)
                        .map(|op| op_size_of(&op.params))
                        .sum::<usize>();
                self.pending_changes = changes;
                true
            }
            None => false,
        }
    }

    /// The applier's handle of `table`, with its one-row statements prepared.
    async fn row_table(&mut self, table: &TargetTable) -> Result<std::sync::Arc<RowTable>> {
        if let Some(t) = self.tables.get(&table.name) {
            return Ok(t.clone());
        }
        // Once per table: the catalog read must not run inside a transaction a failed send
        // left aborted (its error would hide the send's).
        self.settle().await?;
        let row = self
            .client
            .query_one(REORDERABLE_SQL, &[&table.name, &self.replica])
            .await
            .map_err(|e| {
                crate::error::query_error(format!("reading the indexes of {}", table.name), &e)
            })?;
        let reorderable = reorderable(
            table,
            row.get(0),
            row.get(1),
            row.get(2),
            row.get(3),
            self.replica,
        );
        // Said once per table (and again when the target's keys start to act): it is what
        // the apply rate of the table depends on.
        if reorderable {
            tracing::info!(
                "{}: changes folded per key into multi-row statements",
                table.name
            );
        } else {
            tracing::info!(
                "{}: changes applied in order, one statement each (a key and {} unique \
                 index(es), exclusion constraint: {}, foreign key: {}, trigger: {})",
                table.name,
                row.get::<_, i32>(0),
                row.get::<_, bool>(1),
                row.get::<_, bool>(2) && !self.replica,
                row.get::<_, bool>(3)
            );
        }
        // Lanes take a table only past the overlap (keys acting: no foreign key either way).
        let spreadable = reorderable && !self.replica && !self.lanes.is_empty() && {
            let names: Vec<&str> = table
                .key
                .iter()
                .filter_map(|&k| table.columns.get(k).map(String::as_str))
                .collect();
            let same: bool = self
                .client
                .query_one(BYTE_EQUAL_KEY_SQL, &[&table.name, &names])
                .await
                .map_err(|e| {
                    crate::error::query_error(
                        format!("reading the key columns of {}", table.name),
                        &e,
                    )
                })?
                .get(0);
            if !same {
                tracing::info!(
                    "{}: changes applied in one session, not spread over apply lanes (a key \
                     column's type or collation makes values with other bytes equal)",
                    table.name
                );
            }
            same
        };
        // The INSERT and UPDATE shapes, where priors may be known: a reorderable table
        // (one unique index: a new row conflicts on nothing but its key) past the overlap,
        // with a column to update.
        let base_types = if reorderable
            && !self.replica
            && self.replay.is_some()
            && table.key.len() < table.columns.len()
        {
            let types: Vec<String> = self
                .client
                .query_one(BASE_TYPES_SQL, &[&table.name, &table.columns])
                .await
                .map_err(|e| {
                    crate::error::query_error(
                        format!("reading the column types of {}", table.name),
                        &e,
                    )
                })?
                .get(0);
            (types.len() == table.columns.len()).then_some(types)
        } else {
            None
        };
        if base_types.is_some() {
            tracing::info!(
                "{}: new rows inserted and changed rows updated, not upserted, where the \
                 source says which",
                table.name
            );
        }
        let t = std::sync::Arc::new(RowTable {
            spreadable,
            base_types,
            ..RowTable::new(table.clone(), reorderable)
        });
        for kind in [RowKind::Upsert, RowKind::Delete] {
            let stmt = prepare(&self.client, &t, kind, 1).await?;
            t.keep(kind, 1, stmt);
        }
        self.tables.insert(table.name.clone(), t.clone());
        Ok(t)
    }

    /// Queues one binary row change after what is buffered.
    async fn push_row(
        &mut self,
        table: &TargetTable,
        kind: RowKind,
        params: Vec<Field>,
        prior: Prior,
    ) -> Result<()> {
        let t = self.row_table(table).await?;
        let mut op = RowOp::new(t, kind, params, &self.lane_seed);
        op.prior = prior;
        if op.table.spreadable {
            let n = lane_of(&op, self.lanes.len() + 1);
            if let Some(c) = self.spread.get_mut(n) {
                *c += 1;
            }
            if let Some(lane) = n.checked_sub(1).and_then(|n| self.lanes.get_mut(n)) {
                // The lane's own handle: its statements are prepared in its session. (Its
                // column types are copied only when it is made: this runs per change.)
                op.table = handle(&mut lane.tables, &table.name, || RowTable {
                    base_types: op.table.base_types.clone(),
                    ..RowTable::new(table.clone(), true)
                });
                self.queued += op_size_of(&op.params);
                lane.ops.push(op);
                return self.added().await;
            }
        }
        self.queue(op);
        self.added().await
    }

    /// Appends a binary row change to the queue, after the text buffered before it.
    fn queue(&mut self, op: RowOp) {
        if !self.sql.is_empty() {
            let text = std::mem::replace(&mut self.sql, String::with_capacity(64 * 1024));
            self.queued += text.len();
            self.ops.push(Op::Sql(text));
        }
        let op = Op::Row(op);
        self.queued += op_size(&op);
        self.ops.push(op);
    }

    /// Queues, after what is queued, a cascade of the delete of parent row `row` (one field
    /// per parent column): the rows of `view` (a child seen through its key columns) naming
    /// the parent's columns `parent_columns` are deleted (`Delete`) or lose their key
    /// (`Detach`); its statements are cached under `name` (`binlog/overlap.rs::Cascade`). It
    /// keeps its place in stream order: grouping must not move it past a change of a child,
    /// but it is pipelined with its neighbours like any row change.
    pub(crate) async fn cascade(
        &mut self,
        name: &str,
        view: &TargetTable,
        kind: RowKind,
        parent_columns: &[usize],
        row: &[Option<bytes::Bytes>],
    ) -> Result<()> {
        let params: Vec<Field> = parent_columns
            .iter()
            .map(|&p| detached(row.get(p).and_then(Option::as_ref)))
            .collect();
        // A NULL key is named by no child.
        if params.iter().any(|f| f.0.is_none()) {
            return Ok(());
        }
        self.push_in_place(name, view, kind, params).await
    }

    /// Queues a change that keeps its place among all others (a barrier for grouping, see
    /// `row_ops::group`), on `view` (its statements cached under `name`). Counts no change
    /// of the source (the caller's own change is counted where it is queued).
    async fn push_in_place(
        &mut self,
        name: &str,
        view: &TargetTable,
        kind: RowKind,
        params: Vec<Field>,
    ) -> Result<()> {
        let table = handle(&mut self.in_place, name, || RowTable::barrier(view.clone()));
        let op = RowOp::new(table, kind, params, &self.lane_seed);
        self.queue(op);
        self.send_if_full().await
    }

    /// Queues the key change of a row of `table` from the key of `old` (all its fields) to
    /// `new`, as an `UPDATE` of the old key's row, so that the target's foreign keys act on
    /// it as on an update; queue the upsert of `new` after it (for an old row the target
    /// lacks). Keeps its place among other changes, like a cascade.
    pub async fn rekey(
        &mut self,
        table: &TargetTable,
        old: &[Option<bytes::Bytes>],
        new: &[Option<bytes::Bytes>],
    ) -> Result<()> {
        check_fields(table, new.len())?;
        let params: Vec<Field> = new
            .iter()
            .cloned()
            .map(Field)
            .chain(
                table
                    .key
                    .iter()
                    .map(|&k| detached(old.get(k).and_then(Option::as_ref))),
            )
            .collect();
        let name = format!("rekey {}", table.name);
        self.push_in_place(&name, table, RowKind::Rekey, params)
            .await?;
        self.added().await
    }

    /// Queues an insert-or-update by key of `row` (keyless: an insert); one binary field per
    /// column of `table`. `prior`: what the target held at its key before it.
    pub(crate) async fn upsert_row(
        &mut self,
        table: &TargetTable,
        row: Vec<Option<bytes::Bytes>>,
        prior: Prior,
    ) -> Result<()> {
        check_fields(table, row.len())?;
        let params = row.into_iter().map(Field).collect();
        self.push_row(table, RowKind::Upsert, params, prior).await
    }

    /// Queues the delete of `row` (all its columns' fields): by key, or for a keyless table
    /// one row equal in every column. `prior`: what the target held at its key before it.
    pub(crate) async fn delete_row(
        &mut self,
        table: &TargetTable,
        row: Vec<Option<bytes::Bytes>>,
        prior: Prior,
    ) -> Result<()> {
        check_fields(table, row.len())?;
        let params: Vec<Field> = if table.key.is_empty() {
            row.into_iter().map(Field).collect()
        } else {
            table
                .key
                .iter()
                .map(|&k| detached(row[k].as_ref()))
                .collect()
        };
        self.push_row(table, RowKind::Delete, params, prior).await
    }

    /// Queues a rejected row of `table` into the job's rejects, in the open transaction: it
    /// commits with the changes around it.
    pub fn record_reject(&mut self, st: &crate::state::StateRef, table: &str, r: &Reject) {
        let lit = |s: &str| crate::catalog::quote_literal(&s.replace('\0', ""));
        writeln!(
            self.sql,
            "INSERT INTO {} (job, table_name, key, column_name, value, reason) VALUES ({}, {}, {}, {}, {}, {});",
            st.table("rejects"),
            lit(&st.job),
            lit(table),
            lit(&r.key),
            lit(&r.column),
            lit(&r.value),
            lit(&r.reason)
        )
        .ok();
    }

    /// Hands what is queued to a task that sends it, after the previous send has finished
    /// (so statements reach the server in the order queued, and a failure of the previous
    /// send is returned here). The caller goes on decoding while the target applies: the
    /// two took turns before, each idle while the other worked (about 50% of one core each
    /// on the MySQL follow bench). Lanes apply and commit their share alongside; `tail` (the
    /// position and `COMMIT`) ends this session's transaction once they have committed.
    async fn send(&mut self, tail: Option<String>) -> Result<()> {
        self.settle().await?;
        self.mark = None;
        // A lane commits at every send; lane 0 is this session, which commits with the
        // position (`commit_later`).
        for (lane, (landing, c)) in self
            .landing_lanes
            .iter_mut()
            .zip(&mut self.spread)
            .enumerate()
        {
            if lane == 0 {
                self.open_lane0 += std::mem::take(c);
            } else {
                *landing = std::mem::take(c);
            }
        }
        let lanes: Vec<LaneBatch> = self
            .lanes
            .iter_mut()
            .filter(|lane| !lane.ops.is_empty())
            .map(|lane| LaneBatch {
                client: lane.client.clone(),
                ops: std::mem::take(&mut lane.ops),
            })
            .collect();
        if !self.open {
            match self.ops.first_mut() {
                Some(Op::Sql(s)) => s.insert_str(0, "BEGIN;\n"),
                Some(Op::Row(_)) => self.ops.insert(0, Op::Sql("BEGIN;".into())),
                None => self.sql.insert_str(0, "BEGIN;\n"),
            }
            self.open = true;
        }
        // Without a lane to commit first, the tail goes in the same round trip as the text
        // before it.
        let tail = match tail {
            Some(t) if lanes.is_empty() => {
                self.sql.push_str(&t);
                None
            }
            t => t,
        };
        let mut ops = std::mem::take(&mut self.ops);
        if !self.sql.is_empty() {
            ops.push(Op::Sql(std::mem::replace(
                &mut self.sql,
                String::with_capacity(Self::FLUSH_BYTES + 64 * 1024),
            )));
        }
        self.queued = 0;
        // The replay mark first, recorded before any session applies what this send holds.
        let mark = match &mut self.replay {
            Some(m) if !self.replica && m.moved => {
                m.moved = false;
                let at = format!("{}:{}", m.file, m.pos);
                Some((
                    m.client.clone(),
                    crate::state::follow::replay_through_sql(&m.st, &at),
                ))
            }
            _ => None,
        };
        let client = self.client.clone();
        self.inflight = Some(tokio::spawn(async move {
            if let Some((c, sql)) = mark {
                c.batch_execute(&sql).await.map_err(|e| {
                    crate::error::query_error("recording how far the follow's changes reach", &e)
                })?;
            }
            if lanes.is_empty() {
                return send_ops(&client, ops).await;
            }
            futures_util::future::try_join(
                send_ops(&client, ops),
                futures_util::future::try_join_all(lanes.iter().map(LaneBatch::run)),
            )
            .await?;
            if let Some(tail) = tail {
                client
                    .batch_execute(&tail)
                    .await
                    .map_err(|e| apply_error("committing the applied position", &e))?;
            }
            Ok(())
        }));
        Ok(())
    }

    /// Waits for the send in flight, if any; its result. What it landed is counted in the
    /// metrics only now: a send that failed is applied again after the restart, and counting
    /// it at hand-over counted it twice (or, with every commit refused, without end).
    async fn settle(&mut self) -> Result<()> {
        // The handle stays in place while awaited: if this future is dropped (a timeout
        // around the follower), Drop still finds the task and stops it.
        let r = match self.inflight.as_mut() {
            Some(task) => task
                .await
                .map_err(|e| Error::Internal(format!("the task applying changes ended: {e}"))),
            None => return Ok(()),
        };
        self.inflight = None;
        let r = r.and_then(|r| r);
        let landed = std::mem::take(&mut self.landing);
        for (lane, c) in self.landing_lanes.iter_mut().enumerate() {
            let c = std::mem::take(c);
            if r.is_ok() && c > 0 {
                crate::metrics::follow_lane_changes(lane, c);
            }
        }
        if r.is_ok() && landed > 0 {
            crate::metrics::follow_applied(landed);
        }
        r
    }

    /// Whether changes wait in the open transaction or the buffer.
    pub fn has_pending(&self) -> bool {
        self.pending_changes > 0 || self.open
    }

    /// Sends what is buffered, then `position_sql` (the applied position), and commits;
    /// returns once the commit is done.
    pub async fn commit(&mut self, position_sql: &str) -> Result<()> {
        // commit_later rolls back what it could not send itself.
        self.commit_later(position_sql).await?;
        let r = self.settle().await;
        if r.is_err() {
            self.rollback().await;
        }
        r
    }

    /// As [`Applier::commit`], but returns once the commit is handed to the sending task:
    /// the next changes are decoded while the target commits. A failure of that commit is
    /// returned by the next call that sends, commits or asks for the session (the
    /// transaction, its position in it, is then lost as a whole; the follower resumes from
    /// the position committed before it). For a caller that tells nobody outside the target
    /// what was committed: the PostgreSQL follow confirms its position to the source after
    /// each commit, so it waits ([`Applier::commit`]).
    pub async fn commit_later(&mut self, position_sql: &str) -> Result<()> {
        let changes = self.pending_changes;
        let r = self.send(Some(format!("{position_sql}\nCOMMIT;"))).await;
        if r.is_ok() {
            self.landing = changes;
            if let Some(lane0) = self.landing_lanes.first_mut() {
                *lane0 = std::mem::take(&mut self.open_lane0);
            }
        }
        self.open = false;
        self.pending_changes = 0;
        if r.is_err() {
            self.rollback().await;
        }
        r
    }

    /// After a failure: drops what is queued and rolls the open transaction back.
    async fn rollback(&mut self) {
        if let Some(task) = self.inflight.take() {
            task.abort();
        }
        self.landing = 0;
        self.landing_lanes.iter_mut().for_each(|c| *c = 0);
        self.open_lane0 = 0;
        self.ops.clear();
        self.sql.clear();
        self.queued = 0;
        self.open = false;
        self.pending_changes = 0;
        let _ = self.client.batch_execute("ROLLBACK").await;
        for lane in &mut self.lanes {
            lane.ops.clear();
            // A send stopped in the middle of a lane's transaction.
            let _ = lane.client.batch_execute("ROLLBACK").await;
        }
    }

    /// The session, once what was sent to it is applied (for reading and writing the follow
    /// state between transactions); the error of a send that failed.
    pub async fn session(&mut self) -> Result<&Client> {
        self.settle().await?;
        Ok(&self.client)
    }
}

impl Drop for Applier {
    fn drop(&mut self) {
        // A send in flight holds a handle of the session: stop it, so the session (and the
        // job's follower lock, held by it) ends with the applier, not after it.
        if let Some(task) = self.inflight.take() {
            task.abort();
        }
    }
}

/// Sends queued statements in order: text in one round trip, runs of binary rows
/// grouped (`row_ops::group`) and pipelined (the server runs them in the order sent).
async fn send_ops(client: &Client, ops: Vec<Op>) -> Result<()> {
    let mut rows: Vec<RowOp> = Vec::new();
    for op in ops
        .into_iter()
        .chain(std::iter::once(Op::Sql(String::new())))
    {
        match op {
            Op::Row(r) => rows.push(r),
            Op::Sql(text) => {
                if !rows.is_empty() {
                    send_rows(client, &rows).await?;
                    rows.clear();
                }
                if !text.is_empty() {
                    // A lost connection or a restarting server is transient: the follower
                    // resumes from the last committed position.
                    client
                        .batch_execute(&text)
                        .await
                        .map_err(|e| apply_error("applying source changes to the target", &e))?;
                }
            }
        }
    }
    Ok(())
}

/// Sends a run of binary row changes as its groups: a group is cut into statements of
/// the table's batch sizes (the rest one by one), all pipelined.
async fn send_rows(client: &Client, run: &[RowOp]) -> Result<()> {
    let mut calls: Vec<Call<'_>> = Vec::new();
    for batch in group(run) {
        match batch {
            Batch::One(op) => {
                let stmt = statement(client, &op.table, op.kind, 1).await?;
                calls.push((stmt, &op.table, op.kind, op.params.iter().collect()));
            }
            Batch::Many { table, kind, rows } => {
                let mut rest: &[&RowOp] = &rows;
                for size in table.table.batch_sizes(kind).chain(std::iter::once(1)) {
                    while rest.len() >= size {
                        let (now, later) = rest.split_at(size);
                        let stmt = statement(client, table, kind, size).await?;
                        let params = now.iter().flat_map(|op| op.params.iter()).collect();
                        calls.push((stmt, table, kind, params));
                        rest = later;
                    }
                }
            }
        }
    }
    let runs = calls.iter().map(|(stmt, table, kind, params)| async move {
        let rows = params.len() / table.table.width(*kind).max(1);
        let what = || {
            format!(
                "applying the {} of {rows} change(s) of {}",
                kind.verb(),
                table.table.name
            )
        };
        let changed = client
            .execute_raw(stmt, params.iter().copied())
            .await
            .map_err(|e| match (kind, e.code()) {
                (RowKind::Insert, Some(&tokio_postgres::error::SqlState::UNIQUE_VIOLATION)) => {
                    disagrees(what(), db_reason(&e))
                }
                _ => apply_error(what(), &e),
            })?;
        if *kind == RowKind::Update && changed < rows as u64 {
            let key = missing_key(client, &table.table, params).await;
            return Err(disagrees(
                what(),
                format!(
                    "{} of these rows are not on the target{}",
                    rows as u64 - changed,
                    key.map(|k| format!(", the first: {k}")).unwrap_or_default()
                ),
            ));
        }
        Ok(changed)
    });
    futures_util::future::try_join_all(runs).await?;
    Ok(())
}

/// The statement for `rows` changes of `kind` on `table`, prepared on first use.
async fn statement(
    client: &Client,
    table: &RowTable,
    kind: RowKind,
    rows: usize,
) -> Result<tokio_postgres::Statement> {
    if let Some(s) = table.statement(kind, rows) {
        return Ok(s);
    }
    let s = prepare(client, table, kind, rows).await?;
    table.keep(kind, rows, s.clone());
    Ok(s)
}

/// One statement to run: its prepared statement, table, kind and parameters.
type Call<'a> = (
    tokio_postgres::Statement,
    &'a RowTable,
    RowKind,
    Vec<&'a Field>,
);

/// A key field kept from a row whose other fields are dropped, as a copy of its own: the
/// MySQL follower cuts fields from shared blocks (`binlog/tables.rs`, `Scratch`), and a
/// queued delete holding a slice would keep its whole block alive while the flush threshold
/// counts only the key's bytes (a run of deletes of wide rows, or of rows a `where` leaves
/// out, would then hold a block each).
fn detached(field: Option<&bytes::Bytes>) -> Field {
    Field(field.map(|b| bytes::Bytes::copy_from_slice(b)))
}

/// Table handles by name. Looked up for every change (twice for a lane's), so hashed with
/// foldhash: SipHash of the name was 1-2% of the follower's instructions (callgrind).
type Handles =
    std::collections::HashMap<String, std::sync::Arc<RowTable>, foldhash::fast::RandomState>;

/// The handle cached under `name` in `tables`, made by `make` on first use (looked up by
/// `&str` first: this runs per change, and `entry` would build a key `String` each time).
fn handle(
    tables: &mut Handles,
    name: &str,
    make: impl FnOnce() -> RowTable,
) -> std::sync::Arc<RowTable> {
    if let Some(t) = tables.get(name) {
        return t.clone();
    }
    let t = std::sync::Arc::new(make());
    tables.insert(name.to_string(), t.clone());
    t
}

/// Bytes an op holds, for the flush threshold.
fn op_size(op: &Op) -> usize {
    match op {
        Op::Sql(s) => s.len(),
        Op::Row(RowOp { params, .. }) => op_size_of(params),
    }
}

/// Bytes a row change holds: a statement costs a round trip's worth of protocol beside its
/// fields.
fn op_size_of(params: &[Field]) -> usize {
    64 + params
        .iter()
        .map(|f| 4 + f.0.as_ref().map_or(0, |b| b.len()))
        .sum::<usize>()
}

/// The lane (of `lanes`, 0 the applier's own session) of a change of reorderable `table`:
/// from the hash of its key fields, the same for every change of one key. From the hash's
/// high half: the folding's hash map reads the low bits too.
fn lane_of(op: &RowOp, lanes: usize) -> usize {
    (((op.key_hash >> 32) * lanes as u64) >> 32) as usize
}

async fn prepare(
    client: &Client,
    table: &RowTable,
    kind: RowKind,
    rows: usize,
) -> Result<tokio_postgres::Statement> {
    // Through `apply_error`: preparing waits for the table's lock as applying does.
    client.prepare(&table.sql(kind, rows)).await.map_err(|e| {
        apply_error(
            format!(
                "preparing the {} of {rows} change(s) of {}",
                kind.verb(),
                table.table.name
            ),
            &e,
        )
    })
}

/// `Key (a, b)=(1, x)` of the first row of an `UPDATE`'s `params` (whole rows) that the
/// target does not hold; `None` if it cannot tell (the message then goes without it). Its
/// queries queue behind the statements already pipelined: if one of those fails, its error
/// is the one reported (a disagreement found later restarts the follower all the same).
async fn missing_key(client: &Client, table: &TargetTable, params: &[&Field]) -> Option<String> {
    use futures_util::TryStreamExt;
    let stmt = client.prepare(&table.missing_key_sql()).await.ok()?;
    let width = table.columns.len().max(1);
    let names: Vec<String> = table
        .key
        .iter()
        .map(|&k| table.columns[k].clone())
        .collect();
    for row in params.chunks(width) {
        let key: Vec<&Field> = table
            .key
            .iter()
            .filter_map(|&k| row.get(k).copied())
            .collect();
        let found: Vec<tokio_postgres::Row> = client
            .query_raw(&stmt, key)
            .await
            .ok()?
            .try_collect()
            .await
            .ok()?;
        if let Some(r) = found.first() {
            let values: Vec<Option<String>> = r.try_get(0).ok()?;
            let values: Vec<String> = values
                .into_iter()
                .map(|v| v.unwrap_or_else(|| "NULL".into()))
                .collect();
            return Some(format!(
                "Key ({})=({})",
                names.join(", "),
                values.join(", ")
            ));
        }
    }
    None
}

/// An `INSERT` or `UPDATE` shape that found the target other than the source said
/// (`row_ops.rs`, [`Prior`]): a row written or deleted on the target, or one the copy did not
/// load. Transient: the follower starts over, and applies the changes up to where this one
/// was read as upserts, which take the source's rows whatever the target holds.
fn disagrees(what: String, found: String) -> Error {
    Error::Transient {
        what,
        reason: format!(
            "the target disagrees with the source: {}. Rows written or deleted on the target? \
             The follower starts over from its last committed position and applies the \
             changes up to here as upserts",
            found.trim_end_matches('.')
        ),
    }
}

/// A failed apply statement. A foreign key of the target refusing a change the source made
/// stops the follow with what to do (retrying would fail the same way); other failures are
/// [`crate::error::query_error`]s.
fn apply_error(what: impl Into<String>, e: &tokio_postgres::Error) -> Error {
    // Apply lanes wait with a lock timeout (see `Applier::add_lanes`); the first session
    // only with one the target's settings give it. Starting over rolls back the first
    // session and frees whatever queued between them.
    if e.code() == Some(&tokio_postgres::error::SqlState::LOCK_NOT_AVAILABLE) {
        return Error::Transient {
            what: what.into(),
            reason: format!(
                "{}: a session of the follower gave up waiting for a lock on this table (an \
                 apply lane waits a minute, the first session as long as the target's \
                 lock_timeout says), which another session of the target holds or waits for \
                 (DDL, LOCK TABLE, VACUUM FULL, REINDEX during the follow?); the follower \
                 starts over from its last committed position",
                db_reason(e)
            ),
        };
    }
    if e.code() == Some(&tokio_postgres::error::SqlState::FOREIGN_KEY_VIOLATION) {
        return Error::Query {
            what: what.into(),
            reason: format!(
                "{}. The source made this change, but a foreign key of the target refuses it: \
                 the source does not enforce that key (a MySQL session with foreign_key_checks \
                 = 0, a key the source lacks), or the key was created NOT VALID because the \
                 copied rows already broke it. Drop that foreign key on the target (add it \
                 back after the cutover) and start the follower again",
                db_reason(e)
            ),
        };
    }
    crate::error::query_error(what, e)
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn t(v: &'static str) -> Value {
        Value::Text(Bytes::from_static(v.as_bytes()))
    }

    fn table(key: Vec<usize>) -> FollowedTable {
        FollowedTable {
            source: QualifiedName::new("public", "items"),
            target: "\"public\".\"items\"".into(),
            columns: vec!["id".into(), "body".into(), "doc".into()],
            type_oids: vec![23, 25, 25],
            key,
        }
    }

    #[test]
    fn insert_is_an_upsert_by_key() -> Result<()> {
        let mut s = String::new();
        insert(&mut s, &table(vec![0]), &[t("1"), t("it's"), Value::Null])?;
        assert_eq!(
            s,
            "INSERT INTO \"public\".\"items\" (\"id\", \"body\", \"doc\") VALUES ('1', 'it''s', NULL) \
             ON CONFLICT (\"id\") DO UPDATE SET \"body\" = EXCLUDED.\"body\", \"doc\" = EXCLUDED.\"doc\";\n"
        );
        Ok(())
    }

    #[test]
    fn key_change_deletes_the_old_key_first() -> Result<()> {
        let mut s = String::new();
        let old = [t("1"), Value::Null, Value::Null];
        update(
            &mut s,
            &table(vec![0]),
            Some(&old),
            &[t("2"), t("b"), t("c")],
        )?;
        assert!(s.starts_with("DELETE FROM \"public\".\"items\" WHERE \"id\" = '1';\nINSERT"));
        Ok(())
    }

    #[test]
    fn unchanged_toast_is_not_overwritten() -> Result<()> {
        let mut s = String::new();
        update(
            &mut s,
            &table(vec![0]),
            None,
            &[t("1"), t("b"), Value::Unchanged],
        )?;
        assert_eq!(
            s,
            "UPDATE \"public\".\"items\" SET \"id\" = '1', \"body\" = 'b' WHERE \"id\" = '1';\n"
        );
        Ok(())
    }

    #[test]
    fn keyless_rows_are_found_by_every_value() -> Result<()> {
        let mut s = String::new();
        delete(&mut s, &table(vec![]), &[t("1"), Value::Null, t("x")])?;
        assert_eq!(
            s,
            "DELETE FROM \"public\".\"items\" WHERE ctid = (SELECT ctid FROM \"public\".\"items\" \
             WHERE \"id\"::text = '1' AND \"body\" IS NULL AND \"doc\"::text = 'x' LIMIT 1);\n"
        );
        let mut s = String::new();
        let old = [t("1"), t("a"), t("big")];
        update(
            &mut s,
            &table(vec![]),
            Some(&old),
            &[t("1"), t("b"), Value::Unchanged],
        )?;
        assert!(s.starts_with(
            "UPDATE \"public\".\"items\" SET \"id\" = '1', \"body\" = 'b', \"doc\" = 'big' WHERE ctid"
        ));
        Ok(())
    }

    #[test]
    fn every_change_of_one_key_goes_to_one_lane_and_keys_spread() {
        let t = std::sync::Arc::new(RowTable::new(
            TargetTable {
                name: "\"public\".\"t\"".into(),
                columns: vec!["a".into(), "v".into(), "b".into()],
                types: vec!["integer".into(), "text".into(), "integer".into()],
                key: vec![0, 2],
            },
            true,
        ));
        let f = |s: &str| Field(Some(Bytes::copy_from_slice(s.as_bytes())));
        let seed = foldhash::fast::RandomState::default();
        let lane = |kind, params| {
            let op = RowOp::new(t.clone(), kind, params, &seed);
            lane_of(&op, 3)
        };
        let mut used = [0usize; 3];
        for k in 0..300 {
            let (a, b) = (format!("a{k}"), format!("b{k}"));
            let upsert = lane(RowKind::Upsert, vec![f(&a), f("x"), f(&b)]);
            let other = lane(RowKind::Upsert, vec![f(&a), f("y"), f(&b)]);
            let delete = lane(RowKind::Delete, vec![f(&a), f(&b)]);
            assert_eq!((upsert, other), (delete, delete), "key {k} changes lanes");
            used[delete] += 1;
        }
        assert!(
            used.iter().all(|&n| n > 50),
            "keys spread unevenly: {used:?}"
        );
    }

    #[test]
    fn a_change_of_another_width_is_a_schema_change() {
        let mut s = String::new();
        let e = insert(&mut s, &table(vec![0]), &[t("1")]);
        assert!(matches!(e, Err(Error::SchemaChanged { .. })));
    }
}
