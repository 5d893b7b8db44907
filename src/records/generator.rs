//! Mesos state -> records, with Mesos-DNS's naming rules.
//!
//! The order of the steps, the deduplication and every naming detail follow Mesos-DNS's record
//! generator, so a client switching over sees the same names with the same values:
//!
//! - `framework.domain` A/AAAA and `_framework._tcp.framework.domain` SRV for each framework;
//! - `slave.domain` A/AAAA and `_slave._tcp.domain` SRV for the agents;
//! - the SOA mname's address (from `listener`);
//! - `leader.domain`, `master.domain`, `masterN.domain`, `_leader._tcp|_udp.domain`;
//! - per running task: `task.framework.domain`, the unique `task-HASH-AGENT.framework.domain`,
//!   both again under `.slave.` with the agent's address, `_task._tcp|_udp.framework[.slave]`
//!   SRV for resource ports, and for DiscoveryInfo ports `_task._proto.framework.domain` plus
//!   `_portname._task._proto.framework.domain`.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;

use hickory_proto::rr::Name;

use super::hash::task_hash;
use super::labels::LabelSpec;
use super::names::NameTable;
use super::snapshot::{
    bucket_label, bucket_of, EnumFramework, EnumRecord, EnumTask, Enumeration, OutsideHost, Shard,
    Snapshot, Soa, Span, Spans, SrvRecord, Stats, PTR_HOST, PTR_MULTI, TARGET_OTHER,
};
use super::static_records::StaticRecords;
use crate::config::{Config, IpSource};
use crate::mesos::model::{split_host_port, DiscoveryInfo, Framework, State, Task};

/// Status label holding a Docker container's address.
pub const DOCKER_IP_LABEL: &str = "Docker.NetworkSettings.IPAddress";
/// Status label holding a Mesos container's address.
pub const MESOS_IP_LABEL: &str = "MesosContainerizer.NetworkSettings.IPAddress";

/// Addresses of hostnames found in the state (frameworks without a PID, agents registered by
/// name), resolved by the caller before the build so the build itself does no I/O.
pub type HostAddrs = HashMap<String, Vec<IpAddr>>;

/// The settings that shape records, taken from the configuration.
#[derive(Debug, Clone)]
pub struct RecordSettings {
    /// Cluster domain, lowercase, no trailing dot.
    pub domain: String,
    /// Label rules.
    pub spec: LabelSpec,
    /// Task address sources in priority order.
    pub ip_sources: Vec<IpSource>,
    /// Configured masters (`ip:port`), numbered into `masterN` names.
    pub masters: Vec<String>,
    /// Name server name (SOA mname), fully qualified.
    pub ns_name: String,
    /// Addresses of the name server name: the listener, or every local address for 0.0.0.0.
    pub ns_addrs: Vec<IpAddr>,
    /// Record TTL.
    pub ttl: u32,
    /// SRV weight.
    pub srv_weight: u16,
    /// SOA rname, fully qualified.
    pub soa_rname: String,
    /// SOA refresh.
    pub soa_refresh: u32,
    /// SOA retry.
    pub soa_retry: u32,
    /// SOA expire.
    pub soa_expire: u32,
    /// SOA minimum.
    pub soa_minttl: u32,
    /// `omitUnhealthy`: records of tasks whose latest status says `healthy: false` are only
    /// served where no healthy task gives the name records of the same type.
    pub omit_unhealthy: bool,
    /// `reverseLookups`: PTR answers for addresses that map to exactly one name.
    pub reverse_lookups: bool,
    /// `agentHostnames`: `HOSTNAME.slave.DOMAIN` records for the agents.
    pub agent_hostnames: bool,
    /// The records of `staticRecordsFile`, read when the settings are made (start, SIGHUP).
    pub static_records: Arc<StaticRecords>,
    /// How many tasks a group's bucket holds, about, before the group is split into more
    /// (see [`Group`]): a task change rebuilds its bucket, not its group.
    pub tasks_per_bucket: usize,
}

/// The default of [`RecordSettings::tasks_per_bucket`]: a bucket rebuilds in about a
/// millisecond, and a 100,000-task framework has 128 of them.
pub const TASKS_PER_BUCKET: usize = 1000;

impl RecordSettings {
    /// Settings from a validated configuration and the name server's addresses.
    pub fn from_config(c: &Config, ns_addrs: Vec<IpAddr>) -> RecordSettings {
        RecordSettings {
            domain: c.domain.clone(),
            spec: c.label_spec(),
            ip_sources: c.ip_sources.clone(),
            masters: c.masters.clone(),
            ns_name: c.soa_mname.clone(),
            ns_addrs,
            ttl: c.ttl,
            srv_weight: c.srv_record_default_weight,
            soa_rname: c.soa_rname.clone(),
            soa_refresh: c.soa_refresh,
            soa_retry: c.soa_retry,
            soa_expire: c.soa_expire,
            soa_minttl: c.soa_minttl,
            omit_unhealthy: c.omit_unhealthy,
            reverse_lookups: c.reverse_lookups,
            agent_hostnames: c.agent_hostnames,
            static_records: Arc::new(load_static_records(c)),
            tasks_per_bucket: TASKS_PER_BUCKET,
        }
    }
}

