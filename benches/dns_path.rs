//! The DNS path without sockets: CPU time per query from the packet to the response ready to
//! send, through the routing point (`Handlers::route`) and the counting done at send
//! (`Metrics::count_response`), for each kind of query a node sees.
//!
//! Run with `cargo bench --bench dns_path`. Each kind runs over a set of distinct pre-encoded
//! queries for about half a second, five times; the table shows the fastest of the five (the
//! least disturbed by other work on the machine) and the median. `peers.sh` measures the whole
//! daemon against dnsmasq and unbound; this isolates the code a refactor of the query path
//! touches, where the socket system calls would drown a difference of nanoseconds.

use std::sync::Arc;
use std::time::{Duration, Instant};

use arc_swap::ArcSwapOption;
use hickory_proto::op::{Edns, Message, Query};
use hickory_proto::rr::rdata::A;
use hickory_proto::rr::{Name, RData, Record, RecordType};
use mesos_dns_sidecar::config::Config;
use mesos_dns_sidecar::dns::access::{ClientAcl, ClientGuard, RateLimit};
use mesos_dns_sidecar::dns::cache::CacheKey;
use mesos_dns_sidecar::dns::forward::ForwardSettings;
use mesos_dns_sidecar::dns::server::{HeldAnswers, InFlight};
use mesos_dns_sidecar::dns::upstream::UpstreamSet;
use mesos_dns_sidecar::dns::{Forwarder, Handlers, Responder, Routed, Transport};
use mesos_dns_sidecar::mesos::model::State;
use mesos_dns_sidecar::mesos::synthetic;
use mesos_dns_sidecar::metrics::Metrics;
use mesos_dns_sidecar::records::snapshot::Entry;
use mesos_dns_sidecar::records::{build, HostAddrs, RecordSettings};

/// Distinct queries per kind (cycled through).
const QUERIES: usize = 1000;

fn query(name: &str, qtype: RecordType, edns: bool) -> Vec<u8> {
    let mut m = Message::query();
    m.metadata.id = 0x2a2a;
    m.metadata.recursion_desired = true;
    m.add_query(Query::query(Name::from_ascii(name).unwrap(), qtype));
    if edns {
        let mut e = Edns::new();
        e.set_max_payload(1232);
        m.set_edns(e);
    }
    m.to_vec().unwrap()
}

/// An upstream's answer to `name` A: one address, TTL 3600.
fn upstream_answer(name: &str) -> Vec<u8> {
    let mut m = Message::query();
    m.metadata.message_type = hickory_proto::op::MessageType::Response;
    m.metadata.recursion_available = true;
    let owner = Name::from_ascii(name).unwrap();
    m.add_query(Query::query(owner.clone(), RecordType::A));
    m.add_answer(Record::from_rdata(
        owner,
        3600,
        RData::A(A::new(192, 0, 2, 1)),
    ));
    m.to_vec().unwrap()
}

/// The handlers, the snapshot's names with addresses and its names with SRV records.
fn handlers(tasks: usize) -> (Handlers, Vec<String>, Vec<String>) {
    let metrics = Arc::new(Metrics::default());
    let state = State::from_json(&synthetic::state_json(tasks)).unwrap();
    let settings = RecordSettings::from_config(&Config::default(), vec![]);
    let snap = build(&state, &settings, &HostAddrs::new(), 1).unwrap();
    let sorted = |keep: fn(&Entry<'_>) -> bool| {
        let mut names: Vec<String> = snap
            .names()
            .filter(|(_, e)| keep(e))
            .map(|(n, _)| n.to_string())
            .collect();
        names.sort();
        names
    };
    let names = sorted(|e| !e.a.is_empty());
    let services = sorted(|e| !e.srv.is_empty());
    let store = Arc::new(ArcSwapOption::from_pointee(snap));
    let responder = Responder::new("mesos", store, metrics.clone(), true).unwrap();
    let forwarder = Arc::new(Forwarder::new(
        UpstreamSet::new(&[], false),
        vec![],
        ForwardSettings::default(),
        metrics.clone(),
    ));
    for i in 0..QUERIES {
        let name = format!("name{i}.bench.test.");
        let key = CacheKey {
            name: name.clone().into_bytes().into_boxed_slice(),
            qtype: 1,
            qclass: 1,
            dnssec_ok: false,
            checking_disabled: false,
        };
        forwarder
            .cache()
            .store(key, upstream_answer(&name))
            .expect("cached");
    }
    let guard = ClientGuard::new(
        Arc::new(ClientAcl::open()),
        RateLimit::default(),
        metrics.clone(),
    );
    let h = Handlers {
        responder: Arc::new(responder),
        forwarder: Some(forwarder),
        metrics,
        guard: Arc::new(guard),
        in_flight: InFlight::default(),
    };
    (h, names, services)
}

