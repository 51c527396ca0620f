//! Alerts: telling the user when a slot needs a new login and, above all, when every slot
//! is inactive (nothing can get tokens any more), with the exact command to log in again.
//!
//! The events themselves ([`AlertEvent`]) are decided by the core
//! (`crate::daemon::core::alerts`); this folder delivers them (desktop, `alert_command`)
//! in [`delivery`], off the manager.

mod command;
mod delivery;
mod desktop;
mod event;

pub use delivery::{AlertQueue, spawn};
pub use event::{AlertEvent, AlertKind, AlertSlot};
