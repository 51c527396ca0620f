//! A private D-Bus session bus with an unlocked gnome-keyring on it: the real Secret Service,
//! isolated per test. Owns the two processes; never touches the developer's own bus or keyring.

use std::fs::{self, File};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use super::process::{ChildGuard, output_with_deadline};

/// How long the bus and the keyring get to come up: a loaded 2-core CI machine needs well under
/// a second; the margin only matters when something is broken, and then the panic says what.
const STARTUP_DEADLINE: Duration = Duration::from_secs(20);

/// The throwaway password the test keyring is created and unlocked with.
const KEYRING_PASSWORD: &str = "sessctl-test-keyring";

/// A running private bus and keyring. Dropping it kills the keyring, then the bus.
pub struct SessionBus {
    address: String,
    dir: PathBuf,
    env: Vec<(String, String)>,
    // Field order is drop order: the keyring goes before the bus it is connected to.
    keyring: ChildGuard,
    bus: ChildGuard,
}

impl SessionBus {
    /// Starts a bus listening on `<runtime_dir>/bus` and an unlocked keyring on it, both with
    /// `env` (which must hold the test's HOME and XDG_* dirs); files go under `dir`.
    pub fn start(dir: &Path, runtime_dir: &Path, env: &[(String, String)]) -> Self {
        fs::create_dir_all(dir.join("services")).expect("create dbus dir");
        let config = write_bus_config(dir, &runtime_dir.join("bus"));
        let (bus, address) = start_bus(&config, dir, env);
        let keyring = start_keyring(dir, env, &address);
        let mut session = Self {
            address,
            dir: dir.to_owned(),
            env: env.to_vec(),
            keyring,
            bus,
        };
        session.wait_for_secret_service(dir);
        session
    }

    /// The bus address, for `DBUS_SESSION_BUS_ADDRESS`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Process id of `dbus-daemon`.
    pub fn bus_pid(&self) -> u32 {
        self.bus.pid()
    }

    /// Process id of `gnome-keyring-daemon`.
    pub fn keyring_pid(&self) -> u32 {
        self.keyring.pid()
    }

    /// True when some connection owns `name` on this bus.
    pub fn name_has_owner(&self, name: &str) -> bool {
        let mut cmd = Command::new("dbus-send");
        cmd.env("DBUS_SESSION_BUS_ADDRESS", &self.address).args([
            "--session",
            "--print-reply",
            "--dest=org.freedesktop.DBus",
            "/org/freedesktop/DBus",
            "org.freedesktop.DBus.NameHasOwner",
            &format!("string:{name}"),
        ]);
        let out = output_with_deadline(cmd, None, Duration::from_secs(10), "dbus-send");
        out.status.success() && String::from_utf8_lossy(&out.stdout).contains("boolean true")
    }

    /// Kills the keyring (the Secret Service becomes unreachable) and waits until its name is
    /// gone from the bus.
    pub fn stop_keyring(&mut self) {
        self.keyring.kill();
        let deadline = Instant::now() + STARTUP_DEADLINE;
        while self.name_has_owner("org.freedesktop.secrets") {
            assert!(Instant::now() < deadline, "the keyring's name outlived it");
            thread::sleep(Duration::from_millis(20));
        }
    }

    /// Freezes the keyring (SIGSTOP): Secret Service calls hang until [`Self::resume_keyring`],
    /// as with a keychain that is slow to answer. A real fault of the real component.
    pub fn pause_keyring(&self) {
        self.keyring.signal(libc::SIGSTOP);
    }

    /// Lets a paused keyring go on (SIGCONT); the calls it held are answered.
    pub fn resume_keyring(&self) {
        self.keyring.signal(libc::SIGCONT);
    }

    /// Starts the keyring again over the same files (same password: it unlocks).
    pub fn restart_keyring(&mut self) {
        self.keyring = start_keyring(&self.dir, &self.env, &self.address);
        let dir = self.dir.clone();
        self.wait_for_secret_service(&dir);
    }

