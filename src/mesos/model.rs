//! Typed Mesos master state (`/master/state`, `/master/state.json`), as much of it as the
//! records need.
//!
//! The document's shape drifted across Mesos 0.2x..1.x: fields appear, disappear, or come as
//! `null`. Every field here defaults when missing or null, unknown fields are ignored, and a
//! malformed PID or port range is treated as absent rather than failing the whole document, so
//! one odd task never costs the cluster its names. Values that would produce a wrong record
//! (an unparsable IP, a port above 65535) are dropped, never guessed.

use std::net::IpAddr;
use std::sync::Arc;

use compact_str::CompactString;
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Deserializes `null` as the type's default, so `"tasks": null` reads as no tasks.
fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de> + Default,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// Deserializes a list (`null` as empty) into exactly the memory it needs.
///
/// A parsed list grows as it is read: one element has room for four. Shrinking it afterwards
/// leaves the spare room behind as a small free gap between live allocations, which at 100,000
/// tasks (several lists each) adds up to about as much memory as the state itself and cannot
/// be returned to the system. Moving the elements into an exact allocation instead frees the
/// whole grown buffer, which the next list's growth then reuses.
fn exact_list<'de, D, T>(d: D) -> Result<Vec<T>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    let grown: Vec<T> = nullable(d)?;
    if grown.capacity() == grown.len() {
        return Ok(grown);
    }
    let mut exact = Vec::with_capacity(grown.len());
    exact.extend(grown);
    Ok(exact)
}

/// A whole master state document: who leads, which frameworks run which tasks, on which agents.
#[derive(Debug, Clone, Default, Deserialize, Serialize, Hash)]
#[serde(default)]
pub struct State {
    /// The leading master's PID, e.g. `master@10.0.0.1:5050`.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_empty")]
    pub leader: CompactString,
    /// Registered frameworks with their tasks.
    #[serde(deserialize_with = "exact_list", skip_serializing_if = "is_empty")]
    pub frameworks: Vec<Framework>,
    /// Registered agents ("slaves" in the state document).
    #[serde(deserialize_with = "exact_list", skip_serializing_if = "is_empty")]
    pub slaves: Vec<Slave>,
}

/// A framework (scheduler), e.g. Marathon.
#[derive(Debug, Clone, Default, Deserialize, Serialize, Hash)]
#[serde(default)]
pub struct Framework {
    /// Framework ID.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_empty")]
    pub id: CompactString,
    /// Framework name; becomes the middle label(s) of its tasks' names.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_empty")]
    pub name: CompactString,
    /// The scheduler's libprocess PID; absent for HTTP API frameworks.
    #[serde(
        deserialize_with = "lenient_pid",
        serialize_with = "pid_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub pid: Option<Pid>,
    /// The scheduler's hostname, used when there is no PID.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_empty")]
    pub hostname: CompactString,
    /// The framework's current tasks.
    #[serde(deserialize_with = "exact_list", skip_serializing_if = "is_empty")]
    /// Shared, so that a source keeping a state of its own (the event stream) hands a copy
    /// to the publisher without copying every task.
    pub tasks: Vec<Arc<Task>>,
}

impl Framework {
    /// Where the scheduler listens: PID host and port, else the hostname and no port
    /// (Mesos-DNS's `HostPort`).
    pub fn host_port(&self) -> (&str, Option<u16>) {
        match &self.pid {
            Some(pid) => (pid.host.as_str(), Some(pid.port)),
            None => (self.hostname.as_str(), None),
        }
    }
}

/// An agent.
#[derive(Debug, Clone, Default, Deserialize, Serialize, Hash)]
#[serde(default)]
pub struct Slave {
    /// Agent ID; its last dash-separated part appears in task unique names.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_empty")]
    pub id: CompactString,
    /// Agent hostname.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_empty")]
    pub hostname: CompactString,
    /// The agent's libprocess PID, whose host gives the agent's address.
    #[serde(
        deserialize_with = "lenient_pid",
        serialize_with = "pid_string",
        skip_serializing_if = "Option::is_none"
    )]
    pub pid: Option<Pid>,
}

