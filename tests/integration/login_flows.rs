//! The interactive logins end to end: the real `sessctl login` against the real OAuth server
//! (node-oidc-provider's own authorization-code + PKCE and device flows), with the user's part
//! played over HTTP by [`UserAgent`] on the server's real login, consent and device pages.
//! `$BROWSER` is a script that records the URL sessctl opens; the test then "visits" it.

use std::net::TcpListener;
use std::path::PathBuf;
use std::process::Output;
use std::time::Duration;

use serde_json::json;

use crate::flows::{Running, assert_success, code_and_stderr, config_yaml, token_works};
use crate::socket::{error_code, exchange};
use crate::support::{Background, OAuthServer, TestEnv, UserAgent, wait_for};

/// A login finishes in well under this once the user has done their part.
pub(crate) const LOGIN_DEADLINE: Duration = Duration::from_secs(40);
/// Until sessctl has printed or opened what the user needs.
const PROMPT_DEADLINE: Duration = Duration::from_secs(20);

/// The provider keys of every interactive flow, for the real server at `base`. The server
/// issues a refresh token only when consent was asked for (`prompt=consent`, OpenID Connect
/// Core §11): query parameters written into `authorize_url` are kept.
pub(crate) fn flow_keys(base: &str) -> String {
    format!(
        "authorize_url: {base}/auth?prompt=consent\ndevice_authorization_url: {base}/device/auth\nmanual_redirect_uri: {base}/manual-code\n"
    )
}

/// The real server, a config whose provider `test` offers every flow, a running daemon.
pub(crate) fn start() -> Running {
    let env = TestEnv::new();
    let server = OAuthServer::start();
    env.write_config(&config_yaml(&server, "", &flow_keys(server.base_url())));
    let daemon = env.start_daemon();
    Running {
        server,
        daemon,
        env,
    }
}

/// The login left nothing behind: the daemon holds no slot.
fn assert_no_slots(run: &Running) {
    let status = run.env.status_json();
    let slots = status["slots"].as_array().expect("slots in status --json");
    assert!(slots.is_empty(), "{status}");
}

/// A `$BROWSER` that writes the URL it is given to a file, and that file's path.
pub(crate) fn browser_script(run: &Running) -> (PathBuf, PathBuf) {
    let dir = run.env.root();
    let url_file = dir.join("opened-url");
    let script = dir.join("browser.sh");
    std::fs::write(
        &script,
        format!(
            "#!/bin/sh\nprintf '%s' \"$1\" > '{0}.tmp' && mv '{0}.tmp' '{0}'\n",
            url_file.display()
        ),
    )
    .expect("write browser script");
    let mut perms = std::fs::metadata(&script).expect("stat").permissions();
    std::os::unix::fs::PermissionsExt::set_mode(&mut perms, 0o755);
    std::fs::set_permissions(&script, perms).expect("chmod browser script");
    (script, url_file)
}

/// Starts `sessctl login ARGS` with the recording browser; returns it and the URL it opened.
pub(crate) fn login_in_background(run: &Running, args: &[&str]) -> (Background, String) {
    let (script, url_file) = browser_script(run);
    let _ = std::fs::remove_file(&url_file);
    let login = run
        .env
        .sessctl_background(args, &[("BROWSER", script.to_str().expect("utf-8 path"))]);
    wait_for("sessctl to open the browser", PROMPT_DEADLINE, || {
        url_file.exists()
    });
    let url = std::fs::read_to_string(&url_file).expect("read opened URL");
    (login, url)
}

