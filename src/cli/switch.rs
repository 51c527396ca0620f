//! `sessctl run NAME -- CMD [ARGS…]` and `sessctl env NAME`: start Claude Code (or anything)
//! on a Claude Code-backed slot's account by pointing `CLAUDE_CONFIG_DIR` at the slot's
//! config dir. No token is copied anywhere: Claude Code reads its own store there, which
//! the daemon keeps fresh. A slot on the default dir `~/.claude` is Claude Code's default
//! store, which Claude Code uses only with `CLAUDE_CONFIG_DIR` unset (set, even to
//! `~/.claude`, it names another macOS keychain item and another `.claude.json`), so for that
//! slot the variable is removed instead (`crate::claude_code::ConfigDir::of_slot`).

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;

use crate::claude_code::ConfigDir;
use crate::client;
use crate::paths::Paths;
use crate::protocol::{Request, Response};

/// Variables that would make Claude Code ignore `CLAUDE_CONFIG_DIR`'s store: a fixed
/// access token, or another storage dir. `run` removes them.
const OVERRIDING: [&str; 2] = ["CLAUDE_CODE_OAUTH_TOKEN", "CLAUDE_SECURESTORAGE_CONFIG_DIR"];

/// Runs `command` with `CLAUDE_CONFIG_DIR` set to slot `name`'s config dir (replacing this
/// process on Unix).
pub fn run(paths: &Paths, name: &str, command: &[OsString]) -> anyhow::Result<ExitCode> {
    let dir = config_dir_of(paths, name)?;
    let Some((program, args)) = command.split_first() else {
        anyhow::bail!("no command given: sessctl run {name} -- CMD [ARGS...]");
    };
    let mut cmd = std::process::Command::new(program);
    cmd.args(args);
    if ConfigDir::of_slot(&dir).is_default() {
        cmd.env_remove("CLAUDE_CONFIG_DIR");
    } else {
        cmd.env("CLAUDE_CONFIG_DIR", &dir);
    }
    for var in OVERRIDING {
        cmd.env_remove(var);
    }
    start(cmd).with_context(|| format!("cannot run {}", program.to_string_lossy()))
}

/// Replaces this process with `cmd` (Unix).
#[cfg(unix)]
fn start(mut cmd: std::process::Command) -> std::io::Result<ExitCode> {
    use std::os::unix::process::CommandExt;
    Err(cmd.exec())
}

/// Runs `cmd` and exits with its code (where a process cannot be replaced).
#[cfg(not(unix))]
fn start(mut cmd: std::process::Command) -> std::io::Result<ExitCode> {
    let status = cmd.status()?;
    let code = status
        .code()
        .and_then(|c| u8::try_from(c).ok())
        .unwrap_or(1);
    Ok(ExitCode::from(code))
}

/// Prints the shell line that points Claude Code at slot `name`'s config dir.
pub fn env(paths: &Paths, name: &str) -> anyhow::Result<ExitCode> {
    let dir = config_dir_of(paths, name)?;
    println!("{}", env_line(&ConfigDir::of_slot(&dir))?);
    Ok(ExitCode::SUCCESS)
}

/// `export CLAUDE_CONFIG_DIR='DIR'`, or `unset CLAUDE_CONFIG_DIR` for the default store.
fn env_line(store: &ConfigDir) -> anyhow::Result<String> {
    if store.is_default() {
        return Ok("unset CLAUDE_CONFIG_DIR".to_owned());
    }
    let dir = (store.dir().to_str())
        .context("the config dir is not UTF-8; set CLAUDE_CONFIG_DIR by hand")?;
    Ok(format!("export CLAUDE_CONFIG_DIR={}", shell_quote(dir)))
}

/// Slot `name`'s Claude Code config dir, as the daemon's `status` reports it.
fn config_dir_of(paths: &Paths, name: &str) -> anyhow::Result<PathBuf> {
    let reply = client::call(&paths.socket, Request::Status)
        .context("cannot ask the daemon where the slot's credentials live")?;
    let Response::Status(status) = reply else {
        anyhow::bail!("unexpected reply to status: {reply:?}");
    };
    let slot = status
        .slots
        .into_iter()
        .find(|s| s.name == name)
        .with_context(|| format!("no slot named {name:?}"))?;
    slot.claude_code_dir.with_context(|| {
        format!(
            "slot {name} is not a Claude Code slot (its credentials are in sessctl's store); adopt a Claude Code config dir with: sessctl adopt NAME --claude-code DIR"
        )
    })
}

/// `value` in single quotes for a POSIX shell.
fn shell_quote(value: &str) -> String {
    format!("'{}'", value.replace('\'', r"'\''"))
}

#[cfg(test)]
mod tests {
    #[test]
    fn quotes_survive_a_shell() {
        assert_eq!(
            super::shell_quote("/home/a b/.claude"),
            "'/home/a b/.claude'"
        );
        assert_eq!(super::shell_quote("it's"), r"'it'\''s'");
    }

    #[test]
    fn the_default_dir_is_reached_by_unsetting_the_variable() {
        use std::path::Path;
        let home = Path::new("/home/u");
        let line = |dir: &str| {
            let store = super::ConfigDir::of_slot_in(Path::new(dir), home);
            super::env_line(&store).unwrap()
        };
        assert_eq!(line("/home/u/.claude"), "unset CLAUDE_CONFIG_DIR");
        assert_eq!(
            line("/home/u/.claude-work"),
            "export CLAUDE_CONFIG_DIR='/home/u/.claude-work'"
        );
    }
}
