//! The CLI's side of the socket: connect, send one request line, read one reply line.
//! Blocking std I/O: a CLI call needs no async runtime, which keeps `status` fast.
//! Replies may be of any practical size (a `status` of 1,000 slots is about half a MB):
//! only requests are held to [`MAX_FRAME_BYTES`], by the daemon.
//!
//! Unix only: on Windows `call` says sessctl does not run there yet, and the rest is only
//! type-checked, so it is unused there.
#![cfg_attr(not(unix), allow(dead_code, unused_imports))]

use std::io::{BufRead, BufReader, Write};
#[cfg(unix)]
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

#[cfg(doc)]
use crate::protocol::MAX_FRAME_BYTES;
use crate::protocol::{
    self, ErrorReply, MAX_REPLY_BYTES, PROTOCOL_VERSION, ReplyFrame, Request, RequestFrame,
    Response,
};

/// How long the CLI waits for a reply: longer than the daemon's own reply deadline, so the
/// daemon's typed timeout arrives first.
pub const READ_TIMEOUT: Duration = Duration::from_secs(130);

/// Why a request did not get a daemon's answer.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    #[error(
        "the sessctl daemon is not running (no answer on {socket}); start it with `sessctl daemon &`, or `sessctl service install` to run it as a user service"
    )]
    NotRunning { socket: PathBuf },
    #[error("talking to the daemon on {socket} failed: {source}")]
    Io {
        socket: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("the daemon's reply is not understood: {0}")]
    BadReply(String),
    #[error(
        "this sessctl speaks protocol {PROTOCOL_VERSION} but the daemon speaks {daemon}; restart the daemon so both are the same version"
    )]
    VersionMismatch { daemon: u32 },
    /// The daemon's socket is a Unix socket, which this platform (Windows) lacks.
    #[error("sessctl does not run on Windows yet: its daemon listens on a Unix socket")]
    UnsupportedPlatform,
    /// The daemon answered with an error.
    #[error("{0}")]
    Daemon(ErrorReply),
}

/// Sends `request` to the daemon at `socket` and returns its reply.
#[cfg(unix)]
pub fn call(socket: &Path, request: Request) -> Result<Response, ClientError> {
    let io = |source: std::io::Error| ClientError::Io {
        socket: socket.to_owned(),
        source,
    };
    let mut stream = UnixStream::connect(socket).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound | std::io::ErrorKind::ConnectionRefused => {
            ClientError::NotRunning {
                socket: socket.to_owned(),
            }
        }
        _ => io(e),
    })?;
    stream.set_read_timeout(Some(READ_TIMEOUT)).map_err(io)?;
    stream
        .set_write_timeout(Some(Duration::from_secs(10)))
        .map_err(io)?;
    let frame = RequestFrame {
        v: PROTOCOL_VERSION,
        request,
    };
    // A daemon that refuses us (another user) answers before reading and closes, so the
    // write may fail (broken pipe) while its refusal waits to be read: read it either way.
    let write_error = match stream.write_all(&protocol::to_line(&frame)) {
        Ok(()) => None,
        Err(e)
            if matches!(
                e.kind(),
                std::io::ErrorKind::BrokenPipe | std::io::ErrorKind::ConnectionReset
            ) =>
        {
            Some(e)
        }
        Err(e) => return Err(io(e)),
    };
    let (line, read) = read_reply_line(BufReader::new(stream));
    if line.is_empty() {
        if let Some(e) = write_error {
            return Err(io(e));
        }
        read.map_err(io)?;
        return Err(ClientError::BadReply(
            "the daemon closed the connection".into(),
        ));
    }
    parse_reply(&line)
}

/// Without Unix sockets there is no daemon to ask (see README, "Install").
#[cfg(not(unix))]
pub fn call(_socket: &Path, _request: Request) -> Result<Response, ClientError> {
    Err(ClientError::UnsupportedPlatform)
}

/// Reads one reply line, whatever its size up to [`MAX_REPLY_BYTES`]; what was read, and
/// how reading ended.
fn read_reply_line(reader: impl BufRead) -> (Vec<u8>, std::io::Result<()>) {
    read_line_within(reader, MAX_REPLY_BYTES)
}

/// Reads up to a newline, at most `limit` bytes and one more (so a line over the limit is
/// told from one that fits).
fn read_line_within(reader: impl BufRead, limit: usize) -> (Vec<u8>, std::io::Result<()>) {
    let mut line = Vec::new();
    let read = reader
        .take(limit as u64 + 1)
        .read_until(b'\n', &mut line)
        .map(drop);
    (line, read)
}

