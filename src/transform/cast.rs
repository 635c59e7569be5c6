//! Casts of one value, given as text, to a PostgreSQL type's binary COPY encoding, with
//! PostgreSQL's own rules.
//!
//! A column that a mapping changes arrives at the transform as text: a PostgreSQL source
//! renders it with the type's output function (`col::text`, in a UTC/ISO session), a MySQL
//! source with its own converter. The cast then follows what PostgreSQL does for
//! `SELECT value::source_type::target_type`: the target type's input function for text, the
//! rounding of `numeric` and `float8` to integers, non-zero integers as `true`. A value this
//! module cannot convert exactly as PostgreSQL would is an error, never a different value: the
//! property tests in `tests/integration/cast_oracle.rs` check that against the server.

use crate::pgcopy::values as v;

/// The target types a mapping can cast to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TargetType {
    /// `boolean`.
    Bool,
    /// `smallint`.
    Int2,
    /// `integer`.
    Int4,
    /// `bigint`.
    Int8,
    /// `numeric`, optionally `numeric(precision, scale)`.
    Numeric(Option<(u32, u32)>),
    /// `real`.
    Float4,
    /// `double precision`.
    Float8,
    /// `text`.
    Text,
    /// `varchar` / `character varying`, optionally with a length in characters.
    Varchar(Option<u32>),
    /// `uuid`.
    Uuid,
    /// `json`.
    Json,
    /// `jsonb`.
    Jsonb,
    /// `date`.
    Date,
    /// `timestamp` (without time zone).
    Timestamp,
    /// `timestamptz`.
    TimestampTz,
    /// `bytea`.
    Bytea,
}

/// Type names accepted in a mapping, for error messages.
pub const SUPPORTED: &str = "boolean, smallint, integer, bigint, numeric[(p,s)], real, \
double precision, text, varchar[(n)], uuid, json, jsonb, date, timestamp, timestamptz, bytea";

impl TargetType {
    /// Parses a type as written in a config file or rendered by `format_type`.
    pub fn parse(sql: &str) -> Option<Self> {
        let s = sql.trim().to_ascii_lowercase();
        let s = s.strip_prefix("pg_catalog.").unwrap_or(&s).to_string();
        // `timestamp(3) [with[out] time zone]`, `timestamptz(3)`: the precision is applied by
        // the server when it receives the value, as it is for a cast.
        for base in ["timestamptz(", "timestamp("] {
            if let Some(rest) = s.strip_prefix(base) {
                let close = rest.find(')')?;
                let p: u32 = rest[..close].trim().parse().ok()?;
                if p > 6 {
                    return None;
                }
                return Self::parse(&format!(
                    "{}{}",
                    &base[..base.len() - 1],
                    &rest[close + 1..]
                ));
            }
        }
        let (base, args) = match s.find('(') {
            Some(open) => {
                let close = s.rfind(')')?;
                if close + 1 != s.len() || close < open {
                    return None;
                }
                let args: Vec<u32> = s[open + 1..close]
                    .split(',')
                    .map(|a| a.trim().parse().ok())
                    .collect::<Option<_>>()?;
                (s[..open].trim().to_string(), Some(args))
            }
            None => (s, None),
        };
        let plain = |t: TargetType| args.is_none().then_some(t);
        match base.as_str() {
            "boolean" | "bool" => plain(Self::Bool),
            "smallint" | "int2" => plain(Self::Int2),
            "integer" | "int" | "int4" => plain(Self::Int4),
            "bigint" | "int8" => plain(Self::Int8),
            "real" | "float4" => plain(Self::Float4),
            "double precision" | "float8" => plain(Self::Float8),
            "text" => plain(Self::Text),
            "uuid" => plain(Self::Uuid),
            "json" => plain(Self::Json),
            "jsonb" => plain(Self::Jsonb),
            "date" => plain(Self::Date),
            "timestamp" | "timestamp without time zone" => plain(Self::Timestamp),
            "timestamptz" | "timestamp with time zone" => plain(Self::TimestampTz),
            "bytea" => plain(Self::Bytea),
            "numeric" | "decimal" => match args.as_deref() {
                None => Some(Self::Numeric(None)),
                Some([p]) if (1..=1000).contains(p) => Some(Self::Numeric(Some((*p, 0)))),
                Some([p, s]) if (1..=1000).contains(p) && s <= p => {
                    Some(Self::Numeric(Some((*p, *s))))
                }
                _ => None,
            },
            "varchar" | "character varying" => match args.as_deref() {
                None => Some(Self::Varchar(None)),
                Some([n]) if *n >= 1 && *n <= 10_485_760 => Some(Self::Varchar(Some(*n))),
                _ => None,
            },
            _ => None,
        }
    }

    /// The type as DDL writes it.
    pub fn sql(&self) -> String {
        match self {
            Self::Bool => "boolean".into(),
            Self::Int2 => "smallint".into(),
            Self::Int4 => "integer".into(),
            Self::Int8 => "bigint".into(),
            Self::Numeric(None) => "numeric".into(),
            Self::Numeric(Some((p, s))) => format!("numeric({p},{s})"),
            Self::Float4 => "real".into(),
            Self::Float8 => "double precision".into(),
            Self::Text => "text".into(),
            Self::Varchar(None) => "character varying".into(),
            Self::Varchar(Some(n)) => format!("character varying({n})"),
            Self::Uuid => "uuid".into(),
            Self::Json => "json".into(),
            Self::Jsonb => "jsonb".into(),
            Self::Date => "date".into(),
            Self::Timestamp => "timestamp without time zone".into(),
            Self::TimestampTz => "timestamp with time zone".into(),
            Self::Bytea => "bytea".into(),
        }
    }

    /// What kind of value this type is, to decide which casts between types exist.
    pub fn kind(&self) -> Kind {
        match self {
            Self::Bool => Kind::Bool,
            Self::Int2 | Self::Int4 | Self::Int8 => Kind::Integer,
            Self::Numeric(_) => Kind::Exact,
            Self::Float4 | Self::Float8 => Kind::Float,
            Self::Text | Self::Varchar(_) => Kind::Text,
            Self::Uuid => Kind::Uuid,
            Self::Json | Self::Jsonb => Kind::Json,
            Self::Date | Self::Timestamp | Self::TimestampTz => Kind::DateTime,
            Self::Bytea => Kind::Bytes,
        }
    }
}

