//! The systemd user unit and the launchd agent as shipped: systemd's own verifier accepts
//! the unit (any warning fails the test), and the plist parses with the keys launchd needs.

use std::path::Path;
use std::process::Command;

use crate::support::TestEnv;
use crate::support::sessctl::SESSCTL;

fn repo_file(path: &str) -> String {
    let full = Path::new(env!("CARGO_MANIFEST_DIR")).join(path);
    std::fs::read_to_string(&full).unwrap_or_else(|e| panic!("{}: {e}", full.display()))
}

#[test]
fn systemd_accepts_the_user_unit_without_warnings() {
    let env = TestEnv::new();
    let unit = repo_file("systemd/sessctl.service");
    assert!(
        unit.contains("ExecStart=%h/.cargo/bin/sessctl daemon"),
        "{unit}"
    );
    // Room for the graceful stop's drain (at most 45 s, src/daemon/stop.rs).
    assert!(unit.contains("\nTimeoutStopSec=60\n"), "{unit}");
    // Verify it with the built binary in place of the install path (the verifier checks the
    // executable exists).
    let unit = unit.replace("%h/.cargo/bin/sessctl", SESSCTL);
    let path = env.root().join("sessctl.service");
    std::fs::write(&path, unit).unwrap();
    let out = Command::new("systemd-analyze")
        .args(["verify", "--user"])
        .arg(&path)
        .env("XDG_RUNTIME_DIR", env.runtime_dir())
        .output()
        .expect("systemd-analyze (Debian package systemd, installed by scripts/test.sh)");
    let said = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success() && said.trim().is_empty(), "{said}");
}

#[test]
fn the_launchd_agent_parses_with_the_keys_launchd_needs() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("launchd/dev.sessctl.daemon.plist");
    let check = r#"
import plistlib, sys
p = plistlib.load(open(sys.argv[1], "rb"))
assert p["Label"] == "dev.sessctl.daemon", p["Label"]
args = p["ProgramArguments"]
assert isinstance(args, list) and all(isinstance(a, str) for a in args), args
assert args[0].endswith("/sessctl") and args[1:] == ["daemon"], args
assert p["RunAtLoad"] is True
assert p["KeepAlive"] == {"SuccessfulExit": False}, p["KeepAlive"]
assert isinstance(p["ThrottleInterval"], int)
# Room for the graceful stop's drain (at most 45 s, src/daemon/stop.rs).
assert isinstance(p["ExitTimeOut"], int) and p["ExitTimeOut"] >= 60, p.get("ExitTimeOut")
assert isinstance(p["StandardErrorPath"], str)
assert all(isinstance(v, str) for v in p["EnvironmentVariables"].values())
print("ok")
"#;
    let out = Command::new("/usr/bin/python3")
        .args(["-c", check])
        .arg(&path)
        .output()
        .expect("Debian's python3");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout).trim(),
        "ok",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
