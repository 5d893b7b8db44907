//! Conformance suite: the daemon's records for real, third-party master state documents against
//! an independent derivation of Mesos-DNS's naming rules.
//!
//! The documents are not the project's: they live beside the repository in `../shared/fixtures`
//! (Mesos-DNS's own `fake.json` and 14 published master states, Mesos 0.19 to 1.8, each with a
//! README naming its source). When that directory is absent (a bare clone) every test here prints
//! `conformance suite SKIPPED: ...` straight to the terminal (past the test harness's output
//! capture) and `scripts/test` counts the suite as skipped rather than passed.
//!
//! The reference below reads each document as plain JSON (not through the daemon's model) and
//! applies Mesos-DNS's rules (`records/generator.go`, `records/labels`, `records/state` in
//! mesosphere/mesos-dns) in their simplest form: sets of `name -> value` per record type. It is
//! compared, name by name and value by value, with the snapshot the daemon builds from the same
//! bytes, for two configurations per document: Mesos-DNS's defaults (RFC 1123 labels, IP sources
//! netinfo, mesos, host) and the strict one (RFC 952 labels, every IP source, configured
//! masters), and once more with every framework's names split into buckets of one task (as a
//! large framework's are), which must hold the same zone. The same names are then asked for over DNS (A, AAAA, SRV through the daemon's
//! responder, plus SOA and NS at the apex and a missing name), so the answers clients get are
//! checked too, not only the snapshot. Mesos-DNS stores some names no DNS query can reach (labels over 63 octets, upper
//! case or other characters from raw DiscoveryInfo names); the reference keeps only names made
//! of lowercase letters, digits, `-` and `_` in labels of 1 to 63 octets, which is the set a
//! resolver can ask Mesos-DNS for, and counts the others per document.

use std::collections::{BTreeMap, BTreeSet};
use std::io::Write;
use std::net::IpAddr;
use std::path::{Path, PathBuf};

use std::sync::Arc;

use arc_swap::ArcSwapOption;
use hickory_proto::op::{Message, Query, ResponseCode};
use hickory_proto::rr::{Name, RData, RecordType};
use mesos_dns_sidecar::config::{Config, IpSource};
use mesos_dns_sidecar::dns::{Request, Responder, Transport};
use mesos_dns_sidecar::mesos::model::State;
use mesos_dns_sidecar::metrics::Metrics;
use mesos_dns_sidecar::records::{build, HostAddrs, RecordSettings, Snapshot};
use serde_json::Value;

/// Where the third-party documents are expected: `../shared/fixtures` beside the repository.
fn shared_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/fixtures")
}

/// The suite's 15 documents: Mesos-DNS's `fake.json` and every published master state.
fn documents(dir: &Path) -> Vec<PathBuf> {
    let mut docs = vec![dir.join("mesos-dns/fake.json")];
    let mut states: Vec<PathBuf> = std::fs::read_dir(dir.join("mesos-state"))
        .expect("mesos-state directory")
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    states.sort();
    docs.extend(states);
    docs
}

/// Writes a line to the terminal, bypassing the test harness's capture of `println!`, so a
/// skipped or finished suite is visible in every `cargo test` run.
fn announce(line: &str) {
    let _ = std::io::stderr().write_all(format!("{line}\n").as_bytes());
}

/// The shared documents' directory, or `None` after announcing that the suite is skipped.
fn shared_or_skip(test: &str) -> Option<PathBuf> {
    let dir = shared_dir();
    if dir.join("mesos-dns/fake.json").is_file() && dir.join("mesos-state").is_dir() {
        return Some(dir);
    }
    announce(&format!(
        "conformance suite SKIPPED: ../shared/fixtures not found ({} does not exist; {test} not run)",
        dir.display()
    ));
    None
}

// ---------------------------------------------------------------------------------------------
// The reference: Mesos-DNS's rules, written from their description, on plain JSON.
// ---------------------------------------------------------------------------------------------

/// Label rules (`EnforceRFC952` off: RFC 1123; on: RFC 952).
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Rule {
    Rfc1123,
    Rfc952,
}

