//! Turns a state document into the served snapshot, keeping the last good one on any failure.
//!
//! Every source (file, demo, masters) hands its documents here: parse, resolve hostnames,
//! build, then swap the snapshot in atomically. A document that fails any step is counted and
//! logged, and the snapshot in service stays. Good documents are also written to disk
//! (atomically), so a rebooted host serves the cluster's names before the master is reachable.
//!
//! Parsing, building and freeing the replaced state all happen on one long-lived thread
//! ([`BuildThread`]), never on the query threads: the large, short-lived allocations of a
//! rebuild then come from one allocator arena, which is trimmed back to the system after each
//! publish, so memory returns after an update instead of staying fragmented across the
//! threads that happened to run it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use arc_swap::{ArcSwap, ArcSwapOption};
use tracing::{info, warn};

use crate::config::Config;
use crate::mesos::hosts::HostResolver;
use crate::mesos::model::{State, StateError};
use crate::metrics::Metrics;
use crate::records::snapshot::{Enumeration, Stats};
use crate::records::{enumerate, update, BuildError, HostAddrs, RecordSettings, Snapshot};

/// Why a document did not become a snapshot.
#[derive(Debug, thiserror::Error)]
pub enum PublishError {
    /// The document is not a usable state.
    #[error(transparent)]
    State(#[from] StateError),
    /// The records could not be built.
    #[error(transparent)]
    Build(#[from] BuildError),
    /// The job on the build thread panicked (the thread itself carries on).
    #[error("snapshot build failed")]
    BuildFailed,
}

/// A job for the build thread.
type Job = Box<dyn FnOnce() + Send>;

/// The one thread that parses documents, builds snapshots and frees replaced ones.
///
/// Keeping this work on one long-lived thread keeps its allocations in one allocator arena
/// (glibc gives each thread that allocates concurrently its own), and after every job the
/// arena's free memory is handed back to the system ([`release_free_memory`]). The thread
/// ends when its `BuildThread` is dropped.
pub struct BuildThread {
    jobs: std::sync::mpsc::Sender<Job>,
}

impl BuildThread {
    /// Starts the thread.
    pub fn spawn() -> BuildThread {
        let (jobs, queue) = std::sync::mpsc::channel::<Job>();
        let spawned = std::thread::Builder::new()
            .name("snapshot-build".into())
            .spawn(move || {
                while let Ok(job) = queue.recv() {
                    // A panicking job drops its result sender, which its caller sees.
                    let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(job));
                    release_free_memory();
                }
            });
        if let Err(e) = spawned {
            warn!(error = %e, "cannot start the snapshot build thread");
        }
        BuildThread { jobs }
    }

    /// Runs `f` on the build thread and returns its result.
    pub async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PublishError> {
        let (tx, rx) = tokio::sync::oneshot::channel();
        self.jobs
            .send(Box::new(move || {
                let _ = tx.send(f());
            }))
            .map_err(|_| PublishError::BuildFailed)?;
        rx.await.map_err(|_| PublishError::BuildFailed)
    }
}

/// Returns the allocator's free memory to the system (glibc keeps freed memory in its arenas
/// otherwise, and a rebuild frees hundreds of MiB at 100,000 tasks).
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: malloc_trim only walks the allocator's own free lists; it is thread-safe.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// The state behind the served snapshot, kept for the APIs that need more than records.
///
/// The state is kept parsed: with its lists exactly sized and its short strings inline
/// ([`State`]), it takes about as much memory as its compact JSON document would, and keeping
/// it costs nothing per update where writing the document cost a pass over the whole cluster
/// (a few hundred milliseconds at 100,000 tasks, on the thread that builds the next update).
/// The document is made only when something needs it (a restart's seed, a save).
pub struct Current {
    state: State,
    /// Addresses of its hostnames.
    pub hosts: HostAddrs,
    /// When the source produced it (for a persisted copy: when it was saved).
    pub as_of: SystemTime,
    /// The serial of the snapshot built from it: the snapshot is served first after an
    /// update, so the served snapshot can be newer than this state for a moment.
    pub serial: u32,
}

impl Current {
    /// The state as compact JSON (`serde_json::to_vec` of the parsed [`State`]): what is
    /// persisted and what a reloaded daemon is seeded with.
    pub fn document(&self) -> Vec<u8> {
        serde_json::to_vec(&self.state).unwrap_or_default()
    }

