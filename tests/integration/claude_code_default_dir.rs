//! A slot adopted from Claude Code's default config dir (`sessctl adopt NAME --claude-code`,
//! no DIR: `~/.claude` of the test's temp HOME) is Claude Code's default store, the one a
//! plain `claude` uses with `CLAUDE_CONFIG_DIR` unset: `run` and `env` start Claude Code on
//! it by unsetting the variable (set, even to `~/.claude`, Claude Code names another macOS
//! keychain item and another `.claude.json`). The keychain naming itself is unit-tested in
//! `src/claude_code/location.rs` (the macOS keychain cannot run here).

use std::fs;
use std::process::Command;

use serde_json::json;

use crate::flows::{Running, assert_success};
use crate::support::claude_code::{fresh_login, write_store};

#[test]
fn a_slot_on_the_default_dir_is_reached_with_claude_config_dir_unset() {
    let t = Running::start("");
    let dir = t.env.home().join(".claude");
    fs::create_dir_all(&dir).unwrap();
    let (login, _) = fresh_login(&t, "main");
    write_store(&dir, &json!({ "claudeAiOauth": login }));
    let out = t
        .env
        .sessctl(&["adopt", "main", "--claude-code", "--provider", "test"]);
    assert_success(&out, "adopt");
    let slot = t.slot_status("main");
    assert_eq!(slot["claude_code_dir"].as_str(), dir.to_str(), "{slot}");

    let out = t.env.sessctl(&["env", "main"]);
    assert_success(&out, "env");
    let line = String::from_utf8(out.stdout).unwrap();
    assert_eq!(line, "unset CLAUDE_CONFIG_DIR\n");
    // The line means what it says to a real shell that had the variable set.
    let echoed = Command::new("sh")
        .arg("-c")
        .arg(format!("{line}printf %s \"${{CLAUDE_CONFIG_DIR-unset}}\""))
        .env("CLAUDE_CONFIG_DIR", &dir)
        .output()
        .unwrap();
    assert_eq!(String::from_utf8_lossy(&echoed.stdout), "unset");

    let out = t
        .env
        .sessctl_command(&[
            "run",
            "main",
            "--",
            "sh",
            "-c",
            "printf %s \"${CLAUDE_CONFIG_DIR-unset}\"",
        ])
        .env("CLAUDE_CONFIG_DIR", t.env.home().join(".claude-other"))
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
    assert_eq!(String::from_utf8_lossy(&out.stdout), "unset");
}
