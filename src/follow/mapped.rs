//! Changes of tables with column mappings: the same read, filter and transform as the bulk
//! copy, so that a row inserted before the snapshot and the same row inserted after it arrive
//! identical on the target.
//!
//! How: a changed row arrives as the text of its source values. The follower asks the source
//! server to read it as the bulk reader reads a table: the reader's own `SELECT` list (columns
//! as they are, as text, or cast by the server) and the user's filter, over a `VALUES` list of
//! the changed rows typed as the source columns, in a session set up like the readers'. The
//! binary tuples that come back go through the table's [`TableTransform`] (casts, defaults,
//! value maps, rejects), and the target fields are applied by key as binary parameters
//! ([`Applier::upsert_row`] and friends), never through text.
//!
//! Invariants: changes are queued in stream order and resolved together (one source query per
//! table per flush), then applied in that same order; the queue is flushed before anything
//! else reaches the applier (an unmapped change, a truncate, a commit), so order holds across
//! tables. The target converges to what a bulk copy of the source would hold now: a row whose
//! new version fails the filter or is rejected is deleted by key (a reject is recorded), an
//! update that moves a key deletes the old one.
//!
//! An update that left a TOASTed column unchanged does not send it, yet the filter and the
//! transform need the whole row (a row may move into the filter with it). Such a value is read
//! from the source row as it is now, by key, in the same query. That converges: the value was
//! unchanged by this update, so it differs now only if a later change touched the row, and that
//! change comes later in the stream and is applied after this one. When the key no longer
//! exists on the source, a later delete or key move settles the row; only the old key's delete
//! is applied then. A cutover is taken with the application's writes stopped, so every such
//! later change is in the stream before the cutover position.

use std::collections::HashMap;
use std::fmt::Write as _;

use bytes::Bytes;
use futures_util::StreamExt;
use tokio_postgres::Client;

use crate::catalog::{quote_ident, Catalog, QualifiedName, Table};
use crate::error::{db_reason, Error, Result};
use crate::follow::apply::{literal, Applier, FollowedTable, Prior, TargetTable};
use crate::follow::pgoutput::Value;
use crate::mapping::TableMapping;
use crate::reject::Reject;
use crate::state::StateRef;
use crate::transform::{split_tuple, TableTransform};

/// Changes queued before the queue is resolved (one source query per table).
const QUEUE_CHANGES: usize = 2_000;
/// Value text queued before the queue is resolved.
const QUEUE_BYTES: usize = 4 << 20;
/// What a value an update did not send counts toward [`QUEUE_BYTES`]: the source sends it
/// back whole, and TOASTed values are large.
const LOOKUP_BYTES: usize = 64 << 10;
/// Name of the ordinal column added to the `VALUES` list.
const ORD: &str = "__howdah_ord";
/// Name of the column that says whether a looked-up row exists.
const FOUND: &str = "__howdah_found";

/// How one mapped table's changes become target rows.
#[derive(Debug, Clone)]
pub struct MappedTable {
    /// The target table the fields are for.
    pub target: TargetTable,
    /// The target name as rejects record it.
    reject_name: String,
    /// Source column names and types (`format_type`), in the stream's order.
    columns: Vec<(String, String)>,
    /// Alias of the `VALUES` list: the source table's own name, so a filter may qualify.
    alias: String,
    /// The source table, quoted, for values an update did not send.
    source: String,
    /// The bulk reader's `SELECT` list.
    select: String,
    /// The user's filter.
    filter: Option<String>,
    /// The transform; `None`: the read fields are the target fields.
    transform: Option<TableTransform>,
    /// Target columns of the key.
    key_mask: Vec<bool>,
}