    /// The state.
    pub fn state(&self) -> &State {
        &self.state
    }
}

/// Saves the states a source publishes itself (the event stream) to `persistFile`, off the
/// publish path: the newest waiting state wins and writes are at least [`PERSIST_INTERVAL`]
/// apart, so a busy stream does not write out the whole cluster for every burst of events.
struct StatePersister {
    path: PathBuf,
    pending: std::sync::Mutex<Option<Arc<Current>>>,
    writing: std::sync::atomic::AtomicBool,
}

/// The shortest time between two saves of a streamed state.
pub const PERSIST_INTERVAL: Duration = Duration::from_secs(1);

impl StatePersister {
    /// Queues `current` to be saved, replacing any state still waiting.
    fn offer(self: &Arc<Self>, current: Arc<Current>) {
        *self.slot() = Some(current);
        if !self.writing.swap(true, Ordering::AcqRel) {
            let me = self.clone();
            tokio::task::spawn_blocking(move || me.drain());
        }
    }

    /// The waiting state's slot (a panic elsewhere cannot leave it inconsistent).
    fn slot(&self) -> std::sync::MutexGuard<'_, Option<Arc<Current>>> {
        self.pending.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn drain(&self) {
        loop {
            let next = self.slot().take();
            if let Some(current) = next {
                if let Err(e) = write_atomically(&self.path, &current.document()) {
                    warn!(path = %self.path.display(), error = %e, "cannot persist the state");
                }
                drop(current);
                std::thread::sleep(PERSIST_INTERVAL);
                continue;
            }
            self.writing.store(false, Ordering::Release);
            // A state offered between the check and the flag going down is still saved.
            let waiting = self.slot().is_some();
            if !waiting || self.writing.swap(true, Ordering::AcqRel) {
                return;
            }
        }
    }
}

/// Publishes snapshots into the store the DNS server reads.
pub struct Publisher {
    settings: RecordSettings,
    store: Arc<ArcSwapOption<Snapshot>>,
    current: ArcSwapOption<Current>,
    metrics: Arc<Metrics>,
    hosts: HostResolver,
    serial: AtomicU32,
    persist_to: Option<PathBuf>,
    last_error: ArcSwap<Option<String>>,
    changes: tokio::sync::watch::Sender<u32>,
    updated_at: ArcSwapOption<SystemTime>,
    builder: BuildThread,
    persister: Option<Arc<StatePersister>>,
}

impl Publisher {
    /// The publisher the configuration asks for: records made by its naming keys (the name
    /// server record from the addresses `listener` stands for), good documents saved to
    /// `persistFile` (never the demo cluster's).
    pub fn from_config(
        config: &Config,
        store: Arc<ArcSwapOption<Snapshot>>,
        metrics: Arc<Metrics>,
    ) -> Publisher {
        let settings =
            RecordSettings::from_config(config, crate::netif::listener_addresses(config.listener));
        let persist = config.persist_file.clone().filter(|_| !config.demo);
        Publisher::new(settings, store, metrics, persist)
    }

    /// A publisher writing into `store`, and saving good documents to `persist_to`.
    pub fn new(
        settings: RecordSettings,
        store: Arc<ArcSwapOption<Snapshot>>,
        metrics: Arc<Metrics>,
        persist_to: Option<PathBuf>,
    ) -> Publisher {
        if let Some(path) = &persist_to {
            remove_stale_temporaries(path);
        }
        Publisher {
            settings,
            store,
            current: ArcSwapOption::empty(),
            metrics,
            hosts: HostResolver::new(Duration::from_secs(60), Duration::from_secs(2)),
            serial: AtomicU32::new(0),
            persist_to: persist_to.clone(),
            last_error: ArcSwap::from_pointee(None),
            changes: tokio::sync::watch::channel(0).0,
            updated_at: ArcSwapOption::empty(),
            builder: BuildThread::spawn(),
            persister: persist_to.map(|path| {
                Arc::new(StatePersister {
                    path,
                    pending: Default::default(),
                    writing: Default::default(),
                })
            }),
        }
    }

