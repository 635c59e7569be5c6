//! MySQL/MariaDB values into PostgreSQL binary COPY fields: one [`Converter`] per column,
//! chosen once per chunk from the column's [`Convert`] (the type table in
//! [`crate::typemap::mysql`]), applied to every value of the column.
//!
//! Invariant: a value is converted exactly or refused with a reason (the reader then rejects
//! its row); nothing is rounded, truncated or replaced silently. Zero dates and NUL bytes
//! follow the job's [`Policies`].

use mysql_async::Value;

use crate::chunking::mysql_read::MyReadColumn;
use crate::config::{NulBytes, Policies, ZeroDates};
use crate::pgcopy::values::{self as v, ValueError};
use crate::typemap::mysql::Convert;

/// A column's conversion, with what it needs resolved once per chunk.
pub(crate) struct Converter {
    convert: Convert,
    not_null: bool,
    nul: NulBytes,
    zero: ZeroDates,
    /// Zero-date replacement, parsed: (y, m, d, h, mi, s, us).
    zero_value: Option<Civil>,
    zone: Option<jiff::tz::TimeZone>,
}

impl Converter {
    pub(crate) fn new(col: &MyReadColumn, p: &Policies) -> std::result::Result<Self, String> {
        let zero_value = match &p.zero_dates {
            ZeroDates::Value(text) => Some(parse_zero_value(text)?),
            _ => None,
        };
        let zone = match &col.convert {
            Convert::TimestampInZone { zone }
            | Convert::AsText {
                zone: Some(zone), ..
            } => Some(
                jiff::tz::TimeZone::get(zone)
                    .map_err(|e| format!("time zone {zone} for {}: {e}", col.name))?,
            ),
            _ => None,
        };
        Ok(Converter {
            convert: col.convert.clone(),
            not_null: col.not_null,
            nul: p.nul_bytes,
            zero: p.zero_dates.clone(),
            zero_value,
            zone,
        })
    }

