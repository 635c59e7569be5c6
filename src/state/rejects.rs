//! Rejected rows in `sluice.rejects`: written by the writer in the same transaction as the
//! rows and checkpoint of their segment (see [`crate::reject`]).

use tokio_postgres::Client;

use super::StateRef;
use crate::reject::Reject;

/// SQL that inserts rejects from parallel arrays: `$1` job, `$2` table, then keys, columns,
/// values and reasons as `text[]`.
pub fn insert_sql(st: &StateRef) -> String {
    format!(
        "INSERT INTO {} (job, table_name, key, column_name, value, reason) \
         SELECT $1, $2, k, c, v, r FROM unnest($3::text[], $4::text[], $5::text[], $6::text[]) AS x(k, c, v, r)",
        st.table("rejects")
    )
}

/// Inserts `rejects` of `table` (one statement, inside the caller's transaction).
pub async fn insert(
    client: &Client,
    sql: &str,
    job: &str,
    table: &str,
    rejects: &[Reject],
) -> Result<(), tokio_postgres::Error> {
    if rejects.is_empty() {
        return Ok(());
    }
    let col = |f: fn(&Reject) -> &str| -> Vec<&str> { rejects.iter().map(f).collect() };
    let (keys, cols, values, reasons) = (
        col(|r| &r.key),
        col(|r| &r.column),
        col(|r| &r.value),
        col(|r| &r.reason),
    );
    client
        .execute(sql, &[&job, &table, &keys, &cols, &values, &reasons])
        .await?;
    Ok(())
}
