//! The immutable, query-ready view of the cluster's names.
//!
//! A `Snapshot` is built once per state change and then only read: the DNS server and the HTTP
//! API share it through an atomic pointer swap, so a query never waits on a rebuild and never
//! sees half of one. Lookups are one hash probe on the lowercase name.

use std::collections::HashMap;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::time::SystemTime;

use hickory_proto::rr::Name;
use serde::Serialize;

/// The records of one owner name. A name with no records at all is an empty non-terminal: it
/// exists because names below it do, so it answers NODATA rather than NXDOMAIN.
#[derive(Debug, Clone)]
pub struct Entry {
    /// The owner name, lowercase and fully qualified.
    pub name: Name,
    /// IPv4 addresses.
    pub a: Box<[Ipv4Addr]>,
    /// IPv6 addresses.
    pub aaaa: Box<[Ipv6Addr]>,
    /// SRV targets.
    pub srv: Box<[SrvTarget]>,
}

/// One SRV record's target and port.
#[derive(Debug, Clone)]
pub struct SrvTarget {
    /// Target host name.
    pub target: Name,
    /// Port.
    pub port: u16,
    /// Index of the target's own entry, for its addresses in the additional section.
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

/// The cluster's names and records at one point in time.
#[derive(Debug)]
pub struct Snapshot {
    /// The cluster domain, lowercase, fully qualified.
    pub domain: Name,
    /// TTL of every record.
    pub ttl: u32,
    /// Weight of SRV records.
    pub srv_weight: u16,
    /// The domain's SOA.
    pub soa: Soa,
    /// The domain's name server (the SOA's mname).
    pub ns: Name,
    /// Task enumeration for the HTTP API.
    pub enumeration: Enumeration,
    /// When this snapshot was built.
    pub built_at: SystemTime,
    /// Counts.
    pub stats: Stats,
    pub(crate) index: HashMap<Box<str>, u32>,
    pub(crate) entries: Vec<Entry>,
}

impl Snapshot {
    /// Finds a name given as lowercase text with trailing dot (`web.marathon.mesos.`).
    pub fn lookup(&self, key: &str) -> Option<&Entry> {
        self.index.get(key).map(|&i| &self.entries[i as usize])
    }

    /// The entry at an index taken from an `SrvTarget`.
    pub fn entry(&self, index: u32) -> &Entry {
        &self.entries[index as usize]
    }

    /// All owner names with their records, in no particular order.
    pub fn entries(&self) -> impl Iterator<Item = &Entry> {
        self.entries.iter()
    }

    /// Whether `name` is the domain apex.
    pub fn is_apex(&self, name: &Name) -> bool {
        name.eq_ignore_root(&self.domain)
    }
}
