//! The streaming source: the master's v1 operator API event stream.
//!
//! `POST /api/v1 {"type":"SUBSCRIBE"}` answers with a RecordIO stream (`<length>\n<json>`...):
//! first SUBSCRIBED carrying the whole state, then TASK_ADDED, TASK_UPDATED, AGENT_ADDED,
//! AGENT_REMOVED and FRAMEWORK_* events, and HEARTBEATs. Events are applied to a local copy of
//! the state, and a snapshot is published at once after a quiet spell, then, while events keep
//! arriving, as often as publishing takes a third of the time, within
//! [`MIN_PUBLISH_SPACING`] and [`MAX_PUBLISH_SPACING`] apart: a task is answerable well within
//! a second of the master's event while a burst of thousands of updates costs a handful of
//! rebuilds. A silent stream (no heartbeat for three intervals) is dropped and resubscribed.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use serde::Deserialize;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::publish::Publisher;

use super::model::{
    ContainerInfo, ContainerStatus, DiscoveryInfo, Framework, Label, Pid, Slave, State, Status,
    Task,
};

/// The shortest time between the starts of two publishes while events arrive: an event after
/// a quiet spell is published at once, the events of a burst together at most this often.
pub const MIN_PUBLISH_SPACING: Duration = Duration::from_millis(25);

/// The longest wait, during a burst, for the next publish (after a costly full rebuild, say).
pub const MAX_PUBLISH_SPACING: Duration = Duration::from_millis(100);

/// The time from the start of a publish that took `took` to the earliest start of the next:
/// publishing takes at most a third of the stream's time during a burst, so a cheap update
/// (a small cluster, or a change that rebuilds few shards) is served sooner than a costly
/// one, and none waits longer than [`MAX_PUBLISH_SPACING`].
pub fn publish_spacing(took: Duration) -> Duration {
    (took * 3).clamp(MIN_PUBLISH_SPACING, MAX_PUBLISH_SPACING)
}

/// Task states after which a task never runs again (it is dropped from the local state).
const TERMINAL: &[&str] = &[
    "TASK_FINISHED",
    "TASK_FAILED",
    "TASK_KILLED",
    "TASK_LOST",
    "TASK_ERROR",
    "TASK_DROPPED",
    "TASK_GONE",
    "TASK_GONE_BY_OPERATOR",
];

/// Splits a RecordIO byte stream into records.
#[derive(Debug, Default)]
pub struct RecordIo {
    buf: Vec<u8>,
    max: usize,
}

/// A RecordIO framing error: the stream can't be trusted past it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordIoError {
    /// The length prefix isn't a number.
    #[error("bad record length prefix")]
    BadLength,
    /// A record larger than the limit.
    #[error("record of {0} bytes exceeds the limit")]
    TooLarge(usize),
}

impl RecordIo {
    /// A decoder refusing records over `max` bytes.
    pub fn new(max: usize) -> RecordIo {
        RecordIo {
            buf: Vec::new(),
            max,
        }
    }

    /// Feeds bytes; returns the complete records they finish.
    pub fn push(&mut self, bytes: &[u8]) -> Result<Vec<Vec<u8>>, RecordIoError> {
        self.buf.extend_from_slice(bytes);
        let mut out = Vec::new();
        loop {
            let Some(nl) = self.buf.iter().position(|&b| b == b'\n') else {
                if self.buf.len() > 20 {
                    return Err(RecordIoError::BadLength);
                }
                break;
            };
            let len: usize = std::str::from_utf8(&self.buf[..nl])
                .ok()
                .and_then(|s| s.trim().parse().ok())
                .ok_or(RecordIoError::BadLength)?;
            if len > self.max {
                return Err(RecordIoError::TooLarge(len));
            }
            if self.buf.len() < nl + 1 + len {
                break;
            }
            out.push(self.buf[nl + 1..nl + 1 + len].to_vec());
            self.buf.drain(..nl + 1 + len);
        }
        Ok(out)
    }
}