impl Rule {
    /// One label: ASCII letters lowercased, digits kept, `-` `.` `_` become `-`, every other
    /// character (any non-ASCII one included) removed; then the characters a label may not
    /// start with are stripped from the front, the rest cut to the maximum length, `-` stripped
    /// from the end, and when that stripping shortened it, the room is refilled from what
    /// followed the cut (after its own leading `-`).
    fn label(self, name: &str) -> String {
        let mapped: String = name
            .chars()
            .filter_map(|c| match c {
                'A'..='Z' => Some(c.to_ascii_lowercase()),
                'a'..='z' | '0'..='9' => Some(c),
                '-' | '.' | '_' => Some('-'),
                _ => None,
            })
            .collect();
        let (max, bad_start): (usize, &[char]) = match self {
            Rule::Rfc1123 => (63, &['-']),
            Rule::Rfc952 => (24, &['-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9']),
        };
        let body = mapped.trim_start_matches(bad_start);
        let cut = body.len().min(max);
        let head = body[..cut].trim_end_matches('-');
        if head.len() == cut {
            return head.to_string();
        }
        let rest = body[cut..].trim_start_matches('-');
        let room = cut - head.len();
        format!("{head}{}", &rest[..rest.len().min(room)])
    }

    /// A dotted name (framework names): every dot-separated part made a label, empty ones left
    /// out, joined with dots again.
    fn frag(self, name: &str) -> String {
        name.split('.')
            .map(|p| self.label(p))
            .filter(|l| !l.is_empty())
            .collect::<Vec<_>>()
            .join(".")
    }
}

/// Mesos-DNS's short task hash: SHA-1 of the task ID, z-base-32 encoded, first 5 characters.
fn zbase32_hash(id: &str) -> String {
    use sha1::Digest;
    const ALPHABET: &str = "ybndrfg8ejkmcpqxot1uwisza345h769";
    let digest = sha1::Sha1::digest(id.as_bytes());
    let bits: String = digest.iter().map(|b| format!("{b:08b}")).collect();
    (0..5)
        .map(|i| {
            let v = usize::from_str_radix(&bits[i * 5..i * 5 + 5], 2).unwrap();
            ALPHABET.as_bytes()[v] as char
        })
        .collect()
}

/// `name@host:port` (a libprocess PID) -> host and port; IPv6 hosts come in brackets.
fn pid_host_port(pid: &str) -> Option<(String, u16)> {
    let (_, addr) = pid.split_once('@')?;
    let (host, port) = match addr.strip_prefix('[') {
        Some(v6) => {
            let (h, p) = v6.split_once("]:")?;
            (h, p)
        }
        None => addr.rsplit_once(':')?,
    };
    if host.is_empty() {
        return None;
    }
    Some((host.to_string(), port.parse().ok()?))
}

/// One generated value, as Mesos-DNS's record maps hold it.
#[derive(Clone, PartialEq, Eq, PartialOrd, Ord, Debug)]
enum Rdata {
    A(IpAddr),
    Aaaa(IpAddr),
    Srv(String, u16),
}

impl std::fmt::Display for Rdata {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Rdata::A(ip) => write!(f, "A {ip}"),
            Rdata::Aaaa(ip) => write!(f, "AAAA {ip}"),
            Rdata::Srv(t, p) => write!(f, "SRV {t}:{p}"),
        }
    }
}

/// An address as a record: IPv4 (and IPv4-mapped IPv6) is A, other IPv6 is AAAA.
fn ip_rdata(ip: IpAddr) -> Rdata {
    match ip {
        IpAddr::V4(_) => Rdata::A(ip),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => Rdata::A(IpAddr::V4(v4)),
            None => Rdata::Aaaa(ip),
        },
    }
}

/// The settings one run of the reference uses (mirroring the daemon's configuration).
struct Settings {
    rule: Rule,
    sources: Vec<&'static str>,
    masters: Vec<String>,
    domain: &'static str,
    ns: &'static str,
    listener: IpAddr,
}

impl Settings {
    /// Mesos-DNS's default configuration: RFC 1123 labels, its default IP sources, no
    /// configured masters, domain `mesos`.
    fn mesos_dns_defaults() -> Settings {
        Settings {
            rule: Rule::Rfc1123,
            sources: vec!["netinfo", "mesos", "host"],
            masters: Vec::new(),
            domain: "mesos",
            ns: "ns1.mesos.",
            listener: "127.0.0.1".parse().unwrap(),
        }
    }
}

