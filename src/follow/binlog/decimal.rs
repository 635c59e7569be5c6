//! DECIMAL values of the binary log as decimal text: the text `mysql_common`'s binary log
//! decoder gives (`Decimal::read_bin` then `to_string`), which is what the bulk reader
//! receives for the same value, written straight from the row image's bytes.
//!
//! Why not `mysql_common`'s decoder: it reads each value into a `Decimal` (a vector of digit
//! groups) and formats it through `fmt`, then copies the string into the value. callgrind of
//! the MySQL follower's catch-up put 15% of its instructions there for a table with one
//! DECIMAL column (BENCHMARKS.md, "MySQL follow").
//!
//! The format (MySQL's `strings/decimal.cc`, `decimal2bin`): the integer digits, then the
//! fraction digits, each part in groups of 9 digits stored as 4-byte big-endian integers; the
//! integer part's leading group and the fraction's trailing group hold the remaining digits in
//! the fewest bytes (`DIG_TO_BYTES`). The first byte's top bit is flipped, and a negative
//! value has every byte inverted.
//!
//! Invariants: the text is `mysql_common`'s for every well-formed value (a test compares
//! both over many values and every precision and scale): leading zero groups of the integer
//! part dropped, `0` when it has no digit left, the fraction with exactly `scale` digits, a
//! `-` for a negative value (a zero of scale 0 has none). A group out of its range (a
//! malformed value) is an error, never text.

use std::io;

/// Digits per full group.
const DIG_PER_DEC: usize = 9;

/// Bytes that hold a group of this many digits.
const DIG_TO_BYTES: [usize; DIG_PER_DEC + 1] = [0, 1, 1, 2, 2, 3, 3, 4, 4, 4];

/// `10^n` for the digits of a group.
const POWERS_10: [u32; DIG_PER_DEC + 1] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
];

/// Above the largest binary size: DECIMAL(65, 30) takes 30 bytes, MariaDB's DECIMAL(65, 38) 29.
const MAX_BIN: usize = 32;

/// Bytes a DECIMAL(precision, scale) value takes in a row image.
pub fn bin_size(precision: usize, scale: usize) -> usize {
    let intg = precision.saturating_sub(scale);
    (intg / DIG_PER_DEC) * 4
        + DIG_TO_BYTES[intg % DIG_PER_DEC]
        + (scale / DIG_PER_DEC) * 4
        + DIG_TO_BYTES[scale % DIG_PER_DEC]
}

fn malformed(why: &str) -> io::Error {
    io::Error::new(
        io::ErrorKind::InvalidData,
        format!("a malformed DECIMAL value in the binary log: {why}"),
    )
}

/// Appends the text of the DECIMAL(`precision`, `scale`) value `bin` (exactly
/// [`bin_size`] bytes) to `out`.
pub fn write_text(bin: &[u8], precision: usize, scale: usize, out: &mut Vec<u8>) -> io::Result<()> {
    if scale > precision || bin.len() != bin_size(precision, scale) || bin.len() > MAX_BIN {
        return Err(malformed(&format!(
            "{} bytes for DECIMAL({precision}, {scale})",
            bin.len()
        )));
    }
    let mut bytes = [0u8; MAX_BIN];
    let bytes = &mut bytes[..bin.len()];
    bytes.copy_from_slice(bin);
    if let Some(first) = bytes.first_mut() {
        *first ^= 0x80;
    }
    let negative = bytes.first().is_some_and(|b| b & 0x80 != 0);
    if negative {
        for b in bytes.iter_mut() {
            *b = !*b;
        }
    }
    let mut rest: &[u8] = bytes;
    // One group of `digits` digits, checked against its range.
    let mut group = |digits: usize| -> io::Result<u32> {
        let (now, later) = rest.split_at(DIG_TO_BYTES[digits]);
        rest = later;
        let x = now.iter().fold(0u32, |x, &b| (x << 8) | u32::from(b));
        if x >= POWERS_10[digits] {
            return Err(malformed(&format!("a group of {digits} digits holds {x}")));
        }
        Ok(x)
    };
    let start = out.len();
    if negative {
        out.push(b'-');
    }
    let intg = precision - scale;
    let mut leading = true;
    let prefix = intg % DIG_PER_DEC;
    let groups = (prefix > 0)
        .then_some(prefix)
        .into_iter()
        .chain(std::iter::repeat_n(DIG_PER_DEC, intg / DIG_PER_DEC));
    for digits in groups {
        let x = group(digits)?;
        if leading {
            if x != 0 {
                leading = false;
                push_digits(out, x, 0);
            }
        } else {
            push_digits(out, x, DIG_PER_DEC);
        }
    }
    if leading {
        out.push(b'0');
    }
    if scale > 0 {
        out.push(b'.');
        let suffix = scale % DIG_PER_DEC;
        let groups = std::iter::repeat_n(DIG_PER_DEC, scale / DIG_PER_DEC)
            .chain((suffix > 0).then_some(suffix));
        for digits in groups {
            let x = group(digits)?;
            push_digits(out, x, digits);
        }
    } else if leading {
        // Zero without a fraction has no sign.
        out.drain(start..);
        out.push(b'0');
    }
    Ok(())
}

