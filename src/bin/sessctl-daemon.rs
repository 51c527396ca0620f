//! The `sessctl-daemon` binary: the daemon, run by `sessctl daemon` (see `cli::daemon` for
//! why it is a binary of its own).

fn main() -> std::process::ExitCode {
    sessctl::cli::daemon::main(std::env::args_os())
}
