//! For a MySQL/MariaDB source, where the two plans cannot be compared node by node: each table
//! the target reads by a sequential scan is looked up in the source's catalog, and every index
//! of it there whose columns no target index starts with is named (with its columns), as the
//! likely reason of the slowdown.
//!
//! Invariant: tables and columns are matched as the copy names them by default (lower case,
//! `[mysql] names = "lowercase"`); only `information_schema` and `pg_index` are read.

use mysql_async::prelude::Queryable;
use tokio_postgres::Client;

use super::plan::Scan;
use crate::catalog::quote_ident;

/// Findings for the tables the target's plan reads whole.
pub async fn findings(
    source: &mut mysql_async::Conn,
    target: &Client,
    scans: &[Scan],
) -> Vec<String> {
    let mut out = Vec::new();
    let mut seen: Vec<&str> = Vec::new();
    for s in scans.iter().filter(|s| s.node == "Seq Scan") {
        if seen.contains(&s.relation.as_str()) {
            continue;
        }
        seen.push(&s.relation);
        let source_indexes: Vec<(String, String)> = match source
            .exec(
                "SELECT index_name, GROUP_CONCAT(LOWER(column_name) ORDER BY seq_in_index SEPARATOR ',') \
                 FROM information_schema.statistics WHERE table_schema = DATABASE() AND LOWER(table_name) = ? \
                 GROUP BY index_name",
                (s.table.to_lowercase(),),
            )
            .await
        {
            Ok(rows) => rows,
            Err(e) => {
                out.push(format!("reading the source's indexes of {} failed: {e}", s.relation));
                continue;
            }
        };
        let regclass = format!("{}.{}", quote_ident(&s.schema), quote_ident(&s.table));
        let target_indexes: Vec<String> = match target
            .query(
                "SELECT string_agg(a.attname, ',' ORDER BY k.ord) FROM pg_index i \
                 CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) \
                 JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum \
                 WHERE i.indrelid = to_regclass($1) AND i.indisvalid GROUP BY i.indexrelid",
                &[&regclass],
            )
            .await
        {
            Ok(rows) => rows.iter().filter_map(|r| r.try_get(0).ok()).collect(),
            Err(e) => {
                out.push(format!(
                    "reading the target's indexes of {} failed: {}",
                    s.relation,
                    crate::error::db_reason(&e)
                ));
                continue;
            }
        };
        for (name, columns) in source_indexes {
            if !covered(&columns, &target_indexes) {
                out.push(format!(
                    "Seq Scan on {} on the target: the source's index {name} ({columns}) has no counterpart there \
                     (no index starting with these columns)",
                    s.relation
                ));
            }
        }
    }
    out
}

/// Whether some target index starts with exactly these columns.
fn covered(columns: &str, target: &[String]) -> bool {
    let want: Vec<&str> = columns.split(',').collect();
    target.iter().any(|t| {
        let have: Vec<&str> = t.split(',').collect();
        have.len() >= want.len() && have[..want.len()] == want[..]
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_index_is_covered_by_one_that_starts_with_its_columns() {
        let target = vec!["id".to_string(), "customer_id,placed".to_string()];
        assert!(covered("id", &target));
        assert!(covered("customer_id", &target));
        assert!(covered("customer_id,placed", &target));
        assert!(!covered("placed", &target));
        assert!(!covered("customer_id,placed,total", &target));
    }
}
