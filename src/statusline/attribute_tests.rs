//! Choosing the slot Claude Code's figures belong to, and the fresher of two figures.

use chrono::{DateTime, Utc};

use super::*;

fn candidate<'a>(
    name: &'a str,
    provider: Option<&'a str>,
    account: Option<&'a str>,
    claude_code: Option<&'a str>,
) -> Candidate<'a> {
    Candidate {
        name,
        provider,
        account,
        claude_code,
    }
}

fn never_session() -> Option<SessionDir> {
    panic!("the session's dir looked up needlessly")
}

fn never_email() -> Option<String> {
    panic!("~/.claude.json read needlessly")
}

#[test]
fn the_slot_is_chosen_by_name_then_only_claude_slot_then_account() {
    let two = [
        candidate("acme", Some("acme"), None, None),
        candidate("home", Some("claude"), Some("Me@X.y"), None),
        candidate("work", Some("claude"), Some("w@x.y"), None),
    ];
    assert_eq!(
        choose_slot(&two, Some("acme"), never_session, never_email),
        Some(("acme".into(), Chosen::Named))
    );
    assert_eq!(
        choose_slot(&two, None, never_session, || Some("me@x.y".into())),
        Some(("home".into(), Chosen::AccountMatch))
    );
    assert_eq!(choose_slot(&two, None, never_session, || None), None);
    assert_eq!(
        choose_slot(&two, None, never_session, || Some("z@z".into())),
        None
    );
    let one = [
        candidate("acme", Some("acme"), None, None),
        candidate("work", Some("claude"), None, None),
    ];
    assert_eq!(
        choose_slot(&one, None, never_session, never_email),
        Some(("work".into(), Chosen::OnlyClaudeSlot))
    );
    assert_eq!(
        choose_slot(&[], None, never_session, || Some("a@b".into())),
        None
    );
}

#[test]
fn the_session_config_dir_wins_over_the_only_claude_slot_and_the_account() {
    let home = Path::new("/home/u");
    let slots = [
        candidate("a", Some("claude"), Some("me@x.y"), Some("/home/u/.claude")),
        candidate("b", Some("acme"), Some("b@x.y"), Some("/home/u/.claude-b")),
    ];
    let session = |dir: &str| {
        let dir = dir.to_owned();
        move || Some(SessionDir::new(Path::new(&dir), home))
    };
    // Spelled another way: `~`, a trailing slash, a `.` component.
    for spelled in ["/home/u/.claude-b", "~/.claude-b/", "/home/u/./.claude-b"] {
        assert_eq!(
            choose_slot(&slots, None, session(spelled), never_email),
            Some(("b".into(), Chosen::ConfigDir)),
            "{spelled}"
        );
    }
    // A dir no slot has: the rules before this one decide.
    assert_eq!(
        choose_slot(&slots, None, session("/elsewhere"), never_email),
        Some(("a".into(), Chosen::OnlyClaudeSlot))
    );
}

#[cfg(unix)]
#[test]
fn a_symlinked_config_dir_matches_the_dir_it_points_at() {
    let root = crate::test_dirs::fresh("attribute-symlink");
    let real = root.join("real-claude");
    std::fs::create_dir_all(&real).unwrap();
    let link = root.join("link-claude");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let real_text = real.to_string_lossy().into_owned();
    let link_text = link.to_string_lossy().into_owned();
    let slots = [
        candidate("other", Some("claude"), None, Some("/nowhere")),
        candidate("x", Some("claude"), None, Some(&link_text)),
    ];
    let session = SessionDir::new(&real, &root);
    assert!(!session.matches(&link_text));
    assert!(session.matches_resolved(&link_text));
    assert_eq!(
        choose_slot(&slots, None, || Some(session), never_email),
        Some(("x".into(), Chosen::ConfigDir))
    );
    // And the other way round: the session runs on the link, the slot names the target.
    let session = SessionDir::new(&link, &root);
    assert!(
        session.matches(&real_text),
        "resolved on the session's side"
    );
    std::fs::remove_dir_all(&root).unwrap();
}

#[test]
fn the_session_dir_follows_claude_codes_environment_rules() {
    // `from_env` reads the real environment, which tests share: the rules are
    // `ConfigDir::from_env`'s (tested there); here only that its dir is what is compared.
    let home = Path::new("/home/u");
    let config = crate::claude_code::ConfigDir::from_env(home, |name| {
        (name == "CLAUDE_SECURESTORAGE_CONFIG_DIR").then(|| "/s/".to_owned())
    });
    let session = SessionDir::new(config.dir(), home);
    assert!(session.matches("/s"));
    assert!(!session.matches("/home/u/.claude"));
}

fn at(s: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(s).unwrap().with_timezone(&Utc)
}

fn window(utilization: f64, resets_at: Option<&str>) -> Window {
    Window {
        utilization,
        resets_at: resets_at.map(at),
    }
}

#[test]
fn the_later_window_wins_and_within_one_window_the_higher_figure() {
    let cached = window(40.0, Some("2026-11-23T14:00:00.4Z"));
    let fresher = |claude: Window| claude_code_is_fresher(Some(&cached), &claude);
    // The same window (whole seconds against sub-second): usage only grows.
    assert!(fresher(window(45.0, Some("2026-11-23T14:00:00Z"))));
    assert!(fresher(window(40.0, Some("2026-11-23T14:00:00Z"))));
    assert!(!fresher(window(39.0, Some("2026-11-23T14:00:00Z"))));
    // A later window, even at a lower figure; an earlier one (an idle session's old reply)
    // never.
    assert!(fresher(window(2.0, Some("2026-11-23T19:00:00Z"))));
    assert!(!fresher(window(90.0, Some("2026-11-23T09:00:00Z"))));
    // Nothing to compare: Claude Code's figure.
    assert!(fresher(window(1.0, None)));
    assert!(claude_code_is_fresher(None, &window(1.0, None)));
    let undated = window(50.0, None);
    assert!(claude_code_is_fresher(
        Some(&undated),
        &window(1.0, Some("2026-11-23T14:00:00Z"))
    ));
}
