//! Snapshots split into shards, so that a change rebuilds only the shards it touches.
//!
//! A task starting or stopping changes the names of its framework and nothing else: the names
//! of a framework (`web.marathon.mesos`, `web.marathon.slave.mesos`, `_web._tcp.marathon.mesos`
//! ...) all end in the framework's label, and no other framework's or agent's name can end the
//! same way unless two frameworks share that label (they then share a shard). So a snapshot
//! keeps one shard per group of frameworks sharing their last label, plus a base shard for the
//! agents, masters and name server; an update compares each group's inputs with the digest
//! its shard was built from and rebuilds only the groups that changed. The base shard's
//! inputs (the agents, whose addresses every task's `.slave` names carry, the leader, the
//! resolved hostnames, the settings) are few; when they change, everything is rebuilt.
//!
//! The split is sound only while no group's label is also the last label of a base name (a
//! framework named `slave`, `leader` or `master`): such a state is built as one shard in
//! Mesos-DNS's generator order, exactly as it would be without shards.
//!
//! A large group (more than twice [`RecordSettings::tasks_per_bucket`] tasks, one Marathon
//! running 100,000 tasks say) is split further into buckets by the label its names start
//! with (see [`Group`]), each with the digest of the tasks whose names lie in it: a task
//! event rebuilds a bucket or two of about a thousand tasks. What an update learns of each
//! task (its digest and buckets) is kept with the group, and a task the next state shares
//! unchanged (the event stream's states share all but the changed tasks) is not hashed again.

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::SystemTime;

use hickory_proto::rr::Name;

use super::generator::{
    agent_ips, generate_all, generate_base, generate_group, task_buckets, zone_names, AgentIps,
    Route,
};
use super::names::NameTable;
use super::snapshot::{
    group_keys, last_label, Group, Groups, SeenTask, Shard, Snapshot, Soa, Stats,
};
use super::{BuildError, HostAddrs, RecordSettings};
use crate::mesos::model::{Framework, State, Task};
use compact_str::CompactString;

/// Builds a snapshot of `state`. `hosts` holds the addresses of the hostnames in the state;
/// `serial` is the SOA serial to publish.
pub fn build(
    state: &State,
    settings: &RecordSettings,
    hosts: &HostAddrs,
    serial: u32,
) -> Result<Snapshot, BuildError> {
    Ok(generate_records(state, settings, hosts, serial)?.finish())
}

/// Generates the records of `state` from scratch (see [`build`]).
pub fn generate_records<'a>(
    state: &State,
    settings: &'a RecordSettings,
    hosts: &HostAddrs,
    serial: u32,
) -> Result<Generated<'a>, BuildError> {
    update(None, state, settings, hosts, serial)
}

