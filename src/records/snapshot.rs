//! The immutable, query-ready view of the cluster's names.
//!
//! A `Snapshot` is built once per state change and then only read: the DNS server and the HTTP
//! API share it through an atomic pointer swap, so a query never waits on a rebuild and never
//! sees half of one. Lookups are one hash probe on the lowercase name.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::Arc;
use std::time::SystemTime;

use hickory_proto::rr::{Name, RecordType};
use serde::Serialize;

use super::names::NameTable;
use crate::mesos::model::Task;
use compact_str::CompactString;

/// A run of records in one of the snapshot's record arrays.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Span {
    pub(crate) start: u32,
    pub(crate) len: u32,
}

impl Span {
    fn of<'a, T>(&self, arena: &'a [T]) -> &'a [T] {
        &arena[self.start as usize..(self.start + self.len) as usize]
    }
}

/// Where one owner name's records lie in the record arrays.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Spans {
    pub(crate) a: Span,
    pub(crate) aaaa: Span,
    pub(crate) srv: Span,
}

/// The records of one owner name. A name with no records at all is an empty non-terminal: it
/// exists because names below it do, so it answers NODATA rather than NXDOMAIN.
#[derive(Debug, Clone, Copy)]
pub struct Entry<'a> {
    /// IPv4 addresses.
    pub a: &'a [Ipv4Addr],
    /// IPv6 addresses.
    pub aaaa: &'a [Ipv6Addr],
    /// SRV records.
    pub srv: &'a [SrvRecord],
    /// The part of the snapshot the entry lies in, which its SRV records' targets index.
    shard: &'a Shard,
}

impl<'a> Entry<'a> {
    /// Whether the name holds no records (an empty non-terminal).
    pub fn is_empty(&self) -> bool {
        self.a.is_empty() && self.aaaa.is_empty() && self.srv.is_empty()
    }

    /// The target of one of this entry's SRV records.
    #[inline]
    pub fn target(&self, record: &SrvRecord) -> SrvTarget<'a> {
        let t = record.target;
        if t & TARGET_OTHER == 0 {
            SrvTarget {
                name: self.shard.names.get(t),
                entry: Some(t),
            }
        } else {
            SrvTarget {
                name: self.shard.other_targets.get(t & !TARGET_OTHER),
                entry: None,
            }
        }
    }

    /// The entry of an SRV target of this entry (`SrvTarget::entry`), for the addresses that
    /// go in the additional section.
    pub fn target_entry(&self, index: u32) -> Entry<'a> {
        self.shard.entry(index)
    }
}

/// Marks an [`SrvRecord::target`] that is not an owner name of its shard: the rest of the
/// number indexes the shard's other target names.
pub(crate) const TARGET_OTHER: u32 = 1 << 31;

/// One SRV record: a target (see [`Entry::target`]) and a port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SrvRecord {
    /// The target: the number of its owner name in the shard, or with `TARGET_OTHER` set an
    /// index into the shard's other target names. Four bytes instead of a parsed name per
    /// target (at 100,000 tasks, 200,000 targets and a fifth of the snapshot's memory).
    pub target: u32,
    /// Port.
    pub port: u16,
}

/// An SRV record's target, as its answers write it.
#[derive(Debug, Clone, Copy)]
pub struct SrvTarget<'a> {
    /// Target host name, lowercase, with its trailing dot; a valid domain name.
    pub name: &'a str,
    /// Index of the target's own entry (see [`Entry::target_entry`]), for its addresses in
    /// the additional section.
    pub entry: Option<u32>,
}

/// SOA fields of the cluster domain.
#[derive(Debug, Clone)]
pub struct Soa {
    /// Primary name server (`SOAMname`).
    pub mname: Name,
    /// Responsible mailbox (`SOARname`).
    pub rname: Name,
    /// Serial, increased with every snapshot.
    pub serial: u32,
    /// Refresh interval.
    pub refresh: u32,
    /// Retry interval.
    pub retry: u32,
    /// Expiry.
    pub expire: u32,
    /// Minimum TTL, which bounds negative caching of our answers.
    pub minimum: u32,
}

