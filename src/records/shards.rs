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

use std::collections::{HashMap, HashSet};
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::Arc;
use std::time::SystemTime;

use hickory_proto::rr::Name;

use super::generator::{agent_ips, generate_all, generate_base, generate_group, zone_names};
use super::snapshot::{group_keys, Groups, Shard, Snapshot, Soa, Stats};
use super::{BuildError, HostAddrs, RecordSettings};
use crate::mesos::model::{Framework, State};

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
            let print = group_fingerprint(base_print, &frameworks);
            let kept = previous
                .and_then(|p| p.groups.get(key.as_str()))
                .filter(|g| g.fingerprint == print);
            let part = match kept {
                Some(shard) => Part::Kept(shard.clone()),
                None => Part::New(Arc::new(generate_group(
                    &frameworks,
                    settings,
                    hosts,
                    &slave_ips,
                    print,
                ))),
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
    groups: Vec<(Box<str>, Part)>,
    sharded: bool,
}

impl Generated<'_> {
    /// How many shards are rebuilt rather than kept from the previous snapshot.
    pub fn rebuilt(&self) -> usize {
        usize::from(self.base_rebuilt)
            + self
                .groups
                .iter()
                .filter(|(_, p)| matches!(p, Part::New(_)))
                .count()
    }

    /// The snapshot of the generated records.
    pub fn finish(self) -> Snapshot {
        let base = self.base.shard();
        let groups: Groups = self
            .groups
            .into_iter()
            .map(|(key, part)| (key, part.shard()))
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
    let implied_slave = groups.values().any(|g| g.below_slave) && base.find(&slave_name).is_none();
    let mut stats = Stats::default();
    for shard in std::iter::once(&base).chain(groups.values()) {
        let s = &shard.stats;
        stats.names += s.names;
        stats.a += s.a;
        stats.aaaa += s.aaaa;
        stats.srv += s.srv;
        stats.tasks += s.tasks;
        stats.dropped_names += s.dropped_names;
    }
    stats.names += usize::from(implied_slave);
    let has_reverse = !base.reverse.is_empty() || groups.values().any(|g| !g.reverse.is_empty());
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
        let key = frag.rsplit('.').next().unwrap_or("").to_string();
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
                    if let Some(te) = t.entry.map(|i| e.target_entry(i)) {
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

    #[test]
    fn shards_hold_exactly_the_single_shard_records() {
        for (sources, extras) in [
            (
                vec![IpSource::NetInfo, IpSource::Mesos, IpSource::Host],
                false,
            ),
            (vec![IpSource::Host], false),
            (vec![IpSource::Docker, IpSource::Host], false),
            (vec![IpSource::Routable, IpSource::Host], true),
        ] {
            let s = settings_with(&sources, extras);
            for doc in [fixture(), uniform_state_value(300, 4, 7, "renamed")] {
                let st = state(&doc);
                let built = build(&st, &s, &hosts(), 1).unwrap();
                assert!(built.sharded && !built.groups.is_empty());
                assert_same(&built, &st, &s);
            }
        }
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
