//! Keeps the host resolving while the daemon is down: `mesos-dns-sidecar resolvconf guard`, a
//! small root process of its own unit (`mesos-dns-sidecar-guard.service`).
//!
//! It asks the daemon for its zone's SOA twice a second. When nothing has answered for
//! `fail_after`, it points resolv.conf at the host's original resolvers (fallback mode), so
//! every other name keeps resolving (cluster names cannot, without the daemon); when the
//! daemon answers again, it points resolv.conf back at it. It also finishes an install whose
//! switch was left pending because the daemon was not answering yet. A single nameserver line
//! that changes with the daemon's health, rather than a second nameserver line, because musl
//! asks every nameserver at once and takes the first answer (an upstream's NXDOMAIN for a
//! cluster name would win), glibc waits out its full timeout on a socket systemd holds while
//! the daemon is down, and Docker drops loopback nameservers and would keep only the upstream.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use hickory_proto::op::{Message, Query};
use hickory_proto::rr::{Name, RecordType};
use tracing::{info, warn};

use crate::resolvconf::{self, Mode, Paths};

/// How the guard probes and decides.
#[derive(Debug, Clone)]
pub struct GuardSettings {
    /// The daemon's DNS address.
    pub daemon: SocketAddr,
    /// The daemon's zone, whose SOA it answers itself (SERVFAIL before its first state, which
    /// still means it is alive).
    pub zone: Name,
    /// Nameserver lines for daemon mode.
    pub nameservers: Vec<String>,
    /// Time between probes.
    pub interval: Duration,
    /// How long the daemon may not answer before the host falls back.
    pub fail_after: Duration,
    /// The daemon's systemd unit: while systemd reports it starting (loading its state) or
    /// stopping (a restart in progress), its silence is expected and the fallback waits, up
    /// to `busy_max`; a crashed, failing or stopped unit gets no such grace.
    pub unit: Option<String>,
    /// The longest a starting or stopping unit may stay silent before the host falls back.
    pub busy_max: Duration,
}

/// systemd sub-states in which the daemon is expected not to answer for a while: its main
/// process is loading state before READY, stopping (draining, then the restart), or reloading.
const BUSY_SUBSTATES: &[&str] = &["start", "stop", "stop-sigterm", "stop-watchdog", "reload"];

/// Whether systemd reports `unit` in the middle of a start, stop or reload.
fn unit_busy(unit: &str) -> bool {
    std::process::Command::new("systemctl")
        .args(["show", "--property=SubState", "--value", unit])
        .output()
        .is_ok_and(|o| BUSY_SUBSTATES.contains(&String::from_utf8_lossy(&o.stdout).trim()))
}

/// Asks the daemon for its zone's SOA and waits up to `wait` for any answer to this probe or
/// to an earlier one (late answers count: the daemon was only slow). Any response code counts:
/// an answer means the daemon is alive.
pub struct Prober {
    socket: Option<UdpSocket>,
    daemon: SocketAddr,
    zone: Name,
    recent: Vec<u16>,
}

impl Prober {
    /// A prober of the daemon at `daemon`, asking for `zone`'s SOA.
    pub fn new(daemon: SocketAddr, zone: Name) -> Prober {
        Prober {
            socket: None,
            daemon,
            zone,
            recent: Vec::new(),
        }
    }

    fn socket(&mut self) -> std::io::Result<&UdpSocket> {
        if self.socket.is_none() {
            let local: SocketAddr = if self.daemon.is_ipv4() {
                ([0, 0, 0, 0], 0).into()
            } else {
                (std::net::Ipv6Addr::UNSPECIFIED, 0).into()
            };
            let s = UdpSocket::bind(local)?;
            // Connected, so a closed port reports at once (ECONNREFUSED) instead of a timeout.
            s.connect(self.daemon)?;
            self.socket = Some(s);
        }
        Ok(self.socket.as_ref().expect("just set"))
    }

    /// Sends one probe and waits up to `wait` for an answer to it or to an earlier one.
    pub fn probe(&mut self, wait: Duration) -> bool {
        let id: u16 = rand::random();
        let mut q = Message::query();
        q.metadata.id = id;
        q.add_query(Query::query(self.zone.clone(), RecordType::SOA));
        let Ok(bytes) = q.to_vec() else { return false };
        self.recent.push(id);
        if self.recent.len() > 16 {
            self.recent.remove(0);
        }
        let deadline = Instant::now() + wait;
        let recent = self.recent.clone();
        let Ok(sock) = self.socket() else {
            return false;
        };
        if sock.send(&bytes).is_err() {
            // ECONNREFUSED from an earlier probe surfaces here too: nothing listens.
            self.socket = None;
            return false;
        }
        let mut buf = [0u8; 1500];
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            let _ = sock.set_read_timeout(Some(left));
            match sock.recv(&mut buf) {
                Ok(n) if n >= 12 && recent.contains(&u16::from_be_bytes([buf[0], buf[1]])) => {
                    return true
                }
                Ok(_) => continue,
                Err(e)
                    if matches!(
                        e.kind(),
                        std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
                    ) =>
                {
                    return false
                }
                Err(_) => {
                    // Refused: nothing listens now. A fresh socket for the next probe.
                    self.socket = None;
                    return false;
                }
            }
        }
    }

    /// Probes until an answer comes or `patience` has passed.
    pub fn wait_alive(&mut self, patience: Duration, interval: Duration) -> bool {
        let deadline = Instant::now() + patience;
        loop {
            let started = Instant::now();
            if self.probe(interval) {
                return true;
            }
            if Instant::now() >= deadline {
                return false;
            }
            std::thread::sleep(interval.saturating_sub(started.elapsed()));
        }
    }
}