/// One pass over `packets`: route each (as a UDP reader thread does when given its `hot`
/// answers) and count what would be sent; returns how many were answered at once (a check
/// that the kind is what it claims).
fn pass(h: &Handlers, packets: &[Vec<u8>], mut hot: Option<&mut HeldAnswers>) -> usize {
    let mut answered = 0;
    // A reader reads the clock once per batch.
    let received = std::time::Instant::now();
    for p in packets {
        let routed = match hot.as_deref_mut() {
            Some(hot) => h.route_udp(p, hot, received),
            None => h.route(p, Transport::Udp),
        };
        match routed {
            Routed::Reply(reply) => {
                let tc = reply.bytes[2] & 0x02 != 0;
                h.metrics.count_response(reply.qtype, reply.rcode, tc);
                answered += 1;
                std::hint::black_box(reply);
            }
            Routed::Forward(job) => {
                std::hint::black_box(job);
            }
            Routed::Drop => {}
        }
    }
    answered
}

fn main() {
    let (h, names, services) = handlers(1000);
    let pick = |i: usize| &names[i * 7 % names.len()];
    let service = |i: usize| &services[i * 7 % services.len()];
    let kinds: Vec<(&str, Vec<Vec<u8>>, bool, bool)> = vec![
        (
            "cluster A (fast path)",
            (0..QUERIES)
                .map(|i| query(pick(i), RecordType::A, false))
                .collect(),
            true,
            false,
        ),
        (
            "cluster A, EDNS (fast path)",
            (0..QUERIES)
                .map(|i| query(pick(i), RecordType::A, true))
                .collect(),
            true,
            false,
        ),
        (
            "cluster SRV (fast path)",
            (0..QUERIES)
                .map(|i| query(service(i), RecordType::SRV, false))
                .collect(),
            true,
            false,
        ),
        (
            "cluster A, a UDP reader's held answers",
            (0..QUERIES)
                .map(|i| query(pick(i), RecordType::A, false))
                .collect(),
            true,
            true,
        ),
        (
            "cluster SRV, a UDP reader's held answers",
            (0..QUERIES)
                .map(|i| query(service(i), RecordType::SRV, false))
                .collect(),
            true,
            true,
        ),
        (
            "cluster NXDOMAIN (search-list name)",
            (0..QUERIES)
                .map(|i| {
                    query(
                        &format!("www{i}.example.com.marathon.mesos."),
                        RecordType::A,
                        false,
                    )
                })
                .collect(),
            true,
            false,
        ),
        (
            "cluster SOA at the apex (general path)",
            (0..QUERIES)
                .map(|_| query("mesos.", RecordType::SOA, false))
                .collect(),
            true,
            false,
        ),
        (
            "forwarded, cache hit",
            (0..QUERIES)
                .map(|i| query(&format!("name{i}.bench.test."), RecordType::A, false))
                .collect(),
            true,
            false,
        ),
        (
            "forwarded, cache hit, EDNS",
            (0..QUERIES)
                .map(|i| query(&format!("name{i}.bench.test."), RecordType::A, true))
                .collect(),
            true,
            false,
        ),
        (
            "forwarded, cache hit, a UDP reader's hot answers",
            (0..QUERIES)
                .map(|i| query(&format!("name{i}.bench.test."), RecordType::A, false))
                .collect(),
            true,
            true,
        ),
        (
            "forwarded, miss (routing only)",
            (0..QUERIES)
                .map(|i| query(&format!("miss{i}.bench.test."), RecordType::A, false))
                .collect(),
            false,
            false,
        ),
    ];
    println!("| query | ns/query, fastest of 5 | median of 5 |");
    println!("| --- | --- | --- |");
    let mut hot = HeldAnswers::default();
    for (label, packets, inline, reader) in &kinds {
        let mut hot = reader.then_some(&mut hot);
        let answered = pass(&h, packets, hot.as_deref_mut());
        assert_eq!(
            answered == packets.len(),
            *inline,
            "{label}: {answered} answered"
        );
        let mut runs = Vec::new();
        for _ in 0..5 {
            let started = Instant::now();
            let mut n = 0usize;
            while started.elapsed() < Duration::from_millis(500) {
                pass(&h, packets, hot.as_deref_mut());
                n += packets.len();
            }
            runs.push(started.elapsed().as_nanos() as f64 / n as f64);
        }
        runs.sort_by(f64::total_cmp);
        println!("| {label} | {:.0} | {:.0} |", runs[0], runs[2]);
    }
}
