//! Turns a state document into the served snapshot, keeping the last good one on any failure.
//!
//! Every source (file, demo, and the master sources to come) hands its documents here: parse,
//! resolve hostnames, build on a blocking thread, then swap the snapshot in atomically. A
//! document that fails any step is counted and logged, and the snapshot in service stays.

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwapOption;
use tracing::info;

use crate::mesos::hosts::HostResolver;
use crate::mesos::model::{State, StateError};
use crate::metrics::Metrics;
use crate::records::snapshot::Stats;
use crate::records::{build, BuildError, RecordSettings, Snapshot};

/// Why a document did not become a snapshot.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The document is not a usable state.
    #[error(transparent)]
    State(#[from] StateError),
    /// The records could not be built.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The build thread died.
    #[error("snapshot build failed: {0}")]
    Join(String),
}

/// Publishes snapshots into the store the DNS server reads.
pub struct Publisher {
    settings: RecordSettings,
    store: Arc<ArcSwapOption<Snapshot>>,
    metrics: Arc<Metrics>,
    hosts: HostResolver,
    serial: AtomicU32,
}

impl Publisher {
    /// A publisher writing into `store`.
    pub fn new(
        settings: RecordSettings,
        store: Arc<ArcSwapOption<Snapshot>>,
        metrics: Arc<Metrics>,
    ) -> Publisher {
        Publisher {
            settings,
            store,
            metrics,
            hosts: HostResolver::new(Duration::from_secs(60), Duration::from_secs(2)),
            serial: AtomicU32::new(0),
        }
    }

    /// The next SOA serial: the current Unix time, or one more than the last if that is larger,
    /// so serials only grow.
    fn next_serial(&self) -> u32 {
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs() as u32)
            .unwrap_or(0);
        let mut prev = self.serial.load(Ordering::Relaxed);
        loop {
            let next = now.max(prev.wrapping_add(1));
            match self
                .serial
                .compare_exchange(prev, next, Ordering::Relaxed, Ordering::Relaxed)
            {
                Ok(_) => return next,
                Err(p) => prev = p,
            }
        }
    }

    /// Parses `document` and, if it is a valid state, makes it the served snapshot.
    pub async fn publish(&self, document: &[u8]) -> Result<Stats, PublishError> {
        let result = self.publish_inner(document).await;
        match &result {
            Ok(_) => Metrics::inc(&self.metrics.state_loads),
            Err(_) => Metrics::inc(&self.metrics.state_load_errors),
        }
        result
    }

    async fn publish_inner(&self, document: &[u8]) -> Result<Stats, PublishError> {
        let started = Instant::now();
        let state = State::from_json(document)?;
        let hosts = self.hosts.resolve(&state).await;
        let settings = self.settings.clone();
        let serial = self.next_serial();
        let snapshot =
            tokio::task::spawn_blocking(move || build(&state, &settings, &hosts, serial))
                .await
                .map_err(|e| PublishError::Join(e.to_string()))??;
        let stats = snapshot.stats;
        self.store.store(Some(Arc::new(snapshot)));
        info!(
            names = stats.names,
            a = stats.a,
            aaaa = stats.aaaa,
            srv = stats.srv,
            tasks = stats.tasks,
            serial,
            ms = started.elapsed().as_millis() as u64,
            "snapshot updated"
        );
        Ok(stats)
    }
}
