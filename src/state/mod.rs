//! Checkpoint state in the target database (schema `howdah`): jobs, chunks and finished steps.
//!
//! Everything that makes a copy resumable commits in the same target transaction as the work
//! it describes: a chunk's rows and its new key offset, a DDL step and its "done" mark, the
//! whole pre-data schema and the job's chunk plan. A crash therefore leaves state that matches
//! the target exactly, and a resume neither loses nor repeats a row or a step.

use tokio_postgres::Client;

use crate::catalog::quote_ident;
use crate::chunking::Chunk;
use crate::error::{Error, Result};

pub mod builds;
pub mod chunks;
pub mod follow;
pub mod invalid_keys;
pub mod job;
pub mod large_objects;
pub mod rate;
pub mod rejects;
pub mod steps;
pub mod values;
pub mod worker;

pub use chunks::*;
pub use steps::*;

/// Version of the state tables' layout; [`ensure`] migrates older layouts forward.
/// 1: jobs, chunks, steps. 2: chunk claims (owner, lease, priority), workers, job snapshot,
/// rejected rows; foreign keys left NOT VALID (`invalid_keys`) and the jobs' per-run SQL values
/// (`job_values`), both created when missing: older layout-2 schemas gain them without a
/// migration. 3: the snapshot each chunk was read in.
pub const STATE_VERSION: i32 = 3;

/// Where the state lives and which job it is about.
#[derive(Debug, Clone)]
pub struct StateRef {
    /// Schema holding the state tables (default `howdah`).
    pub schema: String,
    /// Job name (default `default`).
    pub job: String,
}

impl StateRef {
    /// `"schema".table` for a state table.
    pub fn table(&self, name: &str) -> String {
        format!("{}.{}", quote_ident(&self.schema), quote_ident(name))
    }

    /// The job's advisory-lock namespace (first key of the two-key form): the workers' liveness
    /// locks and the setup lock live under it. FNV-1a, so every build computes the same key.
    pub fn lock_key(&self) -> i32 {
        (fnv1a(&[self.schema.as_bytes(), b"/", self.job.as_bytes()]) & 0x7fff_ffff) as i32
    }
}

/// 64-bit FNV-1a over the concatenated parts.
pub fn fnv1a(parts: &[&[u8]]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for part in parts {
        for b in *part {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    }
    h
}

fn query_err(what: &str) -> impl Fn(tokio_postgres::Error) -> Error + '_ {
    move |e| crate::error::query_error(what, &e)
}

/// SQL that creates the state tables when missing (idempotent), in the current layout.
pub fn create_sql(st: &StateRef) -> String {
    format!(
        "CREATE SCHEMA IF NOT EXISTS {schema};
         CREATE TABLE IF NOT EXISTS {meta} (version int NOT NULL);
         INSERT INTO {meta} SELECT {STATE_VERSION} WHERE NOT EXISTS (SELECT 1 FROM {meta});
         CREATE TABLE IF NOT EXISTS {jobs} (
           name text PRIMARY KEY,
           config text NOT NULL,
           phase text NOT NULL,
           created_at timestamptz NOT NULL DEFAULT now(),
           updated_at timestamptz NOT NULL DEFAULT now(),
           last_error text,
           snapshot text);
         CREATE TABLE IF NOT EXISTS {chunks} (
           job text NOT NULL REFERENCES {jobs} (name) ON DELETE CASCADE,
           table_no int NOT NULL,
           chunk_no int NOT NULL,
           table_name text NOT NULL,
           range_kind text NOT NULL,
           lower_key text[],
           upper_key text[],
           start_block bigint,
           end_block bigint,
           last_key text[],
           rows_done bigint NOT NULL DEFAULT 0,
           bytes_done bigint NOT NULL DEFAULT 0,
           estimated_rows bigint NOT NULL DEFAULT 0,
           commits int NOT NULL DEFAULT 0,
           attempts int NOT NULL DEFAULT 0,
           status text NOT NULL DEFAULT 'pending',
           updated_at timestamptz NOT NULL DEFAULT now(),
           last_error text,
           priority int NOT NULL DEFAULT 0,
           owner int,
           lease_until timestamptz,
           claims int NOT NULL DEFAULT 0,
           rows_rejected bigint NOT NULL DEFAULT 0,
           snapshot text,
           PRIMARY KEY (job, table_no, chunk_no));
         CREATE TABLE IF NOT EXISTS {steps} (
           job text NOT NULL REFERENCES {jobs} (name) ON DELETE CASCADE,
           step text NOT NULL,
           done_at timestamptz NOT NULL DEFAULT now(),
           PRIMARY KEY (job, step));
         {workers}
         {rejects}
         {invalid_keys}
         {values}
         {large_objects}
         {rates}
         {builds}",
        schema = quote_ident(&st.schema),
        rejects = create_rejects_sql(st),
        invalid_keys = invalid_keys::create_sql(st),
        values = values::create_sql(st),
        large_objects = large_objects::create_sql(st),
        rates = rate::create_sql(st),
        builds = builds::create_sql(st),
        meta = st.table("meta"),
        jobs = st.table("jobs"),
        chunks = st.table("chunks"),
        steps = st.table("steps"),
        workers = create_workers_sql(st),
    )
}