/// The record family a name belongs to, for the per-family summary.
fn family(name: &str, r: &Rdata) -> &'static str {
    let first = name.split('.').next().unwrap_or("");
    match (first, r) {
        ("leader" | "master", _) => "leader/master",
        (f, _) if f.starts_with("master") && f[6..].parse::<u32>().is_ok() => "masterN",
        ("_leader", _) => "_leader SRV",
        ("slave", _) => "slave.mesos",
        ("_slave", _) => "_slave._tcp",
        ("_framework", _) => "_framework._tcp",
        (_, Rdata::Srv(t, _)) if t.contains(".slave.") => "task SRV (resource ports)",
        (_, Rdata::Srv(..)) => "task SRV (DiscoveryInfo, named ports)",
        _ if name.matches('.').count() == 2 => "framework / name server",
        _ if name.contains(".slave.") => "task .slave A/AAAA",
        _ => "task A/AAAA",
    }
}

/// The reference record set: name -> values.
#[derive(Default)]
struct Reference {
    records: BTreeMap<String, BTreeSet<Rdata>>,
}

impl Reference {
    fn add(&mut self, name: &str, r: Rdata) {
        self.records.entry(name.to_string()).or_default().insert(r);
    }
}

fn text<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

fn list<'a>(v: &'a Value, key: &str) -> &'a [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

/// Addresses of a PID or framework host: an address literal, else a looked-up name.
fn resolve(host: &str, hosts: &BTreeMap<&str, Vec<IpAddr>>) -> Vec<IpAddr> {
    match host.parse::<IpAddr>() {
        Ok(ip) => vec![ip],
        Err(_) => hosts.get(host).cloned().unwrap_or_default(),
    }
}

/// The newest `TASK_RUNNING` status (highest timestamp, first one on ties).
fn latest_running(task: &Value) -> Option<&Value> {
    let mut best: Option<(&Value, f64)> = None;
    for s in list(task, "statuses") {
        if text(s, "state") != "TASK_RUNNING" {
            continue;
        }
        let ts = s.get("timestamp").and_then(Value::as_f64).unwrap_or(0.0);
        if best.is_none_or(|(_, b)| ts > b) {
            best = Some((s, ts));
        }
    }
    best.map(|(s, _)| s)
}

/// The addresses one IP source yields for a task.
fn source_ips(task: &Value, source: &str, agent: &[IpAddr]) -> Vec<IpAddr> {
    let label_values = |key: &str| -> Vec<String> {
        latest_running(task)
            .map(|s| {
                list(s, "labels")
                    .iter()
                    .filter(|l| text(l, "key") == key)
                    .map(|l| text(l, "value").to_string())
                    .collect()
            })
            .unwrap_or_default()
    };
    let strings: Vec<String> = match source {
        "host" => return agent.to_vec(),
        "docker" => label_values("Docker.NetworkSettings.IPAddress"),
        "mesos" => label_values("MesosContainerizer.NetworkSettings.IPAddress"),
        "netinfo" => latest_running(task)
            .and_then(|s| s.get("container_status"))
            .map(|c| {
                list(c, "network_infos")
                    .iter()
                    .flat_map(|n| {
                        let many = list(n, "ip_addresses");
                        if many.is_empty() {
                            vec![text(n, "ip_address").to_string()]
                        } else {
                            many.iter()
                                .map(|a| text(a, "ip_address").to_string())
                                .collect()
                        }
                    })
                    .collect()
            })
            .unwrap_or_default(),
        other => panic!("unknown source {other}"),
    };
    strings.iter().filter_map(|s| s.parse().ok()).collect()
}

/// Resource ports: `[a-b, c-d]` expanded.
fn resource_ports(task: &Value) -> Vec<u16> {
    let Some(ranges) = task
        .get("resources")
        .and_then(|r| r.get("ports"))
        .and_then(Value::as_str)
    else {
        return Vec::new();
    };
    let inner = ranges.trim().trim_start_matches('[').trim_end_matches(']');
    let mut out = Vec::new();
    for range in inner.split(',').map(str::trim).filter(|r| !r.is_empty()) {
        let Some((lo, hi)) = range.split_once('-') else {
            continue;
        };
        let (Ok(lo), Ok(hi)) = (lo.trim().parse::<u16>(), hi.trim().parse::<u16>()) else {
            continue;
        };
        out.extend(lo..=hi);
    }
    out
}

