//! Whether a target column can take what the copy sends over binary COPY, for
//! `--schema existing`.
//!
//! Binary COPY does not convert: the target type's receive function reads the bytes the copy
//! sends. A type of the same width but another meaning loads silently (`time` read as
//! `timestamp`, `integer` as `oid`, `bigint` as `money`), so two types are compatible only when
//! they are the same type, spelled alike modulo the aliases below, or a widening whose receive
//! function keeps every value unchanged (a longer `varchar`, `varchar` into `text`, more
//! `numeric` digits at the same scale, more fractional digits of a time or timestamp). Any other
//! pair, known or not, is different.

use std::fmt;

/// A type name in one spelling: `format_type`'s base name, its modifiers and array depth.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Spelled {
    /// Canonical base name (`integer`, `character varying`, `timestamp with time zone`), or the
    /// identifier parts of another type (unquoted parts lowercased, quoted ones as written).
    name: Vec<String>,
    /// Numeric type modifiers (`varchar(10)`: `[10]`; `numeric(12,2)`: `[12, 2]`); `None`
    /// when the modifier is not a list of numbers (PostGIS `geometry(Point,4326)`), which
    /// then must be equal as written.
    mods: Option<Vec<u32>>,
    /// The modifier text as written, lowercased (compared when `mods` is `None`).
    raw_mods: String,
    /// Array dimensions (`[]` suffixes).
    dims: usize,
}

impl fmt::Display for Spelled {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}{}", self.name.join("."), self.raw_mods)?;
        for _ in 0..self.dims {
            write!(f, "[]")?;
        }
        Ok(())
    }
}

/// The canonical name of a built-in type spelled `name` (lowercase, unqualified).
fn alias(name: &str) -> Option<&'static str> {
    Some(match name {
        "int" | "int4" | "integer" => "integer",
        "int2" | "smallint" => "smallint",
        "int8" | "bigint" => "bigint",
        "float4" | "real" => "real",
        "float8" | "double precision" => "double precision",
        "bool" | "boolean" => "boolean",
        "varchar" | "character varying" => "character varying",
        "char" | "character" | "bpchar" => "character",
        "decimal" | "numeric" => "numeric",
        "varbit" | "bit varying" => "bit varying",
        "timestamp" | "timestamp without time zone" => "timestamp without time zone",
        "timestamptz" | "timestamp with time zone" => "timestamp with time zone",
        "time" | "time without time zone" => "time without time zone",
        "timetz" | "time with time zone" => "time with time zone",
        _ => return None,
    })
}

/// Splits `a.b."C d"` into identifier parts (unquoted ones lowercased); `None` if it is not a
/// dotted list of identifiers.
fn ident_parts(s: &str) -> Option<Vec<String>> {
    let mut parts = Vec::new();
    let mut chars = s.chars().peekable();
    loop {
        let mut part = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next()? {
                    '"' if chars.peek() == Some(&'"') => {
                        chars.next();
                        part.push('"');
                    }
                    '"' => break,
                    c => part.push(c),
                }
            }
        } else {
            while let Some(&c) = chars.peek() {
                if c == '.' {
                    break;
                }
                part.push(c.to_ascii_lowercase());
                chars.next();
            }
            part = part.trim().to_string();
            if part.is_empty() {
                return None;
            }
        }
        parts.push(part);
        match chars.next() {
            None => return Some(parts),
            Some('.') => {}
            Some(_) => return None,
        }
    }
}

/// Reads a type as `format_type`, a job file or howdah's MySQL type table writes it.
fn spell(sql: &str) -> Spelled {
    let mut s = sql.trim().to_string();
    let mut dims = 0;
    while let Some(rest) = s.strip_suffix(']') {
        match rest.rfind('[') {
            Some(open) => {
                s = rest[..open].trim_end().to_string();
                dims += 1;
            }
            None => break,
        }
    }
    let lower = s.to_ascii_lowercase();
    let lower = lower.strip_prefix("pg_catalog.").unwrap_or(&lower);
    // `timestamp(3) with time zone`: the modifier sits inside the name.
    for (base, tz, plain) in [
        (
            "timestamp",
            "timestamp with time zone",
            "timestamp without time zone",
        ),
        ("time", "time with time zone", "time without time zone"),
    ] {
        let Some(rest) = lower.strip_prefix(base) else {
            continue;
        };
        let (mods, rest) = match rest.strip_prefix('(') {
            Some(inner) => match inner.split_once(')') {
                Some((m, rest)) => (Some(m.trim().to_string()), rest),
                None => continue,
            },
            None => (None, rest),
        };
        let name = match rest.trim() {
            "" | "without time zone" => plain,
            "with time zone" => tz,
            "tz" if mods.is_none() => tz,
            _ => continue,
        };
        return modified(vec![name.to_string()], mods.as_deref(), dims);
    }
    // `timestamptz(3)`, `timetz(3)`, `varchar(10)`, `numeric(12,2)`, `public.geometry(Point)`.
    let (name, mods) = match lower.find('(') {
        Some(open) if lower.ends_with(')') => (
            lower[..open].trim_end(),
            Some(&lower[open + 1..lower.len() - 1]),
        ),
        _ => (lower, None),
    };
    if let Some(canonical) = alias(name) {
        return modified(vec![canonical.to_string()], mods, dims);
    }
    // Another type: its identifiers as written (quoted parts keep their case).
    let written = match s.find('(') {
        Some(open) if mods.is_some() => s[..open].trim_end().to_string(),
        _ => s.clone(),
    };
    let written = written
        .strip_prefix("pg_catalog.")
        .map(str::to_string)
        .unwrap_or(written);
    let parts = ident_parts(&written).unwrap_or_else(|| vec![written.to_ascii_lowercase()]);
    let parts = match parts.as_slice() {
        [schema, rest @ ..] if schema == "pg_catalog" && !rest.is_empty() => rest.to_vec(),
        _ => parts,
    };
    modified(parts, mods, dims)
}