/// Families of types: a cast exists between some families and not others.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// `boolean`.
    Bool,
    /// `smallint`, `integer`, `bigint` (and MySQL's integers).
    Integer,
    /// `numeric`.
    Exact,
    /// `double precision` (and `real` as a target's family).
    Float,
    /// A `real` source: its text is a float4's, read as a float4 and cast as PostgreSQL casts
    /// that float4 (the shortest text of `123456790528`, `1.2345679e+11`, read as a double is
    /// another number).
    Real,
    /// Character types, enums, and anything rendered as text.
    Text,
    /// `uuid`.
    Uuid,
    /// `json`, `jsonb`.
    Json,
    /// `date`, `timestamp`, `timestamptz`.
    DateTime,
    /// `bytea`.
    Bytes,
    /// Any other type: it can become text, and nothing else.
    Other,
}

impl Kind {
    /// The family of a source column's type as `format_type` renders it.
    pub fn of_sql(type_sql: &str) -> Kind {
        if let Some(t) = TargetType::parse(type_sql) {
            return match t {
                TargetType::Float4 => Kind::Real,
                t => t.kind(),
            };
        }
        let s = type_sql.to_ascii_lowercase();
        let base = s.split('(').next().unwrap_or("").trim();
        match base {
            "character" | "char" | "bpchar" | "name" | "citext" => Kind::Text,
            "timestamp" | "timestamp without time zone" | "timestamp with time zone" => {
                Kind::DateTime
            }
            _ => Kind::Other,
        }
    }

    /// Whether PostgreSQL has a cast from this family to `to` that howdah reproduces.
    pub fn casts_to(self, to: TargetType) -> bool {
        use Kind::*;
        let target = to.kind();
        let this = if self == Real { Float } else { self };
        if this == target || target == Text || this == Text {
            return true;
        }
        matches!(
            (this, target),
            (Integer | Exact | Float, Integer | Exact | Float)
                | (Integer, Bool)
                | (Bool, Integer)
                | (DateTime, DateTime)
        )
    }
}

/// A cast of text (the source value as PostgreSQL or the MySQL converter renders it) to a
/// target type's binary encoding.
#[derive(Debug, Clone)]
pub struct Cast {
    /// Target type.
    pub to: TargetType,
    /// Family of the source value, which decides integer rounding and boolean rules.
    /// `Kind::Float` values are `double precision` ones; a `real` source is `Kind::Real`, whose
    /// text is read as a float4 (`float4_numeric` keeps 6 digits, the integer casts round
    /// the float4 itself).
    pub from: Kind,
    /// Zone that naive date-times are in, for `timestamptz` (UTC when `None`).
    pub zone: Option<jiff::tz::TimeZone>,
    /// Cut text longer than a `varchar(n)` to `n` characters instead of failing.
    pub truncate: bool,
}

/// Why a value cannot be cast (the message names the value).
pub type CastError = String;

impl Cast {
    /// Appends the field for `text` cast to the target type.
    pub fn put(&self, buf: &mut Vec<u8>, text: &str) -> Result<(), CastError> {
        let bad = |what: &str| format!("invalid {what}: \"{}\"", shown(text));
        if text.contains('\0') {
            // PostgreSQL text cannot hold NUL, so no PostgreSQL value is cast from this one.
            return Err(format!(
                "\"{}\" holds a NUL character, which PostgreSQL text cannot",
                shown(text)
            ));
        }
        // An integer source (MySQL's unsigned bigint included) renders as plain digits.
        let integer = match self.from {
            Kind::Integer => Some(parse_integer(text).ok_or_else(|| bad("integer"))?),
            _ => None,
        };
        match self.to {
            TargetType::Bool => {
                let b = match integer {
                    Some(n) => n != 0,
                    None => parse_bool(text).ok_or_else(|| bad("boolean"))?,
                };
                v::put_bool(buf, b);
            }
            TargetType::Int2 => {
                let n = self.integer(text, i64::from(i16::MIN), i64::from(i16::MAX))?;
                v::put_i16(buf, n as i16);
            }
            TargetType::Int4 => {
                let n = self.integer(text, i64::from(i32::MIN), i64::from(i32::MAX))?;
                v::put_i32(buf, n as i32);
            }
            TargetType::Int8 => {
                let n = self.integer(text, i64::MIN, i64::MAX)?;
                v::put_i64(buf, n);
            }
            TargetType::Numeric(typmod) if self.from == Kind::Float => {
                // float8_numeric: the double printed with 15 significant digits (`%.15g`).
                let f = parse_float(text).ok_or_else(|| bad("double precision"))?;
                put_numeric(buf, &float_numeric_text(f, 15), typmod)
                    .map_err(|e| format!("\"{}\" as double precision: {e}", shown(text)))?;
            }
            TargetType::Numeric(typmod) if self.from == Kind::Real => {
                // float4_numeric: the float4 printed with FLT_DIG (6) significant digits.
                let f = f64::from(self.float4(text)?);
                put_numeric(buf, &float_numeric_text(f, 6), typmod)
                    .map_err(|e| format!("\"{}\" as real: {e}", shown(text)))?;
            }
            TargetType::Numeric(typmod) => put_numeric(buf, text, typmod)?,
            TargetType::Float4 => {
                let out_of_range = || format!("\"{}\" is out of range for type real", shown(text));
                let g = match (self.from, integer) {
                    // (float4) of an integer rounds it once, to nearest.
                    (_, Some(n)) => n as f32,
                    // float8_to_float4: the double, rounded again.
                    (Kind::Float, None) => {
                        let f = parse_float(text).ok_or_else(|| bad("double precision"))?;
                        let g = f as f32;
                        if (g.is_infinite() && f.is_finite()) || (g == 0.0 && f != 0.0) {
                            return Err(out_of_range());
                        }
                        g.copysign(if f.is_sign_negative() { -1.0 } else { 1.0 })
                    }
                    // float4in (numeric_float4 too, through numeric's text): the text rounded
                    // once, straight to a float; numeric has no negative zero.
                    _ => self.float4(text)?,
                };
                v::put_f32(buf, g);
            }
            TargetType::Float8 => {
                let f = match integer {
                    Some(n) => n as f64,
                    // float4_float8 widens exactly.
                    None if self.from == Kind::Real => f64::from(self.float4(text)?),
                    None => self.float8(text)?,
                };
                v::put_f64(buf, f);
            }
            TargetType::Text => v::put_bytes(buf, text.as_bytes()),
            TargetType::Varchar(None) => v::put_bytes(buf, text.as_bytes()),
            TargetType::Varchar(Some(n)) => {
                let n = n as usize;
                match text.char_indices().nth(n) {
                    None => v::put_bytes(buf, text.as_bytes()),
                    Some((cut, _)) => {
                        // Input of varchar(n) drops excess trailing spaces; an explicit cast
                        // drops any excess, which the user asks for with `truncate`.
                        if self.truncate || text[cut..].bytes().all(|b| b == b' ') {
                            v::put_bytes(buf, &text.as_bytes()[..cut]);
                        } else {
                            return Err(format!(
                                "value too long for type character varying({n}): {} characters",
                                text.chars().count()
                            ));
                        }
                    }
                }
            }
            TargetType::Uuid => {
                let u = parse_uuid(text).ok_or_else(|| bad("uuid"))?;
                v::put_uuid(buf, &u);
            }
            TargetType::Json | TargetType::Jsonb => {
                let jsonb = self.to == TargetType::Jsonb;
                check_json(text, jsonb)?;
                if jsonb {
                    v::put_jsonb(buf, text.as_bytes());
                } else {
                    v::put_bytes(buf, text.as_bytes());
                }
            }
            TargetType::Date => {
                let days = parse_date(text).ok_or_else(|| bad("date"))?;
                v::put_i32(buf, days);
            }
            TargetType::Timestamp => {
                let us = parse_timestamp(text, None, false).ok_or_else(|| bad("timestamp"))?;
                v::put_timestamp_micros(buf, us);
            }
            TargetType::TimestampTz => {
                let utc = jiff::tz::TimeZone::UTC;
                let zone = self.zone.as_ref().unwrap_or(&utc);
                let us = parse_timestamp(text, Some(zone), true)
                    .ok_or_else(|| bad("timestamp with time zone"))?;
                v::put_timestamp_micros(buf, us);
            }
            TargetType::Bytea => {
                let mut bytes = Vec::with_capacity(text.len());
                parse_bytea(text, &mut bytes).ok_or_else(|| bad("bytea"))?;
                v::put_bytes(buf, &bytes);
            }
        }
        Ok(())
    }

