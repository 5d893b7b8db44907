//! The polling source: the leading master's `/master/state`, every `refreshSeconds`.
//!
//! Masters come from the `masters` list; the last known leader is asked first. A non-leading
//! master either redirects (307) to the leader, which is followed, or returns a state naming
//! another leader, which is then asked directly, as Mesos-DNS does. Older masters without
//! `/master/state` get `/master/state.json`. Bodies are size-capped and time-limited, so a
//! misbehaving master cannot exhaust memory or stall refreshes; every failure leaves the last
//! good snapshot in service.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Client, StatusCode};
use tokio::sync::watch;
use tracing::{debug, info, warn};

use super::model::{split_host_port, State};
use super::stream;
use crate::config::Config;
use crate::publish::Publisher;

/// Why one fetch from one master failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// HTTP-level failure (connect, timeout, TLS, body).
    #[error("{0}")]
    Http(#[from] reqwest::Error),
    /// A status other than 200.
    #[error("HTTP status {0}")]
    Status(StatusCode),
    /// The body exceeded the size cap.
    #[error("state larger than {0} bytes")]
    TooLarge(u64),
    /// The body is not a leader's state.
    #[error("invalid state: {0}")]
    Invalid(String),
    /// The client could not be built (bad CA file).
    #[error("{0}")]
    Setup(String),
}

/// Fetches master states.
pub struct MasterClient {
    client: Client,
    /// Without an overall timeout, for the event stream (heartbeats bound it instead).
    stream_client: Client,
    scheme: &'static str,
    credentials: Option<(String, String)>,
    max_bytes: u64,
}

impl MasterClient {
    /// A client configured from `masters`-related keys: HTTPS, CA and client certificate,
    /// credentials, timeouts.
    pub fn new(config: &Config) -> Result<MasterClient, FetchError> {
        let certs = if config.ca_cert_file.is_empty() {
            Vec::new()
        } else {
            let pem = std::fs::read(&config.ca_cert_file).map_err(|e| {
                FetchError::Setup(format!("CACertFile {}: {e}", config.ca_cert_file))
            })?;
            reqwest::Certificate::from_pem_bundle(&pem).map_err(|e| {
                FetchError::Setup(format!("CACertFile {}: {e}", config.ca_cert_file))
            })?
        };
        let identity = if config.cert_file.is_empty() {
            None
        } else {
            let read = |path: &str, what: &str| {
                std::fs::read(path).map_err(|e| FetchError::Setup(format!("{what} {path}: {e}")))
            };
            let mut pem = read(&config.cert_file, "CertFile")?;
            pem.push(b'\n');
            pem.extend(read(&config.key_file, "KeyFile")?);
            Some(reqwest::Identity::from_pem(&pem).map_err(|e| {
                FetchError::Setup(format!("CertFile/KeyFile {}: {e}", config.cert_file))
            })?)
        };
        let builder = || {
            let b = super::http_client::builder(config.mesos_https_on, &certs)
                .connect_timeout(Duration::from_secs(config.state_timeout_seconds.min(10)))
                .redirect(reqwest::redirect::Policy::limited(5));
            match &identity {
                // Masters that verify clients (mutual TLS) get this certificate.
                Some(id) => b.identity(id.clone()),
                None => b,
            }
        };
        let client = builder()
            .timeout(Duration::from_secs(config.state_timeout_seconds))
            .build()?;
        let stream_client = builder().build()?;
        let credentials = config
            .mesos_credentials
            .as_ref()
            .filter(|_| config.mesos_authentication != "iam")
            .map(|c| (c.principal.clone(), c.secret.clone()));
        Ok(MasterClient {
            client,
            stream_client,
            scheme: if config.mesos_https_on {
                "https"
            } else {
                "http"
            },
            credentials,
            max_bytes: config.max_state_bytes,
        })
    }

    async fn get(&self, master: &str, path: &str) -> Result<Vec<u8>, FetchError> {
        let url = format!("{}://{}{}", self.scheme, master, path);
        let mut req = self.client.get(&url).header("Accept", "application/json");
        if let Some((user, pass)) = &self.credentials {
            req = req.basic_auth(user, Some(pass));
        }
        let mut resp = req.send().await?;
        if resp.status() != StatusCode::OK {
            return Err(FetchError::Status(resp.status()));
        }
        if resp.content_length().is_some_and(|n| n > self.max_bytes) {
            return Err(FetchError::TooLarge(self.max_bytes));
        }
        let mut body = Vec::new();
        while let Some(chunk) = resp.chunk().await? {
            if body.len() as u64 + chunk.len() as u64 > self.max_bytes {
                return Err(FetchError::TooLarge(self.max_bytes));
            }
            body.extend_from_slice(&chunk);
        }
        Ok(body)
    }

