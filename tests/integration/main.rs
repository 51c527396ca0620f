//! sessctl's integration tests: one binary, one module per area, shared helpers in `support`.
//! Run them all with `scripts/test.sh`, which first installs what they need (a D-Bus bus,
//! gnome-keyring, secret-tool, the test OAuth server's npm packages).
//!
//! Unix only, like the daemon they drive (it listens on a Unix socket): on other platforms
//! this binary is empty.
#![cfg(unix)]

mod accounts;
mod alert_command;
mod alerts;
mod claude_code_comeback;
mod claude_code_default_dir;
mod claude_code_login;
mod claude_code_real;
mod claude_code_rotations;
mod claude_code_slots;
mod claude_code_standins;
mod claude_code_store;
mod claude_code_use;
mod claude_shapes;
mod cli_input;
mod clock;
mod config_bounds;
mod doctor;
mod flows;
mod generated_docs;
mod graceful_stop;
mod harness_smoke;
mod idle;
mod instance;
mod journal;
mod lifecycle;
mod login_flows;
mod login_journal;
mod login_messages;
mod logout;
mod logout_cancels;
mod logs;
mod no_keychain;
mod oauth_store;
mod quota;
mod reconcile;
mod refresh;
mod request_limit;
mod request_priority;
mod revocation_retry;
mod scale;
mod scale_bench;
mod service_files;
mod service_install;
mod socket;
mod socket_flood;
mod state_log;
mod statusline;
mod statusline_claude_code;
mod store;
mod store_stall;
mod stranger;
mod support;
mod token_replies;
