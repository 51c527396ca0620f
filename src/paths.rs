//! Every path sessctl uses, in one place. Linux follows XDG (`$XDG_CONFIG_HOME`,
//! `$XDG_STATE_HOME`, `$XDG_CACHE_HOME`, `$XDG_RUNTIME_DIR`); macOS uses the platform
//! directories. Logs: `$XDG_STATE_HOME/sessctl/logs/` on Linux, `~/Library/Logs/sessctl/`
//! on macOS (where Console.app looks). Tests point HOME and the XDG variables at a temporary directory.
//!
//! This module only computes paths: it never creates, opens or checks anything on disk
//! (creating directories with the right modes is the daemon's job).
//!
//! What `directories` 6 does with the environment on Linux (read from its source): an XDG
//! variable is used only when it holds an absolute path; an empty or relative value is
//! ignored and the XDG default under the home directory applies. The home directory is
//! `$HOME` when non-empty, else the passwd entry of the current user.

use std::path::PathBuf;

use directories::ProjectDirs;

/// The application name: the directory under each base directory.
const APP: &str = "sessctl";

/// Resolved locations of sessctl's files.
#[derive(Debug, Clone)]
pub struct Paths {
    /// The config file (it may not exist: defaults apply).
    pub config_file: PathBuf,
    /// True when the config path was given explicitly (`--config`/`SESSCTL_CONFIG`): then a
    /// missing file is an error, not "use defaults".
    pub config_explicit: bool,
    /// Directory of the state file, logs and the file credential store.
    pub state_dir: PathBuf,
    /// The slot registry and non-secret per-slot state.
    pub state_file: PathBuf,
    /// The opt-in plaintext credential store (`credential_store: file`).
    pub credentials_file: PathBuf,
    /// Rotating daemon logs (`sessctl logs` reads them).
    pub log_dir: PathBuf,
    /// Cache directory (quota cache).
    pub cache_dir: PathBuf,
    /// The last quota readings per slot, so `status` has numbers right after a restart.
    pub quota_cache: PathBuf,
    /// 0700 directory holding the socket and its lock.
    pub runtime_dir: PathBuf,
    /// The daemon's Unix socket.
    pub socket: PathBuf,
    /// The single-instance lock file (holds the daemon's pid). It lives beside the state
    /// file because the state (and the keychain items it names) is what two daemons would
    /// fight over: whatever `XDG_RUNTIME_DIR` a second daemon sees, it meets this lock.
    pub lock_file: PathBuf,
    /// The socket's lock, beside the socket: two daemons over different state directories
    /// that share a runtime directory would otherwise take each other's socket.
    pub socket_lock: PathBuf,
}

/// The four base directories everything else is derived from.
#[allow(clippy::struct_field_names)] // they are all directories; the suffix says so
struct BaseLocations {
    config_dir: PathBuf,
    state_dir: PathBuf,
    cache_dir: PathBuf,
    /// `None` when the platform has no per-user runtime directory (`XDG_RUNTIME_DIR` unset,
    /// or macOS): then `<state_dir>/run` is used.
    runtime_dir: Option<PathBuf>,
    /// `None` where logs belong under the state dir (`<state_dir>/logs`, XDG).
    log_dir: Option<PathBuf>,
}

impl Paths {
    /// Resolves all paths; `config_override` comes from `--config` or `SESSCTL_CONFIG`.
    /// Nothing is created or checked on disk.
    ///
    /// # Errors
    /// [`crate::error::Error::NoHome`] when no home directory can be found (`$HOME` empty
    /// or unset and no passwd entry).
    pub fn resolve(config_override: Option<PathBuf>) -> Result<Paths, crate::error::Error> {
        let dirs = ProjectDirs::from("", "", APP).ok_or(crate::error::Error::NoHome)?;
        Ok(Paths::from_base(platform_locations(&dirs), config_override))
    }

