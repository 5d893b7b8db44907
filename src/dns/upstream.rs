//! Upstream resolvers: where forwarded queries go, how healthy each one is, and one exchange
//! over UDP or TCP.
//!
//! Health is kept per upstream (consecutive failures, a smoothed round-trip time and its
//! variation, and when it last answered anything), so after one upstream dies the next queries
//! go straight to a live one instead of waiting out a timeout each, and the dead one is retried
//! after a back-off. An upstream that is slow for some names but keeps answering others is not
//! dead: it is only passed over after a quiet spell with no answer at all.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

use super::wire;
use crate::metrics::Histogram;

/// Consecutive failures after which an upstream counts as down (if also quiet, below).
const DOWN_AFTER: u32 = 3;
/// An upstream is only marked down when it has answered nothing at all for this long: slow
/// names on a live upstream must not take it out of service.
const DOWN_QUIET: Duration = Duration::from_secs(2);
/// How long a down upstream is passed over before it is tried again.
const DOWN_BACKOFF: Duration = Duration::from_secs(5);
/// Attempt timeout for an upstream with no round-trip sample yet.
const INITIAL_ATTEMPT_TIMEOUT: Duration = Duration::from_millis(1000);
/// Bounds of the adaptive attempt timeout. The floor is well above a loopback or LAN round
/// trip: after many fast answers the timeout would otherwise sit at the floor, and a name the
/// upstream must itself resolve (hundreds of milliseconds) would be retried needlessly. A
/// retry does not abandon the earlier attempt (its answer is still taken), so the floor only
/// decides when a second query goes out.
const MIN_ATTEMPT_TIMEOUT: Duration = Duration::from_millis(400);
const MAX_ATTEMPT_TIMEOUT: Duration = Duration::from_millis(3000);

/// One upstream resolver and its health.
#[derive(Debug)]
pub struct Upstream {
    /// Address and port.
    pub addr: SocketAddr,
    failures: AtomicU32,
    /// Smoothed RTT in microseconds; 0 = no sample yet.
    srtt_us: AtomicU32,
    /// Smoothed mean deviation of the RTT in microseconds (RFC 6298's RTTVAR).
    rttvar_us: AtomicU32,
    /// Milliseconds since `epoch` of the last answer of any kind (0 = none yet).
    answered_ms: AtomicU64,
    /// Milliseconds since `epoch` until which the upstream is passed over.
    down_until_ms: AtomicU64,
    epoch: Instant,
    /// Total failed exchanges (timeouts, errors, SERVFAIL/REFUSED answers).
    pub failures_total: AtomicU64,
    /// Total successful exchanges.
    pub answers_total: AtomicU64,
    /// Round-trip times of the answered exchanges.
    rtt: Histogram,
    /// Sockets of finished exchanges, kept for the next ones.
    spare: std::sync::Mutex<Vec<Spare>>,
}

/// A connected UDP socket whose last exchange ended with its answer, and how many exchanges
/// it has carried.
#[derive(Debug)]
struct Spare {
    sock: UdpSocket,
    uses: u32,
}

/// Exchanges one source port carries before it is closed for a fresh random one. Opening a
/// socket per query costs five system calls; reusing each a few dozen times (as dnsmasq does
/// with its random socket pool) keeps the port unpredictable over time at a fraction of that.
const SOCKET_USES: u32 = 32;
/// Spare sockets kept per upstream: enough for the queries in flight at a busy moment (at
/// 150k queries/s with a tenth missing the cache, a few hundred), so sockets are not closed
/// only to be opened again a moment later.
const SPARE_SOCKETS: usize = 256;

impl Upstream {
    /// A fresh upstream, assumed healthy.
    pub fn new(addr: SocketAddr) -> Upstream {
        Upstream {
            addr,
            failures: AtomicU32::new(0),
            srtt_us: AtomicU32::new(0),
            rttvar_us: AtomicU32::new(0),
            answered_ms: AtomicU64::new(0),
            down_until_ms: AtomicU64::new(0),
            epoch: Instant::now(),
            failures_total: AtomicU64::new(0),
            answers_total: AtomicU64::new(0),
            rtt: Histogram::default(),
            spare: std::sync::Mutex::new(Vec::new()),
        }
    }

    fn now_ms(&self) -> u64 {
        self.epoch.elapsed().as_millis() as u64
    }

    /// Whether the upstream is currently passed over.
    pub fn is_down(&self) -> bool {
        self.down_until_ms.load(Ordering::Relaxed) > self.now_ms()
    }

