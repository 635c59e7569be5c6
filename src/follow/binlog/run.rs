//! Starting and running the follow of a MySQL/MariaDB source: the binary log position
//! recorded before the copy reads anything ([`prepare_start`]), the follower after the copy
//! ([`follow_once`], retried by `follow::run::follow_job`), its cutover (identities set past
//! the source's), and the position a `howdah cutover` waits for.
//!
//! Invariants: the recorded start position precedes every snapshot the copy's readers open
//! (each opens its own), so the stream overlaps the copy and converges by idempotent apply;
//! tables without a key are refused, since the overlap would insert their rows twice; one
//! follower per job (the same advisory lock as the PostgreSQL follow).

use std::sync::atomic::AtomicBool;
use std::sync::Arc;

use mysql_async::prelude::Queryable;
use tokio_postgres::Client;

use crate::config::{CopySettings, FollowSettings};
use crate::connect::{connect, connect_mysql, Side};
use crate::conninfo::mysql::MyUrl;
use crate::error::{db_reason, my_error, Error, Result};
use crate::follow::apply::Applier;
use crate::follow::binlog::position::{self, BinlogPos};
use crate::follow::binlog::stream::{self, Ended};
use crate::follow::binlog::tables;
use crate::follow::outcome::{claim, Claim, FollowOutcome};
use crate::follow::slot::Readiness;
use crate::state::follow::{self as fstate, phase};
use crate::state::StateRef;

fn state_ref(settings: &CopySettings) -> StateRef {
    StateRef {
        schema: settings.state_schema.clone(),
        job: settings.job.clone(),
    }
}

/// The server id the job's binary log stream registers with: stable per job, far from the
/// small ids people give their servers.
pub fn server_id(settings: &CopySettings) -> u32 {
    let h = crate::state::fnv1a(&[
        b"howdah binlog ",
        settings.state_schema.as_bytes(),
        b"/",
        settings.job.as_bytes(),
    ]);
    1_000_000_000 + (h % 1_000_000_000) as u32
}

/// What the source lacks for a follow, one sentence each (empty: it can be followed).
pub async fn source_problems(conn: &mut mysql_async::Conn) -> Vec<String> {
    let mut out = Vec::new();
    let v = |name: &str, value: Option<String>| (name.to_string(), value.unwrap_or_default());
    let log_bin = v("log_bin", position::variable(conn, "log_bin").await);
    let format = v(
        "binlog_format",
        position::variable(conn, "binlog_format").await,
    );
    let image = v(
        "binlog_row_image",
        position::variable(conn, "binlog_row_image").await,
    );
    if log_bin.1 != "1" && !log_bin.1.eq_ignore_ascii_case("on") {
        out.push(
            "log_bin is OFF: start the server with --log-bin (and --server-id) so it keeps a \
             binary log"
                .to_string(),
        );
    }
    if !format.1.eq_ignore_ascii_case("row") {
        out.push(format!(
            "binlog_format is {}, the follow needs ROW: SET GLOBAL binlog_format = 'ROW' (and in \
             the server's configuration)",
            format.1
        ));
    }
    if !image.1.is_empty() && !image.1.eq_ignore_ascii_case("full") {
        out.push(format!(
            "binlog_row_image is {}, the follow needs FULL: SET GLOBAL binlog_row_image = 'FULL'",
            image.1
        ));
    }
    if let Some(c) = position::variable(conn, "log_bin_compress").await {
        if c == "1" || c.eq_ignore_ascii_case("on") {
            out.push("log_bin_compress is ON: the follow cannot read compressed events".into());
        }
    }
    out
}

/// Whether the connected user holds REPLICATION SLAVE (to stream the binary log) and
/// REPLICATION CLIENT (to read positions); the missing ones, by name.
pub async fn missing_privileges(conn: &mut mysql_async::Conn) -> Vec<&'static str> {
    let grants: Vec<String> = conn.query("SHOW GRANTS").await.unwrap_or_default();
    let all = grants.join("\n").to_ascii_uppercase();
    if all.contains("ALL PRIVILEGES ON *.*") {
        return Vec::new();
    }
    let mut missing = Vec::new();
    if !all.contains("REPLICATION SLAVE") && !all.contains("REPLICATION REPLICA") {
        missing.push("REPLICATION SLAVE");
    }
    if !all.contains("REPLICATION CLIENT")
        && !all.contains("BINLOG MONITOR")
        && !all.contains("SUPER")
    {
        missing.push("REPLICATION CLIENT");
    }
    missing
}