    /// Serves a snapshot built elsewhere (from an existing Mesos-DNS's zone): there is no Mesos
    /// state behind it, so enumeration and the relay document are unavailable.
    pub fn publish_snapshot(&self, snapshot: Snapshot) {
        let serial = snapshot.soa.serial;
        self.current.store(None);
        self.store.store(Some(Arc::new(snapshot)));
        self.updated_at.store(Some(Arc::new(SystemTime::now())));
        Metrics::inc(&self.metrics.state_loads);
        self.last_error.store(Arc::new(None));
        self.changes.send_replace(serial);
    }

    /// Notifies every published snapshot (its serial), for long-polling relay clients.
    pub fn subscribe(&self) -> tokio::sync::watch::Receiver<u32> {
        self.changes.subscribe()
    }

    /// The snapshot being served, if any.
    pub fn snapshot(&self) -> Option<Arc<Snapshot>> {
        self.store.load_full()
    }

    /// The state behind the served snapshot, if any.
    pub fn current(&self) -> Option<Arc<Current>> {
        self.current.load_full()
    }

    /// The record settings in force.
    pub fn settings(&self) -> &RecordSettings {
        &self.settings
    }

    /// Time since the source last delivered the served state or confirmed it still holds
    /// (`None` while nothing is served): what `staleAfterSeconds` and the age gauge measure.
    pub fn age(&self) -> Option<Duration> {
        self.store.load().as_ref()?;
        self.updated_at
            .load()
            .as_deref()
            .map(|at| SystemTime::now().duration_since(*at).unwrap_or_default())
    }

    /// Records that the source confirmed the served state is still current without sending
    /// a new one (an event stream's heartbeat), so a quiet cluster does not look stale.
    pub fn confirm(&self) {
        if self.store.load().is_some() {
            self.updated_at.store(Some(Arc::new(SystemTime::now())));
        }
    }

    /// The last rejection, if the last document was rejected.
    pub fn last_error(&self) -> Option<String> {
        (**self.last_error.load()).clone()
    }

    /// The enumeration API's data for the served state.
    pub fn enumeration(&self) -> Enumeration {
        match self.current() {
            Some(c) => enumerate(c.state(), &self.settings, &c.hosts),
            None => Enumeration::default(),
        }
    }

