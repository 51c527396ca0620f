//! Where Claude Code keeps a config dir's credentials, resolved exactly as Claude Code 2.1.332
//! resolves them from its environment (read from its published bundle):
//!
//! - the storage dir is `$CLAUDE_SECURESTORAGE_CONFIG_DIR` when that variable is set (an empty
//!   value meaning `~/.claude`), else `$CLAUDE_CONFIG_DIR`, else `~/.claude`;
//! - Linux: the file `<storage dir>/.credentials.json`;
//! - macOS: the keychain generic password with service `Claude Code-credentials`, suffixed with
//!   `-` and the first 8 hex digits of the sha256 of the variable's value *as written* (not
//!   canonicalised: `~/.claude-work` and `~/.claude-work/` are different items) when
//!   the variable is set and non-empty; account `$USER` (or `claude-code-user` when that is
//!   not a plain name).
//!
//! A slot records only its config dir ([`ConfigDir::of_slot`]): the default dir `~/.claude` is
//! Claude Code's default store (the plain service name, no `CLAUDE_CONFIG_DIR`), the one a
//! plain `claude` uses, however the dir was given to `sessctl adopt`; any other dir is the
//! store of `CLAUDE_CONFIG_DIR=<dir>`. Claude Code would hash an explicitly set
//! `CLAUDE_CONFIG_DIR=~/.claude` into another keychain item, so `sessctl run` and `env` start
//! Claude Code on the default dir without the variable, and the two always agree.
//!
//! Pure naming only: nothing here touches the file system or the keychain.

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};

/// Claude Code's default config dir, under the home directory.
pub const DEFAULT_DIR_NAME: &str = ".claude";
/// The credentials file inside the storage dir (Linux and other non-macOS platforms).
pub const CREDENTIALS_FILE: &str = ".credentials.json";
/// The keychain service of the default config dir (Claude Code's production build).
pub const KEYCHAIN_SERVICE_BASE: &str = "Claude Code-credentials";
/// The account Claude Code falls back to when `$USER` is unset or not a plain name.
pub const FALLBACK_KEYCHAIN_ACCOUNT: &str = "claude-code-user";
/// How many hex digits of the sha256 Claude Code appends to the service name.
const SERVICE_HASH_HEX_DIGITS: usize = 8;

/// One Claude Code credential store, identified the way Claude Code identifies it: by the
/// storage dir and the environment value (if any) that chose it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigDir {
    dir: PathBuf,
    /// The `CLAUDE_CONFIG_DIR` (or `CLAUDE_SECURESTORAGE_CONFIG_DIR`) value Claude Code runs
    /// with for this store; `None` for the default `~/.claude`.
    env_value: Option<String>,
}

impl ConfigDir {
    /// The default store: `~/.claude`, as Claude Code sees it with neither variable set.
    pub fn default_in(home: &Path) -> Self {
        ConfigDir {
            dir: home.join(DEFAULT_DIR_NAME),
            env_value: None,
        }
    }

    /// The store Claude Code uses when started with `CLAUDE_CONFIG_DIR=<dir>`. `dir` is
    /// kept exactly as given: it is what the keychain service name is hashed from, so pass the
    /// same string the user's `CLAUDE_CONFIG_DIR` holds (an absolute path, as a shell expands
    /// `~/.claude-work`).
    pub fn explicit(dir: impl Into<PathBuf>) -> Self {
        let dir = dir.into();
        let env_value = Some(dir.to_string_lossy().into_owned());
        ConfigDir { dir, env_value }
    }

    /// The store of a slot whose config dir is `dir` (absolute, as `sessctl adopt` records
    /// it), with `home` the home directory: the default store when `dir` is `<home>/.claude`
    /// (spelled with or without a trailing slash), else the store of
    /// `CLAUDE_CONFIG_DIR=<dir>`. See the module header for why.
    pub fn of_slot_in(dir: &Path, home: &Path) -> Self {
        if dir
            .components()
            .eq(home.join(DEFAULT_DIR_NAME).components())
        {
            return ConfigDir {
                dir: dir.to_path_buf(),
                env_value: None,
            };
        }
        Self::explicit(dir)
    }

