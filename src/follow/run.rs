//! Starting, running and ending a follow: the slot made before the copy's snapshot
//! ([`prepare_start`], [`record_start`]), the follower after the copy or in place of a stopped
//! one ([`follow_job`]), and the `cutover` and `abort` commands.
//!
//! Invariants: one follower per job at a time (a session advisory lock on the target, taken
//! before the phase says `follow`); only the follower cuts over, after it applied everything up
//! to the requested position and closed its replication session, so the slot is never dropped
//! under a running follower; a follower that finds the job ended elsewhere ends cleanly.

use std::sync::atomic::AtomicBool;
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_postgres::Client;

use crate::catalog::{postgres as pgcat, QualifiedName};
use crate::config::{CopySettings, SourceUrl};
use crate::connect::{connect, Side};
use crate::conninfo::PgUrl;
use crate::error::{Error, Result};
use crate::follow::apply::{Applier, FollowedTable};
use crate::follow::mapped::{self, MappedTable};
pub use crate::follow::outcome::FollowOutcome;
use crate::follow::outcome::{claim, ended_message, Claim};
use crate::follow::pgoutput::{lsn_text, parse_lsn};
use crate::follow::slot::{self, NewSlot};
use crate::follow::stream::{self, Ended};
use crate::state::follow::{self as fstate, phase};
use crate::state::StateRef;

/// A follow start whose slot was just created: the copy reads in `slot.snapshot`.
pub struct NewStart {
    /// The slot (its session keeps the exported snapshot alive).
    pub slot: NewSlot,
    /// The slot's and the publication's name.
    pub name: String,
}

fn state_ref(settings: &CopySettings) -> StateRef {
    StateRef {
        schema: settings.state_schema.clone(),
        job: settings.job.clone(),
    }
}

fn pg_source(settings: &CopySettings) -> Result<&PgUrl> {
    match &settings.source {
        SourceUrl::Postgres(u) => Ok(u),
        SourceUrl::Mysql(_) => Err(Error::Config(
            "--follow needs a PostgreSQL source (MySQL/MariaDB change capture is not built yet)"
                .into(),
        )),
    }
}

/// The job's slot and publication name.
pub fn object_name(settings: &CopySettings) -> String {
    let t = &settings.target;
    slot::object_name(
        &settings.state_schema,
        &settings.job,
        &format!("{}:{}/{}", t.host, t.port, t.dbname),
    )
}

/// Before a `copy --follow` opens its snapshot: for a new job (or `--restart`), checks the
/// source, creates the publication and the slot, and returns the slot whose snapshot the copy
/// must read in. `None`: the job already follows (a resumed copy reads in a new snapshot; the
/// stream's overlap with it is applied idempotently).
pub async fn prepare_start(settings: &CopySettings, target: &Client) -> Result<Option<NewStart>> {
    let st = state_ref(settings);
    fstate::ensure(target, &st).await?;
    if let SourceUrl::Mysql(my) = &settings.source {
        crate::follow::binlog::run::prepare_start(settings, my, target).await?;
        return Ok(None);
    }
    let url = pg_source(settings)?;
    let name = object_name(settings);
    if !settings.restart {
        if let Some(row) = fstate::load(target, &st).await? {
            return match row.phase.as_str() {
                phase::CUT_OVER | phase::ABORTED => Err(Error::Follow(format!(
                    "job \"{}\" was {} already; start it over with --restart",
                    st.job, row.phase
                ))),
                _ => Ok(None),
            };
        }
        let jobs_exist: bool = target
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&st.table("jobs")])
            .await
            .map_err(|e| crate::error::query_error("reading the state tables", &e))?
            .get(0);
        if jobs_exist && crate::state::load_job(target, &st).await?.is_some() {
            return Err(Error::Config(format!(
                "job \"{}\" was started without --follow: its copy did not read in a replication \
                 slot's snapshot; start it over with --follow --restart (and --schema recreate)",
                st.job
            )));
        }
    }
    let source = connect(url, Side::Source).await?;
    slot::warn_leftover_slots(&source, Some(&name)).await;
    let mut catalog = pgcat::load(&source).await?;
    catalog.select(|n| settings.filter.matches(n));
    let tables: Vec<QualifiedName> = catalog
        .tables
        .iter()
        .filter(|t| t.has_storage())
        .map(|t| t.name.clone())
        .collect();
    if tables.is_empty() {
        return Ok(None);
    }
    let problems = slot::source_problems(&source, &tables).await?;
    if !problems.is_empty() {
        return Err(Error::Config(format!(
            "the source cannot be followed: {}",
            problems.join("; ")
        )));
    }
    slot::create_publication(&source, &name, &tables).await?;
    tracing::info!(
        "creating the replication slot {name} (waits for transactions open on the source to end)"
    );
    let new = slot::create_slot(url, &source, &name).await?;
    tracing::info!(
        "slot {name} created at {}; the copy reads in its snapshot {}",
        lsn_text(new.consistent_lsn),
        new.slot_snapshot()
    );
    Ok(Some(NewStart { slot: new, name }))
}

