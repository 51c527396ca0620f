//! Why a request to a provider got no usable answer, classified once from the error's type
//! (reqwest's kinds, the `std::io::Error` kinds in its source chain) or the HTTP status, so
//! that a failed login can say the cause once with advice that fits it.
//!
//! Never holds a request or reply body: only the host name, a status and a wait.

use std::time::Duration;

/// The message hyper-util's connector gives a failed name resolution (`ConnectError::dns`).
/// That error type is not exported to us (hyper-util is not a direct dependency), so its
/// fixed message is the one marker of a DNS failure in reqwest's source chain.
const DNS_ERROR: &str = "dns error";

/// The cause of a failed provider request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Cause {
    /// The provider's host name does not resolve.
    Dns { host: String },
    /// No conversation with the provider: the connection was refused, reset or timed out.
    Unreachable { host: String, how: Unreachable },
    /// The TLS handshake failed (wrong clock, an intercepting proxy, a bad certificate).
    Tls { host: String },
    /// The provider answered 5xx or 429: failing or rate-limiting.
    Busy {
        status: u16,
        retry_after: Option<Duration>,
    },
    /// Anything else (a reply that does not parse, an unexpected OAuth error, ...): the
    /// error text says what.
    Other,
}

/// How a connection to the provider failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Unreachable {
    Refused,
    Reset,
    TimedOut,
    /// Another connection failure.
    Failed,
}

