//! The masters source: finds the leading master (the `masters` list, or ZooKeeper with `zk`),
//! takes its state ([`master::fetch_leader_state`]), then follows its event stream
//! ([`stream::follow`]) or, without one (or with `stream` false), polls every
//! `refreshSeconds`.
//!
//! This module joins the masters' HTTP side ([`master`]), the event stream ([`stream`]) and
//! leader detection ([`zk`]), which know nothing of one another.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio::sync::watch;
use tracing::{error, info, warn};

use super::master::{self, MasterClient};
use super::source::{Backoff, Reachability, SourceError};
use super::stream::{self, StreamEnd, StreamState};
use super::zk::{self, ZkUrl};
use crate::config::Config;
use crate::publish::Publisher;

/// A stream that ran this long before breaking was healthy: its resubscription backoff starts
/// over.
const HEALTHY_STREAM: Duration = Duration::from_secs(60);

/// The masters source, as configured.
pub struct Masters {
    client: MasterClient,
    masters: Vec<String>,
    zk: Option<ZkUrl>,
    /// `zkDetectionTimeout` (0 = never warn).
    zk_detection_timeout: Duration,
    refresh: Duration,
    stream: bool,
}

impl Masters {
    /// The source for `masters` and `zk`, with the client from the masters' TLS and credential keys,
    /// polling every `refreshSeconds`, streaming unless `stream` is false.
    pub fn from_config(config: &Config) -> Result<Masters, SourceError> {
        Ok(Masters {
            client: MasterClient::new(config)?,
            masters: config.masters.clone(),
            zk: config.zk.clone(),
            zk_detection_timeout: Duration::from_secs(config.zk_detection_timeout),
            refresh: Duration::from_secs(config.refresh_seconds),
            stream: config.stream,
        })
    }

    /// Follows the leading master forever; with ZooKeeper, its detection runs alongside.
    pub async fn run(self, publisher: Arc<Publisher>) {
        let Some(url) = self.zk.clone() else {
            info!(masters = ?self.masters, "polling the Mesos masters");
            return self.follow(None, publisher).await;
        };
        info!(servers = %url.servers, path = %url.path, "detecting the leading master in ZooKeeper");
        let (rx, detector) = zk::detect(url);
        let timeout = self.zk_detection_timeout;
        info!(masters = ?self.masters, "polling the Mesos masters");
        tokio::join!(
            detector,
            warn_if_no_leader(rx.clone(), timeout),
            self.follow(Some(rx), publisher)
        );
    }

    /// Fetches the leader's state, then follows its event stream (or, without one, polls
    /// every `refresh`, with up to 10% jitter so thousands of agents don't poll in step).
    /// With ZooKeeper detection (`zk_leader`), the detected leader is asked first and a leader
    /// change resubscribes (or polls) at once; the static `masters` remain the fallback.
    async fn follow(
        self,
        mut zk_leader: Option<watch::Receiver<Option<String>>>,
        publisher: Arc<Publisher>,
    ) {
        let mut leader: Option<String> = None;
        let servers = match (&self.zk, self.masters.is_empty()) {
            (Some(zk), true) => format!("zk://{}{}", zk.servers, zk.path),
            _ => self.masters.join(","),
        };
        let mut reach = Reachability::new("the masters", servers);
        let mut stream_supported = self.stream;
        let mut stream_backoff = Backoff::default();
        loop {
            if let Some(zk) = &zk_leader {
                if let Some(l) = zk.borrow().clone() {
                    leader = Some(l);
                }
            }
            let mut fetched = None;
            match master::fetch_leader_state(
                &self.client,
                &self.masters,
                leader.as_deref(),
                &publisher,
            )
            .await
            {
                Ok((state, new_leader)) => {
                    reach.reached();
                    if leader.as_deref() != Some(new_leader.as_str()) {
                        info!(leader = %new_leader, "following the leading master");
                        leader = Some(new_leader.clone());
                    }
                    // The stream's events lack framework PIDs: taken from this state now,
                    // rather than parsed back from the served document later.
                    let stream_state =
                        stream_supported.then(|| StreamState::new(&new_leader, Some(&state)));
                    if let Err(e) = publisher.publish_state(state).await {
                        warn!(error = %e, "master state rejected; keeping the last snapshot");
                    }
                    fetched = stream_state.map(|s| (new_leader, s));
                }
                Err(e) => {
                    reach.failed(&publisher, &e);
                    leader = None;
                }
            }
            if let Some((l, stream_state)) = fetched {
                let subscribed_at = Instant::now();
                let end = match self.client.subscribe(&l).await {
                    Ok(Some(resp)) => {
                        let max = self.client.max_bytes() as usize;
                        let zk = zk_leader.clone();
                        Some(stream::follow(resp, &l, stream_state, &publisher, zk, max).await)
                    }
                    Ok(None) => None,
                    Err(e) => Some(StreamEnd::Broken(e.to_string())),
                };
                match end {
                    None => {
                        info!(leader = %l, "no v1 operator API on this master: polling every refreshSeconds");
                        stream_supported = false;
                    }
                    Some(StreamEnd::LeaderChanged) => continue,
                    Some(StreamEnd::Broken(e)) => {
                        warn!(leader = %l, error = %e, "event stream ended; resubscribing");
                        if subscribed_at.elapsed() > HEALTHY_STREAM {
                            // It ran fine for a while: this is a new problem, start over.
                            stream_backoff.reset();
                        }
                        stream_backoff.wait().await;
                        continue;
                    }
                }
            }
            let jitter = self.refresh.mul_f64(rand::random::<f64>() * 0.1);
            match &mut zk_leader {
                Some(zk) => {
                    tokio::select! {
                        _ = tokio::time::sleep(self.refresh + jitter) => {}
                        changed = zk.changed() => {
                            if changed.is_err() {
                                zk_leader = None;
                            }
                        }
                    }
                }
                None => tokio::time::sleep(self.refresh + jitter).await,
            }
        }
    }
}

/// Logs an error when ZooKeeper names no leader within `timeout` (zero = never); polling keeps
/// going with the static masters meanwhile.
async fn warn_if_no_leader(mut rx: watch::Receiver<Option<String>>, timeout: Duration) {
    if timeout.is_zero() {
        return;
    }
    if tokio::time::timeout(timeout, rx.wait_for(Option::is_some))
        .await
        .is_err()
    {
        error!(
            timeout_s = timeout.as_secs(),
            "ZooKeeper named no leading master within zkDetectionTimeout; using the static masters meanwhile"
        );
    }
}
