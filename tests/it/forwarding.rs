//! Black-box forwarding tests: the real binary in front of an in-process upstream server.

use std::net::SocketAddr;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use crate::common::upstream::{black_hole, loopback, FakeUpstream};
use crate::common::*;
use hickory_proto::op::{Edns, Message, ResponseCode};
use hickory_proto::rr::{RData, RecordType};
use serde_json::json;

fn daemon_for(upstreams: &[SocketAddr], extra: serde_json::Value) -> (Daemon, tempfile::TempDir) {
    let mut config = json!({
        "resolvers": upstreams.iter().map(|a| a.to_string()).collect::<Vec<_>>(),
        "timeout": 3,
    });
    if let serde_json::Value::Object(m) = extra {
        for (k, v) in m {
            config[k] = v;
        }
    }
    start_with_config(config, &[])
}

/// The sections of a message with TTLs and IDs left out, for comparing two answers.
fn sections(m: &Message) -> Vec<String> {
    let fmt = |tag: &str, rs: &[hickory_proto::rr::Record]| -> Vec<String> {
        rs.iter()
            .map(|r| format!("{tag} {} {} {}", r.name, r.record_type(), r.data))
            .collect()
    };
    let mut v = fmt("an", &m.answers);
    v.extend(fmt("ns", &m.authorities));
    v.extend(fmt("ar", &m.additionals));
    v.push(format!(
        "rcode={} aa={} ra={} ad={} cd={}",
        m.metadata.response_code,
        m.metadata.authoritative,
        m.metadata.recursion_available,
        m.metadata.authentic_data,
        m.metadata.checking_disabled
    ));
    v
}

#[test]
fn every_section_and_record_type_passes_through() {
    let up = FakeUpstream::start();
    let (d, _dir) = daemon_for(&[up.addr], json!({}));
    let cases = [
        ("www.example.com.", RecordType::A),
        ("www.example.com.", RecordType::AAAA),
        ("alias.example.com.", RecordType::A),
        ("example.com.", RecordType::MX),
        ("example.com.", RecordType::NS),
        ("example.com.", RecordType::SOA),
        ("txt.example.com.", RecordType::TXT),
        ("_sip._tcp.example.com.", RecordType::SRV),
        ("10.2.0.192.in-addr.arpa.", RecordType::PTR),
        ("www.example.com.", RecordType::MX),
        ("missing.example.com.", RecordType::A),
    ];
    for (name, rtype) in cases {
        let direct = udp(up.addr, &query(name, rtype, Some(1232)));
        let via = d.udp(name, rtype, Some(1232));
        assert_eq!(sections(&via), sections(&direct), "{name} {rtype}");
        assert_eq!(via.queries, direct.queries);
    }
    // The CNAME chain arrives whole, in order.
    let m = d.udp("alias.example.com.", RecordType::A, None);
    let types: Vec<RecordType> = m.answers.iter().map(|r| r.record_type()).collect();
    assert_eq!(types, [RecordType::CNAME, RecordType::CNAME, RecordType::A]);
}

#[test]
fn dnssec_records_and_ad_flag_pass_through_with_do() {
    let up = FakeUpstream::start();
    let (d, _dir) = daemon_for(&[up.addr], json!({}));
    let mut q = query("signed.example.com.", RecordType::A, None);
    let mut e = Edns::new();
    e.set_dnssec_ok(true);
    e.set_max_payload(1232);
    q.set_edns(e);
    let m = udp(d.addr, &q);
    assert!(m.metadata.authentic_data);
    assert!(m
        .answers
        .iter()
        .any(|r| r.record_type() == RecordType::RRSIG));
    // Without DO: a different cache entry, no RRSIG.
    let m = d.udp("signed.example.com.", RecordType::A, Some(1232));
    assert!(!m
        .answers
        .iter()
        .any(|r| r.record_type() == RecordType::RRSIG));
    assert!(!m.metadata.authentic_data);
}

