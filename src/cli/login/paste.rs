//! The pasted-code login (`--manual`): print the URL, read what the provider's page showed
//! (`CODE#STATE`, as Claude's does, or the whole redirect URL), check the state, hand the
//! code to the daemon. Bad pastes get a clear error and the login is cancelled.

use std::io::Read;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;

use crate::cli::exit::UsageError;
use crate::paths::Paths;
use crate::protocol::LoginFlow;
use crate::secret::Secret;

use super::{
    Args, CANCEL_CHECK_EVERY, TimedOut, browser, cancel, check_not_cancelled, complete, report,
    state_of,
};

/// Longest paste accepted: a code and state are a few hundred bytes, a redirect URL a few
/// KiB.
const MAX_PASTE_BYTES: usize = 8 * 1024;

pub fn run(paths: &Paths, args: &Args, deadline: Instant) -> anyhow::Result<ExitCode> {
    let begun = super::begin(paths, args, LoginFlow::Manual)?;
    let url = begun
        .authorize_url
        .context("the daemon sent no authorization URL")?;
    eprintln!(
        "To log in slot {}, open this URL in a browser (on any machine), log in, and paste the code the page shows:\n\n  {url}\n",
        args.name
    );
    if !args.no_browser {
        browser::open(&url);
    }
    eprint!("Code: ");
    let mut still_pending = || check_not_cancelled(paths, &begun.flow_id);
    let pasted = match read_line(deadline, &mut still_pending) {
        Ok(Some(line)) => line,
        Ok(None) => {
            cancel(paths, &begun.flow_id);
            return Err(TimedOut(args.timeout).into());
        }
        Err(e) => {
            cancel(paths, &begun.flow_id);
            return Err(e);
        }
    };
    let checked = parse_pasted(&pasted).and_then(|(code, state)| {
        match state_of(&url) {
            Some(expected) if expected != state => Err(
                "the pasted code belongs to another login attempt (its state does not match this one's); run the command again and paste the code the new URL gives".to_owned(),
            ),
            _ => Ok((code, state)),
        }
    });
    let (code, state) = match checked {
        Ok(pair) => pair,
        Err(message) => {
            cancel(paths, &begun.flow_id);
            return Err(UsageError(message).into());
        }
    };
    report(complete(
        paths,
        &args.name,
        &begun.flow_id,
        Secret::new(code),
        state,
    )?)
}

/// Reads one line from stdin, or `None` when `deadline` passes first; fails when
/// `still_pending` does (a logout cancelled the login), which it is asked every
/// [`CANCEL_CHECK_EVERY`] while nothing is typed.
fn read_line(
    deadline: Instant,
    still_pending: &mut dyn FnMut() -> anyhow::Result<()>,
) -> anyhow::Result<Option<String>> {
    let stdin = std::io::stdin();
    let mut bytes = Vec::new();
    let mut chunk = [0u8; 1024];
    while !bytes.contains(&b'\n') && bytes.len() <= MAX_PASTE_BYTES {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        let slice = left.min(CANCEL_CHECK_EVERY);
        if !super::readable(&stdin, slice, "waiting for the pasted code")? {
            still_pending()?;
            continue;
        }
        let n = stdin
            .lock()
            .read(&mut chunk)
            .context("cannot read the pasted code from stdin")?;
        if n == 0 {
            break;
        }
        bytes.extend_from_slice(&chunk[..n]);
    }
    let line = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    if line.len() > MAX_PASTE_BYTES {
        return Err(UsageError(format!(
            "the pasted text is over {MAX_PASTE_BYTES} bytes; paste only the code the page shows"
        ))
        .into());
    }
    String::from_utf8(line.to_vec())
        .map(Some)
        .map_err(|_| UsageError("the pasted text is not UTF-8".into()).into())
}

/// `CODE#STATE`, or a redirect URL with `code` and `state` in its query, as (code, state).
pub fn parse_pasted(text: &str) -> Result<(String, String), String> {
    let text = text.trim();
    if text.is_empty() {
        return Err("nothing was pasted; paste the code the provider's page shows".into());
    }
    let (code, state) = if text.starts_with("https://") || text.starts_with("http://") {
        from_url(text)?
    } else {
        let Some((code, state)) = text.split_once('#') else {
            return Err("the pasted text has no '#': paste the whole code the page shows (CODE#STATE), or the address the browser ended on".into());
        };
        (code.to_owned(), state.to_owned())
    };
    let fine = |s: &str| !s.is_empty() && s.chars().all(|c| c.is_ascii_graphic());
    if !fine(&code) || !fine(&state) {
        return Err(
            "the pasted code is not in the form CODE#STATE (both parts non-empty, no spaces)"
                .into(),
        );
    }
    Ok((code, state))
}

fn from_url(text: &str) -> Result<(String, String), String> {
    let url = url::Url::parse(text).map_err(|_| "the pasted address is not a URL".to_owned())?;
    let param = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    if let Some(error) = param("error") {
        let error: String = error
            .chars()
            .filter(char::is_ascii_graphic)
            .take(64)
            .collect();
        return Err(format!("the provider refused the login ({error})"));
    }
    match (param("code"), param("state")) {
        (Some(code), Some(state)) => Ok((code, state)),
        _ => Err("the pasted address has no code and state in it".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn code_hash_state_and_redirect_urls_are_understood() {
        assert_eq!(
            parse_pasted("  abc#def \n").unwrap(),
            ("abc".into(), "def".into())
        );
        assert_eq!(
            parse_pasted("https://example.com/cb?code=c%2B&state=s").unwrap(),
            ("c+".into(), "s".into())
        );
    }

    #[test]
    fn bad_pastes_say_what_is_wrong() {
        for (paste, says) in [
            ("", "nothing was pasted"),
            ("   ", "nothing was pasted"),
            ("abcdef", "no '#'"),
            ("#state", "CODE#STATE"),
            ("code#", "CODE#STATE"),
            ("co de#st", "CODE#STATE"),
            ("https://x.example/cb?code=c", "no code and state"),
            ("https://x.example/cb?error=access_denied", "refused"),
            ("https:// not a url", "not a URL"),
        ] {
            let err = parse_pasted(paste).unwrap_err();
            assert!(err.contains(says), "{paste:?} gave {err:?}");
        }
    }
}