#[derive(Debug, Default, Deserialize)]
struct Id {
    #[serde(default)]
    value: String,
}

#[derive(Debug, Default, Deserialize)]
struct V1Labels {
    #[serde(default)]
    labels: Vec<Label>,
}

#[derive(Debug, Default, Deserialize)]
struct V1Status {
    #[serde(default)]
    task_id: Id,
    #[serde(default)]
    state: String,
    #[serde(default)]
    timestamp: f64,
    #[serde(default)]
    labels: V1Labels,
    #[serde(default)]
    container_status: ContainerStatus,
    #[serde(default)]
    healthy: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
struct V1Range {
    begin: u64,
    end: u64,
}

#[derive(Debug, Default, Deserialize)]
struct V1Ranges {
    #[serde(default)]
    range: Vec<V1Range>,
}

#[derive(Debug, Default, Deserialize)]
struct V1Resource {
    #[serde(default)]
    name: String,
    #[serde(default)]
    ranges: Option<V1Ranges>,
}

#[derive(Debug, Default, Deserialize)]
struct V1Task {
    #[serde(default)]
    name: String,
    #[serde(default)]
    task_id: Id,
    #[serde(default)]
    framework_id: Id,
    #[serde(default)]
    agent_id: Id,
    #[serde(default)]
    state: String,
    #[serde(default)]
    resources: Vec<V1Resource>,
    #[serde(default)]
    statuses: Vec<V1Status>,
    #[serde(default)]
    discovery: Option<DiscoveryInfo>,
    #[serde(default)]
    container: Option<Box<ContainerInfo>>,
}

#[derive(Debug, Default, Deserialize)]
struct V1FrameworkInfo {
    #[serde(default)]
    id: Id,
    #[serde(default)]
    name: String,
    #[serde(default)]
    hostname: String,
}

#[derive(Debug, Default, Deserialize)]
struct V1Framework {
    #[serde(default)]
    framework_info: V1FrameworkInfo,
}

#[derive(Debug, Default, Deserialize)]
struct V1AgentInfo {
    #[serde(default)]
    id: Id,
    #[serde(default)]
    hostname: String,
}

#[derive(Debug, Default, Deserialize)]
struct V1Agent {
    #[serde(default)]
    agent_info: V1AgentInfo,
    #[serde(default)]
    pid: String,
}

/// One event of the v1 operator API stream, as the master sends it (`{"type": ..., "<type>":
/// {...}}`); the types that change nothing we serve are [`Event::Other`].
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "SCREAMING_SNAKE_CASE")]
pub enum Event {
    /// The first event: the whole state and the heartbeat interval.
    Subscribed {
        /// Its payload.
        #[serde(default)]
        subscribed: Subscribed,
    },
    /// A task was launched.
    TaskAdded {
        /// Its payload.
        task_added: TaskAdded,
    },
    /// A task's status changed.
    TaskUpdated {
        /// Its payload.
        task_updated: TaskUpdated,
    },
    /// An agent registered.
    AgentAdded {
        /// Its payload.
        agent_added: AgentAdded,
    },
    /// An agent was removed.
    AgentRemoved {
        /// Its payload.
        agent_removed: AgentRemoved,
    },
    /// A framework registered.
    FrameworkAdded {
        /// Its payload.
        framework_added: FrameworkChanged,
    },
    /// A framework re-registered or changed.
    FrameworkUpdated {
        /// Its payload.
        framework_updated: FrameworkChanged,
    },
    /// A framework was removed.
    FrameworkRemoved {
        /// Its payload.
        framework_removed: FrameworkRemoved,
    },
    /// The master is alive and has nothing new.
    Heartbeat,
    /// Any other event type.
    #[serde(other)]
    Other,
}

/// `SUBSCRIBED`'s payload.
#[derive(Debug, Default, Deserialize)]
pub struct Subscribed {
    #[serde(default)]
    get_state: GetState,
    #[serde(default)]
    heartbeat_interval_seconds: Option<f64>,
}

