//! `sessctl doctor [--json]`: execs `sessctl-daemon doctor` (see `crate::doctor`), whose
//! keychain and HTTP checks need the crates this light binary leaves out.

use std::path::PathBuf;
use std::process::ExitCode;

/// Replaces this process with `sessctl-daemon doctor`. Returns only on failure.
pub fn exec(config: Option<PathBuf>, json: bool) -> anyhow::Result<ExitCode> {
    let args: &[&str] = if json {
        &["doctor", "--json"]
    } else {
        &["doctor"]
    };
    super::daemon::exec_daemon_binary(config, args)
}
