//! `--tables` / `--exclude` glob patterns over `schema.table`.

use crate::catalog::QualifiedName;
use crate::error::{Error, Result};

/// Include and exclude patterns; a table is selected when it matches an include (or there are
/// none) and no exclude.
#[derive(Debug, Clone, Default)]
pub struct TableFilter {
    include: Vec<String>,
    exclude: Vec<String>,
}

impl TableFilter {
    /// Builds a filter, checking that every pattern names `schema.table`.
    pub fn new(include: &[String], exclude: &[String]) -> Result<Self> {
        for p in include.iter().chain(exclude) {
            if !p.contains('.') {
                return Err(Error::Config(format!(
                    "table pattern \"{p}\" must be schema-qualified, e.g. \"public.{p}\" or \"*.{p}\""
                )));
            }
        }
        Ok(TableFilter {
            include: include.to_vec(),
            exclude: exclude.to_vec(),
        })
    }

    /// Whether the table is selected.
    pub fn matches(&self, name: &QualifiedName) -> bool {
        let full = format!("{}.{}", name.schema, name.name);
        let included = self.include.is_empty() || self.include.iter().any(|p| glob(p, &full));
        included && !self.exclude.iter().any(|p| glob(p, &full))
    }

    /// Whether no `--tables` pattern narrows the copy (excludes may): then a copy carries the
    /// whole database's large objects too, as `pg_dump` does without `-t`/`-n`.
    pub fn whole_database(&self) -> bool {
        self.include.is_empty()
    }

    /// The patterns, for messages: `--tables a.* --exclude a.tmp_*`.
    pub fn describe(&self) -> String {
        let mut parts: Vec<String> = self
            .include
            .iter()
            .map(|p| format!("--tables {p}"))
            .collect();
        parts.extend(self.exclude.iter().map(|p| format!("--exclude {p}")));
        if parts.is_empty() {
            "no pattern: every table of every user schema".into()
        } else {
            parts.join(" ")
        }
    }

    /// Include patterns that matched none of the given names (for "no table matched" errors).
    pub fn unmatched_includes<'a>(&'a self, names: &[QualifiedName]) -> Vec<&'a str> {
        self.include
            .iter()
            .filter(|p| {
                !names
                    .iter()
                    .any(|n| glob(p, &format!("{}.{}", n.schema, n.name)))
            })
            .map(String::as_str)
            .collect()
    }
}

/// Shell-style match: `*` any run, `?` one character, everything else literal.
fn glob(pattern: &str, text: &str) -> bool {
    let p: Vec<char> = pattern.chars().collect();
    let t: Vec<char> = text.chars().collect();
    let (mut pi, mut ti) = (0, 0);
    let mut star: Option<(usize, usize)> = None;
    while ti < t.len() {
        if pi < p.len() && (p[pi] == '?' || p[pi] == t[ti]) {
            pi += 1;
            ti += 1;
        } else if pi < p.len() && p[pi] == '*' {
            star = Some((pi, ti));
            pi += 1;
        } else if let Some((sp, st)) = star {
            pi = sp + 1;
            ti = st + 1;
            star = Some((sp, st + 1));
        } else {
            return false;
        }
    }
    p[pi..].iter().all(|&c| c == '*')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn globs() {
        assert!(glob("public.*", "public.orders"));
        assert!(glob("*.tmp_*", "x.tmp_1"));
        assert!(!glob("public.tmp_*", "public.orders"));
        assert!(glob("public.t?", "public.t1"));
        assert!(!glob("public.t?", "public.t12"));
        assert!(glob("*", ""));
    }

    #[test]
    fn include_and_exclude() -> Result<()> {
        let f = TableFilter::new(&["public.*".into()], &["public.tmp_*".into()])?;
        assert!(f.matches(&QualifiedName::new("public", "orders")));
        assert!(!f.matches(&QualifiedName::new("public", "tmp_x")));
        assert!(!f.matches(&QualifiedName::new("other", "orders")));
        assert!(TableFilter::new(&["orders".into()], &[]).is_err());
        Ok(())
    }
}
