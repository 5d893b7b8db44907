//! The masters' HTTP side: their state (`/master/state`) and the event stream's subscription
//! (`/api/v1`), for the masters source ([`super::masters`]).
//!
//! Masters come from the `masters` list; the last known leader is asked first. A non-leading
//! master either redirects (307) to the leader, which is followed, or returns a state naming
//! another leader, which is then asked directly, as Mesos-DNS does. Older masters without
//! `/master/state` get `/master/state.json`. Bodies are size-capped and time-limited, so a
//! misbehaving master cannot exhaust memory or stall refreshes; every failure leaves the last
//! good snapshot in service.

use std::time::Duration;

use reqwest::{Client, StatusCode};
use tracing::debug;

use super::model::{split_host_port, State};
use super::source::{parse_capped, BodyError};
use crate::config::Config;
use crate::publish::{PublishError, Publisher};

/// Why one fetch from one master failed.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// HTTP-level failure (connect, timeout, TLS, body).
    #[error("{0}")]
    Http(#[from] reqwest::Error),
    /// A status other than 200.
    #[error("HTTP status {0}")]
    Status(StatusCode),
    /// The body could not be read whole (connection lost, or over `maxStateBytes`).
    #[error(transparent)]
    Body(#[from] BodyError),
    /// The body is not a leader's state.
    #[error("invalid state: {0}")]
    Invalid(String),
    /// The client could not be built (bad CA file).
    #[error("{0}")]
    Setup(String),
    /// The build thread that parses states failed.
    #[error(transparent)]
    Publish(#[from] PublishError),
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

    /// The cap on state documents and stream records (`maxStateBytes`).
    pub fn max_bytes(&self) -> u64 {
        self.max_bytes
    }

    /// The state at `path` on `master`, parsed on `publisher`'s build thread as it arrives.
    async fn get(
        &self,
        master: &str,
        path: &str,
        publisher: &Publisher,
    ) -> Result<State, FetchError> {
        let url = format!("{}://{}{}", self.scheme, master, path);
        let mut req = self.client.get(&url).header("Accept", "application/json");
        if let Some((user, pass)) = &self.credentials {
            req = req.basic_auth(user, Some(pass));
        }
        let resp = req.send().await?;
        if resp.status() != StatusCode::OK {
            return Err(FetchError::Status(resp.status()));
        }
        let parse = |body: &mut dyn std::io::Read| State::from_reader(body);
        parse_capped(resp, self.max_bytes, publisher, parse)
            .await?
            .map_err(|e| FetchError::Invalid(e.to_string()))
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

    /// The state of `master` (`ip:port`), from `/master/state`, else the older
    /// `/master/state.json`, parsed on `publisher`'s build thread.
    pub async fn fetch(&self, master: &str, publisher: &Publisher) -> Result<State, FetchError> {
        match self.get(master, "/master/state", publisher).await {
            Err(FetchError::Status(StatusCode::NOT_FOUND)) => {
                self.get(master, "/master/state.json", publisher).await
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
/// state, parsed once on the publisher's build thread, and the leader's address.
pub async fn fetch_leader_state(
    client: &MasterClient,
    masters: &[String],
    last_leader: Option<&str>,
    publisher: &Publisher,
) -> Result<(State, String), FetchError> {
    let mut last_err = FetchError::Invalid("no masters known yet".into());
    let mut candidates: Vec<&str> = last_leader.into_iter().collect();
    candidates.extend(
        masters
            .iter()
            .map(String::as_str)
            .filter(|m| Some(*m) != last_leader),
    );
    for master in candidates {
        let state = match client.fetch(master, publisher).await {
            Ok(state) => state,
            Err(e) => {
                debug!(%master, error = %e, "master fetch failed");
                last_err = e;
                continue;
            }
        };
        let Some(leader) = leader_address(&state) else {
            last_err = FetchError::Invalid("no leader address".into());
            continue;
        };
        if leader == master {
            return Ok((state, leader));
        }
        // A state from a non-leading master: ask the leader it names.
        debug!(%master, %leader, "master is not the leader; asking the leader");
        drop(state);
        match client.fetch(&leader, publisher).await {
            Ok(state) => return Ok((state, leader)),
            Err(e) => last_err = e,
        }
    }
    Err(last_err)
}
