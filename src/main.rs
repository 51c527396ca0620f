//! The `sessctl` binary (being written).
fn main() {}
