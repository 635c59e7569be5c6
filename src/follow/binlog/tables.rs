//! The followed MySQL/MariaDB tables: for each, the source columns in the order the binary
//! log sends them, which target field each one fills, and the bulk path's converter of that
//! field; a binary log row becomes the target row (PostgreSQL binary fields) here.
//!
//! Invariant: a row goes through exactly the converters the bulk reader uses for the table
//! (built from the same read plan, with the same value policies), then, for a table with
//! column mappings, the same transform (`TableTransform::row`), so a row streamed and the
//! same row copied arrive identical; a row the converter or transform refuses is a reject,
//! as in bulk. A mapped table's `where` is a MySQL condition: the stream checks it on the
//! source by key (`filter_sql`), since only the source server can evaluate it.

use bytes::{Bytes, BytesMut};
use mysql_async::Value;

use crate::catalog::mysql::{MySchema, MyTable};
use crate::catalog::Catalog;
use crate::chunking::mysql_read::MyTablePlan;
use crate::config::Policies;
use crate::error::{Error, Result};
use crate::follow::apply::TargetTable;
use crate::follow::binlog::rows::RowImage;
use crate::follow::binlog::values::SourceColumn;
use crate::reject::{shorten, Reject};
use crate::source::mysql_convert::{display, Converter};
use crate::transform::TableTransform;

/// A followed table.
pub struct BinlogTable {
    /// Source table name.
    pub source: String,
    /// The target table the fields fill.
    pub target: TargetTable,
    /// Target name as rejects record it.
    pub reject_name: String,
    /// Source columns in ordinal order (the binary log's order).
    columns: Vec<SourceColumn>,
    /// Their charsets (for messages).
    charsets: Vec<Option<String>>,
    /// Per source column: the target field it fills (`None`: not copied).
    field_of: Vec<Option<usize>>,
    /// Per read field: its converter and source column name.
    converters: Vec<(Converter, String)>,
    /// Read positions of the key columns, in key order (unmapped: the target's key).
    read_key: Vec<usize>,
    /// A mapped table's transform (`None`: read fields are the target fields).
    transform: Option<TableTransform>,
    /// A mapped table's `where` on the source.
    filter: Option<String>,
    /// Target columns of the key.
    key_mask: Vec<bool>,
    /// Source columns of the key (in the binary log's order).
    key_columns: Vec<bool>,
}

/// The statements of a table's filter check (see [`BinlogTable::filter_sql`]).
pub struct FilterSql {
    /// Creates the session's image table (once per session).
    pub create: String,
    /// Empties it.
    pub empty: String,
    /// `INSERT .. VALUES ` before the rows.
    pub insert: String,
    /// One row's placeholders: its number, then every column.
    pub row: String,
    /// The numbers of the images the filter keeps.
    pub select: String,
    /// Parameters per row.
    pub width: usize,
}

/// What converting rows reuses from one row to the next: the vector of a row's values, the
/// converter's buffer, and the block of memory the fields are cut from.
///
/// Why a block: a field of its own per value cost an allocation, freed by the send task on
/// another thread; callgrind of the follower put a third of its instructions in malloc and
/// free (BENCHMARKS.md, "MySQL follow"). Each field is a `Bytes` slice of the block, which
/// is freed when the last row that holds a field of it is sent; a field larger than
/// `BLOCK / 8` gets its own allocation, so a block holds the fields of many small rows. A key
/// kept alone from a converted row (a delete, a cascade) is copied out by the applier
/// (`apply.rs`, `detached`): it must not keep a block alive that its row's other fields
/// no longer count in the batch's size. Nothing large outlives its row here: the buffer
/// is dropped after a field larger than a block, and the values are cleared after each row.
#[derive(Default)]
pub struct Scratch {
    block: BytesMut,
    buf: Vec<u8>,
    /// A row's values as the bulk reader would receive them.
    values: Vec<Value>,
}

/// The size of a block of fields.
const BLOCK: usize = 64 * 1024;

impl Scratch {
    /// The COPY binary field in `buf` (length, then bytes; -1 for NULL) as a parameter
    /// field.
    fn field(&mut self) -> Option<Bytes> {
        let (len, data) = self.buf.split_at(4);
        if i32::from_be_bytes([len[0], len[1], len[2], len[3]]) < 0 {
            return None;
        }
        if data.len() > BLOCK / 8 {
            let field = Bytes::copy_from_slice(data);
            if self.buf.capacity() > BLOCK {
                // One huge value must not stay allocated for the rest of the run.
                self.buf = Vec::new();
            }
            return Some(field);
        }
        if self.block.capacity() < data.len() {
            self.block = BytesMut::with_capacity(BLOCK);
        }
        self.block.extend_from_slice(data);
        Some(self.block.split().freeze())
    }
}