impl MappedTable {
    /// The mapped table from its source shape (`natural`), its target shape and its mapping.
    pub fn new(natural: &Table, target: &Table, map: &TableMapping) -> Result<Self> {
        let columns: Vec<(String, String)> = natural
            .copy_columns()
            .map(|c| (c.name.clone(), c.type_sql.clone()))
            .collect();
        if let Some(c) = map
            .read
            .copy_columns()
            .find(|c| !columns.iter().any(|(n, _)| *n == c.name))
        {
            return Err(Error::Internal(format!(
                "mapped column {} is not a column of {}",
                c.name, natural.name
            )));
        }
        let t = TargetTable::from_catalog(target);
        let mut key_mask = vec![false; t.columns.len()];
        for &k in &t.key {
            key_mask[k] = true;
        }
        let read = crate::source::postgres::PgRead {
            table: map.read.clone(),
            read_as: map.read_as.clone(),
            filter: map.filter.clone(),
        };
        Ok(MappedTable {
            reject_name: target.name.to_string(),
            select: crate::source::postgres::select_list(&map.read, Some(&read)),
            alias: quote_ident(&natural.name.name),
            source: natural.name.quoted(),
            filter: map.filter.clone(),
            transform: map.transform.clone(),
            columns,
            key_mask,
            target: t,
        })
    }

    /// Target fields of a read tuple (all columns, or those `only` marks).
    fn fields(
        &self,
        tuple: &[u8],
        only: Option<&[bool]>,
    ) -> std::result::Result<Vec<Option<Bytes>>, Reject> {
        if let Some(t) = &self.transform {
            return t.row(tuple, only);
        }
        let mut at = Vec::new();
        if split_tuple(tuple, &mut at).is_none() {
            return Err(Reject {
                key: "?".into(),
                column: String::new(),
                value: String::new(),
                reason: "a changed row's tuple is cut short".into(),
            });
        }
        Ok((0..self.target.columns.len())
            .map(|i| match at.get(i) {
                Some(&(s, l)) if l >= 0 && only.is_none_or(|o| o[i]) => {
                    Some(Bytes::copy_from_slice(&tuple[s..s + l as usize]))
                }
                _ => None,
            })
            .collect())
    }
}

impl MappedTable {
    /// Runs the table's read once over no rows, so that a filter or select list that cannot
    /// run over changed rows (a filter on a generated or system column, a name the `VALUES`
    /// list lacks) stops the follow at its start, naming the table, not at the first change.
    pub async fn check(&self, source: &Client, stream: &FollowedTable) -> Result<()> {
        let mut sql = format!(
            "SELECT {ORD}, {FOUND}, ({}) IS TRUE, {} FROM (VALUES (0, true",
            self.filter.as_deref().unwrap_or("true"),
            if self.select.is_empty() {
                "NULL"
            } else {
                &self.select
            }
        );
        for (_, ty) in &self.columns {
            write!(sql, ", NULL::{ty}").ok();
        }
        write!(sql, ")) AS {}({ORD}, {FOUND}", self.alias).ok();
        for (c, _) in &self.columns {
            write!(sql, ", {}", quote_ident(c)).ok();
        }
        sql.push_str(") WHERE false");
        match source.query(&sql, &[]).await {
            Ok(_) => Ok(()),
            Err(e) if crate::error::is_transient(&e) => Err(crate::error::query_error(
                format!("checking the mapping of {} for changed rows", stream.source),
                &e,
            )),
            Err(e) => Err(Error::Follow(format!(
                "the mapping of {} cannot be applied to changed rows: {} (a changed row carries \
                 only the table's own stored columns: a filter on a generated or system column \
                 cannot be evaluated on it)",
                stream.source,
                db_reason(&e)
            ))),
        }
    }
}

/// The mapped tables among the followed ones, by position in `tables` (`None`: unmapped).
/// `natural` is the source catalog before mappings, `mapped` after, `maps` their mappings.
pub fn mapped_tables(
    tables: &[FollowedTable],
    natural: &Catalog,
    mapped: &Catalog,
    maps: &[Option<TableMapping>],
) -> Result<Vec<Option<MappedTable>>> {
    tables
        .iter()
        .map(|f| {
            let Some(i) = natural.tables.iter().position(|t| t.name == f.source) else {
                return Ok(None);
            };
            match (maps.get(i).and_then(Option::as_ref), mapped.tables.get(i)) {
                (Some(m), Some(target)) => {
                    MappedTable::new(&natural.tables[i], target, m).map(Some)
                }
                _ => Ok(None),
            }
        })
        .collect()
}

