//! `sessctl service install | uninstall`: the unit it writes (into a fresh home, creating
//! `~/.config/systemd/user/`) runs the binary being tested by its absolute path and passes
//! `systemd-analyze verify`; without a systemd user instance (the test env has none: its
//! runtime dir and session bus are private) it refuses and changes nothing; `--no-start` and
//! `--no-stop` only write and remove the file, never touching a real service manager.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::support::TestEnv;
use crate::support::sessctl::SESSCTL;

fn unit_path(env: &TestEnv) -> PathBuf {
    env.config_dir().join("systemd/user/sessctl.service")
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn install_no_start_writes_a_unit_systemd_accepts() {
    let env = TestEnv::new();
    assert!(!env.config_dir().join("systemd").exists());
    let out = env.sessctl(&["service", "install", "--no-start"]);
    assert!(out.status.success(), "{}", text(&out));
    let path = unit_path(&env);
    assert!(
        text(&out).contains(&path.display().to_string()),
        "{}",
        text(&out)
    );
    let unit = std::fs::read_to_string(&path).unwrap();
    let bin_dir = Path::new(SESSCTL).canonicalize().unwrap();
    let exec = format!(
        "ExecStart={} daemon",
        bin_dir.parent().unwrap().join("sessctl").display()
    );
    assert!(unit.contains(&exec), "{unit}");
    let verify = Command::new("systemd-analyze")
        .args(["verify", "--user"])
        .arg(&path)
        .env("XDG_RUNTIME_DIR", env.runtime_dir())
        .output()
        .expect("systemd-analyze (Debian package systemd, installed by scripts/test.sh)");
    assert!(
        verify.status.success() && text(&verify).trim().is_empty(),
        "{}",
        text(&verify)
    );
}

#[test]
fn without_a_user_instance_install_and_uninstall_refuse_and_change_nothing() {
    let env = TestEnv::new();
    let out = env.sessctl(&["service", "install"]);
    let said = text(&out);
    assert_eq!(out.status.code(), Some(1), "{said}");
    assert!(said.contains("no systemd user instance"), "{said}");
    assert!(
        said.contains("--no-start") && said.contains("sessctl daemon"),
        "{said}"
    );
    assert!(!unit_path(&env).exists());

    assert!(
        env.sessctl(&["service", "install", "--no-start"])
            .status
            .success()
    );
    let out = env.sessctl(&["service", "uninstall"]);
    assert_eq!(out.status.code(), Some(1), "{}", text(&out));
    assert!(text(&out).contains("--no-stop"), "{}", text(&out));
    assert!(unit_path(&env).exists());
}

#[test]
fn uninstall_no_stop_removes_the_unit_once() {
    let env = TestEnv::new();
    assert!(
        env.sessctl(&["service", "install", "--no-start"])
            .status
            .success()
    );
    let out = env.sessctl(&["service", "uninstall", "--no-stop"]);
    assert!(out.status.success(), "{}", text(&out));
    assert!(!unit_path(&env).exists());
    let out = env.sessctl(&["service", "uninstall", "--no-stop"]);
    assert!(
        out.status.success() && text(&out).contains("nothing to remove"),
        "{}",
        text(&out)
    );
}

#[test]
fn service_status_names_the_file_and_the_missing_manager() {
    let env = TestEnv::new();
    let out = env.sessctl(&["service", "status"]);
    let said = text(&out);
    assert!(out.status.success(), "{said}");
    assert!(said.contains("service file: none"), "{said}");
    assert!(said.contains("no systemd user instance"), "{said}");
    assert!(!said.contains("systemctl --user enable"), "{said}");
}

/// Doctor, with no systemd user instance (as in containers and over ssh), must not tell the
/// user to run `systemctl --user` anywhere, nor the keyring command that cannot work there.
#[test]
fn doctor_suggests_only_what_works_without_a_user_instance() {
    let env = TestEnv::new();
    let out = env.sessctl(&["doctor"]);
    let said = text(&out);
    let service = said
        .lines()
        .find(|l| l.get(6..).is_some_and(|rest| rest.starts_with("service")))
        .unwrap_or_else(|| panic!("no service line in:\n{said}"));
    assert!(service.contains("no systemd user instance"), "{said}");
    for fix in said
        .lines()
        .filter_map(|l| l.split_once("fix:").map(|(_, f)| f))
    {
        assert!(!fix.contains("systemctl --user"), "{said}");
        assert!(!fix.contains("gnome-keyring-daemon --start"), "{said}");
    }
}
