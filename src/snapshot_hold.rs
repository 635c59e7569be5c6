//! What a long copy holds back on its source: the age of the job's snapshot and the oldest
//! transaction horizon on the server, read from the source's own views.
//!
//! A copy reads every table in one snapshot (PostgreSQL: an exported snapshot kept open by
//! the first worker until every row and large object is in, `Origin::release`; MySQL/MariaDB:
//! a `START TRANSACTION WITH CONSISTENT SNAPSHOT` per lane). While it is open, PostgreSQL's vacuum cannot remove row versions deleted after it
//! began (the server's oldest `xmin`), and InnoDB's purge cannot shrink the undo log (the
//! history list). [`probe`] measures both; `status --source`, `plan` and the metrics sampler
//! ([`sample`]) show the result. Nothing here writes.
//!
//! The job's sessions are found by name: PostgreSQL source sessions on the source database
//! carry the application name `howdah/<job>` (a worker's readers `howdah/<job>/<worker>`).
//! MySQL sessions carry no name, so there the job's snapshot is the oldest read-only
//! transaction of the copy's user on the source database (what a copy's readers open); the
//! server-wide oldest transaction is reported beside it.

use std::time::Duration;

use mysql_async::prelude::Queryable;
use serde::Serialize;
use tokio_postgres::Client;

use crate::config::SourceUrl;
use crate::connect::{connect, connect_mysql, Side};
use crate::error::{my_error, query_failed, Result};

/// What the source holds back right now.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct SnapshotHold {
    /// `PostgreSQL` or `MySQL` (MySQL and MariaDB).
    pub source: String,
    /// The job's source sessions seen (PostgreSQL; MySQL: the copy user's read-only
    /// transactions).
    pub job_sessions: i64,
    /// Seconds the job's oldest open source transaction has run: its snapshot's age. `None`
    /// when none of its sessions is in a transaction.
    pub job_snapshot_age_seconds: Option<f64>,
    /// PostgreSQL: `age(backend_xmin)` of the job's oldest session, in transactions: how far
    /// the job holds the server's vacuum horizon back.
    pub job_xmin_age: Option<i64>,
    /// PostgreSQL: the age in transactions of the oldest xmin on the server (any session,
    /// replication slot or prepared transaction): what vacuum cannot go past.
    pub oldest_xmin_age: Option<i64>,
    /// Who holds that oldest xmin (MySQL: the oldest transaction): `pid 123 (app)`, `thread 7
    /// (user)`, `replication slot s`, `prepared transaction g`.
    pub oldest_holder: Option<String>,
    /// Seconds the server's oldest open transaction has run (any session).
    pub oldest_transaction_age_seconds: Option<f64>,
    /// MySQL/MariaDB: InnoDB's history list length, undo records purge has not removed yet.
    pub history_list_length: Option<i64>,
}

/// The PostgreSQL probe: `$1` is the job's application name.
const PG_PROBE: &str = "
WITH s AS (
    SELECT pid, application_name, xact_start, backend_xmin, backend_type,
           datname = current_database()
             AND (application_name = $1 OR left(application_name, length($1) + 1) = $1 || '/')
             AS ours
    FROM pg_stat_activity WHERE pid <> pg_backend_pid()
), holders AS (
    SELECT age(backend_xmin)::bigint AS age,
           'pid ' || pid || coalesce(' (' || nullif(application_name, '') || ')', '') AS who
      FROM s WHERE backend_xmin IS NOT NULL
    UNION ALL
    SELECT age(xmin)::bigint, 'replication slot ' || slot_name
      FROM pg_replication_slots WHERE xmin IS NOT NULL
    UNION ALL
    SELECT age(catalog_xmin)::bigint, 'replication slot ' || slot_name || ' (system catalogs only)'
      FROM pg_replication_slots WHERE catalog_xmin IS NOT NULL
    UNION ALL
    SELECT age(transaction)::bigint, 'prepared transaction ' || gid FROM pg_prepared_xacts
), oldest AS (SELECT age, who FROM holders ORDER BY age DESC LIMIT 1)
SELECT (SELECT count(*) FROM s WHERE ours),
       (SELECT extract(epoch FROM now() - min(xact_start))::float8 FROM s WHERE ours),
       (SELECT max(age(backend_xmin))::bigint FROM s WHERE ours),
       (SELECT age FROM oldest),
       (SELECT who FROM oldest),
       (SELECT extract(epoch FROM now() - min(xact_start))::float8 FROM s
         WHERE backend_type = 'client backend')";