/// One change of a mapped table, as the stream sent it.
#[derive(Debug)]
pub enum Change {
    /// A new row.
    Insert(Vec<Value>),
    /// A changed row (`old`: its old key or row, when sent).
    Update(Option<Vec<Value>>, Vec<Value>),
    /// A deleted row (its key or, for replica identity full, its row).
    Delete(Vec<Value>),
}

/// A row image to read on the source.
struct Image {
    table: usize,
    values: Vec<Value>,
    /// Some values were not sent: they are read from the source row with the image's key.
    lookup: bool,
}

/// What the source read of an image: whether the row is there (always, but for a lookup),
/// whether it passes the filter, and its read tuple.
struct Read {
    found: bool,
    pass: bool,
    tuple: Bytes,
}

/// Mapped changes waiting to be resolved and applied, in stream order.
#[derive(Default)]
pub struct Queue {
    items: Vec<(usize, Change)>,
    bytes: usize,
    /// How many queued changes precede the current source transaction (whose start the
    /// applier marked): when they reach the applier, its mark moves past them, so that a
    /// rewind drops only the current transaction's changes.
    txn_start: Option<usize>,
    /// The current source transaction's id, and those of the transactions with queued
    /// changes: a lookup on the source waits until they are visible there.
    xid: u32,
    xids: Vec<u32>,
}

impl Queue {
    /// Queues a change of the mapped table at `table` (its position in the followed tables).
    pub fn push(&mut self, table: usize, change: Change) {
        let size = |v: &[Value]| -> usize {
            v.iter()
                .map(|x| match x {
                    Value::Text(b) => b.len() + 8,
                    // The source sends the whole value back.
                    Value::Unchanged => LOOKUP_BYTES,
                    Value::Null => 8,
                })
                .sum()
        };
        self.bytes += match &change {
            Change::Insert(n) | Change::Delete(n) => size(n),
            Change::Update(o, n) => size(n) + o.as_deref().map_or(0, size),
        };
        self.items.push((table, change));
        if self.xids.last() != Some(&self.xid) {
            self.xids.push(self.xid);
        }
    }

    /// Source transaction `xid` begins (the applier was just marked).
    pub fn begin(&mut self, xid: u32) {
        self.txn_start = Some(self.items.len());
        self.xid = xid;
    }

    /// Whether the queue should be resolved now.
    pub fn is_full(&self) -> bool {
        self.items.len() >= QUEUE_CHANGES || self.bytes >= QUEUE_BYTES
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }

    /// Resolves the queued changes on the source and hands their statements to `applier`, in
    /// order.
    pub async fn flush(
        &mut self,
        source: &Client,
        tables: &[FollowedTable],
        mapped: &[Option<MappedTable>],
        applier: &mut Applier,
        st: &StateRef,
    ) -> Result<()> {
        if self.items.is_empty() {
            return Ok(());
        }
        let items = std::mem::take(&mut self.items);
        let xids = std::mem::take(&mut self.xids);
        self.bytes = 0;
        let mut images: Vec<Image> = Vec::new();
        let mut plan: Vec<Plan> = Vec::with_capacity(items.len());
        for (t, change) in items {
            if mapped.get(t).and_then(Option::as_ref).is_none() {
                return Err(Error::Internal(format!(
                    "a change of {} was queued as mapped",
                    tables[t].source
                )));
            }
            plan.push(plan_change(&tables[t], t, change, &mut images)?);
        }
        if images.iter().any(|i| i.lookup) {
            wait_visible(source, &xids).await?;
        }
        let reads = read_images(source, tables, mapped, &images).await?;
        let earlier = self.txn_start.filter(|&k| k > 0);
        let n = plan.len();
        for (i, p) in plan.into_iter().enumerate() {
            if Some(i) == earlier {
                applier.remark();
            }
            let t = p_table(&p);
            apply_plan(p, &tables[t], mapped, &reads, applier, st).await?;
        }
        if Some(n) == earlier {
            applier.remark();
        }
        // What is queued from now on belongs to the current transaction, if one is open.
        self.txn_start = self.txn_start.map(|_| 0);
        Ok(())
    }
}