#[test]
fn answers_are_cached_with_ttls_counting_down() {
    let up = FakeUpstream::start();
    let (d, _dir) = daemon_for(&[up.addr], json!({}));
    let first = d.udp("www.example.com.", RecordType::A, None);
    assert_eq!(first.answers[0].ttl, 300);
    std::thread::sleep(Duration::from_millis(2100));
    let second = d.udp("WWW.example.COM.", RecordType::A, None);
    assert_eq!(
        up.count("www.example.com."),
        1,
        "second answer came from the cache"
    );
    let ttl = second.answers[0].ttl;
    assert!((297..=298).contains(&ttl), "ttl {ttl}");
    // The question comes back as the client spelled it.
    assert_eq!(second.queries[0].name().to_ascii(), "WWW.example.COM.");
    // The same query again: now from the UDP reader's held answers, the same way, and a second
    // later with its TTL a second lower.
    let third = d.udp("WWW.example.COM.", RecordType::A, None);
    assert_eq!(third.answers[0].ttl, ttl);
    assert_eq!(third.queries[0].name().to_ascii(), "WWW.example.COM.");
    std::thread::sleep(Duration::from_millis(1000));
    let fourth = d.udp("WWW.example.COM.", RecordType::A, None);
    let later = fourth.answers[0].ttl;
    assert!(
        (ttl - 2..ttl).contains(&later),
        "ttl {later} a second after {ttl}"
    );
    assert_eq!(sections(&fourth), sections(&third));
    assert_eq!(up.count("www.example.com."), 1);
}

#[test]
fn negative_answers_are_cached_for_the_soa_time() {
    let up = FakeUpstream::start();
    let (d, _dir) = daemon_for(&[up.addr], json!({}));
    // NXDOMAIN: SOA TTL 30, MINIMUM 2 -> cached 2 seconds.
    for _ in 0..3 {
        let m = d.udp("nope.example.com.", RecordType::A, None);
        assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
        assert!(matches!(m.authorities[0].data, RData::SOA(_)));
    }
    assert_eq!(up.count("nope.example.com."), 1);
    // NODATA likewise.
    for _ in 0..3 {
        let m = d.udp("www.example.com.", RecordType::TXT, None);
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.answers.is_empty());
    }
    assert_eq!(up.count("www.example.com."), 1);
    std::thread::sleep(Duration::from_millis(2200));
    d.udp("nope.example.com.", RecordType::A, None);
    assert_eq!(
        up.count("nope.example.com."),
        2,
        "expired after the SOA minimum"
    );
}

#[test]
fn concurrent_identical_misses_send_one_upstream_query() {
    let up = FakeUpstream::start();
    up.mode.delay_ms.store(300, Ordering::Relaxed);
    let (d, _dir) = daemon_for(&[up.addr], json!({}));
    let addr = d.addr;
    let clients: Vec<_> = (0..100)
        .map(|_| {
            std::thread::spawn(move || udp(addr, &query("www.example.com.", RecordType::A, None)))
        })
        .collect();
    for c in clients {
        let m = c.join().unwrap();
        assert_eq!(answers(&m), ["A 192.0.2.10"]);
    }
    assert_eq!(up.count("www.example.com."), 1);
}

#[test]
fn fails_over_from_a_dead_or_slow_upstream() {
    let (dead, _u, _t) = black_hole();
    let good = FakeUpstream::start();
    let (d, _dir) = daemon_for(&[dead, good.addr], json!({}));
    let started = Instant::now();
    let m = d.udp("www.example.com.", RecordType::A, None);
    assert_eq!(answers(&m), ["A 192.0.2.10"]);
    assert!(
        started.elapsed() < Duration::from_millis(2500),
        "{:?}",
        started.elapsed()
    );

    let slow = FakeUpstream::start();
    slow.mode.delay_ms.store(2500, Ordering::Relaxed);
    let good = FakeUpstream::start();
    let (d, _dir2) = daemon_for(&[slow.addr, good.addr], json!({}));
    let started = Instant::now();
    let m = d.udp("txt.example.com.", RecordType::TXT, None);
    assert_eq!(m.answers.len(), 1);
    assert!(
        started.elapsed() < Duration::from_millis(2000),
        "{:?}",
        started.elapsed()
    );

    // An upstream answering SERVFAIL is skipped too.
    let failing = FakeUpstream::start();
    failing.mode.servfail.store(true, Ordering::Relaxed);
    let good = FakeUpstream::start();
    let (d, _dir3) = daemon_for(&[failing.addr, good.addr], json!({}));
    let m = d.udp("www.example.com.", RecordType::A, None);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(failing.count("www.example.com."), 1);
}

