//! The body of each command of the binary: resolve the flags into settings, run the library,
//! print the result. Everything here is I/O at the edge; the work is in the library.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use howdah::config::CopySettings;
use howdah::progress::Terminal;
use howdah::{Error, Result};

use crate::cli::{self, Command};

/// Runs a command; returns its exit code on success.
pub async fn run(command: Command, terminal: Terminal) -> Result<u8> {
    match command {
        Command::Copy(args) => copy(&args, terminal).await,
        Command::Demo(args) => demo(&args, terminal).await,
        Command::Verify(args) => verify(&args).await,
        Command::Plan(args) => plan(&args).await,
        Command::Status(args) => status(&args).await,
        Command::Cutover(args) => cutover(&args).await,
        Command::Abort(args) => abort(&args).await,
        Command::CheckQueries(args) => check_queries(&args).await,
        Command::Completions(args) => completions(&args),
        Command::Man(args) => man(&args),
    }
}

/// `howdah completions SHELL`: the completion script, generated from the clap definitions.
fn completions(args: &cli::CompletionsArgs) -> Result<u8> {
    let mut cmd = <cli::Cli as clap::CommandFactory>::command();
    clap_complete::generate(args.shell, &mut cmd, "howdah", &mut std::io::stdout());
    Ok(0)
}

/// The hidden `howdah man`: the man page (roff) from the clap definitions, on stdout, or one
/// page per subcommand in `--dir` (what a package installs under man1/).
fn man(args: &cli::ManArgs) -> Result<u8> {
    let cmd = <cli::Cli as clap::CommandFactory>::command();
    let io = |e: std::io::Error| Error::Internal(format!("writing the man page: {e}"));
    match &args.dir {
        Some(dir) => {
            std::fs::create_dir_all(dir).map_err(io)?;
            clap_mangen::generate_to(cmd, dir).map_err(io)?;
        }
        None => clap_mangen::Man::new(cmd)
            .render(&mut std::io::stdout())
            .map_err(io)?,
    }
    Ok(0)
}

/// `howdah check-queries`: 0 same answers and none slower, 1 otherwise.
async fn check_queries(args: &cli::CheckQueriesArgs) -> Result<u8> {
    let settings = CopySettings::resolve(args.overrides())?;
    let opts = howdah::check_queries::CheckOptions {
        queries_file: args.queries.clone(),
        from_stats: args.from_stats,
        runs: args.runs,
        max_slowdown: args.max_slowdown,
        min_slowdown_ms: args.min_slowdown_ms,
        timeout: args.statement_timeout.map(std::time::Duration::from_secs),
    };
    let report = howdah::check_queries::run(&settings, &opts).await?;
    if args.json {
        println!("{}", json(&report)?);
    } else {
        print!("{}", howdah::check_queries::render(&report));
    }
    Ok(if report.ok { 0 } else { 1 })
}

async fn copy(args: &cli::CopyArgs, terminal: Terminal) -> Result<u8> {
    let settings = CopySettings::resolve(args.overrides())?;
    let follow = settings.follow.is_some() && !settings.dry_run;
    if follow && howdah::follow::run::copy_finished(&settings).await? {
        tracing::info!(
            "the copy of job \"{}\" is in: following the source",
            settings.job
        );
        let followed = observed(&settings, true, &terminal, |stop| {
            howdah::follow::run::follow_job(&settings, stop)
        })
        .await?;
        println!("{}", followed.message);
        return Ok(0);
    }
    let serve = !settings.dry_run;
    // With --follow, the follow runs under the same metrics endpoint and signal watcher.
    let outcome = observed(&settings, serve, &terminal, |stop| async {
        let outcome = howdah::copy::run(&settings, stop.clone(), terminal.clone()).await?;
        if !follow {
            return Ok((outcome, None));
        }
        println!("{}", howdah::copy::summary(&outcome));
        if let Err(e) = outcome.finished() {
            tracing::warn!("{e}");
        }
        tracing::info!(
            "the copy is in; following the source's changes until `howdah cutover` or `howdah abort`"
        );
        let followed = howdah::follow::run::follow_job(&settings, stop).await?;
        Ok((outcome, Some(followed)))
    })
    .await;
    let (outcome, followed) = outcome?;
    if let Some(f) = followed {
        println!("{}", f.message);
        return Ok(0);
    }
    match &outcome.dry_run {
        Some(text) => print!("{text}"),
        None => println!("{}", howdah::copy::summary(&outcome)),
    }
    outcome.finished().map(|_| 0)
}