    /// Subscribes to the event stream of `master`; `Ok(None)` when the master has no v1
    /// operator API (Mesos < 1.0).
    pub async fn subscribe(&self, master: &str) -> Result<Option<reqwest::Response>, FetchError> {
        let url = format!("{}://{}/api/v1", self.scheme, master);
        let mut req = self
            .stream_client
            .post(&url)
            .header("Content-Type", "application/json")
            .header("Accept", "application/json")
            .body(r#"{"type":"SUBSCRIBE"}"#);
        if let Some((user, pass)) = &self.credentials {
            req = req.basic_auth(user, Some(pass));
        }
        let resp = req.send().await?;
        match resp.status() {
            StatusCode::OK => Ok(Some(resp)),
            StatusCode::NOT_FOUND
            | StatusCode::METHOD_NOT_ALLOWED
            | StatusCode::UNSUPPORTED_MEDIA_TYPE => Ok(None),
            s => Err(FetchError::Status(s)),
        }
    }

    /// The state document of `master` (`ip:port`), from `/master/state`, else the older
    /// `/master/state.json`.
    pub async fn fetch(&self, master: &str) -> Result<Vec<u8>, FetchError> {
        match self.get(master, "/master/state").await {
            Err(FetchError::Status(StatusCode::NOT_FOUND)) => {
                self.get(master, "/master/state.json").await
            }
            other => other,
        }
    }
}

/// The `ip:port` of the leader named in a state's `leader` PID.
fn leader_address(state: &State) -> Option<String> {
    let addr = state.leader.split('@').nth(1)?;
    let (host, port) = split_host_port(addr)?;
    Some(if host.contains(':') {
        format!("[{host}]:{port}")
    } else {
        format!("{host}:{port}")
    })
}

/// Asks the masters in turn (last known leader first) for the leader's state; returns the
/// document and the leader's address.
pub async fn fetch_leader_state(
    client: &MasterClient,
    masters: &[String],
    last_leader: Option<&str>,
) -> Result<(Vec<u8>, String), FetchError> {
    let mut last_err = FetchError::Invalid("no masters known yet".into());
    let mut candidates: Vec<&str> = last_leader.into_iter().collect();
    candidates.extend(
        masters
            .iter()
            .map(String::as_str)
            .filter(|m| Some(*m) != last_leader),
    );
    for master in candidates {
        match client.fetch(master).await {
            Ok(body) => {
                let state = match State::from_json(&body) {
                    Ok(s) => s,
                    Err(e) => {
                        last_err = FetchError::Invalid(e.to_string());
                        continue;
                    }
                };
                let Some(leader) = leader_address(&state) else {
                    last_err = FetchError::Invalid("no leader address".into());
                    continue;
                };
                if leader == master {
                    return Ok((body, leader));
                }
                // A state from a non-leading master: ask the leader it names.
                debug!(%master, %leader, "master is not the leader; asking the leader");
                match client.fetch(&leader).await {
                    Ok(body) => return Ok((body, leader)),
                    Err(e) => last_err = e,
                }
            }
            Err(e) => {
                debug!(%master, error = %e, "master fetch failed");
                last_err = e;
            }
        }
    }
    Err(last_err)
}

/// How the master source gets changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Event stream when the master has one, polling otherwise.
    Stream,
    /// Polling only.
    Poll,
}

/// Follows the leading master forever: fetches its state, then follows its event stream
/// (or, without one, polls every `refresh`, with up to 10% jitter so thousands of agents
/// don't poll in step). With ZooKeeper detection (`zk_leader`), the detected leader is asked
/// first and a leader change resubscribes (or polls) at once; the static `masters` remain the
/// fallback.
pub async fn follow(
    client: MasterClient,
    masters: Vec<String>,
    mut zk_leader: Option<watch::Receiver<Option<String>>>,
    publisher: Arc<Publisher>,
    refresh: Duration,
    mode: Mode,
) {
    let mut leader: Option<String> = None;
    let mut failing = false;
    let mut stream_supported = mode == Mode::Stream;
    let mut stream_backoff = Duration::from_millis(500);
    loop {
        if let Some(zk) = &zk_leader {
            if let Some(l) = zk.borrow().clone() {
                leader = Some(l);
            }
        }
        let mut fetched = None;
        match fetch_leader_state(&client, &masters, leader.as_deref()).await {
            Ok((body, new_leader)) => {
                if leader.as_deref() != Some(new_leader.as_str()) {
                    info!(leader = %new_leader, "following the leading master");
                    leader = Some(new_leader.clone());
                }
                if let Err(e) = publisher.publish(body).await {
                    warn!(error = %e, "master state rejected; keeping the last snapshot");
                } else if failing {
                    info!("master state available again");
                    failing = false;
                }
                fetched = Some(new_leader);
            }
            Err(e) => {
                publisher.fetch_failed(&e.to_string());
                if !failing {
                    warn!(error = %e, "cannot fetch the master state; keeping the last snapshot");
                }
                failing = true;
                leader = None;
            }
        }
        if let (Some(l), true) = (fetched, stream_supported) {
            let zk_rx = zk_leader.clone();
            let subscribed_at = std::time::Instant::now();
            match stream::follow_stream(&client, &l, &publisher, zk_rx, client.max_bytes as usize)
                .await
            {
                StreamEnd::Unsupported => {
                    info!(leader = %l, "no v1 operator API on this master: polling every refreshSeconds");
                    stream_supported = false;
                }
                StreamEnd::LeaderChanged => continue,
                StreamEnd::Broken(e) => {
                    warn!(leader = %l, error = %e, "event stream ended; resubscribing");
                    if subscribed_at.elapsed() > Duration::from_secs(60) {
                        // It ran fine for a while: this is a new problem, start over.
                        stream_backoff = Duration::from_millis(500);
                    }
                    tokio::time::sleep(stream_backoff).await;
                    stream_backoff = (stream_backoff * 2).min(Duration::from_secs(30));
                    continue;
                }
            }
        }
        let jitter = refresh.mul_f64(rand::random::<f64>() * 0.1);
        match &mut zk_leader {
            Some(zk) => {
                tokio::select! {
                    _ = tokio::time::sleep(refresh + jitter) => {}
                    changed = zk.changed() => {
                        if changed.is_err() {
                            zk_leader = None;
                        }
                    }
                }
            }
            None => tokio::time::sleep(refresh + jitter).await,
        }
    }
}

/// Why following an event stream stopped.
#[derive(Debug)]
pub enum StreamEnd {
    /// The master has no event stream.
    Unsupported,
    /// ZooKeeper reports another leader.
    LeaderChanged,
    /// The stream failed or went silent.
    Broken(String),
}