    fn from_base(base: BaseLocations, config_override: Option<PathBuf>) -> Paths {
        let runtime_dir = base
            .runtime_dir
            .unwrap_or_else(|| base.state_dir.join("run"));
        let config_explicit = config_override.is_some();
        let config_file = config_override.unwrap_or_else(|| base.config_dir.join("config.yaml"));
        Paths {
            config_file,
            config_explicit,
            state_file: base.state_dir.join("state.json"),
            credentials_file: base.state_dir.join("credentials.json"),
            log_dir: base.log_dir.unwrap_or_else(|| base.state_dir.join("logs")),
            quota_cache: base.cache_dir.join("quota.json"),
            socket: runtime_dir.join("sessctl.sock"),
            lock_file: base.state_dir.join("daemon.lock"),
            socket_lock: runtime_dir.join("sessctl.lock"),
            state_dir: base.state_dir,
            cache_dir: base.cache_dir,
            runtime_dir,
        }
    }
}

/// Linux (and other XDG systems): `directories` already appends `sessctl` to each XDG
/// directory and gives a state dir; the runtime dir exists only with `$XDG_RUNTIME_DIR`.
#[cfg(not(target_os = "macos"))]
fn platform_locations(dirs: &ProjectDirs) -> BaseLocations {
    BaseLocations {
        config_dir: dirs.config_dir().to_path_buf(),
        state_dir: dirs
            .state_dir()
            .unwrap_or_else(|| dirs.data_local_dir())
            .to_path_buf(),
        cache_dir: dirs.cache_dir().to_path_buf(),
        runtime_dir: dirs.runtime_dir().map(std::path::Path::to_path_buf),
        log_dir: None,
    }
}

