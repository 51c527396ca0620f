//! `TestEnv`: one test's private world — a fresh temp dir with HOME and the XDG dirs, a private
//! session bus with an unlocked keyring, and the environment for every child process. Never
//! lets a child see the developer's real home, config, bus or keyring.

use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use super::process::output_with_deadline;
use super::session_bus::SessionBus;

/// Set (to anything) to keep test dirs after the test, for post-mortems.
pub const KEEP_DIRS_VAR: &str = "SESSCTL_KEEP_TEST_DIRS";

/// Inherited variables removed from children: anything that could point sessctl elsewhere
/// (`SESSCTL_*`, e.g. `SESSCTL_CONFIG`) or make the keyring try a graphical prompt.
const REMOVED_PREFIXES: &[&str] = &["SESSCTL_"];
/// Never inherited: a display or `$BROWSER` would make `sessctl login` open a real browser,
/// an SSH session would change which login command sessctl recommends.
const REMOVED_VARS: &[&str] = &[
    "DISPLAY",
    "WAYLAND_DISPLAY",
    "GNOME_KEYRING_CONTROL",
    "BROWSER",
    "SSH_CONNECTION",
    "SSH_TTY",
];

/// How long a `secret-tool` call may take.
const SECRET_TOOL_TIMEOUT: Duration = Duration::from_secs(15);

static NEXT_ID: AtomicUsize = AtomicUsize::new(0);

/// A test's private environment; see the module doc. Dropping it kills the keyring and the bus
/// and removes the temp dir (unless `SESSCTL_KEEP_TEST_DIRS` is set).
pub struct TestEnv {
    root: PathBuf,
    bus: Option<SessionBus>,
    pub(super) next_daemon: AtomicUsize,
}

impl TestEnv {
    /// Creates the dirs (`home config state cache data runtime`, mode 0700) under a new unique
    /// dir in the system temp dir, then starts the private bus and keyring.
    pub fn new() -> Self {
        let root = unique_dir();
        for sub in [
            "home", "config", "state", "cache", "data", "runtime", "dbus",
        ] {
            make_private_dir(&root.join(sub));
        }
        let mut env = Self {
            root,
            bus: None,
            next_daemon: AtomicUsize::new(0),
        };
        let bus = SessionBus::start(&env.root.join("dbus"), &env.runtime_dir(), &env.dir_vars());
        env.bus = Some(bus);
        env
    }

    /// The temp dir holding everything else.
    pub fn root(&self) -> &Path {
        &self.root
    }
    /// `HOME`.
    pub fn home(&self) -> PathBuf {
        self.root.join("home")
    }
    /// `XDG_CONFIG_HOME`.
    pub fn config_dir(&self) -> PathBuf {
        self.root.join("config")
    }
    /// `XDG_STATE_HOME`.
    pub fn state_dir(&self) -> PathBuf {
        self.root.join("state")
    }
    /// `XDG_CACHE_HOME`.
    pub fn cache_dir(&self) -> PathBuf {
        self.root.join("cache")
    }
    /// `XDG_DATA_HOME` (the keyring keeps its files here).
    pub fn data_dir(&self) -> PathBuf {
        self.root.join("data")
    }
    /// `XDG_RUNTIME_DIR` (the bus socket is `bus` in it).
    pub fn runtime_dir(&self) -> PathBuf {
        self.root.join("runtime")
    }

    /// The private session bus and keyring.
    pub fn session_bus(&self) -> &SessionBus {
        self.bus.as_ref().expect("bus runs for the env's lifetime")
    }

    /// The private session bus, to stop or restart its keyring.
    pub fn session_bus_mut(&mut self) -> &mut SessionBus {
        self.bus.as_mut().expect("bus runs for the env's lifetime")
    }

    /// The environment for child processes: PATH (kept from ours), HOME, the XDG dirs and
    /// `DBUS_SESSION_BUS_ADDRESS`. [`TestEnv::command`] also removes inherited `SESSCTL_*`
    /// variables (so `SESSCTL_CONFIG` never leaks in). Daemons get `SESSCTL_LOG=debug` on
    /// top (see [`TestEnv::start_daemon_with`]); the CLI keeps its quiet default.
    pub fn vars(&self) -> Vec<(String, String)> {
        let mut vars = self.dir_vars();
        vars.push((
            "DBUS_SESSION_BUS_ADDRESS".into(),
            self.session_bus().address().into(),
        ));
        vars
    }