/// Mesos-DNS's record set for `doc` under `s`.
fn reference(doc: &Value, s: &Settings, hosts: &BTreeMap<&str, Vec<IpAddr>>) -> Reference {
    let mut r = Reference::default();
    let tail = format!(".{}.", s.domain);
    let frameworks = list(doc, "frameworks");

    // Frameworks: `name.domain.` with the scheduler's addresses, `_framework._tcp` with its port.
    for f in frameworks {
        let (host, port) = match f.get("pid").and_then(Value::as_str).and_then(pid_host_port) {
            Some((h, p)) => (h, Some(p)),
            None => (text(f, "hostname").to_string(), None),
        };
        let ips = resolve(&host, hosts);
        if ips.is_empty() {
            continue;
        }
        let a = format!("{}{tail}", s.rule.frag(text(f, "name")));
        for ip in ips {
            r.add(&a, ip_rdata(ip));
        }
        if let Some(port) = port {
            r.add(&format!("_framework._tcp.{a}"), Rdata::Srv(a.clone(), port));
        }
    }

    // Agents: `slave.domain.` and `_slave._tcp.domain.`; remember each agent's addresses.
    let mut agents: BTreeMap<&str, Vec<IpAddr>> = BTreeMap::new();
    for a in list(doc, "slaves") {
        let pid = a.get("pid").and_then(Value::as_str).and_then(pid_host_port);
        let ips = pid
            .as_ref()
            .map(|(h, _)| resolve(h, hosts))
            .unwrap_or_default();
        if let (Some((_, port)), false) = (&pid, ips.is_empty()) {
            for &ip in &ips {
                r.add(&format!("slave{tail}"), ip_rdata(ip));
            }
            r.add(
                &format!("_slave._tcp{tail}"),
                Rdata::Srv(format!("slave{tail}"), *port),
            );
        }
        agents.insert(text(a, "id"), ips);
    }

    // The name server name gets the listener's address.
    r.add(s.ns, ip_rdata(s.listener));

    // Leader, all masters, masterN.
    if let Some((host, port)) = pid_host_port(text(doc, "leader")) {
        if let Ok(ip) = host.parse::<IpAddr>() {
            let leader_addr = text(doc, "leader").split_once('@').unwrap().1;
            r.add(&format!("leader{tail}"), ip_rdata(ip));
            r.add(&format!("master{tail}"), ip_rdata(ip));
            for proto in ["tcp", "udp"] {
                r.add(
                    &format!("_leader._{proto}{tail}"),
                    Rdata::Srv(format!("leader{tail}"), port),
                );
            }
            let mut n = 0;
            let mut leader_numbered = false;
            let mut all: BTreeSet<Rdata> = BTreeSet::from([ip_rdata(ip)]);
            for m in &s.masters {
                let Some(mip) = pid_host_port(&format!("m@{m}")).and_then(|(h, _)| h.parse().ok())
                else {
                    continue;
                };
                let is_leader = m == leader_addr;
                if is_leader {
                    if leader_numbered {
                        continue;
                    }
                    leader_numbered = true;
                } else if !all.insert(ip_rdata(mip)) {
                    continue;
                }
                r.add(&format!("master{tail}"), ip_rdata(mip));
                r.add(&format!("master{n}{tail}"), ip_rdata(mip));
                n += 1;
            }
            if !leader_numbered {
                r.add(&format!("master{n}{tail}"), ip_rdata(ip));
            }
        }
    }

    // Tasks: running ones on known agents.
    for f in frameworks {
        let fname = s.rule.frag(text(f, "name"));
        for task in list(f, "tasks") {
            let Some(agent_ips) = agents.get(text(task, "slave_id")) else {
                continue;
            };
            if text(task, "state") != "TASK_RUNNING" {
                continue;
            }
            let task_ips = s
                .sources
                .iter()
                .map(|src| source_ips(task, src, agent_ips))
                .find(|ips| !ips.is_empty())
                .unwrap_or_default();
            let hash = zbase32_hash(text(task, "id"));
            let agent_tail = text(task, "slave_id")
                .rsplit('-')
                .next()
                .unwrap_or("")
                .to_lowercase();
            let discovery = task
                .get("discovery")
                .filter(|d| !text(d, "name").is_empty());
            let names = match discovery {
                Some(d) => vec![text(d, "name").to_string(), s.rule.label(text(d, "name"))],
                None => vec![s.rule.label(text(task, "name"))],
            };
            for tn in names {
                let arec = format!("{tn}.{fname}");
                let unique = format!("{tn}-{hash}-{agent_tail}.{fname}");
                for &ip in &task_ips {
                    r.add(&format!("{arec}{tail}"), ip_rdata(ip));
                    r.add(&format!("{unique}{tail}"), ip_rdata(ip));
                }
                for &ip in agent_ips {
                    r.add(&format!("{arec}.slave{tail}"), ip_rdata(ip));
                    r.add(&format!("{unique}.slave{tail}"), ip_rdata(ip));
                }
                let slave_target = format!("{unique}.slave{tail}");
                for port in resource_ports(task) {
                    for proto in ["tcp", "udp"] {
                        let base = format!("_{tn}._{proto}.{fname}");
                        r.add(
                            &format!("{base}.slave{tail}"),
                            Rdata::Srv(slave_target.clone(), port),
                        );
                        if discovery.is_none() {
                            r.add(
                                &format!("{base}{tail}"),
                                Rdata::Srv(slave_target.clone(), port),
                            );
                        }
                    }
                }
                let Some(d) = discovery else {
                    continue;
                };
                let target = format!("{unique}{tail}");
                let ports = d.get("ports").map(|p| list(p, "ports")).unwrap_or(&[]);
                for p in ports {
                    let number = p.get("number").and_then(Value::as_i64).unwrap_or(0);
                    let Ok(port) = u16::try_from(number) else {
                        continue;
                    };
                    let proto = s.rule.label(text(p, "protocol"));
                    let protos = if proto.is_empty() {
                        vec!["tcp".to_string(), "udp".to_string()]
                    } else {
                        vec![proto]
                    };
                    let port_name = s.rule.label(text(p, "name"));
                    for proto in protos {
                        let base = format!("_{tn}._{proto}.{fname}{tail}");
                        r.add(&base, Rdata::Srv(target.clone(), port));
                        if !port_name.is_empty() {
                            r.add(
                                &format!("_{port_name}.{base}"),
                                Rdata::Srv(target.clone(), port),
                            );
                        }
                    }
                }
            }
        }
    }
    r
}

