//! The relay protocol, both ends: the document a daemon hands on ([`RelayDoc`]), the server
//! side of `/v1/snapshot` ([`Server`]), and the `relay` source that follows it ([`Client`]).
//!
//! Only the relay tier talks to the Mesos master; agents follow a relay (or an HTTP cache in
//! front of relays). The document is `{"version": 1, "state": {...}}` with only the fields
//! records are made from, served with a strong ETag derived from its content (so relays with
//! the same state agree on it), gzip when accepted, and `Cache-Control` so HTTP caches can fan
//! it out. Each client request carries the ETag of the document in service and waits up to 30
//! seconds for a change (`?wait=30`), so an idle cluster costs a 304 per agent per half minute
//! and a change reaches the agents as soon as the relay has it.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::http::{header, HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use reqwest::{Client as HttpClient, Url};
use serde::Deserialize;
use tokio::time::Instant;
use tracing::{info, warn};

use super::model::{State, StateError};
use super::source::{self, Backoff, BodyError, Reachability};
use crate::config::Config;
use crate::metrics::Metrics;
use crate::publish::{PublishError, Publisher};

/// Version of the relay document format.
pub const FORMAT_VERSION: u32 = 1;

/// How long each of the client's long-polls asks the relay to wait.
const LONG_POLL: Duration = Duration::from_secs(30);

/// The longest long-poll the server grants.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// The served state as relays hand it on: the compact, versioned document, its gzip form and
/// its ETag.
pub struct RelayDoc {
    /// `{"version": 1, "state": {...}}` with only the fields records are made from.
    pub json: Bytes,
    /// The same, gzip-compressed.
    pub gzip: Bytes,
    /// Quoted strong ETag.
    pub etag: String,
    /// The snapshot serial it belongs to.
    pub serial: u32,
}

impl RelayDoc {
    /// The document of `state`, served with the snapshot `serial`.
    pub fn new(state: &State, serial: u32) -> Result<RelayDoc, std::io::Error> {
        // The version first, so a reader parsing as it reads knows it before the state.
        #[derive(serde::Serialize)]
        struct Out<'a> {
            version: u32,
            state: &'a State,
        }
        let json = serde_json::to_vec(&Out {
            version: FORMAT_VERSION,
            state,
        })?;
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        enc.write_all(&json)?;
        let gzip = enc.finish()?;
        use sha1::Digest;
        let digest = sha1::Sha1::digest(&json);
        let etag = format!(
            "\"{}\"",
            digest
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect::<String>()
        );
        Ok(RelayDoc {
            json: json.into(),
            gzip: gzip.into(),
            etag,
            serial,
        })
    }
}