    fn wait_for_secret_service(&mut self, dir: &Path) {
        let deadline = Instant::now() + STARTUP_DEADLINE;
        while !self.name_has_owner("org.freedesktop.secrets") {
            if let Some(status) = self.keyring.try_wait() {
                panic!(
                    "gnome-keyring-daemon exited ({status}) before owning org.freedesktop.secrets:\n{}",
                    read_log(&dir.join("keyring.log"))
                );
            }
            assert!(
                Instant::now() < deadline,
                "gnome-keyring-daemon did not own org.freedesktop.secrets within {STARTUP_DEADLINE:?}:\n{}",
                read_log(&dir.join("keyring.log"))
            );
            thread::sleep(Duration::from_millis(20));
        }
    }
}

/// A session bus configuration with an empty service directory: nothing is ever activated on
/// demand (no stray keyring before ours, no desktop notification daemon that crashes without X).
fn write_bus_config(dir: &Path, socket: &Path) -> PathBuf {
    let config = format!(
        r#"<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"
 "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">
<busconfig>
  <type>session</type>
  <keep_umask/>
  <listen>unix:path={socket}</listen>
  <auth>EXTERNAL</auth>
  <servicedir>{services}</servicedir>
  <policy context="default">
    <allow send_destination="*" eavesdrop="true"/>
    <allow eavesdrop="true"/>
    <allow own="*"/>
  </policy>
</busconfig>
"#,
        socket = socket.display(),
        services = dir.join("services").display(),
    );
    let path = dir.join("session.conf");
    fs::write(&path, config).expect("write bus config");
    path
}

/// Starts `dbus-daemon` and returns it with its address, read from its stdout: the daemon
/// prints the address only once it is listening, so that line is the readiness signal.
fn start_bus(config: &Path, dir: &Path, env: &[(String, String)]) -> (ChildGuard, String) {
    let mut cmd = Command::new("dbus-daemon");
    cmd.arg(format!("--config-file={}", config.display()))
        .args(["--nofork", "--print-address=1"])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(log_file(&dir.join("bus.log")));
    let mut bus = ChildGuard::spawn(cmd, "dbus-daemon");
    let stdout = bus.child_mut().stdout.take().expect("stdout piped");
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let address = match rx.recv_timeout(STARTUP_DEADLINE) {
        Ok(line) if !line.trim().is_empty() => line.trim().to_owned(),
        _ => panic!(
            "dbus-daemon printed no address:\n{}",
            read_log(&dir.join("bus.log"))
        ),
    };
    (bus, address)
}

/// Starts gnome-keyring-daemon in the foreground (so it is our child, reaped in Drop) with the
/// password on stdin: `--unlock` creates and unlocks the login keyring without any prompt.
fn start_keyring(dir: &Path, env: &[(String, String)], address: &str) -> ChildGuard {
    let mut cmd = Command::new("gnome-keyring-daemon");
    cmd.args(["--foreground", "--unlock", "--components=secrets"])
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env("DBUS_SESSION_BUS_ADDRESS", address)
        .stdin(Stdio::piped())
        .stdout(log_file(&dir.join("keyring.log")))
        .stderr(log_file(&dir.join("keyring.log")));
    let mut keyring = ChildGuard::spawn(cmd, "gnome-keyring-daemon");
    let mut stdin = keyring.child_mut().stdin.take().expect("stdin piped");
    std::io::Write::write_all(&mut stdin, KEYRING_PASSWORD.as_bytes())
        .expect("write keyring password");
    drop(stdin); // EOF ends the password.
    keyring
}

fn log_file(path: &Path) -> File {
    File::options()
        .create(true)
        .append(true)
        .open(path)
        .unwrap_or_else(|e| panic!("open {}: {e}", path.display()))
}

/// A log file's contents, or a note that it could not be read.
pub fn read_log(path: &Path) -> String {
    fs::read_to_string(path).unwrap_or_else(|e| format!("({}: {e})", path.display()))
}
