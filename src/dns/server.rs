//! UDP and TCP listeners, and the one routing point between them and the responder and
//! forwarder ([`Handlers::route`]).
//!
//! Every packet is parsed once into a [`Request`] where it arrives; one zone test
//! ([`Responder::serves`]) sends the cluster domain to the responder, which only answers
//! authoritatively, and everything else to the forwarder (or REFUSED when forwarding is off);
//! FORMERR, NOTIMP and BADVERS come from the parse, REFUSED from the same helper
//! ([`super::request::error_reply`]). Each response is counted once, where it is sent
//! ([`Metrics::count_response`], and the latency histogram of its path).
//!
//! UDP takes queries in batches (`udp_batch`) and answers cluster names and fresh cache hits
//! inline on the receiving task, sending the answers as one batch: both only read memory, so
//! handing each packet to another task would cost more than answering it. Forwarded queries
//! run on their own tasks, capped in number so a flood of queries to a dead upstream cannot grow
//! memory without bound. TCP serves each connection on its own task with a connection cap and
//! an idle timeout, so idle or slow clients cannot pin the daemon's memory or descriptors.
//! Before any of that, `ClientGuard` decides per query whether the client is answered at all
//! (REFUSED otherwise) and rate limits UDP responses to non-loopback clients.

use crate::config::Config;
use std::borrow::Cow;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tracing::{debug, warn};

use super::access::{Admission, ClientGuard};
use super::answer::Responder;
use super::forward::{Forwarder, Lookup};
use super::request::{Rejected, Reply, Request, Transport};
use super::udp_batch::{Batcher, UdpIo, BATCH};
use super::wire;
use crate::metrics::{Metrics, Path};

/// Socket buffer size asked for on UDP listeners.
const UDP_BUFFER: usize = 4 * 1024 * 1024;

/// Limits for the server.
#[derive(Debug, Clone, Copy)]
pub struct ServerLimits {
    /// Connections served at once; more are closed on accept.
    pub max_connections: usize,
    /// How long a connection may sit without sending a complete query.
    pub idle_timeout: Duration,
    /// UDP queries being forwarded at once; more are dropped (the client retries).
    pub max_forwarding: usize,
}

/// UDP queries being forwarded at once, at most; more are dropped (the client retries).
const MAX_FORWARDING: usize = 4096;

impl ServerLimits {
    /// `tcpMaxConnections` and `tcpIdleTimeoutSeconds` (at least 1 each).
    pub fn from_config(c: &Config) -> ServerLimits {
        ServerLimits {
            max_connections: c.tcp_max_connections.max(1),
            idle_timeout: Duration::from_secs(c.tcp_idle_timeout_seconds.max(1)),
            max_forwarding: MAX_FORWARDING,
        }
    }
}

/// The configuration's defaults (written once, in [`Config::default`]).
impl Default for ServerLimits {
    fn default() -> Self {
        ServerLimits::from_config(&Config::default())
    }
}

/// What serves queries: the responder, and the forwarder when forwarding is on.
#[derive(Clone)]
pub struct Handlers {
    /// The cluster domain, authoritatively.
    pub responder: Arc<Responder>,
    /// Everything else, when forwarding is on (`None`: other names are refused).
    pub forwarder: Option<Arc<Forwarder>>,
    /// Counters.
    pub metrics: Arc<Metrics>,
    /// Client access rules and response rate limiting.
    pub guard: Arc<ClientGuard>,
    /// Queries answered off the listener loops, for draining.
    pub in_flight: InFlight,
}

/// What a packet comes to, as [`Handlers::route`] decides.
pub enum Routed<'a> {
    /// Send this response now: a cluster answer, a fresh cache hit, or an error.
    Reply(Reply),
    /// Send nothing.
    Drop,
    /// A forwarded name the cache cannot answer at once: resolve it, off the UDP loop.
    Forward(Forwarding<'a>),
}

/// A forwarded request waiting for upstreams (or for a stale entry's refresh).
pub struct Forwarding<'a> {
    /// Borrowed from the handlers until the job moves to a task of its own.
    forwarder: Cow<'a, Arc<Forwarder>>,
    request: Request<'a>,
    looked: Lookup,
}