/// A binary log row as target fields, or the reject it is.
pub enum Converted {
    /// One field per target column.
    Row(Vec<Option<Bytes>>),
    /// The converter refused a value.
    Rejected {
        /// What the rejects record.
        reject: Reject,
        /// The row's key fields (others NULL) when the key itself converted: the row to
        /// delete by key on the target.
        key: Option<Vec<Option<Bytes>>>,
    },
}

impl Converted {
    /// The fields a delete by key needs (the whole row, or the key of a rejected one).
    pub fn into_key_fields(self) -> Option<Vec<Option<Bytes>>> {
        match self {
            Converted::Row(f) => Some(f),
            Converted::Rejected { key, .. } => key,
        }
    }

    /// As [`Converted::key_fields`], borrowed.
    pub fn key_fields(&self) -> Option<&Vec<Option<Bytes>>> {
        match self {
            Converted::Row(f) => Some(f),
            Converted::Rejected { key, .. } => key.as_ref(),
        }
    }
}

impl BinlogTable {
    /// The table from the server's catalog (`my`), its read plan, its target table and its
    /// column mapping, if any.
    fn new(
        my: &MyTable,
        plan: &MyTablePlan,
        target: &crate::catalog::Table,
        map: Option<&crate::mapping::TableMapping>,
        policies: &Policies,
    ) -> Result<BinlogTable> {
        let target_table = TargetTable::from_catalog(target);
        let transform = map.and_then(|m| m.transform.clone());
        if transform.is_none() && target_table.columns.len() != plan.columns.len() {
            return Err(Error::Internal(format!(
                "table {}: {} target columns, {} read columns",
                my.name,
                target_table.columns.len(),
                plan.columns.len()
            )));
        }
        let converters = plan
            .columns
            .iter()
            .map(|c| Ok((Converter::new(c, policies)?, c.name.clone())))
            .collect::<std::result::Result<Vec<_>, String>>()
            .map_err(|reason| {
                Error::Config(format!(
                    "table {}: preparing the conversion: {reason}",
                    my.name
                ))
            })?;
        let field_of: Vec<Option<usize>> = my
            .columns
            .iter()
            .map(|c| plan.columns.iter().position(|r| r.name == c.name))
            .collect();
        // The key as read. The mapping's read table names columns as the target catalog
        // does (after `[mysql] identifiers`: `OrderID` is `orderid`), the plan as the source
        // does; prepare.rs keeps the plan's columns in the read table's order, so positions
        // match where names do not.
        let read_key: Vec<usize> = match map {
            Some(m) => {
                let read: Vec<&str> = m.read.copy_columns().map(|c| c.name.as_str()).collect();
                if read.len() != plan.columns.len() {
                    return Err(Error::Internal(format!(
                        "table {}: the mapping reads {} columns, the read plan {}",
                        my.name,
                        read.len(),
                        plan.columns.len()
                    )));
                }
                m.read
                    .key_names()
                    .iter()
                    .filter_map(|k| read.iter().position(|c| c == k))
                    .collect()
            }
            None => target_table.key.clone(),
        };
        let source_key: Vec<usize> = read_key
            .iter()
            .filter_map(|&j| field_of.iter().position(|f| *f == Some(j)))
            .collect();
        if read_key.len() != target_table.key.len() || source_key.len() != read_key.len() {
            return Err(Error::Internal(format!(
                "table {}: the key's columns are not all read ({} of {})",
                my.name,
                source_key.len(),
                target_table.key.len()
            )));
        }
        let mut key_columns = vec![false; my.columns.len()];
        for &i in &source_key {
            key_columns[i] = true;
        }
        let mut key_mask = vec![false; target_table.columns.len()];
        for &k in &target_table.key {
            key_mask[k] = true;
        }
        Ok(BinlogTable {
            read_key,
            transform,
            filter: map.and_then(|m| m.filter.clone()),
            key_mask,
            key_columns,
            source: my.name.clone(),
            reject_name: target.name.to_string(),
            target: target_table,
            columns: my.columns.iter().map(SourceColumn::new).collect(),
            charsets: my.columns.iter().map(|c| c.charset.clone()).collect(),
            field_of,
            converters,
        })
    }