    /// Records that the upstream answered something (any answer shows it is alive).
    pub fn answered(&self) {
        self.answered_ms
            .store(self.now_ms().max(1), Ordering::Relaxed);
    }

    /// Whether the upstream answered anything at or after `since`.
    pub fn answered_since(&self, since: Instant) -> bool {
        let at = self.answered_ms.load(Ordering::Relaxed);
        at != 0 && at >= since.saturating_duration_since(self.epoch).as_millis() as u64
    }

    /// Records a successful exchange that took `rtt`.
    pub fn success(&self, rtt: Duration) {
        self.answered();
        self.failures.store(0, Ordering::Relaxed);
        self.down_until_ms.store(0, Ordering::Relaxed);
        self.answers_total.fetch_add(1, Ordering::Relaxed);
        self.rtt.observe(rtt);
        let sample = rtt.as_micros().min(u32::MAX as u128 / 2) as u32;
        let old = self.srtt_us.load(Ordering::Relaxed);
        let (srtt, var) = if old == 0 {
            (sample, sample / 2)
        } else {
            // RFC 6298: RTTVAR = 3/4 RTTVAR + 1/4 |SRTT - R|; SRTT = 7/8 SRTT + 1/8 R.
            let var = self.rttvar_us.load(Ordering::Relaxed);
            (
                (old / 8) * 7 + sample / 8,
                (var / 4) * 3 + old.abs_diff(sample) / 4,
            )
        };
        self.srtt_us.store(srtt.max(1), Ordering::Relaxed);
        self.rttvar_us.store(var, Ordering::Relaxed);
    }

    /// Records a failed exchange; after `DOWN_AFTER` in a row with no answer of any kind for
    /// `DOWN_QUIET`, the upstream is passed over for `DOWN_BACKOFF`.
    pub fn failure(&self) {
        self.failures_total.fetch_add(1, Ordering::Relaxed);
        let n = self.failures.fetch_add(1, Ordering::Relaxed) + 1;
        let now = self.now_ms();
        let quiet = now.saturating_sub(self.answered_ms.load(Ordering::Relaxed));
        if n >= DOWN_AFTER && quiet >= DOWN_QUIET.as_millis() as u64 {
            let until = now + DOWN_BACKOFF.as_millis() as u64;
            self.down_until_ms.store(until, Ordering::Relaxed);
        }
    }

    /// Every answered exchange's round-trip time.
    pub fn rtt_histogram(&self) -> &Histogram {
        &self.rtt
    }

    /// Smoothed round-trip time, if measured.
    pub fn srtt(&self) -> Option<Duration> {
        match self.srtt_us.load(Ordering::Relaxed) {
            0 => None,
            us => Some(Duration::from_micros(us as u64)),
        }
    }

    /// How long to wait for this upstream before also asking the next: RFC 6298's
    /// SRTT + 4 RTTVAR once measured, bounded.
    pub fn attempt_timeout(&self) -> Duration {
        match self.srtt() {
            None => INITIAL_ATTEMPT_TIMEOUT,
            Some(s) => {
                let var = Duration::from_micros(self.rttvar_us.load(Ordering::Relaxed) as u64);
                (s + var * 4).clamp(MIN_ATTEMPT_TIMEOUT, MAX_ATTEMPT_TIMEOUT)
            }
        }
    }
}

/// An ordered set of upstreams with optional rotation (resolv.conf `options rotate`).
#[derive(Debug)]
pub struct UpstreamSet {
    list: Vec<Arc<Upstream>>,
    rotate: bool,
    next: AtomicUsize,
}

impl UpstreamSet {
    /// A set in the given priority order.
    pub fn new(addrs: &[SocketAddr], rotate: bool) -> UpstreamSet {
        UpstreamSet {
            list: addrs.iter().map(|&a| Arc::new(Upstream::new(a))).collect(),
            rotate,
            next: AtomicUsize::new(0),
        }
    }

    /// Whether there is no upstream at all.
    pub fn is_empty(&self) -> bool {
        self.list.is_empty()
    }

    /// All upstreams, in configured order.
    pub fn all(&self) -> &[Arc<Upstream>] {
        &self.list
    }

    /// The order to try upstreams in for one query: live ones first (rotated when asked),
    /// then the ones that are down, so that when all are down they are still tried.
    pub fn order(&self) -> Vec<Arc<Upstream>> {
        let n = self.list.len();
        let start = if self.rotate && n > 0 {
            self.next.fetch_add(1, Ordering::Relaxed) % n
        } else {
            0
        };
        let rotated = (0..n).map(|i| self.list[(start + i) % n].clone());
        let (mut up, down): (Vec<_>, Vec<_>) = rotated.partition(|u| !u.is_down());
        up.extend(down);
        up
    }
}

