//! Generator tests against the project's own state fixture (`tests/fixtures/cluster.json`) and
//! Mesos-DNS's naming rules.

use std::collections::BTreeSet;
use std::path::Path;

use serde_json::json;

use super::labels::LabelSpec;
use super::snapshot::Snapshot;
use super::{build, enumerate, HostAddrs, RecordSettings};
use crate::config::{Config, IpSource};
use crate::mesos::model::State;

/// The project's hand-written state: four frameworks (one dual-stack, one whose name needs
/// sanitising, one without a PID), DiscoveryInfo and named ports, Docker, Mesos and netinfo
/// addresses, an IPv6 agent, tasks that are not running or run on an unknown agent.
fn fixture() -> State {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/cluster.json");
    State::from_json(&std::fs::read(path).expect("tests/fixtures/cluster.json")).unwrap()
}

fn settings(spec: LabelSpec, sources: &[IpSource], masters: &[&str]) -> RecordSettings {
    let c = Config {
        enforce_rfc952: spec == LabelSpec::Rfc952,
        ip_sources: sources.to_vec(),
        masters: masters.iter().map(|m| m.to_string()).collect(),
        ..Config::default()
    };
    RecordSettings::from_config(&c, vec!["127.0.0.1".parse().unwrap()])
}

/// The fixture set up as Mesos-DNS's own TestInsertState sets up its fixture: RFC 952 labels,
/// the leader as the only configured master, name server `mesos-dns.mesos.` on 127.0.0.1.
fn mesos_dns_test_snapshot(sources: &[IpSource]) -> Snapshot {
    let state = fixture();
    let mut s = settings(LabelSpec::Rfc952, sources, &["10.40.0.2:5050"]);
    s.ns_name = "mesos-dns.mesos.".into();
    build(&state, &s, &localhost_hosts(), 1).unwrap()
}

fn localhost_hosts() -> HostAddrs {
    let mut h = HostAddrs::new();
    h.insert("localhost".into(), vec!["127.0.0.1".parse().unwrap()]);
    h
}

fn set(items: &[&str]) -> BTreeSet<String> {
    items.iter().map(|s| s.to_string()).collect()
}

fn a(s: &Snapshot, name: &str) -> BTreeSet<String> {
    s.lookup(name)
        .map(|e| e.a.iter().map(|ip| ip.to_string()).collect())
        .unwrap_or_default()
}

fn aaaa(s: &Snapshot, name: &str) -> BTreeSet<String> {
    s.lookup(name)
        .map(|e| e.aaaa.iter().map(|ip| ip.to_string()).collect())
        .unwrap_or_default()
}

fn srv(s: &Snapshot, name: &str) -> BTreeSet<String> {
    s.lookup(name)
        .map(|e| {
            e.srv
                .iter()
                .map(|r| format!("{}:{}", e.target(r).name, r.port))
                .collect()
        })
        .unwrap_or_default()
}

use IpSource::{Docker, Host, Mesos, NetInfo};

/// Every source, in the order that shows each one: netinfo, docker labels, mesos labels, host.
const ALL: &[IpSource] = &[NetInfo, Docker, Mesos, Host];

#[test]
fn task_a_records_follow_mesos_dns() {
    let s = mesos_dns_test_snapshot(ALL);
    assert_eq!(a(&s, "gate-keeper.marathon.mesos."), set(&["10.44.1.5"]));
    assert_eq!(
        a(&s, "cache-tier.marathon.mesos."),
        set(&["10.44.1.1", "10.44.1.2"]),
        "the latest TASK_RUNNING status's Docker label, never an older or a non-running one"
    );
    assert_eq!(a(&s, "nginx.marathon.mesos."), set(&["10.44.3.3"]));
    assert_eq!(
        a(&s, "report-builder.nightlyjobsandreports-v2.mesos."),
        set(&["10.40.0.11"]),
        "framework and task names are sanitised too"
    );
}