/// The static records file's records; a file that became unreadable or invalid since the
/// configuration was validated serves none (and says so) rather than stopping the daemon.
fn load_static_records(c: &Config) -> StaticRecords {
    let Some(path) = &c.static_records_file else {
        return StaticRecords::default();
    };
    StaticRecords::load(path).unwrap_or_else(|e| {
        tracing::warn!(
            "staticRecordsFile {}: {e}; no static records served",
            path.display()
        );
        StaticRecords::default()
    })
}

/// Why no snapshot could be built.
#[derive(Debug, thiserror::Error)]
pub enum BuildError {
    /// The configured domain or SOA names are not valid DNS names.
    #[error("invalid name `{0}` in configuration")]
    BadName(String),
}

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
enum Value {
    A(Ipv4Addr),
    Aaaa(Ipv6Addr),
    Srv(u32, u16),
}

use super::snapshot::FastMap;
type FastSet<K> = std::collections::HashSet<K, ahash::RandomState>;

/// Accumulates records like Mesos-DNS's generator: name -> set of values, insertion ordered.
///
/// Names are interned once ([`NameTable`]) and records kept as one flat list of (name number,
/// value) in insertion order: a large cluster costs a few large allocations instead of several
/// per name. Duplicates are dropped when the snapshot is finished (first one kept, as if they
/// had never been inserted), except while `eager` is set, when `insert` must tell at once
/// whether a record is new.
struct Builder<'a> {
    s: &'a RecordSettings,
    names: NameTable,
    records: Vec<(u32, Value)>,
    /// Records inserted while `eager` was set.
    seen: FastSet<(u32, Value)>,
    /// Whether `insert` checks for duplicates at once (and so reports them).
    eager: bool,
    tail: String,
    /// Reused buffers for the names of a task.
    scratch: String,
    scratch2: String,
    /// Whether to record which task produced which record (only the enumeration API needs it).
    enumerate: bool,
    /// Records of unhealthy tasks (`omitUnhealthy`), served only for a name and type that no
    /// other record covers.
    fallback: Vec<(u32, Value)>,
    /// Whether inserts currently go to `fallback`.
    to_fallback: bool,
    /// Each running task's own addresses with the number of its unique name
    /// (`reverseLookups` only).
    task_names: Vec<(IpAddr, u32)>,
    /// The number of each address's name (`reverseLookups`); `None` when it has more than one.
    reverse: FastMap<IpAddr, Option<u32>>,
    /// Static records outside the domain.
    outside: FastMap<Box<str>, OutsideHost>,
    /// When building one bucket of a group: which, of how many (see [`Group`]); names of
    /// other buckets are left out.
    route: Option<Route>,
}

/// One bucket of a group being built (see [`Group`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Route {
    /// The bucket built.
    pub(crate) bucket: usize,
    /// The group's number of buckets.
    pub(crate) buckets: usize,
}

impl Route {
    /// Whether `name` lies in the bucket built.
    #[inline]
    fn holds(&self, name: &str) -> bool {
        self.holds_label(bucket_label(name))
    }

    /// Whether the names whose [`bucket_label`] is `label` lie in the bucket built.
    #[inline]
    fn holds_label(&self, label: &str) -> bool {
        bucket_of(label, self.buckets) == self.bucket
    }
}

/// An IPv4-mapped IPv6 address as the IPv4 address it is (as records store it).
fn canonical_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

fn ip_to_value(ip: IpAddr) -> Value {
    match ip {
        IpAddr::V4(v4) => Value::A(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => Value::A(v4),
            None => Value::Aaaa(v6),
        },
    }
}

fn value_host(v: Value, names: &NameTable) -> (String, &'static str) {
    match v {
        Value::A(ip) => (ip.to_string(), "A"),
        Value::Aaaa(ip) => (ip.to_string(), "AAAA"),
        Value::Srv(t, port) => (format!("{}:{}", names.get(t), port), "SRV"),
    }
}

impl<'a> Builder<'a> {
    fn new(s: &'a RecordSettings, enumerate: bool) -> Self {
        Builder {
            s,
            names: NameTable::default(),
            records: Vec::new(),
            seen: FastSet::default(),
            eager: true,
            tail: format!(".{}.", s.domain),
            scratch: String::new(),
            scratch2: String::new(),
            enumerate,
            fallback: Vec::new(),
            to_fallback: false,
            task_names: Vec::new(),
            reverse: FastMap::default(),
            outside: FastMap::default(),
            route: None,
        }
    }

    fn intern(&mut self, name: &str) -> u32 {
        self.names.intern(name)
    }

    /// Adds a record unless the same one exists; returns whether it was added. Without `eager`
    /// it always says yes, and a duplicate is dropped when the snapshot is finished.
    fn insert(&mut self, name: &str, v: Value) -> bool {
        if self.route.is_some_and(|r| !r.holds(name)) {
            return false;
        }
        let n = self.intern(name);
        if self.to_fallback {
            self.fallback.push((n, v));
            return true;
        }
        if self.eager && !self.seen.insert((n, v)) {
            return false;
        }
        self.records.push((n, v));
        true
    }

    /// From here on, duplicates are dropped when the snapshot is finished rather than checked
    /// at each insert, unless enumerating (which reports each task's new records).
    fn defer_duplicates(&mut self) {
        if !self.enumerate {
            self.eager = false;
            self.seen = FastSet::default();
        }
    }