/// Whether a resolver can ask for `name`: labels of 1 to 63 lowercase letters, digits, `-` or
/// `_`, at most 255 octets on the wire.
fn queryable(name: &str) -> bool {
    let Some(body) = name.strip_suffix('.') else {
        return false;
    };
    body.len() + 2 <= 255
        && body.split('.').all(|l| {
            (1..=63).contains(&l.len())
                && l.chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_')
        })
}

// ---------------------------------------------------------------------------------------------
// The daemon's side and the comparison.
// ---------------------------------------------------------------------------------------------

/// Hostnames the documents use for frameworks without a PID, resolved the same way for both
/// sides (tests run offline: only `localhost` resolves).
fn host_table() -> BTreeMap<&'static str, Vec<IpAddr>> {
    BTreeMap::from([("localhost", vec!["127.0.0.1".parse().unwrap()])])
}

/// The daemon's snapshot of `bytes` under the configuration `s` describes; with
/// `per_bucket`, its framework groups split into buckets of about that many tasks.
fn daemon_snapshot(bytes: &[u8], s: &Settings, per_bucket: Option<usize>) -> Snapshot {
    let sources = s
        .sources
        .iter()
        .map(|src| match *src {
            "netinfo" => IpSource::NetInfo,
            "docker" => IpSource::Docker,
            "mesos" => IpSource::Mesos,
            "host" => IpSource::Host,
            other => panic!("unknown source {other}"),
        })
        .collect();
    let config = Config {
        enforce_rfc952: s.rule == Rule::Rfc952,
        ip_sources: sources,
        masters: s.masters.clone(),
        domain: s.domain.to_string(),
        soa_mname: s.ns.to_string(),
        ..Config::default()
    };
    let mut settings = RecordSettings::from_config(&config, vec![s.listener]);
    if let Some(n) = per_bucket {
        settings.tasks_per_bucket = n;
    }
    let mut hosts = HostAddrs::new();
    for (h, ips) in host_table() {
        hosts.insert(h.to_string(), ips);
    }
    let state = State::from_json(bytes).expect("daemon parses the document");
    build(&state, &settings, &hosts, 7).expect("snapshot")
}

/// The snapshot's records as the reference holds them (only names with records).
fn daemon_records(snap: &Snapshot) -> BTreeMap<String, Vec<Rdata>> {
    let mut out = BTreeMap::new();
    for (name, e) in snap.names() {
        let mut v: Vec<Rdata> = e.a.iter().map(|ip| Rdata::A(IpAddr::V4(*ip))).collect();
        v.extend(e.aaaa.iter().map(|ip| Rdata::Aaaa(IpAddr::V6(*ip))));
        v.extend(
            e.srv
                .iter()
                .map(|r| Rdata::Srv(e.target(r).name.to_string(), r.port)),
        );
        if !v.is_empty() {
            out.insert(name.to_string(), v);
        }
    }
    out
}