    /// Number of source columns.
    pub fn width(&self) -> usize {
        self.columns.len()
    }

    /// Which source columns (in the binary log's order) hold the key.
    pub fn key_columns(&self) -> &[bool] {
        &self.key_columns
    }

    /// The row's values as the bulk reader would receive them, one per target field.
    fn values(
        &self,
        mut row: RowImage<'_>,
        values: &mut Vec<Value>,
    ) -> std::result::Result<(), Reject> {
        values.clear();
        values.resize(self.converters.len(), Value::NULL);
        for (i, col) in self.columns.iter().enumerate() {
            let Some(j) = self.field_of[i] else { continue };
            let Some(bv) = row.take(i) else {
                return Err(self.reject(values, &col.name, "", missing_column()));
            };
            match col.value(bv.into_owned(), self.charsets[i].as_deref()) {
                Ok(v) => values[j] = v,
                Err(reason) => return Err(self.reject(values, &col.name, "", reason)),
            }
        }
        Ok(())
    }

    /// Converts a binary log row into target fields (the key's first).
    pub fn convert(&self, row: RowImage<'_>, s: &mut Scratch) -> Converted {
        let mut values = std::mem::take(&mut s.values);
        let out = self.converted(row, &mut values, s);
        values.clear();
        s.values = values;
        out
    }

    /// [`Self::convert`], the row's values read into `values`.
    fn converted(&self, row: RowImage<'_>, values: &mut Vec<Value>, s: &mut Scratch) -> Converted {
        let rejected = |reject| Converted::Rejected { reject, key: None };
        if row.width() != self.columns.len() {
            return rejected(Reject {
                key: String::new(),
                column: String::new(),
                value: String::new(),
                reason: missing_column(),
            });
        }
        if let Err(r) = self.values(row, values) {
            return rejected(r);
        }
        let values: &[Value] = values;
        let Some(transform) = &self.transform else {
            return self.read_fields(values, s);
        };
        // A mapped table: the read fields as one COPY tuple, as the bulk reader makes it,
        // then the transform.
        let mut tuple = Vec::with_capacity(64 * values.len());
        tuple.extend_from_slice(&(values.len() as i16).to_be_bytes());
        for (j, v) in values.iter().enumerate() {
            let (conv, name) = &self.converters[j];
            if let Err(reason) = conv.put(&mut tuple, v) {
                let reject = self.reject(values, name, &shorten(&display(v)), reason);
                // The key fields alone, to delete an earlier version of the row.
                let key = (!self.read_key.contains(&j) && !self.read_key.is_empty())
                    .then(|| self.key_only(values, transform))
                    .flatten();
                return Converted::Rejected { reject, key };
            }
        }
        match transform.row(&tuple, None) {
            Ok(fields) => Converted::Row(fields),
            Err(mut reject) => {
                if reject.key.is_empty() || reject.key == "?" {
                    reject.key = self.reject(values, "", "", String::new()).key;
                }
                let key = if self.target.key.is_empty() {
                    None
                } else {
                    transform
                        .row(&tuple, Some(&self.key_mask))
                        .ok()
                        .filter(|f| self.target.key.iter().all(|&k| f[k].is_some()))
                };
                Converted::Rejected { reject, key }
            }
        }
    }

    /// The target key fields of a row image (every other field `None`), or `None` when a
    /// key value does not convert: what the old version of a keyed row is needed for (its
    /// key names the row to delete or change). Converting the rest of it cost the follower a
    /// third of its converting work for nothing (an update carries both versions).
    pub fn convert_key(&self, row: RowImage<'_>, s: &mut Scratch) -> Option<Vec<Option<Bytes>>> {
        let mut values = std::mem::take(&mut s.values);
        let out = self.key_fields(row, &mut values, s);
        values.clear();
        s.values = values;
        out
    }

    /// [`Self::convert_key`], the key's values read into `values`.
    fn key_fields(
        &self,
        mut row: RowImage<'_>,
        values: &mut Vec<Value>,
        s: &mut Scratch,
    ) -> Option<Vec<Option<Bytes>>> {
        if row.width() != self.columns.len() {
            return None;
        }
        values.clear();
        values.resize(self.converters.len(), Value::NULL);
        for (i, col) in self.columns.iter().enumerate() {
            let Some(j) = self.field_of[i] else { continue };
            if !self.read_key.contains(&j) {
                continue;
            }
            let bv = row.take(i)?;
            values[j] = col
                .value(bv.into_owned(), self.charsets[i].as_deref())
                .ok()?;
        }
        if let Some(transform) = &self.transform {
            return self.key_only(values, transform);
        }
        let mut fields: Vec<Option<Bytes>> = vec![None; values.len()];
        for &j in &self.read_key {
            s.buf.clear();
            self.converters[j].0.put(&mut s.buf, &values[j]).ok()?;
            fields[j] = s.field();
        }
        Some(fields)
    }