/// Generates the records of `state`, reusing every shard of `previous` (built with the same
/// settings) whose inputs did not change.
pub fn update<'a>(
    previous: Option<&Snapshot>,
    state: &State,
    settings: &'a RecordSettings,
    hosts: &HostAddrs,
    serial: u32,
) -> Result<Generated<'a>, BuildError> {
    let (domain, soa) = zone_names(settings, serial)?;
    let previous = previous.filter(|p| p.sharded);
    let base_print = base_fingerprint(state, settings, hosts);
    let slave_ips = agent_ips(state, hosts);
    let (base, base_rebuilt) = match previous {
        Some(p) if p.base.fingerprint == base_print => (p.base.clone(), false),
        _ => (
            Arc::new(generate_base(state, settings, &slave_ips, base_print)),
            true,
        ),
    };
    let groups = group_frameworks(state, settings);
    let reserved = base_labels(&base, settings);
    if groups
        .iter()
        .any(|(key, _)| reserved.contains(key.as_str()))
    {
        return Ok(Generated {
            settings,
            domain,
            soa,
            base: Part::New(Arc::new(generate_all(state, settings, hosts, 0))),
            base_rebuilt: true,
            groups: Vec::new(),
            sharded: false,
        });
    }
    let groups = groups
        .into_iter()
        .map(|(key, frameworks)| {
            let kept = previous.and_then(|p| p.groups.get(key.as_str()));
            let tasks = frameworks.iter().map(|f| f.tasks.len()).sum();
            let buckets = bucket_count(
                tasks,
                settings.tasks_per_bucket,
                kept.map(|g| g.buckets.len()),
            );
            let part = if buckets == 1 {
                let print = group_fingerprint(base_print, &frameworks);
                match kept.filter(|g| g.buckets.len() == 1 && g.buckets[0].fingerprint == print) {
                    Some(group) => GroupPart::Kept(group.clone()),
                    None => GroupPart::single(Arc::new(generate_group(
                        &frameworks,
                        None,
                        settings,
                        hosts,
                        &slave_ips,
                        print,
                    ))),
                }
            } else {
                let input = BucketInput {
                    frameworks: &frameworks,
                    settings,
                    hosts,
                    slave_ips: &slave_ips,
                    base_print,
                };
                bucketed(
                    &input,
                    buckets,
                    kept.map(|g| &**g).filter(|g| g.buckets.len() == buckets),
                )
            };
            (key.into_boxed_str(), part)
        })
        .collect();
    Ok(Generated {
        settings,
        domain,
        soa,
        base: Part::Kept(base),
        base_rebuilt,
        groups,
        sharded: true,
    })
}

/// The most buckets a group is split into.
const MAX_BUCKETS: usize = 1024;

/// How many buckets a group of `tasks` tasks is split into (see [`Group`]): one below twice
/// `per_bucket` tasks, else a power of two; `previous`, the count the group had, is kept
/// while within a factor of two, so a growing or shrinking group is not rebuilt whole at
/// every step.
fn bucket_count(tasks: usize, per_bucket: usize, previous: Option<usize>) -> usize {
    let per_bucket = per_bucket.max(1);
    if tasks < 2 * per_bucket {
        return 1;
    }
    let want = (tasks / per_bucket).next_power_of_two().min(MAX_BUCKETS);
    match previous {
        Some(p) if p > 1 && want <= p * 2 && want * 2 >= p => p,
        _ => want,
    }
}

/// What a group's buckets are made from.
struct BucketInput<'i, 's> {
    frameworks: &'i [&'s Framework],
    settings: &'i RecordSettings,
    hosts: &'i HostAddrs,
    slave_ips: &'i AgentIps<'s>,
    base_print: u64,
}

/// A large group's buckets: each bucket's digest covers the group's frameworks (without
/// their tasks) and the tasks whose names lie in it, so only the buckets of changed tasks
/// are rebuilt; the others are kept from `kept` (the group as it was, with as many buckets).
fn bucketed(input: &BucketInput<'_, '_>, buckets: usize, kept: Option<&Group>) -> GroupPart {
    let frameworks = input.frameworks;
    let seen_key = {
        let mut h = hasher();
        (input.base_print, buckets).hash(&mut h);
        h.finish()
    };
    let mut meta = hasher();
    seen_key.hash(&mut meta);
    for f in frameworks {
        (&f.id, &f.name, &f.pid, &f.hostname).hash(&mut meta);
    }
    let meta = meta.finish();
    let mut prints: Vec<_> = (0..buckets)
        .map(|_| {
            let mut h = hasher();
            meta.hash(&mut h);
            h
        })
        .collect();
    let mut members: Vec<Vec<Vec<u32>>> = vec![vec![Vec::new(); frameworks.len()]; buckets];
    let before = kept.filter(|g| g.seen_key == seen_key);
    let mut seen = Vec::with_capacity(frameworks.len());
    let mut lying_in = Vec::new();
    for (fi, f) in frameworks.iter().enumerate() {
        let was: &[SeenTask] = before
            .and_then(|g| g.seen.iter().find(|(id, _)| *id == f.id))
            .map_or(&[], |(_, tasks)| tasks);
        let mut cursor = 0;
        let mut now = Vec::with_capacity(f.tasks.len());
        for (ti, task) in f.tasks.iter().enumerate() {
            let entry = match unchanged(was, &mut cursor, task) {
                Some(seen) => {
                    seen.buckets_into(task, input.settings, buckets, &mut lying_in);
                    seen.clone()
                }
                None => seen_task(task, input.settings, buckets, &mut lying_in),
            };
            // The tasks the generator gives names to, and no others.
            if task.is_running() && input.slave_ips.contains_key(task.slave_id.as_str()) {
                for &b in &lying_in {
                    (fi, entry.digest).hash(&mut prints[b]);
                    members[b][fi].push(ti as u32);
                }
            }
            now.push(entry);
        }
        seen.push((f.id.clone(), now));
    }
    let parts: Vec<Part> = prints
        .into_iter()
        .zip(members)
        .enumerate()
        .map(|(bucket, (print, members))| {
            let print = print.finish();
            match kept
                .map(|g| &g.buckets[bucket])
                .filter(|b| b.fingerprint == print)
            {
                Some(shard) => Part::Kept(shard.clone()),
                None => Part::New(Arc::new(generate_group(
                    frameworks,
                    Some((&members, Route { bucket, buckets })),
                    input.settings,
                    input.hosts,
                    input.slave_ips,
                    print,
                ))),
            }
        })
        .collect();
    GroupPart::New {
        parts,
        seen,
        seen_key,
    }
}