    fn insert_ip(&mut self, name: &str, ip: IpAddr) -> bool {
        self.insert(name, ip_to_value(ip))
    }

    fn insert_srv(&mut self, name: &str, target: &str, port: u16) -> bool {
        let t = self.intern(target);
        self.insert(name, Value::Srv(t, port))
    }

    fn insert_task(&mut self, name: &str, v: Value, records: &mut Vec<EnumRecord>) {
        if self.insert(name, v) && self.enumerate {
            let (host, rtype) = value_host(v, &self.names);
            records.push(EnumRecord {
                name: name.to_string(),
                host,
                rtype: rtype.to_string(),
            });
        }
    }

    fn framework_records(&mut self, frameworks: &[&Framework], hosts: &HostAddrs) {
        for f in frameworks {
            let (host, port) = f.host_port();
            let ips = host_to_ips(host, hosts);
            if ips.is_empty() {
                continue;
            }
            let a = format!("{}{}", self.s.spec.domain_frag(&f.name), self.tail);
            for ip in ips {
                self.insert_ip(&a, ip);
            }
            if let Some(port) = port {
                self.insert_srv(&format!("_framework._tcp.{a}"), &a, port);
            }
        }
    }

    fn slave_records(&mut self, state: &State, slave_ips: &AgentIps<'_>) {
        let a = format!("slave{}", self.tail);
        let srv = format!("_slave._tcp{}", self.tail);
        for slave in &state.slaves {
            let Some(pid) = &slave.pid else {
                continue;
            };
            let ips = slave_ips.get(slave.id.as_str()).map_or(&[][..], |v| v);
            for &ip in ips {
                self.insert_ip(&a, ip);
            }
            if !ips.is_empty() {
                self.insert_srv(&srv, &a, pid.port);
            }
            if self.s.agent_hostnames && slave.hostname.parse::<IpAddr>().is_err() {
                let frag = self.s.spec.domain_frag(&slave.hostname);
                if !frag.is_empty() {
                    let name = format!("{frag}.slave{}", self.tail);
                    for &ip in ips {
                        self.insert_ip(&name, ip);
                    }
                }
            }
        }
    }

    fn listener_records(&mut self) {
        let ns = self.s.ns_name.clone();
        for &ip in &self.s.ns_addrs {
            self.insert_ip(&ns, ip);
        }
    }

    /// The static records file's names: those in the domain become records of the zone, the
    /// others are answered beside it.
    fn static_records(&mut self) {
        let statics = self.s.static_records.clone();
        let apex = format!("{}.", self.s.domain);
        for entry in &statics.entries {
            for name in &entry.names {
                if *name == apex || name.ends_with(&self.tail) {
                    self.insert_ip(name, entry.addr);
                    continue;
                }
                let host = self.outside.entry(name.as_str().into()).or_default();
                match ip_to_value(entry.addr) {
                    Value::A(v4) if !host.a.contains(&v4) => host.a.push(v4),
                    Value::Aaaa(v6) if !host.aaaa.contains(&v6) => host.aaaa.push(v6),
                    _ => {}
                }
            }
        }
    }

    /// The reverse-lookup names: an agent's address names the agent (its registered
    /// hostname), a static record's address its first name, any other task address the
    /// task's unique name; an address with more than one such name gets none (forwarded).
    ///
    /// With `state`, the agents' and static records' addresses are included (the base shard
    /// or the only one); a group's shard passes `None` and gets only its tasks' addresses.
    fn reverse_records(&mut self, state: Option<&State>, slave_ips: &AgentIps<'_>) {
        let mut owners: Vec<(IpAddr, u32)> = Vec::new();
        for slave in state.iter().flat_map(|s| &s.slaves) {
            let host = slave.hostname.trim_end_matches('.').to_ascii_lowercase();
            let fqdn = format!("{host}.");
            if host.parse::<IpAddr>().is_ok() || !is_servable(&fqdn) {
                continue;
            }
            let n = self.intern(&fqdn);
            for &ip in slave_ips.get(slave.id.as_str()).into_iter().flatten() {
                owners.push((ip, n));
            }
        }
        let statics = self.s.static_records.clone();
        for entry in statics.entries.iter().filter(|_| state.is_some()) {
            owners.push((entry.addr, self.intern(&entry.names[0])));
        }
        let agents: FastSet<IpAddr> = slave_ips
            .values()
            .flatten()
            .map(|&ip| canonical_ip(ip))
            .collect();
        let tasks = std::mem::take(&mut self.task_names);
        owners.extend(
            tasks
                .into_iter()
                .filter(|(ip, _)| !agents.contains(&canonical_ip(*ip))),
        );
        // `None` marks an address with more than one name.
        let mut names: FastMap<IpAddr, Option<u32>> =
            FastMap::with_capacity_and_hasher(owners.len(), Default::default());
        for (ip, n) in owners {
            names
                .entry(canonical_ip(ip))
                .and_modify(|seen| {
                    if *seen != Some(n) {
                        *seen = None;
                    }
                })
                .or_insert(Some(n));
        }
        self.reverse = names;
    }

