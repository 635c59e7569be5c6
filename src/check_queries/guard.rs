//! The read-only guard: a small SQL lexer that refuses, before anything runs, every statement
//! that is not one plain read query, and tells whether a query orders its answer.
//!
//! The guard is the first of two: every query also runs in a `READ ONLY` transaction with a
//! statement timeout (`run.rs`), where the server itself refuses writes. The lexer knows
//! literals, quoted identifiers and comments of both dialects (PostgreSQL `E'..'` and
//! dollar quoting; MySQL backticks, `#` comments and backslash escapes), so a keyword inside a
//! string never counts and a keyword outside one is never missed.
//!
//! Invariant: a statement passes only if it is exactly one statement, starts (after opening
//! parentheses) with `SELECT`, `WITH`, `VALUES` or `TABLE` (PostgreSQL), and holds no
//! unquoted word that writes, locks or reaches outside the query (`INSERT`, `UPDATE`,
//! `DELETE`, `MERGE`, `INTO`, `FOR SHARE`, `nextval`, `pg_terminate_backend`, ...). A MySQL
//! executable comment (`/*! ... */`) is refused: it is code the lexer would skip.

/// Which SQL dialect a text is in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// PostgreSQL: `$n` parameters, `"ident"`, `E'..'`, `$tag$..$tag$`.
    Postgres,
    /// MySQL/MariaDB: `?` parameters, `` `ident` ``, `"string"`, `#` comments.
    Mysql,
}

/// One lexical token and where it is in the text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Token {
    /// What it is.
    pub kind: Kind,
    /// Byte range in the text.
    pub start: usize,
    /// End of the byte range (exclusive).
    pub end: usize,
}

/// Token kinds the guard and the parameter filler need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// An unquoted word, lower-cased.
    Word(String),
    /// A quoted identifier, as written between its quotes.
    Ident(String),
    /// A string literal.
    Str,
    /// A number.
    Number,
    /// A parameter: `$n` (PostgreSQL, 1-based) or the n-th `?` (MySQL, 1-based).
    Param(usize),
    /// Any other character (operators, parentheses, commas, `;`).
    Punct(char),
}

/// Why a text cannot be lexed or may not run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal(pub String);

/// Splits `sql` into tokens, comments and white space dropped.
pub fn lex(sql: &str, dialect: Dialect) -> Result<Vec<Token>, Refusal> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut question = 0;
    while i < b.len() {
        let c = b[i];
        let start = i;
        if c.is_ascii_whitespace() {
            i += 1;
        } else if c == b'-' && b.get(i + 1) == Some(&b'-') || dialect == Dialect::Mysql && c == b'#'
        {
            while i < b.len() && b[i] != b'\n' {
                i += 1;
            }
        } else if c == b'/' && b.get(i + 1) == Some(&b'*') {
            if dialect == Dialect::Mysql && matches!(b.get(i + 2), Some(b'!') | Some(b'M')) {
                return Err(Refusal(
                    "a MySQL executable comment (/*! ... */) is refused: write the SQL plainly"
                        .into(),
                ));
            }
            i = skip_block_comment(b, i, dialect)?;
        } else if c == b'\'' || dialect == Dialect::Mysql && c == b'"' {
            let escapes = dialect == Dialect::Mysql;
            i = skip_quoted(b, i, c, escapes)?;
            out.push(tok(Kind::Str, start, i));
        } else if (c == b'E' || c == b'e')
            && b.get(i + 1) == Some(&b'\'')
            && dialect == Dialect::Postgres
        {
            i = skip_quoted(b, i + 1, b'\'', true)?;
            out.push(tok(Kind::Str, start, i));
        } else if c == b'"' || dialect == Dialect::Mysql && c == b'`' {
            let end = skip_quoted(b, i, c, false)?;
            let inner = sql[i + 1..end - 1].replace(
                if c == b'"' { "\"\"" } else { "``" },
                if c == b'"' { "\"" } else { "`" },
            );
            i = end;
            out.push(tok(Kind::Ident(inner), start, i));
        } else if c == b'$' && dialect == Dialect::Postgres {
            if b.get(i + 1).is_some_and(u8::is_ascii_digit) {
                i += 1;
                while i < b.len() && b[i].is_ascii_digit() {
                    i += 1;
                }
                let n = sql[start + 1..i].parse::<usize>().map_err(|_| {
                    Refusal(format!("parameter {} is out of range", &sql[start..i]))
                })?;
                out.push(tok(Kind::Param(n), start, i));
            } else if let Some(end) = dollar_quote(sql, i)? {
                i = end;
                out.push(tok(Kind::Str, start, i));
            } else {
                i += 1;
                out.push(tok(Kind::Punct('$'), start, i));
            }
        } else if c == b'?' && dialect == Dialect::Mysql {
            question += 1;
            i += 1;
            out.push(tok(Kind::Param(question), start, i));
        } else if c.is_ascii_digit() || c == b'.' && b.get(i + 1).is_some_and(u8::is_ascii_digit) {
            while i < b.len() && (b[i].is_ascii_alphanumeric() || b[i] == b'.' || b[i] == b'_') {
                i += 1;
            }
            out.push(tok(Kind::Number, start, i));
        } else if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 {
            while i < b.len()
                && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'$' || b[i] >= 0x80)
            {
                i += 1;
            }
            out.push(tok(
                Kind::Word(sql[start..i].to_ascii_lowercase()),
                start,
                i,
            ));
        } else {
            // Multi-byte characters only start words (handled above); this is ASCII.
            i += 1;
            out.push(tok(Kind::Punct(c as char), start, i));
        }
    }
    Ok(out)
}