/// Visits `url` as the browser would after the provider's redirect; returns status and page.
pub(crate) fn visit(url: &str) -> (u16, String) {
    let reply = crate::support::http_client()
        .get(url)
        .timeout(LOGIN_DEADLINE)
        .send()
        .expect("visit the loopback redirect");
    (reply.status().as_u16(), reply.text().unwrap_or_default())
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// The value of query parameter `name` in `url`.
fn query_param(url: &str, name: &str) -> String {
    reqwest::Url::parse(url)
        .expect("a URL")
        .query_pairs()
        .find(|(k, _)| k == name)
        .map_or_else(|| panic!("no {name} in {url}"), |(_, v)| v.into_owned())
}

#[test]
fn browser_login_creates_a_slot_whose_tokens_refresh() {
    let run = start();
    run.server.add_account("alice", "alice@example.com");
    let (login, url) = login_in_background(&run, &["login", "work", "--provider", "test"]);
    assert_eq!(query_param(&url, "code_challenge_method"), "S256");
    assert!(url.contains("code_challenge="), "{url}");
    let redirect = UserAgent::new(run.server.base_url()).authorize(&url, "alice");
    assert!(
        redirect.starts_with("http://127.0.0.1:") && redirect.contains("/callback?"),
        "{redirect}"
    );
    let (status, page) = visit(&redirect);
    let out = login.wait(LOGIN_DEADLINE);
    assert_success(&out, "login");
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Logged in"), "{page}");
    assert_eq!(stdout(&out), "created slot work (alice@example.com)\n");
    assert_eq!(run.server.stats().grant_type("authorization_code"), 1);

    assert!(
        run.env.secret_lookup("sessctl", "work").is_some(),
        "the tokens are in the keyring"
    );
    let before = run.token("work");
    assert_success(&run.env.sessctl(&["refresh", "work"]), "refresh");
    assert_eq!(run.server.stats().grant_type("refresh_token"), 1);
    let after = run.token("work");
    assert_ne!(before, after, "the refresh rotated the access token");
    assert!(token_works(&run.server, &after));
    assert_eq!(run.state("work"), "active");
}

/// A code exchange whose reply has an `expires_in` oauth2 cannot read (negative) or that
/// overflows a date (`u64::MAX` s) still logs in: the rotated tokens are kept and the lifetime
/// bounded. The bad `expires_in` is a stand-in written by the test server's `rewrite` fault
/// over the provider's real reply (the provider itself cannot send one).
#[test]
fn a_browser_login_whose_reply_has_a_bad_expires_in_still_logs_in() {
    let run = start();
    for (slot, account, raw) in [
        ("work", "alice", "-5"),
        ("home", "bob", "18446744073709551615"),
    ] {
        run.server
            .add_account(account, &format!("{account}@example.com"));
        run.server.push_faults(
            "token",
            vec![json!({"rewrite": {"drop": ["expires_in"], "raw": {"expires_in": raw}}})],
        );
        let (login, url) = login_in_background(&run, &["login", slot, "--provider", "test"]);
        let redirect = UserAgent::new(run.server.base_url()).authorize(&url, account);
        visit(&redirect);
        assert_success(
            &login.wait(LOGIN_DEADLINE),
            &format!("login with expires_in {raw}"),
        );
        assert_eq!(run.state(slot), "active");
        assert_success(
            &run.env.sessctl(&["refresh", slot]),
            "refresh after the login",
        );
        assert!(token_works(&run.server, &run.token(slot)));
    }
    assert_eq!(run.invalid_grants(), 0);
}

/// A code exchange whose 200 reply is over the parse limit (a stand-in body: the test
/// server's `rewrite` fault pads the provider's real reply) still logs in: the refresh token
/// is found in it and kept, and the slot gets a usable access token by refreshing at once.
#[test]
fn a_browser_login_whose_reply_is_over_the_size_limit_keeps_its_refresh_token() {
    let run = start();
    run.server.add_account("alice", "alice@example.com");
    run.server
        .push_faults("token", vec![json!({"rewrite": {"pad_bytes": 300_000}})]);
    let (login, url) = login_in_background(&run, &["login", "work", "--provider", "test"]);
    let redirect = UserAgent::new(run.server.base_url()).authorize(&url, "alice");
    visit(&redirect);
    assert_success(&login.wait(LOGIN_DEADLINE), "login with an oversized reply");
    wait_for("the slot's first refresh", LOGIN_DEADLINE, || {
        run.slot_status("work")["refreshes"].as_u64().unwrap_or(0) >= 1
    });
    assert_eq!(run.state("work"), "active");
    assert!(token_works(&run.server, &run.token("work")));
    assert_eq!(run.invalid_grants(), 0);
}

#[test]
fn browser_relogin_of_an_existing_slot_gives_it_new_tokens() {
    let run = start();
    run.login("work", "alice");
    let old = run.token("work");
    let (login, url) = login_in_background(&run, &["login", "work", "--provider", "test"]);
    let redirect = UserAgent::new(run.server.base_url()).authorize(&url, "alice");
    visit(&redirect);
    let out = login.wait(LOGIN_DEADLINE);
    assert_success(&out, "re-login");
    assert_eq!(stdout(&out), "updated slot work (alice@example.com)\n");
    let slot = run.slot_status("work");
    assert_eq!(slot["state"], "active", "{slot}");
    assert_eq!(slot["account"], "alice@example.com", "{slot}");
    let new = run.token("work");
    assert_ne!(old, new);
    assert!(token_works(&run.server, &new));
    // The completion path decides what happens to the replaced login; whatever it does,
    // the slot holds the browser login's tokens and they refresh.
    assert_success(
        &run.env.sessctl(&["refresh", "work"]),
        "refresh after re-login",
    );
}

/// The fix for a dead session, as the user is told to run it, under whatever name they
/// type: the account's one slot comes back, and no second slot appears.
#[test]
fn a_browser_login_under_another_name_reactivates_the_inactive_slot_of_that_account() {
    let run = start();
    let grant = run.login("work", "alice");
    run.server.revoke_grant(&grant.grant_id);
    let (code, _) = code_and_stderr(&run.env.sessctl(&["refresh", "work"]));
    assert_eq!(code, Some(4), "a revoked grant needs a new login");
    assert_eq!(run.env.status_json()["all_inactive"], true);

    let (login, url) = login_in_background(&run, &["login", "personal", "--provider", "test"]);
    let redirect = UserAgent::new(run.server.base_url()).authorize(&url, "alice");
    visit(&redirect);
    let out = login.wait(LOGIN_DEADLINE);
    assert_success(&out, "re-login under another name");
    let said = stdout(&out);
    assert!(said.contains("already has slot work"), "{said}");
    assert!(said.contains("active again"), "{said}");

    let status = run.env.status_json();
    assert_eq!(status["all_inactive"], false, "{status}");
    let slots = status["slots"].as_array().expect("slots");
    assert_eq!(slots.len(), 1, "{status}");
    assert_eq!(slots[0]["name"], "work", "{status}");
    assert_eq!(slots[0]["state"], "active", "{status}");
    assert!(token_works(&run.server, &run.token("work")));
}

#[test]
fn a_redirect_with_another_state_is_refused_and_the_login_still_completes() {
    let run = start();
    run.server.add_account("alice", "alice@example.com");
    let (login, url) = login_in_background(&run, &["login", "work", "--provider", "test"]);
    let redirect = UserAgent::new(run.server.base_url()).authorize(&url, "alice");
    let state = query_param(&redirect, "state");
    let forged = redirect.replace(&format!("state={state}"), "state=forged");
    let (status, page) = visit(&forged);
    assert_eq!(status, 400, "{page}");
    assert!(page.contains("another login attempt"), "{page}");
    wait_for("the refusal to be reported", PROMPT_DEADLINE, || {
        login.stderr().contains("state is not this login")
    });
    assert_eq!(run.server.stats().grant_type("authorization_code"), 0);
    let (status, _) = visit(&redirect);
    assert_eq!(status, 200);
    assert_success(&login.wait(LOGIN_DEADLINE), "login after a forged redirect");
}

#[test]
fn a_login_that_times_out_is_cancelled_and_releases_its_port() {
    let run = start();
    let (login, url) = login_in_background(
        &run,
        &["login", "work", "--provider", "test", "--timeout", "1s"],
    );
    let port: u16 = query_param(&url, "redirect_uri")
        .trim_start_matches("http://127.0.0.1:")
        .trim_end_matches("/callback")
        .parse()
        .expect("a port in the redirect URI");
    let out = login.wait(LOGIN_DEADLINE);
    let (code, stderr) = code_and_stderr(&out);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("did not finish within 1s"), "{stderr}");
    TcpListener::bind(("127.0.0.1", port)).expect("the loopback port is free again");
    assert_no_slots(&run);
}

