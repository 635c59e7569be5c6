//! Why a query is slower on the target: the shape of its plan on each side
//! (`EXPLAIN (FORMAT JSON, VERBOSE)`, which plans without running), and what the shapes and
//! the target's catalog tell.
//!
//! Findings, each naming the table and the index:
//! - a table read by a sequential scan on the target where the source read it through an
//!   index (index, index-only or bitmap scan), and then whether that index is missing on the
//!   target (with its definition on the source), invalid, or there but not chosen;
//! - a table of the target's plan without statistics (never analyzed): the planner guesses.
//!
//! Invariant: only `EXPLAIN` without `ANALYZE` runs here, inside a `READ ONLY` transaction with
//! the statement timeout, so diagnosing a query never executes it.

use std::time::Duration;

use serde::Serialize;
use serde_json::Value;
use tokio_postgres::Client;

use crate::catalog::quote_ident;
use crate::error::db_reason;

/// One scan of a table in a plan.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Scan {
    /// `schema.table`.
    pub relation: String,
    /// Its schema.
    pub schema: String,
    /// The table's own name.
    pub table: String,
    /// `Seq Scan`, `Index Scan`, `Index Only Scan`, `Bitmap Heap Scan`, ...
    pub node: String,
    /// The indexes it reads, if any.
    pub indexes: Vec<String>,
}

/// The plan diagnosis of a slower query.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Diagnosis {
    /// The source's plan, one line (absent for a MySQL source).
    pub source_shape: Option<String>,
    /// The target's plan, one line.
    pub target_shape: Option<String>,
    /// What the shapes and the catalog tell.
    pub findings: Vec<String>,
}

/// The JSON plan of `sql`, planned but not run.
pub async fn explain(client: &Client, sql: &str, timeout: Duration) -> Result<Value, String> {
    super::run::begin_read_only(client, timeout).await?;
    let result = client
        .simple_query(&format!(
            "{} EXPLAIN (FORMAT JSON, VERBOSE) {sql}",
            super::run::OWN_MARK
        ))
        .await;
    let _ = client.batch_execute("ROLLBACK").await;
    let text = result
        .map_err(|e| db_reason(&e))?
        .into_iter()
        .find_map(|m| match m {
            tokio_postgres::SimpleQueryMessage::Row(r) => r.get(0).map(str::to_string),
            _ => None,
        })
        .ok_or("EXPLAIN returned no plan")?;
    let v: Value = serde_json::from_str(&text).map_err(|e| format!("EXPLAIN's JSON: {e}"))?;
    v.get(0)
        .and_then(|p| p.get("Plan"))
        .cloned()
        .ok_or_else(|| "EXPLAIN's JSON has no Plan".to_string())
}

/// The plan on one line: `Sort(Hash Join(Seq Scan on public.a, Hash(Index Scan using i on public.b)))`.
pub fn shape(plan: &Value) -> String {
    let mut out = String::new();
    shape_into(plan, &mut out);
    out
}

fn shape_into(node: &Value, out: &mut String) {
    let kind = node["Node Type"].as_str().unwrap_or("?");
    out.push_str(kind);
    if let Some(index) = node["Index Name"].as_str() {
        out.push_str(" using ");
        out.push_str(index);
    }
    if let Some(rel) = relation(node) {
        out.push_str(" on ");
        out.push_str(&rel.0);
    }
    if let Some(children) = node["Plans"].as_array() {
        out.push('(');
        for (i, c) in children.iter().enumerate() {
            if i > 0 {
                out.push_str(", ");
            }
            shape_into(c, out);
        }
        out.push(')');
    }
}

/// `(schema.table, schema, table)` of a node that reads a table.
fn relation(node: &Value) -> Option<(String, String, String)> {
    let rel = node["Relation Name"].as_str()?;
    let schema = node["Schema"].as_str().unwrap_or("public");
    Some((
        format!("{schema}.{rel}"),
        schema.to_string(),
        rel.to_string(),
    ))
}

/// Every table scan of a plan, with the indexes it reads (a bitmap heap scan's from the
/// bitmap index scans under it).
pub fn scans(plan: &Value) -> Vec<Scan> {
    let mut out = Vec::new();
    scans_into(plan, &mut out);
    out
}

fn scans_into(node: &Value, out: &mut Vec<Scan>) {
    if let Some((relation, schema, table)) = relation(node) {
        let mut indexes = Vec::new();
        bitmap_indexes(node, &mut indexes);
        out.push(Scan {
            relation,
            schema,
            table,
            node: node["Node Type"].as_str().unwrap_or("?").to_string(),
            indexes,
        });
    }
    for c in node["Plans"].as_array().into_iter().flatten() {
        scans_into(c, out);
    }
}

