//! The `file` source: a state document on disk, re-read whenever it changes.
//!
//! Useful for air-gapped hosts, for tests, and for feeding a snapshot produced elsewhere. The
//! file's modification time, size and inode are polled; polling needs no inotify support, works
//! on network filesystems and notices a file replaced by rename, which is how careful writers
//! update it.

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

/// Follows one state file: publishes each new version, keeps the last good one otherwise.
pub struct Watcher {
    path: PathBuf,
    last: Option<Stamp>,
    missing_logged: bool,
    /// Whether the version at `last` is the one being served (it was accepted).
    served: bool,
}

impl Watcher {
    /// A watcher of `path` that has published nothing yet.
    pub fn new(path: PathBuf) -> Watcher {
        Watcher {
            path,
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
                match tokio::fs::read(path).await {
                    Ok(bytes) => match publisher.publish(bytes).await {
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
