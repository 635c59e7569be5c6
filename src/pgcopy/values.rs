//! Binary COPY encodings of single values, for building PostgreSQL tuples from values that
//! did not come from PostgreSQL (MySQL rows).
//!
//! Every `put_*` function appends one whole field to a tuple buffer: the 4-byte big-endian
//! length, then the payload in the type's `*_recv` format; NULL is length -1 without payload.
//! The functions write straight into the buffer and never allocate (apart from the buffer
//! growing), because they run once per value on the copy's hot path. A function that returns a
//! [`ValueError`] appends nothing when it fails, so the caller can reject the row and carry on
//! with the same buffer after truncating it to the row's start.
//!
//! Values PostgreSQL would refuse, or would silently change, are rejected here rather than
//! adjusted: a zero date or `2019-02-29` is an error, never `2019-03-01`.

/// Why a value cannot be encoded (the message names the value and its problem, e.g.
/// "day 0 in 2020-05-00").
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ValueError(pub String);

/// Microseconds in one day.
const DAY_MICROS: i64 = 86_400_000_000;

/// Days from 1970-01-01 (the civil-days epoch) to 2000-01-01 (PostgreSQL's epoch).
const PG_EPOCH_CIVIL_DAYS: i64 = 10_957;

/// The `numeric` sign word of zero and positive values.
const NUMERIC_POS: u16 = 0x0000;
/// The `numeric` sign word of negative values.
const NUMERIC_NEG: u16 = 0x4000;

/// The largest `numeric` display scale: the scale shares a 16-bit word with flags.
const NUMERIC_DSCALE_MAX: usize = 0x3FFF;

/// `numeric_recv` refuses more base-10000 digits than NUMERIC_MAX_PRECISION (1000) plus
/// NUMERIC_MAX_RESULT_SCALE (2000).
const NUMERIC_MAX_DIGITS: i64 = 3000;

/// The longest bit string `varbit_recv` accepts (VARBITMAXLEN).
const VARBIT_MAX_BITS: u32 = i32::MAX as u32 - 7;

/// The OID of `text`, the element type of `text[]`.
const TEXT_OID: u32 = 25;

/// Appends a field length.
///
/// A payload longer than `i32::MAX` bytes cannot be a field (PostgreSQL's own limit is 1 GiB
/// per value). Functions that cannot return an error use [`put_unloadable`] for it instead of
/// writing a wrapped length that would desynchronise the stream.
#[inline]
fn put_len(buf: &mut Vec<u8>, len: i32) {
    buf.extend_from_slice(&len.to_be_bytes());
}

/// Appends a field PostgreSQL refuses with "invalid field size": a length below -1.
///
/// Used where a value cannot be represented but the function has no error to return (a payload
/// over 2 GiB, an interval whose microseconds overflow): the COPY then fails loudly instead of
/// loading a wrong value.
fn put_unloadable(buf: &mut Vec<u8>) {
    put_len(buf, i32::MIN);
}

/// Appends a length and `payload`, or an unloadable field when it is too long to be one.
#[inline]
fn put_sized(buf: &mut Vec<u8>, prefix: &[u8], payload: &[u8]) {
    match i32::try_from(prefix.len() + payload.len()) {
        Ok(len) => {
            put_len(buf, len);
            buf.extend_from_slice(prefix);
            buf.extend_from_slice(payload);
        }
        Err(_) => put_unloadable(buf),
    }
}

/// Reserves a length word whose value [`finish_len`] fills in once the payload is written;
/// returns where the length starts.
#[inline]
fn start_len(buf: &mut Vec<u8>) -> usize {
    let at = buf.len();
    buf.extend_from_slice(&[0; 4]);
    at
}

/// Fills in the length reserved at `at`; a payload too long for a field is replaced by an
/// unloadable field.
#[inline]
fn finish_len(buf: &mut Vec<u8>, at: usize) {
    match i32::try_from(buf.len() - at - 4) {
        Ok(len) => buf[at..at + 4].copy_from_slice(&len.to_be_bytes()),
        Err(_) => {
            buf.truncate(at);
            put_unloadable(buf);
        }
    }
}

/// NULL: length -1 and no payload.
pub fn put_null(buf: &mut Vec<u8>) {
    put_len(buf, -1);
}

/// `boolean`: one byte, 0 or 1.
pub fn put_bool(buf: &mut Vec<u8>, v: bool) {
    put_len(buf, 1);
    buf.push(u8::from(v));
}

/// `smallint`.
pub fn put_i16(buf: &mut Vec<u8>, v: i16) {
    put_len(buf, 2);
    buf.extend_from_slice(&v.to_be_bytes());
}

/// `integer`.
pub fn put_i32(buf: &mut Vec<u8>, v: i32) {
    put_len(buf, 4);
    buf.extend_from_slice(&v.to_be_bytes());
}

/// `bigint`.
pub fn put_i64(buf: &mut Vec<u8>, v: i64) {
    put_len(buf, 8);
    buf.extend_from_slice(&v.to_be_bytes());
}

/// `real`: the IEEE bits as they are, so NaN, the infinities and -0.0 survive.
pub fn put_f32(buf: &mut Vec<u8>, v: f32) {
    put_len(buf, 4);
    buf.extend_from_slice(&v.to_bits().to_be_bytes());
}