impl Forwarding<'_> {
    /// The same job owning its packet and forwarder, to run on a task of its own.
    pub fn into_owned(self) -> Forwarding<'static> {
        Forwarding {
            forwarder: Cow::Owned(self.forwarder.into_owned()),
            request: self.request.into_owned(),
            looked: self.looked,
        }
    }

    /// Answers it: from upstream, a stale entry, or SERVFAIL.
    pub async fn resolve(self) -> Reply {
        self.forwarder.resolve(&self.request, self.looked).await
    }
}

impl Handlers {
    /// The one routing point: parses `packet` once ([`Request::parse`]; malformed packets get
    /// their error or nothing), then by one zone test ([`Responder::serves`]) hands the
    /// cluster domain to the responder and everything else to the forwarder's cache
    /// ([`Forwarder::lookup`]), or answers REFUSED when forwarding is off. Never waits: what
    /// needs upstreams comes back as [`Routed::Forward`].
    pub fn route<'a>(&'a self, packet: &'a [u8], transport: Transport) -> Routed<'a> {
        let request = match Request::parse(packet, transport, &self.metrics) {
            Ok(request) => request,
            Err(Rejected::Reply(reply)) => return Routed::Reply(reply),
            Err(Rejected::Drop) => return Routed::Drop,
        };
        if self.responder.serves(&request.question, packet) {
            return self
                .responder
                .answer(&request)
                .map_or(Routed::Drop, Routed::Reply);
        }
        // Reverse names of cluster addresses and static records, answered from the snapshot.
        if self.responder.answers_outside_zone(&request.question) {
            return self
                .responder
                .answer_outside_zone(&request)
                .map_or(Routed::Drop, Routed::Reply);
        }
        let Some(forwarder) = &self.forwarder else {
            return request
                .error(ResponseCode::Refused, &self.metrics)
                .map_or(Routed::Drop, Routed::Reply);
        };
        match forwarder.lookup(&request) {
            Lookup::Hit(reply) => Routed::Reply(reply),
            looked => Routed::Forward(Forwarding {
                forwarder: Cow::Borrowed(forwarder),
                request,
                looked,
            }),
        }
    }

    /// Passes `reply` through the response rate limit for `peer` (UDP) and counts what goes
    /// out; `None` when the limit drops it.
    fn send_udp(&self, peer: IpAddr, reply: Reply) -> Option<Vec<u8>> {
        let bytes = self.guard.limit(peer, reply.bytes)?;
        count_sent(&self.metrics, reply.qtype, reply.rcode, &bytes);
        Some(bytes)
    }
}

/// Counts a response as it goes out (after rate limiting, which may have cut it to TC).
fn count_sent(metrics: &Metrics, qtype: Option<u16>, rcode: u16, sent: &[u8]) {
    metrics.count_response(qtype, rcode, wire::truncated(sent));
}

/// A response the client guard made up (REFUSED for a refused client, TC for ANY), as a
/// [`Reply`].
fn guard_reply(bytes: Vec<u8>) -> Reply {
    Reply {
        path: Path::of_local_answer(&bytes),
        rcode: u16::from(wire::rcode(&bytes)),
        qtype: wire::query_type(&bytes),
        bytes,
    }
}

/// Bound sockets of one listen address, ready to serve.
pub struct Listeners {
    udp: UdpIo,
    tcp: TcpListener,
}

impl Listeners {
    /// Binds UDP and TCP on `addr` (a port of 0 takes a free UDP port and the same TCP one).
    pub async fn bind(addr: SocketAddr) -> std::io::Result<Listeners> {
        let udp = std::net::UdpSocket::bind(addr)?;
        udp.set_nonblocking(true)?;
        let tcp = std::net::TcpListener::bind(udp.local_addr()?)?;
        tcp.set_nonblocking(true)?;
        Listeners::from_std(udp, tcp)
    }