    /// [`ConfigDir::of_slot_in`] with this user's home directory (as `sessctl adopt` finds
    /// it); without one, the store of `CLAUDE_CONFIG_DIR=<dir>`.
    pub fn of_slot(dir: &Path) -> Self {
        match directories::BaseDirs::new() {
            Some(base) => Self::of_slot_in(dir, base.home_dir()),
            None => Self::explicit(dir),
        }
    }

    /// Whether this is Claude Code's default store: Claude Code uses it when neither
    /// `CLAUDE_CONFIG_DIR` nor `CLAUDE_SECURESTORAGE_CONFIG_DIR` is set.
    pub fn is_default(&self) -> bool {
        self.env_value.is_none()
    }

    /// The store a Claude Code started in this environment would use. `var` reads one
    /// environment variable (`std::env::var` in production, a map in tests). An empty
    /// `CLAUDE_CONFIG_DIR` is treated as unset (Claude Code would use the current directory,
    /// which is never what a user means).
    pub fn from_env(home: &Path, var: impl Fn(&str) -> Option<String>) -> Self {
        if let Some(value) = var("CLAUDE_SECURESTORAGE_CONFIG_DIR") {
            if value.is_empty() {
                return Self::default_in(home);
            }
            return Self::explicit(value);
        }
        match var("CLAUDE_CONFIG_DIR") {
            Some(value) if !value.is_empty() => Self::explicit(value),
            _ => Self::default_in(home),
        }
    }

    /// The storage dir: it holds the credentials file and every lock directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The environment value that selects this store, `None` for the default one.
    pub fn env_value(&self) -> Option<&str> {
        self.env_value.as_deref()
    }

    /// `<dir>/.credentials.json`.
    pub fn credentials_path(&self) -> PathBuf {
        self.dir.join(CREDENTIALS_FILE)
    }

    /// The macOS keychain service holding this store's credentials.
    pub fn keychain_service(&self) -> String {
        keychain_service_name(self.env_value.as_deref())
    }
}

/// The keychain service name Claude Code uses for a config-dir variable value (`None` or
/// empty: the default dir). Claude Code NFC-normalises the value first; sessctl hashes it
/// as given, which is the same for every path that is already NFC (all ASCII paths).
pub fn keychain_service_name(env_value: Option<&str>) -> String {
    match env_value {
        Some(value) if !value.is_empty() => {
            let digest = Sha256::digest(value.as_bytes());
            let hex: String = digest.iter().fold(String::new(), |mut hex, byte| {
                let _ = write!(hex, "{byte:02x}");
                hex
            });
            format!(
                "{KEYCHAIN_SERVICE_BASE}-{}",
                &hex[..SERVICE_HASH_HEX_DIGITS]
            )
        }
        _ => KEYCHAIN_SERVICE_BASE.to_owned(),
    }
}

