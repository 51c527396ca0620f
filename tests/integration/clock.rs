//! The wall clock stepped under a running daemon. A test cannot step the machine's real
//! clock (that needs root and would disturb everything else running), so the daemon runs
//! under libfaketime: a stand-in for `date -s` or a bad NTP step that moves only the
//! daemon's wall clock (`FAKETIME_TIMESTAMP_FILE`, re-read on every call), while its boot
//! clock (`CLOCK_BOOTTIME`, left real by `FAKETIME_DONT_FAKE_MONOTONIC`) and the test
//! server's clock keep real time. Everything else is real: the server's token expiry, the
//! keychain, the daemon binary.

use std::path::Path;
use std::time::Duration;

use crate::flows::{Running, code_and_stderr, token_works};
use crate::support::wait_for;

/// Debian's libfaketime (installed by scripts/test.sh), the variant for threaded programs.
const LIBFAKETIME: &str = "/usr/lib/x86_64-linux-gnu/faketime/libfaketimeMT.so.1";

/// Access tokens the server issues in this test live this long.
const TOKEN_TTL_SECS: u64 = 30;

/// Long enough for a token of [`TOKEN_TTL_SECS`] to expire at the server, with room for a
/// loaded machine.
const EXPIRY_DEADLINE: Duration = Duration::from_secs(TOKEN_TTL_SECS + 60);

/// Restarts `t`'s daemon (which holds no slot yet) with its wall clock read through
/// libfaketime from `offset_file`, starting at the real time.
fn restart_under_faketime(t: &mut Running, offset_file: &Path) {
    assert!(
        Path::new(LIBFAKETIME).exists(),
        "{LIBFAKETIME} is missing: scripts/test.sh installs Debian's libfaketime"
    );
    std::fs::write(offset_file, "+0\n").unwrap();
    t.daemon.kill9();
    let offset = offset_file.to_str().unwrap();
    t.daemon = t.env.start_daemon_overriding(&[
        ("LD_PRELOAD", LIBFAKETIME),
        ("FAKETIME_TIMESTAMP_FILE", offset),
        ("FAKETIME_NO_CACHE", "1"),
        ("FAKETIME_DONT_FAKE_MONOTONIC", "1"),
    ]);
}

/// After the wall clock steps back two hours, a token the daemon got before the step still
/// expires on time (by elapsed time): `token` never prints it once the server no longer
/// takes it, and the daemon refreshes instead. The old daemon judged only by the wall
/// clock: its refresh was two hours late and `token` printed the dead token with exit 0.
#[test]
fn after_the_wall_clock_steps_back_two_hours_no_expired_token_is_handed_out() {
    let mut t = Running::start("refresh_before_expiry: 5s");
    let offset_file = t.env.root().join("faketime-offset");
    restart_under_faketime(&mut t, &offset_file);
    t.server.set_access_token_ttl(TOKEN_TTL_SECS);
    t.login("work", "alice");
    let before_step = t.token("work");

    std::fs::write(&offset_file, "-2h\n").unwrap();
    wait_for(
        "the server to stop taking the token got before the step",
        EXPIRY_DEADLINE,
        || !token_works(&t.server, &before_step),
    );

    let out = t.env.sessctl(&["token", "work"]);
    let (code, stderr) = code_and_stderr(&out);
    assert_eq!(code, Some(0), "{stderr}");
    let now_handed_out = String::from_utf8(out.stdout).unwrap().trim().to_owned();
    assert!(
        now_handed_out != before_step,
        "token printed the token got before the step, which the server no longer takes"
    );
    assert!(token_works(&t.server, &now_handed_out));
    assert_eq!(t.invalid_grants(), 0);
}
