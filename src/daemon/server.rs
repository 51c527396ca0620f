//! The socket server: accepts connections on the Unix socket, refuses other users (peer
//! credentials), reads size-capped request lines with a deadline, forwards each request to
//! the manager and writes the reply. Each connection is its own task, so a stalled or
//! hostile client only holds its own connection; nothing here panics on input.

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};

use crate::protocol::{self, ErrorCode, ErrorReply, MAX_FRAME_BYTES, ReplyFrame};

use super::manager::Command;

/// Time a client has to send a whole request line once connected (or after its previous
/// reply): ample for any real client, short enough that stalled connections go away.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// Longest a reply may take: a refresh waits for a token request (30 s timeout) and a
/// store write, with room to spare.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(120);

/// Connections served at once; further ones wait in the kernel's backlog.
const MAX_CONNECTIONS: usize = 512;

/// Serves `listener` until `shutdown` turns true.
pub async fn serve(
    listener: UnixListener,
    commands: mpsc::Sender<Command>,
    mut shutdown: watch::Receiver<bool>,
) {
    let limit = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    // SAFETY: getuid has no preconditions and cannot fail.
    let own_uid = unsafe { libc::getuid() };
    loop {
        let permit = tokio::select! {
            permit = limit.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => return,
            },
            _ = shutdown.changed() => return,
        };
        let stream = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, _)) => stream,
                Err(e) => {
                    tracing::warn!("accept failed: {e}");
                    continue;
                }
            },
            _ = shutdown.changed() => return,
        };
        let commands = commands.clone();
        tokio::spawn(async move {
            serve_connection(stream, own_uid, commands).await;
            drop(permit);
        });
    }
}

async fn serve_connection(stream: UnixStream, own_uid: u32, commands: mpsc::Sender<Command>) {
    let (read, mut write) = stream.into_split();
    let peer_uid = write.as_ref().peer_cred().map(|c| c.uid()).ok();
    if peer_uid != Some(own_uid) {
        tracing::warn!(?peer_uid, "refused a connection from another user");
        let error = ErrorReply::new(
            ErrorCode::PermissionDenied,
            "this daemon serves only the user that runs it",
        );
        let _ = write
            .write_all(&protocol::to_line(&ReplyFrame::new(Err(error))))
            .await;
        return;
    }
    let mut reader = BufReader::new(read);
    loop {
        let reply = match read_frame(&mut reader).await {
            Frame::Closed => return,
            Frame::Line(line) => match protocol::parse_request(&line) {
                Ok(request) => dispatch(request, &commands).await,
                Err(error) => Err(error),
            },
            Frame::Bad(error) => {
                let _ = write
                    .write_all(&protocol::to_line(&ReplyFrame::new(Err(error))))
                    .await;
                return;
            }
        };
        let fatal = matches!(&reply, Err(e) if e.code == ErrorCode::BadRequest || e.code == ErrorCode::VersionMismatch);
        if write
            .write_all(&protocol::to_line(&ReplyFrame::new(reply)))
            .await
            .is_err()
            || fatal
        {
            return;
        }
    }
}

/// One request line, or why there is none.
enum Frame {
    Line(Vec<u8>),
    /// The client closed the connection between requests.
    Closed,
    /// Too long, too slow or unreadable: answered, then the connection is closed.
    Bad(ErrorReply),
}

/// Reads up to the next newline, at most [`MAX_FRAME_BYTES`], within [`REQUEST_TIMEOUT`].
async fn read_frame<R: AsyncRead + Unpin>(reader: &mut BufReader<R>) -> Frame {
    let mut line = Vec::new();
    let limit = MAX_FRAME_BYTES as u64;
    let mut limited = (&mut *reader).take(limit);
    let read = limited.read_until(b'\n', &mut line);
    match tokio::time::timeout(REQUEST_TIMEOUT, read).await {
        Err(_) if line.is_empty() => Frame::Closed,
        Err(_) => Frame::Bad(ErrorReply::new(
            ErrorCode::Timeout,
            format!(
                "request not completed within {} s",
                REQUEST_TIMEOUT.as_secs()
            ),
        )),
        Ok(Err(e)) => Frame::Bad(ErrorReply::new(
            ErrorCode::BadRequest,
            format!("read failed: {e}"),
        )),
        Ok(Ok(0)) => Frame::Closed,
        Ok(Ok(_)) if line.last() == Some(&b'\n') => {
            line.pop();
            Frame::Line(line)
        }
        Ok(Ok(n)) if n as u64 >= limit => Frame::Bad(ErrorReply::new(
            ErrorCode::FrameTooLarge,
            format!("request line over {MAX_FRAME_BYTES} bytes"),
        )),
        // End of input without a newline: accept the last line as a request.
        Ok(Ok(_)) => Frame::Line(line),
    }
}

/// Hands a request to the manager and waits for its reply.
async fn dispatch(
    request: protocol::Request,
    commands: &mpsc::Sender<Command>,
) -> Result<protocol::Response, ErrorReply> {
    let shutting_down = || ErrorReply::new(ErrorCode::ShuttingDown, "the daemon is shutting down");
    let (reply, answer) = oneshot::channel();
    commands
        .send(Command { request, reply })
        .await
        .map_err(|_| shutting_down())?;
    match tokio::time::timeout(REPLY_TIMEOUT, answer).await {
        Ok(Ok(result)) => result,
        Ok(Err(_)) => Err(shutting_down()),
        Err(_) => Err(ErrorReply::new(
            ErrorCode::Timeout,
            format!("no reply within {} s", REPLY_TIMEOUT.as_secs()),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn frame_of(input: &[u8]) -> Frame {
        let mut reader = BufReader::new(input);
        read_frame(&mut reader).await
    }

    #[tokio::test]
    async fn a_line_is_read_without_its_newline() {
        assert!(matches!(frame_of(b"{\"v\":1}\nrest").await, Frame::Line(l) if l == b"{\"v\":1}"));
    }

    #[tokio::test]
    async fn an_oversized_line_is_refused() {
        let big = vec![b'x'; MAX_FRAME_BYTES + 10];
        assert!(
            matches!(frame_of(&big).await, Frame::Bad(e) if e.code == ErrorCode::FrameTooLarge)
        );
    }

    #[tokio::test]
    async fn a_line_of_exactly_the_limit_is_accepted() {
        let mut line = vec![b'x'; MAX_FRAME_BYTES - 1];
        line.push(b'\n');
        assert!(matches!(frame_of(&line).await, Frame::Line(l) if l.len() == MAX_FRAME_BYTES - 1));
    }

    #[tokio::test]
    async fn an_empty_stream_is_a_clean_close() {
        assert!(matches!(frame_of(b"").await, Frame::Closed));
    }

    #[tokio::test(start_paused = true)]
    async fn a_stalled_request_times_out() {
        let (client, server) = tokio::io::duplex(64);
        let mut client = client;
        client.write_all(b"{\"v\":1,").await.unwrap();
        let mut reader = BufReader::new(server);
        let frame = read_frame(&mut reader).await;
        assert!(matches!(frame, Frame::Bad(e) if e.code == ErrorCode::Timeout));
        drop(client);
    }
}
