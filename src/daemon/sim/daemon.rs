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
    /// What the cache writer would save (read by nobody: kept so sends succeed).
    _cache_rx: watch::Receiver<QuotaCache>,
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
        });
        manager.announce_start();
        Daemon {
            manager,
            state_rx,
            _cache_rx: cache_rx,
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