#[test]
fn manual_login_takes_the_pasted_code() {
    let run = start();
    run.server.add_account("alice", "alice@example.com");
    let (mut login, url) =
        login_in_background(&run, &["login", "work", "--provider", "test", "--manual"]);
    let agent = UserAgent::new(run.server.base_url());
    let landing = agent.authorize(&url, "alice");
    assert!(landing.contains("/manual-code?"), "{landing}");
    let page = agent.get(&landing).body;
    let pasted = page
        .split("<code id=\"code\">")
        .nth(1)
        .and_then(|rest| rest.split("</code>").next())
        .unwrap_or_else(|| panic!("no code on the page: {page}"));
    assert!(pasted.contains('#'), "{pasted}");
    login.write_stdin(&format!("{pasted}\n"));
    let out = login.wait(LOGIN_DEADLINE);
    assert_success(&out, "manual login");
    assert_eq!(stdout(&out), "created slot work (alice@example.com)\n");
    assert!(token_works(&run.server, &run.token("work")));
}

#[test]
fn manual_login_refuses_bad_pastes_with_a_clear_message() {
    let run = start();
    let huge = "x".repeat(10_000) + "#y";
    for (paste, says) in [
        ("\n", "nothing was pasted"),
        ("just-a-code\n", "no '#'"),
        ("code#not-this-logins-state\n", "another login attempt"),
        (huge.as_str(), "over 8192 bytes"),
    ] {
        let (mut login, _) =
            login_in_background(&run, &["login", "work", "--provider", "test", "--manual"]);
        login.write_stdin(paste);
        let (code, stderr) = code_and_stderr(&login.wait(LOGIN_DEADLINE));
        assert_eq!(code, Some(64), "{paste:?}: {stderr}");
        assert!(stderr.contains(says), "{paste:?}: {stderr}");
    }
    assert_eq!(run.server.stats().token_requests, 0);
    assert_no_slots(&run);
}