impl NewSlot {
    fn slot_snapshot(&self) -> &str {
        &self.snapshot
    }
}

/// After the copy's snapshot is open: records the new follow in the state (phase `copy`,
/// applied position = the slot's consistent point).
pub async fn record_start(settings: &CopySettings, target: &Client, start: NewStart) -> Result<()> {
    let NewStart { slot: new, name } = start;
    drop(new.conn);
    let st = state_ref(settings);
    fstate::record_start(target, &st, &name, &name, &lsn_text(new.consistent_lsn)).await?;
    crate::metrics::follow_phase(phase::COPY);
    Ok(())
}

/// Whether a `copy --follow` rerun finds the job's copy finished and its follow under way
/// (then it only follows: a follower stopped or killed resumes from its applied position).
pub async fn copy_finished(settings: &CopySettings) -> Result<bool> {
    if settings.restart {
        return Ok(false);
    }
    let st = state_ref(settings);
    let target = connect(&settings.target, Side::Target).await?;
    fstate::ensure(&target, &st).await?;
    let Some(row) = fstate::load(&target, &st).await? else {
        return Ok(false);
    };
    if row.phase == phase::COPY {
        return Ok(false);
    }
    Ok(crate::state::load_job(&target, &st)
        .await?
        .is_some_and(|j| j.phase == "done"))
}

/// Follows the job's source until cutover or abort (after its copy, or in place of a
/// follower that stopped). Transient failures (a cut connection, a restarted server) are
/// retried from the last committed position.
pub async fn follow_job(settings: &CopySettings, stop: Arc<AtomicBool>) -> Result<FollowOutcome> {
    let mut retries = Retries::default();
    crate::metrics::follow_restarts(0);
    loop {
        let before = committed(settings).await;
        let started = Instant::now();
        let r = follow_once(settings, stop.clone()).await;
        let wait = match &r {
            Err(e) if e.is_transient() => {
                let after = committed(settings).await;
                let moved = match (&before, &after) {
                    (Some(b), Some(a)) => (&a.0, a.1) != (&b.0, b.1),
                    _ => false,
                };
                // An idle source commits nothing: a run that kept up with it for a while
                // was following, not failing where the last one did.
                let kept_up = started.elapsed() >= Retries::STEADY
                    && after.as_ref().is_some_and(|a| a.2 == Some(0));
                retries.after_failure(moved || kept_up)
            }
            _ => None,
        };
        match r {
            Err(e) if wait.is_some() => {
                let wait = wait.unwrap_or_default();
                tracing::warn!(
                    "following the source failed ({}); resuming from the last applied position in {} s",
                    crate::error::chain(&e),
                    wait.as_secs()
                );
                crate::metrics::follow_restarts(1);
                tokio::time::sleep(wait).await;
            }
            Err(e) => {
                if !matches!(e, Error::Interrupted | Error::Follow(_)) {
                    if let Ok(t) = connect(&settings.target, Side::Target).await {
                        let _ = fstate::set_phase(
                            &t,
                            &state_ref(settings),
                            phase::FOLLOW,
                            Some(&e.to_string()),
                        )
                        .await;
                    }
                }
                return Err(e);
            }
            Ok(o) => return Ok(o),
        }
    }
}

/// The job's committed follow position, change count and last measured lag in bytes
/// (`None`: unreadable now), to tell a run that got somewhere from one that failed where
/// the last one did.
async fn committed(settings: &CopySettings) -> Option<(String, i64, Option<i64>)> {
    let target = connect(&settings.target, Side::Target).await.ok()?;
    let row = fstate::load(&target, &state_ref(settings)).await.ok()??;
    Some((row.applied_lsn, row.changes, row.lag_bytes))
}

