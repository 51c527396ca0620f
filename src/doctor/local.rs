//! Doctor's local checks: does the config load, does the daemon answer (and with which
//! protocol), and which providers the slots use.

use std::collections::BTreeSet;

use crate::cli::fixes;
use crate::client::{self, ClientError};
use crate::config::{Config, ConfigError, CredentialStoreKind};
use crate::paths::Paths;
use crate::protocol::{PROTOCOL_VERSION, Pong, Request, Response, StatusReport};
use crate::slot_reason::SlotReason;
use crate::state::StateFile;

use super::Check;

/// The config check, and the config when it loads.
pub fn config(paths: &Paths) -> (Check, Option<Config>) {
    let path = &paths.config_file;
    match Config::load(path, paths.config_explicit) {
        Ok(config) if path.exists() => (
            Check::pass("config", format!("{} loads", path.display())),
            Some(config),
        ),
        Ok(config) => (
            Check::pass(
                "config",
                format!("no file at {}: built-in defaults", path.display()),
            ),
            Some(config),
        ),
        Err(error @ ConfigError::Invalid { .. }) => (
            Check::fail(
                "config",
                error.to_string(),
                "correct that line (config/config.yaml in the sources documents every key); the daemon refuses to start until then",
            ),
            None,
        ),
        Err(error) => (
            Check::fail(
                "config",
                error.to_string(),
                "create the file or point --config / SESSCTL_CONFIG at one that exists",
            ),
            None,
        ),
    }
}

/// What doctor learned from the daemon.
pub struct Daemon {
    pub check: Check,
    /// The daemon's pid, when it answered.
    pub pid: Option<u32>,
    /// Its `status`, for the slots it holds.
    pub status: Option<StatusReport>,
}

/// Pings the daemon and, when it answers, asks for its status.
pub fn daemon(paths: &Paths) -> Daemon {
    let socket = paths.socket.display();
    let pong = match client::call(&paths.socket, Request::Ping) {
        Ok(Response::Pong(pong)) => pong,
        Ok(other) => {
            return not_answering(Check::fail(
                "daemon",
                format!("unexpected reply to ping on {socket}: {other:?}"),
                fixes::RESTART_DAEMON,
            ));
        }
        Err(ClientError::NotRunning { .. }) => {
            return not_answering(Check::fail(
                "daemon",
                format!("not running (no answer on {socket})"),
                fixes::START_DAEMON,
            ));
        }
        Err(error @ ClientError::Io { .. }) => {
            return not_answering(Check::fail(
                "daemon",
                error.to_string(),
                format!(
                    "check that {socket} and its directory are yours; if the daemon is stuck, stop it (kill the pid in {}) and start it again",
                    paths.lock_file.display()
                ),
            ));
        }
        Err(error) => {
            return not_answering(Check::fail(
                "daemon",
                error.to_string(),
                fixes::RESTART_DAEMON,
            ));
        }
    };
    let status = match client::call(&paths.socket, Request::Status) {
        Ok(Response::Status(report)) => Some(report),
        _ => None,
    };
    Daemon {
        check: judge_daemon(&pong, status.as_ref(), paths),
        pid: Some(pong.pid),
        status,
    }
}

/// A daemon that answers: passes unless it runs another version or reports that it cannot
/// save its state or reach the credential store (it keeps running, but not safely).
fn judge_daemon(pong: &Pong, status: Option<&StatusReport>, paths: &Paths) -> Check {
    let this = env!("CARGO_PKG_VERSION");
    if pong.version != this {
        return Check::warn(
            "daemon",
            format!(
                "the daemon (pid {}) runs sessctl {}, this is {this}; both speak protocol {PROTOCOL_VERSION}",
                pong.pid, pong.version
            ),
            fixes::RESTART_DAEMON,
        );
    }
    let answers = format!(
        "sessctl {} answers on {} (pid {}, protocol {})",
        pong.version,
        paths.socket.display(),
        pong.pid,
        pong.protocol
    );
    if let Some(error) = status.and_then(|s| s.state_file_error.as_ref()) {
        return Check::warn(
            "daemon",
            format!("{answers}, but cannot save its state file: {error}"),
            fixes::state_file(&paths.state_file),
        );
    }
    if let Some((problems, fixes)) = status.and_then(disagreements) {
        return Check::warn("daemon", format!("{answers}, but {problems}"), fixes);
    }
    if let Some(error) = status.and_then(|s| s.credential_store_error.as_ref()) {
        let fix = match status.map(|s| s.credential_store) {
            Some(CredentialStoreKind::File) => fixes::credentials_file(&paths.credentials_file),
            _ => fixes::keychain_unreachable().to_owned(),
        };
        return Check::warn(
            "daemon",
            format!("{answers}, but holds tokens in memory: {error}"),
            fix,
        );
    }
    if let Some(pending) = status.map(|s| &s.pending_revocations)
        && !pending.is_empty()
    {
        return Check::warn(
            "daemon",
            format!(
                "{answers}, but {} refresh token(s) still wait to be revoked: {}",
                pending.len(),
                crate::cli::fixes::describe_revocations(pending)
            ),
            crate::cli::fixes::PENDING_REVOCATIONS,
        );
    }
    Check::pass("daemon", answers)
}

