//! Resolution of the hostnames a state document contains.
//!
//! Frameworks on the HTTP API have no PID, only a hostname, and agents may register by name;
//! Mesos-DNS resolves those names while generating records. Here they are resolved before the
//! build, concurrently, with a per-name timeout and a cache, so a slow resolver delays a
//! refresh by at most one timeout and never blocks the query path; the lookups go to the
//! host's original resolvers, never to this daemon (`crate::lookup`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::task::JoinSet;

use super::model::State;
use crate::records::HostAddrs;

/// How many distinct hostnames one refresh resolves at most; more is a sign of a broken state
/// document, and the rest wait for the next refresh.
const MAX_LOOKUPS_PER_REFRESH: usize = 256;

/// Caches hostname lookups across refreshes.
pub struct HostResolver {
    cache: Mutex<HashMap<String, (Vec<IpAddr>, Instant)>>,
    ttl: Duration,
    timeout: Duration,
}

impl HostResolver {
    /// A resolver whose answers are reused for `ttl` and whose lookups give up after `timeout`.
    pub fn new(ttl: Duration, timeout: Duration) -> HostResolver {
        HostResolver {
            cache: Mutex::new(HashMap::new()),
            ttl,
            timeout,
        }
    }

    /// The hostnames in `state` that are not address literals.
    pub fn hostnames(state: &State) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        let mut add = |h: &str| {
            if !h.is_empty() && h.parse::<IpAddr>().is_err() && !names.iter().any(|n| n == h) {
                names.push(h.to_string());
            }
        };
        for f in &state.frameworks {
            add(f.host_port().0);
        }
        for s in &state.slaves {
            if let Some(pid) = &s.pid {
                add(&pid.host);
            }
        }
        names
    }

    /// Addresses of every hostname in `state`, from the cache or freshly looked up.
    pub async fn resolve(&self, state: &State) -> HostAddrs {
        let names = Self::hostnames(state);
        let mut out = HostAddrs::new();
        let mut missing = Vec::new();
        {
            let cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
            for n in names {
                match cache.get(&n) {
                    Some((ips, at)) if at.elapsed() < self.ttl => {
                        out.insert(n, ips.clone());
                    }
                    _ => missing.push(n),
                }
            }
        }
        missing.truncate(MAX_LOOKUPS_PER_REFRESH);
        let mut lookups = JoinSet::new();
        for name in missing {
            let timeout = self.timeout;
            lookups.spawn(async move {
                let ips = match tokio::time::timeout(timeout, crate::lookup::lookup_ip(&name)).await
                {
                    Ok(Ok(ips)) => ips,
                    _ => Vec::new(),
                };
                (name, ips)
            });
        }
        let now = Instant::now();
        while let Some(Ok((name, ips))) = lookups.join_next().await {
            self.cache
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(name.clone(), (ips.clone(), now));
            out.insert(name, ips);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn resolves_names_but_not_literals() {
        let state = State::from_json(
            br#"{"leader":"master@1.1.1.1:5050","frameworks":[{"name":"a","hostname":"localhost"},
            {"name":"b","pid":"s@10.0.0.1:1"}],"slaves":[{"id":"x","pid":"slave(1)@localhost:5051"}]}"#,
        )
        .unwrap();
        assert_eq!(HostResolver::hostnames(&state), vec!["localhost"]);
        let r = HostResolver::new(Duration::from_secs(60), Duration::from_secs(2));
        let hosts = r.resolve(&state).await;
        assert!(
            hosts["localhost"].iter().any(|ip| ip.is_loopback()),
            "{hosts:?}"
        );
    }
}