/// Waits until the source transactions `xids` are visible to a new snapshot on the source.
/// The stream sends a transaction once its commit record is written, which can be a moment
/// before the server shows it to other sessions: a lookup by key made in that moment would
/// not find a row the transaction inserted (the test lost moved rows that way).
async fn wait_visible(source: &Client, xids: &[u32]) -> Result<()> {
    // 32-bit ids widened with the epoch of the snapshot's xmax (an id above xmax's low bits
    // belongs to the epoch before).
    const SQL: &str = "WITH s AS (SELECT pg_current_snapshot() AS snap), \
        x AS (SELECT snap, pg_snapshot_xmax(snap)::text::bigint AS xmax FROM s) \
        SELECT coalesce(bool_and(pg_visible_in_snapshot((CASE \
            WHEN ((xmax >> 32) << 32 | v) > xmax THEN ((xmax >> 32) << 32 | v) - 4294967296 \
            ELSE ((xmax >> 32) << 32 | v) END)::text::xid8, snap)), true) \
        FROM x, unnest($1::bigint[]) AS v";
    let ids: Vec<i64> = xids.iter().map(|&x| i64::from(x)).collect();
    let started = std::time::Instant::now();
    let mut pause = std::time::Duration::from_millis(1);
    loop {
        let visible: bool = source
            .query_one(SQL, &[&ids])
            .await
            .map_err(|e| {
                crate::error::query_error("waiting for source transactions to be visible", &e)
            })?
            .get(0);
        if visible {
            return Ok(());
        }
        if started.elapsed() > std::time::Duration::from_secs(30) {
            return Err(Error::Transient {
                what: "reading changed rows on the source".into(),
                reason: format!(
                    "source transactions {xids:?} were streamed but are not visible after 30 s"
                ),
            });
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(std::time::Duration::from_millis(50));
    }
}

/// What to do for one change, with its images' numbers.
enum Plan {
    /// Insert or update: delete the old key first when it moved (`old`), then load the new
    /// row if it passes.
    Full {
        table: usize,
        old: Option<usize>,
        new: usize,
    },
    /// A delete, by the key of the image, or for a keyless table by all its values.
    Delete { table: usize, old: usize },
}

fn p_table(p: &Plan) -> usize {
    match p {
        Plan::Full { table, .. } | Plan::Delete { table, .. } => *table,
    }
}

fn plan_change(
    stream: &FollowedTable,
    table: usize,
    change: Change,
    images: &mut Vec<Image>,
) -> Result<Plan> {
    let mut image = |values: Vec<Value>| -> Result<usize> {
        if values.len() != stream.columns.len() {
            return Err(Error::SchemaChanged {
                table: stream.source.clone(),
                change: format!(
                    "a change carries {} columns, the followed table has {}",
                    values.len(),
                    stream.columns.len()
                ),
            });
        }
        let lookup = values.iter().any(|v| matches!(v, Value::Unchanged));
        images.push(Image {
            table,
            values,
            lookup,
        });
        Ok(images.len() - 1)
    };
    let keyless = stream.key.is_empty();
    match change {
        Change::Insert(new) => Ok(Plan::Full {
            table,
            old: None,
            new: image(new)?,
        }),
        Change::Delete(old) => Ok(Plan::Delete {
            table,
            old: image(old)?,
        }),
        Change::Update(old, mut new) => {
            if keyless && old.is_none() {
                return Err(Error::Query {
                    what: format!("applying an update of {}", stream.source),
                    reason: "the stream sent no old row (the table needs REPLICA IDENTITY FULL)"
                        .into(),
                });
            }
            // Unchanged TOAST values are known when the old row came whole.
            if let Some(o) = &old {
                for (n, v) in new.iter_mut().enumerate() {
                    if matches!(v, Value::Unchanged) && matches!(o.get(n), Some(Value::Text(_))) {
                        *v = o[n].clone();
                    }
                }
            }
            if keyless && new.iter().any(|v| matches!(v, Value::Unchanged)) {
                return Err(Error::Follow(format!(
                    "an update of {} (a table without a key) did not send every value",
                    stream.source
                )));
            }
            let moved = !keyless
                && old
                    .as_ref()
                    .is_some_and(|o| stream.key.iter().any(|&k| o.get(k) != new.get(k)));
            let old = match (keyless || moved, old) {
                (true, Some(o)) => Some(image(o)?),
                _ => None,
            };
            Ok(Plan::Full {
                table,
                old,
                new: image(new)?,
            })
        }
    }
}

/// Reads every image on the source, one query per table: the bulk reader's `SELECT` list and
/// the filter's verdict over the images as a `VALUES` list.
async fn read_images(
    source: &Client,
    tables: &[FollowedTable],
    mapped: &[Option<MappedTable>],
    images: &[Image],
) -> Result<HashMap<usize, Read>> {
    let mut by_table: HashMap<usize, Vec<usize>> = HashMap::new();
    for (n, img) in images.iter().enumerate() {
        by_table.entry(img.table).or_default().push(n);
    }
    let mut out = HashMap::with_capacity(images.len());
    for (t, ns) in by_table {
        let Some(m) = mapped.get(t).and_then(Option::as_ref) else {
            continue;
        };
        let mut sql = String::with_capacity(256 + ns.len() * 64);
        write!(
            sql,
            "COPY (SELECT {ORD}, {FOUND}, ({}) IS TRUE, {} FROM (VALUES ",
            m.filter.as_deref().unwrap_or("true"),
            if m.select.is_empty() {
                "NULL"
            } else {
                &m.select
            }
        )
        .ok();
        for (row, &n) in ns.iter().enumerate() {
            if row > 0 {
                sql.push_str(", ");
            }
            let img = &images[n];
            let by_key = if img.lookup {
                key_match(&tables[t], &img.values)?
            } else {
                String::new()
            };
            write!(sql, "({n}, ").ok();
            if img.lookup {
                write!(sql, "EXISTS (SELECT FROM ONLY {} WHERE {by_key})", m.source).ok();
            } else {
                sql.push_str("true");
            }
            for (v, (name, ty)) in img.values.iter().zip(&m.columns) {
                sql.push_str(", ");
                match v {
                    Value::Text(_) => literal(&mut sql, &tables[t], v)?,
                    Value::Unchanged => {
                        write!(
                            sql,
                            "(SELECT {} FROM ONLY {} WHERE {by_key})",
                            quote_ident(name),
                            m.source
                        )
                        .ok();
                    }
                    Value::Null => sql.push_str("NULL"),
                }
                write!(sql, "::{ty}").ok();
            }
            sql.push(')');
        }
        write!(sql, ") AS {}({ORD}, {FOUND}", m.alias).ok();
        for (c, _) in &m.columns {
            write!(sql, ", {}", quote_ident(c)).ok();
        }
        sql.push_str(") ORDER BY 1) TO STDOUT (FORMAT binary)");
        let what = || {
            format!(
                "reading changed rows of {} as the copy reads them",
                tables[t].source
            )
        };
        let stream = source
            .copy_out(&sql)
            .await
            .map_err(|e| crate::error::query_error(what(), &e))?;
        futures_util::pin_mut!(stream);
        let mut data = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|e| crate::error::query_error(what(), &e))?;
            data.extend_from_slice(&chunk);
        }
        parse_reads(&data, &mut out).map_err(|reason| Error::Query {
            what: what(),
            reason,
        })?;
    }
    Ok(out)
}