/// Starts `sessctl login NAME --provider test --device` and returns it with the URI that
/// fills the code in.
pub(crate) fn device_login(run: &Running, name: &str) -> (Background, String) {
    device_login_with(run, name, &[])
}

/// [`device_login`] with `extra` arguments.
fn device_login_with(run: &Running, name: &str, extra: &[&str]) -> (Background, String) {
    let mut args = vec!["login", name, "--provider", "test", "--device"];
    args.extend_from_slice(extra);
    let login = run.env.sessctl_background(&args, &[]);
    wait_for("the device code to be shown", PROMPT_DEADLINE, || {
        login.stderr().contains("which fills the code in")
    });
    let stderr = login.stderr();
    let complete = stderr
        .split("(or open ")
        .nth(1)
        .and_then(|rest| rest.split(", which").next())
        .expect("the complete verification URI")
        .to_owned();
    (login, complete)
}

#[test]
fn device_login_survives_slow_down_and_creates_a_slot() {
    let run = start();
    run.server.add_account("carol", "carol@example.com");
    // node-oidc-provider never answers slow_down by itself: the fault layer injects one as
    // the answer to the first poll. The login must keep polling (oauth2 adds 5 s to the
    // interval, RFC 8628 §3.5) and finish.
    run.server.push_faults(
        "token",
        vec![json!({"status": 400, "body": {"error": "slow_down"}})],
    );
    let (login, complete) = device_login(&run, "tv");
    wait_for("the slow_down to be served", PROMPT_DEADLINE, || {
        run.server.stats().errors("http_400") == 1
    });
    UserAgent::new(run.server.base_url()).device(&complete, "carol", true);
    let out = login.wait(LOGIN_DEADLINE);
    assert_success(&out, "device login");
    assert_eq!(stdout(&out), "created slot tv (carol@example.com)\n");
    assert!(
        run.server
            .stats()
            .grant_type("urn:ietf:params:oauth:grant-type:device_code")
            >= 2
    );
    assert!(token_works(&run.server, &run.token("tv")));
}