    fn master_records(&mut self, leader: &str) {
        let Some(leader_addr) = leader.split('@').nth(1) else {
            return;
        };
        let Some((ip, port)) =
            split_host_port(leader_addr).and_then(|(h, p)| Some((h.parse::<IpAddr>().ok()?, p)))
        else {
            return;
        };
        let leader_name = format!("leader{}", self.tail);
        let all = format!("master{}", self.tail);
        self.insert_ip(&leader_name, ip);
        self.insert_ip(&all, ip);
        self.insert_srv(&format!("_leader._tcp{}", self.tail), &leader_name, port);
        self.insert_srv(&format!("_leader._udp{}", self.tail), &leader_name, port);

        let mut added_leader = false;
        let mut idx = 0;
        for master in self.s.masters.clone() {
            let Some(mip) = split_host_port(&master).and_then(|(h, _)| h.parse::<IpAddr>().ok())
            else {
                continue;
            };
            let is_leader = master == leader_addr;
            if !is_leader && !self.insert_ip(&all, mip) {
                continue;
            }
            if is_leader && added_leader {
                continue;
            }
            self.insert_ip(&format!("master{idx}{}", self.tail), mip);
            idx += 1;
            if is_leader {
                added_leader = true;
            }
        }
        if !added_leader {
            self.insert_ip(&format!("master{idx}{}", self.tail), ip);
        }
    }

    /// The records of the running tasks of `frameworks` (with `only`, of the tasks it lists
    /// by index, per framework); returns the enumeration and the number of tasks counted
    /// (when building a bucket, those whose unique name lies in it).
    fn task_records(
        &mut self,
        frameworks: &[&Framework],
        only: Option<&[Vec<u32>]>,
        slave_ips: &AgentIps<'_>,
    ) -> (Enumeration, usize) {
        let mut enumeration = Enumeration::default();
        let mut count = 0;
        for (fi, f) in frameworks.iter().enumerate() {
            let mut ef = EnumFramework {
                tasks: Vec::new(),
                name: f.name.to_string(),
            };
            let fname = self.s.spec.domain_frag(&f.name);
            let listed = only.map(|o| o.get(fi).map_or(&[][..], |v| &v[..]));
            let tasks: Box<dyn Iterator<Item = &Arc<Task>>> = match listed {
                Some(indices) => Box::new(indices.iter().filter_map(|&i| f.tasks.get(i as usize))),
                None => Box::new(f.tasks.iter()),
            };
            for task in tasks {
                let Some(sips) = slave_ips.get(task.slave_id.as_str()) else {
                    continue;
                };
                if !task.is_running() {
                    continue;
                }
                let mut et = EnumTask {
                    name: task.name.to_string(),
                    id: task.id.to_string(),
                    records: Vec::new(),
                };
                // The enumeration lists every task's records, healthy or not.
                self.to_fallback = self.s.omit_unhealthy && !self.enumerate && task.is_unhealthy();
                let ctx = TaskContext {
                    task,
                    fname: &fname,
                    hash: task_hash(&task.id),
                    slave_tail: slave_id_tail(&task.slave_id),
                    task_ips: task_ips(task, &self.s.ip_sources, sips),
                    slave_ips: sips,
                };
                let (unique, label) = match task.named_discovery() {
                    Some(d) => {
                        // Mesos-DNS serves the raw discovery name as well as the sanitised
                        // one (its "legacy" names); names that no query can reach are dropped
                        // when the snapshot is finished. A raw name that is already its label
                        // would only repeat the same records, so it is generated once.
                        let label = self.s.spec.label_of(&d.name);
                        if *label != d.name {
                            self.task_context_records(&ctx, &d.name, &mut et.records);
                        }
                        let unique = self.task_context_records(&ctx, &label, &mut et.records);
                        (unique, label)
                    }
                    None => {
                        let label = self.s.spec.label_of(&task.name);
                        let unique = self.task_context_records(&ctx, &label, &mut et.records);
                        (unique, label)
                    }
                };
                // A task is counted, and its addresses named, where its unique name
                // (`label-HASH-AGENT`, whose bucket label is the label) lies.
                let owned = self.route.is_none_or(|r| r.holds_label(&label));
                if owned {
                    count += 1;
                    if self.s.reverse_lookups && !self.enumerate {
                        self.task_names
                            .extend(ctx.task_ips.iter().map(|&ip| (ip, unique)));
                    }
                }
                self.to_fallback = false;
                ef.tasks.push(et);
            }
            enumeration.frameworks.push(ef);
        }
        (enumeration, count)
    }