/// A record as Mesos-DNS's enumeration API lists it.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct EnumRecord {
    /// Owner name with trailing dot.
    pub name: String,
    /// Address, or `target:port` for SRV.
    pub host: String,
    /// `A`, `AAAA` or `SRV`.
    pub rtype: String,
}

/// A task's records, for the enumeration API.
#[derive(Debug, Clone, Serialize)]
pub struct EnumTask {
    /// Task name.
    pub name: String,
    /// Task ID.
    pub id: String,
    /// Records generated from this task.
    pub records: Vec<EnumRecord>,
}

/// A framework's tasks, for the enumeration API.
#[derive(Debug, Clone, Serialize)]
pub struct EnumFramework {
    /// Tasks.
    pub tasks: Vec<EnumTask>,
    /// Framework name as Mesos reports it.
    pub name: String,
}

/// Everything Mesos-DNS's `/v1/enumerate` lists.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Enumeration {
    /// Frameworks in state order.
    pub frameworks: Vec<EnumFramework>,
}

/// Counts describing a snapshot, for logs and metrics.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Owner names, including empty non-terminals.
    pub names: usize,
    /// A records.
    pub a: usize,
    /// AAAA records.
    pub aaaa: usize,
    /// SRV records.
    pub srv: usize,
    /// Running tasks that got records.
    pub tasks: usize,
    /// Generated names dropped because no client could query them (invalid characters).
    pub dropped_names: usize,
}

/// Addresses of a name outside the cluster domain (from the static records file).
#[derive(Debug, Clone, Default)]
pub struct OutsideHost {
    /// IPv4 addresses.
    pub a: Vec<Ipv4Addr>,
    /// IPv6 addresses.
    pub aaaa: Vec<Ipv6Addr>,
}

/// Marks a reverse name kept in `reverse_hosts` rather than in the owner names.
pub(crate) const PTR_HOST: u32 = 1 << 31;
/// Marks an address with more than one name (no PTR answer, whatever other shards hold).
pub(crate) const PTR_MULTI: u32 = u32::MAX;

/// A hash map with the snapshot's fast hasher.
pub(crate) type FastMap<K, V> = HashMap<K, V, ahash::RandomState>;

/// The address a reverse-lookup name (`4.3.2.1.in-addr.arpa.`, 32 nibbles under `ip6.arpa.`;
/// lowercase, trailing dot) stands for, if it is one.
pub fn reverse_name_address(key: &str) -> Option<IpAddr> {
    if let Some(rest) = key.strip_suffix(".in-addr.arpa.") {
        let mut octets = [0u8; 4];
        let mut parts = rest.split('.');
        for o in octets.iter_mut().rev() {
            let p = parts.next()?;
            if p.len() > 1 && p.starts_with('0') {
                return None;
            }
            *o = p.parse().ok()?;
        }
        return parts.next().is_none().then(|| IpAddr::from(octets));
    }
    let rest = key.strip_suffix(".ip6.arpa.")?;
    let mut value: u128 = 0;
    let mut count = 0;
    for (i, p) in rest.split('.').enumerate() {
        let nibble = match p.as_bytes() {
            [c] => (*c as char).to_digit(16)?,
            _ => return None,
        };
        value |= u128::from(nibble) << (4 * i);
        count += 1;
    }
    (count == 32).then(|| IpAddr::from(Ipv6Addr::from(value)))
}

/// The reverse-lookup name of an address (`4.3.2.1.in-addr.arpa.`), lowercase.
pub fn reverse_name(ip: IpAddr) -> String {
    match ip {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            format!("{}.{}.{}.{}.in-addr.arpa.", o[3], o[2], o[1], o[0])
        }
        IpAddr::V6(v6) => {
            let mut out = String::with_capacity(73);
            for byte in v6.octets().iter().rev() {
                out.push_str(&format!("{:x}.{:x}.", byte & 0xf, byte >> 4));
            }
            out.push_str("ip6.arpa.");
            out
        }
    }
}