    /// The target key fields of a mapped row whose other fields may not convert: a tuple of
    /// the key's read fields (the rest NULL), through the transform's key columns.
    fn key_only(&self, values: &[Value], transform: &TableTransform) -> Option<Vec<Option<Bytes>>> {
        let mut tuple = Vec::with_capacity(16 * values.len());
        tuple.extend_from_slice(&(values.len() as i16).to_be_bytes());
        for (j, v) in values.iter().enumerate() {
            if self.read_key.contains(&j) {
                self.converters[j].0.put(&mut tuple, v).ok()?;
            } else {
                tuple.extend_from_slice(&(-1i32).to_be_bytes());
            }
        }
        transform
            .row(&tuple, Some(&self.key_mask))
            .ok()
            .filter(|f| self.target.key.iter().all(|&k| f[k].is_some()))
    }

    /// Read fields as target fields (an unmapped table, or a mapping without a transform).
    fn read_fields(&self, values: &[Value], s: &mut Scratch) -> Converted {
        let mut fields: Vec<Option<Bytes>> = vec![None; values.len()];
        let key = &self.read_key;
        let order = key
            .iter()
            .copied()
            .chain((0..values.len()).filter(|j| !key.contains(j)));
        for (n, j) in order.enumerate() {
            let v = &values[j];
            s.buf.clear();
            let (conv, name) = &self.converters[j];
            if let Err(reason) = conv.put(&mut s.buf, v) {
                return Converted::Rejected {
                    reject: self.reject(values, name, &shorten(&display(v)), reason),
                    key: (n >= key.len() && !key.is_empty()).then_some(fields),
                };
            }
            fields[j] = s.field();
        }
        Converted::Row(fields)
    }

    /// The mapped table's `where`, if it has one.
    pub fn filter(&self) -> Option<&str> {
        self.filter.as_deref()
    }

    /// Every column's value of a binary log row as the source server takes it back (for the
    /// filter check), or the reject the row is when one does not decode: the filter cannot
    /// be evaluated over it, and the row must not be taken for one the filter leaves out.
    pub fn all_values(&self, row: &RowImage<'_>) -> std::result::Result<Vec<Value>, Reject> {
        let mut out = Vec::with_capacity(self.columns.len());
        for (i, col) in self.columns.iter().enumerate() {
            let Some(bv) = row.as_ref(i) else {
                return Err(self.image_reject(row, &col.name, missing_column()));
            };
            match col.value(bv.clone().into_owned(), self.charsets[i].as_deref()) {
                Ok(v) => out.push(v),
                // A column the copy does not read and the filter does not name cannot
                // change the filter's answer.
                Err(_) if self.field_of[i].is_none() && !self.filter_names(&col.name) => {
                    out.push(Value::NULL)
                }
                Err(reason) => {
                    let reason =
                        format!("the table's `where` cannot be checked on this row: {reason}");
                    return Err(self.image_reject(row, &col.name, reason));
                }
            }
        }
        Ok(out)
    }

    /// Whether the `where` may name column `name`.
    fn filter_names(&self, name: &str) -> bool {
        self.filter
            .as_deref()
            .is_some_and(|f| names_column(f, name))
    }

    /// A reject for a row image as a whole, its key read from the image.
    fn image_reject(&self, row: &RowImage<'_>, column: &str, reason: String) -> Reject {
        let mut values = vec![Value::NULL; self.converters.len()];
        for &j in &self.read_key {
            let Some(i) = self.field_of.iter().position(|f| *f == Some(j)) else {
                continue;
            };
            if let Some(bv) = row.as_ref(i) {
                if let Ok(v) =
                    self.columns[i].value(bv.clone().into_owned(), self.charsets[i].as_deref())
                {
                    values[j] = v;
                }
            }
        }
        self.reject(&values, column, "", reason)
    }

