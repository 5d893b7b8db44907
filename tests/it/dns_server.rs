//! Black-box tests: the real binary serving the cluster fixture, queried over UDP and TCP.

use std::time::Duration;

use crate::common::*;
use hickory_proto::op::{Edns, Message, OpCode, ResponseCode};
use hickory_proto::rr::{DNSClass, Name, RData, RecordType};

fn cluster_daemon() -> Daemon {
    let path = fixture(CLUSTER);
    start(&["--state-file", path.to_str().unwrap()])
}

#[test]
fn answers_a_aaaa_and_srv_with_additional_addresses() {
    let d = cluster_daemon();

    let m = d.udp("nginx.marathon.mesos.", RecordType::A, None);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(m.metadata.authoritative);
    assert_eq!(answers(&m), ["A 10.44.3.3"]);
    assert_eq!(m.answers[0].ttl, 60);

    let m = d.udp("kite.dual-stack.mesos.", RecordType::AAAA, None);
    assert_eq!(answers(&m), ["AAAA fd00:40::5:2"]);

    let m = d.udp(
        "_ledger-store._tcp.marathon.mesos.",
        RecordType::SRV,
        Some(1232),
    );
    assert_eq!(
        answers(&m),
        [
            "SRV 0 1 31700 ledger-store-rfrib-s11.marathon.slave.mesos.",
            "SRV 0 1 31701 ledger-store-rfrib-s11.marathon.slave.mesos."
        ]
    );
    let extra: Vec<String> = m
        .additionals
        .iter()
        .map(|r| format!("{} {} {}", r.name, r.record_type(), r.data))
        .collect();
    assert_eq!(
        extra,
        ["ledger-store-rfrib-s11.marathon.slave.mesos. A 10.40.0.11"]
    );
}

#[test]
fn zone_transfers_over_dns_are_refused() {
    let d = cluster_daemon();
    for rtype in [RecordType::AXFR, RecordType::IXFR] {
        assert_eq!(
            d.tcp("mesos.", rtype).metadata.response_code,
            ResponseCode::Refused
        );
        assert_eq!(
            d.udp("mesos.", rtype, Some(1232)).metadata.response_code,
            ResponseCode::Refused
        );
    }
}

#[test]
fn tcp_gives_the_same_answers() {
    let d = cluster_daemon();
    let m = d.tcp("cache-tier.marathon.mesos.", RecordType::A);
    assert_eq!(answers(&m), ["A 10.40.0.11", "A 10.40.0.12"]);
    let m = d.tcp("_leader._tcp.mesos.", RecordType::SRV);
    assert_eq!(answers(&m), ["SRV 0 1 5050 leader.mesos."]);
}

#[test]
fn nxdomain_and_nodata_carry_the_soa() {
    let d = cluster_daemon();
    let m = d.udp("no-such-task.marathon.mesos.", RecordType::A, None);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert!(m.metadata.authoritative);
    assert!(m.answers.is_empty());
    assert_eq!(m.authorities.len(), 1);
    let RData::SOA(soa) = &m.authorities[0].data else {
        panic!("authority is not an SOA")
    };
    assert_eq!(m.authorities[0].name.to_ascii(), "mesos.");
    assert_eq!(soa.mname.to_ascii(), "ns1.mesos.");
    assert_eq!(soa.minimum, 60);

    // Existing name, other type: NODATA.
    for (name, rtype) in [
        ("nginx.marathon.mesos.", RecordType::AAAA),
        ("nginx.marathon.mesos.", RecordType::TXT),
        ("_tcp.marathon.mesos.", RecordType::A), // empty non-terminal
    ] {
        let m = d.udp(name, rtype, None);
        assert_eq!(
            m.metadata.response_code,
            ResponseCode::NoError,
            "{name} {rtype}"
        );
        assert!(m.answers.is_empty());
        assert!(matches!(&m.authorities[0].data, RData::SOA(_)));
    }
}

#[test]
fn apex_soa_ns_and_any() {
    let d = cluster_daemon();
    let m = d.udp("mesos.", RecordType::SOA, None);
    assert_eq!(m.answers.len(), 1);
    assert!(matches!(&m.answers[0].data, RData::SOA(_)));
    let m = d.udp("mesos.", RecordType::NS, None);
    assert_eq!(answers(&m), ["NS ns1.mesos."]);
    assert!(m
        .additionals
        .iter()
        .any(|r| r.record_type() == RecordType::A));

    let m = d.udp("slave.mesos.", RecordType::ANY, Some(1232));
    assert_eq!(
        answers(&m),
        [
            "A 10.40.0.10",
            "A 10.40.0.11",
            "A 10.40.0.12",
            "AAAA 2001:db8:40::13"
        ]
    );
}