/// The binary log retention in seconds (`binlog_expire_logs_seconds`, else
/// `expire_logs_days`); `None`: files are never expired.
pub async fn retention_seconds(conn: &mut mysql_async::Conn) -> Option<u64> {
    let secs = position::variable(conn, "binlog_expire_logs_seconds")
        .await
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|s| *s > 0.0);
    let days = position::variable(conn, "expire_logs_days")
        .await
        .and_then(|s| s.parse::<f64>().ok())
        .filter(|d| *d > 0.0);
    secs.or(days.map(|d| d * 86_400.0)).map(|s| s as u64)
}

/// Whether a MySQL/MariaDB source can be followed after a copy of about `copy_seconds`:
/// `log_bin`, `binlog_format`, `binlog_row_image`, the binary log retention against the copy's
/// duration, the REPLICATION SLAVE / REPLICATION CLIENT privileges, and when `filtered` (the
/// mapped tables with a `where`) is not empty, whether the user may create the temporary
/// tables the follow checks their changes in (`howdah plan`).
pub async fn readiness(
    url: &MyUrl,
    copy_seconds: Option<f64>,
    filtered: &[String],
) -> Vec<Readiness> {
    let mut conn = match connect_mysql(url).await {
        Ok(c) => c,
        Err(e) => {
            return vec![Readiness {
                name: "follow_log_bin",
                ok: false,
                detail: format!("could not check the source: {e}"),
            }]
        }
    };
    let mut out = Vec::new();
    let problems = source_problems(&mut conn).await;
    for (name, setting) in [
        ("follow_log_bin", "log_bin"),
        ("follow_binlog_format", "binlog_format"),
        ("follow_binlog_row_image", "binlog_row_image"),
    ] {
        let found = problems.iter().find(|p| p.starts_with(setting));
        out.push(Readiness {
            name,
            ok: found.is_none(),
            detail: match found {
                Some(p) => p.clone(),
                None => format!(
                    "{setting} = {}",
                    position::variable(&mut conn, setting)
                        .await
                        .unwrap_or_default()
                ),
            },
        });
    }
    let retention = retention_seconds(&mut conn).await;
    out.push(match (retention, copy_seconds) {
        (None, _) => Readiness {
            name: "follow_binlog_retention",
            ok: true,
            detail: "binary logs are never expired (binlog_expire_logs_seconds = 0)".into(),
        },
        (Some(r), Some(c)) if (r as f64) < c * 2.0 => Readiness {
            name: "follow_binlog_retention",
            ok: false,
            detail: format!(
                "binary logs expire after {} s, under twice the estimated copy time ({:.0} s): \
                 the follow's start position may be purged before the copy ends; raise \
                 binlog_expire_logs_seconds",
                r, c
            ),
        },
        (Some(r), c) => Readiness {
            name: "follow_binlog_retention",
            ok: true,
            detail: format!(
                "binary logs expire after {} s{}",
                r,
                c.map(|c| format!(" (estimated copy time {c:.0} s)"))
                    .unwrap_or_default()
            ),
        },
    });
    let missing = missing_privileges(&mut conn).await;
    out.push(Readiness {
        name: "follow_replication_privilege",
        ok: missing.is_empty(),
        detail: if missing.is_empty() {
            "the user may read the binary log (REPLICATION SLAVE, REPLICATION CLIENT)".into()
        } else {
            format!(
                "the user lacks {}: GRANT {} ON *.* TO the copy's user",
                missing.join(" and "),
                missing.join(", ")
            )
        },
    });
    if !filtered.is_empty() {
        out.push(temporary_tables(&mut conn, url, filtered).await);
    }
    out
}

/// Whether the user may create temporary tables in the source database: the follow checks
/// each change of a table with a `where` in a temporary table of its own (`stream.rs`,
/// `filter_passing`). Tried, not read from `SHOW GRANTS` (roles, database patterns and
/// `ALL` grant it in too many spellings); the probe table lives in this session only.
async fn temporary_tables(
    conn: &mut mysql_async::Conn,
    url: &MyUrl,
    filtered: &[String],
) -> Readiness {
    let probe = conn
        .query_drop("CREATE TEMPORARY TABLE howdah_plan_probe (x int)")
        .await;
    let _ = conn
        .query_drop("DROP TEMPORARY TABLE IF EXISTS howdah_plan_probe")
        .await;
    let tables = filtered.join(", ");
    match probe {
        Ok(()) => Readiness {
            name: "follow_temporary_tables",
            ok: true,
            detail: format!(
                "the user may create the temporary tables the follow checks the changes of \
                 tables with a `where` in ({tables})"
            ),
        },
        Err(e) => Readiness {
            name: "follow_temporary_tables",
            ok: false,
            detail: format!(
                "the follow checks the changes of tables with a `where` ({tables}) in temporary \
                 tables, and the user may not create them ({}): GRANT CREATE TEMPORARY TABLES \
                 ON `{}`.* TO the copy's user",
                e, url.database
            ),
        },
    }
}