/// macOS: `~/Library/Application Support/sessctl` for config and state (the platform has
/// no separate state dir), `~/Library/Caches/sessctl`, `~/Library/Logs/sessctl`, and no
/// runtime dir.
#[cfg(target_os = "macos")]
fn platform_locations(dirs: &ProjectDirs) -> BaseLocations {
    BaseLocations {
        config_dir: dirs.config_dir().to_path_buf(),
        state_dir: dirs.data_local_dir().to_path_buf(),
        cache_dir: dirs.cache_dir().to_path_buf(),
        runtime_dir: None,
        log_dir: directories::BaseDirs::new()
            .map(|base| base.home_dir().join("Library/Logs").join(APP)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn base(runtime: Option<&str>) -> BaseLocations {
        BaseLocations {
            config_dir: PathBuf::from("/c/sessctl"),
            state_dir: PathBuf::from("/s/sessctl"),
            cache_dir: PathBuf::from("/k/sessctl"),
            runtime_dir: runtime.map(PathBuf::from),
            log_dir: None,
        }
    }

    #[test]
    fn every_file_lives_under_its_base_directory() {
        let p = Paths::from_base(base(Some("/r/sessctl")), None);
        assert_eq!(p.config_file, Path::new("/c/sessctl/config.yaml"));
        assert!(!p.config_explicit);
        assert_eq!(p.state_dir, Path::new("/s/sessctl"));
        assert_eq!(p.state_file, Path::new("/s/sessctl/state.json"));
        assert_eq!(p.credentials_file, Path::new("/s/sessctl/credentials.json"));
        assert_eq!(p.log_dir, Path::new("/s/sessctl/logs"));
        assert_eq!(p.cache_dir, Path::new("/k/sessctl"));
        assert_eq!(p.quota_cache, Path::new("/k/sessctl/quota.json"));
        assert_eq!(p.runtime_dir, Path::new("/r/sessctl"));
        assert_eq!(p.socket, Path::new("/r/sessctl/sessctl.sock"));
        assert_eq!(p.lock_file, Path::new("/s/sessctl/daemon.lock"));
        assert_eq!(p.socket_lock, Path::new("/r/sessctl/sessctl.lock"));
    }

    #[test]
    fn without_a_runtime_dir_the_socket_goes_under_state_run() {
        let p = Paths::from_base(base(None), None);
        assert_eq!(p.runtime_dir, Path::new("/s/sessctl/run"));
        assert_eq!(p.socket, Path::new("/s/sessctl/run/sessctl.sock"));
        assert_eq!(p.lock_file, Path::new("/s/sessctl/daemon.lock"));
        assert_eq!(p.socket_lock, Path::new("/s/sessctl/run/sessctl.lock"));
    }

    #[test]
    fn a_platform_log_dir_replaces_state_logs() {
        let p = Paths::from_base(
            BaseLocations {
                log_dir: Some(PathBuf::from("/h/Library/Logs/sessctl")),
                ..base(None)
            },
            None,
        );
        assert_eq!(p.log_dir, Path::new("/h/Library/Logs/sessctl"));
    }

    #[test]
    fn an_explicit_config_path_is_used_as_is_and_marked_explicit() {
        let p = Paths::from_base(base(None), Some(PathBuf::from("rel/my.yaml")));
        assert_eq!(p.config_file, Path::new("rel/my.yaml"));
        assert!(p.config_explicit);
    }

    /// The only test that touches the process environment: every env-dependent assertion
    /// lives here so no two tests race on the variables.
    #[cfg(target_os = "linux")]
    #[test]
    fn resolve_follows_xdg_variables_and_their_defaults() {
        let saved: Vec<(&str, Option<std::ffi::OsString>)> = [
            "HOME",
            "XDG_CONFIG_HOME",
            "XDG_STATE_HOME",
            "XDG_CACHE_HOME",
            "XDG_RUNTIME_DIR",
        ]
        .into_iter()
        .map(|k| (k, std::env::var_os(k)))
        .collect();
        let set = |k: &str, v: Option<&std::ffi::OsStr>| {
            // SAFETY: this is the only test in the crate that reads or writes these
            // variables, and it restores them before returning.
            unsafe {
                match v {
                    Some(v) => std::env::set_var(k, v),
                    None => std::env::remove_var(k),
                }
            }
        };

        // Every variable set.
        set("HOME", Some("/home/t".as_ref()));
        set("XDG_CONFIG_HOME", Some("/x/config".as_ref()));
        set("XDG_STATE_HOME", Some("/x/state".as_ref()));
        set("XDG_CACHE_HOME", Some("/x/cache".as_ref()));
        set("XDG_RUNTIME_DIR", Some("/x/run".as_ref()));
        let p = Paths::resolve(None).unwrap();
        assert_eq!(p.config_file, Path::new("/x/config/sessctl/config.yaml"));
        assert_eq!(p.state_file, Path::new("/x/state/sessctl/state.json"));
        assert_eq!(p.log_dir, Path::new("/x/state/sessctl/logs"));
        assert_eq!(p.quota_cache, Path::new("/x/cache/sessctl/quota.json"));
        assert_eq!(p.socket, Path::new("/x/run/sessctl/sessctl.sock"));

        // Unset: the XDG defaults under HOME, runtime under the state dir.
        for k in [
            "XDG_CONFIG_HOME",
            "XDG_STATE_HOME",
            "XDG_CACHE_HOME",
            "XDG_RUNTIME_DIR",
        ] {
            set(k, None);
        }
        let p = Paths::resolve(Some(PathBuf::from("/etc/s.yaml"))).unwrap();
        assert_eq!(p.config_file, Path::new("/etc/s.yaml"));
        assert!(p.config_explicit);
        assert_eq!(p.state_dir, Path::new("/home/t/.local/state/sessctl"));
        assert_eq!(p.cache_dir, Path::new("/home/t/.cache/sessctl"));
        assert_eq!(
            p.lock_file,
            Path::new("/home/t/.local/state/sessctl/daemon.lock")
        );
        assert_eq!(
            p.socket_lock,
            Path::new("/home/t/.local/state/sessctl/run/sessctl.lock")
        );
        let p = Paths::resolve(None).unwrap();
        assert_eq!(
            p.config_file,
            Path::new("/home/t/.config/sessctl/config.yaml")
        );

        // A relative XDG value is ignored, as the XDG spec requires.
        set("XDG_STATE_HOME", Some("relative/state".as_ref()));
        set("XDG_RUNTIME_DIR", Some("".as_ref()));
        let p = Paths::resolve(None).unwrap();
        assert_eq!(p.state_dir, Path::new("/home/t/.local/state/sessctl"));
        assert_eq!(p.runtime_dir, Path::new("/home/t/.local/state/sessctl/run"));

        for (k, v) in saved {
            set(k, v.as_deref());
        }
    }
}
