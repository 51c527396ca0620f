//! The runner: the I/O around the sans-IO manager. One task runs [`run`], a `select!` over
//! client commands, job results, the shutdown signal and the manager's next deadline. For
//! every event it reads the clocks, hands the event to the manager, starts the job orders
//! the manager queued on the [`JobContext`], and flushes the manager's state to the
//! writers. It decides nothing itself. At a stop it runs the drain ([`stop`]) the same way.

use std::time::Duration;

use chrono::Utc;
use tokio::sync::{mpsc, watch};
use tokio::time::Instant;

use crate::daemon::core::reports::JobResult;
use crate::daemon::core::schedule;
use crate::daemon::core::schedule::Clocks;
use crate::daemon::core::stop::{STOP_LIMIT, STOP_STORE_RETRY, STOP_TICK};
use crate::daemon::core::{Command, Flow, Manager};
use crate::daemon::idle_memory::IdleMemory;
use crate::daemon::jobs::JobContext;

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
    let mut idle_memory = IdleMemory::new();
    loop {
        let clocks = read_clocks();
        manager.tick(clocks);
        settle(&mut manager, &ctx);
        let sleep = schedule::sleep_for(manager.earliest_deadline(), clocks.wall);
        let nap = idle_memory.nap(sleep);
        tokio::select! {
            command = commands.recv() => match command {
                Some(command) => {
                    idle_memory.worked();
                    let flow = manager.handle(command, read_clocks());
                    settle(&mut manager, &ctx);
                    if flow == Flow::Stop {
                        break;
                    }
                }
                None => break,
            },
            Some(result) = results.recv() => {
                idle_memory.worked();
                manager.on_result(result, read_clocks());
                settle(&mut manager, &ctx);
            }
            _ = shutdown.changed() => break,
            () = super::wake::sleep(nap) => idle_memory.woke(),
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
    for order in manager.take_orders() {
        ctx.start(order);
    }
    manager.flush();
}

/// Drains as described in `crate::daemon::core::stop`; returns when the daemon may exit.
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
            manager.on_result(result, read_clocks());
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
                manager.refuse_while_stopping(command, read_clocks());
                settle(manager, ctx);
            }
            Some(result) = results.recv() => {
                manager.on_result(result, read_clocks());
                settle(manager, ctx);
            }
            _ = gate.changed() => {}
            () = tokio::time::sleep(STOP_TICK) => {}
        }
    }
    manager.report_unsaved_at_exit();
}

/// Reads both clocks now.
pub fn read_clocks() -> Clocks {
    Clocks {
        wall: Utc::now(),
        boot: boot_time(),
    }
}

/// Time on a monotonic clock that counts suspend: `CLOCK_BOOTTIME` on Linux.
#[cfg(any(target_os = "linux", target_os = "android"))]
fn boot_time() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec; CLOCK_BOOTTIME exists on every Linux
    // sessctl runs on (2.6.39+). On the impossible failure, fall back to `Instant`.
    let ok = unsafe { libc::clock_gettime(libc::CLOCK_BOOTTIME, &raw mut ts) } == 0;
    if !ok {
        return since_start();
    }
    Duration::new(
        u64::try_from(ts.tv_sec).unwrap_or(0),
        u32::try_from(ts.tv_nsec).unwrap_or(0),
    )
}

/// Elsewhere `Instant`, which may not count suspend: then a suspend looks like a forward
/// step of the wall clock, which needs nothing.
#[cfg(not(any(target_os = "linux", target_os = "android")))]
fn boot_time() -> Duration {
    since_start()
}

/// Time since the first call, on `Instant`.
fn since_start() -> Duration {
    static START: std::sync::OnceLock<std::time::Instant> = std::sync::OnceLock::new();
    START.get_or_init(std::time::Instant::now).elapsed()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_boot_clock_moves_forward() {
        let first = read_clocks();
        let second = read_clocks();
        assert!(second.boot >= first.boot);
    }
}