    /// The records of one task under one of its names; returns the number of the task's
    /// unique name (`task-HASH-AGENT.framework.domain.`).
    fn task_context_records(
        &mut self,
        ctx: &TaskContext<'_>,
        task_name: &str,
        recs: &mut Vec<EnumRecord>,
    ) -> u32 {
        // Names are laid out in two reused buffers rather than formatted one allocation each:
        // at 100,000 tasks that is millions of short-lived strings fewer per build.
        let tail = std::mem::take(&mut self.tail);
        let mut unique = std::mem::take(&mut self.scratch);
        let mut name = std::mem::take(&mut self.scratch2);
        let fname = ctx.fname;
        let set = |buf: &mut String, parts: &[&str]| {
            buf.clear();
            for p in parts {
                buf.push_str(p);
            }
        };
        // The task's unique name, `task-HASH-AGENT.framework`, then `suffix` and the domain.
        let canonical = |buf: &mut String, suffix: &str| {
            set(
                buf,
                &[
                    task_name,
                    "-",
                    &ctx.hash,
                    "-",
                    &ctx.slave_tail,
                    ".",
                    fname,
                    suffix,
                    &tail,
                ],
            )
        };
        canonical(&mut unique, "");
        let unique_idx = self.intern(&unique);

        for &ip in &ctx.task_ips {
            set(&mut name, &[task_name, ".", fname, &tail]);
            self.insert_task(&name, ip_to_value(ip), recs);
            self.insert_task(&unique, ip_to_value(ip), recs);
        }
        for &ip in ctx.slave_ips {
            set(&mut name, &[task_name, ".", fname, ".slave", &tail]);
            self.insert_task(&name, ip_to_value(ip), recs);
            canonical(&mut name, ".slave");
            self.insert_task(&name, ip_to_value(ip), recs);
        }

        let discovery = ctx.task.named_discovery();
        // The unique name under `.slave.`: the target of the resource ports' SRV records.
        canonical(&mut name, ".slave");
        let slave_target_idx = self.intern(&name);
        for port in ctx.task.resources.ports() {
            for proto in ["_tcp.", "_udp."] {
                set(
                    &mut name,
                    &["_", task_name, ".", proto, fname, ".slave", &tail],
                );
                self.insert_task(&name, Value::Srv(slave_target_idx, port), recs);
                if discovery.is_none() {
                    set(&mut name, &["_", task_name, ".", proto, fname, &tail]);
                    self.insert_task(&name, Value::Srv(slave_target_idx, port), recs);
                }
            }
        }

        if let Some(d) = discovery {
            for p in &d.ports.ports {
                let Ok(port) = u16::try_from(p.number) else {
                    continue;
                };
                let proto = self.s.spec.label(&p.protocol);
                let protos: &[&str] = if proto.is_empty() {
                    &["tcp", "udp"]
                } else {
                    &[proto.as_str()]
                };
                let port_label = (!p.name.is_empty()).then(|| self.s.spec.label(&p.name));
                for proto in protos {
                    let base = ["_", task_name, "._", proto, ".", fname, &tail];
                    set(&mut name, &base);
                    self.insert_task(&name, Value::Srv(unique_idx, port), recs);
                    if let Some(port_label) = &port_label {
                        set(&mut name, &["_", port_label, "."]);
                        for part in base {
                            name.push_str(part);
                        }
                        self.insert_task(&name, Value::Srv(unique_idx, port), recs);
                    }
                }
            }
        }
        self.tail = tail;
        self.scratch = unique;
        self.scratch2 = name;
        unique_idx
    }
}

struct TaskContext<'t> {
    task: &'t Task,
    fname: &'t str,
    hash: String,
    slave_tail: String,
    task_ips: Vec<IpAddr>,
    slave_ips: &'t [IpAddr],
}

/// Each agent's addresses by agent ID (none for an agent without a PID).
pub(crate) type AgentIps<'s> = HashMap<&'s str, Vec<IpAddr>, ahash::RandomState>;

/// The addresses of every agent in `state`, which its tasks' `.slave` names carry.
pub(crate) fn agent_ips<'s>(state: &'s State, hosts: &HostAddrs) -> AgentIps<'s> {
    state
        .slaves
        .iter()
        .map(|slave| {
            let ips = slave
                .pid
                .as_ref()
                .map(|pid| host_to_ips(&pid.host, hosts))
                .unwrap_or_default();
            (slave.id.as_str(), ips)
        })
        .collect()
}

/// The last dash-separated part of an agent ID, lowercase (`...-S3` -> `s3`).
fn slave_id_tail(id: &str) -> String {
    id.rsplit('-').next().unwrap_or("").to_ascii_lowercase()
}

/// An address literal, else the pre-resolved addresses of a hostname.
fn host_to_ips(host: &str, hosts: &HostAddrs) -> Vec<IpAddr> {
    if host.is_empty() {
        return Vec::new();
    }
    match host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => hosts.get(host).cloned().unwrap_or_default(),
    }
}

/// The task's addresses from the first source in `sources` that yields any.
fn task_ips(task: &Task, sources: &[IpSource], slave_ips: &[IpAddr]) -> Vec<IpAddr> {
    for src in sources {
        let ips: Vec<IpAddr> = match src {
            IpSource::Host => slave_ips.to_vec(),
            IpSource::NetInfo => netinfo_ips(task),
            IpSource::Docker => label_ips(task, DOCKER_IP_LABEL),
            IpSource::Mesos => label_ips(task, MESOS_IP_LABEL),
            IpSource::Routable => {
                let own = if task.is_port_mapped() {
                    Vec::new()
                } else {
                    netinfo_ips(task)
                };
                if own.is_empty() {
                    slave_ips.to_vec()
                } else {
                    own
                }
            }
        };
        if !ips.is_empty() {
            return ips;
        }
    }
    Vec::new()
}