fn tok(kind: Kind, start: usize, end: usize) -> Token {
    Token { kind, start, end }
}

/// The end of a `/* */` comment starting at `i` (nested in PostgreSQL).
fn skip_block_comment(b: &[u8], mut i: usize, dialect: Dialect) -> Result<usize, Refusal> {
    let mut depth = 0;
    while i < b.len() {
        if b[i] == b'/' && b.get(i + 1) == Some(&b'*') {
            if depth == 0 || dialect == Dialect::Postgres {
                depth += 1;
            }
            i += 2;
        } else if b[i] == b'*' && b.get(i + 1) == Some(&b'/') {
            depth -= 1;
            i += 2;
            if depth == 0 {
                return Ok(i);
            }
        } else {
            i += 1;
        }
    }
    Err(Refusal("a /* comment is not closed".into()))
}

/// The end (after the closing quote) of a literal opened by `quote` at `i`; a doubled quote
/// stands for itself, and with `escapes` a backslash escapes the next byte.
fn skip_quoted(b: &[u8], i: usize, quote: u8, escapes: bool) -> Result<usize, Refusal> {
    let mut j = i + 1;
    while j < b.len() {
        if escapes && b[j] == b'\\' {
            j += 2;
        } else if b[j] == quote {
            if b.get(j + 1) == Some(&quote) {
                j += 2;
            } else {
                return Ok(j + 1);
            }
        } else {
            j += 1;
        }
    }
    Err(Refusal(format!("a {} quote is not closed", quote as char)))
}

/// A dollar-quoted string `$tag$ ... $tag$` starting at `i`: its end, or `None` when `$` at
/// `i` opens none.
fn dollar_quote(sql: &str, i: usize) -> Result<Option<usize>, Refusal> {
    let rest = &sql[i + 1..];
    let Some(close) = rest.find('$') else {
        return Ok(None);
    };
    let tag = &rest[..close];
    if !tag.chars().all(|c| c.is_alphanumeric() || c == '_') {
        return Ok(None);
    }
    let delim = format!("${tag}$");
    let body = i + delim.len();
    match sql[body..].find(&delim) {
        Some(at) => Ok(Some(body + at + delim.len())),
        None => Err(Refusal(format!("a {delim} string is not closed"))),
    }
}