/// When a follower that failed for a passing reason starts again. A follow runs for days, so
/// what ends it is failing again and again without getting anywhere: [`Retries::LIMIT`]
/// failures in a row, none of which got anywhere. A run that moved the committed position,
/// or that kept up with an idle source for [`Retries::STEADY`] (no lag when it failed),
/// starts the count again; one that ran long but failed behind, where the last one did (a
/// change the target refuses with a transient-looking error, a transaction too large to
/// apply before the connection drops), does not, so it cannot retry forever.
#[derive(Default)]
struct Retries {
    failures: u32,
}

impl Retries {
    const LIMIT: u32 = 20;
    /// A run that kept up with the source this long was following.
    const STEADY: Duration = Duration::from_secs(300);

    /// The pause before the next run after a transient failure of a run that `progressed`
    /// (committed changes or moved the applied position); `None`: give up.
    fn after_failure(&mut self, progressed: bool) -> Option<Duration> {
        if progressed {
            self.failures = 0;
        }
        if self.failures >= Self::LIMIT {
            return None;
        }
        self.failures += 1;
        Some(Duration::from_secs(u64::from(self.failures.min(10))))
    }
}

async fn follow_once(settings: &CopySettings, stop: Arc<AtomicBool>) -> Result<FollowOutcome> {
    if let SourceUrl::Mysql(my) = &settings.source {
        return crate::follow::binlog::run::follow_once(settings, my, stop).await;
    }
    let url = pg_source(settings)?;
    let st = state_ref(settings);
    let session = connect(&settings.target, Side::Target).await?;
    let row = match claim(&session, &st).await? {
        Claim::Follow(row) => *row,
        Claim::Ended(ended) => return Ok(ended),
    };
    // The source must know a position only once the target holds it durably.
    session
        .batch_execute("SET synchronous_commit = on")
        .await
        .map_err(|e| crate::error::query_error("setting up the apply session", &e))?;
    crate::state::job::same_mappings(settings, &session, &st).await?;
    fstate::set_phase(&session, &st, phase::FOLLOW, None).await?;
    crate::metrics::follow_phase(phase::FOLLOW);
    let source = connect(url, Side::Source).await?;
    slot::warn_leftover_slots(&source, Some(&row.slot)).await;
    let (tables, mapped) = followed_tables(settings, &source, &session, &row.publication).await?;
    if row.phase == phase::COPY {
        refuse_keyless_overlap(&session, &st, &tables).await?;
    }
    if mapped.iter().any(Option::is_some) {
        refuse_sync_standby(&source, &url.application_name).await?;
    }
    let start = parse_lsn(&row.applied_lsn).ok_or_else(|| {
        Error::Internal(format!(
            "bad applied position {} in the state",
            row.applied_lsn
        ))
    })?;
    let mut applier = Applier::new(session, true).await?;
    if settings
        .follow
        .as_ref()
        .is_some_and(|f| f.apply_lanes.is_some_and(|n| n > 1))
    {
        tracing::warn!(
            "--apply-lanes applies to MySQL/MariaDB sources; a PostgreSQL source's changes are \
             applied in one session"
        );
    }
    let l = stream::Loop {
        source_url: url,
        source: &source,
        st: &st,
        slot: &row.slot,
        publication: &row.publication,
        tables: &tables,
        mapped: &mapped,
        max_retained_wal: settings.follow.as_ref().and_then(|f| f.max_retained_wal),
        stop,
    };
    match stream::run(&l, &mut applier, start).await? {
        Ended::Interrupted => Err(Error::Interrupted),
        Ended::EndedElsewhere(p) => Ok(FollowOutcome {
            message: format!(
                "job \"{}\" was {p} by another process; the follow ended",
                st.job
            ),
            cut_over: p == phase::CUT_OVER,
        }),
        Ended::CutoverReached { applied } => {
            cut_over(settings, &source, applier.session().await?, &st, &row).await?;
            Ok(FollowOutcome {
                message: format!(
                    "job \"{}\" cut over: every source change up to {} is applied, sequences set, \
                     slot and publication {} dropped",
                    st.job,
                    lsn_text(applied),
                    row.slot
                ),
                cut_over: true,
            })
        }
    }
}

