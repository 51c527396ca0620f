//! Simulation testing of the daemon's core (issue 11, item 2). A seeded, deterministic
//! scheduler drives the manager together with a model OAuth server ([`oauth`]) and a model
//! credential store ([`store`]) over simulated time, and checks the lineage invariants
//! ([`invariants`]) after every step.
//!
//! Replay a failure with the seed it printed:
//! `SESSCTL_SIM_SEED=<seed> cargo test --lib daemon::sim`; `SESSCTL_SIM_STEPS` sets the
//! step budget.

mod invariants;
mod oauth;
mod store;