    /// Serves sockets bound elsewhere (inherited from systemd, or kept across a reload); both
    /// must be non-blocking.
    pub fn from_std(
        udp: std::net::UdpSocket,
        tcp: std::net::TcpListener,
    ) -> std::io::Result<Listeners> {
        // Bursts of queries must queue in the kernel rather than be dropped; the kernel caps
        // these at net.core.{r,w}mem_max, which is fine.
        let _ = nix::sys::socket::setsockopt(&udp, nix::sys::socket::sockopt::RcvBuf, &UDP_BUFFER);
        let _ = nix::sys::socket::setsockopt(&udp, nix::sys::socket::sockopt::SndBuf, &UDP_BUFFER);
        Ok(Listeners {
            udp: UdpIo::new(udp)?,
            tcp: TcpListener::from_std(tcp)?,
        })
    }

    /// The bound UDP address (useful when binding port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.udp.get_ref().local_addr()
    }

    /// Serves both transports until the task running this is aborted (which stops both).
    /// Aborting stops reading at once and never loses a query already read: the loops only
    /// wait for readiness, and forwarded queries and TCP connections finish on their own tasks
    /// (see [`InFlight`]).
    pub async fn serve(self, handlers: Handlers, limits: ServerLimits) {
        let mut both = tokio::task::JoinSet::new();
        both.spawn(serve_udp(Arc::new(self.udp), handlers.clone(), limits));
        both.spawn(serve_tcp(self.tcp, handlers, limits));
        while both.join_next().await.is_some() {}
    }
}

/// UDP queries being forwarded off the listener loops, so that a daemon being replaced can
/// answer them before it exits. (TCP clients see their connection close and retry, as with any
/// server restart; a query already read on one is answered on its task meanwhile.)
#[derive(Clone, Default)]
pub struct InFlight(Arc<std::sync::atomic::AtomicUsize>);

impl InFlight {
    fn enter(&self) -> InFlightGuard {
        self.0.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        InFlightGuard(self.0.clone())
    }

    /// How many are still being answered.
    pub fn count(&self) -> usize {
        self.0.load(std::sync::atomic::Ordering::Relaxed)
    }

    /// Waits until none is left, or `patience` has passed.
    pub async fn drained(&self, patience: Duration) {
        let deadline = tokio::time::Instant::now() + patience;
        while self.count() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

struct InFlightGuard(Arc<std::sync::atomic::AtomicUsize>);

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
    }
}

async fn serve_udp(socket: Arc<UdpIo>, h: Handlers, limits: ServerLimits) {
    let forwarding = Arc::new(Semaphore::new(limits.max_forwarding));
    let mut batcher = Batcher::default();
    let mut received = Vec::with_capacity(BATCH);
    let mut replies: Vec<(Vec<u8>, SocketAddr)> = Vec::with_capacity(BATCH);
    loop {
        if let Err(e) = socket.recv_batch(&mut batcher, &mut received).await {
            // ICMP errors from earlier sends surface here on some systems; keep serving.
            debug!(error = %e, "udp receive error");
            continue;
        }
        // One clock read per batch: the inline answers below are built within microseconds,
        // so each is timed as the whole batch's receive-to-send time.
        let batch_started = Instant::now();
        let mut answered = [0u64; Path::ALL.len()];
        for r in &received {
            Metrics::inc(&h.metrics.udp_queries);
            if r.truncated {
                // Longer than any query needs: not worth an answer.
                Metrics::inc(&h.metrics.malformed_packets);
                continue;
            }
            let packet = batcher.datagram(r);
            let reply = match h.guard.admit_udp(r.peer.ip(), packet) {
                Admission::Serve => match h.route(packet, Transport::Udp) {
                    Routed::Reply(reply) => reply,
                    Routed::Drop => continue,
                    Routed::Forward(job) => {
                        let Ok(permit) = forwarding.clone().try_acquire_owned() else {
                            Metrics::inc(&h.metrics.forward_overload_drops);
                            continue;
                        };
                        let job = job.into_owned();
                        let socket = socket.clone();
                        let peer = r.peer;
                        let guard = h.guard.clone();
                        let metrics = h.metrics.clone();
                        let in_flight = h.in_flight.enter();
                        // Timed from the batch's receipt: no clock read of its own until it is
                        // answered.
                        let started = batch_started;
                        tokio::spawn(async move {
                            let reply = job.resolve().await;
                            let (path, qtype, rcode) = (reply.path, reply.qtype, reply.rcode);
                            if let Some(bytes) = guard.limit(peer.ip(), reply.bytes) {
                                match socket.send_to(&bytes, peer).await {
                                    Ok(_) => {
                                        count_sent(&metrics, qtype, rcode, &bytes);
                                        metrics.observe(path, started.elapsed(), 1);
                                    }
                                    Err(e) => debug!(error = %e, %peer, "udp send error"),
                                }
                            }
                            drop(permit);
                            drop(in_flight);
                        });
                        continue;
                    }
                },
                Admission::Reply(bytes) => guard_reply(bytes),
                Admission::Drop => continue,
            };
            let path = reply.path;
            if let Some(bytes) = h.send_udp(r.peer.ip(), reply) {
                answered[path as usize] += 1;
                replies.push((bytes, r.peer));
            }
        }
        socket
            .send_batch(
                &mut batcher,
                &mut replies,
                |e, peer| debug!(error = %e, %peer, "udp send error"),
            )
            .await;
        if answered.iter().any(|&n| n > 0) {
            let took = batch_started.elapsed();
            for (path, n) in Path::ALL.iter().zip(answered) {
                h.metrics.observe(*path, took, n);
            }
        }
    }
}