/// Refuses to follow mapped tables when the source's `synchronous_standby_names` names the
/// follower's replication connection: a commit on the source then waits for the follower to
/// confirm it, while the follower, to read a mapped row the change left out, waits for the
/// commit to be visible. Each would wait 30 s for the other, again and again.
async fn refuse_sync_standby(source: &Client, app: &str) -> Result<()> {
    let setting: String = source
        .query_one("SELECT current_setting('synchronous_standby_names')", &[])
        .await
        .map_err(|e| crate::error::query_error("reading synchronous_standby_names", &e))?
        .get(0);
    if !names_standby(&setting, app) {
        return Ok(());
    }
    // A configuration error, not `Error::Follow`: recorded in the state, so `status` says why
    // the job has no follower.
    Err(Error::Config(format!(
        "the source's synchronous_standby_names ('{setting}') names the follower's replication \
         connection (application_name '{app}'): the source's commits would wait for the \
         follower, which waits to see them before it applies changes of tables with column \
         mappings. Take the follower out of synchronous_standby_names (name the real standbys \
         instead of '*'), or give the source URL another application_name"
    )))
}

/// Whether `synchronous_standby_names` (`a, b`, `FIRST 1 (a, "b")`, `ANY 2 (*)`) names
/// application `app` (names compare without case; `*` names every standby). Words are split
/// at commas, parentheses and spaces outside double quotes (`""` inside them is a quote), so
/// the method's keyword and count come out as words too: they name no application.
fn names_standby(setting: &str, app: &str) -> bool {
    let mut words: Vec<String> = Vec::new();
    let mut word = String::new();
    let mut chars = setting.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' => {
                while let Some(q) = chars.next() {
                    if q == '"' {
                        if chars.peek() == Some(&'"') {
                            chars.next();
                        } else {
                            break;
                        }
                    }
                    word.push(q);
                }
            }
            ',' | '(' | ')' => words.push(std::mem::take(&mut word)),
            c if c.is_whitespace() => words.push(std::mem::take(&mut word)),
            c => word.push(c),
        }
    }
    words.push(word);
    words
        .iter()
        .any(|w| w == "*" || (!w.is_empty() && w.eq_ignore_ascii_case(app)))
}

/// Refuses to follow a keyless table whose rows were partly read in another snapshot than the
/// slot's (a bulk copy resumed after a crash): the stream would insert again rows that snapshot
/// already holds, and a table without a key cannot tell them apart.
async fn refuse_keyless_overlap(
    target: &Client,
    st: &StateRef,
    tables: &[FollowedTable],
) -> Result<()> {
    let keyless: Vec<String> = tables
        .iter()
        .filter(|t| t.key.is_empty())
        .map(|t| t.source.to_string())
        .collect();
    if keyless.is_empty() {
        return Ok(());
    }
    let rows = target
        .query(
            &format!(
                "SELECT DISTINCT c.table_name FROM {chunks} c JOIN {jobs} j ON j.name = c.job \
                 WHERE c.job = $1 AND c.table_name = ANY($2) \
                   AND coalesce(c.snapshot, j.snapshot) IS DISTINCT FROM j.snapshot ORDER BY 1",
                chunks = st.table("chunks"),
                jobs = st.table("jobs")
            ),
            &[&st.job, &keyless],
        )
        .await
        .map_err(|e| crate::error::query_error("reading which snapshots the copy read in", &e))?;
    let mixed: Vec<String> = rows.iter().map(|r| r.get(0)).collect();
    if mixed.is_empty() {
        return Ok(());
    }
    Err(Error::Follow(format!(
        "the bulk copy of job \"{}\" was resumed in a new snapshot, and these tables without a key \
         were read partly in it: {}; the stream would insert some of their rows twice. Start over \
         with `howdah copy --follow --restart --schema recreate`, or give them a primary key",
        st.job,
        mixed.join(", ")
    )))
}