/// A task as the master reports it.
#[derive(Debug, Clone, Default, Deserialize, Serialize, Hash)]
#[serde(default)]
pub struct Task {
    /// Task ID; hashed into the task's unique name.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_empty")]
    pub id: CompactString,
    /// Task name.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_empty")]
    pub name: CompactString,
    /// ID of the framework that launched it.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_empty")]
    pub framework_id: CompactString,
    /// ID of the agent it runs on.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_empty")]
    pub slave_id: CompactString,
    /// Current state, e.g. `TASK_RUNNING`.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_empty")]
    pub state: CompactString,
    /// Status updates, each with labels and container network information.
    #[serde(deserialize_with = "exact_list", skip_serializing_if = "is_empty")]
    pub statuses: Vec<Status>,
    /// Resources, of which only the port ranges matter here.
    #[serde(deserialize_with = "nullable")]
    pub resources: Resources,
    /// Service discovery information set by the framework, if any.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    pub discovery: Option<DiscoveryInfo>,
    /// How the task's container is networked, which tells whether its own address is
    /// reachable (the `routable` IP source). Boxed: most of a large state's tasks carry none
    /// that matters, and an inline one would cost every task its size.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    pub container: Option<Box<ContainerInfo>>,
}

/// The `TASK_RUNNING` state, the only one Mesos-DNS serves.
pub const TASK_RUNNING: &str = "TASK_RUNNING";

impl Task {
    /// Whether the task is running, the only state Mesos-DNS gives names to.
    pub fn is_running(&self) -> bool {
        self.state == TASK_RUNNING
    }

    /// The discovery info, when it names the task (Mesos-DNS ignores it otherwise).
    pub fn named_discovery(&self) -> Option<&DiscoveryInfo> {
        self.discovery.as_ref().filter(|d| !d.name.is_empty())
    }

    /// The most recent `TASK_RUNNING` status, which Mesos-DNS reads container IPs from.
    pub fn latest_running_status(&self) -> Option<&Status> {
        let mut best: Option<&Status> = None;
        for s in &self.statuses {
            if s.state == TASK_RUNNING && best.is_none_or(|b| s.timestamp > b.timestamp) {
                best = Some(s);
            }
        }
        best
    }

    /// Whether the task's latest running status reports a failing health check
    /// (`healthy: false`); tasks without health checks are never unhealthy.
    pub fn is_unhealthy(&self) -> bool {
        self.latest_running_status()
            .is_some_and(|s| s.healthy == Some(false))
    }

    /// Whether the task's container address is only reachable through ports mapped on the
    /// agent: a Docker `BRIDGE` network, or a container network with port mappings (the
    /// Mesos containerizer's NAT bridge). Such addresses (172.17.x and the like) mean nothing
    /// off the agent.
    pub fn is_port_mapped(&self) -> bool {
        let mapped = |infos: &[NetworkInfo]| infos.iter().any(|n| !n.port_mappings.is_empty());
        let container = self.container.as_ref().is_some_and(|c| {
            c.docker
                .as_ref()
                .is_some_and(|d| d.network.eq_ignore_ascii_case("BRIDGE"))
                || mapped(&c.network_infos)
        });
        container
            || self
                .latest_running_status()
                .is_some_and(|s| mapped(&s.container_status.network_infos))
    }
}

/// A task's container settings, as much as tells how it is networked.
#[derive(Debug, Clone, Default, Deserialize, Serialize, Hash)]
#[serde(default)]
pub struct ContainerInfo {
    /// `DOCKER` or `MESOS`.
    #[serde(
        rename = "type",
        deserialize_with = "nullable",
        skip_serializing_if = "is_empty"
    )]
    pub kind: CompactString,
    /// Docker settings, for Docker containers.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "Option::is_none")]
    pub docker: Option<DockerInfo>,
    /// The networks the container joins (with their port mappings).
    #[serde(deserialize_with = "exact_list", skip_serializing_if = "is_empty")]
    pub network_infos: Vec<NetworkInfo>,
}

/// Docker settings of a container.
#[derive(Debug, Clone, Default, Deserialize, Serialize, Hash)]
#[serde(default)]
pub struct DockerInfo {
    /// `HOST`, `BRIDGE`, `USER` or `NONE`.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_empty")]
    pub network: CompactString,
}

/// One port of the agent mapped into a container.
#[derive(Debug, Clone, Default, Deserialize, Serialize, Hash)]
#[serde(default)]
pub struct PortMapping {
    /// Port on the agent.
    #[serde(deserialize_with = "nullable")]
    pub host_port: u64,
    /// Port in the container.
    #[serde(deserialize_with = "nullable")]
    pub container_port: u64,
}