    /// The source value as a double: `float8in`, or for a numeric source `numeric_float8`
    /// (numeric's text through `float8in`: numeric has no negative zero nor signed NaN).
    fn float8(&self, text: &str) -> Result<f64, CastError> {
        let bad = || format!("invalid double precision: \"{}\"", shown(text));
        if self.from == Kind::Exact {
            match parse_decimal(text) {
                Ok(d) if d.digits.is_empty() => return Ok(0.0),
                Ok(_) => {}
                Err(Some(Special::NaN)) => return Ok(f64::NAN),
                Err(Some(Special::Inf(neg))) => {
                    return Ok(if neg {
                        f64::NEG_INFINITY
                    } else {
                        f64::INFINITY
                    })
                }
                Err(None) => return Err(format!("invalid numeric: \"{}\"", shown(text))),
            }
        }
        parse_float(text).ok_or_else(bad)
    }

    /// The source value as a float: `float4in` (for a numeric source `numeric_float4`, which
    /// goes through numeric's text the same way; numeric has no negative zero).
    fn float4(&self, text: &str) -> Result<f32, CastError> {
        let f = self.float8(text)?;
        if f.is_nan() || f.is_infinite() || f == 0.0 {
            return Ok((f as f32).copysign(if f.is_sign_negative() { -1.0 } else { 1.0 }));
        }
        let t = text.trim_matches(is_pg_space);
        let g: f32 = t
            .parse()
            .map_err(|_| format!("invalid real: \"{}\"", shown(text)))?;
        if g.is_infinite() || g == 0.0 {
            return Err(format!("\"{}\" is out of range for type real", shown(text)));
        }
        Ok(g)
    }

    fn integer(&self, text: &str, min: i64, max: i64) -> Result<i64, CastError> {
        let range = || {
            format!(
                "value \"{}\" is out of range for {}",
                shown(text),
                self.to.sql()
            )
        };
        match self.from {
            Kind::Float | Kind::Real => {
                // float8_int2/4/8 and float4_int2/4/8: rint (half to even), then
                // min <= n < -min; a float4 widens to a double exactly, so rounding the double
                // rounds the float4.
                let f = if self.from == Kind::Real {
                    f64::from(self.float4(text)?)
                } else {
                    parse_float(text)
                        .ok_or_else(|| format!("invalid double precision: \"{}\"", shown(text)))?
                }
                .round_ties_even();
                if f.is_nan() || f < min as f64 || f >= -(min as f64) {
                    return Err(range());
                }
                Ok(f as i64)
            }
            Kind::Exact => {
                let n = round_decimal(text)
                    .ok_or_else(|| format!("invalid number: \"{}\"", shown(text)))?;
                let n = n.ok_or_else(range)?;
                if n < i128::from(min) || n > i128::from(max) {
                    return Err(range());
                }
                Ok(n as i64)
            }
            Kind::Bool => match parse_bool(text) {
                Some(b) => Ok(i64::from(b)),
                None => Err(format!("invalid boolean: \"{}\"", shown(text))),
            },
            _ => {
                let t = text.trim_matches(is_pg_space);
                let digits = t.strip_prefix(['-', '+']).unwrap_or(t);
                if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(format!(
                        "invalid input syntax for type {}: \"{}\"",
                        self.to.sql(),
                        shown(text)
                    ));
                }
                parse_int(text, min, max).ok_or_else(range)
            }
        }
    }
}

/// The whitespace PostgreSQL's input functions skip (`isspace` in the C locale).
fn is_pg_space(c: char) -> bool {
    matches!(c, ' ' | '\t' | '\n' | '\r' | '\x0b' | '\x0c')
}

fn shown(s: &str) -> String {
    crate::reject::shorten(s)
}

/// An integer as `int4in` reads it (optional spaces, an optional sign, decimal digits), from
/// `i64::MIN` to `u64::MAX` (MySQL's unsigned bigint).
fn parse_integer(text: &str) -> Option<i128> {
    let t = text.trim_matches(is_pg_space);
    let (neg, digits) = match t.as_bytes().first() {
        Some(b'-') => (true, &t[1..]),
        Some(b'+') => (false, &t[1..]),
        _ => (false, t),
    };
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut n: i128 = 0;
    for b in digits.bytes() {
        n = n * 10 + i128::from(b - b'0');
        if n > i128::from(u64::MAX) {
            return None;
        }
    }
    let n = if neg { -n } else { n };
    (n >= i128::from(i64::MIN)).then_some(n)
}

/// [`parse_integer`] within `min..=max`.
fn parse_int(text: &str, min: i64, max: i64) -> Option<i64> {
    let n = parse_integer(text)?;
    (n >= i128::from(min) && n <= i128::from(max)).then_some(n as i64)
}

