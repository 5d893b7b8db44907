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
//! UDP is read on a thread of its own per socket, in batches (`udp_batch`): a blocking
//! `recvmmsg` takes the first datagram with whatever else is queued, cluster names and fresh
//! cache hits are answered inline on that thread, and the answers go out as one `sendmmsg`.
//! Both answers only read memory, so handing each packet to another task would cost more than
//! answering it; and waiting on the socket itself rather than in the async runtime spares the
//! `epoll_wait` and the task wake-up of every batch, which at a steady moderate rate holds one
//! or two queries. Forwarded queries run on tasks of the async runtime, which send their
//! answers themselves, capped in number so a flood of queries to a dead upstream cannot grow
//! memory without bound. TCP serves each connection on its own task with a connection cap and
//! an idle timeout, so idle or slow clients cannot pin the daemon's memory or descriptors.
//! Before any of that, `ClientGuard` decides per query whether the client is answered at all
//! (REFUSED otherwise) and rate limits UDP responses to non-loopback clients.

use crate::config::Config;
use std::borrow::Cow;
use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use hickory_proto::op::ResponseCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tracing::{debug, error, warn};

use super::access::{Admission, ClientGuard};
use super::answer::Responder;
use super::forward::{Forwarder, Lookup};
use super::hot::HotAnswers;
use super::hot_cluster::HotCluster;
use super::request::{Rejected, Reply, Request, Transport};
use super::udp_batch::{self, Batcher, BATCH};
use super::wire;
use crate::metrics::{Metrics, Path};

/// Socket buffer size asked for on UDP listeners.
const UDP_BUFFER: usize = 4 * 1024 * 1024;

/// How long a UDP listener thread waits on its socket at most before it looks whether it
/// should stop: the bound on how long a stopped generation keeps reading.
const UDP_STOP_CHECK: Duration = Duration::from_millis(50);

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
        self.route_with(packet, transport, None, Instant::now())
    }

    /// [`Handlers::route`] for a UDP reader thread, whose own held answers are asked before
    /// the packet is parsed. `now` is when its batch was received, the time its cached
    /// answers' TTLs are counted down to (one clock read per batch, not per query).
    pub fn route_udp<'a>(
        &'a self,
        packet: &'a [u8],
        hot: &mut HeldAnswers,
        now: Instant,
    ) -> Routed<'a> {
        self.route_with(packet, Transport::Udp, Some(hot), now)
    }

    fn route_with<'a>(
        &'a self,
        packet: &'a [u8],
        transport: Transport,
        mut hot: Option<&mut HeldAnswers>,
        now: Instant,
    ) -> Routed<'a> {
        if let Some(hot) = hot.as_deref_mut() {
            if let Some(reply) = self.answer_held(packet, hot, now) {
                return Routed::Reply(reply);
            }
        }
        let request = match Request::parse(packet, transport, &self.metrics) {
            Ok(request) => request,
            Err(Rejected::Reply(reply)) => return Routed::Reply(reply),
            Err(Rejected::Drop) => return Routed::Drop,
        };
        if self.responder.serves(&request.question, packet) {
            let reply = match hot {
                Some(hot) => self.responder.answer_udp(&request, &mut hot.cluster),
                None => self.responder.answer(&request),
            };
            return reply.map_or(Routed::Drop, Routed::Reply);
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
        match forwarder.lookup(&request, hot.map(|h| &mut h.forwarded), now) {
            Lookup::Hit(reply) => Routed::Reply(reply),
            looked => Routed::Forward(Forwarding {
                forwarder: Cow::Borrowed(forwarder),
                request,
                looked,
            }),
        }
    }

    /// The answer a UDP reader thread holds for `packet`, found before anything is parsed: a
    /// cluster answer for a name of the domain, else a cache hit when forwarding.
    fn answer_held(&self, packet: &[u8], hot: &mut HeldAnswers, now: Instant) -> Option<Reply> {
        let name_end = wire::question_name_end(packet)?;
        if self.responder.serves_name(packet, name_end) {
            return self.responder.answer_held(packet, &mut hot.cluster);
        }
        let forwarder = self.forwarder.as_ref()?;
        hot.forwarded.follow(self.responder.snapshot().as_ref()?);
        forwarder.answer_held(packet, &mut hot.forwarded, now)
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
    udp: Arc<UdpSocket>,
    tcp: TcpListener,
}

