//! The runner: the I/O around the sans-IO manager. One task runs [`run`], a `select!` over
//! client commands, job results, the shutdown signal and the manager's next deadline. For
//! every event it reads the clocks, hands the event to the manager, starts the job orders
//! the manager queued on the [`JobContext`], and flushes the manager's state to the
//! writers. It decides nothing itself. At a stop it runs the drain ([`stop`]) the same way.

use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use super::clock;
use super::jobs::{JobContext, JobResult};
use super::manager::{Command, Flow, Manager};
use super::schedule;
use super::stop::{STOP_LIMIT, STOP_STORE_RETRY, STOP_TICK};

/// Serves until `shutdown` turns true, a `shutdown` request arrives, or every command
/// sender is gone; then drains and returns once the daemon may exit.
pub async fn run(
    mut manager: Manager,
    ctx: JobContext,
    mut commands: mpsc::Receiver<Command>,
    mut results: mpsc::UnboundedReceiver<JobResult>,
    mut shutdown: watch::Receiver<bool>,
) {
    manager.announce_start();
    loop {
        let clocks = clock::read();
        manager.tick(clocks);
        settle(&mut manager, &ctx);
        let sleep = schedule::sleep_for(manager.earliest_deadline(), clocks.wall);
        tokio::select! {
            command = commands.recv() => match command {
                Some(command) => {
                    let flow = manager.handle(command, clock::read());
                    settle(&mut manager, &ctx);
                    if flow == Flow::Stop {
                        break;
                    }
                }
                None => break,
            },
            Some(result) = results.recv() => {
                manager.on_result(result, clock::read());
                settle(&mut manager, &ctx);
            }
            _ = shutdown.changed() => break,
            () = tokio::time::sleep(sleep) => {}
        }
    }
    // Graceful stop: what was sent comes back and is stored first.
    stop(&mut manager, &ctx, &mut commands, &mut results).await;
    tracing::info!("manager stopping");
    manager.persist();
    settle(&mut manager, &ctx);
}

/// After an event: starts what the manager ordered, then saves and publishes what changed.
fn settle(manager: &mut Manager, ctx: &JobContext) {
    for order in manager.jobs.take() {
        order.start(ctx);
    }
    manager.flush();
}

/// Drains as described in `super::stop`; returns when the daemon may exit.
async fn stop(
    manager: &mut Manager,
    ctx: &JobContext,
    commands: &mut mpsc::Receiver<Command>,
    results: &mut mpsc::UnboundedReceiver<JobResult>,
) {
    manager.begin_stop();
    let started = Instant::now();
    let mut gate = ctx.drain.watch();
    let mut said = String::new();
    let mut next_retry = started;
    loop {
        // A job reports before it drops its guard: take what it sent first.
        while let Ok(result) = results.try_recv() {
            manager.on_result(result, clock::read());
            settle(manager, ctx);
        }
        let now = Instant::now();
        let pending = manager.stop_pending(now < started + STOP_STORE_RETRY);
        if pending.is_empty() {
            break;
        }
        if now >= started + STOP_LIMIT {
            tracing::error!(
                "stopping after {} s although still waiting for {}: their results are lost",
                STOP_LIMIT.as_secs(),
                pending.describe()
            );
            break;
        }
        let what = pending.describe();
        if what != said {
            tracing::info!("stopping: waiting for {what}");
            said = what;
        }
        if now >= next_retry {
            manager.retry_unsaved_writes();
            settle(manager, ctx);
            next_retry = now + STOP_TICK;
        }
        tokio::select! {
            Some(command) = commands.recv() => {
                manager.refuse_while_stopping(command, clock::read());
                settle(manager, ctx);
            }
            Some(result) = results.recv() => {
                manager.on_result(result, clock::read());
                settle(manager, ctx);
            }
            _ = gate.changed() => {}
            () = tokio::time::sleep(STOP_TICK) => {}
        }
    }
    manager.report_unsaved_at_exit();
}