/// Splits a binary COPY output of `(ord int4, found bool, pass bool, read columns...)` into
/// reads by ord; the read tuple loses the first three fields.
fn parse_reads(data: &[u8], out: &mut HashMap<usize, Read>) -> std::result::Result<(), String> {
    const SIGNATURE: &[u8] = b"PGCOPY\n\xff\r\n\0";
    let bad = || "the server's COPY output is malformed".to_string();
    if !data.starts_with(SIGNATURE) || data.len() < 19 {
        return Err(bad());
    }
    let ext = u32::from_be_bytes(data[15..19].try_into().map_err(|_| bad())?) as usize;
    let mut pos = 19 + ext;
    let mut fields = Vec::new();
    loop {
        let count = data
            .get(pos..pos + 2)
            .map(|b| i16::from_be_bytes([b[0], b[1]]))
            .ok_or_else(bad)?;
        if count == -1 {
            return Ok(());
        }
        let len = split_tuple(&data[pos..], &mut fields).ok_or_else(bad)?;
        let (Some(&(o, 4)), Some(&(f, 1)), Some(&(p, 1))) =
            (fields.first(), fields.get(1), fields.get(2))
        else {
            return Err(bad());
        };
        let ord = u32::from_be_bytes(data[pos + o..pos + o + 4].try_into().map_err(|_| bad())?);
        let found = data[pos + f] != 0;
        let pass = data[pos + p] != 0;
        // The read tuple: the count less three, then the fields after `pass`.
        let rest = pos + p + 1;
        let mut tuple = Vec::with_capacity(len);
        tuple.extend_from_slice(&(count - 3).to_be_bytes());
        tuple.extend_from_slice(&data[rest..pos + len]);
        out.insert(
            ord as usize,
            Read {
                found,
                pass,
                tuple: Bytes::from(tuple),
            },
        );
        pos += len;
    }
}