fn bitmap_indexes(node: &Value, out: &mut Vec<String>) {
    if let Some(i) = node["Index Name"].as_str() {
        out.push(i.to_string());
    }
    for c in node["Plans"].as_array().into_iter().flatten() {
        // A child that reads a table of its own is another scan.
        if relation(c).is_none() {
            bitmap_indexes(c, out);
        }
    }
}

/// Findings of a query slower on the target: compares the two plans (when the source is
/// PostgreSQL) and looks up the indexes and statistics concerned on the target.
pub async fn diagnose(
    source: Option<(&Client, &Value)>,
    target: &Client,
    target_plan: &Value,
) -> Diagnosis {
    let mut d = Diagnosis {
        source_shape: source.map(|(_, p)| shape(p)),
        target_shape: Some(shape(target_plan)),
        findings: Vec::new(),
    };
    let target_scans = scans(target_plan);
    if let Some((src, src_plan)) = source {
        let source_scans = scans(src_plan);
        for t in target_scans.iter().filter(|s| s.node == "Seq Scan") {
            let Some(s) = source_scans
                .iter()
                .find(|s| s.relation == t.relation && !s.indexes.is_empty())
            else {
                continue;
            };
            for index in &s.indexes {
                d.findings
                    .push(index_finding(src, target, &t.relation, &t.schema, index, &s.node).await);
            }
        }
    }
    let mut seen = Vec::new();
    for t in &target_scans {
        if seen.contains(&t.relation) {
            continue;
        }
        seen.push(t.relation.clone());
        if let Some(f) = statistics_finding(target, t).await {
            d.findings.push(f);
        }
    }
    d
}

async fn index_finding(
    source: &Client,
    target: &Client,
    relation: &str,
    schema: &str,
    index: &str,
    source_node: &str,
) -> String {
    let head = format!(
        "Seq Scan on {relation} on the target where the source used index {schema}.{index} ({source_node})"
    );
    let valid = target
        .query_opt(
            "SELECT i.indisvalid FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid \
             JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2",
            &[&schema, &index],
        )
        .await;
    match valid {
        Ok(None) => {
            let def = source
                .query_opt(
                    "SELECT pg_get_indexdef(c.oid) FROM pg_class c JOIN pg_namespace n \
                     ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2",
                    &[&schema, &index],
                )
                .await
                .ok()
                .flatten()
                .and_then(|r| r.try_get::<_, Option<String>>(0).ok().flatten());
            match def {
                Some(def) => format!("{head}: index {schema}.{index} is missing on the target; on the source: {def}"),
                None => format!("{head}: index {schema}.{index} is missing on the target"),
            }
        }
        Ok(Some(row)) if !row.try_get::<_, bool>(0).unwrap_or(true) => format!(
            "{head}: index {schema}.{index} is INVALID on the target (a failed build): REINDEX INDEX {schema}.{index}"
        ),
        Ok(Some(_)) => format!(
            "{head}: the index exists on the target but was not chosen (statistics or planner settings differ)"
        ),
        Err(e) => format!("{head} (looking up the index failed: {})", db_reason(&e)),
    }
}

async fn statistics_finding(target: &Client, scan: &Scan) -> Option<String> {
    let relation = &scan.relation;
    let quoted = format!("{}.{}", quote_ident(&scan.schema), quote_ident(&scan.table));
    let row = target
        .query_opt(
            "SELECT NOT EXISTS (SELECT 1 FROM pg_statistic s WHERE s.starelid = c.oid), c.reltuples < 0 \
             FROM pg_class c WHERE c.oid = to_regclass($1)",
            &[&quoted],
        )
        .await
        .ok()??;
    let no_stats: bool = row.try_get(0).ok()?;
    let never: bool = row.try_get(1).ok()?;
    (no_stats || never).then(|| {
        format!("{relation} has no statistics on the target (never analyzed): run ANALYZE {quoted}")
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scans_and_shape_of_a_plan() {
        let plan: Value = serde_json::json!({
            "Node Type": "Hash Join",
            "Plans": [
                {"Node Type": "Seq Scan", "Relation Name": "orders", "Schema": "public"},
                {"Node Type": "Hash", "Plans": [
                    {"Node Type": "Bitmap Heap Scan", "Relation Name": "customers", "Schema": "shop",
                     "Plans": [{"Node Type": "Bitmap Index Scan", "Index Name": "customers_city"}]}
                ]}
            ]
        });
        assert_eq!(
            shape(&plan),
            "Hash Join(Seq Scan on public.orders, Hash(Bitmap Heap Scan on shop.customers(Bitmap Index Scan using customers_city)))"
        );
        let s = scans(&plan);
        assert_eq!(s.len(), 2);
        assert_eq!(s[1].relation, "shop.customers");
        assert_eq!(s[1].indexes, vec!["customers_city".to_string()]);
        assert!(s[0].indexes.is_empty());
    }
}