/// A device authorization whose `expires_in` overflows a date (a stand-in reply: the test
/// server's `rewrite` fault changes the provider's real one) neither panics the daemon nor
/// stops the login.
#[test]
fn a_device_code_lifetime_of_u64_max_still_logs_in() {
    let run = start();
    run.server.add_account("carol", "carol@example.com");
    let huge = json!({"drop": ["expires_in"], "raw": {"expires_in": "18446744073709551615"}});
    run.server
        .push_faults("device", vec![json!({ "rewrite": huge })]);
    let (login, complete) = device_login(&run, "tv");
    UserAgent::new(run.server.base_url()).device(&complete, "carol", true);
    assert_success(&login.wait(LOGIN_DEADLINE), "device login");
    assert!(token_works(&run.server, &run.token("tv")));
}

#[test]
fn device_login_refused_by_the_user_stops_with_a_clear_message() {
    let run = start();
    run.server.add_account("carol", "carol@example.com");
    let (login, complete) = device_login(&run, "tv");
    UserAgent::new(run.server.base_url()).device(&complete, "carol", false);
    let (code, stderr) = code_and_stderr(&login.wait(LOGIN_DEADLINE));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("refused") && stderr.contains("access_denied"),
        "{stderr}"
    );
    assert_no_slots(&run);
}

#[test]
fn an_expired_device_code_stops_the_login() {
    let run = start();
    // The real server's device codes live 10 minutes: the fault layer answers the first
    // poll with expired_token as it would then.
    run.server.push_faults(
        "token",
        vec![json!({"status": 400, "body": {"error": "expired_token"}})],
    );
    let (login, _) = device_login(&run, "tv");
    let (code, stderr) = code_and_stderr(&login.wait(LOGIN_DEADLINE));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(stderr.contains("expired"), "{stderr}");
}

#[test]
fn a_flow_the_provider_lacks_is_a_usage_error_naming_the_config_key() {
    let run = Running::start("");
    let out = run
        .env
        .sessctl(&["login", "tv", "--provider", "test", "--device"]);
    let (code, stderr) = code_and_stderr(&out);
    assert_eq!(code, Some(64), "{stderr}");
    assert!(
        stderr.contains("providers.test.device_authorization_url"),
        "{stderr}"
    );
    let out = run
        .env
        .sessctl(&["login", "tv", "--provider", "test", "--manual"]);
    let (code, stderr) = code_and_stderr(&out);
    assert_eq!(code, Some(64), "{stderr}");
    assert!(
        stderr.contains("providers.test.authorize_url and providers.test.manual_redirect_uri"),
        "{stderr}"
    );
}

#[test]
fn login_flags_that_exclude_each_other_are_refused() {
    let run = Running::start("");
    for args in [
        &["login", "a", "--provider", "test", "--device", "--manual"][..],
        &[
            "login",
            "a",
            "--provider",
            "test",
            "--device",
            "--refresh-token-stdin",
        ],
        &["login", "a", "--provider", "test", "--timeout", "0s"],
        &["login", "a", "--provider", "test", "--timeout", "soon"],
    ] {
        let (code, stderr) = code_and_stderr(&run.env.sessctl(args));
        assert_eq!(code, Some(64), "{args:?}: {stderr}");
    }
}