/// The publication's tables as the stream sends them, and the mapping of each mapped one
/// (the job file's rules, with the job's recorded per-run values). An unmapped table's
/// statements use the target's own columns; a mapped one's fields are made for its target.
async fn followed_tables(
    settings: &CopySettings,
    source: &Client,
    target: &Client,
    publication: &str,
) -> Result<(Vec<FollowedTable>, Vec<Option<MappedTable>>)> {
    let rows = source
        .query(
            "SELECT schemaname::text, tablename::text FROM pg_publication_tables WHERE pubname = $1",
            &[&publication],
        )
        .await
        .map_err(|e| crate::error::query_error(format!("reading the tables of the publication {publication}"), &e))?;
    let names: Vec<QualifiedName> = rows
        .iter()
        .map(|r| QualifiedName::new(r.get::<_, String>(0), r.get::<_, String>(1)))
        .collect();
    let (natural, mapped_catalog, maps) =
        mapped::load_mappings(settings, source, target, &state_ref(settings)).await?;
    let renamed = mapped::target_names(&natural, &mapped_catalog);
    let target_name = |n: &QualifiedName| renamed.get(n).cloned().unwrap_or_else(|| n.clone());
    let mut catalog = pgcat::load(target).await?;
    let wanted: Vec<QualifiedName> = names.iter().map(target_name).collect();
    catalog.select(|n| wanted.contains(n));
    let missing: Vec<String> = names
        .iter()
        .filter(|n| !catalog.tables.iter().any(|t| t.name == target_name(n)))
        .map(|n| n.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(Error::Follow(format!(
            "followed table(s) missing on the target: {}",
            missing.join(", ")
        )));
    }
    let identity = identity_columns(source, publication).await?;
    let mut tables = Vec::with_capacity(names.len());
    for n in &names {
        let at = natural.tables.iter().position(|t| t.name == *n);
        match at.filter(|&i| maps.get(i).is_some_and(Option::is_some)) {
            // The stream sends the source's columns; the mapping makes the target's.
            Some(i) => {
                let mut f = FollowedTable::from_catalog(&natural.tables[i]);
                f.target = mapped_catalog.tables[i].name.quoted();
                tables.push(f);
            }
            None => {
                if let Some(t) = catalog.tables.iter().find(|t| t.name == *n) {
                    tables.push(FollowedTable::from_catalog(t));
                }
            }
        }
    }
    let mapped = mapped::mapped_tables(&tables, &natural, &mapped_catalog, &maps)?;
    for (f, m) in tables.iter_mut().zip(&mapped) {
        let Some(cols) = identity.get(&f.source) else {
            continue;
        };
        let key: Vec<usize> = cols
            .iter()
            .filter_map(|c| f.columns.iter().position(|x| x == c))
            .collect();
        if key.len() != cols.len() {
            return Err(Error::Follow(format!(
                "the replica identity index of {} has columns the stream does not send: {}",
                f.source,
                cols.join(", ")
            )));
        }
        let same_columns = {
            let (mut a, mut b) = (key.clone(), f.key.clone());
            a.sort_unstable();
            b.sort_unstable();
            a == b
        };
        if m.is_some() && !same_columns {
            return Err(Error::Follow(format!(
                "{} has a column mapping and a replica identity index ({}) other than its key: \
                 the source names changed rows by that index, the mapping finds target rows by \
                 the key; set REPLICA IDENTITY DEFAULT (primary key) or FULL on the source table",
                f.source,
                cols.join(", ")
            )));
        }
        // The source names an updated or deleted row by these columns only.
        f.key = key;
    }
    for (f, m) in tables.iter().zip(&mapped) {
        if let Some(m) = m {
            m.check(source, f).await?;
        }
    }
    Ok((tables, mapped))
}

/// Per published table with `REPLICA IDENTITY USING INDEX`, the index's columns in order.
async fn identity_columns(
    source: &Client,
    publication: &str,
) -> Result<std::collections::HashMap<QualifiedName, Vec<String>>> {
    let rows = source
        .query(
            "SELECT n.nspname::text, c.relname::text, \
               array_agg(a.attname::text ORDER BY k.ord) \
             FROM pg_publication_tables p \
             JOIN pg_namespace n ON n.nspname = p.schemaname \
             JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = p.tablename \
             JOIN pg_index i ON i.indrelid = c.oid AND i.indisreplident \
             CROSS JOIN LATERAL unnest(i.indkey::int2[]) WITH ORDINALITY AS k(attnum, ord) \
             JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum \
             WHERE p.pubname = $1 AND c.relreplident = 'i' \
               AND k.ord <= i.indnkeyatts \
             GROUP BY 1, 2",
            &[&publication],
        )
        .await
        .map_err(|e| {
            crate::error::query_error(
                "reading the replica identity indexes of the followed tables",
                &e,
            )
        })?;
    Ok(rows
        .iter()
        .map(|r| {
            (
                QualifiedName::new(r.get::<_, String>(0), r.get::<_, String>(1)),
                r.get::<_, Vec<String>>(2),
            )
        })
        .collect())
}