#[derive(Debug, Default, Deserialize)]
struct GetState {
    #[serde(default)]
    get_frameworks: GetFrameworks,
    #[serde(default)]
    get_agents: GetAgents,
    #[serde(default)]
    get_tasks: GetTasks,
}

#[derive(Debug, Default, Deserialize)]
struct GetFrameworks {
    #[serde(default)]
    frameworks: Vec<V1Framework>,
}

#[derive(Debug, Default, Deserialize)]
struct GetAgents {
    #[serde(default)]
    agents: Vec<V1Agent>,
}

#[derive(Debug, Default, Deserialize)]
struct GetTasks {
    #[serde(default)]
    tasks: Vec<V1Task>,
}

/// `TASK_ADDED`'s payload.
#[derive(Debug, Deserialize)]
pub struct TaskAdded {
    task: V1Task,
}

/// `TASK_UPDATED`'s payload: the new status, and the task's state if it differs from the
/// status's.
#[derive(Debug, Deserialize)]
pub struct TaskUpdated {
    status: V1Status,
    #[serde(default)]
    state: Option<String>,
}

/// `AGENT_ADDED`'s payload.
#[derive(Debug, Deserialize)]
pub struct AgentAdded {
    agent: V1Agent,
}

/// `AGENT_REMOVED`'s payload.
#[derive(Debug, Deserialize)]
pub struct AgentRemoved {
    agent_id: Id,
}

/// `FRAMEWORK_ADDED` and `FRAMEWORK_UPDATED`'s payload.
#[derive(Debug, Deserialize)]
pub struct FrameworkChanged {
    framework: V1Framework,
}

/// `FRAMEWORK_REMOVED`'s payload.
#[derive(Debug, Deserialize)]
pub struct FrameworkRemoved {
    framework_info: V1FrameworkInfo,
}

fn status_from(s: V1Status) -> Status {
    Status {
        state: s.state.into(),
        timestamp: s.timestamp,
        labels: s.labels.labels,
        container_status: s.container_status,
        healthy: s.healthy,
    }
}

/// Renders v1 port ranges as the state document's `[lo-hi, ...]` text.
fn ports_text(resources: &[V1Resource]) -> String {
    let ranges: Vec<String> = resources
        .iter()
        .filter(|r| r.name == "ports")
        .filter_map(|r| r.ranges.as_ref())
        .flat_map(|r| r.range.iter().map(|x| format!("{}-{}", x.begin, x.end)))
        .collect();
    if ranges.is_empty() {
        String::new()
    } else {
        format!("[{}]", ranges.join(", "))
    }
}

fn task_from(t: V1Task) -> Task {
    Task {
        id: t.task_id.value.into(),
        name: t.name.into(),
        framework_id: t.framework_id.value.into(),
        slave_id: t.agent_id.value.into(),
        state: t.state.into(),
        resources: super::model::Resources {
            ports: ports_text(&t.resources).into(),
        },
        statuses: t.statuses.into_iter().map(status_from).collect(),
        discovery: t.discovery,
        container: t.container,
    }
}

/// The cluster as the event stream describes it, kept up to date event by event.
#[derive(Debug, Default)]
pub struct StreamState {
    /// The leader's PID (`master@ip:port`): the master we are subscribed to.
    pub leader: String,
    frameworks: HashMap<String, Framework>,
    framework_order: Vec<String>,
    agents: HashMap<String, Slave>,
    /// By ID, in ID order: the order of the state document, kept without a sort per publish.
    tasks: BTreeMap<String, Arc<Task>>,
    /// Framework PIDs known from a state document, which v1 events don't carry.
    pids: HashMap<String, Pid>,
}

/// What an event did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The state changed: republish.
    Changed,
    /// A heartbeat or an event that changes nothing we serve.
    Unchanged,
    /// A SUBSCRIBED event replaced the whole state.
    Subscribed {
        /// The heartbeat interval the master announced.
        heartbeat: Option<Duration>,
    },
}

