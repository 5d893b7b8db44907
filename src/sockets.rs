//! The daemon's listening sockets, owned by the process rather than by one configuration
//! generation, so that no query is lost when the daemon is replaced or reloaded.
//!
//! Under systemd socket activation (`mesos-dns-sidecar.socket`), the sockets come from systemd
//! (`LISTEN_FDS`): systemd keeps them open while the process restarts, and the kernel queues
//! queries meanwhile, so a restart or an upgrade loses nothing. Without it (tests, `--port`),
//! the daemon binds them itself. Either way a reload (SIGHUP) hands the same sockets to the new
//! generation instead of closing and binding again.

use std::collections::HashMap;
use std::net::{SocketAddr, TcpListener, UdpSocket};
use std::os::fd::{FromRawFd, OwnedFd, RawFd};
use std::sync::Mutex;

use nix::sys::socket::{getsockname, getsockopt, sockopt, SockType, SockaddrStorage};
use tracing::{info, warn};

/// The first descriptor systemd passes (`SD_LISTEN_FDS_START`).
const LISTEN_FDS_START: RawFd = 3;

/// A socket kind and address: what a listen socket is looked up by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Key {
    /// A UDP socket bound to the address.
    Udp(SocketAddr),
    /// A listening TCP socket bound to the address.
    Tcp(SocketAddr),
}

enum Held {
    Udp(UdpSocket),
    Tcp(TcpListener),
}

/// Every listen socket of the process: inherited from systemd or bound on first use.
#[derive(Default)]
pub struct Sockets {
    held: Mutex<HashMap<Key, Held>>,
    inherited: Vec<Key>,
}

impl Sockets {
    /// The sockets systemd passed to this process (none when not socket-activated). The
    /// `LISTEN_*` variables are removed so children don't take the descriptors for theirs;
    /// call it before the process starts other threads (it changes the environment).
    pub fn from_environment() -> Sockets {
        let fds = listen_fds();
        std::env::remove_var("LISTEN_PID");
        std::env::remove_var("LISTEN_FDS");
        std::env::remove_var("LISTEN_FDNAMES");
        let mut held = HashMap::new();
        let mut inherited = Vec::new();
        for fd in fds {
            match adopt(fd) {
                Some((key, socket)) => {
                    info!(?key, "listen socket from systemd");
                    inherited.push(key);
                    held.insert(key, socket);
                }
                None => warn!(
                    fd,
                    "ignoring a passed descriptor that is no UDP or TCP socket"
                ),
            }
        }
        Sockets {
            held: Mutex::new(held),
            inherited,
        }
    }

    /// The sockets systemd passed, by kind and address.
    pub fn inherited(&self) -> &[Key] {
        &self.inherited
    }

    /// A handle on the UDP socket for `addr`, bound now if the process has none yet (port 0
    /// binds a new one, kept under the port it got).
    pub fn udp(&self, addr: SocketAddr) -> std::io::Result<UdpSocket> {
        let mut held = self.lock();
        let key = Key::Udp(addr);
        if let Some(Held::Udp(s)) = held.get(&key) {
            return s.try_clone();
        }
        let s = UdpSocket::bind(addr)?;
        s.set_nonblocking(true)?;
        let handle = s.try_clone()?;
        held.insert(Key::Udp(s.local_addr()?), Held::Udp(s));
        Ok(handle)
    }

    /// A handle on the listening TCP socket for `addr`, bound now if the process has none yet.
    pub fn tcp(&self, addr: SocketAddr) -> std::io::Result<TcpListener> {
        let mut held = self.lock();
        let key = Key::Tcp(addr);
        if let Some(Held::Tcp(s)) = held.get(&key) {
            return s.try_clone();
        }
        // std sets SO_REUSEADDR, so a restarted daemon binds while old connections linger.
        let s = TcpListener::bind(addr)?;
        s.set_nonblocking(true)?;
        let handle = s.try_clone()?;
        held.insert(Key::Tcp(s.local_addr()?), Held::Tcp(s));
        Ok(handle)
    }

