//! The `file` source: a state document on disk, re-read whenever it changes.
//!
//! Useful for air-gapped hosts, for tests, and for feeding a snapshot produced elsewhere. The
//! file's modification time, size and inode are polled; polling needs no inotify support, works
//! on network filesystems and notices a file replaced by rename, which is how careful writers
//! update it. Like every source, a file larger than `maxStateBytes` is refused.
//!
//! While a state is served, a new version is parsed as it is read, never held whole: at
//! 100,000 tasks the file is about 46 MiB, which would otherwise be alive beside the served
//! state and the state being parsed. The first version is read whole and parsed from memory,
//! about twice as fast, since nothing served shares the memory then and a host waits for its
//! first answer.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tracing::warn;

use crate::mesos::model::{State, StateError};
use crate::publish::{PublishError, Publisher};

/// How often the file is checked for changes.
pub const POLL: Duration = Duration::from_secs(1);

/// What identifies one version of the file.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Stamp {
    modified: Option<SystemTime>,
    len: u64,
    inode: u64,
}

fn stamp(path: &Path) -> std::io::Result<Stamp> {
    let m = std::fs::metadata(path)?;
    Ok(Stamp {
        modified: m.modified().ok(),
        len: m.len(),
        inode: m.ino(),
    })
}

/// The file's bytes, or `None` when it holds more than `max_bytes` (checked while reading, so
/// a file that grows after its size was taken is refused too).
async fn read_capped(path: &Path, max_bytes: u64) -> std::io::Result<Option<Vec<u8>>> {
    use tokio::io::AsyncReadExt;
    let file = tokio::fs::File::open(path).await?;
    let mut bytes = Vec::new();
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .await?;
    Ok((bytes.len() as u64 <= max_bytes).then_some(bytes))
}

/// Why a version of the file is not served.
#[derive(Debug, thiserror::Error)]
enum FileError {
    #[error("state file larger than {0} bytes")]
    TooLarge(u64),
    #[error("cannot read state file: {0}")]
    Io(#[from] std::io::Error),
    #[error(transparent)]
    State(#[from] StateError),
    #[error(transparent)]
    Publish(#[from] PublishError),
}

/// A reader that fails once more than its cap has been read.
struct Capped<R> {
    inner: R,
    left: u64,
    over: bool,
}

impl<R: std::io::Read> std::io::Read for Capped<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        match self.left.checked_sub(n as u64) {
            Some(left) => self.left = left,
            None => {
                self.over = true;
                return Err(std::io::Error::other("over the cap"));
            }
        }
        Ok(n)
    }
}

/// Parses the state file as it is read (blocking; for the build thread).
fn parse_file(path: &Path, max_bytes: u64) -> Result<State, FileError> {
    let mut capped = Capped {
        inner: std::fs::File::open(path)?,
        left: max_bytes,
        over: false,
    };
    let parsed = State::from_reader(std::io::BufReader::with_capacity(64 * 1024, &mut capped));
    match parsed {
        Err(_) if capped.over => Err(FileError::TooLarge(max_bytes)),
        other => Ok(other?),
    }
}

/// Follows one state file: publishes each new version, keeps the last good one otherwise.
pub struct Watcher {
    path: PathBuf,
    max_bytes: u64,
    last: Option<Stamp>,
    missing_logged: bool,
    /// Whether the version at `last` is the one being served (it was accepted).
    served: bool,
}

impl Watcher {
    /// A watcher of `path`, refusing versions over `max_bytes`, that has published nothing
    /// yet.
    pub fn new(path: PathBuf, max_bytes: u64) -> Watcher {
        Watcher {
            path,
            max_bytes,
            last: None,
            missing_logged: false,
            served: false,
        }
    }

    /// The file followed.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Publishes the file when it changed since the last check; a missing or invalid file is
    /// logged once per version and the last good snapshot stays. The daemon calls this once
    /// before it answers, so that a restart serves the file from its first query.
    pub async fn check(&mut self, publisher: &Publisher) {
        let path = &self.path;
        match stamp(path) {
            Ok(st) if self.last.as_ref() != Some(&st) => {
                self.missing_logged = false;
                self.served = false;
                match self.load(publisher).await {
                    Ok(()) => self.served = true,
                    Err(e @ FileError::TooLarge(_)) => {
                        let error = e.to_string();
                        warn!(path = %path.display(), %error, "state file refused (maxStateBytes); keeping the last snapshot");
                        publisher.fetch_failed(&error);
                    }
                    Err(FileError::Io(e)) => {
                        warn!(path = %path.display(), error = %e, "cannot read state file")
                    }
                    Err(e) => {
                        warn!(path = %path.display(), error = %e, "state file rejected; keeping the last snapshot")
                    }
                }
                self.last = Some(st);
            }
            // The file is unchanged: what we serve is still what it says.
            Ok(_) if self.served => publisher.confirm(),
            Ok(_) => {}
            Err(e) => {
                if !self.missing_logged {
                    warn!(path = %path.display(), error = %e, "state file unavailable; keeping the last snapshot");
                    self.missing_logged = true;
                }
                self.last = None;
            }
        }
    }

