//! sessctl keeps several OAuth accounts ("slots") healthy: a daemon refreshes each slot's
//! tokens before they expire and keeps them in the OS keychain; a CLI talks to it over a
//! local socket. This crate is the library behind the one `sessctl` binary.

pub mod account;
pub mod cache;
pub mod cache_lines;
pub mod claude_code;
pub mod cli;
pub mod client;
pub mod config;
pub mod daemon;
pub mod doctor;
pub mod error;
pub mod fingerprint;
pub mod fsutil;
pub mod journal;
pub mod logfiles;
pub mod logging;
pub mod oauth;
pub mod paths;
#[cfg(test)]
mod props;
pub mod protocol;
pub mod quota;
pub mod relogin;
pub mod repeat;
pub mod revocation;
pub mod secret;
pub mod slot_name;
pub mod slot_reason;
pub mod state;
pub mod state_log;
pub mod statusline;
pub mod store;
#[cfg(test)]
mod test_dirs;
