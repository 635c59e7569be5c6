//! A worker's membership in a job: registration, a liveness lock, and the lease heartbeat.
//!
//! Each `howdah copy` process registers as a worker of its job and holds a session advisory
//! lock `(job key, worker number)` on a connection of its own for as long as it runs. The lock
//! vanishes with the session, so after `kill -9` or a crash other workers see at once that
//! the worker is gone and take its chunks over; a worker that is alive but stuck (a frozen VM,
//! a cut network) keeps its lock, and its chunks are taken over when their lease runs out.
//! The heartbeat renews the leases of the worker's running chunks every third of a lease.

use std::time::Duration;

use tokio::task::JoinHandle;
use tokio_postgres::Client;

use super::{query_err, StateRef};
use crate::connect::{connect, Side};
use crate::conninfo::PgUrl;
use crate::error::Result;

/// A registered worker; dropping it (or [`WorkerSession::end`]) ends its liveness lock.
pub struct WorkerSession {
    /// Worker number, the chunks' `owner`.
    pub no: i32,
    heartbeat: JoinHandle<()>,
}

impl WorkerSession {
    /// Registers this process as a worker of the job (which must exist), takes its liveness
    /// lock and starts the heartbeat on a dedicated target connection.
    pub async fn start(url: &PgUrl, st: &StateRef, lease_secs: u32) -> Result<Self> {
        let client = connect(url, Side::Target).await?;
        let host = hostname();
        let row = client
            .query_one(
                &format!(
                    "INSERT INTO {} (job, host, pid) VALUES ($1, $2, $3) RETURNING worker_no",
                    st.table("workers")
                ),
                &[&st.job, &host, &(std::process::id() as i32)],
            )
            .await
            .map_err(query_err("registering as a worker of the job"))?;
        let no: i32 = row.get(0);
        lock(&client, st, no).await?;
        tracing::info!(
            "worker {no} of job \"{}\" ({host}, pid {})",
            st.job,
            std::process::id()
        );
        let heartbeat = tokio::spawn(beat(client, url.clone(), st.clone(), no, lease_secs));
        Ok(WorkerSession { no, heartbeat })
    }

    /// Ends the worker: its lock goes with its session, and its row records the end.
    pub async fn end(self, url: &PgUrl, st: &StateRef) {
        self.heartbeat.abort();
        if let Ok(client) = connect(url, Side::Target).await {
            let _ = client
                .execute(
                    &format!(
                        "UPDATE {} SET ended_at = now() WHERE worker_no = $1",
                        st.table("workers")
                    ),
                    &[&self.no],
                )
                .await;
        }
    }
}

impl Drop for WorkerSession {
    fn drop(&mut self) {
        self.heartbeat.abort();
    }
}

async fn lock(client: &Client, st: &StateRef, no: i32) -> Result<()> {
    client
        .batch_execute(&format!("SELECT pg_advisory_lock({}, {no})", st.lock_key()))
        .await
        .map_err(query_err("taking the worker's liveness lock"))
}

/// Renews the worker's heartbeat and its chunks' leases until aborted; reconnects (and
/// re-takes the lock) when the connection breaks.
async fn beat(mut client: Client, url: PgUrl, st: StateRef, no: i32, lease_secs: u32) {
    let every = Duration::from_secs(u64::from(lease_secs.max(3) / 3));
    let sql = format!(
        "UPDATE {workers} SET heartbeat_at = now() WHERE worker_no = {no};
         UPDATE {chunks} SET lease_until = now() + interval '{lease_secs} seconds'
           WHERE job = {job} AND owner = {no} AND status = 'running'",
        workers = st.table("workers"),
        chunks = st.table("chunks"),
        job = crate::catalog::quote_literal(&st.job),
    );
    let mut last = tokio::time::Instant::now();
    loop {
        // A closed connection means the lock is gone: take it again at once, since other
        // workers take this one's chunks over while it looks dead.
        tokio::time::sleep(Duration::from_secs(1)).await;
        if !client.is_closed() {
            if last.elapsed() < every {
                continue;
            }
            last = tokio::time::Instant::now();
            if client.batch_execute(&sql).await.is_ok() {
                continue;
            }
        }
        tracing::warn!("worker heartbeat failed; reconnecting to the target");
        match connect(&url, Side::Target).await {
            Ok(fresh) => {
                if lock(&fresh, &st, no).await.is_ok() {
                    client = fresh;
                }
            }
            Err(e) => tracing::warn!("{e}"),
        }
    }
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_else(|| "unknown-host".into())
}
