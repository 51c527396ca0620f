//! The browser login: a loopback listener on `127.0.0.1` and a random port (RFC 8252)
//! receives the provider's redirect. One HTTP GET request line is parsed by hand (headers
//! are read and ignored, size-capped), a small HTML page answers, the connection closes.
//! Requests for other paths get a 404; a redirect whose `state` is not this login's is
//! refused and the wait goes on. The port is released when the login ends or times out.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::process::ExitCode;
use std::time::{Duration, Instant};

use anyhow::Context;

use crate::paths::Paths;
use crate::protocol::LoginFlow;
use crate::secret::Secret;

use super::{
    Args, CANCEL_CHECK_EVERY, TimedOut, browser, cancel, check_not_cancelled, complete, readable,
    report, state_of,
};

/// The path the redirect comes to.
const CALLBACK_PATH: &str = "/callback";
/// Largest request head read from the browser: real ones are a few KiB.
const MAX_REQUEST_BYTES: u64 = 32 * 1024;
/// Time one connection gets to send its request head.
const READ_TIMEOUT: Duration = Duration::from_secs(5);

/// What the redirect brought.
#[derive(Debug, PartialEq, Eq)]
enum Callback {
    Code {
        code: String,
        state: String,
    },
    /// The provider redirected with `error` (the user refused, say).
    Error {
        error: String,
        description: String,
    },
}

pub fn run(paths: &Paths, args: &Args, deadline: Instant) -> anyhow::Result<ExitCode> {
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .context("cannot open a local port for the browser's redirect")?;
    let port = listener.local_addr()?.port();
    let redirect_uri = format!("http://127.0.0.1:{port}{CALLBACK_PATH}");
    let begun = super::begin(paths, args, LoginFlow::Browser { redirect_uri })?;
    let url = begun
        .authorize_url
        .context("the daemon sent no authorization URL")?;
    let expected_state = state_of(&url);
    eprintln!(
        "To log in slot {}, open this URL in a browser:\n\n  {url}\n",
        args.name
    );
    if !args.no_browser {
        browser::open(&url);
    }
    eprintln!(
        "Waiting for the browser to come back to 127.0.0.1:{port} (up to {}s)...",
        args.timeout.as_secs()
    );
    let wait = Wait {
        paths,
        flow_id: &begun.flow_id,
        deadline,
    };
    let Some((stream, callback)) = wait_for_redirect(&listener, &wait, expected_state.as_deref())?
    else {
        cancel(paths, &begun.flow_id);
        return Err(TimedOut(args.timeout).into());
    };
    drop(listener);
    match callback {
        Callback::Code { code, state } => {
            let result = complete(paths, &args.name, &begun.flow_id, Secret::new(code), state);
            match &result {
                Ok(_) => respond(
                    stream,
                    200,
                    "Logged in",
                    "sessctl has the login. You can close this tab.",
                ),
                Err(e) => respond(stream, 400, "Login failed", &format!("{e:#}")),
            }
            report(result?)
        }
        Callback::Error { error, description } => {
            cancel(paths, &begun.flow_id);
            let text = format!("the provider refused the login: {error} {description}");
            respond(stream, 400, "Login failed", &text);
            anyhow::bail!("{}", text.trim_end())
        }
    }
}

/// What the wait for the redirect is about.
struct Wait<'a> {
    paths: &'a Paths,
    flow_id: &'a str,
    deadline: Instant,
}

/// Serves the listener until a redirect with this login's state arrives, or the deadline;
/// fails when a logout cancels the login meanwhile.
fn wait_for_redirect(
    listener: &TcpListener,
    wait: &Wait<'_>,
    expected_state: Option<&str>,
) -> anyhow::Result<Option<(TcpStream, Callback)>> {
    let deadline = wait.deadline;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        let slice = left.min(CANCEL_CHECK_EVERY);
        if !readable(listener, slice, "waiting for the browser's redirect")? {
            check_not_cancelled(wait.paths, wait.flow_id)?;
            continue;
        }
        let Ok((stream, _)) = listener.accept() else {
            continue;
        };
        let target = match read_request(&stream, deadline) {
            Ok(target) => target,
            Err(why) => {
                respond(stream, 400, "Bad request", &why);
                continue;
            }
        };
        match parse_callback(&target) {
            Ok(Some(Callback::Code { state, .. }))
                if expected_state.is_some_and(|s| s != state) =>
            {
                eprintln!(
                    "sessctl: refused a redirect whose state is not this login's (an old tab?); still waiting"
                );
                respond(
                    stream,
                    400,
                    "Login refused",
                    "This page belongs to another login attempt (its state does not match). Use the URL sessctl printed last.",
                );
            }
            Ok(Some(callback)) => return Ok(Some((stream, callback))),
            Ok(None) => respond(stream, 404, "Not found", "Nothing here."),
            Err(why) => respond(stream, 400, "Bad request", &why),
        }
    }
}