/// The follower's cutover: sequences from the source, the job marked cut over, then the slot
/// and publication dropped (the follower's replication session is closed by now).
async fn cut_over(
    settings: &CopySettings,
    source: &Client,
    target: &Client,
    st: &StateRef,
    row: &fstate::FollowRow,
) -> Result<()> {
    let mut catalog = pgcat::load(source).await?;
    catalog.select(|n| settings.filter.matches(n));
    let values = pgcat::sequence_values(source, &catalog.sequences).await?;
    for (name, v, called) in &values {
        let step = crate::schema::ddl::setval(name, *v, *called);
        target
            .batch_execute(&step.sql)
            .await
            .map_err(|e| crate::error::query_error(step.what.clone(), &e))?;
    }
    tracing::info!("{} sequence(s) set from the source", values.len());
    fstate::set_phase(target, st, phase::CUT_OVER, None).await?;
    crate::metrics::follow_phase(phase::CUT_OVER);
    slot::drop_slot(source, &row.slot).await?;
    slot::drop_publication(source, &row.publication).await?;
    Ok(())
}

/// `howdah cutover`: records a cutover request at the source's current WAL position and waits
/// until the follower applied it and cut over; with no follower running, follows itself.
pub async fn cutover(settings: &CopySettings, timeout: Duration) -> Result<FollowOutcome> {
    let st = state_ref(settings);
    let target = connect(&settings.target, Side::Target).await?;
    fstate::ensure(&target, &st).await?;
    let Some(row) = fstate::load(&target, &st).await? else {
        return Err(Error::Follow(format!(
            "job \"{}\" does not follow a source (no `copy --follow` started it)",
            st.job
        )));
    };
    if let Some(ended) = ended_message(&st, &row) {
        return Ok(ended);
    }
    let lsn = match &settings.source {
        SourceUrl::Mysql(my) => {
            let pos = crate::follow::binlog::run::cutover_position(my).await?;
            fstate::request_cutover_pos(&target, &st, &pos).await?;
            pos
        }
        SourceUrl::Postgres(url) => {
            let source = connect(url, Side::Source).await?;
            let lsn = cutover_position(&source, &st).await?;
            fstate::request_cutover(&target, &st, &lsn).await?;
            lsn
        }
    };
    tracing::info!("cutover requested at source position {lsn}");
    let deadline = Instant::now() + timeout;
    loop {
        let row = fstate::load(&target, &st).await?.ok_or_else(|| {
            Error::Follow(format!("the follow state of job \"{}\" is gone", st.job))
        })?;
        if row.phase == phase::CUT_OVER {
            let what = match &settings.source {
                SourceUrl::Mysql(_) => "identities set past the source's".to_string(),
                SourceUrl::Postgres(_) => {
                    format!("sequences set, slot and publication {} dropped", row.slot)
                }
            };
            return Ok(FollowOutcome {
                message: format!(
                    "job \"{}\" cut over: every source change up to {} is applied, {what}",
                    st.job, row.applied_lsn
                ),
                cut_over: true,
            });
        }
        if let Some(ended) = ended_message(&st, &row) {
            return Ok(ended);
        }
        if row.phase == phase::FOLLOW && !follower_running(&target, &st).await? {
            tracing::info!(
                "no follower runs for job \"{}\": following until {lsn}",
                st.job
            );
            let stop = Arc::new(AtomicBool::new(false));
            match tokio::time::timeout(
                deadline.saturating_duration_since(Instant::now()),
                follow_job(settings, stop),
            )
            .await
            {
                // A follower started between the look and the lock: wait for it instead.
                Ok(Err(Error::Follow(m))) if m.contains("holds the job's follower lock") => {
                    tracing::info!("a follower of job \"{}\" started: waiting for it", st.job);
                }
                Ok(r) => return r,
                Err(_) => return Err(timed_out(&st, timeout, &row)),
            }
        }
        if Instant::now() >= deadline {
            return Err(timed_out(&st, timeout, &row));
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// The position a cutover waits for: a logical message written now (its record follows every
/// commit made before it, and decoding it moves the stream past the position even on a source
/// that writes nothing else), else the current end of WAL.
async fn cutover_position(source: &Client, st: &StateRef) -> Result<String> {
    if let Ok(row) = source
        .query_one(
            "SELECT pg_logical_emit_message(false, 'howdah cutover', $1)::text",
            &[&st.job],
        )
        .await
    {
        return Ok(row.get(0));
    }
    Ok(source
        .query_one("SELECT pg_current_wal_lsn()::text", &[])
        .await
        .map_err(|e| crate::error::query_error("reading the source's WAL position", &e))?
        .get(0))
}

fn timed_out(st: &StateRef, timeout: Duration, row: &fstate::FollowRow) -> Error {
    Error::Follow(format!(
        "job \"{}\" did not cut over within {} s (phase {}, applied up to {}, lag {}); the request \
         stays recorded: the follower cuts over once it catches up; run `howdah cutover` again to wait",
        st.job,
        timeout.as_secs(),
        row.phase,
        row.applied_lsn,
        row.lag_bytes
            .map(|b| crate::follow::lag::human_bytes(b as u64))
            .unwrap_or_else(|| "unknown".into())
    ))
}

async fn follower_running(target: &Client, st: &StateRef) -> Result<bool> {
    let got: bool = target
        .query_one(&fstate::lock_sql(st, "pg_try_advisory_lock"), &[])
        .await
        .map_err(|e| crate::error::query_error("looking for the job's follower", &e))?
        .get(0);
    if got {
        target
            .query_one(&fstate::lock_sql(st, "pg_advisory_unlock"), &[])
            .await
            .map_err(|e| crate::error::query_error("looking for the job's follower", &e))?;
    }
    Ok(!got)
}

/// `howdah abort`: marks the job aborted (a running follower ends within a second), then drops
/// its slot and publication on the source. Also drops a slot left by a start that recorded
/// nothing.
pub async fn abort(settings: &CopySettings, timeout: Duration) -> Result<String> {
    let st = state_ref(settings);
    let target = connect(&settings.target, Side::Target).await?;
    fstate::ensure(&target, &st).await?;
    let row = fstate::load(&target, &st).await?;
    let name = row
        .as_ref()
        .map_or_else(|| object_name(settings), |r| r.slot.clone());
    if row.as_ref().is_some_and(|r| r.phase == phase::CUT_OVER) {
        return Err(Error::Follow(format!(
            "job \"{}\" is cut over already; nothing to abort",
            st.job
        )));
    }
    if row.is_some() {
        fstate::set_phase(
            &target,
            &st,
            phase::ABORTED,
            Some("aborted by `howdah abort`"),
        )
        .await?;
        let deadline = Instant::now() + timeout;
        while follower_running(&target, &st).await? && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let SourceUrl::Postgres(url) = &settings.source else {
        // A binary log reader leaves nothing on the source.
        return Ok(format!(
            "job \"{}\" aborted: the follow stopped; the source keeps nothing for it",
            st.job
        ));
    };
    let source = connect(url, Side::Source).await?;
    slot::drop_slot(&source, &name).await?;
    slot::drop_publication(&source, &name).await?;
    Ok(format!(
        "job \"{}\" aborted: replication slot and publication {name} dropped on the source",
        st.job
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_synchronous_standby_list_naming_the_follower_is_seen() {
        for (setting, named) in [
            ("", false),
            ("*", true),
            ("standby1, howdah/j", true),
            ("FIRST 1 (s1, \"Howdah/J\")", true),
            ("ANY 2 (*)", true),
            ("ANY 1 (s1, s2)", false),
            ("howdah", false),
            ("ANY 1 (\"a, (b)\", \"howdah/j\")", true),
            ("FIRST 2 (\"howdah/j, x\", s2)", false),
            ("\"say \"\"hi\"\"\", howdah/j", true),
        ] {
            assert_eq!(names_standby(setting, "howdah/j"), named, "{setting}");
        }
    }

    #[test]
    fn a_follow_gives_up_only_on_failures_in_a_row_that_commit_nothing() {
        let mut r = Retries::default();
        for n in 1..=Retries::LIMIT {
            assert_eq!(
                r.after_failure(false),
                Some(Duration::from_secs(u64::from(n.min(10))))
            );
        }
        assert_eq!(
            r.after_failure(false),
            None,
            "20 failures in a row without progress end it"
        );
        // A follow that commits between its hiccups never runs out of retries.
        let mut r = Retries::default();
        for _ in 0..100 {
            assert_eq!(r.after_failure(true), Some(Duration::from_secs(1)));
        }
    }
}
