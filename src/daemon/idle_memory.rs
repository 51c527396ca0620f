//! Giving back the memory an idle daemon does not use: once the daemon has been quiet for
//! [`QUIET`] after doing work, with a long sleep ahead, the pages of code and read-only data
//! it touched for that work are unmapped, and malloc returns its free pages to the kernel.
//!
//! Why: most of an idle daemon's resident memory was its own code and libc's (the kernel maps
//! a program's code in 64 KB runs around every page it touches, and start-up touches code all
//! over), not its data (docs/benchmarks.md). Those pages are clean copies of files: dropping
//! them from the daemon's page tables (`MADV_DONTNEED`) loses nothing; they stay in the page
//! cache, and the next work maps back what it runs (minor faults, no disk read). It is what
//! memory pressure would do to them anyway, done while the daemon waits.
//!
//! Only private, read-only file mappings holding no private copy of a page (smaps'
//! `Anonymous: 0`) are released; a mapping the dynamic loader relocated (RELRO) or a debugger
//! patched holds such copies, and `MADV_DONTNEED` would throw them away, so it is left alone.
//! Linux only (smaps and these `madvise` semantics); elsewhere nothing happens.
//!
//! Must never: release a writable mapping or one with private pages; release between two
//! requests of a burst (a client's next request would pay for mapping the code back); wake
//! an idle daemon (the quiet wait is one wakeup after a burst of work, never periodic).

use std::time::Duration;

/// A sleep ahead at least this long counts as going idle. Shorter ones are between the
/// steps of work (a refresh waiting out a retry, a burst of logins), where the pages would
/// be needed again at once.
pub const IDLE_SLEEP: Duration = Duration::from_secs(10);

/// How long the daemon must be quiet (no request, no job result) after work before it
/// releases: a client's requests in a burst (a script, a prompt) come closer together.
pub const QUIET: Duration = Duration::from_secs(5);

/// Whether work happened since the last release, and whether the runner's current sleep is
/// the quiet wait that ends in one.
#[derive(Debug)]
pub struct IdleMemory {
    worked: bool,
    waiting: bool,
}

impl IdleMemory {
    /// Start-up counts as work: the first quiet spell releases what it touched.
    pub fn new() -> Self {
        Self {
            worked: true,
            waiting: false,
        }
    }

    /// Notes that the daemon handled a request or a job's result.
    pub fn worked(&mut self) {
        self.worked = true;
        self.waiting = false;
    }

    /// How long to sleep, given the manager's `sleep`: [`QUIET`] instead when work happened
    /// since the last release and a long sleep is ahead, so the release can follow.
    pub fn nap(&mut self, sleep: Duration) -> Duration {
        self.waiting = self.worked && sleep >= IDLE_SLEEP;
        if self.waiting { QUIET } else { sleep }
    }

    /// The sleep from [`nap`](Self::nap) ran out with nothing handled: releases if it was
    /// the quiet wait.
    pub fn woke(&mut self) {
        if self.waiting {
            self.waiting = false;
            self.worked = false;
            let released = release();
            tracing::debug!("quiet: unmapped {released} kB of clean file pages");
        }
    }
}

/// Releases the clean file pages and malloc's free memory; returns the kB unmapped.
pub fn release() -> u64 {
    #[cfg(target_os = "linux")]
    let released =
        std::fs::read_to_string("/proc/self/smaps").map_or(0, |smaps| linux::unmap_clean(&smaps));
    #[cfg(not(target_os = "linux"))]
    let released = 0;
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only returns free memory to the kernel; no pointer is touched.
    unsafe {
        libc::malloc_trim(0);
    }
    released
}

#[cfg(target_os = "linux")]
mod linux {
    /// One mapping of /proc/self/smaps, with what decides whether it may be released.
    #[derive(Debug)]
    pub(super) struct Mapping {
        pub start: usize,
        pub end: usize,
        /// Private, not writable, backed by a file.
        pub clean_file: bool,
        pub rss_kb: u64,
        pub anonymous_kb: u64,
    }

    impl Mapping {
        /// Whether `MADV_DONTNEED` loses nothing here: every resident page is the file's.
        pub fn releasable(&self) -> bool {
            self.clean_file && self.anonymous_kb == 0 && self.rss_kb > 0
        }
    }

    /// The mappings described by smaps' text.
    pub(super) fn mappings(smaps: &str) -> Vec<Mapping> {
        let mut out: Vec<Mapping> = Vec::new();
        for line in smaps.lines() {
            let mut fields = line.split_whitespace();
            let Some(first) = fields.next() else { continue };
            if let Some((start, end)) = first.split_once('-')
                && let (Ok(start), Ok(end)) = (
                    usize::from_str_radix(start, 16),
                    usize::from_str_radix(end, 16),
                )
            {
                let perms = fields.next().unwrap_or("");
                let inode = fields.nth(2).unwrap_or("0");
                let path = fields.next().unwrap_or("");
                let clean_file = perms.as_bytes().get(1) == Some(&b'-')
                    && perms.ends_with('p')
                    && inode != "0"
                    && path.starts_with('/');
                out.push(Mapping {
                    start,
                    end,
                    clean_file,
                    rss_kb: 0,
                    // Unknown until its line is read: not releasable until then.
                    anonymous_kb: u64::MAX,
                });
                continue;
            }
            let value = || fields.clone().next().and_then(|n| n.parse().ok());
            if let Some(current) = out.last_mut() {
                match first {
                    "Rss:" => current.rss_kb = value().unwrap_or(0),
                    "Anonymous:" => current.anonymous_kb = value().unwrap_or(u64::MAX),
                    _ => {}
                }
            }
        }
        out
    }

    /// Unmaps every releasable mapping in `smaps`; returns the kB that were resident.
    pub(super) fn unmap_clean(smaps: &str) -> u64 {
        let mut released = 0;
        for mapping in mappings(smaps).iter().filter(|m| m.releasable()) {
            // SAFETY: the range is a private, read-only file mapping of this process with no
            // private page (checked above): dropping its pages loses nothing, and any access
            // maps the file's page back. Nothing is freed or moved.
            let done = unsafe {
                libc::madvise(
                    mapping.start as *mut libc::c_void,
                    mapping.end - mapping.start,
                    libc::MADV_DONTNEED,
                )
            };
            if done == 0 {
                released += mapping.rss_kb;
            }
        }
        released
    }
}

#[cfg(all(test, target_os = "linux"))]
#[path = "idle_memory_tests.rs"]
mod tests;