impl Listeners {
    /// Binds UDP and TCP on `addr` (a port of 0 takes a free UDP port and the same TCP one).
    pub async fn bind(addr: SocketAddr) -> io::Result<Listeners> {
        let udp = UdpSocket::bind(addr)?;
        let tcp = std::net::TcpListener::bind(udp.local_addr()?)?;
        tcp.set_nonblocking(true)?;
        Listeners::from_std(udp, tcp)
    }

    /// Serves sockets bound elsewhere (inherited from systemd, or kept across a reload). The
    /// TCP listener must be non-blocking; the UDP socket is switched to blocking reads with a
    /// receive timeout (its reader is a thread of its own, see [`Listeners::serve`]), which
    /// carries over to whichever generation serves it next.
    pub fn from_std(udp: UdpSocket, tcp: std::net::TcpListener) -> io::Result<Listeners> {
        // Bursts of queries must queue in the kernel rather than be dropped; the kernel caps
        // these at net.core.{r,w}mem_max, which is fine.
        let _ = nix::sys::socket::setsockopt(&udp, nix::sys::socket::sockopt::RcvBuf, &UDP_BUFFER);
        let _ = nix::sys::socket::setsockopt(&udp, nix::sys::socket::sockopt::SndBuf, &UDP_BUFFER);
        udp.set_nonblocking(false)?;
        udp.set_read_timeout(Some(UDP_STOP_CHECK))?;
        Ok(Listeners {
            udp: Arc::new(udp),
            tcp: TcpListener::from_std(tcp)?,
        })
    }

    /// The bound UDP address (useful when binding port 0).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.udp.local_addr()
    }

    /// Starts the UDP reader thread at once and returns the future serving TCP, to run as a
    /// task until it is aborted. Dropping the future (aborting its task) stops both: the UDP
    /// thread sees the stop within 50 ms (`UDP_STOP_CHECK`), answers the batch it may have
    /// just read, and exits; it counts in [`InFlight`] until then, so a drain waits for it and
    /// no query it read is lost. Queries not yet read stay queued in the socket for whoever
    /// serves it next. Forwarded queries and TCP connections finish on their own tasks. Must
    /// be called within the runtime that is to run the forwarded queries.
    pub fn serve(
        self,
        handlers: Handlers,
        limits: ServerLimits,
    ) -> io::Result<impl Future<Output = ()> + Send + 'static> {
        let stop = StopOnDrop::default();
        let reader = UdpReader {
            socket: self.udp,
            forwarding: Arc::new(Semaphore::new(limits.max_forwarding)),
            runtime: tokio::runtime::Handle::current(),
            stop: stop.0.clone(),
            _counted: handlers.in_flight.reader(),
            h: handlers.clone(),
        };
        let name = format!("dns-udp-{}", reader.socket.local_addr()?.port());
        std::thread::Builder::new()
            .name(name)
            .spawn(move || reader.run())?;
        let tcp = self.tcp;
        Ok(async move {
            let _stop = stop;
            serve_tcp(tcp, handlers, limits).await
        })
    }
}

/// Sets its flag when dropped: tells a UDP reader thread that its task was aborted.
#[derive(Default)]
struct StopOnDrop(Arc<AtomicBool>);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.store(true, Ordering::Release);
    }
}

/// UDP queries being forwarded off the listener loops, and the UDP reader threads still
/// running, so that a daemon being replaced can answer them before it exits. (TCP clients see
/// their connection close and retry, as with any server restart; a query already read on one
/// is answered on its task meanwhile.)
#[derive(Clone, Default)]
pub struct InFlight {
    queries: Arc<AtomicUsize>,
    readers: Arc<AtomicUsize>,
}

impl InFlight {
    fn enter(&self) -> InFlightGuard {
        InFlightGuard::new(&self.queries)
    }

    fn reader(&self) -> InFlightGuard {
        InFlightGuard::new(&self.readers)
    }

    /// How many queries are still being answered.
    pub fn count(&self) -> usize {
        self.queries.load(Ordering::Relaxed)
    }