/// Why a relay document was not used.
#[derive(Debug, thiserror::Error)]
pub enum RelayError {
    /// HTTP failure.
    #[error("{0}")]
    Http(#[from] reqwest::Error),
    /// Unexpected status.
    #[error("HTTP status {0}")]
    Status(reqwest::StatusCode),
    /// The body could not be read whole (connection lost, or over `maxStateBytes`).
    #[error(transparent)]
    Body(#[from] BodyError),
    /// Not a relay document of a version we read.
    #[error("bad relay document: {0}")]
    Document(String),
    /// The document's state is not usable.
    #[error(transparent)]
    State(#[from] StateError),
    /// The build thread failed.
    #[error(transparent)]
    Publish(#[from] PublishError),
}

/// A relay document of the version this build reads, parsed in one pass (from a reader as
/// well as from memory): a version other than [`FORMAT_VERSION`] ends the parse, named as
/// such, as soon as it is read. Relays write the version first; an older relay wrote the
/// state first, which is read and then checked against the version that follows it.
struct Envelope(State);

impl<'de> Deserialize<'de> for Envelope {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Envelope, D::Error> {
        #[derive(Deserialize)]
        #[serde(field_identifier, rename_all = "lowercase")]
        enum Field {
            Version,
            State,
            #[serde(other)]
            Other,
        }
        struct Visit;
        impl<'de> serde::de::Visitor<'de> for Visit {
            type Value = Envelope;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("a relay document")
            }
            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                mut map: A,
            ) -> Result<Envelope, A::Error> {
                use serde::de::Error;
                let (mut version, mut state) = (None, None);
                while let Some(field) = map.next_key()? {
                    match field {
                        Field::Version => {
                            let v: u32 = map.next_value()?;
                            if v != FORMAT_VERSION {
                                return Err(A::Error::custom(format!("format version {v}")));
                            }
                            version = Some(v);
                        }
                        Field::State => state = Some(map.next_value::<State>()?),
                        Field::Other => {
                            map.next_value::<serde::de::IgnoredAny>()?;
                        }
                    }
                }
                if version.is_none() {
                    return Err(A::Error::missing_field("version"));
                }
                state
                    .map(Envelope)
                    .ok_or_else(|| A::Error::missing_field("state"))
            }
        }
        d.deserialize_map(Visit)
    }
}

/// Parses a relay document into its state.
pub fn parse(document: &[u8]) -> Result<State, RelayError> {
    let envelope: Envelope =
        serde_json::from_slice(document).map_err(|e| RelayError::Document(e.to_string()))?;
    Ok(envelope.0.validated()?)
}

/// Parses a relay document into its state as it is read (see [`source::parse_capped`]).
pub fn parse_reader(document: &mut dyn std::io::Read) -> Result<State, RelayError> {
    let envelope: Envelope =
        serde_json::from_reader(document).map_err(|e| RelayError::Document(e.to_string()))?;
    Ok(envelope.0.validated()?)
}

/// Query parameters of `/v1/snapshot`.
#[derive(Debug, Deserialize)]
pub struct SnapshotQuery {
    /// Long-poll: with an `If-None-Match` that is current, wait up to this many seconds (at
    /// most 60) for a change before answering 304.
    pub wait: Option<u64>,
}

/// The server side of `/v1/snapshot`: the relay document of the served state, built once per
/// snapshot (on first request, off the DNS threads) and shared by every client.
pub struct Server {
    publisher: Arc<Publisher>,
    metrics: Arc<Metrics>,
    /// `max-age` of the `Cache-Control` header.
    max_age: u64,
    cached: Mutex<Option<Arc<RelayDoc>>>,
}

impl Server {
    /// The server for `publisher`'s state; HTTP caches may keep a document for
    /// `refreshSeconds`, between 1 and 5 seconds.
    pub fn new(publisher: Arc<Publisher>, metrics: Arc<Metrics>, config: &Config) -> Server {
        Server {
            publisher,
            metrics,
            max_age: config.refresh_seconds.clamp(1, 5),
            cached: Mutex::new(None),
        }
    }

    /// The document of the served state if it is already built (no work done here).
    pub fn cached(&self) -> Option<Arc<RelayDoc>> {
        let serial = self.publisher.snapshot()?.soa.serial;
        let cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        cached.as_ref().filter(|d| d.serial == serial).cloned()
    }

    /// The document of the served state, built on first request after each change (a few
    /// hundred milliseconds for a large cluster: call it from a blocking thread).
    pub fn document(&self) -> Option<Arc<RelayDoc>> {
        let serial = self.publisher.snapshot()?.soa.serial;
        let mut cached = self.cached.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(doc) = cached.as_ref().filter(|d| d.serial == serial) {
            return Some(doc.clone());
        }
        // Right after an update the served snapshot can be newer than the state (see
        // Publisher::publish_state): the document then carries the state's own serial, and
        // the next request after the state catches up builds the newer one.
        let current = self.publisher.current()?;
        let doc = Arc::new(RelayDoc::new(current.state(), current.serial).ok()?);
        if current.serial == serial {
            *cached = Some(doc.clone());
        }
        Some(doc)
    }

    /// Answers one `/v1/snapshot` request: the document (gzip when accepted), 304 when the
    /// client's `If-None-Match` is current and `wait` seconds pass without a change, 503
    /// while there is no state.
    pub async fn respond(self: &Arc<Self>, headers: &HeaderMap, wait: Option<u64>) -> Response {
        Metrics::inc(&self.metrics.relay_requests);
        let if_none_match = headers
            .get(header::IF_NONE_MATCH)
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let gzip = headers
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.contains("gzip"));
        let deadline = Instant::now() + Duration::from_secs(wait.unwrap_or(0)).min(MAX_WAIT);
        let mut changes = self.publisher.subscribe();
        loop {
            let doc = match self.cached() {
                Some(doc) => Some(doc),
                None => {
                    // Building serialises and compresses the whole state: not on the threads
                    // that answer DNS.
                    let server = self.clone();
                    tokio::task::spawn_blocking(move || server.document())
                        .await
                        .ok()
                        .flatten()
                }
            };
            let remaining = deadline.saturating_duration_since(Instant::now());
            match doc {
                Some(doc) if if_none_match.as_deref() != Some(doc.etag.as_str()) => {
                    return self.full(&doc, gzip);
                }
                Some(doc) if remaining.is_zero() => {
                    Metrics::inc(&self.metrics.relay_not_modified);
                    let mut resp = StatusCode::NOT_MODIFIED.into_response();
                    if let Ok(v) = doc.etag.parse() {
                        resp.headers_mut().insert(header::ETAG, v);
                    }
                    return resp;
                }
                None if remaining.is_zero() => {
                    return (StatusCode::SERVICE_UNAVAILABLE, "no cluster state yet\n")
                        .into_response();
                }
                _ => {
                    if tokio::time::timeout(remaining, changes.changed())
                        .await
                        .is_err()
                    {
                        // Deadline: loop once more to answer 304 (or 503).
                        continue;
                    }
                }
            }
        }
    }

    /// A 200 carrying `doc`, with its caching headers.
    fn full(&self, doc: &RelayDoc, gzip: bool) -> Response {
        let mut resp = if gzip {
            (
                [(header::CONTENT_ENCODING, "gzip".to_string())],
                doc.gzip.clone(),
            )
                .into_response()
        } else {
            doc.json.clone().into_response()
        };
        let h = resp.headers_mut();
        h.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if let Ok(v) = doc.etag.parse() {
            h.insert(header::ETAG, v);
        }
        if let Ok(v) = format!("public, max-age={}", self.max_age).parse() {
            h.insert(header::CACHE_CONTROL, v);
        }
        h.insert(header::VARY, HeaderValue::from_static("Accept-Encoding"));
        resp
    }
}

/// The `relay` source: follows another daemon's `/v1/snapshot` by long-polling.
pub struct Client {
    base: String,
    url: String,
    client: HttpClient,
    token: Option<String>,
    max_bytes: u64,
}

impl Client {
    /// The client for the relay at `base` (the `relay` key, e.g. `http://10.0.0.5:8123`),
    /// sending `httpToken` as a bearer
    /// token when set; each request may take the long-poll plus `stateTimeoutSeconds` (at
    /// most a minute), each document at most `maxStateBytes`.
    pub fn from_config(base: &Url, config: &Config) -> Result<Client, reqwest::Error> {
        let client = super::http_client::builder(base.scheme() == "https", &[])
            .timeout(LONG_POLL + source::request_timeout(config))
            .build()?;
        Ok(Client {
            url: format!(
                "{}/v1/snapshot?wait={}",
                base.as_str().trim_end_matches('/'),
                LONG_POLL.as_secs()
            ),
            base: base.to_string(),
            client,
            token: config.http_token.clone(),
            max_bytes: config.max_state_bytes,
        })
    }

