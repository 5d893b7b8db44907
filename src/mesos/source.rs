//! The state sources, one shape: [`from_config`] picks and builds the configured source, and
//! [`Source::run`] hands each state it obtains to the [`Publisher`], forever.
//!
//! What every networked source needs is written once here: the body reader capped at
//! `maxStateBytes` ([`read_capped`], or [`parse_capped`] to parse a body as it arrives), the
//! retry delay ([`Backoff`]), and the "unreachable /
//! reachable again" log with its failure count ([`Reachability`]).

use std::fmt::Display;
use std::sync::Arc;
use std::time::Duration;

use tracing::{info, warn};

use super::{demo, file, masters, mesos_dns, relay};
use crate::config::Config;
use crate::publish::Publisher;

/// Why the configured source could not be built.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// The masters' HTTP client could not be set up (unreadable CA or client certificate).
    #[error(transparent)]
    Master(#[from] super::master::FetchError),
    /// An HTTP client could not be built.
    #[error("cannot build the HTTP client: {0}")]
    Client(#[from] reqwest::Error),
}

/// The configured cluster state source.
pub enum Source {
    /// The bundled demo cluster (`--demo`): published once, nothing to follow.
    Demo,
    /// A state file (`stateFile`).
    File(file::Watcher),
    /// An existing Mesos-DNS's zone (`mesosDns`).
    MesosDns(mesos_dns::MesosDns),
    /// Another daemon's relay document (`relay`).
    Relay(relay::Client),
    /// The Mesos masters (`masters`, `zk`).
    Masters(masters::Masters),
}

/// The source the configuration names, in the order of precedence `--demo`, `stateFile`,
/// `mesosDns`, `relay`, then the masters. The configuration must be validated.
pub fn from_config(config: &Config) -> Result<Source, SourceError> {
    Ok(if config.demo {
        Source::Demo
    } else if let Some(path) = &config.state_file {
        Source::File(file::Watcher::new(path.clone(), config.max_state_bytes))
    } else if let Some(base) = &config.mesos_dns {
        Source::MesosDns(mesos_dns::MesosDns::from_config(base, config)?)
    } else if let Some(base) = &config.relay {
        Source::Relay(relay::Client::from_config(base, config)?)
    } else {
        Source::Masters(masters::Masters::from_config(config)?)
    })
}

impl Source {
    /// Publishes what the source has without waiting on the network (the demo document, the
    /// state file, or the persisted state for the sources that reach the cluster over the
    /// network and persist it), so the daemon answers from its first query.
    pub async fn load(&mut self, publisher: &Publisher) {
        match self {
            Source::Demo => {
                // The bundled document is valid; failing here would be a build defect.
                if let Err(e) = publisher.publish(demo::DEMO_STATE).await {
                    tracing::error!(error = %e, "demo state rejected");
                }
                info!("serving the bundled demo cluster");
            }
            Source::File(watcher) => {
                info!(path = %watcher.path().display(), "serving the state file");
                watcher.check(publisher).await;
            }
            Source::MesosDns(_) => {}
            Source::Relay(_) | Source::Masters(_) => {
                publisher.load_persisted().await;
            }
        }
    }

    /// Follows the source forever, handing every state it obtains to `publisher` (the demo
    /// source has nothing to follow and returns at once).
    pub async fn run(self, publisher: Arc<Publisher>) {
        match self {
            Source::Demo => {}
            Source::File(watcher) => watcher.run(publisher).await,
            Source::MesosDns(source) => source.run(publisher).await,
            Source::Relay(client) => client.run(publisher).await,
            Source::Masters(masters) => masters.run(publisher).await,
        }
    }
}

/// The time limit of one request to a relay or a Mesos-DNS: `stateTimeoutSeconds`, at most a
/// minute (those serve a ready document; only a master may take long to build its state).
pub fn request_timeout(config: &Config) -> Duration {
    Duration::from_secs(config.state_timeout_seconds.min(60))
}

/// Why a response body was not read.
#[derive(Debug, thiserror::Error)]
pub enum BodyError {
    /// The connection failed mid-body (or timed out).
    #[error("{0}")]
    Http(#[from] reqwest::Error),
    /// The body is larger than the cap (`maxStateBytes`).
    #[error("state larger than {0} bytes")]
    TooLarge(u64),
    /// The parser's job on the build thread failed.
    #[error("the state parser failed")]
    Parser,
}

/// Reads the body of `resp`, refusing one larger than `max_bytes` (`maxStateBytes`) as soon as
/// its announced length or the bytes read so far exceed the cap, so a misbehaving server
/// cannot exhaust memory.
pub async fn read_capped(
    mut resp: reqwest::Response,
    max_bytes: u64,
) -> Result<Vec<u8>, BodyError> {
    if resp.content_length().is_some_and(|n| n > max_bytes) {
        return Err(BodyError::TooLarge(max_bytes));
    }
    let mut body = Vec::new();
    while let Some(chunk) = resp.chunk().await? {
        if body.len() as u64 + chunk.len() as u64 > max_bytes {
            return Err(BodyError::TooLarge(max_bytes));
        }
        body.extend_from_slice(&chunk);
    }
    Ok(body)
}

/// How many received chunks may wait for the parser before the download pauses.
const CHUNKS_IN_FLIGHT: usize = 16;

/// Parses the body of `resp` with `parse` on the publisher's build thread while it arrives,
/// refusing one larger than `max_bytes` like [`read_capped`]. The body is never held whole:
/// at 100,000 tasks a master's document is about 46 MiB, which would otherwise be alive
/// beside the served state and the state being parsed, the peak of every update.
pub async fn parse_capped<T: Send + 'static, E: Send + 'static>(
    mut resp: reqwest::Response,
    max_bytes: u64,
    publisher: &Publisher,
    parse: fn(&mut dyn std::io::Read) -> Result<T, E>,
) -> Result<Result<T, E>, BodyError> {
    if resp.content_length().is_some_and(|n| n > max_bytes) {
        return Err(BodyError::TooLarge(max_bytes));
    }
    let (chunks, received) = tokio::sync::mpsc::channel(CHUNKS_IN_FLIGHT);
    let parsed = publisher.parse(move || {
        let mut reader = std::io::BufReader::with_capacity(
            64 * 1024,
            ChunkReader {
                received,
                current: bytes::Bytes::new(),
            },
        );
        parse(&mut reader)
    });
    let feed = async move {
        let mut read = 0u64;
        loop {
            let chunk = match resp.chunk().await {
                Ok(Some(chunk)) => chunk,
                Ok(None) => return Ok(()),
                Err(e) => {
                    let _ = chunks.send(Err(std::io::Error::other(e.to_string()))).await;
                    return Err(BodyError::Http(e));
                }
            };
            read += chunk.len() as u64;
            if read > max_bytes {
                let _ = chunks
                    .send(Err(std::io::Error::other("over the cap")))
                    .await;
                return Err(BodyError::TooLarge(max_bytes));
            }
            if chunks.send(Ok(chunk)).await.is_err() {
                // The parser stopped (the document is invalid): its error is the answer.
                return Ok(());
            }
        }
    };
    let (parsed, fed) = tokio::join!(parsed, feed);
    fed?;
    parsed.map_err(|_| BodyError::Parser)
}

/// The chunks of a body as a blocking reader, for a parser on the build thread.
struct ChunkReader {
    received: tokio::sync::mpsc::Receiver<std::io::Result<bytes::Bytes>>,
    current: bytes::Bytes,
}

impl std::io::Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.received.blocking_recv() {
                Some(chunk) => self.current = chunk?,
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current.split_to(n));
        Ok(n)
    }
}

