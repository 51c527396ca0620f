//! Simulation testing of the daemon's sans-IO core (issue 11, item 2). A seeded,
//! deterministic scheduler ([`world`]) drives the real [`super::core::Manager`] together
//! with a model OAuth server ([`oauth`]) and a model credential store ([`store`]) over
//! simulated time, executing its job orders as simulated jobs ([`exec`]), and checks the
//! invariants ([`invariants`], [`alerts`]) after every step.
//!
//! - CI: `cargo test --lib daemon::sim` runs a fixed budget over many seeds.
//! - Replay a failure with the seed it printed: `SESSCTL_SIM_SEED=<seed> cargo test --lib
//!   daemon::sim` (`SESSCTL_SIM_STEPS` sets the steps of that seed).
//! - The long run: `cargo test --release --lib daemon::sim::long_run -- --ignored`
//!   (`SESSCTL_SIM_SEEDS` seeds, default 2,000, of `SESSCTL_SIM_STEPS` steps each).

mod alerts;
mod daemon;
mod exec;
mod invariants;
mod oauth;
mod orders;
mod scenario;
mod store;
mod world;

/// Steps per seed in CI.
const STEPS: u64 = 2_000;
/// Seeds in CI: `SEEDS * STEPS` steps in all.
const SEEDS: u64 = 50;

fn env(name: &str) -> Option<u64> {
    std::env::var(name).ok().and_then(|v| v.trim().parse().ok())
}

/// Runs `seeds` seeds from `first`, `steps` each; panics with the first violation.
fn run_seeds(first: u64, seeds: u64, steps: u64) {
    for seed in first..first + seeds {
        if let Err(violation) = world::World::new(seed).run(steps) {
            panic!("{violation}");
        }
    }
}

#[test]
fn the_core_keeps_its_invariants_over_many_seeds() {
    let steps = env("SESSCTL_SIM_STEPS").unwrap_or(STEPS);
    match env("SESSCTL_SIM_SEED") {
        Some(seed) => run_seeds(seed, 1, steps),
        None => run_seeds(1, SEEDS, steps),
    }
}

#[test]
#[ignore = "the long run: one command, see the module docs"]
fn long_run() {
    let steps = env("SESSCTL_SIM_STEPS").unwrap_or(STEPS * 5);
    let seeds = env("SESSCTL_SIM_SEEDS").unwrap_or(2_000);
    run_seeds(env("SESSCTL_SIM_SEED").unwrap_or(1_000_000), seeds, steps);
}
