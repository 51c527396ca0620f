//! `sessctl completions SHELL`, `sessctl man` and `statusline --help`: each prints what its consumer accepts
//! (bash parses the bash script, zsh and fish scripts name their shell's completion entry
//! points, the man page is roff with the subcommands), from the real binary.

use std::process::Command;

use crate::support::TestEnv;

fn stdout_of(env: &TestEnv, args: &[&str]) -> String {
    let out = env.sessctl(args);
    assert!(
        out.status.success(),
        "sessctl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8")
}

#[test]
fn the_bash_completion_script_parses_and_completes_subcommands() {
    let env = TestEnv::new();
    let script = stdout_of(&env, &["completions", "bash"]);
    assert!(script.contains("complete -F"), "{script}");
    assert!(script.contains("statusline") && script.contains("doctor"));
    let path = env.root().join("sessctl.bash");
    std::fs::write(&path, &script).unwrap();
    let out = Command::new("bash").arg("-n").arg(&path).output().unwrap();
    assert!(
        out.status.success(),
        "bash -n: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    // Sourcing it registers the completion function for `sessctl`.
    let out = Command::new("bash")
        .arg("-c")
        .arg(format!(
            "source '{}' && complete -p sessctl",
            path.display()
        ))
        .output()
        .unwrap();
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success() && said.contains("sessctl"), "{said}");
}

#[test]
fn zsh_and_fish_completions_are_generated() {
    let env = TestEnv::new();
    let zsh = stdout_of(&env, &["completions", "zsh"]);
    assert!(zsh.starts_with("#compdef sessctl"), "{zsh}");
    let fish = stdout_of(&env, &["completions", "fish"]);
    assert!(fish.contains("complete -c sessctl"), "{fish}");
}

#[test]
fn an_unknown_shell_is_a_usage_error() {
    let env = TestEnv::new();
    let out = env.sessctl(&["completions", "tcsh"]);
    assert_eq!(out.status.code(), Some(64), "{out:?}");
    assert!(String::from_utf8_lossy(&out.stderr).contains("possible values"));
}

#[test]
fn the_man_page_is_roff_naming_every_subcommand() {
    let env = TestEnv::new();
    let page = stdout_of(&env, &["man"]);
    assert!(page.contains(".TH sessctl 1"), "{page}");
    for sub in ["status", "login", "doctor", "statusline", "completions"] {
        assert!(page.contains(sub), "man page lacks {sub}");
    }
}

/// `sessctl statusline --help` is parsed apart from the rest (for speed) and must still read
/// as the user's documentation: the full usage line, every flag described.
#[test]
fn statusline_help_reads_as_user_documentation() {
    let env = TestEnv::new();
    let help = stdout_of(&env, &["statusline", "--help"]);
    assert!(
        help.contains("Usage: sessctl statusline [OPTIONS]"),
        "{help}"
    );
    assert!(help.starts_with("Print every slot's quota"), "{help}");
    assert!(help.contains("Config file (default:"), "{help}");
    assert!(!help.contains("command tree"), "{help}");
}
