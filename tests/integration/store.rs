//! Where tokens live: the real Secret Service by default, the opt-in 0600 file when
//! configured, and nowhere else (not in status, logs, the state file or the cache).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use crate::flows::{Running, token_works};

/// Every file under `dir` (the keyring's own encrypted files excepted) as bytes.
fn files_under(dir: &Path, out: &mut Vec<(std::path::PathBuf, Vec<u8>)>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.ends_with("keyrings") {
            continue;
        }
        if path.is_dir() {
            files_under(&path, out);
        } else if let Ok(bytes) = std::fs::read(&path) {
            out.push((path, bytes));
        }
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[test]
fn no_token_reaches_status_logs_or_files_outside_the_keychain() {
    let t = Running::start("");
    let grant = t.login("work", "alice");
    assert_eq!(t.env.sessctl(&["refresh", "work"]).status.code(), Some(0));
    let access = t.token("work");
    let stored: serde_json::Value =
        serde_json::from_str(&t.env.secret_lookup("sessctl", "work").unwrap()).unwrap();
    let refresh = stored["refresh_token"].as_str().unwrap().to_owned();
    let secrets = [
        grant.refresh_token.as_str(),
        access.as_str(),
        refresh.as_str(),
    ];

    let status = t.env.sessctl(&["status", "--json"]);
    let table = t.env.sessctl(&["status"]);
    let mut files = Vec::new();
    files_under(t.env.root(), &mut files);
    assert!(files.iter().any(|(p, _)| p.ends_with("state.json")));
    assert!(
        files
            .iter()
            .any(|(p, _)| p.to_string_lossy().contains("logs"))
    );
    for secret in secrets {
        assert!(
            !contains(&status.stdout, secret),
            "status --json shows a token"
        );
        assert!(!contains(&table.stdout, secret), "status shows a token");
        assert!(
            !contains(t.daemon.log().as_bytes(), secret),
            "the daemon log shows a token"
        );
        for (path, bytes) in &files {
            assert!(!contains(bytes, secret), "{} holds a token", path.display());
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
    let state = t.env.state_dir().join("sessctl/state.json");
    let mode = std::fs::metadata(&state).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600);
    let text = std::fs::read_to_string(&state).unwrap();
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
