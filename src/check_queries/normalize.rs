//! Canonical text of values for comparing a MySQL/MariaDB source's answers with the
//! PostgreSQL target's, as the copy converts them (README: MySQL and MariaDB sources).
//!
//! The target's column types (from the prepared PostgreSQL text) decide the canonical form of
//! each result column, on both sides:
//! - `boolean`: `1`/`0`; a MySQL integer is `1` unless it is 0 (as the copy maps
//!   `tinyint(1)`: any other value is true), a `BIT(1)` by its bit;
//! - `real`, `double precision`: the shortest text that reads back as the same double;
//! - `date`, `time`, `timestamp`, `timestamptz`: trailing zeros of the fraction dropped, and
//!   a `+00` offset (sessions run in UTC); a MySQL zero date (`0000-00-00`, a month or day 00)
//!   is NULL, as the copy loads it under the default `zero_dates = "null"`;
//! - `json`, `jsonb`: the document re-serialised with its keys sorted and no spacing;
//! - `bytea`: `\x` and lower-case hex (PostgreSQL's `bytea_output = hex`);
//! - `bit`, `bit varying`: the bits as `0`/`1` text (`BIT(n)` is read as its n bits);
//! - integers and `numeric`: by value, trailing zeros of the fraction dropped (a query pair
//!   computes scales differently: MySQL's `IFNULL(price, 0)` keeps `0.00`, PostgreSQL's
//!   `COALESCE(price, 0)` gives `0`; `AVG` has 4 more digits in MySQL);
//! - anything else (text, enums): the text as each server prints it. What a query computes
//!   differently beyond that (`AVG`'s rounding, integer division, collation-dependent
//!   ordering) is the query pair's business, not a conversion.
//!
//! Invariant: the same value, as the copy would load it, gets the same canonical bytes on
//! both sides; a PostgreSQL-to-PostgreSQL check uses none of this (the texts are already
//! comparable).

use std::borrow::Cow;
use std::fmt::Write as _;

/// The canonical family of a result column, from the target's type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ColumnKind {
    /// `boolean`.
    Bool,
    /// `real`, `double precision`.
    Float,
    /// `date`, `time[tz]`, `timestamp[tz]`.
    Temporal,
    /// `json`, `jsonb`.
    Json,
    /// `bytea`.
    Bytes,
    /// `bit`, `bit varying`.
    Bits,
    /// Integers and `numeric`: compared by value.
    Number,
    /// Everything else: compared as printed.
    Text,
}

impl ColumnKind {
    /// The family of a PostgreSQL type, by its name in `pg_type`.
    pub fn of_pg_type(name: &str) -> ColumnKind {
        match name {
            "bool" => ColumnKind::Bool,
            "float4" | "float8" => ColumnKind::Float,
            "date" | "time" | "timetz" | "timestamp" | "timestamptz" => ColumnKind::Temporal,
            "json" | "jsonb" => ColumnKind::Json,
            "bytea" => ColumnKind::Bytes,
            "bit" | "varbit" => ColumnKind::Bits,
            "int2" | "int4" | "int8" | "numeric" => ColumnKind::Number,
            _ => ColumnKind::Text,
        }
    }
}

/// A target (PostgreSQL) value in canonical form.
pub fn pg_value(kind: ColumnKind, text: &str) -> Option<Cow<'_, [u8]>> {
    Some(match kind {
        ColumnKind::Bool => Cow::Borrowed(if text == "t" { b"1" } else { b"0" }),
        ColumnKind::Float => float(text),
        ColumnKind::Temporal => temporal(text),
        ColumnKind::Json => json(text),
        ColumnKind::Number => number(text),
        ColumnKind::Bytes | ColumnKind::Bits | ColumnKind::Text => Cow::Borrowed(text.as_bytes()),
    })
}

/// What the canonical form of a MySQL value needs to know about its column.
#[derive(Debug, Clone, Copy)]
pub struct MyColumn {
    /// A `BIT(n)` column: its value arrives as raw bytes.
    pub bit: bool,
    /// Its declared length (the n of `BIT(n)`).
    pub length: u32,
}

/// A source (MySQL, text protocol) value in canonical form; `None` is NULL.
pub fn my_value<'a>(kind: ColumnKind, col: MyColumn, raw: &'a [u8]) -> Option<Cow<'a, [u8]>> {
    if col.bit {
        return Some(Cow::Owned(match kind {
            ColumnKind::Bool => vec![if raw.iter().any(|b| *b != 0) {
                b'1'
            } else {
                b'0'
            }],
            _ => bits(raw, col.length).into_bytes(),
        }));
    }
    match kind {
        ColumnKind::Bool => {
            let text = String::from_utf8_lossy(raw);
            let zero = text.trim().parse::<f64>().is_ok_and(|v| v == 0.0);
            Some(Cow::Borrowed(if zero { b"0" } else { b"1" }))
        }
        ColumnKind::Float => match std::str::from_utf8(raw) {
            Ok(t) => Some(float(t)),
            Err(_) => Some(Cow::Borrowed(raw)),
        },
        ColumnKind::Temporal => match std::str::from_utf8(raw) {
            Ok(t) if zero_date(t) => None,
            Ok(t) => Some(temporal(t)),
            Err(_) => Some(Cow::Borrowed(raw)),
        },
        ColumnKind::Json => match std::str::from_utf8(raw) {
            Ok(t) => Some(json(t)),
            Err(_) => Some(Cow::Borrowed(raw)),
        },
        ColumnKind::Bytes => {
            let mut s = String::with_capacity(2 + raw.len() * 2);
            s.push_str("\\x");
            for b in raw {
                let _ = write!(s, "{b:02x}");
            }
            Some(Cow::Owned(s.into_bytes()))
        }
        ColumnKind::Number => match std::str::from_utf8(raw) {
            Ok(t) => Some(number(t)),
            Err(_) => Some(Cow::Borrowed(raw)),
        },
        ColumnKind::Bits | ColumnKind::Text => Some(Cow::Borrowed(raw)),
    }
}