#[test]
fn bad_login_requests_on_the_socket_get_typed_errors_and_forget_nothing_else() {
    let run = start();
    let send = |request: serde_json::Value| {
        let mut line = serde_json::to_vec(&request).expect("json");
        line.push(b'\n');
        exchange(&run, &line)
    };
    let begin = |flow: serde_json::Value| {
        json!({"v": 1, "type": "login_begin", "name": "work", "provider": "test",
               "flow": flow, "timeout_secs": 60})
    };
    for (request, code) in [
        (begin(json!({"kind": "teleport"})), "bad_request"),
        (begin(json!({"kind": "browser"})), "bad_request"),
        (
            begin(json!({"kind": "browser", "redirect_uri": "http://evil.example:1/cb"})),
            "bad_request",
        ),
        (
            begin(json!({"kind": "browser", "redirect_uri": "http://127.0.0.1/cb"})),
            "bad_request",
        ),
        (
            json!({"v": 1, "type": "login_begin", "name": "work", "provider": "test",
                   "flow": {"kind": "manual"}, "timeout_secs": 0}),
            "bad_request",
        ),
        (
            json!({"v": 1, "type": "login_begin", "name": "Bad Name", "provider": "test",
                   "flow": {"kind": "manual"}, "timeout_secs": 60}),
            "invalid_name",
        ),
        (
            json!({"v": 1, "type": "login_begin", "name": "work", "provider": "nope",
                   "flow": {"kind": "device"}, "timeout_secs": 60}),
            "unknown_provider",
        ),
        (
            json!({"v": 1, "type": "login_complete", "flow_id": "0", "code": "c", "state": "s"}),
            "unknown_flow",
        ),
        (
            json!({"v": 1, "type": "login_wait", "flow_id": "0"}),
            "unknown_flow",
        ),
        (
            json!({"v": 1, "type": "login_cancel", "flow_id": "0"}),
            "unknown_flow",
        ),
        (json!({"v": 1, "type": "login_wait"}), "bad_request"),
    ] {
        let reply = send(request.clone());
        assert_eq!(error_code(&reply), code, "{request} -> {reply}");
    }

    // A pasted-code login: a wait says it is pending (its CLI asks, to learn of a logout
    // cancelling it); a wrong state ends it (a code is single-use).
    let started = send(begin(json!({"kind": "manual"})));
    let flow_id = started["ok"]["flow_id"]
        .as_str()
        .expect("a flow id")
        .to_owned();
    let wait = send(json!({"v": 1, "type": "login_wait", "flow_id": flow_id}));
    assert_eq!(wait["ok"]["type"], "login_pending", "{wait}");
    let complete = json!({"v": 1, "type": "login_complete", "flow_id": flow_id,
                          "code": "c", "state": "not-its-state"});
    let refused = send(complete.clone());
    assert_eq!(error_code(&refused), "login_failed", "{refused}");
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("state does not match"),
        "{refused}"
    );
    assert_eq!(error_code(&send(complete)), "unknown_flow");
    assert_eq!(run.server.stats().token_requests, 0);
    assert_success(&run.env.sessctl(&["ping"]), "ping after bad login requests");
}

#[test]
fn a_device_login_nobody_approves_ends_at_its_timeout() {
    let run = start();
    let (login, _) = device_login_with(&run, "tv", &["--timeout", "2s"]);
    let (code, stderr) = code_and_stderr(&login.wait(LOGIN_DEADLINE));
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("expired before it was approved") || stderr.contains("within 2s"),
        "{stderr}"
    );
    assert_no_slots(&run);
}

/// A plain `sessctl login` where no browser can be opened (the test env has no display and
/// no `$BROWSER`), for a provider with a pasted-code flow but no device grant (like
/// `claude`): it takes the pasted code at once instead of waiting on a port no browser can
/// reach, and names the flag it stands for.
#[test]
fn a_login_without_a_browser_takes_the_pasted_code_flow() {
    let env = TestEnv::new();
    let server = OAuthServer::start();
    let base = server.base_url();
    let keys = format!(
        "authorize_url: {base}/auth?prompt=consent\nmanual_redirect_uri: {base}/manual-code\n"
    );
    env.write_config(&config_yaml(&server, "", &keys));
    let _daemon = env.start_daemon();
    let login = env.sessctl_background(
        &["login", "work", "--provider", "test", "--timeout", "60s"],
        &[],
    );
    wait_for("the pasted-code prompt", PROMPT_DEADLINE, || {
        login.stderr().contains("as --manual does")
    });
    let mut login = login;
    login.write_stdin("\n");
    let (code, stderr) = code_and_stderr(&login.wait(LOGIN_DEADLINE));
    assert_eq!(code, Some(64), "{stderr}");
    assert!(stderr.contains("nothing was pasted"), "{stderr}");
    assert!(
        !stderr.contains("--device") && !stderr.contains("Waiting for the browser"),
        "{stderr}"
    );
}