/// Words that write, lock, or act outside the query; refused wherever they appear unquoted.
const REFUSED_WORDS: &[&str] = &[
    "insert",
    "update",
    "delete",
    "merge",
    "truncate",
    "into",
    "copy",
    "call",
    "lock",
    "grant",
    "revoke",
    "create",
    "alter",
    "drop",
    "vacuum",
    "listen",
    "notify",
    "nextval",
    "setval",
    "set_config",
    "pg_terminate_backend",
    "pg_cancel_backend",
    "pg_reload_conf",
    "pg_notify",
    "pg_rotate_logfile",
    "load_file",
    "get_lock",
    "release_lock",
];
/// Prefixes of function families refused the same way (advisory locks, large objects, dblink).
const REFUSED_PREFIXES: &[&str] = &["pg_advisory", "lo_", "dblink", "pg_file", "pg_read"];

/// Checks that `sql` is one read-only query; the reason when it is not.
pub fn check_read_only(sql: &str, dialect: Dialect) -> Result<Vec<Token>, Refusal> {
    let tokens = lex(sql, dialect)?;
    let mut body = tokens.as_slice();
    // One trailing semicolon is fine; anything after it is a second statement.
    while let Some((last, rest)) = body.split_last() {
        if last.kind == Kind::Punct(';') {
            body = rest;
        } else {
            break;
        }
    }
    if body.is_empty() {
        return Err(Refusal("the query is empty".into()));
    }
    if body.iter().any(|t| t.kind == Kind::Punct(';')) {
        return Err(Refusal(
            "more than one statement: give one query per entry".into(),
        ));
    }
    let first = body
        .iter()
        .find(|t| t.kind != Kind::Punct('('))
        .map(|t| &t.kind);
    let allowed: &[&str] = match dialect {
        Dialect::Postgres => &["select", "with", "values", "table"],
        Dialect::Mysql => &["select", "with", "values"],
    };
    match first {
        Some(Kind::Word(w)) if allowed.contains(&w.as_str()) => {}
        Some(Kind::Word(w)) => {
            return Err(Refusal(format!(
                "it starts with {}: only {} queries run",
                w.to_uppercase(),
                match dialect {
                    Dialect::Postgres => "SELECT, WITH ... SELECT, VALUES and TABLE",
                    Dialect::Mysql => "SELECT, WITH ... SELECT and VALUES",
                }
            )))
        }
        _ => {
            return Err(Refusal(
                "it does not start with SELECT, WITH, VALUES or TABLE".into(),
            ))
        }
    }
    for (n, t) in body.iter().enumerate() {
        let Kind::Word(w) = &t.kind else { continue };
        if REFUSED_WORDS.contains(&w.as_str()) || REFUSED_PREFIXES.iter().any(|p| w.starts_with(p))
        {
            return Err(Refusal(format!(
                "it holds {}, which writes, locks or acts outside the query",
                w.to_uppercase()
            )));
        }
        // FOR SHARE / FOR KEY SHARE / FOR NO KEY UPDATE / FOR UPDATE: row locks.
        if w == "for" {
            if let Some(Kind::Word(next)) = body.get(n + 1).map(|t| &t.kind) {
                if matches!(next.as_str(), "share" | "key" | "no" | "update") {
                    return Err(Refusal("it locks rows (FOR SHARE/UPDATE)".into()));
                }
            }
        }
    }
    Ok(tokens)
}

/// Whether the query's own result is ordered: an `ORDER BY` outside any parentheses (a window's
/// or a subquery's `ORDER BY` orders nothing the client sees).
pub fn has_top_level_order_by(tokens: &[Token]) -> bool {
    let mut depth = 0i32;
    for (n, t) in tokens.iter().enumerate() {
        match &t.kind {
            Kind::Punct('(') => depth += 1,
            Kind::Punct(')') => depth -= 1,
            Kind::Word(w) if depth == 0 && w == "order" => {
                if matches!(tokens.get(n + 1).map(|t| &t.kind), Some(Kind::Word(b)) if b == "by") {
                    return true;
                }
            }
            _ => {}
        }
    }
    false
}

/// The highest parameter number of a query (0 when it has none).
pub fn param_count(tokens: &[Token]) -> usize {
    tokens
        .iter()
        .filter_map(|t| match t.kind {
            Kind::Param(n) => Some(n),
            _ => None,
        })
        .max()
        .unwrap_or(0)
}