    /// Appends `value` converted; an error is the reason to reject the row.
    pub(crate) fn put(&self, buf: &mut Vec<u8>, value: &Value) -> Put {
        if matches!(value, Value::NULL) {
            if self.not_null {
                return Err("NULL in a NOT NULL column".into());
            }
            v::put_null(buf);
            return Ok(());
        }
        let ve = |e: ValueError| e.0;
        match &self.convert {
            Convert::AsText { boolean, date, .. } => {
                self.put_as_text(buf, value, *boolean, *date)?
            }
            Convert::Bool => match value {
                Value::Bytes(b) => v::put_bool(buf, b.iter().any(|&x| x != 0)),
                other => v::put_bool(
                    buf,
                    int_of(other).ok_or_else(|| wrong(other, "boolean"))? != 0,
                ),
            },
            Convert::Int2 => {
                let n = int_of(value).ok_or_else(|| wrong(value, "smallint"))?;
                let n =
                    i16::try_from(n).map_err(|_| format!("{n} is out of range for smallint"))?;
                v::put_i16(buf, n);
            }
            Convert::Int4 => {
                let n = int_of(value).ok_or_else(|| wrong(value, "integer"))?;
                let n = i32::try_from(n).map_err(|_| format!("{n} is out of range for integer"))?;
                v::put_i32(buf, n);
            }
            Convert::Int8 => {
                let n = int_of(value).ok_or_else(|| wrong(value, "bigint"))?;
                let n = i64::try_from(n).map_err(|_| format!("{n} is out of range for bigint"))?;
                v::put_i64(buf, n);
            }
            Convert::NumericInt => match value {
                Value::UInt(n) => v::put_numeric_u64(buf, *n),
                Value::Int(n) => v::put_numeric_i64(buf, *n),
                other => {
                    let text = match other {
                        Value::Bytes(b) => {
                            std::str::from_utf8(b).map_err(|_| wrong(other, "numeric"))?
                        }
                        _ => return Err(wrong(other, "numeric")),
                    };
                    v::put_numeric_str(buf, text).map_err(ve)?;
                }
            },
            Convert::Numeric => match value {
                Value::Bytes(b) => {
                    let text = std::str::from_utf8(b).map_err(|_| wrong(value, "decimal"))?;
                    v::put_numeric_str(buf, text).map_err(ve)?;
                }
                Value::Int(n) => v::put_numeric_i64(buf, *n),
                Value::UInt(n) => v::put_numeric_u64(buf, *n),
                other => return Err(wrong(other, "decimal")),
            },
            Convert::Float4 => match value {
                Value::Float(f) => v::put_f32(buf, *f),
                Value::Double(f) => v::put_f32(buf, *f as f32),
                other => return Err(wrong(other, "float")),
            },
            Convert::Float8 => match value {
                Value::Double(f) => v::put_f64(buf, *f),
                Value::Float(f) => v::put_f64(buf, f64::from(*f)),
                other => return Err(wrong(other, "double")),
            },
            Convert::Text => self.put_text(buf, bytes_of(value)?)?,
            Convert::Enum { labels } | Convert::EnumText { labels } => {
                let b = bytes_of(value)?;
                if !labels.iter().any(|l| l.as_bytes() == b) {
                    return Err(format!(
                        "'{}' is not one of the enum's labels ({})",
                        String::from_utf8_lossy(b),
                        labels.join(", ")
                    ));
                }
                v::put_bytes(buf, b);
            }
            Convert::SetArray => {
                let b = bytes_of(value)?;
                std::str::from_utf8(b).map_err(|_| "set value is not valid UTF-8".to_string())?;
                let parts: Vec<&[u8]> = if b.is_empty() {
                    Vec::new()
                } else {
                    b.split(|&c| c == b',').collect()
                };
                v::put_text_array(buf, &parts);
            }
            Convert::Jsonb => {
                let b = bytes_of(value)?;
                check_json(b, true)?;
                v::put_jsonb(buf, b);
            }
            Convert::JsonText => {
                let b = bytes_of(value)?;
                check_json(b, false)?;
                v::put_bytes(buf, b);
            }
            Convert::Bytea => v::put_bytes(buf, bytes_of(value)?),
            Convert::UuidBinary => {
                let b = bytes_of(value)?;
                let arr: &[u8; 16] = b
                    .try_into()
                    .map_err(|_| format!("{} bytes cannot be a uuid (16 needed)", b.len()))?;
                v::put_uuid(buf, arr);
            }
            Convert::UuidText => {
                let b = bytes_of(value)?;
                v::put_uuid(buf, &parse_uuid(b)?);
            }
            Convert::Date => match self.date_parts(value)? {
                Some((y, m, d, ..)) => v::put_date(buf, y, m, d).map_err(ve)?,
                None => v::put_null(buf),
            },
            Convert::Timestamp | Convert::TimestampTz => match self.date_parts(value)? {
                Some((y, m, d, h, mi, s, us)) => {
                    v::put_timestamp(buf, y, m, d, h, mi, s, us).map_err(ve)?
                }
                None => v::put_null(buf),
            },
            Convert::TimestampInZone { .. } => match self.date_parts(value)? {
                Some((y, m, d, h, mi, s, us)) => {
                    let micros = self.zoned_micros(y, m, d, h, mi, s, us)?;
                    v::put_timestamp_micros(buf, micros);
                }
                None => v::put_null(buf),
            },
            Convert::Time => match value {
                Value::Time(neg, days, h, m, s, us) => {
                    v::put_time(buf, *neg, *days, *h, *m, *s, *us).map_err(|e| {
                        format!("{}: map the column to interval to keep such values", e.0)
                    })?
                }
                other => return Err(wrong(other, "time")),
            },
            Convert::Interval => match value {
                Value::Time(neg, days, h, m, s, us) => {
                    v::put_interval_time(buf, *neg, *days, *h, *m, *s, *us)
                }
                other => return Err(wrong(other, "time")),
            },
            Convert::Year => {
                let n = int_of(value).ok_or_else(|| wrong(value, "year"))?;
                let n = i16::try_from(n).map_err(|_| format!("year {n} is out of range"))?;
                v::put_i16(buf, n);
            }
            Convert::VarBit { bits } => v::put_varbit(buf, *bits, bytes_of(value)?).map_err(ve)?,
            Convert::GeometryWkb => {
                let b = bytes_of(value)?;
                if b.len() < 9 {
                    return Err(format!("{} bytes are not a spatial value", b.len()));
                }
                v::put_bytes(buf, &b[4..]);
            }
            Convert::GeometryEwkb => {
                let b = bytes_of(value)?;
                put_ewkb(buf, b)?;
            }
        }
        Ok(())
    }