fn create_rejects_sql(st: &StateRef) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {rejects} (
           job text NOT NULL REFERENCES {jobs} (name) ON DELETE CASCADE,
           table_name text NOT NULL,
           key text NOT NULL,
           column_name text NOT NULL,
           value text,
           reason text NOT NULL,
           at timestamptz NOT NULL DEFAULT now());
         CREATE INDEX IF NOT EXISTS rejects_job_table ON {rejects} (job, table_name);",
        rejects = st.table("rejects"),
        jobs = st.table("jobs"),
    )
}

fn create_workers_sql(st: &StateRef) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {workers} (
           worker_no int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
           job text NOT NULL REFERENCES {jobs} (name) ON DELETE CASCADE,
           host text NOT NULL,
           pid int NOT NULL,
           started_at timestamptz NOT NULL DEFAULT now(),
           heartbeat_at timestamptz NOT NULL DEFAULT now(),
           ended_at timestamptz);",
        workers = st.table("workers"),
        jobs = st.table("jobs"),
    )
}

/// SQL that moves a layout-1 state schema to layout 2: chunks gain claim columns, jobs the
/// shared snapshot, and the workers table appears. Existing jobs keep their progress.
fn migrate_1_to_2_sql(st: &StateRef) -> String {
    format!(
        "ALTER TABLE {chunks} ADD COLUMN IF NOT EXISTS priority int NOT NULL DEFAULT 0,
           ADD COLUMN IF NOT EXISTS owner int, ADD COLUMN IF NOT EXISTS lease_until timestamptz,
           ADD COLUMN IF NOT EXISTS claims int NOT NULL DEFAULT 0,
           ADD COLUMN IF NOT EXISTS rows_rejected bigint NOT NULL DEFAULT 0;
         ALTER TABLE {jobs} ADD COLUMN IF NOT EXISTS snapshot text;
         {workers}
         {rejects}
         UPDATE {meta} SET version = 2;",
        chunks = st.table("chunks"),
        jobs = st.table("jobs"),
        meta = st.table("meta"),
        workers = create_workers_sql(st),
        rejects = create_rejects_sql(st),
    )
}

/// SQL that moves a layout-2 state schema to layout 3: chunks record the snapshot they were
/// read in (`NULL`: the job's snapshot).
fn migrate_2_to_3_sql(st: &StateRef) -> String {
    format!(
        "ALTER TABLE {chunks} ADD COLUMN IF NOT EXISTS snapshot text;
         UPDATE {meta} SET version = 3;",
        chunks = st.table("chunks"),
        meta = st.table("meta"),
    )
}

/// Creates the state tables if needed, migrates an older layout, and checks that the layout
/// is one this build knows. Serialized by an advisory lock, so workers starting together do
/// not race on `CREATE ... IF NOT EXISTS`.
pub async fn ensure(client: &Client, st: &StateRef) -> Result<()> {
    refuse_state_elsewhere(client, &st.schema).await?;
    let lock = fnv1a(&[b"howdah state ", st.schema.as_bytes()]) as i64;
    client
        .batch_execute(&format!(
            "BEGIN; SELECT pg_advisory_xact_lock({lock}); {}",
            create_sql(st)
        ))
        .await
        .map_err(query_err("creating the howdah state tables on the target"))?;
    let version_sql = format!("SELECT max(version) FROM {}", st.table("meta"));
    let version = || async {
        client
            .query_one(&version_sql, &[])
            .await
            .map(|r| r.get::<_, Option<i32>>(0))
            .map_err(query_err("reading the state version"))
    };
    let mut found = version().await?;
    if found == Some(1) {
        client
            .batch_execute(&migrate_1_to_2_sql(st))
            .await
            .map_err(query_err("migrating the state tables to layout 2"))?;
        tracing::info!("state schema {} migrated from layout 1 to 2", st.schema);
        found = version().await?;
    }
    if found == Some(2) {
        client
            .batch_execute(&migrate_2_to_3_sql(st))
            .await
            .map_err(query_err("migrating the state tables to layout 3"))?;
        tracing::info!("state schema {} migrated from layout 2 to 3", st.schema);
        found = version().await?;
    }
    if found == Some(STATE_VERSION) {
        create_indexes(client, st).await?;
    }
    client
        .batch_execute("COMMIT")
        .await
        .map_err(query_err("creating the howdah state tables on the target"))?;
    if found != Some(STATE_VERSION) {
        return Err(Error::Config(format!(
            "the state schema {} has layout version {:?}; this build of howdah knows version {STATE_VERSION}",
            st.schema, found
        )));
    }
    Ok(())
}