impl StreamState {
    /// An empty state for the master at `leader` (`ip:port`), with framework PIDs taken from
    /// an earlier state document, if any.
    pub fn new(leader_addr: &str, known: Option<&State>) -> StreamState {
        let pids = known
            .map(|s| {
                s.frameworks
                    .iter()
                    .filter_map(|f| Some((f.id.to_string(), f.pid.clone()?)))
                    .collect()
            })
            .unwrap_or_default();
        StreamState {
            leader: format!("master@{leader_addr}"),
            pids,
            ..StreamState::default()
        }
    }

    fn add_framework(&mut self, f: V1Framework) {
        let info = f.framework_info;
        let id = info.id.value;
        if !self.frameworks.contains_key(&id) {
            self.framework_order.push(id.clone());
        }
        let pid = self.pids.get(&id).cloned();
        self.frameworks.insert(
            id.clone(),
            Framework {
                id: id.into(),
                name: info.name.into(),
                pid,
                hostname: info.hostname.into(),
                tasks: Vec::new(),
            },
        );
    }

    fn add_agent(&mut self, a: V1Agent) {
        let id = a.agent_info.id.value;
        self.agents.insert(
            id.clone(),
            Slave {
                id: id.into(),
                hostname: a.agent_info.hostname.into(),
                pid: Pid::parse(&a.pid),
            },
        );
    }

    fn add_task(&mut self, t: V1Task) {
        let task = task_from(t);
        if TERMINAL.contains(&task.state.as_str()) {
            self.tasks.remove(task.id.as_str());
        } else {
            self.tasks.insert(task.id.to_string(), Arc::new(task));
        }
    }

    /// Applies one event (a RecordIO record).
    pub fn apply(&mut self, event: &[u8]) -> Result<Applied, serde_json::Error> {
        Ok(self.apply_event(serde_json::from_slice(event)?))
    }

    /// Applies one parsed event.
    pub fn apply_event(&mut self, event: Event) -> Applied {
        match event {
            Event::Subscribed { subscribed } => {
                let state = subscribed.get_state;
                self.frameworks.clear();
                self.framework_order.clear();
                self.agents.clear();
                self.tasks.clear();
                for f in state.get_frameworks.frameworks {
                    self.add_framework(f);
                }
                for a in state.get_agents.agents {
                    self.add_agent(a);
                }
                for t in state.get_tasks.tasks {
                    self.add_task(t);
                }
                let heartbeat = subscribed
                    .heartbeat_interval_seconds
                    .filter(|s| *s > 0.0)
                    .map(Duration::from_secs_f64);
                Applied::Subscribed { heartbeat }
            }
            Event::TaskAdded { task_added } => {
                self.add_task(task_added.task);
                Applied::Changed
            }
            Event::TaskUpdated { task_updated } => {
                let status = task_updated.status;
                let state = task_updated.state.unwrap_or_else(|| status.state.clone());
                let id = status.task_id.value.clone();
                if TERMINAL.contains(&state.as_str()) {
                    return if self.tasks.remove(&id).is_some() {
                        Applied::Changed
                    } else {
                        Applied::Unchanged
                    };
                }
                match self.tasks.get_mut(&id) {
                    Some(task) => {
                        // Copied first if a published state still shares it.
                        let task = Arc::make_mut(task);
                        task.state = state.into();
                        task.statuses.push(status_from(status));
                        Applied::Changed
                    }
                    None => Applied::Unchanged,
                }
            }
            Event::AgentAdded { agent_added } => {
                self.add_agent(agent_added.agent);
                Applied::Changed
            }
            Event::AgentRemoved { agent_removed } => {
                self.agents.remove(&agent_removed.agent_id.value);
                Applied::Changed
            }
            Event::FrameworkAdded {
                framework_added: changed,
            }
            | Event::FrameworkUpdated {
                framework_updated: changed,
            } => {
                self.add_framework(changed.framework);
                Applied::Changed
            }
            Event::FrameworkRemoved { framework_removed } => {
                let id = framework_removed.framework_info.id.value;
                self.frameworks.remove(&id);
                self.framework_order.retain(|f| *f != id);
                Applied::Changed
            }
            Event::Heartbeat | Event::Other => Applied::Unchanged,
        }
    }

