//! What one socket connection may hold, so no client (of our own uid: others are refused)
//! can keep the daemon from answering a well-behaved one:
//!
//! - **Slots with a reserve.** [`MAX_CONNECTIONS`] connections are served with the normal
//!   deadlines. When they are all taken, up to [`RESERVE_CONNECTIONS`] more are served under
//!   [`Limits::RESERVE`]: one request, short deadlines. A reserve slot is held for about a
//!   second at most, so a client that arrives while every normal slot is held by stalled or
//!   hostile clients is still answered promptly.
//! - **Reply writes have a deadline** ([`Limits::write`]): a client that does not read its
//!   replies is dropped once the socket buffer is full, instead of holding its slot forever.
//! - **Pipelining is bounded** ([`MAX_UNREAD_REPLY_BYTES`]): the server handles one request at
//!   a time per connection, and does not take the next one while the client has left more
//!   than this many reply bytes unread (Linux; elsewhere the write deadline alone applies).

use std::os::fd::AsRawFd;
use std::time::Duration;

/// Connections served with the normal deadlines at once.
pub const MAX_CONNECTIONS: usize = 512;
/// Connections served beyond [`MAX_CONNECTIONS`], one request each under tight deadlines.
pub const RESERVE_CONNECTIONS: usize = 32;
/// Reply bytes a client may leave unread, beyond its last reply, and still send requests:
/// far more than a well-behaved pipelining client ever leaves (it reads every reply), and
/// well under Linux's default socket buffer (208 KiB), so the bound is reached before a
/// write would block.
pub const MAX_UNREAD_REPLY_BYTES: usize = 64 * 1024;

/// The deadlines and request budget of one connection.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Time to send a whole request line, from connecting or from the previous reply.
    pub request: Duration,
    /// Time for a reply to be taken by the client (written into the socket).
    pub write: Duration,
    /// Requests served on the connection before it is closed (`None`: no limit).
    pub requests: Option<u32>,
}

impl Limits {
    /// A normal slot: ample for any real client, short enough that stalled ones go away.
    pub const NORMAL: Limits = Limits {
        request: Duration::from_secs(5),
        write: Duration::from_secs(5),
        requests: None,
    };
    /// A reserve slot: what `sessctl` itself does (one request, sent and read at once).
    pub const RESERVE: Limits = Limits {
        request: Duration::from_secs(1),
        write: Duration::from_secs(1),
        requests: Some(1),
    };
}

/// True when the client has left too many reply bytes unread to be given another one:
/// more than the last reply plus [`MAX_UNREAD_REPLY_BYTES`].
pub fn too_much_unread(socket: &impl AsRawFd, last_reply: usize) -> bool {
    unread_bytes(socket).is_some_and(|unread| unread > last_reply + MAX_UNREAD_REPLY_BYTES)
}

/// Bytes written to `socket` and not yet read by the peer (kernel accounting, so a little
/// over the payload), where the platform says.
#[cfg(target_os = "linux")]
fn unread_bytes(socket: &impl AsRawFd) -> Option<usize> {
    let mut unread: libc::c_int = 0;
    // SIOCOUTQ (the unread bytes of a socket) has the value of TIOCOUTQ on Linux; libc
    // names only the latter.
    // SAFETY: the ioctl writes one c_int through the pointer, which points at `unread`;
    // the fd is open for as long as `socket` is borrowed.
    let rc = unsafe { libc::ioctl(socket.as_raw_fd(), libc::TIOCOUTQ, &raw mut unread) };
    if rc == 0 {
        usize::try_from(unread).ok()
    } else {
        None
    }
}

#[cfg(not(target_os = "linux"))]
fn unread_bytes(_socket: &impl AsRawFd) -> Option<usize> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn unread_reply_bytes_are_seen_until_the_peer_reads_them() {
        use std::io::{Read, Write};
        use std::os::unix::net::UnixStream;
        let (mut ours, mut theirs) = UnixStream::pair().unwrap();
        assert!(!too_much_unread(&ours, 0));
        let chunk = vec![b'x'; 16 * 1024];
        ours.set_nonblocking(true).unwrap();
        let mut written = 0;
        while written < MAX_UNREAD_REPLY_BYTES + chunk.len() {
            match ours.write(&chunk) {
                Ok(n) => written += n,
                Err(_) => break,
            }
        }
        assert!(too_much_unread(&ours, 0), "{written} bytes unread");
        let mut sink = vec![0; written];
        theirs.read_exact(&mut sink).unwrap();
        assert!(!too_much_unread(&ours, 0));
    }

    #[test]
    fn the_reserve_is_tighter_than_a_normal_slot() {
        assert!(Limits::RESERVE.request < Limits::NORMAL.request);
        assert!(Limits::RESERVE.write < Limits::NORMAL.write);
        assert_eq!(Limits::RESERVE.requests, Some(1));
    }
}