#[test]
fn names_are_case_insensitive_and_keep_the_query_case() {
    let d = cluster_daemon();
    let m = d.udp("NgInX.MaRaThOn.MeSoS.", RecordType::A, None);
    assert_eq!(answers(&m), ["A 10.44.3.3"]);
    assert_eq!(m.answers[0].name.to_ascii(), "NgInX.MaRaThOn.MeSoS.");
    assert_eq!(m.queries[0].name().to_ascii(), "NgInX.MaRaThOn.MeSoS.");
}

#[test]
fn other_domains_are_refused_when_forwarding_is_off() {
    let d = cluster_daemon();
    let m = d.udp("example.com.", RecordType::A, None);
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    let mut q = query("nginx.marathon.mesos.", RecordType::A, None);
    q.queries[0].set_query_class(DNSClass::CH);
    assert_eq!(
        udp(d.addr, &q).metadata.response_code,
        ResponseCode::Refused
    );
}

#[test]
fn multi_record_answers_are_shuffled() {
    let d = cluster_daemon();
    let mut orders = std::collections::HashSet::new();
    for _ in 0..40 {
        let m = d.udp("slave.mesos.", RecordType::A, None);
        let order: Vec<String> = m.answers.iter().map(|r| r.data.to_string()).collect();
        orders.insert(order);
    }
    assert!(orders.len() > 1, "always the same order: {orders:?}");
}

/// The same query asked over and over (from the second time on answered from the UDP reader
/// thread's held answers) keeps its ID, keeps coming in new orders, and an SRV answer's
/// addresses follow its targets in the order they first appear, each under its own target.
#[test]
fn repeated_queries_keep_their_ids_and_come_in_new_orders() {
    let d = start(&["--demo"]);
    let mut orders = std::collections::HashSet::new();
    let mut addresses = std::collections::HashSet::new();
    for id in 1000..1060 {
        let mut q = query("_api._tcp.marathon.mesos.", RecordType::SRV, Some(1232));
        q.metadata.id = id;
        let m = udp(d.addr, &q);
        assert_eq!(m.answers.len(), 4);
        let mut targets: Vec<Name> = Vec::new();
        for r in &m.answers {
            if let RData::SRV(srv) = &r.data {
                if !targets.contains(&srv.target) {
                    targets.push(srv.target.clone());
                }
            }
        }
        let mut owners: Vec<Name> = m.additionals.iter().map(|r| r.name.clone()).collect();
        owners.dedup();
        assert_eq!(owners, targets);
        for r in &m.additionals {
            addresses.insert(format!("{} {}", r.name, r.data));
        }
        orders.insert(
            m.answers
                .iter()
                .map(|r| r.data.to_string())
                .collect::<Vec<_>>(),
        );
    }
    assert!(orders.len() > 5, "only {} orders of 24", orders.len());
    assert_eq!(
        addresses.len(),
        2,
        "each target always under its own address: {addresses:?}"
    );
}

#[test]
fn unknown_opcode_is_notimp_and_edns_version_1_is_badvers() {
    let d = cluster_daemon();
    let mut q = query("nginx.marathon.mesos.", RecordType::A, None);
    q.metadata.op_code = OpCode::Status;
    assert_eq!(udp(d.addr, &q).metadata.response_code, ResponseCode::NotImp);

    let mut q = query("nginx.marathon.mesos.", RecordType::A, None);
    let mut e = Edns::new();
    e.set_version(1);
    q.set_edns(e);
    let m = udp(d.addr, &q);
    // BADVERS is extended rcode 16 (hickory decodes 16 under its other name, BADSIG).
    assert_eq!(u16::from(m.metadata.response_code), 16);
    assert_eq!(m.edns.as_ref().map(|e| e.version()), Some(0));
}

#[test]
fn malformed_packets_get_formerr_and_the_daemon_keeps_serving() {
    let d = cluster_daemon();
    // A header claiming one question, followed by garbage.
    let mut garbage = vec![0xab, 0xcd, 0x01, 0x00, 0x00, 0x01, 0, 0, 0, 0, 0, 0];
    garbage.extend_from_slice(&[0xff; 20]);
    let raw = udp_raw(d.addr, &garbage, Duration::from_secs(2)).expect("FORMERR answer");
    let m = Message::from_vec(&raw).unwrap();
    assert_eq!(m.metadata.id, 0xabcd);
    assert_eq!(m.metadata.response_code, ResponseCode::FormErr);

    // Too short for a header: dropped silently.
    assert!(udp_raw(d.addr, &[1, 2, 3], Duration::from_millis(300)).is_none());

    // Two questions: FORMERR.
    let mut q = query("nginx.marathon.mesos.", RecordType::A, None);
    q.add_query(q.queries[0].clone());
    assert_eq!(
        udp(d.addr, &q).metadata.response_code,
        ResponseCode::FormErr
    );

    // Garbage over TCP too.
    let raw = tcp_raw(d.addr, &garbage);
    assert_eq!(
        Message::from_vec(&raw).unwrap().metadata.response_code,
        ResponseCode::FormErr
    );

    let m = d.udp("nginx.marathon.mesos.", RecordType::A, None);
    assert_eq!(answers(&m), ["A 10.44.3.3"]);
}

