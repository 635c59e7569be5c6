//! `howdah check-queries`: the application's read queries on source and target, before a
//! cutover: same answers, and none much slower.
//!
//! [`run`] is the sequence: gather the queries ([`file`], and [`stats`] for a PostgreSQL source's
//! `pg_stat_statements`), each already through the read-only guard ([`guard`]); open one
//! session per side ([`run`](self::run)); per query, a warm-up run on each side gives the two
//! answers ([`answer`], values in canonical form for a MySQL source: [`normalize`]), then
//! `runs` timed runs alternate between the sides; medians and their ratio decide "slower",
//! and a slower query's plans are compared ([`plan`]). [`render`] writes Markdown; the
//! report itself serialises as the JSON output.
//!
//! Invariants: nothing writes (guard, then `READ ONLY` transactions); sides alternate run by
//! run so a passing load on the machine hits both alike; a query's failure is reported on its
//! row and the others still run; URLs are shown without passwords.

mod answer;
mod diff;
mod file;
mod guard;
mod normalize;
mod plan;
mod plan_mysql;
mod render;
mod report;
mod run;
mod stats;

use std::path::PathBuf;
use std::time::Duration;

use tokio_postgres::Client;

use answer::compare;
pub use answer::{Answer, Verdict};
use file::Query;
use guard::Dialect;
pub use render::render;
pub use report::{QueryReport, Report, Skipped, Status};
use run::{median_ms, Session};

use crate::config::{CopySettings, SourceUrl};
use crate::connect::Side;
use crate::error::{Error, Result};

/// What to check and how.
#[derive(Debug, Clone)]
pub struct CheckOptions {
    /// The query file (`--queries`).
    pub queries_file: Option<PathBuf>,
    /// Also the top N read queries of a PostgreSQL source's `pg_stat_statements`.
    pub from_stats: Option<usize>,
    /// Timed runs per query and side, after one warm-up run [default: the query file's, else 5].
    pub runs: Option<usize>,
    /// A query is slower when the target's median exceeds the source's this many times ...
    /// [default: the query file's, else 2].
    pub max_slowdown: Option<f64>,
    /// ... and by at least this many milliseconds (sub-millisecond timings are noise)
    /// [default: the query file's, else 2].
    pub min_slowdown_ms: Option<f64>,
    /// Statement timeout of every run [default: the query file's, else 60 s].
    pub timeout: Option<Duration>,
}

/// The thresholds in force: flags, else the query file's, else the defaults.
#[derive(Debug, Clone, Copy)]
struct Limits {
    runs: usize,
    max_slowdown: f64,
    min_slowdown_ms: f64,
    timeout: Duration,
}

impl CheckOptions {
    /// Checks the values.
    pub fn validate(&self) -> Result<()> {
        if self.queries_file.is_none() && self.from_stats.is_none() {
            return Err(Error::Config(
                "no queries: pass --queries FILE, --from-stats N (PostgreSQL source), or both"
                    .into(),
            ));
        }
        if self.from_stats == Some(0) {
            return Err(Error::Config("--from-stats must be at least 1".into()));
        }
        Ok(())
    }

    /// The thresholds: each flag, else the query file's value, else its default; checked.
    fn limits(&self, file: &file::FileLimits) -> Result<Limits> {
        let l = Limits {
            runs: self.runs.or(file.runs).unwrap_or(5),
            max_slowdown: self.max_slowdown.or(file.max_slowdown).unwrap_or(2.0),
            min_slowdown_ms: self.min_slowdown_ms.or(file.min_slowdown_ms).unwrap_or(2.0),
            timeout: self
                .timeout
                .or(file.statement_timeout.map(Duration::from_secs))
                .unwrap_or(Duration::from_secs(60)),
        };
        if l.runs == 0 {
            return Err(Error::Config("runs (--runs) must be at least 1".into()));
        }
        if !(l.max_slowdown.is_finite() && l.max_slowdown >= 1.0) {
            return Err(Error::Config(format!(
                "max_slowdown (--max-slowdown) {} must be a number of at least 1 (2 means twice as slow)",
                l.max_slowdown
            )));
        }
        if !(l.min_slowdown_ms.is_finite() && l.min_slowdown_ms >= 0.0) {
            return Err(Error::Config(
                "min_slowdown_ms (--min-slowdown-ms) must be 0 or more".into(),
            ));
        }
        if l.timeout.is_zero() {
            return Err(Error::Config(
                "statement_timeout (--statement-timeout) must be at least 1 second".into(),
            ));
        }
        Ok(l)
    }
}