/// What the guard decides from the mode and the daemon's health.
pub fn decide(mode: Mode, alive: bool, down_for: Duration, fail_after: Duration) -> Option<Mode> {
    match mode {
        Mode::NotInstalled => None,
        Mode::Pending | Mode::Fallback if alive => Some(Mode::Daemon),
        Mode::Daemon if !alive && down_for >= fail_after => Some(Mode::Fallback),
        _ => None,
    }
}

/// Whether a due fallback waits: the daemon has been silent for `silent`, less than
/// `busy_max`, and systemd says it is starting, stopping or reloading (`busy`, asked only
/// then).
pub fn hold_fallback(silent: Duration, busy_max: Duration, busy: impl FnOnce() -> bool) -> bool {
    silent < busy_max && busy()
}

/// Runs the guard forever.
pub fn run(paths: &Paths, settings: &GuardSettings) -> ! {
    let mut prober = Prober::new(settings.daemon, settings.zone.clone());
    let mut last_alive = Instant::now();
    info!(daemon = %settings.daemon, zone = %settings.zone, mode = %resolvconf::mode(paths), "guarding the host's resolv.conf");
    loop {
        let started = Instant::now();
        let alive = prober.probe(settings.interval);
        if alive {
            last_alive = Instant::now();
        }
        let mode = resolvconf::mode(paths);
        let mut decision = decide(mode, alive, last_alive.elapsed(), settings.fail_after);
        if decision == Some(Mode::Fallback) {
            let busy = || settings.unit.as_deref().is_some_and(unit_busy);
            if hold_fallback(last_alive.elapsed(), settings.busy_max, busy) {
                decision = None;
            }
        }
        if let Some(to) = decision {
            match resolvconf::switch(paths, to, &settings.nameservers) {
                Ok(true) if to == Mode::Fallback => warn!(
                    down_ms = last_alive.elapsed().as_millis() as u64,
                    "the daemon does not answer: the host resolves through its original resolvers until it does"
                ),
                Ok(true) => info!(was = %mode, "the daemon answers: the host resolves through it"),
                Ok(false) => {}
                Err(e) => warn!(error = %e, "cannot rewrite resolv.conf"),
            }
        }
        std::thread::sleep(settings.interval.saturating_sub(started.elapsed()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: Duration = Duration::from_secs(1);

    #[test]
    fn a_starting_daemon_gets_grace_up_to_a_bound() {
        let max = Duration::from_secs(15);
        assert!(hold_fallback(S, max, || true), "starting: wait");
        assert!(
            !hold_fallback(S, max, || false),
            "crashed or failed: no grace"
        );
        assert!(
            !hold_fallback(16 * S, max, || panic!("not asked")),
            "bounded"
        );
    }

    #[test]
    fn decisions() {
        let two = Duration::from_millis(1500);
        assert_eq!(decide(Mode::NotInstalled, true, S, two), None);
        assert_eq!(decide(Mode::Pending, true, S, two), Some(Mode::Daemon));
        assert_eq!(decide(Mode::Pending, false, 9 * S, two), None);
        assert_eq!(
            decide(Mode::Daemon, false, S, two),
            None,
            "not down long enough"
        );
        assert_eq!(
            decide(Mode::Daemon, false, 2 * S, two),
            Some(Mode::Fallback)
        );
        assert_eq!(decide(Mode::Fallback, true, S, two), Some(Mode::Daemon));
        assert_eq!(decide(Mode::Fallback, false, 9 * S, two), None);
    }

    #[test]
    fn probes_see_a_late_answer_and_a_closed_port() {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap();
        let mut p = Prober::new(addr, Name::from_ascii("mesos.").unwrap());
        // Nobody answers the first probe in time.
        assert!(!p.probe(Duration::from_millis(50)));
        let mut buf = [0u8; 512];
        let (n, first_peer) = server.recv_from(&mut buf).unwrap();
        let first = buf[..n].to_vec();
        // The answer to the first probe arrives during the second: it counts.
        let answerer = std::thread::spawn(move || {
            let (_, _) = server.recv_from(&mut [0u8; 512]).unwrap();
            server.send_to(&first, first_peer).unwrap();
            server
        });
        assert!(p.probe(Duration::from_secs(2)));
        drop(answerer.join().unwrap());
        // Nothing listens any more.
        assert!(!p.probe(Duration::from_millis(200)));
        assert!(!p.probe(Duration::from_millis(200)));
    }
}
