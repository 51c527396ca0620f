//! The CLI's side of the socket: connect, send one request line, read one reply line.
//! Blocking std I/O: a CLI call needs no async runtime, which keeps `status` fast.

use std::io::{BufRead, BufReader, Read, Write};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::protocol::{
    self, ErrorReply, MAX_FRAME_BYTES, PROTOCOL_VERSION, ReplyFrame, Request, RequestFrame,
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
    /// The daemon answered with an error.
    #[error("{0}")]
    Daemon(ErrorReply),
}

/// Sends `request` to the daemon at `socket` and returns its reply.
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
    let mut line = Vec::new();
    let read = BufReader::new(stream)
        .take(MAX_FRAME_BYTES as u64 + 1)
        .read_until(b'\n', &mut line);
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

/// Interprets one reply line.
fn parse_reply(line: &[u8]) -> Result<Response, ClientError> {
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

#[cfg(test)]
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

    #[test]
    fn a_missing_socket_means_not_running() {
        let err = call(Path::new("/nonexistent/sessctl.sock"), Request::Ping).unwrap_err();
        assert!(matches!(err, ClientError::NotRunning { .. }));
        assert!(err.to_string().contains("sessctl daemon"));
    }
}