/// Interprets one reply line.
fn parse_reply(line: &[u8]) -> Result<Response, ClientError> {
    if line.len() > MAX_REPLY_BYTES {
        return Err(ClientError::BadReply(format!(
            "the reply is over {MAX_REPLY_BYTES} bytes"
        )));
    }
    let value: serde_json::Value =
        serde_json::from_slice(line).map_err(|e| ClientError::BadReply(e.to_string()))?;
    let version = value.get("v").and_then(serde_json::Value::as_u64);
    if version != Some(u64::from(PROTOCOL_VERSION)) {
        return Err(ClientError::VersionMismatch {
            daemon: version.and_then(|v| u32::try_from(v).ok()).unwrap_or(0),
        });
    }
    let frame: ReplyFrame =
        serde_json::from_value(value).map_err(|e| ClientError::BadReply(e.to_string()))?;
    match (frame.ok, frame.error) {
        (Some(ok), None) => Ok(ok),
        (None, Some(error)) => Err(ClientError::Daemon(error)),
        _ => Err(ClientError::BadReply(
            "a reply must hold exactly one of ok and error".into(),
        )),
    }
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use crate::protocol::ErrorCode;

    #[test]
    fn a_daemon_of_another_protocol_is_named() {
        let err = parse_reply(br#"{"v":2,"ok":{"type":"shutting_down"}}"#).unwrap_err();
        assert!(matches!(err, ClientError::VersionMismatch { daemon: 2 }));
    }

    #[test]
    fn typed_errors_come_through() {
        let err =
            parse_reply(br#"{"v":1,"error":{"code":"unknown_slot","message":"no"}}"#).unwrap_err();
        assert!(matches!(err, ClientError::Daemon(e) if e.code == ErrorCode::UnknownSlot));
    }

    #[test]
    fn junk_replies_are_errors_not_panics() {
        for junk in [
            &b"nope"[..],
            b"{}",
            br#"{"v":1}"#,
            br#"{"v":1,"ok":{"type":"zzz"}}"#,
        ] {
            assert!(parse_reply(junk).is_err());
        }
    }

    /// A `status` reply of `slots` slots, each as big as a real one with quota data.
    fn status_of(slots: usize) -> Response {
        use crate::protocol::{CacheStatus, QuotaStatus, SlotStatus, StatusReport};
        let now = chrono::Utc::now();
        let window = |utilization| crate::cache::Window {
            utilization,
            resets_at: Some(now),
        };
        let slot = |i: usize| SlotStatus {
            name: format!("slot-{i:05}"),
            provider: "claude".to_owned(),
            account: Some(format!("someone-{i:05}@example.com")),
            state: crate::state::SlotState::Active,
            reason: None,
            access_token_expires_at: Some(now),
            last_refresh_at: Some(now),
            last_refresh_error: None,
            next_refresh_at: Some(now),
            refreshes: 12,
            quota: Some(QuotaStatus {
                windows: [("five_hour", 42.5), ("seven_day", 7.25)]
                    .into_iter()
                    .map(|(name, used)| (name.to_owned(), window(used)))
                    .collect(),
                fetched_at: Some(now),
                stale: false,
                error: None,
                extra_usage: None,
            }),
            claude_code_store: None,
            claude_code_dir: None,
        };
        Response::Status(StatusReport {
            version: "0.1.0".to_owned(),
            pid: 42,
            all_inactive: false,
            credential_store: crate::config::CredentialStoreKind::Keychain,
            credential_store_error: None,
            state_file_error: None,
            cache: CacheStatus {
                path: "/cache/sessctl/quota.json".into(),
                updated_at: Some(now),
                stale: false,
                error: None,
            },
            slots: (0..slots).map(slot).collect(),
            unplaced_credentials: Vec::new(),
            pending_revocations: Vec::new(),
            moving: None,
        })
    }

    /// What the daemon's server writes for `reply`, read back through a real socket by the
    /// client's reader while a thread writes it (so the reader sees partial reads).
    fn over_a_socket(reply: Response) -> Result<Response, ClientError> {
        let line = protocol::to_line(&ReplyFrame::new(Ok(reply)));
        let (mut daemon, cli) = UnixStream::pair().unwrap();
        let writer = std::thread::spawn(move || daemon.write_all(&line));
        let (read, outcome) = read_reply_line(BufReader::new(cli));
        writer.join().unwrap().unwrap();
        outcome.unwrap();
        parse_reply(&read)
    }

    #[test]
    fn a_status_reply_far_over_the_request_bound_is_read_whole() {
        for slots in [1_000, 10_000] {
            let line = protocol::to_line(&ReplyFrame::new(Ok(status_of(slots))));
            assert!(
                line.len() > 4 * protocol::MAX_FRAME_BYTES,
                "{} bytes",
                line.len()
            );
            match over_a_socket(status_of(slots)) {
                Ok(Response::Status(report)) => {
                    assert_eq!(report.slots.len(), slots);
                    assert_eq!(
                        report.slots[slots - 1].name,
                        format!("slot-{:05}", slots - 1)
                    );
                }
                other => panic!("{slots} slots: {other:?}"),
            }
        }
    }

    #[test]
    fn reading_stops_one_byte_past_the_bound() {
        let endless = std::io::repeat(b' ');
        let (line, outcome) = read_line_within(BufReader::new(endless), 1_000);
        assert!(outcome.is_ok());
        assert_eq!(line.len(), 1_001);
        let (line, _) = read_line_within(&b"{}\nmore"[..], 1_000);
        assert_eq!(line, b"{}\n");
    }

    #[test]
    fn a_missing_socket_means_not_running() {
        let err = call(Path::new("/nonexistent/sessctl.sock"), Request::Ping).unwrap_err();
        assert!(matches!(err, ClientError::NotRunning { .. }));
        assert!(err.to_string().contains("sessctl daemon"));
    }
}