    fn dir_vars(&self) -> Vec<(String, String)> {
        let path = |p: PathBuf| p.to_string_lossy().into_owned();
        vec![
            ("PATH".into(), std::env::var("PATH").unwrap_or_default()),
            ("HOME".into(), path(self.home())),
            ("XDG_CONFIG_HOME".into(), path(self.config_dir())),
            ("XDG_STATE_HOME".into(), path(self.state_dir())),
            ("XDG_CACHE_HOME".into(), path(self.cache_dir())),
            ("XDG_DATA_HOME".into(), path(self.data_dir())),
            ("XDG_RUNTIME_DIR".into(), path(self.runtime_dir())),
        ]
    }

    /// A `Command` for `program` with this env applied (see [`TestEnv::vars`]).
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        self.launcher().command(program)
    }

    /// What [`TestEnv::command`] needs, detached from the env so a long-lived handle (a
    /// [`super::Daemon`]) can start processes without borrowing it.
    pub fn launcher(&self) -> Launcher {
        Launcher {
            vars: self.vars(),
            home: self.home(),
        }
    }
}

/// Builds commands with a [`TestEnv`]'s environment.
#[derive(Debug, Clone)]
pub struct Launcher {
    vars: Vec<(String, String)>,
    home: PathBuf,
}

impl Launcher {
    /// A `Command` for `program` with the env applied and inherited `SESSCTL_*` removed.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut cmd = Command::new(program);
        for (key, _) in std::env::vars_os() {
            let name = key.to_string_lossy();
            if REMOVED_PREFIXES.iter().any(|p| name.starts_with(p)) {
                cmd.env_remove(&key);
            }
        }
        for name in REMOVED_VARS {
            cmd.env_remove(name);
        }
        cmd.envs(self.vars.iter().cloned()).current_dir(&self.home);
        cmd
    }
}

impl TestEnv {
    /// Looks up a Secret Service item by the attributes keyring v4 writes (`service` and
    /// `username`); `None` when there is no such item.
    pub fn secret_lookup(&self, service: &str, account: &str) -> Option<String> {
        let mut cmd = self.command("secret-tool");
        cmd.args(["lookup", "service", service, "username", account]);
        let out = output_with_deadline(cmd, None, SECRET_TOOL_TIMEOUT, "secret-tool lookup");
        if out.status.success() {
            return Some(String::from_utf8(out.stdout).expect("secret is UTF-8"));
        }
        // secret-tool exits 1 and prints nothing when no item matches.
        assert!(
            out.stderr.is_empty() && out.status.code() == Some(1),
            "secret-tool lookup failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
        None
    }

    /// Stores a Secret Service item with the attributes keyring v4 uses, as sessctl would.
    pub fn secret_store(&self, service: &str, account: &str, secret: &str) {
        let mut cmd = self.command("secret-tool");
        let label = format!("{account}@{service} (test)");
        cmd.args([
            "store", "--label", &label, "service", service, "username", account,
        ]);
        let out = output_with_deadline(
            cmd,
            Some(secret.as_bytes()),
            SECRET_TOOL_TIMEOUT,
            "secret-tool store",
        );
        assert!(
            out.status.success(),
            "secret-tool store failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        drop(self.bus.take());
        if std::env::var_os(KEEP_DIRS_VAR).is_some() {
            eprintln!("kept test dir {}", self.root.display());
            return;
        }
        if std::thread::panicking() {
            eprintln!(
                "removing test dir {} (set {KEEP_DIRS_VAR}=1 to keep it)",
                self.root.display()
            );
        }
        let _ = fs::remove_dir_all(&self.root);
    }
}

/// A new dir under the system temp dir. Short names: the bus socket path must stay under the
/// 108-byte `sun_path` limit.
fn unique_dir() -> PathBuf {
    let base = std::env::temp_dir();
    loop {
        let id = NEXT_ID.fetch_add(1, Ordering::Relaxed);
        let dir = base.join(format!("sessctl-it-{}-{id}", std::process::id()));
        match fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return dir,
            // Left over from an earlier run whose pid we now have: pick the next id.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {}
            Err(e) => panic!("create test dir {}: {e}", dir.display()),
        }
    }
}

fn make_private_dir(path: &Path) {
    fs::DirBuilder::new()
        .mode(0o700)
        .create(path)
        .unwrap_or_else(|e| panic!("create {}: {e}", path.display()));
}
