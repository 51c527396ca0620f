//! Running the real `sessctl` binary inside a [`TestEnv`]: the CLI with a deadline, the daemon
//! as a [`Daemon`] handle (log captured, killed in Drop), and config/status conveniences.

use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Output, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::env::{Launcher, TestEnv};
use super::process::{ChildGuard, output_with_deadline};

/// The binary under test.
pub const SESSCTL: &str = env!("CARGO_BIN_EXE_sessctl");
/// A CLI call that takes longer than this is hung (every command is local).
const CLI_TIMEOUT: Duration = Duration::from_secs(30);
/// How long `sessctl daemon` gets to answer `sessctl ping` (a deadline, not a wait: on a
/// loaded 2-core machine start-up has its turn late).
const DAEMON_READY_DEADLINE: Duration = Duration::from_secs(60);
/// The daemon's log filter in tests: debug, so a failing test's log says what happened.
pub const DAEMON_LOG_VAR: &str = "SESSCTL_LOG";
const DAEMON_LOG_LEVEL: &str = "debug";
/// Between readiness probes: each probe is a process spawn, so not too often.
const DAEMON_POLL_INTERVAL: Duration = Duration::from_millis(50);

impl TestEnv {
    /// `$XDG_CONFIG_HOME/sessctl/config.yaml`, sessctl's default config path.
    pub fn config_path(&self) -> PathBuf {
        self.config_dir().join("sessctl/config.yaml")
    }

    /// Writes `yaml` to [`TestEnv::config_path`].
    pub fn write_config(&self, yaml: &str) {
        let path = self.config_path();
        fs::create_dir_all(path.parent().expect("config path has a parent"))
            .expect("create config dir");
        fs::write(&path, yaml).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
    }

    /// Runs `sessctl ARGS` with this env and no stdin; panics if it hangs.
    pub fn sessctl(&self, args: &[&str]) -> Output {
        self.run_sessctl(args, None)
    }

    /// Runs `sessctl ARGS` with `stdin` as its standard input.
    pub fn sessctl_stdin(&self, args: &[&str], stdin: &str) -> Output {
        self.run_sessctl(args, Some(stdin.as_bytes()))
    }

    fn run_sessctl(&self, args: &[&str], stdin: Option<&[u8]>) -> Output {
        self.run_cli(Path::new(SESSCTL), args, stdin)
    }

    /// Runs `program ARGS` like [`TestEnv::sessctl`] does: this env, a deadline, output captured.
    pub fn run_cli(&self, program: &Path, args: &[&str], stdin: Option<&[u8]>) -> Output {
        let mut cmd = self.command(program);
        cmd.args(args);
        let name = program.file_name().unwrap_or_default().to_string_lossy();
        let what = format!("{name} {}", args.join(" "));
        output_with_deadline(cmd, stdin, CLI_TIMEOUT, &what)
    }

    /// A `sessctl ARGS` command with this env, for callers that run many at once.
    pub fn sessctl_command(&self, args: &[&str]) -> std::process::Command {
        let mut cmd = self.command(SESSCTL);
        cmd.args(args);
        cmd
    }

    /// The daemon's socket.
    pub fn socket_path(&self) -> PathBuf {
        self.runtime_dir().join("sessctl/sessctl.sock")
    }

    /// True when a process owns `name` on the private session bus.
    pub fn bus_name_owned(&self, name: &str) -> bool {
        self.session_bus().name_has_owner(name)
    }