/// One part of a snapshot's names: the records one group of frameworks produced, or everything
/// else (agents, masters, the name server).
///
/// Owner names live end to end in one buffer ([`NameTable`], numbered like the spans) and
/// records in flat arrays indexed by spans, so a shard of a large cluster is a handful of
/// allocations rather than several per name. Shards are shared between successive snapshots:
/// an update rebuilds only the shards whose inputs changed.
#[derive(Debug, Default)]
pub struct Shard {
    /// Owner names; name number `i` has the records of `spans[i]`.
    pub(crate) names: NameTable,
    pub(crate) spans: Vec<Spans>,
    pub(crate) a: Vec<Ipv4Addr>,
    pub(crate) aaaa: Vec<Ipv6Addr>,
    pub(crate) srv: Vec<SrvRecord>,
    /// SRV target names that are not owner names of the shard (see [`TARGET_OTHER`]).
    pub(crate) other_targets: NameTable,
    /// Counts of this shard alone.
    pub(crate) stats: Stats,
    /// Whether names lie below `slave.<domain>`, which then exists in the zone even when no
    /// shard stores it.
    pub(crate) below_slave: bool,
    /// Digest of the inputs the shard was built from; equal digests, equal shards.
    pub(crate) fingerprint: u64,
    /// The one name of each address that has exactly one (`reverseLookups`): an owner name's
    /// number, with [`PTR_HOST`] set an index into `reverse_hosts`, or [`PTR_MULTI`].
    pub(crate) reverse: FastMap<IpAddr, u32>,
    /// Reverse names that are not owner names of the zone (agent hostnames, static names
    /// outside the domain), with trailing dot.
    pub(crate) reverse_hosts: Vec<Box<str>>,
    /// Static records outside the cluster domain, by lowercase name with trailing dot (the
    /// base shard's).
    pub(crate) outside: FastMap<Box<str>, OutsideHost>,
    /// A bucket's empty non-terminals that lie in other buckets of its group (see [`Group`]).
    pub(crate) foreign_ents: NameTable,
}

impl Shard {
    /// Finds a name given as lowercase text with trailing dot.
    #[inline]
    pub(crate) fn find(&self, key: &str) -> Option<Entry<'_>> {
        self.names.find(key).map(|i| self.entry(i))
    }

    #[inline]
    fn entry(&self, index: u32) -> Entry<'_> {
        let s = &self.spans[index as usize];
        Entry {
            a: s.a.of(&self.a),
            aaaa: s.aaaa.of(&self.aaaa),
            srv: s.srv.of(&self.srv),
            shard: self,
        }
    }

    /// Every owner name with its records.
    pub(crate) fn names(&self) -> impl Iterator<Item = (&str, Entry<'_>)> {
        self.names.iter().map(|(i, name)| (name, self.entry(i)))
    }

    /// An entry with no records: an empty non-terminal that no shard stores.
    pub(crate) fn empty(&self) -> Entry<'_> {
        Entry {
            a: &[],
            aaaa: &[],
            srv: &[],
            shard: self,
        }
    }
}

/// The names of one group of frameworks: one shard, or for a large group several buckets,
/// each holding the names whose [`bucket_label`] hashes to it.
///
/// A task's names all lie in the bucket of its label but for `task.framework`, which lies in
/// the bucket of the label without its last two hyphenated parts when it has them (the shape
/// of a task's unique name, `task-HASH-AGENT`, whose bucket is its task's). So a task change
/// rebuilds one or two buckets, not the whole group: at 100,000 tasks in one framework that is
/// a few milliseconds instead of a few hundred.
#[derive(Debug)]
pub struct Group {
    /// The shards; a name lives in `buckets[bucket_of(bucket_label(name), len)]`.
    pub(crate) buckets: Box<[Arc<Shard>]>,
    /// Empty non-terminals that no bucket stores: ancestors of names in one bucket that hash
    /// to another (`_tcp.marathon.mesos.` above the SRV names of every task).
    pub(crate) ents: NameTable,
    /// The tasks the buckets were built from, per framework ID, in the state's order: the
    /// next update takes a task it finds here unchanged (the same shared task) at its digest
    /// instead of hashing it again, which at 100,000 tasks was most of an update's cost.
    pub(crate) seen: Vec<(CompactString, Vec<SeenTask>)>,
    /// Digest of what `seen`'s buckets depend on (the settings and the bucket count).
    pub(crate) seen_key: u64,
}