    /// The state document equivalent of the stream so far.
    pub fn to_state(&self) -> State {
        let mut frameworks: Vec<Framework> = self
            .framework_order
            .iter()
            .filter_map(|id| self.frameworks.get(id).cloned())
            .collect();
        let index: HashMap<&str, usize, ahash::RandomState> = self
            .framework_order
            .iter()
            .enumerate()
            .map(|(i, id)| (id.as_str(), i))
            .collect();
        for t in self.tasks.values() {
            if let Some(&i) = index.get(t.framework_id.as_str()) {
                frameworks[i].tasks.push(t.clone());
            }
        }
        let mut slaves: Vec<Slave> = self.agents.values().cloned().collect();
        slaves.sort_by(|a, b| a.id.cmp(&b.id));
        State {
            leader: self.leader.clone().into(),
            frameworks,
            slaves,
        }
    }
}

/// Publishes the stream's state (a rejection is logged as `rejected`); returns the earliest
/// start of the next publish ([`publish_spacing`]).
async fn publish(publisher: &Publisher, state: &StreamState, rejected: &str) -> Instant {
    let started = Instant::now();
    if let Err(e) = publisher.publish_state(state.to_state()).await {
        tracing::warn!(error = %e, "{rejected}");
    }
    started + publish_spacing(started.elapsed())
}

/// Heartbeat interval assumed until the master announces its own.
const DEFAULT_HEARTBEAT: Duration = Duration::from_secs(15);

/// Resolves when ZooKeeper names a leader other than `current` (never, without ZooKeeper).
async fn leader_change(zk: &mut Option<watch::Receiver<Option<String>>>, current: &str) {
    match zk {
        Some(rx) => {
            let _ = rx
                .wait_for(|l| l.as_deref().is_some_and(|l| l != current))
                .await;
        }
        None => std::future::pending().await,
    }
}

/// Why following an event stream stopped.
#[derive(Debug)]
pub enum StreamEnd {
    /// ZooKeeper reports another leader.
    LeaderChanged,
    /// The stream failed or went silent.
    Broken(String),
}

/// Applies the events of `resp` (the answer to a subscription to `leader`, `ip:port`) to
/// `state` (made by [`StreamState::new`] for that leader, with the framework PIDs of the state
/// just fetched) until the stream ends, goes silent, or ZooKeeper names another leader;
/// records over `max_record` bytes break the stream.
pub async fn follow(
    mut resp: reqwest::Response,
    leader: &str,
    mut state: StreamState,
    publisher: &Publisher,
    mut zk: Option<watch::Receiver<Option<String>>>,
    max_record: usize,
) -> StreamEnd {
    let mut records = RecordIo::new(max_record);
    let mut heartbeat = DEFAULT_HEARTBEAT;
    let mut publish_at: Option<Instant> = None;
    // The earliest start of the next publish (none before the first).
    let mut next_allowed: Option<Instant> = None;
    loop {
        tokio::select! {
            chunk = tokio::time::timeout(heartbeat * 3, resp.chunk()) => {
                let bytes = match chunk {
                    Err(_) => return StreamEnd::Broken("no event or heartbeat for three intervals".into()),
                    Ok(Err(e)) => return StreamEnd::Broken(e.to_string()),
                    Ok(Ok(None)) => return StreamEnd::Broken("stream closed by the master".into()),
                    Ok(Ok(Some(b))) => b,
                };
                let events = match records.push(&bytes) {
                    Ok(r) => r,
                    Err(e) => return StreamEnd::Broken(e.to_string()),
                };
                for event in events {
                    match state.apply(&event) {
                        Ok(Applied::Subscribed { heartbeat: hb }) => {
                            heartbeat = hb.unwrap_or(DEFAULT_HEARTBEAT);
                            publish_at = None;
                            next_allowed = Some(publish(publisher, &state, "subscribed state rejected").await);
                        }
                        Ok(Applied::Changed) => {
                            publish_at.get_or_insert_with(|| {
                                let now = Instant::now();
                                next_allowed.map_or(now, |t| t.max(now))
                            });
                        }
                        // A heartbeat or a no-op event: the master still stands behind the
                        // served state, unless a change is waiting to be published.
                        Ok(Applied::Unchanged) if publish_at.is_none() => publisher.confirm(),
                        Ok(Applied::Unchanged) => {}
                        Err(e) => return StreamEnd::Broken(format!("malformed event: {e}")),
                    }
                }
            }
            _ = tokio::time::sleep_until(publish_at.unwrap_or_else(Instant::now)), if publish_at.is_some() => {
                publish_at = None;
                next_allowed = Some(publish(publisher, &state, "streamed state rejected").await);
            }
            _ = leader_change(&mut zk, leader) => return StreamEnd::LeaderChanged,
        }
    }
}

