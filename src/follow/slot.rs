//! The source side of following: the names of a job's slot and publication, creating them
//! (the slot through the replication protocol, exporting the snapshot the bulk copy reads in),
//! dropping them, the checks a source must pass (`wal_level`, free slots and senders, the
//! REPLICATION privilege, replica identity), and the howdah slots a source holds.
//!
//! Invariants: the publication exists before the slot, so decoding never meets a change from
//! before its publication; names derive from the job and the target, so two targets copying
//! one source under the same job name never share a slot.

use tokio_postgres::Client;

use crate::catalog::{quote_ident, quote_literal, QualifiedName};
use crate::error::{db_reason, Error, Result};
use crate::follow::pgoutput::{parse_lsn, Lsn};
use crate::follow::wire::ReplConn;

/// Prefix of every slot and publication howdah creates.
pub const PREFIX: &str = "howdah_";

/// The slot's and the publication's name for a job: `howdah_<job>_<hash>` (at most 63 bytes,
/// lower case letters, digits and `_`, as slot names must be).
pub fn object_name(state_schema: &str, job: &str, target: &str) -> String {
    let h = crate::state::fnv1a(&[
        state_schema.as_bytes(),
        b"/",
        job.as_bytes(),
        b"@",
        target.as_bytes(),
    ]);
    let clean: String = job
        .chars()
        .map(|c| match c {
            'a'..='z' | '0'..='9' | '_' => c,
            'A'..='Z' => c.to_ascii_lowercase(),
            _ => '_',
        })
        .take(40)
        .collect();
    format!("{PREFIX}{clean}_{:08x}", h as u32)
}

/// A slot just created: where its stream starts and the snapshot it exported. The snapshot
/// lives as long as `conn` stays open and idle.
pub struct NewSlot {
    /// The replication session that created the slot.
    pub conn: ReplConn,
    /// The slot's consistent point: the stream holds every transaction committed after the
    /// snapshot.
    pub consistent_lsn: Lsn,
    /// The exported snapshot's name.
    pub snapshot: String,
}

/// Creates the publication for `tables` (dropping one of the same name first: ours, from an
/// earlier start of this job).
pub async fn create_publication(
    source: &Client,
    name: &str,
    tables: &[QualifiedName],
) -> Result<()> {
    let list: Vec<String> = tables
        .iter()
        .map(|t| format!("ONLY {}", t.quoted()))
        .collect();
    let sql = format!(
        "DROP PUBLICATION IF EXISTS {n}; CREATE PUBLICATION {n} FOR TABLE {}",
        list.join(", "),
        n = quote_ident(name)
    );
    source.batch_execute(&sql).await.map_err(|e| {
        crate::error::query_error(
            format!("creating the publication {name} on the source (the role must own the tables)"),
            &e,
        )
    })
}

/// Creates the logical slot through the replication protocol with an exported snapshot. A
/// slot of the same name (ours, left by an earlier start that recorded nothing) is dropped.
/// Waits for transactions open on the source to end (the slot's consistent point).
pub async fn create_slot(
    url: &crate::conninfo::PgUrl,
    source: &Client,
    name: &str,
) -> Result<NewSlot> {
    drop_slot(source, name).await?;
    let mut conn = ReplConn::connect(url).await?;
    let rows = conn
        .simple_query(&format!(
            "CREATE_REPLICATION_SLOT {} LOGICAL pgoutput EXPORT_SNAPSHOT",
            quote_ident(name)
        ))
        .await
        .map_err(|e| match e {
            Error::Query { reason, .. } => Error::Query {
                what: format!("creating the replication slot {name} on the source"),
                reason,
            },
            other => other,
        })?;
    let row = rows.first().ok_or_else(|| Error::Query {
        what: format!("creating the replication slot {name}"),
        reason: "the server returned no row".into(),
    })?;
    let consistent_lsn = row
        .get(1)
        .and_then(|v| v.as_deref())
        .and_then(parse_lsn)
        .ok_or_else(|| Error::Query {
            what: format!("creating the replication slot {name}"),
            reason: "no consistent point in the answer".into(),
        })?;
    let snapshot = row.get(2).cloned().flatten().ok_or_else(|| Error::Query {
        what: format!("creating the replication slot {name}"),
        reason: "no exported snapshot in the answer".into(),
    })?;
    Ok(NewSlot {
        conn,
        consistent_lsn,
        snapshot,
    })
}

