//! Doctor's token-endpoint check: can each provider a slot uses be reached? One plain GET
//! to the token URL per provider, concurrently, with a short timeout. It carries no token
//! and no grant, so it spends nothing: any HTTP answer (a 404, 405 or 400 included) proves
//! DNS, TCP and TLS work. The replies' `Date` headers feed the clock check.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use reqwest::Url;

use crate::config::Config;

use super::Check;
use super::clock::ClockReading;

/// Per provider, connection included: a healthy endpoint answers in well under a second;
/// doctor should not make a person wait the daemon's 30 s to learn one is down.
const PROBE_TIMEOUT: Duration = Duration::from_secs(5);

const CHECK: &str = "token endpoint";

/// The endpoint checks and what their replies said about the time.
pub struct Probes {
    pub checks: Vec<Check>,
    pub clocks: Vec<ClockReading>,
}

/// How one GET ended.
enum Reply {
    Answered {
        status: u16,
        elapsed: Duration,
        clock: Option<ClockReading>,
    },
    Failed(String),
}

/// Probes the token endpoint of every provider in `providers` (those the slots use).
pub fn probe_all(config: &Config, providers: &Result<BTreeSet<String>, String>) -> Probes {
    let providers = match providers {
        Ok(providers) if providers.is_empty() => {
            return only(Check::pass(CHECK, "no slots yet: no provider to reach"));
        }
        Ok(providers) => providers,
        Err(error) => {
            return only(Check::warn(
                CHECK,
                format!("cannot tell which providers the slots use: {error}"),
                "start the daemon, or repair the state file it names",
            ));
        }
    };
    let mut checks = Vec::new();
    let mut targets = Vec::new();
    for name in providers {
        match config.providers.get(name) {
            Some(p) => targets.push((name.clone(), p.token_url.clone())),
            None => checks.push(Check::fail(
                CHECK,
                format!("{name}: a slot uses this provider, but the config has no such provider"),
                format!("add providers.{name} to the config, or log the slot out"),
            )),
        }
    }
    let replies = match get_all(&targets) {
        Ok(replies) => replies,
        Err(error) => {
            checks.push(Check::fail(CHECK, error, "reinstall sessctl"));
            return Probes {
                checks,
                clocks: Vec::new(),
            };
        }
    };
    let mut clocks = Vec::new();
    for ((name, url), reply) in targets.iter().zip(replies) {
        if let Reply::Answered {
            clock: Some(clock), ..
        } = &reply
        {
            clocks.push(clock.clone());
        }
        checks.push(classify(name, url, reply));
    }
    Probes { checks, clocks }
}

fn only(check: Check) -> Probes {
    Probes {
        checks: vec![check],
        clocks: Vec::new(),
    }
}

fn classify(name: &str, url: &Url, reply: Reply) -> Check {
    match reply {
        Reply::Answered {
            status, elapsed, ..
        } if status >= 500 => Check::warn(
            CHECK,
            format!(
                "{name}: {url} is reachable but answered HTTP {status} in {}ms",
                elapsed.as_millis()
            ),
            "the provider has trouble; the daemon retries refreshes with backoff",
        ),
        Reply::Answered {
            status, elapsed, ..
        } => Check::pass(
            CHECK,
            format!(
                "{name}: {url} answered HTTP {status} in {}ms",
                elapsed.as_millis()
            ),
        ),
        Reply::Failed(error) => Check::fail(
            CHECK,
            format!("{name}: {url} unreachable: {error}"),
            format!(
                "check the network, DNS, proxy and firewall, and providers.{name}.token_url in the config"
            ),
        ),
    }
}