/// The application name of the job's PostgreSQL source sessions.
pub fn job_application_name(job: &str) -> String {
    format!("howdah/{job}")
}

/// Reads what the PostgreSQL source behind `client` holds back for job `job`.
pub async fn probe_postgres(client: &Client, job: &str) -> Result<SnapshotHold> {
    let app = job_application_name(job);
    let row = client
        .query_one(PG_PROBE, &[&app])
        .await
        .map_err(query_failed("reading pg_stat_activity on the source"))?;
    Ok(SnapshotHold {
        source: "PostgreSQL".into(),
        job_sessions: row.get(0),
        job_snapshot_age_seconds: row.get(1),
        job_xmin_age: row.get(2),
        oldest_xmin_age: row.get(3),
        oldest_holder: row.get(4),
        oldest_transaction_age_seconds: row.get(5),
        history_list_length: None,
    })
}

/// Reads what the MySQL/MariaDB source behind `conn` holds back; `user` is the copy's user.
pub async fn probe_mysql(conn: &mut mysql_async::Conn, user: &str) -> Result<SnapshotHold> {
    let fail = |e: mysql_async::Error| my_error("reading information_schema.innodb_trx", &e);
    // The age from the server's clock in microseconds, so a sub-second hold is not 0.
    let oldest: Option<(f64, u64, Option<String>)> = conn
        .query_first(
            "SELECT TIMESTAMPDIFF(MICROSECOND, t.trx_started, NOW(6)) / 1e6, \
                    t.trx_mysql_thread_id, p.USER \
             FROM information_schema.INNODB_TRX t \
             LEFT JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id \
             WHERE t.trx_mysql_thread_id <> CONNECTION_ID() \
             ORDER BY t.trx_started LIMIT 1",
        )
        .await
        .map_err(fail)?;
    let ours: Option<(i64, Option<f64>)> = conn
        .exec_first(
            "SELECT COUNT(*), MAX(TIMESTAMPDIFF(MICROSECOND, t.trx_started, NOW(6)) / 1e6) \
             FROM information_schema.INNODB_TRX t \
             JOIN information_schema.PROCESSLIST p ON p.ID = t.trx_mysql_thread_id \
             WHERE t.trx_is_read_only = 1 AND p.USER = ? AND p.ID <> CONNECTION_ID() \
               AND (DATABASE() IS NULL OR p.DB = DATABASE())",
            (user,),
        )
        .await
        .map_err(fail)?;
    Ok(SnapshotHold {
        source: "MySQL".into(),
        job_sessions: ours.map_or(0, |o| o.0),
        job_snapshot_age_seconds: ours.and_then(|o| o.1),
        job_xmin_age: None,
        oldest_xmin_age: None,
        oldest_holder: oldest.as_ref().map(|(_, id, user)| match user {
            Some(u) => format!("thread {id} ({u})"),
            None => format!("thread {id}"),
        }),
        oldest_transaction_age_seconds: oldest.map(|o| o.0),
        history_list_length: history_list_length(conn).await?,
    })
}

/// InnoDB's history list length: MariaDB has a status variable; MySQL an InnoDB metric
/// (enabled by default).
async fn history_list_length(conn: &mut mysql_async::Conn) -> Result<Option<i64>> {
    let fail = |e: mysql_async::Error| my_error("reading InnoDB's history list length", &e);
    let status: Option<(String, String)> = conn
        .query_first("SHOW GLOBAL STATUS LIKE 'Innodb_history_list_length'")
        .await
        .map_err(fail)?;
    if let Some(v) = status.and_then(|(_, v)| v.parse().ok()) {
        return Ok(Some(v));
    }
    let metric: Option<i64> = conn
        .query_first(
            "SELECT `COUNT` FROM information_schema.INNODB_METRICS \
             WHERE NAME = 'trx_rseg_history_len'",
        )
        .await
        .map_err(fail)?;
    Ok(metric)
}

/// Connects to `source` on a session of its own and probes it for job `job`.
pub async fn probe(source: &SourceUrl, job: &str) -> Result<SnapshotHold> {
    match source {
        SourceUrl::Postgres(url) => {
            let client = connect(url, Side::Source).await?;
            probe_postgres(&client, job).await
        }
        SourceUrl::Mysql(url) => {
            let mut conn = connect_mysql(url).await?;
            let hold = probe_mysql(&mut conn, &url.user).await;
            let _ = conn.disconnect().await;
            hold
        }
    }
}

