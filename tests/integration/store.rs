//! Where tokens live: the real Secret Service by default, the opt-in 0600 file when
//! configured, and nowhere else (not in status, logs, the state file or the cache).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::flows::{Running, token_works};

/// Every file under `dir`, recursively, as bytes (sockets and other unreadable entries
/// are skipped: they hold no bytes).
fn files_under(dir: &Path, out: &mut Vec<(std::path::PathBuf, Vec<u8>)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        let Ok(kind) = entry.file_type() else {
            continue;
        };
        if kind.is_dir() {
            files_under(&path, out);
        } else if kind.is_file()
            && let Ok(bytes) = std::fs::read(&path)
        {
            out.push((path, bytes));
        }
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

/// The incident's lesson, tested the hard way: after a login, several refreshes, usage
/// fetches, `token` and a logout (the daemon logging at debug), not one of the tokens the
/// server ever issued appears in any file sessctl writes outside the credential store (log,
/// state, cache, config and runtime dirs), in the daemon's stderr, or in `status`/`logs`.
#[test]
fn no_token_the_server_issued_reaches_logs_files_stderr_or_status() {
    let mut t = Running::start("");
    let grant = t.login("work", "alice");
    for _ in 0..3 {
        assert_eq!(t.env.sessctl(&["refresh", "work"]).status.code(), Some(0));
    }
    let access = t.token("work");
    crate::support::wait_for("a usage fetch", std::time::Duration::from_secs(20), || {
        !t.slot_status("work")["quota"]["fetched_at"].is_null()
    });
    let status = t.env.sessctl(&["status", "--json"]);
    let table = t.env.sessctl(&["status"]);
    let logout = t.env.sessctl(&["logout", "work"]);
    assert_eq!(logout.status.code(), Some(0));
    // A clean stop flushes every buffered log line to the files searched below.
    assert_eq!(t.env.sessctl(&["shutdown"]).status.code(), Some(0));
    assert!(
        t.daemon
            .wait_exit(std::time::Duration::from_secs(20))
            .success()
    );
    let logs = t.env.sessctl(&["logs", "-n", "100000"]);
    assert_eq!(logs.status.code(), Some(0));

    let issued = t.server.issued_tokens();
    assert!(
        issued.contains(&grant.refresh_token),
        "the list misses the login's token"
    );
    assert!(
        issued.contains(&access),
        "the list misses the access token in use"
    );
    assert!(
        issued.len() >= 8,
        "login + 3 refreshes issue 4 pairs: {}",
        issued.len()
    );

    let mut files = Vec::new();
    for dir in [
        t.env.state_dir(),
        t.env.cache_dir(),
        t.env.config_dir(),
        t.env.runtime_dir(),
    ] {
        files_under(&dir, &mut files);
    }
    let log_files = files
        .iter()
        .filter(|(p, _)| p.starts_with(t.env.state_dir().join("sessctl/logs")))
        .count();
    assert!(log_files >= 1, "no log file was searched");
    assert!(files.iter().any(|(p, _)| p.ends_with("state.json")));
    assert!(files.iter().any(|(p, _)| p.ends_with("quota.json")));
    let stderr = t.daemon.log();
    assert!(
        stderr.contains("refresh"),
        "the daemon's stderr was not captured"
    );
    let outputs = [
        ("status --json", &status.stdout),
        ("status", &table.stdout),
        ("logout", &logout.stdout),
        ("logs", &logs.stdout),
        ("the daemon's stderr", &stderr.as_bytes().to_vec()),
    ];
    for token in &issued {
        for (what, bytes) in &outputs {
            assert!(!contains(bytes, token), "{what} shows a token");
        }
        for (path, bytes) in &files {
            assert!(!contains(bytes, token), "{} holds a token", path.display());
        }
    }
}

#[test]
fn the_file_store_is_an_explicit_opt_in_that_status_names() {
    let t = Running::start("credential_store: file");
    t.login("work", "alice");
    let status = t.env.status_json();
    assert_eq!(status["credential_store"], "file");
    let table = String::from_utf8(t.env.sessctl(&["status"]).stdout).unwrap();
    assert!(table.contains("file"), "{table}");
    let file = t.env.state_dir().join("sessctl/credentials.json");
    let mode = std::fs::metadata(&file).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let items: serde_json::Value = serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
    assert!(items["slots"]["work"]["refresh_token"].is_string());
    assert!(
        t.env.secret_lookup("sessctl", "work").is_none(),
        "the keychain was used too"
    );
    assert!(token_works(&t.server, &t.token("work")));
}

#[test]
fn the_state_file_is_private_and_names_no_secret() {
    let t = Running::start("");
    t.login("work", "alice");
    t.login("home", "bob");
    for file in ["state.json", "state.json.log"] {
        let path = t.env.state_dir().join("sessctl").join(file);
        let mode = std::fs::metadata(&path).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "{file}");
    }
    let text = crate::state_log::state_and_log(&t.env);
    assert!(text.contains("\"work\""));
    assert!(!text.contains("token\""), "{text}");
}

#[test]
fn an_unreachable_keychain_keeps_tokens_in_memory_and_stores_them_later() {
    let mut t = Running::start("");
    t.login("work", "alice");
    t.env.session_bus_mut().stop_keyring();
    // The server rotates the refresh token; the keychain cannot take it.
    let out = t.env.sessctl(&["refresh", "work"]);
    assert!(
        out.status.success(),
        "{:?}",
        crate::flows::code_and_stderr(&out)
    );
    let status = t.env.status_json();
    assert!(status["credential_store_error"].is_string(), "{status}");
    let slot = t.slot_status("work");
    assert_eq!(slot["state"], "degraded");
    assert_eq!(slot["reason"], "credential_store_unavailable");
    assert!(t.daemon.log().contains("holding them in memory"));
    // The rotated token lives on in memory: tokens and further refreshes keep working.
    assert!(token_works(&t.server, &t.token("work")));
    assert!(t.env.sessctl(&["refresh", "work"]).status.success());
    assert_eq!(t.invalid_grants(), 0);
    t.env.session_bus_mut().restart_keyring();
    crate::support::wait_for(
        "the held tokens to be written",
        std::time::Duration::from_secs(60),
        || t.state("work") == "active",
    );
    assert!(t.env.status_json()["credential_store_error"].is_null());
    let stored: serde_json::Value =
        serde_json::from_str(&t.env.secret_lookup("sessctl", "work").unwrap()).unwrap();
    assert_eq!(stored["access_token"], t.token("work").as_str());
}