    /// Follows the relay forever.
    pub async fn run(self, publisher: Arc<Publisher>) {
        info!(relay = %self.base, "following the relay");
        let mut etag: Option<String> = None;
        let mut backoff = Backoff::default();
        let mut reach = Reachability::new("the relay", self.base.clone());
        loop {
            match self.next(&publisher, etag.as_deref()).await {
                Ok(Some((new_etag, state))) => {
                    reach.reached();
                    backoff.reset();
                    match publisher.publish_state(state).await {
                        Ok(_) => etag = new_etag,
                        Err(e) => {
                            warn!(error = %e, "relay document rejected; keeping the last snapshot")
                        }
                    }
                }
                Ok(None) => {
                    // 304: the relay still serves the state we serve.
                    reach.reached();
                    publisher.confirm();
                    backoff.reset();
                }
                Err(e) => {
                    reach.failed(&publisher, &e);
                    backoff.wait().await;
                }
            }
        }
    }

    /// One long-poll: `Ok(None)` when unchanged, else the new ETag and the document's state,
    /// parsed on the publisher's build thread as the body arrives.
    async fn next(
        &self,
        publisher: &Publisher,
        etag: Option<&str>,
    ) -> Result<Option<(Option<String>, State)>, RelayError> {
        let mut req = self.client.get(&self.url);
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(e) = etag {
            req = req.header("If-None-Match", e);
        }
        let resp = req.send().await?;
        match resp.status() {
            reqwest::StatusCode::NOT_MODIFIED => return Ok(None),
            reqwest::StatusCode::OK => {}
            s => return Err(RelayError::Status(s)),
        }
        let new_etag = resp
            .headers()
            .get("etag")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let parse = |body: &mut dyn std::io::Read| parse_reader(body);
        let state = source::parse_capped(resp, self.max_bytes, publisher, parse).await??;
        Ok(Some((new_etag, state)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATE: &str = r#"{"leader":"master@10.0.0.1:5050","frameworks":[],"slaves":[]}"#;

    #[test]
    fn documents_round_trip_and_other_versions_are_named() {
        let state = State::from_json(STATE.as_bytes()).unwrap();
        let doc = RelayDoc::new(&state, 7).unwrap();
        assert_eq!(parse(&doc.json).unwrap().leader, state.leader);
        assert!(doc.etag.starts_with('"') && doc.etag.len() == 42);
        assert_eq!(RelayDoc::new(&state, 8).unwrap().etag, doc.etag);

        let v2 = r#"{"version":2,"state":{"new":"shape"}}"#;
        let err = parse(v2.as_bytes()).unwrap_err().to_string();
        assert!(err.contains("format version 2"), "{err}");
        let leaderless = r#"{"version":1,"state":{"frameworks":[]}}"#;
        assert!(matches!(
            parse(leaderless.as_bytes()),
            Err(RelayError::State(StateError::NoLeader))
        ));
        assert!(parse(b"{not json").is_err());
        assert!(
            parse(format!(r#"{{"state":{STATE}}}"#).as_bytes()).is_err(),
            "no version"
        );
    }

    /// The document is parsed in one pass, from a reader too: the version comes first and
    /// another version stops the parse before the state; an older relay's document, state
    /// first, still reads.
    #[test]
    fn documents_parse_in_one_pass_in_either_order() {
        let state = State::from_json(STATE.as_bytes()).unwrap();
        let doc = RelayDoc::new(&state, 7).unwrap();
        assert!(doc.json.starts_with(br#"{"version":1,"#));
        assert_eq!(
            parse_reader(&mut &doc.json[..]).unwrap().leader,
            state.leader
        );
        let older = format!(r#"{{"state":{STATE},"version":1}}"#);
        assert_eq!(parse(older.as_bytes()).unwrap().leader, state.leader);
        assert_eq!(
            parse_reader(&mut older.as_bytes()).unwrap().leader,
            state.leader
        );
        // Version 2 first: named, though its state would not even parse.
        let v2 = r#"{"version":2,"state":{"frameworks":"a new shape"}}"#;
        let err = parse_reader(&mut v2.as_bytes()).unwrap_err().to_string();
        assert!(err.contains("format version 2"), "{err}");
    }
}