async fn serve_tcp(listener: TcpListener, h: Handlers, limits: ServerLimits) {
    let slots = Arc::new(Semaphore::new(limits.max_connections));
    loop {
        let (stream, peer) = match listener.accept().await {
            Ok(x) => x,
            Err(e) => {
                // EMFILE and friends: back off briefly instead of spinning.
                warn!(error = %e, "tcp accept error");
                tokio::time::sleep(Duration::from_millis(50)).await;
                continue;
            }
        };
        let Ok(permit) = slots.clone().try_acquire_owned() else {
            Metrics::inc(&h.metrics.tcp_connections_rejected);
            drop(stream);
            continue;
        };
        let h = h.clone();
        let allowed = h.guard.admit_tcp(peer.ip());
        tokio::spawn(async move {
            if let Err(e) = serve_connection(stream, &h, limits.idle_timeout, allowed).await {
                debug!(error = %e, %peer, "tcp connection ended");
            }
            drop(permit);
        });
    }
}

/// Serves length-prefixed queries on one connection until EOF, error or idle timeout; a client
/// the access rules refuse (`allowed` false) gets REFUSED to its first query and is
/// disconnected.
async fn serve_connection(
    mut stream: TcpStream,
    h: &Handlers,
    idle: Duration,
    allowed: bool,
) -> std::io::Result<()> {
    let _ = stream.set_nodelay(true);
    let mut buf = Vec::with_capacity(512);
    loop {
        let mut len = [0u8; 2];
        match tokio::time::timeout(idle, stream.read_exact(&mut len)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(()),
            Ok(Err(e)) => return Err(e),
            Err(_) => return Ok(()),
        }
        let len = u16::from_be_bytes(len) as usize;
        buf.resize(len, 0);
        match tokio::time::timeout(idle, stream.read_exact(&mut buf)).await {
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => return Ok(()),
        }
        Metrics::inc(&h.metrics.tcp_queries);
        let started = Instant::now();
        if !allowed {
            h.guard.refused_tcp();
            let Some(resp) = wire::empty_response(&buf, 5, false) else {
                return Ok(());
            };
            let mut out = (resp.len() as u16).to_be_bytes().to_vec();
            out.extend_from_slice(&resp);
            tokio::time::timeout(idle, stream.write_all(&out))
                .await
                .map_err(|_| {
                    std::io::Error::new(std::io::ErrorKind::TimedOut, "write timed out")
                })??;
            count_sent(&h.metrics, wire::query_type(&resp), 5, &resp);
            h.metrics
                .observe(Path::RefusedOrError, started.elapsed(), 1);
            // One answer says why; the connection slot goes back at once.
            return Ok(());
        }
        let reply = match h.route(&buf, Transport::Tcp) {
            Routed::Reply(reply) => reply,
            Routed::Drop => continue,
            Routed::Forward(job) => job.resolve().await,
        };
        let mut out = Vec::with_capacity(reply.bytes.len() + 2);
        out.extend_from_slice(&(reply.bytes.len() as u16).to_be_bytes());
        out.extend_from_slice(&reply.bytes);
        tokio::time::timeout(idle, stream.write_all(&out))
            .await
            .map_err(|_| std::io::Error::new(std::io::ErrorKind::TimedOut, "write timed out"))??;
        count_sent(&h.metrics, reply.qtype, reply.rcode, &reply.bytes);
        let path = reply.path;
        h.metrics.observe(path, started.elapsed(), 1);
    }
}

