//! The daemon's own name lookups: master, ZooKeeper, relay and Mesos-DNS hostnames in the
//! configuration, agent and framework hostnames in state documents.
//!
//! They go to the host's original resolvers (the ones forwarding uses, never this daemon)
//! through hickory-resolver, after /etc/hosts; never through getaddrinfo, because the host's
//! /etc/resolv.conf points at this daemon: a master named by hostname must resolve at boot,
//! before the daemon answers, and a daemon that cannot reach its master must not ask itself
//! where the master is. The resolver is process-wide, as the C library's is, and follows the
//! host's resolvers when they change ([`set_upstreams`]).

use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, LazyLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use hickory_resolver::config::{
    ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig, ResolverOpts,
};
use hickory_resolver::net::runtime::TokioRuntimeProvider;
use hickory_resolver::TokioResolver;

/// Why a hostname has no address.
#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    /// The resolvers answered without an address, or could not be asked.
    #[error("cannot resolve {host}: {reason}")]
    Failed {
        /// The hostname.
        host: String,
        /// What the resolver said.
        reason: String,
    },
}

/// How long one lookup may take in all.
const LOOKUP_TIMEOUT: Duration = Duration::from_secs(3);

static RESOLVER: LazyLock<ArcSwap<Option<TokioResolver>>> =
    LazyLock::new(|| ArcSwap::from_pointee(build(&[])));

/// Sends the daemon's own lookups to `upstreams` from now on (after /etc/hosts).
pub fn set_upstreams(upstreams: &[SocketAddr]) {
    RESOLVER.store(Arc::new(build(upstreams)));
}

fn build(upstreams: &[SocketAddr]) -> Option<TokioResolver> {
    let servers = upstreams
        .iter()
        .map(|a| {
            let mut udp = ConnectionConfig::udp();
            udp.port = a.port();
            let mut tcp = ConnectionConfig::tcp();
            tcp.port = a.port();
            NameServerConfig::new(a.ip(), true, vec![udp, tcp])
        })
        .collect();
    let mut options = ResolverOpts::default();
    options.use_hosts_file = ResolveHosts::Always;
    options.timeout = Duration::from_secs(1);
    options.attempts = crate::resolv::DEFAULT_ATTEMPTS as usize;
    hickory_resolver::Resolver::builder_with_config(
        ResolverConfig::from_name_servers(servers),
        TokioRuntimeProvider::default(),
    )
    .with_options(options)
    .build()
    .ok()
}

/// The addresses of `host` (an address literal is its own answer), IPv4 and IPv6.
pub async fn lookup_ip(host: &str) -> Result<Vec<IpAddr>, LookupError> {
    if let Ok(ip) = host.trim_start_matches('[').trim_end_matches(']').parse() {
        return Ok(vec![ip]);
    }
    let failed = |reason: String| LookupError::Failed {
        host: host.to_string(),
        reason,
    };
    let resolver = RESOLVER.load_full();
    let Some(resolver) = resolver.as_ref() else {
        return Err(failed("no resolver".into()));
    };
    // A fully qualified query: the name is used as written, without search domains.
    let fqdn = format!("{}.", host.trim_end_matches('.'));
    let found = tokio::time::timeout(LOOKUP_TIMEOUT, resolver.lookup_ip(fqdn.as_str()))
        .await
        .map_err(|_| failed("timed out".into()))?
        .map_err(|e| failed(e.to_string()))?;
    let mut ips: Vec<IpAddr> = Vec::new();
    for ip in found.iter() {
        if !ips.contains(&ip) {
            ips.push(ip);
        }
    }
    if ips.is_empty() {
        return Err(failed("no address".into()));
    }
    Ok(ips)
}

/// `host:port` pairs with their hostnames replaced by addresses (each address of a name, in
/// turn); pairs that do not resolve are left out, literals kept as they are.
pub async fn resolve_host_ports(list: &str) -> Vec<String> {
    let mut out = Vec::new();
    for item in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let (host, port) = match item.rsplit_once(':') {
            Some((h, p)) if p.parse::<u16>().is_ok() => (h, Some(p)),
            _ => (item, None),
        };
        match lookup_ip(host).await {
            Ok(ips) => {
                for ip in ips {
                    let ip = match ip {
                        IpAddr::V6(v6) => format!("[{v6}]"),
                        IpAddr::V4(v4) => v4.to_string(),
                    };
                    out.push(match port {
                        Some(p) => format!("{ip}:{p}"),
                        None => ip,
                    });
                }
            }
            Err(e) => tracing::warn!(error = %e, "leaving a server out"),
        }
    }
    out
}

/// The resolver reqwest uses for the sources' HTTP clients (masters, relays, Mesos-DNS).
#[derive(Debug, Clone, Copy, Default)]
pub struct HttpResolver;

impl reqwest::dns::Resolve for HttpResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let host = name.as_str().to_string();
        Box::pin(async move {
            let ips = lookup_ip(&host).await?;
            let addrs: reqwest::dns::Addrs =
                Box::new(ips.into_iter().map(|ip| SocketAddr::new(ip, 0)));
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn literals_and_the_hosts_file_need_no_server() {
        assert_eq!(
            lookup_ip("10.1.2.3").await.unwrap(),
            [IpAddr::from([10, 1, 2, 3])]
        );
        assert_eq!(
            lookup_ip("[::1]").await.unwrap(),
            [IpAddr::from(std::net::Ipv6Addr::LOCALHOST)]
        );
        let local = lookup_ip("localhost").await.unwrap();
        assert!(local.iter().all(|ip| ip.is_loopback()), "{local:?}");
        assert_eq!(
            resolve_host_ports("10.0.0.1:2181, localhost:2182").await[0],
            "10.0.0.1:2181"
        );
    }

    #[tokio::test]
    async fn names_go_to_the_configured_upstream_only() {
        // A server that answers every A query with 192.0.2.55.
        let server = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap();
        std::thread::spawn(move || {
            let mut buf = [0u8; 512];
            while let Ok((n, peer)) = server.recv_from(&mut buf) {
                let Ok(q) = hickory_proto::op::Message::from_vec(&buf[..n]) else {
                    continue;
                };
                let mut r = hickory_proto::op::Message::response(
                    q.metadata.id,
                    hickory_proto::op::OpCode::Query,
                );
                r.metadata.recursion_available = true;
                r.add_queries(q.queries.clone());
                if let Some(query) = q.queries.first() {
                    if query.query_type() == hickory_proto::rr::RecordType::A {
                        r.add_answer(hickory_proto::rr::Record::from_rdata(
                            query.name().clone(),
                            60,
                            hickory_proto::rr::RData::A(hickory_proto::rr::rdata::A::new(
                                192, 0, 2, 55,
                            )),
                        ));
                    }
                }
                let _ = server.send_to(&r.to_vec().unwrap(), peer);
            }
        });
        set_upstreams(&[addr]);
        let ips = lookup_ip("master1.cluster.example.com").await.unwrap();
        assert!(ips.contains(&IpAddr::from([192, 0, 2, 55])), "{ips:?}");
    }
}