/// Appends `x` in decimal, left-padded with zeros to `width` digits.
fn push_digits(out: &mut Vec<u8>, mut x: u32, width: usize) {
    let mut digits = [b'0'; 10];
    let mut n = 0;
    while x > 0 || n == 0 {
        digits[n] = b'0' + (x % 10) as u8;
        x /= 10;
        n += 1;
    }
    let n = n.max(width);
    out.extend(digits[..n].iter().rev());
}

#[cfg(test)]
mod tests {
    use super::*;
    use mysql_common::binlog::decimal::Decimal;

    /// `mysql_common`'s text for the binary value `bin`.
    fn theirs(bin: &[u8], precision: usize, scale: usize) -> String {
        Decimal::read_bin(bin, precision, scale, false)
            .map(|d| d.to_string())
            .unwrap_or_else(|e| format!("error: {e}"))
    }

    fn ours(bin: &[u8], precision: usize, scale: usize) -> String {
        let mut out = Vec::new();
        write_text(bin, precision, scale, &mut out).expect("well-formed");
        String::from_utf8(out).expect("ASCII")
    }

    /// The binary form of `text` as DECIMAL(precision, scale), as the server writes it
    /// (`decimal2bin`): written here from the format, independently of the decoder.
    fn bin(text: &str, precision: usize, scale: usize) -> Vec<u8> {
        let negative = text.starts_with('-');
        let body = text.trim_start_matches('-');
        let (int, frac) = body.split_once('.').unwrap_or((body, ""));
        let intg = precision - scale;
        let int = format!("{:0>intg$}", int.trim_start_matches('0'));
        let frac = format!("{frac:0<scale$}");
        let mut out = Vec::new();
        let mut put = |digits: &str| {
            let x: u32 = digits.parse().expect("digits");
            let n = DIG_TO_BYTES[digits.len()];
            out.extend_from_slice(&x.to_be_bytes()[4 - n..]);
        };
        let prefix = intg % DIG_PER_DEC;
        if prefix > 0 {
            put(&int[..prefix]);
        }
        for g in int.as_bytes()[prefix..].chunks(DIG_PER_DEC) {
            put(std::str::from_utf8(g).expect("ASCII"));
        }
        for g in frac.as_bytes().chunks(DIG_PER_DEC) {
            put(std::str::from_utf8(g).expect("ASCII"));
        }
        if negative {
            for b in out.iter_mut() {
                *b = !*b;
            }
        }
        if let Some(first) = out.first_mut() {
            *first ^= 0x80;
        }
        assert_eq!(out.len(), bin_size(precision, scale), "{text}");
        out
    }

    #[test]
    fn text_is_mysql_commons_for_every_precision_and_scale() {
        // A small linear congruential generator: the same values every run.
        let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
        let mut next = |n: u64| {
            seed = seed
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (seed >> 33) % n
        };
        let mut checked = 0;
        for precision in 1..=65usize {
            // MySQL allows a scale up to 30, MariaDB up to 38.
            for scale in 0..=precision.min(38) {
                let intg = precision - scale;
                for case in 0..12 {
                    let int_digits = match case {
                        0 => 0,
                        1 => intg,
                        _ => next(intg as u64 + 1) as usize,
                    };
                    let frac_digits = match case {
                        0 | 1 => scale,
                        _ => next(scale as u64 + 1) as usize,
                    };
                    let digit = |next: &mut dyn FnMut(u64) -> u64| (b'0' + next(10) as u8) as char;
                    let int: String = (0..int_digits).map(|_| digit(&mut next)).collect();
                    let frac: String = (0..frac_digits).map(|_| digit(&mut next)).collect();
                    let sign = if next(2) == 0 { "-" } else { "" };
                    let int = if int.is_empty() { "0".to_string() } else { int };
                    let text = if scale > 0 {
                        format!("{sign}{int}.{frac}")
                    } else {
                        format!("{sign}{int}")
                    };
                    let b = bin(&text, precision, scale);
                    assert_eq!(
                        ours(&b, precision, scale),
                        theirs(&b, precision, scale),
                        "DECIMAL({precision}, {scale}) {text}"
                    );
                    checked += 1;
                }
            }
        }
        assert!(checked > 10_000, "{checked} values checked");
    }

    #[test]
    fn edges_read_as_the_server_writes_them() {
        for (text, p, s, want) in [
            ("0", 1, 0, "0"),
            ("0.5", 12, 2, "0.50"),
            ("-0.5", 12, 2, "-0.50"),
            ("-7", 10, 0, "-7"),
            ("1000000000", 10, 0, "1000000000"),
            ("123456789012345678.5", 20, 1, "123456789012345678.5"),
            ("-0.000000001", 30, 9, "-0.000000001"),
            ("0.00", 5, 2, "0.00"),
        ] {
            assert_eq!(
                ours(&bin(text, p, s), p, s),
                want,
                "{text} as DECIMAL({p}, {s})"
            );
        }
    }

    #[test]
    fn a_malformed_value_is_an_error() {
        // A digit group of 9 digits cannot hold 10^9.
        let mut b = bin("1", 9, 0);
        b.copy_from_slice(&(1_000_000_000u32 | 0x8000_0000).to_be_bytes());
        let mut out = Vec::new();
        let e = write_text(&b, 9, 0, &mut out).expect_err("out of range");
        assert!(e.to_string().contains("malformed DECIMAL"), "{e}");
        // The wrong size for its precision and scale.
        let e = write_text(&[0x80], 12, 2, &mut out).expect_err("too short");
        assert!(e.to_string().contains("DECIMAL(12, 2)"), "{e}");
    }
}
