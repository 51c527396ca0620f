//! The manager's one-shot sleep, which costs one wakeup.
//!
//! Why not `tokio::time::sleep`: tokio's hierarchical timer wheel wakes the runtime at the
//! start of the wheel slot holding a deadline and moves the timer to a finer level, so a
//! 30 s sleep costs 3 to 5 wakeups (at the 4.1 s slot, the 64 ms slot, then the
//! millisecond), measured with strace. An idle daemon sleeps only on the manager's
//! deadline (at most [`super::schedule::MAX_SLEEP`]), so that cascade was most of its idle
//! wakeups. On Linux this sleeps on a `timerfd` registered with the runtime's I/O driver
//! instead: the kernel wakes the process once, when the time is up. The timerfd counts
//! `CLOCK_BOOTTIME`, so time spent suspended counts too (a sleep that ended during a
//! suspend fires on resume). Elsewhere, or when a timerfd cannot be made, it is
//! `tokio::time::sleep`.
//!
//! Must never: hold a file descriptor after the sleep is dropped (the manager drops it
//! whenever another event wins its `select!`).

use std::time::Duration;

/// Completes after `duration`. Cancel-safe: dropping it closes the timer.
pub async fn sleep(duration: Duration) {
    #[cfg(target_os = "linux")]
    if !duration.is_zero() {
        let started = std::time::Instant::now();
        match timerfd::sleep(duration).await {
            Ok(()) => return,
            Err(error) => {
                tracing::debug!("timerfd sleep unavailable ({error}); using tokio's timer");
                let left = duration.saturating_sub(started.elapsed());
                return tokio::time::sleep(left).await;
            }
        }
    }
    tokio::time::sleep(duration).await;
}

#[cfg(target_os = "linux")]
mod timerfd {
    use std::io;
    use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
    use std::time::Duration;

    use tokio::io::Interest;
    use tokio::io::unix::AsyncFd;

    /// Sleeps `duration` (not zero: a zero timer is a disarmed one) on a one-shot timerfd.
    pub(super) async fn sleep(duration: Duration) -> io::Result<()> {
        // SAFETY: the OwnedFd is a valid open timerfd, owned by the AsyncFd until it drops.
        let timer =
            unsafe { AsyncFd::register_with_interest(armed(duration)?, Interest::READABLE)? };
        loop {
            let mut ready = timer.readable().await?;
            if let Ok(result) = ready.try_io(|fd| read_expirations(fd.get_ref())) {
                return result;
            }
        }
    }

    /// A non-blocking timerfd on `CLOCK_BOOTTIME` that expires once, `duration` from now.
    fn armed(duration: Duration) -> io::Result<OwnedFd> {
        // SAFETY: timerfd_create takes no pointers; a non-negative result is a new fd we own.
        let raw = unsafe {
            libc::timerfd_create(libc::CLOCK_BOOTTIME, libc::TFD_NONBLOCK | libc::TFD_CLOEXEC)
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a valid fd just created and owned by nobody else.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: libc::time_t::try_from(duration.as_secs()).unwrap_or(libc::time_t::MAX),
                tv_nsec: libc::c_long::from(duration.subsec_nanos()),
            },
        };
        // SAFETY: `fd` is a timerfd; `spec` is a valid itimerspec; the old value is not asked for.
        if unsafe {
            libc::timerfd_settime(fd.as_raw_fd(), 0, &raw const spec, std::ptr::null_mut())
        } < 0
        {
            return Err(io::Error::last_os_error());
        }
        Ok(fd)
    }

    /// Reads the expiration count, which says the timer fired (`WouldBlock` if it has not).
    fn read_expirations(fd: &OwnedFd) -> io::Result<()> {
        let mut count = [0u8; 8];
        // SAFETY: reads at most 8 bytes into an 8-byte buffer.
        let n = unsafe { libc::read(fd.as_raw_fd(), count.as_mut_ptr().cast(), count.len()) };
        if n < 0 {
            return Err(io::Error::last_os_error());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::time::Instant;

    use super::*;

    #[tokio::test(flavor = "current_thread")]
    async fn a_sleep_lasts_at_least_its_duration() {
        let started = Instant::now();
        sleep(Duration::from_millis(30)).await;
        assert!(started.elapsed() >= Duration::from_millis(30));
    }

    #[tokio::test(flavor = "current_thread")]
    async fn a_zero_sleep_completes() {
        sleep(Duration::ZERO).await;
    }
}