/// One status update of a task.
#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(default)]
pub struct Status {
    /// Task state at this update.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_empty")]
    pub state: CompactString,
    /// When the update happened (seconds since the epoch).
    #[serde(deserialize_with = "nullable")]
    pub timestamp: f64,
    /// Labels set by the executor, e.g. `Docker.NetworkSettings.IPAddress`.
    #[serde(deserialize_with = "exact_list", skip_serializing_if = "is_empty")]
    pub labels: Vec<Label>,
    /// Container status with network information (Mesos >= 0.25).
    #[serde(deserialize_with = "nullable")]
    pub container_status: ContainerStatus,
    /// The latest health check's verdict, when the task has health checks (Mesos >= 0.23).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthy: Option<bool>,
}

/// By every field, the timestamp by its bits: change detection between two states
/// ([`crate::records::shards`]) needs equal statuses to hash equally, nothing more.
impl std::hash::Hash for Status {
    fn hash<H: std::hash::Hasher>(&self, h: &mut H) {
        let Status {
            state,
            timestamp,
            healthy,
            labels,
            container_status,
        } = self;
        state.hash(h);
        healthy.hash(h);
        timestamp.to_bits().hash(h);
        labels.hash(h);
        container_status.hash(h);
    }
}

/// A key/value label.
#[derive(Debug, Clone, Default, Deserialize, Serialize, Hash)]
#[serde(default)]
pub struct Label {
    /// Label key.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_empty")]
    pub key: CompactString,
    /// Label value.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_empty")]
    pub value: CompactString,
}

/// Container status of a task.
#[derive(Debug, Clone, Default, Deserialize, Serialize, Hash)]
#[serde(default)]
pub struct ContainerStatus {
    /// The container's network interfaces.
    #[serde(deserialize_with = "exact_list", skip_serializing_if = "is_empty")]
    pub network_infos: Vec<NetworkInfo>,
}

/// A container network interface and its addresses.
#[derive(Debug, Clone, Default, Deserialize, Serialize, Hash)]
#[serde(default)]
pub struct NetworkInfo {
    /// Addresses (Mesos >= 0.26).
    #[serde(deserialize_with = "exact_list", skip_serializing_if = "is_empty")]
    pub ip_addresses: Vec<IpAddressEntry>,
    /// Single address (Mesos 0.25).
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_empty")]
    pub ip_address: CompactString,
    /// Network name.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_empty")]
    pub name: CompactString,
    /// Ports of the agent mapped into the container on this network.
    #[serde(deserialize_with = "exact_list", skip_serializing_if = "is_empty")]
    pub port_mappings: Vec<PortMapping>,
}

impl NetworkInfo {
    /// The interface's address strings, new format first, falling back to the 0.25 field.
    pub fn addresses(&self) -> Vec<&str> {
        if self.ip_addresses.is_empty() {
            if self.ip_address.is_empty() {
                Vec::new()
            } else {
                vec![self.ip_address.as_str()]
            }
        } else {
            self.ip_addresses
                .iter()
                .map(|a| a.ip_address.as_str())
                .collect()
        }
    }
}

/// One entry of `ip_addresses`.
#[derive(Debug, Clone, Default, Deserialize, Serialize, Hash)]
#[serde(default)]
pub struct IpAddressEntry {
    /// The address as text.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_empty")]
    pub ip_address: CompactString,
}

/// Task resources; Mesos-DNS reads only the `ports` ranges.
#[derive(Debug, Clone, Default, Deserialize, Serialize, Hash)]
#[serde(default)]
pub struct Resources {
    /// Port ranges as the master prints them, e.g. `[31000-31001, 31005-31005]`.
    #[serde(deserialize_with = "lenient_string", skip_serializing_if = "is_empty")]
    pub ports: CompactString,
}

impl Resources {
    /// The individual ports of the ranges, in order, skipping malformed ranges as Mesos-DNS
    /// does.
    pub fn ports(&self) -> Vec<u16> {
        parse_port_ranges(&self.ports)
    }
}