/// Runs the check.
pub async fn run(settings: &CopySettings, opts: &CheckOptions) -> Result<Report> {
    opts.validate()?;
    let dialect = match &settings.source {
        SourceUrl::Postgres(_) => Dialect::Postgres,
        SourceUrl::Mysql(_) => Dialect::Mysql,
    };
    let mut queries: Vec<Query> = Vec::new();
    let mut file_limits = file::FileLimits::default();
    if let Some(path) = &opts.queries_file {
        let (q, l) = file::load(path, dialect)?;
        queries.extend(q);
        file_limits = l;
    }
    let limits = opts.limits(&file_limits)?;
    if opts.from_stats.is_some() && dialect == Dialect::Mysql {
        return Err(Error::Config(
            "--from-stats reads pg_stat_statements: it needs a PostgreSQL source (give a MySQL source's queries with --queries)".into(),
        ));
    }
    let mut skipped: Vec<Skipped> = Vec::new();
    let target = run::open_pg(&settings.target, Side::Target).await?;
    let mut source = match &settings.source {
        SourceUrl::Postgres(url) => Session::Pg(run::open_pg(url, Side::Source).await?),
        SourceUrl::Mysql(url) => Session::My(run::open_mysql(url, limits.timeout).await?),
    };
    if let (Some(n), Session::Pg(src)) = (opts.from_stats, &source) {
        let (top, passed_over) = stats::top_queries(src, n, limits.timeout).await?;
        queries.extend(top);
        skipped.extend(passed_over);
    }
    let settings_differ = match &source {
        Session::Pg(src) => settings_differ(src, &target).await,
        Session::My(_) => Vec::new(),
    };
    let mut target_session = Session::Pg(target);
    let mut reports = Vec::with_capacity(queries.len());
    for q in &queries {
        tracing::info!("checking {}", q.name);
        reports.push(check_one(q, &mut source, &mut target_session, dialect, &limits).await);
    }
    let count = |f: &dyn Fn(&QueryReport) -> bool| reports.iter().filter(|r| f(r)).count();
    let different = count(&|r| matches!(r.status, Status::Different | Status::OtherOrder));
    let slower = count(&|r| r.slower);
    let errors = count(&|r| r.status == Status::Error);
    Ok(Report {
        source: settings.source.to_string(),
        target: settings.target.to_string(),
        runs: limits.runs,
        max_slowdown: limits.max_slowdown,
        min_slowdown_ms: limits.min_slowdown_ms,
        ok: different == 0 && slower == 0 && errors == 0,
        queries: reports,
        skipped,
        settings_differ,
        different,
        slower,
        errors,
    })
}

async fn check_one(
    q: &Query,
    source: &mut Session,
    target: &mut Session,
    dialect: Dialect,
    opts: &Limits,
) -> QueryReport {
    let mut r = QueryReport {
        name: q.name.clone(),
        origin: q.origin.clone(),
        status: Status::Ok,
        ordered: q.ordered,
        source: None,
        target: None,
        answer: None,
        source_ms: None,
        target_ms: None,
        ratio: None,
        slower: false,
        rows_differ: None,
        plan: None,
        error: None,
        notes: Vec::new(),
        source_sql: q.source_sql.clone(),
        target_sql: q.target_sql.clone(),
    };
    let fail = |mut r: QueryReport, side: &str, e: String| {
        r.status = Status::Error;
        r.error = Some(format!("on the {side}: {e}"));
        r
    };
    // A MySQL source's values are compared in the canonical form the target's types give.
    let kinds = match (dialect, &*target) {
        (Dialect::Mysql, Session::Pg(t)) => match run::column_kinds(t, &q.target_sql).await {
            Ok(k) => Some(k),
            Err(e) => return fail(r, "target", e),
        },
        _ => None,
    };
    let kinds = kinds.as_deref();
    let warm_source = match source.run(&q.source_sql, opts.timeout, kinds).await {
        Ok(a) => a.answer,
        Err(e) => return fail(r, "source", e),
    };
    let warm_target = match target.run(&q.target_sql, opts.timeout, kinds).await {
        Ok(a) => a.answer,
        Err(e) => return fail(r, "target", e),
    };
    let mut source_times = Vec::with_capacity(opts.runs);
    let mut target_times = Vec::with_capacity(opts.runs);
    let mut unstable = Vec::new();
    // A run is checked against its side's warm-up as the two sides are compared: without a
    // top-level ORDER BY, another order (a parallel plan's) is the same answer, not an unstable one.
    for _ in 0..opts.runs {
        match source.run(&q.source_sql, opts.timeout, kinds).await {
            Ok(a) => {
                if compare(&warm_source, &a.answer, q.ordered) != Verdict::Same
                    && !unstable.contains(&"source")
                {
                    unstable.push("source");
                }
                source_times.push(a.elapsed);
            }
            Err(e) => return fail(r, "source", e),
        }
        match target.run(&q.target_sql, opts.timeout, kinds).await {
            Ok(a) => {
                if compare(&warm_target, &a.answer, q.ordered) != Verdict::Same
                    && !unstable.contains(&"target")
                {
                    unstable.push("target");
                }
                target_times.push(a.elapsed);
            }
            Err(e) => return fail(r, "target", e),
        }
    }
    let s = median_ms(&mut source_times);
    let t = median_ms(&mut target_times);
    r.source_ms = Some(round3(s));
    r.target_ms = Some(round3(t));
    r.ratio = (s > 0.0).then(|| round3(t / s));
    r.slower = t > s * opts.max_slowdown && t - s >= opts.min_slowdown_ms;
    let verdict = compare(&warm_source, &warm_target, q.ordered);
    r.source = Some(warm_source);
    r.target = Some(warm_target);
    if unstable.is_empty() {
        r.answer = Some(verdict);
    } else {
        r.notes.push(format!(
            "the answer changed between runs on the {} (now(), random(), a LIMIT over ties...): answers not compared",
            unstable.join(" and the ")
        ));
    }
    if r.answer == Some(Verdict::Different)
        && r.source.as_ref().is_some_and(|a| a.rows <= diff::MAX_ROWS)
        && r.target.as_ref().is_some_and(|a| a.rows <= diff::MAX_ROWS)
    {
        r.rows_differ = rows_differ(q, source, target, kinds, opts.timeout).await;
    }
    if r.slower {
        r.plan = Some(diagnose(q, source, target, opts.timeout).await);
    }
    r.status = match (r.answer, r.slower) {
        (Some(Verdict::Different), _) => Status::Different,
        (Some(Verdict::OtherOrder), _) => Status::OtherOrder,
        (_, true) => Status::Slower,
        (None, false) => Status::Unstable,
        (Some(Verdict::Same), false) => Status::Ok,
    };
    r
}