/// `boolin`: `t`/`true`/`y`/`yes`/`on`/`1` and their opposites, any case, any unique prefix
/// of the words, spaces around.
pub fn parse_bool(text: &str) -> Option<bool> {
    let t = text.trim_matches(is_pg_space).to_ascii_lowercase();
    let prefix = |word: &str, min: usize| t.len() >= min && word.starts_with(t.as_str());
    match t.as_bytes().first()? {
        b't' if prefix("true", 1) => Some(true),
        b'y' if prefix("yes", 1) => Some(true),
        b'f' if prefix("false", 1) => Some(false),
        b'n' if prefix("no", 1) => Some(false),
        b'o' if prefix("on", 2) => Some(true),
        b'o' if prefix("off", 2) => Some(false),
        b'1' if t == "1" => Some(true),
        b'0' if t == "0" => Some(false),
        _ => None,
    }
}

/// A decimal number split into its digits (no leading zeros) and a power of ten.
struct Decimal {
    negative: bool,
    /// Significant digits, ASCII, without leading zeros (empty for zero).
    digits: Vec<u8>,
    /// The value is `digits * 10^exp`.
    exp: i64,
    /// Digits written after the point minus the exponent: `numeric`'s display scale.
    scale: i64,
}

enum Special {
    NaN,
    Inf(bool),
}

/// `numeric_in`'s syntax: spaces, sign, digits with one optional point, optional exponent;
/// or NaN / Infinity.
fn parse_decimal(text: &str) -> Result<Decimal, Option<Special>> {
    let t = text.trim_matches(is_pg_space);
    let lower = t.to_ascii_lowercase();
    match lower.as_str() {
        "nan" => return Err(Some(Special::NaN)),
        "infinity" | "+infinity" | "inf" | "+inf" => return Err(Some(Special::Inf(false))),
        "-infinity" | "-inf" => return Err(Some(Special::Inf(true))),
        _ => {}
    }
    let b = t.as_bytes();
    let (negative, mut i) = match b.first() {
        Some(b'-') => (true, 1),
        Some(b'+') => (false, 1),
        _ => (false, 0),
    };
    let mut digits = Vec::new();
    let mut frac = 0i64;
    let mut seen_digit = false;
    let mut seen_point = false;
    while i < b.len() {
        match b[i] {
            d @ b'0'..=b'9' => {
                seen_digit = true;
                if !(digits.is_empty() && d == b'0') {
                    digits.push(d);
                }
                if seen_point {
                    frac += 1;
                }
            }
            b'.' if !seen_point => seen_point = true,
            _ => break,
        }
        i += 1;
    }
    if !seen_digit {
        return Err(None);
    }
    let mut exp = 0i64;
    if i < b.len() && (b[i] == b'e' || b[i] == b'E') {
        let rest = &t[i + 1..];
        let ok = !rest.is_empty()
            && rest
                .strip_prefix(['-', '+'])
                .unwrap_or(rest)
                .bytes()
                .all(|c| c.is_ascii_digit());
        if !ok {
            return Err(None);
        }
        exp = rest.parse::<i64>().map_err(|_| None)?;
        if exp.abs() > 1000 {
            return Err(None);
        }
        i = b.len();
    }
    if i != b.len() {
        return Err(None);
    }
    // digits holds the significant digits; the value is digits * 10^(exp - frac), once the
    // leading zeros (dropped) are accounted for by the length alone.
    Ok(Decimal {
        negative,
        digits,
        exp: exp - frac,
        scale: (frac - exp).max(0),
    })
}

/// Rounds `digits * 10^exp` to `scale` digits after the point, half away from zero as numeric
/// does; returns the digits of the rounded value times 10^-scale.
fn round_digits(d: &Decimal, scale: i64) -> Vec<u8> {
    // Number of digits to keep: those at positions >= 10^-scale.
    let drop = -scale - d.exp; // how many trailing digits fall below 10^-scale
    if drop <= 0 {
        let mut out = d.digits.clone();
        out.extend(std::iter::repeat_n(b'0', (-drop) as usize));
        return out;
    }
    let drop = drop as usize;
    if drop > d.digits.len() {
        return Vec::new();
    }
    let keep = d.digits.len() - drop;
    let mut out = d.digits[..keep].to_vec();
    if d.digits[keep] >= b'5' {
        let mut i = out.len();
        loop {
            if i == 0 {
                out.insert(0, b'1');
                break;
            }
            i -= 1;
            if out[i] == b'9' {
                out[i] = b'0';
            } else {
                out[i] += 1;
                break;
            }
        }
    }
    while out.first() == Some(&b'0') {
        out.remove(0);
    }
    out
}

/// A numeric rounded to an integer (half away from zero): `Some(Some(n))`, `Some(None)` when
/// out of any range, `None` when it is no number.
fn round_decimal(text: &str) -> Option<Option<i128>> {
    let d = match parse_decimal(text) {
        Ok(d) => d,
        Err(Some(_)) => return Some(None),
        Err(None) => return None,
    };
    let digits = round_digits(&d, 0);
    if digits.len() > 20 {
        return Some(None);
    }
    let mut n: i128 = 0;
    for c in digits {
        n = n * 10 + i128::from(c - b'0');
    }
    Some(Some(if d.negative { -n } else { n }))
}

fn put_numeric(buf: &mut Vec<u8>, text: &str, typmod: Option<(u32, u32)>) -> Result<(), CastError> {
    let d = match parse_decimal(text) {
        Ok(d) => d,
        Err(None) => return Err(format!("invalid numeric: \"{}\"", shown(text))),
        Err(Some(Special::NaN)) => {
            v::put_numeric_special(buf, v::NumericSpecial::NaN);
            return Ok(());
        }
        Err(Some(Special::Inf(neg))) => {
            if let Some((p, s)) = typmod {
                return Err(format!(
                    "numeric field overflow: numeric({p},{s}) cannot hold an infinite value"
                ));
            }
            let which = if neg {
                v::NumericSpecial::NegInfinity
            } else {
                v::NumericSpecial::Infinity
            };
            v::put_numeric_special(buf, which);
            return Ok(());
        }
    };
    let scale = match typmod {
        Some((_, s)) => i64::from(s),
        None => d.scale,
    };
    let digits = round_digits(&d, scale);
    if let Some((p, s)) = typmod {
        let int_digits = digits.len() as i64 - i64::from(s);
        if int_digits > i64::from(p) - i64::from(s) {
            return Err(format!(
                "numeric field overflow: \"{}\" does not fit numeric({p},{s})",
                shown(text)
            ));
        }
    }
    // Render as plain decimal text with exactly `scale` digits after the point.
    let scale = scale as usize;
    let mut s = String::with_capacity(digits.len() + scale + 3);
    if d.negative && !digits.is_empty() {
        s.push('-');
    }
    if digits.len() > scale {
        s.push_str(std::str::from_utf8(&digits[..digits.len() - scale]).unwrap_or("0"));
    } else {
        s.push('0');
    }
    if scale > 0 {
        s.push('.');
        for _ in digits.len()..scale {
            s.push('0');
        }
        let from = digits.len().saturating_sub(scale);
        s.push_str(std::str::from_utf8(&digits[from..]).unwrap_or(""));
    }
    v::put_numeric_str(buf, &s).map_err(|e| e.0)
}