#[test]
fn task_slave_records_carry_the_agent_address() {
    let s = mesos_dns_test_snapshot(ALL);
    assert_eq!(
        a(&s, "cache-tier.marathon.slave.mesos."),
        set(&["10.40.0.11", "10.40.0.12"])
    );
    assert_eq!(
        a(&s, "ledger-store.marathon.slave.mesos."),
        set(&["10.40.0.11"])
    );
    assert_eq!(
        aaaa(&s, "kite.dual-stack.slave.mesos."),
        set(&["2001:db8:40::13"])
    );
}

#[test]
fn task_aaaa_records_from_network_infos() {
    let s = mesos_dns_test_snapshot(ALL);
    assert_eq!(aaaa(&s, "kite.dual-stack.mesos."), set(&["fd00:40::5:2"]));
    let netinfo = mesos_dns_test_snapshot(&[NetInfo]);
    assert_eq!(
        a(&netinfo, "kite.dual-stack.mesos."),
        set(&["172.31.5.3", "172.31.5.2"])
    );
    assert_eq!(
        aaaa(&netinfo, "kite.dual-stack.mesos."),
        set(&["fd00:40::5:2"])
    );
}

#[test]
fn ip_sources_priority_takes_the_first_populated_source() {
    let host = mesos_dns_test_snapshot(&[Host]);
    assert_eq!(
        a(&host, "cache-tier.marathon.mesos."),
        set(&["10.40.0.11", "10.40.0.12"])
    );
    assert_eq!(a(&host, "nginx.marathon.mesos."), set(&["10.40.0.11"]));
    assert_eq!(
        aaaa(&host, "kite.dual-stack.mesos."),
        set(&["2001:db8:40::13"])
    );

    let mesos = mesos_dns_test_snapshot(&[Mesos, Host]);
    assert_eq!(
        a(&mesos, "cache-tier.marathon.mesos."),
        set(&["10.40.0.11", "10.40.0.12"])
    );
    assert_eq!(a(&mesos, "nginx.marathon.mesos."), set(&["10.44.3.3"]));
    assert_eq!(
        aaaa(&mesos, "kite.dual-stack.mesos."),
        set(&["2001:db8:40::13"])
    );

    let docker = mesos_dns_test_snapshot(&[Docker, Host]);
    assert_eq!(
        a(&docker, "cache-tier.marathon.mesos."),
        set(&["10.44.1.1", "10.44.1.2"])
    );
    assert_eq!(a(&docker, "nginx.marathon.mesos."), set(&["10.40.0.11"]));
}

#[test]
fn unique_task_names_hash_the_task_id() {
    let s = mesos_dns_test_snapshot(ALL);
    assert_eq!(
        a(&s, "cache-tier-zp7h4-s11.marathon.mesos."),
        set(&["10.44.1.1"])
    );
    assert_eq!(
        a(&s, "cache-tier-n9zpu-s12.marathon.mesos."),
        set(&["10.44.1.2"])
    );
    assert_eq!(
        a(&s, "ledger-store-rfrib-s11.marathon.slave.mesos."),
        set(&["10.40.0.11"])
    );
}

#[test]
fn srv_records_for_resource_ports() {
    let s = mesos_dns_test_snapshot(ALL);
    let ledger = set(&[
        "ledger-store-rfrib-s11.marathon.slave.mesos.:31700",
        "ledger-store-rfrib-s11.marathon.slave.mesos.:31701",
    ]);
    assert_eq!(srv(&s, "_ledger-store._tcp.marathon.mesos."), ledger);
    assert_eq!(srv(&s, "_ledger-store._udp.marathon.mesos."), ledger);
    assert_eq!(srv(&s, "_ledger-store._tcp.marathon.slave.mesos."), ledger);
    // Tasks with DiscoveryInfo get resource-port SRVs only under .slave.
    assert!(srv(&s, "_cache-tier._udp.marathon.mesos.").is_empty());
    assert_eq!(
        srv(&s, "_cache-tier._udp.marathon.slave.mesos."),
        set(&[
            "cache-tier-zp7h4-s11.marathon.slave.mesos.:31500",
            "cache-tier-zp7h4-s11.marathon.slave.mesos.:31501",
            "cache-tier-n9zpu-s12.marathon.slave.mesos.:31600",
            "cache-tier-n9zpu-s12.marathon.slave.mesos.:31601",
        ])
    );
}

