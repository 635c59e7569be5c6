//! The transform stage between readers and writers: per-row column rules of a mapped table.
//!
//! A table without a mapping needs no transform: its tuples pass from reader to writer as wire
//! bytes. A mapped table's [`TableTransform`] runs on a thread of its own between two bounded
//! channels (see [`crate::pipeline::flow`]); each output column's rule is resolved once per
//! table, then applied to every row. A value that fails its cast rejects the row (or becomes
//! NULL or the default, as configured); the row's reject travels with the batch.

pub mod cast;

use crate::batch::Batch;
use crate::error::Result;

use bytes::Bytes;

use crate::reject::{shorten, Reject};
use cast::Cast;

/// What to do with a value that fails its cast.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OnError {
    /// Keep the row out of the target and record it in the rejects (the default).
    #[default]
    Reject,
    /// Load NULL instead (a NOT NULL column rejects the row).
    Null,
    /// Load the column's `default` (NULL when it has none).
    Default,
}

/// How one target column is made from one source column read as text.
#[derive(Debug, Clone)]
pub struct ValueRule {
    /// Position of the source field in the incoming tuple.
    pub input: usize,
    /// Target column name, for rejects.
    pub column: String,
    /// The cast to the target type.
    pub cast: Cast,
    /// The same cast from text, for values that come out of the value map (written in the
    /// job file as the target's text, whatever the source type).
    pub map_cast: Cast,
    /// Remove NUL bytes (which PostgreSQL text cannot hold).
    pub strip_nul: bool,
    /// Remove leading and trailing whitespace.
    pub trim: bool,
    /// Load an empty string (after trimming) as NULL.
    pub empty_as_null: bool,
    /// Source text to target text (`None`: NULL), applied after trimming.
    pub map: std::collections::HashMap<String, Option<String>>,
    /// The encoded field loaded for NULLs, and on failed casts with [`OnError::Default`].
    pub default: Option<Vec<u8>>,
    /// What a failed cast does.
    pub on_error: OnError,
    /// The target column is NOT NULL: a NULL that no default replaces rejects the row.
    pub not_null: bool,
    /// The source field is a binary `timestamp` read in this zone (no text round trip): the
    /// cast of a naive timestamp to `timestamptz`.
    pub naive_in_zone: Option<jiff::tz::TimeZone>,
}

/// One column of the target tuple.
#[derive(Debug, Clone)]
pub enum OutColumn {
    /// The incoming field at this position, bytes untouched.
    Pass(usize),
    /// A source value through a [`ValueRule`].
    Value(ValueRule),
    /// The same encoded field on every row (an added column, a per-run constant).
    Const(Vec<u8>),
    /// The incoming field's bytes, or this encoded default when it is NULL.
    NullDefault {
        /// Position of the source field.
        input: usize,
        /// The default, encoded.
        field: Vec<u8>,
    },
}

/// Rewrites the tuples of one table from the shape read to the shape of its target table.
#[derive(Debug, Clone)]
pub struct TableTransform {
    /// Fields per incoming tuple.
    pub inputs: usize,
    /// Target columns, in order.
    pub columns: Vec<OutColumn>,
    /// Incoming positions, names and types (`format_type`) of the key columns, to name a
    /// rejected row and to carry the batch's resume offset.
    pub key: Vec<(usize, String, String)>,
}

/// One step of rebuilding a tuple: a run of passthrough fields `[from, to)`, or a column.
enum Step<'a> {
    Span(usize, usize),
    Col(&'a OutColumn),
}

/// Rows and rejects of one transformed batch.
#[derive(Debug, Clone, Copy, Default)]
pub struct TransformStats {
    /// Tuples that came in.
    pub rows_in: u64,
    /// Rows this stage rejected.
    pub rejected: u64,
}

/// One encoded COPY field (length, then bytes; length -1: NULL) as the field's bytes.
fn encoded(f: &[u8]) -> Option<Bytes> {
    let len = i32::from_be_bytes(f.get(..4)?.try_into().ok()?);
    (len >= 0).then(|| Bytes::copy_from_slice(&f[4..]))
}