/// A retry delay that doubles after each failure up to a ceiling and starts over after a
/// success, so a source retries quickly after a blip without hammering a server that is down.
#[derive(Debug, Clone)]
pub struct Backoff {
    first: Duration,
    max: Duration,
    next: Duration,
}

impl Default for Backoff {
    /// The sources' retry delay: from half a second, doubling up to 30 seconds.
    fn default() -> Backoff {
        Backoff::new(Duration::from_millis(500), Duration::from_secs(30))
    }
}

impl Backoff {
    /// Delays from `first`, doubling up to `max`.
    pub fn new(first: Duration, max: Duration) -> Backoff {
        Backoff {
            first,
            max,
            next: first,
        }
    }

    /// The delay before the next attempt, doubling the one after it.
    pub fn next_delay(&mut self) -> Duration {
        let delay = self.next;
        self.next = (self.next * 2).min(self.max);
        delay
    }

    /// Sleeps for the next delay.
    pub async fn wait(&mut self) {
        tokio::time::sleep(self.next_delay()).await;
    }

    /// Starts over from the first delay (after a success).
    pub fn reset(&mut self) {
        self.next = self.first;
    }
}

/// Whether a source's server answers, logged once per change: a warning when it stops
/// answering, a note when it answers again. Every failure to get a state is also handed to
/// the publisher ([`Publisher::fetch_failed`]), which counts it and keeps it for `/ready`.
#[derive(Debug)]
pub struct Reachability {
    what: &'static str,
    server: String,
    failing: bool,
}

impl Reachability {
    /// Tracks the server at `server`, described in logs as `what` (e.g. "the relay").
    pub fn new(what: &'static str, server: impl Into<String>) -> Reachability {
        Reachability {
            what,
            server: server.into(),
            failing: false,
        }
    }

    /// Whether the last attempt failed.
    pub fn failing(&self) -> bool {
        self.failing
    }

    /// Records a failed attempt: counted by the publisher, logged if it is the first since the
    /// server last answered.
    pub fn failed(&mut self, publisher: &Publisher, error: &dyn Display) {
        publisher.fetch_failed(&error.to_string());
        self.lost(error);
    }

