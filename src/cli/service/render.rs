//! The service files `sessctl service install` writes: the shipped templates
//! (systemd/sessctl.service, launchd/dev.sessctl.daemon.plist) with the real absolute path of
//! the installed `sessctl` in place of the `~/.cargo/bin` default. Pure functions, tested here.

use std::path::Path;

const SYSTEMD_TEMPLATE: &str = include_str!("../../../systemd/sessctl.service");
const LAUNCHD_TEMPLATE: &str = include_str!("../../../launchd/dev.sessctl.daemon.plist");
const SYSTEMD_EXEC: &str = "ExecStart=%h/.cargo/bin/sessctl daemon";
const LAUNCHD_EXEC: &str = "@HOME@/.cargo/bin/sessctl";

/// The user unit running `sessctl daemon` from `sessctl` (an absolute path).
pub fn systemd_unit(sessctl: &Path) -> String {
    let body = SYSTEMD_TEMPLATE
        .find("[Unit]")
        .map_or(SYSTEMD_TEMPLATE, |at| &SYSTEMD_TEMPLATE[at..]);
    let body = body.replace(
        "# Adjust the path if sessctl is installed elsewhere (cargo install puts it in ~/.cargo/bin).\n",
        "",
    );
    let exec = format!("ExecStart={} daemon", systemd_quote(sessctl));
    format!(
        "# sessctl as a systemd user service, written by `sessctl service install`;\n\
         # `sessctl service uninstall` removes it. Logs: journalctl --user -u sessctl, `sessctl logs`.\n\
         {}",
        body.replace(SYSTEMD_EXEC, &exec)
    )
}

/// The launchd agent running `sessctl daemon` from `sessctl`; launchd does not expand `~`,
/// so `home` is written out.
pub fn launchd_plist(sessctl: &Path, home: &Path) -> String {
    LAUNCHD_TEMPLATE
        .replace(LAUNCHD_EXEC, &xml_escape(&sessctl.to_string_lossy()))
        .replace("@HOME@", &xml_escape(&home.to_string_lossy()))
}

/// One `ExecStart` word: `%` is a specifier, so doubled; quoted when it holds a space, a quote
/// or a backslash (systemd.syntax(7) C-style escapes inside double quotes).
fn systemd_quote(path: &Path) -> String {
    let text = path.to_string_lossy().replace('%', "%%");
    if text.contains([' ', '\t', '"', '\\', '\'']) {
        let escaped = text.replace('\\', "\\\\").replace('"', "\\\"");
        format!("\"{escaped}\"")
    } else {
        text
    }
}

fn xml_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_unit_runs_the_given_binary() {
        let unit = systemd_unit(Path::new("/opt/bin/sessctl"));
        assert!(
            unit.contains("\nExecStart=/opt/bin/sessctl daemon\n"),
            "{unit}"
        );
        assert!(!unit.contains("%h/.cargo"), "{unit}");
        assert!(
            unit.contains("[Install]\nWantedBy=default.target"),
            "{unit}"
        );
    }

    #[test]
    fn odd_paths_are_quoted_for_systemd() {
        let unit = systemd_unit(Path::new("/home/a b/100%/sessctl"));
        assert!(
            unit.contains("ExecStart=\"/home/a b/100%%/sessctl\" daemon"),
            "{unit}"
        );
    }

    #[test]
    fn the_plist_names_the_binary_and_home_escaped() {
        let plist = launchd_plist(Path::new("/Users/a&b/bin/sessctl"), Path::new("/Users/a&b"));
        assert!(
            plist.contains("<string>/Users/a&amp;b/bin/sessctl</string>"),
            "{plist}"
        );
        assert!(plist.contains("<string>/Users/a&amp;b/Library/Logs/sessctl.log</string>"));
        assert!(
            !plist.contains("@HOME@") && !plist.contains(".cargo/bin"),
            "{plist}"
        );
    }
}