/// The container addresses of the task's latest running status.
fn netinfo_ips(task: &Task) -> Vec<IpAddr> {
    task.latest_running_status()
        .map(|s| {
            s.container_status
                .network_infos
                .iter()
                .flat_map(|n| n.addresses())
                .filter_map(|a| a.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

fn label_ips(task: &Task, key: &str) -> Vec<IpAddr> {
    task.latest_running_status()
        .map(|s| {
            s.labels
                .iter()
                .filter(|l| l.key == key)
                .filter_map(|l| l.value.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// Whether a generated name can be queried: lowercase letters, digits, `-` and `_` in labels of
/// 1..=63 characters. Mesos-DNS lowercases query names before lookup, so names it stores with
/// other characters are unreachable there too.
fn is_servable(name: &str) -> bool {
    let Some(body) = name.strip_suffix('.') else {
        return false;
    };
    !body.is_empty()
        && name.len() <= 254
        && body.split('.').all(|l| {
            !l.is_empty()
                && l.len() <= 63
                && l.bytes()
                    .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-' || b == b'_')
        })
}

/// Whether `text` is a fully qualified name written plainly (no escapes), as answers write an
/// SRV target: labels of 1 to 63 bytes, a trailing dot, at most 255 bytes on the wire.
fn is_plain_name(text: &str) -> bool {
    let Some(body) = text.strip_suffix('.') else {
        return false;
    };
    !body.is_empty()
        && text.len() <= 254
        && !body.contains('\\')
        && body.split('.').all(|l| !l.is_empty() && l.len() <= 63)
}

fn parse_name(text: &str) -> Result<Name, BuildError> {
    Name::from_ascii(text).map_err(|_| BuildError::BadName(text.to_string()))
}

/// The domain name and SOA of the zone `settings` describe.
pub(crate) fn zone_names(
    settings: &RecordSettings,
    serial: u32,
) -> Result<(Name, Soa), BuildError> {
    let domain = parse_name(&format!("{}.", settings.domain))?;
    let soa = Soa {
        mname: parse_name(&settings.ns_name)?,
        rname: parse_name(&settings.soa_rname)?,
        serial,
        refresh: settings.soa_refresh,
        retry: settings.soa_retry,
        expire: settings.soa_expire,
        minimum: settings.soa_minttl,
    };
    Ok((domain, soa))
}

/// Which ancestors of its names a shard holds as empty non-terminals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Part {
    /// The base shard (or the only one): every ancestor up to and including the apex.
    Base,
    /// A group's shard: ancestors below `slave.<domain>` and below the apex; those two are
    /// the base shard's (`slave.<domain>` implied by [`Shard::below_slave`]).
    Group,
}

/// Every record of `state` in Mesos-DNS's generator order, as a single shard tagged with the
/// digest of its inputs.
pub(crate) fn generate_all(
    state: &State,
    settings: &RecordSettings,
    hosts: &HostAddrs,
    fingerprint: u64,
) -> Shard {
    let (builder, tasks, _) = generate(state, settings, hosts, false);
    finish(builder, tasks, Part::Base, fingerprint)
}

/// The base shard (agents, the name server, masters), tagged with the digest of its inputs.
pub(crate) fn generate_base(
    state: &State,
    settings: &RecordSettings,
    slave_ips: &AgentIps<'_>,
    fingerprint: u64,
) -> Shard {
    let mut b = Builder::new(settings, false);
    b.slave_records(state, slave_ips);
    b.listener_records();
    b.master_records(&state.leader);
    b.static_records();
    if settings.reverse_lookups {
        b.reverse_records(Some(state), slave_ips);
    }
    finish(b, 0, Part::Base, fingerprint)
}

/// One group's shard, or one bucket of a large group (see [`Group`]): the frameworks' own
/// records, then their tasks' (for a bucket, of the tasks it lists per framework by index,
/// and only the names that lie in it), tagged with the digest of its inputs.
pub(crate) fn generate_group(
    frameworks: &[&Framework],
    bucket: Option<(&[Vec<u32>], Route)>,
    settings: &RecordSettings,
    hosts: &HostAddrs,
    slave_ips: &AgentIps<'_>,
    fingerprint: u64,
) -> Shard {
    let mut b = Builder::new(settings, false);
    b.route = bucket.map(|(_, route)| route);
    b.framework_records(frameworks, hosts);
    b.defer_duplicates();
    let (_, tasks) = b.task_records(frameworks, bucket.map(|(members, _)| members), slave_ips);
    if settings.reverse_lookups {
        b.reverse_records(None, slave_ips);
    }
    finish(b, tasks, Part::Group, fingerprint)
}

/// The buckets, of `buckets`, that a running task's names lie in (see [`Group`]): where a
/// change of the task must be rebuilt. At most a few, into `out`, sorted, each once.
pub(crate) fn task_buckets(
    task: &Task,
    settings: &RecordSettings,
    buckets: usize,
    out: &mut Vec<usize>,
) {
    let named = task.named_discovery();
    out.clear();
    let label = settings
        .spec
        .label_of(named.map_or(task.name.as_str(), |d| d.name.as_str()));
    // A label's names: `label.fw`, `label-HASH-AGENT.fw`, `_label._tcp.fw`,
    // `_port._label._proto.fw`; the first lies with the label cut like a unique name.
    out.push(bucket_of(&label, buckets));
    out.push(bucket_of(bucket_label(&label), buckets));
    if let Some(d) = named.filter(|d| d.name != *label) {
        raw_name_buckets(d, settings, buckets, out);
    }
    out.sort_unstable();
    out.dedup();
}

/// The buckets of the names a raw DiscoveryInfo name (one that is not its own label) gives.
fn raw_name_buckets(
    d: &DiscoveryInfo,
    settings: &RecordSettings,
    buckets: usize,
    out: &mut Vec<usize>,
) {
    let raw = d.name.as_str();
    // A raw DiscoveryInfo name can hold dots and underscores: its names are laid out to
    // find their buckets, in the shapes the generator writes.
    let mut form = String::with_capacity(raw.len() + 16);
    let mut lies_in = |parts: &[&str]| {
        form.clear();
        parts.iter().for_each(|p| form.push_str(p));
        out.push(bucket_of(bucket_label(&form), buckets));
    };
    lies_in(&[raw, "."]);
    lies_in(&[raw, "-h-s."]);
    lies_in(&["_", raw, "._t."]);
    for p in d.ports.ports.iter().filter(|p| !p.name.is_empty()) {
        lies_in(&["_", &settings.spec.label_of(&p.name), "._", raw, "._p."]);
    }
}

/// Lists, per framework and task, the records each running task produced: the data of
/// Mesos-DNS's `/v1/enumerate`. Computed on demand, since snapshots don't keep it.
pub fn enumerate(state: &State, settings: &RecordSettings, hosts: &HostAddrs) -> Enumeration {
    generate(state, settings, hosts, true).2
}

fn generate<'a>(
    state: &State,
    settings: &'a RecordSettings,
    hosts: &HostAddrs,
    enumerate: bool,
) -> (Builder<'a>, usize, Enumeration) {
    let frameworks: Vec<&Framework> = state.frameworks.iter().collect();
    let slave_ips = agent_ips(state, hosts);
    let mut b = Builder::new(settings, enumerate);
    b.framework_records(&frameworks, hosts);
    b.slave_records(state, &slave_ips);
    b.listener_records();
    b.master_records(&state.leader);
    b.static_records();
    b.defer_duplicates();
    let (enumeration, tasks) = b.task_records(&frameworks, None, &slave_ips);
    if settings.reverse_lookups && !enumerate {
        b.reverse_records(Some(state), &slave_ips);
    }
    (b, tasks, enumeration)
}

/// One record as Mesos-DNS's zone transfer (`/v1/axfr`) lists it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ListedRecord {
    /// Name and IPv4 address.
    A(String, Ipv4Addr),
    /// Name and IPv6 address.
    Aaaa(String, Ipv6Addr),
    /// Name, target and port.
    Srv(String, String, u16),
}

/// Builds a snapshot from records listed by name (an existing Mesos-DNS's zone), instead of
/// from a Mesos state. Names must be lowercase with a trailing dot.
pub fn build_from_records(
    records: &[ListedRecord],
    settings: &RecordSettings,
    serial: u32,
) -> Result<Snapshot, BuildError> {
    let (domain, soa) = zone_names(settings, serial)?;
    let mut b = Builder::new(settings, false);
    b.defer_duplicates();
    for r in records {
        match r {
            ListedRecord::A(n, ip) => b.insert(n, Value::A(*ip)),
            ListedRecord::Aaaa(n, ip) => b.insert(n, Value::Aaaa(*ip)),
            ListedRecord::Srv(n, t, port) => b.insert_srv(n, t, *port),
        };
    }
    let shard = finish(b, 0, Part::Base, 0);
    Ok(super::shards::compose(
        settings,
        domain,
        soa,
        std::sync::Arc::new(shard),
        Default::default(),
    ))
}

/// The parent of a fully qualified name given as text (`a.b.` -> `b.`).
fn parent(name: &str) -> Option<&str> {
    name.find('.')
        .map(|i| &name[i + 1..])
        .filter(|p| !p.is_empty())
}

fn span(start: usize, len: usize) -> Span {
    Span {
        start: start as u32,
        len: len as u32,
    }
}

/// The records of one owner name, in insertion order, without duplicates (the first of each
/// kept, as Mesos-DNS's generator keeps it).
fn dedup_group(group: &[(u32, Value)], out: &mut Vec<Value>) {
    out.clear();
    if group.len() <= 32 {
        for &(_, v) in group {
            if !out.contains(&v) {
                out.push(v);
            }
        }
    } else {
        let mut seen = FastSet::default();
        out.extend(group.iter().map(|&(_, v)| v).filter(|&v| seen.insert(v)));
    }
}

/// Which of a name's record sets a value belongs to.
fn kind(v: &Value) -> u8 {
    match v {
        Value::A(_) => 0,
        Value::Aaaa(_) => 1,
        Value::Srv(..) => 2,
    }
}

/// Adds the records of unhealthy tasks for every name and type that healthy tasks (and the
/// rest of the cluster) left empty: health never empties an answer, it only narrows one.
fn merge_fallback(records: &mut Vec<(u32, Value)>, fallback: Vec<(u32, Value)>) {
    if fallback.is_empty() {
        return;
    }
    let covered: FastSet<(u32, u8)> = records.iter().map(|(n, v)| (*n, kind(v))).collect();
    records.extend(
        fallback
            .into_iter()
            .filter(|(n, v)| !covered.contains(&(*n, kind(v)))),
    );
}

fn finish(b: Builder<'_>, tasks: usize, part: Part, fingerprint: u64) -> Shard {
    let Builder {
        s: settings,
        names,
        mut records,
        tail,
        fallback,
        reverse,
        outside,
        route,
        ..
    } = b;
    merge_fallback(&mut records, fallback);
    let apex = format!("{}.", settings.domain);
    let slave = format!("slave{tail}");
    let in_zone = |n: &str| n == apex || n.ends_with(&tail);
    let mut stats = Stats {
        tasks,
        ..Stats::default()
    };

    // Owner names, in name-table order so the result is deterministic; a stable sort keeps
    // each name's records in insertion order.
    records.sort_by_key(|&(n, _)| n);
    let groups: Vec<&[(u32, Value)]> = records.chunk_by(|x, y| x.0 == y.0).collect();
    let mut index = NameTable::with_capacity(groups.len() + groups.len() / 2);
    let mut kept: Vec<&[(u32, Value)]> = Vec::with_capacity(groups.len());
    for group in groups {
        let text = names.get(group[0].0);
        // A servable name (checked label by label and in length) is always a valid `Name`.
        if !in_zone(text) || !is_servable(text) {
            stats.dropped_names += 1;
            continue;
        }
        index.intern(text);
        kept.push(group);
    }

    let mut spans = Vec::with_capacity(kept.len() + kept.len() / 2);
    let (mut a, mut aaaa, mut srv) = (Vec::new(), Vec::new(), Vec::new());
    let mut other_targets = NameTable::default();
    let mut target_idx: FastMap<u32, u32> = FastMap::default();
    let mut values = Vec::new();
    for group in &kept {
        dedup_group(group, &mut values);
        let (a_start, aaaa_start, srv_start) = (a.len(), aaaa.len(), srv.len());
        for &v in &values {
            match v {
                Value::A(ip) => a.push(ip),
                Value::Aaaa(ip) => aaaa.push(ip),
                Value::Srv(t, port) => {
                    let ti = match target_idx.get(&t) {
                        Some(&ti) => ti,
                        None => {
                            let text = names.get(t);
                            let ti = match index.find(text) {
                                Some(owner) => owner,
                                None if is_plain_name(text) => {
                                    other_targets.intern(text) | TARGET_OTHER
                                }
                                None => continue,
                            };
                            target_idx.insert(t, ti);
                            ti
                        }
                    };
                    srv.push(SrvRecord { target: ti, port });
                }
            }
        }
        spans.push(Spans {
            a: span(a_start, a.len() - a_start),
            aaaa: span(aaaa_start, aaaa.len() - aaaa_start),
            srv: span(srv_start, srv.len() - srv_start),
        });
    }
    stats.a = a.len();
    stats.aaaa = aaaa.len();
    stats.srv = srv.len();
    let owners: Vec<u32> = kept.iter().map(|g| g[0].0).collect();
    drop(kept);
    drop(records);

    // Empty non-terminals: every ancestor of a name, up to and including the apex, exists.
    // A group's shard leaves `slave.<domain>` and the apex to the base shard.
    // A bucket of a group keeps those that lie in it, and lists the others for its group.
    let mut below_slave = false;
    let mut foreign = NameTable::default();
    for &n in &owners {
        let mut cur = parent(names.get(n));
        while let Some(p) = cur.filter(|p| in_zone(p)) {
            if part == Part::Group && (p == apex || p == slave) {
                below_slave |= p == slave;
                break;
            }
            if index.find(p).is_some() || foreign.find(p).is_some() {
                break;
            }
            if route.is_some_and(|r| !r.holds(p)) {
                foreign.intern(p);
                cur = parent(p);
                continue;
            }
            index.intern(p);
            spans.push(Spans::default());
            cur = parent(p);
        }
    }
    if part == Part::Base && index.find(&apex).is_none() {
        index.intern(&apex);
        spans.push(Spans::default());
    }
    stats.names = spans.len();
    // Reverse names that are owner names (task instances, static names in the zone) are kept
    // as their number: a task's reverse name costs no second copy of the name.
    // A name in the zone that is not an owner name (dropped as unservable) names nothing.
    let mut reverse_hosts: Vec<Box<str>> = Vec::new();
    let reverse: FastMap<IpAddr, u32> = reverse
        .into_iter()
        .filter_map(|(ip, n)| {
            // Kept as a marker, so that another shard's name for it is not taken as the one.
            let Some(n) = n else {
                return Some((ip, PTR_MULTI));
            };
            let text = names.get(n);
            let target = match index.find(text) {
                Some(i) => i,
                None if in_zone(text) => return None,
                None => {
                    reverse_hosts.push(text.into());
                    (reverse_hosts.len() - 1) as u32 | PTR_HOST
                }
            };
            Some((ip, target))
        })
        .collect();
    reverse_hosts.shrink_to_fit();
    index.shrink_to_fit();
    spans.shrink_to_fit();
    a.shrink_to_fit();
    aaaa.shrink_to_fit();
    srv.shrink_to_fit();
    other_targets.shrink_to_fit();
    foreign.shrink_to_fit();

    Shard {
        names: index,
        spans,
        a,
        aaaa,
        srv,
        other_targets,
        stats,
        below_slave,
        fingerprint,
        reverse,
        reverse_hosts,
        outside,
        foreign_ents: foreign,
    }
}
