//! How many outbound requests of one kind are out at once, and which waiting one goes next.
//! A [`Limiter`] hands out at most its capacity of [`Permit`]s; a job holds one from before
//! it sends until its result is reported (for a refresh: until the rotated tokens are in the
//! store, so the store's writes cannot fall behind the refreshes). Waiters are served by
//! [`Urgency`], most urgent first and in arrival order among equals, so a restart with
//! every token expired refreshes the soonest-expiring slots first and a person's request
//! (`sessctl refresh`, `token` of an expired slot) is served before the timer's: queued
//! like the rest, never starved by it. The token limiter covers every request to the
//! provider's token and revocation endpoints: refreshes, logins (an interactive login's
//! code exchange and device requests first of all), and revocations (a logout's as a
//! person's request, any other last).
//!
//! Owns only the count and the queue: whether a job may still send once it holds a permit
//! (the daemon may be stopping meanwhile) is the drain gate's to say (`crate::daemon::core::drain`).

use crate::daemon::core::orders::Urgency;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::oneshot;

/// A cheap, cloneable handle to one kind's limit.
#[derive(Clone, Debug)]
pub struct Limiter {
    /// What it limits, for the log (`token`, `usage`).
    kind: &'static str,
    inner: Arc<Mutex<Inner>>,
}

#[derive(Debug)]
struct Inner {
    /// Permits not handed out.
    free: usize,
    /// Permits handed out now, and the most ever at once.
    out: usize,
    high_water: usize,
    /// Waiters by urgency, then arrival.
    queue: BTreeMap<(Urgency, u64), oneshot::Sender<Permit>>,
    arrivals: u64,
}

/// Held while a request is out; dropping it lets the next waiter go.
#[derive(Debug)]
pub struct Permit {
    /// `None` once the permit was given back (so dropping it twice is impossible).
    inner: Option<Arc<Mutex<Inner>>>,
}

impl Limiter {
    /// A limiter of `capacity` permits (at least one) for requests of `kind`.
    pub fn new(kind: &'static str, capacity: usize) -> Limiter {
        Limiter {
            kind,
            inner: Arc::new(Mutex::new(Inner {
                free: capacity.max(1),
                out: 0,
                high_water: 0,
                queue: BTreeMap::new(),
                arrivals: 0,
            })),
        }
    }

    /// A permit, once every more urgent waiter (and every equal one that came first) has
    /// had one.
    pub async fn acquire(&self, urgency: Urgency) -> Permit {
        let receiver = {
            let mut inner = lock(&self.inner);
            if inner.free > 0 && inner.queue.is_empty() {
                inner.free -= 1;
                inner.handed_out();
                return Permit {
                    inner: Some(Arc::clone(&self.inner)),
                };
            }
            let (sender, receiver) = oneshot::channel();
            let arrival = inner.arrivals;
            inner.arrivals += 1;
            inner.queue.insert((urgency, arrival), sender);
            // Logged once queued (not before): the order of the queue is settled from here.
            tracing::debug!(
                waiting = inner.queue.len(),
                "{} request queued for its turn",
                self.kind
            );
            receiver
        };
        // The sender lives in the queue until a permit is sent: it is never dropped unsent
        // (the limiter, which holds the queue, outlives this call).
        receiver.await.unwrap_or(Permit { inner: None })
    }

    /// Permits out now, and the most ever out at once.
    #[cfg(test)]
    pub fn in_flight(&self) -> (usize, usize) {
        let inner = lock(&self.inner);
        (inner.out, inner.high_water)
    }
}

impl Inner {
    fn handed_out(&mut self) {
        self.out += 1;
        self.high_water = self.high_water.max(self.out);
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        let Some(shared) = self.inner.take() else {
            return;
        };
        let mut inner = lock(&shared);
        inner.out -= 1;
        // Hand the permit to the most urgent waiter still waiting; one that gave up (its
        // job was dropped) returns it, and the next is tried.
        while let Some((_, sender)) = inner.queue.pop_first() {
            inner.handed_out();
            let permit = Permit {
                inner: Some(Arc::clone(&shared)),
            };
            match sender.send(permit) {
                Ok(()) => return,
                Err(mut unwanted) => {
                    unwanted.inner = None;
                    inner.out -= 1;
                }
            }
        }
        inner.free += 1;
    }
}

/// The lock, even after a panic elsewhere while it was held (the counts stay consistent:
/// no code under the lock panics).
fn lock(inner: &Mutex<Inner>) -> MutexGuard<'_, Inner> {
    inner
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner)
}

#[cfg(test)]
#[path = "limiter_tests.rs"]
mod tests;