/// The entry of `task` in `was` (a framework's tasks as last seen) if it is the very task
/// seen then. `cursor` walks `was` along the state's tasks: in ID order (the event stream's)
/// each is found where the cursor stands, past the tasks removed since.
fn unchanged<'w>(
    was: &'w [SeenTask],
    cursor: &mut usize,
    task: &Arc<Task>,
) -> Option<&'w SeenTask> {
    while let Some(s) = was.get(*cursor) {
        if Arc::ptr_eq(&s.task, task) {
            *cursor += 1;
            return Some(s);
        }
        match s.task.id.cmp(&task.id) {
            std::cmp::Ordering::Less => *cursor += 1,
            std::cmp::Ordering::Equal => {
                *cursor += 1;
                return None;
            }
            std::cmp::Ordering::Greater => return None,
        }
    }
    None
}

impl SeenTask {
    /// The buckets the task's names lie in, into `out`: as kept, or worked out again when
    /// there were more than two.
    fn buckets_into(
        &self,
        task: &Task,
        settings: &RecordSettings,
        buckets: usize,
        out: &mut Vec<usize>,
    ) {
        if self.buckets[0] == SeenTask::UNKNOWN {
            task_buckets(task, settings, buckets, out);
        } else {
            out.clear();
            out.push(usize::from(self.buckets[0]));
            if self.buckets[1] != self.buckets[0] {
                out.push(usize::from(self.buckets[1]));
            }
        }
    }
}

/// A task's digest and buckets, worked out; its buckets are also left in `lying_in`.
fn seen_task(
    task: &Arc<Task>,
    settings: &RecordSettings,
    buckets: usize,
    lying_in: &mut Vec<usize>,
) -> SeenTask {
    let mut h = hasher();
    task.hash(&mut h);
    task_buckets(task, settings, buckets, lying_in);
    let as_u16 = |b: usize| u16::try_from(b).unwrap_or(SeenTask::UNKNOWN);
    let kept = match lying_in[..] {
        [one] => [as_u16(one); 2],
        [first, second] => [as_u16(first), as_u16(second)],
        _ => [SeenTask::UNKNOWN; 2],
    };
    SeenTask {
        task: task.clone(),
        digest: h.finish(),
        buckets: kept,
    }
}

/// A group kept whole from the previous snapshot, or its shards, each kept or built anew,
/// with the tasks they were built from (for a group in buckets).
enum GroupPart {
    Kept(Arc<Group>),
    New {
        parts: Vec<Part>,
        seen: Vec<(CompactString, Vec<SeenTask>)>,
        seen_key: u64,
    },
}

