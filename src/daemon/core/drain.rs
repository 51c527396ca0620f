//! The drain gate: how a graceful stop knows which token requests are already out. Every
//! job that sends a token request (a refresh, a refresh-token login, a code exchange, a
//! device poll) or finishes work a user is waiting on (a logout) holds an [`InFlight`] guard
//! from before it sends until its result is reported to the manager. At stop the manager
//! closes the gate: no new guard is handed out ([`DrainGate::enter`] says no, so a request
//! not yet sent is never sent), and it waits until the count of guards falls to zero.
//!
//! Owns only the count and the closed flag; it never decides what to do with a result.

use std::sync::Arc;

use tokio::sync::watch;

/// The gate's state, changed atomically under the watch's lock.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct GateState {
    /// Set once the daemon is stopping; never cleared.
    pub closed: bool,
    /// Guards alive: jobs with a request out or a result not yet reported.
    pub in_flight: usize,
}

/// A cheap, cloneable handle to the gate.
#[derive(Clone, Debug)]
pub struct DrainGate {
    state: Arc<watch::Sender<GateState>>,
}

impl Default for DrainGate {
    fn default() -> Self {
        DrainGate {
            state: Arc::new(watch::Sender::new(GateState::default())),
        }
    }
}

/// Held while a request is out or its result not yet reported; dropping it counts it done.
#[derive(Debug)]
pub struct InFlight {
    state: Arc<watch::Sender<GateState>>,
}

impl Drop for InFlight {
    fn drop(&mut self) {
        self.state.send_modify(|s| s.in_flight -= 1);
    }
}

impl DrainGate {
    /// A guard for new work, or `None` once the daemon is stopping.
    pub fn enter(&self) -> Option<InFlight> {
        let admitted = self.state.send_if_modified(|s| {
            if s.closed {
                return false;
            }
            s.in_flight += 1;
            true
        });
        admitted.then(|| InFlight {
            state: Arc::clone(&self.state),
        })
    }

    /// A guard even while stopping: for work already begun that must end cleanly (a
    /// logout whose caller is waiting).
    pub fn track(&self) -> InFlight {
        self.state.send_modify(|s| s.in_flight += 1);
        InFlight {
            state: Arc::clone(&self.state),
        }
    }

    /// Refuses all new work from now on.
    pub fn close(&self) {
        self.state.send_modify(|s| s.closed = true);
    }

    /// True once the daemon is stopping.
    pub fn is_closed(&self) -> bool {
        self.state.borrow().closed
    }

    /// Guards alive right now.
    pub fn in_flight(&self) -> usize {
        self.state.borrow().in_flight
    }

    /// A receiver that wakes on every change of the state.
    pub fn watch(&self) -> watch::Receiver<GateState> {
        self.state.subscribe()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guards_count_until_dropped() {
        let gate = DrainGate::default();
        let a = gate.enter().expect("open gate admits");
        let b = gate.track();
        assert_eq!(gate.in_flight(), 2);
        drop(a);
        drop(b);
        assert_eq!(gate.in_flight(), 0);
    }

    #[test]
    fn a_closed_gate_admits_nothing_new_but_keeps_counting_what_is_out() {
        let gate = DrainGate::default();
        let out = gate.enter().expect("open gate admits");
        gate.close();
        assert!(gate.enter().is_none());
        assert_eq!(gate.in_flight(), 1);
        drop(out);
        assert_eq!(gate.in_flight(), 0);
        assert!(gate.is_closed());
    }
}