/// What one document under one configuration gave.
struct DocResult {
    names: usize,
    by_family: BTreeMap<&'static str, usize>,
    unreachable: usize,
    mismatches: Vec<String>,
}

fn compare(doc_name: &str, bytes: &[u8], s: &Settings) -> DocResult {
    let doc: Value = serde_json::from_slice(bytes).expect("JSON");
    let want_all = reference(&doc, s, &host_table());
    let unreachable = want_all.records.keys().filter(|n| !queryable(n)).count();
    let want: BTreeMap<&String, &BTreeSet<Rdata>> = want_all
        .records
        .iter()
        .filter(|(n, _)| queryable(n))
        .collect();
    let snap = daemon_snapshot(bytes, s, None);
    let got = daemon_records(&snap);
    // The same document with every framework split into buckets of one task (what a large
    // framework gets) must hold the same zone and answer the same.
    let buckets = daemon_snapshot(bytes, s, Some(1));
    let mut mismatches = Vec::new();
    let tag = format!("{doc_name} [{:?}]", s.rule);
    for (name, values) in &got {
        let set: BTreeSet<Rdata> = values.iter().cloned().collect();
        if set.len() != values.len() {
            mismatches.push(format!("{tag}: {name}: duplicate values {values:?}"));
        }
        match want.get(name) {
            None => mismatches.push(format!(
                "{tag}: {name}: daemon serves {}, Mesos-DNS has no such name",
                fmt_set(&set)
            )),
            Some(w) if **w != set => mismatches.push(format!(
                "{tag}: {name}: daemon {} vs Mesos-DNS {}",
                fmt_set(&set),
                fmt_set(w)
            )),
            Some(_) => {}
        }
    }
    for (name, w) in &want {
        if !got.contains_key(*name) {
            mismatches.push(format!(
                "{tag}: {name}: Mesos-DNS serves {}, the daemon has no records",
                fmt_set(w)
            ));
        }
    }
    // The daemon's own rules on top: every ancestor of a name exists (empty non-terminals),
    // and the SOA is the configured one.
    for name in got.keys() {
        let mut cur = name.as_str();
        while let Some((_, parent)) = cur.split_once('.') {
            if parent.is_empty() || !parent.ends_with(&format!("{}.", s.domain)) {
                break;
            }
            if snap.lookup(parent).is_none() {
                mismatches.push(format!("{tag}: {parent}: missing empty non-terminal"));
            }
            cur = parent;
        }
    }
    let soa = &snap.soa;
    let soa_fields = (
        soa.mname.to_ascii(),
        soa.rname.to_ascii(),
        soa.serial,
        soa.refresh,
        soa.retry,
        soa.expire,
        soa.minimum,
    );
    let soa_want = (
        s.ns.to_string(),
        "root.ns1.mesos.".to_string(),
        7,
        60,
        600,
        86400,
        60,
    );
    if soa_fields != soa_want {
        mismatches.push(format!("{tag}: SOA {soa_fields:?}, want {soa_want:?}"));
    }
    if snap.domain.to_ascii() != format!("{}.", s.domain) {
        mismatches.push(format!("{tag}: zone apex {}", snap.domain));
    }
    if buckets.listing() != snap.listing() || buckets.stats != snap.stats {
        mismatches.push(format!(
            "{tag}: the zone split into buckets differs from the zone in one piece"
        ));
    }
    mismatches.extend(over_dns(&tag, snap, &want, s));
    mismatches.extend(over_dns(&format!("{tag} in buckets"), buckets, &want, s));
    let mut by_family = BTreeMap::new();
    for (name, values) in &want {
        for v in values.iter() {
            *by_family.entry(family(name, v)).or_default() += 1;
        }
    }
    DocResult {
        names: want.len(),
        by_family,
        unreachable,
        mismatches,
    }
}

