//! Binary log values into the values the bulk reader gets from the binary protocol, so the
//! same converter ([`crate::source::mysql_convert::Converter`]) takes both and a row arrives
//! identical whether it was copied or streamed.
//!
//! What differs in the binary log, and is undone here: strings are raw bytes in the column's
//! own charset (the bulk session receives utf8mb4: latin1 is decoded as MySQL means it,
//! cp1252); ENUM values are 1-based label numbers and SET values bitmasks; unsigned integers
//! arrive signed unless the server logs column metadata; TIMESTAMP is seconds since the epoch
//! (the bulk session reads it in UTC; 0 is the zero date); YEAR is text (0 is year 0000);
//! MySQL's JSON is binary JSONB (rendered as JSON text). A value that cannot be taken is an
//! error whose text becomes the row's reject reason.

use mysql_async::binlog::value::BinlogValue;
use mysql_async::Value;

use crate::catalog::mysql::MyColumn;

/// How one source column's binary log values are read.
#[derive(Debug, Clone)]
pub struct SourceColumn {
    /// Column name on the server.
    pub name: String,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    /// Text in a charset, decoded to UTF-8.
    Text(Charset),
    /// Bytes as they are (binary strings, BIT, spatial, DECIMAL text).
    Raw,
    /// A fixed-length `BINARY(n)`: the binary log drops its trailing 0x00 bytes, which the
    /// bulk reader receives.
    FixedBinary(usize),
    /// An unsigned integer of this many bits.
    Unsigned(u32),
    Enum(Vec<String>),
    Set(Vec<String>),
    Timestamp,
    Year,
    /// Anything the binary log sends as the binary protocol does.
    Plain,
}

#[derive(Debug, Clone, Copy, PartialEq)]
enum Charset {
    Utf8,
    Latin1,
    Other,
}

impl SourceColumn {
    /// The reading of a column of the server's catalog.
    pub fn new(c: &MyColumn) -> SourceColumn {
        let dt = c.data_type.as_str();
        let kind = match dt {
            "binary" => match c.width() {
                Some(n) => Kind::FixedBinary(n as usize),
                None => Kind::Raw,
            },
            "enum" => Kind::Enum(c.labels()),
            "set" => Kind::Set(c.labels()),
            "timestamp" => Kind::Timestamp,
            "year" => Kind::Year,
            "tinyint" | "smallint" | "mediumint" | "int" | "integer" | "bigint" if c.unsigned() => {
                Kind::Unsigned(match dt {
                    "tinyint" => 8,
                    "smallint" => 16,
                    "mediumint" => 24,
                    "bigint" => 64,
                    _ => 32,
                })
            }
            "char" | "varchar" | "tinytext" | "text" | "mediumtext" | "longtext" | "json" => {
                match c.charset.as_deref().map(str::to_ascii_lowercase).as_deref() {
                    None | Some("binary") => Kind::Raw,
                    Some("utf8mb4" | "utf8mb3" | "utf8" | "ascii") => Kind::Text(Charset::Utf8),
                    Some("latin1") => Kind::Text(Charset::Latin1),
                    Some(_) => Kind::Text(Charset::Other),
                }
            }
            _ => Kind::Plain,
        };
        SourceColumn {
            name: c.name.clone(),
            kind,
        }
    }

    /// The column's charset when the follow cannot decode it (a reject reason names it).
    fn charset_problem(&self, charset: Option<&str>) -> String {
        format!(
            "the follow decodes utf8mb4, utf8mb3, ascii, latin1 and binary strings; this column's \
             charset is {}",
            charset.unwrap_or("unknown")
        )
    }

    /// `value` as the bulk reader would have received it.
    pub fn value(
        &self,
        value: BinlogValue<'static>,
        charset: Option<&str>,
    ) -> Result<Value, String> {
        let v = match value {
            BinlogValue::Value(v) => v,
            BinlogValue::Jsonb(_) => {
                return Value::try_from(value).map_err(|e| format!("binary JSON: {e}"))
            }
            BinlogValue::JsonDiff(_) => {
                return Err(
                    "a partial JSON update (set binlog_row_value_options to '' on the source)"
                        .into(),
                )
            }
        };
        if matches!(v, Value::NULL) {
            return Ok(v);
        }
        match &self.kind {
            Kind::Plain | Kind::Raw => Ok(v),
            Kind::FixedBinary(n) => match v {
                Value::Bytes(mut b) => {
                    if b.len() < *n {
                        b.resize(*n, 0);
                    }
                    Ok(Value::Bytes(b))
                }
                other => Ok(other),
            },
            Kind::Text(cs) => match v {
                Value::Bytes(b) => match cs {
                    Charset::Utf8 => Ok(Value::Bytes(b)),
                    Charset::Latin1 => Ok(Value::Bytes(cp1252(&b).into_bytes())),
                    Charset::Other => Err(self.charset_problem(charset)),
                },
                other => Ok(other),
            },
            Kind::Unsigned(bits) => Ok(match v {
                Value::Int(n) => Value::UInt(if *bits == 64 {
                    n as u64
                } else {
                    (n as u64) & ((1u64 << bits) - 1)
                }),
                other => other,
            }),
            Kind::Enum(labels) => match v {
                Value::Int(0) => Ok(Value::Bytes(Vec::new())),
                Value::Int(n) => labels
                    .get((n - 1) as usize)
                    .map(|l| Value::Bytes(l.clone().into_bytes()))
                    .ok_or_else(|| format!("enum value number {n} has no label")),
                other => Ok(other),
            },
            Kind::Set(labels) => match v {
                Value::Bytes(mask) => {
                    let mut parts: Vec<&str> = Vec::new();
                    for (i, l) in labels.iter().enumerate() {
                        if mask.get(i / 8).is_some_and(|b| b & (1 << (i % 8)) != 0) {
                            parts.push(l);
                        }
                    }
                    Ok(Value::Bytes(parts.join(",").into_bytes()))
                }
                other => Ok(other),
            },
            Kind::Year => match v {
                Value::Bytes(b) => {
                    let n: i64 = std::str::from_utf8(&b)
                        .ok()
                        .and_then(|s| s.parse().ok())
                        .ok_or_else(|| "a YEAR value that is not a number".to_string())?;
                    Ok(Value::Int(if n == 1900 { 0 } else { n }))
                }
                other => Ok(other),
            },
            Kind::Timestamp => match v {
                Value::Bytes(b) => {
                    let s = std::str::from_utf8(&b).map_err(|_| "a bad TIMESTAMP".to_string())?;
                    let (secs, us) = match s.split_once('.') {
                        Some((a, f)) => (a, f.parse::<u32>().unwrap_or(0)),
                        None => (s, 0),
                    };
                    let secs: i64 = secs
                        .parse()
                        .map_err(|_| format!("TIMESTAMP {s} is not seconds"))?;
                    epoch_value(secs, us)
                }
                Value::Int(secs) => epoch_value(secs, 0),
                other => Ok(other),
            },
        }
    }
}