/// Index of the chunks a worker may claim, in claim order: the claim reads the first of them
/// instead of scanning and sorting every chunk of the job (done ones included), so its cost
/// does not grow with the job's chunks. Partial, so it holds only the open chunks.
const CHUNKS_OPEN_INDEX: &str = "chunks_open";

/// Creates the state tables' indexes that older schemas of the current layout lack (run in
/// [`ensure`]'s transaction, after the migrations). An index that is there is left alone
/// without `CREATE INDEX IF NOT EXISTS`, whose share lock on the table would wait for every
/// running lane's open checkpoint transaction of a job another worker is copying.
async fn create_indexes(client: &Client, st: &StateRef) -> Result<()> {
    let index = format!(
        "{}.{}",
        quote_ident(&st.schema),
        quote_ident(CHUNKS_OPEN_INDEX)
    );
    let exists: bool = client
        .query_one("SELECT to_regclass($1::text) IS NOT NULL", &[&index])
        .await
        .map_err(query_err("looking for the state tables' indexes"))?
        .get(0);
    if exists {
        return Ok(());
    }
    client
        .batch_execute(&format!(
            "CREATE INDEX IF NOT EXISTS {} ON {} (job, priority, table_no, chunk_no) \
             WHERE status IN ('pending', 'running')",
            quote_ident(CHUNKS_OPEN_INDEX),
            st.table("chunks")
        ))
        .await
        .map_err(query_err("creating the state tables' indexes"))
}

/// Other schemas of the target that hold state tables of this tool (a `meta` table with a
/// `version`, `jobs` with a `config`, `chunks` with a `range_kind`): an earlier version's
/// default schema, or a `state_schema` set in another job file. Found by shape, not by name,
/// so a state schema under any name is seen.
pub async fn state_schemas_besides(client: &Client, schema: &str) -> Result<Vec<String>> {
    let has = |table: &str, column: &str| {
        format!(
            "EXISTS (SELECT 1 FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid \
             WHERE c.relnamespace = n.oid AND c.relname = '{table}' AND a.attname = '{column}')"
        )
    };
    let rows = client
        .query(
            &format!(
                "SELECT n.nspname FROM pg_namespace n WHERE n.nspname <> $1 AND {} AND {} AND {} \
                 ORDER BY 1",
                has("meta", "version"),
                has("jobs", "config"),
                has("chunks", "range_kind")
            ),
            &[&schema],
        )
        .await
        .map_err(query_err("looking for state schemas on the target"))?;
    Ok(rows.iter().map(|r| r.get(0)).collect())
}

/// What to tell a user whose target has no state schema `schema` but holds state elsewhere
/// (`None` when there is none elsewhere).
pub async fn state_elsewhere_message(client: &Client, schema: &str) -> Result<Option<String>> {
    let others = state_schemas_besides(client, schema).await?;
    let Some(first) = others.first() else {
        return Ok(None);
    };
    let listed = others
        .iter()
        .map(|s| quote_ident(s))
        .collect::<Vec<_>>()
        .join(", ");
    Ok(Some(format!(
        "the target has no state schema {new} but holds copy state in {listed} (written by an \
         earlier version of howdah, whose default state schema had another name, or by a job \
         with another state_schema). To carry on with those jobs, rename it while no copy runs: \
         `ALTER SCHEMA {old} RENAME TO {new};` (or set `copy.state_schema = \"{first}\"`, \
         `status --state-schema {first}`); to start afresh instead, drop it: \
         `DROP SCHEMA {old} CASCADE;`",
        new = quote_ident(schema),
        old = quote_ident(first),
    )))
}

/// Refuses to create a new state schema next to an existing one of another name: the jobs
/// there would be forgotten silently (a resume would start over, a finished copy would be
/// redone).
async fn refuse_state_elsewhere(client: &Client, schema: &str) -> Result<()> {
    let exists: bool = client
        .query_one(
            "SELECT to_regnamespace($1::text) IS NOT NULL",
            &[&quote_ident(schema)],
        )
        .await
        .map_err(query_err("looking for the state schema on the target"))?
        .get(0);
    if exists {
        return Ok(());
    }
    match state_elsewhere_message(client, schema).await? {
        Some(message) => Err(Error::Config(message)),
        None => Ok(()),
    }
}

/// A job as stored: its configuration summary and phase.
#[derive(Debug, Clone)]
pub struct JobRow {
    /// `key = value` lines describing everything a resume must agree with.
    pub config: String,
    /// `data` (copying, or stopped) or `done`.
    pub phase: String,
    /// Snapshot exported by the worker that created the job; later workers import it while
    /// that worker's exporting transaction is still open.
    pub snapshot: Option<String>,
}