/// Why a row was rejected: the column, the value and the reason.
struct RowReject {
    column: String,
    value: String,
    reason: String,
}

impl ValueRule {
    /// Appends the target field for `input` (the source field as text), or says why the row
    /// cannot be loaded.
    fn put(&self, out: &mut Vec<u8>, input: Option<&[u8]>) -> std::result::Result<(), RowReject> {
        let reject = |value: &str, reason: String| RowReject {
            column: self.column.clone(),
            value: shorten(value),
            reason,
        };
        if let Some(zone) = &self.naive_in_zone {
            let Some(b) = input else {
                return self.put_null(out).map_err(|why| reject("NULL", why));
            };
            let local = <[u8; 8]>::try_from(b)
                .map(i64::from_be_bytes)
                .map_err(|_| reject(&format!("{b:02x?}"), "not a binary timestamp".into()))?;
            return match cast::naive_in_zone(local, zone) {
                Some(us) => {
                    crate::pgcopy::values::put_timestamp_micros(out, us);
                    Ok(())
                }
                None => {
                    let why =
                        "timestamp out of the range howdah reads in a time zone (years 1-9999)";
                    match self.on_error {
                        OnError::Null if !self.not_null => {
                            crate::pgcopy::values::put_null(out);
                            Ok(())
                        }
                        OnError::Default if self.default.is_some() => {
                            self.put_null(out).map_err(|w| reject("?", w))
                        }
                        _ => Err(reject(
                            &format!("{local} microseconds after 2000-01-01"),
                            why.into(),
                        )),
                    }
                }
            };
        }
        let text = match input {
            None => None,
            Some(b) => Some(std::str::from_utf8(b).map_err(|e| {
                reject(
                    &String::from_utf8_lossy(b),
                    format!("not UTF-8 text (byte {})", e.valid_up_to()),
                )
            })?),
        };
        let stripped;
        let mut text = match text {
            Some(t) if self.strip_nul && t.contains('\0') => {
                stripped = t.replace('\0', "");
                Some(stripped.as_str())
            }
            other => other,
        };
        if self.trim {
            text = text.map(str::trim);
        }
        if self.empty_as_null && text == Some("") {
            text = None;
        }
        let mut cast = &self.cast;
        if let Some(t) = text {
            if let Some(to) = self.map.get(t) {
                text = to.as_deref();
                cast = &self.map_cast;
            }
        }
        let Some(t) = text else {
            return self.put_null(out).map_err(|why| reject("NULL", why));
        };
        let start = out.len();
        match cast.put(out, t) {
            Ok(()) => Ok(()),
            Err(why) => {
                out.truncate(start);
                match self.on_error {
                    OnError::Reject => Err(reject(t, why)),
                    OnError::Null => match self.not_null {
                        true => Err(reject(
                            t,
                            format!("{why} (on_error = \"null\" but the column is NOT NULL)"),
                        )),
                        false => {
                            crate::pgcopy::values::put_null(out);
                            Ok(())
                        }
                    },
                    OnError::Default => self
                        .put_null(out)
                        .map_err(|_| reject(t, format!("{why} (and the column has no default)"))),
                }
            }
        }
    }

    /// The column's default, or NULL where the column allows it.
    fn put_null(&self, out: &mut Vec<u8>) -> std::result::Result<(), String> {
        match &self.default {
            Some(field) => out.extend_from_slice(field),
            None if self.not_null => return Err("NULL in a NOT NULL column".into()),
            None => crate::pgcopy::values::put_null(out),
        }
        Ok(())
    }
}

/// The field boundaries of the tuple at the start of `data`: `(start, len)` of each field
/// (len -1 for NULL) pushed into `fields`; returns the tuple's length.
pub fn split_tuple(data: &[u8], fields: &mut Vec<(usize, i32)>) -> Option<usize> {
    fields.clear();
    let count = i16::from_be_bytes([*data.first()?, *data.get(1)?]);
    let mut pos = 2usize;
    for _ in 0..count.max(0) {
        let l = data.get(pos..pos + 4)?;
        let len = i32::from_be_bytes([l[0], l[1], l[2], l[3]]);
        pos += 4;
        fields.push((pos, len));
        if len > 0 {
            pos += len as usize;
        }
    }
    (pos <= data.len()).then_some(pos)
}

