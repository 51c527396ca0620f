//! One daemon per user: an exclusive lock on a file in the runtime directory, held for the
//! daemon's lifetime and released by the kernel when the process dies (even by `kill -9`).
//! The file holds the pid so a second daemon can say who is running.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use crate::error::Error;

/// The held lock; dropping it releases it.
pub struct InstanceLock {
    _file: File,
}

impl InstanceLock {
    /// Takes the lock or reports the pid of the daemon holding it.
    pub fn acquire(path: &Path) -> Result<InstanceLock, Error> {
        let mut file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .mode(0o600)
            .open(path)
            .map_err(|e| Error::io("open lock file", path, e))?;
        match file.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut pid = String::new();
                let _ = file.read_to_string(&mut pid);
                let pid = pid.trim();
                return Err(Error::AlreadyRunning {
                    pid: if pid.is_empty() {
                        "unknown".into()
                    } else {
                        pid.to_owned()
                    },
                });
            }
            Err(TryLockError::Error(e)) => return Err(Error::io("lock", path, e)),
        }
        file.set_len(0)
            .and_then(|()| file.rewind())
            .and_then(|()| writeln!(file, "{}", std::process::id()))
            .and_then(|()| file.sync_all())
            .map_err(|e| Error::io("write pid to", path, e))?;
        Ok(InstanceLock { _file: file })
    }
}