/// Reads a job, if it exists.
pub async fn load_job(client: &Client, st: &StateRef) -> Result<Option<JobRow>> {
    let row = client
        .query_opt(
            &format!(
                "SELECT config, phase, snapshot FROM {} WHERE name = $1",
                st.table("jobs")
            ),
            &[&st.job],
        )
        .await
        .map_err(query_err("reading the job from the state tables"))?;
    Ok(row.map(|r| JobRow {
        config: r.get(0),
        phase: r.get(1),
        snapshot: r.get(2),
    }))
}

/// Deletes a job and all of its chunks, steps and workers (`--restart`).
pub async fn delete_job(client: &Client, st: &StateRef) -> Result<()> {
    client
        .execute(
            &format!("DELETE FROM {} WHERE name = $1", st.table("jobs")),
            &[&st.job],
        )
        .await
        .map_err(query_err("deleting the job from the state tables"))?;
    Ok(())
}

/// Takes the job's setup lock (a session advisory lock): one process at a time decides whether
/// the job is new, creates its schema and plan, or joins it. A process killed during setup
/// holds it until the server has rolled its transaction back.
pub async fn lock_setup(client: &Client, st: &StateRef) -> Result<()> {
    client
        .batch_execute(&format!("SELECT pg_advisory_lock({}, 0)", st.lock_key()))
        .await
        .map_err(query_err("waiting for the job's setup lock"))
}

/// Releases the setup lock.
pub async fn unlock_setup(client: &Client, st: &StateRef) -> Result<()> {
    client
        .batch_execute(&format!("SELECT pg_advisory_unlock({}, 0)", st.lock_key()))
        .await
        .map_err(query_err("releasing the job's setup lock"))
}

/// The configuration lines that differ between a stored job and this run, as `key: was -> now`.
pub fn config_changes(stored: &str, now: &str) -> Vec<String> {
    let parse = |s: &str| -> std::collections::BTreeMap<String, String> {
        s.lines()
            .filter_map(|l| l.split_once(" = "))
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let (a, b) = (parse(stored), parse(now));
    let mut keys: Vec<&String> = a.keys().chain(b.keys()).collect();
    keys.sort();
    keys.dedup();
    keys.into_iter()
        .filter(|k| a.get(*k) != b.get(*k))
        .map(|k| {
            let show = |v: Option<&String>| v.cloned().unwrap_or_else(|| "(absent)".into());
            format!("{k}: {} -> {}", show(a.get(k)), show(b.get(k)))
        })
        .collect()
}

/// SQL (to run inside the pre-data transaction) that records a new job and its chunk plan.
/// `priority[t]` is table `t`'s place in the copy order: workers claim chunks in that order.
pub fn insert_job_sql(
    st: &StateRef,
    config: &str,
    snapshot: Option<&str>,
    chunks: &[Chunk],
    table_names: &[String],
    priority: &[i32],
) -> String {
    let lit = |s: &str| crate::catalog::quote_literal(s);
    let mut sql = format!(
        "INSERT INTO {} (name, config, phase, snapshot) VALUES ({}, {}, 'data', {});\n",
        st.table("jobs"),
        lit(&st.job),
        lit(config),
        snapshot.map(lit).unwrap_or_else(|| "NULL".into())
    );
    sql.push_str(&chunks::insert_chunks_sql(
        st,
        chunks,
        table_names,
        priority,
    ));
    sql
}

/// Sets the job's phase (and clears or records its last error).
pub async fn set_phase(
    client: &Client,
    st: &StateRef,
    phase: &str,
    error: Option<&str>,
) -> Result<()> {
    client
        .execute(
            &format!(
                "UPDATE {} SET phase = $2, last_error = $3, updated_at = now() WHERE name = $1",
                st.table("jobs")
            ),
            &[&st.job, &phase, &error],
        )
        .await
        .map_err(query_err("updating the job's phase"))?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_config_changes() {
        let a = "source = db1\ntables = a,b\nkey public.a = id";
        let b = "source = db1\ntables = a,c\nkey public.a = id";
        assert_eq!(config_changes(a, b), vec!["tables: a,b -> a,c".to_string()]);
        assert!(config_changes(a, a).is_empty());
    }

    #[test]
    fn lock_keys_are_stable_and_positive() {
        let st = StateRef {
            schema: "howdah".into(),
            job: "default".into(),
        };
        assert_eq!(st.lock_key(), st.clone().lock_key());
        assert!(st.lock_key() >= 0);
        let other = StateRef {
            job: "other".into(),
            ..st.clone()
        };
        assert_ne!(st.lock_key(), other.lock_key());
    }
}