/// Expands `[lo-hi, lo-hi]` into ports. Ranges that don't parse or exceed 65535 are skipped.
pub fn parse_port_ranges(text: &str) -> Vec<u16> {
    let Some((_, rest)) = text.split_once('[') else {
        return Vec::new();
    };
    let inner = rest.split(']').next().unwrap_or("");
    let mut ports = Vec::new();
    for range in inner.split(',') {
        let range = range.trim();
        if range.is_empty() {
            continue;
        }
        let mut parts = range.split('-');
        let lo = parts.next().and_then(|p| p.trim().parse::<u16>().ok());
        let hi = parts.next().and_then(|p| p.trim().parse::<u16>().ok());
        if let (Some(lo), Some(hi)) = (lo, hi) {
            ports.extend(lo..=hi);
        }
    }
    ports
}

/// DiscoveryInfo set by the framework (Marathon sets it from the app's port definitions).
#[derive(Debug, Clone, Default, Deserialize, Serialize, Hash)]
#[serde(default)]
pub struct DiscoveryInfo {
    /// Service name; replaces the task name in records when set.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_empty")]
    pub name: CompactString,
    /// Discovery ports.
    #[serde(deserialize_with = "nullable")]
    pub ports: DiscoveryPorts,
}

/// Wrapper object around the discovery port list, as in the state document.
#[derive(Debug, Clone, Default, Deserialize, Serialize, Hash)]
#[serde(default)]
pub struct DiscoveryPorts {
    /// The ports.
    #[serde(deserialize_with = "exact_list", skip_serializing_if = "is_empty")]
    pub ports: Vec<DiscoveryPort>,
}

/// A named service port of a task.
#[derive(Debug, Clone, Default, Deserialize, Serialize, Hash)]
#[serde(default)]
pub struct DiscoveryPort {
    /// Port number; values above 65535 are ignored when building records.
    #[serde(deserialize_with = "nullable")]
    pub number: u64,
    /// `tcp`, `udp`, or empty for both.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_empty")]
    pub protocol: CompactString,
    /// Port name, giving the `_name._task._proto` SRV records.
    #[serde(deserialize_with = "nullable", skip_serializing_if = "is_empty")]
    pub name: CompactString,
}

/// A libprocess PID: `id@host:port`, where host is an address or a hostname.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Pid {
    /// The process id part before `@`.
    pub id: CompactString,
    /// Host part, without IPv6 brackets.
    pub host: CompactString,
    /// Port.
    pub port: u16,
}

impl Pid {
    /// Parses `id@host:port` (IPv6 hosts in brackets); `None` if it isn't one.
    pub fn parse(text: &str) -> Option<Pid> {
        let text = text.trim_matches(|c| c == '"' || c == ' ');
        let (id, addr) = text.split_once('@')?;
        let (host, port) = split_host_port(addr)?;
        if id.is_empty() || host.is_empty() {
            return None;
        }
        Some(Pid {
            id: id.into(),
            host: host.into(),
            port,
        })
    }

    /// The host as an IP address, if it is one.
    pub fn ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }
}

/// Splits `host:port` or `[v6]:port`.
pub fn split_host_port(addr: &str) -> Option<(&str, u16)> {
    if let Some(rest) = addr.strip_prefix('[') {
        let (host, port) = rest.split_once("]:")?;
        return Some((host, port.parse().ok()?));
    }
    let (host, port) = addr.rsplit_once(':')?;
    if host.contains(':') {
        return None;
    }
    Some((host, port.parse().ok()?))
}

/// Whether a string or list is empty (for `skip_serializing_if`).
fn is_empty<T: IsEmpty>(v: &T) -> bool {
    v.is_empty_value()
}

trait IsEmpty {
    fn is_empty_value(&self) -> bool;
}

impl IsEmpty for String {
    fn is_empty_value(&self) -> bool {
        self.is_empty()
    }
}

impl IsEmpty for CompactString {
    fn is_empty_value(&self) -> bool {
        self.is_empty()
    }
}

impl<T> IsEmpty for Vec<T> {
    fn is_empty_value(&self) -> bool {
        self.is_empty()
    }
}

fn pid_string<S: Serializer>(pid: &Option<Pid>, s: S) -> Result<S::Ok, S::Error> {
    match pid {
        Some(p) if p.host.contains(':') => {
            s.serialize_str(&format!("{}@[{}]:{}", p.id, p.host, p.port))
        }
        Some(p) => s.serialize_str(&format!("{}@{}:{}", p.id, p.host, p.port)),
        None => s.serialize_none(),
    }
}