#[cfg(test)]
mod tests {
    use arc_swap::ArcSwapOption;
    use hickory_proto::op::{Message, Query};
    use hickory_proto::rr::{Name, RecordType};

    use super::*;
    use crate::config::Config;
    use crate::dns::access::{ClientAcl, RateLimit};
    use crate::dns::forward::ForwardSettings;
    use crate::dns::upstream::UpstreamSet;
    use crate::mesos::demo::DEMO_STATE;
    use crate::mesos::model::State;
    use crate::records::{build, HostAddrs, RecordSettings};

    fn handlers(forwarding: bool) -> Handlers {
        let metrics = Arc::new(Metrics::default());
        let state = State::from_json(DEMO_STATE).unwrap();
        let settings = RecordSettings::from_config(&Config::default(), vec![]);
        let snap = build(&state, &settings, &HostAddrs::new(), 1).unwrap();
        let store = Arc::new(ArcSwapOption::from_pointee(snap));
        let responder = Responder::new("mesos", store, metrics.clone(), true).unwrap();
        let forwarder = forwarding.then(|| {
            Arc::new(Forwarder::new(
                UpstreamSet::new(&[], false),
                vec![],
                ForwardSettings::default(),
                metrics.clone(),
            ))
        });
        Handlers {
            responder: Arc::new(responder),
            forwarder,
            guard: Arc::new(ClientGuard::new(
                Arc::new(ClientAcl::open()),
                RateLimit::default(),
                metrics.clone(),
            )),
            metrics,
            in_flight: InFlight::default(),
        }
    }

    fn query(name: &str) -> Vec<u8> {
        let mut m = Message::query();
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), RecordType::A));
        m.to_vec().unwrap()
    }

    /// The cluster domain goes to the responder (whatever the letter case), everything else
    /// to the forwarder, or REFUSED without one; a name that only looks like it is in the
    /// domain as text (a label holding a dot) is not.
    #[test]
    fn one_zone_test_routes_each_name() {
        let on = handlers(true);
        let off = handlers(false);
        for h in [&on, &off] {
            for name in ["web.marathon.mesos.", "WEB.Marathon.MESOS.", "mesos."] {
                let Routed::Reply(reply) = h.route(&query(name), Transport::Udp) else {
                    panic!("{name} not answered at once");
                };
                assert_eq!(
                    (reply.path, reply.qtype),
                    (Path::Cluster, Some(1)),
                    "{name}"
                );
                assert!(
                    Message::from_vec(&reply.bytes)
                        .unwrap()
                        .metadata
                        .authoritative
                );
            }
        }
        // One label `x.mesos`: the text reads `x.mesos.`, but the name is under the root.
        let mut dotted = query("placeholder.");
        dotted.splice(12..25, *b"\x07x.mesos\x00");
        let q = wire::question(&dotted).unwrap();
        assert_eq!(q.name_lower, b"x.mesos.");
        assert!(!wire::plain_name(&dotted, &q) && !on.responder.serves(&q, &dotted));
        for (name, bytes) in [("example.com.", query("example.com.")), ("x.mesos", dotted)] {
            assert!(
                matches!(on.route(&bytes, Transport::Udp), Routed::Forward(_)),
                "{name} not forwarded"
            );
            let Routed::Reply(refused) = off.route(&bytes, Transport::Tcp) else {
                panic!("{name} not refused");
            };
            assert_eq!((refused.rcode, refused.path), (5, Path::RefusedOrError));
            assert_eq!(refused.qtype, Some(1));
        }
        // Not a query at all: nothing.
        assert!(matches!(on.route(&[1, 2, 3], Transport::Udp), Routed::Drop));
    }
}
