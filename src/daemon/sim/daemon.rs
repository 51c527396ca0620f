//! One simulated daemon process: a [`Manager`] built as `crate::daemon::run` builds it, with
//! the channels the runner's writers would read held here instead, and the runner's
//! `settle` (take the job orders, then flush) as a method. Dropping it is a crash.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use tokio::sync::{mpsc, watch};

use crate::cache::QuotaCache;
use crate::config::Config;
use crate::state::StateFile;
use crate::store::StoreKind;

use crate::daemon::alerts::{AlertEvent, AlertQueue};
use crate::daemon::core::drain::DrainGate;
use crate::daemon::core::orders::{JobOrder, JobOrders};
use crate::daemon::core::schedule::Clocks;
use crate::daemon::core::snapshot::StateSnapshot;
use crate::daemon::core::{Manager, ManagerParts, NumberedState};
use crate::daemon::start::store_probe::StoreProbe;

/// A running simulated daemon.
pub struct Daemon {
    pub manager: Manager,
    /// What the state writer would save.
    pub state_rx: watch::Receiver<NumberedState>,
    /// What the cache writer would save (kept so sends succeed).
    pub cache_rx: watch::Receiver<QuotaCache>,
    /// The alerts the delivery task would show.
    pub alerts_rx: mpsc::Receiver<AlertEvent>,
    /// The drain gate the jobs share with the manager.
    pub drain: DrainGate,
}

impl Daemon {
    /// Starts a daemon over `state` (read from the state file) at `clocks`.
    pub fn start(
        config: &Arc<Config>,
        state: StateFile,
        held: BTreeMap<String, crate::journal::Entry>,
        clocks: Clocks,
        seed: u64,
    ) -> Self {
        let (state_tx, state_rx) = watch::channel((0, StateSnapshot::of(&state)));
        let (cache_tx, cache_rx) = watch::channel(QuotaCache {
            updated_at: clocks.wall,
            stale_after_secs: None,
            slots: BTreeMap::new(),
        });
        let (alert_queue, alerts_rx) = AlertQueue::for_tests();
        let drain = DrainGate::default();
        let mut manager = Manager::new(ManagerParts {
            config: Arc::clone(config),
            state,
            jobs: JobOrders::new(drain.clone(), None),
            store_kind: StoreKind::Keychain,
            clocks,
            seed,
            state_tx,
            cache_tx,
            cache_path: PathBuf::from("/nonexistent/sessctl-sim/quota.json"),
            previous_cache: None,
            alert_queue,
            unplaced: Vec::new(),
            store_probe: StoreProbe::silent_for_tests(),
            held,
            fingerprint_key: None,
        });
        manager.announce_start();
        Daemon {
            manager,
            state_rx,
            cache_rx,
            alerts_rx,
            drain,
        }
    }

    /// The runner's `settle`: the orders the last event queued, then the flush.
    pub fn settle(&mut self) -> Vec<JobOrder> {
        let orders = self.manager.take_orders();
        self.manager.flush();
        orders
    }
}

/// The config of every simulated daemon: one provider with a revocation endpoint, no
/// usage endpoint (quota is not what is checked here).
pub fn config() -> Arc<Config> {
    let text = "providers:\n  sim:\n    token_url: https://sim.invalid/token\n    revoke_url: https://sim.invalid/revoke\n    client_id: sim\n";
    Arc::new(Config::parse(text, std::path::Path::new("sim.yaml")).expect("the sim config parses"))
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::daemon::core::usage::CACHE_INTERVAL;

    fn clocks(ms: i64) -> Clocks {
        let start: chrono::DateTime<chrono::Utc> = "2030-01-01T00:00:00Z".parse().unwrap();
        Clocks {
            wall: start + chrono::TimeDelta::milliseconds(ms),
            boot: Duration::from_secs(1000) + Duration::from_millis(ms.unsigned_abs()),
        }
    }

    /// Every publication of the quota cache is every slot's quota: a burst of changes (at
    /// 1,000 slots, a usage result every few hundred ms) is gathered into one a second, and
    /// the timer comes back for what was held.
    #[test]
    fn changes_close_behind_a_cache_publication_gather_into_the_next_one() {
        let mut daemon = Daemon::start(
            &config(),
            StateFile::default(),
            BTreeMap::new(),
            clocks(0),
            1,
        );
        daemon.manager.tick(clocks(0));
        daemon.settle();
        assert!(daemon.cache_rx.has_changed().unwrap(), "published at start");
        daemon.cache_rx.mark_unchanged();
        for ms in [100, 400, 900] {
            daemon.manager.at(clocks(ms));
            daemon.manager.publish_cache();
            daemon.settle();
            assert!(
                !daemon.cache_rx.has_changed().unwrap(),
                "published again at {ms} ms"
            );
        }
        let interval = i64::try_from(CACHE_INTERVAL.as_millis()).unwrap();
        assert_eq!(
            daemon.manager.earliest_deadline(),
            Some(clocks(interval).wall)
        );
        daemon.manager.tick(clocks(interval));
        daemon.settle();
        assert!(
            daemon.cache_rx.has_changed().unwrap(),
            "the held change went out"
        );
    }
}