/// Seconds since the epoch as the UTC date-time a `time_zone = '+00:00'` session reads; 0 is
/// the zero date.
fn epoch_value(secs: i64, us: u32) -> Result<Value, String> {
    if secs == 0 && us == 0 {
        return Ok(Value::Date(0, 0, 0, 0, 0, 0, 0));
    }
    let ts = jiff::Timestamp::from_second(secs).map_err(|e| e.to_string())?;
    let c = ts.to_zoned(jiff::tz::TimeZone::UTC).datetime();
    Ok(Value::Date(
        c.year() as u16,
        c.month() as u8,
        c.day() as u8,
        c.hour() as u8,
        c.minute() as u8,
        c.second() as u8,
        us,
    ))
}

/// MySQL's latin1 (which is Windows-1252, with its five undefined bytes kept as the C1
/// controls of the same number) as UTF-8.
pub fn cp1252(b: &[u8]) -> String {
    const HIGH: [char; 32] = [
        '\u{20AC}', '\u{81}', '\u{201A}', '\u{192}', '\u{201E}', '\u{2026}', '\u{2020}',
        '\u{2021}', '\u{2C6}', '\u{2030}', '\u{160}', '\u{2039}', '\u{152}', '\u{8D}', '\u{17D}',
        '\u{8F}', '\u{90}', '\u{2018}', '\u{2019}', '\u{201C}', '\u{201D}', '\u{2022}', '\u{2013}',
        '\u{2014}', '\u{2DC}', '\u{2122}', '\u{161}', '\u{203A}', '\u{153}', '\u{9D}', '\u{17E}',
        '\u{178}',
    ];
    b.iter()
        .map(|&c| match c {
            0x80..=0x9F => HIGH[(c - 0x80) as usize],
            c => char::from(c),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn col(data_type: &str, column_type: &str, charset: Option<&str>) -> SourceColumn {
        SourceColumn::new(&MyColumn {
            name: "c".into(),
            data_type: data_type.into(),
            column_type: column_type.into(),
            charset: charset.map(String::from),
            ..Default::default()
        })
    }

    fn v(c: &SourceColumn, x: Value) -> Result<Value, String> {
        c.value(BinlogValue::Value(x), None)
    }

    #[test]
    fn binlog_values_read_as_the_binary_protocol_sends_them() {
        let latin1 = col("varchar", "varchar(10)", Some("latin1"));
        assert_eq!(
            v(&latin1, Value::Bytes(vec![0x80, b'a', 0xe9])),
            Ok(Value::Bytes("€aé".as_bytes().to_vec()))
        );
        let e = col("enum", "enum('x','y')", None);
        assert_eq!(v(&e, Value::Int(2)), Ok(Value::Bytes(b"y".to_vec())));
        let s = col("set", "set('a','b','c')", None);
        assert_eq!(
            v(&s, Value::Bytes(vec![5])),
            Ok(Value::Bytes(b"a,c".to_vec()))
        );
        let u = col("tinyint", "tinyint(3) unsigned", None);
        assert_eq!(v(&u, Value::Int(-56)), Ok(Value::UInt(200)));
        let b = col("bigint", "bigint(20) unsigned", None);
        assert_eq!(v(&b, Value::Int(-1)), Ok(Value::UInt(u64::MAX)));
        let t = col("timestamp", "timestamp(3)", None);
        assert_eq!(
            v(&t, Value::Bytes(b"86400.500000".to_vec())),
            Ok(Value::Date(1970, 1, 2, 0, 0, 0, 500_000))
        );
        assert_eq!(
            v(&t, Value::Bytes(b"0".to_vec())),
            Ok(Value::Date(0, 0, 0, 0, 0, 0, 0))
        );
        let y = col("year", "year(4)", None);
        assert_eq!(v(&y, Value::Bytes(b"2024".to_vec())), Ok(Value::Int(2024)));
        assert_eq!(v(&y, Value::Bytes(b"1900".to_vec())), Ok(Value::Int(0)));
    }
}
