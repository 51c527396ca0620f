//! `sessctl statusline` as Claude Code's `statusLine` command: the real binary, with
//! Claude Code-shaped JSON on stdin and `CLAUDE_CONFIG_DIR` set as a session started with
//! `sessctl run` (or a shell alias) has it, over the quota cache the real daemon wrote for
//! slots adopted with `--claude-code`. Every config dir is in the test's temp HOME.

use std::fs;
use std::io::Write;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use serde_json::json;

use crate::flows::{Running, assert_success};
use crate::support::claude_code::{fresh_login, write_store};
use crate::support::wait_for;

/// The cached five-hour window's reset; Claude Code's figures below name the same window
/// in whole seconds (4102444800 is 2100-01-01T00:00:00Z).
const RESETS_AT: &str = "2100-01-01T00:00:00.500Z";

/// A config dir in the test's HOME holding a fresh login of `account`, as `claude /login`
/// leaves it, adopted as slot `account`.
fn adopted_dir(t: &Running, account: &str) -> PathBuf {
    let dir = t.env.home().join(format!(".claude-{account}"));
    fs::create_dir_all(&dir).unwrap();
    let (login, _) = fresh_login(t, account);
    write_store(&dir, &json!({ "claudeAiOauth": login }));
    t.server.set_usage(
        account,
        json!({"five_hour": {"utilization": 16.0, "resets_at": RESETS_AT}}),
    );
    let dir_text = dir.to_str().unwrap();
    let out = t.env.sessctl(&[
        "adopt",
        account,
        "--claude-code",
        dir_text,
        "--provider",
        "test",
    ]);
    assert_success(&out, "adopt");
    dir
}

/// The statusline's one line, run with `stdin` and `CLAUDE_CONFIG_DIR` = `config_dir` (unset
/// when `None`).
fn statusline(t: &Running, config_dir: Option<&str>, stdin: &str) -> String {
    let mut cmd = t.env.sessctl_command(&["statusline"]);
    cmd.env_remove("CLAUDE_CONFIG_DIR")
        .env_remove("CLAUDE_SECURESTORAGE_CONFIG_DIR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(dir) = config_dir {
        cmd.env("CLAUDE_CONFIG_DIR", dir);
    }
    let mut child = cmd.spawn().unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "statusline: {out:?}");
    let line = String::from_utf8(out.stdout).unwrap();
    line.trim_end_matches('\n').to_owned()
}

/// Claude Code's statusLine JSON with its rate limits: the cached five-hour window at
/// `five_hour`, and a seven-day window that reset long ago (an idle session's last reply).
fn claude_code_json(five_hour: f64) -> String {
    json!({
        "session_id": "s", "model": {"id": "claude-opus-4-1", "display_name": "Opus"},
        "workspace": {"current_dir": "/w", "project_dir": "/w"}, "version": "2.1.332",
        "cost": {"total_cost_usd": 0.1}, "context_window": {"context_window_size": 200_000},
        "rate_limits": {
            "five_hour": {"used_percentage": five_hour, "resets_at": 4_102_444_800_i64},
            "seven_day": {"used_percentage": 99, "resets_at": 1_000_000_000},
        },
    })
    .to_string()
}

#[test]
fn claude_codes_figures_go_to_the_slot_whose_config_dir_the_session_uses() {
    let t = Running::start("");
    let alpha = adopted_dir(&t, "alpha");
    let beta = adopted_dir(&t, "beta");
    // The daemon tells the statusline each slot's dir in the file it reads on every prompt.
    let lines_file = t.env.cache_dir().join("sessctl/quota.lines");
    wait_for(
        "both slots' quota in quota.lines",
        Duration::from_secs(20),
        || {
            let lines = fs::read_to_string(&lines_file).unwrap_or_default();
            [&alpha, &beta]
                .iter()
                .all(|dir| lines.contains(&format!("claude_code\t{}\n", dir.display())))
                && lines.matches("window\tfive_hour\t16.0\t").count() == 2
        },
    );
    let plain = "alpha 5h 16% · 7d 42%  beta 5h 16% · 7d 42%";
    assert_eq!(statusline(&t, None, ""), plain);

    // A session on beta's dir (spelled with a trailing slash and a `.`): its higher figure
    // for the same five-hour window wins, its seven-day figure of a window long gone does
    // not, and beta is marked as the account this session uses.
    let spelled = format!("{}/./", beta.display());
    assert_eq!(
        statusline(&t, Some(&spelled), &claude_code_json(61.4)),
        "alpha 5h 16% · 7d 42%  ▸ beta 5h 61% · 7d 42%"
    );
    // A lower figure for the same window is older than the cache's: the cache's stays.
    let alpha_text = alpha.to_str().unwrap();
    assert_eq!(
        statusline(&t, Some(alpha_text), &claude_code_json(5.0)),
        "▸ alpha 5h 16% · 7d 42%  beta 5h 16% · 7d 42%"
    );
    // A session on the default dir, which no slot has (and no `~/.claude.json` names an
    // account): the figures belong to no slot, and nothing is marked.
    assert_eq!(statusline(&t, None, &claude_code_json(61.4)), plain);
    // Without Claude Code's JSON the dir alone marks nothing.
    assert_eq!(statusline(&t, Some(alpha_text), ""), plain);
    // A session started through a symlink to beta's dir is on beta's store.
    let link = t.env.home().join("claude-link");
    std::os::unix::fs::symlink(&beta, &link).unwrap();
    assert_eq!(
        statusline(&t, Some(link.to_str().unwrap()), &claude_code_json(70.0)),
        "alpha 5h 16% · 7d 42%  ▸ beta 5h 70% · 7d 42%"
    );
}
