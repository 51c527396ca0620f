//! sessctl's integration tests: one binary, one module per area, shared helpers in `support`.
//! Run them all with `scripts/test.sh`, which first installs what they need (a D-Bus bus,
//! gnome-keyring, secret-tool, the test OAuth server's npm packages).

mod accounts;
mod alert_command;
mod alerts;
mod cli_input;
mod doctor;
mod flows;
mod generated_docs;
mod harness_smoke;
mod lifecycle;
mod login_flows;
mod logout;
mod logs;
mod quota;
mod reconcile;
mod refresh;
mod service_files;
mod service_install;
mod socket;
mod statusline;
mod store;
mod support;