    /// Waits until no query is left and every UDP reader thread has stopped, or `patience`
    /// has passed.
    pub async fn drained(&self, patience: Duration) {
        let deadline = tokio::time::Instant::now() + patience;
        while (self.count() > 0 || self.readers.load(Ordering::Acquire) > 0)
            && tokio::time::Instant::now() < deadline
        {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

struct InFlightGuard(Arc<AtomicUsize>);

impl InFlightGuard {
    fn new(counter: &Arc<AtomicUsize>) -> InFlightGuard {
        counter.fetch_add(1, Ordering::Relaxed);
        InFlightGuard(counter.clone())
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Release);
    }
}

/// What one UDP reader thread keeps of the answers it served, asked before the structures it
/// shares with the other threads.
#[derive(Default)]
pub struct HeldAnswers {
    /// Forwarded names' cache entries.
    pub forwarded: HotAnswers,
    /// Cluster answers.
    pub cluster: HotCluster,
}

/// One UDP socket's reader, run on a thread of its own.
struct UdpReader {
    socket: Arc<UdpSocket>,
    h: Handlers,
    /// Caps the queries being forwarded at once.
    forwarding: Arc<Semaphore>,
    /// Where forwarded queries run.
    runtime: tokio::runtime::Handle,
    stop: Arc<AtomicBool>,
    /// Counts this thread in [`InFlight`] until it ends.
    _counted: InFlightGuard,
}

impl UdpReader {
    /// Reads, answers and sends batches until told to stop.
    fn run(self) {
        // Parts of answering spawn tasks of their own (a forwarded name's prefetch).
        let _runtime = self.runtime.enter();
        let mut batcher = Batcher::default();
        let mut received = Vec::with_capacity(BATCH);
        let mut replies: Vec<(Vec<u8>, SocketAddr)> = Vec::with_capacity(BATCH);
        let mut hot = HeldAnswers::default();
        while !self.stop.load(Ordering::Acquire) {
            match batcher.wait(&*self.socket, &mut received) {
                Ok(_) => {}
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock
                            | io::ErrorKind::TimedOut
                            | io::ErrorKind::Interrupted
                    ) =>
                {
                    continue
                }
                Err(e) => {
                    // ICMP errors from earlier sends surface here on some systems; keep
                    // serving.
                    debug!(error = %e, "udp receive error");
                    continue;
                }
            }
            // Read before the stop was seen: answered all the same. A bug that panics on some
            // packet costs its batch, not the listener.
            let answered = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
                self.answer(&batcher, &received, &mut replies, &mut hot)
            }));
            if answered.is_err() {
                error!("answering a UDP batch panicked; its queries are dropped");
                replies.clear();
                continue;
            }
            udp_batch::send_all(
                &self.socket,
                &mut batcher,
                &mut replies,
                |e, peer| debug!(error = %e, %peer, "udp send error"),
            );
        }
    }

    /// Answers a batch: what can be answered at once into `replies`, forwarded queries on
    /// tasks of the runtime (which send their answers themselves).
    fn answer(
        &self,
        batcher: &Batcher,
        received: &[udp_batch::Received],
        replies: &mut Vec<(Vec<u8>, SocketAddr)>,
        hot: &mut HeldAnswers,
    ) {
        let h = &self.h;
        // One clock read per batch: the inline answers below are built within microseconds,
        // so each is timed as the whole batch's receive-to-send time.
        let batch_started = Instant::now();
        let mut answered = [0u64; Path::ALL.len()];
        for r in received {
            Metrics::inc(&h.metrics.udp_queries);
            if r.truncated {
                // Longer than any query needs: not worth an answer.
                Metrics::inc(&h.metrics.malformed_packets);
                continue;
            }
            let packet = batcher.datagram(r);
            let reply = match h.guard.admit_udp(r.peer.ip(), packet) {
                Admission::Serve => match h.route_udp(packet, hot, batch_started) {
                    Routed::Reply(reply) => reply,
                    Routed::Drop => continue,
                    Routed::Forward(job) => {
                        self.forward(job, r.peer, batch_started);
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
        if answered.iter().any(|&n| n > 0) {
            let took = batch_started.elapsed();
            for (path, n) in Path::ALL.iter().zip(answered) {
                h.metrics.observe(*path, took, n);
            }
        }
    }

    /// Resolves `job` on a task of the runtime, which answers `peer` itself; dropped (the
    /// client retries) when too many are being forwarded already.
    fn forward(&self, job: Forwarding<'_>, peer: SocketAddr, started: Instant) {
        let Ok(permit) = self.forwarding.clone().try_acquire_owned() else {
            Metrics::inc(&self.h.metrics.forward_overload_drops);
            return;
        };
        let job = job.into_owned();
        let socket = self.socket.clone();
        let guard = self.h.guard.clone();
        let metrics = self.h.metrics.clone();
        let in_flight = self.h.in_flight.enter();
        // Timed from the batch's receipt: no clock read of its own until it is answered.
        self.runtime.spawn(async move {
            let reply = job.resolve().await;
            let (path, qtype, rcode) = (reply.path, reply.qtype, reply.rcode);
            if let Some(bytes) = guard.limit(peer.ip(), reply.bytes) {
                match udp_batch::send_one(&socket, &bytes, peer).await {
                    Ok(()) => {
                        count_sent(&metrics, qtype, rcode, &bytes);
                        metrics.observe(path, started.elapsed(), 1);
                    }
                    Err(e) => debug!(error = %e, %peer, "udp send error"),
                }
            }
            drop(permit);
            drop(in_flight);
        });
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
    use crate::dns::access::{ClientAcl, RateLimit};
    use crate::dns::forward::ForwardSettings;
    use crate::dns::upstream::UpstreamSet;

    fn handlers(forwarding: bool) -> Handlers {
        let metrics = Arc::new(Metrics::default());
        let snap = crate::records::demo_snapshot(1);
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

    /// The UDP reader answers cluster names on its thread and hands forwarded names to the
    /// runtime, which answers them itself; dropping the serving future stops the reader
    /// (blocked on the socket) within the stop check, and what is sent afterwards stays
    /// queued for whoever serves the socket next.
    #[tokio::test]
    async fn the_udp_reader_answers_on_its_thread_and_stops_with_its_task() {
        let h = handlers(true);
        // Kept open as across a reload, so that a query after the stop waits in the socket.
        let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let kept = udp.try_clone().unwrap();
        let tcp = std::net::TcpListener::bind(udp.local_addr().unwrap()).unwrap();
        tcp.set_nonblocking(true).unwrap();
        let listeners = Listeners::from_std(udp, tcp).unwrap();
        let addr = listeners.local_addr().unwrap();
        let serving = listeners.serve(h.clone(), ServerLimits::default()).unwrap();
        let client = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        client.set_nonblocking(true).unwrap();
        let client = tokio::net::UdpSocket::from_std(client).unwrap();
        let mut buf = [0u8; 512];
        for (name, rcode) in [
            ("web.marathon.mesos.", ResponseCode::NoError),
            ("example.com.", ResponseCode::ServFail),
        ] {
            client.send_to(&query(name), addr).await.unwrap();
            let n = tokio::time::timeout(Duration::from_secs(5), client.recv(&mut buf))
                .await
                .unwrap_or_else(|_| panic!("{name} not answered"))
                .unwrap();
            let m = Message::from_vec(&buf[..n]).unwrap();
            assert_eq!(m.metadata.response_code, rcode, "{name}");
        }
        assert_eq!(h.in_flight.readers.load(Ordering::Acquire), 1);
        drop(serving);
        let started = Instant::now();
        h.in_flight.drained(Duration::from_secs(3)).await;
        assert_eq!(h.in_flight.readers.load(Ordering::Acquire), 0);
        assert!(
            started.elapsed() < UDP_STOP_CHECK * 4,
            "{:?}",
            started.elapsed()
        );
        client
            .send_to(&query("web.marathon.mesos."), addr)
            .await
            .unwrap();
        assert!(
            tokio::time::timeout(Duration::from_millis(300), client.recv(&mut buf))
                .await
                .is_err(),
            "answered after the stop"
        );
        let (n, _) = kept.recv_from(&mut buf).expect("left in the socket");
        assert_eq!(&buf[2..n], &query("web.marathon.mesos.")[2..]);
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
