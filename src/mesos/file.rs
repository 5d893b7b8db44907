//! The `file` source: a state document on disk, re-read whenever it changes.
//!
//! Useful for air-gapped hosts, for tests, and for feeding a snapshot produced elsewhere. The
//! file's modification time, size and inode are polled; polling needs no inotify support, works
//! on network filesystems and notices a file replaced by rename, which is how careful writers
//! update it. Like every source, a file larger than `maxStateBytes` is refused.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tracing::warn;

use crate::publish::Publisher;

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
                match read_capped(path, self.max_bytes).await {
                    Ok(None) => {
                        let error = format!("state file larger than {} bytes", self.max_bytes);
                        warn!(path = %path.display(), %error, "state file refused (maxStateBytes); keeping the last snapshot");
                        publisher.fetch_failed(&error);
                    }
                    Ok(Some(bytes)) => match publisher.publish(bytes).await {
                        Ok(_) => self.served = true,
                        Err(e) => {
                            warn!(path = %path.display(), error = %e, "state file rejected; keeping the last snapshot")
                        }
                    },
                    Err(e) => warn!(path = %path.display(), error = %e, "cannot read state file"),
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
}