    /// The statements that evaluate the table's `where` over row images on the source,
    /// without reading the table: a session-local copy of its shape under its own name
    /// (so the filter's own references resolve to it), emptied and filled with the images
    /// (each numbered), then filtered. See `stream.rs::filter_passing`.
    pub fn filter_sql(&self, database: &str) -> FilterSql {
        use crate::chunking::mysql_read::quote_my;
        let table = format!("{}.{}", quote_my(database), quote_my(&self.source));
        // The image number's column: a name no column of the table has (names compare
        // without case in MySQL).
        let taken = |n: &str| self.columns.iter().any(|c| c.name.eq_ignore_ascii_case(n));
        let mut number = "__howdah_n".to_string();
        while taken(&number) {
            number.push('_');
        }
        let number = quote_my(&number);
        // Every column by name: `t.*` leaves out INVISIBLE columns, which the binary log
        // carries.
        let columns: Vec<String> = self.columns.iter().map(|c| quote_my(&c.name)).collect();
        FilterSql {
            create: format!(
                "CREATE TEMPORARY TABLE IF NOT EXISTS {table} \
                 SELECT 0 AS {number}, {} FROM {table} AS t LIMIT 0",
                columns
                    .iter()
                    .map(|c| format!("t.{c}"))
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
            empty: format!("DELETE FROM {table}"),
            insert: format!(
                "INSERT IGNORE INTO {table} ({number}, {}) VALUES ",
                columns.join(", ")
            ),
            row: format!("({})", vec!["?"; self.columns.len() + 1].join(", ")),
            select: format!(
                "SELECT {number} FROM {table} WHERE ({})",
                self.filter.as_deref().unwrap_or("TRUE")
            ),
            width: self.columns.len() + 1,
        }
    }

    fn reject(&self, values: &[Value], column: &str, value: &str, reason: String) -> Reject {
        let key = if self.read_key.is_empty() {
            "a row of a table without a key".to_string()
        } else {
            self.read_key
                .iter()
                .map(|&k| {
                    format!(
                        "{}={}",
                        self.converters[k].1,
                        values.get(k).map(display).unwrap_or_default()
                    )
                })
                .collect::<Vec<_>>()
                .join(", ")
        };
        Reject {
            key,
            column: column.to_string(),
            value: value.to_string(),
            reason,
        }
    }
}

/// Whether SQL text `filter` holds `name` as a word (without case, as MySQL compares column
/// names): conservative, a string literal or a qualified `t.name` holding the name counts
/// too. (`mapping::rename::mentions` answers a narrower question, for PostgreSQL text: it
/// skips qualified names and does not know MySQL's backquotes.)
fn names_column(filter: &str, name: &str) -> bool {
    let filter = filter.to_lowercase();
    let name = name.to_lowercase();
    let word = |c: Option<char>| c.is_some_and(|c| c.is_alphanumeric() || c == '_' || c == '$');
    !name.is_empty()
        && filter.match_indices(&name).any(|(at, _)| {
            !word(filter[..at].chars().next_back())
                && !word(filter[at + name.len()..].chars().next())
        })
}

fn missing_column() -> String {
    "the binary log row does not carry every column (the source needs binlog_row_image = FULL)"
        .into()
}

/// The followed tables: every table of the prepared `catalog` with a MySQL read plan
/// (`plans`, by table number), matched with the server's catalog `schema`.
pub fn followed(
    schema: &MySchema,
    catalog: &Catalog,
    plans: &[Option<&MyTablePlan>],
    maps: &[Option<crate::mapping::TableMapping>],
    policies: &Policies,
) -> Result<Vec<BinlogTable>> {
    let mut out = Vec::new();
    for (i, t) in catalog.tables.iter().enumerate() {
        let Some(Some(plan)) = plans.get(i) else {
            continue;
        };
        let my = schema
            .tables
            .iter()
            .find(|m| m.name == plan.source)
            .ok_or_else(|| {
                Error::Follow(format!(
                    "followed table {} is gone from the source",
                    plan.source
                ))
            })?;
        let map = maps.get(i).and_then(Option::as_ref);
        out.push(BinlogTable::new(my, plan, t, map, policies)?);
    }
    Ok(out)
}

/// Source tables among `tables` without a key the follow can find rows by.
pub fn keyless(tables: &[BinlogTable]) -> Vec<String> {
    tables
        .iter()
        .filter(|t| t.target.key.is_empty())
        .map(|t| t.source.clone())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::names_column;

    #[test]
    fn a_filter_names_a_column_as_a_word() {
        assert!(names_column("note <> 'hide'", "note"));
        assert!(names_column("`Label` = 'x' AND qty > 1", "label"));
        assert!(!names_column("notes <> 'hide'", "note"));
        assert!(!names_column("qty > 1", "label"));
        assert!(names_column("t.label IS NULL", "label"));
    }
}
