//! Doctor's `alert_command` check: when the config names a program to run for each alert,
//! can it be found and executed? A missing program is a warning: sessctl itself works, but
//! a headless machine would hear nothing of a dead account.

use std::path::{Path, PathBuf};

use crate::config::AlertCommand;

use super::Check;

const CHECK: &str = "alert command";

/// The check; `None` when no `alert_command` is configured (then there is nothing to find).
/// `path` is the `PATH` a bare program name is looked up in (the daemon's own, which may
/// differ under a service manager: the fix says so).
pub fn check(command: Option<&AlertCommand>, path: Option<&std::ffi::OsStr>) -> Check {
    let Some(command) = command else {
        return Check::pass(
            CHECK,
            "none configured (alerts go to the desktop and the log)",
        );
    };
    match locate(&command.program, path) {
        Some(found) if is_executable(&found) => {
            Check::pass(CHECK, format!("{} is executable", found.display()))
        }
        Some(found) => Check::warn(
            CHECK,
            format!("{} is not executable", found.display()),
            format!("chmod +x {}", found.display()),
        ),
        None => Check::warn(
            CHECK,
            format!("{} not found", command.program),
            "give alert_command an absolute path (a service's PATH is short), or install the program",
        ),
    }
}

/// An absolute program as it is; a bare name searched in each `PATH` entry.
fn locate(program: &str, path: Option<&std::ffi::OsStr>) -> Option<PathBuf> {
    let program_path = Path::new(program);
    if program_path.is_absolute() {
        return program_path.exists().then(|| program_path.to_owned());
    }
    std::env::split_paths(path?)
        .map(|dir| dir.join(program))
        .find(|candidate| candidate.is_file())
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    std::fs::metadata(path).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Without execute bits, any file counts (Windows runs by file extension).
#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;
    use crate::doctor::Outcome;
    use std::os::unix::fs::PermissionsExt;

    fn command(program: &str) -> AlertCommand {
        AlertCommand {
            program: program.to_owned(),
            args: Vec::new(),
        }
    }

    #[test]
    fn a_missing_or_unexecutable_program_warns_and_a_found_one_passes() {
        let dir = crate::test_dirs::fresh("doctor-alert");
        let script = dir.join("notify-me");
        std::fs::write(&script, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o644)).unwrap();
        let path = Some(dir.as_os_str());

        assert_eq!(check(None, path).outcome, Outcome::Pass);
        assert_eq!(
            check(Some(&command("notify-me")), path).outcome,
            Outcome::Warn
        );
        std::fs::set_permissions(&script, std::fs::Permissions::from_mode(0o755)).unwrap();
        assert_eq!(
            check(Some(&command("notify-me")), path).outcome,
            Outcome::Pass
        );
        let absolute = script.to_string_lossy().into_owned();
        assert_eq!(
            check(Some(&command(&absolute)), None).outcome,
            Outcome::Pass
        );
        assert_eq!(
            check(Some(&command("notify-me")), None).outcome,
            Outcome::Warn
        );
        let gone = check(Some(&command("/nonexistent/notify")), path);
        assert_eq!(gone.outcome, Outcome::Warn);
        assert!(gone.detail.contains("not found"), "{}", gone.detail);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
