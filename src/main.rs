//! The `howdah` binary: parse flags, run the command, print one error line, exit with its code.

use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use clap::Parser;
mod cli;

use cli::{Cli, Command, LogFormat};
use howdah::config::CopySettings;
use howdah::progress::{BarsWriter, Terminal};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (quiet, format) = match &cli.command {
        Command::Copy(a) => (a.quiet, a.log_format),
        Command::Demo(a) => (a.quiet, a.log_format),
        Command::Verify(_) => (false, LogFormat::Text),
        Command::Status(_) | Command::Plan(_) => (true, LogFormat::Text),
    };
    let verify = matches!(cli.command, Command::Verify(_));
    let default_level = if quiet { "howdah=warn" } else { "howdah=info" };
    let filter = || {
        tracing_subscriber::EnvFilter::try_from_default_env()
            .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default_level))
    };
    let tty = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let terminal = match (quiet, format, tty) {
        (true, _, _) => Terminal::Quiet,
        (false, LogFormat::Text, true) => Terminal::Bars(howdah::progress::terminal_bars()),
        _ => Terminal::Lines,
    };
    let base = tracing_subscriber::fmt()
        .with_env_filter(filter())
        .with_target(false);
    match (&terminal, format) {
        (_, LogFormat::Json) => base
            .json()
            .with_current_span(false)
            .with_writer(std::io::stderr)
            .init(),
        (Terminal::Bars(bars), _) => base
            .with_ansi(true)
            .with_writer(BarsWriter(bars.clone()))
            .init(),
        _ => base.with_ansi(tty).with_writer(std::io::stderr).init(),
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(1);
        }
    };
    let result = runtime.block_on(async {
        match cli.command {
            Command::Copy(args) => {
                let settings = CopySettings::resolve(args.overrides())?;
                if let (Some(addr), false) = (settings.metrics_addr, settings.dry_run) {
                    howdah::metrics::install(addr)?;
                    tracing::info!("serving Prometheus metrics on http://{addr}/metrics");
                }
                let stop = Arc::new(AtomicBool::new(false));
                tokio::spawn(watch_signals(stop.clone()));
                let result = howdah::copy::run(&settings, stop, terminal.clone()).await;
                if let Terminal::Bars(bars) = &terminal {
                    let _ = bars.clear();
                }
                if let Ok(outcome) = &result {
                    match &outcome.dry_run {
                        Some(text) => print!("{text}"),
                        None => println!("{}", howdah::copy::summary(outcome)),
                    }
                }
                if let (Some(addr), n) = (settings.metrics_addr, settings.metrics_linger_secs) {
                    if n > 0 {
                        tracing::info!("serving the final metrics on {addr} for {n} s");
                        tokio::time::sleep(std::time::Duration::from_secs(n)).await;
                    }
                }
                result.and_then(|o| o.finished()).map(|_| 0)
            }
            Command::Demo(args) => {
                let settings = CopySettings::resolve(args.overrides())?;
                let server = howdah::conninfo::PgUrl::parse(
                    &args.server,
                    &howdah::conninfo::Env::from_process(),
                )?;
                if let Some(addr) = settings.metrics_addr {
                    howdah::metrics::install(addr)?;
                    tracing::info!("serving Prometheus metrics on http://{addr}/metrics");
                }
                let stop = Arc::new(AtomicBool::new(false));
                tokio::spawn(watch_signals(stop.clone()));
                let outcome = howdah::demo::run(
                    &server,
                    &args.prefix,
                    settings.clone(),
                    stop,
                    terminal.clone(),
                )
                .await;
                if let Terminal::Bars(bars) = &terminal {
                    let _ = bars.clear();
                }
                let outcome = outcome?;
                println!("{}", howdah::demo::report(&outcome, &settings));
                if let (Some(addr), n) = (settings.metrics_addr, settings.metrics_linger_secs) {
                    if n > 0 {
                        tracing::info!("serving the final metrics on {addr} for {n} s");
                        tokio::time::sleep(std::time::Duration::from_secs(n)).await;
                    }
                }
                if outcome.counts_match() {
                    Ok(0)
                } else {
                    Err(howdah::Error::Internal(
                        "row counts differ between source and target after the demo copy".into(),
                    ))
                }
            }
            Command::Verify(args) => {
                let settings = CopySettings::resolve(args.overrides())?;
                if let Some(p) = args.sample {
                    if !(p > 0.0 && p <= 100.0) {
                        return Err(howdah::Error::Config(format!(
                            "--sample {p}: give a percent above 0 and at most 100"
                        )));
                    }
                }
                let opts = howdah::verify::VerifyOptions {
                    sample_pct: args.sample,
                    drill_down: args.drill_down,
                    chunk_rows: args.chunk_rows.max(1000),
                    repair: args.repair,
                };
                let report = howdah::verify::run(&settings, &opts).await?;
                if args.json {
                    let text = serde_json::to_string_pretty(&report)
                        .map_err(|e| howdah::Error::Internal(format!("rendering JSON: {e}")))?;
                    println!("{text}");
                } else {
                    println!("{}", howdah::verify::render(&report));
                }
                Ok(if report.equal { 0 } else { 1 })
            }
            Command::Plan(args) => plan(&args).await.map(|_| 0),
            Command::Status(args) => {
                let raw = args.target.ok_or_else(|| {
                    howdah::Error::Config(
                        "no target database: pass --target URL or set HOWDAH_TARGET".into(),
                    )
                })?;
                let url =
                    howdah::conninfo::PgUrl::parse(&raw, &howdah::conninfo::Env::from_process())?;
                let client = howdah::connect::connect(&url, howdah::connect::Side::Target).await?;
                let jobs =
                    howdah::status::read(&client, &args.state_schema, args.job.as_deref()).await?;
                if args.json {
                    let text = serde_json::to_string_pretty(&jobs)
                        .map_err(|e| howdah::Error::Internal(format!("rendering JSON: {e}")))?;
                    println!("{text}");
                } else {
                    println!("{}", howdah::status::render_text(&jobs));
                }
                Ok(0)
            }
        }
    });
    match result {
        Ok(code) => ExitCode::from(code),
        Err(howdah::Error::Interrupted) => {
            eprintln!(
                "interrupted: every committed checkpoint is kept in the target; run the same command again to resume"
            );
            ExitCode::from(4)
        }
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            // verify: 0 equal, 1 different, 2 could not tell.
            if verify {
                return ExitCode::from(2);
            }
            ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(1))
        }
    }
}

/// The error and its sources on one line, skipping sources whose text is already shown.
fn error_chain(err: &howdah::Error) -> String {
    let mut text = err.to_string();
    let mut source = std::error::Error::source(err);
    while let Some(s) = source {
        let part = s.to_string();
        if !text.contains(&part) {
            text.push_str(": ");
            text.push_str(&part);
        }
        source = s.source();
    }
    text.replace('\n', " ")
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

/// `howdah plan`: the migration plan, from the same settings a copy would use.
async fn plan(args: &cli::PlanArgs) -> howdah::Result<()> {
    let settings = howdah::config::CopySettings::resolve(args.overrides())?;
    let cmd = howdah::migration_plan::CommandLine {
        config: args.ends.config.clone(),
        tables: args.ends.tables.clone(),
        exclude: args.ends.exclude.clone(),
    };
    let plan = howdah::migration_plan::build(&settings, &cmd).await?;
    howdah::migration_plan::write(
        &plan,
        args.format == cli::PlanFormat::Json,
        args.output.as_deref(),
    )
}
