//! The loopback listeners a browser login's redirect comes back to: one port, bound on every
//! loopback address the redirect's host can reach. For `127.0.0.1` that is that address; for
//! `localhost` it is both `127.0.0.1` and `::1` (browsers resolve `localhost` themselves and
//! may try either first) plus any other loopback address the system resolves it to. Only
//! loopback addresses are ever bound: a resolver that maps `localhost` elsewhere is ignored.

use std::io::ErrorKind;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, TcpListener, TcpStream, ToSocketAddrs};
use std::time::Duration;

use anyhow::Context;

use crate::config::RedirectHost;

/// Tries at a port free on every address before giving up (another program may take the
/// port between two binds).
const BIND_ATTEMPTS: usize = 8;

/// Listeners on one port, on one or more loopback addresses.
pub struct Listeners {
    listeners: Vec<TcpListener>,
    port: u16,
}

impl Listeners {
    /// Binds a random port on the loopback addresses `host` names. `127.0.0.1` must bind;
    /// the other addresses are added where the machine has them.
    pub fn bind(host: RedirectHost) -> anyhow::Result<Self> {
        let extra = match host {
            RedirectHost::Ipv4Loopback => Vec::new(),
            RedirectHost::Localhost => localhost_addresses(),
        };
        for _ in 0..BIND_ATTEMPTS {
            let first = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
                .context("cannot open a local port for the browser's redirect")?;
            let port = first.local_addr()?.port();
            match bind_others(&extra, port) {
                Ok(mut others) => {
                    others.insert(0, first);
                    return Ok(Listeners {
                        listeners: others,
                        port,
                    });
                }
                Err(e) if e.kind() == ErrorKind::AddrInUse => {}
                Err(e) => {
                    return Err(e).context("cannot open a local port for the browser's redirect");
                }
            }
        }
        anyhow::bail!("cannot find a local port free on every loopback address of localhost")
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The addresses listened on.
    #[cfg(test)]
    fn addresses(&self) -> Vec<std::net::SocketAddr> {
        self.listeners
            .iter()
            .filter_map(|l| l.local_addr().ok())
            .collect()
    }

    /// Waits up to `timeout` for a connection on any listener; `None` when none came. An
    /// interrupted wait or a failed accept counts as none.
    pub fn accept_within(&self, timeout: Duration) -> anyhow::Result<Option<TcpStream>> {
        let Some(index) = ready_index(&self.listeners, timeout)? else {
            return Ok(None);
        };
        Ok(self.listeners[index]
            .accept()
            .ok()
            .map(|(stream, _)| stream))
    }
}

/// Every loopback address other than `127.0.0.1` that `localhost` may reach: `::1`, and what
/// the system resolver gives (loopback ones only).
fn localhost_addresses() -> Vec<IpAddr> {
    let mut found = vec![IpAddr::V6(Ipv6Addr::LOCALHOST)];
    if let Ok(resolved) = ("localhost", 0).to_socket_addrs() {
        for address in resolved.map(|a| a.ip()) {
            if address.is_loopback() && !found.contains(&address) {
                found.push(address);
            }
        }
    }
    found.retain(|a| *a != IpAddr::V4(Ipv4Addr::LOCALHOST));
    found
}

/// Binds `port` on each of `addresses`; an address the machine lacks (no IPv6) is skipped,
/// a port taken there fails with `AddrInUse` so the caller picks another.
fn bind_others(addresses: &[IpAddr], port: u16) -> std::io::Result<Vec<TcpListener>> {
    let mut bound = Vec::new();
    for address in addresses {
        match TcpListener::bind((*address, port)) {
            Ok(listener) => bound.push(listener),
            Err(e) if e.kind() == ErrorKind::AddrInUse => return Err(e),
            Err(e) => tracing::debug!("not listening on {address}: {e}"),
        }
    }
    Ok(bound)
}

/// The index of a listener with a connection waiting, within `timeout`.
#[cfg(unix)]
fn ready_index(listeners: &[TcpListener], timeout: Duration) -> anyhow::Result<Option<usize>> {
    use std::os::fd::AsRawFd;
    let mut fds: Vec<libc::pollfd> = listeners
        .iter()
        .map(|l| libc::pollfd {
            fd: l.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        })
        .collect();
    let millis = libc::c_int::try_from(timeout.as_millis()).unwrap_or(libc::c_int::MAX);
    let count = libc::nfds_t::try_from(fds.len()).unwrap_or(libc::nfds_t::MAX);
    // SAFETY: `fds` is a valid array of `count` pollfds, owned by this frame for the call.
    let ready = unsafe { libc::poll(fds.as_mut_ptr(), count, millis.max(1)) };
    if ready < 0 {
        let error = std::io::Error::last_os_error();
        if error.kind() == ErrorKind::Interrupted {
            return Ok(None);
        }
        return Err(error).context("waiting for the browser's redirect");
    }
    Ok(fds.iter().position(|fd| fd.revents & libc::POLLIN != 0))
}

/// Login needs the daemon, which does not run on Windows yet.
#[cfg(not(unix))]
fn ready_index(_listeners: &[TcpListener], _timeout: Duration) -> anyhow::Result<Option<usize>> {
    Err(crate::error::Error::UnsupportedPlatform.into())
}

#[cfg(test)]
mod tests {
    use std::net::SocketAddr;

    use super::*;

    #[test]
    fn localhost_listens_on_every_loopback_address_it_resolves_to_and_nothing_else() {
        let listeners = Listeners::bind(RedirectHost::Localhost).unwrap();
        let addresses = listeners.addresses();
        assert!(
            addresses.iter().all(|a| a.ip().is_loopback()),
            "{addresses:?}"
        );
        assert!(addresses.iter().all(|a| a.port() == listeners.port()));
        assert!(addresses.contains(&SocketAddr::from((Ipv4Addr::LOCALHOST, listeners.port()))));
        // Browsers take `localhost` as both 127.0.0.1 and ::1; the system resolver may say
        // more. Each reaches the listener, unless the machine cannot listen there at all
        // (IPv6 turned off while `localhost` still names `::1`).
        let mut targets: Vec<SocketAddr> = ("localhost", listeners.port())
            .to_socket_addrs()
            .unwrap()
            .filter(|a| a.ip().is_loopback())
            .collect();
        targets.push(SocketAddr::from((Ipv6Addr::LOCALHOST, listeners.port())));
        for target in targets {
            if TcpListener::bind((target.ip(), 0)).is_err() {
                continue;
            }
            assert!(addresses.contains(&target), "{target} in {addresses:?}");
            TcpStream::connect(target).unwrap();
            let accepted = listeners.accept_within(Duration::from_secs(5)).unwrap();
            assert!(accepted.is_some(), "{target}");
        }
    }

    #[test]
    fn an_ip_redirect_listens_on_127_0_0_1_only() {
        let listeners = Listeners::bind(RedirectHost::Ipv4Loopback).unwrap();
        assert_eq!(
            listeners.addresses(),
            [SocketAddr::from((Ipv4Addr::LOCALHOST, listeners.port()))]
        );
        assert!(
            listeners
                .accept_within(Duration::from_millis(10))
                .unwrap()
                .is_none()
        );
    }
}