async fn apply_plan(
    p: Plan,
    stream: &FollowedTable,
    mapped: &[Option<MappedTable>],
    reads: &HashMap<usize, Read>,
    applier: &mut Applier,
    st: &StateRef,
) -> Result<()> {
    let m = mapped
        .get(p_table(&p))
        .and_then(Option::as_ref)
        .ok_or_else(|| Error::Internal("a mapped change lost its table".into()))?;
    let read = |n: usize| -> Result<&Read> {
        reads.get(&n).ok_or_else(|| {
            Error::Internal(format!(
                "the source did not read back a changed row of {}",
                stream.source
            ))
        })
    };
    let keyless = m.target.key.is_empty();
    // The target key of an image; `None` when its key cannot be made (never loaded).
    let key_of =
        |r: &Read| -> Option<Vec<Option<Bytes>>> { m.fields(&r.tuple, Some(&m.key_mask)).ok() };
    match p {
        Plan::Delete { old, .. } => {
            let r = read(old)?;
            if keyless {
                // Only a row that was loaded can be found by its values.
                if let (true, Ok(row)) = (r.pass, m.fields(&r.tuple, None)) {
                    applier.delete_row(&m.target, row, Prior::Unknown).await?;
                }
            } else if let Some(key) = key_of(r) {
                applier.delete_row(&m.target, key, Prior::Unknown).await?;
            }
        }
        Plan::Full { old, new, .. } => {
            if let Some(o) = old {
                let r = read(o)?;
                if keyless {
                    if let (true, Ok(row)) = (r.pass, m.fields(&r.tuple, None)) {
                        applier.delete_row(&m.target, row, Prior::Unknown).await?;
                    }
                } else if let Some(key) = key_of(r) {
                    applier.delete_row(&m.target, key, Prior::Unknown).await?;
                }
            }
            let r = read(new)?;
            if !r.found {
                // The key is gone from the source: a later change settles the row.
                return Ok(());
            }
            match (r.pass, m.fields(&r.tuple, None)) {
                (true, Ok(row)) => applier.upsert_row(&m.target, row, Prior::Unknown).await?,
                (pass, result) => {
                    if let (true, Err(reject)) = (pass, result) {
                        applier.record_reject(st, &m.reject_name, &reject);
                    }
                    if !keyless {
                        // What a copy of the source now would not hold.
                        if let Some(key) = key_of(r) {
                            applier.delete_row(&m.target, key, Prior::Unknown).await?;
                        }
                    }
                }
            }
        }
    }
    Ok(())
}