/// `howdah cutover`: waits until the follower applied everything up to now and cut over;
/// with `--verify`, then compares source and target.
async fn cutover(args: &cli::CutoverArgs) -> Result<u8> {
    let settings = CopySettings::resolve(args.overrides())?;
    let timeout = std::time::Duration::from_secs(args.timeout);
    let outcome = howdah::follow::run::cutover(&settings, timeout).await?;
    println!("{}", outcome.message);
    if args.verify && outcome.cut_over {
        let opts = howdah::verify::VerifyOptions::new(None, true, 250_000, false)?;
        let report = howdah::verify::run(&settings, &opts).await?;
        println!("{}", howdah::verify::render(&report));
        if !report.equal {
            return Ok(1);
        }
    }
    if let (Some(file), true) = (&args.check_queries, outcome.cut_over) {
        // The application's writes are stopped and every change is applied: both sides hold
        // the same rows, so the queries must give the same answers, and none may be slower.
        let opts = howdah::check_queries::CheckOptions {
            queries_file: Some(file.clone()),
            from_stats: None,
            // The query file's thresholds, else the defaults of `check-queries`.
            runs: None,
            max_slowdown: None,
            min_slowdown_ms: None,
            timeout: None,
        };
        let report = howdah::check_queries::run(&settings, &opts).await?;
        print!("{}", howdah::check_queries::render(&report));
        if !report.ok {
            return Ok(1);
        }
    }
    Ok(0)
}

/// `howdah abort`: drops the job's slot and publication without cutting over.
async fn abort(args: &cli::CutoverArgs) -> Result<u8> {
    let settings = CopySettings::resolve(args.overrides())?;
    let timeout = std::time::Duration::from_secs(args.timeout);
    println!("{}", howdah::follow::run::abort(&settings, timeout).await?);
    Ok(0)
}

async fn demo(args: &cli::DemoArgs, terminal: Terminal) -> Result<u8> {
    let settings = CopySettings::resolve(args.overrides())?;
    let server =
        howdah::conninfo::PgUrl::parse(&args.server, &howdah::conninfo::Env::from_process())?;
    let outcome = observed(&settings, true, &terminal, |stop| {
        howdah::demo::run(
            &server,
            &args.prefix,
            settings.clone(),
            stop,
            terminal.clone(),
        )
    })
    .await?;
    println!("{}", howdah::demo::report(&outcome, &settings));
    if outcome.counts_match() {
        Ok(0)
    } else {
        Err(Error::DemoCountsDiffer)
    }
}

/// Runs `work` with what a long command needs around it: the metrics endpoint (when the
/// settings ask for one and `serve`), a watcher of Ctrl-C/SIGTERM that sets the stop flag it
/// gets, the bars cleared at the end, and the final metrics served `metrics_linger_secs` more.
async fn observed<T, F>(
    settings: &CopySettings,
    serve: bool,
    terminal: &Terminal,
    work: impl FnOnce(Arc<AtomicBool>) -> F,
) -> Result<T>
where
    F: Future<Output = Result<T>>,
{
    let addr = settings.metrics_addr.filter(|_| serve);
    if let Some(addr) = addr {
        howdah::metrics::install(addr)?;
        tracing::info!("serving Prometheus metrics on http://{addr}/metrics");
    }
    let stop = Arc::new(AtomicBool::new(false));
    tokio::spawn(watch_signals(stop.clone()));
    let result = work(stop).await;
    terminal.clear();
    if let (Some(addr), n) = (addr, settings.metrics_linger_secs) {
        if n > 0 {
            tracing::info!("serving the final metrics on {addr} for {n} s");
            tokio::time::sleep(std::time::Duration::from_secs(n)).await;
        }
    }
    result
}