#[cfg(test)]
mod tests {
    /// Publishing takes at most a third of a burst, within the minimum and maximum spacing.
    #[test]
    fn publishes_are_spaced_by_their_cost() {
        use super::{publish_spacing, MAX_PUBLISH_SPACING, MIN_PUBLISH_SPACING};
        use std::time::Duration;
        assert_eq!(
            publish_spacing(Duration::from_millis(1)),
            MIN_PUBLISH_SPACING
        );
        assert_eq!(
            publish_spacing(Duration::from_millis(20)),
            Duration::from_millis(60)
        );
        assert_eq!(
            publish_spacing(Duration::from_millis(400)),
            MAX_PUBLISH_SPACING
        );
    }

    use super::*;

    #[test]
    fn recordio_frames_across_chunk_boundaries() {
        let mut r = RecordIo::new(1000);
        assert_eq!(r.push(b"5\nhel").unwrap(), Vec::<Vec<u8>>::new());
        assert_eq!(
            r.push(b"lo3\nabc2").unwrap(),
            vec![b"hello".to_vec(), b"abc".to_vec()]
        );
        assert_eq!(r.push(b"\nok").unwrap(), vec![b"ok".to_vec()]);
        assert_eq!(
            RecordIo::new(1000).push(b"x\nabc"),
            Err(RecordIoError::BadLength)
        );
        assert_eq!(
            RecordIo::new(10).push(b"11\n"),
            Err(RecordIoError::TooLarge(11))
        );
        assert_eq!(
            RecordIo::new(10).push(&[b'1'; 30]),
            Err(RecordIoError::BadLength)
        );
    }

