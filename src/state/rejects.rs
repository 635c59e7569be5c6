//! Rejected rows in `howdah.rejects`: written by the writer in the same transaction as the
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

/// Deletes the rejects of `table` (in the caller's transaction): a table whose rows are all
/// copied again rejects them again.
pub async fn delete_table(
    client: &Client,
    st: &StateRef,
    table: &str,
) -> crate::error::Result<u64> {
    client
        .execute(
            &format!(
                "DELETE FROM {} WHERE job = $1 AND table_name = $2",
                st.table("rejects")
            ),
            &[&st.job, &table],
        )
        .await
        .map_err(|e| crate::error::query_error("deleting a table's rejected rows", &e))
}

/// Tables (by the name their rejects are recorded under) with rejects in the job: the target
/// lacks rows the source holds there.
pub async fn tables(
    client: &Client,
    st: &StateRef,
) -> crate::error::Result<std::collections::HashSet<String>> {
    let rows = client
        .query(
            &format!(
                "SELECT DISTINCT table_name FROM {} WHERE job = $1",
                st.table("rejects")
            ),
            &[&st.job],
        )
        .await
        .map_err(|e| crate::error::query_error("reading the tables with rejects", &e))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// Writes every reject of the job to `path` as JSON lines (`table`, `key`, `column`, `value`,
/// `reason`, `at`), in the order they were recorded; returns how many.
pub async fn export(
    client: &Client,
    st: &StateRef,
    path: &std::path::Path,
) -> crate::error::Result<u64> {
    use std::io::Write as _;
    let sql = format!(
        "SELECT json_build_object('table', table_name, 'key', key, 'column', column_name, \
         'value', value, 'reason', reason, 'at', at)::text FROM {} WHERE job = $1 ORDER BY at, ctid",
        st.table("rejects")
    );
    let rows = client
        .query(&sql, &[&st.job])
        .await
        .map_err(|e| crate::error::query_error("reading the job's rejects", &e))?;
    let fail = |e: std::io::Error| {
        crate::error::Error::Config(format!(
            "cannot write the rejects file {}: {e}",
            path.display()
        ))
    };
    let mut f = std::io::BufWriter::new(std::fs::File::create(path).map_err(fail)?);
    for r in &rows {
        let line: String = r.get(0);
        writeln!(f, "{line}").map_err(fail)?;
    }
    f.flush().map_err(fail)?;
    Ok(rows.len() as u64)
}