/// One GET per target, concurrently, in target order.
fn get_all(targets: &[(String, Url)]) -> Result<Vec<Reply>, String> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the async runtime: {e}"))?;
    let http = crate::oauth::tls::client_builder()
        .timeout(PROBE_TIMEOUT)
        .connect_timeout(PROBE_TIMEOUT)
        .redirect(reqwest::redirect::Policy::none())
        .user_agent(concat!("sessctl-doctor/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
    runtime.block_on(async {
        let mut tasks = tokio::task::JoinSet::new();
        for (index, (_, url)) in targets.iter().enumerate() {
            let (http, url) = (http.clone(), url.clone());
            tasks.spawn(async move { (index, get(&http, url).await) });
        }
        let mut replies: Vec<Option<Reply>> = targets.iter().map(|_| None).collect();
        while let Some(joined) = tasks.join_next().await {
            if let Ok((index, reply)) = joined {
                replies[index] = Some(reply);
            }
        }
        Ok(replies
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Reply::Failed("the probe task failed".to_owned())))
            .collect())
    })
}

#[allow(
    clippy::cast_precision_loss,
    reason = "a clock skew in milliseconds is far below 2^52"
)]
async fn get(http: &reqwest::Client, url: Url) -> Reply {
    let source = url
        .host_str()
        .map(|h| match url.port() {
            Some(port) => format!("{h}:{port}"),
            None => h.to_owned(),
        })
        .unwrap_or_default();
    let sent_at = Utc::now();
    let started = Instant::now();
    match http.get(url).send().await {
        Ok(response) => {
            let elapsed = started.elapsed();
            let date = response
                .headers()
                .get(reqwest::header::DATE)
                .and_then(|v| v.to_str().ok())
                .and_then(parse_http_date);
            let local = sent_at + elapsed / 2;
            Reply::Answered {
                status: response.status().as_u16(),
                elapsed,
                clock: date.map(|server| ClockReading {
                    source,
                    skew_secs: (server - local).num_milliseconds() as f64 / 1000.0,
                }),
            }
        }
        Err(error) => Reply::Failed(crate::oauth::describe(&error)),
    }
}

/// An HTTP `Date` header (`Sun, 06 Nov 1994 08:49:37 GMT`, RFC 9110's IMF-fixdate).
pub fn parse_http_date(text: &str) -> Option<DateTime<Utc>> {
    DateTime::parse_from_rfc2822(text)
        .ok()
        .map(|d| d.with_timezone(&Utc))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn http_dates_parse_and_junk_does_not() {
        assert_eq!(
            parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT"),
            Some("1994-11-06T08:49:37Z".parse().unwrap())
        );
        assert_eq!(parse_http_date("yesterday"), None);
        assert_eq!(parse_http_date(""), None);
    }

    #[test]
    fn any_http_answer_is_reachable_and_a_network_error_fails() {
        let url: Url = "https://auth.example/token".parse().unwrap();
        let answered = |status| Reply::Answered {
            status,
            elapsed: Duration::from_millis(12),
            clock: None,
        };
        for status in [200, 400, 401, 404, 405] {
            let check = classify("p", &url, answered(status));
            assert_eq!(check.outcome, super::super::Outcome::Pass, "{status}");
        }
        let busy = classify("p", &url, answered(503));
        assert_eq!(busy.outcome, super::super::Outcome::Warn);
        let down = classify("p", &url, Reply::Failed("connection refused".to_owned()));
        assert_eq!(down.outcome, super::super::Outcome::Fail);
        assert!(down.detail.contains("unreachable: connection refused"));
        assert!(down.fix.unwrap().contains("providers.p.token_url"));
    }

    #[test]
    fn no_slots_pass_and_an_unknown_provider_fails_without_a_request() {
        let config = Config::default();
        let none = probe_all(&config, &Ok(BTreeSet::new()));
        assert_eq!(none.checks[0].outcome, super::super::Outcome::Pass);
        let unknown = probe_all(&config, &Ok(BTreeSet::from(["gone".to_owned()])));
        assert_eq!(unknown.checks.len(), 1);
        assert_eq!(unknown.checks[0].outcome, super::super::Outcome::Fail);
        let unreadable = probe_all(&config, &Err("state file is unreadable".to_owned()));
        assert_eq!(unreadable.checks[0].outcome, super::super::Outcome::Warn);
    }
}