async fn verify(args: &cli::VerifyArgs) -> Result<u8> {
    let settings = CopySettings::resolve(args.overrides())?;
    let opts = howdah::verify::VerifyOptions::new(
        args.sample,
        args.drill_down,
        args.chunk_rows,
        args.repair,
    )?;
    let report = howdah::verify::run(&settings, &opts).await?;
    if args.json {
        println!("{}", json(&report)?);
    } else {
        println!("{}", howdah::verify::render(&report));
    }
    Ok(if report.equal { 0 } else { 1 })
}

/// `howdah plan`: the migration plan, from the same settings a copy would use.
async fn plan(args: &cli::PlanArgs) -> Result<u8> {
    let settings = CopySettings::resolve(args.overrides())?;
    let cmd = howdah::migration_plan::CommandLine {
        config: args.ends.config.clone(),
        tables: args.ends.tables.clone(),
        exclude: args.ends.exclude.clone(),
    };
    let plan = howdah::migration_plan::build(&settings, &cmd).await?;
    let json = args.format == cli::PlanFormat::Json;
    howdah::migration_plan::write(&plan, json, args.output.as_deref())?;
    Ok(0)
}

async fn status(args: &cli::StatusArgs) -> Result<u8> {
    let raw = args.target.as_deref().ok_or_else(|| {
        Error::Config("no target database: pass --target URL or set HOWDAH_TARGET".into())
    })?;
    let url = howdah::conninfo::PgUrl::parse(raw, &howdah::conninfo::Env::from_process())?;
    let client = howdah::connect::connect(&url, howdah::connect::Side::Target).await?;
    if let (Some(rate), Some(job)) = (&args.set_max_rate, &args.job) {
        let cap = howdah::rate::RateCap::parse(rate)?;
        let st = howdah::state::StateRef {
            schema: args.state_schema.clone(),
            job: job.clone(),
        };
        if !howdah::state::rate::set(&client, &st, cap).await? {
            return Err(Error::Config(format!(
                "no job \"{job}\" in state schema {}: start it with `howdah copy --max-rate` instead",
                args.state_schema
            )));
        }
        eprintln!(
            "max rate of job \"{job}\": {}; its workers apply it within {} s",
            cap.map_or_else(|| "none".to_string(), |c| c.describe()),
            howdah::state::rate::REFRESH.as_secs()
        );
    }
    let mut jobs = howdah::status::read(&client, &args.state_schema, args.job.as_deref()).await?;
    if let Some(raw) = &args.source {
        let source = howdah::config::parse_source_url(raw)?;
        for j in &mut jobs {
            j.source_snapshot = Some(howdah::snapshot_hold::probe(&source, &j.job).await?);
        }
    }
    if args.json {
        println!("{}", json(&jobs)?);
    } else {
        println!("{}", howdah::status::render_text(&jobs));
    }
    Ok(0)
}

fn json(value: &impl serde::Serialize) -> Result<String> {
    serde_json::to_string_pretty(value).map_err(|e| Error::Internal(format!("rendering JSON: {e}")))
}

/// First Ctrl-C or SIGTERM: stop at the next checkpoint. Second: exit at once, which is still
/// safe (uncommitted work rolls back) but loses the batches in flight.
async fn watch_signals(stop: Arc<AtomicBool>) {
    let Ok(mut term) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
    else {
        return;
    };
    for n in 0.. {
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
        if n > 0 {
            eprintln!(
                "aborted: uncommitted batches roll back; run the same command again to resume"
            );
            std::process::exit(130);
        }
        stop.store(true, Ordering::Relaxed);
        eprintln!("stopping at the next checkpoint (press Ctrl-C again to abort at once)");
    }
}