/// `sql` with each parameter token replaced by `values[n - 1]` (SQL literals).
pub fn fill_params(sql: &str, tokens: &[Token], values: &[String]) -> Result<String, Refusal> {
    let mut out = String::with_capacity(sql.len());
    let mut at = 0;
    for t in tokens {
        if let Kind::Param(n) = t.kind {
            let value = values.get(n - 1).ok_or_else(|| {
                Refusal(format!(
                    "parameter {n} has no value ({} given)",
                    values.len()
                ))
            })?;
            out.push_str(&sql[at..t.start]);
            out.push_str(value);
            at = t.end;
        }
    }
    out.push_str(&sql[at..]);
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(sql: &str) -> bool {
        check_read_only(sql, Dialect::Postgres).is_ok()
    }

    #[test]
    fn read_queries_pass_and_writes_are_refused() {
        assert!(ok("SELECT 1"));
        assert!(ok("  (SELECT 1) UNION (SELECT 2);"));
        assert!(ok("WITH a AS (SELECT 1) SELECT * FROM a"));
        assert!(ok("VALUES (1), (2)"));
        assert!(ok("TABLE t"));
        assert!(ok(
            "SELECT 'insert into t' AS \"update\" -- delete\n FROM t"
        ));
        assert!(ok("SELECT $$ drop table t $$, $x$;$x$"));
        assert!(ok("SELECT last_update, updated_at FROM t"));
        for bad in [
            "INSERT INTO t VALUES (1)",
            "UPDATE t SET a = 1",
            "WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d",
            "SELECT * INTO new_t FROM t",
            "SELECT * FROM t FOR UPDATE",
            "SELECT * FROM t FOR SHARE",
            "SELECT 1; DROP TABLE t",
            "EXPLAIN ANALYZE DELETE FROM t",
            "SELECT nextval('s')",
            "SELECT pg_advisory_lock(1)",
            "SELECT pg_terminate_backend(1)",
            "",
            "-- nothing",
            "SELECT 'open",
        ] {
            assert!(!ok(bad), "{bad:?} must be refused");
        }
    }

    #[test]
    fn mysql_dialect_knows_its_literals() {
        let my = |s: &str| check_read_only(s, Dialect::Mysql).is_ok();
        assert!(my("SELECT `update`, \"it's; \\\" delete\" FROM t # drop\n"));
        assert!(!my("SELECT /*! SLEEP(1) */ 1"));
        assert!(!my("SELECT * FROM t INTO OUTFILE '/tmp/x'"));
        assert!(!my("SELECT * FROM t LOCK IN SHARE MODE"));
        assert!(!my("TABLE t"));
    }

    #[test]
    fn order_by_counts_only_at_the_top() {
        let t = |s: &str| has_top_level_order_by(&lex(s, Dialect::Postgres).unwrap_or_default());
        assert!(t("SELECT a FROM t ORDER BY a"));
        assert!(!t("SELECT row_number() OVER (ORDER BY a) FROM t"));
        assert!(!t("SELECT * FROM (SELECT a FROM t ORDER BY a) s"));
        assert!(!t("SELECT 'order by' FROM t"));
    }

    #[test]
    fn parameters_are_filled_outside_literals() {
        let sql = "SELECT '$1', a FROM t WHERE a = $1 AND b = $2";
        let tokens = lex(sql, Dialect::Postgres).unwrap_or_default();
        assert_eq!(param_count(&tokens), 2);
        let filled = fill_params(sql, &tokens, &["42".into(), "'x'".into()]);
        assert_eq!(
            filled,
            Ok("SELECT '$1', a FROM t WHERE a = 42 AND b = 'x'".to_string())
        );
        let sql = "SELECT '?' FROM t WHERE a = ? AND b = ?";
        let tokens = lex(sql, Dialect::Mysql).unwrap_or_default();
        assert_eq!(param_count(&tokens), 2);
        assert!(fill_params(sql, &tokens, &["1".into()]).is_err());
    }
}