impl Cause {
    /// Classifies a failed reqwest request.
    pub fn of_request(error: &reqwest::Error) -> Self {
        use std::io::ErrorKind as K;
        let host = error
            .url()
            .and_then(|u| u.host_str())
            .unwrap_or("the provider")
            .to_owned();
        let chain: Vec<&(dyn std::error::Error + 'static)> =
            std::iter::successors(std::error::Error::source(error), |e| e.source()).collect();
        let kinds = io_kinds(&chain);
        let how = kinds.iter().find_map(|kind| match kind {
            K::ConnectionRefused => Some(Unreachable::Refused),
            K::ConnectionReset | K::ConnectionAborted | K::BrokenPipe => Some(Unreachable::Reset),
            K::TimedOut => Some(Unreachable::TimedOut),
            _ => None,
        });
        if error.is_timeout() {
            return Cause::Unreachable {
                host,
                how: Unreachable::TimedOut,
            };
        }
        if let Some(how) = how {
            return Cause::Unreachable { host, how };
        }
        if error.is_connect() {
            if chain.iter().any(|e| e.to_string() == DNS_ERROR) {
                return Cause::Dns { host };
            }
            // rustls and native-tls report a failed handshake as invalid data.
            if kinds.contains(&K::InvalidData) {
                return Cause::Tls { host };
            }
            return Cause::Unreachable {
                host,
                how: Unreachable::Failed,
            };
        }
        Cause::Other
    }

    /// The cause of an HTTP status, if it is a failure worth its own advice (5xx, 429).
    pub fn of_status(status: u16, retry_after: Option<Duration>) -> Self {
        if status >= 500 || status == 429 {
            Cause::Busy {
                status,
                retry_after,
            }
        } else {
            Cause::Other
        }
    }

    /// The cause and what to do about it, in one sentence; `None` for [`Cause::Other`].
    pub fn advice(&self) -> Option<String> {
        Some(match self {
            Cause::Dns { host } => format!(
                "cannot resolve {host}: check the network connection, DNS or proxy settings (HTTPS_PROXY)"
            ),
            Cause::Unreachable { host, how } => {
                let what = match how {
                    Unreachable::Refused => "refused the connection",
                    Unreachable::Reset => "dropped the connection",
                    Unreachable::TimedOut => "did not answer in time",
                    Unreachable::Failed => "could not be reached",
                };
                format!(
                    "{host} {what}: check the network connection or proxy (the provider may be down), then try again"
                )
            }
            Cause::Tls { host } => format!(
                "the secure connection to {host} failed: check the system clock and any proxy that intercepts HTTPS"
            ),
            Cause::Busy {
                status,
                retry_after,
            } => {
                let later = match retry_after {
                    Some(wait) => format!("try again in {} s", wait.as_secs().max(1)),
                    None => "try again later".to_owned(),
                };
                let doing = if *status == 429 {
                    "is rate-limiting"
                } else {
                    "is failing"
                };
                format!("the provider {doing} (HTTP {status}): {later}")
            }
            Cause::Other => return None,
        })
    }
}

/// The kinds of every `std::io::Error` in `chain`, including those wrapped inside another
/// (an `io::Error`'s `source` skips the error it wraps, so each is opened with `get_ref`).
fn io_kinds(chain: &[&(dyn std::error::Error + 'static)]) -> Vec<std::io::ErrorKind> {
    let mut kinds = Vec::new();
    for error in chain {
        let mut io = error.downcast_ref::<std::io::Error>();
        while let Some(e) = io {
            kinds.push(e.kind());
            io = e
                .get_ref()
                .and_then(|inner| inner.downcast_ref::<std::io::Error>());
        }
    }
    kinds
}

/// A provider request that got no usable reply: its cause, and a detail for the log (never
/// a body).
#[derive(Debug, Clone, thiserror::Error)]
#[error("{detail}")]
pub struct SendError {
    pub cause: Cause,
    pub detail: String,
}

#[cfg(test)]
mod tests {
    use super::*;

    async fn failed_request(url: &str) -> reqwest::Error {
        crate::oauth::tls::client_builder()
            .no_proxy()
            .build()
            .unwrap()
            .get(url)
            .send()
            .await
            .expect_err("the request must fail")
    }

    /// A resolver that finds nothing, as a DNS server answering NXDOMAIN would: no query
    /// leaves this machine.
    struct NoSuchHost;

    impl reqwest::dns::Resolve for NoSuchHost {
        fn resolve(&self, _name: reqwest::dns::Name) -> reqwest::dns::Resolving {
            Box::pin(async {
                Err(Box::new(std::io::Error::other(
                    "failed to lookup address information",
                ))
                    as Box<dyn std::error::Error + Send + Sync>)
            })
        }
    }

    #[tokio::test]
    async fn an_unresolvable_host_is_a_dns_failure() {
        let error = crate::oauth::tls::client_builder()
            .no_proxy()
            .dns_resolver(std::sync::Arc::new(NoSuchHost))
            .build()
            .unwrap()
            .get("http://nonexistent.invalid/token")
            .send()
            .await
            .expect_err("the request must fail");
        let cause = Cause::of_request(&error);
        assert_eq!(
            cause,
            Cause::Dns {
                host: "nonexistent.invalid".into()
            }
        );
        let advice = cause.advice().unwrap();
        assert!(advice.starts_with("cannot resolve nonexistent.invalid: check the network"));
    }

    #[tokio::test]
    async fn a_closed_port_is_a_refused_connection() {
        let port = {
            let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap().port()
        };
        let error = failed_request(&format!("http://127.0.0.1:{port}/token")).await;
        assert_eq!(
            Cause::of_request(&error),
            Cause::Unreachable {
                host: "127.0.0.1".into(),
                how: Unreachable::Refused
            }
        );
    }

    #[tokio::test]
    async fn a_failed_tls_handshake_is_a_tls_failure() {
        // A loopback "server" that answers a TLS hello with plain text.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let server = std::thread::spawn(move || {
            use std::io::{Read, Write};
            let (mut stream, _) = listener.accept().unwrap();
            let _ = stream.read(&mut [0; 1024]);
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\n\r\n");
        });
        let error = failed_request(&format!("https://127.0.0.1:{port}/token")).await;
        server.join().unwrap();
        assert_eq!(
            Cause::of_request(&error),
            Cause::Tls {
                host: "127.0.0.1".into()
            },
            "{error:?}"
        );
    }

    #[test]
    fn server_errors_and_rate_limits_say_when_to_try_again() {
        let busy = Cause::of_status(429, Some(Duration::from_secs(30)));
        assert_eq!(
            busy.advice().unwrap(),
            "the provider is rate-limiting (HTTP 429): try again in 30 s"
        );
        let failing = Cause::of_status(503, None).advice().unwrap();
        assert_eq!(
            failing,
            "the provider is failing (HTTP 503): try again later"
        );
        assert_eq!(Cause::of_status(400, None), Cause::Other);
        assert_eq!(Cause::Other.advice(), None);
    }
}
