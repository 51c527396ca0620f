//! `sessctl daemon`: start-up and shutdown. Takes the single-instance lock, cleans up a
//! socket left by a crashed daemon, binds the socket (0600 in a 0700 directory), loads the
//! state file, then runs the socket server, the manager and the state writer until a
//! `shutdown` request or SIGTERM/SIGINT. Then the manager drains (`stop`): requests already
//! sent finish and their results are stored while the socket still answers "shutting down";
//! only then do the server and the writers end.
//!
//! Unix only: the socket server and signal handling are built for Unix; on Windows `run`
//! says so and the rest is only type-checked, so it is unused there.
#![cfg_attr(not(unix), allow(dead_code, unused_imports))]

mod alerts;
mod core;
mod idle_memory;
mod jobs;
#[cfg(unix)]
mod runner;
#[cfg(unix)]
mod server;
#[cfg(test)]
mod sim;
mod start;
mod wake;

use std::sync::Arc;

#[cfg(unix)]
use tokio::net::UnixListener;
use tokio::sync::{mpsc, watch};

use crate::cache::QuotaCache;
use crate::config::Config;
use crate::error::Error;
use crate::fsutil;
use crate::oauth::OAuthClient;
use crate::paths::Paths;
use crate::state::StateFile;
use crate::store::CredentialStore;

use self::core::{Manager, ManagerParts};
use self::jobs::JobContext;
use self::start::{fingerprint_key, journal_start, lock, reconcile, store_probe};

/// Commands queued between the socket server and the manager before senders wait.
const COMMAND_QUEUE: usize = 1024;
/// At shutdown, alerts still queued get this long to be delivered; then a running
/// `alert_command` is killed with the runtime (its process group with it).
const ALERT_DRAIN_GRACE: std::time::Duration = std::time::Duration::from_secs(3);

/// Without Unix sockets the daemon cannot listen (see README, "Install").
#[cfg(not(unix))]
pub async fn run(_config: Config, _paths: Paths) -> Result<(), Error> {
    Err(Error::UnsupportedPlatform)
}