/// The same records asked for over DNS: every reference name queried for A, AAAA and SRV
/// through the daemon's responder (TCP, so nothing is truncated) must give exactly the
/// reference's values, authoritatively, with the configured TTL and SRV weight; the apex must
/// answer SOA and NS, and a name Mesos-DNS doesn't have must be NXDOMAIN with the SOA.
fn over_dns(
    tag: &str,
    snap: Snapshot,
    want: &BTreeMap<&String, &BTreeSet<Rdata>>,
    s: &Settings,
) -> Vec<String> {
    let responder = Responder::new(
        s.domain,
        Arc::new(ArcSwapOption::from_pointee(snap)),
        Arc::new(Metrics::default()),
        true,
    )
    .unwrap();
    let ask = |name: &str, qtype: RecordType| -> Message {
        let mut q = Message::query();
        q.metadata.id = 0x5eed;
        q.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
        let bytes = q.to_vec().unwrap();
        let request = Request::parse(&bytes, Transport::Tcp, &Metrics::default())
            .unwrap_or_else(|_| panic!("{tag}: {name} {qtype}: not a query"));
        assert!(
            responder.serves(&request.question, &bytes),
            "{tag}: {name} outside the domain"
        );
        match responder.answer(&request) {
            Some(reply) => Message::from_vec(&reply.bytes).unwrap(),
            None => panic!("{tag}: {name} {qtype}: no answer"),
        }
    };
    let mut problems = Vec::new();
    for (name, values) in want {
        for qtype in [RecordType::A, RecordType::AAAA, RecordType::SRV] {
            let expected: BTreeSet<String> = values
                .iter()
                .filter_map(|v| match (v, qtype) {
                    (Rdata::A(ip), RecordType::A) => Some(format!("A {ip}")),
                    (Rdata::Aaaa(ip), RecordType::AAAA) => Some(format!("AAAA {ip}")),
                    (Rdata::Srv(t, p), RecordType::SRV) => Some(format!("SRV 0 1 {p} {t}")),
                    _ => None,
                })
                .collect();
            let m = ask(name, qtype);
            let got: BTreeSet<String> = m
                .answers
                .iter()
                .map(|r| format!("{} {}", r.record_type(), r.data))
                .collect();
            let ok = m.metadata.response_code == ResponseCode::NoError
                && m.metadata.authoritative
                && m.answers.len() == got.len()
                && m.answers.iter().all(|r| r.ttl == 60)
                && got == expected;
            if !ok {
                problems.push(format!(
                    "{tag}: {name} {qtype} over DNS: {:?} aa={} {got:?}, want {expected:?}",
                    m.metadata.response_code, m.metadata.authoritative
                ));
            }
        }
    }
    let apex = format!("{}.", s.domain);
    let m = ask(&apex, RecordType::SOA);
    match m.answers.first().map(|r| &r.data) {
        Some(RData::SOA(soa)) if soa.mname.to_ascii() == s.ns && m.answers.len() == 1 => {}
        other => problems.push(format!("{tag}: apex SOA over DNS: {other:?}")),
    }
    let m = ask(&apex, RecordType::NS);
    let ns: Vec<String> = m.answers.iter().map(|r| r.data.to_string()).collect();
    if ns != [s.ns.to_string()] {
        problems.push(format!("{tag}: apex NS over DNS: {ns:?}"));
    }
    let missing = format!("no-such-name-in-the-conformance-suite.{apex}");
    let m = ask(&missing, RecordType::A);
    let soa_in_authority = matches!(m.authorities.first().map(|r| &r.data), Some(RData::SOA(_)));
    if m.metadata.response_code != ResponseCode::NXDomain || !soa_in_authority {
        problems.push(format!(
            "{tag}: {missing}: {:?}, SOA in authority: {soa_in_authority}",
            m.metadata.response_code
        ));
    }
    problems
}

fn fmt_set(s: &BTreeSet<Rdata>) -> String {
    let v: Vec<String> = s.iter().map(ToString::to_string).collect();
    format!("[{}]", v.join(", "))
}

/// The two configurations every document is checked under.
fn configurations(doc: &Value) -> Vec<Settings> {
    let leader = text(doc, "leader")
        .split_once('@')
        .map(|(_, a)| a.to_string());
    vec![
        Settings::mesos_dns_defaults(),
        Settings {
            rule: Rule::Rfc952,
            sources: vec!["netinfo", "docker", "mesos", "host"],
            // A fallback master first, then the leader, then a duplicate: numbering and
            // deduplication are exercised on every document.
            masters: ["10.255.0.9:5050".to_string()]
                .into_iter()
                .chain(leader.clone())
                .chain(["10.255.0.9:5050".to_string()])
                .collect(),
            domain: "cluster.example",
            ns: "ns1.cluster.example.",
            listener: "192.0.2.53".parse().unwrap(),
        },
    ]
}

