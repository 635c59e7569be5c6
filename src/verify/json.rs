//! Canonical bytes of a JSON text as the `jsonb` value PostgreSQL makes of it, for the
//! streamed hasher: a MySQL source's JSON arrives as MySQL wrote it (compact, keys in any
//! order, `1E2`, `\u00e9`), the target's as `jsonb_out` renders the stored value.
//!
//! Invariant: two texts give the same bytes exactly when `jsonb` input makes the same value
//! of them. Whitespace is dropped, string escapes decoded, object keys made unique (the last
//! one wins, as in `jsonb`) and sorted, and numbers kept as `numeric` reads them: their value
//! and display scale (`1E2` is 100, `1.50` keeps its scale, `-0` is 0), digit for digit however
//! long (never through an f64, which would make `12345678901234567890123` and `...124` alike
//! and cannot hold `1e400`). Texts that are not JSON `jsonb` would store give `false`, and the
//! caller hashes their bytes as they are.

/// Nesting deeper than this is hashed as raw bytes (recursion stays bounded).
const MAX_DEPTH: usize = 256;

/// Appends the canonical bytes of `text` to `out`; `false` (with `out` in any state) when
/// `text` is not JSON that `jsonb` stores.
pub fn canonical(text: &[u8], out: &mut Vec<u8>) -> bool {
    let mut p = Parser { s: text, i: 0 };
    p.value(out, 0).is_some() && {
        p.ws();
        p.i == text.len()
    }
}

struct Parser<'a> {
    s: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while matches!(self.s.get(self.i), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, b: u8) -> bool {
        self.ws();
        let hit = self.s.get(self.i) == Some(&b);
        if hit {
            self.i += 1;
        }
        hit
    }

    fn value(&mut self, out: &mut Vec<u8>, depth: usize) -> Option<()> {
        if depth > MAX_DEPTH {
            return None;
        }
        self.ws();
        match *self.s.get(self.i)? {
            b'{' => {
                self.i += 1;
                let mut entries: Vec<(Vec<u8>, Vec<u8>)> = Vec::new();
                if !self.eat(b'}') {
                    loop {
                        self.ws();
                        let mut key = Vec::new();
                        self.string(&mut key)?;
                        if !self.eat(b':') {
                            return None;
                        }
                        let mut value = Vec::new();
                        self.value(&mut value, depth + 1)?;
                        entries.push((key, value));
                        if self.eat(b'}') {
                            break;
                        }
                        if !self.eat(b',') {
                            return None;
                        }
                    }
                }
                // Stable: of equal keys, the last one read stays last and is the one kept.
                entries.sort_by(|a, b| a.0.cmp(&b.0));
                out.push(b'{');
                for (n, (k, v)) in entries.iter().enumerate() {
                    if entries.get(n + 1).is_some_and(|next| next.0 == *k) {
                        continue;
                    }
                    out.extend_from_slice(k);
                    out.extend_from_slice(v);
                }
                out.push(b'}');
            }
            b'[' => {
                self.i += 1;
                out.push(b'[');
                if !self.eat(b']') {
                    loop {
                        self.value(out, depth + 1)?;
                        if self.eat(b']') {
                            break;
                        }
                        if !self.eat(b',') {
                            return None;
                        }
                    }
                }
                out.push(b']');
            }
            b'"' => self.string(out)?,
            b't' => self.word(b"true", b't', out)?,
            b'f' => self.word(b"false", b'f', out)?,
            b'n' => self.word(b"null", b'n', out)?,
            _ => self.number(out)?,
        }
        Some(())
    }

    fn word(&mut self, word: &[u8], tag: u8, out: &mut Vec<u8>) -> Option<()> {
        if !self.s[self.i..].starts_with(word) {
            return None;
        }
        self.i += word.len();
        out.push(tag);
        Some(())
    }

    /// A string as a tag, its decoded byte length and its bytes.
    fn string(&mut self, out: &mut Vec<u8>) -> Option<()> {
        if self.s.get(self.i) != Some(&b'"') {
            return None;
        }
        self.i += 1;
        out.push(b'"');
        let len_at = out.len();
        out.extend_from_slice(&[0; 4]);
        loop {
            let b = *self.s.get(self.i)?;
            self.i += 1;
            match b {
                b'"' => break,
                b'\\' => {
                    let e = *self.s.get(self.i)?;
                    self.i += 1;
                    let c = match e {
                        b'"' | b'\\' | b'/' => e,
                        b'b' => 8,
                        b'f' => 12,
                        b'n' => b'\n',
                        b'r' => b'\r',
                        b't' => b'\t',
                        b'u' => {
                            let ch = self.unicode_escape()?;
                            let mut buf = [0u8; 4];
                            out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
                            continue;
                        }
                        _ => return None,
                    };
                    out.push(c);
                }
                // Control characters must be escaped in JSON.
                0..=0x1f => return None,
                _ => out.push(b),
            }
        }
        let len = u32::try_from(out.len() - len_at - 4).ok()?;
        out[len_at..len_at + 4].copy_from_slice(&len.to_le_bytes());
        Some(())
    }

    /// `\uXXXX` (after the `u`), a surrogate pair included; `\u0000` and unpaired surrogates,
    /// which `jsonb` refuses, are `None`.
    fn unicode_escape(&mut self) -> Option<char> {
        let hi = self.hex4()?;
        let code = if (0xD800..0xDC00).contains(&hi) {
            if self.s.get(self.i..self.i + 2)? != b"\\u" {
                return None;
            }
            self.i += 2;
            let lo = self.hex4()?;
            if !(0xDC00..0xE000).contains(&lo) {
                return None;
            }
            0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
        } else {
            hi
        };
        if code == 0 {
            return None;
        }
        char::from_u32(code)
    }

    fn hex4(&mut self) -> Option<u32> {
        let digits = self.s.get(self.i..self.i + 4)?;
        self.i += 4;
        let text = std::str::from_utf8(digits).ok()?;
        if !text.bytes().all(|b| b.is_ascii_hexdigit()) {
            return None;
        }
        u32::from_str_radix(text, 16).ok()
    }

    /// A number as `numeric` reads it: sign, significant digits, the power of ten of the last
    /// one, and the display scale (`digits after the point - exponent`, at least 0).
    fn number(&mut self, out: &mut Vec<u8>) -> Option<()> {
        let s = self.s;
        let negative = s.get(self.i) == Some(&b'-');
        if negative {
            self.i += 1;
        }
        let int_start = self.i;
        while s.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
        let int = &s[int_start..self.i];
        if int.is_empty() || (int.len() > 1 && int[0] == b'0') {
            return None;
        }
        let mut frac: &[u8] = &[];
        if s.get(self.i) == Some(&b'.') {
            self.i += 1;
            let start = self.i;
            while s.get(self.i).is_some_and(u8::is_ascii_digit) {
                self.i += 1;
            }
            frac = &s[start..self.i];
            if frac.is_empty() {
                return None;
            }
        }
        let mut exp: i64 = 0;
        if matches!(s.get(self.i), Some(b'e' | b'E')) {
            self.i += 1;
            let minus = s.get(self.i) == Some(&b'-');
            if matches!(s.get(self.i), Some(b'+' | b'-')) {
                self.i += 1;
            }
            let start = self.i;
            while s.get(self.i).is_some_and(u8::is_ascii_digit) {
                exp = exp
                    .checked_mul(10)?
                    .checked_add(i64::from(s[self.i] - b'0'))?;
                self.i += 1;
            }
            if self.i == start {
                return None;
            }
            if minus {
                exp = -exp;
            }
        }
        let frac_len = i64::try_from(frac.len()).ok()?;
        let scale = (frac_len - exp).max(0);
        let digits = int.iter().chain(frac).copied();
        let lead = digits.clone().take_while(|&d| d == b'0').count();
        let sig: Vec<u8> = digits.skip(lead).collect();
        let trail = sig.iter().rev().take_while(|&&d| d == b'0').count();
        let sig = &sig[..sig.len() - trail];
        out.push(b'#');
        if sig.is_empty() {
            // Zero has no sign in numeric.
            out.extend_from_slice(format!("0s{scale};").as_bytes());
        } else {
            let power = exp
                .checked_sub(frac_len)?
                .checked_add(i64::try_from(trail).ok()?)?;
            if negative {
                out.push(b'-');
            }
            out.extend_from_slice(sig);
            out.extend_from_slice(format!("e{power}s{scale};").as_bytes());
        }
        Some(())
    }
}

