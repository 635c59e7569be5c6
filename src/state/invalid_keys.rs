//! Foreign keys that the copied rows violate (orphans on the source, rows a `where` filter or
//! a reject left out): the final step adds them `NOT VALID` and records them in
//! `howdah.invalid_keys` in the same transaction (see `schema::ddl::final_phases_with`), so
//! the job still finishes. A rerun of the job tries `VALIDATE CONSTRAINT` on each recorded key
//! and forgets those that now validate; `status` and `verify` report the others.
//!
//! Invariant: a row here names a constraint that exists on the target `NOT VALID`, with the
//! orphan count of its last check and the query that lists the orphans.

use serde::Serialize;
use tokio_postgres::Client;

use super::{query_err, StateRef};
use crate::catalog::{quote_ident, QualifiedName};
use crate::error::Result;

/// A foreign key left `NOT VALID` because rows violate it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct InvalidKey {
    /// The referencing table (`schema.table` in JSON).
    #[serde(serialize_with = "as_text")]
    pub table: QualifiedName,
    /// The constraint's name.
    pub constraint: String,
    /// Referencing rows without a referenced row, at the last check.
    pub orphans: i64,
    /// A query that lists those rows on the target.
    pub orphans_query: String,
}

fn as_text<S: serde::Serializer>(name: &QualifiedName, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(name)
}

impl std::fmt::Display for InvalidKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "foreign key {} on {} is NOT VALID: {} row(s) reference no row ({})",
            self.constraint, self.table, self.orphans, self.orphans_query
        )
    }
}

/// SQL that creates the table (idempotent, part of every state layout from 2 on).
pub fn create_sql(st: &StateRef) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {keys} (
           job text NOT NULL REFERENCES {jobs} (name) ON DELETE CASCADE,
           schema_name text NOT NULL,
           table_name text NOT NULL,
           constraint_name text NOT NULL,
           orphans bigint NOT NULL,
           orphans_query text NOT NULL,
           at timestamptz NOT NULL DEFAULT now(),
           PRIMARY KEY (job, schema_name, table_name, constraint_name));",
        keys = st.table("invalid_keys"),
        jobs = st.table("jobs"),
    )
}

/// The keys recorded for the job, by table and name (none when the table does not exist yet,
/// as in a state schema written before it was added).
pub async fn read(client: &Client, st: &StateRef) -> Result<Vec<InvalidKey>> {
    let exists: bool = client
        .query_one(
            "SELECT to_regclass($1::text) IS NOT NULL",
            &[&st.table("invalid_keys")],
        )
        .await
        .map_err(query_err("looking for the invalid_keys state table"))?
        .get(0);
    if !exists {
        return Ok(Vec::new());
    }
    let rows = client
        .query(
            &format!(
                "SELECT schema_name, table_name, constraint_name, orphans, orphans_query FROM {} \
                 WHERE job = $1 ORDER BY schema_name, table_name, constraint_name",
                st.table("invalid_keys")
            ),
            &[&st.job],
        )
        .await
        .map_err(query_err("reading the job's invalid foreign keys"))?;
    Ok(rows
        .iter()
        .map(|r| InvalidKey {
            table: QualifiedName::new(r.get::<_, String>(0), r.get::<_, String>(1)),
            constraint: r.get(2),
            orphans: r.get(3),
            orphans_query: r.get(4),
        })
        .collect())
}

/// Tries `VALIDATE CONSTRAINT` on every key recorded for the job: a key that validates now
/// (its orphans were fixed on the target) is forgotten; the others get a fresh orphan count.
/// Returns the keys still invalid.
pub async fn revalidate(client: &Client, st: &StateRef) -> Result<Vec<InvalidKey>> {
    let mut still = Vec::new();
    for key in read(client, st).await? {
        let validate = format!(
            "ALTER TABLE {} VALIDATE CONSTRAINT {}",
            key.table.quoted(),
            quote_ident(&key.constraint)
        );
        let forget = format!(
            "DELETE FROM {} WHERE job = $1 AND schema_name = $2 AND table_name = $3 AND constraint_name = $4",
            st.table("invalid_keys")
        );
        match client.batch_execute(&validate).await {
            Ok(()) => {
                tracing::info!(
                    "foreign key {} on {} validates now",
                    key.constraint,
                    key.table
                );
                client
                    .execute(
                        &forget,
                        &[&st.job, &key.table.schema, &key.table.name, &key.constraint],
                    )
                    .await
                    .map_err(query_err("updating the job's invalid foreign keys"))?;
            }
            Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::FOREIGN_KEY_VIOLATION) => {
                let orphans = count(client, &key.orphans_query).await?;
                client
                    .execute(
                        &format!(
                            "UPDATE {} SET orphans = $5, at = now() WHERE job = $1 AND schema_name = $2 \
                             AND table_name = $3 AND constraint_name = $4",
                            st.table("invalid_keys")
                        ),
                        &[
                            &st.job,
                            &key.table.schema,
                            &key.table.name,
                            &key.constraint,
                            &orphans,
                        ],
                    )
                    .await
                    .map_err(query_err("updating the job's invalid foreign keys"))?;
                still.push(InvalidKey { orphans, ..key });
            }
            Err(e) => {
                return Err(crate::error::query_error(
                    format!("validating foreign key {} on {}", key.constraint, key.table),
                    &e,
                ))
            }
        }
    }
    Ok(still)
}

/// The `NOT VALID` foreign keys of `table` on a target (whoever added them), with their
/// orphans counted now.
pub async fn on_target(client: &Client, table: &QualifiedName) -> Result<Vec<InvalidKey>> {
    let what = format!("looking for NOT VALID foreign keys of {table}");
    let rows = client
        .query(
            &format!(
                "SELECT k.conname::text, ({}) FROM pg_catalog.pg_constraint k \
                 WHERE k.conrelid = to_regclass($1::text) AND k.contype = 'f' AND NOT k.convalidated \
                 ORDER BY k.conname",
                crate::schema::ddl::orphans_query_sql("k.oid")
            ),
            &[&table.quoted()],
        )
        .await
        .map_err(query_err(&what))?;
    let mut out = Vec::new();
    for r in rows {
        let orphans_query: String = r.get(1);
        out.push(InvalidKey {
            table: table.clone(),
            constraint: r.get(0),
            orphans: count(client, &orphans_query).await?,
            orphans_query,
        });
    }
    Ok(out)
}

async fn count(client: &Client, listing: &str) -> Result<i64> {
    client
        .query_one(&format!("SELECT count(*) FROM ({listing}) o"), &[])
        .await
        .map(|r| r.get(0))
        .map_err(query_err("counting the rows that violate a foreign key"))
}
