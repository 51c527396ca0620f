//! `sessctl` run by another user: it shows the daemon's refusal, not the broken pipe its
//! request write may hit because the daemon refuses before reading.

use std::os::unix::fs::PermissionsExt;

use crate::flows::{Running, code_and_stderr};
use crate::support::sessctl::SESSCTL;

/// The refusal is a race between the daemon's close and the client's write: try often.
const TRIES: usize = 10;

/// Root only, like `socket::a_connection_from_another_user_is_refused` (scripts/test.sh
/// runs it when root).
#[test]
#[ignore = "needs root to run sessctl as another user; scripts/test.sh runs it when root"]
fn sessctl_token_as_another_user_shows_the_refusal() {
    let t = Running::start("");
    let socket = t.env.socket_path();
    for dir in socket.ancestors().skip(1) {
        if !dir.starts_with(t.env.root()) {
            break;
        }
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o711)).unwrap();
    }
    std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666)).unwrap();
    let runtime = t.env.runtime_dir();
    for _ in 0..TRIES {
        let out = std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .args(["env", "-i", "HOME=/tmp", "PATH=/usr/bin:/bin"])
            .arg(format!("XDG_RUNTIME_DIR={}", runtime.display()))
            .args([SESSCTL, "token", "work"])
            .output()
            .expect("setpriv (util-linux) runs sessctl as uid 65534");
        let (code, stderr) = code_and_stderr(&out);
        assert!(out.stdout.is_empty());
        assert!(!stderr.contains("Broken pipe"), "{stderr}");
        assert!(
            stderr.contains("this daemon serves only the user that runs it"),
            "{stderr}"
        );
        assert_eq!(code, Some(1), "{stderr}");
    }
    assert!(t.env.sessctl(&["ping"]).status.success());
}