/// `double precision`: the IEEE bits as they are, so NaN, the infinities and -0.0 survive.
pub fn put_f64(buf: &mut Vec<u8>, v: f64) {
    put_len(buf, 8);
    buf.extend_from_slice(&v.to_bits().to_be_bytes());
}

/// `bytea`, and `text`, `varchar`, `char` and enum labels, whose binary form is their bytes.
///
/// For the text types the caller guarantees valid UTF-8 without NUL bytes; PostgreSQL checks
/// the encoding and would fail the whole COPY on a bad value. A payload over 2 GiB (beyond
/// PostgreSQL's 1 GiB limit anyway) is written as a field the server refuses.
pub fn put_bytes(buf: &mut Vec<u8>, v: &[u8]) {
    put_sized(buf, &[], v);
}

/// `jsonb`: the format version byte 1, then the JSON text, which the server parses.
pub fn put_jsonb(buf: &mut Vec<u8>, json_text: &[u8]) {
    put_sized(buf, &[1], json_text);
}

/// `uuid`: its 16 bytes.
pub fn put_uuid(buf: &mut Vec<u8>, v: &[u8; 16]) {
    put_len(buf, 16);
    buf.extend_from_slice(v);
}

/// Shortens a value for an error message: a bad value may be megabytes long.
fn shown(s: &str) -> String {
    const MAX: usize = 60;
    if s.chars().count() <= MAX {
        s.to_string()
    } else {
        format!("{}...", s.chars().take(MAX).collect::<String>())
    }
}

/// `numeric` from a plain decimal string as MySQL sends DECIMAL: an optional `-` or `+`,
/// digits, an optional `.` and digits, at least one digit in all (`"-00123.4500"`, `"0.000"`,
/// `".5"`, `"12."`).
///
/// The scale is kept exactly as written (`"1.50"` has display scale 2, `"12."` scale 0), so the
/// value prints in PostgreSQL as it did in MySQL, less leading zeros. Zero is never negative in
/// PostgreSQL, so `"-0.00"` becomes `0.00`. Exponents, spaces, empty strings and values beyond
/// what `numeric` can hold are a [`ValueError`].
pub fn put_numeric_str(buf: &mut Vec<u8>, s: &str) -> Result<(), ValueError> {
    let bad = |why: &str| ValueError(format!("invalid numeric \"{}\": {why}", shown(s)));
    let bytes = s.as_bytes();
    let (negative, body) = match bytes.first() {
        Some(b'-') => (true, &bytes[1..]),
        Some(b'+') => (false, &bytes[1..]),
        _ => (false, bytes),
    };
    let (int, frac) = match body.iter().position(|&b| b == b'.') {
        Some(dot) => (&body[..dot], &body[dot + 1..]),
        None => (body, &body[..0]),
    };
    if int.iter().chain(frac).any(|b| !b.is_ascii_digit()) {
        // Name the character, not the byte: it may be a non-ASCII digit. Everything before
        // it is ASCII, so the body starts on a character boundary.
        let mut dots = 0;
        let c = s[s.len() - body.len()..]
            .chars()
            .find(|&c| {
                if c == '.' {
                    dots += 1;
                    dots > 1
                } else {
                    !c.is_ascii_digit()
                }
            })
            .unwrap_or('.');
        return Err(bad(&format!(
            "unexpected {c:?}; expected digits with an optional sign and point"
        )));
    }
    if int.is_empty() && frac.is_empty() {
        return Err(bad("no digits"));
    }
    if frac.len() > NUMERIC_DSCALE_MAX {
        return Err(bad(&format!(
            "{} digits after the point, numeric allows {NUMERIC_DSCALE_MAX}",
            frac.len()
        )));
    }
    let dscale = frac.len() as u16;

    // Decimal digits are addressed by their power of ten: int[int.len() - 1] is 10^0,
    // frac[0] is 10^-1. Base-10000 digit g holds the powers 4g+3 down to 4g, so the groups
    // line up with the decimal point and need no shifting.
    let first_int = int.iter().position(|&b| b != b'0');
    let hi = match first_int {
        Some(i) => Some((int.len() - 1 - i) as i64),
        None => frac
            .iter()
            .position(|&b| b != b'0')
            .map(|j| -(j as i64) - 1),
    };
    let Some(hi) = hi else {
        // Zero: no digits, positive, weight 0, but the scale as written.
        put_len(buf, 8);
        put_numeric_header(buf, 0, 0, NUMERIC_POS, dscale);
        return Ok(());
    };
    let lo = match frac.iter().rposition(|&b| b != b'0') {
        Some(j) => -(j as i64) - 1,
        None => {
            // No fraction digits count, so the lowest nonzero digit is in the integer part.
            let i = int.iter().rposition(|&b| b != b'0').unwrap_or(0);
            (int.len() - 1 - i) as i64
        }
    };
    let weight = hi.div_euclid(4);
    let last = lo.div_euclid(4);
    if weight > i64::from(i16::MAX) {
        return Err(bad("too many digits before the point for numeric"));
    }
    let ndigits = weight - last + 1;
    if ndigits > NUMERIC_MAX_DIGITS {
        return Err(bad("too many significant digits for numeric"));
    }
    let digit = |power: i64| -> i16 {
        let b = if power >= 0 {
            int.len()
                .checked_sub(1 + power as usize)
                .map_or(b'0', |i| int[i])
        } else {
            frac.get((-power - 1) as usize).copied().unwrap_or(b'0')
        };
        i16::from(b - b'0')
    };
    // Both bounds were checked above, so the casts are exact.
    put_len(buf, 8 + 2 * ndigits as i32);
    let sign = if negative { NUMERIC_NEG } else { NUMERIC_POS };
    put_numeric_header(buf, ndigits as i16, weight as i16, sign, dscale);
    for g in (last..=weight).rev() {
        let p = 4 * g;
        let d = digit(p + 3) * 1000 + digit(p + 2) * 100 + digit(p + 1) * 10 + digit(p);
        buf.extend_from_slice(&d.to_be_bytes());
    }
    Ok(())
}

