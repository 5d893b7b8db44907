//! The `relay` source: another daemon's `/v1/snapshot`, long-polled.
//!
//! Only the relay tier talks to the Mesos master; agents follow a relay (or an HTTP cache in
//! front of relays). Each request carries the ETag of the document in service and waits up to
//! 30 seconds for a change, so an idle cluster costs a 304 per agent per half minute and a
//! change reaches the agents as soon as the relay has it.

use std::sync::Arc;
use std::time::Duration;

use reqwest::{Client, StatusCode};

use serde::Deserialize;
use tracing::{info, warn};

use crate::publish::{Publisher, RELAY_FORMAT_VERSION};

/// How long each long-poll asks the relay to wait.
const LONG_POLL: Duration = Duration::from_secs(30);

#[derive(Deserialize)]
struct Envelope {
    version: u32,
    state: Box<serde_json::value::RawValue>,
}

/// Why a relay document was not used.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// HTTP failure.
    #[error("{0}")]
    Http(#[from] reqwest::Error),
    /// Unexpected status.
    #[error("HTTP status {0}")]
    Status(StatusCode),
    /// Not a relay document of a version we read.
    #[error("bad relay document: {0}")]
    Document(String),
}

/// Follows the relay at `base` (e.g. `http://10.0.0.5:8123`) forever, sending `token` as a
/// bearer token when the relay requires one (`httpToken`).
pub async fn follow(
    base: String,
    publisher: Arc<Publisher>,
    timeout: Duration,
    max_bytes: u64,
    token: Option<String>,
) {
    let client = match super::http_client::builder(base.starts_with("https://"), &[])
        .timeout(LONG_POLL + timeout)
        .build()
    {
        Ok(c) => c,
        Err(e) => {
            warn!(error = %e, "cannot build the relay client");
            return;
        }
    };
    let url = format!(
        "{}/v1/snapshot?wait={}",
        base.trim_end_matches('/'),
        LONG_POLL.as_secs()
    );
    let mut etag: Option<String> = None;
    let mut backoff = Duration::from_millis(500);
    let mut failing = false;
    loop {
        match fetch(&client, &url, etag.as_deref(), token.as_deref(), max_bytes).await {
            Ok(Some((new_etag, state))) => {
                match publisher.publish(state).await {
                    Ok(_) => etag = new_etag,
                    Err(e) => {
                        warn!(error = %e, "relay document rejected; keeping the last snapshot")
                    }
                }
                if failing {
                    info!(relay = %base, "relay reachable again");
                    failing = false;
                }
                backoff = Duration::from_millis(500);
            }
            Ok(None) => {
                // 304: the relay still serves the state we serve.
                publisher.confirm();
                backoff = Duration::from_millis(500);
            }
            Err(e) => {
                publisher.fetch_failed(&e.to_string());
                if !failing {
                    warn!(relay = %base, error = %e, "cannot fetch from the relay; keeping the last snapshot");
                    failing = true;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
    }
}

/// One long-poll: `Ok(None)` when unchanged, else the new ETag and state document.
async fn fetch(
    client: &Client,
    url: &str,
    etag: Option<&str>,
    token: Option<&str>,
    max_bytes: u64,
) -> Result<Option<(Option<String>, Vec<u8>)>, RelayError> {
    let mut req = client.get(url);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if let Some(e) = etag {
        req = req.header("If-None-Match", e);
    }
    let mut resp = req.send().await?;
    match resp.status() {
        StatusCode::NOT_MODIFIED => return Ok(None),
        StatusCode::OK => {}
        s => return Err(RelayError::Status(s)),
    }
    let new_etag = resp
        .headers()
        .get("etag")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if body.len() as u64 + chunk.len() as u64 > max_bytes {
            return Err(RelayError::Document(format!(
                "larger than {max_bytes} bytes"
            )));
        }
        body.extend_from_slice(&chunk);
    }
    let env: Envelope =
        serde_json::from_slice(&body).map_err(|e| RelayError::Document(e.to_string()))?;
    if env.version != RELAY_FORMAT_VERSION {
        return Err(RelayError::Document(format!(
            "format version {}",
            env.version
        )));
    }
    Ok(Some((new_etag, env.state.get().as_bytes().to_vec())))
}