/// Drops the slot if it exists; a walsender still streaming from it is ended first (after a
/// grace period of 5 s for one that is closing).
pub async fn drop_slot(source: &Client, name: &str) -> Result<()> {
    let what = || format!("dropping the replication slot {name} on the source");
    for attempt in 0..50 {
        let row = source
            .query_opt(
                "SELECT active_pid FROM pg_replication_slots WHERE slot_name = $1",
                &[&name],
            )
            .await
            .map_err(|e| crate::error::query_error(what(), &e))?;
        let Some(row) = row else { return Ok(()) };
        let pid: Option<i32> = row.get(0);
        match pid {
            Some(pid) if attempt >= 25 => {
                let _ = source
                    .execute("SELECT pg_terminate_backend($1)", &[&pid])
                    .await;
            }
            Some(_) => {}
            None => {
                match source
                    .execute(
                        &format!("SELECT pg_drop_replication_slot({})", quote_literal(name)),
                        &[],
                    )
                    .await
                {
                    Ok(_) => return Ok(()),
                    // Taken by a walsender between the two statements: wait and try again.
                    Err(e) if db_reason(&e).contains("is active") => {}
                    Err(e) if db_reason(&e).contains("does not exist") => return Ok(()),
                    Err(e) => {
                        return Err(Error::Query {
                            what: what(),
                            reason: db_reason(&e),
                        })
                    }
                }
            }
        }
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    Err(Error::Query {
        what: what(),
        reason: "the slot stays in use by another session".into(),
    })
}

/// Drops the publication if it exists.
pub async fn drop_publication(source: &Client, name: &str) -> Result<()> {
    source
        .batch_execute(&format!("DROP PUBLICATION IF EXISTS {}", quote_ident(name)))
        .await
        .map_err(|e| {
            crate::error::query_error(format!("dropping the publication {name} on the source"), &e)
        })
}

/// A howdah slot on the source.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SlotInfo {
    /// Slot name.
    pub name: String,
    /// A walsender streams from it now.
    pub active: bool,
    /// WAL the source keeps for it, in bytes.
    pub retained_bytes: i64,
}

/// The howdah slots of the source with the WAL each retains.
pub async fn howdah_slots(source: &Client) -> Result<Vec<SlotInfo>> {
    let rows = source
        .query(
            "SELECT slot_name::text, active, \
             coalesce(pg_wal_lsn_diff(pg_current_wal_lsn(), restart_lsn), 0)::bigint \
             FROM pg_replication_slots WHERE slot_name LIKE 'howdah\\_%' ORDER BY 1",
            &[],
        )
        .await
        .map_err(|e| {
            crate::error::query_error("listing the replication slots of the source", &e)
        })?;
    Ok(rows
        .iter()
        .map(|r| SlotInfo {
            name: r.get(0),
            active: r.get(1),
            retained_bytes: r.get(2),
        })
        .collect())
}

/// Warns of howdah slots other than `own` that nothing streams from: each keeps WAL on the
/// source until it is dropped.
pub async fn warn_leftover_slots(source: &Client, own: Option<&str>) {
    let Ok(slots) = howdah_slots(source).await else {
        return;
    };
    for s in slots
        .iter()
        .filter(|s| !s.active && Some(s.name.as_str()) != own)
    {
        tracing::warn!(
            "the source holds the replication slot {} of a stopped howdah job, retaining {} of WAL; \
             resume that job or drop the slot with `howdah abort --job <its job>` (or SELECT pg_drop_replication_slot('{}'))",
            s.name,
            crate::follow::lag::human_bytes(s.retained_bytes.max(0) as u64),
            s.name
        );
    }
}

/// One readiness check of a source for following (the plan lists them).
#[derive(Debug, Clone)]
pub struct Readiness {
    /// Stable identifier: `follow_wal_level`, `follow_slots`, `follow_senders`,
    /// `follow_replication_privilege`, `follow_replica_identity`.
    pub name: &'static str,
    /// Whether the source passes it.
    pub ok: bool,
    /// What was found, and what to do when it fails.
    pub detail: String,
}

