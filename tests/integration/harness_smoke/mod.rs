//! Proves the test harness itself works, without sessctl: the OAuth server, the private
//! environment and Secret Service, and the process helpers the sessctl tests are built on.

mod daemon;
mod oauth_server;
mod test_env;