    /// The next SOA serial: the current Unix time, or one more than the last if that is larger,
    /// so serials only grow.
    pub fn next_serial(&self) -> u32 {
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

    /// Parses `document` and, if it is a valid state, makes it the served snapshot (and saves
    /// it when persistence is on).
    pub async fn publish(&self, document: impl Into<Vec<u8>>) -> Result<Stats, PublishError> {
        self.publish_as_of(document.into(), SystemTime::now(), true)
            .await
    }

    /// Runs a source's parser on the build thread, where the state's allocations belong (see
    /// [`BuildThread`]); the document it owns is freed there too. Sources hand the result to
    /// [`Publisher::publish_state`], so a document is parsed once however the source inspects
    /// it first (a master's leader, a relay's version).
    pub async fn parse<T: Send + 'static>(
        &self,
        parse: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, PublishError> {
        self.builder.run(parse).await
    }

    /// Records that a source could not get a document at all (master down, bad answer); the
    /// snapshot in service stays, and the failure shows in metrics and `last_error`.
    pub fn fetch_failed(&self, error: &str) {
        Metrics::inc(&self.metrics.state_load_errors);
        self.last_error.store(Arc::new(Some(error.to_string())));
    }

    /// Loads the persisted document, if there is one and nothing is served yet.
    pub async fn load_persisted(&self) -> Option<Stats> {
        let path = self.persist_to.as_ref()?;
        let meta = std::fs::metadata(path).ok()?;
        let bytes = std::fs::read(path).ok()?;
        let as_of = meta.modified().unwrap_or_else(|_| SystemTime::now());
        match self.publish_as_of(bytes, as_of, false).await {
            Ok(stats) => {
                let age = SystemTime::now().duration_since(as_of).unwrap_or_default();
                info!(path = %path.display(), age_s = age.as_secs(), "serving the persisted state until the master answers");
                Some(stats)
            }
            Err(e) => {
                warn!(path = %path.display(), error = %e, "persisted state unusable");
                None
            }
        }
    }

    /// Makes an already parsed state the served snapshot (for sources that maintain a state
    /// themselves, like the event stream); saved in compact form when persistence is on, at
    /// most every [`PERSIST_INTERVAL`] (see [`StatePersister`]).
    pub async fn publish_state(&self, state: State) -> Result<Stats, PublishError> {
        let result = self.publish_inner(state, SystemTime::now()).await;
        if let (Ok((_, current)), Some(persister)) = (&result, &self.persister) {
            persister.offer(current.clone());
        }
        self.finish(result.map(|(stats, _)| stats), None)
    }

    /// Parses `document` on the build thread and publishes it; the document itself is freed
    /// there as soon as it is parsed, unless it is to be persisted.
    async fn publish_as_of(
        &self,
        document: Vec<u8>,
        as_of: SystemTime,
        persist: bool,
    ) -> Result<Stats, PublishError> {
        let keep = persist && self.persist_to.is_some();
        let parsed = self
            .builder
            .run(move || {
                let t = Instant::now();
                let state = State::from_json(&document);
                let parse_ms = t.elapsed().as_millis() as u64;
                tracing::debug!(parse_ms, bytes = document.len(), "state document parsed");
                (state, keep.then_some(document))
            })
            .await;
        let (result, kept) = match parsed {
            Ok((Ok(state), kept)) => (
                self.publish_inner(state, as_of)
                    .await
                    .map(|(stats, _)| stats),
                kept,
            ),
            Ok((Err(e), _)) => (Err(e.into()), None),
            Err(e) => (Err(e), None),
        };
        self.finish(result, kept.as_deref())
    }

    /// Counts the outcome and, on success, saves `persist` when persistence is on.
    fn finish(
        &self,
        result: Result<Stats, PublishError>,
        persist: Option<&[u8]>,
    ) -> Result<Stats, PublishError> {
        match &result {
            Ok(_) => {
                Metrics::inc(&self.metrics.state_loads);
                self.last_error.store(Arc::new(None));
                if let (Some(path), Some(bytes)) = (&self.persist_to, persist) {
                    if let Err(e) = write_atomically(path, bytes) {
                        warn!(path = %path.display(), error = %e, "cannot persist the state");
                    }
                }
            }
            Err(e) => {
                Metrics::inc(&self.metrics.state_load_errors);
                self.last_error.store(Arc::new(Some(e.to_string())));
            }
        }
        result
    }

    /// Builds and serves the snapshot of `state` (only the shards whose inputs changed are
    /// rebuilt), then keeps the state as the served [`Current`]; the replaced state and
    /// snapshot are freed on the build thread.
    async fn publish_inner(
        &self,
        state: State,
        as_of: SystemTime,
    ) -> Result<(Stats, Arc<Current>), PublishError> {
        let started = Instant::now();
        let hosts = self.hosts.resolve(&state).await;
        let settings = self.settings.clone();
        let serial = self.next_serial();
        let previous = self.snapshot();
        let (snapshot, state, hosts, rebuilt) = self
            .builder
            .run(move || -> Result<_, PublishError> {
                let generated = update(previous.as_deref(), &state, &settings, &hosts, serial)?;
                drop(previous);
                let rebuilt = generated.rebuilt();
                Ok((generated.finish(), state, hosts, rebuilt))
            })
            .await??;
        let built_ms = started.elapsed().as_millis() as u64;
        let stats = snapshot.stats;
        let changed = self.snapshot().is_none_or(|old| old.stats != stats);
        let old_snapshot = self.store.swap(Some(Arc::new(snapshot)));
        let current = Arc::new(Current {
            state,
            hosts,
            as_of,
            serial,
        });
        let replaced = self.current.swap(Some(current.clone()));
        self.updated_at.store(Some(Arc::new(as_of)));
        // After the state: a relay waiting for a change must find the new state's document.
        self.changes.send_replace(serial);
        self.drop_on_builder((replaced, old_snapshot)).await;
        let ms = started.elapsed().as_millis() as u64;
        if changed {
            info!(
                built_ms,
                rebuilt,
                names = stats.names,
                a = stats.a,
                aaaa = stats.aaaa,
                srv = stats.srv,
                tasks = stats.tasks,
                serial,
                ms,
                "snapshot updated"
            );
        } else {
            tracing::debug!(
                serial,
                built_ms,
                rebuilt,
                ms,
                "snapshot refreshed, same counts"
            );
        }
        Ok((stats, current))
    }

    /// Frees replaced states and snapshots where they were built (unless a reader still holds
    /// one), then trims.
    async fn drop_on_builder<T: Send + 'static>(&self, replaced: T) {
        let _ = self.builder.run(move || drop(replaced)).await;
    }
}

/// The temporary file `write_atomically` writes before renaming it over `path`.
fn temporary_for(path: &Path, pid: u32) -> PathBuf {
    path.with_extension(format!("tmp.{pid}"))
}

/// Removes temporaries of `path` left by a process that died mid-write (`state.tmp.<pid>` for
/// any pid but ours); each could be as large as a whole state document.
pub fn remove_stale_temporaries(path: &Path) {
    let (Some(dir), Some(stem)) = (path.parent(), path.file_stem()) else {
        return;
    };
    let dir = if dir.as_os_str().is_empty() {
        Path::new(".")
    } else {
        dir
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let prefix = format!("{}.tmp.", stem.to_string_lossy());
    let own = std::process::id().to_string();
    for entry in entries.flatten() {
        let name = entry.file_name();
        let name = name.to_string_lossy();
        let Some(pid) = name.strip_prefix(&prefix) else {
            continue;
        };
        if pid.is_empty() || !pid.bytes().all(|b| b.is_ascii_digit()) || pid == own {
            continue;
        }
        match std::fs::remove_file(entry.path()) {
            Ok(()) => info!(file = %entry.path().display(), "removed a stale temporary state file"),
            Err(e) => {
                warn!(file = %entry.path().display(), error = %e, "cannot remove a stale temporary state file")
            }
        }
    }
}

/// Writes `bytes` to `path` so readers see the old file or the new one, never a mix: a
/// temporary file in the same directory, synced, then renamed over.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = temporary_for(path, std::process::id());
    let result = (|| {
        let mut f = std::fs::File::create(&tmp)?;
        f.write_all(bytes)?;
        f.sync_all()?;
        std::fs::rename(&tmp, path)
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stale_temporaries_are_removed_at_start() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state.json");
        std::fs::write(&path, b"{}").unwrap();
        let stale = temporary_for(&path, 1);
        std::fs::write(&stale, b"half a document").unwrap();
        let ours = temporary_for(&path, std::process::id());
        std::fs::write(&ours, b"being written").unwrap();
        let other = dir.path().join("state.tmp.notapid");
        std::fs::write(&other, b"").unwrap();
        let _p = publisher(Some(path.clone()));
        assert!(!stale.exists(), "a dead writer's temporary is removed");
        assert!(ours.exists() && other.exists() && path.exists());
    }

    fn publisher(persist: Option<PathBuf>) -> Publisher {
        let settings = RecordSettings::from_config(&Config::default(), vec![]);
        Publisher::new(
            settings,
            Arc::new(ArcSwapOption::empty()),
            Arc::new(Metrics::default()),
            persist,
        )
    }

    const DOC: &[u8] = br#"{"leader":"master@10.0.0.1:5050","frameworks":[],"slaves":[]}"#;

    #[tokio::test]
    async fn a_panicking_build_job_fails_alone() {
        let t = BuildThread::spawn();
        let failed = t.run(|| -> u32 { panic!("a build defect") }).await;
        assert!(matches!(failed, Err(PublishError::BuildFailed)));
        assert_eq!(t.run(|| 7).await.unwrap(), 7, "the thread carries on");
    }

    #[tokio::test]
    async fn the_served_state_is_kept_as_its_compact_document() {
        let p = publisher(None);
        p.publish(DOC).await.unwrap();
        let current = p.current().unwrap();
        let state = current.state();
        assert_eq!(state.leader, "master@10.0.0.1:5050");
        assert_eq!(current.document(), serde_json::to_vec(state).unwrap());
    }

    #[tokio::test]
    async fn an_update_serves_its_shard_and_then_its_state() {
        let p = publisher(None);
        let mut doc = crate::mesos::synthetic::uniform_state_value(40, 2, 2, "first");
        p.publish(serde_json::to_vec(&doc).unwrap()).await.unwrap();
        let before = p.snapshot().unwrap();
        assert_eq!(p.current().unwrap().serial, before.soa.serial);

        doc["frameworks"][1]["tasks"][0]["name"] = serde_json::json!("second");
        doc["frameworks"][1]["tasks"][0]["discovery"]["name"] = serde_json::json!("second");
        let state = State::from_json(&serde_json::to_vec(&doc).unwrap()).unwrap();
        p.publish_state(state).await.unwrap();
        let after = p.snapshot().unwrap();
        assert!(after.soa.serial > before.soa.serial);
        assert!(after.lookup("second.framework-1.mesos.").is_some());
        // The other framework's shard is the same one, not a copy.
        assert!(Arc::ptr_eq(
            &before.groups["framework-0"],
            &after.groups["framework-0"]
        ));
        let current = p.current().unwrap();
        assert_eq!(current.serial, after.soa.serial);
        let names: Vec<String> = current.state().frameworks[1]
            .tasks
            .iter()
            .map(|t| t.name.to_string())
            .collect();
        assert!(names.contains(&"second".to_string()));
    }

    #[tokio::test]
    async fn bad_documents_keep_the_last_snapshot() {
        let p = publisher(None);
        p.publish(DOC).await.unwrap();
        let serial = p.snapshot().unwrap().soa.serial;
        assert!(p.publish(b"{garbage").await.is_err());
        assert!(p.publish(b"{\"frameworks\":[]}").await.is_err());
        assert_eq!(p.snapshot().unwrap().soa.serial, serial);
        assert!(p.last_error().unwrap().contains("no leader"));
        p.publish(DOC).await.unwrap();
        assert!(
            p.snapshot().unwrap().soa.serial > serial,
            "serials only grow"
        );
        assert!(p.last_error().is_none());
    }

    #[tokio::test]
    async fn persisted_state_is_served_after_a_restart() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("state/last.json");
        publisher(Some(path.clone())).publish(DOC).await.unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), DOC);

