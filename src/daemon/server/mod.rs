//! The socket server: accepts connections on the Unix socket, refuses other users (peer
//! credentials), reads size-capped request lines with a deadline, forwards each request to
//! the manager and writes the reply with a deadline. Each connection is its own task, so a
//! stalled or hostile client only holds its own connection, and a reserve of slots keeps a
//! well-behaved client served when all others are held (see `backpressure`); nothing here
//! panics on input.

mod backpressure;

use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{Semaphore, mpsc, oneshot, watch};

use crate::protocol::{self, ErrorCode, ErrorReply, MAX_FRAME_BYTES, ReplyFrame};

use crate::daemon::core::Command;
use crate::daemon::server::backpressure::{
    Limits, MAX_CONNECTIONS, RESERVE_CONNECTIONS, too_much_unread,
};

/// Longest a reply may take: a refresh waits for a token request (30 s timeout) and a
/// store write, with room to spare.
pub const REPLY_TIMEOUT: Duration = Duration::from_secs(120);

/// Serves `listener` until `shutdown` turns true.
pub async fn serve(
    listener: UnixListener,
    commands: mpsc::Sender<Command>,
    mut shutdown: watch::Receiver<bool>,
) {
    let normal = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    let reserve = Arc::new(Semaphore::new(RESERVE_CONNECTIONS));
    // SAFETY: getuid has no preconditions and cannot fail.
    let own_uid = unsafe { libc::getuid() };
    loop {
        // Wait for any free slot; beyond them, connections wait in the kernel's backlog.
        let (permit, limits) = tokio::select! {
            biased;
            permit = normal.clone().acquire_owned() => match permit {
                Ok(permit) => (permit, Limits::NORMAL),
                Err(_) => return,
            },
            permit = reserve.clone().acquire_owned() => match permit {
                Ok(permit) => (permit, Limits::RESERVE),
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
        // A normal slot freed while we waited is better than the reserve one held.
        let (permit, limits) = match (limits, normal.clone().try_acquire_owned()) {
            (Limits::RESERVE, Ok(better)) => (better, Limits::NORMAL),
            _ => (permit, limits),
        };
        let commands = commands.clone();
        tokio::spawn(async move {
            serve_connection(stream, own_uid, commands, limits).await;
            drop(permit);
        });
    }
}

async fn serve_connection(
    stream: UnixStream,
    own_uid: u32,
    commands: mpsc::Sender<Command>,
    limits: Limits,
) {
    let (read, mut write) = stream.into_split();
    let peer_uid = write.as_ref().peer_cred().map(|c| c.uid()).ok();
    if peer_uid != Some(own_uid) {
        tracing::warn!(?peer_uid, "refused a connection from another user");
        let error = ErrorReply::new(
            ErrorCode::PermissionDenied,
            "this daemon serves only the user that runs it",
        );
        send(&mut write, Err(error), limits).await;
        // Take the request the client is sending (briefly) before closing, so its write
        // does not fail with a broken pipe before it reads the refusal.
        let _ = read_frame(&mut BufReader::new(read), Limits::RESERVE.request).await;
        return;
    }
    let mut reader = BufReader::new(read);
    let (mut served, mut last_reply) = (0u32, 0usize);
    loop {
        let reply = match read_frame(&mut reader, limits.request).await {
            Frame::Closed => return,
            Frame::Line(_) if too_much_unread(write.as_ref(), last_reply) => {
                tracing::debug!("closed a connection whose client does not read its replies");
                return;
            }
            Frame::Line(line) => match protocol::parse_request(&line) {
                Ok(request) => dispatch(request, &commands).await,
                Err(error) => Err(error),
            },
            Frame::Bad(error) => {
                send(&mut write, Err(error), limits).await;
                return;
            }
        };
        let fatal = matches!(&reply, Err(e) if e.code == ErrorCode::BadRequest || e.code == ErrorCode::VersionMismatch);
        served += 1;
        match send(&mut write, reply, limits).await {
            Some(len) if !fatal && limits.requests.is_none_or(|most| served < most) => {
                last_reply = len;
            }
            _ => return,
        }
    }
}

/// Writes one reply within `limits.write`; its length, or `None` when the client did not
/// take it in time (or is gone).
async fn send(
    write: &mut (impl AsyncWrite + Unpin),
    reply: Result<protocol::Response, ErrorReply>,
    limits: Limits,
) -> Option<usize> {
    let line = protocol::to_line(&ReplyFrame::new(reply));
    match tokio::time::timeout(limits.write, write.write_all(&line)).await {
        Ok(Ok(())) => Some(line.len()),
        Ok(Err(_)) => None,
        Err(_) => {
            tracing::debug!("closed a connection whose client did not take its reply in time");
            None
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

/// Reads up to the next newline, at most [`MAX_FRAME_BYTES`], within `deadline`.
async fn read_frame<R: AsyncRead + Unpin>(reader: &mut BufReader<R>, deadline: Duration) -> Frame {
    let mut line = Vec::new();
    let limit = MAX_FRAME_BYTES as u64;
    let mut limited = (&mut *reader).take(limit);
    let read = limited.read_until(b'\n', &mut line);
    match tokio::time::timeout(deadline, read).await {
        Err(_) if line.is_empty() => Frame::Closed,
        Err(_) => Frame::Bad(ErrorReply::new(
            ErrorCode::Timeout,
            format!("request not completed within {} s", deadline.as_secs()),
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
        read_frame(&mut reader, Limits::NORMAL.request).await
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
        let frame = read_frame(&mut reader, Limits::NORMAL.request).await;
        assert!(matches!(frame, Frame::Bad(e) if e.code == ErrorCode::Timeout));
        drop(client);
    }
}