/// Every record family of every shared document matches Mesos-DNS's rules.
#[test]
fn daemon_records_follow_mesos_dns_rules_on_every_shared_document() {
    let Some(dir) =
        shared_or_skip("daemon_records_follow_mesos_dns_rules_on_every_shared_document")
    else {
        return;
    };
    let docs = documents(&dir);
    assert_eq!(
        docs.len(),
        15,
        "expected fake.json and 14 master states: {docs:?}"
    );
    let mut mismatches = Vec::new();
    let mut families: BTreeMap<&'static str, usize> = BTreeMap::new();
    let mut report = Vec::new();
    for path in &docs {
        let bytes = std::fs::read(path).unwrap();
        let doc: Value = serde_json::from_slice(&bytes).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        for s in configurations(&doc) {
            let o = compare(&name, &bytes, &s);
            for (f, n) in &o.by_family {
                *families.entry(f).or_default() += n;
            }
            report.push(format!(
                "  {name} [{:?}]: {} names compared, {} unreachable names skipped, {} mismatches",
                s.rule,
                o.names,
                o.unreachable,
                o.mismatches.len()
            ));
            mismatches.extend(o.mismatches);
        }
    }
    let fam: Vec<String> = families.iter().map(|(f, n)| format!("{f} {n}")).collect();
    announce(&format!(
        "conformance suite RAN: {} documents x 2 configurations (each also split into buckets), {} mismatches; records compared by family: {}\n{}",
        docs.len(),
        mismatches.len(),
        fam.join(", "),
        report.join("\n")
    ));
    for family in [
        "task A/AAAA",
        "task .slave A/AAAA",
        "task SRV (resource ports)",
        "task SRV (DiscoveryInfo, named ports)",
        "leader/master",
        "masterN",
        "_leader SRV",
        "slave.mesos",
        "_slave._tcp",
        "framework / name server",
        "_framework._tcp",
    ] {
        assert!(
            families.get(family).copied().unwrap_or(0) > 0,
            "no document exercised {family}"
        );
    }
    assert!(
        mismatches.is_empty(),
        "{} mismatches between the daemon and Mesos-DNS's rules:\n{}",
        mismatches.len(),
        mismatches.join("\n")
    );
}

/// The reference itself, on the hand-checked values of Mesos-DNS's own tests and labels, so a
/// wrong reference cannot agree with a wrong daemon unnoticed.
#[test]
fn reference_rules_reproduce_mesos_dns_examples() {
    assert_eq!(zbase32_hash("test"), "iffe9");
    assert_eq!(Rule::Rfc1123.label("liquor.store"), "liquor-store");
    assert_eq!(
        Rule::Rfc952.label("chronos with a space AND MIXED CASE-2"),
        "chronoswithaspaceandmixe"
    );
    assert_eq!(Rule::Rfc952.label("-9-x"), "x");
    assert_eq!(
        Rule::Rfc1123.label(&format!("{}--xyz", "a".repeat(62))),
        format!("{}x", "a".repeat(62))
    );
    assert_eq!(Rule::Rfc1123.frag("..a..b.."), "a.b");
    assert_eq!(
        pid_host_port("slave(1)@[2001:db8::1]:5051"),
        Some(("2001:db8::1".into(), 5051))
    );
    assert!(queryable("a-b._c.mesos.") && !queryable("A.mesos.") && !queryable("a..mesos."));
}

/// The whole record set for Mesos-DNS's `fake.json` with the default configuration (RFC 1123
/// labels, IP sources netinfo, mesos, host; the document's own leader; name server on
/// 127.0.0.1), checked against a reviewed listing (`tests/golden/fake_json_records.txt`, derived
/// from the shared document, so it belongs to this suite).
#[test]
fn fake_json_record_set_matches_the_reviewed_listing() {
    let Some(dir) = shared_or_skip("fake_json_record_set_matches_the_reviewed_listing") else {
        return;
    };
    let bytes = std::fs::read(dir.join("mesos-dns/fake.json")).unwrap();
    let s = Settings::mesos_dns_defaults();
    let got = daemon_snapshot(&bytes, &s, None).listing().join("\n") + "\n";
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/fake_json_records.txt");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &got).unwrap();
    }
    let want = std::fs::read_to_string(&path).expect("golden file");
    assert_eq!(
        got, want,
        "record set changed; review and rerun with UPDATE_GOLDEN=1"
    );
}
