//! The one command a user is told to run when a slot needs a new login: the login flow
//! that fits the machine. A browser flow where a browser can be opened; else the device
//! flow or the pasted-code flow, whichever the provider offers; a piped refresh token
//! only for a provider with no interactive flow at all.

use crate::config::Provider;

/// Whether a browser can be opened on this machine, judged from environment variables
/// (`lookup` is `std::env::var_os` outside tests).
///
/// `$BROWSER` set means yes (the user chose a program). An SSH session means no: a
/// browser would open on the far machine, or nowhere. On Linux and the BSDs a browser
/// also needs a display (`DISPLAY` or `WAYLAND_DISPLAY`); macOS and Windows always have
/// their opener.
pub fn browser_available(lookup: impl Fn(&str) -> Option<std::ffi::OsString>) -> bool {
    let set = |name: &str| lookup(name).is_some_and(|v| !v.is_empty());
    if set("BROWSER") {
        return true;
    }
    if set("SSH_CONNECTION") || set("SSH_TTY") {
        return false;
    }
    cfg!(any(target_os = "macos", windows)) || set("DISPLAY") || set("WAYLAND_DISPLAY")
}

/// The `sessctl login` command that logs slot `name` in again with `provider`, choosing
/// the flow by [`browser_available`].
pub fn command(name: &str, provider: &Provider, browser: bool) -> String {
    let base = format!("sessctl login {name} --provider {}", provider.name);
    let flag = match (
        provider.authorize_url.is_some(),
        provider.device_authorization_url.is_some(),
        provider.manual_redirect_uri.is_some(),
    ) {
        (true, _, _) if browser => "",
        (_, true, _) => " --device",
        (true, false, true) => " --manual",
        // A loopback redirect still works over SSH with a forwarded port.
        (true, false, false) => "",
        (false, false, _) => " --refresh-token-stdin",
    };
    format!("{base}{flag}")
}

/// The command that logs Claude Code slot `name`, whose store is in config dir `dir`, in
/// again: [`command`], whose login goes into `dir`, when the provider has an interactive
/// flow; else Claude Code's own login ([`claude_code_own`]): a refresh token piped in
/// cannot go into Claude Code's store (another program holds it).
pub fn claude_code_command(
    name: &str,
    provider: &Provider,
    dir: &std::path::Path,
    browser: bool,
) -> String {
    let command = command(name, provider, browser);
    if command.ends_with("--refresh-token-stdin") {
        claude_code_own(dir)
    } else {
        command
    }
}

/// Claude Code's own login into config dir `dir`, which sessctl picks up by itself.
pub fn claude_code_own(dir: &std::path::Path) -> String {
    let dir = dir.display().to_string();
    format!(
        "CLAUDE_CONFIG_DIR='{}' claude, then /login",
        dir.replace('\'', r"'\''")
    )
}

/// `path` as one shell word: as it is when it needs no quoting, else in single quotes.
pub fn shell_word(path: &std::path::Path) -> String {
    let text = path.display().to_string();
    let plain = |c: char| c.is_ascii_alphanumeric() || "/._-+,:@%=".contains(c);
    if !text.is_empty() && text.chars().all(plain) {
        text
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

/// [`command`] for this process's own environment.
pub fn command_here(name: &str, provider: &Provider) -> String {
    command(name, provider, browser_available(|v| std::env::var_os(v)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use std::collections::HashMap;
    use std::ffi::OsString;

    fn env(vars: &[(&str, &str)]) -> impl Fn(&str) -> Option<OsString> {
        let map: HashMap<String, OsString> = vars
            .iter()
            .map(|(k, v)| ((*k).to_owned(), OsString::from(v)))
            .collect();
        move |k| map.get(k).cloned()
    }

    #[test]
    fn a_path_is_one_shell_word_quoted_only_when_it_needs_it() {
        let word = |p: &str| shell_word(std::path::Path::new(p));
        assert_eq!(word("/home/a/.claude-work"), "/home/a/.claude-work");
        assert_eq!(word("/home/a b/.claude"), "'/home/a b/.claude'");
        assert_eq!(word("/h/it's"), r"'/h/it'\''s'");
        assert_eq!(word("/h/$HOME"), "'/h/$HOME'");
    }

    #[test]
    fn a_claude_code_slot_is_logged_in_into_its_dir_or_by_claude_code_itself() {
        let mut p = Config::default().providers["claude"].clone();
        let dir = std::path::Path::new("/home/a b/.claude-work");
        assert_eq!(
            claude_code_command("work", &p, dir, true),
            "sessctl login work --provider claude"
        );
        p.authorize_url = None;
        assert_eq!(
            claude_code_command("work", &p, dir, true),
            "CLAUDE_CONFIG_DIR='/home/a b/.claude-work' claude, then /login"
        );
    }

    #[test]
    fn browser_needs_a_display_on_linux_and_no_ssh() {
        assert!(browser_available(env(&[("BROWSER", "firefox")])));
        assert!(browser_available(env(&[
            ("BROWSER", "w3m"),
            ("SSH_TTY", "/dev/pts/0")
        ])));
        assert!(!browser_available(env(&[
            ("DISPLAY", ":0"),
            ("SSH_CONNECTION", "1 2 3 4")
        ])));
        assert!(!browser_available(env(&[("DISPLAY", "")])) || cfg!(target_os = "macos"));
        if cfg!(target_os = "linux") {
            assert!(!browser_available(env(&[])));
            assert!(browser_available(env(&[("WAYLAND_DISPLAY", "wayland-0")])));
            assert!(browser_available(env(&[("DISPLAY", ":0")])));
        }
    }

    #[test]
    fn the_command_fits_the_provider_and_the_machine() {
        let config = Config::default();
        let mut p = config.providers["claude"].clone();
        assert_eq!(
            command("work", &p, true),
            "sessctl login work --provider claude"
        );
        assert_eq!(
            command("work", &p, false),
            "sessctl login work --provider claude --manual"
        );
        p.device_authorization_url = Some("https://a.example/device".parse().unwrap());
        assert_eq!(
            command("work", &p, false),
            "sessctl login work --provider claude --device"
        );
        p.authorize_url = None;
        assert_eq!(
            command("work", &p, true),
            "sessctl login work --provider claude --device"
        );
        p.device_authorization_url = None;
        assert_eq!(
            command("work", &p, true),
            "sessctl login work --provider claude --refresh-token-stdin"
        );
    }
}