#[test]
fn srv_records_for_discovery_ports_and_named_ports() {
    let s = mesos_dns_test_snapshot(ALL);
    assert_eq!(
        srv(&s, "_cache-tier._tcp.marathon.mesos."),
        set(&[
            "cache-tier-zp7h4-s11.marathon.mesos.:8080",
            "cache-tier-zp7h4-s11.marathon.mesos.:8443",
            "cache-tier-n9zpu-s12.marathon.mesos.:8080",
            "cache-tier-n9zpu-s12.marathon.mesos.:8443",
        ])
    );
    assert_eq!(
        srv(&s, "_https._cache-tier._tcp.marathon.mesos."),
        set(&[
            "cache-tier-zp7h4-s11.marathon.mesos.:8443",
            "cache-tier-n9zpu-s12.marathon.mesos.:8443"
        ])
    );
    assert_eq!(
        srv(&s, "_http._cache-tier._tcp.marathon.mesos."),
        set(&[
            "cache-tier-zp7h4-s11.marathon.mesos.:8080",
            "cache-tier-n9zpu-s12.marathon.mesos.:8080"
        ])
    );
    assert!(s.lookup("_cache-tier.marathon.mesos.").is_none());
    // A udp port stays udp; a port without a protocol is both; a port without a name has no
    // named-port record.
    assert_eq!(
        srv(&s, "_gate-keeper._udp.marathon.mesos."),
        set(&[
            "gate-keeper-bu39u-s11.marathon.mesos.:53",
            "gate-keeper-bu39u-s11.marathon.mesos.:9000"
        ])
    );
    assert_eq!(
        srv(&s, "_gate-keeper._tcp.marathon.mesos."),
        set(&["gate-keeper-bu39u-s11.marathon.mesos.:9000"])
    );
    assert_eq!(
        srv(&s, "_dns._gate-keeper._udp.marathon.mesos."),
        set(&["gate-keeper-bu39u-s11.marathon.mesos.:53"])
    );
    assert!(s.lookup("_dns._gate-keeper._tcp.marathon.mesos.").is_none());
    assert_eq!(
        srv(&s, "_gate-keeper._tcp.marathon.slave.mesos."),
        set(&["gate-keeper-bu39u-s11.marathon.slave.mesos.:31530"])
    );
}

#[test]
fn leader_and_master_records() {
    let s = mesos_dns_test_snapshot(ALL);
    assert_eq!(a(&s, "leader.mesos."), set(&["10.40.0.2"]));
    assert_eq!(a(&s, "master.mesos."), set(&["10.40.0.2"]));
    assert_eq!(a(&s, "master0.mesos."), set(&["10.40.0.2"]));
    assert!(s.lookup("master1.mesos.").is_none());
    assert_eq!(srv(&s, "_leader._tcp.mesos."), set(&["leader.mesos.:5050"]));
    assert_eq!(srv(&s, "_leader._udp.mesos."), set(&["leader.mesos.:5050"]));
}