/// `10.50` -> `10.5`, `0.00` -> `0`, `-0.0` -> `0`; anything but a plain decimal as it is.
fn number(text: &str) -> Cow<'_, [u8]> {
    let plain = text
        .bytes()
        .enumerate()
        .all(|(i, b)| b.is_ascii_digit() || b == b'.' || i == 0 && b == b'-');
    if !plain || !text.contains('.') {
        return Cow::Borrowed(text.as_bytes());
    }
    let t = text.trim_end_matches('0');
    let t = t.strip_suffix('.').unwrap_or(t);
    Cow::Borrowed(if t == "-0" { b"0" } else { t.as_bytes() })
}

fn float(text: &str) -> Cow<'_, [u8]> {
    match text.trim().parse::<f64>() {
        Ok(v) if v.is_finite() => Cow::Owned(format!("{v:?}").into_bytes()),
        _ => Cow::Borrowed(text.as_bytes()),
    }
}

/// `2024-01-02 03:04:05.250000+00` -> `2024-01-02 03:04:05.25`.
fn temporal(text: &str) -> Cow<'_, [u8]> {
    let mut t = text.strip_suffix("+00").unwrap_or(text);
    if let Some(dot) = t.rfind('.') {
        if t[dot + 1..].bytes().all(|b| b.is_ascii_digit()) {
            t = t.trim_end_matches('0');
            t = t.strip_suffix('.').unwrap_or(t);
        }
    }
    Cow::Borrowed(t.as_bytes())
}

/// MySQL's zero and partial dates: `0000-00-00`, `2020-05-00`, `2020-00-10`.
fn zero_date(t: &str) -> bool {
    let b = t.as_bytes();
    b.len() >= 10 && b[4] == b'-' && b[7] == b'-' && (&b[5..7] == b"00" || &b[8..10] == b"00")
}

fn json(text: &str) -> Cow<'_, [u8]> {
    match serde_json::from_str::<serde_json::Value>(text) {
        Ok(v) => Cow::Owned(v.to_string().into_bytes()),
        Err(_) => Cow::Borrowed(text.as_bytes()),
    }
}

/// The first `n` bits of big-endian bytes, right-aligned as MySQL stores `BIT(n)`.
fn bits(raw: &[u8], n: u32) -> String {
    let total = raw.len() * 8;
    let n = (n as usize).min(total);
    let mut s = String::with_capacity(n);
    for i in total - n..total {
        let byte = raw[i / 8];
        s.push(if byte & (0x80 >> (i % 8)) != 0 {
            '1'
        } else {
            '0'
        });
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    fn my(kind: ColumnKind, raw: &str) -> Option<Vec<u8>> {
        let col = MyColumn {
            bit: false,
            length: 0,
        };
        my_value(kind, col, raw.as_bytes()).map(Cow::into_owned)
    }
    fn pg(kind: ColumnKind, text: &str) -> Option<Vec<u8>> {
        pg_value(kind, text).map(Cow::into_owned)
    }

    #[test]
    fn each_side_meets_in_the_same_form() {
        use ColumnKind::*;
        assert_eq!(my(Bool, "2"), pg(Bool, "t"));
        assert_eq!(my(Bool, "0"), pg(Bool, "f"));
        assert_eq!(my(Float, "1e20"), pg(Float, "1e+20"));
        assert_eq!(my(Float, "0.1"), pg(Float, "0.1"));
        assert_eq!(
            my(Temporal, "2024-01-02 03:04:05.250000"),
            pg(Temporal, "2024-01-02 03:04:05.25+00")
        );
        assert_eq!(
            my(Temporal, "2024-01-02 00:00:00"),
            pg(Temporal, "2024-01-02 00:00:00")
        );
        assert_eq!(my(Temporal, "0000-00-00 00:00:00"), None);
        assert_eq!(my(Temporal, "2020-05-00"), None);
        assert_eq!(
            my(Json, "{\"b\": 1, \"a\": [1, 2]}"),
            pg(Json, "{\"a\": [1, 2], \"b\": 1}")
        );
        assert_eq!(my(Bytes, "\u{1}A"), pg(Bytes, "\\x0141"));
        let bit = MyColumn {
            bit: true,
            length: 3,
        };
        assert_eq!(
            my_value(Bits, bit, &[0b101]).map(Cow::into_owned),
            pg(Bits, "101")
        );
        let bit1 = MyColumn {
            bit: true,
            length: 1,
        };
        assert_eq!(
            my_value(Bool, bit1, &[1]).map(Cow::into_owned),
            pg(Bool, "t")
        );
        assert_ne!(my(Text, "1.50"), pg(Text, "1.5"));
        assert_eq!(my(Number, "0.00"), pg(Number, "0"));
        assert_eq!(my(Number, "10.50"), pg(Number, "10.5"));
        assert_eq!(my(Number, "-0.0"), pg(Number, "0"));
        assert_eq!(my(Number, "1.6667"), pg(Number, "1.6667"));
        assert_ne!(my(Number, "100"), pg(Number, "1"));
    }
}