fn lenient_pid<'de, D: Deserializer<'de>>(d: D) -> Result<Option<Pid>, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    Ok(v.as_str().and_then(Pid::parse))
}

fn lenient_string<'de, D: Deserializer<'de>>(d: D) -> Result<CompactString, D::Error> {
    let v = serde_json::Value::deserialize(d)?;
    Ok(v.as_str().map(CompactString::from).unwrap_or_default())
}

/// Why a state document could not be read.
#[derive(Debug, thiserror::Error)]
pub enum StateError {
    /// The bytes are not a JSON state document.
    #[error("state document is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The document parsed but names no leader, which every master state has.
    #[error("state document has no leader")]
    NoLeader,
}

impl State {
    /// Parses a master state document. A document without a leader is rejected, as Mesos-DNS
    /// rejects it: it is not a master's state (or comes from a non-leading master mid-election).
    pub fn from_json(bytes: &[u8]) -> Result<State, StateError> {
        serde_json::from_slice::<State>(bytes)?.validated()
    }

    /// Parses a master state document as it is read (see [`State::from_json`]), so that a
    /// large document is never held whole in memory beside the state it becomes.
    pub fn from_reader(reader: impl std::io::Read) -> Result<State, StateError> {
        serde_json::from_reader::<_, State>(reader)?.validated()
    }

    /// The state if it names a leader (see [`State::from_json`]), with its lists trimmed; for
    /// states parsed inside another document (a relay's).
    pub fn validated(mut self) -> Result<State, StateError> {
        if self.leader.is_empty() {
            return Err(StateError::NoLeader);
        }
        self.shrink_to_fit();
        Ok(self)
    }