/// What the daemon could not reconcile between the credential store and its state by
/// itself (items matching no slot, slots whose item is an older copy), and the commands
/// that fix it; `None` when there is nothing.
fn disagreements(status: &StatusReport) -> Option<(String, String)> {
    let stale = status
        .slots
        .iter()
        .filter(|slot| slot.reason == Some(SlotReason::StaleCredentials));
    let mut problems: Vec<String> = Vec::new();
    let mut fixes: Vec<String> = Vec::new();
    for slot in stale {
        problems.push(format!(
            "slot {} has an older copy of its credential item (not presented)",
            slot.name
        ));
        fixes.push(format!(
            "sessctl login {} --provider {}",
            slot.name, slot.provider
        ));
    }
    for item in &status.unplaced_credentials {
        problems.push(item.problem.clone());
        fixes.push(item.fix.clone());
    }
    (!problems.is_empty()).then(|| (problems.join("; "), fixes.join("; ")))
}

fn not_answering(check: Check) -> Daemon {
    Daemon {
        check,
        pid: None,
        status: None,
    }
}

/// The providers the slots use: from the daemon's status when it answered, else from the
/// state file. `Err` says why neither could be read.
pub fn providers_in_use(
    paths: &Paths,
    status: Option<&StatusReport>,
) -> Result<BTreeSet<String>, String> {
    if let Some(status) = status {
        return Ok(status.slots.iter().map(|s| s.provider.clone()).collect());
    }
    StateFile::load(&paths.state_file)
        .map(|state| state.slots.into_values().map(|s| s.provider).collect())
        .map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::super::Outcome;
    use super::*;

    fn paths(dir: &std::path::Path, config: &str, explicit: bool) -> Paths {
        Paths {
            config_file: dir.join(config),
            config_explicit: explicit,
            state_dir: dir.to_owned(),
            state_file: dir.join("state.json"),
            credentials_file: dir.join("credentials.json"),
            log_dir: dir.join("logs"),
            cache_dir: dir.to_owned(),
            quota_cache: dir.join("quota.json"),
            runtime_dir: dir.to_owned(),
            socket: dir.join("sessctl.sock"),
            lock_file: dir.join("daemon.lock"),
            socket_lock: dir.join("sessctl.lock"),
        }
    }

    fn temp_dir(tag: &str) -> PathBuf {
        crate::test_dirs::fresh(&format!("doctor-local-{tag}"))
    }

    #[test]
    fn the_config_check_passes_defaults_and_fails_with_file_and_line() {
        let dir = temp_dir("config");
        let (missing, loaded) = config(&paths(&dir, "config.yaml", false));
        assert_eq!(missing.outcome, Outcome::Pass);
        assert!(missing.detail.contains("built-in defaults"), "{missing:?}");
        assert!(loaded.is_some());

        let (explicit, _) = config(&paths(&dir, "config.yaml", true));
        assert_eq!(explicit.outcome, Outcome::Fail, "{explicit:?}");

        std::fs::write(
            dir.join("bad.yaml"),
            "stale_after: 15m\nquota_interval: often\n",
        )
        .unwrap();
        let (bad, loaded) = config(&paths(&dir, "bad.yaml", false));
        assert_eq!(bad.outcome, Outcome::Fail);
        assert!(bad.detail.contains("bad.yaml:2: quota_interval"), "{bad:?}");
        assert!(loaded.is_none());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn providers_come_from_the_state_file_without_a_daemon() {
        let dir = temp_dir("state");
        let p = paths(&dir, "config.yaml", false);
        assert_eq!(providers_in_use(&p, None), Ok(BTreeSet::new()));
        std::fs::write(&p.state_file, "{not json").unwrap();
        assert!(providers_in_use(&p, None).is_err());
        std::fs::remove_dir_all(dir).unwrap();
    }

    #[test]
    fn a_daemon_that_cannot_save_its_state_is_a_warning_with_the_fix() {
        let dir = temp_dir("judge");
        let p = paths(&dir, "config.yaml", false);
        let pong = Pong {
            version: env!("CARGO_PKG_VERSION").to_owned(),
            protocol: PROTOCOL_VERSION,
            pid: 7,
        };
        assert_eq!(judge_daemon(&pong, None, &p).outcome, Outcome::Pass);
        let old = Pong {
            version: "0.0.1".to_owned(),
            ..pong.clone()
        };
        assert_eq!(judge_daemon(&old, None, &p).outcome, Outcome::Warn);
        let status = StatusReport {
            version: pong.version.clone(),
            pid: 7,
            all_inactive: false,
            credential_store: CredentialStoreKind::Keychain,
            credential_store_error: None,
            state_file_error: Some("state file changed behind the daemon".to_owned()),
            pending_revocations: Vec::new(),
            cache: crate::protocol::CacheStatus {
                path: dir.join("quota.json"),
                updated_at: None,
                stale: false,
                error: None,
            },
            slots: Vec::new(),
            unplaced_credentials: Vec::new(),
            moving: None,
        };
        let check = judge_daemon(&pong, Some(&status), &p);
        assert_eq!(check.outcome, Outcome::Warn);
        assert!(
            check.detail.contains("cannot save its state file"),
            "{check:?}"
        );
        assert!(check.fix.unwrap().contains("state.json"));
        std::fs::remove_dir_all(dir).unwrap();
    }
}