/// Mesos-DNS's TestMasterRecord table: masterN numbering with the leader in or out of the
/// configured list, duplicates, and IPv6.
#[test]
fn master_numbering_table() {
    type Case<'a> = (&'a [&'a str], &'a str, &'a [(&'a str, &'a str)]);
    let cases: &[Case<'_>] = &[
        (&[], "", &[]),
        (&[], "@", &[]),
        (&[], "3@4", &[]),
        (
            &[],
            "5@0.0.0.6:7",
            &[
                ("leader", "0.0.0.6"),
                ("master", "0.0.0.6"),
                ("master0", "0.0.0.6"),
            ],
        ),
        (
            &[],
            "5@[2001:db8::1]:7",
            &[
                ("leader", "2001:db8::1"),
                ("master", "2001:db8::1"),
                ("master0", "2001:db8::1"),
            ],
        ),
        (
            &["0.0.0.8:9"],
            "5@0.0.0.6:7",
            &[
                ("leader", "0.0.0.6"),
                ("master", "0.0.0.6"),
                ("master", "0.0.0.8"),
                ("master0", "0.0.0.8"),
                ("master1", "0.0.0.6"),
            ],
        ),
        (
            &["0.0.0.8:9", "0.0.0.8:9"],
            "5@0.0.0.6:7",
            &[
                ("leader", "0.0.0.6"),
                ("master", "0.0.0.6"),
                ("master", "0.0.0.8"),
                ("master0", "0.0.0.8"),
                ("master1", "0.0.0.6"),
            ],
        ),
        (
            &["0.0.0.8:9", "0.0.0.6:7", "0.0.0.6:7"],
            "5@0.0.0.6:7",
            &[
                ("leader", "0.0.0.6"),
                ("master", "0.0.0.6"),
                ("master", "0.0.0.8"),
                ("master0", "0.0.0.8"),
                ("master1", "0.0.0.6"),
            ],
        ),
        (
            &["0.0.0.8:9", "0.0.0.6:7", "0.0.0.7:0"],
            "5@0.0.0.6:7",
            &[
                ("leader", "0.0.0.6"),
                ("master", "0.0.0.6"),
                ("master", "0.0.0.8"),
                ("master", "0.0.0.7"),
                ("master0", "0.0.0.8"),
                ("master1", "0.0.0.6"),
                ("master2", "0.0.0.7"),
            ],
        ),
        (
            &["0.0.0.8:9", "0.0.0.6:7", "[2001:db8::1]:0"],
            "5@0.0.0.6:7",
            &[
                ("leader", "0.0.0.6"),
                ("master", "0.0.0.6"),
                ("master", "0.0.0.8"),
                ("master", "2001:db8::1"),
                ("master0", "0.0.0.8"),
                ("master1", "0.0.0.6"),
                ("master2", "2001:db8::1"),
            ],
        ),
    ];
    for (masters, leader, expect) in cases {
        let state = State {
            leader: (*leader).into(),
            ..State::default()
        };
        let mut st = settings(LabelSpec::Rfc1123, &[Host], masters);
        st.domain = "foo.com".into();
        st.ns_addrs.clear();
        let s = build(&state, &st, &HostAddrs::new(), 1).unwrap();
        let mut got: Vec<String> = s
            .listing()
            .into_iter()
            .filter(|l| l.contains(" A ") || l.contains(" AAAA "))
            .collect();
        got.sort();
        let mut want: Vec<String> = expect
            .iter()
            .map(|(n, ip)| {
                let kind = if ip.contains(':') { "AAAA" } else { "A" };
                format!("{n}.foo.com. {kind} {ip}")
            })
            .collect();
        want.sort();
        assert_eq!(got, want, "masters {masters:?} leader {leader}");
        if !expect.is_empty() {
            assert_eq!(
                srv(&s, "_leader._tcp.foo.com."),
                set(&["leader.foo.com.:7"])
            );
        }
    }
}

#[test]
fn agent_and_framework_records() {
    let s = mesos_dns_test_snapshot(ALL);
    assert_eq!(
        a(&s, "slave.mesos."),
        set(&["10.40.0.10", "10.40.0.11", "10.40.0.12"])
    );
    assert_eq!(aaaa(&s, "slave.mesos."), set(&["2001:db8:40::13"]));
    assert_eq!(srv(&s, "_slave._tcp.mesos."), set(&["slave.mesos.:5051"]));
    assert_eq!(a(&s, "marathon.mesos."), set(&["10.40.0.11"]));
    assert_eq!(aaaa(&s, "dual-stack.mesos."), set(&["2001:db8:40::13"]));
    assert_eq!(
        srv(&s, "_framework._tcp.marathon.mesos."),
        set(&["marathon.mesos.:25603"])
    );
    assert_eq!(
        srv(&s, "_framework._tcp.nightlyjobsandreports-v2.mesos."),
        set(&["nightlyjobsandreports-v2.mesos.:25602"])
    );
    // A framework without a PID is found by its hostname, without an SRV record.
    assert_eq!(a(&s, "schedulerwithoutpid.mesos."), set(&["127.0.0.1"]));
    assert!(s
        .lookup("_framework._tcp.schedulerwithoutpid.mesos.")
        .is_none());
}

#[test]
fn name_server_and_soa() {
    let s = mesos_dns_test_snapshot(&[Host]);
    assert_eq!(a(&s, "mesos-dns.mesos."), set(&["127.0.0.1"]));
    assert_eq!(s.soa.mname.to_ascii(), "mesos-dns.mesos.");
    assert_eq!(s.soa.rname.to_ascii(), "root.ns1.mesos.");
    assert_eq!(
        (
            s.soa.serial,
            s.soa.refresh,
            s.soa.retry,
            s.soa.expire,
            s.soa.minimum
        ),
        (1, 60, 600, 86400, 60)
    );
    assert_eq!(s.domain.to_ascii(), "mesos.");
}

#[test]
fn non_running_tasks_and_tasks_on_unknown_agents_get_no_names() {
    let s = mesos_dns_test_snapshot(ALL);
    for name in [
        "retired.marathon.mesos.",
        "retired.marathon.slave.mesos.",
        "_retired._tcp.marathon.mesos.",
        "pending.marathon.mesos.",
        "_pending._tcp.marathon.slave.mesos.",
        "orphan.marathon.mesos.",
        "orphan.marathon.slave.mesos.",
    ] {
        assert!(s.lookup(name).is_none(), "{name}");
    }
}

#[test]
fn task_without_an_address_still_gets_agent_records() {
    // With only netinfo as a source, ledger.store (host networking) has no address of its own.
    let s = mesos_dns_test_snapshot(&[NetInfo]);
    assert!(a(&s, "ledger-store.marathon.mesos.").is_empty());
    assert_eq!(
        a(&s, "ledger-store.marathon.slave.mesos."),
        set(&["10.40.0.11"])
    );
    assert!(!srv(&s, "_ledger-store._tcp.marathon.mesos.").is_empty());
}

#[test]
fn ipv6_only_task_has_no_a_records() {
    let s = mesos_dns_test_snapshot(&[Host]);
    let e = s.lookup("kite.dual-stack.mesos.").unwrap();
    assert!(e.a.is_empty());
    assert_eq!(e.aaaa.len(), 1);
}

#[test]
fn legacy_raw_discovery_names_are_served_when_queryable() {
    let s = mesos_dns_test_snapshot(ALL);
    // Mesos-DNS also inserts the unsanitised discovery names "gate.keeper" and "cache.tier".
    assert_eq!(a(&s, "gate.keeper.marathon.mesos."), set(&["10.44.1.5"]));
    assert_eq!(
        a(&s, "cache.tier.marathon.mesos."),
        set(&["10.44.1.1", "10.44.1.2"])
    );
    // The task name is not used when DiscoveryInfo names the task.
    assert!(s.lookup("gate-keeper2.marathon.mesos.").is_none());
}

#[test]
fn empty_non_terminals_exist() {
    let s = mesos_dns_test_snapshot(ALL);
    for ent in ["_tcp.marathon.mesos.", "marathon.slave.mesos.", "mesos."] {
        let e = s.lookup(ent).unwrap_or_else(|| panic!("{ent} missing"));
        assert!(e.a.is_empty() && e.srv.is_empty(), "{ent}");
    }
}

#[test]
fn srv_targets_link_to_their_addresses() {
    let s = mesos_dns_test_snapshot(ALL);
    let e = s.lookup("_ledger-store._tcp.marathon.mesos.").unwrap();
    for r in e.srv {
        let t = e.target(r);
        let by_index = e.target_entry(t.entry.expect("target entry"));
        let by_name = s.lookup(t.name).unwrap();
        assert_eq!(by_index.a, by_name.a);
        assert!(!by_index.a.is_empty());
    }
}

fn tiny_state(frameworks: serde_json::Value) -> State {
    let doc = json!({
        "leader": "master@10.0.0.1:5050",
        "slaves": [{"id": "a-S1", "pid": "slave(1)@10.0.1.1:5051"},
                   {"id": "a-S2", "pid": "slave(1)@10.0.1.2:5051"}],
        "frameworks": frameworks,
    });
    State::from_json(&serde_json::to_vec(&doc).unwrap()).unwrap()
}

fn running(id: &str, name: &str, slave: &str) -> serde_json::Value {
    json!({"id": id, "name": name, "slave_id": slave, "state": "TASK_RUNNING", "statuses": []})
}

#[test]
fn duplicate_task_names_across_frameworks_stay_apart() {
    let state = tiny_state(json!([
        {"name": "marathon", "pid": "s@10.0.0.2:1", "tasks": [running("web.1", "web", "a-S1"), running("web.2", "web", "a-S2")]},
        {"name": "aurora", "pid": "s@10.0.0.3:1", "tasks": [running("web.3", "web", "a-S2")]},
    ]));
    let s = build(
        &state,
        &settings(LabelSpec::Rfc1123, &[Host], &[]),
        &HostAddrs::new(),
        1,
    )
    .unwrap();
    assert_eq!(a(&s, "web.marathon.mesos."), set(&["10.0.1.1", "10.0.1.2"]));
    assert_eq!(a(&s, "web.aurora.mesos."), set(&["10.0.1.2"]));
}

#[test]
fn names_needing_sanitising() {
    let state = tiny_state(json!([
        {"name": "My Framework_v2", "pid": "s@10.0.0.2:1", "tasks": [
            running("t.1", "Hello.World_App", "a-S1"),
            running("t.2", "--ünïcödé--", "a-S1"),
            running("t.3", "!!!", "a-S1")]},
    ]));
    let s = build(
        &state,
        &settings(LabelSpec::Rfc1123, &[Host], &[]),
        &HostAddrs::new(),
        1,
    )
    .unwrap();
    assert_eq!(
        a(&s, "hello-world-app.myframework-v2.mesos."),
        set(&["10.0.1.1"])
    );
    assert_eq!(a(&s, "ncd.myframework-v2.mesos."), set(&["10.0.1.1"]));
    // A name that sanitises to nothing can't form a valid name: dropped, never served broken.
    assert!(s.stats.dropped_names > 0);
    for (name, _) in s.names() {
        assert!(name.split('.').all(|l| l.len() <= 63));
    }
}

#[test]
fn tasks_on_unknown_agents_are_skipped() {
    let state = tiny_state(json!([
        {"name": "m", "pid": "s@10.0.0.2:1", "tasks": [running("x.1", "ghost", "no-such-agent")]},
    ]));
    let s = build(
        &state,
        &settings(LabelSpec::Rfc1123, &[Host], &[]),
        &HostAddrs::new(),
        1,
    )
    .unwrap();
    assert!(s.lookup("ghost.m.mesos.").is_none());
    assert_eq!(s.stats.tasks, 0);
}

#[test]
fn enumeration_lists_every_task_record() {
    let state = fixture();
    let st = settings(LabelSpec::Rfc952, ALL, &[]);
    let en = enumerate(&state, &st, &localhost_hosts());
    let names: Vec<&str> = en.frameworks.iter().map(|f| f.name.as_str()).collect();
    assert_eq!(
        names,
        [
            "dual-stack",
            "Nightly Jobs AND Reports_v2.4.1",
            "scheduler without pid",
            "marathon"
        ]
    );
    let marathon = &en.frameworks[3];
    assert_eq!(
        marathon.tasks.len(),
        7,
        "retired and pending are not running, orphan's agent is unknown"
    );
    let ledger = marathon
        .tasks
        .iter()
        .find(|t| t.name == "ledger.store")
        .unwrap();
    assert!(ledger
        .records
        .iter()
        .any(|r| r.name == "ledger-store.marathon.mesos." && r.rtype == "A"));
    assert!(ledger.records.iter().any(
        |r| r.rtype == "SRV" && r.host == "ledger-store-rfrib-s11.marathon.slave.mesos.:31700"
    ));
}

#[test]
fn lookups_use_lowercase_keys() {
    let s = mesos_dns_test_snapshot(&[Host]);
    assert!(s.lookup("nginx.marathon.mesos.").is_some());
    assert!(
        s.lookup("NGINX.marathon.mesos.").is_none(),
        "callers lowercase the query name"
    );
}

/// The whole record set for the fixture with the default configuration (RFC 1123 labels, IP
/// sources netinfo, mesos, host; the fixture's own leader; name server on 127.0.0.1), checked
/// against a reviewed listing so any change in any generated name or value shows up.
#[test]
fn full_record_set_for_the_fixture() {
    let s = build(
        &fixture(),
        &settings(LabelSpec::Rfc1123, &[NetInfo, Mesos, Host], &[]),
        &localhost_hosts(),
        1,
    )
    .unwrap();
    let got = s.listing().join("\n") + "\n";
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/golden/cluster_records.txt");
    if std::env::var_os("UPDATE_GOLDEN").is_some() {
        std::fs::write(&path, &got).unwrap();
    }
    let want = std::fs::read_to_string(&path).expect("golden file");
    assert_eq!(
        got, want,
        "record set changed; review and rerun with UPDATE_GOLDEN=1"
    );
}

/// Every reverse name points at a name that resolves back to its address (forward-confirmed),
/// on the fixture and on a synthetic cluster, under every IP source order; and an agent's
/// address is never taken by a task.
#[test]
fn reverse_names_resolve_back_to_their_address() {
    use super::snapshot::reverse_name;
    let synthetic = State::from_json(&crate::mesos::synthetic::state_json(500)).unwrap();
    for state in [fixture(), synthetic] {
        for sources in [
            &[IpSource::NetInfo, IpSource::Mesos, IpSource::Host][..],
            &[IpSource::Host],
            &[IpSource::Routable],
        ] {
            let snap = build(
                &state,
                &settings(LabelSpec::Rfc1123, sources, &[]),
                &localhost_hosts(),
                1,
            )
            .unwrap();
            let reverse: Vec<std::net::IpAddr> = snap
                .shards()
                .flat_map(|s| &s.reverse)
                .filter(|&(_, &t)| t != super::snapshot::PTR_MULTI)
                .map(|(&ip, _)| ip)
                .collect();
            assert!(!reverse.is_empty());
            for ip in reverse {
                let target = snap.ptr(&reverse_name(ip)).unwrap();
                if let Some(entry) = snap.lookup(target) {
                    let back: Vec<std::net::IpAddr> = entry
                        .a
                        .iter()
                        .map(|&v4| v4.into())
                        .chain(entry.aaaa.iter().map(|&v6| v6.into()))
                        .collect();
                    assert!(back.contains(&ip), "{ip} -> {target} -> {back:?}");
                } else {
                    // Not a zone name: an agent's registered hostname.
                    assert!(
                        state
                            .slaves
                            .iter()
                            .any(|s| format!("{}.", s.hostname.to_ascii_lowercase()) == target),
                        "{ip} -> {target}"
                    );
                }
            }
        }
    }
    let off = Config {
        reverse_lookups: false,
        ..Config::default()
    };
    let snap = build(
        &fixture(),
        &RecordSettings::from_config(&off, vec![]),
        &localhost_hosts(),
        1,
    )
    .unwrap();
    assert!(snap.shards().all(|s| s.reverse.is_empty()));
}

/// `omitUnhealthy` narrows each record set of a name separately: an unhealthy instance's
/// IPv4 address stays when no healthy one has any, though a healthy one gives IPv6.
#[test]
fn health_narrows_each_record_set_separately() {
    let state = State::from_json(
        json!({"leader": "master@10.0.0.1:5050",
            "frameworks": [{"id": "f", "name": "marathon", "tasks": [
                {"id": "web.1", "name": "web", "slave_id": "s1", "state": "TASK_RUNNING",
                 "statuses": [{"state": "TASK_RUNNING", "timestamp": 1.0, "healthy": true,
                    "container_status": {"network_infos": [{"ip_addresses": [{"ip_address": "fd00::1"}]}]}}]},
                {"id": "web.2", "name": "web", "slave_id": "s1", "state": "TASK_RUNNING",
                 "statuses": [{"state": "TASK_RUNNING", "timestamp": 1.0, "healthy": false,
                    "container_status": {"network_infos": [{"ip_addresses": [{"ip_address": "10.9.0.2"}]}]}}]}]}],
            "slaves": [{"id": "s1", "pid": "slave(1)@10.0.1.1:5051"}]})
        .to_string()
        .as_bytes(),
    )
    .unwrap();
    let c = Config {
        omit_unhealthy: true,
        ..Config::default()
    };
    let snap = build(
        &state,
        &RecordSettings::from_config(&c, vec![]),
        &HostAddrs::new(),
        1,
    )
    .unwrap();
    assert_eq!(a(&snap, "web.marathon.mesos."), set(&["10.9.0.2"]));
    assert_eq!(aaaa(&snap, "web.marathon.mesos."), set(&["fd00::1"]));
}

#[test]
fn srv_targets_outside_the_snapshot_keep_their_name_and_bad_ones_are_dropped() {
    use super::{build_from_records, ListedRecord};
    let s = settings(LabelSpec::Rfc1123, ALL, &[]);
    let records = [
        ListedRecord::A("web.marathon.mesos.".into(), "10.0.0.1".parse().unwrap()),
        ListedRecord::Srv(
            "_web._tcp.marathon.mesos.".into(),
            "web.marathon.mesos.".into(),
            80,
        ),
        ListedRecord::Srv(
            "_web._tcp.marathon.mesos.".into(),
            "db.example.com.".into(),
            81,
        ),
        ListedRecord::Srv("_web._tcp.marathon.mesos.".into(), "bad\\.name.".into(), 82),
        ListedRecord::Srv("_web._tcp.marathon.mesos.".into(), "no-dot".into(), 83),
    ];
    let snap = build_from_records(&records, &s, 1).unwrap();
    let e = snap.lookup("_web._tcp.marathon.mesos.").unwrap();
    let targets: Vec<(String, u16, bool)> = e
        .srv
        .iter()
        .map(|r| {
            let t = e.target(r);
            (t.name.to_string(), r.port, t.entry.is_some())
        })
        .collect();
    assert_eq!(
        targets,
        vec![
            ("web.marathon.mesos.".to_string(), 80, true),
            ("db.example.com.".to_string(), 81, false),
        ]
    );
    let owner = e
        .target(&e.srv[0])
        .entry
        .map(|i| e.target_entry(i))
        .unwrap();
    assert_eq!(owner.a, ["10.0.0.1".parse::<std::net::Ipv4Addr>().unwrap()]);
}
