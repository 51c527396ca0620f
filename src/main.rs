//! The `sessctl` binary: parses the command line and maps the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;
use sessctl::cli::{Cli, exit};

fn main() -> ExitCode {
    // The status line runs on every prompt render: no full command tree, no logging set-up.
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == "statusline")
    {
        return sessctl::cli::run_statusline(std::env::args_os());
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(error) => {
            let _ = error.print();
            return if error.use_stderr() {
                ExitCode::from(exit::USAGE)
            } else {
                ExitCode::SUCCESS
            };
        }
    };
    if !matches!(
        cli.command,
        sessctl::cli::Command::Daemon | sessctl::cli::Command::Statusline(_)
    ) {
        sessctl::logging::init_cli();
    }
    match sessctl::cli::run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("sessctl: {error:#}");
            exit::for_error(&error)
        }
    }
}
