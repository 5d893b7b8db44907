//! Leading master detection through ZooKeeper, as Mesos masters register themselves there.
//!
//! Each master holds an ephemeral sequential node `json.info_NNNNNNNNNN` under the Mesos path
//! (e.g. `/mesos`) whose data is its `MasterInfo` as JSON; the lowest sequence number is the
//! leader. The children are watched, so a leader change is seen as soon as ZooKeeper reports
//! it; a lost session is re-established with back-off.

use std::time::Duration;

use serde::Deserialize;
use tokio::sync::watch;
use tracing::{info, warn};
use zookeeper_client as zk;

use super::model::Pid;
use super::source::{Backoff, Reachability};

/// A parsed `zk://` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZkUrl {
    /// `host:port,host:port` of the ensemble.
    pub servers: String,
    /// The Mesos path, e.g. `/mesos`.
    pub path: String,
    /// `user:password` for digest authentication, if the URL has one.
    pub auth: Option<String>,
    /// The URL as written.
    text: String,
}

impl ZkUrl {
    /// The URL as written in the configuration (what `/v1/config` shows).
    pub fn as_str(&self) -> &str {
        &self.text
    }

    /// Parses `zk://[user:pass@]host1:port1,host2:port2/path`.
    pub fn parse(url: &str) -> Option<ZkUrl> {
        let rest = url.strip_prefix("zk://")?;
        let (auth, rest) = match rest.split_once('@') {
            Some((a, r)) => (Some(a.to_string()), r),
            None => (None, rest),
        };
        let (servers, path) = match rest.find('/') {
            Some(i) => (&rest[..i], &rest[i..]),
            None => (rest, "/"),
        };
        if servers.is_empty() {
            return None;
        }
        let path = path.trim_end_matches('/');
        Some(ZkUrl {
            text: url.to_string(),
            servers: servers.to_string(),
            path: if path.is_empty() { "/" } else { path }.to_string(),
            auth,
        })
    }
}

#[derive(Debug, Deserialize)]
struct MasterInfo {
    #[serde(default)]
    pid: Option<String>,
    #[serde(default)]
    address: Option<Address>,
    #[serde(default)]
    hostname: Option<String>,
    #[serde(default)]
    port: Option<u16>,
}

#[derive(Debug, Deserialize)]
struct Address {
    #[serde(default)]
    ip: Option<String>,
    #[serde(default)]
    hostname: Option<String>,
    port: u16,
}

/// The `ip:port` a master's `json.info_*` data advertises.
pub fn master_address(data: &[u8]) -> Option<String> {
    let info: MasterInfo = serde_json::from_slice(data).ok()?;
    let (host, port) = if let Some(pid) = info.pid.as_deref().and_then(Pid::parse) {
        (pid.host.into(), pid.port)
    } else if let Some(a) = info.address {
        (a.ip.or(a.hostname)?, a.port)
    } else {
        (info.hostname?, info.port?)
    };
    Some(if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    })
}

/// The leader's node among `children`: the `json.info_` node with the lowest sequence.
pub fn leader_node(children: &[String]) -> Option<&str> {
    children
        .iter()
        .filter_map(|c| {
            let seq = c.strip_prefix("json.info_")?.parse::<u64>().ok()?;
            Some((seq, c.as_str()))
        })
        .min()
        .map(|(_, c)| c)
}

/// The ZooKeeper session timeout.
const SESSION_TIMEOUT: Duration = Duration::from_secs(10);

/// A channel carrying the leader's `ip:port` (or `None` while there is none), and the future
/// that watches ZooKeeper forever to keep it current (for the caller to run).
pub fn detect(
    url: ZkUrl,
) -> (
    watch::Receiver<Option<String>>,
    impl std::future::Future<Output = ()> + Send,
) {
    let (tx, rx) = watch::channel(None);
    let detector = async move {
        let mut backoff = Backoff::new(Duration::from_millis(200), Duration::from_secs(10));
        let mut reach = Reachability::new("ZooKeeper", url.servers.clone());
        loop {
            match watch_once(&url, SESSION_TIMEOUT, &tx, &mut reach).await {
                Ok(()) => backoff.reset(),
                Err(e) => {
                    reach.lost(&e);
                    backoff.wait().await;
                }
            }
        }
    };
    (rx, detector)
}

