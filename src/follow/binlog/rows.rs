//! The row images of a binary log rows event, decoded with the table map read once per event.
//!
//! Why not `mysql_common`'s `BinlogRow`: for every row it builds a column description per
//! column (schema, table and name copied, a name formatted, the table map's optional metadata
//! parsed again) and an owned copy of every value. `perf record` of the MySQL follower put
//! half of its CPU there (BENCHMARKS.md, "MySQL follow"). Here the column types, metadata and
//! signedness are read once per event, and each value is decoded by `mysql_common`'s own value
//! decoder (`BinlogValue`, JSONB included) borrowing the event's bytes, except DECIMAL, whose
//! text `decimal.rs` writes without `mysql_common`'s intermediate `Decimal`; only the vector
//! of a row's values and the bytes of its strings are allocated.
//!
//! Invariants: the layout is the one `mysql_common::binlog::row` reads (MySQL's
//! `log_event.cc`): per row, the before image (delete, update), then the after image (insert,
//! update); an image is a null bitmap over the columns present in the event's column bitmap,
//! then the values of the present, non-null columns in column order. A row image has a slot
//! per table column, `None` where the image lacks the column (`BinlogRow` leaves such columns
//! out, so its indexes shift; the follower requires full images, where the two agree). A NULL
//! is `Some(Value::NULL)` and a numeric column is unsigned when the table map's optional
//! metadata says so, as in `BinlogRow`. Partial JSON images (MySQL 8's
//! `PARTIAL_UPDATE_ROWS_EVENT`) never reach this: the follower refuses them first.

use std::io;

use mysql_async::binlog::events::{OptionalMetaExtractor, RowsEventData, TableMapEvent};
use mysql_async::binlog::value::BinlogValue;
use mysql_async::consts::ColumnType;
use mysql_async::Value;
use mysql_common::io::ParseBuf;

use crate::follow::binlog::decimal;

/// One row image: a value per table column (`None`: not in the image).
#[derive(Debug, Clone)]
pub struct RowImage<'a> {
    values: Vec<Option<BinlogValue<'a>>>,
}

impl<'a> RowImage<'a> {
    /// Columns of the table (present in the image or not).
    pub fn width(&self) -> usize {
        self.values.len()
    }

    /// The value of column `i`, if the image has it.
    pub fn as_ref(&self, i: usize) -> Option<&BinlogValue<'a>> {
        self.values.get(i).and_then(|v| v.as_ref())
    }

    /// Whether `self` and `other` hold the same value, not NULL, in every column `columns`
    /// marks (a key that an update kept, read from the binary log itself).
    pub fn same_in(&self, other: &RowImage<'_>, columns: &[bool]) -> bool {
        columns
            .iter()
            .enumerate()
            .filter(|(_, c)| **c)
            .all(|(i, _)| match (self.as_ref(i), other.as_ref(i)) {
                (Some(BinlogValue::Value(Value::NULL)), _) => false,
                (Some(a), Some(b)) => a == b,
                _ => false,
            })
    }

    /// Takes the value of column `i`, if the image has it.
    pub fn take(&mut self, i: usize) -> Option<BinlogValue<'a>> {
        self.values.get_mut(i).and_then(|v| v.take())
    }
}

/// The before and after images of one row change.
pub type RowChange<'a> = (Option<RowImage<'a>>, Option<RowImage<'a>>);

/// What the table map says of a column, for decoding its values.
struct Shape<'a> {
    ty: ColumnType,
    meta: &'a [u8],
    unsigned: bool,
}

