//! How MySQL identifiers become PostgreSQL identifiers (`[mysql] identifiers`): one function
//! for schemas, tables, columns, indexes, constraints and enum types alike, so `copy`, `plan`,
//! `--dry-run` and `verify` all name an object the same way. Invariant: the result depends only
//! on the name and the rule (never on other names); clashes are found by the caller.

use super::NameCase;

impl NameCase {
    /// The rule as the job file spells it.
    pub fn key(self) -> &'static str {
        match self {
            NameCase::Lowercase => "lowercase",
            NameCase::Preserve => "preserve",
            NameCase::SnakeCase => "snake_case",
        }
    }

    /// The target name of MySQL name `name` under this rule.
    pub fn apply(self, name: &str) -> String {
        match self {
            NameCase::Lowercase => name.to_lowercase(),
            NameCase::Preserve => name.to_string(),
            NameCase::SnakeCase => snake_case(name),
        }
    }
}

/// `InvoiceLine` -> `invoice_line`, `CustomerId` -> `customer_id`, `HTTPStatus` ->
/// `http_status`, `customerID` -> `customer_id`, `Address2Line` -> `address2_line`.
/// A word starts at an upper-case letter that follows a lower-case letter or a digit, or that
/// ends a run of capitals followed by a lower-case letter; spaces and hyphens become `_`;
/// existing underscores are kept and never doubled.
pub fn snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::with_capacity(name.len() + 4);
    for (i, &c) in chars.iter().enumerate() {
        let c = if c == ' ' || c == '-' { '_' } else { c };
        if c.is_uppercase() && i > 0 {
            let prev = chars[i - 1];
            let next_lower = chars.get(i + 1).is_some_and(|n| n.is_lowercase());
            let boundary =
                prev.is_lowercase() || prev.is_ascii_digit() || (prev.is_uppercase() && next_lower);
            if boundary && !out.ends_with('_') {
                out.push('_');
            }
        }
        if c == '_' && out.ends_with('_') {
            continue;
        }
        out.extend(c.to_lowercase());
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snake_case_splits_words() {
        for (from, to) in [
            ("InvoiceLine", "invoice_line"),
            ("CustomerId", "customer_id"),
            ("HTTPStatus", "http_status"),
            ("customerID", "customer_id"),
            ("ID", "id"),
            ("id", "id"),
            ("invoice_line", "invoice_line"),
            ("Invoice_Line", "invoice_line"),
            ("Address2Line", "address2_line"),
            ("Line2", "line2"),
            ("getHTTPResponseCode", "get_http_response_code"),
            ("Order Items", "order_items"),
            ("order-items", "order_items"),
            ("ÉtatCivil", "état_civil"),
            ("PK_InvoiceLine", "pk_invoice_line"),
            ("", ""),
        ] {
            assert_eq!(snake_case(from), to, "snake_case({from:?})");
        }
    }

    #[test]
    fn rules() {
        assert_eq!(NameCase::Lowercase.apply("InvoiceLine"), "invoiceline");
        assert_eq!(NameCase::Preserve.apply("InvoiceLine"), "InvoiceLine");
        assert_eq!(NameCase::SnakeCase.apply("InvoiceLine"), "invoice_line");
    }
}