    /// A status update's health verdict and a task's container networking reach the model,
    /// so health-aware answers and the `routable` IP source work on the stream path too.
    #[test]
    fn health_and_container_networking_reach_the_model() {
        let mut s = StreamState::new("10.0.0.1:5050", None);
        s.apply(SUBSCRIBED.as_bytes()).unwrap();
        let added = r#"{"type":"TASK_ADDED","task_added":{"task":{"name":"api","task_id":{"value":"api.1"},
            "framework_id":{"value":"fw1"},"agent_id":{"value":"a1"},"state":"TASK_RUNNING",
            "container":{"type":"DOCKER","docker":{"image":"x","network":"BRIDGE"}}}}}"#;
        s.apply(added.as_bytes()).unwrap();
        let sick = r#"{"type":"TASK_UPDATED","task_updated":{"framework_id":{"value":"fw1"},"state":"TASK_RUNNING",
            "status":{"task_id":{"value":"api.1"},"state":"TASK_RUNNING","timestamp":2.0,"healthy":false}}}"#;
        assert_eq!(s.apply(sick.as_bytes()).unwrap(), Applied::Changed);
        let state = s.to_state();
        let api = state.frameworks[0].tasks.iter().find(|t| t.name == "api");
        let api = api.unwrap();
        assert!(api.is_unhealthy() && api.is_port_mapped());
        let well = sick.replace(
            "\"timestamp\":2.0,\"healthy\":false",
            "\"timestamp\":3.0,\"healthy\":true",
        );
        s.apply(well.as_bytes()).unwrap();
        let state = s.to_state();
        assert!(!state.frameworks[0].tasks.iter().any(|t| t.is_unhealthy()));
    }

    const SUBSCRIBED: &str = r#"{"type":"SUBSCRIBED","subscribed":{"heartbeat_interval_seconds":15,
      "get_state":{
        "get_frameworks":{"frameworks":[{"framework_info":{"id":{"value":"fw1"},"name":"marathon","hostname":"m1"}}]},
        "get_agents":{"agents":[{"agent_info":{"id":{"value":"a1"},"hostname":"h1"},"pid":"slave(1)@10.0.1.1:5051"}]},
        "get_tasks":{"tasks":[{"name":"web","task_id":{"value":"web.1"},"framework_id":{"value":"fw1"},
          "agent_id":{"value":"a1"},"state":"TASK_RUNNING",
          "resources":[{"name":"cpus","type":"SCALAR","scalar":{"value":1}},
                       {"name":"ports","type":"RANGES","ranges":{"range":[{"begin":31000,"end":31001}]}}],
          "statuses":[{"task_id":{"value":"web.1"},"state":"TASK_RUNNING","timestamp":1.5,
            "labels":{"labels":[{"key":"k","value":"v"}]},
            "container_status":{"network_infos":[{"ip_addresses":[{"ip_address":"172.17.0.2"}]}]}}]}]}}}}"#;

    #[test]
    fn published_states_share_tasks_until_an_event_changes_one() {
        let mut s = StreamState::new("10.0.0.1:5050", None);
        s.apply(SUBSCRIBED.as_bytes()).unwrap();
        let first = s.to_state();
        let again = s.to_state();
        assert!(Arc::ptr_eq(
            &first.frameworks[0].tasks[0],
            &again.frameworks[0].tasks[0]
        ));
        let killed = r#"{"type":"TASK_UPDATED","task_updated":{"framework_id":{"value":"fw1"},"state":"TASK_STARTING",
            "status":{"task_id":{"value":"web.1"},"state":"TASK_STARTING","timestamp":9.0}}}"#;
        assert_eq!(s.apply(killed.as_bytes()).unwrap(), Applied::Changed);
        // The published state keeps what it was given; the stream's copy moves on.
        assert_eq!(first.frameworks[0].tasks[0].state, "TASK_RUNNING");
        assert_eq!(first.frameworks[0].tasks[0].statuses.len(), 1);
        let now = s.to_state();
        assert_eq!(now.frameworks[0].tasks[0].state, "TASK_STARTING");
        assert!(!Arc::ptr_eq(
            &first.frameworks[0].tasks[0],
            &now.frameworks[0].tasks[0]
        ));
    }

    #[test]
    fn subscribed_then_events_track_the_cluster() {
        let mut s = StreamState::new("10.0.0.1:5050", None);
        let applied = s.apply(SUBSCRIBED.as_bytes()).unwrap();
        assert_eq!(
            applied,
            Applied::Subscribed {
                heartbeat: Some(Duration::from_secs(15))
            }
        );
        let st = s.to_state();
        assert_eq!(st.leader, "master@10.0.0.1:5050");
        let web = &st.frameworks[0].tasks[0];
        assert_eq!((web.name.as_str(), web.slave_id.as_str()), ("web", "a1"));
        assert_eq!(web.resources.ports(), vec![31000, 31001]);
        assert_eq!(web.statuses[0].labels[0].key, "k");

        let added = r#"{"type":"TASK_ADDED","task_added":{"task":{"name":"api","task_id":{"value":"api.1"},
            "framework_id":{"value":"fw1"},"agent_id":{"value":"a1"},"state":"TASK_STAGING"}}}"#;
        assert_eq!(s.apply(added.as_bytes()).unwrap(), Applied::Changed);
        let running = r#"{"type":"TASK_UPDATED","task_updated":{"framework_id":{"value":"fw1"},"state":"TASK_RUNNING",
            "status":{"task_id":{"value":"api.1"},"state":"TASK_RUNNING","timestamp":2.0}}}"#;
        assert_eq!(s.apply(running.as_bytes()).unwrap(), Applied::Changed);
        let api = s.to_state().frameworks[0]
            .tasks
            .iter()
            .find(|t| t.name == "api")
            .cloned()
            .unwrap();
        assert!(api.is_running());

        let killed = r#"{"type":"TASK_UPDATED","task_updated":{"framework_id":{"value":"fw1"},"state":"TASK_KILLED",
            "status":{"task_id":{"value":"web.1"},"state":"TASK_KILLED","timestamp":3.0}}}"#;
        s.apply(killed.as_bytes()).unwrap();
        assert_eq!(s.to_state().frameworks[0].tasks.len(), 1);

        let gone = r#"{"type":"AGENT_REMOVED","agent_removed":{"agent_id":{"value":"a1"}}}"#;
        s.apply(gone.as_bytes()).unwrap();
        assert!(s.to_state().slaves.is_empty());
        assert_eq!(
            s.apply(br#"{"type":"HEARTBEAT"}"#).unwrap(),
            Applied::Unchanged
        );
        assert!(s.apply(b"{broken").is_err());
    }

    #[test]
    fn framework_events_and_unknown_types_are_typed() {
        let mut s = StreamState::new("10.0.0.1:5050", None);
        s.apply(SUBSCRIBED.as_bytes()).unwrap();
        let added = r#"{"type":"FRAMEWORK_ADDED","framework_added":{"framework":
            {"framework_info":{"id":{"value":"fw2"},"name":"chronos","hostname":"m2"}}}}"#;
        assert_eq!(s.apply(added.as_bytes()).unwrap(), Applied::Changed);
        let updated = r#"{"type":"FRAMEWORK_UPDATED","framework_updated":{"framework":
            {"framework_info":{"id":{"value":"fw2"},"name":"chronos2"}}}}"#;
        assert_eq!(s.apply(updated.as_bytes()).unwrap(), Applied::Changed);
        let names: Vec<String> = s
            .to_state()
            .frameworks
            .into_iter()
            .map(|f| f.name.to_string())
            .collect();
        assert_eq!(
            names,
            ["marathon", "chronos2"],
            "order kept, update applied"
        );
        let removed = r#"{"type":"FRAMEWORK_REMOVED","framework_removed":{"framework_info":{"id":{"value":"fw1"}}}}"#;
        s.apply(removed.as_bytes()).unwrap();
        assert_eq!(s.to_state().frameworks.len(), 1);
        assert!(
            s.to_state().frameworks[0].tasks.is_empty(),
            "fw1's task is not listed"
        );
        assert_eq!(
            s.apply(br#"{"type":"TASK_FANCY_NEW","task_fancy_new":{}}"#)
                .unwrap(),
            Applied::Unchanged,
            "event types this build does not know change nothing"
        );
        assert!(
            s.apply(br#"{"type":"TASK_ADDED"}"#).is_err(),
            "a known event without its payload is malformed"
        );
        let agent = r#"{"type":"AGENT_ADDED","agent_added":{"agent":{"agent_info":{"id":{"value":"a2"},"hostname":"h2"},"pid":"slave(1)@10.0.1.2:5051"}}}"#;
        assert_eq!(s.apply(agent.as_bytes()).unwrap(), Applied::Changed);
        assert_eq!(s.to_state().slaves.len(), 2);
    }
}
