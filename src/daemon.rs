//! Wires a configuration into a running daemon: state source -> publisher -> DNS listeners.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use arc_swap::ArcSwapOption;
use tokio::task::JoinSet;
use tracing::info;

use hickory_proto::rr::Name;
use tracing::warn;

use crate::config::Config;
use crate::dns::access::{self, ClientAcl, ClientGuard, RateLimit};
use crate::dns::forward::ForwardSettings;
use crate::dns::server::InFlight;
use crate::dns::upstream::UpstreamSet;
use crate::dns::{Forwarder, Handlers, Listeners, Responder, ServerLimits};
use crate::http;
use crate::mesos::source;
use crate::metrics::Metrics;
use crate::netif;
use crate::notify;
use crate::publish::Publisher;
use crate::resolv;
use crate::sockets::{Key, Sockets};

/// Why the daemon could not start.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// A listen socket could not be bound.
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        /// The address.
        addr: SocketAddr,
        /// Underlying error.
        source: std::io::Error,
    },
    /// The configured domain is not a DNS name.
    #[error("invalid domain: {0}")]
    Domain(#[from] hickory_proto::ProtoError),
    /// The configured state source could not be set up (unreadable certificate, bad URL).
    #[error("cannot set up the state source: {0}")]
    Source(#[from] source::SourceError),
    /// No upstream resolvers could be determined.
    #[error(transparent)]
    Upstreams(#[from] resolv::ResolvError),
}

/// How long a restarted generation waits for the previous one's sockets to close.
const BIND_PATIENCE: Duration = Duration::from_secs(10);

/// How long a daemon being replaced waits for the queries it is still forwarding.
const DRAIN_PATIENCE: Duration = Duration::from_secs(3);

/// A running daemon: its tasks (aborted when this is dropped; the listen sockets stay with
/// the process's [`Sockets`]) and the publisher holding the served state.
pub struct Running {
    /// Snapshots and the state behind them.
    pub publisher: Arc<Publisher>,
    tasks: JoinSet<()>,
    in_flight: InFlight,
    listening: Vec<Key>,
}

impl Running {
    /// Waits until every task has ended (normally never).
    pub async fn wait(&mut self) {
        while self.tasks.join_next().await.is_some() {}
    }

    /// The served state as a compact document, to seed a restarted daemon without a gap.
    pub fn state_document(&self) -> Option<Vec<u8>> {
        Some(self.publisher.current()?.document())
    }

    /// The sockets this generation serves, by kind and address.
    pub fn listening(&self) -> &[Key] {
        &self.listening
    }

    /// Stops reading queries (at once on TCP, within 50 ms on UDP, whose reader threads answer
    /// a batch they have just read; unread ones stay queued in the sockets for whoever serves
    /// them next), then waits a bounded time for the UDP readers to end and the queries
    /// already being forwarded to be answered.
    pub async fn drain(mut self) {
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
        let pending = self.in_flight.count();
        if pending > 0 {
            info!(pending, "answering the queries in flight before stopping");
        }
        // Also waits for the UDP reader threads, which may have read a last batch.
        self.in_flight.drained(DRAIN_PATIENCE).await;
    }
}

/// Runs the daemon until the process is stopped. The configuration must be validated.
pub async fn run(config: Config) -> Result<(), DaemonError> {
    start(config, None, &Sockets::default()).await?.wait().await;
    Ok(())
}

/// Starts every part of the daemon on `sockets` (inherited from systemd or bound on first use,
/// and kept by the caller across generations). `seed` is a state document served until the
/// configured source delivers (used across configuration reloads). The state the daemon can
/// have without waiting on the network (the seed, the persisted state, a state file) is loaded
/// before the first query is read. The configuration must be validated.
pub async fn start(
    config: Config,
    seed: Option<Vec<u8>>,
    sockets: &Sockets,
) -> Result<Running, DaemonError> {
    let mut tasks = JoinSet::new();
    let metrics = Arc::new(Metrics::default());
    let store = Arc::new(ArcSwapOption::empty());
    let publisher = Arc::new(Publisher::from_config(
        &config,
        store.clone(),
        metrics.clone(),
    ));

    let mut source = source::from_config(&config)?;
    if let (Some(doc), false) = (&seed, config.demo) {
        if let Err(e) = publisher.publish(doc.clone()).await {
            warn!(error = %e, "previous state not reusable after the reload");
        }
    }
    source.load(&publisher).await;
    tasks.spawn(source.run(publisher.clone()));

    let listens = config.listen_addrs();
    let mut listening = Vec::new();
    let in_flight = InFlight::default();
    match resolv::plan(&config, &listens, &netif::local_addresses()) {
        Ok(plan) => crate::lookup::set_upstreams(&plan.addrs),
        Err(e) => warn!(error = %e, "no upstreams for the daemon's own lookups; /etc/hosts only"),
    }
    let forwarder = if config.dns_on && config.external_on {
        let (forwarder, plan) = build_forwarder(&config, &listens, metrics.clone())?;
        let forwarder = Arc::new(forwarder);
        if config.resolvers.is_empty() {
            tasks.spawn(follow_upstreams(
                config.clone(),
                listens.clone(),
                forwarder.clone(),
                plan,
            ));
        }
        Some(forwarder)
    } else {
        None
    };
    // One set of client rules for DNS and HTTP.
    let acl = Arc::new(ClientAcl::new(
        &config.allow_clients,
        &config.refuse_clients,
    ));
    tasks.spawn(access::refresh_periodically(acl.clone()));
    let rules = |r: &[access::ClientRule]| r.iter().map(|r| r.to_string()).collect::<Vec<_>>();
    info!(
        allow = ?rules(&config.allow_clients),
        refuse = ?rules(&config.refuse_clients),
        rate_limit = config.rate_limit,
        "answering loopback and allowClients; other clients get REFUSED (DNS) or 403 (HTTP)"
    );
    if config.http_on {
        let addr = SocketAddr::new(config.http_listener, config.http_port);
        let api = http::Api::new(
            publisher.clone(),
            metrics.clone(),
            Arc::new(config.clone()),
            forwarder.clone(),
        );
        let listener = bind_retrying(addr, BIND_PATIENCE, || async {
            tokio::net::TcpListener::from_std(sockets.tcp(addr)?)
        })
        .await?;
        listening.push(Key::Tcp(addr));
        info!(%addr, "serving the HTTP API");
        let limits = http::HttpLimits::from_config(
            &config,
            raise_descriptor_limit(),
            DNS_DESCRIPTOR_RESERVE + config.tcp_max_connections as u64,
        );
        tasks.spawn(http::serve_apart(
            listener,
            http::router(api),
            limits,
            acl.clone(),
            metrics.clone(),
        ));
    }
    if !config.dns_on {
        info!("dnson is false: not serving DNS");
    } else {
        if forwarder.is_none() {
            info!("forwarding is off (externalon false): other names are refused");
        }
        let responder = Arc::new(Responder::from_config(&config, store, metrics.clone(), {
            let publisher = publisher.clone();
            Arc::new(move || publisher.age())
        })?);
        let limit = RateLimit::from_config(&config);
        let handlers = Handlers {
            guard: Arc::new(ClientGuard::new(acl, limit, metrics.clone())),
            responder,
            forwarder,
            metrics,
            in_flight: in_flight.clone(),
        };
        for addr in dns_addresses(&listens, sockets.inherited()) {
            let listeners = bind_retrying(addr, BIND_PATIENCE, || async {
                Listeners::from_std(sockets.udp(addr)?, sockets.tcp(addr)?)
            })
            .await?;
            listening.extend([Key::Udp(addr), Key::Tcp(addr)]);
            info!(%addr, domain = %config.domain, "serving DNS");
            let limits = ServerLimits::from_config(&config);
            let serving = listeners
                .serve(handlers.clone(), limits)
                .map_err(|source| DaemonError::Bind { addr, source })?;
            tasks.spawn(serving);
        }
    }
    tasks.spawn(tell_systemd(
        publisher.clone(),
        Duration::from_secs(config.ready_after_seconds),
    ));
    Ok(Running {
        publisher,
        tasks,
        in_flight,
        listening,
    })
}

/// The addresses to serve DNS on: the configured ones, plus any address systemd passed a UDP
/// socket for (a socket unit is the operator's word for where the daemon listens, such as the
/// link-local address for containers).
fn dns_addresses(configured: &[SocketAddr], inherited: &[Key]) -> Vec<SocketAddr> {
    let mut out = configured.to_vec();
    for key in inherited {
        if let Key::Udp(addr) = key {
            if !out.contains(addr) {
                out.push(*addr);
            }
        }
    }
    out
}

/// Descriptors kept for DNS whatever HTTP clients do: TCP DNS connections, upstream sockets
/// and the state sources need them.
const DNS_DESCRIPTOR_RESERVE: u64 = 1024;

/// Raises the soft descriptor limit to the hard one (as Go programs such as Mesos-DNS do), so
/// the caps below have room, and returns the soft limit in force.
fn raise_descriptor_limit() -> u64 {
    use nix::sys::resource::{getrlimit, setrlimit, Resource};
    match getrlimit(Resource::RLIMIT_NOFILE) {
        Ok((soft, hard)) if soft < hard => match setrlimit(Resource::RLIMIT_NOFILE, hard, hard) {
            Ok(()) => hard,
            Err(_) => soft,
        },
        Ok((soft, _)) => soft,
        Err(_) => 1024,
    }
}

/// Tells systemd the daemon is ready once a snapshot is served (listeners are bound before
/// this runs), or after `patience` without one (forwarding works meanwhile), then keeps its
/// watchdog fed.
async fn tell_systemd(publisher: Arc<Publisher>, patience: Duration) {
    let mut changes = publisher.subscribe();
    let loaded = tokio::time::timeout(patience, async {
        while publisher.snapshot().is_none() {
            if changes.changed().await.is_err() {
                return;
            }
        }
    })
    .await;
    if loaded.is_err() {
        warn!(
            seconds = patience.as_secs(),
            "no cluster state yet; reporting ready to serve forwarded names"
        );
    }
    let _ = notify::notify("READY=1");
    let Some(interval) = notify::watchdog_interval() else {
        return;
    };
    loop {
        let _ = notify::notify("WATCHDOG=1");
        tokio::time::sleep(interval / 2).await;
    }
}

/// Binds with retries for up to `patience`: after a reload, the previous generation's sockets
/// may take a moment to close.
async fn bind_retrying<T, F, Fut>(
    addr: SocketAddr,
    patience: Duration,
    bind: F,
) -> Result<T, DaemonError>
where
    F: Fn() -> Fut,
    Fut: std::future::Future<Output = std::io::Result<T>>,
{
    let deadline = tokio::time::Instant::now() + patience;
    loop {
        match bind().await {
            Ok(x) => return Ok(x),
            Err(e)
                if e.kind() == std::io::ErrorKind::AddrInUse
                    && tokio::time::Instant::now() < deadline =>
            {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(source) => return Err(DaemonError::Bind { addr, source }),
        }
    }
}

/// How often the host's resolver list is checked for changes (DHCP renewals, network changes).
const UPSTREAM_POLL: Duration = Duration::from_secs(2);

/// Keeps forwarding to the host's current resolvers: when the original resolv.conf (or the
/// file it links to) names other servers, the forwarder switches to them.
async fn follow_upstreams(
    config: Config,
    listens: Vec<SocketAddr>,
    forwarder: Arc<Forwarder>,
    mut current: resolv::UpstreamPlan,
) {
    loop {
        tokio::time::sleep(UPSTREAM_POLL).await;
        let Ok(plan) = resolv::plan(&config, &listens, &netif::local_addresses()) else {
            continue;
        };
        if plan.addrs.is_empty() || (plan.addrs == current.addrs && plan.rotate == current.rotate) {
            continue;
        }
        info!(source = %plan.source, upstreams = ?plan.addrs, was = ?current.addrs, "the host's resolvers changed; forwarding to the new ones");
        forwarder.set_upstreams(UpstreamSet::new(&plan.addrs, plan.rotate));
        crate::lookup::set_upstreams(&plan.addrs);
        current = plan;
    }
}

/// The forwarder for the configured upstreams, never pointing at ourselves, and the plan it
/// was made from.
fn build_forwarder(
    config: &Config,
    listens: &[SocketAddr],
    metrics: Arc<Metrics>,
) -> Result<(Forwarder, resolv::UpstreamPlan), DaemonError> {
    let plan = resolv::plan(config, listens, &netif::local_addresses())?;
    for a in &plan.dropped_self {
        warn!(upstream = %a, "upstream is this daemon itself; left out to avoid a loop");
    }
    if plan.addrs.is_empty() {
        warn!(source = %plan.source, "no upstream resolvers: names outside the cluster get SERVFAIL");
    } else {
        info!(source = %plan.source, upstreams = ?plan.addrs, "forwarding other names");
    }
    let zones = config
        .zone_resolvers
        .iter()
        .filter_map(|(zone, resolvers)| {
            let name = Name::from_ascii(format!("{}.", zone.trim_end_matches('.'))).ok()?;
            let addrs: Vec<SocketAddr> = resolvers
                .iter()
                .map(|r| r.addr)
                .filter(|a| !resolv::is_self(*a, listens, &[]))
                .collect();
            Some((name, UpstreamSet::new(&addrs, false)))
        })
        .collect();
    let settings = ForwardSettings::from_config(config, &plan);
    let forwarder = Forwarder::new(
        UpstreamSet::new(&plan.addrs, plan.rotate),
        zones,
        settings,
        metrics,
    );
    Ok((forwarder, plan))
}