/// What a source lacks for following, one sentence each (empty: it can be followed).
pub async fn source_problems(source: &Client, tables: &[QualifiedName]) -> Result<Vec<String>> {
    Ok(readiness(source, tables)
        .await?
        .into_iter()
        .filter(|r| !r.ok)
        .map(|r| r.detail)
        .collect())
}

/// Checks `wal_level`, free slots and WAL senders, the REPLICATION privilege, and that every
/// table has a primary key, `REPLICA IDENTITY USING INDEX` or `REPLICA IDENTITY FULL`.
pub async fn readiness(source: &Client, tables: &[QualifiedName]) -> Result<Vec<Readiness>> {
    let q = |e: tokio_postgres::Error| Error::Query {
        what: "checking the source for logical replication".into(),
        reason: db_reason(&e),
    };
    let mut out = Vec::new();
    let row = source
        .query_one(
            "SELECT current_setting('wal_level'), \
             current_setting('max_replication_slots')::int \
               - (SELECT count(*) FROM pg_replication_slots)::int, \
             current_setting('max_wal_senders')::int \
               - (SELECT count(*) FROM pg_stat_replication)::int, \
             (SELECT rolreplication OR rolsuper FROM pg_roles WHERE rolname = current_user)",
            &[],
        )
        .await
        .map_err(q)?;
    let wal_level: String = row.get(0);
    let free_slots: i32 = row.get(1);
    let free_senders: i32 = row.get(2);
    let replication: bool = row.get::<_, Option<bool>>(3).unwrap_or(false);
    out.push(Readiness {
        name: "follow_wal_level",
        ok: wal_level == "logical",
        detail: if wal_level == "logical" {
            "wal_level = logical".into()
        } else {
            format!(
                "the source's wal_level is {wal_level}; following needs wal_level = logical (ALTER SYSTEM SET wal_level = logical, then restart the server)"
            )
        },
    });
    out.push(Readiness {
        name: "follow_slots",
        ok: free_slots >= 1,
        detail: if free_slots >= 1 {
            format!("{free_slots} free replication slot(s)")
        } else {
            "the source has no free replication slot (raise max_replication_slots)".into()
        },
    });
    out.push(Readiness {
        name: "follow_senders",
        ok: free_senders >= 1,
        detail: if free_senders >= 1 {
            format!("{free_senders} free WAL sender(s)")
        } else {
            "the source has no free WAL sender (raise max_wal_senders)".into()
        },
    });
    out.push(Readiness {
        name: "follow_replication_privilege",
        ok: replication,
        detail: if replication {
            "the source role may replicate".into()
        } else {
            "the source role has no REPLICATION privilege (ALTER ROLE ... REPLICATION)".into()
        },
    });
    let names: Vec<String> = tables.iter().map(|t| t.quoted()).collect();
    let mut keyless = Vec::new();
    if !names.is_empty() {
        let sql = format!(
            "SELECT format('%s.%s', n.nspname, c.relname), c.relreplident::text, \
               EXISTS (SELECT 1 FROM pg_index i WHERE i.indrelid = c.oid AND i.indisprimary) \
             FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
             WHERE c.relkind = 'r' AND c.oid IN ({}) ORDER BY 1",
            names
                .iter()
                .map(|n| format!("{}::regclass", quote_literal(n)))
                .collect::<Vec<_>>()
                .join(", ")
        );
        for r in &source.query(&sql, &[]).await.map_err(q)? {
            let name: String = r.get(0);
            let ident: String = r.get(1);
            let pk: bool = r.get(2);
            // The full row, the primary key, or a replica identity index (whose columns the
            // follower then finds target rows by).
            let ok = match ident.as_str() {
                "f" | "i" => true,
                "d" => pk,
                _ => false,
            };
            if !ok {
                keyless.push(name);
            }
        }
    }
    out.push(Readiness {
        name: "follow_replica_identity",
        ok: keyless.is_empty(),
        detail: if keyless.is_empty() {
            "every table has a primary key, a replica identity index or REPLICA IDENTITY FULL"
                .into()
        } else {
            format!(
                "table(s) without a primary key and without REPLICA IDENTITY FULL or USING INDEX \
                 cannot be followed (the source would not send which row an update or delete \
                 changes): {}; add a primary key or run ALTER TABLE ... REPLICA IDENTITY FULL",
                keyless.join(", ")
            )
        },
    });
    Ok(out)
}
