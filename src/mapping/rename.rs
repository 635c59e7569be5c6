//! Renaming identifiers inside DDL text that the server rendered (`pg_get_indexdef`,
//! `pg_get_constraintdef`): a small tokenizer that skips string literals and rewrites only
//! whole identifiers, so a renamed column or table keeps its indexes and constraints.

use std::collections::HashMap;

use crate::catalog::{quote_ident, QualifiedName};

/// An identifier as PostgreSQL prints it: bare when it needs no quotes, quoted otherwise.
pub fn ident(name: &str) -> String {
    let bare = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_')
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if bare {
        name.to_string()
    } else {
        quote_ident(name)
    }
}

/// A token of SQL text.
#[derive(Debug, PartialEq)]
enum Token<'a> {
    /// An identifier (bare or quoted), with its value.
    Ident(&'a str, String),
    /// Anything else, copied as it is.
    Other(&'a str),
}

fn tokens(sql: &str) -> Vec<Token<'_>> {
    let b = sql.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        let start = i;
        let c = b[i];
        if c == b'\'' {
            // A string literal; '' inside it is an escaped quote.
            i += 1;
            while i < b.len() {
                if b[i] == b'\'' {
                    if b.get(i + 1) == Some(&b'\'') {
                        i += 2;
                        continue;
                    }
                    break;
                }
                i += 1;
            }
            i = (i + 1).min(b.len());
            out.push(Token::Other(&sql[start..i]));
        } else if c == b'"' {
            i += 1;
            let mut value = String::new();
            while i < b.len() {
                if b[i] == b'"' {
                    if b.get(i + 1) == Some(&b'"') {
                        value.push('"');
                        i += 2;
                        continue;
                    }
                    break;
                }
                let ch_len = sql[i..].chars().next().map_or(1, char::len_utf8);
                value.push_str(&sql[i..i + ch_len]);
                i += ch_len;
            }
            i = (i + 1).min(b.len());
            out.push(Token::Ident(&sql[start..i], value));
        } else if c.is_ascii_alphabetic() || c == b'_' || c >= 0x80 {
            while i < b.len()
                && (b[i].is_ascii_alphanumeric() || b[i] == b'_' || b[i] == b'$' || b[i] >= 0x80)
            {
                i += 1;
            }
            let word = &sql[start..i];
            out.push(Token::Ident(word, word.to_lowercase()));
        } else {
            let ch_len = sql[i..].chars().next().map_or(1, char::len_utf8);
            i += ch_len;
            out.push(Token::Other(&sql[start..i]));
        }
    }
    out
}

/// Whether `sql` uses the identifier `name` (not as a qualified part or a function name).
pub fn mentions(sql: &str, name: &str) -> bool {
    let toks = tokens(sql);
    (0..toks.len()).any(|i| is_column_ref(&toks, i, name))
}

