//! Child processes that cannot outlive the test that started them, and running a command with
//! a deadline. Owns process lifetime only; never decides what a process means to a test.

use std::io::{Read, Write};
#[cfg(target_os = "linux")]
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

/// How long to keep collecting a finished command's output: a grandchild that inherited its
/// stdout (a daemon it spawned) would otherwise keep the pipe open forever.
const OUTPUT_GRACE: Duration = Duration::from_secs(2);

/// Makes the kernel SIGKILL the child if the thread that spawned it dies, so a test binary
/// killed mid-run (timeout, Ctrl-C, SIGKILL) leaks no bus, keyring, server or daemon.
/// Linux ties this to the spawning *thread*: spawn and drop in the same test.
#[cfg(target_os = "linux")]
pub fn die_with_parent(cmd: &mut Command) -> &mut Command {
    // SAFETY: prctl is async-signal-safe and touches no memory of the parent.
    unsafe {
        cmd.pre_exec(|| {
            if libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL) != 0 {
                return Err(std::io::Error::last_os_error());
            }
            Ok(())
        })
    }
}

/// Other platforms have no parent-death signal: only `ChildGuard`'s drop ends the child.
#[cfg(not(target_os = "linux"))]
pub fn die_with_parent(cmd: &mut Command) -> &mut Command {
    cmd
}

/// A child process killed (SIGKILL) and reaped when dropped.
pub struct ChildGuard {
    child: Option<Child>,
    what: String,
}

impl ChildGuard {
    /// Spawns `cmd` (made to die with this thread) or panics naming `what`.
    ///
    /// An executable a test has just written can fail to start with ETXTBSY for a moment:
    /// a process forked meanwhile by a parallel test holds the writer's descriptor until it
    /// execs. That passes on its own, so spawning is retried for a short while.
    pub fn spawn(mut cmd: Command, what: &str) -> Self {
        die_with_parent(&mut cmd);
        let deadline = Instant::now() + Duration::from_secs(5);
        let child = loop {
            match cmd.spawn() {
                Err(e) if e.raw_os_error() == Some(libc::ETXTBSY) && Instant::now() < deadline => {
                    thread::sleep(Duration::from_millis(10));
                }
                result => break result,
            }
        };
        let child = child
            .unwrap_or_else(|e| panic!("cannot start {what} ({cmd:?}): {e}{}", install_hint(&e)));
        Self {
            child: Some(child),
            what: what.to_owned(),
        }
    }

    /// The child's process id.
    pub fn pid(&self) -> u32 {
        self.child().id()
    }

    /// The running child, for taking its pipes.
    pub fn child_mut(&mut self) -> &mut Child {
        self.child.as_mut().expect("child already reaped")
    }

    fn child(&self) -> &Child {
        self.child.as_ref().expect("child already reaped")
    }

    /// `Some(status)` once the child has exited (it is reaped then), `None` while it runs.
    pub fn try_wait(&mut self) -> Option<ExitStatus> {
        let what = self.what.clone();
        self.child_mut()
            .try_wait()
            .unwrap_or_else(|e| panic!("waiting for {what}: {e}"))
    }

    /// Sends `signal` (e.g. `libc::SIGTERM`) without waiting.
    pub fn signal(&self, signal: libc::c_int) {
        let pid = libc::pid_t::try_from(self.pid()).expect("pid fits pid_t");
        // SAFETY: plain syscall on a pid we own and have not reaped yet.
        unsafe { libc::kill(pid, signal) };
    }

    /// Waits for the child to exit by itself, or panics after `timeout`.
    pub fn wait_timeout(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.try_wait() {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "{} still running after {timeout:?}",
                self.what
            );
            thread::sleep(Duration::from_millis(10));
        }
    }

    /// SIGKILLs and reaps the child now; later calls do nothing.
    pub fn kill(&mut self) -> Option<ExitStatus> {
        let mut child = self.child.take()?;
        let _ = child.kill();
        child.wait().ok()
    }
}

impl Drop for ChildGuard {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A hint for a missing program: the test dependencies are installed by `scripts/test.sh`.
pub fn install_hint(error: &std::io::Error) -> &'static str {
    if error.kind() == std::io::ErrorKind::NotFound {
        " (a test dependency is missing: run scripts/test.sh, which installs them)"
    } else {
        ""
    }
}

/// Runs `cmd` to completion with `stdin` (or none), capturing stdout and stderr; kills it and
/// panics with what it printed when it takes longer than `timeout`.
pub fn output_with_deadline(
    mut cmd: Command,
    stdin: Option<&[u8]>,
    timeout: Duration,
    what: &str,
) -> Output {
    cmd.stdin(if stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    })
    .stdout(Stdio::piped())
    .stderr(Stdio::piped());
    let mut guard = ChildGuard::spawn(cmd, what);
    if let Some(bytes) = stdin {
        let mut pipe = guard.child_mut().stdin.take().expect("stdin piped");
        let bytes = bytes.to_vec();
        // A writer thread: a child that never reads stdin must not block us.
        thread::spawn(move || {
            let _ = pipe.write_all(&bytes);
        });
    }
    let stdout = collect(guard.child_mut().stdout.take().expect("stdout piped"));
    let stderr = collect(guard.child_mut().stderr.take().expect("stderr piped"));
    let deadline = Instant::now() + timeout;
    let status = loop {
        if let Some(status) = guard.try_wait() {
            break status;
        }
        if Instant::now() >= deadline {
            guard.kill();
            panic!(
                "{what} did not finish within {timeout:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
                String::from_utf8_lossy(&stdout.finish()),
                String::from_utf8_lossy(&stderr.finish()),
            );
        }
        thread::sleep(Duration::from_millis(5));
    };
    Output {
        status,
        stdout: stdout.finish(),
        stderr: stderr.finish(),
    }
}

/// A pipe being read to the end on its own thread.
struct Collector(mpsc::Receiver<Vec<u8>>);

impl Collector {
    /// What was read, waiting at most [`OUTPUT_GRACE`] for the writer's end to close.
    fn finish(self) -> Vec<u8> {
        let mut all = Vec::new();
        let deadline = Instant::now() + OUTPUT_GRACE;
        while let Ok(chunk) = self
            .0
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
        {
            all.extend_from_slice(&chunk);
        }
        all
    }
}

fn collect(mut pipe: impl Read + Send + 'static) -> Collector {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = pipe.read(&mut buf) {
            if n == 0 || tx.send(buf[..n].to_vec()).is_err() {
                break;
            }
        }
    });
    Collector(rx)
}