    /// Appends `value` as PostgreSQL prints it (the transform stage casts it from there):
    /// `boolean` integers as true/false, `date` columns as dates, zoned instants in UTC.
    fn put_as_text(&self, buf: &mut Vec<u8>, value: &Value, boolean: bool, date: bool) -> Put {
        if boolean {
            let n = int_of(value).ok_or_else(|| wrong(value, "boolean"))?;
            v::put_bytes(buf, if n != 0 { b"true" } else { b"false" });
            return Ok(());
        }
        match value {
            Value::Bytes(b) => self.put_text(buf, b)?,
            Value::Int(n) => v::put_bytes(buf, n.to_string().as_bytes()),
            Value::UInt(n) => v::put_bytes(buf, n.to_string().as_bytes()),
            Value::Float(f) => v::put_bytes(buf, f.to_string().as_bytes()),
            Value::Double(f) => v::put_bytes(buf, f.to_string().as_bytes()),
            Value::Date(..) => match self.date_parts(value)? {
                None => v::put_null(buf),
                Some((y, m, d, ..)) if date => {
                    let (y, era) = pg_year(i32::from(y));
                    v::put_bytes(buf, format!("{y:04}-{m:02}-{d:02}{era}").as_bytes())
                }
                Some((y, m, d, h, mi, s, us)) if self.zone.is_some() => {
                    // The instant, in UTC with its offset, as PostgreSQL prints a
                    // timestamptz in a UTC session.
                    let micros = self.zoned_micros(y, m, d, h, mi, s, us)?;
                    let ts = jiff::Timestamp::from_microsecond(micros + 946_684_800_000_000)
                        .map_err(|e| e.to_string())?;
                    let c = ts.to_zoned(jiff::tz::TimeZone::UTC).datetime();
                    let (year, era) = pg_year(i32::from(c.year()));
                    let text = format!(
                        "{year:04}-{:02}-{:02} {:02}:{:02}:{:02}{}+00{era}",
                        c.month(),
                        c.day(),
                        c.hour(),
                        c.minute(),
                        c.second(),
                        fraction((c.subsec_nanosecond() / 1000) as u32)
                    );
                    v::put_bytes(buf, text.as_bytes())
                }
                Some((y, m, d, h, mi, s, us)) => {
                    let (y, era) = pg_year(i32::from(y));
                    v::put_bytes(
                        buf,
                        format!(
                            "{y:04}-{m:02}-{d:02} {h:02}:{mi:02}:{s:02}{}{era}",
                            fraction(us)
                        )
                        .as_bytes(),
                    )
                }
            },
            Value::Time(neg, days, h, mi, s, us) => {
                let hours = u64::from(*days) * 24 + u64::from(*h);
                let sign = if *neg { "-" } else { "" };
                v::put_bytes(
                    buf,
                    format!("{sign}{hours:02}:{mi:02}:{s:02}{}", fraction(*us)).as_bytes(),
                )
            }
            Value::NULL => v::put_null(buf),
        }
        Ok(())
    }

    fn put_text(&self, buf: &mut Vec<u8>, b: &[u8]) -> Put {
        let text = std::str::from_utf8(b).map_err(|e| {
            format!(
                "invalid UTF-8 at byte {} (the server sent bytes that are not text in its charset)",
                e.valid_up_to()
            )
        })?;
        if !text.as_bytes().contains(&0) {
            v::put_bytes(buf, b);
            return Ok(());
        }
        match self.nul {
            NulBytes::Reject => Err(
                "NUL byte in text (PostgreSQL text cannot hold one; set nul_bytes = \"strip\" to remove them)"
                    .into(),
            ),
            NulBytes::Strip => {
                let stripped: Vec<u8> = b.iter().copied().filter(|&c| c != 0).collect();
                v::put_bytes(buf, &stripped);
                Ok(())
            }
        }
    }