/// `k1 = 'v'::type AND ...` over the source key values of `values`.
fn key_match(stream: &FollowedTable, values: &[Value]) -> Result<String> {
    let mut out = String::new();
    for (n, &k) in stream.key.iter().enumerate() {
        if n > 0 {
            out.push_str(" AND ");
        }
        let v = &values[k];
        if !matches!(v, Value::Text(_)) {
            return Err(Error::Query {
                what: format!("applying a change of {}", stream.source),
                reason: format!("the change does not carry key column {}", stream.columns[k]),
            });
        }
        write!(out, "{} = ", quote_ident(&stream.columns[k])).ok();
        literal(&mut out, stream, v)?;
    }
    Ok(out)
}

/// The source catalog's tables named `names`, before and after the job's mappings, with the
/// mappings; per-run values are the job's recorded ones.
pub async fn load_mappings(
    settings: &crate::config::CopySettings,
    source: &Client,
    target: &Client,
    st: &StateRef,
) -> Result<(Catalog, Catalog, Vec<Option<TableMapping>>)> {
    if settings.rules.is_empty() {
        // Nothing is mapped: no need to read the source's catalog.
        return Ok((Catalog::default(), Catalog::default(), Vec::new()));
    }
    let mut natural = crate::catalog::postgres::load(source).await?;
    natural.select(|n| settings.filter.matches(n));
    let mut mapped = natural.clone();
    let sql_values = crate::state::values::load(target, st, true).await?;
    let ctx = crate::mapping::Context {
        postgres_source: true,
        job: &settings.job,
        source_names: natural.tables.iter().map(|t| t.name.clone()).collect(),
        sql_values,
    };
    let maps = crate::mapping::apply(&settings.rules, &mut mapped, &ctx)?;
    Ok((natural, mapped, maps))
}

/// The target name of each source table (mapped tables may be renamed).
pub fn target_names(natural: &Catalog, mapped: &Catalog) -> HashMap<QualifiedName, QualifiedName> {
    natural
        .tables
        .iter()
        .zip(&mapped.tables)
        .map(|(n, m)| (n.name.clone(), m.name.clone()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_drop_the_ordinal_and_verdict() {
        let mut data = b"PGCOPY\n\xff\r\n\0".to_vec();
        data.extend_from_slice(&0u32.to_be_bytes());
        data.extend_from_slice(&0u32.to_be_bytes());
        // (7, true, true, 'ab')
        data.extend_from_slice(&4i16.to_be_bytes());
        data.extend_from_slice(&4i32.to_be_bytes());
        data.extend_from_slice(&7i32.to_be_bytes());
        data.extend_from_slice(&1i32.to_be_bytes());
        data.push(1);
        data.extend_from_slice(&1i32.to_be_bytes());
        data.push(1);
        data.extend_from_slice(&2i32.to_be_bytes());
        data.extend_from_slice(b"ab");
        data.extend_from_slice(&(-1i16).to_be_bytes());
        let mut out = HashMap::new();
        assert_eq!(parse_reads(&data, &mut out), Ok(()));
        let r = &out[&7];
        assert!(r.pass && r.found);
        let mut want = 1i16.to_be_bytes().to_vec();
        want.extend_from_slice(&2i32.to_be_bytes());
        want.extend_from_slice(b"ab");
        assert_eq!(&r.tuple[..], &want[..]);
    }
}
