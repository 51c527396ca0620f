//! `sessctl service install | uninstall | status`: puts the daemon under the user's service
//! manager (a systemd user unit on Linux, a launchd agent on macOS) with the absolute path of
//! the `sessctl` being run, starts it and says what it did; `uninstall` reverses it.
//!
//! Each refuses, before changing anything, where there is no service manager to talk to (no
//! systemd user instance: containers, WSL, ssh without lingering), and says what to do
//! instead. `--no-start` / `--no-stop` only write or remove the file, never asking the
//! manager: for image builds, for a user instance that starts later, and for tests.

mod render;

use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode};

use anyhow::{Context, bail};

use crate::doctor::service::probe;

/// `sessctl service ...`.
#[derive(Debug, clap::Subcommand)]
pub enum Action {
    /// Write the service file for this installation (the directory of this `sessctl`),
    /// then enable and start it.
    Install {
        /// Only write the file; do not ask the service manager to load or start it.
        #[arg(long)]
        no_start: bool,
    },
    /// Stop and disable the service, then remove its file.
    Uninstall {
        /// Only remove the file; do not ask the service manager to stop it.
        #[arg(long)]
        no_stop: bool,
    },
    /// Say where the service file is and what the service manager reports.
    Status,
}

/// Where the service file goes and how to talk to its manager.
enum Manager {
    Systemd { file: PathBuf },
    Launchd { file: PathBuf, home: PathBuf },
}

/// Runs `sessctl service ACTION`.
pub fn run(action: &Action) -> anyhow::Result<ExitCode> {
    let manager = Manager::here()?;
    match *action {
        Action::Install { no_start } => install(&manager, no_start),
        Action::Uninstall { no_stop } => uninstall(&manager, no_stop),
        Action::Status => Ok(status(&manager)),
    }
}

impl Manager {
    fn here() -> anyhow::Result<Manager> {
        let dirs = directories::BaseDirs::new().context("cannot find your home directory")?;
        if cfg!(target_os = "macos") {
            let home = dirs.home_dir().to_path_buf();
            let file = home.join("Library/LaunchAgents/dev.sessctl.daemon.plist");
            Ok(Manager::Launchd { file, home })
        } else if cfg!(all(unix, not(target_os = "macos"))) {
            let file = dirs.config_dir().join("systemd/user/sessctl.service");
            Ok(Manager::Systemd { file })
        } else {
            bail!(
                "sessctl has no service support on this platform; start `sessctl daemon` at login some other way"
            )
        }
    }

    fn file(&self) -> &Path {
        match self {
            Manager::Systemd { file } | Manager::Launchd { file, .. } => file,
        }
    }

    /// Refuses, saying what to do instead, where the manager cannot be talked to.
    fn require(&self, flag: &str) -> anyhow::Result<()> {
        let why = match self {
            Manager::Systemd { .. } => probe::systemd_user_instance().err(),
            Manager::Launchd { .. } => probe::run(Command::new("launchctl").arg("version"))
                .err()
                .map(|why| format!("launchd cannot be asked: {why}")),
        };
        match why {
            None => Ok(()),
            Some(why) => bail!(
                "{why}.\nNothing was changed. Instead: run `sessctl daemon` at login some other way \
                 (e.g. `nohup sessctl daemon >/dev/null 2>&1 &` from ~/.profile), or, on a server, \
                 enable a user instance (`sudo loginctl enable-linger $USER`, then log in again); \
                 `sessctl service {flag}` changes only the file."
            ),
        }
    }
}

