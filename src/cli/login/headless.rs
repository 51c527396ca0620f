//! Which interactive flow a plain `sessctl login` (no --manual, --device or --no-browser) uses
//! on a machine where no browser can be opened (no display, an SSH session): waiting on a
//! loopback port no browser can reach would only time out, so it takes the provider's device
//! grant or its pasted-code flow instead, in the order [`crate::relogin::command`] recommends.

use crate::config::{Config, Provider};
use crate::paths::Paths;

/// The flow to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Loopback,
    Manual,
    Device,
}

/// The flow for a login with no flow flag, and the line saying why when it is not the
/// default one. `provider` is `None` when the config cannot be read (the daemon says why).
pub fn choose(provider: Option<&Provider>, browser: bool) -> (Flow, Option<&'static str>) {
    if browser {
        return (Flow::Loopback, None);
    }
    match provider {
        Some(p) if p.device_authorization_url.is_some() => (
            Flow::Device,
            Some(
                "(no browser can be opened here: logging in with a device code, as --device does)",
            ),
        ),
        Some(p) if p.authorize_url.is_some() && p.manual_redirect_uri.is_some() => (
            Flow::Manual,
            Some(
                "(no browser can be opened here: logging in with a pasted code, as --manual does)",
            ),
        ),
        _ => (
            Flow::Loopback,
            Some(
                "(no browser can be opened here: open the URL in a browser on a machine that can reach this port, e.g. through `ssh -L PORT:127.0.0.1:PORT`)",
            ),
        ),
    }
}

/// The provider named `name` in the config sessctl uses, if the config reads.
pub fn provider(paths: &Paths, name: &str) -> Option<Provider> {
    let config = Config::load(&paths.config_file, paths.config_explicit).ok()?;
    config.providers.get(name).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claude() -> Provider {
        Config::parse("", std::path::Path::new("c.yaml"))
            .unwrap()
            .providers
            .remove("claude")
            .unwrap()
    }

    #[test]
    fn a_browser_keeps_the_default_flow() {
        assert_eq!(choose(Some(&claude()), true), (Flow::Loopback, None));
    }

    #[test]
    fn without_a_browser_the_provider_decides() {
        let mut p = claude();
        let (flow, note) = choose(Some(&p), false);
        if p.device_authorization_url.is_none() {
            assert_eq!(flow, Flow::Manual);
            assert!(!note.unwrap().contains("--device"));
        }
        p.device_authorization_url = Some("https://x/device".parse().unwrap());
        assert_eq!(choose(Some(&p), false).0, Flow::Device);
        p.device_authorization_url = None;
        p.manual_redirect_uri = None;
        let (flow, note) = choose(Some(&p), false);
        assert_eq!(flow, Flow::Loopback);
        assert!(note.unwrap().contains("ssh -L"));
        assert_eq!(choose(None, false).0, Flow::Loopback);
    }
}