/// Decodes every row of `rows` (a rows event of the table `tme` maps). `old_columns`: the
/// columns of the before images to decode (`None`: all); the others are skipped where their
/// length is known without decoding them ([`skip`]) and left `None`, as if the image lacked
/// them. Only the key of an old row is needed to change or delete it, and decoding the
/// rest of an update's old image was a third of the follower's decoding.
pub fn decode<'a>(
    rows: &'a RowsEventData<'a>,
    tme: &'a TableMapEvent<'a>,
    old_columns: Option<&[bool]>,
) -> io::Result<Vec<RowChange<'a>>> {
    let n = rows.num_columns() as usize;
    let shapes = shapes(tme, n)?;
    let before: Option<Vec<bool>> = rows
        .columns_before_image()
        .map(|c| (0..n).map(|i| c.get(i).is_some_and(|b| *b)).collect());
    let after: Option<Vec<bool>> = rows
        .columns_after_image()
        .map(|c| (0..n).map(|i| c.get(i).is_some_and(|b| *b)).collect());
    let mut buf = ParseBuf(rows.rows_data());
    let mut out = Vec::new();
    while !buf.is_empty() {
        let old = match &before {
            Some(cols) => Some(image(&mut buf, &shapes, cols, old_columns)?),
            None => None,
        };
        let new = match &after {
            Some(cols) => Some(image(&mut buf, &shapes, cols, None)?),
            None => None,
        };
        if old.is_none() && new.is_none() {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "a rows event without a column bitmap",
            ));
        }
        out.push((old, new));
    }
    Ok(out)
}

/// Each column's type, metadata and signedness, from the table map.
fn shapes<'a>(tme: &'a TableMapEvent<'a>, n: usize) -> io::Result<Vec<Shape<'a>>> {
    let meta = OptionalMetaExtractor::new(tme.iter_optional_meta())?;
    let mut signedness = meta.iter_signedness();
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let ty = match tme.get_column_type(i) {
            Ok(Some(ty)) => ty,
            Ok(None) => {
                return Err(io::Error::new(io::ErrorKind::InvalidData, "No column type"));
            }
            Err(e) => return Err(io::Error::new(io::ErrorKind::InvalidData, e)),
        };
        // The signedness list has an entry per numeric column only.
        let unsigned = ty
            .is_numeric_type()
            .then(|| signedness.next())
            .flatten()
            .unwrap_or_default();
        out.push(Shape {
            ty,
            meta: tme.get_column_metadata(i).unwrap_or(&[]),
            unsigned,
        });
    }
    Ok(out)
}

/// One image: the null bitmap over the present columns, then their non-null values; of
/// the columns `wanted` leaves out (`None`: none), those [`skip`] can pass are `None`.
fn image<'a>(
    buf: &mut ParseBuf<'a>,
    shapes: &[Shape<'a>],
    present: &[bool],
    wanted: Option<&[bool]>,
) -> io::Result<RowImage<'a>> {
    let count = present.iter().filter(|p| **p).count();
    let nulls: &'a [u8] = buf.parse(count.div_ceil(8))?;
    let mut values = Vec::with_capacity(shapes.len());
    let mut at = 0;
    for (i, (shape, &here)) in shapes.iter().zip(present).enumerate() {
        if !here {
            values.push(None);
            continue;
        }
        let null = nulls[at / 8] & (1 << (at % 8)) != 0;
        at += 1;
        let unwanted = wanted.is_some_and(|w| !w.get(i).copied().unwrap_or(true));
        if unwanted && (null || skip(buf, shape)?) {
            values.push(None);
            continue;
        }
        values.push(Some(if null {
            BinlogValue::Value(Value::NULL)
        } else if shape.ty == ColumnType::MYSQL_TYPE_NEWDECIMAL {
            decimal_value(buf, shape.meta)?
        } else {
            buf.parse::<BinlogValue<'a>>((shape.ty, shape.meta, shape.unsigned, false))?
        }));
    }
    Ok(RowImage { values })
}

/// A DECIMAL value: its text, as `mysql_common`'s decoder gives it (`decimal.rs`).
fn decimal_value<'a>(buf: &mut ParseBuf<'a>, meta: &[u8]) -> io::Result<BinlogValue<'a>> {
    let &[precision, scale, ..] = meta else {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "a DECIMAL column without its precision and scale in the table map",
        ));
    };
    let (precision, scale) = (usize::from(precision), usize::from(scale));
    let bin = buf
        .checked_eat(decimal::bin_size(precision, scale))
        .ok_or_else(|| io::Error::new(io::ErrorKind::UnexpectedEof, "a DECIMAL value cut short"))?;
    // Sign, point and the digits.
    let mut text = Vec::with_capacity(precision + 3);
    decimal::write_text(bin, precision, scale, &mut text)?;
    Ok(BinlogValue::Value(Value::Bytes(text)))
}