/// A task as a group's buckets last saw it (see [`Group::seen`]).
#[derive(Debug, Clone)]
pub(crate) struct SeenTask {
    /// The task itself: held, so that the same pointer in the next state is this very task.
    pub(crate) task: Arc<Task>,
    /// Digest of the task.
    pub(crate) digest: u64,
    /// The buckets its names lie in; [`SeenTask::UNKNOWN`] first when there are more than
    /// two (a raw DiscoveryInfo name's), which are then worked out again.
    pub(crate) buckets: [u16; 2],
}

impl SeenTask {
    /// Marks buckets not kept.
    pub(crate) const UNKNOWN: u16 = u16::MAX;
}

impl Group {
    /// Finds a name of the group given as lowercase text with trailing dot.
    #[inline]
    pub(crate) fn find(&self, key: &str) -> Option<Entry<'_>> {
        if let [only] = &*self.buckets {
            return only.find(key);
        }
        let bucket = &self.buckets[bucket_of(bucket_label(key), self.buckets.len())];
        match bucket.find(key) {
            Some(e) => Some(e),
            None => self.ents.find(key).map(|_| bucket.empty()),
        }
    }
}

/// The label that picks a name's bucket within its group (see [`Group`]). For an SRV name
/// (`_web._tcp.marathon.mesos.`, `_http._web._tcp.marathon.mesos.`) it is the service label,
/// the last but one of its leading labels that begin with `_` (none when only one does); for
/// any other name its first label, without the last two hyphenated parts when it has three
/// or more (`web-6lw9f-s1` gives `web`).
#[inline]
pub(crate) fn bucket_label(key: &str) -> &str {
    let mut labels = key.split('.');
    let first = labels.next().unwrap_or("");
    if let Some(first) = first.strip_prefix('_') {
        return match labels.next().and_then(|l| l.strip_prefix('_')) {
            None => "",
            Some(second) => match labels.next() {
                Some(third) if third.starts_with('_') => second,
                _ => first,
            },
        };
    }
    let mut parts = first.rsplitn(3, '-');
    match (parts.next(), parts.next(), parts.next()) {
        (Some(_), Some(_), Some(rest)) => rest,
        _ => first,
    }
}

/// The bucket, of `buckets`, that names with `label` (see [`bucket_label`]) lie in. A fixed
/// hash, so that buckets compare across snapshots.
#[inline]
pub(crate) fn bucket_of(label: &str, buckets: usize) -> usize {
    // FNV-1a: short labels, no key needed.
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for &b in label.as_bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3);
    }
    (h % buckets as u64) as usize
}

/// Framework records by group key (see [`group_keys`]).
pub(crate) type Groups = HashMap<Box<str>, Arc<Group>, ahash::RandomState>;

/// The cluster's names and records at one point in time.
///
/// The names are split into shards ([`Shard`]): one for the names of each group of frameworks
/// sharing the label just below the domain (`marathon` for `web.marathon.mesos` and
/// `web.marathon.slave.mesos`), and a base shard with everything else. A query looks in the
/// base shard and in the shards its name's labels point at (`group_keys`); the builder
/// guarantees that a name lives in exactly one shard and that this lookup finds it, and falls
/// back to a single base shard holding everything when a state breaks that rule.
#[derive(Debug)]
pub struct Snapshot {
    /// The cluster domain, lowercase, fully qualified.
    pub domain: Name,
    /// TTL of every record.
    pub ttl: u32,
    /// SRV weight.
    pub srv_weight: u16,
    /// The domain's SOA.
    pub soa: Soa,
    /// The domain's name server (the SOA's mname).
    pub ns: Name,
    /// When this snapshot was built.
    pub built_at: SystemTime,
    /// Counts.
    pub stats: Stats,
    /// `.<domain>.`, the suffix of every name below the apex.
    pub(crate) tail: Box<str>,
    /// Agents, masters, the name server; everything when `groups` is empty.
    pub(crate) base: Arc<Shard>,
    pub(crate) groups: Groups,
    /// Whether `slave.<domain>.` exists only because a group has names below it (no shard
    /// stores it): an empty non-terminal that lookups and listings add.
    pub(crate) implied_slave: bool,
    /// `slave.<domain>.`.
    pub(crate) slave_name: Box<str>,
    /// Whether the names are split into group shards (else the base shard holds them all).
    pub(crate) sharded: bool,
    /// Whether any shard has reverse names (a forwarded query need not look otherwise).
    pub(crate) has_reverse: bool,
}