/// `float8_numeric`'s (`digits` 15) or `float4_numeric`'s (`digits` 6) text for a value:
/// `%.*g`, the value rounded to that many significant digits, trailing zeros dropped (they
/// would count in numeric's display scale).
fn float_numeric_text(f: f64, digits: usize) -> String {
    if f.is_nan() {
        return "NaN".into();
    }
    if f.is_infinite() {
        return if f < 0.0 { "-Infinity" } else { "Infinity" }.into();
    }
    // `{:.*e}` rounds the exact binary value, half to even as printf does.
    let s = format!("{f:.*e}", digits.saturating_sub(1));
    let (mantissa, exp) = s.split_once('e').unwrap_or((&s, "0"));
    let mantissa = mantissa.trim_end_matches('0').trim_end_matches('.');
    format!("{mantissa}e{exp}")
}

/// `float8in`: decimal or exponent syntax, `NaN`, `Infinity`, `inf`, spaces around; values
/// beyond the range of a double (or that underflow to zero) are errors.
fn parse_float(text: &str) -> Option<f64> {
    let t = text.trim_matches(is_pg_space);
    let lower = t.to_ascii_lowercase();
    match lower.as_str() {
        // strtod keeps the sign of a NaN.
        "nan" | "+nan" => return Some(f64::NAN),
        "-nan" => return Some(-f64::NAN),
        "infinity" | "+infinity" | "inf" | "+inf" => return Some(f64::INFINITY),
        "-infinity" | "-inf" => return Some(f64::NEG_INFINITY),
        _ => {}
    }
    // Rust also reads "infinity" spellings and "nan" handled above; the rest must be a number.
    if !t
        .bytes()
        .all(|b| b.is_ascii_digit() || matches!(b, b'.' | b'e' | b'E' | b'+' | b'-'))
    {
        return None;
    }
    let f: f64 = t.parse().ok()?;
    if f.is_infinite() {
        return None;
    }
    if f == 0.0 && t.bytes().any(|b| (b'1'..=b'9').contains(&b)) {
        // Underflow: PostgreSQL refuses values that round to zero. The digits before an
        // exponent decide whether the value is zero.
        let mantissa = t.split(['e', 'E']).next().unwrap_or("");
        if mantissa.bytes().any(|b| (b'1'..=b'9').contains(&b)) {
            return None;
        }
    }
    Some(f)
}

/// `uuid_in`: 32 hex digits, a hyphen allowed after any group of four, optional braces.
fn parse_uuid(text: &str) -> Option<[u8; 16]> {
    let mut s = text.as_bytes();
    let braces = s.first() == Some(&b'{');
    if braces {
        s = &s[1..];
    }
    let mut out = [0u8; 16];
    for (i, byte) in out.iter_mut().enumerate() {
        if s.len() < 2 {
            return None;
        }
        let hi = (s[0] as char).to_digit(16)?;
        let lo = (s[1] as char).to_digit(16)?;
        *byte = (hi * 16 + lo) as u8;
        s = &s[2..];
        if s.first() == Some(&b'-') && i % 2 == 1 && i < 15 {
            s = &s[1..];
        }
    }
    if braces {
        if s.first() != Some(&b'}') {
            return None;
        }
        s = &s[1..];
    }
    s.is_empty().then_some(out)
}

/// JSON that PostgreSQL's `json` input accepts (syntax only: like `json`, serde_json takes
/// any number and unpaired surrogate escapes when it builds no value, and the same four
/// whitespace characters, not `\f` nor `\v`), and for `jsonb` only what it can store.
pub fn check_json(text: &str, jsonb: bool) -> Result<(), CastError> {
    serde_json::from_str::<serde::de::IgnoredAny>(text)
        .map_err(|e| format!("invalid JSON: {e}"))?;
    if jsonb && !jsonb_storable(text) {
        let why = "JSON holds \\u0000, an unpaired surrogate or a number beyond numeric";
        return Err(format!("{why}, which jsonb cannot store"));
    }
    Ok(())
}