fn install(manager: &Manager, no_start: bool) -> anyhow::Result<ExitCode> {
    if !no_start {
        manager.require("install --no-start")?;
    }
    let sessctl = installed_sessctl()?;
    let text = match manager {
        Manager::Systemd { .. } => render::systemd_unit(&sessctl),
        Manager::Launchd { home, .. } => render::launchd_plist(&sessctl, home),
    };
    let file = manager.file();
    if let Some(dir) = file.parent() {
        std::fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    }
    std::fs::write(file, text).with_context(|| format!("cannot write {}", file.display()))?;
    println!(
        "wrote {} (runs {} daemon)",
        file.display(),
        sessctl.display()
    );
    if no_start {
        println!(
            "not started (--no-start); start it with: {}",
            start_hint(manager)
        );
        return Ok(ExitCode::SUCCESS);
    }
    match manager {
        Manager::Systemd { .. } => {
            systemctl(&["daemon-reload"])?;
            systemctl(&["enable", "--now", "sessctl.service"])?;
        }
        Manager::Launchd { file, .. } => {
            let path = file.to_string_lossy();
            // A loaded agent must be booted out first, or bootstrap refuses (error 5).
            let _ = launchctl(&["bootout", &launchd_target()]);
            launchctl(&["bootstrap", &launchd_domain(), &path])?;
        }
    }
    println!(
        "the daemon runs now and starts at every login; check it with `sessctl service status`"
    );
    Ok(ExitCode::SUCCESS)
}

fn uninstall(manager: &Manager, no_stop: bool) -> anyhow::Result<ExitCode> {
    let file = manager.file();
    if !file.exists() {
        println!("nothing to remove: {} does not exist", file.display());
        return Ok(ExitCode::SUCCESS);
    }
    if !no_stop {
        manager.require("uninstall --no-stop")?;
        match manager {
            Manager::Systemd { .. } => systemctl(&["disable", "--now", "sessctl.service"])?,
            Manager::Launchd { .. } => launchctl(&["bootout", &launchd_target()])?,
        }
    }
    std::fs::remove_file(file).with_context(|| format!("cannot remove {}", file.display()))?;
    println!("removed {}", file.display());
    if !no_stop && matches!(manager, Manager::Systemd { .. }) {
        systemctl(&["daemon-reload"])?;
    }
    Ok(ExitCode::SUCCESS)
}

fn status(manager: &Manager) -> ExitCode {
    let file = manager.file();
    if file.exists() {
        println!("service file: {}", file.display());
    } else {
        println!("service file: none ({} does not exist)", file.display());
    }
    let check = crate::doctor::service::check(None);
    println!("service manager: {}", check.detail);
    if let Some(fix) = &check.fix {
        println!("fix: {fix}");
    }
    ExitCode::SUCCESS
}

/// The `sessctl` beside the running one, made absolute: the service must not depend on PATH.
fn installed_sessctl() -> anyhow::Result<PathBuf> {
    let exe = std::env::current_exe().context("cannot find this program's path")?;
    let exe = exe.canonicalize().unwrap_or(exe);
    let dir = exe
        .parent()
        .context("this program's path has no directory")?;
    let daemon = dir.join(super::daemon::DAEMON_BINARY);
    if !daemon.is_file() {
        bail!(
            "{} is missing beside {}: install both with `cargo install --locked --path .`",
            daemon.display(),
            exe.display()
        );
    }
    Ok(dir.join("sessctl"))
}

fn start_hint(manager: &Manager) -> String {
    match manager {
        Manager::Systemd { .. } => {
            "systemctl --user daemon-reload && systemctl --user enable --now sessctl".to_owned()
        }
        Manager::Launchd { file, .. } => {
            format!(
                "launchctl bootstrap {} {}",
                launchd_domain(),
                file.display()
            )
        }
    }
}

fn systemctl(args: &[&str]) -> anyhow::Result<()> {
    report(
        probe::systemctl(args),
        &format!("systemctl --user {}", args.join(" ")),
    )
}

fn launchctl(args: &[&str]) -> anyhow::Result<()> {
    report(
        probe::run(Command::new("launchctl").args(args)),
        &format!("launchctl {}", args.join(" ")),
    )
}

/// Says what ran, or fails with what the manager said.
fn report(out: Result<std::process::Output, String>, what: &str) -> anyhow::Result<()> {
    let out = out
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("`{what}` failed"))?;
    if !out.status.success() {
        bail!(
            "`{what}` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    println!("ran: {what}");
    Ok(())
}

fn launchd_domain() -> String {
    #[cfg(unix)]
    // SAFETY: getuid has no preconditions and cannot fail.
    let uid = unsafe { libc::getuid() };
    #[cfg(not(unix))]
    let uid = 0;
    format!("gui/{uid}")
}

fn launchd_target() -> String {
    format!("{}/dev.sessctl.daemon", launchd_domain())
}