/// The keychain account Claude Code uses: `$USER` when it is a plain name
/// (`[A-Za-z0-9._-]+`), else `claude-code-user`.
pub fn keychain_account(user: Option<&str>) -> String {
    match user {
        Some(name)
            if !name.is_empty()
                && name
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-')) =>
        {
            name.to_owned()
        }
        _ => FALLBACK_KEYCHAIN_ACCOUNT.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    fn env(pairs: &[(&str, &str)]) -> impl Fn(&str) -> Option<String> {
        let map: HashMap<String, String> = pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect();
        move |name| map.get(name).cloned()
    }

    #[test]
    fn default_dir_uses_the_plain_service_name() {
        let dir = ConfigDir::from_env(Path::new("/home/u"), env(&[]));
        assert_eq!(dir.dir(), Path::new("/home/u/.claude"));
        assert_eq!(
            dir.credentials_path(),
            Path::new("/home/u/.claude/.credentials.json")
        );
        assert_eq!(dir.keychain_service(), "Claude Code-credentials");
    }

    #[test]
    fn a_config_dir_appends_eight_hex_digits_of_the_sha256_of_the_value_as_written() {
        // sha256("/home/u/.claude-work") = 9fa37e90…, computed independently with
        // `printf %s /home/u/.claude-work | sha256sum`.
        let dir = ConfigDir::from_env(
            Path::new("/home/u"),
            env(&[("CLAUDE_CONFIG_DIR", "/home/u/.claude-work")]),
        );
        assert_eq!(dir.dir(), Path::new("/home/u/.claude-work"));
        assert_eq!(dir.keychain_service(), "Claude Code-credentials-9fa37e90");
        // A trailing slash is a different value, hence a different item (as in Claude Code).
        assert_ne!(
            keychain_service_name(Some("/home/u/.claude-work/")),
            dir.keychain_service()
        );
    }

    #[test]
    fn securestorage_dir_wins_over_config_dir_and_empty_means_the_default() {
        let both = env(&[
            ("CLAUDE_SECURESTORAGE_CONFIG_DIR", "/s"),
            ("CLAUDE_CONFIG_DIR", "/c"),
        ]);
        let dir = ConfigDir::from_env(Path::new("/home/u"), both);
        assert_eq!(dir.dir(), Path::new("/s"));
        assert_eq!(dir.keychain_service(), keychain_service_name(Some("/s")));

        let empty = env(&[
            ("CLAUDE_SECURESTORAGE_CONFIG_DIR", ""),
            ("CLAUDE_CONFIG_DIR", "/c"),
        ]);
        let dir = ConfigDir::from_env(Path::new("/home/u"), empty);
        assert_eq!(dir, ConfigDir::default_in(Path::new("/home/u")));
        assert_eq!(dir.keychain_service(), "Claude Code-credentials");
    }

    #[test]
    fn a_slot_on_the_default_dir_is_the_default_store_with_the_plain_service_name() {
        let home = Path::new("/Users/u");
        for given in ["/Users/u/.claude", "/Users/u/.claude/"] {
            let store = ConfigDir::of_slot_in(Path::new(given), home);
            assert!(store.is_default(), "{given}");
            assert_eq!(
                store.keychain_service(),
                "Claude Code-credentials",
                "{given}"
            );
            assert_eq!(store.env_value(), None);
            assert_eq!(
                store.credentials_path(),
                Path::new("/Users/u/.claude/.credentials.json")
            );
        }
        // The same store a Claude Code started with neither variable set uses.
        let plain_claude = ConfigDir::from_env(home, env(&[]));
        assert_eq!(
            ConfigDir::of_slot_in(Path::new("/Users/u/.claude"), home),
            plain_claude
        );
    }

    #[test]
    fn a_slot_on_any_other_dir_hashes_it_as_claude_code_does_with_the_variable_set() {
        let home = Path::new("/home/u");
        let work = ConfigDir::of_slot_in(Path::new("/home/u/.claude-work"), home);
        assert!(!work.is_default());
        assert_eq!(work.keychain_service(), "Claude Code-credentials-9fa37e90");
        let with_variable =
            ConfigDir::from_env(home, env(&[("CLAUDE_CONFIG_DIR", "/home/u/.claude-work")]));
        assert_eq!(work, with_variable);
        // Another user's default dir, and a dir inside the default one, are not the default.
        for other in ["/home/v/.claude", "/home/u/.claude/x", "/home/u/claude"] {
            let store = ConfigDir::of_slot_in(Path::new(other), home);
            assert!(!store.is_default(), "{other}");
            assert_eq!(store.keychain_service(), keychain_service_name(Some(other)));
        }
    }

    #[test]
    fn empty_config_dir_is_the_default() {
        let dir = ConfigDir::from_env(Path::new("/h"), env(&[("CLAUDE_CONFIG_DIR", "")]));
        assert_eq!(dir, ConfigDir::default_in(Path::new("/h")));
    }

    #[test]
    fn account_is_user_when_plain_else_the_fallback() {
        assert_eq!(keychain_account(Some("alice.b-c_1")), "alice.b-c_1");
        assert_eq!(keychain_account(Some("al ice")), "claude-code-user");
        assert_eq!(keychain_account(Some("")), "claude-code-user");
        assert_eq!(keychain_account(None), "claude-code-user");
    }
}