impl GroupPart {
    fn single(shard: Arc<Shard>) -> GroupPart {
        GroupPart::New {
            parts: vec![Part::New(shard)],
            seen: Vec::new(),
            seen_key: 0,
        }
    }

    /// How many of its shards are built anew.
    fn rebuilt(&self) -> usize {
        match self {
            GroupPart::Kept(_) => 0,
            GroupPart::New { parts, .. } => {
                parts.iter().filter(|p| matches!(p, Part::New(_))).count()
            }
        }
    }

    /// The group, with the empty non-terminals that its buckets leave to each other.
    fn group(self) -> Arc<Group> {
        let (parts, seen, seen_key) = match self {
            GroupPart::Kept(group) => return group,
            GroupPart::New {
                parts,
                seen,
                seen_key,
            } => (parts, seen, seen_key),
        };
        let mut group = Group {
            buckets: parts.into_iter().map(Part::shard).collect(),
            ents: NameTable::default(),
            seen,
            seen_key,
        };
        if group.buckets.len() > 1 {
            let mut ents = NameTable::default();
            for b in group.buckets.iter() {
                for (_, name) in b.foreign_ents.iter() {
                    if group.find(name).is_none() {
                        ents.intern(name);
                    }
                }
            }
            ents.shrink_to_fit();
            group.ents = ents;
        }
        Arc::new(group)
    }
}

/// A shard kept from the previous snapshot, or built anew.
enum Part {
    Kept(Arc<Shard>),
    New(Arc<Shard>),
}

impl Part {
    fn shard(self) -> Arc<Shard> {
        match self {
            Part::Kept(shard) | Part::New(shard) => shard,
        }
    }
}

/// The shards of a state, built or kept, not yet put together as a snapshot: the first half
/// of [`build`]. Each shard is finished as soon as its records are generated, so the working
/// set of a build is one group's, not the whole cluster's.
pub struct Generated<'a> {
    settings: &'a RecordSettings,
    domain: Name,
    soa: Soa,
    base: Part,
    base_rebuilt: bool,
    groups: Vec<(Box<str>, GroupPart)>,
    sharded: bool,
}

impl Generated<'_> {
    /// How many shards are rebuilt rather than kept from the previous snapshot.
    pub fn rebuilt(&self) -> usize {
        usize::from(self.base_rebuilt) + self.groups.iter().map(|(_, g)| g.rebuilt()).sum::<usize>()
    }

    /// The snapshot of the generated records.
    pub fn finish(self) -> Snapshot {
        let base = self.base.shard();
        let groups: Groups = self
            .groups
            .into_iter()
            .map(|(key, part)| (key, part.group()))
            .collect();
        let mut snapshot = compose(self.settings, self.domain, self.soa, base, groups);
        snapshot.sharded = self.sharded;
        snapshot
    }
}

/// A snapshot of the given shards.
pub(crate) fn compose(
    settings: &RecordSettings,
    domain: Name,
    soa: Soa,
    base: Arc<Shard>,
    groups: Groups,
) -> Snapshot {
    let tail: Box<str> = format!(".{}.", settings.domain).into();
    let slave_name: Box<str> = format!("slave{tail}").into();
    let group_shards = || groups.values().flat_map(|g| g.buckets.iter());
    let implied_slave = group_shards().any(|g| g.below_slave) && base.find(&slave_name).is_none();
    let mut stats = Stats::default();
    for shard in std::iter::once(&base).chain(group_shards()) {
        let s = &shard.stats;
        stats.names += s.names;
        stats.a += s.a;
        stats.aaaa += s.aaaa;
        stats.srv += s.srv;
        stats.tasks += s.tasks;
        stats.dropped_names += s.dropped_names;
    }
    stats.names +=
        usize::from(implied_slave) + groups.values().map(|g| g.ents.len()).sum::<usize>();
    let has_reverse = !base.reverse.is_empty() || group_shards().any(|g| !g.reverse.is_empty());
    Snapshot {
        ns: soa.mname.clone(),
        domain,
        ttl: settings.ttl,
        srv_weight: settings.srv_weight,
        soa,
        built_at: SystemTime::now(),
        stats,
        tail,
        base,
        groups,
        implied_slave,
        slave_name,
        sharded: false,
        has_reverse,
    }
}