    /// Closes the sockets the process bound itself that `keep` no longer names (a reload
    /// that dropped a listen address); sockets from systemd stay, as systemd owns them.
    pub fn retain(&self, keep: &[Key]) {
        let inherited = &self.inherited;
        self.lock()
            .retain(|k, _| keep.contains(k) || inherited.contains(k));
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Key, Held>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// The descriptors passed by systemd, when `LISTEN_PID` names this process.
fn listen_fds() -> Vec<RawFd> {
    let pid_ok = std::env::var("LISTEN_PID")
        .ok()
        .and_then(|p| p.parse::<u32>().ok())
        .is_some_and(|p| p == std::process::id());
    let count = std::env::var("LISTEN_FDS")
        .ok()
        .and_then(|n| n.parse::<RawFd>().ok())
        .unwrap_or(0);
    if !pid_ok || count <= 0 {
        return Vec::new();
    }
    (LISTEN_FDS_START..LISTEN_FDS_START + count).collect()
}

/// Takes ownership of a passed descriptor when it is a UDP or listening TCP socket on an IP
/// address; it is made non-blocking and close-on-exec.
fn adopt(fd: RawFd) -> Option<(Key, Held)> {
    // SAFETY: systemd passes these descriptors to this process for it to own, and nothing else
    // in the process uses them (`listen_fds` is read once, before anything opens files).
    let passed = unsafe { OwnedFd::from_raw_fd(fd) };
    // A duplicate is close-on-exec (F_DUPFD_CLOEXEC); the passed number is closed.
    let owned = passed.try_clone().ok()?;
    drop(passed);
    let kind = getsockopt(&owned, sockopt::SockType).ok()?;
    let addr = getsockname::<SockaddrStorage>(std::os::fd::AsRawFd::as_raw_fd(&owned)).ok()?;
    let addr = to_socket_addr(&addr)?;
    match kind {
        SockType::Datagram => {
            let s = UdpSocket::from(owned);
            s.set_nonblocking(true).ok()?;
            Some((Key::Udp(addr), Held::Udp(s)))
        }
        SockType::Stream => {
            let s = TcpListener::from(owned);
            s.set_nonblocking(true).ok()?;
            Some((Key::Tcp(addr), Held::Tcp(s)))
        }
        _ => None,
    }
}

fn to_socket_addr(addr: &SockaddrStorage) -> Option<SocketAddr> {
    if let Some(v4) = addr.as_sockaddr_in() {
        return Some(SocketAddr::from((v4.ip(), v4.port())));
    }
    let v6 = addr.as_sockaddr_in6()?;
    Some(SocketAddr::from((v6.ip(), v6.port())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_socket_bound_once_is_handed_out_again() {
        let sockets = Sockets::default();
        let a = sockets.udp("127.0.0.1:0".parse().unwrap()).unwrap();
        let addr = a.local_addr().unwrap();
        let b = sockets.udp(addr).unwrap();
        assert_eq!(b.local_addr().unwrap(), addr);
        let c = sockets.udp(addr).unwrap();
        assert_eq!(c.local_addr().unwrap(), addr);

        let t = sockets.tcp("127.0.0.1:0".parse().unwrap()).unwrap();
        let taddr = t.local_addr().unwrap();
        sockets.tcp(taddr).unwrap();
        sockets.retain(&[Key::Udp(addr), Key::Tcp(taddr)]);
        assert!(sockets.udp(addr).is_ok(), "kept");
    }

    #[test]
    fn passed_descriptors_are_adopted_by_kind_and_address() {
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = udp.local_addr().unwrap();
        let fd = std::os::fd::IntoRawFd::into_raw_fd(udp);
        let (key, _held) = adopt(fd).expect("a udp socket");
        assert_eq!(key, Key::Udp(addr));

        let tcp = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let taddr = tcp.local_addr().unwrap();
        let fd = std::os::fd::IntoRawFd::into_raw_fd(tcp);
        let (key, _held) = adopt(fd).expect("a tcp listener");
        assert_eq!(key, Key::Tcp(taddr));
    }
}