/// The four header words of a `numeric`: digit count, weight of the first digit, sign, scale.
#[inline]
fn put_numeric_header(buf: &mut Vec<u8>, ndigits: i16, weight: i16, sign: u16, dscale: u16) {
    buf.extend_from_slice(&ndigits.to_be_bytes());
    buf.extend_from_slice(&weight.to_be_bytes());
    buf.extend_from_slice(&sign.to_be_bytes());
    buf.extend_from_slice(&dscale.to_be_bytes());
}

/// `numeric` with scale 0 from a magnitude and a sign.
fn put_numeric_integer(buf: &mut Vec<u8>, negative: bool, mut v: u64) {
    // u64::MAX has 20 decimal digits: five base-10000 digits, least significant first here.
    let mut groups = [0i16; 5];
    let mut n = 0;
    while v != 0 {
        groups[n] = (v % 10_000) as i16;
        v /= 10_000;
        n += 1;
    }
    // PostgreSQL stores no trailing zero digits: 10000 is one digit 1 with weight 1.
    let low = groups[..n].iter().position(|&g| g != 0).unwrap_or(n);
    let ndigits = n - low;
    let weight = n.saturating_sub(1) as i16;
    let sign = if negative && ndigits > 0 {
        NUMERIC_NEG
    } else {
        NUMERIC_POS
    };
    put_len(buf, 8 + 2 * ndigits as i32);
    put_numeric_header(buf, ndigits as i16, weight, sign, 0);
    for g in groups[low..n].iter().rev() {
        buf.extend_from_slice(&g.to_be_bytes());
    }
}

/// The `numeric` values that are not numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumericSpecial {
    /// `NaN`.
    NaN,
    /// `Infinity` (PostgreSQL 14 and later).
    Infinity,
    /// `-Infinity` (PostgreSQL 14 and later).
    NegInfinity,
}

/// `numeric` NaN or an infinity: no digits, the special sign word.
pub fn put_numeric_special(buf: &mut Vec<u8>, which: NumericSpecial) {
    let sign: u16 = match which {
        NumericSpecial::NaN => 0xC000,
        NumericSpecial::Infinity => 0xD000,
        NumericSpecial::NegInfinity => 0xF000,
    };
    put_len(buf, 8);
    put_numeric_header(buf, 0, 0, sign, 0);
}

/// `numeric` from an unsigned 64-bit integer (MySQL BIGINT UNSIGNED), exactly.
pub fn put_numeric_u64(buf: &mut Vec<u8>, v: u64) {
    put_numeric_integer(buf, false, v);
}

/// `numeric` from a signed 64-bit integer, exactly (including `i64::MIN`).
pub fn put_numeric_i64(buf: &mut Vec<u8>, v: i64) {
    put_numeric_integer(buf, v < 0, v.unsigned_abs());
}

/// What is wrong with a civil date or time; printed before the value it belongs to.
enum Invalid {
    Year(u16),
    Month(u8),
    Day { day: u8, month: u8, year: u16 },
    Hour(u8),
    Minute(u8),
    Second(u8),
    Micros(u32),
}

impl std::fmt::Display for Invalid {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        const MONTHS: [&str; 12] = [
            "January",
            "February",
            "March",
            "April",
            "May",
            "June",
            "July",
            "August",
            "September",
            "October",
            "November",
            "December",
        ];
        match *self {
            Invalid::Year(y) => write!(f, "year {y} (outside 0..9999)"),
            Invalid::Month(m) => write!(f, "month {m}"),
            Invalid::Day { day: 0, .. } => write!(f, "day 0"),
            Invalid::Day { day, month, year } => write!(
                f,
                "day {day} ({} {year} has {} days)",
                MONTHS[usize::from(month - 1)],
                days_in_month(year, month)
            ),
            Invalid::Hour(h) => write!(f, "hour {h}"),
            Invalid::Minute(m) => write!(f, "minute {m}"),
            Invalid::Second(s) => write!(f, "second {s}"),
            Invalid::Micros(us) => write!(f, "microsecond {us}"),
        }
    }
}

fn is_leap(year: u16) -> bool {
    year % 4 == 0 && (year % 100 != 0 || year % 400 == 0)
}