/// The state's frameworks grouped by the last label of their names, groups in the order of
/// their first framework, frameworks in state order.
fn group_frameworks<'s>(
    state: &'s State,
    settings: &RecordSettings,
) -> Vec<(String, Vec<&'s Framework>)> {
    let mut groups: Vec<(String, Vec<&Framework>)> = Vec::new();
    let mut index: HashMap<String, usize> = HashMap::new();
    for f in &state.frameworks {
        let frag = settings.spec.domain_frag(&f.name);
        let key = last_label(&frag).to_string();
        match index.get(&key) {
            Some(&i) => groups[i].1.push(f),
            None => {
                index.insert(key.clone(), groups.len());
                groups.push((key, vec![f]));
            }
        }
    }
    groups
}

/// The group keys the base shard's names below the apex would be looked up under (agent
/// hostnames and static names can lie anywhere), and `slave` (whose subtree the groups'
/// `.slave` names share): no group may use one of them.
fn base_labels<'b>(base: &'b Shard, settings: &RecordSettings) -> HashSet<&'b str> {
    let tail = format!(".{}.", settings.domain);
    let mut labels = HashSet::from(["slave"]);
    for (name, _) in base.names() {
        if let Some(rest) = name.strip_suffix(&tail) {
            let (last, under_slave) = group_keys(rest);
            labels.extend(std::iter::once(last).chain(under_slave));
        }
    }
    labels
}

/// A hasher with fixed keys, so digests compare across snapshots.
fn hasher() -> impl Hasher {
    ahash::RandomState::with_seeds(0x6d65, 0x736f, 0x7364, 0x6e73).build_hasher()
}

/// Digest of what the base shard, and every task's agent addresses, are made from.
fn base_fingerprint(state: &State, settings: &RecordSettings, hosts: &HostAddrs) -> u64 {
    let mut h = hasher();
    state.leader.hash(&mut h);
    state.slaves.hash(&mut h);
    let mut hosts: Vec<_> = hosts.iter().collect();
    hosts.sort_unstable_by(|a, b| a.0.cmp(b.0));
    hosts.hash(&mut h);
    format!("{settings:?}").hash(&mut h);
    h.finish()
}

