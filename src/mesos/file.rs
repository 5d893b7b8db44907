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

/// Serves `path` through `publisher`, checking for changes every `poll`. Runs forever; a
/// missing or invalid file is logged once per version and the last good snapshot stays.
pub async fn watch(path: PathBuf, publisher: Arc<Publisher>, poll: Duration) {
    let mut last: Option<Stamp> = None;
    let mut missing_logged = false;
    loop {
        match stamp(&path) {
            Ok(st) if last.as_ref() != Some(&st) => {
                missing_logged = false;
                match tokio::fs::read(&path).await {
                    Ok(bytes) => {
                        if let Err(e) = publisher.publish(&bytes).await {
                            warn!(path = %path.display(), error = %e, "state file rejected; keeping the last snapshot");
                        }
                    }
                    Err(e) => warn!(path = %path.display(), error = %e, "cannot read state file"),
                }
                last = Some(st);
            }
            Ok(_) => {}
            Err(e) => {
                if !missing_logged {
                    warn!(path = %path.display(), error = %e, "state file unavailable; keeping the last snapshot");
                    missing_logged = true;
                }
                last = None;
            }
        }
        tokio::time::sleep(poll).await;
    }
}