#[test]
fn parallel_mode_takes_the_first_answer() {
    let slow = FakeUpstream::start();
    slow.mode.delay_ms.store(1500, Ordering::Relaxed);
    let fast = FakeUpstream::start();
    let (d, _dir) = daemon_for(&[slow.addr, fast.addr], json!({"upstreamParallel": true}));
    let started = Instant::now();
    let m = d.udp("www.example.com.", RecordType::A, None);
    assert_eq!(answers(&m), ["A 192.0.2.10"]);
    assert!(
        started.elapsed() < Duration::from_millis(700),
        "{:?}",
        started.elapsed()
    );
    // Both were asked (the slow one's counter may lag behind under load).
    let deadline = Instant::now() + Duration::from_secs(3);
    while slow.count("www.example.com.") == 0 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(slow.count("www.example.com."), 1);
}

#[test]
fn serves_stale_when_upstreams_die_and_servfails_when_nothing_is_cached() {
    let up = FakeUpstream::start();
    let (d, _dir) = daemon_for(&[up.addr], json!({"timeout": 2}));
    let m = d.udp("short.example.com.", RecordType::A, None);
    assert_eq!(m.answers[0].ttl, 1);
    up.mode.dead.store(true, Ordering::Relaxed);
    std::thread::sleep(Duration::from_millis(1200));
    let started = Instant::now();
    let m = d.udp("short.example.com.", RecordType::A, None);
    assert_eq!(answers(&m), ["A 192.0.2.11"]);
    assert_eq!(m.answers[0].ttl, 30, "stale answers carry a 30 s TTL");
    assert!(started.elapsed() < Duration::from_millis(2500));

    let started = Instant::now();
    let m = d.udp("never-cached.example.com.", RecordType::A, None);
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    assert!(
        started.elapsed() < Duration::from_millis(2800),
        "bounded by timeout"
    );
    // Both answers are in the latency histograms under their paths (recorded right after the
    // send: waited for, bounded).
    let deadline = Instant::now() + Duration::from_secs(5);
    for p in ["stale", "refused_error"] {
        let series = format!("mesos_dns_sidecar_response_seconds_count{{path=\"{p}\"}}");
        while metric(&d, &series) < 1.0 {
            assert!(Instant::now() < deadline, "no {p} answer recorded");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    // An EDNS query gets its SERVFAIL with an OPT record (RFC 6891 6.1.1).
    let m = d.udp("never-cached-2.example.com.", RecordType::A, Some(1232));
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    assert!(m.edns.is_some(), "SERVFAIL to an EDNS query without OPT");
}

#[test]
fn truncated_upstream_answers_are_fetched_over_tcp() {
    let up = FakeUpstream::start();
    let (d, _dir) = daemon_for(&[up.addr], json!({}));
    // ~2.7 KB of TXT: too big for any UDP answer here.
    let m = d.udp("big.example.com.", RecordType::TXT, Some(1232));
    assert!(m.metadata.truncation);
    assert!(
        up.tcp_queries.load(Ordering::Relaxed) >= 1,
        "upstream asked over TCP"
    );
    let m = d.tcp("big.example.com.", RecordType::TXT);
    assert!(!m.metadata.truncation);
    assert_eq!(m.answers.len(), 40);
}

#[test]
fn cluster_names_are_never_forwarded() {
    let up = FakeUpstream::start();
    let (d, _dir) = daemon_for(&[up.addr], json!({}));
    let m = d.udp("nginx.marathon.mesos.", RecordType::A, None);
    assert_eq!(answers(&m), ["A 10.44.3.3"]);
    let m = d.udp("nothing.marathon.mesos.", RecordType::A, None);
    assert_eq!(m.metadata.response_code, ResponseCode::NXDomain);
    assert!(m.metadata.authoritative);
    assert_eq!(up.seen.lock().unwrap().len(), 0);
}

#[test]
fn externalon_false_refuses_other_names_and_recurseon_only_sets_ra() {
    // As in Mesos-DNS: `externalon` decides whether other names are forwarded.
    let up = FakeUpstream::start();
    let (d, _dir) = daemon_for(&[up.addr], json!({"externalon": false}));
    let m = d.udp("www.example.com.", RecordType::A, None);
    assert_eq!(m.metadata.response_code, ResponseCode::Refused);
    assert_eq!(up.count("www.example.com."), 0);
    drop(d);

    // `recurseon: false` only clears RA in the daemon's own answers; forwarding goes on.
    let (d, _dir) = daemon_for(&[up.addr], json!({"recurseon": false}));
    let m = d.udp("www.example.com.", RecordType::A, None);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(up.count("www.example.com."), 1);
    let m = d.udp("leader.mesos.", RecordType::A, None);
    assert!(!m.metadata.recursion_available, "recurseon false: no RA");
    let (d2, _dir2) = daemon_for(&[up.addr], json!({}));
    assert!(
        d2.udp("leader.mesos.", RecordType::A, None)
            .metadata
            .recursion_available
    );
}

#[test]
fn no_loop_when_the_upstream_list_names_ourselves() {
    // The daemon's own address as its only upstream: dropped, so SERVFAIL at once.
    let port = free_port();
    let own = format!("127.0.0.1:{port}");
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("c.json");
    std::fs::write(
        &config,
        serde_json::to_vec(&json!({"resolvers": [own], "timeout": 3,
            "stateFile": fixture(CLUSTER).to_str().unwrap(),
            "resolvConf": "/nonexistent", "savedResolvConf": "/nonexistent"}))
        .unwrap(),
    )
    .unwrap();
    let d = start_on(&["--config", config.to_str().unwrap()], port);
    let started = Instant::now();
    let m = d.udp("www.example.com.", RecordType::A, None);
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    assert!(started.elapsed() < Duration::from_millis(500));
}

#[test]
fn no_loop_between_two_daemons_forwarding_to_each_other() {
    let (pa, pb) = (free_port(), free_port());
    let dir = tempfile::tempdir().unwrap();
    let conf = |name: &str, upstream: u16| {
        let p = dir.path().join(name);
        std::fs::write(
            &p,
            serde_json::to_vec(
                &json!({"resolvers": [format!("127.0.0.1:{upstream}")], "timeout": 3,
                "stateFile": fixture(CLUSTER).to_str().unwrap(),
                "resolvConf": "/nonexistent", "savedResolvConf": "/nonexistent"}),
            )
            .unwrap(),
        )
        .unwrap();
        p
    };
    let (ca, cb) = (conf("a.json", pb), conf("b.json", pa));
    let a = start_on(&["--config", ca.to_str().unwrap()], pa);
    let _b = start_on(&["--config", cb.to_str().unwrap()], pb);
    let started = Instant::now();
    let m = a.udp("loop.example.org.", RecordType::A, Some(1232));
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "{:?}",
        started.elapsed()
    );
}

#[test]
fn extra_listen_address_serves_everything() {
    let up = FakeUpstream::start();
    let (d, _dir) = daemon_for(
        &[up.addr],
        json!({"extraListeners": [loopback(2).to_string()]}),
    );
    let extra = SocketAddr::from((loopback(2), d.addr.port()));
    let m = udp(extra, &query("nginx.marathon.mesos.", RecordType::A, None));
    assert_eq!(answers(&m), ["A 10.44.3.3"]);
    let m = udp(extra, &query("www.example.com.", RecordType::A, None));
    assert_eq!(answers(&m), ["A 192.0.2.10"]);
}

#[test]
fn a_name_asked_near_its_expiry_is_refreshed_before_it_expires() {
    let up = FakeUpstream::start();
    let (d, _dir) = daemon_for(&[up.addr], json!({}));
    let started = Instant::now();
    assert_eq!(
        answers(&d.udp("five.example.com.", RecordType::A, None)),
        ["A 192.0.2.15"]
    );
    assert_eq!(up.count("five.example.com."), 1);
    // Asked again at once: held in the UDP reader's hot answers, which must not hide the
    // prefetch below.
    for _ in 0..3 {
        assert_eq!(
            answers(&d.udp("five.example.com.", RecordType::A, None)),
            ["A 192.0.2.15"]
        );
    }
    // In the last tenth of the 5 s TTL: answered from the cache, and refreshed behind it.
    std::thread::sleep(Duration::from_millis(4650).saturating_sub(started.elapsed()));
    let m = d.udp("five.example.com.", RecordType::A, None);
    assert!(m.answers[0].ttl <= 1, "still the first answer");
    let refreshed = Instant::now();
    while up.count("five.example.com.") < 2 {
        assert!(
            refreshed.elapsed() < Duration::from_millis(300),
            "no prefetch before expiry"
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    // Past the first answer's expiry: the prefetched one is served, no new upstream query.
    std::thread::sleep(Duration::from_millis(5500).saturating_sub(started.elapsed()));
    let m = d.udp("five.example.com.", RecordType::A, None);
    assert!(m.answers[0].ttl >= 3, "the refreshed answer");
    assert_eq!(up.count("five.example.com."), 2);
    assert!(metric(&d, "mesos_dns_sidecar_prefetches_total") >= 1.0);
}

#[test]
fn a_failed_name_is_answered_servfail_for_a_moment_without_asking_again() {
    let up = FakeUpstream::start();
    up.mode.servfail.store(true, Ordering::Relaxed);
    let (d, _dir) = daemon_for(&[up.addr], json!({"servfailCacheSeconds": 2}));
    let m = d.udp("www.example.com.", RecordType::A, None);
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    let asked = up.count("www.example.com.");
    assert!(asked >= 1);
    up.mode.servfail.store(false, Ordering::Relaxed);
    // Within the failure cache time: SERVFAIL at once, the upstream is not asked.
    let m = d.udp("www.example.com.", RecordType::A, None);
    assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
    assert_eq!(up.count("www.example.com."), asked);
    assert!(metric(&d, "mesos_dns_sidecar_servfail_cache_hits_total") >= 1.0);
    // After it: asked again, and answered.
    std::thread::sleep(Duration::from_millis(2200));
    let m = d.udp("www.example.com.", RecordType::A, None);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert!(up.count("www.example.com.") > asked);
}

#[test]
fn answer_latency_is_recorded_by_path_and_upstream_rtt_by_upstream() {
    let up = FakeUpstream::start();
    let (d, _dir) = daemon_for(&[up.addr], json!({}));
    let count = |series: &str| metric(&d, &format!("mesos_dns_sidecar_{series}"));
    let path = |p: &str| format!("response_seconds_count{{path=\"{p}\"}}");
    let rtt = format!(
        "upstream_rtt_histogram_seconds_count{{upstream=\"{}\"}}",
        up.addr
    );
    let before: Vec<f64> = ["cluster", "forwarded", "cache_hit"]
        .iter()
        .map(|p| count(&path(p)))
        .collect();
    assert_eq!(before[1], 0.0, "nothing forwarded yet");
    assert_eq!(before[2], 0.0, "nothing cached yet");

    assert_eq!(
        answers(&d.udp("nginx.marathon.mesos.", RecordType::A, None)),
        ["A 10.44.3.3"]
    );
    let forwarded = d.udp("www.example.com.", RecordType::A, None);
    assert_eq!(forwarded.metadata.response_code, ResponseCode::NoError);
    let hit = d.udp("www.example.com.", RecordType::A, None);
    assert_eq!(answers(&hit), answers(&forwarded));
    assert_eq!(
        up.count("www.example.com."),
        1,
        "the second came from the cache"
    );

    // Each answer is recorded right after it is sent: wait (bounded) for the last ones.
    let deadline = Instant::now() + Duration::from_secs(5);
    for (p, before) in ["cluster", "forwarded", "cache_hit"].iter().zip(&before) {
        while count(&path(p)) <= *before {
            assert!(Instant::now() < deadline, "no {p} answer recorded");
            std::thread::sleep(Duration::from_millis(20));
        }
    }
    assert_eq!(count(&path("forwarded")), 1.0);
    assert_eq!(count(&path("cache_hit")), 1.0);
    assert_eq!(count(&rtt), 1.0, "one answered upstream exchange");
    let (_, body) = crate::common::master::http_get(d.http, "/metrics");
    for series in [
        "# TYPE mesos_dns_sidecar_response_seconds histogram",
        "# TYPE mesos_dns_sidecar_upstream_rtt_histogram_seconds histogram",
        "mesos_dns_sidecar_response_seconds_bucket{le=\"+Inf\",path=\"forwarded\"} 1",
    ] {
        assert!(
            body.lines().any(|l| l == series),
            "{series} missing:\n{body}"
        );
    }
}

#[test]
fn a_zone_resolvers_upstream_has_its_rtt_histogram_too() {
    let default = FakeUpstream::start();
    let zone = FakeUpstream::start();
    let (d, _dir) = daemon_for(
        &[default.addr],
        json!({"ZoneResolvers": {"example.com": [zone.addr.to_string()]}}),
    );
    let m = d.udp("www.example.com.", RecordType::A, None);
    assert_eq!(m.metadata.response_code, ResponseCode::NoError);
    assert_eq!(zone.count("www.example.com."), 1);
    assert_eq!(default.count("www.example.com."), 0);
    let rtt = |up: SocketAddr| {
        metric(
            &d,
            &format!("mesos_dns_sidecar_upstream_rtt_histogram_seconds_count{{upstream=\"{up}\"}}"),
        )
    };
    assert_eq!(rtt(zone.addr), 1.0);
    assert_eq!(rtt(default.addr), 0.0);
}

/// Every response is counted once, where it is sent, whichever path built it: by query type,
/// response code, TC and latency path, over both transports, and the counts agree with each
/// other (as many responses by code as answers by path).
#[test]
fn each_response_is_counted_once_by_type_rcode_truncation_and_path() {
    let up = FakeUpstream::start();
    let (d, _dir) = daemon_for(&[up.addr], json!({}));
    let series = [
        "responses_total{rcode=\"0\"}",
        "responses_total{rcode=\"1\"}",
        "responses_total{rcode=\"2\"}",
        "responses_total{rcode=\"3\"}",
        "queries_total{qtype=\"A\"}",
        "queries_total{qtype=\"TXT\"}",
        "truncated_responses_total",
        "response_seconds_count{path=\"cluster\"}",
        "response_seconds_count{path=\"forwarded\"}",
        "response_seconds_count{path=\"cache_hit\"}",
        "response_seconds_count{path=\"refused_error\"}",
    ];
    let read = || -> Vec<f64> {
        let (_, body) = crate::common::master::http_get(d.http, "/metrics");
        series
            .iter()
            .map(|s| {
                let name = format!("mesos_dns_sidecar_{s} ");
                body.lines()
                    .find_map(|l| l.strip_prefix(&name))
                    .map_or(0.0, |v| v.parse().unwrap())
            })
            .collect()
    };
    let before = read();

    // Cluster: an answer over UDP and TCP, and an NXDOMAIN.
    assert_eq!(
        answers(&d.udp("nginx.marathon.mesos.", RecordType::A, None)),
        ["A 10.44.3.3"]
    );
    assert_eq!(
        answers(&d.tcp("nginx.marathon.mesos.", RecordType::A)),
        ["A 10.44.3.3"]
    );
    let nx = d.udp("nope.marathon.mesos.", RecordType::A, None);
    assert_eq!(nx.metadata.response_code, ResponseCode::NXDomain);
    // Forwarded, then the same from the cache; a truncated forwarded answer.
    let forwarded = d.udp("www.example.com.", RecordType::A, None);
    assert_eq!(forwarded.metadata.response_code, ResponseCode::NoError);
    let hit = d.udp("www.example.com.", RecordType::A, None);
    assert_eq!(answers(&hit), answers(&forwarded));
    let big = d.udp("big.example.com.", RecordType::TXT, Some(1232));
    assert!(big.metadata.truncation);
    // A malformed packet: FORMERR, no query type.
    let mut garbage = vec![0x12, 0x34, 0x01, 0, 0, 1, 0, 0, 0, 0, 0, 0];
    garbage.extend_from_slice(&[0x3f, 1, 2]);
    let formerr = udp_raw(d.addr, &garbage, Duration::from_secs(3)).expect("FORMERR");
    assert_eq!(formerr[3] & 0x0f, 1);
    // The upstream failing: SERVFAIL.
    up.mode.servfail.store(true, Ordering::Relaxed);
    let failed = d.udp("alias.example.com.", RecordType::A, None);
    assert_eq!(failed.metadata.response_code, ResponseCode::ServFail);

    // rcode 0, 1, 2, 3; A, TXT; TC; cluster, forwarded, cache_hit, refused_error.
    let want = [5.0, 1.0, 1.0, 1.0, 6.0, 1.0, 1.0, 3.0, 2.0, 1.0, 2.0];
    let deadline = Instant::now() + Duration::from_secs(5);
    let delta = loop {
        // Forwarded answers are counted right after their send: wait (bounded) for them.
        let now = read();
        let delta: Vec<f64> = now.iter().zip(&before).map(|(a, b)| a - b).collect();
        if delta == want || Instant::now() > deadline {
            break delta;
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let shown: Vec<String> = series
        .iter()
        .zip(&delta)
        .map(|(s, v)| format!("{s} +{v}"))
        .collect();
    assert_eq!(delta, want, "{shown:#?}");
    // As many responses by code as by path: each counted once.
    assert_eq!(
        delta[..4].iter().sum::<f64>(),
        delta[7..].iter().sum::<f64>()
    );
}