/// Whether valid JSON text decodes to `jsonb`: no `\u0000` escape, every surrogate escape a
/// high one followed at once by a low one, and numbers that `numeric` holds (refused here
/// from 1000 characters or an exponent beyond 1000, well before numeric's own limits).
fn jsonb_storable(text: &str) -> bool {
    let b = text.as_bytes();
    let mut i = 0;
    let mut in_string = false;
    let mut high = false;
    while i < b.len() {
        if !in_string {
            if b[i] == b'-' || b[i].is_ascii_digit() {
                let len = b[i..]
                    .iter()
                    .position(|c| !matches!(c, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
                    .unwrap_or(b.len() - i);
                if len > 1000 || parse_decimal(&text[i..i + len]).is_err() {
                    return false;
                }
                i += len;
            } else {
                in_string = b[i] == b'"';
                i += 1;
            }
            continue;
        }
        let unit = match b[i] {
            b'\\' if b.get(i + 1) == Some(&b'u') => {
                let hex = text.get(i + 2..i + 6).unwrap_or("");
                i += 6;
                u16::from_str_radix(hex, 16).ok()
            }
            c => {
                in_string = c != b'"';
                i += if c == b'\\' { 2 } else { 1 };
                None
            }
        };
        match unit {
            Some(0) => return false,
            Some(0xD800..=0xDBFF) if !high => high = true,
            Some(0xDC00..=0xDFFF) if high => high = false,
            Some(0xD800..=0xDFFF) => return false,
            _ if high => return false,
            _ => {}
        }
    }
    !high
}

/// Reads `n` ASCII digits at the start of `s`.
fn digits(s: &str, n: usize) -> Option<(u32, &str)> {
    if s.len() < n || !s.as_bytes()[..n].iter().all(u8::is_ascii_digit) {
        return None;
    }
    Some((s[..n].parse().ok()?, &s[n..]))
}

/// `YYYY-MM-DD` at the start of `s`: days since 2000-01-01 and the rest.
fn date_prefix(s: &str) -> Option<(i32, &str)> {
    let (y, s) = digits(s, 4)?;
    let s = s.strip_prefix('-')?;
    let (m, s) = digits(s, 2)?;
    let s = s.strip_prefix('-')?;
    let (d, s) = digits(s, 2)?;
    if y == 0 {
        return None;
    }
    let date = jiff::civil::Date::new(y as i16, m as i8, d as i8).ok()?;
    let epoch = jiff::civil::date(2000, 1, 1);
    let days = (date - epoch).get_days();
    Some((days, s))
}

/// `HH:MM[:SS[.ffffff]]` at the start of `s`: microseconds since midnight and the rest.
fn time_prefix(s: &str) -> Option<(i64, &str)> {
    let (h, s) = digits(s, 2)?;
    let s = s.strip_prefix(':')?;
    let (mi, mut s) = digits(s, 2)?;
    let mut sec = 0;
    let mut micros = 0u32;
    if let Some(rest) = s.strip_prefix(':') {
        let (se, rest) = digits(rest, 2)?;
        sec = se;
        s = rest;
        if let Some(rest) = s.strip_prefix('.') {
            let n = rest.bytes().take_while(u8::is_ascii_digit).count();
            if n == 0 || n > 6 {
                // PostgreSQL rounds beyond microseconds; such values are refused here.
                return None;
            }
            let (f, rest) = digits(rest, n)?;
            micros = f * 10u32.pow(6 - n as u32);
            s = rest;
        }
    }
    // 24:00:00 is a valid time of day in PostgreSQL (the end of the day).
    let ok = (h < 24 && mi < 60 && sec < 60) || (h == 24 && mi == 0 && sec == 0 && micros == 0);
    if !ok {
        return None;
    }
    let us =
        ((i64::from(h) * 60 + i64::from(mi)) * 60 + i64::from(sec)) * 1_000_000 + i64::from(micros);
    Some((us, s))
}

/// A zone suffix (`Z`, `+HH`, `+HH:MM`, `+HHMM`, `-...`) as seconds east of UTC.
fn offset_suffix(s: &str) -> Option<i32> {
    if s == "Z" || s == "z" {
        return Some(0);
    }
    let sign = match s.as_bytes().first()? {
        b'+' => 1,
        b'-' => -1,
        _ => return None,
    };
    let s = &s[1..];
    let (h, rest) = digits(s, 2)?;
    let mi = match rest {
        "" => 0,
        r => {
            let r = r.strip_prefix(':').unwrap_or(r);
            let (m, r) = digits(r, 2)?;
            if !r.is_empty() {
                return None;
            }
            m
        }
    };
    if h > 15 || mi >= 60 {
        return None;
    }
    Some(sign * (h as i32 * 3600 + mi as i32 * 60))
}

/// `date_in` for ISO dates (a time part is read and ignored, as PostgreSQL does), and
/// `infinity`/`-infinity`.
fn parse_date(text: &str) -> Option<i32> {
    let t = text.trim_matches(is_pg_space);
    match t.to_ascii_lowercase().as_str() {
        "infinity" => return Some(i32::MAX),
        "-infinity" => return Some(i32::MIN),
        "epoch" => return Some(-10_957),
        _ => {}
    }
    let (days, rest) = date_prefix(t)?;
    if rest.is_empty() {
        return Some(days);
    }
    let rest = rest.strip_prefix([' ', 'T'])?;
    let (_, rest) = time_prefix(rest)?;
    let rest = rest.trim_start_matches(' ');
    (rest.is_empty() || offset_suffix(rest).is_some()).then_some(days)
}

/// ISO timestamps: `YYYY-MM-DD[( |T)HH:MM[:SS[.ffffff]]][zone]` and `infinity`/`-infinity`.
/// With `zone` (timestamptz) a naive value is in that zone and a suffix is honoured; without
/// (timestamp) only a UTC suffix is accepted, since `timestamp` input ignores suffixes while
/// a cast from `timestamptz` would shift: either could be meant.
fn parse_timestamp(text: &str, zone: Option<&jiff::tz::TimeZone>, tz: bool) -> Option<i64> {
    let t = text.trim_matches(is_pg_space);
    match t.to_ascii_lowercase().as_str() {
        "infinity" => return Some(i64::MAX),
        "-infinity" => return Some(i64::MIN),
        "epoch" if !tz => return Some(-10_957 * 86_400_000_000),
        _ => {}
    }
    let (days, rest) = date_prefix(t)?;
    let (tod, rest) = match rest.strip_prefix([' ', 'T']) {
        Some(r) => time_prefix(r)?,
        // PostgreSQL reads `2020-01-01-05` as a malformed date, not a date and an offset.
        None if rest.starts_with('-') => return None,
        None => (0, rest),
    };
    let rest = rest.trim_start_matches(' ');
    let local = i64::from(days) * 86_400_000_000 + tod;
    let offset = if rest.is_empty() {
        None
    } else {
        Some(offset_suffix(rest)?)
    };
    if !tz {
        return match offset {
            None | Some(0) => Some(local),
            Some(_) => None,
        };
    }
    if let Some(off) = offset {
        return Some(local - i64::from(off) * 1_000_000);
    }
    local_in_zone(local, zone?)
}

/// A naive timestamp (microseconds since 2000-01-01, as `timestamp` sends it) read in `zone`:
/// the instant, as `timestamp AT TIME ZONE zone` gives it. `infinity` stays `infinity`;
/// `None` beyond the years jiff handles (-9999..=9999).
pub fn naive_in_zone(local: i64, zone: &jiff::tz::TimeZone) -> Option<i64> {
    if local == i64::MAX || local == i64::MIN {
        return Some(local);
    }
    // PostgreSQL's timestamp range (MIN_TIMESTAMP, END_TIMESTAMP): an instant a zone shifts
    // past either end would fail the whole COPY.
    const MIN: i64 = -211_813_488_000_000_000;
    const END: i64 = 9_223_371_331_200_000_000;
    local_in_zone(local, zone).filter(|us| (MIN..END).contains(us))
}

fn local_in_zone(local: i64, zone: &jiff::tz::TimeZone) -> Option<i64> {
    // The civil time in the zone: PostgreSQL reads a time in a DST gap with the offset before
    // the gap, and an ambiguous one (a fold) as the later instant, standard time.
    let epoch_2000 = 946_684_800i64;
    let secs = local.div_euclid(1_000_000) + epoch_2000;
    let sub = local.rem_euclid(1_000_000);
    let ts = jiff::Timestamp::from_second(secs).ok()?;
    // Plain timestamps and offsets, no `Zoned` (which clones the zone) per value.
    let civil = jiff::tz::Offset::UTC.to_datetime(ts);
    let amb = zone.to_ambiguous_timestamp(civil);
    let instant = match amb.offset() {
        jiff::tz::AmbiguousOffset::Fold { .. } => amb.later().ok()?,
        _ => amb.compatible().ok()?,
    };
    Some((instant.as_second() - epoch_2000) * 1_000_000 + sub)
}

/// `byteain`: `\x` and hex digit pairs (spaces between pairs allowed), or the escape format
/// (`\\`, `\ooo`, other bytes as they are).
fn parse_bytea(text: &str, out: &mut Vec<u8>) -> Option<()> {
    let b = text.as_bytes();
    if let Some(hex) = text.strip_prefix("\\x") {
        // Spaces may stand between pairs of digits, not inside one.
        let mut it = hex.bytes();
        while let Some(hi) = it.next() {
            if matches!(hi, b' ' | b'\t' | b'\n' | b'\r') {
                continue;
            }
            let lo = it.next()?;
            let hi = (hi as char).to_digit(16)?;
            let lo = (lo as char).to_digit(16)?;
            out.push((hi * 16 + lo) as u8);
        }
        return Some(());
    }
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'\\' {
            out.push(b[i]);
            i += 1;
        } else if b.get(i + 1) == Some(&b'\\') {
            out.push(b'\\');
            i += 2;
        } else {
            let o = b.get(i + 1..i + 4)?;
            if !(b'0'..=b'3').contains(&o[0]) || !o[1..].iter().all(|c| (b'0'..=b'7').contains(c)) {
                return None;
            }
            out.push((o[0] - b'0') * 64 + (o[1] - b'0') * 8 + (o[2] - b'0'));
            i += 4;
        }
    }
    Some(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cast(to: &str, from: Kind, text: &str) -> Result<Vec<u8>, String> {
        let c = Cast {
            to: TargetType::parse(to).ok_or("type")?,
            from,
            zone: None,
            truncate: false,
        };
        let mut buf = Vec::new();
        c.put(&mut buf, text)?;
        Ok(buf[4..].to_vec())
    }

    #[test]
    fn reals_cast_the_float4_value() {
        // 123456790528 is the float4 nearest 123456789012; its shortest text reads as a
        // double 123456790000.
        assert_eq!(
            cast("bigint", Kind::Real, "1.2345679e+11"),
            Ok(123_456_790_528i64.to_be_bytes().to_vec())
        );
        assert_eq!(
            cast("integer", Kind::Real, "9.8765434e+08"),
            Ok(987_654_336i32.to_be_bytes().to_vec())
        );
        assert_eq!(
            cast("integer", Kind::Real, "2.5"),
            Ok(2i32.to_be_bytes().to_vec())
        );
        assert!(cast("integer", Kind::Real, "2.1474836e+09").is_err());
        assert_eq!(
            cast("double precision", Kind::Real, "0.1"),
            Ok(f64::from(0.1f32).to_be_bytes().to_vec())
        );
        assert_eq!(
            cast("numeric", Kind::Real, "1.2345679e+11"),
            cast("numeric", Kind::Exact, "123457000000")
        );
        assert!(Kind::Real.casts_to(TargetType::Int8));
        assert!(!Kind::Real.casts_to(TargetType::Bool));
        assert_eq!(Kind::of_sql("real"), Kind::Real);
    }

    #[test]
    fn integers_follow_int4in_and_numeric_rounding() {
        assert_eq!(
            cast("integer", Kind::Text, " 12 "),
            Ok(12i32.to_be_bytes().to_vec())
        );
        assert!(cast("integer", Kind::Text, "12.5").is_err());
        assert!(cast("smallint", Kind::Text, "40000").is_err());
        assert_eq!(
            cast("integer", Kind::Exact, "2.5"),
            Ok(3i32.to_be_bytes().to_vec())
        );
        assert_eq!(
            cast("integer", Kind::Exact, "-2.5"),
            Ok((-3i32).to_be_bytes().to_vec())
        );
        assert_eq!(
            cast("integer", Kind::Float, "2.5"),
            Ok(2i32.to_be_bytes().to_vec())
        );
        assert_eq!(
            cast("integer", Kind::Float, "3.5"),
            Ok(4i32.to_be_bytes().to_vec())
        );
        assert_eq!(
            cast("bigint", Kind::Float, "1e3"),
            Ok(1000i64.to_be_bytes().to_vec())
        );
    }

    #[test]
    fn booleans_follow_boolin() {
        for (t, b) in [
            ("  tR ", true),
            ("of", false),
            ("on", true),
            ("1", true),
            ("NO", false),
        ] {
            assert_eq!(parse_bool(t), Some(b), "{t}");
        }
        for t in ["o", "2", "", "truex"] {
            assert_eq!(parse_bool(t), None, "{t}");
        }
        assert_eq!(cast("boolean", Kind::Integer, "7"), Ok(vec![1]));
        assert_eq!(cast("boolean", Kind::Integer, "0"), Ok(vec![0]));
    }

    #[test]
    fn numeric_rounds_half_away_from_zero_to_the_scale() {
        let mut want = Vec::new();
        v::put_numeric_str(&mut want, "12.35").unwrap_or_default();
        let mut got = Vec::new();
        let c = Cast {
            to: TargetType::Numeric(Some((14, 2))),
            from: Kind::Text,
            zone: None,
            truncate: false,
        };
        assert!(c.put(&mut got, "12.345").is_ok());
        assert_eq!(got, want);
        assert!(c.put(&mut got, "1e13").is_err());
        assert!(c.put(&mut got, "Infinity").is_err());
        assert!(c.put(&mut got, "1.2.3").is_err());
    }

    #[test]
    fn uuids_follow_uuid_in() {
        assert!(parse_uuid("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11").is_some());
        assert!(parse_uuid("{a0eebc999c0b4ef8bb6d6bb9bd380a11}").is_some());
        assert!(parse_uuid("a0ee-bc99-9c0b-4ef8-bb6d-6bb9-bd38-0a11").is_some());
        assert!(parse_uuid("a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1").is_none());
        assert!(parse_uuid("a0e-ebc99-9c0b-4ef8-bb6d-6bb9bd380a11").is_none());
    }

    #[test]
    fn timestamps_in_a_zone() -> Result<(), String> {
        let paris = jiff::tz::TimeZone::get("Europe/Paris").map_err(|e| e.to_string())?;
        let us = parse_timestamp("2020-01-01 10:00:00", Some(&paris), true).ok_or("parse")?;
        let utc = parse_timestamp("2020-01-01 09:00:00", None, false).ok_or("parse")?;
        assert_eq!(us, utc);
        // Fall back in Paris: 02:30 happens twice; PostgreSQL takes the later (UTC+1).
        let fold = parse_timestamp("2020-10-25 02:30:00", Some(&paris), true).ok_or("fold")?;
        let want = parse_timestamp("2020-10-25 01:30:00", None, false).ok_or("utc")?;
        assert_eq!(fold, want);
        assert_eq!(
            parse_timestamp("2020-01-01 10:00:00+02", None, true),
            parse_timestamp("2020-01-01 08:00:00", None, false)
        );
        Ok(())
    }

    fn numeric(text: &str) -> Vec<u8> {
        let mut buf = Vec::new();
        v::put_numeric_str(&mut buf, text).unwrap_or_default();
        buf[4..].to_vec()
    }

    // The tests below each pin a value the PostgreSQL oracle (tests/integration/cast_oracle.rs)
    // found cast differently than the server does.

    #[test]
    fn text_with_nul_is_rejected() {
        for to in ["text", "varchar(3)", "bytea", "json", "integer"] {
            assert!(cast(to, Kind::Text, "a\0b").is_err(), "{to}");
        }
    }

    #[test]
    fn integer_sources_are_integers() {
        assert!(cast("numeric", Kind::Integer, "0e0").is_err());
        assert!(cast("double precision", Kind::Integer, "-1773361452.55").is_err());
        assert!(cast("real", Kind::Integer, "-702E6").is_err());
        assert_eq!(
            cast("double precision", Kind::Integer, "-0"),
            Ok(0f64.to_be_bytes().to_vec())
        );
        // MySQL's unsigned bigint, beyond bigint, is still an integer.
        assert_eq!(
            cast("numeric", Kind::Integer, "18446744073709551615"),
            Ok(numeric("18446744073709551615"))
        );
        assert_eq!(
            cast("boolean", Kind::Integer, "18446744073709551615"),
            Ok(vec![1])
        );
    }

    #[test]
    fn double_to_integer_rounds_the_double() {
        // 2.5000000000000001 is the double 2.5, which rint takes to 2.
        assert_eq!(
            cast("bigint", Kind::Float, "2.5000000000000001"),
            Ok(2i64.to_be_bytes().to_vec())
        );
        assert_eq!(
            cast("bigint", Kind::Float, " -2768487401940849938"),
            Ok((-2_768_487_401_940_850_176i64).to_be_bytes().to_vec())
        );
        assert_eq!(
            cast("integer", Kind::Float, "-11.4999999999999999999"),
            Ok((-12i32).to_be_bytes().to_vec())
        );
        // 2^63 as a double is out of bigint's range; 2e-324 is out of double's.
        assert!(cast("bigint", Kind::Float, "9223372036854775807").is_err());
        assert!(cast("smallint", Kind::Float, "2e-324").is_err());
    }

    #[test]
    fn numeric_sources_have_no_negative_zero_nor_signed_nan() {
        assert_eq!(
            cast("double precision", Kind::Exact, "-0"),
            Ok(0f64.to_be_bytes().to_vec())
        );
        assert_eq!(
            cast("real", Kind::Exact, "-0.0"),
            Ok(0f32.to_be_bytes().to_vec())
        );
        assert!(cast("double precision", Kind::Exact, "+NaN").is_err());
        // float8in itself keeps both signs.
        assert_eq!(
            cast("double precision", Kind::Text, "-0"),
            Ok((-0f64).to_be_bytes().to_vec())
        );
        assert_eq!(
            cast("double precision", Kind::Text, "-NaN"),
            Ok(vec![0xff, 0xf8, 0, 0, 0, 0, 0, 0])
        );
        assert_eq!(cast("real", Kind::Text, "-NaN"), Ok(vec![0xff, 0xc0, 0, 0]));
        assert_eq!(
            cast("real", Kind::Float, "-NaN"),
            Ok(vec![0xff, 0xc0, 0, 0])
        );
    }

    #[test]
    fn double_to_numeric_keeps_15_digits() {
        assert_eq!(
            cast("numeric", Kind::Float, "18446744073709551615"),
            Ok(numeric("18446744073709600000"))
        );
        assert_eq!(
            cast("numeric", Kind::Float, "1234567890123455"),
            Ok(numeric("1234567890123460"))
        );
        assert_eq!(
            cast("numeric", Kind::Float, "1.5e-7"),
            Ok(numeric("0.00000015"))
        );
        assert_eq!(
            cast("numeric(3,0)", Kind::Float, "0.49999999999999994"),
            Ok(numeric("1"))
        );
        assert!(cast("numeric", Kind::Float, "1e-400").is_err());
    }

    #[test]
    fn double_to_real_rounds_twice() {
        // Halfway between 1 and the next float as a double: float8::float4 ties to even,
        // float4in rounds the decimal text, a little above halfway, up.
        assert_eq!(
            cast("real", Kind::Float, "1.0000000596046448"),
            Ok(vec![0x3f, 0x80, 0, 0])
        );
        assert_eq!(
            cast("real", Kind::Text, "1.0000000596046448"),
            Ok(vec![0x3f, 0x80, 0, 1])
        );
    }

    #[test]
    fn json_follows_json_in() {
        assert!(cast("json", Kind::Text, "\x0c1").is_err());
        assert!(cast("json", Kind::Text, "1\x0b").is_err());
        assert!(cast("json", Kind::Text, " [1e400]\r\n").is_ok());
        assert!(cast("json", Kind::Text, "\"\\ud800\"").is_ok());
        assert!(cast("jsonb", Kind::Text, "\"\\ud800\"").is_err());
        assert!(cast("jsonb", Kind::Text, "\"\\ud83d\\ude00\"").is_ok());
        assert!(cast("jsonb", Kind::Text, "\"\\\\u0000\"").is_ok());
        // serde_json keeps the last of two keys; jsonb_in reads (and refuses) the first.
        assert!(cast("jsonb", Kind::Text, "{\"b\":\"\\u0000\",\"b\":1}").is_err());
        assert!(cast("jsonb", Kind::Text, "123456789012e4567890123").is_err());
        assert!(cast("json", Kind::Text, "123456789012e4567890123").is_ok());
    }

    #[test]
    fn a_date_followed_by_minus_is_no_offset() {
        assert!(cast("timestamptz", Kind::Text, "2200-06-01-04:00").is_err());
        assert!(cast("timestamp", Kind::Text, "2020-01-01-00").is_err());
        assert_eq!(
            cast("timestamptz", Kind::Text, "2020-01-01+02"),
            cast("timestamp", Kind::Text, "2019-12-31 22:00")
        );
    }

    #[test]
    fn bytea_hex_and_escape() {
        assert!(parse_bytea("\\x8eD f", &mut Vec::new()).is_none());
        assert!(parse_bytea("\\x 0 0", &mut Vec::new()).is_none());
        let mut out = Vec::new();
        assert!(parse_bytea("\\x00ff 10", &mut out).is_some());
        assert_eq!(out, vec![0, 255, 16]);
        out.clear();
        assert!(parse_bytea("a\\\\b\\001", &mut out).is_some());
        assert_eq!(out, b"a\\b\x01".to_vec());
        assert!(parse_bytea("\\x0", &mut Vec::new()).is_none());
    }
}