/// Passes over one non-null value of `shape` without decoding it, when its length is known
/// from the table map and its own length prefix; `false` (nothing read) for a type it does
/// not know, which is then decoded. The lengths are the ones `mysql_common`'s value decoder
/// reads (`binlog/value.rs`), type by type: a wrong one would shift every value after it, so
/// a test compares the after images of every awkward type decoded with and without skipping
/// the old ones (`binlog_row_images_decode_as_mysql_common_decodes_them`).
fn skip(buf: &mut ParseBuf<'_>, shape: &Shape<'_>) -> io::Result<bool> {
    use ColumnType::*;
    let meta = |i: usize| usize::from(shape.meta.get(i).copied().unwrap_or(0));
    // Bytes of the fraction of TIME2, DATETIME2 and TIMESTAMP2 by their precision.
    let fraction = |dec: usize| match dec {
        1 | 2 => 1,
        3 | 4 => 2,
        5 | 6 => 3,
        _ => 0,
    };
    let len = match shape.ty {
        MYSQL_TYPE_TINY | MYSQL_TYPE_YEAR => 1,
        MYSQL_TYPE_SHORT => 2,
        MYSQL_TYPE_INT24 | MYSQL_TYPE_NEWDATE | MYSQL_TYPE_TIME => 3,
        MYSQL_TYPE_LONG | MYSQL_TYPE_FLOAT | MYSQL_TYPE_TIMESTAMP => 4,
        MYSQL_TYPE_LONGLONG | MYSQL_TYPE_DOUBLE | MYSQL_TYPE_DATETIME => 8,
        MYSQL_TYPE_TIMESTAMP2 => 4 + fraction(meta(0)),
        MYSQL_TYPE_DATETIME2 => 5 + fraction(meta(0)),
        MYSQL_TYPE_TIME2 => match meta(0) {
            5 | 6 => 6,
            dec => 3 + fraction(dec),
        },
        MYSQL_TYPE_NEWDECIMAL => decimal::bin_size(meta(0), meta(1)),
        MYSQL_TYPE_BIT => (meta(1) * 8 + meta(0)).div_ceil(8),
        MYSQL_TYPE_ENUM | MYSQL_TYPE_SET => meta(1),
        MYSQL_TYPE_VARCHAR | MYSQL_TYPE_VAR_STRING => {
            let prefix = if meta(0) | (meta(1) << 8) < 256 { 1 } else { 2 };
            prefix + prefixed(buf, prefix)?
        }
        MYSQL_TYPE_BLOB
        | MYSQL_TYPE_TINY_BLOB
        | MYSQL_TYPE_MEDIUM_BLOB
        | MYSQL_TYPE_LONG_BLOB
        | MYSQL_TYPE_GEOMETRY => match meta(0) {
            prefix @ 1..=4 => prefix + prefixed(buf, prefix)?,
            _ => return Ok(false),
        },
        MYSQL_TYPE_JSON => 4 + prefixed(buf, 4)?,
        MYSQL_TYPE_STRING => {
            let (byte0, byte1) = (meta(0), meta(1));
            let max = if byte0 == 0 {
                byte1 << 8
            } else if byte0 & 0x30 != 0x30 {
                byte1 | (((byte0 & 0x30) ^ 0x30) << 4)
            } else {
                byte1
            };
            let prefix = if max < 256 { 1 } else { 2 };
            prefix + prefixed(buf, prefix)?
        }
        _ => return Ok(false),
    };
    buf.checked_eat(len).ok_or_else(|| {
        io::Error::new(io::ErrorKind::UnexpectedEof, "a binary log value cut short")
    })?;
    Ok(true)
}

/// The little-endian length of `prefix` bytes at the start of `buf` (not consumed).
fn prefixed(buf: &ParseBuf<'_>, prefix: usize) -> io::Result<usize> {
    let bytes = buf.0.get(..prefix).ok_or_else(|| {
        io::Error::new(io::ErrorKind::UnexpectedEof, "a binary log value cut short")
    })?;
    Ok(bytes
        .iter()
        .rev()
        .fold(0usize, |n, &b| (n << 8) | usize::from(b)))
}