    /// `sessctl status --json`, parsed; panics (showing stderr) unless the daemon answered
    /// (exit 0, 1 or 2 are all answers: all active, some not, none active).
    pub fn status_json(&self) -> Value {
        let out = self.sessctl(&["status", "--json"]);
        assert!(
            matches!(out.status.code(), Some(0..=2)),
            "sessctl status --json failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| {
            panic!(
                "sessctl status --json printed no JSON ({e}): {}",
                String::from_utf8_lossy(&out.stdout)
            )
        })
    }

    /// Starts `sessctl daemon` and waits until `sessctl ping` succeeds.
    pub fn start_daemon(&self) -> Daemon {
        self.start_daemon_with(&[])
    }

    /// Starts `sessctl daemon EXTRA_ARGS...` and waits until `sessctl ping` succeeds. Its
    /// stdout and stderr go to `<root>/daemon-N.log`; it logs at debug (`SESSCTL_LOG`).
    pub fn start_daemon_with(&self, extra_args: &[&str]) -> Daemon {
        self.start_daemon_of(Path::new(SESSCTL), extra_args)
    }

    /// [`TestEnv::start_daemon_with`] for another program with the same `daemon`/`ping`
    /// interface (the harness's own tests use a shell script).
    pub fn start_daemon_of(&self, program: &Path, extra_args: &[&str]) -> Daemon {
        self.start_daemon_logging(program, extra_args, DAEMON_LOG_LEVEL)
    }

    /// [`TestEnv::start_daemon_of`] with `SESSCTL_LOG` set to `filter`.
    pub fn start_daemon_logging(
        &self,
        program: &Path,
        extra_args: &[&str],
        filter: &str,
    ) -> Daemon {
        self.start_daemon_env(program, extra_args, filter, &[])
    }

    /// Starts `sessctl daemon` with `envs` set on top of this env (e.g. a session bus
    /// address that leads nowhere) and waits until `sessctl ping` succeeds.
    pub fn start_daemon_overriding(&self, envs: &[(&str, &str)]) -> Daemon {
        self.start_daemon_env(Path::new(SESSCTL), &[], DAEMON_LOG_LEVEL, envs)
    }

    fn start_daemon_env(
        &self,
        program: &Path,
        extra_args: &[&str],
        filter: &str,
        envs: &[(&str, &str)],
    ) -> Daemon {
        let n = self.next_daemon.fetch_add(1, Ordering::Relaxed);
        let log_path = self.root().join(format!("daemon-{n}.log"));
        let log = File::create(&log_path).expect("create daemon log");
        let mut cmd = self.command(program);
        cmd.arg("daemon")
            .args(extra_args)
            .env(DAEMON_LOG_VAR, filter)
            .envs(envs.iter().copied())
            .stdin(Stdio::null())
            .stdout(log.try_clone().expect("clone log handle"))
            .stderr(log);
        let process = ChildGuard::spawn(cmd, "the daemon");
        let mut daemon = Daemon {
            launcher: self.launcher(),
            program: program.to_owned(),
            process,
            log_path,
        };
        daemon.wait_until_ready();
        daemon
    }
}

/// A running `sessctl daemon`. Dropping it SIGKILLs and reaps it (and prints its log if the
/// test is panicking). Keep it declared after (dropped before) its [`TestEnv`]'s users and
/// before the env itself, so the daemon goes before the bus it uses.
pub struct Daemon {
    launcher: Launcher,
    program: PathBuf,
    process: ChildGuard,
    log_path: PathBuf,
}

impl Daemon {
    /// The daemon's process id.
    pub fn pid(&self) -> u32 {
        self.process.pid()
    }

    /// Everything the daemon printed so far.
    pub fn log(&self) -> String {
        fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    /// Path of the daemon's log file.
    pub fn log_path(&self) -> &Path {
        &self.log_path
    }

    /// True while the daemon process has not exited.
    pub fn is_running(&mut self) -> bool {
        self.process.try_wait().is_none()
    }

    /// Simulates a crash: SIGKILL, then reap.
    pub fn kill9(&mut self) {
        self.process.kill();
    }

    /// Sends `signal` (e.g. `libc::SIGTERM`) without waiting.
    pub fn signal(&self, signal: libc::c_int) {
        self.process.signal(signal);
    }

    /// Sends SIGTERM and waits (up to `timeout`) for a clean exit.
    pub fn terminate(&mut self, timeout: Duration) -> ExitStatus {
        self.process.signal(libc::SIGTERM);
        self.process.wait_timeout(timeout)
    }

    /// Waits (up to `timeout`) for the daemon to exit on its own.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        self.process.wait_timeout(timeout)
    }