/// Why one exchange with an upstream failed.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// No answer in time.
    #[error("timed out")]
    Timeout,
    /// Socket error.
    #[error("i/o: {0}")]
    Io(#[from] std::io::Error),
    /// The answer was not a DNS message for our question.
    #[error("bad answer")]
    BadAnswer,
}

/// Whether `resp` answers `query` (same ID and same question).
fn matches(query: &[u8], resp: &[u8]) -> bool {
    resp.len() >= wire::HEADER
        && wire::id(resp) == wire::id(query)
        && resp[2] & 0x80 != 0
        && match (wire::question(query), wire::question(resp)) {
            (Ok(q), Ok(r)) => {
                q.name_lower == r.name_lower && q.qtype == r.qtype && q.qclass == r.qclass
            }
            _ => false,
        }
}

/// Receive buffer for an upstream's UDP answer. We invite at most 1232 bytes (512 without EDNS),
/// so this is ample, and thousands of queries in flight to a slow upstream stay a few MiB
/// rather than 64 KiB each; a datagram that fills it may have been cut short and is rejected.
const UDP_ANSWER_BUFFER: usize = 4096;

impl Upstream {
    /// Sends `query` over UDP from a random port (a fresh socket, or one whose previous
    /// exchanges ended cleanly) and waits for the matching answer; packets that don't match
    /// (spoofing attempts, late answers to an earlier query) are ignored.
    pub async fn exchange_udp(
        &self,
        query: &[u8],
        timeout: Duration,
    ) -> Result<Vec<u8>, ExchangeError> {
        let spare = self.spare.lock().unwrap_or_else(|e| e.into_inner()).pop();
        let (sock, uses) = match spare {
            Some(s) => (s.sock, s.uses),
            None => {
                let bind: SocketAddr = if self.addr.is_ipv4() {
                    SocketAddr::from(([0, 0, 0, 0], 0))
                } else {
                    SocketAddr::from(([0u16; 8], 0))
                };
                let sock = UdpSocket::bind(bind).await?;
                sock.connect(self.addr).await?;
                (sock, 0)
            }
        };
        sock.send(query).await?;
        let mut buf = vec![0u8; UDP_ANSWER_BUFFER];
        let answer = tokio::time::timeout(timeout, async {
            loop {
                let n = sock.recv(&mut buf).await?;
                if n == buf.len() {
                    // Possibly cut short: never take part of an answer for all of it.
                    return Err(ExchangeError::BadAnswer);
                }
                if matches(query, &buf[..n]) {
                    // Exactly sized: the answer may live on in the cache.
                    return Ok(buf[..n].to_vec());
                }
            }
        })
        .await
        .map_err(|_| ExchangeError::Timeout)??;
        // Only a socket whose exchange completed is reused: after a timeout its answer may
        // still be on the way.
        if uses + 1 < SOCKET_USES {
            let mut spare = self.spare.lock().unwrap_or_else(|e| e.into_inner());
            if spare.len() < SPARE_SOCKETS {
                spare.push(Spare {
                    sock,
                    uses: uses + 1,
                });
            }
        }
        Ok(answer)
    }
}