/// One ZooKeeper session: follow the leader until the session is lost.
async fn watch_once(
    url: &ZkUrl,
    session_timeout: Duration,
    tx: &watch::Sender<Option<String>>,
    reach: &mut Reachability,
) -> Result<(), zk::Error> {
    let mut connector = zk::Client::connector()
        .with_session_timeout(session_timeout)
        .with_connection_timeout(Duration::from_secs(5));
    if let Some(auth) = &url.auth {
        connector = connector.with_auth("digest", auth.as_bytes());
    }
    // Server hostnames resolve through the host's original resolvers, not through this daemon.
    let resolved = crate::lookup::resolve_host_ports(&url.servers).await;
    let servers = if resolved.is_empty() {
        url.servers.clone()
    } else {
        resolved.join(",")
    };
    let client = connector.connect(&servers).await?;
    reach.reached();
    let mut state = client.state_watcher();
    loop {
        let (children, watcher) = match client.list_and_watch_children(&url.path).await {
            Ok(x) => x,
            Err(zk::Error::NoNode) => {
                // No master registered yet: watch for the path to appear.
                tx.send_if_modified(|v| v.take().is_some());
                let (_, w) = client.check_and_watch_stat(&url.path).await?;
                tokio::select! {
                    _ = w.changed() => continue,
                    s = state.changed() => if s.is_terminated() { return Ok(()) } else { continue },
                }
            }
            Err(e) => return Err(e),
        };
        let leader = match leader_node(&children) {
            Some(node) => match client
                .get_data(&format!("{}/{}", url.path.trim_end_matches('/'), node))
                .await
            {
                Ok((data, _)) => master_address(&data),
                Err(zk::Error::NoNode) => continue,
                Err(e) => return Err(e),
            },
            None => None,
        };
        if *tx.borrow() != leader {
            match &leader {
                Some(l) => info!(leader = %l, "ZooKeeper: leading master"),
                None => warn!("ZooKeeper: no leading master registered"),
            }
            let _ = tx.send(leader);
        }
        tokio::select! {
            _ = watcher.changed() => {}
            s = state.changed() => {
                if s.is_terminated() {
                    return Ok(());
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls() {
        let u = ZkUrl::parse("zk://10.0.0.1:2181,10.0.0.2:2181/mesos").unwrap();
        assert_eq!(u.servers, "10.0.0.1:2181,10.0.0.2:2181");
        assert_eq!(u.path, "/mesos");
        assert_eq!(u.auth, None);
        let u = ZkUrl::parse("zk://jdoe:secret@zk1:2181/mesos/").unwrap();
        assert_eq!(
            (u.auth.as_deref(), u.path.as_str()),
            (Some("jdoe:secret"), "/mesos")
        );
        assert_eq!(ZkUrl::parse("zk://h:1").unwrap().path, "/");
        assert!(ZkUrl::parse("http://h:1/mesos").is_none());
        assert!(ZkUrl::parse("zk:///mesos").is_none(), "no servers");
        assert_eq!(u.as_str(), "zk://jdoe:secret@zk1:2181/mesos/");
    }

    #[test]
    fn leader_is_the_lowest_sequence_and_its_address_is_read() {
        let children = vec![
            "json.info_0000000012".to_string(),
            "info_0000000003".to_string(),
            "json.info_0000000009".to_string(),
            "log_replicas".to_string(),
        ];
        assert_eq!(leader_node(&children), Some("json.info_0000000009"));
        let data = br#"{"address":{"hostname":"m1","ip":"10.0.0.5","port":5050},"hostname":"m1",
            "id":"x","ip":84539402,"pid":"master@10.0.0.5:5050","port":5050,"version":"1.11.0"}"#;
        assert_eq!(master_address(data).as_deref(), Some("10.0.0.5:5050"));
        let no_pid = br#"{"address":{"ip":"10.0.0.6","port":5051}}"#;
        assert_eq!(master_address(no_pid).as_deref(), Some("10.0.0.6:5051"));
        assert_eq!(master_address(b"not json"), None);
    }
}