/// `1 h 2 min`, `3 min 4 s`, `5.2 s`.
fn duration_text(secs: f64) -> String {
    let s = secs.max(0.0);
    if s >= 3600.0 {
        format!(
            "{} h {} min",
            (s / 3600.0) as u64,
            ((s % 3600.0) / 60.0) as u64
        )
    } else if s >= 60.0 {
        format!("{} min {} s", (s / 60.0) as u64, (s % 60.0) as u64)
    } else {
        format!("{s:.1} s")
    }
}

impl SnapshotHold {
    /// Lines for `howdah status` and the plan's check.
    pub fn describe(&self) -> Vec<String> {
        let mut lines = Vec::new();
        match self.job_snapshot_age_seconds {
            Some(age) => {
                let mut l = format!(
                    "the job's source snapshot is {} old ({} session(s))",
                    duration_text(age),
                    self.job_sessions
                );
                if let Some(x) = self.job_xmin_age {
                    l.push_str(&format!("; its xmin is {x} transactions old"));
                }
                lines.push(l);
            }
            None => lines.push("the job holds no source snapshot now".into()),
        }
        if let (Some(age), Some(who)) = (self.oldest_xmin_age, &self.oldest_holder) {
            lines.push(format!(
                "oldest xmin on the source: {age} transactions old, held by {who} (vacuum keeps \
                 every row version deleted after it)"
            ));
        }
        if let Some(age) = self.oldest_transaction_age_seconds {
            let who = match (&self.oldest_holder, self.oldest_xmin_age) {
                (Some(w), None) => format!(" ({w})"),
                _ => String::new(),
            };
            lines.push(format!(
                "oldest open transaction on the source: {}{who}",
                duration_text(age)
            ));
        }
        if let Some(h) = self.history_list_length {
            lines.push(format!(
                "InnoDB history list length: {h} (undo records purge has not removed)"
            ));
        }
        lines
    }

    /// Publishes the hold as gauges (see [`crate::metrics::SNAPSHOT_ALL`]).
    pub fn publish(&self) {
        crate::metrics::snapshot_hold(
            self.job_snapshot_age_seconds.unwrap_or(0.0),
            self.job_xmin_age,
            self.oldest_xmin_age,
            self.oldest_transaction_age_seconds.unwrap_or(0.0),
            self.history_list_length,
        );
    }
}

/// How often [`sample`] probes the source.
pub const SAMPLE_EVERY: Duration = Duration::from_secs(10);

/// Probes the source every [`SAMPLE_EVERY`] for the run's metrics until aborted, and warns
/// once per hour of snapshot age. A failed probe (a missing privilege, a cut connection) is
/// logged once and retried on a new session at the next tick; it never stops the copy.
pub async fn sample(source: SourceUrl, job: String) {
    let mut warned_hours = 0u64;
    let mut logged_failure = false;
    loop {
        match probe(&source, &job).await {
            Ok(hold) => {
                hold.publish();
                let hours = (hold.job_snapshot_age_seconds.unwrap_or(0.0) / 3600.0) as u64;
                if hours > warned_hours {
                    warned_hours = hours;
                    tracing::warn!(
                        "this copy has held its source snapshot for {hours} h: {}; vacuum (or \
                         InnoDB purge) on the source cannot clean up behind it (README: \
                         \"What a long copy holds on the source\")",
                        hold.describe().join("; ")
                    );
                }
            }
            Err(e) if !logged_failure => {
                logged_failure = true;
                tracing::warn!("cannot measure the source snapshot's age (metrics): {e}");
            }
            Err(_) => {}
        }
        tokio::time::sleep(SAMPLE_EVERY).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(duration_text(5.24), "5.2 s");
        assert_eq!(duration_text(184.0), "3 min 4 s");
        assert_eq!(duration_text(3720.0), "1 h 2 min");
    }

    #[test]
    fn a_job_without_a_snapshot_says_so() {
        let hold = SnapshotHold {
            source: "MySQL".into(),
            oldest_transaction_age_seconds: Some(2.0),
            oldest_holder: Some("thread 7 (app)".into()),
            history_list_length: Some(12),
            ..Default::default()
        };
        assert_eq!(
            hold.describe(),
            [
                "the job holds no source snapshot now",
                "oldest open transaction on the source: 2.0 s (thread 7 (app))",
                "InnoDB history list length: 12 (undo records purge has not removed)",
            ]
        );
    }
}