/// Before a `copy --follow` of a MySQL source reads anything: for a new job (or `--restart`),
/// checks the source and records the binary log position of a consistent snapshot taken now
/// as the follow's start (phase `copy`). A job that follows already keeps its position.
pub async fn prepare_start(settings: &CopySettings, url: &MyUrl, target: &Client) -> Result<()> {
    let st = state_ref(settings);
    if !settings.restart {
        if let Some(row) = fstate::load(target, &st).await? {
            return match row.phase.as_str() {
                phase::CUT_OVER | phase::ABORTED => Err(Error::Follow(format!(
                    "job \"{}\" was {} already; start it over with --restart",
                    st.job, row.phase
                ))),
                _ => Ok(()),
            };
        }
        let jobs_exist: bool = target
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&st.table("jobs")])
            .await
            .map_err(|e| Error::Query {
                what: "reading the state tables".into(),
                reason: db_reason(&e),
            })?
            .get(0);
        if jobs_exist && crate::state::load_job(target, &st).await?.is_some() {
            return Err(Error::Config(format!(
                "job \"{}\" was started without --follow: no binary log position was recorded \
                 before its copy; start it over with --follow --restart (and --schema recreate)",
                st.job
            )));
        }
    }
    let mut conn = connect_mysql(url).await?;
    let problems = source_problems(&mut conn).await;
    if !problems.is_empty() {
        return Err(Error::Config(format!(
            "the source cannot be followed: {}",
            problems.join("; ")
        )));
    }
    let schema = crate::catalog::mysql::load(&mut conn, &url.database).await?;
    let plan = crate::chunking::mysql::build(
        &schema,
        &settings.mysql,
        &settings.filter,
        None,
        settings.schema != crate::schema::SchemaMode::Existing,
    )?;
    let keyless: Vec<String> = plan
        .reads
        .iter()
        .flatten()
        .filter(|r| r.key.is_none())
        .map(|r| r.source.clone())
        .collect();
    refuse_keyless(&st, &keyless)?;
    let pos = position::snapshot_position(&mut conn).await?;
    fstate::record_start_pos(
        target,
        &st,
        &format!("binlog server_id {}", server_id(settings)),
        &pos.text(),
    )
    .await?;
    crate::metrics::follow_phase(phase::COPY);
    tracing::info!(
        "the follow starts at the source's binary log position {}; the copy reads after it",
        pos.text()
    );
    Ok(())
}

fn refuse_keyless(st: &StateRef, keyless: &[String]) -> Result<()> {
    if keyless.is_empty() {
        return Ok(());
    }
    Err(Error::Config(format!(
        "job \"{}\": these tables have no primary key or unique NOT NULL key: {}; the copy's \
         readers each read in their own snapshot after the follow's start position, so the \
         binary log would insert some of their rows twice. Give them a primary key, or leave \
         them out of the followed copy (--exclude)",
        st.job,
        keyless.join(", ")
    )))
}

