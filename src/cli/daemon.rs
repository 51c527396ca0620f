//! `sessctl daemon`: loads the config, sets up logging and runs the daemon in the
//! foreground.

use std::process::ExitCode;

use anyhow::Context;

use crate::config::Config;
use crate::paths::Paths;

pub fn run(paths: &Paths) -> anyhow::Result<ExitCode> {
    let _guard = crate::logging::init_daemon(&paths.log_dir);
    let config = Config::load(&paths.config_file, paths.config_explicit)
        .map_err(crate::error::Error::from)
        .context("refusing to start")?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let result = runtime.block_on(crate::daemon::run(config, paths.clone()));
    if let Err(error) = &result {
        tracing::error!("daemon stopped: {error}");
    }
    result?;
    Ok(ExitCode::SUCCESS)
}