/// A state with one app of `n` instances, each with its own container address.
fn big_app_state(n: usize) -> serde_json::Value {
    let tasks: Vec<serde_json::Value> = (0..n)
        .map(|i| {
            serde_json::json!({"id": format!("big.{i}"), "name": "big", "slave_id": "S1",
                "state": "TASK_RUNNING", "statuses": [{"state": "TASK_RUNNING", "timestamp": 1.0,
                "container_status": {"network_infos": [{"ip_addresses": [{"ip_address": format!("10.9.{}.{}", i / 250, i % 250 + 1)}]}]}}]})
        })
        .collect();
    serde_json::json!({"leader": "master@10.0.0.1:5050",
        "slaves": [{"id": "S1", "pid": "slave(1)@10.0.1.1:5051"}],
        "frameworks": [{"name": "marathon", "pid": "s@10.0.0.2:1", "tasks": tasks}]})
}

#[test]
fn large_answers_truncate_over_udp_and_complete_over_tcp() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    std::fs::write(&path, serde_json::to_vec(&big_app_state(60)).unwrap()).unwrap();
    let d = start(&["--state-file", path.to_str().unwrap()]);

    // 60 A records (~1 KB) don't fit 512 bytes: TC set, no partial answer.
    let m = d.udp("big.marathon.mesos.", RecordType::A, None);
    assert!(m.metadata.truncation);
    assert!(m.answers.is_empty());
    // The client's EDNS size is honoured: 1232 fits, 512 does not.
    let m = d.udp("big.marathon.mesos.", RecordType::A, Some(1232));
    assert!(!m.metadata.truncation);
    assert_eq!(m.answers.len(), 60);
    let m = d.udp("big.marathon.mesos.", RecordType::A, Some(512));
    assert!(m.metadata.truncation);
    // The retry over TCP gets everything.
    let m = d.tcp("big.marathon.mesos.", RecordType::A);
    assert!(!m.metadata.truncation);
    assert_eq!(m.answers.len(), 60);
}

#[test]
fn state_file_changes_are_picked_up_and_bad_documents_keep_the_last_snapshot() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.json");
    // Not there yet: the daemon starts, but has nothing to say about the domain.
    let d = {
        let port_args = path.to_str().unwrap().to_string();
        let port = free_port();
        let http_port = free_port();
        let child = std::process::Command::new(env!("CARGO_BIN_EXE_mesos-dns-sidecar"))
            .args([
                "--state-file",
                &port_args,
                "--listener",
                "127.0.0.1",
                "--port",
                &port.to_string(),
            ])
            .args(["--log-level", "error", "--no-forward"])
            .args(["--http-port", &http_port.to_string()])
            .spawn()
            .unwrap();
        Daemon {
            child,
            addr: std::net::SocketAddr::from(([127, 0, 0, 1], port)),
            http: std::net::SocketAddr::from(([127, 0, 0, 1], http_port)),
        }
    };
    let m = d.wait_for("big.marathon.mesos.", RecordType::A, |m| {
        m.metadata.response_code == ResponseCode::ServFail
    });
    assert!(m.answers.is_empty());

    let write = |doc: &[u8]| {
        let tmp = dir.path().join("state.json.tmp");
        std::fs::write(&tmp, doc).unwrap();
        std::fs::rename(&tmp, &path).unwrap();
    };
    write(&serde_json::to_vec(&big_app_state(2)).unwrap());
    d.wait_for("big.marathon.mesos.", RecordType::A, |m| {
        m.answers.len() == 2
    });

    write(&serde_json::to_vec(&big_app_state(3)).unwrap());
    d.wait_for("big.marathon.mesos.", RecordType::A, |m| {
        m.answers.len() == 3
    });

    // Garbage, then a document without a leader: both rejected, the 3-task snapshot stays.
    write(b"{\"frameworks\": [truncated");
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        d.udp("big.marathon.mesos.", RecordType::A, None)
            .answers
            .len(),
        3
    );
    write(b"{\"frameworks\": []}");
    std::thread::sleep(Duration::from_millis(2500));
    assert_eq!(
        d.udp("big.marathon.mesos.", RecordType::A, None)
            .answers
            .len(),
        3
    );
}

#[test]
fn demo_cluster_answers_web() {
    let d = start(&["--demo"]);
    let m = d.udp("web.marathon.mesos.", RecordType::A, None);
    assert_eq!(
        answers(&m),
        ["A 172.30.1.2", "A 172.30.2.7", "A 172.30.3.4"]
    );
    let m = d.udp("_api._tcp.marathon.mesos.", RecordType::SRV, None);
    assert_eq!(m.answers.len(), 4);
}