/// Days in `month` (1..=12) of `year`.
fn days_in_month(year: u16, month: u8) -> u8 {
    match month {
        2 if is_leap(year) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days from 2000-01-01 to a valid proleptic Gregorian date. Year 0 is the astronomical year
/// before year 1, which PostgreSQL writes `1 BC` (a leap year, as 0 is a multiple of 400).
fn days_since_2000(year: u16, month: u8, day: u8) -> Result<i32, Invalid> {
    if year > 9999 {
        return Err(Invalid::Year(year));
    }
    if !(1..=12).contains(&month) {
        return Err(Invalid::Month(month));
    }
    if day == 0 || day > days_in_month(year, month) {
        return Err(Invalid::Day { day, month, year });
    }
    // Howard Hinnant's days_from_civil: years start in March so the leap day comes last and
    // the month lengths follow the (153 m + 2) / 5 pattern.
    let (m, d) = (i64::from(month), i64::from(day));
    let y = i64::from(year) - i64::from(m <= 2);
    let era = y.div_euclid(400); // y is -1 for January and February of year 0
    let yoe = y - era * 400;
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + d - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468 - PG_EPOCH_CIVIL_DAYS;
    // Years 1..=9999 are within about ±3 million days of 2000.
    Ok(days as i32)
}

fn date_text(year: u16, month: u8, day: u8) -> String {
    format!("{year:04}-{month:02}-{day:02}")
}

/// `date`: days since 2000-01-01.
///
/// The year must be in 0..=9999 (proleptic Gregorian, year 0 being 1 BC), the month in 1..=12
/// and the day must exist in that month, leap years included. MySQL's zero dates
/// (`0000-00-00`, `2020-05-00`) are a [`ValueError`] naming the value.
pub fn put_date(buf: &mut Vec<u8>, year: u16, month: u8, day: u8) -> Result<(), ValueError> {
    let days = days_since_2000(year, month, day)
        .map_err(|why| ValueError(format!("{why} in {}", date_text(year, month, day))))?;
    put_len(buf, 4);
    buf.extend_from_slice(&days.to_be_bytes());
    Ok(())
}

/// Microseconds since 2000-01-01 00:00:00 for a valid civil date-time: the date rules of
/// [`put_date`], hour < 24, minute < 60, second < 60 and micros < 1 000 000.
pub fn timestamp_micros(
    year: u16,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
    micros: u32,
) -> Result<i64, ValueError> {
    let check = || -> Result<i64, Invalid> {
        let days = days_since_2000(year, month, day)?;
        if hour >= 24 {
            return Err(Invalid::Hour(hour));
        }
        let tod = time_of_day(hour, minute, second, micros)?;
        Ok(i64::from(days) * DAY_MICROS + tod)
    };
    check().map_err(|why| {
        ValueError(format!(
            "{why} in {} {hour:02}:{minute:02}:{second:02}.{micros:06}",
            date_text(year, month, day)
        ))
    })
}

/// Microseconds in `hour:minute:second.micros`, with minute, second and micros in range
/// (the hour is left to the caller, since MySQL TIME allows hundreds of hours).
fn time_of_day(hour: u8, minute: u8, second: u8, micros: u32) -> Result<i64, Invalid> {
    if minute >= 60 {
        return Err(Invalid::Minute(minute));
    }
    if second >= 60 {
        return Err(Invalid::Second(second));
    }
    if micros >= 1_000_000 {
        return Err(Invalid::Micros(micros));
    }
    let secs = (i64::from(hour) * 60 + i64::from(minute)) * 60 + i64::from(second);
    Ok(secs * 1_000_000 + i64::from(micros))
}

/// `timestamp`, and `timestamptz` when the value is already UTC: microseconds since
/// 2000-01-01 00:00:00, with the checks of [`timestamp_micros`].
#[allow(clippy::too_many_arguments)] // the fields of a MySQL DATETIME, as the protocol sends them
pub fn put_timestamp(
    buf: &mut Vec<u8>,
    year: u16,
    month: u8,
    day: u8,
    hour: u8,
    minute: u8,
    second: u8,
    micros: u32,
) -> Result<(), ValueError> {
    let us = timestamp_micros(year, month, day, hour, minute, second, micros)?;
    put_timestamp_micros(buf, us);
    Ok(())
}

/// `timestamp` or `timestamptz` from microseconds since 2000-01-01 00:00:00 (UTC for
/// `timestamptz`), for callers that computed the instant themselves, e.g. after a time-zone
/// shift.
///
/// PostgreSQL reads `i64::MIN` and `i64::MAX` as `-infinity` and `infinity` and refuses other
/// values outside 4714 BC..294276 AD, failing the COPY.
pub fn put_timestamp_micros(buf: &mut Vec<u8>, micros_since_2000: i64) {
    put_i64(buf, micros_since_2000);
}

fn time_text(
    negative: bool,
    days: u32,
    hours: u8,
    minutes: u8,
    seconds: u8,
    micros: u32,
) -> String {
    let sign = if negative { "-" } else { "" };
    let days = if days > 0 {
        format!("{days} ")
    } else {
        String::new()
    };
    format!("{sign}{days}{hours:02}:{minutes:02}:{seconds:02}.{micros:06}")
}

/// `time` from a MySQL TIME (sign, days, hours, minutes, seconds, microseconds): the
/// microseconds since midnight, which must be below 24 hours.
///
/// MySQL TIME is a duration of up to ±838:59:59, `time` is a time of day: negative values and
/// values of 24 hours or more are a [`ValueError`] (PostgreSQL itself would take exactly
/// `24:00:00`, but that is no time of day a MySQL TIME means). A negative zero is zero.
/// Minutes and seconds must be below 60, micros below 1 000 000.
pub fn put_time(
    buf: &mut Vec<u8>,
    negative: bool,
    days: u32,
    hours: u8,
    minutes: u8,
    seconds: u8,
    micros: u32,
) -> Result<(), ValueError> {
    let text = || time_text(negative, days, hours, minutes, seconds, micros);
    let tod = time_of_day(hours, minutes, seconds, micros)
        .map_err(|why| ValueError(format!("{why} in time {}", text())))?;
    if days > 0 || hours >= 24 {
        return Err(ValueError(format!(
            "time {} is 24 hours or more, not a time of day",
            text()
        )));
    }
    if negative && tod != 0 {
        return Err(ValueError(format!(
            "time {} is negative, not a time of day",
            text()
        )));
    }
    put_i64(buf, tod);
    Ok(())
}

/// `interval` from a MySQL TIME: microseconds = sign × (days × 24 h + h:m:s.us), with the
/// day and month fields 0, so `838:59:59` stays 838 hours and prints as `838:59:59`.
///
/// The parts are summed as given (MySQL sends minutes and seconds below 60). A duration
/// whose microseconds do not fit 64 bits (over 290 000 years; MySQL TIME stops at 35 days)
/// is written as a field PostgreSQL refuses, so the COPY fails instead of loading a wrong
/// value.
pub fn put_interval_time(
    buf: &mut Vec<u8>,
    negative: bool,
    days: u32,
    hours: u8,
    minutes: u8,
    seconds: u8,
    micros: u32,
) {
    let secs = (i128::from(days) * 24 + i128::from(hours)) * 3600
        + i128::from(minutes) * 60
        + i128::from(seconds);
    let total = secs * 1_000_000 + i128::from(micros);
    let total = if negative { -total } else { total };
    let Ok(total) = i64::try_from(total) else {
        put_unloadable(buf);
        return;
    };
    put_len(buf, 16);
    buf.extend_from_slice(&total.to_be_bytes());
    buf.extend_from_slice(&0i32.to_be_bytes()); // days
    buf.extend_from_slice(&0i32.to_be_bytes()); // months
}

/// `text[]` from its elements: one dimension with lower bound 1, element type `text`, no NULL
/// elements; an empty slice gives the empty array `{}` (no dimensions).
///
/// The elements follow the rules of [`put_bytes`] for text, including the refusal of payloads
/// over 2 GiB.
pub fn put_text_array(buf: &mut Vec<u8>, elements: &[&[u8]]) {
    let at = start_len(buf);
    let Ok(count) = i32::try_from(elements.len()) else {
        buf.truncate(at);
        put_unloadable(buf);
        return;
    };
    let ndim: i32 = if count == 0 { 0 } else { 1 };
    buf.extend_from_slice(&ndim.to_be_bytes());
    buf.extend_from_slice(&0i32.to_be_bytes()); // no NULL elements
    buf.extend_from_slice(&TEXT_OID.to_be_bytes());
    if count > 0 {
        buf.extend_from_slice(&count.to_be_bytes());
        buf.extend_from_slice(&1i32.to_be_bytes()); // lower bound
        for e in elements {
            put_bytes(buf, e);
        }
    }
    // An element over 2 GiB became an invalid element length, which array_recv refuses.
    finish_len(buf, at);
}

/// `bit varying` from a MySQL BIT(n): `bits` is n, `bytes` the value big-endian as MySQL sends
/// it (ceil(n/8) bytes, possibly more leading zero bytes, or fewer bytes for a small value).
///
/// The result holds exactly n bits, most significant first, so BIT(10) b'1000000001' becomes
/// B'1000000001'. A value with a bit set above bit n-1 is a [`ValueError`].
pub fn put_varbit(buf: &mut Vec<u8>, bits: u32, bytes: &[u8]) -> Result<(), ValueError> {
    if bits > VARBIT_MAX_BITS {
        return Err(ValueError(format!(
            "BIT({bits}) is longer than bit varying allows ({VARBIT_MAX_BITS} bits)"
        )));
    }
    let nbytes = bits.div_ceil(8) as usize;
    // MySQL right-aligns the value; varbit left-aligns the bits, so shift left by the
    // padding the last byte needs.
    let pad = (nbytes * 8 - bits as usize) as u32;
    // The value's bytes, lined up so that `src(i)` for i in 0..nbytes is the i-th of the
    // last nbytes bytes, with missing leading bytes read as zero.
    let extra = bytes.len().saturating_sub(nbytes);
    let missing = nbytes.saturating_sub(bytes.len());
    let src = |i: usize| -> u8 {
        if i < missing {
            0
        } else {
            bytes[extra + i - missing]
        }
    };
    let too_wide = bytes[..extra].iter().any(|&b| b != 0)
        || (nbytes > 0 && pad > 0 && src(0) >> (8 - pad) != 0);
    if too_wide {
        return Err(ValueError(format!(
            "BIT({bits}) value 0x{} has bits set above bit {}",
            hex(bytes),
            bits.saturating_sub(1)
        )));
    }
    let len = 4 + nbytes;
    // nbytes <= 2^28, so the length fits.
    put_len(buf, len as i32);
    buf.extend_from_slice(&(bits as i32).to_be_bytes());
    for i in 0..nbytes {
        let next = if i + 1 < nbytes { src(i + 1) } else { 0 };
        let b = if pad == 0 {
            src(i)
        } else {
            (src(i) << pad) | (next >> (8 - pad))
        };
        buf.push(b);
    }
    Ok(())
}

/// Lower-case hex of at most the first 16 bytes, for error messages.
fn hex(bytes: &[u8]) -> String {
    let mut s: String = bytes.iter().take(16).map(|b| format!("{b:02x}")).collect();
    if bytes.len() > 16 {
        s.push_str("...");
    }
    s
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    /// Splits one field into (length, payload).
    fn field(buf: &[u8]) -> (i32, &[u8]) {
        let len = i32::from_be_bytes(buf[..4].try_into().unwrap());
        assert_eq!(
            buf.len(),
            4 + len.max(0) as usize,
            "field length matches payload"
        );
        (len, &buf[4..])
    }

    /// (ndigits, weight, sign, dscale, digits) of an encoded numeric.
    fn numeric(s: &str) -> (i16, i16, u16, u16, Vec<i16>) {
        let mut buf = Vec::new();
        put_numeric_str(&mut buf, s).unwrap();
        decode_numeric(&buf)
    }

    fn decode_numeric(buf: &[u8]) -> (i16, i16, u16, u16, Vec<i16>) {
        let (_, p) = field(buf);
        let w = |i: usize| [p[2 * i], p[2 * i + 1]];
        let n = i16::from_be_bytes(w(0));
        let digits = (0..n as usize)
            .map(|i| i16::from_be_bytes(w(4 + i)))
            .collect();
        (
            n,
            i16::from_be_bytes(w(1)),
            u16::from_be_bytes(w(2)),
            u16::from_be_bytes(w(3)),
            digits,
        )
    }

    #[test]
    fn numeric_digit_groups_line_up_with_the_point() {
        assert_eq!(numeric("0"), (0, 0, 0, 0, vec![]));
        assert_eq!(numeric("0.000"), (0, 0, 0, 3, vec![]));
        assert_eq!(numeric("-0.00"), (0, 0, 0, 2, vec![]));
        assert_eq!(numeric("1"), (1, 0, 0, 0, vec![1]));
        assert_eq!(numeric("1.50"), (2, 0, 0, 2, vec![1, 5000]));
        assert_eq!(numeric("-00123.4500"), (2, 0, 0x4000, 4, vec![123, 4500]));
        assert_eq!(numeric("00012.3400"), (2, 0, 0, 4, vec![12, 3400]));
        assert_eq!(numeric("10000"), (1, 1, 0, 0, vec![1]));
        assert_eq!(numeric("12345678"), (2, 1, 0, 0, vec![1234, 5678]));
        assert_eq!(numeric("123456789"), (3, 2, 0, 0, vec![1, 2345, 6789]));
        assert_eq!(numeric(".5"), (1, -1, 0, 1, vec![5000]));
        assert_eq!(numeric("12."), (1, 0, 0, 0, vec![12]));
        assert_eq!(numeric("+7"), (1, 0, 0, 0, vec![7]));
        assert_eq!(numeric("0.0001"), (1, -1, 0, 4, vec![1]));
        assert_eq!(numeric("0.00001"), (1, -2, 0, 5, vec![1000]));
        assert_eq!(numeric("-0.000000012"), (2, -2, 0x4000, 9, vec![1, 2000]));
        assert_eq!(numeric("10000.0001"), (3, 1, 0, 4, vec![1, 0, 1]));
        assert_eq!(
            numeric("99999999999999999999.99999"),
            (7, 4, 0, 5, vec![9999, 9999, 9999, 9999, 9999, 9999, 9000])
        );
    }

    #[test]
    fn numeric_rejects_what_is_not_a_plain_decimal() {
        for s in [
            "", "-", "+", ".", "-.", "--1", "+-1", "1e5", "1E5", " 1", "1 ", "1,5", "1.2.3", "NaN",
            "Infinity", "0x10", "١",
        ] {
            let mut buf = vec![7];
            let err = put_numeric_str(&mut buf, s).unwrap_err();
            assert!(
                err.0.starts_with(&format!("invalid numeric \"{s}\": ")),
                "{err}"
            );
            assert_eq!(buf, vec![7], "{s:?}: nothing appended on error");
        }
        assert_eq!(
            put_numeric_str(&mut Vec::new(), "1.2.3").unwrap_err().0,
            "invalid numeric \"1.2.3\": unexpected '.'; expected digits with an optional sign and point"
        );
        assert_eq!(
            put_numeric_str(&mut Vec::new(), "-٣").unwrap_err().0,
            "invalid numeric \"-٣\": unexpected '٣'; expected digits with an optional sign and point"
        );
        let long_scale = format!("0.{}", "1".repeat(NUMERIC_DSCALE_MAX + 1));
        assert!(put_numeric_str(&mut Vec::new(), &long_scale).is_err());
        let max_scale_tiny = format!("0.{}1", "0".repeat(NUMERIC_DSCALE_MAX - 1));
        assert_eq!(numeric(&max_scale_tiny), (1, -4096, 0, 16383, vec![10]));
        let too_many = format!("0.{}", "1".repeat(12_001));
        assert!(
            put_numeric_str(&mut Vec::new(), &too_many).is_err(),
            "3001 digits"
        );
        let most = format!("0.{}", "1".repeat(12_000));
        assert_eq!(numeric(&most).0, 3000);
        let huge = format!("1{}", "0".repeat(131_072));
        assert!(
            put_numeric_str(&mut Vec::new(), &huge).is_err(),
            "weight over 32767"
        );
        let biggest = format!("1{}", "0".repeat(131_071));
        assert_eq!(numeric(&biggest).1, 32767);
    }

    #[test]
    fn numeric_integers_match_the_string_form() {
        let cases: [(i128, &str); 8] = [
            (0, "0"),
            (1, "1"),
            (-1, "-1"),
            (10_000, "10000"),
            (100_000_000, "100000000"),
            (i64::MIN as i128, "-9223372036854775808"),
            (i64::MAX as i128, "9223372036854775807"),
            (u64::MAX as i128, "18446744073709551615"),
        ];
        for (v, s) in cases {
            let mut a = Vec::new();
            if let Ok(v) = i64::try_from(v) {
                put_numeric_i64(&mut a, v);
            } else {
                put_numeric_u64(&mut a, v as u64);
            }
            let mut b = Vec::new();
            put_numeric_str(&mut b, s).unwrap();
            assert_eq!(a, b, "{s}");
        }
        let mut buf = Vec::new();
        put_numeric_u64(&mut buf, u64::MAX);
        assert_eq!(
            decode_numeric(&buf),
            (5, 4, 0, 0, vec![1844, 6744, 737, 955, 1615])
        );
    }

    fn days(y: u16, m: u8, d: u8) -> i32 {
        let mut buf = Vec::new();
        put_date(&mut buf, y, m, d).unwrap();
        let (len, p) = field(&buf);
        assert_eq!(len, 4);
        i32::from_be_bytes(p.try_into().unwrap())
    }

    #[test]
    fn dates_count_days_from_2000() {
        // Reference values from PostgreSQL: SELECT 'yyyy-mm-dd'::date - '2000-01-01'.
        assert_eq!(days(2000, 1, 1), 0);
        assert_eq!(days(1999, 12, 31), -1);
        assert_eq!(days(2000, 2, 29), 59);
        assert_eq!(days(2000, 3, 1), 60);
        assert_eq!(days(1900, 3, 1), -36465);
        assert_eq!(days(1970, 1, 1), -10957);
        assert_eq!(days(1, 1, 1), -730119);
        assert_eq!(days(9999, 12, 31), 2921939);
        // Year 0 is 1 BC, a leap year: SELECT '0001-01-01 BC'::date - '2000-01-01'.
        assert_eq!(days(0, 1, 1), -730485);
        assert_eq!(days(0, 12, 31), -730120);
        // Consecutive days across every month boundary of a leap and a common year.
        for year in [0u16, 1900, 2000, 2023, 2024] {
            let mut prev = days(year, 1, 1) - 1;
            for month in 1..=12 {
                for day in 1..=days_in_month(year, month) {
                    let d = days(year, month, day);
                    assert_eq!(d, prev + 1, "{year}-{month}-{day}");
                    prev = d;
                }
            }
        }
    }

    #[test]
    fn bad_dates_are_rejected_with_the_value() {
        let cases: [((u16, u8, u8), &str); 9] = [
            ((2020, 0, 15), "month 0 in 2020-00-15"),
            ((2020, 5, 0), "day 0 in 2020-05-00"),
            ((2020, 13, 1), "month 13 in 2020-13-01"),
            ((0, 0, 0), "month 0 in 0000-00-00"),
            ((0, 1, 0), "day 0 in 0000-01-00"),
            ((10000, 1, 1), "year 10000 (outside 0..9999) in 10000-01-01"),
            (
                (2019, 2, 29),
                "day 29 (February 2019 has 28 days) in 2019-02-29",
            ),
            (
                (1900, 2, 29),
                "day 29 (February 1900 has 28 days) in 1900-02-29",
            ),
            (
                (2021, 4, 31),
                "day 31 (April 2021 has 30 days) in 2021-04-31",
            ),
        ];
        for ((y, m, d), msg) in cases {
            let mut buf = Vec::new();
            assert_eq!(put_date(&mut buf, y, m, d), Err(ValueError(msg.into())));
            assert!(buf.is_empty());
        }
        assert_eq!(days(2024, 2, 29), 8825);
    }

    #[test]
    fn timestamps_are_micros_since_2000() {
        assert_eq!(timestamp_micros(2000, 1, 1, 0, 0, 0, 0), Ok(0));
        assert_eq!(
            timestamp_micros(1970, 1, 1, 0, 0, 0, 0),
            Ok(-946_684_800_000_000)
        );
        assert_eq!(
            timestamp_micros(2000, 1, 1, 23, 59, 59, 999_999),
            Ok(DAY_MICROS - 1)
        );
        let mut buf = Vec::new();
        put_timestamp(&mut buf, 2000, 1, 2, 0, 0, 0, 1).unwrap();
        assert_eq!(field(&buf), (8, &(DAY_MICROS + 1).to_be_bytes()[..]));
        for (args, msg) in [
            (
                (2020, 1, 1, 24, 0, 0, 0),
                "hour 24 in 2020-01-01 24:00:00.000000",
            ),
            (
                (2020, 1, 1, 0, 60, 0, 0),
                "minute 60 in 2020-01-01 00:60:00.000000",
            ),
            (
                (2020, 1, 1, 0, 0, 60, 0),
                "second 60 in 2020-01-01 00:00:60.000000",
            ),
            (
                (2020, 1, 1, 0, 0, 0, 1_000_000),
                "microsecond 1000000 in 2020-01-01 00:00:00.1000000",
            ),
            (
                (2020, 0, 0, 0, 0, 0, 0),
                "month 0 in 2020-00-00 00:00:00.000000",
            ),
        ] {
            let (y, mo, d, h, mi, s, us) = args;
            let mut buf = Vec::new();
            assert_eq!(
                put_timestamp(&mut buf, y, mo, d, h, mi, s, us),
                Err(ValueError(msg.into()))
            );
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn times_must_be_times_of_day() {
        let mut buf = Vec::new();
        put_time(&mut buf, false, 0, 23, 59, 59, 999_999).unwrap();
        assert_eq!(field(&buf), (8, &(DAY_MICROS - 1).to_be_bytes()[..]));
        buf.clear();
        put_time(&mut buf, true, 0, 0, 0, 0, 0).unwrap();
        assert_eq!(field(&buf), (8, &0i64.to_be_bytes()[..]));
        for (neg, d, h, m, s, us, msg) in [
            (
                false,
                0,
                24,
                0,
                0,
                0,
                "time 24:00:00.000000 is 24 hours or more, not a time of day",
            ),
            (
                false,
                1,
                0,
                0,
                0,
                0,
                "time 1 00:00:00.000000 is 24 hours or more, not a time of day",
            ),
            (
                true,
                0,
                0,
                0,
                1,
                0,
                "time -00:00:01.000000 is negative, not a time of day",
            ),
            (false, 0, 1, 60, 0, 0, "minute 60 in time 01:60:00.000000"),
        ] {
            let mut buf = Vec::new();
            assert_eq!(
                put_time(&mut buf, neg, d, h, m, s, us),
                Err(ValueError(msg.into()))
            );
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn intervals_keep_hours_in_the_time_field() {
        let mut buf = Vec::new();
        put_interval_time(&mut buf, true, 34, 22, 59, 59, 0);
        let (len, p) = field(&buf);
        assert_eq!(len, 16);
        let micros = -((838 * 3600 + 59 * 60 + 59) * 1_000_000i64);
        assert_eq!(&p[..8], &micros.to_be_bytes());
        assert_eq!(&p[8..], &[0; 8]);
        buf.clear();
        put_interval_time(&mut buf, false, u32::MAX, 255, 59, 59, 999_999);
        assert_eq!(
            buf,
            i32::MIN.to_be_bytes(),
            "overflow is an unloadable field"
        );
    }

    #[test]
    fn text_arrays() {
        let mut buf = Vec::new();
        put_text_array(&mut buf, &[]);
        let (len, p) = field(&buf);
        assert_eq!(len, 12);
        assert_eq!(p, [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 25]);
        buf.clear();
        put_text_array(&mut buf, &[b"ab", b""]);
        let (len, p) = field(&buf);
        assert_eq!(len, 20 + 6 + 4);
        assert_eq!(
            &p[..20],
            &[0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 25, 0, 0, 0, 2, 0, 0, 0, 1]
        );
        assert_eq!(&p[20..], &[0, 0, 0, 2, b'a', b'b', 0, 0, 0, 0]);
    }

    fn varbit(bits: u32, bytes: &[u8]) -> Vec<u8> {
        let mut buf = Vec::new();
        put_varbit(&mut buf, bits, bytes).unwrap();
        let (len, p) = field(&buf);
        assert_eq!(len as usize, p.len());
        assert_eq!(&p[..4], &(bits as i32).to_be_bytes());
        p[4..].to_vec()
    }

    #[test]
    fn varbits_are_left_aligned() {
        assert_eq!(varbit(1, &[1]), vec![0x80]);
        assert_eq!(varbit(1, &[0]), vec![0x00]);
        assert_eq!(varbit(10, &[0b10, 0b1]), vec![0x80, 0x40]);
        assert_eq!(varbit(10, &[0, 0, 0b10, 0b1]), vec![0x80, 0x40]);
        assert_eq!(
            varbit(10, &[0b1]),
            vec![0x00, 0x40],
            "short input is a small value"
        );
        assert_eq!(varbit(8, &[0xa5]), vec![0xa5]);
        assert_eq!(varbit(3, &[0, 5]), vec![0xa0]);
        assert_eq!(varbit(12, &[0x0a, 0xbc]), vec![0xab, 0xc0]);
        assert_eq!(varbit(64, &[0xff; 8]), vec![0xff; 8]);
        assert_eq!(varbit(0, &[]), Vec::<u8>::new());
        assert_eq!(varbit(0, &[0, 0]), Vec::<u8>::new());
        for (bits, bytes) in [(1u32, &[2u8][..]), (10, &[4, 0]), (8, &[1, 0]), (0, &[1])] {
            let mut buf = Vec::new();
            let err = put_varbit(&mut buf, bits, bytes).unwrap_err();
            assert!(err.0.contains("has bits set above"), "{err}");
            assert!(buf.is_empty());
        }
    }

    #[test]
    fn fixed_size_fields() {
        let mut buf = Vec::new();
        put_null(&mut buf);
        assert_eq!(buf, [0xff; 4]);
        buf.clear();
        put_bool(&mut buf, true);
        assert_eq!(buf, [0, 0, 0, 1, 1]);
        buf.clear();
        put_f32(&mut buf, -0.0);
        assert_eq!(buf, [0, 0, 0, 4, 0x80, 0, 0, 0]);
        buf.clear();
        put_jsonb(&mut buf, b"{}");
        assert_eq!(buf, [0, 0, 0, 3, 1, b'{', b'}']);
        buf.clear();
        put_bytes(&mut buf, b"");
        assert_eq!(buf, [0, 0, 0, 0]);
    }
}