/// The rows on one side only of a differing query (`None` when a side fails or has grown
/// past [`diff::MAX_ROWS`] since).
async fn rows_differ(
    q: &Query,
    source: &mut Session,
    target: &mut Session,
    kinds: Option<&[normalize::ColumnKind]>,
    timeout: Duration,
) -> Option<diff::RowDiff> {
    let mut s = diff::RowCollector::default();
    source
        .stream(&q.source_sql, timeout, kinds, &mut s)
        .await
        .ok()?;
    let mut t = diff::RowCollector::default();
    target
        .stream(&q.target_sql, timeout, kinds, &mut t)
        .await
        .ok()?;
    Some(diff::differences(s.into_rows()?, t.into_rows()?))
}

/// The plans of a slower query and what they tell.
async fn diagnose(
    q: &Query,
    source: &mut Session,
    target: &Session,
    timeout: Duration,
) -> plan::Diagnosis {
    let Session::Pg(tgt) = target else {
        return plan::Diagnosis::default();
    };
    let target_plan = match plan::explain(tgt, &q.target_sql, timeout).await {
        Ok(p) => p,
        Err(e) => {
            return plan::Diagnosis {
                findings: vec![format!("EXPLAIN on the target failed: {e}")],
                ..plan::Diagnosis::default()
            }
        }
    };
    match source {
        Session::Pg(src) => {
            let source_plan = plan::explain(src, &q.source_sql, timeout).await.ok();
            plan::diagnose(source_plan.as_ref().map(|p| (&*src, p)), tgt, &target_plan).await
        }
        Session::My(conn) => {
            let mut d = plan::diagnose(None, tgt, &target_plan).await;
            let mut found = plan_mysql::findings(conn, tgt, &plan::scans(&target_plan)).await;
            found.append(&mut d.findings);
            d.findings = found;
            d
        }
    }
}

/// Planner settings that differ between the sides: a plan may change with them alone.
async fn settings_differ(source: &Client, target: &Client) -> Vec<String> {
    const SQL: &str = "SELECT name, setting || coalesce(unit, '') FROM pg_settings WHERE name IN \
        ('work_mem', 'random_page_cost', 'seq_page_cost', 'effective_cache_size', 'default_statistics_target', \
         'jit', 'enable_seqscan', 'enable_indexscan', 'enable_indexonlyscan', 'enable_bitmapscan', 'enable_hashjoin', \
         'enable_mergejoin', 'enable_nestloop', 'enable_hashagg', 'enable_sort', 'max_parallel_workers_per_gather', \
         'shared_buffers', 'effective_io_concurrency', 'from_collapse_limit', 'join_collapse_limit', 'plan_cache_mode') \
         ORDER BY name";
    let (Ok(s), Ok(t)) = (source.query(SQL, &[]).await, target.query(SQL, &[]).await) else {
        return Vec::new();
    };
    let pairs = |rows: &[tokio_postgres::Row]| -> Vec<(String, String)> {
        rows.iter()
            .filter_map(|r| Some((r.try_get(0).ok()?, r.try_get(1).ok()?)))
            .collect()
    };
    let (s, t) = (pairs(&s), pairs(&t));
    s.iter()
        .filter_map(|(name, sv)| {
            let (_, tv) = t.iter().find(|(n, _)| n == name)?;
            (tv != sv).then(|| format!("{name}: source {sv}, target {tv}"))
        })
        .collect()
}

fn round3(v: f64) -> f64 {
    (v * 1000.0).round() / 1000.0
}