    fn wait_until_ready(&mut self) {
        let deadline = Instant::now() + DAEMON_READY_DEADLINE;
        loop {
            if let Some(status) = self.process.try_wait() {
                // Drop prints the log.
                panic!("sessctl daemon exited ({status}) before answering ping");
            }
            let mut ping = self.launcher.command(&self.program);
            ping.arg("ping");
            if output_with_deadline(ping, None, CLI_TIMEOUT, "ping")
                .status
                .success()
            {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "sessctl daemon did not answer ping within {DAEMON_READY_DEADLINE:?}"
            );
            thread::sleep(DAEMON_POLL_INTERVAL);
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.process.kill();
        if thread::panicking() {
            eprintln!(
                "--- sessctl daemon log ({}) ---\n{}",
                self.log_path.display(),
                self.log()
            );
        }
    }
}

/// A `sessctl` command left running while the test plays the user's part (a login waiting
/// for a browser, a paste, a device approval). Its output is collected as it comes; it is
/// killed in Drop if the test never waited for it.
pub struct Background {
    process: ChildGuard,
    stdin: Option<std::process::ChildStdin>,
    stdout: Arc<Mutex<Vec<u8>>>,
    stderr: Arc<Mutex<Vec<u8>>>,
    readers: Vec<thread::JoinHandle<()>>,
}

impl TestEnv {
    /// Starts `sessctl ARGS` with `envs` added, stdin piped.
    pub fn sessctl_background(&self, args: &[&str], envs: &[(&str, &str)]) -> Background {
        let mut cmd = self.sessctl_command(args);
        cmd.envs(envs.iter().copied())
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut process = ChildGuard::spawn(cmd, &format!("sessctl {}", args.join(" ")));
        let child = process.child_mut();
        let stdin = child.stdin.take();
        let stdout = Arc::new(Mutex::new(Vec::new()));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        let readers = vec![
            pump(child.stdout.take().expect("stdout piped"), stdout.clone()),
            pump(child.stderr.take().expect("stderr piped"), stderr.clone()),
        ];
        Background {
            process,
            stdin,
            stdout,
            stderr,
            readers,
        }
    }
}

impl Background {
    /// What the command printed on stderr so far.
    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.stderr.lock().expect("stderr buffer")).into_owned()
    }

    /// Types `text` on the command's stdin.
    pub fn write_stdin(&mut self, text: &str) {
        use std::io::Write;
        let stdin = self.stdin.as_mut().expect("stdin still open");
        stdin.write_all(text.as_bytes()).expect("write to stdin");
        stdin.flush().expect("flush stdin");
    }

    /// Closes the command's stdin (end of input).
    pub fn close_stdin(&mut self) {
        self.stdin.take();
    }

    /// Waits (at most `timeout`) for the command to exit; returns everything it printed.
    pub fn wait(mut self, timeout: Duration) -> Output {
        self.stdin = None;
        let status = self.process.wait_timeout(timeout);
        for reader in self.readers.drain(..) {
            let _ = reader.join();
        }
        let take =
            |buffer: &Arc<Mutex<Vec<u8>>>| std::mem::take(&mut *buffer.lock().expect("buffer"));
        Output {
            status,
            stdout: take(&self.stdout),
            stderr: take(&self.stderr),
        }
    }
}

/// Copies a pipe into `buffer` until it closes.
fn pump(
    mut pipe: impl std::io::Read + Send + 'static,
    buffer: Arc<Mutex<Vec<u8>>>,
) -> thread::JoinHandle<()> {
    thread::spawn(move || {
        let mut chunk = [0u8; 4096];
        while let Ok(n) = pipe.read(&mut chunk) {
            if n == 0 {
                break;
            }
            buffer
                .lock()
                .expect("buffer")
                .extend_from_slice(&chunk[..n]);
        }
    })
}