/// A key value as text for a reject record (`id=42`).
pub fn key_text(value: Option<&[u8]>, type_sql: &str) -> String {
    let Some(b) = value else { return "NULL".into() };
    match (type_sql, b.len()) {
        ("smallint", 2) => i16::from_be_bytes([b[0], b[1]]).to_string(),
        ("integer", 4) => i32::from_be_bytes([b[0], b[1], b[2], b[3]]).to_string(),
        ("bigint", 8) => {
            let mut a = [0u8; 8];
            a.copy_from_slice(b);
            i64::from_be_bytes(a).to_string()
        }
        ("uuid", 16) => {
            let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
            format!(
                "{}-{}-{}-{}-{}",
                &h[..8],
                &h[8..12],
                &h[12..16],
                &h[16..20],
                &h[20..]
            )
        }
        _ => match std::str::from_utf8(b) {
            Ok(s) => shorten(s),
            Err(_) => format!(
                "\\x{}",
                b.iter().map(|x| format!("{x:02x}")).collect::<String>()
            ),
        },
    }
}

impl TableTransform {
    /// Makes the target fields of one incoming tuple (a field per target column, in PostgreSQL's
    /// binary format), as [`TableTransform::apply`] makes them for a batch; `only` limits the
    /// work to the columns it marks (the others come back NULL). Used for changed rows, which
    /// arrive one at a time. A row that cannot be loaded comes back as its reject.
    pub fn row(
        &self,
        tuple: &[u8],
        only: Option<&[bool]>,
    ) -> std::result::Result<Vec<Option<Bytes>>, Reject> {
        let mut fields: Vec<(usize, i32)> = Vec::with_capacity(self.inputs);
        if split_tuple(tuple, &mut fields).is_none() {
            return Err(Reject {
                key: "?".into(),
                column: String::new(),
                value: String::new(),
                reason: "a changed row's tuple is cut short".into(),
            });
        }
        let field = |i: usize| -> Option<&[u8]> {
            let (start, l) = *fields.get(i)?;
            (l >= 0).then(|| &tuple[start..start + l as usize])
        };
        let mut out = Vec::with_capacity(self.columns.len());
        let mut buf = Vec::new();
        for (n, col) in self.columns.iter().enumerate() {
            if only.is_some_and(|o| !o.get(n).copied().unwrap_or(false)) {
                out.push(None);
                continue;
            }
            buf.clear();
            match col {
                OutColumn::Pass(i) => out.push(field(*i).map(Bytes::copy_from_slice)),
                OutColumn::Const(f) => out.push(encoded(f)),
                OutColumn::NullDefault { input, field: f } => match field(*input) {
                    Some(v) => out.push(Some(Bytes::copy_from_slice(v))),
                    None => out.push(encoded(f)),
                },
                OutColumn::Value(rule) => match rule.put(&mut buf, field(rule.input)) {
                    Ok(()) => out.push(encoded(&buf)),
                    Err(r) => {
                        let key = if self.key.is_empty() {
                            "a changed row".to_string()
                        } else {
                            self.key
                                .iter()
                                .map(|(i, name, ty)| format!("{name}={}", key_text(field(*i), ty)))
                                .collect::<Vec<_>>()
                                .join(", ")
                        };
                        return Err(Reject {
                            key,
                            column: r.column,
                            value: r.value,
                            reason: r.reason,
                        });
                    }
                },
            }
        }
        Ok(out)
    }

