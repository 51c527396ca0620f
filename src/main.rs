//! The `sessctl` binary: parses the command line and maps the outcome to an exit code.
//!
//! It has no Rust `fn main`: std's runtime start-up runs before one and, for the main
//! thread's stack-overflow guard, reads and parses `/proc/self/maps` and sets up an
//! alternate signal stack (about 20 system calls and a seventh of a 10-slot status line's
//! instructions), which a status line rendered on every prompt does not need. So `main` is
//! the C entry point (std still gets the arguments and the environment from the C runtime),
//! and everything but `statusline` first does what that start-up did that matters to a
//! CLI: ignore `SIGPIPE` (a closed pipe is an error, not death), turn a panic into exit
//! code 101, and flush stdout at the end. A stack overflow is then a plain SIGSEGV. (Under
//! `cargo test` the test harness brings its own `main`, so this file then has none.)
#![cfg_attr(not(test), no_main)]
#![cfg_attr(test, allow(dead_code, unused_imports))]

use std::ffi::{c_char, c_int};
use std::io::Write as _;
use std::process::ExitCode;

use clap::Parser;
use sessctl::cli::{Cli, exit};

/// The C entry point; see the module header.
#[cfg(not(test))]
#[unsafe(no_mangle)]
extern "C" fn main(_argc: c_int, _argv: *const *const c_char) -> c_int {
    // The status line runs on every prompt render: no full command tree, no logging set-up.
    // It catches its own panics; the guard below only keeps one from aborting.
    if std::env::args_os()
        .nth(1)
        .is_some_and(|a| a == "statusline")
    {
        return guarded(|| sessctl::cli::run_statusline(std::env::args_os()));
    }
    // SAFETY: setting a signal's disposition to SIG_IGN before any other thread exists.
    #[cfg(unix)]
    unsafe {
        libc::signal(libc::SIGPIPE, libc::SIG_IGN);
    }
    let code = guarded(cli);
    let _ = std::io::stdout().flush();
    code
}

/// `run`'s exit code, or 101 (as a Rust `main` would) if it panicked (the panic hook has
/// printed the message by then).
fn guarded(run: impl FnOnce() -> ExitCode + std::panic::UnwindSafe) -> c_int {
    match std::panic::catch_unwind(run) {
        // `ExitCode` does not give its number back on stable Rust; it compares, though.
        Ok(code) => (0..=u8::MAX)
            .find(|&n| ExitCode::from(n) == code)
            .map_or(1, c_int::from),
        Err(_) => 101,
    }
}

fn cli() -> ExitCode {
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