    /// Reads, parses and publishes the file: read whole when nothing is served yet, parsed as
    /// it is read otherwise (see the module's notes).
    async fn load(&self, publisher: &Publisher) -> Result<(), FileError> {
        if publisher.snapshot().is_none() {
            let bytes = read_capped(&self.path, self.max_bytes)
                .await?
                .ok_or(FileError::TooLarge(self.max_bytes))?;
            publisher.publish(bytes).await?;
            return Ok(());
        }
        let (path, max_bytes) = (self.path.clone(), self.max_bytes);
        let started = std::time::Instant::now();
        let parsed = publisher
            .parse(move || parse_file(&path, max_bytes))
            .await?;
        let parse_ms = started.elapsed().as_millis() as u64;
        tracing::debug!(parse_ms, "state file parsed as it was read");
        let state = parsed.inspect_err(|e| {
            if let FileError::State(e) = e {
                publisher.fetch_failed(&e.to_string());
            }
        })?;
        publisher.publish_state(state).await?;
        Ok(())
    }

    /// Checks the file every [`POLL`], forever.
    pub async fn run(mut self, publisher: Arc<Publisher>) {
        loop {
            self.check(&publisher).await;
            tokio::time::sleep(POLL).await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Config;
    use crate::metrics::Metrics;
    use crate::records::RecordSettings;

    const DOC: &[u8] = br#"{"leader":"master@10.0.0.1:5050","frameworks":[],"slaves":[]}"#;

    fn publisher() -> Publisher {
        Publisher::new(
            RecordSettings::from_config(&Config::default(), vec![]),
            Arc::new(arc_swap::ArcSwapOption::empty()),
            Arc::new(Metrics::default()),
            None,
        )
    }

    /// Like every source, the file source refuses a document over `maxStateBytes`, and
    /// serves the file once it fits.
    #[tokio::test]
    async fn a_file_over_max_state_bytes_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, DOC).unwrap();
        let p = publisher();
        let mut small = Watcher::new(path.clone(), DOC.len() as u64 - 1);
        small.check(&p).await;
        assert!(p.snapshot().is_none());
        assert!(p.last_error().unwrap().contains("larger than"));

        let mut fits = Watcher::new(path, DOC.len() as u64);
        fits.check(&p).await;
        assert!(p.snapshot().is_some());
        assert!(p.last_error().is_none());
    }

    /// Once a state is served, new versions are parsed as they are read: one over the cap or
    /// not a state is refused and counted, and the last good snapshot stays; a good one is
    /// served.
    #[tokio::test]
    async fn versions_read_while_serving_are_capped_checked_and_served() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        let version = |name: &str| {
            serde_json::to_vec(&crate::mesos::synthetic::uniform_state_value(
                40, 2, 2, name,
            ))
            .unwrap()
        };
        let first = version("first");
        let max = first.len() as u64 + 10;
        std::fs::write(&path, &first).unwrap();
        let p = publisher();
        let mut w = Watcher::new(path.clone(), max);
        w.check(&p).await;
        let served = p.snapshot().unwrap();
        assert!(served.lookup("first.framework-0.mesos.").is_some());

        let replace = |bytes: &[u8]| {
            let tmp = dir.path().join("next");
            std::fs::write(&tmp, bytes).unwrap();
            std::fs::rename(&tmp, &path).unwrap();
        };
        let mut big = version("second");
        big.resize(max as usize + 1, b' ');
        replace(&big);
        w.check(&p).await;
        assert!(p.last_error().unwrap().contains("larger than"));
        replace(br#"{"leader":"master@10.0.0.1:5050","frameworks":[{"#);
        w.check(&p).await;
        assert!(p.last_error().unwrap().contains("not valid JSON"));
        assert_eq!(p.snapshot().unwrap().soa.serial, served.soa.serial);

        replace(&version("second"));
        w.check(&p).await;
        assert!(p.last_error().is_none());
        assert!(p
            .snapshot()
            .unwrap()
            .lookup("second.framework-0.mesos.")
            .is_some());
    }
}