    /// Date-time parts, `None` for a zero date turned NULL; a zero date is per policy.
    ///
    /// A zero date has month or day 0 (`0000-00-00`, `2020-05-00`). A date in year 0000 with
    /// a real month and day is a date (MySQL's year before 0001, PostgreSQL's 1 BC), kept.
    fn date_parts(&self, value: &Value) -> std::result::Result<Option<Civil>, String> {
        let Value::Date(y, m, d, h, mi, s, us) = value else {
            return Err(wrong(value, "date"));
        };
        if *m != 0 && *d != 0 {
            return Ok(Some((*y, *m, *d, *h, *mi, *s, *us)));
        }
        let shown = format!("{y:04}-{m:02}-{d:02}");
        match (&self.zero, self.zero_value) {
            (ZeroDates::Value(_), Some(parts)) => Ok(Some(parts)),
            (ZeroDates::Null, _) if !self.not_null => Ok(None),
            (ZeroDates::Null, _) => Err(format!(
                "zero date {shown} in a NOT NULL column (set zero_dates to a date to keep such rows)"
            )),
            _ => Err(format!("zero date {shown} (zero_dates = \"reject\")")),
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn zoned_micros(
        &self,
        y: u16,
        m: u8,
        d: u8,
        h: u8,
        mi: u8,
        s: u8,
        us: u32,
    ) -> std::result::Result<i64, String> {
        let tz = self.zone.clone().unwrap_or(jiff::tz::TimeZone::UTC);
        let dt = jiff::civil::DateTime::new(
            y as i16,
            m as i8,
            d as i8,
            h as i8,
            mi as i8,
            s as i8,
            (us * 1000) as i32,
        )
        .map_err(|e| e.to_string())?;
        let zoned = dt.to_zoned(tz).map_err(|e| e.to_string())?;
        let micros = zoned.timestamp().as_microsecond();
        // PostgreSQL counts from 2000-01-01 UTC.
        Ok(micros - 946_684_800_000_000)
    }
}

pub(crate) type Put = std::result::Result<(), String>;

/// A civil date-time as MySQL sends it: year, month, day, hour, minute, second, microsecond.
type Civil = (u16, u8, u8, u8, u8, u8, u32);

fn int_of(value: &Value) -> Option<i128> {
    match value {
        Value::Int(n) => Some(i128::from(*n)),
        Value::UInt(n) => Some(i128::from(*n)),
        Value::Bytes(b) => std::str::from_utf8(b).ok()?.trim().parse().ok(),
        _ => None,
    }
}

fn wrong(value: &Value, what: &str) -> String {
    format!("unexpected value {} for a {what} column", display(value))
}

fn parse_zero_value(text: &str) -> std::result::Result<Civil, String> {
    let bad = || {
        format!("zero_dates value \"{text}\" is not a date like 1970-01-01 or a timestamp like 1970-01-01 00:00:00")
    };
    let (date, time) = text
        .trim()
        .split_once(' ')
        .unwrap_or((text.trim(), "00:00:00"));
    let d: Vec<&str> = date.split('-').collect();
    let t: Vec<&str> = time.split(':').collect();
    if d.len() != 3 || t.len() != 3 {
        return Err(bad());
    }
    let num = |s: &str| s.parse::<u32>().map_err(|_| bad());
    let (y, m, dd) = (num(d[0])?, num(d[1])?, num(d[2])?);
    let (h, mi, s) = (num(t[0])?, num(t[1])?, num(t[2])?);
    v::timestamp_micros(y as u16, m as u8, dd as u8, h as u8, mi as u8, s as u8, 0)
        .map_err(|e| format!("zero_dates value \"{text}\": {e}"))?;
    Ok((y as u16, m as u8, dd as u8, h as u8, mi as u8, s as u8, 0))
}

/// An astronomical year as PostgreSQL prints it: year 0 is `0001 ... BC`, -1 is `0002 ... BC`.
fn pg_year(year: i32) -> (i32, &'static str) {
    if year > 0 {
        (year, "")
    } else {
        (1 - year, " BC")
    }
}

/// Fractional seconds as PostgreSQL prints them: none for zero, else without trailing zeros
/// (`.5`, `.123456`), so a value map's keys read the same for MySQL and PostgreSQL sources.
fn fraction(us: u32) -> String {
    if us == 0 {
        return String::new();
    }
    let f = format!(".{us:06}");
    f.trim_end_matches('0').to_string()
}

/// MySQL's spatial format (SRID as 4 little-endian bytes, then WKB) as PostGIS EWKB: the WKB
/// with the SRID flag set in its type word and the SRID after it, in the WKB's byte order.
fn put_ewkb(buf: &mut Vec<u8>, b: &[u8]) -> Put {
    if b.len() < 9 {
        return Err(format!("{} bytes are not a spatial value", b.len()));
    }
    let srid = u32::from_le_bytes([b[0], b[1], b[2], b[3]]);
    let wkb = &b[4..];
    let little = match wkb[0] {
        0 => false,
        1 => true,
        other => return Err(format!("WKB byte order {other} is neither 0 nor 1")),
    };
    let word = |x: [u8; 4]| {
        if little {
            u32::from_le_bytes(x)
        } else {
            u32::from_be_bytes(x)
        }
    };
    let bytes = |x: u32| {
        if little {
            x.to_le_bytes()
        } else {
            x.to_be_bytes()
        }
    };
    let kind = word([wkb[1], wkb[2], wkb[3], wkb[4]]) | 0x2000_0000;
    let len = wkb.len() + 4;
    let len = i32::try_from(len).map_err(|_| "spatial value too large".to_string())?;
    buf.extend_from_slice(&len.to_be_bytes());
    buf.push(wkb[0]);
    buf.extend_from_slice(&bytes(kind));
    buf.extend_from_slice(&bytes(srid));
    buf.extend_from_slice(&wkb[5..]);
    Ok(())
}

fn bytes_of(value: &Value) -> std::result::Result<&[u8], String> {
    match value {
        Value::Bytes(b) => Ok(b),
        other => Err(wrong(other, "string")),
    }
}

fn parse_uuid(b: &[u8]) -> std::result::Result<[u8; 16], String> {
    let text = std::str::from_utf8(b).map_err(|_| "uuid text is not UTF-8".to_string())?;
    let hexes: Vec<u8> = text.bytes().filter(|c| *c != b'-').collect();
    let bad = || format!("'{text}' is not a uuid");
    if hexes.len() != 32 || !(text.len() == 36 || text.len() == 32) {
        return Err(bad());
    }
    let mut out = [0u8; 16];
    for (i, pair) in hexes.chunks(2).enumerate() {
        let s = std::str::from_utf8(pair).map_err(|_| bad())?;
        out[i] = u8::from_str_radix(s, 16).map_err(|_| bad())?;
    }
    Ok(out)
}

/// Checks JSON text the way PostgreSQL's input does (the cast module's check, which a property
/// test compares with the server): valid syntax, and for `jsonb` no `\u0000`, no unpaired
/// surrogate and no number beyond `numeric`.
fn check_json(b: &[u8], jsonb: bool) -> Put {
    let text = std::str::from_utf8(b).map_err(|e| {
        format!(
            "invalid JSON for PostgreSQL: not UTF-8 at byte {}",
            e.valid_up_to()
        )
    })?;
    crate::transform::cast::check_json(text, jsonb)
        .map_err(|e| format!("invalid JSON for PostgreSQL: {e}"))
}

/// A value as text for messages and reject records.
pub(crate) fn display(value: &Value) -> String {
    match value {
        Value::NULL => "NULL".into(),
        Value::Bytes(b) => match std::str::from_utf8(b) {
            Ok(s) => s.to_string(),
            Err(_) => format!("\\x{}", hex(b)),
        },
        Value::Int(n) => n.to_string(),
        Value::UInt(n) => n.to_string(),
        Value::Float(f) => f.to_string(),
        Value::Double(f) => f.to_string(),
        Value::Date(y, mo, d, h, mi, s, us) => {
            format!("{y:04}-{mo:02}-{d:02} {h:02}:{mi:02}:{s:02}.{us:06}")
        }
        Value::Time(neg, d, h, m, s, us) => format!(
            "{}{}:{m:02}:{s:02}.{us:06}",
            if *neg { "-" } else { "" },
            u32::from(*h) + d * 24
        ),
    }
}

pub(crate) fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_checks_follow_postgresql() {
        assert!(check_json(br#"{"a": [1, 2.5e300, "x"]}"#, true).is_ok());
        assert!(check_json(br#"{"a": "\u0000"}"#, true).is_err());
        assert!(check_json(br#"{"a": "\u0000"}"#, false).is_ok());
        assert!(check_json(br#"{"a": "\ud800"}"#, true).is_err());
        assert!(check_json(b"{a:1}", true).is_err());
    }

    #[test]
    fn ewkb_carries_the_srid() {
        // SRID 4326, then WKB POINT(1 2), little-endian.
        let mut my = 4326u32.to_le_bytes().to_vec();
        my.extend_from_slice(&[1, 1, 0, 0, 0]);
        my.extend_from_slice(&1f64.to_le_bytes());
        my.extend_from_slice(&2f64.to_le_bytes());
        let mut out = Vec::new();
        put_ewkb(&mut out, &my).unwrap_or_default();
        assert_eq!(&out[..4], &25i32.to_be_bytes());
        assert_eq!(&out[4..9], &[1, 1, 0, 0, 0x20]);
        assert_eq!(&out[9..13], &4326u32.to_le_bytes());
        assert_eq!(out.len(), 4 + 25);
    }

    #[test]
    fn uuid_text() {
        assert_eq!(
            parse_uuid(b"123e4567-e89b-12d3-a456-426614174000").map(|u| u[0]),
            Ok(0x12)
        );
        assert!(parse_uuid(b"not-a-uuid").is_err());
    }
}
