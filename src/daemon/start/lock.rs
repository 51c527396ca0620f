//! One daemon per state: exclusive locks held for the daemon's lifetime and released by the
//! kernel when the process dies (even by `kill -9`).
//!
//! Two locks, taken in this order:
//! - the **instance lock**, beside the state file: what two daemons would fight over is the
//!   state file and the keychain items it names (both refreshing one slot revokes its grant),
//!   so a second daemon over the same state is refused whatever `XDG_RUNTIME_DIR` it sees
//!   (cron, ssh, `env -i`);
//! - the **socket lock**, beside the socket: a daemon over *another* state that shares the
//!   runtime directory (two `XDG_STATE_HOME`s, one `XDG_RUNTIME_DIR`) would otherwise remove
//!   the first daemon's socket as "stale" and take it over. It is refused instead.
//!
//! Each file holds the holder's pid (and the instance lock its socket) so a refused daemon
//! can say who is running and where it answers. It must never be removed by the daemon: a
//! lock file unlinked while held no longer excludes anyone.

use std::fs::{File, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::Path;

use crate::error::Error;
use crate::fsutil;

/// A held lock; dropping it releases it.
pub struct InstanceLock {
    _file: File,
}

/// What a lock file says about the daemon holding it.
struct Holder {
    pid: String,
    socket: Option<String>,
}

impl InstanceLock {
    /// Takes the instance lock at `path` (in the state directory) and records our pid and
    /// `socket`; reports the pid (and socket) of the daemon holding it.
    pub fn acquire(path: &Path, socket: &Path) -> Result<InstanceLock, Error> {
        match take(path, socket)? {
            Ok(lock) => Ok(lock),
            Err(holder) => Err(Error::AlreadyRunning {
                pid: match holder.socket {
                    Some(theirs) if Path::new(&theirs) != socket => {
                        format!("{}, listening on {theirs}", holder.pid)
                    }
                    _ => holder.pid,
                },
            }),
        }
    }

    /// Takes the socket lock at `path` (beside `socket`); refuses when a daemon over another
    /// state directory holds it.
    pub fn acquire_socket(path: &Path, socket: &Path) -> Result<InstanceLock, Error> {
        match take(path, socket)? {
            Ok(lock) => Ok(lock),
            Err(holder) => Err(Error::SocketInUse {
                socket: socket.to_owned(),
                pid: holder.pid,
            }),
        }
    }
}

/// Opens (creating, 0600) and tries to lock `path`; on success writes our pid and `socket`.
fn take(path: &Path, socket: &Path) -> Result<Result<InstanceLock, Holder>, Error> {
    let mut file = fsutil::private_file_options()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(|e| Error::io("open lock file", path, e))?;
    match file.try_lock() {
        Ok(()) => {}
        Err(TryLockError::WouldBlock) => return Ok(Err(read_holder(&mut file))),
        Err(TryLockError::Error(e)) => return Err(Error::io("lock", path, e)),
    }
    file.set_len(0)
        .and_then(|()| file.rewind())
        .and_then(|()| writeln!(file, "{}\n{}", std::process::id(), socket.display()))
        .and_then(|()| file.sync_all())
        .map_err(|e| Error::io("write pid to", path, e))?;
    Ok(Ok(InstanceLock { _file: file }))
}

/// The pid (first line) and socket (second line, absent in locks of older versions).
fn read_holder(file: &mut File) -> Holder {
    let mut text = String::new();
    let _ = file.read_to_string(&mut text);
    let mut lines = text.lines().map(str::trim);
    let pid = match lines.next() {
        Some(pid) if !pid.is_empty() => pid.to_owned(),
        _ => "unknown".into(),
    };
    let socket = lines.next().filter(|s| !s.is_empty()).map(str::to_owned);
    Holder { pid, socket }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_second_taker_is_told_the_pid_and_where_the_first_listens() {
        let dir = crate::test_dirs::fresh("lock-second");
        let path = dir.join("daemon.lock");
        let _held = InstanceLock::acquire(&path, Path::new("/r1/sessctl.sock")).unwrap();
        let refused = InstanceLock::acquire(&path, Path::new("/r2/sessctl.sock"))
            .err()
            .unwrap()
            .to_string();
        let pid = std::process::id();
        assert_eq!(
            refused,
            format!("already running (pid {pid}, listening on /r1/sessctl.sock)")
        );
        let same = InstanceLock::acquire(&path, Path::new("/r1/sessctl.sock"))
            .err()
            .unwrap()
            .to_string();
        assert_eq!(same, format!("already running (pid {pid})"));
    }

    #[test]
    fn a_socket_held_by_another_state_is_refused_with_its_pid() {
        let dir = crate::test_dirs::fresh("lock-socket");
        let path = dir.join("sessctl.lock");
        let socket = dir.join("sessctl.sock");
        let _held = InstanceLock::acquire_socket(&path, &socket).unwrap();
        let refused = InstanceLock::acquire_socket(&path, &socket)
            .err()
            .unwrap()
            .to_string();
        assert!(
            refused.contains(&format!("pid {}", std::process::id())),
            "{refused}"
        );
        assert!(refused.contains("XDG_RUNTIME_DIR"), "{refused}");
    }
}