/// Reads the request head and returns the request target of a GET.
fn read_request(stream: &TcpStream, deadline: Instant) -> Result<String, String> {
    let left = deadline.saturating_duration_since(Instant::now());
    let _ = stream.set_read_timeout(Some(READ_TIMEOUT.min(left).max(Duration::from_millis(1))));
    let mut reader = BufReader::new(stream.take(MAX_REQUEST_BYTES));
    let mut line = String::new();
    reader
        .read_line(&mut line)
        .map_err(|_| "the request could not be read".to_owned())?;
    // Drain the headers so closing the socket does not reset the connection under the page.
    let mut header = String::new();
    while reader.read_line(&mut header).is_ok_and(|n| n > 0) && header.trim() != "" {
        header.clear();
    }
    request_target(&line)
}

/// `GET /path?query HTTP/1.1` → `/path?query`.
fn request_target(line: &str) -> Result<String, String> {
    let mut parts = line.trim_end().split(' ');
    match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some("GET"), Some(target), Some(version), None)
            if target.starts_with('/') && version.starts_with("HTTP/1.") =>
        {
            Ok(target.to_owned())
        }
        _ => Err("only GET requests are served here".to_owned()),
    }
}

/// The redirect's parameters, `None` for another path.
fn parse_callback(target: &str) -> Result<Option<Callback>, String> {
    let url = url::Url::parse(&format!("http://127.0.0.1{target}"))
        .map_err(|_| "the request target is not a URL path".to_owned())?;
    if url.path() != CALLBACK_PATH {
        return Ok(None);
    }
    let param = |name: &str| {
        url.query_pairs()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.into_owned())
    };
    if let Some(error) = param("error") {
        return Ok(Some(Callback::Error {
            error: printable(&error),
            description: printable(&param("error_description").unwrap_or_default()),
        }));
    }
    match (param("code"), param("state")) {
        (Some(code), Some(state)) if !code.is_empty() && !state.is_empty() => {
            Ok(Some(Callback::Code { code, state }))
        }
        _ => Err("the redirect carries no code and state".to_owned()),
    }
}

/// Text from the wire made safe to print: printable ASCII, at most 200 characters.
fn printable(text: &str) -> String {
    text.chars()
        .filter(|c| c.is_ascii_graphic() || *c == ' ')
        .take(200)
        .collect()
}

/// Answers with a small HTML page and closes the connection.
fn respond(mut stream: TcpStream, status: u16, title: &str, text: &str) {
    let reason = match status {
        200 => "OK",
        404 => "Not Found",
        _ => "Bad Request",
    };
    let body = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>sessctl: {title}</title></head>\
         <body style=\"font-family:sans-serif;margin:3em\"><h1>{title}</h1><p>{}</p></body></html>\n",
        escape_html(text)
    );
    let head = format!(
        "HTTP/1.1 {status} {reason}\r\nContent-Type: text/html; charset=utf-8\r\nContent-Length: {}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.set_write_timeout(Some(READ_TIMEOUT));
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body.as_bytes());
    let _ = stream.shutdown(std::net::Shutdown::Write);
}

fn escape_html(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '<' => "&lt;".to_owned(),
            '>' => "&gt;".to_owned(),
            '&' => "&amp;".to_owned(),
            '"' => "&quot;".to_owned(),
            c => c.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_get_request_lines_give_a_target() {
        assert_eq!(
            request_target("GET /callback?code=a&state=b HTTP/1.1\r\n").unwrap(),
            "/callback?code=a&state=b"
        );
        for bad in [
            "",
            "POST /callback HTTP/1.1",
            "GET callback HTTP/1.1",
            "GET /callback",
            "GET /a b HTTP/1.1",
            "GET /callback SMTP",
        ] {
            assert!(request_target(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn the_callback_yields_code_and_state_or_the_error() {
        assert_eq!(
            parse_callback("/callback?code=c%2B1&state=s").unwrap(),
            Some(Callback::Code {
                code: "c+1".into(),
                state: "s".into()
            })
        );
        assert_eq!(
            parse_callback("/callback?error=access_denied&error_description=no%0Athanks").unwrap(),
            Some(Callback::Error {
                error: "access_denied".into(),
                description: "nothanks".into()
            })
        );
        assert_eq!(parse_callback("/favicon.ico").unwrap(), None);
        assert!(parse_callback("/callback").is_err());
        assert!(parse_callback("/callback?code=&state=s").is_err());
        assert!(parse_callback("/callback?code=c").is_err());
    }

    #[test]
    fn pages_escape_what_they_show() {
        assert_eq!(
            escape_html("<a href=\"x\">&"),
            "&lt;a href=&quot;x&quot;&gt;&amp;"
        );
    }
}
