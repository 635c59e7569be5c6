//! The `howdah` binary: parse flags, run the command, print one error line, exit with its code.

mod cli;
mod commands;

use std::process::ExitCode;

use clap::Parser;

use cli::{Cli, Command, LogFormat};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let (quiet, format) = match &cli.command {
        Command::Copy(a) => (a.quiet, a.log_format),
        Command::Demo(a) => (a.quiet, a.log_format),
        Command::Verify(_) => (false, LogFormat::Text),
        Command::Status(_) | Command::Plan(_) => (true, LogFormat::Text),
        Command::Cutover(_) | Command::Abort(_) => (false, LogFormat::Text),
        Command::CheckQueries(_) => (true, LogFormat::Text),
        Command::Completions(_) | Command::Man(_) => (true, LogFormat::Text),
    };
    // verify: 0 equal, 1 different, 2 could not tell.
    let verify = matches!(cli.command, Command::Verify(_));
    let terminal = howdah::progress::init_logging(quiet, format == LogFormat::Json);
    let result = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt.block_on(commands::run(cli.command, terminal)),
        Err(e) => Err(howdah::Error::Internal(format!(
            "cannot start the async runtime: {e}"
        ))),
    };
    match result {
        Ok(code) => ExitCode::from(code),
        Err(howdah::Error::Interrupted) => {
            eprintln!(
                "interrupted: every committed checkpoint is kept in the target; run the same command again to resume"
            );
            ExitCode::from(4)
        }
        Err(e) => {
            eprintln!("error: {}", howdah::error::chain(&e));
            let code = if verify { 2 } else { e.exit_code() };
            ExitCode::from(u8::try_from(code).unwrap_or(1))
        }
    }
}