        let restarted = publisher(Some(path));
        assert!(restarted.snapshot().is_none());
        restarted.load_persisted().await.unwrap();
        assert!(restarted
            .snapshot()
            .unwrap()
            .lookup("leader.mesos.")
            .is_some());
        assert!(restarted.age().unwrap() < Duration::from_secs(60));
    }

    #[tokio::test]
    async fn streamed_states_are_saved_newest_first_and_not_each() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("last.json");
        let p = publisher(Some(path.clone()));
        let state = |leader: &str| State {
            leader: leader.into(),
            ..State::default()
        };
        p.publish_state(state("master@10.0.0.1:5050"))
            .await
            .unwrap();
        // Offered while the first is written: each replaces the one waiting.
        p.publish_state(state("master@10.0.0.2:5050"))
            .await
            .unwrap();
        p.publish_state(state("master@10.0.0.3:5050"))
            .await
            .unwrap();
        let saved = |path: &Path| -> Option<String> {
            let doc = std::fs::read(path).ok()?;
            Some(State::from_json(&doc).ok()?.leader.to_string())
        };
        let deadline = std::time::Instant::now() + PERSIST_INTERVAL * 5;
        while saved(&path).as_deref() != Some("master@10.0.0.3:5050") {
            assert!(
                std::time::Instant::now() < deadline,
                "the newest state is saved"
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// A persisted state is as old as its file (so `staleAfterSeconds` flags it at start);
    /// a source's confirmation makes it fresh; nothing served means no age to confirm.
    #[tokio::test]
    async fn age_counts_from_the_persisted_file_until_a_source_confirms() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("last.json");
        publisher(Some(path.clone())).publish(DOC).await.unwrap();
        let hour_ago = SystemTime::now() - Duration::from_secs(3600);
        std::fs::File::options()
            .write(true)
            .open(&path)
            .unwrap()
            .set_modified(hour_ago)
            .unwrap();

        let restarted = publisher(Some(path));
        restarted.confirm();
        assert_eq!(restarted.age(), None, "nothing served, nothing confirmed");
        restarted.load_persisted().await.unwrap();
        assert!(restarted.age().unwrap() >= Duration::from_secs(3600));
        restarted.confirm();
        assert!(restarted.age().unwrap() < Duration::from_secs(60));
    }
}