/// The group keys a name below the domain may be stored under, given the name without the
/// domain (`web.marathon.slave` for `web.marathon.slave.mesos.`): its last label, and for names
/// below `slave.<domain>` the label before `slave`.
#[inline]
pub(crate) fn group_keys(rest: &str) -> (&str, Option<&str>) {
    (
        last_label(rest),
        rest.strip_suffix(".slave").map(last_label),
    )
}

/// The text after the last dot of `s` (all of it when it has none): the key a group of
/// frameworks is stored under, and looked up by. A byte loop, as names are short and a dot
/// is ASCII.
#[inline]
pub(crate) fn last_label(s: &str) -> &str {
    match s.bytes().rposition(|b| b == b'.') {
        Some(dot) => &s[dot + 1..],
        None => s,
    }
}

impl Snapshot {
    /// Finds a name given as lowercase text with trailing dot (`web.marathon.mesos.`).
    #[inline]
    pub fn lookup(&self, key: &str) -> Option<Entry<'_>> {
        // A name lives in exactly one shard, so the group its labels point at is asked first:
        // that is where task names, almost every query, are.
        if self.groups.is_empty() {
            return self.base.find(key);
        }
        let Some(rest) = key.strip_suffix(&*self.tail) else {
            return self.base.find(key);
        };
        // No group is named `slave` (it is reserved), so a name below `slave.<domain>` can only
        // be in the group of the label before `slave`, any other only in its last label's.
        let (last, under_slave) = group_keys(rest);
        let group = self.groups.get(under_slave.unwrap_or(last));
        if let Some(e) = group.and_then(|g| g.find(key)) {
            return Some(e);
        }
        if let Some(e) = self.base.find(key) {
            return Some(e);
        }
        (self.implied_slave && rest == "slave").then(|| self.base.empty())
    }

    /// Every shard: the base first, then the groups'.
    pub(crate) fn shards(&self) -> impl Iterator<Item = &Shard> {
        std::iter::once(&*self.base).chain(
            self.groups
                .values()
                .flat_map(|g| g.buckets.iter().map(|b| &**b)),
        )
    }

    /// Every owner name (lowercase, trailing dot) with its records, in no particular order.
    pub fn names(&self) -> impl Iterator<Item = (&str, Entry<'_>)> {
        let implied = self
            .implied_slave
            .then(|| (&*self.slave_name, self.base.empty()));
        let group_ents = self
            .groups
            .values()
            .flat_map(|g| g.ents.iter().map(|(_, n)| (n, self.base.empty())));
        self.shards()
            .flat_map(|s| s.names())
            .chain(group_ents)
            .chain(implied)
    }

    /// The entry of an SRV record's target, for the addresses of the additional section:
    /// `entry` holds the record, `target` is [`Entry::target`] of it. A target outside the
    /// record's shard (another bucket of the group) is looked up by name.
    #[inline]
    pub fn target_entry<'a>(
        &'a self,
        entry: &Entry<'a>,
        target: &SrvTarget<'a>,
    ) -> Option<Entry<'a>> {
        match target.entry {
            Some(i) => Some(entry.target_entry(i)),
            None => self.lookup(target.name),
        }
    }

    /// Whether `name` is the domain apex.
    pub fn is_apex(&self, name: &Name) -> bool {
        name.eq_ignore_root(&self.domain)
    }

    /// The name a reverse-lookup name points to (PTR), when its address maps to exactly one
    /// name across all shards.
    pub fn ptr(&self, key: &str) -> Option<&str> {
        let mut found = None;
        let mut ip = None;
        for shard in self.shards().filter(|s| !s.reverse.is_empty()) {
            let ip = match ip {
                Some(ip) => ip,
                None => *ip.insert(reverse_name_address(key)?),
            };
            let Some(&target) = shard.reverse.get(&ip) else {
                continue;
            };
            if target == PTR_MULTI || found.is_some() {
                return None;
            }
            found = Some(if target & PTR_HOST != 0 {
                &*shard.reverse_hosts[(target & !PTR_HOST) as usize]
            } else {
                shard.names.get(target)
            });
        }
        found
    }

    /// The static addresses of a name outside the cluster domain.
    pub fn outside(&self, key: &str) -> Option<&OutsideHost> {
        if self.base.outside.is_empty() {
            return None;
        }
        self.base.outside.get(key)
    }

    /// Whether any name outside the cluster domain could be answered for `qtype` (a check
    /// that costs no look at the name, for the many forwarded queries).
    pub fn answers_any_outside_zone(&self, qtype: RecordType) -> bool {
        match qtype {
            RecordType::PTR => self.has_reverse,
            RecordType::A | RecordType::AAAA => !self.base.outside.is_empty(),
            RecordType::ANY => self.has_reverse || !self.base.outside.is_empty(),
            _ => false,
        }
    }

    /// Whether a query for `key` (a name outside the cluster domain, lowercase with trailing
    /// dot) of type `qtype` is answered from this snapshot rather than forwarded: the PTR
    /// name of an address the cluster knows by exactly one name, or an A/AAAA/ANY query for a
    /// name of the static records file. The DNS router's one hook for names outside the
    /// domain; everything else it forwards as before.
    pub fn answers_outside_zone(&self, key: &str, qtype: RecordType) -> bool {
        if !self.answers_any_outside_zone(qtype) {
            return false;
        }
        match qtype {
            RecordType::PTR => self.ptr(key).is_some(),
            RecordType::A | RecordType::AAAA => self.outside(key).is_some(),
            RecordType::ANY => self.ptr(key).is_some() || self.outside(key).is_some(),
            _ => false,
        }
    }

    /// Every record as a sorted `name TYPE value` line (empty non-terminals too): the form of
    /// the reviewed record listings the tests compare whole snapshots against.
    pub fn listing(&self) -> Vec<String> {
        let mut lines = Vec::new();
        for (n, e) in self.names() {
            lines.extend(e.a.iter().map(|ip| format!("{n} A {ip}")));
            lines.extend(e.aaaa.iter().map(|ip| format!("{n} AAAA {ip}")));
            lines.extend(
                e.srv
                    .iter()
                    .map(|r| format!("{n} SRV {}:{}", e.target(r).name, r.port)),
            );
            if e.is_empty() {
                lines.push(format!("{n} (empty non-terminal)"));
            }
        }
        lines.sort();
        lines
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reverse_names_round_trip_and_reject_what_is_not_one() {
        for ip in ["10.9.0.1", "255.0.0.7", "2001:db8::5", "::ffff:10.0.0.1"] {
            let ip: IpAddr = ip.parse().unwrap();
            assert_eq!(reverse_name_address(&reverse_name(ip)), Some(ip), "{ip}");
        }
        assert_eq!(
            reverse_name("10.9.0.1".parse().unwrap()),
            "1.0.9.10.in-addr.arpa."
        );
        assert!(reverse_name("2001:db8::5".parse().unwrap())
            .starts_with("5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2."));
        for bad in [
            "1.0.9.in-addr.arpa.",
            "1.1.0.9.10.in-addr.arpa.",
            "01.0.9.10.in-addr.arpa.",
            "256.0.9.10.in-addr.arpa.",
            "0.9.10.in-addr.arpa.",
            "x.0.9.10.in-addr.arpa.",
            "5.0.ip6.arpa.",
            "web.marathon.mesos.",
        ] {
            assert_eq!(reverse_name_address(bad), None, "{bad}");
        }
    }
}