/// Runs the daemon in the foreground until it is told to stop.
#[cfg(unix)]
pub async fn run(config: Config, paths: Paths) -> Result<(), Error> {
    fsutil::create_private_dir(&paths.runtime_dir)
        .map_err(|e| Error::io("create runtime directory", &paths.runtime_dir, e))?;
    fsutil::create_private_dir(&paths.state_dir)
        .map_err(|e| Error::io("create state directory", &paths.state_dir, e))?;
    let _lock = lock::InstanceLock::acquire(&paths.lock_file, &paths.socket)?;
    let _socket_lock = lock::InstanceLock::acquire_socket(&paths.socket_lock, &paths.socket)?;
    let listener = bind_socket(&paths)?;
    let mut state = StateFile::load(&paths.state_file)?;
    let store = CredentialStore::open(config.credential_store, paths.credentials_file.clone());
    let reconciled = reconcile::at_start(&store, &mut state).await;
    if reconciled.changed() {
        match state.save(&paths.state_file) {
            Ok(revision) => state.revision = revision,
            // The writer saves the next snapshot over whatever is there.
            Err(e) => tracing::error!("{e}"),
        }
    }
    // Before any credential is loaded: the previous daemon's journal goes to the store first.
    // The fingerprint key is read meanwhile: a keychain that does not answer costs one wait.
    let (journal_start::Opened { journal, held }, fingerprint_key) = tokio::join!(
        journal_start::open(config.credential_store, &paths.state_dir, &store, &state),
        fingerprint_key::read(config.credential_store, &paths.credentials_file),
    );
    let oauth = OAuthClient::new()
        .map_err(|e| Error::io("start", "HTTP client", std::io::Error::other(e)))?;
    announce_start(&config, &paths, state.slots.len());

    let token_limit = jobs::limiter::Limiter::new("token", config.max_token_requests);
    let usage_limit = jobs::limiter::Limiter::new("usage", config.max_usage_requests);
    let (results_tx, results_rx) = mpsc::unbounded_channel();
    let (commands_tx, commands_rx) = mpsc::channel(COMMAND_QUEUE);
    let (shutdown_tx, shutdown_rx) = watch::channel(false);
    let (state_tx, state_rx) = watch::channel((0, core::snapshot::StateSnapshot::of(&state)));
    let previous_cache = QuotaCache::read(&paths.quota_cache).ok();
    let (cache_tx, cache_rx) = watch::channel(previous_cache.clone().unwrap_or(QuotaCache {
        updated_at: chrono::Utc::now(),
        stale_after_secs: None,
        slots: std::collections::BTreeMap::default(),
    }));

    let writer = tokio::spawn(jobs::writer::state_file(
        paths.state_file.clone(),
        state.revision,
        state_rx,
        results_tx.clone(),
    ));
    let cache_writer = tokio::spawn(jobs::writer::quota_cache(
        paths.quota_cache.clone(),
        cache_rx,
        results_tx.clone(),
    ));
    // The server outlives the manager's drain, so requests meanwhile hear "shutting down".
    let (server_stop_tx, server_stop_rx) = watch::channel(false);
    let server = tokio::spawn(server::serve(listener, commands_tx, server_stop_rx));
    tokio::spawn(forward_signals(shutdown_tx.clone()));
    let (alert_queue, alert_delivery) = alerts::spawn(&config);
    let store_probe = store_probe::start(&store, shutdown_rx.clone()).await;

    let store_kind = store.kind();
    let jobs = JobContext {
        oauth,
        store,
        results: results_tx,
        drain: core::drain::DrainGate::default(),
        journal,
        token_limit,
        usage_limit,
    };
    let manager = Manager::new(ManagerParts {
        config: Arc::new(config),
        state,
        jobs: core::orders::JobOrders::new(jobs.drain.clone(), jobs.journal.clone()),
        store_kind,
        clocks: runner::read_clocks(),
        seed: fastrand::u64(..),
        state_tx,
        cache_tx,
        cache_path: paths.quota_cache.clone(),
        previous_cache,
        alert_queue,
        unplaced: reconciled.unplaced,
        store_probe,
        held,
        fingerprint_key,
    });
    runner::run(manager, jobs, commands_rx, results_rx, shutdown_rx).await;

    let _ = server_stop_tx.send(true);
    let _ = server.await;
    let _ = std::fs::remove_file(&paths.socket);
    // The manager dropped its snapshot sender: the writer saves the last state and ends.
    let _ = writer.await;
    let _ = cache_writer.await;
    // The manager dropped the alert queue: delivery ends once the queue is drained.
    if tokio::time::timeout(ALERT_DRAIN_GRACE, alert_delivery)
        .await
        .is_err()
    {
        tracing::warn!("alerts still being delivered at shutdown were abandoned");
    }
    tracing::info!("sessctl daemon stopped");
    Ok(())
}

/// Logs the start, with where everything is, and the config's warnings.
fn announce_start(config: &Config, paths: &Paths, slots: usize) {
    tracing::info!(
        pid = std::process::id(),
        socket = %paths.socket.display(),
        store = ?config.credential_store,
        slots,
        logs = %paths.log_dir.display(),
        log_rotation = ?config.log_rotation,
        log_retention = config.log_retention,
        "sessctl daemon {} started",
        env!("CARGO_PKG_VERSION")
    );
    for warning in &config.warnings {
        tracing::warn!("config {}: {warning}", paths.config_file.display());
    }
}

/// Binds the socket, replacing a stale one. Only called with the socket lock held, so a
/// socket file that exists now was left by a daemon that is gone.
#[cfg(unix)]
fn bind_socket(paths: &Paths) -> Result<UnixListener, Error> {
    use std::os::unix::fs::PermissionsExt;
    match std::fs::remove_file(&paths.socket) {
        Ok(()) => tracing::info!("removed a stale socket left by an earlier daemon"),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => return Err(Error::io("remove stale socket", &paths.socket, e)),
    }
    let listener = UnixListener::bind(&paths.socket)
        .map_err(|e| Error::io("bind socket", &paths.socket, e))?;
    std::fs::set_permissions(&paths.socket, std::fs::Permissions::from_mode(0o600))
        .map_err(|e| Error::io("set permissions of", &paths.socket, e))?;
    Ok(listener)
}

/// Turns SIGTERM and SIGINT into a graceful shutdown.
#[cfg(unix)]
async fn forward_signals(shutdown: watch::Sender<bool>) {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut term), Ok(mut int)) = (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) else {
        tracing::warn!("cannot listen for signals; stop the daemon with `sessctl shutdown`");
        return;
    };
    tokio::select! {
        _ = term.recv() => tracing::info!("SIGTERM: shutting down"),
        _ = int.recv() => tracing::info!("SIGINT: shutting down"),
    }
    let _ = shutdown.send(true);
}