    /// Records a failed attempt that brings no state (ZooKeeper's), logged if it is the first
    /// since the server last answered.
    pub fn lost(&mut self, error: &dyn Display) {
        if !self.failing {
            warn!(source = self.what, server = %self.server, %error, "source unreachable; keeping the last snapshot");
            self.failing = true;
        }
    }

    /// Records that the server answered, logged if it had been failing.
    pub fn reached(&mut self) {
        if self.failing {
            info!(source = self.what, server = %self.server, "source reachable again");
            self.failing = false;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_to_its_ceiling_and_starts_over() {
        let mut b = Backoff::new(Duration::from_millis(500), Duration::from_secs(3));
        let delays: Vec<_> = (0..5).map(|_| b.next_delay().as_millis()).collect();
        assert_eq!(delays, [500, 1000, 2000, 3000, 3000]);
        b.reset();
        assert_eq!(b.next_delay(), Duration::from_millis(500));
        let mut sources = Backoff::default();
        assert_eq!(sources.next_delay(), Duration::from_millis(500));
        assert_eq!(
            (0..10).map(|_| sources.next_delay()).max(),
            Some(Duration::from_secs(30))
        );
    }

    #[test]
    fn every_failure_reaches_the_publisher_and_recovery_is_noted() {
        let publisher = Publisher::new(
            crate::records::RecordSettings::from_config(&Config::default(), vec![]),
            Arc::new(arc_swap::ArcSwapOption::empty()),
            Arc::new(crate::metrics::Metrics::default()),
            None,
        );
        let mut reach = Reachability::new("the relay", "http://relay:8123");
        reach.failed(&publisher, &"connection refused");
        reach.failed(&publisher, &"HTTP status 502");
        assert!(reach.failing());
        assert_eq!(publisher.last_error().as_deref(), Some("HTTP status 502"));
        reach.reached();
        assert!(!reach.failing());
    }

    /// Serves `body` once per connection, announcing its length only when `announce`.
    async fn server(body: Vec<u8>, announce: bool) -> String {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            loop {
                let Ok((mut conn, _)) = listener.accept().await else {
                    return;
                };
                let body = body.clone();
                tokio::spawn(async move {
                    let mut head = [0u8; 1024];
                    let _ = conn.read(&mut head).await;
                    let header = if announce {
                        format!("Content-Length: {}\r\n", body.len())
                    } else {
                        String::new()
                    };
                    let _ = conn
                        .write_all(
                            format!("HTTP/1.1 200 OK\r\n{header}Connection: close\r\n\r\n")
                                .as_bytes(),
                        )
                        .await;
                    let _ = conn.write_all(&body).await;
                });
            }
        });
        format!("http://{addr}/")
    }

    #[tokio::test]
    async fn bodies_over_the_cap_are_refused_whether_announced_or_not() {
        let client = reqwest::Client::new();
        for announce in [true, false] {
            let url = server(vec![b'x'; 1000], announce).await;
            let resp = client.get(&url).send().await.unwrap();
            assert!(
                matches!(read_capped(resp, 999).await, Err(BodyError::TooLarge(999))),
                "announced: {announce}"
            );
            let resp = client.get(&url).send().await.unwrap();
            assert_eq!(read_capped(resp, 1000).await.unwrap().len(), 1000);
        }
    }

    /// A body parsed as it arrives: over the cap it is refused whether its length was
    /// announced or not (and the parser's own error does not hide that), a body that is not a
    /// state is the parser's error, and a good one is parsed whole.
    #[tokio::test]
    async fn bodies_parsed_as_they_arrive_are_capped_and_parsed_whole() {
        let publisher = Publisher::new(
            crate::records::RecordSettings::from_config(&Config::default(), vec![]),
            Arc::new(arc_swap::ArcSwapOption::empty()),
            Arc::new(crate::metrics::Metrics::default()),
            None,
        );
        let doc = serde_json::to_vec(&crate::mesos::synthetic::uniform_state_value(
            2000, 2, 20, "x",
        ))
        .unwrap();
        let len = doc.len() as u64;
        let parse = |r: &mut dyn std::io::Read| crate::mesos::model::State::from_reader(r);
        let client = reqwest::Client::new();
        for announce in [true, false] {
            let url = server(doc.clone(), announce).await;
            let resp = client.get(&url).send().await.unwrap();
            let capped = parse_capped(resp, len - 1, &publisher, parse).await;
            assert!(
                matches!(capped, Err(BodyError::TooLarge(n)) if n == len - 1),
                "announced: {announce}"
            );
            let resp = client.get(&url).send().await.unwrap();
            let state = parse_capped(resp, len, &publisher, parse)
                .await
                .unwrap()
                .unwrap();
            let tasks: usize = state.frameworks.iter().map(|f| f.tasks.len()).sum();
            assert_eq!(tasks, 2000);
        }
        let url = server(b"{\"leader\": 1".to_vec(), false).await;
        let resp = client.get(&url).send().await.unwrap();
        assert!(parse_capped(resp, len, &publisher, parse)
            .await
            .unwrap()
            .is_err());
    }
}