    /// Rewrites a batch; rows that cannot be loaded move to the batch's rejects.
    pub fn apply(&self, batch: Batch) -> Result<(Batch, TransformStats)> {
        let data = &batch.data[..];
        let mut out = Vec::with_capacity(data.len() + data.len() / 4);
        let mut rejects = batch.rejects;
        let mut stats = TransformStats::default();
        let mut fields: Vec<(usize, i32)> = Vec::with_capacity(self.inputs);
        let mut pos = 0usize;
        let mut rows = 0u64;
        let mut last_start = 0usize;
        let mut last_in: Option<(usize, usize)> = None;
        let count = (self.columns.len() as i16).to_be_bytes();
        // Runs of consecutive passthrough fields are copied with one memcpy per row.
        let mut steps: Vec<Step<'_>> = Vec::with_capacity(self.columns.len());
        for col in &self.columns {
            match (col, steps.last_mut()) {
                (OutColumn::Pass(i), Some(Step::Span(_, end))) if *end == *i => *end += 1,
                (OutColumn::Pass(i), _) => steps.push(Step::Span(*i, *i + 1)),
                (other, _) => steps.push(Step::Col(other)),
            }
        }
        while pos < data.len() {
            let len = split_tuple(&data[pos..], &mut fields).ok_or_else(|| {
                crate::error::Error::Internal("a tuple of a batch is cut short".into())
            })?;
            let tuple = &data[pos..pos + len];
            last_in = Some((pos, len));
            pos += len;
            stats.rows_in += 1;
            let field = |i: usize| -> Option<&[u8]> {
                let (start, l) = *fields.get(i)?;
                (l >= 0).then(|| &tuple[start..start + l as usize])
            };
            let start = out.len();
            out.extend_from_slice(&count);
            let mut failed = None;
            for step in &steps {
                let col = match step {
                    Step::Span(a, b) => {
                        match (fields.get(*a), fields.get(*b - 1)) {
                            (Some(&(first, _)), Some(&(last, l))) => {
                                let end = last + l.max(0) as usize;
                                out.extend_from_slice(&tuple[first - 4..end]);
                            }
                            _ => {
                                for _ in *a..*b {
                                    crate::pgcopy::values::put_null(&mut out);
                                }
                            }
                        }
                        continue;
                    }
                    Step::Col(col) => col,
                };
                match col {
                    OutColumn::Pass(i) => match fields.get(*i) {
                        Some(&(s, l)) => {
                            out.extend_from_slice(&l.to_be_bytes());
                            if l > 0 {
                                out.extend_from_slice(&tuple[s..s + l as usize]);
                            }
                        }
                        None => crate::pgcopy::values::put_null(&mut out),
                    },
                    OutColumn::Const(f) => out.extend_from_slice(f),
                    OutColumn::NullDefault { input, field } => match fields.get(*input) {
                        Some(&(s, l)) if l >= 0 => {
                            out.extend_from_slice(&l.to_be_bytes());
                            out.extend_from_slice(&tuple[s..s + l as usize]);
                        }
                        _ => out.extend_from_slice(field),
                    },
                    OutColumn::Value(rule) => {
                        if let Err(r) = rule.put(&mut out, field(rule.input)) {
                            failed = Some(r);
                            break;
                        }
                    }
                }
            }
            match failed {
                None => {
                    last_start = start;
                    rows += 1;
                }
                Some(r) => {
                    out.truncate(start);
                    stats.rejected += 1;
                    let key = if self.key.is_empty() {
                        format!("row {} of its batch", stats.rows_in)
                    } else {
                        self.key
                            .iter()
                            .map(|(i, name, ty)| format!("{name}={}", key_text(field(*i), ty)))
                            .collect::<Vec<_>>()
                            .join(", ")
                    };
                    rejects.push(Reject {
                        key,
                        column: r.column,
                        value: r.value,
                        reason: r.reason,
                    });
                }
            }
        }
        // The resume offset is the key of the last row read, kept or not.
        let last_raw_key = match (last_in, self.key.is_empty(), &batch.last_key) {
            (Some((at, len)), false, None) => {
                let tuple = &data[at..at + len];
                split_tuple(tuple, &mut fields);
                Some(
                    self.key
                        .iter()
                        .map(|(i, _, _)| {
                            fields.get(*i).and_then(|&(s, l)| {
                                (l >= 0).then(|| batch.data.slice(at + s..at + s + l as usize))
                            })
                        })
                        .collect(),
                )
            }
            _ => None,
        };
        Ok((
            Batch {
                data: Bytes::from(out),
                rows,
                last_tuple_start: last_start,
                rejects,
                last_key: batch.last_key,
                last_raw_key,
            },
            stats,
        ))
    }
}
