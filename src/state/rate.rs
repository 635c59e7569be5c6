//! The job's rate cap in the state schema (table `rate_limits`, one row per capped job), so
//! every worker of the job reads the same cap and `status --set-max-rate` can change it while
//! the job runs. The table is created when missing (like `invalid_keys`), so state schemas of
//! layout 3 gain it without a migration. [`follow`] is each worker's loop that re-reads the cap
//! and the number of live workers and sets the process's [`Throttle`] to its share.

use std::sync::Arc;
use std::time::Duration;

use tokio_postgres::Client;

use super::{query_err, StateRef};
use crate::connect::{connect, Side};
use crate::conninfo::PgUrl;
use crate::error::Result;
use crate::rate::{RateCap, RateUnit, Throttle};

/// How often a worker re-reads the cap and the number of workers.
pub const REFRESH: Duration = Duration::from_secs(2);

/// SQL that creates the table when missing (idempotent).
pub fn create_sql(st: &StateRef) -> String {
    format!(
        "CREATE TABLE IF NOT EXISTS {rates} (
           job text PRIMARY KEY REFERENCES {jobs} (name) ON DELETE CASCADE,
           per_sec bigint NOT NULL CHECK (per_sec > 0),
           unit text NOT NULL CHECK (unit IN ('bytes', 'rows')),
           updated_at timestamptz NOT NULL DEFAULT now());",
        rates = st.table("rate_limits"),
        jobs = st.table("jobs"),
    )
}

fn unit_text(u: RateUnit) -> &'static str {
    match u {
        RateUnit::Bytes => "bytes",
        RateUnit::Rows => "rows",
    }
}

/// Sets (or with `None` removes) the job's cap; the job must exist. Returns whether it does.
pub async fn set(client: &Client, st: &StateRef, cap: Option<RateCap>) -> Result<bool> {
    client
        .batch_execute(&create_sql(st))
        .await
        .map_err(query_err("creating the rate_limits state table"))?;
    let exists = client
        .query_opt(
            &format!("SELECT 1 FROM {} WHERE name = $1", st.table("jobs")),
            &[&st.job],
        )
        .await
        .map_err(query_err("reading the job"))?
        .is_some();
    if !exists {
        return Ok(false);
    }
    match cap {
        Some(c) => client
            .execute(
                &format!(
                    "INSERT INTO {} (job, per_sec, unit) VALUES ($1, $2, $3)
                     ON CONFLICT (job) DO UPDATE SET per_sec = EXCLUDED.per_sec,
                       unit = EXCLUDED.unit, updated_at = now()",
                    st.table("rate_limits")
                ),
                &[&st.job, &(c.per_sec as i64), &unit_text(c.unit)],
            )
            .await
            .map_err(query_err("setting the job's max rate"))?,
        None => client
            .execute(
                &format!("DELETE FROM {} WHERE job = $1", st.table("rate_limits")),
                &[&st.job],
            )
            .await
            .map_err(query_err("removing the job's max rate"))?,
    };
    Ok(true)
}

/// The job's cap (`None`: no cap, or a state schema without the table).
pub async fn get(client: &Client, st: &StateRef) -> Result<Option<RateCap>> {
    let row = client
        .query_opt(
            &format!(
                "SELECT per_sec, unit FROM {} WHERE job = $1",
                st.table("rate_limits")
            ),
            &[&st.job],
        )
        .await;
    let row = match row {
        Ok(r) => r,
        // An older state schema that never had a cap: no table, no cap.
        Err(e) if e.code() == Some(&tokio_postgres::error::SqlState::UNDEFINED_TABLE) => {
            return Ok(None)
        }
        Err(e) => return Err(crate::error::query_error("reading the job's max rate", &e)),
    };
    Ok(row.map(|r| RateCap {
        per_sec: r.get::<_, i64>(0).max(1) as u64,
        unit: if r.get::<_, &str>(1) == "rows" {
            RateUnit::Rows
        } else {
            RateUnit::Bytes
        },
    }))
}

/// Workers of the job that are alive: not ended, heartbeat within the lease (at least 1).
pub async fn live_workers(client: &Client, st: &StateRef, lease_secs: u32) -> Result<u64> {
    let n: i64 = client
        .query_one(
            &format!(
                "SELECT count(*) FROM {} WHERE job = $1 AND ended_at IS NULL
                   AND heartbeat_at > now() - make_interval(secs => $2)",
                st.table("workers")
            ),
            &[&st.job, &f64::from(lease_secs.max(3))],
        )
        .await
        .map_err(query_err("counting the job's workers"))?
        .get(0);
    Ok(n.max(1) as u64)
}

/// Workers of the job copying a chunk now (a running chunk whose lease holds), counting this
/// one (`me`) whether it is or not: the processes that share the cap at this moment. A worker
/// that has run out of chunks (waiting for index builds, say) takes no share.
async fn copying_workers(client: &Client, st: &StateRef, me: i32) -> Result<u64> {
    let n: i64 = client
        .query_one(
            &format!(
                "SELECT count(*) FROM (SELECT owner FROM {} WHERE job = $1 AND status = 'running'
                   AND owner IS NOT NULL AND lease_until > now() UNION SELECT $2::int) w",
                st.table("chunks")
            ),
            &[&st.job, &me],
        )
        .await
        .map_err(query_err("counting the job's copying workers"))?
        .get(0);
    Ok(n.max(1) as u64)
}

/// Every [`REFRESH`]: reads the job's cap and the workers copying now, gives `throttle` this
/// worker's (`me`) share, and publishes the cap and this process's achieved rate as metrics. Runs until
/// aborted; a failed read keeps the last share and tries again (on a new connection).
pub async fn follow(url: PgUrl, st: StateRef, throttle: Arc<Throttle>, me: i32) {
    let mut client: Option<Client> = None;
    let mut last = (tokio::time::Instant::now(), throttle.taken());
    loop {
        tokio::time::sleep(REFRESH).await;
        let (now, taken) = (tokio::time::Instant::now(), throttle.taken());
        let secs = now.duration_since(last.0).as_secs_f64().max(1e-3);
        crate::metrics::rate_achieved(
            taken.0.saturating_sub(last.1 .0) as f64 / secs,
            taken.1.saturating_sub(last.1 .1) as f64 / secs,
        );
        last = (now, taken);
        if client.as_ref().is_none_or(Client::is_closed) {
            client = connect(&url, Side::Target).await.ok();
        }
        let Some(c) = &client else { continue };
        let read = async {
            let cap = get(c, &st).await?;
            let workers = copying_workers(c, &st, me).await?;
            Ok::<_, crate::error::Error>((cap, workers))
        };
        match read.await {
            Ok((cap, workers)) => {
                if throttle.share().map(|s| s.1) != cap.map(|c| c.unit)
                    || throttle.share().map(|s| s.0)
                        != cap.map(|c| c.per_sec as f64 / workers as f64)
                {
                    match cap {
                        Some(c) => tracing::info!(
                            "max rate of job \"{}\": {} shared by {workers} worker(s)",
                            st.job,
                            c.describe()
                        ),
                        None => tracing::info!("max rate of job \"{}\": none", st.job),
                    }
                }
                throttle.set(cap, workers);
                crate::metrics::rate_cap(cap);
            }
            Err(e) => {
                tracing::debug!("reading the max rate: {e}");
                client = None;
            }
        }
    }
}