/// One follower run for a MySQL source: reads the job's position and follows from it until
/// cutover, abort or a signal.
pub async fn follow_once(
    settings: &CopySettings,
    url: &MyUrl,
    stop: Arc<AtomicBool>,
) -> Result<FollowOutcome> {
    let st = state_ref(settings);
    let session = connect(&settings.target, Side::Target).await?;
    let row = match claim(&session, &st).await? {
        Claim::Follow(row) => *row,
        Claim::Ended(ended) => return Ok(ended),
    };
    session
        .batch_execute("SET synchronous_commit = on")
        .await
        .map_err(|e| crate::error::query_error("setting up the apply session", &e))?;
    // The first follow after the copy records the source's position now: every snapshot
    // the copy read in precedes it, so up to it the stream overlaps the copy.
    let now = if row.phase == phase::COPY {
        let mut conn = connect_mysql(url).await?;
        Some(position::current_position(&mut conn).await?.text())
    } else {
        None
    };
    let keys_from = fstate::keys_from_pos(&session, &st, now.as_deref())
        .await?
        .and_then(|t| BinlogPos::parse(&t));
    fstate::set_phase(&session, &st, phase::FOLLOW, None).await?;
    crate::metrics::follow_phase(phase::FOLLOW);
    let start = BinlogPos::parse(&row.applied_lsn).ok_or_else(|| {
        Error::Internal(format!(
            "bad applied binary log position {} in the state",
            row.applied_lsn
        ))
    })?;
    // The tables as the copy read them: the same plan, converters and value policies.
    let recorded = crate::state::values::load(&session, &st, false).await?;
    let prepared = crate::prepare::prepare(settings, &session, &recorded).await?;
    crate::state::job::same_mappings(settings, &session, &st).await?;
    let mut conn = connect_mysql(url).await?;
    let schema = crate::catalog::mysql::load(&mut conn, &url.database).await?;
    drop(conn);
    let plans: Vec<_> = (0..prepared.catalog.tables.len())
        .map(|i| prepared.origin.mysql_read(i))
        .collect();
    let policies = crate::config::Policies {
        zero_dates: settings.mysql.zero_dates.clone().unwrap_or_default(),
        nul_bytes: settings.mysql.nul_bytes.unwrap_or_default(),
    };
    let followed = tables::followed(
        &schema,
        &prepared.catalog,
        &plans,
        &prepared.maps,
        &policies,
    )?;
    refuse_keyless(&st, &tables::keyless(&followed))?;
    // The binary log leaves out what InnoDB's foreign keys cascade, so the target's keys
    // must act, as the source's did. Not while the stream overlaps the copy, though: there
    // the target may hold a later state than the change replayed (a child inserted, then
    // deleted with its parent, before the copy read either), which its keys would refuse.
    let overlap = keys_from.is_some();
    let targets: Vec<&crate::follow::apply::TargetTable> =
        followed.iter().map(|t| &t.target).collect();
    let cascades = crate::follow::binlog::overlap::cascades(&session, &targets).await?;
    let mut applier = Applier::new(session, overlap).await?;
    let lanes = settings
        .follow
        .as_ref()
        .map_or(FollowSettings::DEFAULT_APPLY_LANES, |f| f.apply_lanes());
    if lanes > 1 {
        let mut clients = Vec::with_capacity(lanes - 1);
        for _ in 1..lanes {
            clients.push(connect(&settings.target, Side::Target).await?);
        }
        applier.add_lanes(clients).await?;
        tracing::info!(
            "applying changes in {lanes} target sessions: the rows of tables whose key is their \
             only unique index, with no foreign key or trigger, are spread by key once past the \
             overlap with the copy"
        );
    }
    // Past the overlap, a new row is inserted and a changed row updated rather than
    // upserted (cheaper for the target), except for the changes the last follower may have
    // applied: they are upserted up to where it recorded they may reach.
    let replay_through = fstate::replay_through(applier.session().await?, &st)
        .await?
        .and_then(|t| BinlogPos::parse(&t));
    let with_rejects = crate::state::rejects::tables(applier.session().await?, &st).await?;
    applier
        .record_replay(connect(&settings.target, Side::Target).await?, st.clone())
        .await?;
    let l = stream::Loop {
        url,
        st: &st,
        tables: &followed,
        server_id: server_id(settings),
        stop,
        keys_from: keys_from.as_ref(),
        cascades: &cascades,
        replay_through: replay_through.as_ref(),
        with_rejects: &with_rejects,
    };
    let ended = match stream::run(&l, &mut applier, start).await {
        Ok(ended) => ended,
        Err(e) => {
            // A commit may still be in flight (the stream failed, not the target): let it
            // land rather than drop it, so the retry starts after it. If it failed, its
            // error is the one to tell when the stream's would only be retried.
            return match applier.session().await {
                Err(apply) if e.is_transient() => Err(apply),
                _ => Err(e),
            };
        }
    };
    match ended {
        Ended::Interrupted => Err(Error::Interrupted),
        Ended::EndedElsewhere(p) => Ok(FollowOutcome {
            message: format!(
                "job \"{}\" was {p} by another process; the follow ended",
                st.job
            ),
            cut_over: p == phase::CUT_OVER,
        }),
        Ended::CutoverReached(applied) => {
            let steps = prepared
                .origin
                .sequence_steps(&prepared.catalog, &prepared.maps, |_| true)
                .await?;
            for step in &steps {
                applier
                    .session()
                    .await?
                    .batch_execute(&step.sql)
                    .await
                    .map_err(|e| Error::Query {
                        what: step.what.clone(),
                        reason: db_reason(&e),
                    })?;
            }
            fstate::set_phase(applier.session().await?, &st, phase::CUT_OVER, None).await?;
            crate::metrics::follow_phase(phase::CUT_OVER);
            Ok(FollowOutcome {
                message: format!(
                    "job \"{}\" cut over: every source change up to binary log position {} is \
                     applied, {} identit(ies) set past the source's",
                    st.job,
                    applied.text(),
                    steps.len()
                ),
                cut_over: true,
            })
        }
    }
}

/// The position a cutover waits for: the source's end of binary log now.
pub async fn cutover_position(url: &MyUrl) -> Result<String> {
    let mut conn = connect_mysql(url).await?;
    let pos = position::current_position(&mut conn).await?;
    let _ = conn
        .disconnect()
        .await
        .map_err(|e| my_error("closing the source session", &e));
    Ok(pos.text())
}