/// Digest of what a group's shard is made from: its frameworks, and the base's inputs.
fn group_fingerprint(base: u64, frameworks: &[&Framework]) -> u64 {
    let mut h = hasher();
    base.hash(&mut h);
    frameworks.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use serde_json::{json, Value};

    use super::*;
    use crate::config::{Config, IpSource};
    use crate::mesos::synthetic::uniform_state_value;
    use crate::records::generator::TASKS_PER_BUCKET;

    fn settings(sources: &[IpSource]) -> RecordSettings {
        settings_with(sources, false)
    }

    /// With `extras`, every opt-in record feature on (health, agent hostnames).
    fn settings_with(sources: &[IpSource], extras: bool) -> RecordSettings {
        let c = Config {
            omit_unhealthy: extras,
            agent_hostnames: extras,
            ip_sources: sources.to_vec(),
            masters: vec!["10.40.0.2:5050".into(), "10.40.0.3:5050".into()],
            ..Config::default()
        };
        RecordSettings::from_config(&c, vec!["127.0.0.1".parse().unwrap()])
    }

    fn hosts() -> HostAddrs {
        let mut h = HostAddrs::new();
        h.insert("localhost".into(), vec!["127.0.0.1".parse().unwrap()]);
        h
    }

    fn fixture() -> Value {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cluster.json");
        serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
    }

    fn state(v: &Value) -> State {
        State::from_json(&serde_json::to_vec(v).unwrap()).unwrap()
    }

    /// The snapshot as one shard in Mesos-DNS's generator order: what sharding must equal.
    fn single(state: &State, settings: &RecordSettings) -> Snapshot {
        let (domain, soa) = zone_names(settings, 1).unwrap();
        let shard = generate_all(state, settings, &hosts(), 0);
        compose(settings, domain, soa, Arc::new(shard), Groups::default())
    }

    /// Every name with its records in stored order and, for SRV records, the addresses the
    /// additional section carries: sharding must change none of it.
    fn dump(s: &Snapshot) -> Vec<String> {
        let mut out: Vec<String> = s
            .names()
            .map(|(n, e)| {
                let mut line = format!("{n}:");
                for ip in e.a {
                    line += &format!(" A {ip}");
                }
                for ip in e.aaaa {
                    line += &format!(" AAAA {ip}");
                }
                for r in e.srv {
                    let t = e.target(r);
                    line += &format!(" SRV {}:{}", t.name, r.port);
                    if let Some(te) = s.target_entry(&e, &t) {
                        line += &format!(" (+{:?} {:?})", te.a, te.aaaa);
                    }
                }
                line
            })
            .collect();
        out.sort();
        for (n, _) in s.names() {
            assert!(s.lookup(n).is_some(), "{n} listed but not found");
        }
        out
    }

    fn assert_same(sharded: &Snapshot, state: &State, settings: &RecordSettings) {
        let expected = single(state, settings);
        assert_eq!(dump(sharded), dump(&expected));
        assert_eq!(sharded.stats, expected.stats);
        let mut addresses: Vec<std::net::IpAddr> = Vec::new();
        for (_, e) in expected.names() {
            addresses.extend(e.a.iter().map(|&ip| std::net::IpAddr::V4(ip)));
            addresses.extend(e.aaaa.iter().map(|&ip| std::net::IpAddr::V6(ip)));
        }
        for ip in addresses {
            let key = super::super::snapshot::reverse_name(ip);
            assert_eq!(sharded.ptr(&key), expected.ptr(&key), "PTR of {ip}");
        }
    }

    /// Tasks whose names stress the buckets: labels with hyphens (cut like unique names),
    /// raw DiscoveryInfo names with dots, underscores and capitals, a task named like the
    /// framework's own SRV name, and a named port on every task.
    fn awkward(doc: &mut Value) {
        let names = [
            ("a-b-c", None),
            ("web-6lw9f-s1", None),
            ("framework", None),
            ("x", Some("My.App")),
            ("y", Some("_svc._x")),
            ("z", Some("a.b-c-d")),
            ("w", Some("Web_Front")),
        ];
        let tasks = doc["frameworks"][0]["tasks"].as_array_mut().unwrap();
        for (task, (name, discovery)) in tasks.iter_mut().zip(names) {
            task["name"] = json!(name);
            task["discovery"]["name"] = json!(discovery.unwrap_or(name));
        }
    }

    /// Settings with buckets of about ten tasks, and a cluster of `tasks` tasks over
    /// `frameworks` frameworks and 20 agents, its first tasks with [`awkward`] names.
    fn awkward_in_buckets(tasks: usize, frameworks: usize) -> (RecordSettings, Value) {
        let mut s = settings(&[IpSource::NetInfo, IpSource::Host]);
        s.tasks_per_bucket = 10;
        let mut doc = uniform_state_value(tasks, frameworks, 20, "first");
        awkward(&mut doc);
        (s, doc)
    }

    /// Split into group shards, and their groups into buckets (as few as one task each), the
    /// snapshot holds the same names, records, additional addresses, counts and PTR answers
    /// as one shard.
    #[test]
    fn shards_and_buckets_hold_exactly_the_single_shard_records() {
        for (sources, extras) in [
            (
                vec![IpSource::NetInfo, IpSource::Mesos, IpSource::Host],
                false,
            ),
            (vec![IpSource::Host], false),
            (vec![IpSource::Docker, IpSource::Host], false),
            (vec![IpSource::Routable, IpSource::Host], true),
        ] {
            for per_bucket in [TASKS_PER_BUCKET, 1, 3, 40] {
                let mut s = settings_with(&sources, extras);
                s.tasks_per_bucket = per_bucket;
                let mut awkward_doc = uniform_state_value(300, 3, 7, "renamed");
                awkward(&mut awkward_doc);
                let plain_doc = uniform_state_value(300, 4, 7, "renamed");
                for doc in [fixture(), plain_doc, awkward_doc] {
                    let st = state(&doc);
                    let built = build(&st, &s, &hosts(), 1).unwrap();
                    assert!(built.sharded && !built.groups.is_empty());
                    if per_bucket == 1 {
                        assert!(built.groups.values().any(|g| g.buckets.len() > 1));
                    }
                    assert_same(&built, &st, &s);
                }
            }
        }
    }

    /// A task change in a bucketed group rebuilds the buckets its old and new names lie in,
    /// and the result is what a full build gives.
    #[test]
    fn a_changed_task_rebuilds_its_buckets_alone() {
        let (s, mut doc) = awkward_in_buckets(1000, 1);
        let before = build(&state(&doc), &s, &hosts(), 1).unwrap();
        let buckets = before.groups["framework-0"].buckets.len();
        assert!(buckets >= 64, "{buckets} buckets");

        let steps: [&dyn Fn(&mut Value); 3] = [
            &|d| d["frameworks"][0]["tasks"][500]["discovery"]["name"] = json!("second"),
            &|d| d["frameworks"][0]["tasks"][600]["state"] = json!("TASK_FINISHED"),
            &|d| {
                let mut t = d["frameworks"][0]["tasks"][10].clone();
                t["id"] = json!("new-task.1");
                t["name"] = json!("z-new");
                t["discovery"]["name"] = json!("z-new");
                d["frameworks"][0]["tasks"].as_array_mut().unwrap().push(t);
            },
        ];
        let mut prev = before;
        for (i, step) in steps.iter().enumerate() {
            step(&mut doc);
            let st = state(&doc);
            let generated = update(Some(&prev), &st, &s, &hosts(), 2 + i as u32).unwrap();
            let rebuilt = generated.rebuilt();
            assert!((1..=4).contains(&rebuilt), "step {i}: {rebuilt} rebuilt");
            let next = generated.finish();
            assert_same(&next, &st, &s);
            assert_eq!(next.groups["framework-0"].buckets.len(), buckets);
            prev = next;
        }
        assert!(prev.lookup("z-new.framework-0.mesos.").is_some());
        assert!(prev.lookup("second.framework-0.mesos.").is_some());
    }

    /// States that share their unchanged tasks with the last one (as the event stream's do)
    /// reuse what was worked out about those tasks, and still give what a full build gives:
    /// a task changed (copied on write), removed, or added.
    #[test]
    fn tasks_shared_with_the_last_state_are_taken_as_seen() {
        let (s, doc) = awkward_in_buckets(600, 2);
        let mut st = state(&doc);
        let mut prev = build(&st, &s, &hosts(), 1).unwrap();
        let changes: [&dyn Fn(&mut State); 3] = [
            &|st| {
                let t = Arc::make_mut(&mut st.frameworks[0].tasks[100]);
                t.name = "changed".into();
                t.discovery = None;
            },
            &|st| {
                st.frameworks[1].tasks.remove(7);
            },
            &|st| {
                let mut t = (*st.frameworks[0].tasks[3]).clone();
                t.id = "zzz-new-task".into();
                t.name = "added".into();
                t.discovery = None;
                st.frameworks[0].tasks.push(Arc::new(t));
            },
        ];
        for (i, change) in changes.iter().enumerate() {
            let mut next = st.clone();
            change(&mut next);
            let generated = update(Some(&prev), &next, &s, &hosts(), 2 + i as u32).unwrap();
            assert!((1..=4).contains(&generated.rebuilt()), "change {i}");
            let snap = generated.finish();
            assert_same(&snap, &next, &s);
            prev = snap;
            st = next;
        }
        assert!(prev.lookup("changed.framework-0.mesos.").is_some());
        assert!(prev.lookup("added.framework-0.mesos.").is_some());
    }

    #[test]
    fn a_changed_framework_rebuilds_its_group_alone() {
        let s = settings(&[IpSource::NetInfo, IpSource::Host]);
        let mut doc = uniform_state_value(200, 4, 5, "first");
        let before = build(&state(&doc), &s, &hosts(), 1).unwrap();

        doc["frameworks"][0]["tasks"][0]["name"] = json!("second");
        doc["frameworks"][0]["tasks"][0]["discovery"]["name"] = json!("second");
        let st = state(&doc);
        let generated = update(Some(&before), &st, &s, &hosts(), 2).unwrap();
        assert_eq!(generated.rebuilt(), 1);
        let after = generated.finish();
        assert_same(&after, &st, &s);
        assert!(after.lookup("second.framework-0.mesos.").is_some());
        assert!(after.lookup("first.framework-0.mesos.").is_none());
        assert!(Arc::ptr_eq(&before.base, &after.base));
        for key in ["framework-1", "framework-2", "framework-3"] {
            assert!(Arc::ptr_eq(&before.groups[key], &after.groups[key]));
        }
        assert!(!Arc::ptr_eq(
            &before.groups["framework-0"],
            &after.groups["framework-0"]
        ));

        // Unchanged: nothing rebuilt.
        assert_eq!(
            update(Some(&after), &st, &s, &hosts(), 3)
                .unwrap()
                .rebuilt(),
            0
        );
    }

    #[test]
    fn a_changed_agent_rebuilds_everything() {
        let s = settings(&[IpSource::Host]);
        let mut doc = uniform_state_value(100, 3, 4, "x");
        let before = build(&state(&doc), &s, &hosts(), 1).unwrap();
        doc["slaves"][1]["pid"] = json!("slave(1)@10.9.9.9:5051");
        let st = state(&doc);
        let generated = update(Some(&before), &st, &s, &hosts(), 2).unwrap();
        assert_eq!(generated.rebuilt(), 4);
        assert_same(&generated.finish(), &st, &s);
    }

    #[test]
    fn frameworks_named_like_base_names_share_one_shard() {
        let s = settings(&[IpSource::NetInfo, IpSource::Host]);
        for name in ["slave", "leader", "master", "master0", "ns1", "x.slave"] {
            let mut doc = uniform_state_value(40, 3, 3, "web");
            doc["frameworks"][1]["name"] = json!(name);
            let st = state(&doc);
            let built = build(&st, &s, &hosts(), 1).unwrap();
            assert!(!built.sharded, "{name}");
            assert_same(&built, &st, &s);
            // And from a sharded predecessor.
            let prev = build(
                &state(&uniform_state_value(40, 3, 3, "web")),
                &s,
                &hosts(),
                1,
            )
            .unwrap();
            let next = update(Some(&prev), &st, &s, &hosts(), 2).unwrap().finish();
            assert_same(&next, &st, &s);
        }
    }

    #[test]
    fn slave_subtree_exists_when_only_groups_have_names_in_it() {
        let s = settings(&[IpSource::NetInfo, IpSource::Host]);
        let mut doc = uniform_state_value(10, 2, 2, "web");
        for agent in doc["slaves"].as_array_mut().unwrap() {
            agent.as_object_mut().unwrap().remove("pid");
        }
        let st = state(&doc);
        let built = build(&st, &s, &hosts(), 1).unwrap();
        assert!(built.sharded);
        let slave = built.lookup("slave.mesos.").expect("slave.mesos. exists");
        assert!(slave.is_empty());
        assert_same(&built, &st, &s);
    }
}