impl Spelled {
    /// The unqualified name, for built-in types.
    fn builtin(&self) -> Option<&str> {
        match self.name.as_slice() {
            [one] => Some(one),
            _ => None,
        }
    }
}

fn modified(name: Vec<String>, mods: Option<&str>, dims: usize) -> Spelled {
    let raw_mods = mods.map(|m| format!("({})", m.trim())).unwrap_or_default();
    let mut numbers: Option<Vec<u32>> = match mods {
        None => Some(Vec::new()),
        Some(m) => m.split(',').map(|a| a.trim().parse().ok()).collect(),
    };
    // `numeric(12)` is `numeric(12,0)`; `character` is `character(1)`.
    match (name[0].as_str(), numbers.as_deref()) {
        ("numeric", Some([p])) => numbers = Some(vec![*p, 0]),
        ("character", Some([])) if name.len() == 1 => numbers = Some(vec![1]),
        _ => {}
    }
    Spelled {
        name,
        mods: numbers,
        raw_mods,
        dims,
    }
}

/// Whether a column of type `target` receives every value of type `sent` unchanged over
/// binary COPY (both as `format_type` or a job file writes them).
pub fn receives(sent: &str, target: &str) -> bool {
    let (a, b) = (spell(sent), spell(target));
    if a.dims != b.dims {
        return false;
    }
    let (Some(am), Some(bm)) = (a.mods.as_deref(), b.mods.as_deref()) else {
        return a == b;
    };
    match (a.builtin(), b.builtin()) {
        (Some(x), Some(y)) if x != y => {
            // varchar and text share their binary form; text is varchar without a limit.
            matches!(
                (x, y, bm),
                ("character varying", "text", _) | ("text", "character varying", [])
            )
        }
        (
            Some(
                "character varying"
                | "bit varying"
                | "timestamp without time zone"
                | "timestamp with time zone"
                | "time without time zone"
                | "time with time zone",
            ),
            _,
        ) => match (am, bm) {
            (_, []) => true,
            ([], [_]) => false,
            ([n], [m]) => m >= n,
            _ => am == bm,
        },
        // Same scale, at least as many digits: numeric_recv keeps the value; any other
        // modifier would round it.
        (Some("numeric"), _) => match (am, bm) {
            (_, []) => true,
            ([p1, s1], [p2, s2]) => s1 == s2 && p2 >= p1,
            _ => false,
        },
        _ => a.name == b.name && am == bm,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spellings_of_one_type_agree() {
        for (a, b) in [
            ("int4", "integer"),
            ("varchar(10)", "character varying(10)"),
            ("numeric(20)", "numeric(20,0)"),
            ("timestamp(6)", "timestamp(6) without time zone"),
            ("timestamptz(3)", "timestamp(3) with time zone"),
            ("timestamptz", "timestamp with time zone"),
            ("time(3)", "time(3) without time zone"),
            ("pg_catalog.int8", "bigint"),
            ("bit varying(5)", "varbit(5)"),
            ("\"public\".\"t_col\"", "public.t_col"),
            ("public.\"My Type\"", "\"public\".\"My Type\""),
            ("text[]", "text[]"),
            ("integer[]", "int4[]"),
            ("public.geometry(Point,4326)", "public.geometry(Point,4326)"),
            ("character", "character(1)"),
        ] {
            assert!(receives(a, b), "{a} -> {b}");
            assert!(receives(b, a), "{b} -> {a}");
        }
    }

    #[test]
    fn widenings_load_and_narrowings_or_other_types_do_not() {
        for (sent, target) in [
            ("character varying(10)", "character varying(20)"),
            ("character varying(10)", "character varying"),
            ("character varying(10)", "text"),
            ("text", "character varying"),
            ("numeric(8,2)", "numeric(12,2)"),
            ("numeric(8,2)", "numeric"),
            (
                "timestamp(3) without time zone",
                "timestamp without time zone",
            ),
            ("timestamp(0) with time zone", "timestamp(3) with time zone"),
            ("character varying(5)[]", "character varying(9)[]"),
        ] {
            assert!(receives(sent, target), "{sent} -> {target}");
        }
        for (sent, target) in [
            ("time without time zone", "timestamp without time zone"),
            ("integer", "oid"),
            ("bigint", "money"),
            ("integer", "bigint"),
            ("character varying(20)", "character varying(10)"),
            ("text", "character varying(10)"),
            ("character varying", "character(10)"),
            ("numeric(12,4)", "numeric(6,2)"),
            ("numeric(8,2)", "numeric(12,3)"),
            ("numeric", "numeric(12,2)"),
            (
                "timestamp without time zone",
                "timestamp(3) without time zone",
            ),
            ("timestamp without time zone", "timestamp with time zone"),
            ("integer[]", "integer"),
            ("character(5)", "character(10)"),
            ("public.mood", "public.other"),
            ("public.\"Mood\"", "public.mood"),
            ("public.geometry(Point,4326)", "public.geometry(Point,3857)"),
            ("json", "jsonb"),
            ("uuid", "text"),
        ] {
            assert!(!receives(sent, target), "{sent} -> {target}");
        }
    }
}
