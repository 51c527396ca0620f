//! The `sessctl` binary: parses the command line and maps the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;
use sessctl::cli::{Cli, exit};

fn main() -> ExitCode {
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
    if !matches!(cli.command, sessctl::cli::Command::Daemon) {
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
