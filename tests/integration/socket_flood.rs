//! Clients of our own uid that send requests and never read the replies cannot keep the
//! daemon from answering a well-behaved client: reply writes have a deadline, a client that
//! leaves too many replies unread is dropped, and a reserve of slots serves newcomers while
//! every normal slot is held.

use std::io::{ErrorKind, Write};
use std::os::unix::net::UnixStream;

use crate::flows::Running;

/// More connections than the daemon's 512 normal slots and 32 reserve ones.
const HOSTILE_CONNECTIONS: usize = 600;
/// Requests each hostile client pipelines: their replies (a few hundred bytes each) are far
/// more than a socket buffer holds, so a daemon without write deadlines blocks for good.
const REQUESTS_EACH: usize = 3000;

/// Connects and writes up to [`REQUESTS_EACH`] `status` requests without ever reading.
fn hostile_client(t: &Running) -> UnixStream {
    let mut stream = UnixStream::connect(t.env.socket_path()).expect("connect");
    stream.set_nonblocking(true).unwrap();
    let requests = b"{\"v\":1,\"type\":\"status\"}\n".repeat(REQUESTS_EACH);
    let mut sent = 0;
    while sent < requests.len() {
        match stream.write(&requests[sent..]) {
            Ok(n) => sent += n,
            // The daemon stopped reading (or closed us): that is all this client can do.
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(_) => break,
        }
    }
    stream
}

#[test]
fn clients_that_never_read_their_replies_do_not_block_status() {
    let t = Running::start("");
    let hostile: Vec<UnixStream> = (0..HOSTILE_CONNECTIONS)
        .map(|_| hostile_client(&t))
        .collect();
    // All of them are still connected (none of them reads or closes): status must answer.
    let out = t.env.sessctl(&["status", "--json"]);
    assert!(
        matches!(out.status.code(), Some(0..=2)),
        "status: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let status: serde_json::Value = serde_json::from_slice(&out.stdout).expect("status JSON");
    assert_eq!(status["slots"], serde_json::json!([]));
    drop(hostile);
    assert!(t.env.sessctl(&["ping"]).status.success());
}