fn is_column_ref(toks: &[Token<'_>], i: usize, name: &str) -> bool {
    let Token::Ident(_, v) = &toks[i] else {
        return false;
    };
    if v != name {
        return false;
    }
    let prev_dot = i > 0 && matches!(toks[i - 1], Token::Other("."));
    // `x::date`: a type name, not a column.
    let type_name = i > 1
        && matches!(toks[i - 1], Token::Other(":"))
        && matches!(toks[i - 2], Token::Other(":"));
    let next = toks[i + 1..]
        .iter()
        .find(|t| !matches!(t, Token::Other(" ")));
    let call = matches!(next, Some(Token::Other("(")));
    let qualifier = matches!(next, Some(Token::Other(".")));
    !prev_dot && !type_name && !call && !qualifier
}

/// Rewrites column names in the part of `sql` that refers to the table's own columns.
///
/// For a foreign key (`FOREIGN KEY (a) REFERENCES t(b)`), only the part before `REFERENCES`
/// is the table's own; [`rename_referenced`] handles the rest.
pub fn rename_columns(sql: &str, renames: &HashMap<String, String>) -> String {
    if renames.is_empty() {
        return sql.to_string();
    }
    let toks = tokens(sql);
    let stop = toks
        .iter()
        .position(|t| matches!(t, Token::Ident(_, v) if v == "references"))
        .unwrap_or(toks.len());
    let mut out = String::with_capacity(sql.len() + 16);
    for (i, t) in toks.iter().enumerate() {
        match t {
            Token::Ident(raw, v) if i < stop => match renames.get(v) {
                Some(new) if is_column_ref(&toks, i, v) => out.push_str(&ident(new)),
                _ => out.push_str(raw),
            },
            Token::Ident(raw, _) | Token::Other(raw) => out.push_str(raw),
        }
    }
    out
}

/// Rewrites `schema.table` (as the server prints it) to the table's new name.
pub fn rename_table(sql: &str, old: &QualifiedName, new: &QualifiedName) -> String {
    if old == new {
        return sql.to_string();
    }
    let toks = tokens(sql);
    let mut out = String::with_capacity(sql.len() + 16);
    let mut i = 0;
    while i < toks.len() {
        if let (Token::Ident(_, s), Some(Token::Other(".")), Some(Token::Ident(_, n))) =
            (&toks[i], toks.get(i + 1), toks.get(i + 2))
        {
            if *s == old.schema && *n == old.name {
                out.push_str(&format!("{}.{}", ident(&new.schema), ident(&new.name)));
                i += 3;
                continue;
            }
        }
        match &toks[i] {
            Token::Ident(raw, _) | Token::Other(raw) => out.push_str(raw),
        }
        i += 1;
    }
    out
}

/// In a foreign key definition, rewrites the referenced table's name and the column names in
/// the parentheses after it.
pub fn rename_referenced(
    sql: &str,
    table: &QualifiedName,
    new_table: &QualifiedName,
    renames: &HashMap<String, String>,
) -> String {
    let toks = tokens(sql);
    let Some(at) = toks
        .iter()
        .position(|t| matches!(t, Token::Ident(_, v) if v == "references"))
    else {
        return sql.to_string();
    };
    let mut out = String::with_capacity(sql.len() + 16);
    for t in &toks[..at] {
        match t {
            Token::Ident(raw, _) | Token::Other(raw) => out.push_str(raw),
        }
    }
    let rest: String = toks[at..]
        .iter()
        .map(|t| match t {
            Token::Ident(raw, _) | Token::Other(raw) => *raw,
        })
        .collect();
    // The referenced name: `REFERENCES schema.table(` or a bare `REFERENCES table(` when the
    // table is on the search path.
    let rtoks = tokens(&rest);
    let mut j = 1;
    while matches!(rtoks.get(j), Some(Token::Other(" "))) {
        j += 1;
    }
    let (schema, name, end) = match (rtoks.get(j), rtoks.get(j + 1), rtoks.get(j + 2)) {
        (Some(Token::Ident(_, s)), Some(Token::Other(".")), Some(Token::Ident(_, n))) => {
            (Some(s.clone()), n.clone(), j + 3)
        }
        (Some(Token::Ident(_, n)), _, _) => (None, n.clone(), j + 1),
        _ => return sql.to_string(),
    };
    let same = name == table.name && schema.as_ref().is_none_or(|s| *s == table.schema);
    if !same {
        out.push_str(&rest);
        return out;
    }
    for t in &rtoks[..j] {
        match t {
            Token::Ident(raw, _) | Token::Other(raw) => out.push_str(raw),
        }
    }
    out.push_str(&format!(
        "{}.{}",
        ident(&new_table.schema),
        ident(&new_table.name)
    ));
    let mut depth = 0;
    let mut done = false;
    for t in &rtoks[end..] {
        match t {
            Token::Other("(") if !done => {
                depth += 1;
                out.push('(');
            }
            Token::Other(")") if !done => {
                depth -= 1;
                if depth == 0 {
                    done = true;
                }
                out.push(')');
            }
            Token::Ident(raw, v) if depth > 0 && !done => match renames.get(v) {
                Some(n) => out.push_str(&ident(n)),
                None => out.push_str(raw),
            },
            Token::Ident(raw, _) | Token::Other(raw) => out.push_str(raw),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> HashMap<String, String> {
        pairs
            .iter()
            .map(|(a, b)| (a.to_string(), b.to_string()))
            .collect()
    }

    #[test]
    fn renames_columns_not_functions_or_literals() {
        let r = map(&[("total", "amount"), ("lower", "x")]);
        assert_eq!(
            rename_columns("CHECK ((total > 0) AND (lower(name) <> 'total'))", &r),
            "CHECK ((amount > 0) AND (lower(name) <> 'total'))"
        );
        assert_eq!(
            rename_columns(
                "CHECK ((date > '2000-01-01'::date))",
                &map(&[("date", "event_date")])
            ),
            "CHECK ((event_date > '2000-01-01'::date))"
        );
        assert_eq!(
            rename_columns(
                "CREATE INDEX i ON public.t USING btree (total, \"Mixed\")",
                &map(&[("Mixed", "Total Sum")])
            ),
            "CREATE INDEX i ON public.t USING btree (total, \"Total Sum\")"
        );
    }

    #[test]
    fn foreign_keys_rename_both_sides() {
        let fk = "FOREIGN KEY (cust) REFERENCES public.customers(id) ON DELETE CASCADE";
        assert_eq!(
            rename_columns(fk, &map(&[("cust", "customer_id"), ("id", "no")])),
            "FOREIGN KEY (customer_id) REFERENCES public.customers(id) ON DELETE CASCADE"
        );
        let old = QualifiedName::new("public", "customers");
        let new = QualifiedName::new("crm", "Clients");
        assert_eq!(
            rename_referenced(fk, &old, &new, &map(&[("id", "client_id")])),
            "FOREIGN KEY (cust) REFERENCES crm.\"Clients\"(client_id) ON DELETE CASCADE"
        );
    }

    #[test]
    fn table_names_in_index_definitions() {
        let old = QualifiedName::new("public", "orders");
        let new = QualifiedName::new("sales", "orders_v2");
        assert_eq!(
            rename_table(
                "CREATE INDEX o ON ONLY public.orders USING btree (id)",
                &old,
                &new
            ),
            "CREATE INDEX o ON ONLY sales.orders_v2 USING btree (id)"
        );
        assert!(mentions("CHECK ((total > 0))", "total"));
        assert!(!mentions("CHECK ((t.total > 0))", "t"));
    }
}
