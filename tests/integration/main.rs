//! sessctl's integration tests: one binary, one module per area, shared helpers in `support`.
//! Run them all with `scripts/test.sh`, which first installs what they need (a D-Bus bus,
//! gnome-keyring, secret-tool, the test OAuth server's npm packages).

mod harness_smoke;
mod support;