    /// Frees the spare capacity of every list. A parsed list of one element has room for four
    /// (serde grows lists as they are read), which at 100,000 tasks is about a third of the
    /// state's memory, held for as long as the state is served.
    pub fn shrink_to_fit(&mut self) {
        self.frameworks.shrink_to_fit();
        self.slaves.shrink_to_fit();
        for f in &mut self.frameworks {
            f.tasks.shrink_to_fit();
            // A task shared with another state is left as it is.
            for t in f.tasks.iter_mut().filter_map(Arc::get_mut) {
                t.statuses.shrink_to_fit();
                for s in &mut t.statuses {
                    s.labels.shrink_to_fit();
                    s.container_status.network_infos.shrink_to_fit();
                    for n in &mut s.container_status.network_infos {
                        n.ip_addresses.shrink_to_fit();
                    }
                }
                if let Some(d) = &mut t.discovery {
                    d.ports.ports.shrink_to_fit();
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_ranges() {
        assert_eq!(
            parse_port_ranges("[31354-31354, 31355-31355]"),
            vec![31354, 31355]
        );
        assert_eq!(
            parse_port_ranges("[31737-31739]"),
            vec![31737, 31738, 31739]
        );
        assert_eq!(parse_port_ranges("[]"), Vec::<u16>::new());
        assert_eq!(parse_port_ranges(""), Vec::<u16>::new());
        assert_eq!(
            parse_port_ranges("[1-2, x-3, 70000-70001, 5-5]"),
            vec![1, 2, 5]
        );
    }

    #[test]
    fn pids() {
        let p = Pid::parse("scheduler(1)@1.2.3.11:25501").unwrap();
        assert_eq!(
            (p.id.as_str(), p.host.as_str(), p.port),
            ("scheduler(1)", "1.2.3.11", 25501)
        );
        let p = Pid::parse("slave(1)@[2001:db8::1]:5051").unwrap();
        assert_eq!((p.host.as_str(), p.port), ("2001:db8::1", 5051));
        assert!(Pid::parse("nonsense").is_none());
        assert!(Pid::parse("a@b").is_none());
        assert!(Pid::parse("a@:1").is_none());
    }

    #[test]
    fn tolerates_nulls_and_odd_types() {
        let doc = br#"{"leader":"master@1.2.3.4:5050","frameworks":[{"name":"f","pid":null,
            "tasks":null,"hostname":null}],"slaves":[{"id":"s","pid":42}],"extra":{"x":1}}"#;
        let s = State::from_json(doc).unwrap();
        assert!(s.frameworks[0].pid.is_none());
        assert!(s.frameworks[0].tasks.is_empty());
        assert!(s.slaves[0].pid.is_none());
    }

    #[test]
    fn lists_are_parsed_into_exactly_the_memory_they_need() {
        // Straight from serde, before `validated` trims anything.
        let doc = crate::mesos::synthetic::state_json(50);
        let s: State = serde_json::from_slice(&doc).unwrap();
        let f = &s.frameworks[0];
        assert_eq!(s.frameworks.capacity(), s.frameworks.len());
        assert_eq!(s.slaves.capacity(), s.slaves.len());
        assert_eq!(f.tasks.capacity(), f.tasks.len());
        for t in &f.tasks {
            assert_eq!(t.statuses.capacity(), t.statuses.len());
            for st in &t.statuses {
                let infos = &st.container_status.network_infos;
                assert_eq!(infos.capacity(), infos.len());
                for n in infos {
                    assert_eq!(n.ip_addresses.capacity(), n.ip_addresses.len());
                }
            }
            if let Some(d) = &t.discovery {
                assert_eq!(d.ports.ports.capacity(), d.ports.ports.len());
            }
        }
        let json = br#"{"leader":"master@10.0.0.1:5050","frameworks":[{"name":"m","tasks":null}]}"#;
        assert!(State::from_json(json).unwrap().frameworks[0]
            .tasks
            .is_empty());
    }

    #[test]
    fn compact_serialization_round_trips() {
        let doc = br#"{"leader":"master@1.2.3.4:5050","flags":{"x":"y"},"frameworks":[{"name":"f",
            "pid":"s(1)@[2001:db8::1]:7","tasks":[{"id":"t","name":"n","slave_id":"s","state":"TASK_RUNNING",
            "resources":{"cpus":1,"ports":"[1-2]"},"statuses":[{"state":"TASK_RUNNING","timestamp":2.5,
            "container_status":{"network_infos":[{"ip_addresses":[{"ip_address":"10.0.0.1"}]}]}}],
            "discovery":{"name":"d","ports":{"ports":[{"number":80,"protocol":"tcp","name":"http"}]}}}]}],
            "slaves":[{"id":"s","pid":"slave(1)@10.0.0.9:5051"}]}"#;
        let s = State::from_json(doc).unwrap();
        let compact = serde_json::to_vec(&s).unwrap();
        assert!(!String::from_utf8_lossy(&compact).contains("flags"));
        let again = State::from_json(&compact).unwrap();
        assert_eq!(serde_json::to_vec(&again).unwrap(), compact);
        assert_eq!(
            again.frameworks[0].pid.as_ref().unwrap().host,
            "2001:db8::1"
        );
        assert_eq!(again.frameworks[0].tasks[0].resources.ports(), vec![1, 2]);
    }

    /// Health verdicts and container networking survive the compact document a relay serves
    /// and a persisted state keeps, so followers answer as the daemon they follow.
    #[test]
    fn health_and_container_networking_round_trip() {
        let doc = br#"{"leader":"master@1.2.3.4:5050","frameworks":[{"name":"f","tasks":[
            {"id":"t","name":"n","state":"TASK_RUNNING","container":{"type":"DOCKER",
             "docker":{"image":"x","network":"BRIDGE","port_mappings":[{"host_port":1,"container_port":2}]}},
             "statuses":[{"state":"TASK_RUNNING","timestamp":1.0,"healthy":false}]},
            {"id":"u","name":"m","state":"TASK_RUNNING","container":{"type":"MESOS",
             "network_infos":[{"name":"cni","port_mappings":[{"host_port":31000,"container_port":80}]}]},
             "statuses":[{"state":"TASK_RUNNING","timestamp":1.0,"healthy":true},
                         {"state":"TASK_RUNNING","timestamp":2.0}]}]}]}"#;
        let s = State::from_json(doc).unwrap();
        let again = State::from_json(&serde_json::to_vec(&s).unwrap()).unwrap();
        let tasks = &again.frameworks[0].tasks;
        assert!(tasks[0].is_unhealthy() && tasks[0].is_port_mapped());
        // The latest status has no verdict: not unhealthy.
        assert!(!tasks[1].is_unhealthy() && tasks[1].is_port_mapped());
    }

    #[test]
    fn rejects_garbage_and_leaderless() {
        assert!(matches!(
            State::from_json(b"{not json"),
            Err(StateError::Json(_))
        ));
        assert!(matches!(State::from_json(b"{}"), Err(StateError::NoLeader)));
    }
}