/// Sends `query` over a new TCP connection and reads the answer.
pub async fn exchange_tcp(
    addr: SocketAddr,
    query: &[u8],
    timeout: Duration,
) -> Result<Vec<u8>, ExchangeError> {
    tokio::time::timeout(timeout, async {
        let mut s = TcpStream::connect(addr).await?;
        let _ = s.set_nodelay(true);
        let mut out = Vec::with_capacity(query.len() + 2);
        out.extend_from_slice(&(query.len() as u16).to_be_bytes());
        out.extend_from_slice(query);
        s.write_all(&out).await?;
        let mut len = [0u8; 2];
        s.read_exact(&mut len).await?;
        let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
        s.read_exact(&mut buf).await?;
        if matches(query, &buf) {
            Ok(buf)
        } else {
            Err(ExchangeError::BadAnswer)
        }
    })
    .await
    .map_err(|_| ExchangeError::Timeout)?
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn health_orders_live_upstreams_first() {
        let a: SocketAddr = "127.0.0.1:1".parse().unwrap();
        let b: SocketAddr = "127.0.0.1:2".parse().unwrap();
        let set = UpstreamSet::new(&[a, b], false);
        assert_eq!(set.order()[0].addr, a);
        // Never answered, and created long enough ago to count as quiet.
        let up = Upstream {
            epoch: Instant::now() - DOWN_QUIET,
            ..Upstream::new(a)
        };
        let set = UpstreamSet {
            list: vec![Arc::new(up), set.list[1].clone()],
            rotate: false,
            next: AtomicUsize::new(0),
        };
        for _ in 0..DOWN_AFTER {
            set.all()[0].failure();
        }
        assert!(set.all()[0].is_down());
        let order: Vec<SocketAddr> = set.order().iter().map(|u| u.addr).collect();
        assert_eq!(order, [b, a], "down upstream last, still tried");
        set.all()[0].success(Duration::from_millis(2));
        assert_eq!(set.order()[0].addr, a);
    }

    #[test]
    fn an_upstream_that_answers_anything_is_not_marked_down() {
        let u = Upstream::new("127.0.0.1:1".parse().unwrap());
        // Quiet since it was created, but not for DOWN_QUIET yet: failures alone don't do it.
        u.answered();
        for _ in 0..10 {
            u.failure();
        }
        assert!(!u.is_down(), "slow names on an upstream that just answered");
        // Nothing answered for DOWN_QUIET: three failures take it out.
        let quiet = Upstream::new("127.0.0.1:2".parse().unwrap());
        quiet.answered_ms.store(1, Ordering::Relaxed);
        let later = Upstream {
            epoch: Instant::now() - DOWN_QUIET - Duration::from_millis(10),
            ..quiet
        };
        for _ in 0..DOWN_AFTER {
            later.failure();
        }
        assert!(later.is_down());
        // A late answer brings it back at once.
        later.success(Duration::from_millis(1500));
        assert!(!later.is_down());
    }

    #[test]
    fn rotation_spreads_the_first_choice() {
        let addrs: Vec<SocketAddr> = (1..=3)
            .map(|p| SocketAddr::from(([127, 0, 0, 1], p)))
            .collect();
        let set = UpstreamSet::new(&addrs, true);
        let firsts: Vec<u16> = (0..3).map(|_| set.order()[0].addr.port()).collect();
        assert_eq!(firsts, [1, 2, 3]);
    }

    #[tokio::test]
    async fn source_ports_are_reused_only_after_clean_exchanges() {
        use hickory_proto::op::{Message, Query};
        use hickory_proto::rr::{Name, RecordType};
        let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let up = Upstream::new(server.local_addr().unwrap());
        // Answers the first, second and fourth query; leaves the third unanswered.
        let upstream = std::thread::spawn(move || {
            let mut ports = Vec::new();
            let mut buf = [0u8; 512];
            for i in 0..4 {
                let (n, from) = server.recv_from(&mut buf).unwrap();
                ports.push(from.port());
                if i != 2 {
                    let mut answer = buf[..n].to_vec();
                    answer[2] |= 0x80;
                    server.send_to(&answer, from).unwrap();
                }
            }
            ports
        });
        let mut q = Message::query();
        q.add_query(Query::query(
            Name::from_ascii("a.example.").unwrap(),
            RecordType::A,
        ));
        let query = q.to_vec().unwrap();
        let t = Duration::from_millis(300);
        assert!(up.exchange_udp(&query, t).await.is_ok());
        assert!(up.exchange_udp(&query, t).await.is_ok());
        assert!(matches!(
            up.exchange_udp(&query, t).await,
            Err(ExchangeError::Timeout)
        ));
        assert!(up.exchange_udp(&query, t).await.is_ok());
        let ports = upstream.join().unwrap();
        assert_eq!(
            ports[0], ports[1],
            "a clean exchange leaves its socket for the next"
        );
        assert_eq!(ports[1], ports[2]);
        assert_ne!(
            ports[2], ports[3],
            "a timed-out socket is closed, not reused"
        );
    }

    #[test]
    fn attempt_timeout_adapts_to_rtt() {
        let u = Upstream::new("127.0.0.1:1".parse().unwrap());
        assert_eq!(u.attempt_timeout(), INITIAL_ATTEMPT_TIMEOUT);
        for _ in 0..50 {
            u.success(Duration::from_micros(100));
        }
        assert_eq!(u.attempt_timeout(), MIN_ATTEMPT_TIMEOUT);
        // Jittery round trips raise it above SRTT alone.
        let j = Upstream::new("127.0.0.1:1".parse().unwrap());
        for i in 0..50 {
            j.success(Duration::from_millis(if i % 2 == 0 { 20 } else { 300 }));
        }
        assert!(j.attempt_timeout() > j.srtt().unwrap() + Duration::from_millis(200));
        for _ in 0..50 {
            u.success(Duration::from_secs(3));
        }
        assert_eq!(u.attempt_timeout(), MAX_ATTEMPT_TIMEOUT);
    }
}