#[cfg(test)]
mod tests {
    use super::canonical;

    fn canon(text: &str) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        canonical(text.as_bytes(), &mut out).then_some(out)
    }

    fn same(a: &str, b: &str) -> bool {
        let (x, y) = (canon(a), canon(b));
        x.is_some() && x == y
    }

    #[test]
    fn equal_as_jsonb_is_equal_here() {
        assert!(same(r#"{"a":1}"#, r#"{"a": 1}"#));
        assert!(same(
            r#"{"b":1,"a":[true,null]}"#,
            r#"{"a": [true, null], "b": 1}"#
        ));
        assert!(same(r#"{"k":1,"k":2}"#, r#"{"k": 2}"#));
        assert!(same("1E2", "100"));
        assert!(same("1.0E2", "100"));
        assert!(same("1.50e1", "15.0"));
        assert!(same("0.1e-2", "0.001"));
        assert!(same("-0", "0"));
        assert!(same("-0.0", "0.0"));
        assert!(same("1e400", &format!("1{}", "0".repeat(400))));
        assert!(same(r#""\u00e9\n\/""#, "\"\u{e9}\\n/\""));
        assert!(same(r#""\ud83d\ude00""#, "\"\u{1F600}\""));
        assert!(same(" [ ] ", "[]"));
    }

    #[test]
    fn different_as_jsonb_is_different_here() {
        assert!(!same("1.5", "1.50"));
        assert!(!same("12345678901234567890123", "12345678901234567890124"));
        assert!(!same("0.1", "0.10000000000000001"));
        assert!(!same("-1", "1"));
        assert!(!same("0", "0.0"));
        assert!(!same(r#"{"k":1,"k":2}"#, r#"{"k": 1}"#));
        assert!(!same(r#"["ab","c"]"#, r#"["a","bc"]"#));
        assert!(!same(r#"[[1],[2]]"#, r#"[[1,2]]"#));
        assert!(!same(r#"{"a":"1"}"#, r#"{"a":1}"#));
    }

    #[test]
    fn what_jsonb_refuses_is_not_canonical() {
        for bad in [
            r#""\u0000""#,
            r#""\ud800""#,
            "01",
            "1.",
            "[1,]",
            "{\"a\" 1}",
            "\"a\nb\"",
            "1 2",
            "tru",
            "1e99999999999999999999",
        ] {
            assert!(canon(bad).is_none(), "{bad}");
        }
        let deep = format!("{}{}", "[".repeat(300), "]".repeat(300));
        assert!(canon(&deep).is_none());
    }
}
